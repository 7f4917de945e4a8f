// IPv6 fragmentation and reassembly (RFC 8200 4.5, RFC 5722, RFC 6946, RFC 7112).
#include <boost/test/unit_test.hpp>
#include <algorithm>

#include "net_v6_support.h"

using namespace shunt;
using namespace shunt::v6test;

namespace {

Bytes frag_header(uint8_t nh, size_t offset, bool more, uint32_t id) {
  Bytes h{nh, 0};
  put16(h, uint16_t(offset | (more ? 1 : 0)));
  put32(h, id);
  return h;
}

Bytes fragment_frame(const Bytes& payload, size_t off, size_t len, bool more, uint32_t id,
                     const Ipv6Addr& src = kPeer, const Ipv6Addr& dst = kOurGlobal, uint8_t nh = kProtoIcmpv6) {
  Bytes p = frag_header(nh, off, more, id);
  p.insert(p.end(), payload.begin() + long(off), payload.begin() + long(off + len));
  return ip6_frame(src, dst, kNextFragment, p);
}

// Splits `payload` into fragments of `piece` bytes (a multiple of 8).
std::vector<Bytes> fragments(const Bytes& payload, size_t piece, uint32_t id) {
  std::vector<Bytes> out;
  for (size_t off = 0; off < payload.size(); off += piece) {
    size_t n = std::min(piece, payload.size() - off);
    out.push_back(fragment_frame(payload, off, n, off + n < payload.size(), id));
  }
  return out;
}

Bytes big_echo(size_t data_len, uint16_t seq = 1) {
  return icmp6_msg(kPeer, kOurGlobal, kIcmp6EchoRequest, 0, echo_body(0x1234, seq, data_len));
}

// Puts the stack's fragments back together; checks the fragment rules on the way.
Bytes reassemble_sent(const std::vector<Sent>& sent) {
  std::vector<std::pair<size_t, Bytes>> pieces;
  std::optional<uint32_t> id;
  for (const auto& s : sent) {
    BOOST_TEST_REQUIRE(bool(s.frag));
    BOOST_TEST(s.frame.size() - 14 <= 1500u);
    if (id) BOOST_TEST(*id == s.frag->ident);
    id = s.frag->ident;
    if (s.frag->more) BOOST_TEST(s.l4_len() % 8 == 0u);
    pieces.emplace_back(s.frag->offset, Bytes(s.l4p(), s.l4p() + s.l4_len()));
  }
  std::sort(pieces.begin(), pieces.end());
  Bytes all;
  for (auto& [off, b] : pieces) {
    BOOST_TEST(off == all.size());
    append(all, b);
  }
  return all;
}

}  // namespace

BOOST_AUTO_TEST_CASE(fragmented_echo_is_reassembled_and_the_reply_fragmented) {
  V6Fixture f;
  f.learn_peer();
  const Bytes req = big_echo(3000);
  for (auto& fr : fragments(req, 1232, 0xabcd)) f.inject(fr);
  BOOST_TEST(f.counter("ipv6.reassembled") == 1u);
  auto sent = sent_v6(f.dev);
  BOOST_TEST_REQUIRE(sent.size() == 3u);
  Bytes reply = reassemble_sent(sent);
  BOOST_TEST_REQUIRE(reply.size() == req.size());
  BOOST_TEST(reply[0] == kIcmp6EchoReply);
  BOOST_TEST(Bytes(reply.begin() + 4, reply.end()) == Bytes(req.begin() + 4, req.end()));
  uint32_t sum = pseudo_header_sum(IpAddr(kOurGlobal), IpAddr(kPeer), kProtoIcmpv6, uint32_t(reply.size()));
  BOOST_TEST(checksum_fold(checksum_add(sum, reply.data(), reply.size())) == 0);
  BOOST_TEST(f.stack.ipv6().reasm_in_progress() == 0u);
  BOOST_TEST(f.stack.pool().available() == f.stack.pool().capacity());
}

BOOST_AUTO_TEST_CASE(fragments_in_any_order_reassemble) {
  V6Fixture f;
  f.learn_peer();
  const Bytes req = big_echo(2000);
  auto fr = fragments(req, 512, 7);
  std::reverse(fr.begin(), fr.end());
  std::swap(fr[1], fr[2]);
  for (auto& x : fr) f.inject(x);
  BOOST_TEST(f.counter("ipv6.reassembled") == 1u);
  BOOST_TEST(f.counter("icmp6.tx_echo_reply") == 1u);
  f.dev.take_sent();
  BOOST_TEST(f.stack.pool().available() == f.stack.pool().capacity());
}

