// Timers in virtual time: SYN and data retransmission with backoff, delayed ACKs, persist
// probes, keepalive, TCP_USER_TIMEOUT, FIN_WAIT_2 and TIME_WAIT.
#include "tcp_engine_support.h"

using namespace shunt;
using namespace shunt::test;

namespace {
// Advances in `step`s up to `total`, recording when segments matching `pred` went out.
template <typename Pred>
std::vector<Nanos> watch(TcpRig& r, Nanos total, Nanos step, Pred pred) {
  std::vector<Nanos> at;
  for (Nanos t = 0; t < total; t += step) {
    r.advance(step);
    for (auto& o : r.out()) {
      if (pred(o)) at.push_back(r.clock.now());
    }
  }
  return at;
}
int setint(Tcp& t, TcpSocket& s, int level, int name, int v) { return t.setsockopt(s, level, name, &v, sizeof v); }
}  // namespace

BOOST_AUTO_TEST_CASE(syn_is_retransmitted_with_exponential_backoff_then_times_out) {
  TcpRig r;
  TcpSocket* s = r.tcp().open(Family::kV4);
  BOOST_REQUIRE_EQUAL(setint(r.tcp(), *s, IPPROTO_TCP, TCP_SYNCNT, 3), 0);
  const Nanos t0 = r.clock.now();
  BOOST_REQUIRE_EQUAL(r.tcp().connect(*s, IpAddr(kPeerIp), 80), -EINPROGRESS);
  auto first = r.out();
  BOOST_REQUIRE_EQUAL(first.size(), 1u);
  BOOST_CHECK(first[0].has(kTcpSyn) && first[0].o.has_mss && first[0].o.has_wscale && first[0].o.sack_permitted &&
              first[0].o.has_timestamps);
  auto at = watch(r, 20 * kSecond, 10 * kMilli, [](const TcpRig::Out& o) { return o.has(kTcpSyn); });
  BOOST_REQUIRE_EQUAL(at.size(), 3u);
  BOOST_CHECK_EQUAL((at[0] - t0) / kMilli, 1000);  // RFC 6298 2.1: 1 s
  BOOST_CHECK_EQUAL((at[1] - at[0]) / kMilli, 2000);
  BOOST_CHECK_EQUAL((at[2] - at[1]) / kMilli, 4000);
  BOOST_CHECK(r.tcp().state(*s) == TcpState::kClosed);
  BOOST_CHECK(r.tcp().events(*s) & POLLERR);
  BOOST_CHECK_EQUAL(r.tcp().take_error(*s), ETIMEDOUT);
}

BOOST_AUTO_TEST_CASE(unacknowledged_data_is_retransmitted_with_backoff_from_the_minimum_rto) {
  TcpRig r;
  auto p = r.accept_one();
  BOOST_REQUIRE_EQUAL(tsend(r.tcp(), *p.conn, "hello", 5), 5);
  auto o = r.out();
  BOOST_REQUIRE_EQUAL(o.size(), 1u);
  BOOST_CHECK_EQUAL(o[0].payload.size(), 5u);
  const Nanos t0 = r.clock.now();
  auto at = watch(r, 4 * kSecond, kMilli, [](const TcpRig::Out& o) { return o.payload.size() == 5; });
  BOOST_REQUIRE_GE(at.size(), 4u);
  // The handshake's RTT sample was ~0: RTO is the 200 ms minimum, then doubles (RFC 6298 5.5).
  BOOST_CHECK_EQUAL((at[0] - t0) / kMilli, 200);
  BOOST_CHECK_EQUAL((at[1] - at[0]) / kMilli, 400);
  BOOST_CHECK_EQUAL((at[2] - at[1]) / kMilli, 800);
  BOOST_CHECK_EQUAL((at[3] - at[2]) / kMilli, 1600);
  BOOST_CHECK_EQUAL(r.counter("tcp.rto_timeouts"), at.size());
  // An ACK ends it; the backoff is forgotten.
  p.rcv += 5;
  r.ack(p);
  BOOST_REQUIRE_EQUAL(tsend(r.tcp(), *p.conn, "again", 5), 5);
  r.out();
  at = watch(r, 300 * kMilli, kMilli, [](const TcpRig::Out& o) { return o.payload.size() == 5; });
  BOOST_CHECK_EQUAL(at.size(), 1u);
}

