// RttEstimator against RFC 6298's arithmetic, worked by hand.
#include <boost/test/unit_test.hpp>

#include "stack/net/tcp/rtt.h"

using namespace shunt;

namespace {
constexpr Nanos ms(double v) { return Nanos(v * kMilli); }
}  // namespace

BOOST_AUTO_TEST_CASE(before_any_sample_the_initial_rto_applies) {
  RttEstimator est(ms(1000), ms(200), ms(60000));
  BOOST_TEST(!est.has_sample());
  BOOST_TEST(est.rto() == ms(1000));  // RFC 6298 2.1
  BOOST_TEST(est.srtt() == 0);
  BOOST_TEST(est.backoff_count() == 0);
}

BOOST_AUTO_TEST_CASE(first_sample_sets_srtt_and_half_of_it_as_rttvar) {
  RttEstimator est(ms(1000), ms(200), ms(60000));
  est.sample(ms(100));
  BOOST_TEST(est.has_sample());
  BOOST_TEST(est.srtt() == ms(100));   // RFC 6298 2.2: SRTT <- R
  BOOST_TEST(est.rttvar() == ms(50));  // RTTVAR <- R/2
  BOOST_TEST(est.rto() == ms(300));    // SRTT + 4*RTTVAR
  BOOST_TEST(est.latest() == ms(100));
  BOOST_TEST(est.min_rtt() == ms(100));
}

BOOST_AUTO_TEST_CASE(later_samples_are_smoothed_with_rttvar_using_the_old_srtt) {
  RttEstimator est(ms(1000), ms(200), ms(60000));
  est.sample(ms(100));
  est.sample(ms(200));
  // RFC 6298 2.3: RTTVAR = 3/4*50 + 1/4*|100-200| = 62.5; SRTT = 7/8*100 + 1/8*200 = 112.5
  BOOST_TEST(est.rttvar() == ms(62.5));
  BOOST_TEST(est.srtt() == ms(112.5));
  BOOST_TEST(est.rto() == ms(112.5 + 250));
  est.sample(ms(50));
  // RTTVAR = 3/4*62.5 + 1/4*62.5 = 62.5; SRTT = 7/8*112.5 + 1/8*50 = 104.6875
  BOOST_TEST(est.rttvar() == ms(62.5));
  BOOST_TEST(est.srtt() == ms(104.6875));
  BOOST_TEST(est.latest() == ms(50));
  BOOST_TEST(est.min_rtt() == ms(50));
}

BOOST_AUTO_TEST_CASE(steady_samples_converge_to_srtt_plus_granularity) {
  RttEstimator est(ms(1000), 0, ms(60000));  // no minimum, G = 1 ms
  for (int i = 0; i < 200; ++i) est.sample(ms(10));
  BOOST_TEST(est.srtt() == ms(10));
  BOOST_TEST(est.rttvar() == 0);
  BOOST_TEST(est.rto() == ms(11));  // RFC 6298 2.3: max(G, K*RTTVAR) with RTTVAR = 0
}

BOOST_AUTO_TEST_CASE(rto_is_clamped_to_min_and_max) {
  RttEstimator low(ms(1000), ms(200), ms(60000));
  low.sample(ms(10));                // 10 + 4*5 = 30 ms, below the minimum
  BOOST_TEST(low.rto() == ms(200));  // RFC 6298 2.4
  RttEstimator high(ms(1000), ms(200), ms(60000));
  high.sample(ms(50000));               // 50 s + 100 s
  BOOST_TEST(high.rto() == ms(60000));  // RFC 6298 2.5
}

BOOST_AUTO_TEST_CASE(backoff_doubles_up_to_the_maximum_and_resets) {
  RttEstimator est(ms(1000), ms(200), ms(60000));
  est.sample(ms(100));  // RTO 300 ms
  est.backoff();
  BOOST_TEST(est.rto() == ms(600));  // RFC 6298 5.5
  est.backoff();
  BOOST_TEST(est.rto() == ms(1200));
  for (int i = 0; i < 20; ++i) est.backoff();
  BOOST_TEST(est.backoff_count() == 22);
  BOOST_TEST(est.rto() == ms(60000));             // bounded by max_rto
  for (int i = 0; i < 10000; ++i) est.backoff();  // never overflows
  BOOST_TEST(est.rto() == ms(60000));
  est.reset_backoff();
  BOOST_TEST(est.backoff_count() == 0);
  BOOST_TEST(est.rto() == ms(300));
}

BOOST_AUTO_TEST_CASE(backoff_applies_to_the_initial_rto_too) {
  RttEstimator est(ms(1000), ms(200), ms(60000));
  est.backoff();
  est.backoff();
  BOOST_TEST(est.rto() == ms(4000));  // SYN retransmissions: 1, 2, 4 s
}

BOOST_AUTO_TEST_CASE(hostile_samples_neither_overflow_nor_count_when_negative) {
  RttEstimator est(ms(1000), ms(200), ms(60000));
  est.sample(-5);
  BOOST_TEST(!est.has_sample());
  est.sample(kNever);  // clamped to an hour
  BOOST_TEST(est.srtt() == RttEstimator::kMaxSample);
  for (int i = 0; i < 100; ++i) est.sample(kNever);
  BOOST_TEST(est.rto() == ms(60000));
  est.sample(0);  // a zero RTT on a simulated link is legal
  BOOST_TEST(est.min_rtt() == 0);
}

BOOST_AUTO_TEST_CASE(reset_forgets_samples_and_backoff) {
  RttEstimator est(ms(1000), ms(200), ms(60000));
  est.sample(ms(100));
  est.backoff();
  est.reset();
  BOOST_TEST(!est.has_sample());
  BOOST_TEST(est.backoff_count() == 0);
  BOOST_TEST(est.rto() == ms(1000));
}
