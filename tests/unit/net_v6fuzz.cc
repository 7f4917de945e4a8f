// Thousands of seeded random and mutated IPv6 frames: the stack survives and gives back every
// buffer.
#include <boost/test/unit_test.hpp>

#include "net_v6_support.h"
#include "stack/core/random.h"

using namespace shunt;
using namespace shunt::v6test;

namespace {

std::vector<Bytes> corpus() {
  std::vector<Bytes> c;
  c.push_back(echo_request_frame(kPeer, kOurGlobal, 1, 40));
  c.push_back(echo_request_frame(kPeerLl, kAllNodes, 2, 8));
  c.push_back(ns_frame(kPeer, kOurGlobal.solicited_node(), kOurGlobal, kPeerMac));
  c.push_back(ns_frame(A("::"), kOurGlobal.solicited_node(), kOurGlobal, std::nullopt));
  c.push_back(na_frame(A("2001:db8::3"), kOurGlobal, A("2001:db8::3"), kNaFlagSolicited | kNaFlagOverride, kPeerMac));
  // Destination options and hop-by-hop chains.
  Bytes opts{kProtoIcmpv6, 0, kOptPadN, 0, 0x1e, 2, 0, 0};
  append(opts, icmp6_msg(kPeer, kOurGlobal, kIcmp6EchoRequest, 0, echo_body(3, 3, 8)));
  c.push_back(ip6_frame(kPeer, kOurGlobal, kNextDestOpts, opts));
  c.push_back(ip6_frame(kPeer, kOurGlobal, kNextHopByHop, opts));
  // Fragments of one echo.
  Bytes req = icmp6_msg(kPeer, kOurGlobal, kIcmp6EchoRequest, 0, echo_body(4, 4, 1500));
  for (size_t off = 0; off < req.size(); off += 512) {
    size_t n = std::min<size_t>(512, req.size() - off);
    Bytes p{kProtoIcmpv6, 0};
    put16(p, uint16_t(off | (off + n < req.size() ? 1 : 0)));
    put32(p, 77);
    p.insert(p.end(), req.begin() + long(off), req.begin() + long(off + n));
    c.push_back(ip6_frame(kPeer, kOurGlobal, kNextFragment, p));
  }
  // An MLD query.
  Bytes q;
  put16(q, 100);
  put16(q, 0);
  put_addr(q, A("::"));
  q.resize(q.size() + 4, 0);
  c.push_back(ip6_frame(kPeerLl, kAllNodes, kProtoIcmpv6, icmp6_msg(kPeerLl, kAllNodes, kIcmp6MldQuery, 0, q), 1));
  return c;
}

}  // namespace

BOOST_AUTO_TEST_CASE(random_and_mutated_frames_leave_the_stack_whole) {
  Config cfg = v6_config();
  cfg.reasm_max_bytes = 64 * 2048;
  V6Fixture f(cfg);
  f.learn_peer();
  const auto base = corpus();
  Random rng(12345);
  const int kFrames = 20000;
  for (int i = 0; i < kFrames; ++i) {
    Bytes fr;
    const uint64_t kind = rng.below(10);
    if (kind == 0) {
      // Wholly random after a valid Ethernet header.
      fr = ip6_frame(kPeer, kOurGlobal, uint8_t(rng.below(256)), {});
      fr.resize(14 + rng.below(300));
      for (size_t k = 14; k < fr.size(); ++k) fr[k] = uint8_t(rng.next());
      if (fr.size() > 14) fr[14] = uint8_t(0x60 | (fr[14] & 0x0f));
    } else {
      fr = base[rng.below(base.size())];
      const uint64_t flips = 1 + rng.below(6);
      for (uint64_t k = 0; k < flips; ++k) {
        // Mostly in the headers, where the parsers are.
        size_t pos = 14 + rng.below(std::min<size_t>(fr.size() - 14, rng.chance(0.7) ? 80 : fr.size()));
        fr[pos] = uint8_t(rng.next());
      }
      if (rng.chance(0.2)) fr.resize(14 + rng.below(fr.size() - 14 + 1));
      if (rng.chance(0.1)) fr.resize(fr.size() + rng.below(64), uint8_t(rng.next()));
      if (rng.chance(0.1)) fr[14 + 6] = uint8_t(rng.below(2) ? kNextDestOpts : kNextFragment);
    }
    f.dev.inject(fr);
    if (i % 16 == 0) {
      f.clock.advance(50 * kMilli);
      f.stack.poll();
      f.dev.take_sent();
    }
  }
  f.run_for(60 * kSecond);
  f.dev.take_sent();
  BOOST_TEST(f.stack.counters().sum("ipv6.drop.") + f.stack.counters().sum("icmp6.drop.") > 0u);
  BOOST_TEST(f.stack.ipv6().reasm_in_progress() == 0u);
  BOOST_TEST(f.stack.pool().available() == f.stack.pool().capacity());
  // Still working afterwards.
  f.learn_peer();
  f.inject(echo_request_frame(kPeer, kOurGlobal, 9));
  auto sent = non_ndp(sent_v6(f.dev));
  BOOST_TEST_REQUIRE(sent.size() == 1u);
  BOOST_TEST(sent[0].icmp_type() == kIcmp6EchoReply);
}
