// IPv4 reassembly (RFC 791 3.2, RFC 815) and its limits: overlaps, counts, size, memory, time.
#include <boost/test/unit_test.hpp>

#include "stack/net/ipv4.h"
#include "tests/support/ipv4_frames.h"

using namespace shunt;
using namespace shunt::test;

namespace {

// An echo request of `n` data bytes as one ICMP message.
Bytes big_echo(size_t n) {
  Bytes d(n);
  for (size_t i = 0; i < n; ++i) d[i] = uint8_t(i * 13 + 1);
  return icmp_msg(8, 0, 0x0badcafe, d);
}

// One fragment of `msg`: bytes [off, off + len).
Bytes frag(const Bytes& msg, size_t off, size_t len, bool mf, uint16_t id = 77, uint8_t proto = 1) {
  Ip4 h;
  h.proto = proto;
  h.id = id;
  h.frag_offset = uint16_t(off);
  h.mf = mf;
  return ipv4_frame(h, Bytes(msg.begin() + long(off), msg.begin() + long(off + len)));
}

// Fragments of 1480 bytes, in order.
std::vector<Bytes> fragments(const Bytes& msg, uint16_t id = 77, uint8_t proto = 1) {
  std::vector<Bytes> out;
  for (size_t off = 0; off < msg.size(); off += 1480) {
    const size_t n = std::min<size_t>(1480, msg.size() - off);
    out.push_back(frag(msg, off, n, off + n < msg.size(), id, proto));
  }
  return out;
}

// Reassembles what the stack sent (all fragments of one datagram, any order) into its payload.
Bytes payload_of(const std::vector<Bytes>& frames) {
  Bytes out;
  for (const auto& f : frames) {
    const size_t off = (get16(f, 20) & 0x1fff) * 8;
    const size_t len = get16(f, 16) - 20u;
    if (out.size() < off + len) out.resize(off + len);
    std::copy(f.begin() + 34, f.begin() + 34 + long(len), out.begin() + long(off));
  }
  return out;
}

void expect_pool_whole(V4Fixture& f) {
  BOOST_TEST(f.stack->ipv4().reassembly_in_progress() == 0u);
  BOOST_TEST(f.stack->ipv4().reassembly_bytes() == 0u);
  BOOST_TEST(f.stack->pool().available() == f.stack->pool().capacity());
}

}  // namespace

BOOST_AUTO_TEST_CASE(fragmented_echo_is_reassembled_in_any_order_and_answered_in_fragments) {
  V4Fixture f;
  f.learn_peer();
  const Bytes req = big_echo(3000);
  auto frags = fragments(req);
  BOOST_REQUIRE(frags.size() == 3u);
  f.inject(frags[2]);
  f.inject(frags[0]);
  f.inject(frags[1]);
  f.run();
  BOOST_TEST(f.counter("ipv4.reasm_ok") == 1u);
  auto out = f.sent_ipv4();
  BOOST_REQUIRE(out.size() == 3u);
  const Bytes reply = payload_of(out);
  BOOST_REQUIRE(reply.size() == req.size());
  BOOST_TEST(reply[0] == 0);  // echo reply
  BOOST_TEST(checksum(reply.data(), reply.size()) == 0);
  BOOST_TEST(Bytes(reply.begin() + 4, reply.end()) == Bytes(req.begin() + 4, req.end()));
  expect_pool_whole(f);
}

BOOST_AUTO_TEST_CASE(reassembled_header_describes_the_whole_datagram) {
  V4Fixture f;
  f.learn_peer();
  Bytes msg(2000, 0x5c);
  for (auto& fr : fragments(msg, 9, 253)) f.inject(fr);
  f.run();
  // Protocol unreachable quotes the reassembled header: total length fixed, no fragment bits.
  auto out = f.sent_ipv4();
  BOOST_REQUIRE(out.size() == 1u);
  const uint8_t* q = out[0].data() + 34 + 8;
  BOOST_TEST(load16(q + 2) == 2020u);
  BOOST_TEST(load16(q + 6) == 0u);
  BOOST_TEST(checksum(q, 20) == 0);
  expect_pool_whole(f);
}

BOOST_AUTO_TEST_CASE(duplicate_fragment_is_ignored_and_the_datagram_completes) {
  V4Fixture f;
  f.learn_peer();
  auto frags = fragments(big_echo(3000));
  f.inject(frags[0]);
  f.inject(frags[1]);
  f.inject(frags[1]);
  f.inject(frags[2]);
  f.run();
  BOOST_TEST(f.counter("ipv4.drop.frag_duplicate") == 1u);
  BOOST_TEST(f.counter("ipv4.reasm_ok") == 1u);
  BOOST_TEST(f.sent_ipv4().size() == 3u);
  expect_pool_whole(f);
}

BOOST_AUTO_TEST_CASE(overlapping_fragments_drop_the_whole_datagram) {
  V4Fixture f;
  f.learn_peer();
  const Bytes msg = big_echo(3000);
  f.inject(frag(msg, 0, 1480, true));
  f.inject(frag(msg, 1472, 1480, true));  // overlaps the first by 8 bytes
  f.run();
  BOOST_TEST(f.counter("ipv4.drop.reasm_overlap") == 1u);
  BOOST_TEST(f.stack->ipv4().reassembly_in_progress() == 0u);
  // A teardrop-style overlap inside an earlier fragment.
  f.inject(frag(msg, 0, 1480, true, 78));
  f.inject(frag(msg, 8, 16, true, 78));
  f.run();
  BOOST_TEST(f.counter("ipv4.drop.reasm_overlap") == 2u);
  BOOST_TEST(f.counter("ipv4.reasm_ok") == 0u);
  BOOST_TEST(f.sent_ipv4().empty());
  expect_pool_whole(f);
}

