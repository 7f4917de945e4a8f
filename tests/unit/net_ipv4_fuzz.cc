// Thousands of random and mutated IPv4/ARP frames: the stack survives, counts what it drops,
// and gives every buffer back.
#include <boost/test/unit_test.hpp>

#include "stack/core/random.h"
#include "stack/net/igmp.h"
#include "stack/net/ipv4.h"
#include "tests/support/ipv4_frames.h"

using namespace shunt;
using namespace shunt::test;

namespace {

std::vector<Bytes> seed_frames() {
  std::vector<Bytes> s;
  Ip4 icmp;
  icmp.proto = 1;
  s.push_back(ipv4_frame(icmp, icmp_msg(8, 0, 0x00010001, Bytes(56, 0x61))));
  Ip4 ours;  // a datagram we sent, quoted by an error
  ours.src = kOurIp;
  ours.dst = kPeerIp;
  s.push_back(ipv4_frame(icmp, icmp_msg(3, 3, 0, ipv4_packet(ours, Bytes(8, 0)))));
  Ip4 udp;
  s.push_back(ipv4_frame(udp, udp_datagram(kPeerIp, kOurIp, 1000, 2000, Bytes(20, 7))));
  // Fragments of one echo.
  const Bytes big = icmp_msg(8, 0, 0x00020002, Bytes(3000, 0x62));
  for (size_t off = 0; off < big.size(); off += 1480) {
    Ip4 h = icmp;
    h.id = 99;
    h.frag_offset = uint16_t(off);
    h.mf = off + 1480 < big.size();
    const size_t n = std::min<size_t>(1480, big.size() - off);
    s.push_back(ipv4_frame(h, Bytes(big.begin() + long(off), big.begin() + long(off + n))));
  }
  Ip4 opt = icmp;
  opt.options = {1, 0x88, 6, 1, 2, 3, 4, 0};
  s.push_back(ipv4_frame(opt, icmp_msg(8, 0, 3, Bytes(8, 1))));
  s.push_back(arp_frame(1, kPeerMac, kPeerIp, MacAddr{}, kOurIp));
  s.push_back(arp_frame(2, kPeerMac, kPeerIp, kOurMac, kOurIp, kOurMac));
  // An IGMPv3 general query with two sources.
  Bytes q(20);
  q[0] = 0x11;
  q[1] = 20;
  q[8] = 2;
  put16(q, 10, 2);
  put16(q, 2, checksum(q.data(), q.size()));
  Ip4 ig;
  ig.src = Ipv4Addr{0x0a0000fe};
  ig.dst = Ipv4Addr{0xe0000001};
  ig.proto = 2;
  ig.ttl = 1;
  ig.options = {148, 4, 0, 0};
  s.push_back(ipv4_frame(ig, q, ipv4_multicast_mac(ig.dst)));
  return s;
}

// Recomputes the IPv4 header checksum (and an ICMP/IGMP one) so mutations reach deeper layers.
void fix_checksums(Bytes& f, Random& rng) {
  if (f.size() < 34 || get16(f, 12) != 0x0800) return;
  const size_t hl = size_t(f[14] & 0x0f) * 4;
  if (hl < 20 || 14 + hl > f.size()) return;
  put16(f, 24, 0);
  put16(f, 24, checksum(f.data() + 14, hl));
  if (rng.chance(0.5) && (f[23] == 1 || f[23] == 2) && 14 + hl + 4 <= f.size()) {
    const size_t l4 = 14 + hl;
    const size_t end = std::min<size_t>(f.size(), 14 + get16(f, 16));
    if (end > l4 + 4) {
      put16(f, l4 + 2, 0);
      put16(f, l4 + 2, checksum(f.data() + l4, end - l4));
    }
  }
}

Bytes mutate(const Bytes& in, Random& rng) {
  Bytes f = in;
  switch (rng.below(6)) {
    case 0: {  // flip a few bytes anywhere
      for (int i = 0, n = 1 + int(rng.below(4)); i < n; ++i) f[rng.below(f.size())] ^= uint8_t(1 + rng.below(255));
      break;
    }
    case 1: {  // a byte in the IP/ARP header
      const size_t at = 14 + rng.below(std::min<size_t>(40, f.size() - 14));
      f[at] = uint8_t(rng.next());
      break;
    }
    case 2:  // truncate
      f.resize(rng.below(f.size() + 1));
      break;
    case 3:  // extend with junk
      for (size_t i = 0, n = rng.below(64); i < n; ++i) f.push_back(uint8_t(rng.next()));
      break;
    case 4: {  // a lying length or offset field
      if (f.size() >= 22) {
        const size_t at = rng.chance(0.5) ? 16 : 20;
        put16(f, at, uint16_t(rng.next()));
      }
      break;
    }
    default: {  // random bytes behind a valid Ethernet header
      f.resize(14 + rng.below(200));
      for (size_t i = 14; i < f.size(); ++i) f[i] = uint8_t(rng.next());
      break;
    }
  }
  if (rng.chance(0.6)) fix_checksums(f, rng);
  return f;
}

}  // namespace

