// A connected AF_UNIX SOCK_SEQPACKET socket as a NIC: one Ethernet frame (no FCS) per message.
// The other end is a simulated network: `shunt netsim` listens on DIR/hostI.sock and puts each
// connected process on a host port of an ns-3 topology in real time (docs/netsim.md). Frames
// cross the socket one recv(2)/sendmsg(2) each, so this is a functional link, not a fast one.
//
// SHUNT_DEVICE=unix:path=/some/dir/host0.sock[,mac=MAC][,mtu=N]
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "stack/driver/device.h"

namespace shunt {

struct UnixDeviceOptions {
  std::string path;  // the listening socket to connect to
  // The stack's own MAC; zero: a locally administered unicast address derived from `path`, so
  // hosts on the same netsim differ without being told.
  MacAddr mac;
  uint32_t mtu = 1500;  // largest IP packet; frames are at most mtu + 18 bytes (one VLAN tag)
};

// What the driver saw and dropped. Plain numbers: the stack's Counters belong to the stack.
struct UnixDeviceCounters {
  uint64_t rx_frames = 0;
  uint64_t rx_bytes = 0;
  uint64_t rx_drop_oversize = 0;  // longer than mtu + 18 or than a receive buffer
  uint64_t rx_drop_runt = 0;      // shorter than an Ethernet header
  uint64_t rx_errors = 0;         // recv(2) failed other than EAGAIN
  uint64_t rx_no_buffer = 0;      // bursts cut short because the pool was empty
  uint64_t rx_peer_closed = 0;    // recv(2) saw the other end go away (counted once)
  uint64_t tx_frames = 0;
  uint64_t tx_bytes = 0;
  uint64_t tx_drop_eagain = 0;    // the socket's send buffer was full
  uint64_t tx_drop_error = 0;     // sendmsg(2) failed otherwise (peer gone, ...), or a bad chain
};

class UnixDevice final : public Device {
 public:
  struct OpenResult {
    std::unique_ptr<UnixDevice> device;  // null on failure
    std::string error;                   // why, in one line, when device is null
  };
  // Connects to `options.path`. Never throws; every failure (no such socket, connection
  // refused, not a socket, path too long) comes back as an error line.
  static OpenResult open(const UnixDeviceOptions& options);

  ~UnixDevice() override;
  UnixDevice(const UnixDevice&) = delete;
  UnixDevice& operator=(const UnixDevice&) = delete;

  const DeviceInfo& info() const override { return info_; }
  size_t rx_burst(PacketPtr* out, size_t max) override;
  size_t tx_burst(PacketPtr* frames, size_t n) override;
  int wait_fd() const override { return fd_; }

  const std::string& path() const { return path_; }
  // False once the other end has closed the connection (netsim ended).
  bool peer_open() const { return counters_.rx_peer_closed == 0; }
  const UnixDeviceCounters& counters() const { return counters_; }

 private:
  UnixDevice(int fd, DeviceInfo info, std::string path);

  int fd_;
  DeviceInfo info_;
  std::string path_;
  UnixDeviceCounters counters_;
};

}  // namespace shunt
