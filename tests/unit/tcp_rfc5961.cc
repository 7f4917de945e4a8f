// RFC 5961 blind-attack defences and RFC 7323 PAWS, against hand-built segments.
#include "tcp_engine_support.h"

using namespace shunt;
using namespace shunt::test;

namespace {
bool is_challenge_ack(const TcpRig::Out& o, const TcpRig::Passive& p) {
  return o.has(kTcpAck) && !o.has(kTcpRst) && !o.has(kTcpSyn) && o.h.ack == p.snd && o.h.seq == p.rcv &&
         o.payload.empty();
}
}  // namespace

BOOST_AUTO_TEST_CASE(rst_with_exact_sequence_number_resets_the_connection) {
  TcpRig r;
  auto p = r.accept_one();
  r.send(r.peer(p, kTcpRst));
  BOOST_CHECK(r.tcp().state(*p.conn) == TcpState::kClosed);
  BOOST_CHECK_EQUAL(r.tcp().take_error(*p.conn), ECONNRESET);
  BOOST_CHECK(r.out().empty());  // never answer a RST
  BOOST_CHECK_EQUAL(r.counter("tcp.resets_received"), 1u);
}

BOOST_AUTO_TEST_CASE(rst_inside_the_window_but_not_exact_gets_a_challenge_ack) {
  TcpRig r;
  auto p = r.accept_one();
  auto s = r.peer(p, kTcpRst);
  s.seq = p.snd + 1000;
  r.send(s);
  BOOST_CHECK(r.tcp().state(*p.conn) == TcpState::kEstablished);
  auto o = r.out();
  BOOST_REQUIRE_EQUAL(o.size(), 1u);
  BOOST_CHECK(is_challenge_ack(o[0], p));
  BOOST_CHECK_EQUAL(r.counter("tcp.drop.rst_challenged"), 1u);
  BOOST_CHECK_EQUAL(r.counter("tcp.challenge_acks"), 1u);
}

BOOST_AUTO_TEST_CASE(rst_outside_the_window_is_dropped_silently) {
  TcpRig r;
  auto p = r.accept_one();
  for (uint32_t off : {0x40000000u, 0xfff00000u}) {
    auto s = r.peer(p, kTcpRst);
    s.seq = p.snd + off;
    r.send(s);
  }
  BOOST_CHECK(r.tcp().state(*p.conn) == TcpState::kEstablished);
  BOOST_CHECK(r.out().empty());
  BOOST_CHECK_EQUAL(r.counter("tcp.drop.rst_out_of_window"), 2u);
}

BOOST_AUTO_TEST_CASE(syn_in_a_synchronized_state_gets_a_challenge_ack_whatever_its_sequence) {
  TcpRig r;
  auto p = r.accept_one();
  for (uint32_t off : {0u, 500u, 0x80000000u}) {
    auto s = r.peer(p, kTcpSyn);
    s.seq = p.snd + off;
    r.send(s);
    auto o = r.out();
    BOOST_REQUIRE_EQUAL(o.size(), 1u);
    BOOST_CHECK(is_challenge_ack(o[0], p));
  }
  BOOST_CHECK(r.tcp().state(*p.conn) == TcpState::kEstablished);
  BOOST_CHECK_EQUAL(r.counter("tcp.drop.syn_challenged"), 3u);
}

BOOST_AUTO_TEST_CASE(ack_of_data_never_sent_is_dropped_and_answered) {
  TcpRig r;
  auto p = r.accept_one();
  auto s = r.peer(p, kTcpAck, Bytes{1, 2, 3});
  s.ack = p.rcv + 5000;  // beyond SND.NXT
  r.send(s);
  auto o = r.out();
  BOOST_REQUIRE_EQUAL(o.size(), 1u);
  BOOST_CHECK(is_challenge_ack(o[0], p));  // and the data was not taken
  BOOST_CHECK_EQUAL(r.tcp().rx_queued(*p.conn), 0u);
  BOOST_CHECK_EQUAL(r.counter("tcp.drop.future_ack"), 1u);
}

