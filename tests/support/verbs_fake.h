// A fake of the rdma-core calls the verbs driver makes (verbs::VerbsOps), for unit tests on
// machines without an RDMA device: one device, any number of UD QPs that deliver to each other
// at once (unicast by QPN, multicast to every QP attached to the group, the sender included),
// with a RoCEv2/IPv4 GRH in front of each message as rxe writes it. Error injection: failed
// sends (an error completion that moves the QP to the error state and flushes its receives, as
// IBA 10.8.3.1 says), failed calls, raw messages. Only a test seam: the real driver runs over
// libibverbs (tests/integration/verbs_pingpong.cc in the soft-RoCE guest).
#pragma once
#include <infiniband/verbs.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "stack/driver/verbs/ud_wire.h"
#include "stack/driver/verbs/verbs_ops.h"

namespace shunt::test {

class FakeVerbs final : public verbs::VerbsOps {
 public:
  // --- What the device looks like.
  bool no_kernel = false;                       // ibv_get_device_list: NULL, ENOSYS
  std::vector<std::string> names{"rxe0"};
  uint32_t vendor_id = 0;                       // rxe reports 0xffffff; 0x02c9 is Mellanox
  ibv_port_state port_state = IBV_PORT_ACTIVE;
  ibv_mtu active_mtu = IBV_MTU_1024;
  std::vector<verbs::Gid> gids;                 // index 0 fe80::..., index 1 ::ffff:10.0.2.15
  int reg_mr_errno = 0;                         // reg_mr fails with it
  int modify_fail_state = -1;                   // this target state fails (EINVAL)
  int send_errors = 0;                          // the next N sends complete with LOC_PROT_ERR
  int sends_before_error = 0;                   // ... after this many good sends

  // --- What happened.
  std::vector<std::string> modify_log;          // "17:INIT", ...
  int live_ahs = 0, ahs_created = 0, joins = 0, closes = 0, mcast_attached = 0;
  uint64_t delivered = 0, dropped_no_wr = 0;

  FakeVerbs() {
    verbs::Gid ll;
    ll.b[0] = 0xfe;
    ll.b[1] = 0x80;
    ll.b[15] = 0x15;
    gids = {ll, verbs::ipv4_mapped_gid(Ipv4Addr{0x0a00020f})};
  }

