// IPv6 receive (RFC 8200): header validation, the extension-header walk and its limits.
#include <boost/test/unit_test.hpp>
#include <cerrno>
#include <cstring>

#include "net_v6_support.h"

using namespace shunt;
using namespace shunt::v6test;

namespace {

uint64_t drops(Stack& s) {
  return s.counters().sum("eth.drop.") + s.counters().sum("ipv6.drop.") + s.counters().sum("icmp6.drop.");
}

// Destination options header with `opts` (padded by the caller to a multiple of 8 - 2).
Bytes ext_header(uint8_t next, const Bytes& opts) {
  Bytes h{next, uint8_t((opts.size() + 2) / 8 - 1)};
  append(h, opts);
  return h;
}

Bytes echo_payload(const Ipv6Addr& src, const Ipv6Addr& dst) {
  return icmp6_msg(src, dst, kIcmp6EchoRequest, 0, echo_body(7, 1, 8));
}

}  // namespace

BOOST_AUTO_TEST_CASE(echo_request_gets_a_reply_with_the_same_data) {
  V6Fixture f;
  f.learn_peer();
  f.inject(echo_request_frame(kPeer, kOurGlobal, 5, 100));
  auto sent = sent_v6(f.dev);
  BOOST_TEST_REQUIRE(sent.size() == 1u);
  const Sent& r = sent[0];
  BOOST_TEST(r.dst_mac == kPeerMac);
  BOOST_TEST(r.src == kOurGlobal);
  BOOST_TEST(r.dst == kPeer);
  BOOST_TEST(r.l4 == kProtoIcmpv6);
  BOOST_TEST(r.icmp_type() == kIcmp6EchoReply);
  BOOST_TEST(icmp6_checksum_ok(r));
  Bytes want = echo_body(0x1234, 5, 100);
  BOOST_TEST(Bytes(r.l4p() + 4, r.l4p() + r.l4_len()) == want, boost::test_tools::per_element());
  BOOST_TEST(f.stack.pool().available() == f.stack.pool().capacity());
}

BOOST_AUTO_TEST_CASE(ethernet_padding_past_payload_length_is_trimmed) {
  V6Fixture f;
  f.learn_peer();
  Bytes frame = echo_request_frame(kPeer, kOurGlobal, 1, 0);
  frame.resize(frame.size() + 20, 0xee);
  f.inject(frame);
  auto sent = sent_v6(f.dev);
  BOOST_TEST_REQUIRE(sent.size() == 1u);
  BOOST_TEST(sent[0].l4_len() == 8u);
  BOOST_TEST(icmp6_checksum_ok(sent[0]));
}

BOOST_AUTO_TEST_CASE(every_truncation_of_a_valid_frame_is_dropped_and_counted) {
  V6Fixture f;
  f.learn_peer();
  const Bytes frame = echo_request_frame(kPeer, kOurGlobal, 1, 32);
  for (size_t len = 0; len < frame.size(); ++len) {
    const uint64_t before = drops(f.stack);
    f.inject(Bytes(frame.begin(), frame.begin() + long(len)));
    BOOST_TEST(drops(f.stack) == before + 1, "length " << len);
  }
  BOOST_TEST(sent_v6(f.dev).empty());
  BOOST_TEST(f.counter("ipv6.drop.truncated") == 40u);
  BOOST_TEST(f.stack.pool().available() == f.stack.pool().capacity());
}

BOOST_AUTO_TEST_CASE(payload_length_that_lies_is_dropped) {
  V6Fixture f;
  Bytes frame = echo_request_frame(kPeer, kOurGlobal);
  store16(frame.data() + 14 + 4, uint16_t(frame.size()));  // claims more than is there
  f.inject(frame);
  store16(frame.data() + 14 + 4, 0xffff);
  f.inject(frame);
  BOOST_TEST(f.counter("ipv6.drop.bad_length") == 2u);
  BOOST_TEST(sent_v6(f.dev).empty());
}

