#include "stack/net/tcp/rtt.h"

#include <algorithm>

namespace shunt {

RttEstimator::RttEstimator(Nanos initial_rto, Nanos min_rto, Nanos max_rto, Nanos granularity)
    : initial_rto_(initial_rto), min_rto_(min_rto), max_rto_(max_rto), granularity_(granularity) {}

void RttEstimator::sample(Nanos rtt) {
  if (rtt < 0) return;  // a clock or echo gone wrong: no information
  rtt = std::min(rtt, kMaxSample);
  latest_ = rtt;
  if (!has_sample_) {
    // RFC 6298 2.2: SRTT <- R, RTTVAR <- R/2.
    srtt_ = rtt;
    rttvar_ = rtt / 2;
    min_rtt_ = rtt;
    has_sample_ = true;
    return;
  }
  // RFC 6298 2.3: RTTVAR first, with the old SRTT; beta = 1/4, alpha = 1/8.
  Nanos err = srtt_ > rtt ? srtt_ - rtt : rtt - srtt_;
  rttvar_ = (3 * rttvar_ + err) / 4;
  srtt_ = (7 * srtt_ + rtt) / 8;
  min_rtt_ = std::min(min_rtt_, rtt);
}

Nanos RttEstimator::rto() const {
  // RFC 6298 2.1 before any sample, else 2.2/2.3: RTO = SRTT + max(G, K*RTTVAR), K = 4.
  Nanos base = has_sample_ ? srtt_ + std::max(granularity_, 4 * rttvar_) : initial_rto_;
  // RFC 6298 2.4 (a minimum; Linux uses 200 ms, the RFC 1 s: configuration decides) and 2.5.
  base = std::clamp(base, min_rto_, std::max(min_rto_, max_rto_));
  // RFC 6298 5.5: doubled per expiry, and 2.5: a maximum may be placed on it.
  for (int i = 0; i < backoff_count_ && i < 62 && base < max_rto_; ++i) base *= 2;
  return std::min(base, std::max(min_rto_, max_rto_));
}

void RttEstimator::backoff() {
  // The count keeps going (TCP_INFO reports it); rto() saturates at max_rto.
  if (backoff_count_ < 1'000'000) ++backoff_count_;
}

void RttEstimator::reset_backoff() { backoff_count_ = 0; }

void RttEstimator::reset() { *this = RttEstimator(initial_rto_, min_rto_, max_rto_, granularity_); }

}  // namespace shunt