BOOST_AUTO_TEST_CASE(ack_older_than_the_largest_window_is_dropped_and_answered) {
  TcpRig r;
  auto p = r.accept_one();
  auto s = r.peer(p, kTcpAck, Bytes{1, 2, 3});
  s.ack = p.rcv - 0x20000000u;  // far below SND.UNA - MAX.SND.WND
  r.send(s);
  auto o = r.out();
  BOOST_REQUIRE_EQUAL(o.size(), 1u);
  BOOST_CHECK(is_challenge_ack(o[0], p));
  BOOST_CHECK_EQUAL(r.tcp().rx_queued(*p.conn), 0u);
  BOOST_CHECK_EQUAL(r.counter("tcp.drop.old_ack"), 1u);
  // An old but acceptable ACK (within the window below SND.UNA) is fine: its data is taken.
  s.ack = p.rcv - 100;
  r.send(s);
  BOOST_CHECK_EQUAL(r.tcp().rx_queued(*p.conn), 3u);
}

BOOST_AUTO_TEST_CASE(challenge_acks_are_rate_limited_per_second) {
  TcpRig r;
  auto p = r.accept_one();
  for (int i = 0; i < 1100; ++i) {
    auto s = r.peer(p, kTcpRst);
    s.seq = p.snd + 1 + uint32_t(i);
    r.send(s);
  }
  BOOST_CHECK_EQUAL(r.out().size(), 1000u);
  BOOST_CHECK_EQUAL(r.counter("tcp.drop.challenge_ack_limit"), 100u);
  // A second later the budget is back.
  r.advance(kSecond);
  auto s = r.peer(p, kTcpRst);
  s.seq = p.snd + 7;
  r.send(s);
  BOOST_CHECK_EQUAL(r.out().size(), 1u);
  BOOST_CHECK(r.tcp().state(*p.conn) == TcpState::kEstablished);
}

BOOST_AUTO_TEST_CASE(paws_drops_a_segment_with_an_old_timestamp_and_acks) {
  TcpRig r;
  auto p = r.accept_one();
  p.tsval = 5000;
  r.send(r.peer(p, kTcpAck, Bytes{'a'}));
  p.snd += 1;
  BOOST_CHECK_EQUAL(r.tcp().rx_queued(*p.conn), 1u);
  r.out();
  p.tsval = 4000;  // older than TS.Recent
  r.send(r.peer(p, kTcpAck, Bytes{'b'}));
  BOOST_CHECK_EQUAL(r.tcp().rx_queued(*p.conn), 1u);
  BOOST_CHECK_EQUAL(r.counter("tcp.drop.paws"), 1u);
  auto o = r.out();
  BOOST_REQUIRE_EQUAL(o.size(), 1u);
  BOOST_CHECK(o[0].o.has_timestamps);
  BOOST_CHECK_EQUAL(o[0].o.tsecr, 5000u);
  // A RST is exempt from PAWS (RFC 7323 5.3 R1).
  r.send(r.peer(p, kTcpRst));
  BOOST_CHECK(r.tcp().state(*p.conn) == TcpState::kClosed);
}

BOOST_AUTO_TEST_CASE(data_outside_the_window_is_answered_with_an_ack_and_not_taken) {
  TcpRig r;
  auto p = r.accept_one();
  auto s = r.peer(p, kTcpAck, Bytes(10, 'x'));
  s.seq = p.snd + (64u << 20);
  r.send(s);
  BOOST_CHECK_EQUAL(r.tcp().rx_queued(*p.conn), 0u);
  BOOST_CHECK_EQUAL(r.counter("tcp.drop.out_of_window"), 1u);
  auto o = r.out();
  BOOST_REQUIRE_EQUAL(o.size(), 1u);
  BOOST_CHECK(is_challenge_ack(o[0], p));
}
