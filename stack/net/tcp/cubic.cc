#include "stack/net/tcp/cubic.h"

#include <algorithm>
#include <cmath>

namespace shunt {

namespace {
double seconds(Nanos d) { return double(d) / double(kSecond); }
}  // namespace

void Cubic::init(uint32_t mss, Nanos now) {
  NewReno::init(mss, now);
  w_max_ = k_ = w_est_ = cwnd_epoch_ = cwnd_prior_ = cwnd_frac_ = 0;
  epoch_ = kNever;
  srtt_ = 0;
  after_rto_ = false;
}

void Cubic::set_mss(uint32_t mss) {
  // W_max, W_est stay in segments, as RFC 9438 counts them; cwnd stays in bytes.
  NewReno::set_mss(mss);
}

double Cubic::w_cubic(double t) const {
  double d = t - k_;
  return kC * d * d * d + w_max_;  // RFC 9438 (1)
}

void Cubic::start_epoch(Nanos now) {
  epoch_ = now;
  cwnd_epoch_ = cwnd_segments();
  cwnd_frac_ = 0;
  w_est_ = cwnd_epoch_;  // RFC 9438 4.3: W_est = cwnd_epoch at the start of the stage
  if (after_rto_ || w_max_ <= 0) {
    // RFC 9438 4.8 (first stage after a timeout) and 4.10 (no congestion event yet):
    // K = 0 and W_max = cwnd at the start of the stage.
    w_max_ = cwnd_epoch_;
    k_ = 0;
    after_rto_ = false;
  } else {
    // RFC 9438 (2); K = 0 when cwnd_epoch already exceeds W_max.
    k_ = std::cbrt(std::max(0.0, w_max_ - cwnd_epoch_) / kC);
  }
}

void Cubic::on_ack(uint32_t bytes_acked, uint64_t, Nanos rtt, Nanos now, bool app_limited) {
  if (rtt > 0) {
    // RFC 9438 4.1.2: RTT is the smoothed round-trip time (RFC 6298 weights).
    rtt = std::min(rtt, 3600 * kSecond);
    srtt_ = srtt_ == 0 ? rtt : (7 * srtt_ + rtt) / 8;
  }
  if (bytes_acked == 0) return;
  rto_pending_ = false;
  // RFC 9438 4.2 / RFC 7661 spirit: cwnd does not grow while the application is the limit.
  if (app_limited) return;
  if (in_slow_start()) {
    epoch_ = kNever;  // RFC 9438 4.10: slow start is NewReno's (ABC, L = 2*SMSS)
    bytes_acked = slow_start(bytes_acked);
    if (bytes_acked == 0) return;
  }
  if (epoch_ == kNever) start_epoch(now);

  const double cwnd = cwnd_segments();
  const double acked = double(bytes_acked) / mss_;
  // RFC 9438 4.3: W_est += alpha_cubic * segments_acked / cwnd, alpha_cubic = 1 once W_est
  // has reached cwnd_prior.
  const double alpha = w_est_ >= cwnd_prior_ ? 1.0 : kAlpha;
  w_est_ += alpha * acked / cwnd;
  const double t = seconds(now - epoch_);
  double grow_bytes = 0;
  if (w_cubic(t) < w_est_) {
    // RFC 9438 4.3: Reno-friendly region: cwnd = W_est.
    grow_bytes = std::max(0.0, w_est_ * mss_ - double(cwnd_) - cwnd_frac_);
  } else {
    // RFC 9438 4.2: target = W_cubic(t + RTT) bounded to [cwnd, 1.5*cwnd]; then 4.4 (concave,
    // cwnd < W_max) and 4.5 (convex) both add (target - cwnd)/cwnd per segment ACKed.
    double target = std::clamp(w_cubic(t + seconds(srtt_)), cwnd, 1.5 * cwnd);
    grow_bytes = (target - cwnd) / cwnd * acked * mss_;
  }
  cwnd_frac_ += grow_bytes;
  double whole = std::floor(cwnd_frac_);
  cwnd_frac_ -= whole;
  cwnd_ = std::min(cwnd_ + uint64_t(std::min(whole, double(kMaxCwnd))), kMaxCwnd);
}

void Cubic::on_loss(uint64_t in_flight, Nanos) {
  save_cubic_prior();
  const double cwnd = cwnd_segments();
  // RFC 9438 4.7 fast convergence: a flow whose saturation point fell releases more.
  w_max_ = cwnd < w_max_ ? cwnd * (1.0 + kBeta) / 2.0 : cwnd;
  cwnd_prior_ = cwnd;
  // RFC 9438 4.6: ssthresh = max(flight_size * beta_cubic, 2 SMSS); cwnd = ssthresh.
  ssthresh_ = std::max<uint64_t>(uint64_t(double(in_flight) * kBeta), 2ull * mss_);
  cwnd_ = ssthresh_;
  cwnd_frac_ = 0;
  ca_bytes_acked_ = 0;
  after_rto_ = false;
  // The next stage starts at the first ACK after recovery; K as it will be if cwnd stays.
  epoch_ = kNever;
  k_ = std::cbrt(std::max(0.0, w_max_ - cwnd_segments()) / kC);
}

void Cubic::on_recovery_end(Nanos now) {
  NewReno::on_recovery_end(now);
  cwnd_frac_ = 0;
  epoch_ = kNever;
}

void Cubic::on_rto(uint64_t in_flight, Nanos) {
  // RFC 9438 4.8: cwnd as Reno (one segment), ssthresh with beta_cubic as in 4.6; a repeated
  // timeout of the same data keeps ssthresh (RFC 5681 3.1).
  if (!rto_pending_) {
    save_cubic_prior();
    cwnd_prior_ = cwnd_segments();
    ssthresh_ = std::max<uint64_t>(uint64_t(double(in_flight) * kBeta), 2ull * mss_);
  }
  rto_pending_ = true;
  cwnd_ = mss_;
  cwnd_frac_ = 0;
  ca_bytes_acked_ = 0;
  epoch_ = kNever;
  after_rto_ = true;
}

void Cubic::on_idle_restart(Nanos now) {
  // RFC 5681 4.1, and a new congestion-avoidance stage afterwards: time spent idle must not
  // count as time on the cubic curve.
  NewReno::on_idle_restart(now);
  cwnd_frac_ = 0;
  epoch_ = kNever;
}

bool Cubic::undo_reduction(Nanos now) {
  if (!NewReno::undo_reduction(now)) return false;
  w_max_ = prior_.w_max;
  k_ = prior_.k;
  w_est_ = prior_.w_est;
  cwnd_epoch_ = prior_.cwnd_epoch;
  cwnd_prior_ = prior_.cwnd_prior;
  epoch_ = prior_.epoch;
  after_rto_ = prior_.after_rto;
  cwnd_frac_ = 0;
  return true;
}

}  // namespace shunt
