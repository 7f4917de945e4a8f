// Where the simulated NIC's wire goes. The model serializes each frame at the link rate and
// hands it to its WirePort when the first bit goes out; the port carries it to the far end
// (with propagation delay, a switch, impairments) and hands arriving frames to the model's
// WireReceiver when their last bit is in. Ports:
//   - harness_port.h: a port of the virtual-time SimLink (tests, benchmarks, the demo);
//   - shm_cable.h: the shared-memory cable between two processes, in real time;
//   - ns3/mlx5_net_device.h: an ns-3 channel, through a PHY device on it (docs/ns3.md).
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "stack/core/clock.h"

namespace nicmodel {

using shunt::Nanos;

class WireReceiver {
 public:
  virtual ~WireReceiver() = default;
  // A whole frame (Ethernet header first, no FCS) whose last bit arrived at `at`. The bytes are
  // valid only during the call.
  virtual void on_wire_frame(std::span<const uint8_t> frame, Nanos at) = 0;
};

class WirePort {
 public:
  virtual ~WirePort() = default;
  // The model puts `frame` on the wire: first bit at `start` (the current time), last bit at
  // `end`. The port copies what it needs before returning. Returns false when the frame did not
  // get onto the wire (link down, peer absent, ring full); the model counts it.
  virtual bool transmit(std::span<const uint8_t> frame, Nanos start, Nanos end) = 0;
  // Where arriving frames go (nullptr: nowhere, they are dropped by the port).
  virtual void set_receiver(WireReceiver* r) = 0;
  // The port's wire rate in bit/s, or 0 to let the model use its configured SHUNT_NIC_LINK_GBPS.
  virtual uint64_t rate_bps() const { return 0; }
  // Ports that must be polled (the real-time cable) deliver arrivals from here; ports driven by
  // a simulator deliver from their own events and do nothing here. Returns the next time the
  // port wants to be polled (kNever: only when something else happens).
  virtual Nanos poll(Nanos /*now*/) { return shunt::kNever; }
  // Empty while the port works; otherwise one line saying why not (e.g. the peer died).
  virtual std::string status() const { return {}; }
};

}  // namespace nicmodel
