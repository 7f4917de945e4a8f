// NewReno's window (RFC 5681, RFC 6582 window parts, RFC 3465 ABC, RFC 6928 IW) and the
// congestion-control factory behind TCP_CONGESTION.
#include <boost/test/unit_test.hpp>
#include <string>

#include "stack/net/tcp/congestion.h"
#include "stack/net/tcp/newreno.h"

using namespace shunt;

namespace {
constexpr uint32_t kMss = 1000;

// Acknowledge `bytes` in ACKs of `per_ack` bytes each.
void ack_bytes(CongestionControl& cc, uint64_t bytes, uint32_t per_ack, Nanos now = 0) {
  while (bytes > 0) {
    uint32_t n = uint32_t(std::min<uint64_t>(bytes, per_ack));
    cc.on_ack(n, cc.cwnd(), 0, now, false);
    bytes -= n;
  }
}
}  // namespace

BOOST_AUTO_TEST_CASE(initial_window_follows_rfc6928) {
  BOOST_TEST(CongestionControl::initial_window(1460) == 14600u);  // min(14600, max(2920, 14600))
  BOOST_TEST(CongestionControl::initial_window(536) == 5360u);    // 10 * 536
  BOOST_TEST(CongestionControl::initial_window(9000) == 18000u);  // 2 * 9000
  NewReno cc;
  cc.init(1460, 0);
  BOOST_TEST(cc.cwnd() == 14600u);
  BOOST_TEST(cc.in_slow_start());
  BOOST_TEST(cc.ssthresh() == CongestionControl::kInfiniteSsthresh);
  BOOST_TEST(std::string(cc.name()) == "newreno");
}

BOOST_AUTO_TEST_CASE(slow_start_grows_by_at_most_two_segments_per_ack) {
  NewReno cc;
  cc.init(kMss, 0);
  BOOST_TEST(cc.cwnd() == 10000u);
  cc.on_ack(1000, 10000, 0, 0, false);
  BOOST_TEST(cc.cwnd() == 11000u);
  cc.on_ack(5000, 10000, 0, 0, false);  // stretch ACK: RFC 3465 L = 2*SMSS
  BOOST_TEST(cc.cwnd() == 13000u);
  cc.on_ack(300, 10000, 0, 0, false);  // a partial segment counts by bytes
  BOOST_TEST(cc.cwnd() == 13300u);
}

BOOST_AUTO_TEST_CASE(slow_start_doubles_per_rtt_with_delayed_acks) {
  NewReno cc;
  cc.init(kMss, 0);
  for (int rtt = 0; rtt < 5; ++rtt) {
    uint64_t before = cc.cwnd();
    ack_bytes(cc, before, 2 * kMss);  // one ACK per two segments (RFC 5681 4.2)
    BOOST_TEST(cc.cwnd() == 2 * before);
  }
}

BOOST_AUTO_TEST_CASE(slow_start_stops_at_ssthresh_and_the_rest_counts_toward_avoidance) {
  NewReno cc;
  cc.init(kMss, 0);
  cc.set_cwnd(11000);
  cc.set_ssthresh(12000);
  cc.on_ack(2000, 11000, 0, 0, false);  // 1000 to reach ssthresh, 1000 toward avoidance
  BOOST_TEST(cc.cwnd() == 12000u);
  BOOST_TEST(!cc.in_slow_start());
  ack_bytes(cc, 10000, kMss);  // 1000 + 10000 < 12000: no increase yet
  BOOST_TEST(cc.cwnd() == 12000u);
  ack_bytes(cc, 1000, kMss);  // now a cwnd's worth was ACKed
  BOOST_TEST(cc.cwnd() == 13000u);
}

