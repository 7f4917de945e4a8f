// The mlx5 (ConnectX) driver: the same code drives the rings of the simulated NIC
// (nicmodel/mlx5) and of a real ConnectX (verbs binding). It writes send WQEs (mlx5_wqe.h),
// posts single-segment receive WQEs, keeps the doorbell records, rings the doorbell once per
// burst, and polls 64-byte CQEs by their owner bit as libmlx5 does.
//
// Transmit: a CQE is requested every `signal_every` WQEs and whenever the SQ is more than half
// full; a send CQE frees every WQE up to and including its wqe_counter. Frames sent inline are
// freed as soon as they are copied. Receive: every RQ WQE holds one pool buffer; each consumed
// buffer is replaced at once, or later when the pool has buffers again. An error CQE is counted
// by syndrome and logged, and the queue pair is recovered (binding.recover()), its buffers freed
// and the RQ posted again.
//
// Frames whose buffers lie outside the registered pool (or sent before attach()) go inline
// when they fit the inline limit, else they are dropped: the NIC never gets an unregistered
// address. Send completions are reaped in both tx_burst() and rx_burst().
//
// Counters ("mlx5."): tx.frames, tx.bytes, tx.inline, tx.doorbells, tx.blueflame,
// tx.completions, tx.flushed (sends lost to a recovery), tx.bad_wqe_counter, tx.bad_opcode,
// tx.drop.{not_ready, sq_full, runt, too_many_segments, unregistered}; rx.frames, rx.bytes,
// rx.no_buffer (a buffer the pool could not replace), rx.drop.{oversize, runt, bad_wqe_counter,
// bad_opcode}; err.{local_length, local_qp_op, local_prot, wr_flush, local_access, bad_resp,
// other}; recoveries, recover_failed.
//
// Hot path: no allocation, no division, no virtual call per packet (the doorbell is one per
// burst). The binding must outlive the driver, and so must the pool unless detach() was called.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "stack/core/config.h"
#include "stack/core/counters.h"
#include "stack/driver/device.h"
#include "stack/driver/mlx5/mlx5_binding.h"
#include "stack/driver/mlx5/mlx5_wqe.h"

namespace shunt {

struct Mlx5DriverOptions {
  Mlx5QueueSizes sizes;  // from SHUNT_MLX5_SQ_SIZE / RQ_SIZE (powers of two), CQs to match
  uint32_t inline_threshold = 204;  // SHUNT_MLX5_INLINE
  uint32_t signal_every = 16;       // SHUNT_MLX5_TX_SIGNAL_EVERY
  bool blueflame = false;           // SHUNT_MLX5_BLUEFLAME
  static Mlx5DriverOptions from(const Config& c);
};

class Mlx5Driver final : public Device {
 public:
  // Opens the binding's queues (binding.open). On failure error() is one line saying why, and
  // the driver sends and receives nothing (tx_burst drops and counts).
  Mlx5Driver(Mlx5Binding& binding, const Mlx5DriverOptions& options);
  ~Mlx5Driver() override;
  Mlx5Driver(const Mlx5Driver&) = delete;
  Mlx5Driver& operator=(const Mlx5Driver&) = delete;

  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }

  const DeviceInfo& info() const override { return binding_.info(); }
  // Registers pool.memory() (its lkey) and posts the RQ full.
  void attach(BufferPool& pool) override;
  // Makes the NIC forget every posted WQE (binding.recover(): the QP is reset, so it can no
  // longer write into or read from the pool), then returns every buffer the rings held. The
  // driver receives nothing until attach() again.
  void detach() override;
  size_t rx_burst(PacketPtr* out, size_t max) override;
  size_t tx_burst(PacketPtr* frames, size_t n) override;
  int wait_fd() const override { return binding_.wait_fd(); }
  void arm_wait() override { binding_.arm_wait(); }
  void ack_wait() override { binding_.ack_wait(); }
  Nanos service(Nanos now) override { return binding_.service(now); }

