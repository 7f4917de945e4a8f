// The receive side: frames from a peer through the stack to sockets. Demultiplexing, queue
// limits, recv flags, checksum rules, malformed headers, port unreachable, ICMP errors.
#include <boost/test/unit_test.hpp>
#include <sys/ioctl.h>
#include <sys/time.h>

#include <map>

#include "stack/driver/checksum_offload.h"
#include "stack/net/ipv4.h"
#include "stack/net/ipv6.h"
#include "unit/udp_support.h"

using namespace shunt;
using namespace shunt::udptest;

namespace {

std::string pattern(size_t n, uint8_t seed = 0) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = char(uint8_t(i * 31 + seed));
  return s;
}
Bytes bytes(const std::string& s) { return Bytes(s.begin(), s.end()); }

// An ICMP destination unreachable from the peer quoting the IP datagram we sent (`sent` is
// the frame the stack sent).
Bytes icmp_unreachable_for(const Sent& sent, uint8_t code = 3) {
  Bytes m{3, code, 0, 0, 0, 0, 0, 0};
  m.insert(m.end(), sent.frame.begin() + 14, sent.frame.begin() + long(sent.l4_off + 8));
  const uint16_t c = checksum(m.data(), m.size());
  m[2] = uint8_t(c >> 8);
  m[3] = uint8_t(c);
  Ip4Opts o;
  o.proto = kProtoIcmp;
  return ip4_frame(kPeer4, kOur4, m, o);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(udp_receive)

BOOST_AUTO_TEST_CASE(datagram_boundaries_and_the_source_are_preserved) {
  UdpFixture f;
  int s = f.bound4("0.0.0.0", 5000);
  f.inject(udp4_frame(kPeer4, 1111, kOur4, 5000, text("first")));
  f.inject(udp4_frame(kPeer4, 1112, kOur4, 5000, {}));
  f.inject(udp4_frame(kPeer4b, 1113, kOur4, 5000, bytes(pattern(1400))));
  auto a = f.recv(s);
  BOOST_TEST(a.n == 5);
  BOOST_TEST(a.data == "first");
  BOOST_TEST(a.from.ip() == "10.0.0.2");
  BOOST_TEST(a.from.port() == 1111);
  BOOST_TEST(a.from.len == sizeof(sockaddr_in));
  auto b = f.recv(s);
  BOOST_TEST(b.n == 0);  // a zero-length datagram is a datagram
  BOOST_TEST(b.from.port() == 1112);
  auto c = f.recv(s);
  BOOST_TEST(c.n == 1400);
  BOOST_TEST((c.data == pattern(1400)));
  BOOST_TEST(c.from.ip() == "10.0.0.3");
  BOOST_TEST(f.recv(s).n == -EAGAIN);
  BOOST_TEST(f.counter("udp.rx_datagrams") == 3u);
}

BOOST_AUTO_TEST_CASE(peek_leaves_the_datagram_and_trunc_reports_its_real_length) {
  UdpFixture f;
  int s = f.bound4("10.0.0.1", 5000);
  f.inject(udp4_frame(kPeer4, 1111, kOur4, 5000, bytes(pattern(100))));
  f.inject(udp4_frame(kPeer4, 1111, kOur4, 5000, text("next")));
  int avail = 0;
  BOOST_TEST(f.api.ioctl(s, FIONREAD, &avail) == 0);
  BOOST_TEST(avail == 100);
  auto p = f.recv(s, 10, MSG_PEEK);
  BOOST_TEST(p.n == 10);
  BOOST_TEST((p.data == pattern(100).substr(0, 10)));
  auto p2 = f.recv(s, 200, MSG_PEEK);
  BOOST_TEST(p2.n == 100);
  auto t = f.recv(s, 10, MSG_TRUNC);
  BOOST_TEST(t.n == 100);  // the real length, though only 10 bytes were copied
  BOOST_TEST((t.data == pattern(100).substr(0, 10)));
  // recvmsg says so in msg_flags; the rest of a truncated datagram is gone.
  f.inject(udp4_frame(kPeer4, 1111, kOur4, 5000, bytes(pattern(50))));
  char buf[8];
  iovec iov{buf, 3};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  BOOST_TEST(f.api.recvmsg(s, &m, 0) == 3);
  BOOST_TEST(std::string(buf, 3) == "nex");
  BOOST_TEST((m.msg_flags & MSG_TRUNC) != 0);
  m.msg_flags = 0;
  iov.iov_len = 8;
  BOOST_TEST(f.api.recvmsg(s, &m, 0) == 8);
  BOOST_TEST((m.msg_flags & MSG_TRUNC) != 0);
  BOOST_TEST(f.api.recvmsg(s, &m, 0) == -EAGAIN);
}

BOOST_AUTO_TEST_CASE(recvmsg_scatters_into_several_buffers) {
  UdpFixture f;
  int s = f.bound4("0.0.0.0", 5000);
  f.inject(udp4_frame(kPeer4, 1, kOur4, 5000, text("abcdefghij")));
  char a[3], b[0 + 1], c[10];
  iovec iov[3] = {{a, 3}, {b, 0}, {c, 10}};
  sockaddr_in from{};
  msghdr m{};
  m.msg_name = &from;
  m.msg_namelen = sizeof from;
  m.msg_iov = iov;
  m.msg_iovlen = 3;
  BOOST_TEST(f.api.recvmsg(s, &m, 0) == 10);
  BOOST_TEST(std::string(a, 3) == "abc");
  BOOST_TEST(std::string(c, 7) == "defghij");
  BOOST_TEST(m.msg_namelen == sizeof(sockaddr_in));
  BOOST_TEST(ntohs(from.sin_port) == 1);
  BOOST_TEST(m.msg_flags == 0);
}

BOOST_AUTO_TEST_CASE(nonblocking_recv_is_eagain_and_dontwait_makes_a_blocking_one_so) {
  UdpFixture f;
  int nb = f.bound4("0.0.0.0", 5000, SOCK_NONBLOCK);
  int bl = f.bound4("0.0.0.0", 5001, 0);
  char b[4];
  BOOST_TEST(f.api.recv(nb, b, 4, 0) == -EAGAIN);
  int calls = 0;
  f.api.set_waiter([&](Nanos) {
    ++calls;
    return false;
  });
  BOOST_TEST(f.api.recv(bl, b, 4, MSG_DONTWAIT) == -EAGAIN);
  BOOST_TEST(calls == 0);
}

BOOST_AUTO_TEST_CASE(blocking_recv_waits_through_the_waiter) {
  UdpFixture f;
  int s = f.bound4("0.0.0.0", 5000, 0);
  int calls = 0;
  Nanos seen = 0;
  f.api.set_waiter([&](Nanos deadline) {
    seen = deadline;
    if (++calls == 3) f.inject(udp4_frame(kPeer4, 1, kOur4, 5000, text("late")));
    f.clock.advance(kMilli);
    return true;
  });
  auto g = f.recv(s);
  BOOST_TEST(g.n == 4);
  BOOST_TEST(g.data == "late");
  BOOST_TEST(calls == 3);
  BOOST_TEST(seen == kNever);
}

BOOST_AUTO_TEST_CASE(blocking_recv_times_out_with_eagain_and_an_interrupted_wait_is_eintr) {
  UdpFixture f;
  int s = f.bound4("0.0.0.0", 5000, 0);
  timeval tv{0, 250000};
  BOOST_TEST(f.api.setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0);
  Nanos seen = 0;
  f.api.set_waiter([&](Nanos deadline) {
    seen = deadline;
    f.clock.advance_to(deadline);
    return true;
  });
  const Nanos t0 = f.clock.now();
  BOOST_TEST(f.recv(s).n == -EAGAIN);
  BOOST_TEST(seen == t0 + 250 * kMilli);
  f.api.set_waiter([&](Nanos) { return false; });  // a signal, say
  BOOST_TEST(f.recv(s).n == -EINTR);
  // A negative timeout means "do not wait" (Linux sock_set_timeout).
  timeval neg{-1, 0};
  BOOST_TEST(f.api.setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &neg, sizeof neg) == 0);
  BOOST_TEST(f.recv(s).n == -EAGAIN);
}