  ibv_device** get_device_list(int* num) override {
    if (no_kernel) {
      errno = ENOSYS;
      return nullptr;
    }
    devs_.assign(names.size(), ibv_device{});
    list_.clear();
    for (size_t i = 0; i < names.size(); ++i) {
      std::snprintf(devs_[i].name, sizeof devs_[i].name, "%s", names[i].c_str());
      list_.push_back(&devs_[i]);
    }
    list_.push_back(nullptr);
    *num = int(names.size());
    return list_.data();
  }
  void free_device_list(ibv_device**) override {}
  const char* get_device_name(ibv_device* d) override { return d->name; }
  ibv_context* open_device(ibv_device*) override { return &ctx_; }
  int close_device(ibv_context*) override { return 0; }
  int query_device(ibv_context*, ibv_device_attr* a) override {
    *a = {};
    a->vendor_id = vendor_id;
    a->vendor_part_id = vendor_id == 0x02c9 ? 4119 : 0;
    return 0;
  }
  int query_port(ibv_context*, uint8_t port, ibv_port_attr* a) override {
    if (port != 1) return EINVAL;
    *a = {};
    a->state = port_state;
    a->active_mtu = active_mtu;
    a->gid_tbl_len = int(gids.size());
    a->link_layer = IBV_LINK_LAYER_ETHERNET;
    return 0;
  }
  int query_gid(ibv_context*, uint8_t, int index, ibv_gid* g) override {
    if (index < 0 || size_t(index) >= gids.size()) return EINVAL;
    std::memcpy(g->raw, gids[size_t(index)].b.data(), 16);
    return 0;
  }
  ibv_pd* alloc_pd(ibv_context*) override { return &pd_; }
  int dealloc_pd(ibv_pd*) override { return 0; }
  ibv_mr* reg_mr(ibv_pd*, void* addr, size_t len, int) override {
    if (reg_mr_errno) {
      errno = reg_mr_errno;
      return nullptr;
    }
    auto mr = std::make_unique<ibv_mr>();
    *mr = {};
    mr->addr = addr;
    mr->length = len;
    mr->lkey = 0x1000 + uint32_t(mrs_.size());
    mrs_.push_back(std::move(mr));
    return mrs_.back().get();
  }
  int dereg_mr(ibv_mr* mr) override {
    mr->length = 0;  // SGEs into it are refused from now on
    return 0;
  }
  ibv_comp_channel* create_comp_channel(ibv_context*) override {
    channel_.fd = -1;
    return &channel_;
  }
  int destroy_comp_channel(ibv_comp_channel*) override { return 0; }
  ibv_cq* create_cq(ibv_context*, int, ibv_comp_channel*) override {
    cqs_.push_back(std::make_unique<Cq>());
    return &cqs_.back()->cq;
  }
  int destroy_cq(ibv_cq*) override { return 0; }
  int req_notify_cq(ibv_cq*) override { return 0; }
  int get_cq_event(ibv_comp_channel*) override {
    errno = EAGAIN;
    return -1;
  }
  ibv_qp* create_qp(ibv_pd*, ibv_qp_init_attr* a) override {
    if (a->qp_type != IBV_QPT_UD) {
      errno = EOPNOTSUPP;
      return nullptr;
    }
    auto q = std::make_unique<Qp>();
    q->qp.qp_num = next_qpn_++;
    q->send_cq = cq_of(a->send_cq);
    q->recv_cq = cq_of(a->recv_cq);
    qps_.push_back(std::move(q));
    return &qps_.back()->qp;
  }
  int destroy_qp(ibv_qp* qp) override {
    qp_of(qp)->destroyed = true;
    return 0;
  }
  int modify_qp(ibv_qp* qp, ibv_qp_attr* a, int) override {
    static const char* names_[] = {"RESET", "INIT", "RTR", "RTS", "SQD", "SQE", "ERR"};
    modify_log.push_back(std::to_string(qp->qp_num) + ":" + names_[a->qp_state]);
    if (int(a->qp_state) == modify_fail_state) return EINVAL;
    Qp* q = qp_of(qp);
    if (a->qp_state == IBV_QPS_RESET) q->rq.clear();  // WRs dropped without completions
    if (a->qp_state == IBV_QPS_INIT) q->qkey = a->qkey;
    q->state = a->qp_state;
    return 0;
  }
  ibv_ah* create_ah(ibv_pd*, ibv_ah_attr* a) override {
    auto ah = std::make_unique<Ah>();
    ah->attr = *a;
    ++live_ahs;
    ++ahs_created;
    ahs_.push_back(std::move(ah));
    return &ahs_.back()->ah;
  }
  int destroy_ah(ibv_ah*) override {
    --live_ahs;
    return 0;
  }
  int attach_mcast(ibv_qp* qp, const ibv_gid* g) override {
    qp_of(qp)->groups.insert(verbs::Gid::read(g->raw));
    ++mcast_attached;
    return 0;
  }
  int detach_mcast(ibv_qp* qp, const ibv_gid* g) override {
    qp_of(qp)->groups.erase(verbs::Gid::read(g->raw));
    --mcast_attached;
    return 0;
  }
  int post_recv(ibv_qp* qp, ibv_recv_wr* wr, ibv_recv_wr** bad) override {
    Qp* q = qp_of(qp);
    for (; wr; wr = wr->next) {
      if (q->state == IBV_QPS_RESET || wr->num_sge != 1) {
        *bad = wr;
        return EINVAL;
      }
      if (q->state == IBV_QPS_ERR) {
        push(q->recv_cq, wr->wr_id, IBV_WC_WR_FLUSH_ERR);
        continue;
      }
      q->rq.push_back({wr->wr_id, wr->sg_list[0]});
    }
    return 0;
  }
  int post_send(ibv_qp* qp, ibv_send_wr* wr, ibv_send_wr** bad) override {
    Qp* q = qp_of(qp);
    for (; wr; wr = wr->next) {
      if (q->state != IBV_QPS_RTS && q->state != IBV_QPS_ERR) {
        *bad = wr;
        return EINVAL;
      }
      if (q->state == IBV_QPS_ERR) {
        push(q->send_cq, wr->wr_id, IBV_WC_WR_FLUSH_ERR);
        continue;
      }
      if (send_errors > 0 && sends_before_error-- <= 0) {
        --send_errors;
        push(q->send_cq, wr->wr_id, IBV_WC_LOC_PROT_ERR);
        to_error(q);
        continue;
      }
      const Ah* ah = reinterpret_cast<const Ah*>(wr->wr.ud.ah);
      const verbs::Gid dgid = verbs::Gid::read(ah->attr.grh.dgid.raw);
      const uint8_t* msg = reinterpret_cast<const uint8_t*>(wr->sg_list[0].addr);
      const size_t len = wr->sg_list[0].length;
      if (!in_mr(wr->sg_list[0])) {
        push(q->send_cq, wr->wr_id, IBV_WC_LOC_PROT_ERR);
        to_error(q);
        continue;
      }
      const bool multicast = wr->wr.ud.remote_qpn == verbs::kMulticastQpn;
      for (auto& d : qps_) {
        if (d->destroyed || (d->state != IBV_QPS_RTR && d->state != IBV_QPS_RTS)) continue;
        if (multicast ? !d->groups.count(dgid) : d->qp.qp_num != wr->wr.ud.remote_qpn) continue;
        if (d->qkey != wr->wr.ud.remote_qkey) continue;  // IBA 10.2.4: Q_Key mismatch, dropped
        deliver(d.get(), msg, len, q->qp.qp_num, true, dgid);
      }
      push(q->send_cq, wr->wr_id, IBV_WC_SUCCESS);
    }
    return 0;
  }
  int poll_cq(ibv_cq* cq, int n, ibv_wc* wc) override {
    Cq* c = cq_of(cq);
    int got = 0;
    while (got < n && !c->wcs.empty()) {
      wc[got++] = c->wcs.front();
      c->wcs.pop_front();
    }
    return got;
  }
  int join_ipv4_group(Ipv4Addr, Ipv4Addr) override {
    ++joins;
    return 1000;
  }
  void close_fd(int fd) override {
    if (fd >= 0) ++closes;
  }

