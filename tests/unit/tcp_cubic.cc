// CUBIC (RFC 9438) over simulated time: the ACK clock is simulated by the test, one ACK per
// segment spread evenly over each RTT, and the window compared with the RFC's formulas.
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <string>
#include <vector>

#include "stack/net/tcp/cubic.h"

using namespace shunt;

namespace {

constexpr uint32_t kMss = 1000;

double segs(const CongestionControl& cc) { return double(cc.cwnd()) / kMss; }

// One RTT of ACKs: one per segment of the window at its start, evenly spaced.
void ack_one_rtt(Cubic& cc, Nanos& now, Nanos rtt, bool app_limited = false) {
  uint64_t n = std::max<uint64_t>(cc.cwnd() / kMss, 1);
  for (uint64_t i = 0; i < n; ++i) {
    now += rtt / Nanos(n);
    cc.on_ack(kMss, cc.cwnd(), rtt, now, app_limited);
  }
}

// A CUBIC flow in congestion avoidance with `w` segments when a loss is detected at `now`.
Cubic flow_with_loss_at(double w, Nanos now) {
  Cubic cc;
  cc.init(kMss, 0);
  cc.set_cwnd(uint64_t(w * kMss));
  cc.on_loss(cc.cwnd(), now);
  return cc;
}

}  // namespace

BOOST_AUTO_TEST_CASE(loss_sets_w_max_and_k_and_reduces_to_seventy_percent) {
  Cubic cc = flow_with_loss_at(100, 0);
  BOOST_TEST(std::string(cc.name()) == "cubic");
  BOOST_TEST(cc.w_max() == 100.0);
  BOOST_TEST(cc.cwnd() == 70000u);  // RFC 9438 4.6: beta_cubic = 0.7
  BOOST_TEST(cc.ssthresh() == 70000u);
  BOOST_TEST(cc.cwnd_prior() == 100.0);
  BOOST_TEST(cc.k_seconds() == std::cbrt(30.0 / 0.4), boost::test_tools::tolerance(1e-12));
  BOOST_TEST(cc.epoch_start() == kNever);  // the stage starts with the first ACK after recovery
  // ssthresh follows the flight, with the 2-segment floor.
  Cubic small = flow_with_loss_at(2, 0);
  BOOST_TEST(small.cwnd() == 2000u);
  Cubic flight;
  flight.init(kMss, 0);
  flight.set_cwnd(100000);
  flight.on_loss(50000, 0);  // less in flight than cwnd
  BOOST_TEST(flight.ssthresh() == 35000u);
  BOOST_TEST(flight.w_max() == 100.0);  // W_max remembers cwnd
}

BOOST_AUTO_TEST_CASE(w_cubic_is_the_rfc_formula) {
  Cubic cc = flow_with_loss_at(1000, 0);
  const double k = std::cbrt(300.0 / 0.4);
  for (double t : {0.0, 1.0, 5.0, k, 12.0, 20.0})
    BOOST_TEST(cc.w_cubic(t) == 0.4 * std::pow(t - k, 3) + 1000.0,
               boost::test_tools::tolerance(1e-9));
  BOOST_TEST(cc.w_cubic(0) == 700.0,
             boost::test_tools::tolerance(1e-9));  // W_cubic(0) = cwnd_epoch
  BOOST_TEST(cc.w_cubic(k) == 1000.0, boost::test_tools::tolerance(1e-9));
}

BOOST_AUTO_TEST_CASE(cwnd_follows_w_cubic_over_simulated_time) {
  const Nanos rtt = 100 * kMilli;
  Nanos now = 10 * kSecond;
  Cubic cc = flow_with_loss_at(1000, now);
  cc.on_recovery_end(now);
  const double k = cc.k_seconds();
  ack_one_rtt(cc, now, rtt);  // the stage starts at the first ACK
  const Nanos epoch = cc.epoch_start();
  BOOST_TEST(epoch > 10 * kSecond);
  BOOST_TEST(epoch < 10 * kSecond + rtt);
  BOOST_TEST(cc.k_seconds() == k, boost::test_tools::tolerance(1e-9));
  while (now - epoch < 16 * kSecond) {
    ack_one_rtt(cc, now, rtt);
    double t = double(now - epoch) / kSecond;
    double expected = cc.w_cubic(t);
    // Each ACK aims at W_cubic(t + RTT) and gets there one RTT later: cwnd tracks W_cubic(t)
    // within a few percent (concave, plateau and convex alike).
    BOOST_TEST(std::abs(segs(cc) / expected - 1.0) < 0.01,
               "t=" << t << " cwnd=" << segs(cc) << " W_cubic=" << expected);
    BOOST_TEST(cc.w_est() < expected);  // not the Reno-friendly region here
  }
}