  // "mlx5.*" counters.
  Counters& counters() { return counters_; }
  const Counters& counters() const { return counters_; }
  // Send WQEs posted and not yet completed.
  size_t tx_outstanding() const { return tx_outstanding_; }
  // Receive buffers the NIC holds.
  size_t rx_posted() const { return rq_pi_ - rq_ci_; }
  // The rings as the binding made them (for tests and diagnostics).
  const Mlx5Rings& rings() const { return rings_; }

 private:
  struct TxSlot {
    PacketBuf* frame = nullptr;  // owned until the WQE completes (null: copied inline)
    uint32_t wqebbs = 0;         // the WQE's size, so completion can step over it
  };
  struct Cq {
    uint8_t* buf = nullptr;
    volatile uint32_t* dbrec = nullptr;
    uint32_t cnt = 0;
    uint32_t ci = 0;
  };

  std::string check_rings() const;
  void fail(std::string why);
  void reset_queues();
  void post_rx(PacketBuf* b);
  void refill_rx();
  void ring_rx_doorbell();
  void ring_tx_doorbell(const mlx5_wqe_ctrl_seg* last, size_t bf_bytes);
  void poll_send_cq();
  void complete_sends(uint16_t wqe_counter);
  void on_error_cqe(const uint8_t* cqe, const char* queue);
  void recover();
  void drain_cq(Cq& cq);
  void release_tx();
  void release_rx();
  static void update_ci(Cq& cq);

  Mlx5Binding& binding_;
  Mlx5DriverOptions options_;
  Mlx5Rings rings_;
  bool ok_ = false;
  std::string error_;
  Counters counters_;

  // Send queue: indices count WQEBBs, free-running; slots by WQE index (pi & sq_mask_).
  uint8_t* sq_buf_ = nullptr;
  uint32_t sq_size_ = 0;
  uint32_t sq_mask_ = 0;
  uint32_t sq_half_ = 0;
  uint32_t sq_pi_ = 0;
  uint32_t sq_ci_ = 0;
  uint32_t since_signal_ = 0;
  uint32_t signal_every_ = 1;
  uint32_t inline_threshold_ = 0;
  uint32_t max_inline_ = 0;
  size_t tx_outstanding_ = 0;
  std::vector<TxSlot> tx_slots_;

  // Receive queue: one buffer per WQE, slots by rq index & rq_mask_.
  uint8_t* rq_buf_ = nullptr;
  uint32_t rq_size_ = 0;
  uint32_t rq_mask_ = 0;
  uint32_t rq_stride_ = 0;
  uint32_t rq_pi_ = 0;
  uint32_t rq_ci_ = 0;
  uint32_t rx_deficit_ = 0;  // consumed buffers not yet replaced (the pool was empty)
  std::vector<PacketBuf*> rx_slots_;

  Cq send_cq_, recv_cq_;
  Mlx5Registered registered_;
  bool attached_ = false;

  Counter& tx_frames_;
  Counter& tx_bytes_;
  Counter& tx_inline_;
  Counter& tx_doorbells_;
  Counter& tx_blueflame_;
  Counter& tx_completions_;
  Counter& tx_flushed_;
  Counter& tx_bad_wqe_counter_;
  Counter& tx_bad_opcode_;
  Counter& tx_drop_not_ready_;
  Counter& tx_drop_sq_full_;
  Counter& tx_drop_runt_;
  Counter& tx_drop_too_many_segments_;
  Counter& tx_drop_unregistered_;
  Counter& rx_frames_;
  Counter& rx_bytes_;
  Counter& rx_no_buffer_;
  Counter& rx_drop_oversize_;
  Counter& rx_drop_runt_;
  Counter& rx_drop_bad_wqe_counter_;
  Counter& rx_drop_bad_opcode_;
  Counter& err_local_length_;
  Counter& err_local_qp_op_;
  Counter& err_local_prot_;
  Counter& err_wr_flush_;
  Counter& err_local_access_;
  Counter& err_bad_resp_;
  Counter& err_other_;
  Counter& recoveries_;
  Counter& recover_failed_;
};

}  // namespace shunt
