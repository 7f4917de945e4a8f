#include "stack/net/tcp/newreno.h"

#include <algorithm>

namespace shunt {

void NewReno::init(uint32_t mss, Nanos) {
  mss_ = std::max<uint32_t>(mss, 1);
  cwnd_ = initial_window(mss_);   // RFC 6928 2
  ssthresh_ = kInfiniteSsthresh;  // RFC 5681 3.1: "arbitrarily high"
  ca_bytes_acked_ = 0;
  rto_pending_ = false;
  has_prior_ = false;
}

void NewReno::set_mss(uint32_t mss) {
  // cwnd stays in bytes; it never falls below one segment of the new size.
  mss_ = std::max<uint32_t>(mss, 1);
  cwnd_ = std::max<uint64_t>(cwnd_, mss_);
}

uint64_t NewReno::half_flight(uint64_t in_flight) const {
  return std::max<uint64_t>(in_flight / 2, 2ull * mss_);  // RFC 5681 (4)
}

uint32_t NewReno::slow_start(uint32_t bytes_acked) {
  // RFC 3465 2.2 with L = 2: cwnd += min(N, 2*SMSS) per ACK, not beyond ssthresh; the rest of
  // this ACK's bytes count toward congestion avoidance (RFC 5681 3.1: slow start ends there).
  uint64_t grow = std::min<uint64_t>(bytes_acked, 2ull * mss_);
  uint64_t room = ssthresh_ > cwnd_ ? ssthresh_ - cwnd_ : 0;
  uint64_t used = std::min(grow, room);
  cwnd_ = std::min(cwnd_ + used, kMaxCwnd);
  if (used < grow) return uint32_t(bytes_acked - used);
  return 0;
}

void NewReno::on_ack(uint32_t bytes_acked, uint64_t, Nanos, Nanos, bool app_limited) {
  if (bytes_acked == 0) return;
  rto_pending_ = false;  // new data ACKed: a later RTO is a new loss event
  // RFC 7661 spirit / RFC 5681 3.1 (cwnd validation): no growth unless cwnd was the limit.
  if (app_limited) return;
  if (in_slow_start()) {
    bytes_acked = slow_start(bytes_acked);
    if (bytes_acked == 0) return;
  }
  // RFC 5681 3.1 byte counting (RFC 3465 2.1): one SMSS each time a cwnd's worth is ACKed.
  ca_bytes_acked_ += bytes_acked;
  if (ca_bytes_acked_ >= cwnd_) {
    ca_bytes_acked_ -= cwnd_;
    cwnd_ = std::min(cwnd_ + mss_, kMaxCwnd);
    // A huge stretch ACK grows cwnd by at most one SMSS (RFC 5681 3.1 "up to SMSS").
    ca_bytes_acked_ = std::min(ca_bytes_acked_, cwnd_ - 1);
  }
}

void NewReno::on_loss(uint64_t in_flight, Nanos) {
  save_prior();
  ssthresh_ = half_flight(in_flight);  // RFC 5681 (4), RFC 6582 3.2 step 2
  cwnd_ = ssthresh_;
  ca_bytes_acked_ = 0;
}

void NewReno::on_recovery_end(Nanos) {
  cwnd_ = ssthresh_;  // RFC 6582 3.2 step 3, option (2)
  ca_bytes_acked_ = 0;
}

void NewReno::on_rto(uint64_t in_flight, Nanos) {
  // RFC 5681 3.1: a segment retransmitted by the timer more than once keeps ssthresh.
  if (!rto_pending_) {
    save_prior();
    ssthresh_ = half_flight(in_flight);
  }
  rto_pending_ = true;
  cwnd_ = mss_;  // RFC 5681 3.1: LW = 1 full-sized segment
  ca_bytes_acked_ = 0;
}

void NewReno::on_idle_restart(Nanos) {
  // RFC 5681 4.1: RW = min(IW, cwnd).
  cwnd_ = std::min(cwnd_, initial_window(mss_));
  ca_bytes_acked_ = 0;
}

}  // namespace shunt

namespace shunt {

bool NewReno::undo_reduction(Nanos) {
  // RFC 9438 4.9 (and RFC 5682 / RFC 3708 responses): restore if cwnd is still lower.
  if (!has_prior_) return false;
  has_prior_ = false;
  if (cwnd_ >= prior_cwnd_) return false;
  cwnd_ = prior_cwnd_;
  ssthresh_ = prior_ssthresh_;
  ca_bytes_acked_ = 0;
  rto_pending_ = false;
  return true;
}

}  // namespace shunt
