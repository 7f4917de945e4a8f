// The send side: what leaves the device for each kind of send, multicast membership reports,
// IP_MULTICAST_LOOP, fragmentation, ancillary data.
#include <boost/test/unit_test.hpp>

#include "unit/udp_support.h"

using namespace shunt;
using namespace shunt::udptest;

namespace {

std::string pattern(size_t n, uint8_t seed = 0) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = char(uint8_t(i * 13 + seed));
  return s;
}

std::vector<Sent> of_proto(const std::vector<Sent>& v, uint8_t proto) {
  std::vector<Sent> out;
  for (const auto& s : v) {
    if (s.proto == proto) out.push_back(s);
  }
  return out;
}

// Two payload bytes that make the UDP checksum compute to zero for this 4-tuple.
std::string zero_sum_payload(const IpAddr& src, uint16_t sport, const IpAddr& dst, uint16_t dport) {
  Bytes probe = udp_bytes(src, dst, sport, dport, {0, 0}, UdpOpts{0, -1});
  uint32_t sum = pseudo_header_sum(src, dst, kProtoUdp, uint32_t(probe.size()));
  const uint16_t rest = uint16_t(~checksum_fold(checksum_add(sum, probe.data(), probe.size())));
  const uint16_t fill = uint16_t(0xffff - rest);
  return std::string{char(fill >> 8), char(fill & 0xff)};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(udp_send)

BOOST_AUTO_TEST_CASE(a_datagram_leaves_with_correct_headers_and_checksum) {
  UdpFixture f;
  int s = f.bound4("10.0.0.1", 5000);
  BOOST_TEST(f.send(s, "hello", sa4("10.0.0.2", 53)) == 5);
  auto out = f.sent_udp();
  BOOST_REQUIRE(out.size() == 1u);
  const Sent& d = out[0];
  BOOST_TEST((d.dst_mac == kPeerMac));
  BOOST_TEST((d.src == IpAddr(kOur4)));
  BOOST_TEST((d.dst == IpAddr(kPeer4)));
  BOOST_TEST(d.sport == 5000);
  BOOST_TEST(d.dport == 53);
  BOOST_TEST(d.ulen == 13);
  BOOST_TEST(d.ttl == 64);
  BOOST_TEST(d.checksum_ok);
  BOOST_TEST(std::string(d.payload.begin(), d.payload.end()) == "hello");
  BOOST_TEST(f.counter("udp.tx_datagrams") == 1u);
}

BOOST_AUTO_TEST_CASE(ipv6_datagram_leaves_with_correct_headers_and_checksum) {
  UdpFixture f;
  int s = f.bound6("::", 5000);
  BOOST_TEST(f.send(s, "hello6", sa6("2001:db8::2", 53)) == 6);
  auto out = f.sent_udp();
  BOOST_REQUIRE(out.size() == 1u);
  BOOST_TEST((out[0].src == IpAddr(kOur6)));
  BOOST_TEST((out[0].dst == IpAddr(kPeer6)));
  BOOST_TEST(out[0].ttl == 64);
  BOOST_TEST(out[0].checksum_ok);
  BOOST_TEST(out[0].ulen == 14);
}

BOOST_AUTO_TEST_CASE(a_checksum_that_computes_to_zero_is_sent_as_ffff) {
  UdpFixture f;
  int s4 = f.bound4("10.0.0.1", 5000);
  BOOST_TEST(f.send(s4, zero_sum_payload(IpAddr(kOur4), 5000, IpAddr(kPeer4), 53), sa4("10.0.0.2", 53)) == 2);
  int s6 = f.bound6("2001:db8::1", 5000);
  BOOST_TEST(f.send(s6, zero_sum_payload(IpAddr(kOur6), 5000, IpAddr(kPeer6), 53), sa6("2001:db8::2", 53)) == 2);
  auto out = f.sent_udp();
  BOOST_REQUIRE(out.size() == 2u);
  for (const auto& d : out) {
    BOOST_TEST(d.csum == 0xffff);
    BOOST_TEST(d.checksum_ok);
  }
}

BOOST_AUTO_TEST_CASE(zero_length_datagrams_are_sent) {
  UdpFixture f;
  int s = f.udp4();
  BOOST_TEST(f.send(s, "", sa4("10.0.0.2", 53)) == 0);
  auto out = f.sent_udp();
  BOOST_REQUIRE(out.size() == 1u);
  BOOST_TEST(out[0].ulen == 8);
  BOOST_TEST(out[0].payload.empty());
}

BOOST_AUTO_TEST_CASE(unbound_sender_gets_an_ephemeral_port_on_the_wildcard) {
  UdpFixture f;
  int s = f.udp4();
  BOOST_TEST(f.send(s, "x", sa4("10.0.0.2", 53)) == 1);
  auto out = f.sent_udp();
  BOOST_REQUIRE(out.size() == 1u);
  BOOST_TEST(out[0].sport >= 32768);
  BOOST_TEST(out[0].sport <= 60999);
  Addr got;
  got.len = sizeof got.ss;
  f.api.getsockname(s, got.sa(), &got.len);
  BOOST_TEST(got.ip() == "0.0.0.0");
  BOOST_TEST(got.port() == out[0].sport);
  // Replies reach it.
  f.inject(udp4_frame(kPeer4, 53, kOur4, out[0].sport, text("reply")));
  BOOST_TEST(f.recv(s).data == "reply");
}

BOOST_AUTO_TEST_CASE(connected_socket_sends_to_its_peer_or_where_sendto_says) {
  UdpFixture f;
  int s = f.udp4();
  Addr peer = sa4("10.0.0.2", 53);
  BOOST_TEST(f.api.connect(s, peer.sa(), peer.len) == 0);
  BOOST_TEST(f.api.send(s, "a", 1, 0) == 1);
  BOOST_TEST(f.send(s, "b", sa4("10.0.0.3", 54)) == 1);  // Linux allows it
  auto out = f.sent_udp();
  BOOST_REQUIRE(out.size() == 2u);
  BOOST_TEST((out[0].dst == IpAddr(kPeer4)));
  BOOST_TEST(out[0].dport == 53);
  BOOST_TEST((out[1].dst == IpAddr(kPeer4b)));
  BOOST_TEST(out[1].dport == 54);
  BOOST_TEST((out[1].dst_mac == kPeer2Mac));
}

BOOST_AUTO_TEST_CASE(ttl_tos_hop_limit_and_traffic_class_options_apply) {
  UdpFixture f;
  int s = f.udp4();
  f.set_int(s, IPPROTO_IP, IP_TTL, 9);
  f.set_int(s, IPPROTO_IP, IP_TOS, 0x10);
  f.send(s, "x", sa4("10.0.0.2", 53));
  int s6 = f.udp6();
  f.set_int(s6, IPPROTO_IPV6, IPV6_UNICAST_HOPS, 5);
  f.set_int(s6, IPPROTO_IPV6, IPV6_TCLASS, 0x20);
  f.send(s6, "x", sa6("2001:db8::2", 53));
  auto out = f.sent_udp();
  BOOST_REQUIRE(out.size() == 2u);
  BOOST_TEST(out[0].ttl == 9);
  BOOST_TEST(out[0].tos == 0x10);
  BOOST_TEST(out[1].ttl == 5);
  BOOST_TEST(out[1].tos == 0x20);
}

BOOST_AUTO_TEST_CASE(broadcast_needs_so_broadcast_and_goes_to_the_broadcast_mac) {
  UdpFixture f;
  int s = f.udp4();
  BOOST_TEST(f.send(s, "x", sa4("255.255.255.255", 67)) == -EACCES);
  BOOST_TEST(f.sent_udp().empty());
  f.set_int(s, SOL_SOCKET, SO_BROADCAST, 1);
  BOOST_TEST(f.send(s, "x", sa4("255.255.255.255", 67)) == 1);
  BOOST_TEST(f.send(s, "y", sa4("10.0.0.255", 67)) == 1);
  auto out = f.sent_udp();
  BOOST_REQUIRE(out.size() == 2u);
  for (const auto& d : out) {
    BOOST_TEST(d.dst_mac.is_broadcast());
    BOOST_TEST((d.src == IpAddr(kOur4)));
    BOOST_TEST(d.checksum_ok);
  }
}

BOOST_AUTO_TEST_CASE(multicast_uses_the_multicast_ttl_and_mac) {
  UdpFixture f;
  int s = f.udp4();
  BOOST_TEST(f.send(s, "x", sa4("239.1.2.3", 5000)) == 1);
  f.set_int(s, IPPROTO_IP, IP_MULTICAST_TTL, 4);
  BOOST_TEST(f.send(s, "y", sa4("239.1.2.3", 5000)) == 1);
  auto out = f.sent_udp();
  BOOST_REQUIRE(out.size() == 2u);
  BOOST_TEST(out[0].ttl == 1);
  BOOST_TEST(out[1].ttl == 4);
  BOOST_TEST((out[0].dst_mac == ipv4_multicast_mac(V4("239.1.2.3"))));
  int s6 = f.udp6();
  BOOST_TEST(f.send(s6, "z", sa6("ff05::1234", 5000)) == 1);
  out = f.sent_udp();
  BOOST_REQUIRE(out.size() == 1u);
  BOOST_TEST(out[0].ttl == 1);
  BOOST_TEST((out[0].dst_mac == V6("ff05::1234").multicast_mac()));
}

BOOST_AUTO_TEST_CASE(joining_sends_an_igmp_report_and_the_last_leave_another) {
  UdpFixture f;
  int a = f.udp4(), b = f.udp4();
  ip_mreq m{};
  inet_pton(AF_INET, "239.5.5.5", &m.imr_multiaddr);
  BOOST_TEST(f.api.setsockopt(a, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof m) == 0);
  auto reports = of_proto(f.sent(), kProtoIgmp);
  BOOST_REQUIRE(reports.size() >= 1u);
  BOOST_TEST((reports[0].dst == IpAddr(V4("224.0.0.22"))));  // IGMPv3 reports (RFC 3376 4.2.14)
  // A second socket joining the same group changes nothing on the wire.
  BOOST_TEST(f.api.setsockopt(b, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof m) == 0);
  BOOST_TEST(of_proto(f.sent(), kProtoIgmp).empty());
  BOOST_TEST(f.api.close(a) == 0);
  BOOST_TEST(of_proto(f.sent(), kProtoIgmp).empty());
  BOOST_TEST(f.stack.igmp().is_member(V4("239.5.5.5")));
  // The last one going (by close) leaves the group.
  BOOST_TEST(f.api.close(b) == 0);
  BOOST_TEST(of_proto(f.sent(), kProtoIgmp).size() >= 1u);
  BOOST_TEST(!f.stack.igmp().is_member(V4("239.5.5.5")));
}

BOOST_AUTO_TEST_CASE(joining_an_ipv6_group_sends_an_mld_report) {
  UdpFixture f;
  int s = f.udp6();
  ipv6_mreq m{};
  inet_pton(AF_INET6, "ff05::4444", &m.ipv6mr_multiaddr);
  BOOST_TEST(f.api.setsockopt(s, IPPROTO_IPV6, IPV6_JOIN_GROUP, &m, sizeof m) == 0);
  BOOST_TEST(f.stack.mld().is_member(V6("ff05::4444")));
  auto out = f.sent();
  bool report = false;
  for (const auto& d : out) {
    if (d.ethertype == kEtherTypeIpv6 && d.dst == IpAddr(V6("ff02::16"))) report = true;  // MLDv2 (RFC 3810 5.2.14)
  }
  BOOST_TEST(report);
  BOOST_TEST(f.api.setsockopt(s, IPPROTO_IPV6, IPV6_LEAVE_GROUP, &m, sizeof m) == 0);
  BOOST_TEST(!f.stack.mld().is_member(V6("ff05::4444")));
}

BOOST_AUTO_TEST_CASE(multicast_loop_delivers_our_own_sends_unless_turned_off) {
  UdpFixture f;
  int rx = f.bound4("0.0.0.0", 6800);
  ip_mreq m{};
  inet_pton(AF_INET, "239.1.1.1", &m.imr_multiaddr);
  BOOST_TEST(f.api.setsockopt(rx, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof m) == 0);
  f.sent();
  int tx = f.udp4();
  Addr group = sa4("239.1.1.1", 6800);
  BOOST_TEST(f.send(tx, "looped", group) == 6);
  BOOST_TEST(f.sent_udp().size() == 1u);  // it still goes out
  auto g = f.recv(rx);
  BOOST_TEST(g.data == "looped");
  BOOST_TEST(g.from.ip() == "10.0.0.1");
  BOOST_TEST(f.set_int(tx, IPPROTO_IP, IP_MULTICAST_LOOP, 0) == 0);
  BOOST_TEST(f.send(tx, "not looped", group) == 10);
  BOOST_TEST(f.sent_udp().size() == 1u);
  BOOST_TEST(f.recv(rx).n == -EAGAIN);
}

BOOST_AUTO_TEST_CASE(ipv6_multicast_loop_delivers_our_own_sends_unless_turned_off) {
  UdpFixture f;
  int rx = f.bound6("::", 6800);
  ipv6_mreq m{};
  inet_pton(AF_INET6, "ff05::99", &m.ipv6mr_multiaddr);
  BOOST_TEST(f.api.setsockopt(rx, IPPROTO_IPV6, IPV6_JOIN_GROUP, &m, sizeof m) == 0);
  f.sent();
  int tx = f.udp6();
  Addr group = sa6("ff05::99", 6800);
  BOOST_TEST(f.send(tx, "looped", group) == 6);
  BOOST_TEST(f.sent_udp().size() == 1u);
  BOOST_TEST(f.recv(rx).data == "looped");
  BOOST_TEST(f.set_int(tx, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, 0) == 0);
  BOOST_TEST(f.send(tx, "not looped", group) == 10);
  BOOST_TEST(f.sent_udp().size() == 1u);
  BOOST_TEST(f.recv(rx).n == -EAGAIN);
}

BOOST_AUTO_TEST_CASE(sending_to_our_own_address_comes_back_to_us) {
  UdpFixture f;
  int rx = f.bound4("10.0.0.1", 5000);
  int tx = f.udp4();
  BOOST_TEST(f.send(tx, "self", sa4("10.0.0.1", 5000)) == 4);
  f.run();
  auto g = f.recv(rx);
  BOOST_TEST(g.data == "self");
  BOOST_TEST(g.from.ip() == "10.0.0.1");
  BOOST_TEST(g.from.port() == f.local_port(tx));
}

BOOST_AUTO_TEST_CASE(large_datagrams_leave_as_fragments) {
  UdpFixture f;
  int s = f.bound4("10.0.0.1", 5000);
  const std::string data = pattern(4000);
  BOOST_TEST(f.send(s, data, sa4("10.0.0.2", 53)) == 4000);
  auto out = f.sent();
  BOOST_REQUIRE(out.size() == 3u);  // 1480 + 1480 + 1048 bytes of UDP
  std::string joined;
  for (const auto& d : out) {
    BOOST_TEST(d.fragment);
    const size_t ip_len = load16(d.frame.data() + 16);
    joined.append(d.frame.begin() + 34, d.frame.begin() + long(14 + ip_len));
  }
  BOOST_REQUIRE(joined.size() == 4008u);
  BOOST_TEST(load16(reinterpret_cast<const uint8_t*>(joined.data()) + 4) == 4008);
  BOOST_TEST((joined.substr(8) == data));
  // IPv6 too (a fragment header, RFC 8200 4.5).
  int s6 = f.bound6("::", 5001);
  BOOST_TEST(f.send(s6, data, sa6("2001:db8::2", 53)) == 4000);
  out = f.sent();
  BOOST_TEST(out.size() == 3u);
  for (const auto& d : out) BOOST_TEST(d.proto == 44);
}

BOOST_AUTO_TEST_CASE(dual_stack_socket_sends_to_v4_mapped_peers_over_ipv4) {
  UdpFixture f;
  int s = f.bound6("::", 5000);
  BOOST_TEST(f.send(s, "mapped", sa6("::ffff:10.0.0.2", 53)) == 6);
  BOOST_TEST(f.send(s, "plain", sa4("10.0.0.2", 53)) == 5);
  auto out = f.sent_udp();
  BOOST_REQUIRE(out.size() == 2u);
  for (const auto& d : out) {
    BOOST_TEST(d.ethertype == kEtherTypeIpv4);
    BOOST_TEST((d.src == IpAddr(kOur4)));
    BOOST_TEST(d.sport == 5000);
  }
  int only = f.udp6();
  f.set_int(only, IPPROTO_IPV6, IPV6_V6ONLY, 1);
  BOOST_TEST(f.send(only, "x", sa6("::ffff:10.0.0.2", 53)) == -ENETUNREACH);
  BOOST_TEST(f.send(only, "x", sa4("10.0.0.2", 53)) == -ENETUNREACH);
}

BOOST_AUTO_TEST_CASE(sendmsg_gathers_buffers_and_honours_ancillary_data) {
  UdpFixture f;
  int s = f.udp4();
  char a[] = "gat", b[] = "her";
  iovec iov[2] = {{a, 3}, {b, 3}};
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(53);
  to.sin_addr.s_addr = htonl(kPeer4.v);
  alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(int))] = {};
  msghdr m{};
  m.msg_name = &to;
  m.msg_namelen = sizeof to;
  m.msg_iov = iov;
  m.msg_iovlen = 2;
  m.msg_control = ctl;
  m.msg_controllen = sizeof ctl;
  cmsghdr* c = CMSG_FIRSTHDR(&m);
  c->cmsg_level = IPPROTO_IP;
  c->cmsg_type = IP_TTL;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  int ttl = 3;
  std::memcpy(CMSG_DATA(c), &ttl, sizeof ttl);
  BOOST_TEST(f.api.sendmsg(s, &m, 0) == 6);
  auto out = f.sent_udp();
  BOOST_REQUIRE(out.size() == 1u);
  BOOST_TEST(std::string(out[0].payload.begin(), out[0].payload.end()) == "gather");
  BOOST_TEST(out[0].ttl == 3);
  // Something we do not understand is refused.
  c->cmsg_type = 9999;
  BOOST_TEST(f.api.sendmsg(s, &m, 0) == -EINVAL);
  // Too many buffers.
  msghdr many{};
  many.msg_iov = iov;
  many.msg_iovlen = 1025;
  BOOST_TEST(f.api.sendmsg(s, &many, 0) == -EMSGSIZE);
}

