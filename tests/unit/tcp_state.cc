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

BOOST_AUTO_TEST_CASE(simultaneous_open_establishes_both_sides) {
  TcpPair p;
  TcpSocket* x = p.a().open(Family::kV4);
  TcpSocket* y = p.b().open(Family::kV4);
  BOOST_REQUIRE_EQUAL(p.a().bind(*x, p.addr(0), 7000), 0);
  BOOST_REQUIRE_EQUAL(p.b().bind(*y, p.addr(1), 7001), 0);
  BOOST_CHECK_EQUAL(p.a().connect(*x, p.addr(1), 7001), -EINPROGRESS);
  BOOST_CHECK_EQUAL(p.b().connect(*y, p.addr(0), 7000), -EINPROGRESS);
  BOOST_REQUIRE(p.run([&] {
    return p.a().state(*x) == TcpState::kEstablished && p.b().state(*y) == TcpState::kEstablished;
  }));
  const auto d = pattern(100000, 9);
  BOOST_CHECK(p.transfer(p.a(), *x, p.b(), *y, d) == d);
  BOOST_CHECK(p.transfer(p.b(), *y, p.a(), *x, d) == d);
}

BOOST_AUTO_TEST_CASE(simultaneous_close_passes_through_closing_to_time_wait_on_both_sides) {
  TcpPair p;
  auto [c, s] = p.connect();
  BOOST_CHECK_EQUAL(p.a().shutdown(*c, SHUT_WR), 0);
  BOOST_CHECK_EQUAL(p.b().shutdown(*s, SHUT_WR), 0);
  BOOST_REQUIRE(p.run([&] {
    return p.a().state(*c) == TcpState::kTimeWait && p.b().state(*s) == TcpState::kTimeWait;
  }));
  char b[4];
  BOOST_CHECK_EQUAL(trecv(p.a(), *c, b, 4), 0);
  BOOST_CHECK_EQUAL(tsend(p.a(), *c, "x", 1), -EPIPE);
  BOOST_CHECK(p.a().events(*c) & POLLHUP);
}

BOOST_AUTO_TEST_CASE(zero_linger_close_resets_the_peer) {
  TcpPair p;
  auto [c, s] = p.connect();
  linger l{1, 0};
  BOOST_CHECK_EQUAL(p.a().setsockopt(*c, SOL_SOCKET, SO_LINGER, &l, sizeof l), 0);
  p.a().close(*c);
  BOOST_REQUIRE(p.run([&] { return p.b().state(*s) == TcpState::kClosed; }));
  char b[4];
  BOOST_CHECK_EQUAL(trecv(p.b(), *s, b, 4), -ECONNRESET);
  BOOST_CHECK_EQUAL(trecv(p.b(), *s, b, 4), 0);
  BOOST_CHECK_EQUAL(tsend(p.b(), *s, "x", 1), -EPIPE);
  BOOST_CHECK_EQUAL(p.a().connection_count(), 0u);
}

BOOST_AUTO_TEST_CASE(close_with_unread_data_resets_instead_of_fin) {
  TcpPair p;
  auto [c, s] = p.connect();
  BOOST_CHECK_EQUAL(tsend(p.a(), *c, "unread", 6), 6);
  BOOST_REQUIRE(p.run([&] { return p.b().rx_queued(*s) == 6; }));
  p.b().close(*s);
  BOOST_REQUIRE(p.run([&] { return p.a().state(*c) == TcpState::kClosed; }));
  BOOST_CHECK_EQUAL(p.a().take_error(*c), ECONNRESET);
}

BOOST_AUTO_TEST_CASE(connect_to_a_closed_port_is_refused) {
  TcpPair p;
  TcpSocket* c = p.a().open(Family::kV6);
  BOOST_CHECK_EQUAL(p.a().connect(*c, p.addr(1, true), 9), -EINPROGRESS);
  BOOST_REQUIRE(p.run([&] { return p.a().state(*c) == TcpState::kClosed; }));
  BOOST_CHECK(p.a().events(*c) & POLLERR);
  BOOST_CHECK_EQUAL(p.a().take_error(*c), ECONNREFUSED);
}

BOOST_AUTO_TEST_CASE(rst_in_syn_sent_refuses_and_without_ack_is_ignored) {
  TcpRig r;
  TcpSocket* s = r.tcp().open(Family::kV4);
  BOOST_REQUIRE_EQUAL(r.tcp().connect(*s, IpAddr(kPeerIp), 80), -EINPROGRESS);
  auto o = r.out();
  BOOST_REQUIRE_EQUAL(o.size(), 1u);
  TcpRig::Seg rst;
  rst.sport = 80;
  rst.dport = o[0].h.src_port;
  rst.flags = kTcpRst;
  rst.seq = 5;
  r.send(rst);
  BOOST_CHECK(r.tcp().state(*s) == TcpState::kSynSent);
  rst.flags = kTcpRst | kTcpAck;
  rst.ack = o[0].h.seq + 7;  // does not acknowledge our SYN
  r.send(rst);
  BOOST_CHECK(r.tcp().state(*s) == TcpState::kSynSent);
  rst.ack = o[0].h.seq + 1;
  r.send(rst);
  BOOST_CHECK(r.tcp().state(*s) == TcpState::kClosed);
  BOOST_CHECK_EQUAL(r.tcp().take_error(*s), ECONNREFUSED);
}

