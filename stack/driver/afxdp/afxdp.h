// AF_XDP as a NIC: any Linux interface (a veth, a real NIC's queue) whose frames an XDP program
// steers into an XSK socket that this process drives. The kernel on the other end of the link
// is the peer; the kernel of this host no longer sees the queue's traffic while the device is
// open.
//
// Rings (libxdp's xsk.h over the kernel's AF_XDP): the driver mmaps its own UMEM area, registers
// it (XDP_UMEM_REG, through xsk_umem__create) and splits its frames: three quarters receive and
// cycle fill ring -> RX ring -> fill ring, one quarter transmits and cycles a free list -> TX
// ring -> completion ring -> free list. Frames are copied once each way between UMEM and the
// stack's pool buffers (the stack keeps receive buffers as long as TCP needs them, which a UMEM
// frame must not be; veth and generic mode copy anyway). Bursts touch every ring once; nothing is
// allocated per packet.
//
// The XDP program is the driver's own, six instructions: bpf_redirect_map(xsks_map,
// ctx->rx_queue_index, XDP_PASS) over a private XSKMAP holding this socket at its queue. It is
// attached through a bpf_link (BPF_LINK_CREATE), not netlink, so the kernel detaches it when the
// link's last file descriptor closes: on close and when the process dies, by any signal. libxdp's
// default program (xsk_socket__create without INHIBIT_PROG_LOAD) is not used: it is attached
// through netlink by libxdp's dispatcher and stays attached when the process dies (harmless,
// since its redirect falls back to XDP_PASS, but left behind).
//
// Modes: native (XDP_FLAGS_DRV_MODE: the driver runs the program; veth, mlx5, i40e, ...),
// generic (XDP_FLAGS_SKB_MODE: any interface, after an skb is built, copy mode), auto (native,
// else generic). Checksum offload: none; the stack computes and verifies every checksum. The
// peer must not hand over partial checksums or GSO frames: on a veth, turn off the kernel end's
// tx offloads (`ethtool -K PEER tx off`), docs/afxdp.md.
//
// Counters ("afxdp."): rx.frames, rx.bytes, rx.no_buffer, rx.wakeups, rx.drop.{runt, oversize,
// bad_desc}; tx.frames, tx.bytes, tx.kicks, tx.completions, tx.kick_busy, tx.kick_error,
// tx.drop.{ring_full, oversize, runt}; kernel.{rx_dropped, rx_invalid_descs, rx_ring_full,
// rx_fill_ring_empty, tx_invalid_descs, tx_ring_empty} (XDP_STATISTICS, refreshed by service()).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "stack/core/counters.h"
#include "stack/driver/device.h"

struct xsk_umem;
struct xsk_socket;

namespace shunt {

enum class AfxdpMode { kNative, kGeneric, kAuto };
const char* afxdp_mode_name(AfxdpMode m);

struct AfxdpOptions {
  std::string ifname;
  uint32_t queue = 0;
  AfxdpMode mode = AfxdpMode::kAuto;
  // The stack's MAC; none takes the interface's own (the kernel no longer receives on it).
  std::optional<MacAddr> mac;
  // UMEM frames, a power of two in [64, 65536]; 3/4 receive, 1/4 transmit.
  uint32_t frames = 4096;
};

class AfxdpDevice final : public Device {
 public:
  struct OpenResult {
    std::unique_ptr<AfxdpDevice> device;  // null on failure
    std::string error;                    // one line saying why, when device is null
  };
  // Never throws. Errors name the interface and what to do: no such interface, interface down,
  // no AF_XDP in the kernel, no permission (CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF), native mode
  // not supported, no such queue, queue busy, another XDP program attached, locked-memory limit.
  static OpenResult open(const AfxdpOptions& options);

  ~AfxdpDevice() override;
  AfxdpDevice(const AfxdpDevice&) = delete;
  AfxdpDevice& operator=(const AfxdpDevice&) = delete;

  const DeviceInfo& info() const override { return info_; }
  size_t rx_burst(PacketPtr* out, size_t max) override;
  size_t tx_burst(PacketPtr* frames, size_t n) override;
  int wait_fd() const override { return xsk_fd_; }
  // Kicks transmits the kernel has not taken yet, reaps completions, refreshes kernel.* counters.
  Nanos service(Nanos now) override;

  // The mode the program runs in (never kAuto).
  AfxdpMode mode() const { return mode_; }
  int ifindex() const { return ifindex_; }
  uint32_t queue() const { return queue_; }
  uint32_t interface_mtu() const { return interface_mtu_; }
  uint32_t frame_size() const { return frame_size_; }
  // The attached XDP program's id.
  uint32_t program_id() const { return prog_id_; }
  Counters& counters() { return counters_; }
  const Counters& counters() const { return counters_; }
  // Reads XDP_STATISTICS into the kernel.* counters now.
  void refresh_kernel_stats();

 private:
  AfxdpDevice();
  std::string setup(const AfxdpOptions& options);
  std::string attach_program(AfxdpMode mode);
  void reap_completions();
  void kick_tx();
  void wake_rx();

  DeviceInfo info_;
  AfxdpMode mode_ = AfxdpMode::kNative;
  int ifindex_ = 0;
  uint32_t queue_ = 0;
  uint32_t interface_mtu_ = 0;
  uint32_t frame_size_ = 2048;
  uint32_t frames_ = 0;
  uint32_t rx_count_ = 0;  // receive frames: [0, rx_count_) of the UMEM

  uint8_t* area_ = nullptr;  // the UMEM, mmap'd
  size_t area_size_ = 0;
  struct Rings;
  std::unique_ptr<Rings> rings_;  // libxdp's ring handles (xsk.h stays out of this header)
  xsk_umem* umem_ = nullptr;
  xsk_socket* xsk_ = nullptr;
  int xsk_fd_ = -1;
  int map_fd_ = -1;
  int prog_fd_ = -1;
  int link_fd_ = -1;
  uint32_t prog_id_ = 0;

  std::vector<uint64_t> tx_free_;  // UMEM addresses of idle transmit frames (a stack)
  bool kick_pending_ = false;      // the TX ring holds descriptors the kernel has not taken
  Nanos next_stats_ = 0;

  Counters counters_;
  Counter& rx_frames_;
  Counter& rx_bytes_;
  Counter& rx_no_buffer_;
  Counter& rx_wakeups_;
  Counter& rx_drop_runt_;
  Counter& rx_drop_oversize_;
  Counter& rx_drop_bad_desc_;
  Counter& tx_frames_;
  Counter& tx_bytes_;
  Counter& tx_kicks_;
  Counter& tx_completions_;
  Counter& tx_kick_busy_;
  Counter& tx_kick_error_;
  Counter& tx_drop_ring_full_;
  Counter& tx_drop_oversize_;
  Counter& tx_drop_runt_;
  Counter& k_rx_dropped_;
  Counter& k_rx_invalid_;
  Counter& k_rx_ring_full_;
  Counter& k_rx_fill_empty_;
  Counter& k_tx_invalid_;
  Counter& k_tx_ring_empty_;
};

// The id of the XDP program attached to `ifname` in this network namespace (any mode), 0 when
// none, nullopt when there is no such interface. For tests and diagnostics.
std::optional<uint32_t> afxdp_attached_program(const std::string& ifname);

}  // namespace shunt
