// The verbs driver's encapsulation (stack/driver/verbs/ud_wire.h): Ethernet frames to UD
// messages and back, the GRH, the MAC <-> (GID, QPN) mapping, hostile messages.
#include <boost/test/unit_test.hpp>
#include <cstring>
#include <vector>

#include "stack/driver/verbs/ud_wire.h"
#include "tests/support/verbs_print.h"

namespace shunt::verbs {
namespace {

const MacAddr kOwn{{0x02, 0x00, 0x00, 0x11, 0x02, 0x0f}};
const Gid kPeerGid = ipv4_mapped_gid(Ipv4Addr{0x0a00020a});  // ::ffff:10.0.2.10

// An Ethernet frame with an IPv4 header to `dst_ip` and `payload_len` bytes after it.
std::vector<uint8_t> eth_frame(const MacAddr& dst, uint16_t type, Ipv4Addr dst_ip, size_t payload_len) {
  std::vector<uint8_t> f(14 + 20 + payload_len);
  std::memcpy(f.data(), dst.b.data(), 6);
  std::memcpy(f.data() + 6, kOwn.b.data(), 6);
  store16(f.data() + 12, type);
  f[14] = 0x45;
  store32(f.data() + 14 + 16, dst_ip.v);
  for (size_t i = 0; i < payload_len; ++i) f[34 + i] = uint8_t(i * 7 + 1);
  return f;
}

// What the receiving device writes: a RoCEv2/IPv4 GRH from `src`, then the message.
std::vector<uint8_t> received(const uint8_t* msg, size_t len, const Gid& src) {
  std::vector<uint8_t> buf(2048);
  buf[20] = 0x45;
  std::memcpy(buf.data() + 32, src.b.data() + 12, 4);
  std::memcpy(buf.data() + kGrhLen, msg, len);
  return buf;
}

BOOST_AUTO_TEST_CASE(a_unicast_frame_survives_the_round_trip_with_the_sender_mac_derived_from_gid_and_qpn) {
  const MacAddr peer = ud_mac(kPeerGid, 0x123456);
  auto f = eth_frame(peer, kEtherTypeIpv4, Ipv4Addr{0x0a4d0002}, 1000);
  const auto original = f;
  TxMessage m = ethernet_to_ud(f.data(), f.size(), 2000);
  BOOST_TEST(int(m.error) == int(TxMessage::Error::kNone));
  BOOST_TEST(!m.group);
  BOOST_TEST(m.destination == peer);
  BOOST_TEST(m.len == f.size() - kTxMessageOffset);
  // The header is the IPoIB layout: type, then the reserved half (our group flag, zero).
  const uint8_t* msg = f.data() + kTxMessageOffset;
  BOOST_TEST(load16(msg) == kEtherTypeIpv4);
  BOOST_TEST(msg[2] == 0);
  BOOST_TEST(msg[3] == 0);

  const MacAddr receiver = ud_mac(ipv4_mapped_gid(Ipv4Addr{0x0a00020a}), 0x123456);
  auto buf = received(msg, m.len, ipv4_mapped_gid(Ipv4Addr{0x0a00020f}));
  RxFrame r = ud_to_ethernet(buf.data(), kGrhLen + m.len, true, true, 0x11, receiver, 2000);
  BOOST_REQUIRE(int(r.error) == int(RxFrame::Error::kNone));
  BOOST_TEST(r.offset == kRxFrameOffset);
  BOOST_TEST(r.len == original.size());
  BOOST_TEST(r.source == ipv4_mapped_gid(Ipv4Addr{0x0a00020f}));
  BOOST_TEST(r.source_mac == ud_mac(r.source, 0x11));
  const uint8_t* eth = buf.data() + r.offset;
  BOOST_TEST(MacAddr::read(eth) == receiver);
  BOOST_TEST(MacAddr::read(eth + 6) == r.source_mac);
  BOOST_TEST(load16(eth + 12) == kEtherTypeIpv4);
  BOOST_TEST(std::memcmp(eth + 14, original.data() + 14, original.size() - 14) == 0);
}

BOOST_AUTO_TEST_CASE(broadcast_and_multicast_frames_go_to_the_group_and_come_back_with_their_destination_mac) {
  struct Case {
    MacAddr dst;
    uint16_t type;
    Ipv4Addr ip;
    MacAddr expect;
  };
  const Ipv4Addr mcast{0xe0000016};  // 224.0.0.22 (IGMPv3)
  const Case cases[] = {{MacAddr::broadcast(), kEtherTypeArp, Ipv4Addr{0x0a4d0002}, MacAddr::broadcast()},
                        {MacAddr::broadcast(), kEtherTypeIpv4, Ipv4Addr{0x0a4d00ff}, MacAddr::broadcast()},
                        {ipv4_multicast_mac(mcast), kEtherTypeIpv4, mcast, ipv4_multicast_mac(mcast)}};
  for (const Case& c : cases) {
    auto f = eth_frame(c.dst, c.type, c.ip, 28);
    TxMessage m = ethernet_to_ud(f.data(), f.size(), 1020);
    BOOST_TEST(m.group);
    BOOST_TEST(f[kTxMessageOffset + 2] == kFlagGroup);
    auto buf = received(f.data() + kTxMessageOffset, m.len, kPeerGid);
    RxFrame r = ud_to_ethernet(buf.data(), kGrhLen + m.len, true, true, 0x22, kOwn, 1020);
    BOOST_REQUIRE(int(r.error) == int(RxFrame::Error::kNone));
    BOOST_TEST(r.group);
    BOOST_TEST(MacAddr::read(buf.data() + r.offset) == c.expect);
  }
  // IPv6 multicast (an NDP solicitation to ff02::1:ff00:2): 33:33:ff:00:00:02.
  std::vector<uint8_t> f6(14 + 40 + 32);
  Ipv6Addr sn = *Ipv6Addr::parse("ff02::1:ff00:2");
  std::memcpy(f6.data(), sn.multicast_mac().b.data(), 6);
  store16(f6.data() + 12, kEtherTypeIpv6);
  f6[14] = 0x60;
  sn.write(f6.data() + 14 + 24);
  TxMessage m = ethernet_to_ud(f6.data(), f6.size(), 1020);
  BOOST_TEST(m.group);
  auto buf = received(f6.data() + kTxMessageOffset, m.len, kPeerGid);
  RxFrame r = ud_to_ethernet(buf.data(), kGrhLen + m.len, true, true, 0x22, kOwn, 1020);
  BOOST_REQUIRE(int(r.error) == int(RxFrame::Error::kNone));
  BOOST_TEST(MacAddr::read(buf.data() + r.offset) == sn.multicast_mac());
}

BOOST_AUTO_TEST_CASE(frames_the_driver_cannot_carry_are_refused_with_their_reason) {
  std::vector<uint8_t> runt(13);
  BOOST_TEST(int(ethernet_to_ud(runt.data(), runt.size(), 1020).error) == int(TxMessage::Error::kRunt));
  auto vlan = eth_frame(kOwn, 0x8100, Ipv4Addr{1}, 10);
  BOOST_TEST(int(ethernet_to_ud(vlan.data(), vlan.size(), 1020).error) == int(TxMessage::Error::kEthertype));
  auto big = eth_frame(kOwn, kEtherTypeIpv4, Ipv4Addr{1}, 1001);  // 1021 bytes of IP
  BOOST_TEST(int(ethernet_to_ud(big.data(), big.size(), 1020).error) == int(TxMessage::Error::kOversize));
  auto fits = eth_frame(kOwn, kEtherTypeIpv4, Ipv4Addr{1}, 1000);
  BOOST_TEST(int(ethernet_to_ud(fits.data(), fits.size(), 1020).error) == int(TxMessage::Error::kNone));
}

BOOST_AUTO_TEST_CASE(hostile_messages_are_dropped_with_their_reason_and_never_read_past_their_end) {
  auto rx = [](std::vector<uint8_t> msg, size_t byte_len, bool grh = true, bool ipv4_grh = true) {
    std::vector<uint8_t> buf(2048, 0xee);
    std::memset(buf.data(), 0, kGrhLen);
    buf[20] = 0x45;
    std::memcpy(buf.data() + kGrhLen, msg.data(), msg.size());
    return ud_to_ethernet(buf.data(), byte_len, grh, ipv4_grh, 5, kOwn, 1020).error;
  };
  using E = RxFrame::Error;
  const std::vector<uint8_t> good{0x08, 0x00, 0, 0, 0x45};
  BOOST_TEST(int(rx(good, kGrhLen + 5)) == int(E::kNone));
  BOOST_TEST(int(rx(good, kGrhLen + 5, false)) == int(E::kNoGrh));
  BOOST_TEST(int(rx(good, 0)) == int(E::kRunt));
  BOOST_TEST(int(rx(good, kGrhLen + 3)) == int(E::kRunt));
  BOOST_TEST(int(rx({0x08, 0x00, 0x80, 0}, kGrhLen + 4)) == int(E::kReserved));
  BOOST_TEST(int(rx({0x08, 0x00, 0, 1}, kGrhLen + 4)) == int(E::kReserved));
  BOOST_TEST(int(rx({0x88, 0xcc, 0, 0}, kGrhLen + 4)) == int(E::kEthertype));  // LLDP
  BOOST_TEST(int(rx(good, kGrhLen + 4 + 1021)) == int(E::kOversize));
  // An IPv6-shaped GRH where an IPv4 one is expected is read as IPv6; garbage is neither.
  std::vector<uint8_t> buf(2048, 0);
  BOOST_TEST(int(ud_to_ethernet(buf.data(), kGrhLen + 4, true, true, 5, kOwn, 1020).error) == int(E::kBadGrh));
  buf[0] = 0x60;
  buf[kGrhLen] = 0x86;
  buf[kGrhLen + 1] = 0xdd;
  RxFrame r = ud_to_ethernet(buf.data(), kGrhLen + 4, true, false, 5, kOwn, 1020);
  BOOST_TEST(int(r.error) == int(E::kNone));
  BOOST_TEST(r.len == kEthLen);
  // Every length from 0 to past the end on random bytes: no crash, only known results.
  uint32_t seed = 12345;
  for (size_t len = 0; len < 200; ++len) {
    std::vector<uint8_t> junk(2048);
    for (auto& b : junk) b = uint8_t((seed = seed * 1103515245 + 12345) >> 16);
    ud_to_ethernet(junk.data(), len, (len & 1) != 0, (len & 2) != 0, 7, kOwn, 1020);
  }
}

BOOST_AUTO_TEST_CASE(the_mac_of_a_ud_address_is_unicast_local_and_carries_qpn_and_gid_tail) {
  const MacAddr m = ud_mac(ipv4_mapped_gid(Ipv4Addr{0x0a00020f}), 0x00abcdef);
  BOOST_TEST(m == (MacAddr{{0x02, 0xab, 0xcd, 0xef, 0x02, 0x0f}}));
  BOOST_TEST(!m.is_multicast());
  BOOST_TEST((m.b[0] & 2) == 2);  // locally administered
  BOOST_TEST(ud_mac(kPeerGid, 17) != ud_mac(kPeerGid, 18));
  BOOST_TEST(ud_mac(ipv4_mapped_gid(Ipv4Addr{0x0a000201}), 17) != ud_mac(ipv4_mapped_gid(Ipv4Addr{0x0a000202}), 17));
  BOOST_TEST(ipv4_mapped_gid(Ipv4Addr{0x0a00020f}).str() == "::ffff:10.0.2.15");
  BOOST_TEST(group_gid(Ipv4Addr{0xef534801}, true).str() == "::ffff:239.83.72.1");
  BOOST_TEST(group_gid(Ipv4Addr{0xef534801}, false).is_multicast());
  BOOST_TEST(ib_mtu_bytes(3) == 1024u);
  BOOST_TEST(ib_mtu_bytes(5) == 4096u);
  BOOST_TEST(ib_mtu_bytes(0) == 0u);
  BOOST_TEST(ib_mtu_bytes(6) == 0u);
}

}  // namespace
}  // namespace shunt::verbs