BOOST_AUTO_TEST_CASE(congestion_avoidance_grows_about_one_segment_per_rtt) {
  NewReno cc;
  cc.init(kMss, 0);
  cc.on_loss(40000, 0);  // ssthresh = cwnd = 20000
  BOOST_TEST(cc.cwnd() == 20000u);
  BOOST_TEST(!cc.in_slow_start());
  for (int rtt = 0; rtt < 20; ++rtt) {
    uint64_t before = cc.cwnd();
    ack_bytes(cc, before, kMss);  // a window of ACKs, one per segment
    BOOST_TEST(cc.cwnd() == before + kMss);
  }
  // With ACKs every two segments the growth is the same: byte counting.
  for (int rtt = 0; rtt < 5; ++rtt) {
    uint64_t before = cc.cwnd();
    ack_bytes(cc, before, 2 * kMss);
    BOOST_TEST(cc.cwnd() == before + kMss);
  }
  // A giant stretch ACK gives one segment, not many.
  uint64_t before = cc.cwnd();
  cc.on_ack(1'000'000'000u, before, 0, 0, false);
  BOOST_TEST(cc.cwnd() == before + kMss);
}

BOOST_AUTO_TEST_CASE(an_application_limited_sender_does_not_grow_cwnd) {
  NewReno cc;
  cc.init(kMss, 0);
  for (int i = 0; i < 100; ++i) cc.on_ack(kMss, 2000, 0, 0, true);
  BOOST_TEST(cc.cwnd() == 10000u);
  cc.on_loss(40000, 0);
  for (int i = 0; i < 100; ++i) cc.on_ack(kMss, 2000, 0, 0, true);
  BOOST_TEST(cc.cwnd() == 20000u);
}

BOOST_AUTO_TEST_CASE(loss_halves_the_flight_with_a_two_segment_floor) {
  NewReno cc;
  cc.init(kMss, 0);
  cc.on_loss(30000, 0);  // RFC 5681 (4): max(FlightSize/2, 2*SMSS)
  BOOST_TEST(cc.ssthresh() == 15000u);
  BOOST_TEST(cc.cwnd() == 15000u);
  cc.on_loss(1500, 0);
  BOOST_TEST(cc.ssthresh() == 2000u);
  BOOST_TEST(cc.cwnd() == 2000u);
  // The engine inflates during recovery (RFC 6582 3.2 step 4); the end deflates.
  cc.on_loss(30000, 0);
  cc.set_cwnd(cc.cwnd() + 3 * kMss);
  cc.on_recovery_end(0);
  BOOST_TEST(cc.cwnd() == 15000u);
}

BOOST_AUTO_TEST_CASE(rto_collapses_cwnd_to_one_segment_and_repeats_keep_ssthresh) {
  NewReno cc;
  cc.init(kMss, 0);
  cc.set_cwnd(50000);
  cc.on_rto(40000, 0);
  BOOST_TEST(cc.ssthresh() == 20000u);  // RFC 5681 (4)
  BOOST_TEST(cc.cwnd() == 1000u);       // RFC 5681 3.1: LW = 1 segment
  BOOST_TEST(cc.in_slow_start());
  cc.on_rto(1000, 0);  // the same segment timed out again: ssthresh held
  BOOST_TEST(cc.ssthresh() == 20000u);
  BOOST_TEST(cc.cwnd() == 1000u);
  cc.on_ack(kMss, 1000, 0, 0, false);  // new data ACKed
  BOOST_TEST(cc.cwnd() == 2000u);
  cc.on_rto(2000, 0);  // a new loss event
  BOOST_TEST(cc.ssthresh() == 2000u);
  BOOST_TEST(cc.cwnd() == 1000u);
}

BOOST_AUTO_TEST_CASE(restart_after_idle_goes_back_to_the_initial_window_at_most) {
  NewReno cc;
  cc.init(kMss, 0);
  cc.set_cwnd(50000);
  cc.on_idle_restart(0);  // RFC 5681 4.1: RW = min(IW, cwnd)
  BOOST_TEST(cc.cwnd() == 10000u);
  cc.set_cwnd(3000);
  cc.on_idle_restart(0);
  BOOST_TEST(cc.cwnd() == 3000u);
}

BOOST_AUTO_TEST_CASE(mss_changes_keep_cwnd_in_bytes_and_at_least_one_segment) {
  NewReno cc;
  cc.init(kMss, 0);
  cc.set_mss(1400);
  BOOST_TEST(cc.mss() == 1400u);
  BOOST_TEST(cc.cwnd() == 10000u);
  cc.on_rto(10000, 0);
  BOOST_TEST(cc.cwnd() == 1400u);
  cc.set_mss(20000);
  BOOST_TEST(cc.cwnd() == 20000u);
}

BOOST_AUTO_TEST_CASE(factory_knows_newreno_reno_and_cubic_and_nothing_else) {
  auto nr = make_congestion_control("newreno");
  BOOST_REQUIRE(nr);
  BOOST_TEST(std::string(nr->name()) == "newreno");
  auto reno = make_congestion_control("reno");  // Linux's name for the same thing
  BOOST_REQUIRE(reno);
  BOOST_TEST(std::string(reno->name()) == "newreno");
  auto cubic = make_congestion_control("cubic");
  BOOST_REQUIRE(cubic);
  BOOST_TEST(std::string(cubic->name()) == "cubic");
  BOOST_TEST(!make_congestion_control("bbr"));
  BOOST_TEST(!make_congestion_control(""));
  BOOST_TEST(!make_congestion_control("CUBIC"));
  BOOST_TEST(!make_congestion_control(std::string_view("cubic\0", 6)));
}

BOOST_AUTO_TEST_CASE(a_spurious_reduction_is_undone_once_while_cwnd_is_lower) {
  NewReno cc;
  cc.init(kMss, 0);
  BOOST_TEST(!cc.undo_reduction(0));  // nothing to undo
  cc.set_cwnd(40000);
  cc.set_ssthresh(30000);
  cc.on_loss(40000, 0);
  BOOST_TEST(cc.cwnd() == 20000u);
  BOOST_TEST(cc.undo_reduction(0));  // e.g. a D-SACK showed the retransmission needless
  BOOST_TEST(cc.cwnd() == 40000u);
  BOOST_TEST(cc.ssthresh() == 30000u);
  BOOST_TEST(!cc.undo_reduction(0));  // once
  cc.on_rto(40000, 0);
  BOOST_TEST(cc.cwnd() == 1000u);
  BOOST_TEST(cc.undo_reduction(0));  // a spurious RTO (F-RTO, Eifel)
  BOOST_TEST(cc.cwnd() == 40000u);
  // Detected too late: cwnd already grew past the old value, keep the current state.
  cc.on_loss(40000, 0);
  cc.set_cwnd(50000);
  BOOST_TEST(!cc.undo_reduction(0));
  BOOST_TEST(cc.cwnd() == 50000u);
}
