// ICMPv6 (RFC 4443): checksums, errors, their suppression rules and rate limit.
#include <boost/test/unit_test.hpp>

#include "net_v6_support.h"

using namespace shunt;
using namespace shunt::v6test;

namespace {

Bytes udp_datagram(const Ipv6Addr& src, const Ipv6Addr& dst, uint16_t sport, uint16_t dport, size_t data_len) {
  Bytes u;
  put16(u, sport);
  put16(u, dport);
  put16(u, uint16_t(8 + data_len));
  put16(u, 0);
  for (size_t i = 0; i < data_len; ++i) u.push_back(uint8_t(i));
  uint32_t sum = pseudo_header_sum(IpAddr(src), IpAddr(dst), kProtoUdp, uint32_t(u.size()));
  uint16_t c = checksum_fold(checksum_add(sum, u.data(), u.size()));
  if (c == 0) c = 0xffff;
  u[6] = uint8_t(c >> 8);
  u[7] = uint8_t(c);
  return u;
}

Bytes unknown_proto_frame(const Ipv6Addr& dst = kOurGlobal, size_t len = 20) {
  return ip6_frame(kPeer, dst, 253, Bytes(len, 0x5a));
}

}  // namespace

BOOST_AUTO_TEST_CASE(bad_checksum_and_truncated_messages_are_dropped) {
  V6Fixture f;
  f.learn_peer();
  Bytes frame = echo_request_frame(kPeer, kOurGlobal);
  frame[14 + 40 + 2] ^= 0x01;
  f.inject(frame);
  BOOST_TEST(f.counter("icmp6.drop.bad_checksum") == 1u);
  f.inject(ip6_frame(kPeer, kOurGlobal, kProtoIcmpv6, Bytes{128, 0, 0}));
  BOOST_TEST(f.counter("icmp6.drop.truncated") == 1u);
  // Checksummed with the wrong pseudo-header (another destination).
  f.inject(ip6_frame(kPeer, kOurGlobal, kProtoIcmpv6, icmp6_msg(kPeer, kOurLl, kIcmp6EchoRequest, 0, echo_body(1, 1, 8))));
  BOOST_TEST(f.counter("icmp6.drop.bad_checksum") == 2u);
  BOOST_TEST(sent_v6(f.dev).empty());
}

BOOST_AUTO_TEST_CASE(udp_to_a_closed_port_draws_port_unreachable_quoting_it) {
  V6Fixture f;
  f.learn_peer();
  const Bytes udp = udp_datagram(kPeer, kOurGlobal, 5000, 9, 10);
  const Bytes frame = ip6_frame(kPeer, kOurGlobal, kProtoUdp, udp);
  f.inject(frame);
  auto sent = sent_v6(f.dev);
  BOOST_TEST_REQUIRE(sent.size() == 1u);
  BOOST_TEST(sent[0].icmp_type() == kIcmp6DestUnreachable);
  BOOST_TEST(sent[0].l4p()[1] == kUnreachPort);
  BOOST_TEST(icmp6_checksum_ok(sent[0]));
  BOOST_TEST(Bytes(sent[0].l4p() + 8, sent[0].l4p() + sent[0].l4_len()) == Bytes(frame.begin() + 14, frame.end()));
}

BOOST_AUTO_TEST_CASE(the_quote_is_cut_to_fit_the_minimum_mtu) {
  V6Fixture f;
  f.learn_peer();
  f.inject(unknown_proto_frame(kOurGlobal, 1400));
  auto sent = sent_v6(f.dev);
  BOOST_TEST_REQUIRE(sent.size() == 1u);
  BOOST_TEST(sent[0].frame.size() - 14 == kIpv6MinMtu);
}

BOOST_AUTO_TEST_CASE(errors_are_rate_limited_by_a_token_bucket) {
  Config c = v6_config();
  c.icmp_rate = 2;
  c.icmp_burst = 3;
  V6Fixture f(c);
  f.learn_peer();
  f.run_for(5 * kSecond);  // a full bucket
  f.learn_peer();
  for (int i = 0; i < 10; ++i) f.inject(unknown_proto_frame());
  BOOST_TEST(non_ndp(sent_v6(f.dev)).size() == 3u);
  BOOST_TEST(f.counter("icmp6.error_rate_limited") == 7u);
  f.clock.advance(kSecond);
  for (int i = 0; i < 10; ++i) f.inject(unknown_proto_frame());
  BOOST_TEST(non_ndp(sent_v6(f.dev)).size() == 2u);
}

