// Regression: packets waiting for neighbour resolution could hold the whole buffer pool. Each
// neighbour's queue was bounded (SHUNT_ARP_QUEUE, 16) and the cache too (256 entries), but not
// their product: echo requests from a few hundred spoofed on-link sources that never answer
// ARP or NDP queued 16 replies each, 4096 buffers, for the 3 s resolution takes, and the stack
// stopped receiving. All neighbours of one family together now hold at most an eighth of the
// pool (never less than one neighbour's queue).
#include <algorithm>

#include <boost/test/unit_test.hpp>

#include "stack/net/arp.h"
#include "stack/net/ndp.h"
#include "tests/support/ipv4_frames.h"

using namespace shunt;
using namespace shunt::test;

namespace {

// An ICMPv6 echo request from `src` to `dst` with a correct checksum.
Bytes echo6_frame(const Ipv6Addr& src, const Ipv6Addr& dst, uint16_t seq) {
  Bytes m(8 + 16, 0x77);
  m[0] = 128;
  m[1] = 0;
  put16(m, 2, 0);
  put16(m, 4, 0x4242);
  put16(m, 6, seq);
  const uint32_t sum = pseudo_header_sum(IpAddr(src), IpAddr(dst), 58, uint32_t(m.size()));
  put16(m, 2, checksum_fold(checksum_add(sum, m.data(), m.size())));
  // Sized once: vector::insert here trips GCC 12's -Warray-bounds false positive.
  Bytes ip(40 + m.size(), 0);
  ip[0] = 0x60;
  put16(ip, 4, uint16_t(m.size()));
  ip[6] = 58;
  ip[7] = 64;
  src.write(ip.data() + 8);
  dst.write(ip.data() + 24);
  std::copy(m.begin(), m.end(), ip.begin() + 40);
  return eth_frame(kOurMac, kPeerMac, 0x86dd, ip);
}

void flood(V4Fixture& f, const std::vector<Bytes>& frames) {
  for (size_t i = 0; i < frames.size(); ++i) {
    f.inject(frames[i]);
    if (i % 16 == 15) f.run();
  }
  f.run();
  f.clear_sent();
}

}  // namespace

BOOST_AUTO_TEST_CASE(echo_replies_to_neighbours_that_never_answer_arp_hold_an_eighth_of_the_pool) {
  V4Fixture f;
  const size_t capacity = f.stack->pool().capacity();
  std::vector<Bytes> frames;
  for (uint32_t host = 2; host < 252; ++host) {
    for (uint16_t seq = 0; seq < 16; ++seq) {
      Ip4 h;
      h.src = Ipv4Addr{0x0a000000 | host};
      h.proto = 1;
      frames.push_back(ipv4_frame(h, icmp_msg(8, 0, 0x00010000u | seq, Bytes(16, 0x61))));
    }
  }
  flood(f, frames);
  BOOST_TEST(capacity - f.stack->pool().available() <= capacity / 8);
  BOOST_TEST(f.counter("arp.drop.queue_full") > 0u);

  // A neighbour that answers still gets its reply.
  f.learn_peer(Ipv4Addr{0x0a0000fd});
  Ip4 h;
  h.src = Ipv4Addr{0x0a0000fd};
  h.proto = 1;
  f.inject(ipv4_frame(h, icmp_msg(8, 0, 0x00020002, Bytes(8, 0x62))));
  f.run();
  BOOST_TEST(f.sent_ipv4().size() == 1u);

  // Resolution gives up and every buffer comes back.
  f.advance(10 * kSecond);
  f.clear_sent();
  BOOST_TEST(f.stack->pool().available() == capacity);
}

BOOST_AUTO_TEST_CASE(echo_replies_to_neighbours_that_never_answer_ndp_hold_an_eighth_of_the_pool) {
  V4Fixture f;  // its link-local address is ours at once (DAD off)
  const size_t capacity = f.stack->pool().capacity();
  const Ipv6Addr ours = f.stack->link_local();
  std::vector<Bytes> frames;
  for (uint16_t host = 0; host < 250; ++host) {
    Ipv6Addr src = *Ipv6Addr::parse("fe80::1:0");
    src.b[14] = uint8_t(host >> 8);
    src.b[15] = uint8_t(host);
    for (uint16_t seq = 0; seq < 16; ++seq) frames.push_back(echo6_frame(src, ours, seq));
  }
  flood(f, frames);
  BOOST_TEST(capacity - f.stack->pool().available() <= capacity / 8);
  BOOST_TEST(f.counter("ndp.drop.queue_full") > 0u);

  f.advance(10 * kSecond);
  f.clear_sent();
  BOOST_TEST(f.stack->pool().available() == capacity);
}