BOOST_AUTO_TEST_CASE(bad_version_multicast_source_and_foreign_destination_are_dropped) {
  V6Fixture f;
  f.learn_peer();
  Bytes v4ish = echo_request_frame(kPeer, kOurGlobal);
  v4ish[14] = 0x45;
  f.inject(v4ish);
  f.inject(echo_request_frame(A("ff02::5"), kOurGlobal));
  f.inject(echo_request_frame(A("::1"), kOurGlobal));
  f.inject(echo_request_frame(kPeer, A("2001:db8::99")));
  f.inject(echo_request_frame(kPeer, A("ff02::1234")));  // a group we did not join
  f.inject(echo_request_frame(kPeer, A("ff01::1")));     // interface-local never comes off a link
  BOOST_TEST(f.counter("ipv6.drop.bad_version") == 1u);
  BOOST_TEST(f.counter("ipv6.drop.bad_src") == 2u);
  BOOST_TEST(f.counter("ipv6.drop.not_for_us") == 3u);
  BOOST_TEST(sent_v6(f.dev).empty());
}

BOOST_AUTO_TEST_CASE(echo_to_all_nodes_is_answered_from_a_link_local_source) {
  V6Fixture f;
  f.learn_peer();
  f.inject(echo_request_frame(kPeerLl, kAllNodes));
  auto sent = sent_v6(f.dev);
  BOOST_TEST_REQUIRE(sent.size() == 1u);
  BOOST_TEST(sent[0].src == kOurLl);
  BOOST_TEST(sent[0].dst == kPeerLl);
  BOOST_TEST(icmp6_checksum_ok(sent[0]));
}

BOOST_AUTO_TEST_CASE(a_chain_of_destination_options_within_the_limit_is_delivered) {
  V6Fixture f;
  f.learn_peer();
  // Three destination options headers, each with a PadN and an unknown skippable option.
  Bytes payload;
  const Bytes opts{kOptPadN, 0, 0x1e, 2, 0xaa, 0xbb};
  append(payload, ext_header(kNextDestOpts, opts));
  append(payload, ext_header(kNextDestOpts, opts));
  append(payload, ext_header(kProtoIcmpv6, opts));
  append(payload, echo_payload(kPeer, kOurGlobal));
  f.inject(ip6_frame(kPeer, kOurGlobal, kNextDestOpts, payload));
  auto sent = sent_v6(f.dev);
  BOOST_TEST_REQUIRE(sent.size() == 1u);
  BOOST_TEST(sent[0].icmp_type() == kIcmp6EchoReply);
}

BOOST_AUTO_TEST_CASE(hundreds_of_destination_options_headers_hit_the_limit) {
  V6Fixture f;
  f.learn_peer();
  Bytes payload;
  for (int i = 0; i < 150; ++i) append(payload, ext_header(kNextDestOpts, {kOptPadN, 4, 0, 0, 0, 0}));
  f.inject(ip6_frame(kPeer, kOurGlobal, kNextDestOpts, payload));
  // And one that never ends: the last header claims to continue past the packet.
  Bytes endless;
  for (int i = 0; i < 5; ++i) append(endless, ext_header(kNextDestOpts, {kOptPadN, 4, 0, 0, 0, 0}));
  f.inject(ip6_frame(kPeer, kOurGlobal, kNextDestOpts, endless));
  // A single header longer than the total limit on extension bytes: Pad1 all the way.
  Bytes big = ext_header(kProtoIcmpv6, Bytes(66 * 8 + 6, 0));
  f.inject(ip6_frame(kPeer, kOurGlobal, kNextDestOpts, big));
  BOOST_TEST(f.counter("ipv6.drop.ext_header_limit") == 2u);
  BOOST_TEST(f.counter("ipv6.drop.ext_header_truncated") == 1u);
  BOOST_TEST(sent_v6(f.dev).empty());
}