BOOST_AUTO_TEST_CASE(a_socket_closed_while_waiting_is_ebadf) {
  UdpFixture f;
  int s = f.bound4("0.0.0.0", 5000, 0);
  f.api.set_waiter([&](Nanos) {
    f.api.close(s);
    return true;
  });
  BOOST_TEST(f.recv(s).n == -EBADF);
}

BOOST_AUTO_TEST_CASE(receive_queue_is_bounded_by_so_rcvbuf_and_drops_are_counted) {
  UdpFixture f;
  int small = f.bound4("0.0.0.0", 5000);
  f.set_int(small, SOL_SOCKET, SO_RCVBUF, 1);  // the minimum: room for one datagram
  for (int i = 0; i < 3; ++i) f.inject(udp4_frame(kPeer4, 1, kOur4, 5000, text("x")));
  BOOST_TEST(f.counter("udp.drop.rcvbuf") == 2u);
  BOOST_TEST(f.recv(small).n == 1);
  BOOST_TEST(f.recv(small).n == -EAGAIN);
  // The default buffer holds what its bytes allow, then drops; nothing grows without bound.
  int dflt = f.bound4("0.0.0.0", 5001);
  const size_t before = f.stack.pool().available();
  for (int i = 0; i < 300; ++i) f.inject(udp4_frame(kPeer4, 1, kOur4, 5001, text("y")));
  int queued = 0;
  while (f.recv(dflt).n == 1) ++queued;
  BOOST_TEST(queued == 212992 / int(PacketBuf::kCapacity));
  BOOST_TEST(f.counter("udp.drop.rcvbuf") == 2u + 300u - uint64_t(queued));
  BOOST_TEST(f.stack.pool().available() == before);
}