  // --- Test helpers.
  // Puts a raw message (with a GRH from 10.0.2.15 when `grh`) into QP `qpn`'s next receive, as
  // if QP `src_qp` had sent it.
  bool inject(uint32_t qpn, const uint8_t* msg, size_t len, uint32_t src_qp, bool grh = true) {
    for (auto& d : qps_)
      if (d->qp.qp_num == qpn) return deliver(d.get(), msg, len, src_qp, grh, gids[1]);
    return false;
  }
  // Completes QP `qpn`'s next receive with `status`, as a device error would.
  void fail_next_receive(uint32_t qpn, ibv_wc_status status) {
    for (auto& d : qps_) {
      if (d->qp.qp_num != qpn || d->rq.empty()) continue;
      push(d->recv_cq, d->rq.front().wr_id, status);
      d->rq.pop_front();
      to_error(d.get());
    }
  }
  size_t posted_receives(uint32_t qpn) const {
    for (auto& d : qps_)
      if (d->qp.qp_num == qpn) return d->rq.size();
    return 0;
  }
  uint32_t last_qpn() const { return next_qpn_ - 1; }

 private:
  struct Cq {
    ibv_cq cq{};
    std::deque<ibv_wc> wcs;
  };
  struct RecvWr {
    uint64_t wr_id;
    ibv_sge sge;
  };
  struct Qp {
    ibv_qp qp{};
    Cq* send_cq = nullptr;
    Cq* recv_cq = nullptr;
    ibv_qp_state state = IBV_QPS_RESET;
    uint32_t qkey = 0;
    std::deque<RecvWr> rq;
    std::set<verbs::Gid> groups;
    bool destroyed = false;
  };
  struct Ah {
    ibv_ah ah{};
    ibv_ah_attr attr{};
  };

