// The contract between the stack and a NIC driver. It is the shape of a descriptor-ring NIC
// (mlx5 is the reference): bursts of frames in and out, buffers from the stack's pool, and a
// few capabilities. Drivers: tap/ (a Linux TAP interface), harness/ (the virtual-time link),
// mlx5/ (ConnectX rings, on the simulated NIC or real hardware), and later verbs/, afxdp/.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "stack/core/buffer.h"
#include "stack/core/clock.h"
#include "stack/net/addr.h"

namespace shunt {

struct DeviceInfo {
  std::string name;
  MacAddr mac;
  uint32_t mtu = 1500;          // largest IP packet the link carries
  bool rx_checksum = false;     // sets PacketBuf::kRxL3ChecksumOk / kRxL4ChecksumOk
  bool tx_checksum = false;     // computes IPv4 header and TCP/UDP checksums on send
};

class Device {
 public:
  virtual ~Device() = default;
  virtual const DeviceInfo& info() const = 0;
  // The pool receive buffers come from. Called once, before the first rx_burst().
  virtual void attach(BufferPool& pool) { pool_ = &pool; }
  // Returns every buffer of the attached pool the driver still holds (posted receive buffers,
  // sends not yet completed); called by the stack before its pool goes away.
  virtual void detach() {}
  // Moves up to `max` received frames (starting at the Ethernet header) into `out`.
  virtual size_t rx_burst(PacketPtr* out, size_t max) = 0;
  // Takes all `n` frames; returns how many went out. The rest were dropped, and the driver
  // counts them.
  virtual size_t tx_burst(PacketPtr* frames, size_t n) = 0;
  // A file descriptor that becomes readable when frames may be waiting, or -1 (busy-poll only).
  virtual int wait_fd() const { return -1; }
  // The owner is about to sleep on wait_fd() (it polls once more first): the next completion
  // must make the fd readable. Devices whose fd is readable while frames wait (TAP, AF_XDP)
  // need nothing; a NIC arms its completion event, which fires once per arming.
  virtual void arm_wait() {}
  // The owner woke on wait_fd(): clears what made it readable (an event counter), so it does
  // not stay readable.
  virtual void ack_wait() {}
  // Work the device needs from the host CPU, done at the start of every Stack::poll(): a
  // simulated NIC in real time runs its due events here. Returns the device's next deadline.
  virtual Nanos service(Nanos /*now*/) { return kNever; }

 protected:
  BufferPool* pool_ = nullptr;
};

}  // namespace shunt
