// ICMP for IPv4 (RFC 792, RFC 1122 3.2.2): echo, errors sent and received, rate limit.
#include <boost/test/unit_test.hpp>
#include <cerrno>

#include "stack/net/icmp.h"
#include "stack/net/udp.h"
#include "tests/support/ipv4_frames.h"

using namespace shunt;
using namespace shunt::test;

namespace {

Ip4 icmp_hdr() {
  Ip4 h;
  h.proto = 1;
  return h;
}

// A received datagram as the IP layer hands it up: data() at the L4 header, IP header before.
struct Offending {
  PacketPtr p;
  IpRx rx;
};
Offending offending(Stack& s, const Ip4& h, const Bytes& l4, bool link_broadcast = false) {
  Offending o;
  const Bytes ip = ipv4_packet(h, l4);
  o.p = s.pool().alloc(64);
  o.p->append(ip);
  o.p->pull(20 + h.options.size());
  o.rx.src = h.src;
  o.rx.dst = h.dst;
  o.rx.proto = h.proto;
  o.rx.hop_limit = h.ttl;
  o.rx.l3_len = uint16_t(20 + h.options.size());
  o.rx.link_broadcast = link_broadcast;
  o.rx.link_multicast = link_broadcast;
  return o;
}

}  // namespace

BOOST_AUTO_TEST_CASE(echo_request_gets_a_reply_with_the_same_identifier_sequence_and_data) {
  V4Fixture f;
  f.learn_peer();
  Bytes data = {'p', 'i', 'n', 'g', 0, 1, 2, 3, 4, 5};
  Ip4 h = icmp_hdr();
  h.tos = 0x28;
  f.inject(ipv4_frame(h, icmp_msg(8, 0, 0xbeef0007, data)));
  f.run();
  auto out = f.sent_ipv4();
  BOOST_REQUIRE(out.size() == 1u);
  const Bytes& o = out[0];
  BOOST_TEST(MacAddr::read(o.data()) == kPeerMac);
  BOOST_TEST(get_ip(o, 26) == kOurIp);
  BOOST_TEST(get_ip(o, 30) == kPeerIp);
  BOOST_TEST(o[15] == 0x28);
  BOOST_TEST(checksum(o.data() + 14, 20) == 0);
  BOOST_TEST(o[34] == 0);  // echo reply
  BOOST_TEST(o[35] == 0);
  BOOST_TEST(checksum(o.data() + 34, o.size() - 34) == 0);
  BOOST_TEST(load32(o.data() + 38) == 0xbeef0007u);
  BOOST_TEST(Bytes(o.begin() + 42, o.end()) == data);
  BOOST_TEST(f.stack->pool().available() == f.stack->pool().capacity());
}

BOOST_AUTO_TEST_CASE(malformed_icmp_is_dropped_by_reason) {
  V4Fixture f;
  f.learn_peer();
  Bytes m = icmp_msg(8, 0, 1, Bytes(8, 1));
  for (size_t len = 0; len < 8; ++len) f.inject(ipv4_frame(icmp_hdr(), Bytes(m.begin(), m.begin() + long(len))));
  Bytes bad = m;
  bad[10] ^= 0xff;
  f.inject(ipv4_frame(icmp_hdr(), bad));
  f.inject(ipv4_frame(icmp_hdr(), icmp_msg(42, 0, 0, {})));
  f.inject(ipv4_frame(icmp_hdr(), icmp_msg(3, 99, 0, Bytes(28, 0))));  // no such code
  f.run();
  BOOST_TEST(f.counter("icmp.drop.truncated") == 8u);
  BOOST_TEST(f.counter("icmp.drop.bad_checksum") == 1u);
  BOOST_TEST(f.counter("icmp.drop.unknown_type") == 1u);
  BOOST_TEST(f.counter("icmp.drop.bad_code") == 1u);
  BOOST_TEST(f.sent_ipv4().empty());
}

BOOST_AUTO_TEST_CASE(udp_to_a_closed_port_gets_port_unreachable_quoting_the_datagram) {
  V4Fixture f;
  f.learn_peer();
  Ip4 h;
  const Bytes u = udp_datagram(kPeerIp, kOurIp, 5555, 9, Bytes(32, 'x'));
  f.inject(ipv4_frame(h, u));
  f.run();
  auto out = f.sent_ipv4();
  BOOST_REQUIRE(out.size() == 1u);
  const Bytes& o = out[0];
  BOOST_TEST(o[23] == 1);
  BOOST_TEST(get_ip(o, 30) == kPeerIp);
  BOOST_TEST(o[34] == 3);
  BOOST_TEST(o[35] == 3);
  BOOST_TEST(checksum(o.data() + 34, o.size() - 34) == 0);
  const Bytes quoted(o.begin() + 42, o.end());
  BOOST_TEST(quoted == ipv4_packet(h, u));  // the whole (short) datagram
}