BOOST_AUTO_TEST_CASE(connected_socket_hears_only_its_peer) {
  UdpFixture f;
  int s = f.bound4("0.0.0.0", 5000);
  Addr peer = sa4("10.0.0.2", 53);
  BOOST_TEST(f.api.connect(s, peer.sa(), peer.len) == 0);
  f.inject(udp4_frame(kPeer4, 53, kOur4, 5000, text("ok")));
  f.inject(udp4_frame(kPeer4, 54, kOur4, 5000, text("wrong port")));
  f.inject(udp4_frame(kPeer4b, 53, kOur4, 5000, text("wrong host")));
  auto g = f.recv(s);
  BOOST_TEST(g.data == "ok");
  BOOST_TEST(f.recv(s).n == -EAGAIN);
  BOOST_TEST(f.counter("udp.drop.no_port") == 2u);
  // Disconnecting opens it up again.
  sockaddr unspec{};
  unspec.sa_family = AF_UNSPEC;
  f.api.connect(s, &unspec, sizeof unspec);
  f.inject(udp4_frame(kPeer4b, 53, kOur4, 5000, text("anyone")));
  BOOST_TEST(f.recv(s).data == "anyone");
}

BOOST_AUTO_TEST_CASE(demux_prefers_connected_then_specific_then_wildcard) {
  UdpFixture f;
  auto reuse = [&](int s) { return f.set_int(s, SOL_SOCKET, SO_REUSEADDR, 1); };
  int w = f.udp4(), sp = f.udp4(), c = f.udp4();
  reuse(w);
  reuse(sp);
  reuse(c);
  Addr any = sa4("0.0.0.0", 6000), ours = sa4("10.0.0.1", 6000), peer = sa4("10.0.0.2", 53);
  BOOST_TEST(f.api.bind(w, any.sa(), any.len) == 0);
  BOOST_TEST(f.api.bind(c, ours.sa(), ours.len) == 0);
  BOOST_TEST(f.api.connect(c, peer.sa(), peer.len) == 0);
  BOOST_TEST(f.api.bind(sp, ours.sa(), ours.len) == 0);
  f.inject(udp4_frame(kPeer4, 53, kOur4, 6000, text("to c")));
  f.inject(udp4_frame(kPeer4b, 53, kOur4, 6000, text("to sp")));
  f.inject(udp4_frame(kPeer4, 53, V4("10.0.0.255"), 6000, text("to w")));
  BOOST_TEST(f.recv(c).data == "to c");
  BOOST_TEST(f.recv(sp).data == "to sp");
  BOOST_TEST(f.recv(w).data == "to w");  // a broadcast: only the wildcard binding matches
  BOOST_TEST(f.recv(c).n == -EAGAIN);
  BOOST_TEST(f.recv(sp).n == -EAGAIN);
  BOOST_TEST(f.recv(w).n == -EAGAIN);
}

BOOST_AUTO_TEST_CASE(reuseport_spreads_flows_and_keeps_each_flow_on_one_socket) {
  UdpFixture f;
  std::vector<int> socks;
  for (int i = 0; i < 4; ++i) {
    int s = f.udp4();
    f.set_int(s, SOL_SOCKET, SO_REUSEPORT, 1);
    Addr a = sa4("0.0.0.0", 7000);
    BOOST_REQUIRE(f.api.bind(s, a.sa(), a.len) == 0);
    socks.push_back(s);
  }
  std::map<uint16_t, int> owner;
  std::vector<int> per(4, 0);
  for (uint16_t port = 20000; port < 20064; ++port) {
    f.inject(udp4_frame(kPeer4, port, kOur4, 7000, text("a")));
    f.inject(udp4_frame(kPeer4, port, kOur4, 7000, text("b")));
    for (size_t i = 0; i < 4; ++i) {
      auto g = f.recv(socks[i]);
      if (g.n < 0) continue;
      BOOST_TEST(g.data == "a");
      BOOST_TEST(f.recv(socks[i]).data == "b");  // the same flow, the same socket
      owner[port] = int(i);
      ++per[i];
    }
  }
  BOOST_TEST(owner.size() == 64u);
  for (int n : per) BOOST_TEST(n > 4);
}

