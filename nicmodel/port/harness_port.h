// The simulated NIC's wire on the virtual-time harness: a WirePort over a SimLink port. The
// model hands a frame over when its first bit goes out; the SimLink serializes it at the same
// rate, applies its delay and impairments, records it in the pcap, and delivers it to the far
// port, where deliver() passes it to that port's model.
#pragma once
#include <cstddef>

#include "nicmodel/port/wire_port.h"
#include "stack/core/buffer.h"
#include "stack/harness/sim_link.h"

namespace nicmodel {

class HarnessPort final : public WirePort {
 public:
  // `buffers` bound the frames waiting at the port between deliveries.
  HarnessPort(shunt::SimPort& port, size_t buffers = 1024);
  ~HarnessPort() override;
  HarnessPort(const HarnessPort&) = delete;
  HarnessPort& operator=(const HarnessPort&) = delete;

  bool transmit(std::span<const uint8_t> frame, Nanos start, Nanos end) override;
  void set_receiver(WireReceiver* r) override { receiver_ = r; }
  uint64_t rate_bps() const override;

  // Frames have arrived and wait for deliver().
  bool pending() const { return port_.rx_pending(); }
  // Hands every waiting frame to the receiver as arrived at `now`; returns how many.
  size_t deliver(Nanos now);
  shunt::SimPort& sim_port() { return port_; }

 private:
  shunt::SimPort& port_;
  shunt::BufferPool pool_;  // frames waiting at the port, and the copy handed to the link
  WireReceiver* receiver_ = nullptr;
};

}  // namespace nicmodel