BOOST_AUTO_TEST_CASE(growth_is_concave_below_w_max_then_convex_above) {
  const Nanos rtt = 100 * kMilli;
  Nanos now = 0;
  Cubic cc = flow_with_loss_at(1000, now);
  cc.on_recovery_end(now);
  std::vector<double> t_at, grow;
  ack_one_rtt(cc, now, rtt);
  const Nanos epoch = cc.epoch_start();
  const double k = cc.k_seconds();  // about 9.09 s
  while (now - epoch < 15 * kSecond) {
    double before = segs(cc);
    ack_one_rtt(cc, now, rtt);
    t_at.push_back(double(now - epoch) / kSecond);
    grow.push_back(segs(cc) - before);
  }
  // The growth per RTT shrinks toward K and increases after it.
  auto at = [&](double t) {
    size_t i = 0;
    while (i + 1 < t_at.size() && t_at[i] < t) ++i;
    return grow[i];
  };
  BOOST_TEST(at(1.0) > at(5.0));
  BOOST_TEST(at(5.0) > at(k));
  BOOST_TEST(at(k) < at(k + 3));
  BOOST_TEST(at(k + 3) < at(k + 5));
  // Below W_max while t < K, above after.
  BOOST_TEST(segs(cc) > 1000.0);
}

BOOST_AUTO_TEST_CASE(reno_friendly_region_dominates_at_small_rtt_and_window) {
  const Nanos rtt = 1 * kMilli;
  Nanos now = 0;
  Cubic cc = flow_with_loss_at(20, now);  // W_max 20, K = cbrt(15) = 2.47 s
  cc.on_recovery_end(now);
  BOOST_TEST(segs(cc) == 14.0);
  for (int i = 0; i < 100; ++i) ack_one_rtt(cc, now, rtt);
  double t = double(now - cc.epoch_start()) / kSecond;
  // RFC 9438 4.3: W_est grows alpha_cubic = 0.53 per RTT up to cwnd_prior = 20, then 1 per
  // RTT; cwnd = W_est while W_cubic(t) is lower.
  BOOST_TEST(cc.w_cubic(t) < cc.w_est());
  BOOST_TEST(segs(cc) == cc.w_est(), boost::test_tools::tolerance(0.01));
  BOOST_TEST(segs(cc) > 95.0);  // 14 -> 20 in ~11 RTTs, then ~1 per RTT for ~89 RTTs
  BOOST_TEST(segs(cc) < 112.0);
  BOOST_TEST(segs(cc) > cc.w_cubic(t) + 50);
}

BOOST_AUTO_TEST_CASE(reno_friendly_window_grows_at_alpha_cubic_before_cwnd_prior) {
  const Nanos rtt = 1 * kMilli;
  Nanos now = 0;
  Cubic cc = flow_with_loss_at(1000, now);  // cwnd 700, far below cwnd_prior
  cc.on_recovery_end(now);
  ack_one_rtt(cc, now, rtt);
  double w0 = cc.w_est();
  for (int i = 0; i < 10; ++i) ack_one_rtt(cc, now, rtt);
  // About alpha_cubic = 3 * 0.3 / 1.7 segments per RTT of ACKs.
  BOOST_TEST((cc.w_est() - w0) / 10 == Cubic::kAlpha, boost::test_tools::tolerance(0.05));
}

BOOST_AUTO_TEST_CASE(fast_convergence_lowers_w_max_when_the_window_shrank) {
  Cubic cc = flow_with_loss_at(100, 0);
  BOOST_TEST(cc.w_max() == 100.0);
  cc.set_cwnd(80000);  // the next loss comes before cwnd is back at W_max
  cc.on_loss(80000, 0);
  BOOST_TEST(cc.w_max() == 80 * (1 + 0.7) / 2, boost::test_tools::tolerance(1e-12));  // 68
  BOOST_TEST(cc.cwnd() == 56000u);
  BOOST_TEST(cc.k_seconds() == std::cbrt((68.0 - 56.0) / 0.4), boost::test_tools::tolerance(1e-9));
  cc.set_cwnd(90000);  // beyond W_max: W_max is just cwnd
  cc.on_loss(90000, 0);
  BOOST_TEST(cc.w_max() == 90.0);
}

BOOST_AUTO_TEST_CASE(growth_per_rtt_is_bounded_to_one_and_a_half) {
  const Nanos rtt = 10 * kMilli;
  Nanos now = 0;
  Cubic cc = flow_with_loss_at(100, now);
  cc.on_recovery_end(now);
  ack_one_rtt(cc, now, rtt);
  // A long quiet spell while cwnd-limited does not happen, but a stale epoch can: W_cubic far
  // ahead of cwnd must not be reached at once.
  now += 60 * kSecond;
  double before = segs(cc);
  BOOST_TEST(cc.w_cubic(60) > 10 * before);
  ack_one_rtt(cc, now, rtt);
  BOOST_TEST(segs(cc) <= 1.5 * before + 1);
  BOOST_TEST(segs(cc) >= 1.45 * before);
}