BOOST_AUTO_TEST_CASE(broadcast_reaches_every_wildcard_socket_and_never_draws_icmp) {
  UdpFixture f;
  int a = f.udp4(), b = f.udp4();
  f.set_int(a, SOL_SOCKET, SO_REUSEADDR, 1);
  f.set_int(b, SOL_SOCKET, SO_REUSEADDR, 1);
  Addr any = sa4("0.0.0.0", 6700);
  f.api.bind(a, any.sa(), any.len);
  f.api.bind(b, any.sa(), any.len);
  int bound = f.bound4("255.255.255.255", 6701);
  f.inject(udp4_frame(kPeer4, 1, V4("255.255.255.255"), 6700, text("all")));
  f.inject(udp4_frame(kPeer4, 1, V4("10.0.0.255"), 6700, text("subnet")));
  f.inject(udp4_frame(kPeer4, 1, V4("255.255.255.255"), 6701, text("bound")));
  for (int s : {a, b}) {
    BOOST_TEST(f.recv(s).data == "all");
    BOOST_TEST(f.recv(s).data == "subnet");
  }
  BOOST_TEST(f.recv(bound).data == "bound");
  f.dev.take_sent();
  f.inject(udp4_frame(kPeer4, 1, V4("255.255.255.255"), 6999, text("nobody")));
  BOOST_TEST(f.sent().empty());
  BOOST_TEST(f.counter("udp.drop.no_port") == 1u);
}

BOOST_AUTO_TEST_CASE(multicast_reaches_every_matching_socket_of_a_joined_group) {
  UdpFixture f;
  auto mk = [&](const char* ip) {
    int s = f.udp4();
    f.set_int(s, SOL_SOCKET, SO_REUSEADDR, 1);
    Addr a = sa4(ip, 6800);
    BOOST_REQUIRE(f.api.bind(s, a.sa(), a.len) == 0);
    return s;
  };
  int a = mk("0.0.0.0"), b = mk("0.0.0.0"), g = mk("239.1.1.1"), u = mk("10.0.0.1"), other = mk("239.1.1.2");
  ip_mreq m{};
  inet_pton(AF_INET, "239.1.1.1", &m.imr_multiaddr);
  BOOST_TEST(f.api.setsockopt(a, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof m) == 0);
  f.inject(udp4_frame(kPeer4, 1, V4("239.1.1.1"), 6800, text("group")));
  f.inject(udp4_frame(kPeer4, 1, V4("239.9.9.9"), 6800, text("not joined")));
  for (int s : {a, b, g}) BOOST_TEST(f.recv(s).data == "group");
  for (int s : {a, b, g, u, other}) BOOST_TEST(f.recv(s).n == -EAGAIN);
  // Closing the only member drops the membership; the group no longer arrives.
  f.api.close(a);
  f.inject(udp4_frame(kPeer4, 1, V4("239.1.1.1"), 6800, text("after")));
  BOOST_TEST(f.recv(b).n == -EAGAIN);
}

BOOST_AUTO_TEST_CASE(ipv6_multicast_reaches_sockets_of_a_joined_group) {
  UdpFixture f;
  int a = f.udp6(), b = f.udp6();
  f.set_int(a, SOL_SOCKET, SO_REUSEADDR, 1);
  f.set_int(b, SOL_SOCKET, SO_REUSEADDR, 1);
  Addr any = sa6("::", 6900);
  f.api.bind(a, any.sa(), any.len);
  f.api.bind(b, any.sa(), any.len);
  ipv6_mreq m{};
  inet_pton(AF_INET6, "ff05::77", &m.ipv6mr_multiaddr);
  BOOST_TEST(f.api.setsockopt(b, IPPROTO_IPV6, IPV6_JOIN_GROUP, &m, sizeof m) == 0);
  f.inject(udp6_frame(kPeer6, 1, V6("ff05::77"), 6900, text("six")));
  f.inject(udp6_frame(kPeer6, 1, V6("ff05::78"), 6900, text("not joined")));
  BOOST_TEST(f.recv(a).data == "six");
  BOOST_TEST(f.recv(b).data == "six");
  BOOST_TEST(f.recv(a).n == -EAGAIN);
}

BOOST_AUTO_TEST_CASE(no_listener_draws_icmp_port_unreachable) {
  UdpFixture f;
  f.inject(udp4_frame(kPeer4, 4444, kOur4, 9999, text("anyone?")));
  auto out = f.sent();
  BOOST_REQUIRE(out.size() == 1u);
  const Sent& icmp = out[0];
  BOOST_TEST(icmp.proto == kProtoIcmp);
  BOOST_TEST((icmp.dst == IpAddr(kPeer4)));
  BOOST_TEST(icmp.frame[icmp.l4_off] == 3);      // destination unreachable
  BOOST_TEST(icmp.frame[icmp.l4_off + 1] == 3);  // port unreachable
  // It quotes our offending datagram: the UDP header follows the quoted IP header.
  BOOST_TEST(load16(icmp.frame.data() + icmp.l4_off + 8 + 20) == 4444);
  BOOST_TEST(f.counter("udp.drop.no_port") == 1u);

  f.inject(udp6_frame(kPeer6, 4444, kOur6, 9999, text("anyone?")));
  out = f.sent();
  BOOST_REQUIRE(out.size() == 1u);
  BOOST_TEST(out[0].proto == kProtoIcmpv6);
  BOOST_TEST(out[0].frame[out[0].l4_off] == 1);      // destination unreachable
  BOOST_TEST(out[0].frame[out[0].l4_off + 1] == 4);  // port unreachable
  BOOST_TEST(f.counter("udp.drop.no_port") == 2u);
}