BOOST_AUTO_TEST_CASE(rst_in_syn_received_removes_the_embryo) {
  TcpRig r;
  TcpSocket* l = r.tcp().open(Family::kV4);
  BOOST_REQUIRE_EQUAL(r.tcp().bind(*l, IpAddr(Ipv4Addr{}), 80), 0);
  BOOST_REQUIRE_EQUAL(r.tcp().listen(*l, 4), 0);
  TcpRig::Seg syn;
  syn.seq = 1000;
  syn.flags = kTcpSyn;
  r.send(syn);
  BOOST_CHECK_EQUAL(r.tcp().count_in_state(TcpState::kSynReceived), 1u);
  r.out();
  TcpRig::Seg rst;
  rst.seq = 1001;
  rst.flags = kTcpRst;
  r.send(rst);
  BOOST_CHECK_EQUAL(r.tcp().count_in_state(TcpState::kSynReceived), 0u);
  int err = 0;
  BOOST_CHECK(!r.tcp().accept(*l, &err));
  BOOST_CHECK_EQUAL(err, -EAGAIN);
}

BOOST_AUTO_TEST_CASE(rst_with_exact_sequence_closes_every_synchronized_state) {
  struct Case {
    const char* name;
    TcpState state;
    int err;
  };
  for (Case k : {Case{"fin_wait_1", TcpState::kFinWait1, ECONNRESET}, Case{"fin_wait_2", TcpState::kFinWait2, ECONNRESET},
                 Case{"close_wait", TcpState::kCloseWait, ECONNRESET}, Case{"closing", TcpState::kClosing, 0},
                 Case{"last_ack", TcpState::kLastAck, 0}, Case{"time_wait", TcpState::kTimeWait, 0}}) {
    BOOST_TEST_CONTEXT(k.name) {
      TcpRig r;
      auto p = r.accept_one();
      TcpSocket& s = *p.conn;
      switch (k.state) {
        case TcpState::kFinWait1: r.tcp().shutdown(s, SHUT_WR); break;
        case TcpState::kFinWait2:
          r.tcp().shutdown(s, SHUT_WR);
          p.rcv += 1;
          r.ack(p);
          break;
        case TcpState::kCloseWait:
          r.send(r.peer(p, kTcpAck | kTcpFin));
          p.snd += 1;
          break;
        case TcpState::kClosing:
          r.tcp().shutdown(s, SHUT_WR);
          r.send(r.peer(p, kTcpAck | kTcpFin));  // its FIN crosses ours, ours not yet ACKed
          p.snd += 1;
          break;
        case TcpState::kLastAck:
          r.send(r.peer(p, kTcpAck | kTcpFin));
          p.snd += 1;
          r.tcp().shutdown(s, SHUT_WR);
          break;
        case TcpState::kTimeWait:
          r.tcp().shutdown(s, SHUT_WR);
          p.rcv += 1;
          r.send(r.peer(p, kTcpAck | kTcpFin));
          p.snd += 1;
          break;
        default: break;
      }
      BOOST_REQUIRE(r.tcp().state(s) == k.state);
      r.out();
      auto rst = r.peer(p, kTcpRst);
      r.send(rst);
      BOOST_CHECK(r.tcp().state(s) == TcpState::kClosed);
      BOOST_CHECK_EQUAL(r.tcp().take_error(s), k.err);
      BOOST_CHECK(r.out().empty());
    }
  }
}