BOOST_AUTO_TEST_CASE(delayed_ack_every_second_full_segment_or_after_40ms) {
  TcpRig r;
  auto p = r.accept_one();
  const size_t full = 1460 - 12;  // MSS minus the timestamp option
  r.send(r.peer(p, kTcpAck, Bytes(full, 'a')));
  p.snd += uint32_t(full);
  BOOST_CHECK(r.out().empty());  // the first full segment waits
  r.send(r.peer(p, kTcpAck, Bytes(full, 'b')));
  p.snd += uint32_t(full);
  auto o = r.out();
  BOOST_REQUIRE_EQUAL(o.size(), 1u);  // the second is ACKed at once
  BOOST_CHECK_EQUAL(o[0].h.ack, p.snd);
  // A small segment: ACKed when the 40 ms delayed-ACK timer fires.
  r.send(r.peer(p, kTcpAck, Bytes(10, 'c')));
  p.snd += 10;
  BOOST_CHECK(r.out().empty());
  auto at = watch(r, 100 * kMilli, kMilli, [&](const TcpRig::Out& o) { return o.h.ack == p.snd; });
  BOOST_REQUIRE_EQUAL(at.size(), 1u);
  BOOST_CHECK_EQUAL(r.counter("tcp.delayed_acks"), 1u);
  // TCP_QUICKACK: every segment at once.
  BOOST_CHECK_EQUAL(setint(r.tcp(), *p.conn, IPPROTO_TCP, TCP_QUICKACK, 1), 0);
  r.send(r.peer(p, kTcpAck, Bytes(10, 'd')));
  p.snd += 10;
  o = r.out();
  BOOST_REQUIRE_EQUAL(o.size(), 1u);
  BOOST_CHECK_EQUAL(o[0].h.ack, p.snd);
}

BOOST_AUTO_TEST_CASE(out_of_order_data_is_acked_at_once_with_sack_blocks) {
  TcpRig r;
  auto p = r.accept_one();
  auto s = r.peer(p, kTcpAck, Bytes(100, 'x'));
  s.seq = p.snd + 100;
  r.send(s);
  s.seq = p.snd + 300;
  r.send(s);
  auto o = r.out();
  BOOST_REQUIRE_EQUAL(o.size(), 2u);
  BOOST_CHECK_EQUAL(o[1].h.ack, p.snd);
  BOOST_REQUIRE_EQUAL(o[1].o.sack_count, 2);
  // RFC 2018 4: the most recent block first.
  BOOST_CHECK_EQUAL(o[1].o.sack[0].left, p.snd + 300);
  BOOST_CHECK_EQUAL(o[1].o.sack[1].left, p.snd + 100);
  // Filling the first hole: ACKed at once, one block left.
  s.seq = p.snd;
  r.send(s);
  o = r.out();
  BOOST_REQUIRE_EQUAL(o.size(), 1u);
  BOOST_CHECK_EQUAL(o[0].h.ack, p.snd + 200);
  BOOST_CHECK_EQUAL(o[0].o.sack_count, 1);
  BOOST_CHECK_EQUAL(r.tcp().rx_queued(*p.conn), 200u);
  // A duplicate is reported with a D-SACK (RFC 2883).
  s.seq = p.snd;
  r.send(s);
  o = r.out();
  BOOST_REQUIRE_EQUAL(o.size(), 1u);
  BOOST_REQUIRE_GE(o[0].o.sack_count, 1);
  BOOST_CHECK_EQUAL(o[0].o.sack[0].left, p.snd);
  BOOST_CHECK_EQUAL(o[0].o.sack[0].right, p.snd + 100);
}