BOOST_AUTO_TEST_CASE(errors_are_rate_limited_by_a_token_bucket) {
  Config c = V4Fixture::base_config();
  c.icmp_rate = 10;
  c.icmp_burst = 5;
  V4Fixture f(c);
  f.learn_peer();
  Ip4 h;
  const Bytes u = udp_datagram(kPeerIp, kOurIp, 5555, 9, Bytes(4, 0));
  for (int i = 0; i < 20; ++i) {
    auto o = offending(*f.stack, h, u);
    f.stack->icmp().send_unreachable(3, *o.p, o.rx);
  }
  BOOST_TEST(f.sent_ipv4().size() == 5u);
  BOOST_TEST(f.counter("icmp.tx_rate_limited") == 15u);
  f.clock.advance(99 * kMilli);
  auto o = offending(*f.stack, h, u);
  f.stack->icmp().send_unreachable(3, *o.p, o.rx);
  BOOST_TEST(f.sent_ipv4().empty());
  f.clock.advance(1 * kMilli);  // 100 ms at 10/s: one token
  f.stack->icmp().send_unreachable(3, *o.p, o.rx);
  f.stack->icmp().send_unreachable(3, *o.p, o.rx);
  BOOST_TEST(f.sent_ipv4().size() == 1u);
  f.clock.advance(100 * kSecond);  // refills to the burst, no more
  f.learn_peer();                  // (the ARP entry timed out meanwhile)
  for (int i = 0; i < 20; ++i) f.stack->icmp().send_unreachable(3, *o.p, o.rx);
  BOOST_TEST(f.sent_ipv4().size() == 5u);
}

BOOST_AUTO_TEST_CASE(no_error_about_broadcasts_multicasts_fragments_or_icmp_errors) {
  V4Fixture f;
  f.learn_peer();
  const Bytes u = udp_datagram(kPeerIp, kOurIp, 5555, 9, Bytes(4, 0));
  Ip4 h;
  {
    auto o = offending(*f.stack, h, u, /*link_broadcast=*/true);
    f.stack->icmp().send_unreachable(3, *o.p, o.rx);
  }
  for (uint32_t dst : {0xffffffffu, 0x0a0000ffu, 0xe0000001u}) {
    Ip4 b;
    b.dst = Ipv4Addr{dst};
    auto o = offending(*f.stack, b, u);
    f.stack->icmp().send_unreachable(3, *o.p, o.rx);
  }
  for (uint32_t src : {0u, 0xe0000001u, 0x0a0000ffu}) {
    Ip4 b;
    b.src = Ipv4Addr{src};
    auto o = offending(*f.stack, b, u);
    f.stack->icmp().send_unreachable(3, *o.p, o.rx);
  }
  {
    Ip4 b;
    b.frag_offset = 1480;  // not the first fragment
    auto o = offending(*f.stack, b, u);
    f.stack->icmp().send_unreachable(3, *o.p, o.rx);
  }
  {
    Ip4 b;
    b.proto = 1;
    auto o = offending(*f.stack, b, icmp_msg(3, 3, 0, Bytes(28, 0)));  // an ICMP error
    f.stack->icmp().send_unreachable(3, *o.p, o.rx);
  }
  BOOST_TEST(f.sent_ipv4().empty());
  BOOST_TEST(f.counter("icmp.tx_suppressed") == 9u);
  {
    Ip4 b;
    b.proto = 1;
    auto o = offending(*f.stack, b, icmp_msg(8, 0, 0, Bytes(8, 0)));  // a query is fine
    f.stack->icmp().send_unreachable(2, *o.p, o.rx);
  }
  BOOST_TEST(f.sent_ipv4().size() == 1u);
}

BOOST_AUTO_TEST_CASE(port_unreachable_reaches_the_connected_udp_socket_as_econnrefused) {
  V4Fixture f;
  f.learn_peer();
  Udp& udp = f.stack->udp();
  UdpSocket* s = udp.open(Family::kV4);
  BOOST_REQUIRE(s);
  BOOST_REQUIRE(udp.connect(*s, IpAddr(kPeerIp), 7777) == 0);
  const Bytes payload = {1, 2, 3};
  iovec iov{const_cast<uint8_t*>(payload.data()), payload.size()};
  BOOST_REQUIRE(udp.send(*s, &iov, 1, payload.size(), nullptr) == 3);
  auto out = f.sent_ipv4();
  BOOST_REQUIRE(out.size() == 1u);
  // The peer answers with port unreachable quoting what we sent.
  const Bytes sent_ip(out[0].begin() + 14, out[0].end());
  Ip4 h = icmp_hdr();
  f.inject(ipv4_frame(h, icmp_msg(3, 3, 0, sent_ip)));
  f.run();
  BOOST_TEST(f.counter("icmp.rx_errors") == 1u);
  BOOST_TEST(s->error == ECONNREFUSED);

  // A quote that is not ours, or too short, is dropped.
  Bytes forged = sent_ip;
  put16(forged, 12, 0x0a00);
  put16(forged, 14, 0x0063);  // src 10.0.0.99
  f.inject(ipv4_frame(h, icmp_msg(3, 3, 0, forged)));
  f.inject(ipv4_frame(h, icmp_msg(3, 3, 0, Bytes(sent_ip.begin(), sent_ip.begin() + 24))));
  Bytes bad_ihl = sent_ip;
  bad_ihl[0] = 0x4f;
  f.inject(ipv4_frame(h, icmp_msg(3, 3, 0, bad_ihl)));
  f.run();
  BOOST_TEST(f.counter("icmp.drop.bad_quote") == 3u);
  BOOST_TEST(f.counter("icmp.rx_errors") == 1u);
  udp.close(s);
}