BOOST_AUTO_TEST_CASE(atomic_fragment_is_processed_at_once) {
  V6Fixture f;
  f.learn_peer();
  const Bytes req = big_echo(16);
  f.inject(fragment_frame(req, 0, req.size(), false, 99));
  BOOST_TEST(f.counter("icmp6.tx_echo_reply") == 1u);
  BOOST_TEST(f.stack.ipv6().reasm_in_progress() == 0u);
}

BOOST_AUTO_TEST_CASE(overlapping_fragments_drop_the_whole_datagram) {
  V6Fixture f;
  f.learn_peer();
  const Bytes req = big_echo(2000);
  f.inject(fragment_frame(req, 0, 800, true, 5));
  f.inject(fragment_frame(req, 792, 800, true, 5));  // overlaps the first by 8 bytes
  f.inject(fragment_frame(req, 1592, req.size() - 1592, false, 5));
  BOOST_TEST(f.counter("ipv6.drop.frag_overlap") == 1u);
  BOOST_TEST(f.counter("ipv6.reassembled") == 0u);
  // An exact duplicate is an overlap too (RFC 8200 4.5).
  f.inject(fragment_frame(req, 0, 800, true, 6));
  f.inject(fragment_frame(req, 0, 800, true, 6));
  BOOST_TEST(f.counter("ipv6.drop.frag_overlap") == 2u);
  f.run_for(61 * kSecond);  // the stray last fragment of datagram 5 times out
  BOOST_TEST(f.stack.ipv6().reasm_in_progress() == 0u);
  BOOST_TEST(f.counter("icmp6.tx_echo_reply") == 0u);
  BOOST_TEST(f.stack.pool().available() == f.stack.pool().capacity());
}

BOOST_AUTO_TEST_CASE(too_many_fragments_drop_the_datagram) {
  Config c = v6_config();
  c.reasm_max_frags = 4;
  V6Fixture f(c);
  f.learn_peer();
  const Bytes req = big_echo(1000);
  auto fr = fragments(req, 64, 11);
  for (auto& x : fr) f.inject(x);
  BOOST_TEST(f.counter("ipv6.drop.frag_too_many") >= 1u);
  BOOST_TEST(f.counter("ipv6.reassembled") == 0u);
  f.run_for(31 * kSecond);
  BOOST_TEST(f.stack.ipv6().reasm_in_progress() == 0u);
  BOOST_TEST(f.stack.pool().available() == f.stack.pool().capacity());
}

BOOST_AUTO_TEST_CASE(reassembly_memory_is_bounded) {
  Config c = v6_config();
  c.reasm_max_bytes = 8 * 2048;
  V6Fixture f(c);
  f.learn_peer();
  const Bytes req = big_echo(2000);
  // Twenty datagrams that never complete, each with two fragments held.
  for (uint32_t id = 0; id < 20; ++id) {
    f.inject(fragment_frame(req, 0, 512, true, 100 + id));
    f.inject(fragment_frame(req, 1024, 512, true, 100 + id));
    BOOST_TEST(f.stack.ipv6().reasm_bytes() <= size_t(c.reasm_max_bytes));
  }
  BOOST_TEST(f.counter("ipv6.drop.frag_memory") > 0u);
  f.run_for(40 * kSecond);  // timeouts, then the errors' neighbour resolution gives up
  BOOST_TEST(f.stack.ipv6().reasm_bytes() == 0u);
  BOOST_TEST(f.stack.pool().available() == f.stack.pool().capacity());
}

BOOST_AUTO_TEST_CASE(timeout_sends_time_exceeded_only_if_the_first_fragment_came) {
  V6Fixture f;
  f.learn_peer();
  const Bytes req = big_echo(2000);
  f.inject(fragment_frame(req, 0, 1024, true, 21));
  f.inject(fragment_frame(req, 1024, 512, true, 22));  // no first fragment for 22
  f.run_for(29 * kSecond);
  BOOST_TEST(non_ndp(sent_v6(f.dev)).empty());
  f.learn_peer();  // unreachability detection forgot the quiet peer meanwhile
  f.run_for(2 * kSecond);
  BOOST_TEST(f.counter("ipv6.drop.frag_timeout") == 2u);
  auto sent = non_ndp(sent_v6(f.dev));
  BOOST_TEST_REQUIRE(sent.size() == 1u);
  BOOST_TEST(sent[0].icmp_type() == kIcmp6TimeExceeded);
  BOOST_TEST(sent[0].l4p()[1] == kTimeExceededReassembly);
  BOOST_TEST(icmp6_checksum_ok(sent[0]));
  // The quote starts with the first fragment's IPv6 header.
  BOOST_TEST(Ipv6Addr::read(sent[0].l4p() + 8 + 8) == kPeer);
  BOOST_TEST(sent[0].l4p()[8 + 6] == kNextFragment);
  BOOST_TEST(f.stack.pool().available() == f.stack.pool().capacity());
}

