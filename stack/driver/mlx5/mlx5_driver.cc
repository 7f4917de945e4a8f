#include "stack/driver/mlx5/mlx5_driver.h"

#include <algorithm>
#include <atomic>
#include <utility>

#include "stack/core/log.h"

namespace shunt {

namespace {

constexpr size_t kEthHeaderBytes = 14;
// A WQE of 63 units spans 16 WQEBBs: the smallest send queue that holds any WQE.
constexpr uint32_t kMinSqWqebbs = (kMlx5MaxDs + 3) / 4;
// WQE indices and wqe_counter are 16 bits: a ring larger than that could not be told apart.
constexpr uint32_t kMaxRing = 1u << 16;

uint32_t round_up_pow2(uint64_t v) {
  uint64_t r = 1;
  while (r < v && r < kMaxRing) r <<= 1;
  return uint32_t(r);
}

bool is_pow2(uint32_t v) { return v && !(v & (v - 1)); }

}  // namespace

Mlx5DriverOptions Mlx5DriverOptions::from(const Config& c) {
  Mlx5DriverOptions o;
  o.sizes.sq_wqebbs = round_up_pow2(uint64_t(std::max<int64_t>(c.mlx5_sq_size, 1)));
  o.sizes.rq_wqes = round_up_pow2(uint64_t(std::max<int64_t>(c.mlx5_rq_size, 1)));
  o.sizes.send_cqes = o.sizes.sq_wqebbs;
  o.sizes.recv_cqes = o.sizes.rq_wqes;
  o.inline_threshold = uint32_t(std::clamp<int64_t>(c.mlx5_inline, 0, kMlx5MaxInlineFrame));
  o.sizes.max_inline = o.inline_threshold;
  o.signal_every = uint32_t(std::max<int64_t>(c.mlx5_tx_signal_every, 1));
  o.blueflame = c.mlx5_blueflame != 0;
  return o;
}

Mlx5Driver::Mlx5Driver(Mlx5Binding& binding, const Mlx5DriverOptions& options)
    : binding_(binding),
      options_(options),
      tx_frames_(counters_.add("mlx5.tx.frames")),
      tx_bytes_(counters_.add("mlx5.tx.bytes")),
      tx_inline_(counters_.add("mlx5.tx.inline")),
      tx_doorbells_(counters_.add("mlx5.tx.doorbells")),
      tx_blueflame_(counters_.add("mlx5.tx.blueflame")),
      tx_completions_(counters_.add("mlx5.tx.completions")),
      tx_flushed_(counters_.add("mlx5.tx.flushed")),
      tx_bad_wqe_counter_(counters_.add("mlx5.tx.bad_wqe_counter")),
      tx_bad_opcode_(counters_.add("mlx5.tx.bad_opcode")),
      tx_drop_not_ready_(counters_.add("mlx5.tx.drop.not_ready")),
      tx_drop_sq_full_(counters_.add("mlx5.tx.drop.sq_full")),
      tx_drop_runt_(counters_.add("mlx5.tx.drop.runt")),
      tx_drop_too_many_segments_(counters_.add("mlx5.tx.drop.too_many_segments")),
      tx_drop_unregistered_(counters_.add("mlx5.tx.drop.unregistered")),
      rx_frames_(counters_.add("mlx5.rx.frames")),
      rx_bytes_(counters_.add("mlx5.rx.bytes")),
      rx_no_buffer_(counters_.add("mlx5.rx.no_buffer")),
      rx_drop_oversize_(counters_.add("mlx5.rx.drop.oversize")),
      rx_drop_runt_(counters_.add("mlx5.rx.drop.runt")),
      rx_drop_bad_wqe_counter_(counters_.add("mlx5.rx.drop.bad_wqe_counter")),
      rx_drop_bad_opcode_(counters_.add("mlx5.rx.drop.bad_opcode")),
      err_local_length_(counters_.add("mlx5.err.local_length")),
      err_local_qp_op_(counters_.add("mlx5.err.local_qp_op")),
      err_local_prot_(counters_.add("mlx5.err.local_prot")),
      err_wr_flush_(counters_.add("mlx5.err.wr_flush")),
      err_local_access_(counters_.add("mlx5.err.local_access")),
      err_bad_resp_(counters_.add("mlx5.err.bad_resp")),
      err_other_(counters_.add("mlx5.err.other")),
      recoveries_(counters_.add("mlx5.recoveries")),
      recover_failed_(counters_.add("mlx5.recover_failed")) {
  Mlx5QueueSizes sizes = options.sizes;
  sizes.sq_wqebbs = round_up_pow2(std::max(sizes.sq_wqebbs, kMinSqWqebbs));
  sizes.rq_wqes = round_up_pow2(std::max<uint32_t>(sizes.rq_wqes, 1));
  sizes.send_cqes = round_up_pow2(std::max(sizes.send_cqes, sizes.sq_wqebbs));
  sizes.recv_cqes = round_up_pow2(std::max(sizes.recv_cqes, sizes.rq_wqes));
  sizes.max_inline =
      std::min(std::max(sizes.max_inline, options.inline_threshold), kMlx5MaxInlineFrame);
  options_.sizes = sizes;
  max_inline_ = sizes.max_inline;
  inline_threshold_ = std::min(options.inline_threshold, max_inline_);
  signal_every_ = std::max<uint32_t>(options.signal_every, 1);

  std::string err = binding_.open(sizes, rings_);
  if (!err.empty()) {
    fail(std::move(err));
    return;
  }
  err = check_rings();
  if (!err.empty()) {
    fail("mlx5: the binding's rings are unusable: " + err);
    return;
  }
  sq_buf_ = rings_.sq.buf;
  sq_size_ = rings_.sq.wqe_cnt;
  sq_mask_ = sq_size_ - 1;
  sq_half_ = sq_size_ / 2;
  rq_buf_ = rings_.rq.buf;
  rq_size_ = rings_.rq.wqe_cnt;
  rq_mask_ = rq_size_ - 1;
  rq_stride_ = rings_.rq.stride;
  send_cq_ = Cq{rings_.send_cq.buf, rings_.send_cq.dbrec, rings_.send_cq.cqe_cnt, 0};
  recv_cq_ = Cq{rings_.recv_cq.buf, rings_.recv_cq.dbrec, rings_.recv_cq.cqe_cnt, 0};
  tx_slots_.assign(sq_size_, TxSlot{});
  rx_slots_.assign(rq_size_, nullptr);
  // As libmlx5 creates a CQ: every entry invalid, owner bit 0 (software's first lap expects 0).
  for (Cq* cq : {&send_cq_, &recv_cq_}) {
    for (uint32_t i = 0; i < cq->cnt; ++i) {
      auto* cqe = reinterpret_cast<mlx5_cqe64*>(cq->buf + size_t(i) * sizeof(mlx5_cqe64));
      cqe->op_own = uint8_t(MLX5_CQE_INVALID << 4);
    }
    cq->dbrec[kMlx5CqSetCi] = 0;
  }
  reset_queues();
  ok_ = true;
}

Mlx5Driver::~Mlx5Driver() {
  release_tx();
  release_rx();
}

std::string Mlx5Driver::check_rings() const {
  const Mlx5Rings& r = rings_;
  if (!r.dbrec) return "no doorbell record";
  if (!r.sq.buf || !is_pow2(r.sq.wqe_cnt) || r.sq.wqe_cnt < kMinSqWqebbs || r.sq.wqe_cnt > kMaxRing)
    return "send queue of " + std::to_string(r.sq.wqe_cnt) + " WQEBBs (need a power of two from " +
           std::to_string(kMinSqWqebbs) + " to 65536)";
  if (r.sq.stride != MLX5_SEND_WQE_BB)
    return "send queue stride " + std::to_string(r.sq.stride) + " (need 64)";
  if (!r.rq.buf || !is_pow2(r.rq.wqe_cnt) || r.rq.wqe_cnt > kMaxRing)
    return "receive queue of " + std::to_string(r.rq.wqe_cnt) +
           " WQEs (need a power of two up to 65536)";
  if (r.rq.stride < sizeof(mlx5_wqe_data_seg) || r.rq.stride % sizeof(mlx5_wqe_data_seg))
    return "receive queue stride " + std::to_string(r.rq.stride) + " (need a multiple of 16)";
  const Mlx5Rings::CompletionQueue* cqs[] = {&r.send_cq, &r.recv_cq};
  for (const auto* cq : cqs) {
    const char* which = cq == &r.send_cq ? "send" : "receive";
    if (!cq->buf || !cq->dbrec || !is_pow2(cq->cqe_cnt))
      return std::string(which) + " CQ of " + std::to_string(cq->cqe_cnt) +
             " CQEs (need a power of two)";
    if (cq->cqe_size != sizeof(mlx5_cqe64))
      return std::string(which) + " CQE size " + std::to_string(cq->cqe_size) + " (need 64)";
  }
  // At most one CQE per WQE is ever outstanding: the CQs must hold one per WQE.
  if (r.send_cq.cqe_cnt < r.sq.wqe_cnt)
    return "send CQ of " + std::to_string(r.send_cq.cqe_cnt) + " CQEs for " +
           std::to_string(r.sq.wqe_cnt) + " WQEBBs";
  if (r.recv_cq.cqe_cnt < r.rq.wqe_cnt)
    return "receive CQ of " + std::to_string(r.recv_cq.cqe_cnt) + " CQEs for " +
           std::to_string(r.rq.wqe_cnt) + " WQEs";
  return {};
}

void Mlx5Driver::fail(std::string why) {
  ok_ = false;
  error_ = std::move(why);
}

void Mlx5Driver::reset_queues() {
  sq_pi_ = sq_ci_ = 0;
  since_signal_ = 0;
  tx_outstanding_ = 0;
  rq_pi_ = rq_ci_ = 0;
  rx_deficit_ = 0;
  std::atomic_thread_fence(std::memory_order_release);
  rings_.dbrec[MLX5_RCV_DBR] = 0;
  rings_.dbrec[MLX5_SND_DBR] = 0;
}

void Mlx5Driver::attach(BufferPool& pool) {
  pool_ = &pool;
  if (!ok_ || attached_) return;
  std::string err;
  std::optional<uint32_t> lkey = binding_.register_memory(pool.memory(), pool.memory_size(), err);
  if (!lkey) {
    fail("mlx5: cannot register the packet buffer pool for DMA: " +
         (err.empty() ? std::string("no reason given") : err));
    return;
  }
  registered_.begin = reinterpret_cast<uintptr_t>(pool.memory());
  registered_.end = registered_.begin + pool.memory_size();
  registered_.lkey = *lkey;
  attached_ = true;
  rx_deficit_ = rq_size_;
  refill_rx();
  if (rx_deficit_) rx_no_buffer_.inc(rx_deficit_);
}

void Mlx5Driver::detach() {
  if (attached_ && ok_) {
    // The rings point into the pool: the NIC must drop them before the buffers go back.
    if (binding_.recover()) {
      drain_cq(send_cq_);
      drain_cq(recv_cq_);
    } else {
      ++recover_failed_;
      fail("mlx5: the queue pair could not be reset when the buffer pool was detached");
    }
  }
  release_tx();
  release_rx();
  if (ok_) reset_queues();
  attached_ = false;
  registered_ = Mlx5Registered{};
  pool_ = nullptr;
}

// --- Receive ---------------------------------------------------------------------------------

void Mlx5Driver::post_rx(PacketBuf* b) {
  const uint32_t idx = rq_pi_ & rq_mask_;
  rx_slots_[idx] = b;
  auto* seg = reinterpret_cast<mlx5_wqe_data_seg*>(rq_buf_ + size_t(idx) * rq_stride_);
  mlx5dv_set_data_seg(seg, uint32_t(b->tailroom()), registered_.lkey,
                      reinterpret_cast<uintptr_t>(b->data()));
  if (rq_stride_ > sizeof(mlx5_wqe_data_seg)) {
    // libmlx5 mlx5_post_recv: a WQE with fewer segments than its stride ends with an invalid one.
    seg[1].byte_count = 0;
    seg[1].lkey = htobe32(MLX5_INVALID_LKEY);
    seg[1].addr = 0;
  }
  ++rq_pi_;
}

void Mlx5Driver::ring_rx_doorbell() {
  // The WQEs are visible before the counter that hands them over.
  std::atomic_thread_fence(std::memory_order_release);
  rings_.dbrec[MLX5_RCV_DBR] = htobe32(rq_pi_ & 0xffff);
}

void Mlx5Driver::refill_rx() {
  bool posted = false;
  while (rx_deficit_) {
    PacketPtr p = pool_->alloc(0);
    if (!p) break;
    post_rx(p.release());
    --rx_deficit_;
    posted = true;
  }
  if (posted) ring_rx_doorbell();
}

size_t Mlx5Driver::rx_burst(PacketPtr* out, size_t max) {
  if (!ok_ || !attached_) return 0;
  // Send completions are reaped here too, so buffers come back (and send errors are seen)
  // while nothing is being sent.
  if (sq_pi_ != sq_ci_) {
    poll_send_cq();
    if (!ok_) return 0;
  }
  if (rx_deficit_ && pool_->available()) refill_rx();

  Cq& cq = recv_cq_;
  uint32_t ci = cq.ci;
  size_t n = 0;
  bool reposted = false;
  for (uint32_t budget = cq.cnt; n < max && budget; --budget) {
    const uint8_t op_own = mlx5_cqe_ready(cq.buf, cq.cnt, ci);
    if (op_own == 0xff) break;
    const mlx5_cqe64* cqe = mlx5_cqe_at(cq.buf, cq.cnt, ci);
    const uint8_t opcode = mlx5_cqe_opcode(op_own);
    ++ci;
    if (opcode != MLX5_CQE_RESP_SEND) {
      if (opcode == MLX5_CQE_RESP_ERR || opcode == MLX5_CQE_REQ_ERR) {
        cq.ci = ci;
        update_ci(cq);
        if (reposted) ring_rx_doorbell();
        on_error_cqe(reinterpret_cast<const uint8_t*>(cqe), "receive");
        return n;
      }
      ++rx_drop_bad_opcode_;
      continue;
    }
    if (rq_ci_ == rq_pi_) {  // a completion for a WQE never posted: no buffer to read
      ++rx_drop_bad_wqe_counter_;
      continue;
    }
    const uint32_t idx = rq_ci_ & rq_mask_;
    PacketBuf* b = rx_slots_[idx];
    rx_slots_[idx] = nullptr;
    const uint32_t wqe_counter = be16toh(cqe->wqe_counter);
    const uint32_t len = be32toh(cqe->byte_cnt);
    const bool expected_wqe = ((wqe_counter ^ rq_ci_) & rq_mask_) == 0;
    ++rq_ci_;
    reposted = true;
    if (!expected_wqe || len > b->tailroom() || len < kEthHeaderBytes) [[unlikely]] {
      if (!expected_wqe) {
        ++rx_drop_bad_wqe_counter_;
      } else if (len > b->tailroom()) {
        ++rx_drop_oversize_;
      } else {
        ++rx_drop_runt_;
      }
      post_rx(b);  // the same buffer goes back to the NIC
      continue;
    }
    b->append(len);
    b->flags = mlx5_rx_checksum_flags(*cqe);
    ++rx_frames_;
    rx_bytes_.inc(len);
    out[n++] = PacketPtr(b);
    PacketPtr fresh = pool_->alloc(0);
    if (fresh) [[likely]] {
      post_rx(fresh.release());
    } else {
      ++rx_no_buffer_;
      ++rx_deficit_;
    }
  }
  if (ci != cq.ci) {
    cq.ci = ci;
    update_ci(cq);
  }
  if (reposted) ring_rx_doorbell();
  return n;
}

// --- Transmit --------------------------------------------------------------------------------

void Mlx5Driver::ring_tx_doorbell(const mlx5_wqe_ctrl_seg* last, size_t bf_bytes) {
  // libmlx5 post_send_db(): WQEs, barrier, doorbell record, barrier, MMIO.
  std::atomic_thread_fence(std::memory_order_release);
  rings_.dbrec[MLX5_SND_DBR] = htobe32(sq_pi_ & 0xffff);
  std::atomic_thread_fence(std::memory_order_release);
  binding_.ring_send_doorbell(last, bf_bytes);
  ++tx_doorbells_;
  if (bf_bytes) ++tx_blueflame_;
}

size_t Mlx5Driver::tx_burst(PacketPtr* frames, size_t n) {
  if (!ok_) [[unlikely]] {
    for (size_t i = 0; i < n; ++i) {
      if (frames[i]) {
        frames[i].reset();
        ++tx_drop_not_ready_;
      }
    }
    return 0;
  }
  if (sq_pi_ != sq_ci_) poll_send_cq();

  size_t sent = 0;
  const mlx5_wqe_ctrl_seg* last = nullptr;
  uint32_t burst_wqes = 0;
  uint32_t last_wqebbs = 0;
  bool last_wraps = false;
  for (size_t i = 0; i < n; ++i) {
    PacketPtr f = std::move(frames[i]);
    if (!f) continue;
    if (!ok_) [[unlikely]] {  // recovery failed during this burst
      ++tx_drop_not_ready_;
      continue;
    }
    const Mlx5SendPlan plan = mlx5_plan_send(*f, inline_threshold_, max_inline_, registered_);
    if (plan.verdict != Mlx5SendPlan::Verdict::kOk) [[unlikely]] {
      switch (plan.verdict) {
        case Mlx5SendPlan::Verdict::kRunt:
          ++tx_drop_runt_;
          break;
        case Mlx5SendPlan::Verdict::kTooManySegments:
          ++tx_drop_too_many_segments_;
          break;
        default:
          ++tx_drop_unregistered_;
          break;
      }
      continue;
    }
    if (sq_size_ - (sq_pi_ - sq_ci_) < plan.wqebbs) [[unlikely]] {
      // Let the NIC at what is written so far, then reap what it has finished.
      if (burst_wqes) {
        ring_tx_doorbell(last, 0);
        burst_wqes = 0;
      }
      poll_send_cq();
      if (!ok_) {
        ++tx_drop_not_ready_;
        continue;
      }
      if (sq_size_ - (sq_pi_ - sq_ci_) < plan.wqebbs) {
        ++tx_drop_sq_full_;
        continue;
      }
    }
    // Completion moderation: a CQE every signal_every WQEs, and for every WQE once the SQ is
    // more than half full, so space always comes back.
    uint8_t fm_ce_se = 0;
    if (++since_signal_ >= signal_every_ || sq_pi_ + plan.wqebbs - sq_ci_ > sq_half_) {
      fm_ce_se = MLX5_WQE_CTRL_CQ_UPDATE;
      since_signal_ = 0;
    }
    last = mlx5_write_send_wqe(sq_buf_, sq_size_, sq_pi_, rings_.qpn, plan, *f, registered_.lkey,
                               fm_ce_se);
    TxSlot& slot = tx_slots_[sq_pi_ & sq_mask_];
    slot.wqebbs = plan.wqebbs;
    if (plan.all_inline) {
      slot.frame = nullptr;  // its bytes are in the WQE: `f` goes back to its pool now
      ++tx_inline_;
    } else {
      slot.frame = f.release();
    }
    last_wraps = (sq_pi_ & sq_mask_) + plan.wqebbs > sq_size_;
    sq_pi_ += plan.wqebbs;
    last_wqebbs = plan.wqebbs;
    ++tx_outstanding_;
    ++burst_wqes;
    ++tx_frames_;
    tx_bytes_.inc(plan.frame_bytes);
    ++sent;
  }
  if (burst_wqes) {
    size_t bf_bytes = 0;
    const size_t wqe_bytes = size_t(last_wqebbs) * MLX5_SEND_WQE_BB;
    if (options_.blueflame && burst_wqes == 1 && !last_wraps && wqe_bytes <= rings_.bf_size)
      bf_bytes = wqe_bytes;
    ring_tx_doorbell(last, bf_bytes);
  }
  return sent;
}

void Mlx5Driver::update_ci(Cq& cq) {
  // The CQEs are read before the NIC may reuse them.
  std::atomic_thread_fence(std::memory_order_release);
  cq.dbrec[kMlx5CqSetCi] = htobe32(cq.ci & 0xffffff);
}

void Mlx5Driver::poll_send_cq() {
  Cq& cq = send_cq_;
  uint32_t ci = cq.ci;
  for (uint32_t budget = cq.cnt; budget; --budget) {
    const uint8_t op_own = mlx5_cqe_ready(cq.buf, cq.cnt, ci);
    if (op_own == 0xff) break;
    const mlx5_cqe64* cqe = mlx5_cqe_at(cq.buf, cq.cnt, ci);
    const uint8_t opcode = mlx5_cqe_opcode(op_own);
    ++ci;
    if (opcode == MLX5_CQE_REQ) [[likely]] {
      ++tx_completions_;
      complete_sends(be16toh(cqe->wqe_counter));
    } else if (opcode == MLX5_CQE_REQ_ERR || opcode == MLX5_CQE_RESP_ERR) {
      cq.ci = ci;
      update_ci(cq);
      on_error_cqe(reinterpret_cast<const uint8_t*>(cqe), "send");
      return;
    } else {
      ++tx_bad_opcode_;
    }
  }
  if (ci != cq.ci) {
    cq.ci = ci;
    update_ci(cq);
  }
}

void Mlx5Driver::complete_sends(uint16_t wqe_counter) {
  // libmlx5 mlx5_poll_one (MLX5_CQE_REQ): the CQE completes the WQE at wqe_counter and, since
  // the SQ executes in order, every unsignalled WQE before it.
  const uint32_t ahead = uint16_t(wqe_counter - uint16_t(sq_ci_));
  if (ahead >= sq_pi_ - sq_ci_) [[unlikely]] {  // not an outstanding WQE: ignore it
    ++tx_bad_wqe_counter_;
    return;
  }
  const uint32_t target = sq_ci_ + ahead;
  while (int32_t(target - sq_ci_) >= 0) {
    TxSlot& slot = tx_slots_[sq_ci_ & sq_mask_];
    if (slot.frame) {
      PacketReturn{}(slot.frame);
      slot.frame = nullptr;
    }
    sq_ci_ += slot.wqebbs;
    --tx_outstanding_;
  }
}

// --- Errors and recovery ---------------------------------------------------------------------

void Mlx5Driver::on_error_cqe(const uint8_t* cqe, const char* queue) {
  const auto* e = reinterpret_cast<const mlx5_err_cqe*>(cqe);
  const uint8_t syndrome = e->syndrome;
  const uint8_t vendor = e->vendor_err_synd;
  const unsigned wqe_counter = be16toh(e->wqe_counter);
  switch (syndrome) {
    case MLX5_CQE_SYNDROME_LOCAL_LENGTH_ERR:
      ++err_local_length_;
      break;
    case MLX5_CQE_SYNDROME_LOCAL_QP_OP_ERR:
      ++err_local_qp_op_;
      break;
    case MLX5_CQE_SYNDROME_LOCAL_PROT_ERR:
      ++err_local_prot_;
      break;
    case MLX5_CQE_SYNDROME_WR_FLUSH_ERR:
      ++err_wr_flush_;
      break;
    case MLX5_CQE_SYNDROME_LOCAL_ACCESS_ERR:
      ++err_local_access_;
      break;
    case MLX5_CQE_SYNDROME_BAD_RESP_ERR:
      ++err_bad_resp_;
      break;
    default:
      ++err_other_;
      break;
  }
  SHUNT_WARN(
      "mlx5: %s completion error: syndrome 0x%02x (%s), vendor syndrome 0x%02x, wqe_counter %u; "
      "recovering the queue pair",
      queue, syndrome, mlx5_syndrome_name(syndrome), vendor, wqe_counter);
  recover();
}

void Mlx5Driver::recover() {
  ++recoveries_;
  const bool recovered = binding_.recover();
  // Every posted WQE is gone: the NIC will neither send nor fill those buffers.
  release_tx();
  release_rx();
  if (!recovered) {
    ++recover_failed_;
    fail("mlx5: the queue pair could not be recovered after a completion error");
    return;
  }
  // What the CQs still hold belongs to the old WQEs (libmlx5 mlx5_cq_clean on reset).
  drain_cq(send_cq_);
  drain_cq(recv_cq_);
  reset_queues();
  if (attached_) {
    rx_deficit_ = rq_size_;
    refill_rx();
    if (rx_deficit_) rx_no_buffer_.inc(rx_deficit_);
  }
}

void Mlx5Driver::drain_cq(Cq& cq) {
  uint32_t ci = cq.ci;
  for (uint32_t budget = cq.cnt; budget && mlx5_cqe_ready(cq.buf, cq.cnt, ci) != 0xff; --budget)
    ++ci;
  if (ci != cq.ci) {
    cq.ci = ci;
    update_ci(cq);
  }
}

void Mlx5Driver::release_tx() {
  for (TxSlot& slot : tx_slots_) {
    if (slot.frame) PacketReturn{}(slot.frame);
    slot = TxSlot{};
  }
  tx_flushed_.inc(tx_outstanding_);
  tx_outstanding_ = 0;
  sq_ci_ = sq_pi_;
}

void Mlx5Driver::release_rx() {
  for (PacketBuf*& b : rx_slots_) {
    if (b) PacketReturn{}(b);
    b = nullptr;
  }
  rq_ci_ = rq_pi_;
  rx_deficit_ = 0;
}

}  // namespace shunt