BOOST_AUTO_TEST_CASE(ip_pktinfo_picks_the_source_address) {
  UdpFixture f;
  f.stack.add_address(IpAddr(V4("10.0.0.7")), 24);
  f.sent();
  int s = f.udp4();
  char d[] = "src";
  iovec iov{d, 3};
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(53);
  to.sin_addr.s_addr = htonl(kPeer4.v);
  alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(in_pktinfo))] = {};
  msghdr m{};
  m.msg_name = &to;
  m.msg_namelen = sizeof to;
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = ctl;
  m.msg_controllen = sizeof ctl;
  cmsghdr* c = CMSG_FIRSTHDR(&m);
  c->cmsg_level = IPPROTO_IP;
  c->cmsg_type = IP_PKTINFO;
  c->cmsg_len = CMSG_LEN(sizeof(in_pktinfo));
  in_pktinfo pi{};
  pi.ipi_spec_dst.s_addr = htonl(V4("10.0.0.7").v);
  std::memcpy(CMSG_DATA(c), &pi, sizeof pi);
  BOOST_TEST(f.api.sendmsg(s, &m, 0) == 3);
  auto out = f.sent_udp();
  BOOST_REQUIRE(out.size() == 1u);
  BOOST_TEST((out[0].src == IpAddr(V4("10.0.0.7"))));
  pi.ipi_spec_dst.s_addr = htonl(V4("10.0.0.99").v);
  std::memcpy(CMSG_DATA(c), &pi, sizeof pi);
  BOOST_TEST(f.api.sendmsg(s, &m, 0) == -EINVAL);
}