BOOST_AUTO_TEST_CASE(ipv4_checksum_rules) {
  UdpFixture f;
  int s = f.bound4("0.0.0.0", 5000);
  // RFC 768: zero means "no checksum".
  f.inject(udp4_frame(kPeer4, 1, kOur4, 5000, text("none"), UdpOpts{0, -1}));
  BOOST_TEST(f.recv(s).data == "none");
  // A wrong one is dropped, counted, and draws no ICMP error.
  Bytes good = udp_bytes(IpAddr(kPeer4), IpAddr(kOur4), 1, 5000, text("bad"));
  UdpOpts wrong{load16(good.data() + 6) ^ 0x0101, -1};
  f.dev.take_sent();
  f.inject(udp4_frame(kPeer4, 1, kOur4, 5000, text("bad"), wrong));
  BOOST_TEST(f.recv(s).n == -EAGAIN);
  BOOST_TEST(f.counter("udp.drop.bad_checksum") == 1u);
  BOOST_TEST(f.sent().empty());
  // A datagram whose checksum computes to zero carries 0xffff (RFC 768), and is accepted.
  Bytes probe = udp_bytes(IpAddr(kPeer4), IpAddr(kOur4), 1, 5000, {0, 0}, UdpOpts{0, -1});
  uint32_t sum = pseudo_header_sum(IpAddr(kPeer4), IpAddr(kOur4), kProtoUdp, uint32_t(probe.size()));
  const uint16_t rest = uint16_t(~checksum_fold(checksum_add(sum, probe.data(), probe.size())));
  const uint16_t fill = uint16_t(0xffff - rest);  // makes the whole sum 0xffff
  Bytes payload{uint8_t(fill >> 8), uint8_t(fill)};
  Bytes computed = udp_bytes(IpAddr(kPeer4), IpAddr(kOur4), 1, 5000, payload);
  BOOST_REQUIRE(load16(computed.data() + 6) == 0xffff);
  f.inject(ip4_frame(kPeer4, kOur4, computed));
  BOOST_TEST(f.recv(s).n == 2);
  BOOST_TEST(f.counter("udp.drop.bad_checksum") == 1u);
}

BOOST_AUTO_TEST_CASE(ipv6_checksum_rules) {
  UdpFixture f;
  int s = f.bound6("::", 5000);
  // RFC 8200 8.1: a zero checksum is invalid for IPv6.
  f.inject(udp6_frame(kPeer6, 1, kOur6, 5000, text("zero"), UdpOpts{0, -1}));
  BOOST_TEST(f.recv(s).n == -EAGAIN);
  BOOST_TEST(f.counter("udp.drop.zero_checksum_v6") == 1u);
  f.inject(udp6_frame(kPeer6, 1, kOur6, 5000, text("bad"), UdpOpts{0x1234, -1}));
  BOOST_TEST(f.recv(s).n == -EAGAIN);
  BOOST_TEST(f.counter("udp.drop.bad_checksum") == 1u);
  f.inject(udp6_frame(kPeer6, 1, kOur6, 5000, text("good")));
  BOOST_TEST(f.recv(s).data == "good");
}

BOOST_AUTO_TEST_CASE(a_checksum_the_nic_verified_is_not_checked_again) {
  UdpFixture f;
  int s = f.bound4("0.0.0.0", 5000);
  auto deliver = [&](uint32_t flags) {
    PacketPtr p = f.stack.pool().alloc();
    p->append(bytes(std::string("\x00\x01\x13\x88\x00\x0b\x12\x34hey", 11)));
    p->flags = flags;
    IpRx rx;
    rx.src = kPeer4;
    rx.dst = kOur4;
    rx.proto = kProtoUdp;
    f.stack.udp().on_rx(std::move(p), rx);
  };
  deliver(0);
  BOOST_TEST(f.recv(s).n == -EAGAIN);
  deliver(PacketBuf::kRxL4ChecksumOk);
  BOOST_TEST(f.recv(s).data == "hey");
}

