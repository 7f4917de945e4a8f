// The connection state machine between two stacks: open, data both ways, half-close,
// simultaneous open and close, RST in each state, TIME_WAIT, listen queues.
#include "tcp_engine_support.h"

using namespace shunt;
using namespace shunt::test;

BOOST_AUTO_TEST_CASE(three_way_handshake_then_bulk_data_both_ways_arrives_intact) {
  TcpPair p;
  auto [c, s] = p.connect();
  BOOST_CHECK(p.b().state(*s) == TcpState::kEstablished);
  const auto up = pattern(3 << 20, 1);
  auto got = p.transfer(p.a(), *c, p.b(), *s, up);
  BOOST_REQUIRE_EQUAL(got.size(), up.size());
  BOOST_CHECK(got == up);
  const auto down = pattern(2 << 20, 2);
  got = p.transfer(p.b(), *s, p.a(), *c, down);
  BOOST_REQUIRE_EQUAL(got.size(), down.size());
  BOOST_CHECK(got == down);
}

BOOST_AUTO_TEST_CASE(ipv6_connection_carries_data) {
  TcpPair p;
  auto [c, s] = p.connect(6000, true);
  const auto up = pattern(1 << 20, 3);
  auto got = p.transfer(p.a(), *c, p.b(), *s, up);
  BOOST_CHECK(got == up);
}

BOOST_AUTO_TEST_CASE(graceful_close_goes_through_fin_states_to_time_wait_and_expires) {
  TcpPair p;
  auto [c, s] = p.connect();
  BOOST_CHECK_EQUAL(p.a().shutdown(*c, SHUT_WR), 0);
  BOOST_REQUIRE(p.run([&] { return p.b().state(*s) == TcpState::kCloseWait; }));
  BOOST_REQUIRE(p.run([&] { return p.a().state(*c) == TcpState::kFinWait2; }));
  char b[8];
  BOOST_CHECK_EQUAL(trecv(p.b(), *s, b, sizeof b), 0);  // EOF
  BOOST_CHECK(p.b().events(*s) & POLLRDHUP);
  // Half-close: the server still sends.
  BOOST_CHECK_EQUAL(tsend(p.b(), *s, "late", 4), 4);
  BOOST_REQUIRE(p.run([&] { return p.a().rx_queued(*c) == 4; }));
  p.b().close(*s);
  BOOST_REQUIRE(p.run([&] { return p.a().state(*c) == TcpState::kTimeWait; }));
  BOOST_CHECK(p.run([&] { return p.b().count_in_state(TcpState::kLastAck) + p.b().count_in_state(TcpState::kClosed) == 0; }));
  p.a().close(*c);
  BOOST_CHECK_EQUAL(p.a().count_in_state(TcpState::kTimeWait), 1u);
  p.h->run_for(59 * kSecond);
  BOOST_CHECK_EQUAL(p.a().count_in_state(TcpState::kTimeWait), 1u);
  p.h->run_for(2 * kSecond);
  BOOST_CHECK_EQUAL(p.a().count_in_state(TcpState::kTimeWait), 0u);
  BOOST_CHECK_EQUAL(p.a().connection_count(), 0u);
}
