// Nagle as Linux does it (Minshall's variant, RFC 896, RFC 1122 4.2.3.4): a partial segment is
// held only while an earlier partial segment is unacknowledged; TCP_QUICKACK is not permanent.
#include <boost/test/unit_test.hpp>

#include "tcp_engine_support.h"

using namespace shunt;
using namespace shunt::test;

namespace {
int setint(Tcp& t, TcpSocket& s, int level, int name, int v) { return t.setsockopt(s, level, name, &v, sizeof v); }
int getint(Tcp& t, TcpSocket& s, int level, int name) {
  int v = -1;
  socklen_t len = sizeof v;
  t.getsockopt(s, level, name, &v, &len);
  return v;
}
}  // namespace

BOOST_AUTO_TEST_SUITE(tcp_nagle)

BOOST_AUTO_TEST_CASE(a_tail_after_an_odd_number_of_full_segments_is_not_held_for_the_delayed_ack) {
  TcpRig r;
  auto p = r.accept_one();
  const uint32_t mss = 1448;  // 1460 - timestamps
  // Three full segments and a 100-byte tail: a receiver that ACKs every second full segment
  // would leave the third unacknowledged for 40 ms; classic Nagle held the tail that long.
  const Bytes data = pattern(3 * mss + 100, 7);
  BOOST_REQUIRE_EQUAL(tsend(r.tcp(), *p.conn, data.data(), data.size()), long(data.size()));
  auto o = r.out();
  BOOST_REQUIRE_EQUAL(o.size(), 4u);
  BOOST_CHECK_EQUAL(o[3].payload.size(), 100u);
  // A second small write waits: a partial segment is in flight.
  BOOST_REQUIRE_EQUAL(tsend(r.tcp(), *p.conn, "xyz", 3), 3);
  BOOST_CHECK(r.out().empty());
  // Acknowledging the full segments only: still held (the small one is unacknowledged).
  p.rcv += 2 * mss;
  r.ack(p);
  BOOST_CHECK(r.out().empty());
  // The small one acknowledged: the held bytes go.
  p.rcv += mss + 100;
  r.ack(p);
  o = r.out();
  BOOST_REQUIRE_EQUAL(o.size(), 1u);
  BOOST_CHECK_EQUAL(o[0].payload.size(), 3u);
}

BOOST_AUTO_TEST_CASE(cork_still_holds_the_tail_until_uncorked) {
  TcpRig r;
  auto p = r.accept_one();
  const uint32_t mss = 1448;
  BOOST_REQUIRE_EQUAL(setint(r.tcp(), *p.conn, IPPROTO_TCP, TCP_CORK, 1), 0);
  const Bytes data = pattern(mss + 10, 3);
  BOOST_REQUIRE_EQUAL(tsend(r.tcp(), *p.conn, data.data(), data.size()), long(data.size()));
  auto o = r.out();
  BOOST_REQUIRE_EQUAL(o.size(), 1u);
  BOOST_CHECK_EQUAL(o[0].payload.size(), mss);
  BOOST_REQUIRE_EQUAL(setint(r.tcp(), *p.conn, IPPROTO_TCP, TCP_CORK, 0), 0);
  o = r.out();
  BOOST_REQUIRE_EQUAL(o.size(), 1u);
  BOOST_CHECK_EQUAL(o[0].payload.size(), 10u);
}

BOOST_AUTO_TEST_CASE(quickack_ends_when_data_is_sent_soon_after_data_arrives) {
  TcpRig r;
  auto p = r.accept_one();
  BOOST_REQUIRE_EQUAL(setint(r.tcp(), *p.conn, IPPROTO_TCP, TCP_QUICKACK, 1), 0);
  r.advance(kSecond);
  // A small segment is acknowledged at once in quickack mode.
  r.send(r.peer(p, kTcpAck, Bytes(10, 'q')));
  p.snd += 10;
  auto o = r.out();
  BOOST_REQUIRE_EQUAL(o.size(), 1u);
  BOOST_CHECK_EQUAL(o[0].h.ack, p.snd);
  // A reply within the delayed-ACK timeout makes the connection interactive (Linux
  // tcp_event_data_sent): quickack mode ends.
  BOOST_REQUIRE_EQUAL(tsend(r.tcp(), *p.conn, "reply", 5), 5);
  r.out();
  BOOST_CHECK_EQUAL(getint(r.tcp(), *p.conn, IPPROTO_TCP, TCP_QUICKACK), 0);
  p.rcv += 5;
  r.send(r.peer(p, kTcpAck, Bytes(10, 'r')));
  p.snd += 10;
  BOOST_CHECK(r.out().empty());  // delayed again
}

BOOST_AUTO_TEST_SUITE_END()