BOOST_AUTO_TEST_CASE(a_nic_verified_checksum_is_not_trusted_past_a_shorter_udp_length) {
  // The NIC (verify_checksums, as the simulated ConnectX does it) sums the whole IP payload.
  // When the UDP length is shorter, the bytes after it (padding, trimmed by UDP) can be chosen
  // to make that sum come out right for a datagram whose own checksum is wrong.
  UdpFixture f;
  int s4 = f.bound4("0.0.0.0", 5000);
  int s6 = f.bound6("::", 5001);
  auto forged = [](const IpAddr& src, const IpAddr& dst, uint16_t dport) {
    Bytes u = udp_bytes(src, dst, 1, dport, text("abcd"), UdpOpts{0x1234, 12});  // wrong checksum
    u.resize(u.size() + 2, 0);  // "padding" that balances the NIC's sum
    const uint16_t t = checksum_fold(checksum_add(pseudo_header_sum(src, dst, kProtoUdp, uint32_t(u.size())), u.data(), u.size()));
    u[12] = uint8_t(t >> 8);
    u[13] = uint8_t(t);
    return u;
  };
  auto through_nic = [&](const Bytes& frame) {
    PacketPtr p = f.stack.pool().alloc(0);
    p->append(frame);
    p->flags = verify_checksums(*p);
    BOOST_TEST((p->flags & PacketBuf::kRxL4ChecksumOk) != 0u);  // the NIC is fooled
    auto eth = EthRepr::parse(p->data(), p->size());
    p->pull(eth.repr->header_len);
    if (eth.repr->ethertype == kEtherTypeIpv4) {
      f.stack.ipv4().on_rx(std::move(p), *eth.repr);
    } else {
      f.stack.ipv6().on_rx(std::move(p), *eth.repr);
    }
    f.stack.poll();
  };
  through_nic(ip4_frame(kPeer4, kOur4, forged(IpAddr(kPeer4), IpAddr(kOur4), 5000)));
  through_nic(ip6_frame(kPeer6, kOur6, kProtoUdp, forged(IpAddr(kPeer6), IpAddr(kOur6), 5001)));
  BOOST_TEST(f.recv(s4).n == -EAGAIN);
  BOOST_TEST(f.recv(s6).n == -EAGAIN);
  BOOST_TEST(f.counter("udp.drop.bad_checksum") == 2u);
  // With a good checksum of its own, the same trimmed datagram is delivered.
  Bytes good = udp_bytes(IpAddr(kPeer4), IpAddr(kOur4), 1, 5000, text("abcd"));
  good.resize(good.size() + 2, 0);
  const uint16_t t = checksum_fold(
      checksum_add(pseudo_header_sum(IpAddr(kPeer4), IpAddr(kOur4), kProtoUdp, uint32_t(good.size())), good.data(), good.size()));
  good[12] = uint8_t(t >> 8);
  good[13] = uint8_t(t);
  through_nic(ip4_frame(kPeer4, kOur4, good));
  BOOST_TEST(f.recv(s4).data == "abcd");
}

BOOST_AUTO_TEST_CASE(malformed_headers_are_dropped_and_counted) {
  UdpFixture f;
  int s = f.bound4("0.0.0.0", 5000);
  // Shorter than a UDP header.
  f.inject(ip4_frame(kPeer4, kOur4, Bytes{0, 1, 0x13, 0x88}));
  BOOST_TEST(f.counter("udp.drop.truncated") == 1u);
  // A length field below 8, and one longer than the IP payload.
  f.inject(udp4_frame(kPeer4, 1, kOur4, 5000, text("abc"), UdpOpts{0, 7}));
  f.inject(udp4_frame(kPeer4, 1, kOur4, 5000, text("abc"), UdpOpts{0, 12}));
  BOOST_TEST(f.counter("udp.drop.bad_length") == 2u);
  BOOST_TEST(f.recv(s).n == -EAGAIN);
  // A length shorter than the IP payload: the rest is padding, trimmed away.
  f.inject(udp4_frame(kPeer4, 1, kOur4, 5000, text("abcdef"), UdpOpts{0, 8 + 3}));
  BOOST_TEST(f.recv(s).data == "abc");
  // The checksum covers only what the length says.
  Bytes u = udp_bytes(IpAddr(kPeer4), IpAddr(kOur4), 1, 5000, text("xyz"));
  u.push_back(0xee);
  u.push_back(0xee);
  f.inject(ip4_frame(kPeer4, kOur4, u));
  BOOST_TEST(f.recv(s).data == "xyz");
  BOOST_TEST(f.counter("udp.drop.bad_checksum") == 0u);
  // IPv6 likewise.
  int s6 = f.bound6("::", 5001);
  f.inject(udp6_frame(kPeer6, 1, kOur6, 5001, text("abc"), UdpOpts{-1, 20}));
  BOOST_TEST(f.counter("udp.drop.bad_length") == 3u);
  BOOST_TEST(f.recv(s6).n == -EAGAIN);
}

BOOST_AUTO_TEST_CASE(dual_stack_socket_sees_ipv4_peers_as_v4_mapped) {
  UdpFixture f;
  int s = f.bound6("::", 6000);
  f.inject(udp4_frame(kPeer4, 1234, kOur4, 6000, text("four")));
  f.inject(udp6_frame(kPeer6, 1235, kOur6, 6000, text("six")));
  auto a = f.recv(s);
  BOOST_TEST(a.data == "four");
  BOOST_TEST(a.from.len == sizeof(sockaddr_in6));
  BOOST_TEST(a.from.ip() == "::ffff:10.0.0.2");
  BOOST_TEST(a.from.port() == 1234);
  auto b = f.recv(s);
  BOOST_TEST(b.data == "six");
  BOOST_TEST(b.from.ip() == "2001:db8::2");
  // An IPv4 socket on the port wins IPv4 traffic over the dual-stack one (Linux scoring).
  int only = f.udp6();
  f.set_int(only, IPPROTO_IPV6, IPV6_V6ONLY, 1);
  Addr a6 = sa6("::", 6001);
  BOOST_TEST(f.api.bind(only, a6.sa(), a6.len) == 0);
  f.dev.take_sent();
  f.inject(udp4_frame(kPeer4, 1234, kOur4, 6001, text("four")));
  BOOST_TEST(f.recv(only).n == -EAGAIN);
  BOOST_TEST(f.sent().size() == 1u);  // port unreachable
}

