// RFC 6298 retransmission timer arithmetic: SRTT, RTTVAR and RTO with exponential backoff.
//
// Karn's algorithm (RFC 6298 3, RFC 9293 3.8.1) is the CALLER's job: feed sample() only with
// RTTs measured on segments that were not retransmitted, unless a timestamp echo (RFC 7323 4)
// says which transmission the ACK answers.
//
// State: srtt/rttvar in nanoseconds, integer arithmetic (alpha = 1/8, beta = 1/4, K = 4).
// Clock granularity G defaults to 1 ms (the stack's timer wheel resolution); it only acts as the
// floor of the variance term K*RTTVAR (RFC 6298 2.2, 2.3).
#pragma once
#include "stack/core/clock.h"

namespace shunt {

class RttEstimator {
 public:
  static constexpr Nanos kDefaultGranularity = kMilli;
  // Samples larger than this are clamped (a hostile timestamp echo must not overflow the
  // arithmetic): one hour.
  static constexpr Nanos kMaxSample = 3600 * kSecond;

  RttEstimator(Nanos initial_rto, Nanos min_rto, Nanos max_rto,
               Nanos granularity = kDefaultGranularity);

  // RFC 6298 2.2 (first sample) / 2.3 (later samples). Negative samples are ignored.
  void sample(Nanos rtt);
  // Current RTO with backoff applied: the computed value clamped to [min_rto, max_rto]
  // (RFC 6298 2.4, 2.5), doubled backoff_count() times, never above max_rto.
  Nanos rto() const;
  // RFC 6298 5.5: the retransmission timer expired: double the RTO (bounded by max_rto).
  void backoff();
  // New data was acknowledged: back to the computed value (RFC 6298 5.7 note, as Linux does).
  void reset_backoff();
  // Forget every sample and the backoff (e.g. RFC 6298 5.7: a SYN timed out, start over).
  void reset();

  bool has_sample() const { return has_sample_; }
  Nanos srtt() const { return srtt_; }        // 0 before the first sample
  Nanos rttvar() const { return rttvar_; }    // 0 before the first sample
  Nanos latest() const { return latest_; }    // the last sample taken, 0 before any
  Nanos min_rtt() const { return min_rtt_; }  // smallest sample ever taken, 0 before any
  int backoff_count() const { return backoff_count_; }

  Nanos initial_rto() const { return initial_rto_; }
  Nanos min_rto() const { return min_rto_; }
  Nanos max_rto() const { return max_rto_; }
  void set_min_rto(Nanos v) { min_rto_ = v; }
  void set_max_rto(Nanos v) { max_rto_ = v; }

 private:
  Nanos initial_rto_, min_rto_, max_rto_, granularity_;
  Nanos srtt_ = 0, rttvar_ = 0, latest_ = 0, min_rtt_ = 0;
  int backoff_count_ = 0;
  bool has_sample_ = false;
};

}  // namespace shunt