BOOST_AUTO_TEST_CASE(hop_by_hop_not_first_draws_parameter_problem_code_1) {
  V6Fixture f;
  f.learn_peer();
  Bytes payload;
  append(payload, ext_header(kNextHopByHop, {kOptPadN, 4, 0, 0, 0, 0}));
  append(payload, ext_header(kProtoIcmpv6, {kOptPadN, 4, 0, 0, 0, 0}));
  append(payload, echo_payload(kPeer, kOurGlobal));
  f.inject(ip6_frame(kPeer, kOurGlobal, kNextDestOpts, payload));
  BOOST_TEST(f.counter("ipv6.drop.hop_by_hop_not_first") == 1u);
  auto sent = sent_v6(f.dev);
  BOOST_TEST_REQUIRE(sent.size() == 1u);
  BOOST_TEST(sent[0].icmp_type() == kIcmp6ParamProblem);
  BOOST_TEST(sent[0].l4p()[1] == kParamUnknownNextHeader);
  BOOST_TEST(load32(sent[0].l4p() + 4) == 40u);  // the Next Header field that named it
  BOOST_TEST(icmp6_checksum_ok(sent[0]));
}

BOOST_AUTO_TEST_CASE(options_running_past_their_header_are_dropped) {
  V6Fixture f;
  f.learn_peer();
  Bytes payload;
  append(payload, ext_header(kProtoIcmpv6, {kOptPadN, 0, 0x1e, 9, 0, 0}));  // 9 bytes claimed, 2 left
  append(payload, echo_payload(kPeer, kOurGlobal));
  f.inject(ip6_frame(kPeer, kOurGlobal, kNextDestOpts, payload));
  Bytes payload2;
  append(payload2, ext_header(kProtoIcmpv6, {0, 0, 0, 0, 0, 0x1e}));  // type in the last byte, no length
  append(payload2, echo_payload(kPeer, kOurGlobal));
  f.inject(ip6_frame(kPeer, kOurGlobal, kNextDestOpts, payload2));
  BOOST_TEST(f.counter("ipv6.drop.bad_option") == 2u);
  BOOST_TEST(sent_v6(f.dev).empty());
}

BOOST_AUTO_TEST_CASE(unknown_options_follow_their_two_high_bits) {
  V6Fixture f;
  f.learn_peer();
  auto with_option = [&](uint8_t type, const Ipv6Addr& dst) {
    Bytes payload;
    append(payload, ext_header(kProtoIcmpv6, {kOptPadN, 0, type, 2, 0, 0}));
    append(payload, echo_payload(kPeer, dst));
    return ip6_frame(kPeer, dst, kNextDestOpts, payload);
  };
  f.inject(with_option(0x1f, kOurGlobal));  // 00: skipped, delivered
  auto sent = sent_v6(f.dev);
  BOOST_TEST_REQUIRE(sent.size() == 1u);
  BOOST_TEST(sent[0].icmp_type() == kIcmp6EchoReply);
  f.inject(with_option(0x5f, kOurGlobal));  // 01: silently dropped
  BOOST_TEST(sent_v6(f.dev).empty());
  f.inject(with_option(0x9f, kOurGlobal));  // 10: parameter problem code 2, even to multicast
  f.inject(with_option(0x9f, kAllNodes));
  sent = sent_v6(f.dev);
  BOOST_TEST_REQUIRE(sent.size() == 2u);
  for (const auto& s : sent) {
    BOOST_TEST(s.icmp_type() == kIcmp6ParamProblem);
    BOOST_TEST(s.l4p()[1] == kParamUnknownOption);
    BOOST_TEST(load32(s.l4p() + 4) == 44u);  // points at the option type
  }
  f.inject(with_option(0xdf, kOurGlobal));  // 11: parameter problem unless multicast
  f.inject(with_option(0xdf, kAllNodes));
  BOOST_TEST(sent_v6(f.dev).size() == 1u);
  BOOST_TEST(f.counter("ipv6.drop.unknown_option") == 5u);
}