BOOST_AUTO_TEST_CASE(zero_window_is_probed_with_backoff_until_it_opens) {
  TcpRig r;
  auto p = r.accept_one();
  auto z = r.peer(p);
  z.window = 0;
  r.send(z);
  BOOST_REQUIRE_EQUAL(tsend(r.tcp(), *p.conn, "blocked", 7), 7);
  BOOST_CHECK(r.out().empty());
  const Nanos t0 = r.clock.now();
  auto at = watch(r, 3 * kSecond, kMilli, [&](const TcpRig::Out& o) { return o.payload.empty() && o.h.seq == p.rcv - 1; });
  BOOST_REQUIRE_GE(at.size(), 3u);
  BOOST_CHECK_EQUAL((at[0] - t0) / kMilli, 200);
  BOOST_CHECK_EQUAL((at[1] - at[0]) / kMilli, 400);
  BOOST_CHECK_EQUAL((at[2] - at[1]) / kMilli, 800);
  BOOST_CHECK_GE(r.counter("tcp.zero_window_probes"), 3u);
  BOOST_CHECK(r.tcp().state(*p.conn) == TcpState::kEstablished);
  // The window opens: the data goes.
  r.send(r.peer(p));
  auto o = r.out();
  BOOST_REQUIRE_EQUAL(o.size(), 1u);
  BOOST_CHECK_EQUAL(o[0].payload.size(), 7u);
}

BOOST_AUTO_TEST_CASE(keepalive_probes_then_drops_a_silent_peer_with_etimedout) {
  TcpRig r;
  auto p = r.accept_one();
  TcpSocket& s = *p.conn;
  BOOST_CHECK_EQUAL(setint(r.tcp(), s, SOL_SOCKET, SO_KEEPALIVE, 1), 0);
  BOOST_CHECK_EQUAL(setint(r.tcp(), s, IPPROTO_TCP, TCP_KEEPIDLE, 10), 0);
  BOOST_CHECK_EQUAL(setint(r.tcp(), s, IPPROTO_TCP, TCP_KEEPINTVL, 2), 0);
  BOOST_CHECK_EQUAL(setint(r.tcp(), s, IPPROTO_TCP, TCP_KEEPCNT, 3), 0);
  const Nanos t0 = r.clock.now();
  // An answered probe keeps it alive.
  auto at = watch(r, 10500 * kMilli, 10 * kMilli, [&](const TcpRig::Out& o) { return o.h.seq == p.rcv - 1; });
  BOOST_REQUIRE_EQUAL(at.size(), 1u);
  BOOST_CHECK_EQUAL((at[0] - t0) / kMilli, 10000);
  r.ack(p);
  // Now silence: three probes two seconds apart, then RST and ETIMEDOUT.
  const Nanos t1 = r.clock.now();
  std::vector<Nanos> probes, rsts;
  for (int i = 0; i < 2000; ++i) {
    r.advance(10 * kMilli);
    for (auto& o : r.out()) (o.has(kTcpRst) ? rsts : probes).push_back(r.clock.now());
  }
  BOOST_REQUIRE_EQUAL(probes.size(), 3u);
  BOOST_CHECK_EQUAL((probes[0] - t1) / kSecond, 10);  // idle since the answer
  BOOST_CHECK_EQUAL((probes[1] - probes[0]) / kMilli, 2000);
  BOOST_REQUIRE_EQUAL(rsts.size(), 1u);
  BOOST_CHECK_EQUAL((rsts[0] - probes[2]) / kMilli, 2000);
  BOOST_CHECK(r.tcp().state(s) == TcpState::kClosed);
  BOOST_CHECK_EQUAL(r.tcp().take_error(s), ETIMEDOUT);
}

BOOST_AUTO_TEST_CASE(user_timeout_aborts_when_data_stays_unacknowledged) {
  TcpRig r;
  auto p = r.accept_one();
  BOOST_CHECK_EQUAL(setint(r.tcp(), *p.conn, IPPROTO_TCP, TCP_USER_TIMEOUT, 3000), 0);
  BOOST_REQUIRE_EQUAL(tsend(r.tcp(), *p.conn, "x", 1), 1);
  const Nanos t0 = r.clock.now();
  for (int i = 0; i < 1000 && r.tcp().state(*p.conn) != TcpState::kClosed; ++i) r.advance(10 * kMilli);
  BOOST_CHECK(r.tcp().state(*p.conn) == TcpState::kClosed);
  BOOST_CHECK_GE(r.clock.now() - t0, 3 * kSecond);
  BOOST_CHECK_LE(r.clock.now() - t0, 5 * kSecond);
  BOOST_CHECK_EQUAL(r.tcp().take_error(*p.conn), ETIMEDOUT);
}