  Cq* cq_of(ibv_cq* cq) { return reinterpret_cast<Cq*>(cq); }  // cq is Cq's first member
  Qp* qp_of(ibv_qp* qp) { return reinterpret_cast<Qp*>(qp); }
  bool in_mr(const ibv_sge& s) const {
    for (const auto& mr : mrs_) {
      const auto* base = static_cast<const uint8_t*>(mr->addr);
      const auto* p = reinterpret_cast<const uint8_t*>(s.addr);
      if (s.lkey == mr->lkey && p >= base && p + s.length <= base + mr->length) return true;
    }
    return false;
  }
  void push(Cq* cq, uint64_t wr_id, ibv_wc_status status, uint32_t byte_len = 0, uint32_t src_qp = 0, bool grh = false) {
    ibv_wc wc{};
    wc.wr_id = wr_id;
    wc.status = status;
    wc.byte_len = byte_len;
    wc.src_qp = src_qp;
    wc.wc_flags = grh ? IBV_WC_GRH : 0;
    cq->wcs.push_back(wc);
  }
  void to_error(Qp* q) {
    q->state = IBV_QPS_ERR;
    for (const RecvWr& r : q->rq) push(q->recv_cq, r.wr_id, IBV_WC_WR_FLUSH_ERR);
    q->rq.clear();
  }
  bool deliver(Qp* d, const uint8_t* msg, size_t len, uint32_t src_qp, bool grh, const verbs::Gid& dgid) {
    if (d->rq.empty()) {
      ++dropped_no_wr;  // UD: no receive posted, the message is gone
      return false;
    }
    RecvWr r = d->rq.front();
    d->rq.pop_front();
    if (!in_mr(r.sge) || r.sge.length < verbs::kGrhLen + len) {
      push(d->recv_cq, r.wr_id, IBV_WC_LOC_LEN_ERR);
      to_error(d);
      return false;
    }
    auto* p = reinterpret_cast<uint8_t*>(r.sge.addr);
    std::memset(p, 0, verbs::kGrhLen);
    if (grh) {
      // RoCEv2/IPv4 as rxe writes it: 20 zero bytes, then the IPv4 header of the packet.
      p[20] = 0x45;
      p[28] = 1;  // TTL
      p[29] = 17;
      std::memcpy(p + 32, gids[1].b.data() + 12, 4);
      std::memcpy(p + 36, dgid.b.data() + 12, 4);
    }
    std::memcpy(p + verbs::kGrhLen, msg, len);
    push(d->recv_cq, r.wr_id, IBV_WC_SUCCESS, uint32_t(verbs::kGrhLen + len), src_qp, grh);
    ++delivered;
    return true;
  }

  ibv_context ctx_{};
  ibv_pd pd_{};
  ibv_comp_channel channel_{};
  std::vector<ibv_device> devs_;
  std::vector<ibv_device*> list_;
  std::vector<std::unique_ptr<ibv_mr>> mrs_;
  std::vector<std::unique_ptr<Cq>> cqs_;
  std::vector<std::unique_ptr<Qp>> qps_;
  std::vector<std::unique_ptr<Ah>> ahs_;
  uint32_t next_qpn_ = 17;
};

}  // namespace shunt::test
