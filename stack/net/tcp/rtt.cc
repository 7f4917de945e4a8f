#include "stack/net/tcp/rtt.h"

namespace shunt {

RttEstimator::RttEstimator(Nanos initial_rto, Nanos min_rto, Nanos max_rto, Nanos granularity)
    : initial_rto_(initial_rto), min_rto_(min_rto), max_rto_(max_rto), granularity_(granularity) {}

void RttEstimator::sample(Nanos) {}
Nanos RttEstimator::rto() const { return initial_rto_; }
void RttEstimator::backoff() { ++backoff_count_; }
void RttEstimator::reset_backoff() { backoff_count_ = 0; }
void RttEstimator::reset() { *this = RttEstimator(initial_rto_, min_rto_, max_rto_, granularity_); }

}  // namespace shunt
