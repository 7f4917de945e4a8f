// CUBIC congestion control (RFC 9438): W_cubic(t) = C*(t-K)^3 + W_max, C = 0.4, beta 0.7,
// the Reno-friendly estimate W_est (4.3), concave and convex regions (4.4, 4.5), fast
// convergence (4.7), target bounded to 1.5*cwnd per RTT (4.2), RTO (4.8). Slow start is
// NewReno's (ABC L = 2*SMSS); HyStart++ (RFC 9406) is not done. Deterministic: time only
// from `now`. Windows are kept in segments (double) as the RFC writes them, cwnd_ in bytes.
#pragma once
#include "stack/net/tcp/newreno.h"

namespace shunt {

class Cubic : public NewReno {
 public:
  static constexpr double kC = 0.4;     // RFC 9438 5.1
  static constexpr double kBeta = 0.7;  // RFC 9438 4.6
  // RFC 9438 4.3: alpha_cubic = 3*(1-beta)/(1+beta).
  static constexpr double kAlpha = 3.0 * (1.0 - kBeta) / (1.0 + kBeta);

  const char* name() const override { return "cubic"; }
  void init(uint32_t mss, Nanos now) override;
  void set_mss(uint32_t mss) override;
  void on_ack(uint32_t bytes_acked, uint64_t in_flight, Nanos rtt, Nanos now,
              bool app_limited) override;
  void on_loss(uint64_t in_flight, Nanos now) override;
  void on_recovery_end(Nanos now) override;
  void on_rto(uint64_t in_flight, Nanos now) override;
  void on_idle_restart(Nanos now) override;
  // RFC 9438 4.9: also W_max, K, epoch, W_est and cwnd_prior as they were.
  bool undo_reduction(Nanos now) override;

  // State, for tests and TCP_INFO-style reporting.
  double w_max() const { return w_max_; }            // segments
  double k_seconds() const { return k_; }            // RFC 9438 (2)
  double w_est() const { return w_est_; }            // segments
  double cwnd_prior() const { return cwnd_prior_; }  // segments
  Nanos epoch_start() const { return epoch_; }       // kNever when no CA stage is running
  Nanos srtt() const { return srtt_; }
  // RFC 9438 (1): W_cubic(t) in segments, t seconds since the epoch started.
  double w_cubic(double t) const;

 private:
  // RFC 9438 4.2: a congestion-avoidance stage begins (cwnd_epoch, K, W_est).
  void start_epoch(Nanos now);
  double cwnd_segments() const { return double(cwnd_) / mss_; }

  double w_max_ = 0;        // RFC 9438 W_max, segments; 0 until a congestion event
  double k_ = 0;            // RFC 9438 K, seconds
  double w_est_ = 0;        // RFC 9438 W_est, segments
  double cwnd_epoch_ = 0;   // cwnd at the start of the stage, segments
  double cwnd_prior_ = 0;   // cwnd before the last reduction, segments (4.3 alpha switch)
  Nanos epoch_ = kNever;    // start of the current congestion-avoidance stage
  Nanos srtt_ = 0;          // RFC 9438 4.1.2 RTT: smoothed over the samples given (RFC 6298)
  double cwnd_frac_ = 0;    // bytes of growth not yet whole
  bool after_rto_ = false;  // RFC 9438 4.8: the next stage starts with K = 0, W_max = cwnd
  // RFC 9438 4.9: saved before each reduction.
  struct Prior {
    double w_max, k, w_est, cwnd_epoch, cwnd_prior;
    Nanos epoch;
    bool after_rto;
  } prior_{};
  void save_cubic_prior() {
    save_prior();
    prior_ = Prior{w_max_, k_, w_est_, cwnd_epoch_, cwnd_prior_, epoch_, after_rto_};
  }
};

}  // namespace shunt
