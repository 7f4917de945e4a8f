#include "stack/driver/verbs/verbs_device.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "stack/core/log.h"

namespace shunt {

using namespace verbs;

namespace {

constexpr uint32_t kMellanoxVendorId = 0x02c9;
constexpr uint32_t kFirstMlx5PartId = 4113;  // ConnectX-4 (Connect-IB and later are mlx5)
constexpr int kStatusSlots = 32;
constexpr Nanos kFirstBackoff = 10 * kMilli;
constexpr Nanos kMaxBackoff = kSecond;

std::string errno_text(int err) { return err ? std::strerror(err) : "unknown error (errno not set)"; }

const char* port_state_name(int s) {
  switch (s) {
    case IBV_PORT_DOWN: return "DOWN";
    case IBV_PORT_INIT: return "INIT";
    case IBV_PORT_ARMED: return "ARMED";
    case IBV_PORT_ACTIVE: return "ACTIVE";
    case IBV_PORT_ACTIVE_DEFER: return "ACTIVE_DEFER";
    default: return "NOP";
  }
}

ibv_gid to_ibv(const Gid& g) {
  ibv_gid out;
  std::memcpy(out.raw, g.b.data(), 16);
  return out;
}

Gid from_ibv(const ibv_gid& g) { return Gid::read(g.raw); }

void give_back(PacketBuf* b) { b->pool()->release(b); }

}  // namespace

const char* verbs_wc_status_name(int status) {
  switch (status) {
    case IBV_WC_SUCCESS: return "success";
    case IBV_WC_LOC_LEN_ERR: return "local_length";
    case IBV_WC_LOC_QP_OP_ERR: return "local_qp_operation";
    case IBV_WC_LOC_EEC_OP_ERR: return "local_eec_operation";
    case IBV_WC_LOC_PROT_ERR: return "local_protection";
    case IBV_WC_WR_FLUSH_ERR: return "flush";
    case IBV_WC_MW_BIND_ERR: return "mw_bind";
    case IBV_WC_BAD_RESP_ERR: return "bad_response";
    case IBV_WC_LOC_ACCESS_ERR: return "local_access";
    case IBV_WC_REM_INV_REQ_ERR: return "remote_invalid_request";
    case IBV_WC_REM_ACCESS_ERR: return "remote_access";
    case IBV_WC_REM_OP_ERR: return "remote_operation";
    case IBV_WC_RETRY_EXC_ERR: return "retry_exceeded";
    case IBV_WC_RNR_RETRY_EXC_ERR: return "rnr_retry_exceeded";
    case IBV_WC_LOC_RDD_VIOL_ERR: return "local_rdd_violation";
    case IBV_WC_REM_INV_RD_REQ_ERR: return "remote_invalid_rd_request";
    case IBV_WC_REM_ABORT_ERR: return "remote_abort";
    case IBV_WC_INV_EECN_ERR: return "invalid_eecn";
    case IBV_WC_INV_EEC_STATE_ERR: return "invalid_eec_state";
    case IBV_WC_FATAL_ERR: return "fatal";
    case IBV_WC_RESP_TIMEOUT_ERR: return "response_timeout";
    case IBV_WC_GENERAL_ERR: return "general";
    default: return "other";
  }
}

VerbsDevice::VerbsDevice(const VerbsOptions& options, VerbsOps& ops)
    : options_(options),
      ops_(ops),
      peers_(options.peers),
      recv_ring_(std::max<uint32_t>(options.rx_depth, 1)),
      send_ring_(std::max<uint32_t>(options.tx_depth, 1)),
      rx_frames_(counters_.add("verbs.rx.frames")),
      rx_bytes_(counters_.add("verbs.rx.bytes")),
      rx_no_buffer_(counters_.add("verbs.rx.no_buffer")),
      rx_own_loop_(counters_.add("verbs.rx.own_loop")),
      rx_drop_runt_(counters_.add("verbs.rx.drop.runt")),
      rx_drop_no_grh_(counters_.add("verbs.rx.drop.no_grh")),
      rx_drop_bad_grh_(counters_.add("verbs.rx.drop.bad_grh")),
      rx_drop_truncated_(counters_.add("verbs.rx.drop.truncated")),
      rx_drop_reserved_(counters_.add("verbs.rx.drop.reserved")),
      rx_drop_ethertype_(counters_.add("verbs.rx.drop.ethertype")),
      rx_drop_oversize_(counters_.add("verbs.rx.drop.oversize")),
      rx_flushed_(counters_.add("verbs.rx.flushed")),
      rx_post_failed_(counters_.add("verbs.rx.post_failed")),
      tx_frames_(counters_.add("verbs.tx.frames")),
      tx_bytes_(counters_.add("verbs.tx.bytes")),
      tx_drop_runt_(counters_.add("verbs.tx.drop.runt")),
      tx_drop_ethertype_(counters_.add("verbs.tx.drop.ethertype")),
      tx_drop_oversize_(counters_.add("verbs.tx.drop.oversize")),
      tx_drop_foreign_(counters_.add("verbs.tx.drop.foreign_buffer")),
      tx_drop_chained_(counters_.add("verbs.tx.drop.chained")),
      tx_drop_unknown_peer_(counters_.add("verbs.tx.drop.unknown_peer")),
      tx_drop_ah_failed_(counters_.add("verbs.tx.drop.ah_failed")),
      tx_drop_ring_full_(counters_.add("verbs.tx.drop.ring_full")),
      tx_drop_post_failed_(counters_.add("verbs.tx.drop.post_failed")),
      tx_drop_recovering_(counters_.add("verbs.tx.drop.recovering")),
      tx_drop_not_ready_(counters_.add("verbs.tx.drop.not_ready")),
      tx_flushed_(counters_.add("verbs.tx.flushed")),
      cq_stale_(counters_.add("verbs.cq.stale")),
      cq_poll_failed_(counters_.add("verbs.cq.poll_failed")),
      peer_learned_(counters_.add("verbs.peer.learned")),
      peer_changed_(counters_.add("verbs.peer.changed")),
      peer_evicted_(counters_.add("verbs.peer.evicted")),
      ah_created_(counters_.add("verbs.ah.created")),
      ah_destroyed_(counters_.add("verbs.ah.destroyed")),
      recover_started_(counters_.add("verbs.recover.started")),
      recover_ok_(counters_.add("verbs.recover.ok")),
      recover_failed_(counters_.add("verbs.recover.failed")),
      events_(counters_.add("verbs.events")) {
  retired_.reserve(options.peers + 1);
  for (int s = 1; s < kStatusSlots; ++s) {
    const char* name = verbs_wc_status_name(s);
    if (std::strcmp(name, "other") == 0 && s != kStatusSlots - 1) continue;
    rx_error_[s] = &counters_.add(std::string("verbs.rx.error.") + name);
    tx_error_[s] = &counters_.add(std::string("verbs.tx.error.") + name);
  }
}

VerbsDevice::OpenResult VerbsDevice::open(const VerbsOptions& options, VerbsOps& ops) {
  OpenResult r;
  std::unique_ptr<VerbsDevice> d(new VerbsDevice(options, ops));
  r.error = d->setup();
  if (r.error.empty()) r.device = std::move(d);
  return r;
}

std::string VerbsDevice::fail(const std::string& step, int err, const char* hint) const {
  std::string e = "verbs: " + (dev_name_.empty() ? std::string() : dev_name_ + ": ") + step + " failed: " + errno_text(err);
  if (hint) e += std::string(" (") + hint + ")";
  return e;
}

std::string VerbsDevice::setup() {
  // 1. The device.
  int num = 0;
  errno = 0;
  ibv_device** list = ops_.get_device_list(&num);
  if (!list) {
    const int err = errno;
    if (err == ENOSYS)
      return "verbs: no RDMA support in this kernel (ibv_get_device_list: " + errno_text(err) +
             "); soft-RoCE needs a kernel with rdma_rxe, see docs/hardware.md";
    return fail("ibv_get_device_list", err);
  }
  ibv_device* dev = nullptr;
  std::string seen;
  for (int i = 0; i < num && list[i]; ++i) {
    const char* name = ops_.get_device_name(list[i]);
    seen += (seen.empty() ? "" : ", ") + std::string(name ? name : "?");
    if (!dev && name && (options_.device.empty() || options_.device == name)) dev = list[i];
  }
  if (!dev) {
    ops_.free_device_list(list);
    if (seen.empty())
      return "verbs: no RDMA devices (for soft-RoCE: modprobe rdma_rxe; rdma link add rxe0 type rxe netdev "
             "IFNAME; docs/hardware.md)";
    return "verbs: no RDMA device named " + options_.device + " (found: " + seen + ")";
  }
  dev_name_ = ops_.get_device_name(dev);
  info_.name = "verbs:" + dev_name_;
  errno = 0;
  ctx_ = ops_.open_device(dev);
  const int open_err = errno;
  ops_.free_device_list(list);
  if (!ctx_)
    return fail("ibv_open_device", open_err,
                open_err == EACCES || open_err == EPERM ? "no access to /dev/infiniband/uverbs*" : nullptr);

  ibv_device_attr da{};
  if (int rc = ops_.query_device(ctx_, &da); rc != 0) return fail("ibv_query_device", rc);
  const bool mlx5 = dev_name_.rfind("mlx5", 0) == 0 ||
                    (da.vendor_id == kMellanoxVendorId && da.vendor_part_id >= kFirstMlx5PartId);
  if (mlx5 && !options_.allow_mlx5)
    return "verbs: " + dev_name_ + " is a ConnectX (mlx5): use SHUNT_DEVICE=mlx5:" + dev_name_ +
           " (its raw packet queues, no encapsulation), or add allow_mlx5=1 to carry IP in UD messages anyway";

  // 2. The port: up; its MTU.
  ibv_port_attr pa{};
  if (int rc = ops_.query_port(ctx_, options_.port, &pa); rc != 0)
    return fail("ibv_query_port(port " + std::to_string(options_.port) + ")", rc,
                rc == EINVAL ? "no such port" : nullptr);
  if (pa.state != IBV_PORT_ACTIVE)
    return "verbs: port " + std::to_string(options_.port) + " of " + dev_name_ + " is not active (state " +
           port_state_name(pa.state) + "): is its network interface up?";
  const uint32_t ib_mtu = ib_mtu_bytes(pa.active_mtu);
  if (ib_mtu == 0) return "verbs: port " + std::to_string(options_.port) + " of " + dev_name_ + " reports no active MTU";
  // The largest message body: the port's MTU less our header, and what a receive buffer holds
  // after the GRH (a message that does not fit would fail the receive and the QP).
  max_payload_ = std::min<uint32_t>(ib_mtu - kUdHeaderLen, uint32_t(PacketBuf::kCapacity - kGrhLen - kUdHeaderLen));
  if (options_.mtu) {
    if (options_.mtu > max_payload_)
      return "verbs: mtu=" + std::to_string(options_.mtu) + " is larger than " + dev_name_ + " carries (" +
             std::to_string(max_payload_) + ": active MTU " + std::to_string(ib_mtu) + " - " +
             std::to_string(kUdHeaderLen) + ")";
    max_payload_ = options_.mtu;
  }

  // 3. The GID: the IPv4-mapped one by default (RoCEv2 over IPv4; rxe: index 1).
  ibv_gid g{};
  if (options_.gid_index >= 0) {
    gid_index_ = options_.gid_index;
    if (gid_index_ >= pa.gid_tbl_len)
      return "verbs: gid=" + std::to_string(gid_index_) + ": port " + std::to_string(options_.port) + " of " +
             dev_name_ + " has " + std::to_string(pa.gid_tbl_len) + " GIDs";
    if (int rc = ops_.query_gid(ctx_, options_.port, gid_index_, &g); rc != 0)
      return fail("ibv_query_gid(" + std::to_string(gid_index_) + ")", rc);
  } else {
    gid_index_ = -1;
    ibv_gid first{};
    for (int i = 0; i < std::min(pa.gid_tbl_len, 256); ++i) {
      ibv_gid x{};
      if (ops_.query_gid(ctx_, options_.port, i, &x) != 0) continue;
      if (i == 0) first = x;
      if (from_ibv(x).is_v4_mapped() && !from_ibv(x).is_unspecified()) {
        gid_index_ = i;
        g = x;
        break;
      }
    }
    if (gid_index_ < 0) {
      gid_index_ = 0;
      g = first;
    }
  }
  gid_ = from_ibv(g);
  if (gid_.is_unspecified())
    return "verbs: GID " + std::to_string(gid_index_) + " of " + dev_name_ + " port " + std::to_string(options_.port) +
           " is empty (does its network interface have an address?)";
  ipv4_grh_ = gid_.is_v4_mapped();

  // 4. Protection domain, completion channel, CQs, the UD QP.
  errno = 0;
  pd_ = ops_.alloc_pd(ctx_);
  if (!pd_) return fail("ibv_alloc_pd", errno);
  errno = 0;
  channel_ = ops_.create_comp_channel(ctx_);
  if (!channel_) SHUNT_WARN("verbs: %s: no completion channel (%s): the stack busy-polls", dev_name_.c_str(), errno_text(errno).c_str());
  errno = 0;
  send_cq_ = ops_.create_cq(ctx_, int(send_ring_.capacity()), nullptr);
  if (!send_cq_) return fail("ibv_create_cq(send, " + std::to_string(send_ring_.capacity()) + ")", errno);
  errno = 0;
  recv_cq_ = ops_.create_cq(ctx_, int(recv_ring_.capacity()), channel_);
  if (!recv_cq_) return fail("ibv_create_cq(receive, " + std::to_string(recv_ring_.capacity()) + ")", errno);
  ibv_qp_init_attr qa{};
  qa.send_cq = send_cq_;
  qa.recv_cq = recv_cq_;
  qa.qp_type = IBV_QPT_UD;
  qa.sq_sig_all = 1;  // every send completes: its buffer goes back to the pool then
  qa.cap.max_send_wr = send_ring_.capacity();
  qa.cap.max_recv_wr = recv_ring_.capacity();
  qa.cap.max_send_sge = 1;
  qa.cap.max_recv_sge = 1;
  errno = 0;
  qp_ = ops_.create_qp(pd_, &qa);
  if (!qp_) return fail("ibv_create_qp(UD, " + std::to_string(send_ring_.capacity()) + "/" + std::to_string(recv_ring_.capacity()) + " WRs)", errno);
  qpn_ = qp_->qp_num & 0xffffff;
  if (std::string e = to_rts("open"); !e.empty()) return e;

  // 5. The broadcast group (IPoIB's): ARP requests and IPv4/IPv6 multicast reach every stack.
  const Gid group = group_gid(options_.group, ipv4_grh_);
  group_gid_ = to_ibv(group);
  if (int rc = ops_.attach_mcast(qp_, &group_gid_); rc != 0)
    return fail("ibv_attach_mcast(" + group.str() + ")", rc);
  group_attached_ = true;
  ibv_ah_attr aa{};
  aa.is_global = 1;
  aa.grh.dgid = group_gid_;
  aa.grh.sgid_index = uint8_t(gid_index_);
  aa.grh.hop_limit = 1;  // the group is link-local, as an Ethernet broadcast domain
  aa.port_num = options_.port;
  errno = 0;
  group_ah_ = ops_.create_ah(pd_, &aa);
  if (!group_ah_) return fail("ibv_create_ah(" + group.str() + ")", errno);
  if (ipv4_grh_) {
    // RoCEv2 multicast is UDP to the group's IPv4 address: the kernel's IP layer must accept it.
    group_fd_ = ops_.join_ipv4_group(options_.group, Ipv4Addr::read(gid_.b.data() + 12));
    if (group_fd_ < 0)
      SHUNT_WARN("verbs: %s: cannot join %s on %s (%s): ARP may not reach stacks on this host",
                 dev_name_.c_str(), options_.group.str().c_str(), Ipv4Addr::read(gid_.b.data() + 12).str().c_str(),
                 errno_text(errno).c_str());
  }

  info_.mac = ud_mac(gid_, qpn_);
  info_.mtu = max_payload_;
  SHUNT_INFO("verbs: %s port %u open: GID %d %s, QPN 0x%x, MAC %s, MTU %u", dev_name_.c_str(), unsigned(options_.port),
             gid_index_, gid_.str().c_str(), qpn_, info_.mac.str().c_str(), info_.mtu);
  return {};
}

std::string VerbsDevice::to_rts(const char* why) {
  ibv_qp_attr a{};
  a.qp_state = IBV_QPS_INIT;
  a.pkey_index = 0;
  a.port_num = options_.port;
  a.qkey = options_.qkey;
  const char* step = "ibv_modify_qp(INIT)";
  int rc = ops_.modify_qp(qp_, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_QKEY);
  if (rc == 0) {
    a = {};
    a.qp_state = IBV_QPS_RTR;
    step = "ibv_modify_qp(RTR)";
    rc = ops_.modify_qp(qp_, &a, IBV_QP_STATE);
  }
  if (rc == 0) {
    a = {};
    a.qp_state = IBV_QPS_RTS;
    a.sq_psn = 0;
    step = "ibv_modify_qp(RTS)";
    rc = ops_.modify_qp(qp_, &a, IBV_QP_STATE | IBV_QP_SQ_PSN);
  }
  if (rc == 0) return {};
  std::string e = fail(step, rc);
  if (std::strcmp(why, "open") != 0) e += std::string(" during ") + why;
  return e;
}

VerbsDevice::~VerbsDevice() {
  detach();
  if (qp_ && group_attached_) ops_.detach_mcast(qp_, &group_gid_);
  peers_.for_each_ah([&](void* ah) { ops_.destroy_ah(static_cast<ibv_ah*>(ah)); });
  peers_.clear_ahs();
  for (const RetiredAh& r : retired_) ops_.destroy_ah(r.ah);
  retired_.clear();
  if (group_ah_) ops_.destroy_ah(group_ah_);
  if (qp_) ops_.destroy_qp(qp_);
  if (recv_cq_) ops_.destroy_cq(recv_cq_);
  if (send_cq_) ops_.destroy_cq(send_cq_);
  if (channel_) ops_.destroy_comp_channel(channel_);
  if (pd_) ops_.dealloc_pd(pd_);
  if (ctx_) ops_.close_device(ctx_);
  ops_.close_fd(group_fd_);
}

void VerbsDevice::attach(BufferPool& pool) {
  pool_ = &pool;
  if (!pd_) return;
  errno = 0;
  // Once, the whole pool: receives land in it, sends are read from it.
  mr_ = ops_.reg_mr(pd_, const_cast<void*>(pool.memory()), pool.memory_size(), IBV_ACCESS_LOCAL_WRITE);
  if (!mr_) {
    const int err = errno;
    error_ = fail("ibv_reg_mr(" + std::to_string(pool.memory_size()) + " bytes)", err,
                  err == ENOMEM || err == EPERM || err == EAGAIN
                      ? "pinned memory is limited by RLIMIT_MEMLOCK: raise ulimit -l, see docs/hardware.md"
                      : nullptr);
    SHUNT_ERROR("%s", error_.c_str());
    return;
  }
  // Receives take at most a quarter of the pool: the stack needs the rest to send and queue.
  rx_target_ = std::min<uint32_t>(recv_ring_.capacity(), uint32_t(std::max<size_t>(pool.capacity() / 4, 1)));
  post_receives();
}

void VerbsDevice::detach() {
  if (qp_ && (recv_ring_.outstanding() || send_ring_.outstanding())) {
    // No more DMA into the pool: RESET drops every WR; then their buffers go back.
    ibv_qp_attr a{};
    a.qp_state = IBV_QPS_RESET;
    ops_.modify_qp(qp_, &a, IBV_QP_STATE);
    needs_recovery_ = true;  // a later attach() needs the QP ready again
  }
  recv_ring_.reclaim_all([](PacketBuf* b) { give_back(b); });
  send_ring_.reclaim_all([](PacketBuf* b) { give_back(b); });
  sends_done_ = sends_posted_;
  destroy_retired(true);
  if (mr_) ops_.dereg_mr(mr_);
  mr_ = nullptr;
  pool_ = nullptr;
}

int VerbsDevice::wait_fd() const { return channel_ ? channel_->fd : -1; }

void VerbsDevice::retire_ah(void* ah) {
  if (!ah) return;
  if (sends_done_ >= sends_posted_) {
    ops_.destroy_ah(static_cast<ibv_ah*>(ah));
    ++ah_destroyed_;
    return;
  }
  if (retired_.size() == retired_.capacity()) {
    // Never past the reserve: wait for the oldest sends first (rare: many peers replaced at once).
    destroy_retired(false);
    if (retired_.size() == retired_.capacity()) {
      ops_.destroy_ah(static_cast<ibv_ah*>(ah));  // the sends using it may fail: counted as errors
      ++ah_destroyed_;
      return;
    }
  }
  retired_.push_back({static_cast<ibv_ah*>(ah), sends_posted_});
}

void VerbsDevice::destroy_retired(bool all) {
  size_t kept = 0;
  for (const RetiredAh& r : retired_) {
    if (all || sends_done_ >= r.after_send) {
      ops_.destroy_ah(r.ah);
      ++ah_destroyed_;
    } else {
      retired_[kept++] = r;
    }
  }
  retired_.resize(kept);
}

void VerbsDevice::note_error(const ibv_wc& wc, bool send) {
  if (wc.status == IBV_WC_WR_FLUSH_ERR) {
    ++(send ? tx_flushed_ : rx_flushed_);
  } else {
    const int s = int(wc.status) > 0 && int(wc.status) < kStatusSlots ? int(wc.status) : kStatusSlots - 1;
    Counter* c = send ? tx_error_[s] : rx_error_[s];
    if (!c) c = send ? tx_error_[kStatusSlots - 1] : rx_error_[kStatusSlots - 1];
    ++*c;
    if (!needs_recovery_)
      SHUNT_WARN("verbs: %s: %s completion error %s (%d): recovering the QP", dev_name_.c_str(), send ? "send" : "receive",
                 verbs_wc_status_name(wc.status), int(wc.status));
  }
  // An error completion leaves the QP in the error state (IBA 10.8.3.1); flushes follow it.
  needs_recovery_ = true;
}

void VerbsDevice::reap_sends() {
  if (!send_cq_) return;
  for (;;) {
    const int got = ops_.poll_cq(send_cq_, kBatch, wc_);
    if (got < 0) {
      ++cq_poll_failed_;
      return;
    }
    for (int i = 0; i < got; ++i) {
      PacketBuf* b = send_ring_.complete(wc_[i].wr_id);
      if (!b) {
        ++cq_stale_;
        continue;
      }
      PacketPtr release(b);
      ++sends_done_;
      if (wc_[i].status != IBV_WC_SUCCESS) note_error(wc_[i], true);
    }
    if (got < kBatch) break;
  }
  if (!retired_.empty()) destroy_retired(false);
}

void VerbsDevice::drain_events() {
  // The channel says completions arrived on the receive CQ since it was armed.
  while (ops_.get_cq_event(channel_) == 0) {
    ++events_;
    armed_ = false;
  }
}

void VerbsDevice::post_receives() {
  if (!pool_ || !mr_ || needs_recovery_) return;
  while (recv_ring_.outstanding() < rx_target_) {
    int n = 0;
    while (n < kBatch && recv_ring_.outstanding() < rx_target_) {
      PacketPtr p = pool_->alloc(0);
      if (!p) {
        ++rx_no_buffer_;
        break;
      }
      PacketBuf* b = p.release();
      recv_sge_[n] = {reinterpret_cast<uint64_t>(b->data()), uint32_t(PacketBuf::kCapacity), mr_->lkey};
      recv_wr_[n] = {};
      recv_wr_[n].wr_id = recv_ring_.post(b);
      recv_wr_[n].sg_list = &recv_sge_[n];
      recv_wr_[n].num_sge = 1;
      if (n > 0) recv_wr_[n - 1].next = &recv_wr_[n];
      ++n;
    }
    if (n == 0) return;
    ibv_recv_wr* bad = nullptr;
    if (int rc = ops_.post_recv(qp_, recv_wr_, &bad); rc != 0) {
      // WRs from `bad` on were not posted: take their buffers back.
      for (ibv_recv_wr* w = bad ? bad : recv_wr_; w; w = w->next) {
        if (PacketBuf* b = recv_ring_.complete(w->wr_id)) give_back(b);
      }
      ++rx_post_failed_;
      SHUNT_WARN("verbs: %s: ibv_post_recv failed: %s: recovering the QP", dev_name_.c_str(), errno_text(rc).c_str());
      needs_recovery_ = true;
      return;
    }
    if (n < kBatch) return;
  }
}

size_t VerbsDevice::rx_burst(PacketPtr* out, size_t max) {
  // Send completions were reaped by service() at the start of this Stack::poll.
  if (!qp_ || !mr_ || !pool_ || needs_recovery_ || max == 0) return 0;
  const int got = ops_.poll_cq(recv_cq_, int(std::min<size_t>(max, kBatch)), wc_);
  if (got < 0) {
    ++cq_poll_failed_;
    return 0;
  }
  size_t n = 0;
  for (int i = 0; i < got; ++i) {
    const ibv_wc& wc = wc_[i];
    PacketBuf* b = recv_ring_.complete(wc.wr_id);
    if (!b) {
      ++cq_stale_;
      continue;
    }
    PacketPtr p(b);
    if (wc.status != IBV_WC_SUCCESS) {
      note_error(wc, false);
      continue;
    }
    if (wc.byte_len > PacketBuf::kCapacity) {
      ++rx_drop_oversize_;  // more than was posted: a device bug, never trusted
      continue;
    }
    RxFrame f = ud_to_ethernet(b->data(), wc.byte_len, (wc.wc_flags & IBV_WC_GRH) != 0, ipv4_grh_, wc.src_qp, info_.mac,
                               max_payload_);
    switch (f.error) {
      case RxFrame::Error::kNone: break;
      case RxFrame::Error::kRunt: ++rx_drop_runt_; continue;
      case RxFrame::Error::kNoGrh: ++rx_drop_no_grh_; continue;
      case RxFrame::Error::kBadGrh: ++rx_drop_bad_grh_; continue;
      case RxFrame::Error::kTruncated: ++rx_drop_truncated_; continue;
      case RxFrame::Error::kReserved: ++rx_drop_reserved_; continue;
      case RxFrame::Error::kEthertype: ++rx_drop_ethertype_; continue;
      case RxFrame::Error::kOversize: ++rx_drop_oversize_; continue;
    }
    const uint32_t src_qp = wc.src_qp & 0xffffff;
    if (src_qp == qpn_ && f.source == gid_) {
      ++rx_own_loop_;  // our own message to the group, delivered back to us
      continue;
    }
    PeerTable::Learned l = peers_.learn(f.source_mac, f.source, src_qp);
    if (l.inserted) ++peer_learned_;
    if (l.changed) ++peer_changed_;
    if (l.evicted) ++peer_evicted_;
    retire_ah(l.retired_ah);
    b->append(f.offset + f.len);
    b->pull(f.offset);
    ++rx_frames_;
    rx_bytes_.inc(f.len);
    out[n++] = std::move(p);
  }
  post_receives();
  return n;
}

void VerbsDevice::arm_wait() {
  // The owner is about to sleep on wait_fd(): an event on the next receive completion.
  if (channel_ && recv_cq_ && !armed_ && ops_.req_notify_cq(recv_cq_) == 0) armed_ = true;
}

void VerbsDevice::ack_wait() {
  if (channel_) drain_events();
}

size_t VerbsDevice::tx_burst(PacketPtr* frames, size_t count) {
  reap_sends();
  size_t sent = 0;
  int n = 0;
  auto flush = [&] {
    if (n == 0) return;
    ibv_send_wr* bad = nullptr;
    int posted = n;
    if (int rc = ops_.post_send(qp_, send_wr_, &bad); rc != 0) {
      posted = 0;
      for (ibv_send_wr* w = send_wr_; w && w != bad; w = w->next) ++posted;
      if (!bad) posted = 0;
      for (ibv_send_wr* w = bad ? bad : send_wr_; w; w = w->next) {
        if (PacketBuf* b = send_ring_.complete(w->wr_id)) give_back(b);
        ++tx_drop_post_failed_;
      }
      if (!needs_recovery_)
        SHUNT_WARN("verbs: %s: ibv_post_send failed: %s: recovering the QP", dev_name_.c_str(), errno_text(rc).c_str());
      needs_recovery_ = true;
    }
    sends_posted_ += uint64_t(posted);
    sent += size_t(posted);
    n = 0;
  };
  for (size_t i = 0; i < count; ++i) {
    PacketPtr f = std::move(frames[i]);
    if (!f) continue;
    if (needs_recovery_) {
      ++tx_drop_recovering_;
      continue;
    }
    if (!mr_ || !pool_) {
      ++tx_drop_not_ready_;
      continue;
    }
    if (f->pool() != pool_) {
      ++tx_drop_foreign_;  // not in the registered memory
      continue;
    }
    if (f->chain) {
      ++tx_drop_chained_;  // the stack sends one buffer per frame (it fragments to the MTU)
      continue;
    }
    const size_t frame_len = f->size();
    TxMessage m = ethernet_to_ud(f->data(), frame_len, max_payload_);
    switch (m.error) {
      case TxMessage::Error::kNone: break;
      case TxMessage::Error::kRunt: ++tx_drop_runt_; continue;
      case TxMessage::Error::kEthertype: ++tx_drop_ethertype_; continue;
      case TxMessage::Error::kOversize: ++tx_drop_oversize_; continue;
    }
    ibv_ah* ah = group_ah_;
    uint32_t qpn = kMulticastQpn;
    if (!m.group) {
      Peer* peer = peers_.find(m.destination);
      if (!peer) {
        ++tx_drop_unknown_peer_;  // never heard from: ARP/NDP resolve through the group first
        continue;
      }
      if (!peer->ah) {
        ibv_ah_attr aa{};
        aa.is_global = 1;
        aa.grh.dgid = to_ibv(peer->gid);
        aa.grh.sgid_index = uint8_t(gid_index_);
        aa.grh.hop_limit = 64;
        aa.port_num = options_.port;
        errno = 0;
        peer->ah = ops_.create_ah(pd_, &aa);
        if (!peer->ah) {
          ++tx_drop_ah_failed_;
          continue;
        }
        ++ah_created_;
      }
      ah = static_cast<ibv_ah*>(peer->ah);
      qpn = peer->qpn;
    }
    if (send_ring_.full()) {
      flush();
      reap_sends();
      if (send_ring_.full()) {
        ++tx_drop_ring_full_;
        continue;
      }
    }
    PacketBuf* b = f.release();
    send_sge_[n] = {reinterpret_cast<uint64_t>(b->data() + kTxMessageOffset), uint32_t(m.len), mr_->lkey};
    ibv_send_wr& w = send_wr_[n];
    w = {};
    w.wr_id = send_ring_.post(b);
    w.sg_list = &send_sge_[n];
    w.num_sge = 1;
    w.opcode = IBV_WR_SEND;
    w.send_flags = IBV_SEND_SIGNALED;
    w.wr.ud.ah = ah;
    w.wr.ud.remote_qpn = qpn;
    w.wr.ud.remote_qkey = options_.qkey;
    if (n > 0) send_wr_[n - 1].next = &w;
    ++n;
    ++tx_frames_;
    tx_bytes_.inc(frame_len);
    if (n == kBatch) flush();
  }
  flush();
  return sent;
}

bool VerbsDevice::recover() {
  ++recover_started_;
  // What completed before the error (and the flushes after it) goes back first.
  for (int guard = 0; guard < 1024; ++guard) {
    const int got = ops_.poll_cq(recv_cq_, kBatch, wc_);
    if (got <= 0) break;
    for (int i = 0; i < got; ++i) {
      if (PacketBuf* b = recv_ring_.complete(wc_[i].wr_id)) {
        give_back(b);
        if (wc_[i].status == IBV_WC_WR_FLUSH_ERR) ++rx_flushed_;
      } else {
        ++cq_stale_;
      }
    }
  }
  reap_sends();
  ibv_qp_attr a{};
  a.qp_state = IBV_QPS_RESET;
  if (int rc = ops_.modify_qp(qp_, &a, IBV_QP_STATE); rc != 0) {
    ++recover_failed_;
    SHUNT_ERROR("%s", fail("ibv_modify_qp(RESET) during recovery", rc).c_str());
    return false;
  }
  // RESET dropped every WR still queued: their buffers are ours again; their completions, if any
  // are still in the CQs, belong to the old generation and are ignored.
  recv_ring_.reclaim_all([](PacketBuf* b) { give_back(b); });
  send_ring_.reclaim_all([this](PacketBuf* b) {
    give_back(b);
    ++tx_flushed_;
  });
  sends_done_ = sends_posted_;
  destroy_retired(true);
  if (std::string e = to_rts("recovery"); !e.empty()) {
    ++recover_failed_;
    SHUNT_ERROR("%s", e.c_str());
    return false;
  }
  needs_recovery_ = false;
  armed_ = false;
  post_receives();
  if (needs_recovery_) {
    ++recover_failed_;
    return false;
  }
  ++recover_ok_;
  SHUNT_WARN("verbs: %s: QP 0x%x recovered (RESET -> INIT -> RTR -> RTS)", dev_name_.c_str(), qpn_);
  return true;
}

Nanos VerbsDevice::service(Nanos now) {
  if (!qp_) return kNever;
  reap_sends();
  if (!needs_recovery_ || !mr_) return kNever;
  if (now < retry_at_) return retry_at_;
  if (recover()) {
    backoff_ = 0;
    return kNever;
  }
  backoff_ = backoff_ ? std::min(backoff_ * 2, kMaxBackoff) : kFirstBackoff;
  retry_at_ = now + backoff_;
  return retry_at_;
}

}  // namespace shunt