BOOST_AUTO_TEST_CASE(syn_cookies_answer_when_the_syn_queue_is_full_and_complete_the_handshake) {
  for (bool ts : {true, false}) {
    BOOST_TEST_CONTEXT("timestamps " << ts) {
      TcpRig r;
      TcpSocket* l = r.tcp().open(Family::kV4);
      BOOST_REQUIRE_EQUAL(r.tcp().bind(*l, IpAddr(Ipv4Addr{}), 80), 0);
      BOOST_REQUIRE_EQUAL(r.tcp().listen(*l, 1), 0);
      TcpRig::Seg syn;
      syn.flags = kTcpSyn;
      syn.sport = 41000;
      syn.seq = 777;
      syn.options = TcpRig::syn_options(1460, 7, true, ts, 5000);
      r.send(syn);  // fills the SYN queue (one entry)
      BOOST_CHECK_EQUAL(r.tcp().count_in_state(TcpState::kSynReceived), 1u);
      r.out();
      syn.sport = 41001;
      syn.seq = 9999;
      r.send(syn);
      BOOST_CHECK_EQUAL(r.counter("tcp.syncookies_sent"), 1u);
      BOOST_CHECK_EQUAL(r.tcp().count_in_state(TcpState::kSynReceived), 1u);  // no state kept
      auto o = r.out();
      BOOST_REQUIRE_EQUAL(o.size(), 1u);
      BOOST_CHECK(o[0].has(kTcpSyn) && o[0].has(kTcpAck));
      BOOST_CHECK_EQUAL(o[0].h.ack, 10000u);
      BOOST_CHECK_EQUAL(o[0].o.mss, 1460);
      // A forged ACK with a wrong cookie is reset.
      TcpRig::Seg ack;
      ack.sport = 41001;
      ack.seq = 10000;
      ack.ack = o[0].h.seq + 2;
      if (ts) ack.options = TcpRig::ts_option(5001, o[0].o.tsval);
      r.send(ack);
      BOOST_CHECK_EQUAL(r.counter("tcp.drop.bad_syncookie"), 1u);
      BOOST_CHECK(r.out().at(0).has(kTcpRst));
      // The real one completes the connection, with its data.
      ack.ack = o[0].h.seq + 1;
      ack.payload = {'h', 'i'};
      r.send(ack);
      BOOST_CHECK_EQUAL(r.counter("tcp.syncookies_ok"), 1u);
      int err = 0;
      TcpSocket* c = r.tcp().accept(*l, &err);
      BOOST_REQUIRE(c);
      BOOST_CHECK(r.tcp().state(*c) == TcpState::kEstablished);
      BOOST_CHECK_EQUAL(r.tcp().rx_queued(*c), 2u);
      tcp_info ti{};
      socklen_t len = sizeof ti;
      BOOST_REQUIRE_EQUAL(r.tcp().getsockopt(*c, IPPROTO_TCP, TCP_INFO, &ti, &len), 0);
      // With timestamps, window scaling and SACK survive in the timestamp bits; without, they
      // are lost (RFC 4987 3.6).
      BOOST_CHECK_EQUAL(bool(ti.tcpi_options & 4), ts);
      BOOST_CHECK_EQUAL(bool(ti.tcpi_options & 2), ts);
      if (ts) BOOST_CHECK_EQUAL(ti.tcpi_snd_wscale, 7);
      BOOST_CHECK_EQUAL(ti.tcpi_snd_mss, ts ? 1448u : 1460u);
      // It sends and its data flows.
      BOOST_CHECK_EQUAL(tsend(r.tcp(), *c, "yo", 2), 2);
      o = r.out();
      BOOST_REQUIRE(!o.empty());
      BOOST_CHECK_EQUAL(o.back().payload.size(), 2u);
    }
  }
}

BOOST_AUTO_TEST_CASE(bind_rules_follow_reuseaddr_and_reuseport) {
  TcpPair p;
  Tcp& t = p.b();
  TcpSocket* l1 = t.open(Family::kV4);
  TcpSocket* l2 = t.open(Family::kV4);
  BOOST_CHECK_EQUAL(t.bind(*l1, IpAddr(Ipv4Addr{}), 8080), 0);
  BOOST_CHECK_EQUAL(t.bind(*l2, IpAddr(Ipv4Addr{}), 8080), -EADDRINUSE);
  int one = 1;
  TcpSocket* r1 = t.open(Family::kV4);
  TcpSocket* r2 = t.open(Family::kV4);
  t.setsockopt(*r1, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  t.setsockopt(*r2, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  BOOST_CHECK_EQUAL(t.bind(*r1, IpAddr(Ipv4Addr{}), 8081), 0);
  BOOST_CHECK_EQUAL(t.bind(*r2, IpAddr(Ipv4Addr{}), 8081), 0);
  BOOST_CHECK_EQUAL(t.listen(*r1, 8), 0);
  BOOST_CHECK_EQUAL(t.listen(*r2, 8), 0);
  // SO_REUSEADDR lets a second socket bind, but not listen next to a listener.
  TcpSocket* a1 = t.open(Family::kV4);
  TcpSocket* a2 = t.open(Family::kV4);
  t.setsockopt(*a1, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  t.setsockopt(*a2, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  BOOST_CHECK_EQUAL(t.bind(*a1, IpAddr(Ipv4Addr{}), 8082), 0);
  BOOST_CHECK_EQUAL(t.bind(*a2, IpAddr(Ipv4Addr{}), 8082), 0);
  BOOST_CHECK_EQUAL(t.listen(*a1, 8), 0);
  BOOST_CHECK_EQUAL(t.listen(*a2, 8), -EADDRINUSE);
  // Connections to the reuseport group spread over both listeners.
  int got1 = 0, got2 = 0;
  std::vector<TcpSocket*> cs;
  for (int i = 0; i < 16; ++i) {
    TcpSocket* c = p.a().open(Family::kV4);
    p.a().connect(*c, p.addr(1), 8081);
    cs.push_back(c);
  }
  p.run([&] {
    int err;
    while (t.accept(*r1, &err)) ++got1;
    while (t.accept(*r2, &err)) ++got2;
    return got1 + got2 == 16;
  });
  BOOST_CHECK_EQUAL(got1 + got2, 16);
  BOOST_CHECK_GT(got1, 0);
  BOOST_CHECK_GT(got2, 0);
}