BOOST_AUTO_TEST_CASE(orphaned_fin_wait_2_times_out) {
  Config c = TcpRig::rig_config();
  c.tcp_fin_timeout_ms = 5000;
  TcpRig r(c);
  auto p = r.accept_one();
  r.tcp().close(*p.conn);
  auto o = r.out();
  BOOST_REQUIRE_EQUAL(o.size(), 1u);
  BOOST_CHECK(o[0].has(kTcpFin));
  p.rcv += 1;
  r.ack(p);  // the FIN is acknowledged, the peer's own FIN never comes
  BOOST_CHECK_EQUAL(r.tcp().count_in_state(TcpState::kFinWait2), 1u);
  r.advance(4900 * kMilli);
  BOOST_CHECK_EQUAL(r.tcp().count_in_state(TcpState::kFinWait2), 1u);
  r.advance(200 * kMilli);
  BOOST_CHECK_EQUAL(r.tcp().count_in_state(TcpState::kFinWait2), 0u);
  BOOST_CHECK_EQUAL(r.tcp().connection_count(), 0u);
}

BOOST_AUTO_TEST_CASE(time_wait_lasts_2msl_answers_fin_retransmissions_and_yields_to_a_newer_syn) {
  TcpRig r;
  auto p = r.accept_one();
  r.tcp().close(*p.conn);  // active close from our side
  r.out();
  p.rcv += 1;
  p.tsval += 10;
  r.send(r.peer(p, kTcpAck | kTcpFin));
  p.snd += 1;
  auto o = r.out();
  BOOST_REQUIRE_EQUAL(o.size(), 1u);
  BOOST_CHECK_EQUAL(o[0].h.ack, p.snd);
  BOOST_CHECK_EQUAL(r.tcp().count_in_state(TcpState::kTimeWait), 1u);
  // A retransmitted FIN is ACKed again.
  auto fin = r.peer(p, kTcpAck | kTcpFin);
  fin.seq = p.snd - 1;
  r.send(fin);
  BOOST_CHECK_EQUAL(r.out().size(), 1u);
  // A SYN with an older timestamp is not a new connection: it gets an ACK.
  TcpRig::Seg syn;
  syn.seq = p.snd + 100000;
  syn.flags = kTcpSyn;
  syn.options = TcpRig::syn_options(1460, 7, true, true, p.tsval - 5);
  r.send(syn);
  o = r.out();
  BOOST_REQUIRE_EQUAL(o.size(), 1u);
  BOOST_CHECK(!o[0].has(kTcpSyn));
  // A newer one reopens it (RFC 6191).
  syn.options = TcpRig::syn_options(1460, 7, true, true, p.tsval + 100);
  r.send(syn);
  o = r.out();
  BOOST_REQUIRE_EQUAL(o.size(), 1u);
  BOOST_CHECK(o[0].has(kTcpSyn) && o[0].has(kTcpAck));
  BOOST_CHECK_EQUAL(r.counter("tcp.timewait_reused"), 1u);
  BOOST_CHECK_EQUAL(r.tcp().count_in_state(TcpState::kTimeWait), 0u);
  BOOST_CHECK_EQUAL(r.tcp().count_in_state(TcpState::kSynReceived), 1u);
}

BOOST_AUTO_TEST_CASE(time_wait_expires_after_the_configured_2msl) {
  Config c = TcpRig::rig_config();
  c.tcp_time_wait_ms = 2000;
  TcpRig r(c);
  auto p = r.accept_one();
  r.tcp().close(*p.conn);
  r.out();
  p.rcv += 1;
  r.send(r.peer(p, kTcpAck | kTcpFin));
  BOOST_CHECK_EQUAL(r.tcp().count_in_state(TcpState::kTimeWait), 1u);
  r.advance(1900 * kMilli);
  BOOST_CHECK_EQUAL(r.tcp().count_in_state(TcpState::kTimeWait), 1u);
  r.advance(200 * kMilli);
  BOOST_CHECK_EQUAL(r.tcp().count_in_state(TcpState::kTimeWait), 0u);
  BOOST_CHECK_EQUAL(r.tcp().connection_count(), 0u);
}
