// A NIC over rdma-core verbs for devices without a raw Ethernet queue (soft-RoCE's rxe, and any
// RoCE or InfiniBand adapter through its UD queue pairs): the stack's IP and ARP packets travel
// in UD messages, as IPoIB does (RFC 4391). One UD QP per stack; the stack's Ethernet frames
// are rewritten in place to and from UD messages (ud_wire.h); a peer's MAC stands for its
// (GID, QPN) (ud_mac()), learned from every message received (GRH + source QPN) into a bounded
// table with one address handle per peer, made on the first send (peer_table.h); broadcast and
// multicast frames (ARP requests, NDP, IGMP/MLD) go to a UD multicast group every stack of the
// fabric joins (IPoIB's broadcast group), so ARP works as on Ethernet. docs/hardware.md
// ("verbs") says how to run it, every option, and the limits.
//
// Data path: the stack's whole buffer pool is registered once (attach()); receive WRs point
// into pool buffers (zero copy: the frame is rebuilt in place after the GRH), sends use the
// stack's buffers as they are (the UD header replaces the Ethernet header's tail); WRs are
// posted in batches (one post per burst), completions polled in batches, nothing allocated per
// packet. An error completion (or a failed post) puts the device in recovery: service() drains
// the CQs, moves the QP RESET -> INIT -> RTR -> RTS, reclaims every outstanding buffer and
// posts the receive ring again (counted; retried with a back-off when it fails).
//
// Counters ("verbs."): rx.frames, rx.bytes, rx.no_buffer, rx.own_loop, rx.drop.{runt, no_grh,
// bad_grh, truncated, reserved, ethertype, oversize}, rx.error.<status>, rx.flushed, rx.post_failed, tx.frames,
// tx.bytes, tx.drop.{runt, ethertype, oversize, foreign_buffer, chained, unknown_peer, ah_failed,
// ring_full, post_failed, recovering, not_ready}, tx.error.<status>, tx.flushed, cq.stale,
// cq.poll_failed, peer.{learned, changed, evicted}, ah.{created, destroyed}, recover.{started,
// ok, failed}, events.
#pragma once
#include <infiniband/verbs.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "stack/core/counters.h"
#include "stack/driver/device.h"
#include "stack/driver/verbs/peer_table.h"
#include "stack/driver/verbs/ud_wire.h"
#include "stack/driver/verbs/verbs_ops.h"
#include "stack/driver/verbs/work_ring.h"

namespace shunt {

struct VerbsOptions {
  std::string device;        // ibv device name (rxe0); empty: the first device
  uint8_t port = 1;          // 1-based
  int gid_index = -1;        // -1: the port's first IPv4-mapped GID, else index 0
  uint32_t mtu = 0;          // IP MTU; 0: the port's active MTU - 4, at most what a buffer holds
  uint32_t qkey = 0x53480001;
  Ipv4Addr group{0xef534801};  // 239.83.72.1: the broadcast group (GID ::ffff:239.83.72.1)
  uint32_t peers = 256;      // address handle cache
  uint32_t rx_depth = 512;   // receive WRs posted (at most a quarter of the pool)
  uint32_t tx_depth = 256;   // send WRs in flight
  bool allow_mlx5 = false;   // UD on a ConnectX instead of refusing (the mlx5: driver is better)
};

class VerbsDevice final : public Device {
 public:
  struct OpenResult {
    std::unique_ptr<VerbsDevice> device;  // null on failure
    std::string error;                    // one line, when device is null
  };
  // Never throws.
  static OpenResult open(const VerbsOptions& options, verbs::VerbsOps& ops = verbs::real_verbs_ops());

  ~VerbsDevice() override;
  VerbsDevice(const VerbsDevice&) = delete;
  VerbsDevice& operator=(const VerbsDevice&) = delete;

  const DeviceInfo& info() const override { return info_; }
  void attach(BufferPool& pool) override;
  void detach() override;
  size_t rx_burst(PacketPtr* out, size_t max) override;
  size_t tx_burst(PacketPtr* frames, size_t n) override;
  int wait_fd() const override;
  void arm_wait() override;
  void ack_wait() override;
  Nanos service(Nanos now) override;