BOOST_AUTO_TEST_CASE(first_fragment_without_the_whole_header_chain_is_dropped) {
  V6Fixture f;
  f.learn_peer();
  // A destination options header of 64 bytes, cut after 16 by the fragment boundary.
  Bytes payload{kProtoIcmpv6, 7};
  payload.push_back(kOptPadN);
  payload.push_back(60);
  payload.resize(64, 0);
  append(payload, big_echo(64));
  f.inject(fragment_frame(payload, 0, 16, true, 31, kPeer, kOurGlobal, kNextDestOpts));
  BOOST_TEST(f.counter("ipv6.drop.frag_incomplete_chain") == 1u);
  // An empty non-last fragment.
  Bytes udp(64, 0);
  f.inject(fragment_frame(udp, 0, 0, true, 32, kPeer, kOurGlobal, kProtoUdp));
  BOOST_TEST(f.counter("ipv6.drop.frag_bad_length") == 1u);  // empty non-last fragment
  auto sent = sent_v6(f.dev);
  BOOST_TEST_REQUIRE(sent.size() == 2u);
  BOOST_TEST(sent[0].icmp_type() == kIcmp6ParamProblem);
  BOOST_TEST(sent[0].l4p()[1] == kParamIncompleteChain);
  BOOST_TEST(f.stack.ipv6().reasm_in_progress() == 0u);
}

BOOST_AUTO_TEST_CASE(non_last_fragment_not_a_multiple_of_8_is_a_parameter_problem) {
  V6Fixture f;
  f.learn_peer();
  const Bytes req = big_echo(200);
  f.inject(fragment_frame(req, 0, 100, true, 41));
  BOOST_TEST(f.counter("ipv6.drop.frag_bad_length") == 1u);
  auto sent = sent_v6(f.dev);
  BOOST_TEST_REQUIRE(sent.size() == 1u);
  BOOST_TEST(sent[0].icmp_type() == kIcmp6ParamProblem);
  BOOST_TEST(load32(sent[0].l4p() + 4) == 4u);  // the payload length field
  // Offset + length past 65535.
  Bytes tail(64, 0);
  Bytes p = frag_header(kProtoIcmpv6, 65528, false, 42);
  append(p, tail);
  f.inject(ip6_frame(kPeer, kOurGlobal, kNextFragment, p));
  BOOST_TEST(f.counter("ipv6.drop.frag_bad_length") == 2u);
}

BOOST_AUTO_TEST_CASE(last_fragments_that_disagree_drop_the_datagram) {
  V6Fixture f;
  f.learn_peer();
  const Bytes req = big_echo(2000);
  f.inject(fragment_frame(req, 1024, 512, false, 51));
  f.inject(fragment_frame(req, 1536, 256, false, 51));  // a second, different end
  BOOST_TEST(f.counter("ipv6.drop.frag_bad_length") == 1u);
  BOOST_TEST(f.stack.ipv6().reasm_in_progress() == 0u);
  BOOST_TEST(f.stack.pool().available() == f.stack.pool().capacity());
}

BOOST_AUTO_TEST_CASE(many_concurrent_datagrams_evict_the_oldest) {
  V6Fixture f;
  f.learn_peer();
  const Bytes req = big_echo(2000);
  for (uint32_t id = 0; id < Ipv6::kMaxReasm + 5; ++id) f.inject(fragment_frame(req, 512, 512, true, 1000 + id));
  BOOST_TEST(f.stack.ipv6().reasm_in_progress() == Ipv6::kMaxReasm);
  BOOST_TEST(f.counter("ipv6.drop.frag_evicted") == 5u);
  f.run_for(40 * kSecond);
  BOOST_TEST(f.stack.pool().available() == f.stack.pool().capacity());
}

BOOST_AUTO_TEST_CASE(sending_over_the_mtu_fragments_with_the_router_alert_in_every_fragment) {
  V6Fixture f;
  f.learn_peer();
  PacketPtr m = f.stack.alloc_tx();
  Bytes body = echo_body(1, 1, 1800);
  uint8_t* d = m->append(4 + body.size());
  d[0] = kIcmp6EchoRequest;
  d[1] = 0;
  std::memcpy(d + 4, body.data(), body.size());
  Ipv6Tx tx;
  tx.dst = kPeer;
  tx.router_alert = true;
  BOOST_TEST(f.stack.icmp6().output(std::move(m), tx) == 0);
  auto sent = sent_v6(f.dev);
  BOOST_TEST_REQUIRE(sent.size() == 2u);
  for (const auto& s : sent) {
    BOOST_TEST(s.nh == kNextHopByHop);
    BOOST_TEST(s.router_alert);
  }
  Bytes all = reassemble_sent(sent);
  BOOST_TEST(all.size() == 4 + body.size());
  BOOST_TEST(f.stack.pool().available() == f.stack.pool().capacity());
}