BOOST_AUTO_TEST_CASE(recvmsg_reports_pktinfo_ttl_and_tos) {
  UdpFixture f;
  int s = f.bound4("0.0.0.0", 5000);
  f.set_int(s, IPPROTO_IP, IP_PKTINFO, 1);
  f.set_int(s, IPPROTO_IP, IP_RECVTTL, 1);
  f.set_int(s, IPPROTO_IP, IP_RECVTOS, 1);
  Ip4Opts o;
  o.ttl = 17;
  o.tos = 0x28;
  f.inject(udp4_frame(kPeer4, 1, kOur4, 5000, text("x"), {}, o));
  char buf[8];
  iovec iov{buf, sizeof buf};
  alignas(cmsghdr) char ctl[256];
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = ctl;
  m.msg_controllen = sizeof ctl;
  BOOST_TEST(f.api.recvmsg(s, &m, 0) == 1);
  int seen = 0;
  for (cmsghdr* c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
    BOOST_TEST(c->cmsg_level == IPPROTO_IP);
    if (c->cmsg_type == IP_PKTINFO) {
      in_pktinfo pi;
      std::memcpy(&pi, CMSG_DATA(c), sizeof pi);
      BOOST_TEST(pi.ipi_ifindex == kUdpIfIndex);
      BOOST_TEST(ntohl(pi.ipi_addr.s_addr) == kOur4.v);
      BOOST_TEST(ntohl(pi.ipi_spec_dst.s_addr) == kOur4.v);
      seen |= 1;
    } else if (c->cmsg_type == IP_TTL) {
      int ttl;
      std::memcpy(&ttl, CMSG_DATA(c), sizeof ttl);
      BOOST_TEST(ttl == 17);
      seen |= 2;
    } else if (c->cmsg_type == IP_TOS) {
      BOOST_TEST(*CMSG_DATA(c) == 0x28);
      seen |= 4;
    }
  }
  BOOST_TEST(seen == 7);
  // Too little room: MSG_CTRUNC.
  f.inject(udp4_frame(kPeer4, 1, kOur4, 5000, text("y")));
  m.msg_controllen = sizeof(cmsghdr) + 4;
  m.msg_flags = 0;
  BOOST_TEST(f.api.recvmsg(s, &m, 0) == 1);
  BOOST_TEST((m.msg_flags & MSG_CTRUNC) != 0);
}

BOOST_AUTO_TEST_CASE(recvmsg_reports_ipv6_pktinfo_and_hop_limit) {
  UdpFixture f;
  int s = f.bound6("::", 5000);
  f.set_int(s, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1);
  f.set_int(s, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1);
  f.inject(udp6_frame(kPeer6, 1, kOur6, 5000, text("x"), {}, 9));
  f.inject(udp4_frame(kPeer4, 1, kOur4, 5000, text("y")));
  for (const char* want_dst : {"2001:db8::1", "::ffff:10.0.0.1"}) {
    char buf[8];
    iovec iov{buf, sizeof buf};
    alignas(cmsghdr) char ctl[256];
    msghdr m{};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = ctl;
    m.msg_controllen = sizeof ctl;
    BOOST_TEST(f.api.recvmsg(s, &m, 0) == 1);
    bool pktinfo = false;
    for (cmsghdr* c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
      if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
        in6_pktinfo pi;
        std::memcpy(&pi, CMSG_DATA(c), sizeof pi);
        char txt[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, &pi.ipi6_addr, txt, sizeof txt);
        BOOST_TEST(std::string(txt) == want_dst);
        pktinfo = true;
      } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_HOPLIMIT) {
        int hl;
        std::memcpy(&hl, CMSG_DATA(c), sizeof hl);
        BOOST_TEST(hl == 9);
      }
    }
    BOOST_TEST(pktinfo);
  }
}