BOOST_AUTO_TEST_CASE(application_limited_acks_do_not_grow_cwnd) {
  const Nanos rtt = 10 * kMilli;
  Nanos now = 0;
  Cubic cc = flow_with_loss_at(100, now);
  cc.on_recovery_end(now);
  for (int i = 0; i < 50; ++i) ack_one_rtt(cc, now, rtt, true);
  BOOST_TEST(cc.cwnd() == 70000u);
  Cubic fresh;
  fresh.init(kMss, 0);
  for (int i = 0; i < 50; ++i) ack_one_rtt(fresh, now, rtt, true);
  BOOST_TEST(fresh.cwnd() == 10000u);
}

BOOST_AUTO_TEST_CASE(slow_start_is_newrenos) {
  Cubic cc;
  cc.init(kMss, 0);
  BOOST_TEST(cc.cwnd() == 10000u);
  cc.on_ack(5000, 10000, kMilli, 0, false);
  BOOST_TEST(cc.cwnd() == 12000u);  // ABC: at most 2 segments per ACK
  BOOST_TEST(cc.epoch_start() == kNever);
  BOOST_TEST(cc.srtt() == kMilli);
}

BOOST_AUTO_TEST_CASE(rto_collapses_to_one_segment_then_grows_from_k_zero) {
  const Nanos rtt = 100 * kMilli;
  Nanos now = 0;
  Cubic cc;
  cc.init(kMss, 0);
  cc.set_cwnd(100000);
  cc.on_rto(100000, now);
  BOOST_TEST(cc.cwnd() == 1000u);       // RFC 9438 4.8: as Reno
  BOOST_TEST(cc.ssthresh() == 70000u);  // with beta_cubic
  cc.on_rto(1000, now);                 // the same data times out again
  BOOST_TEST(cc.ssthresh() == 70000u);
  // Slow start back to ssthresh, then the first stage: K = 0, W_max = cwnd_epoch.
  while (cc.in_slow_start()) ack_one_rtt(cc, now, rtt);
  ack_one_rtt(cc, now, rtt);
  BOOST_TEST(cc.k_seconds() == 0.0);
  BOOST_TEST(cc.w_max() == 70.0, boost::test_tools::tolerance(0.02));
  const Nanos epoch = cc.epoch_start();
  for (int i = 0; i < 40; ++i) ack_one_rtt(cc, now, rtt);
  double t = double(now - epoch) / kSecond;
  // Convex from the start: W_cubic(t) = W_max + 0.4 t^3 (or W_est, whichever is larger).
  double expected = std::max(cc.w_cubic(t), cc.w_est());
  BOOST_TEST(std::abs(segs(cc) / expected - 1.0) < 0.05);
  BOOST_TEST(segs(cc) > 70.0 + 0.4 * std::pow(t - 0.5, 3));
}

BOOST_AUTO_TEST_CASE(restart_after_idle_caps_cwnd_and_starts_a_new_stage) {
  const Nanos rtt = 10 * kMilli;
  Nanos now = 0;
  Cubic cc = flow_with_loss_at(100, now);
  cc.on_recovery_end(now);
  ack_one_rtt(cc, now, rtt);
  BOOST_TEST(cc.epoch_start() != kNever);
  now += 10 * kSecond;
  cc.on_idle_restart(now);
  BOOST_TEST(cc.cwnd() == 10000u);  // RFC 5681 4.1: min(IW, cwnd)
  BOOST_TEST(cc.epoch_start() == kNever);
  BOOST_TEST(cc.in_slow_start());
}

BOOST_AUTO_TEST_CASE(cubic_is_deterministic) {
  auto run = [] {
    const Nanos rtt = 20 * kMilli;
    Nanos now = 0;
    Cubic cc;
    cc.init(kMss, 0);
    std::vector<uint64_t> trace;
    for (int round = 0; round < 200; ++round) {
      ack_one_rtt(cc, now, rtt);
      if (round % 10 == 9) cc.on_loss(cc.cwnd(), now), cc.on_recovery_end(now);
      if (round == 105) cc.on_rto(cc.cwnd(), now);
      trace.push_back(cc.cwnd());
    }
    return trace;
  };
  BOOST_TEST(run() == run());
}

BOOST_AUTO_TEST_CASE(undo_restores_w_max_k_and_the_stage) {
  const Nanos rtt = 10 * kMilli;
  Nanos now = 0;
  Cubic cc = flow_with_loss_at(100, now);
  cc.on_recovery_end(now);
  for (int i = 0; i < 20; ++i) ack_one_rtt(cc, now, rtt);
  const uint64_t cwnd = cc.cwnd();
  const double w_max = cc.w_max(), k = cc.k_seconds(), w_est = cc.w_est();
  const Nanos epoch = cc.epoch_start();
  cc.on_loss(cwnd, now);
  BOOST_TEST(cc.cwnd() < cwnd);
  BOOST_TEST(cc.undo_reduction(now));  // RFC 9438 4.9
  BOOST_TEST(cc.cwnd() == cwnd);
  BOOST_TEST(cc.w_max() == w_max);
  BOOST_TEST(cc.k_seconds() == k);
  BOOST_TEST(cc.w_est() == w_est);
  BOOST_TEST(cc.epoch_start() == epoch);
  BOOST_TEST(!cc.undo_reduction(now));
}
