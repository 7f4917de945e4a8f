// A Linux TAP interface as a NIC: the kernel is the peer on the other end of the wire.
// Frames cross /dev/net/tun one read(2)/write(2) each (IFF_TAP | IFF_NO_PI: no packet-info
// header, no offloads), so this driver is for interop and functional tests, not speed.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "stack/driver/device.h"

namespace shunt {

struct TapOptions {
  // Interface to attach to or create; empty lets the kernel pick a name ("tap%d").
  std::string ifname;
  // The stack's own MAC. It must differ from the kernel side's MAC of the interface, or the
  // kernel would take the stack's frames for its own.
  MacAddr mac;
};

// What the driver saw and dropped. Plain numbers: the stack's Counters belong to the stack.
struct TapCounters {
  uint64_t rx_frames = 0;
  uint64_t rx_bytes = 0;
  uint64_t rx_drop_oversize = 0;   // longer than a receive buffer
  uint64_t rx_drop_runt = 0;       // shorter than an Ethernet header
  uint64_t rx_errors = 0;          // read(2) failed other than EAGAIN
  uint64_t rx_no_buffer = 0;       // bursts cut short because the pool was empty
  uint64_t tx_frames = 0;
  uint64_t tx_bytes = 0;
  uint64_t tx_drop_eagain = 0;     // the kernel's queue was full
  uint64_t tx_drop_error = 0;      // write(2) failed otherwise (interface gone, ...)
  uint64_t tx_drop_truncated = 0;  // the kernel took fewer bytes than the frame
};

class TapDevice final : public Device {
 public:
  struct OpenResult {
    std::unique_ptr<TapDevice> device;  // null on failure
    std::string error;                  // why, in one line, when device is null
  };
  // Opens /dev/net/tun and attaches to (or creates) the interface. Never throws; every failure
  // (no /dev/net/tun, EPERM, busy interface, MAC clash) comes back as an error line.
  static OpenResult open(const TapOptions& options);

  ~TapDevice() override;
  TapDevice(const TapDevice&) = delete;
  TapDevice& operator=(const TapDevice&) = delete;

  const DeviceInfo& info() const override { return info_; }
  size_t rx_burst(PacketPtr* out, size_t max) override;
  size_t tx_burst(PacketPtr* frames, size_t n) override;
  int wait_fd() const override { return fd_; }

  // The interface's name as the kernel knows it.
  const std::string& ifname() const { return info_.name; }
  // The kernel side's MAC at open time.
  const MacAddr& kernel_mac() const { return kernel_mac_; }
  // The interface's MTU at open time (info().mtu may be smaller: what a buffer holds).
  uint32_t interface_mtu() const { return interface_mtu_; }
  const TapCounters& counters() const { return counters_; }

 private:
  TapDevice(int fd, DeviceInfo info, MacAddr kernel_mac, uint32_t interface_mtu);

  int fd_;
  DeviceInfo info_;
  MacAddr kernel_mac_;
  uint32_t interface_mtu_;
  TapCounters counters_;
  // Where the tail of a frame too long for a buffer lands, so it can be detected and dropped
  // (TAP has no truncation flag without a packet-info header). Allocated once at open.
  std::unique_ptr<uint8_t[]> overflow_;
};

}  // namespace shunt