BOOST_AUTO_TEST_CASE(port_unreachable_makes_a_connected_socket_report_econnrefused) {
  UdpFixture f;
  int s = f.udp4();
  Addr peer = sa4("10.0.0.2", 53);
  BOOST_TEST(f.api.connect(s, peer.sa(), peer.len) == 0);
  int hooked = -1;
  f.api.set_readiness_hook([&](int h) { hooked = h; });
  auto send_and_refuse = [&] {
    BOOST_TEST(f.api.send(s, "q", 1, 0) == 1);
    auto out = f.sent_udp();
    BOOST_REQUIRE(out.size() == 1u);
    f.inject(icmp_unreachable_for(out[0]));
  };
  send_and_refuse();
  BOOST_TEST(hooked == s);
  BOOST_TEST((f.api.poll_events(s) & POLLERR) != 0u);
  BOOST_TEST(f.get_int(s, SOL_SOCKET, SO_ERROR) == ECONNREFUSED);
  BOOST_TEST(f.get_int(s, SOL_SOCKET, SO_ERROR) == 0);  // read and cleared
  BOOST_TEST((f.api.poll_events(s) & POLLERR) == 0u);
  send_and_refuse();
  BOOST_TEST(f.recv(s).n == -ECONNREFUSED);
  BOOST_TEST(f.recv(s).n == -EAGAIN);
  send_and_refuse();
  BOOST_TEST(f.api.send(s, "q", 1, 0) == -ECONNREFUSED);
  BOOST_TEST(f.api.send(s, "q", 1, 0) == 1);
  // An unconnected socket is not told (Linux without IP_RECVERR).
  int u = f.udp4();
  Addr to = sa4("10.0.0.2", 54);
  f.sent();
  BOOST_TEST(f.send(u, "q", to) == 1);
  auto out = f.sent_udp();
  BOOST_REQUIRE(out.size() == 1u);
  f.inject(icmp_unreachable_for(out[0]));
  BOOST_TEST(f.get_int(u, SOL_SOCKET, SO_ERROR) == 0);
  BOOST_TEST(f.counter("udp.icmp_errors") >= 4u);
}

BOOST_AUTO_TEST_CASE(reassembled_chains_are_copied_out_whole) {
  UdpFixture f;
  int s = f.bound4("0.0.0.0", 5000);
  const std::string data = pattern(5000, 7);
  Bytes u = udp_bytes(IpAddr(kPeer4), IpAddr(kOur4), 1, 5000, bytes(data));
  // As reassembly leaves it: the datagram split over a chain of buffers.
  PacketPtr head = f.stack.pool().alloc();
  head->append(std::span<const uint8_t>(u.data(), 1001));
  PacketBuf* tail = head.get();
  for (size_t off = 1001; off < u.size(); off += 1777) {
    PacketPtr c = f.stack.pool().alloc(0);
    c->append(std::span<const uint8_t>(u.data() + off, std::min<size_t>(1777, u.size() - off)));
    tail->chain = c.release();
    tail = tail->chain;
  }
  IpRx rx;
  rx.src = kPeer4;
  rx.dst = kOur4;
  rx.proto = kProtoUdp;
  rx.reassembled = true;
  const size_t before = f.stack.pool().available();
  f.stack.udp().on_rx(std::move(head), rx);
  int avail = 0;
  f.api.ioctl(s, FIONREAD, &avail);
  BOOST_TEST(avail == 5000);
  auto peek = f.recv(s, 3000, MSG_PEEK);
  BOOST_TEST(peek.n == 3000);
  BOOST_TEST((peek.data == data.substr(0, 3000)));
  auto g = f.recv(s, 8000);
  BOOST_TEST(g.n == 5000);
  BOOST_TEST((g.data == data));
  BOOST_TEST(f.stack.pool().available() == before + 4);
}

BOOST_AUTO_TEST_CASE(readiness_hook_and_poll_follow_the_queue) {
  UdpFixture f;
  int s = f.bound4("0.0.0.0", 5000);
  std::vector<int> calls;
  f.api.set_readiness_hook([&](int h) { calls.push_back(h); });
  BOOST_TEST(f.api.poll_events(s) == uint32_t(POLLOUT));
  f.inject(udp4_frame(kPeer4, 1, kOur4, 5000, text("x")));
  BOOST_TEST(calls.size() == 1u);
  BOOST_TEST(calls[0] == s);
  BOOST_TEST(f.api.poll_events(s) == uint32_t(POLLIN | POLLOUT));
  f.recv(s);
  BOOST_TEST(f.api.poll_events(s) == uint32_t(POLLOUT));
  BOOST_TEST(calls.size() == 2u);  // became empty
}

BOOST_AUTO_TEST_CASE(close_releases_queued_buffers) {
  UdpFixture f;
  int s = f.bound4("0.0.0.0", 5000);
  const size_t before = f.stack.pool().available();
  for (int i = 0; i < 10; ++i) f.inject(udp4_frame(kPeer4, 1, kOur4, 5000, text("x")));
  BOOST_TEST(f.stack.pool().available() == before - 10);
  BOOST_TEST(f.api.close(s) == 0);
  BOOST_TEST(f.stack.pool().available() == before);
  f.inject(udp4_frame(kPeer4, 1, kOur4, 5000, text("x")));
  BOOST_TEST(f.counter("udp.drop.no_port") == 1u);
}

BOOST_AUTO_TEST_SUITE_END()