BOOST_AUTO_TEST_CASE(checksums_are_right_for_every_small_length) {
  UdpFixture f;
  int s4 = f.bound4("10.0.0.1", 5000), s6 = f.bound6("2001:db8::1", 5000);
  int rx4 = f.bound4("10.0.0.1", 5001), rx6 = f.bound6("2001:db8::1", 5001);
  for (size_t len = 0; len <= 70; ++len) {
    const std::string d = pattern(len, uint8_t(len));
    BOOST_TEST(f.send(s4, d, sa4("10.0.0.2", 53)) == ssize_t(len));
    BOOST_TEST(f.send(s6, d, sa6("2001:db8::2", 53)) == ssize_t(len));
    // And our own checksum check accepts what a correct sender sends.
    f.inject(udp4_frame(kPeer4, 1, kOur4, 5001, Bytes(d.begin(), d.end())));
    f.inject(udp6_frame(kPeer6, 1, kOur6, 5001, Bytes(d.begin(), d.end())));
    BOOST_TEST((f.recv(rx4).data == d));
    BOOST_TEST((f.recv(rx6).data == d));
  }
  auto out = f.sent_udp();
  BOOST_TEST(out.size() == 142u);
  for (const auto& d : out) BOOST_TEST(d.checksum_ok);
  BOOST_TEST(f.counter("udp.drop.bad_checksum") == 0u);
}

BOOST_AUTO_TEST_SUITE_END()
