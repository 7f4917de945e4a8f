// Regression: fragments that never complete could hold every buffer of the pool. IPv4 kept
// up to SHUNT_REASM_MAX_BYTES (4 MiB: half the default pool) whatever the pool's size, and IPv6
// up to half the pool, so the two families together took all of it: the device could not
// receive a frame until the reassembly timeout, and a peer could renew the flood forever.
// Reassembly now holds at most a quarter of the pool per family.
#include <boost/test/unit_test.hpp>

#include "stack/net/ipv4.h"
#include "stack/net/ipv6.h"
#include "tests/support/ipv4_frames.h"

using namespace shunt;
using namespace shunt::test;

namespace {

const Ipv6Addr kPeerLl = *Ipv6Addr::parse("fe80::2");

// An IPv6 fragment (8 bytes of a UDP datagram that never completes) to our link-local address.
Bytes v6_fragment(const Ipv6Addr& dst, uint32_t ident, uint16_t offset) {
  Bytes ip(40 + 8 + 8, 0);
  ip[0] = 0x60;
  put16(ip, 4, 16);
  ip[6] = 44;  // fragment header
  ip[7] = 64;
  kPeerLl.write(ip.data() + 8);
  dst.write(ip.data() + 24);
  ip[40] = 17;
  put16(ip, 42, uint16_t(offset | 1));  // more fragments
  ip[44] = uint8_t(ident >> 24);
  ip[45] = uint8_t(ident >> 16);
  ip[46] = uint8_t(ident >> 8);
  ip[47] = uint8_t(ident);
  put16(ip, 48, 1000);  // a UDP header, for the first fragment's header-chain check
  put16(ip, 50, 7);
  return eth_frame(kOurMac, kPeerMac, 0x86dd, ip);
}

// Feeds frames a burst at a time.
void flood(V4Fixture& f, const std::vector<Bytes>& frames) {
  for (size_t i = 0; i < frames.size(); ++i) {
    f.inject(frames[i]);
    if (i % 16 == 15) f.run();
  }
  f.run();
  f.clear_sent();
}

}  // namespace

BOOST_AUTO_TEST_CASE(fragments_of_both_families_never_hold_more_than_half_the_pool) {
  V4Fixture f;  // the default pool (4096) and SHUNT_REASM_MAX_BYTES (4 MiB)
  const size_t capacity = f.stack->pool().capacity();
  std::vector<Bytes> frames;
  // As many incomplete IPv4 datagrams and fragments as the limits take: 64 x 64.
  for (uint16_t id = 0; id < 64; ++id) {
    for (uint16_t k = 0; k < 64; ++k) {
      Ip4 h;
      h.id = uint16_t(1000 + id);
      h.mf = true;
      h.frag_offset = uint16_t(k * 8);
      frames.push_back(ipv4_frame(h, Bytes(8, 0x55)));
    }
  }
  // And IPv6: 32 datagrams x 64 fragments.
  const Ipv6Addr our_ll = f.stack->link_local();
  for (uint32_t id = 0; id < 32; ++id) {
    for (uint16_t k = 0; k < 64; ++k) frames.push_back(v6_fragment(our_ll, 0x10000 + id, uint16_t(k * 8)));
  }
  flood(f, frames);
  const size_t held = capacity - f.stack->pool().available();
  BOOST_TEST(f.stack->ipv4().reassembly_bytes() <= capacity * PacketBuf::kCapacity / 4);
  BOOST_TEST(f.stack->ipv6().reasm_bytes() <= capacity * PacketBuf::kCapacity / 4);
  BOOST_TEST(held <= capacity / 2);
  BOOST_TEST(f.counter("ipv4.drop.reasm_memory") > 0u);
  BOOST_TEST(f.counter("ipv6.drop.frag_memory") > 0u);

  // The stack still receives and answers while the fragments wait for their timeout.
  f.learn_peer();
  Ip4 echo;
  echo.proto = 1;
  f.inject(ipv4_frame(echo, icmp_msg(8, 0, 0x00010001, Bytes(32, 0x61))));
  f.run();
  BOOST_TEST(f.sent_ipv4().size() == 1u);

  // And the timeout gives everything back (with the time-exceeded errors it sends, which wait
  // for neighbour resolution until that gives up too).
  f.advance(40 * kSecond);
  f.clear_sent();
  BOOST_TEST(f.stack->ipv4().reassembly_in_progress() == 0u);
  BOOST_TEST(f.stack->ipv6().reasm_in_progress() == 0u);
  BOOST_TEST(f.stack->pool().available() == capacity);
}

BOOST_AUTO_TEST_CASE(a_small_pool_keeps_its_reassembly_share) {
  // SHUNT_BUFFERS small and SHUNT_REASM_MAX_BYTES at its default: the pool, not the setting,
  // is the bound.
  Config c = V4Fixture::base_config();
  c.buffers = 256;
  V4Fixture f(c);
  std::vector<Bytes> frames;
  for (uint16_t id = 0; id < 16; ++id) {
    for (uint16_t k = 0; k < 32; ++k) {
      Ip4 h;
      h.id = uint16_t(2000 + id);
      h.mf = true;
      h.frag_offset = uint16_t(k * 8);
      frames.push_back(ipv4_frame(h, Bytes(8, 0x66)));
    }
  }
  flood(f, frames);
  BOOST_TEST(f.stack->ipv4().reassembly_bytes() <= 64u * PacketBuf::kCapacity);
  BOOST_TEST(f.stack->pool().available() >= 256u - 64u);
}