BOOST_AUTO_TEST_CASE(no_errors_to_multicast_unspecified_sources_or_other_errors) {
  V6Fixture f;
  f.learn_peer();
  f.inject(ip6_frame(kPeer, kAllNodes, 253, Bytes(20, 0)));        // multicast destination
  f.inject(ip6_frame(A("::"), kOurGlobal, 253, Bytes(20, 0)));     // unspecified source
  f.inject(ip6_frame(kPeer, kOurGlobal, 253, Bytes(20, 0), 64, MacAddr::broadcast()));  // link broadcast
  BOOST_TEST(sent_v6(f.dev).empty());
  BOOST_TEST(f.counter("icmp6.error_suppressed") == 3u);
  // An error about an ICMPv6 error is never sent.
  PacketPtr p = f.stack.alloc_tx();
  Bytes hdr(40, 0);
  p->append(hdr);
  p->append(Bytes{kIcmp6DestUnreachable, 4, 0, 0, 0, 0, 0, 0});
  p->pull(40);
  IpRx rx;
  rx.src = kPeer;
  rx.dst = kOurGlobal;
  rx.proto = kProtoIcmpv6;
  rx.l3_len = 40;
  f.stack.icmp6().send_error(kIcmp6ParamProblem, 0, 0, *p, rx);
  BOOST_TEST(sent_v6(f.dev).empty());
  BOOST_TEST(f.counter("icmp6.error_suppressed") == 4u);
}

BOOST_AUTO_TEST_CASE(received_errors_must_quote_our_own_datagram) {
  V6Fixture f;
  f.learn_peer();
  auto error_frame = [&](const Ipv6Addr& quoted_src, size_t udp_bytes) {
    Bytes q = ip6_frame(quoted_src, kPeer, kProtoUdp, udp_datagram(quoted_src, kPeer, 4000, 53, 4));
    q.erase(q.begin(), q.begin() + 14);
    q.resize(40 + udp_bytes);
    Bytes body{0, 0, 0, 0};
    append(body, q);
    return ip6_frame(kPeer, kOurGlobal, kProtoIcmpv6, icmp6_msg(kPeer, kOurGlobal, kIcmp6DestUnreachable, kUnreachPort, body));
  };
  f.inject(error_frame(kOurGlobal, 12));  // well formed: goes to UDP
  BOOST_TEST(f.counter("icmp6.drop.bad_quote") == 0u);
  f.inject(error_frame(A("2001:db8::99"), 12));  // not our datagram
  f.inject(error_frame(kOurGlobal, 4));          // UDP header cut short
  f.inject(ip6_frame(kPeer, kOurGlobal, kProtoIcmpv6, icmp6_msg(kPeer, kOurGlobal, kIcmp6DestUnreachable, 4, Bytes(20, 0))));
  BOOST_TEST(f.counter("icmp6.drop.bad_quote") == 3u);
  BOOST_TEST(f.counter("icmp6.rx_errors") == 4u);
  BOOST_TEST(sent_v6(f.dev).empty());
}

BOOST_AUTO_TEST_CASE(unknown_informational_messages_are_dropped_quietly) {
  V6Fixture f;
  f.inject(ip6_frame(kPeer, kOurGlobal, kProtoIcmpv6, icmp6_msg(kPeer, kOurGlobal, 200, 0, Bytes(8, 0))));
  BOOST_TEST(f.counter("icmp6.drop.unknown_type") == 1u);
  BOOST_TEST(sent_v6(f.dev).empty());
}

BOOST_AUTO_TEST_CASE(no_parameter_problem_about_an_icmpv6_error_behind_extension_headers) {
  V6Fixture f;
  f.learn_peer();
  // A destination option of unknown type 0x80: RFC 8200 4.2 says discard and send a parameter
  // problem, found before the upper layer is known.
  const Bytes opts{kProtoIcmpv6, 0, 0x80, 4, 0, 0, 0, 0};
  Bytes echo = opts;
  append(echo, icmp6_msg(kPeer, kOurGlobal, kIcmp6EchoRequest, 0, echo_body(1, 1, 8)));
  f.inject(ip6_frame(kPeer, kOurGlobal, kNextDestOpts, echo));
  auto sent = non_ndp(sent_v6(f.dev));
  BOOST_TEST_REQUIRE(sent.size() == 1u);
  BOOST_TEST(sent[0].icmp_type() == kIcmp6ParamProblem);
  // Behind the same option, an ICMPv6 error draws nothing (RFC 4443 2.4(e.1)); also behind a
  // hop-by-hop header, and with a type byte cut off.
  const uint64_t suppressed = f.counter("icmp6.error_suppressed");
  Bytes err = opts;
  append(err, icmp6_msg(kPeer, kOurGlobal, kIcmp6DestUnreachable, 4, Bytes(4 + 48, 0)));
  f.inject(ip6_frame(kPeer, kOurGlobal, kNextDestOpts, err));
  Bytes hbh{kNextDestOpts, 0, kOptPadN, 4, 0, 0, 0, 0};
  append(hbh, err);
  f.inject(ip6_frame(kPeer, kOurGlobal, kNextHopByHop, hbh));
  f.inject(ip6_frame(kPeer, kOurGlobal, kNextDestOpts, opts));
  BOOST_TEST(non_ndp(sent_v6(f.dev)).empty());
  BOOST_TEST(f.counter("icmp6.error_suppressed") == suppressed + 3);
}