BOOST_AUTO_TEST_CASE(too_many_fragments_drop_the_datagram) {
  Config c = V4Fixture::base_config();
  c.reasm_max_frags = 4;
  V4Fixture f(c);
  f.learn_peer();
  const Bytes msg = big_echo(100);
  for (size_t off = 0; off < 40; off += 8) f.inject(frag(msg, off, 8, true));
  f.run();
  BOOST_TEST(f.counter("ipv4.drop.reasm_too_many_frags") == 1u);
  expect_pool_whole(f);
}

BOOST_AUTO_TEST_CASE(fragments_beyond_65535_bytes_are_dropped) {
  V4Fixture f;
  f.learn_peer();
  const Bytes msg(100, 0);
  Ip4 h;
  h.proto = 1;
  h.frag_offset = 8191 * 8;  // the largest offset
  f.inject(ipv4_frame(h, Bytes(16, 0)));
  h.frag_offset = 65512;
  h.mf = true;
  f.inject(ipv4_frame(h, Bytes(8, 0)));  // 20 + 65512 + 8 > 65535
  f.run();
  BOOST_TEST(f.counter("ipv4.drop.frag_too_big") == 2u);
  expect_pool_whole(f);
}

BOOST_AUTO_TEST_CASE(middle_fragment_not_a_multiple_of_8_is_dropped) {
  V4Fixture f;
  const Bytes msg = big_echo(100);
  f.inject(frag(msg, 0, 12, true));
  f.inject(frag(msg, 16, 0, true));  // empty
  f.run();
  BOOST_TEST(f.counter("ipv4.drop.frag_bad_length") == 2u);
  expect_pool_whole(f);
}

BOOST_AUTO_TEST_CASE(conflicting_last_fragments_drop_the_datagram) {
  V4Fixture f;
  const Bytes msg = big_echo(100);
  f.inject(frag(msg, 0, 16, true));
  f.inject(frag(msg, 40, 8, false));  // ends at 48
  f.inject(frag(msg, 56, 8, false));  // ends at 64: which is it?
  f.run();
  BOOST_TEST(f.counter("ipv4.drop.reasm_inconsistent") == 1u);
  // A fragment past the known end.
  f.inject(frag(msg, 40, 8, false, 5));
  f.inject(frag(msg, 48, 8, true, 5));
  f.run();
  BOOST_TEST(f.counter("ipv4.drop.reasm_inconsistent") == 2u);
  expect_pool_whole(f);
}

BOOST_AUTO_TEST_CASE(reassembly_memory_is_bounded_and_the_oldest_datagram_goes) {
  Config c = V4Fixture::base_config();
  c.reasm_max_bytes = 3 * 2048;
  V4Fixture f(c);
  const Bytes msg = big_echo(3000);
  for (uint16_t id = 1; id <= 5; ++id) f.inject(frag(msg, 0, 1480, true, id));
  f.run();
  BOOST_TEST(f.counter("ipv4.drop.reasm_memory") == 2u);
  BOOST_TEST(f.stack->ipv4().reassembly_in_progress() == 3u);
  BOOST_TEST(f.stack->ipv4().reassembly_bytes() <= 3u * 2048u);
  // Datagram 5 is still whole-able; datagram 1 was evicted.
  f.learn_peer();
  f.inject(frag(msg, 1480, 1480, true, 5));
  f.run();
  BOOST_TEST(f.counter("ipv4.drop.reasm_memory") == 3u);  // datagram 2 made room
  f.inject(frag(msg, 2960, msg.size() - 2960, false, 5));
  f.run();
  BOOST_TEST(f.counter("ipv4.reasm_ok") == 1u);
  f.advance(31 * kSecond);
  expect_pool_whole(f);
}

BOOST_AUTO_TEST_CASE(reassembly_times_out_with_time_exceeded_if_the_first_fragment_came) {
  V4Fixture f;
  f.learn_peer();
  const Bytes msg = big_echo(3000);
  f.inject(frag(msg, 0, 1480, true, 1));
  f.inject(frag(msg, 1480, 1480, true, 2));  // no first fragment: no ICMP
  f.run();
  BOOST_TEST(f.stack->ipv4().reassembly_in_progress() == 2u);
  f.advance(29 * kSecond);
  BOOST_TEST(f.counter("ipv4.drop.reasm_timeout") == 0u);
  f.advance(2 * kSecond);
  BOOST_TEST(f.counter("ipv4.drop.reasm_timeout") == 2u);
  auto out = f.sent_ipv4();
  BOOST_REQUIRE(out.size() == 1u);
  BOOST_TEST(out[0][34] == 11);  // time exceeded
  BOOST_TEST(out[0][35] == 1);   // fragment reassembly time exceeded
  BOOST_TEST(get16(out[0], 34 + 8 + 4) == 1u);  // quotes datagram 1
  expect_pool_whole(f);
}

BOOST_AUTO_TEST_CASE(datagrams_in_progress_are_bounded) {
  V4Fixture f;
  const Bytes msg = big_echo(100);
  const size_t n = Ipv4::kMaxReassemblies + 6;
  for (size_t id = 0; id < n; ++id) f.inject(frag(msg, 0, 16, true, uint16_t(id)));
  f.run();
  BOOST_TEST(f.stack->ipv4().reassembly_in_progress() == Ipv4::kMaxReassemblies);
  BOOST_TEST(f.counter("ipv4.drop.reasm_evicted") == 6u);
  f.advance(31 * kSecond);
  // Their time-exceeded errors wait for ARP that never answers, then go too.
  f.advance(5 * kSecond);
  BOOST_TEST(f.counter("arp.drop.unresolved") == 16u);
  expect_pool_whole(f);
}
