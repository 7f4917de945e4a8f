// Congestion control per connection (RFC 5681, the window parts of RFC 6582, RFC 9438 CUBIC,
// RFC 3465 ABC, RFC 6928 IW, restart after idle per RFC 5681 4.1). Pure logic: the engine tells
// it about ACKs, losses, timeouts and idleness, in bytes, with the time it was given.
// Windows are in bytes. Detecting a spurious RTO or fast retransmit is the engine's; undoing the
// reduction then is undo_reduction().
#pragma once
#include <cstdint>
#include <memory>
#include <string_view>

#include "stack/core/clock.h"

namespace shunt {

class CongestionControl {
 public:
  // No window grows beyond this (bytes): well above the largest RFC 7323 window (2^30).
  static constexpr uint64_t kMaxCwnd = uint64_t(1) << 32;

  virtual ~CongestionControl() = default;
  virtual const char* name() const = 0;  // "newreno" or "cubic" (TCP_CONGESTION)
  // A connection (re)starts: IW per RFC 6928 = min(10*mss, max(2*mss, 14600)),
  // ssthresh = "infinite".
  virtual void init(uint32_t mss, Nanos now) = 0;
  virtual void set_mss(uint32_t mss) = 0;  // PMTU/MSS changes
  // `bytes_acked` new bytes cumulatively ACKed outside recovery; `in_flight` before this ACK;
  // rtt sample or 0; `app_limited` true if the sender was not cwnd-limited (then cwnd must not
  // grow, RFC 7661 spirit).
  virtual void on_ack(uint32_t bytes_acked, uint64_t in_flight, Nanos rtt, Nanos now,
                      bool app_limited) = 0;
  // Loss detected (3 dupacks or RFC 6675 IsLost): ssthresh = max(FlightSize/2, 2*SMSS)
  // (RFC 5681 (4)); CUBIC: beta_cubic 0.7, fast convergence, W_max bookkeeping.
  // cwnd after = ssthresh (RFC 6675 / RFC 6582 window inflation is the engine's job).
  virtual void on_loss(uint64_t in_flight, Nanos now) = 0;
  // Recovery ended (RFC 6582 3.2 step 3 full ACK / RFC 6675): cwnd = ssthresh (or an
  // engine-provided value through set_cwnd() afterwards).
  virtual void on_recovery_end(Nanos now) = 0;
  // RTO (RFC 5681 (4) and 3.1: ssthresh = max(FlightSize/2, 2*SMSS), cwnd = 1 MSS (loss
  // window)); CUBIC per RFC 9438 4.8. A repeated RTO with no new data ACKed in between keeps
  // ssthresh (RFC 5681 3.1, "held constant").
  virtual void on_rto(uint64_t in_flight, Nanos now) = 0;
  // RFC 5681 4.1: after idle longer than RTO, cwnd = min(cwnd, RW=IW).
  virtual void on_idle_restart(Nanos now) = 0;
  // The last reduction (on_loss or on_rto) was spurious (D-SACK per RFC 3708, F-RTO per
  // RFC 5682, Eifel per RFC 3522: the engine decides): restore the state saved before it if
  // cwnd is still below what it was (RFC 9438 4.9). Returns false if nothing was restored.
  // One undo per reduction.
  virtual bool undo_reduction(Nanos now) = 0;

  uint64_t cwnd() const { return cwnd_; }
  uint64_t ssthresh() const { return ssthresh_; }
  uint32_t mss() const { return mss_; }
  // For the engine's recovery arithmetic (RFC 6582 / 6675).
  void set_cwnd(uint64_t c) { cwnd_ = c; }
  void set_ssthresh(uint64_t s) { ssthresh_ = s; }
  bool in_slow_start() const { return cwnd_ < ssthresh_; }
  static constexpr uint64_t kInfiniteSsthresh = UINT64_MAX / 2;
  // RFC 6928 2: IW = min(10*MSS, max(2*MSS, 14600)).
  static uint64_t initial_window(uint32_t mss);

 protected:
  uint64_t cwnd_ = 0, ssthresh_ = kInfiniteSsthresh;
  uint32_t mss_ = 536;
};

// "newreno" or "cubic" ("reno" is accepted as NewReno, as Linux's "reno" is NewReno);
// nullptr for an unknown name (TCP_CONGESTION then fails with ENOENT).
std::unique_ptr<CongestionControl> make_congestion_control(std::string_view name);

}  // namespace shunt