  uint32_t qpn() const { return qpn_; }
  const verbs::Gid& gid() const { return gid_; }
  int gid_index() const { return gid_index_; }
  bool recovering() const { return needs_recovery_; }
  const verbs::PeerTable& peers() const { return peers_; }
  Counters& counters() { return counters_; }
  const Counters& counters() const { return counters_; }
  // Why the device is not usable (attach() could not register the pool), or empty.
  const std::string& error() const { return error_; }

 private:
  VerbsDevice(const VerbsOptions& options, verbs::VerbsOps& ops);
  std::string setup();
  std::string to_rts(const char* why);
  bool recover();
  void post_receives();
  void reap_sends();
  void drain_events();
  void complete_send(const ibv_wc& wc);
  void note_error(const ibv_wc& wc, bool send);
  void retire_ah(void* ah);
  void destroy_retired(bool all);
  std::string fail(const std::string& step, int err, const char* hint = nullptr) const;

  VerbsOptions options_;
  verbs::VerbsOps& ops_;
  DeviceInfo info_;
  std::string dev_name_;
  std::string error_;
  ibv_context* ctx_ = nullptr;
  ibv_pd* pd_ = nullptr;
  ibv_comp_channel* channel_ = nullptr;
  ibv_cq* send_cq_ = nullptr;
  ibv_cq* recv_cq_ = nullptr;
  ibv_qp* qp_ = nullptr;
  ibv_mr* mr_ = nullptr;
  ibv_ah* group_ah_ = nullptr;
  ibv_gid group_gid_{};
  bool group_attached_ = false;
  int group_fd_ = -1;
  uint32_t qpn_ = 0;
  verbs::Gid gid_;
  int gid_index_ = 0;
  bool ipv4_grh_ = false;
  uint32_t max_payload_ = 0;  // the largest UD message body (IP MTU)
  uint32_t rx_target_ = 0;
  bool armed_ = false;

  verbs::PeerTable peers_;
  verbs::WorkRing recv_ring_;
  verbs::WorkRing send_ring_;
  // Address handles no peer refers to, destroyed once no send posted before may still use them.
  struct RetiredAh {
    ibv_ah* ah;
    uint64_t after_send;  // sends_posted_ when retired
  };
  std::vector<RetiredAh> retired_;
  uint64_t sends_posted_ = 0;
  uint64_t sends_done_ = 0;  // completed or reclaimed, in posting order

  bool needs_recovery_ = false;
  Nanos retry_at_ = 0;
  Nanos backoff_ = 0;

  static constexpr int kBatch = 32;
  ibv_wc wc_[kBatch];
  ibv_recv_wr recv_wr_[kBatch];
  ibv_sge recv_sge_[kBatch];
  ibv_send_wr send_wr_[kBatch];
  ibv_sge send_sge_[kBatch];

  Counters counters_;
  Counter& rx_frames_;
  Counter& rx_bytes_;
  Counter& rx_no_buffer_;
  Counter& rx_own_loop_;
  Counter& rx_drop_runt_;
  Counter& rx_drop_no_grh_;
  Counter& rx_drop_bad_grh_;
  Counter& rx_drop_truncated_;
  Counter& rx_drop_reserved_;
  Counter& rx_drop_ethertype_;
  Counter& rx_drop_oversize_;
  Counter& rx_flushed_;
  Counter& rx_post_failed_;
  Counter& tx_frames_;
  Counter& tx_bytes_;
  Counter& tx_drop_runt_;
  Counter& tx_drop_ethertype_;
  Counter& tx_drop_oversize_;
  Counter& tx_drop_foreign_;
  Counter& tx_drop_chained_;
  Counter& tx_drop_unknown_peer_;
  Counter& tx_drop_ah_failed_;
  Counter& tx_drop_ring_full_;
  Counter& tx_drop_post_failed_;
  Counter& tx_drop_recovering_;
  Counter& tx_drop_not_ready_;
  Counter& tx_flushed_;
  Counter& cq_stale_;
  Counter& cq_poll_failed_;
  Counter& peer_learned_;
  Counter& peer_changed_;
  Counter& peer_evicted_;
  Counter& ah_created_;
  Counter& ah_destroyed_;
  Counter& recover_started_;
  Counter& recover_ok_;
  Counter& recover_failed_;
  Counter& events_;
  Counter* rx_error_[32]{};  // by ibv_wc_status; [31]: any other
  Counter* tx_error_[32]{};
};

// The name of a work completion status for counters ("local_length", "flush", ...).
const char* verbs_wc_status_name(int status);

}  // namespace shunt