BOOST_AUTO_TEST_CASE(stack_survives_random_and_mutated_frames_and_returns_every_buffer) {
  Config c = V4Fixture::base_config();
  c.buffers = 512;  // small, so exhaustion paths run too
  V4Fixture f(c);
  f.stack->igmp().join(Ipv4Addr{0xe0000005});
  f.stack->set_default_gateway(IpAddr(Ipv4Addr{0x0a0000fe}));
  const auto seeds = seed_frames();
  Random rng(12345);
  constexpr int kFrames = 20000;
  for (int i = 0; i < kFrames; ++i) {
    const Bytes& s = seeds[rng.below(seeds.size())];
    f.inject(rng.chance(0.1) ? s : mutate(s, rng));
    if (i % 8 == 7) {
      f.run();
      f.dev.take_sent();
      f.clock.advance(Nanos(rng.below(50 * kMilli)));
    }
  }
  f.run();
  // Everything held (reassembly, ARP queues, timers) drains with time.
  f.advance(120 * kSecond);
  f.dev.take_sent();
  BOOST_TEST(f.stack->ipv4().reassembly_in_progress() == 0u);
  BOOST_TEST(f.stack->pool().available() == f.stack->pool().capacity());
  BOOST_TEST(f.counter("ipv4.rx_packets") > 0u);
  BOOST_TEST(f.counter("ipv4.rx_delivered") > 0u);
  BOOST_TEST(f.stack->counters().sum("ipv4.drop.") > 0u);
  BOOST_TEST(f.stack->counters().sum("arp.drop.") > 0u);
  BOOST_TEST_MESSAGE(f.stack->counters().dump());

  // And it still works.
  f.clear_sent();
  f.learn_peer();
  Ip4 h;
  h.proto = 1;
  f.inject(ipv4_frame(h, icmp_msg(8, 0, 0x00090009, Bytes(8, 0))));
  f.run();
  BOOST_TEST(f.sent_ipv4().size() == 1u);
}

BOOST_AUTO_TEST_CASE(same_seed_gives_the_same_frames_out) {
  auto run_once = [] {
    V4Fixture f;
    f.stack->igmp().join(Ipv4Addr{0xe0000005});
    const auto seeds = seed_frames();
    Random rng(777);
    std::vector<Bytes> all;
    for (int i = 0; i < 2000; ++i) {
      f.inject(mutate(seeds[rng.below(seeds.size())], rng));
      if (i % 4 == 3) {
        f.run();
        f.clock.advance(Nanos(rng.below(100 * kMilli)));
      }
      for (auto& fr : f.dev.take_sent()) all.push_back(std::move(fr));
    }
    return all;
  };
  const auto a = run_once();
  const auto b = run_once();
  BOOST_TEST(a.size() > 0u);
  BOOST_TEST((a == b));
}