BOOST_AUTO_TEST_CASE(unknown_next_header_draws_parameter_problem_code_1) {
  V6Fixture f;
  f.learn_peer();
  Bytes frame = ip6_frame(kPeer, kOurGlobal, 253, Bytes(20, 0x11));
  f.inject(frame);
  BOOST_TEST(f.counter("ipv6.drop.unknown_next_header") == 1u);
  auto sent = sent_v6(f.dev);
  BOOST_TEST_REQUIRE(sent.size() == 1u);
  BOOST_TEST(sent[0].icmp_type() == kIcmp6ParamProblem);
  BOOST_TEST(sent[0].l4p()[1] == kParamUnknownNextHeader);
  BOOST_TEST(load32(sent[0].l4p() + 4) == 6u);
  // The whole offending packet is quoted.
  BOOST_TEST(sent[0].l4_len() == 8 + frame.size() - 14);
  BOOST_TEST(icmp6_checksum_ok(sent[0]));
}

BOOST_AUTO_TEST_CASE(routing_header_with_segments_left_is_refused_and_without_is_ignored) {
  V6Fixture f;
  f.learn_peer();
  auto routed = [&](uint8_t segments_left) {
    Bytes payload{kProtoIcmpv6, 2, 0, segments_left, 0, 0, 0, 0};
    payload.resize(24, 0);
    append(payload, echo_payload(kPeer, kOurGlobal));
    return ip6_frame(kPeer, kOurGlobal, kNextRouting, payload);
  };
  f.inject(routed(1));
  auto sent = sent_v6(f.dev);
  BOOST_TEST_REQUIRE(sent.size() == 1u);
  BOOST_TEST(sent[0].icmp_type() == kIcmp6ParamProblem);
  BOOST_TEST(sent[0].l4p()[1] == kParamErroneousField);
  BOOST_TEST(load32(sent[0].l4p() + 4) == 42u);
  f.inject(routed(0));
  sent = sent_v6(f.dev);
  BOOST_TEST_REQUIRE(sent.size() == 1u);
  BOOST_TEST(sent[0].icmp_type() == kIcmp6EchoReply);
}

BOOST_AUTO_TEST_CASE(no_next_header_is_counted) {
  V6Fixture f;
  f.inject(ip6_frame(kPeer, kOurGlobal, kNextNone, Bytes(8, 0)));
  BOOST_TEST(f.counter("ipv6.drop.no_next_header") == 1u);
  BOOST_TEST(sent_v6(f.dev).empty());
}

BOOST_AUTO_TEST_CASE(output_to_our_own_address_loops_back) {
  V6Fixture f;
  // An echo request from us to us: the reply comes back to us too, and nothing hits the wire.
  PacketPtr m = f.stack.alloc_tx();
  Bytes body = echo_body(1, 1, 4);
  uint8_t* d = m->append(4 + body.size());
  d[0] = kIcmp6EchoRequest;
  d[1] = 0;
  std::memcpy(d + 4, body.data(), body.size());
  Ipv6Tx tx;
  tx.dst = kOurGlobal;
  BOOST_TEST(f.stack.icmp6().output(std::move(m), tx) == 0);
  f.stack.poll();
  f.stack.poll();
  BOOST_TEST(f.dev.take_sent().empty());
  BOOST_TEST(f.counter("icmp6.tx_echo_reply") == 1u);
  BOOST_TEST(f.counter("icmp6.rx_echo_reply") == 1u);
  BOOST_TEST(f.stack.pool().available() == f.stack.pool().capacity());
}

BOOST_AUTO_TEST_CASE(output_without_route_or_source_fails_cleanly) {
  V6Fixture f;
  Ipv6Tx tx;
  tx.dst = A("2001:db9::1");
  tx.next_header = kProtoUdp;
  BOOST_TEST(f.stack.ipv6().output(f.stack.alloc_tx(), tx) == -ENETUNREACH);
  tx.dst = A("::");
  BOOST_TEST(f.stack.ipv6().output(f.stack.alloc_tx(), tx) == -ENETUNREACH);
  BOOST_TEST(f.stack.pool().available() == f.stack.pool().capacity());
}
