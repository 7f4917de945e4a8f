// The socket API's errno matrix for UDP, checked against what Linux returns.
#include <boost/test/unit_test.hpp>
#include <sys/ioctl.h>
#include <sys/time.h>

#include "unit/udp_support.h"

using namespace shunt;
using namespace shunt::udptest;

BOOST_AUTO_TEST_SUITE(udp_api)

BOOST_AUTO_TEST_CASE(socket_rejects_unknown_families_types_protocols_and_flags) {
  UdpFixture f;
  BOOST_TEST(f.api.socket(AF_UNIX, SOCK_DGRAM, 0) == -EAFNOSUPPORT);
  BOOST_TEST(f.api.socket(AF_PACKET, SOCK_DGRAM, 0) == -EAFNOSUPPORT);
  BOOST_TEST(f.api.socket(AF_INET, SOCK_STREAM, IPPROTO_UDP) == -EPROTONOSUPPORT);  // TCP is offered
  BOOST_TEST(f.api.socket(AF_INET, SOCK_SEQPACKET, 0) == -ESOCKTNOSUPPORT);
  BOOST_TEST(f.api.socket(AF_INET, 15, 0) == -EINVAL);
  BOOST_TEST(f.api.socket(AF_INET, SOCK_DGRAM, IPPROTO_TCP) == -EPROTONOSUPPORT);
  BOOST_TEST(f.api.socket(AF_INET, SOCK_DGRAM, -1) == -EINVAL);
  BOOST_TEST(f.api.socket(AF_INET, SOCK_DGRAM | (1 << 20), 0) == -EINVAL);
  BOOST_TEST(f.api.socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP) >= 0);
  BOOST_TEST(f.api.socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0) >= 0);
}

BOOST_AUTO_TEST_CASE(handles_are_reused_lowest_first_and_unknown_ones_are_ebadf) {
  UdpFixture f;
  int a = f.udp4(), b = f.udp4(), c = f.udp4();
  BOOST_TEST(a == 0);
  BOOST_TEST(b == 1);
  BOOST_TEST(c == 2);
  BOOST_TEST(f.api.close(b) == 0);
  BOOST_TEST(f.api.close(b) == -EBADF);
  BOOST_TEST(f.udp6() == b);
  char buf[4];
  Addr to = sa4("10.0.0.2", 9);
  socklen_t l = sizeof(int);
  int v;
  for (int bad : {-1, 7, 1000}) {
    BOOST_TEST(f.api.bind(bad, to.sa(), to.len) == -EBADF);
    BOOST_TEST(f.api.connect(bad, to.sa(), to.len) == -EBADF);
    BOOST_TEST(f.api.sendto(bad, buf, 1, 0, to.sa(), to.len) == -EBADF);
    BOOST_TEST(f.api.recvfrom(bad, buf, 4, 0, nullptr, nullptr) == -EBADF);
    BOOST_TEST(f.api.setsockopt(bad, SOL_SOCKET, SO_REUSEADDR, &v, l) == -EBADF);
    BOOST_TEST(f.api.getsockopt(bad, SOL_SOCKET, SO_TYPE, &v, &l) == -EBADF);
    BOOST_TEST(f.api.shutdown(bad, SHUT_RD) == -EBADF);
    BOOST_TEST(f.api.ioctl(bad, FIONREAD, &v) == -EBADF);
    BOOST_TEST(f.api.close(bad) == -EBADF);
    BOOST_TEST(f.api.poll_events(bad) == uint32_t(POLLNVAL));
    BOOST_TEST(!f.api.is_socket(bad));
  }
}

BOOST_AUTO_TEST_CASE(so_type_domain_protocol_describe_the_socket) {
  UdpFixture f;
  int s4 = f.udp4(), s6 = f.udp6();
  BOOST_TEST(f.get_int(s4, SOL_SOCKET, SO_TYPE) == SOCK_DGRAM);
  BOOST_TEST(f.get_int(s4, SOL_SOCKET, SO_DOMAIN) == AF_INET);
  BOOST_TEST(f.get_int(s6, SOL_SOCKET, SO_DOMAIN) == AF_INET6);
  BOOST_TEST(f.get_int(s4, SOL_SOCKET, SO_PROTOCOL) == IPPROTO_UDP);
  BOOST_TEST(f.get_int(s4, SOL_SOCKET, SO_ERROR) == 0);
  BOOST_TEST(f.set_int(s4, SOL_SOCKET, SO_TYPE, 1) == -ENOPROTOOPT);
  BOOST_TEST(f.api.poll_events(s4) == uint32_t(POLLOUT));
}


// --- bind

BOOST_AUTO_TEST_CASE(bind_checks_length_family_and_address) {
  UdpFixture f;
  int s4 = f.udp4(), s6 = f.udp6();
  Addr a4 = sa4("10.0.0.1", 5000), a6 = sa6("2001:db8::1", 5000);
  BOOST_TEST(f.api.bind(s4, a4.sa(), sizeof(sockaddr_in) - 1) == -EINVAL);
  BOOST_TEST(f.api.bind(s6, a6.sa(), 23) == -EINVAL);
  BOOST_TEST(f.api.bind(s4, a6.sa(), a6.len) == -EAFNOSUPPORT);
  BOOST_TEST(f.api.bind(s6, a4.sa(), a4.len) == -EINVAL);  // shorter than a sockaddr_in6
  Addr a4long = a4;
  a4long.len = sizeof(sockaddr_in6);
  BOOST_TEST(f.api.bind(s6, a4long.sa(), a4long.len) == -EAFNOSUPPORT);
  Addr other4 = sa4("10.0.0.9", 5000), other6 = sa6("2001:db8::9", 5000);
  BOOST_TEST(f.api.bind(s4, other4.sa(), other4.len) == -EADDRNOTAVAIL);
  BOOST_TEST(f.api.bind(s6, other6.sa(), other6.len) == -EADDRNOTAVAIL);
  BOOST_TEST(f.api.bind(s4, a4.sa(), a4.len) == 0);
  BOOST_TEST(f.api.bind(s4, a4.sa(), a4.len) == -EINVAL);  // already bound
  BOOST_TEST(f.api.bind(s6, a6.sa(), a6.len) == 0);
  BOOST_TEST(f.api.bind(s6, a6.sa(), a6.len) == -EINVAL);
}

BOOST_AUTO_TEST_CASE(bind_accepts_af_unspec_only_with_inaddr_any) {
  UdpFixture f;
  int s = f.udp4();
  Addr a = sa4("10.0.0.1", 5000);
  reinterpret_cast<sockaddr_in*>(&a.ss)->sin_family = AF_UNSPEC;
  BOOST_TEST(f.api.bind(s, a.sa(), a.len) == -EAFNOSUPPORT);
  Addr any = sa4("0.0.0.0", 5000);
  reinterpret_cast<sockaddr_in*>(&any.ss)->sin_family = AF_UNSPEC;
  BOOST_TEST(f.api.bind(s, any.sa(), any.len) == 0);
  BOOST_TEST(f.local_port(s) == 5000);
}

BOOST_AUTO_TEST_CASE(bind_to_port_zero_picks_an_ephemeral_port) {
  UdpFixture f;
  std::vector<uint16_t> ports;
  for (int i = 0; i < 20; ++i) {
    int s = f.bound4("0.0.0.0", 0);
    BOOST_REQUIRE(s >= 0);
    uint16_t p = f.local_port(s);
    BOOST_TEST(p >= 32768);
    BOOST_TEST(p <= 60999);
    BOOST_TEST((std::find(ports.begin(), ports.end(), p) == ports.end()));
    ports.push_back(p);
  }
  // Deterministic: the same seed gives the same ports.
  UdpFixture g;
  for (int i = 0; i < 20; ++i) BOOST_TEST(g.local_port(g.bound4("0.0.0.0", 0)) == ports[size_t(i)]);
}

BOOST_AUTO_TEST_CASE(getsockname_reports_the_binding_and_truncates_to_the_buffer) {
  UdpFixture f;
  int s = f.udp4();
  Addr got;
  got.len = sizeof got.ss;
  BOOST_TEST(f.api.getsockname(s, got.sa(), &got.len) == 0);
  BOOST_TEST(got.len == sizeof(sockaddr_in));
  BOOST_TEST(got.ip() == "0.0.0.0");
  BOOST_TEST(got.port() == 0);
  Addr a = sa4("10.0.0.1", 4242);
  BOOST_TEST(f.api.bind(s, a.sa(), a.len) == 0);
  got.len = sizeof got.ss;
  BOOST_TEST(f.api.getsockname(s, got.sa(), &got.len) == 0);
  BOOST_TEST(got.ip() == "10.0.0.1");
  BOOST_TEST(got.port() == 4242);
  Addr small;
  small.len = 4;
  BOOST_TEST(f.api.getsockname(s, small.sa(), &small.len) == 0);
  BOOST_TEST(small.len == sizeof(sockaddr_in));
  BOOST_TEST(f.api.getsockname(s, nullptr, &small.len) == -EFAULT);
  BOOST_TEST(f.api.getpeername(s, got.sa(), &got.len) == -ENOTCONN);
}

BOOST_AUTO_TEST_CASE(bind_conflicts_follow_linux_reuse_rules) {
  UdpFixture f;
  // Wildcard and specific overlap.
  int a = f.bound4("0.0.0.0", 7000);
  BOOST_TEST(a >= 0);
  BOOST_TEST(f.bound4("0.0.0.0", 7000) == -1);
  int s = f.udp4();
  Addr sp = sa4("10.0.0.1", 7000);
  BOOST_TEST(f.api.bind(s, sp.sa(), sp.len) == -EADDRINUSE);
  // Different specific addresses do not (our address and our subnet broadcast).
  int b = f.bound4("10.0.0.1", 7001);
  BOOST_TEST(b >= 0);
  BOOST_TEST(f.bound4("10.0.0.255", 7001) >= 0);
  BOOST_TEST(f.bound4("10.0.0.1", 7001) == -1);
  // SO_REUSEADDR on both sides shares the port; on one side only, it does not.
  int r1 = f.udp4(), r2 = f.udp4(), r3 = f.udp4();
  f.set_int(r1, SOL_SOCKET, SO_REUSEADDR, 1);
  f.set_int(r2, SOL_SOCKET, SO_REUSEADDR, 1);
  Addr p = sa4("0.0.0.0", 7002);
  BOOST_TEST(f.api.bind(r1, p.sa(), p.len) == 0);
  BOOST_TEST(f.api.bind(r2, p.sa(), p.len) == 0);
  BOOST_TEST(f.api.bind(r3, p.sa(), p.len) == -EADDRINUSE);
  // SO_REUSEPORT likewise.
  int q1 = f.udp4(), q2 = f.udp4(), q3 = f.udp4();
  f.set_int(q1, SOL_SOCKET, SO_REUSEPORT, 1);
  f.set_int(q2, SOL_SOCKET, SO_REUSEPORT, 1);
  f.set_int(q3, SOL_SOCKET, SO_REUSEADDR, 1);
  Addr q = sa4("10.0.0.1", 7003);
  BOOST_TEST(f.api.bind(q1, q.sa(), q.len) == 0);
  BOOST_TEST(f.api.bind(q2, q.sa(), q.len) == 0);
  BOOST_TEST(f.api.bind(q3, q.sa(), q.len) == -EADDRINUSE);
  // Closing releases the port.
  BOOST_TEST(f.api.close(a) == 0);
  BOOST_TEST(f.bound4("0.0.0.0", 7000) >= 0);
}

BOOST_AUTO_TEST_CASE(dual_stack_wildcard_conflicts_with_ipv4_unless_v6only) {
  UdpFixture f;
  int v6 = f.bound6("::", 8000);
  BOOST_TEST(v6 >= 0);
  BOOST_TEST(f.bound4("0.0.0.0", 8000) == -1);
  BOOST_TEST(f.bound4("10.0.0.1", 8000) == -1);
  int only = f.udp6();
  BOOST_TEST(f.set_int(only, IPPROTO_IPV6, IPV6_V6ONLY, 1) == 0);
  Addr a = sa6("::", 8001);
  BOOST_TEST(f.api.bind(only, a.sa(), a.len) == 0);
  BOOST_TEST(f.bound4("0.0.0.0", 8001) >= 0);
  BOOST_TEST(f.bound6("2001:db8::1", 8001) == -1);
  BOOST_TEST(f.set_int(only, IPPROTO_IPV6, IPV6_V6ONLY, 0) == -EINVAL);  // fixed once bound
}

BOOST_AUTO_TEST_CASE(ipv6_socket_binds_v4_mapped_addresses_unless_v6only) {
  UdpFixture f;
  int s = f.bound6("::ffff:10.0.0.1", 8100);
  BOOST_REQUIRE(s >= 0);
  Addr got;
  got.len = sizeof got.ss;
  BOOST_TEST(f.api.getsockname(s, got.sa(), &got.len) == 0);
  BOOST_TEST(got.len == sizeof(sockaddr_in6));
  BOOST_TEST(got.ip() == "::ffff:10.0.0.1");
  BOOST_TEST(f.bound4("10.0.0.1", 8100) == -1);  // the same IPv4 binding
  BOOST_TEST(f.bound6("2001:db8::1", 8100) >= 0);  // no IPv6 side
  BOOST_TEST(f.bound6("::ffff:10.0.0.9", 8101) == -1);
  int only = f.udp6();
  f.set_int(only, IPPROTO_IPV6, IPV6_V6ONLY, 1);
  Addr m = sa6("::ffff:10.0.0.1", 8102);
  BOOST_TEST(f.api.bind(only, m.sa(), m.len) == -EINVAL);
}

BOOST_AUTO_TEST_CASE(link_local_bind_needs_a_scope_id) {
  UdpFixture f;
  const std::string ll = f.stack.link_local().str();
  int s = f.udp6();
  Addr a = sa6(ll.c_str(), 8200);
  BOOST_TEST(f.api.bind(s, a.sa(), a.len) == -EINVAL);
  Addr scoped = sa6(ll.c_str(), 8200, 1);
  BOOST_TEST(f.api.bind(s, scoped.sa(), scoped.len) == 0);
  Addr got;
  got.len = sizeof got.ss;
  f.api.getsockname(s, got.sa(), &got.len);
  BOOST_TEST(reinterpret_cast<sockaddr_in6*>(&got.ss)->sin6_scope_id == uint32_t(kUdpIfIndex));
}

BOOST_AUTO_TEST_CASE(multicast_and_broadcast_addresses_can_be_bound) {
  UdpFixture f;
  BOOST_TEST(f.bound4("239.1.2.3", 9000) >= 0);
  BOOST_TEST(f.bound4("255.255.255.255", 9000) >= 0);
  BOOST_TEST(f.bound6("ff02::1:3", 9000) == -1);  // link scope: needs a scope id
  BOOST_TEST(f.bound6("ff05::1:3", 9000) >= 0);
}

// --- connect

BOOST_AUTO_TEST_CASE(connect_sets_the_peer_autobinds_and_af_unspec_disconnects) {
  UdpFixture f;
  int s = f.udp4();
  Addr peer = sa4("10.0.0.2", 53);
  BOOST_TEST(f.api.connect(s, peer.sa(), peer.len) == 0);
  Addr got;
  got.len = sizeof got.ss;
  BOOST_TEST(f.api.getpeername(s, got.sa(), &got.len) == 0);
  BOOST_TEST(got.ip() == "10.0.0.2");
  BOOST_TEST(got.port() == 53);
  got.len = sizeof got.ss;
  BOOST_TEST(f.api.getsockname(s, got.sa(), &got.len) == 0);
  BOOST_TEST(got.ip() == "10.0.0.1");  // the route's source, as Linux fills it in
  BOOST_TEST(got.port() >= 32768);
  sockaddr unspec{};
  unspec.sa_family = AF_UNSPEC;
  BOOST_TEST(f.api.connect(s, &unspec, sizeof unspec) == 0);
  BOOST_TEST(f.api.getpeername(s, got.sa(), &got.len) == -ENOTCONN);
  // An auto-bound socket forgets its port and address too (Linux __udp_disconnect).
  got.len = sizeof got.ss;
  f.api.getsockname(s, got.sa(), &got.len);
  BOOST_TEST(got.ip() == "0.0.0.0");
  BOOST_TEST(got.port() == 0);
}

BOOST_AUTO_TEST_CASE(disconnect_keeps_what_bind_chose) {
  UdpFixture f;
  int s = f.bound4("0.0.0.0", 6000);
  Addr peer = sa4("10.0.0.2", 53);
  BOOST_TEST(f.api.connect(s, peer.sa(), peer.len) == 0);
  sockaddr unspec{};
  unspec.sa_family = AF_UNSPEC;
  BOOST_TEST(f.api.connect(s, &unspec, sizeof(sa_family_t)) == 0);
  Addr got;
  got.len = sizeof got.ss;
  f.api.getsockname(s, got.sa(), &got.len);
  BOOST_TEST(got.ip() == "0.0.0.0");
  BOOST_TEST(got.port() == 6000);
}

BOOST_AUTO_TEST_CASE(connect_errors) {
  UdpFixture f;
  int s4 = f.udp4(), s6 = f.udp6();
  Addr a4 = sa4("10.0.0.2", 53), a6 = sa6("2001:db8::2", 53);
  BOOST_TEST(f.api.connect(s4, a4.sa(), 1) == -EINVAL);
  BOOST_TEST(f.api.connect(s4, a4.sa(), sizeof(sockaddr_in) - 1) == -EINVAL);
  BOOST_TEST(f.api.connect(s4, a6.sa(), a6.len) == -EAFNOSUPPORT);
  BOOST_TEST(f.api.connect(s6, a6.sa(), 20) == -EINVAL);
  Addr far4 = sa4("192.168.7.7", 53), far6 = sa6("2001:db9::7", 53);
  BOOST_TEST(f.api.connect(s4, far4.sa(), far4.len) == -ENETUNREACH);
  BOOST_TEST(f.api.connect(s6, far6.sa(), far6.len) == -ENETUNREACH);
  Addr bcast = sa4("10.0.0.255", 53);
  BOOST_TEST(f.api.connect(s4, bcast.sa(), bcast.len) == -EACCES);
  f.set_int(s4, SOL_SOCKET, SO_BROADCAST, 1);
  BOOST_TEST(f.api.connect(s4, bcast.sa(), bcast.len) == 0);
  // A dual-stack socket takes AF_INET and v4-mapped peers; an IPv6-only one does not.
  BOOST_TEST(f.api.connect(s6, a4.sa(), a4.len) == 0);
  int only = f.udp6();
  f.set_int(only, IPPROTO_IPV6, IPV6_V6ONLY, 1);
  BOOST_TEST(f.api.connect(only, a4.sa(), a4.len) == -EAFNOSUPPORT);
  Addr mapped = sa6("::ffff:10.0.0.2", 53);
  BOOST_TEST(f.api.connect(only, mapped.sa(), mapped.len) == -ENETUNREACH);
  BOOST_TEST(f.api.connect(only, a6.sa(), a6.len) == 0);
}

BOOST_AUTO_TEST_CASE(connect_through_a_default_gateway) {
  UdpFixture f;
  int s = f.udp4();
  Addr far = sa4("192.168.7.7", 53);
  BOOST_TEST(f.api.connect(s, far.sa(), far.len) == -ENETUNREACH);
  f.stack.set_default_gateway(IpAddr(kPeer4));
  BOOST_TEST(f.api.connect(s, far.sa(), far.len) == 0);
}

// --- send errors

BOOST_AUTO_TEST_CASE(send_errors_follow_linux) {
  UdpFixture f;
  int s = f.udp4();
  char buf[16] = {};
  BOOST_TEST(f.api.send(s, buf, 4, 0) == -EDESTADDRREQ);
  Addr to = sa4("10.0.0.2", 9);
  BOOST_TEST(f.api.sendto(s, buf, 4, MSG_OOB, to.sa(), to.len) == -EOPNOTSUPP);
  BOOST_TEST(f.api.sendto(s, buf, 4, 0, to.sa(), sizeof(sockaddr_in) - 1) == -EINVAL);
  Addr to6 = sa6("2001:db8::2", 9);
  BOOST_TEST(f.api.sendto(s, buf, 4, 0, to6.sa(), to6.len) == -EAFNOSUPPORT);
  Addr port0 = sa4("10.0.0.2", 0);
  BOOST_TEST(f.api.sendto(s, buf, 4, 0, port0.sa(), port0.len) == -EINVAL);
  Addr far = sa4("192.168.7.7", 9);
  BOOST_TEST(f.api.sendto(s, buf, 4, 0, far.sa(), far.len) == -ENETUNREACH);
  Addr bcast = sa4("255.255.255.255", 9), subnet = sa4("10.0.0.255", 9);
  BOOST_TEST(f.api.sendto(s, buf, 4, 0, bcast.sa(), bcast.len) == -EACCES);
  BOOST_TEST(f.api.sendto(s, buf, 4, 0, subnet.sa(), subnet.len) == -EACCES);
  std::vector<char> big(65508);
  BOOST_TEST(f.api.sendto(s, big.data(), big.size(), 0, to.sa(), to.len) == -EMSGSIZE);
  BOOST_TEST(f.api.sendto(s, big.data(), 70000, 0, to.sa(), to.len) == -EMSGSIZE);
  BOOST_TEST(f.api.sendto(s, big.data(), 65507, 0, to.sa(), to.len) == 65507);
  int s6 = f.udp6();
  std::vector<char> big6(65528);
  BOOST_TEST(f.api.sendto(s6, big6.data(), big6.size(), 0, to6.sa(), to6.len) == -EMSGSIZE);
  BOOST_TEST(f.api.sendto(s6, big6.data(), 65527, 0, to6.sa(), to6.len) == 65527);
  // The address family the IPv6 socket does not know.
  sockaddr_storage odd{};
  odd.ss_family = AF_UNIX;
  BOOST_TEST(f.api.sendto(s6, buf, 4, 0, reinterpret_cast<sockaddr*>(&odd), sizeof odd) == -EINVAL);
}

BOOST_AUTO_TEST_CASE(shut_down_sender_gets_epipe) {
  UdpFixture f;
  int s = f.udp4();
  Addr to = sa4("10.0.0.2", 9);
  BOOST_TEST(f.api.connect(s, to.sa(), to.len) == 0);
  BOOST_TEST(f.api.shutdown(s, SHUT_WR) == 0);
  BOOST_TEST(f.api.send(s, "x", 1, 0) == -EPIPE);
  BOOST_TEST(f.api.sendto(s, "x", 1, 0, to.sa(), to.len) == -EPIPE);
}

BOOST_AUTO_TEST_CASE(exhausted_pool_is_eagain_when_nonblocking_and_enobufs_without_a_waiter) {
  Config c = udp_config();
  c.buffers = 64;
  UdpFixture f(c);
  int nb = f.udp4(SOCK_NONBLOCK), bl = f.udp4(0);
  std::vector<PacketPtr> hold;
  while (auto p = f.stack.pool().alloc()) hold.push_back(std::move(p));
  Addr to = sa4("10.0.0.2", 9);
  BOOST_TEST(f.send(nb, "hello", to) == -EAGAIN);
  BOOST_TEST(f.send(bl, "hello", to, MSG_DONTWAIT) == -EAGAIN);
  BOOST_TEST(f.send(bl, "hello", to) == -ENOBUFS);
  BOOST_TEST((f.api.poll_events(nb) & POLLOUT) == 0u);
  // A waiter that frees the pool lets the blocking send complete.
  f.api.set_waiter([&](Nanos) {
    hold.clear();
    return true;
  });
  BOOST_TEST(f.send(bl, "hello", to) == 5);
  BOOST_TEST((f.api.poll_events(nb) & POLLOUT) != 0u);
}

BOOST_AUTO_TEST_CASE(blocking_send_gives_up_at_its_sndtimeo) {
  Config c = udp_config();
  c.buffers = 64;
  UdpFixture f(c);
  int s = f.udp4(0);
  timeval tv{0, 5000};
  BOOST_TEST(f.api.setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) == 0);
  std::vector<PacketPtr> hold;
  while (auto p = f.stack.pool().alloc()) hold.push_back(std::move(p));
  Nanos seen = 0;
  f.api.set_waiter([&](Nanos deadline) {
    seen = deadline;
    f.clock.advance_to(deadline);
    return true;
  });
  const Nanos t0 = f.clock.now();
  Addr to = sa4("10.0.0.2", 9);
  BOOST_TEST(f.send(s, "hello", to) == -EAGAIN);
  BOOST_TEST(seen == t0 + 5 * kMilli);
}

// --- options

BOOST_AUTO_TEST_CASE(unknown_options_are_enoprotoopt_and_short_ones_einval) {
  UdpFixture f;
  int s4 = f.udp4(), s6 = f.udp6();
  int one = 1;
  BOOST_TEST(f.set_int(s4, SOL_SOCKET, 9999, 1) == -ENOPROTOOPT);
  BOOST_TEST(f.set_int(s4, IPPROTO_IP, 9999, 1) == -ENOPROTOOPT);
  BOOST_TEST(f.set_int(s4, IPPROTO_UDP, 1 /* UDP_CORK */, 1) == -ENOPROTOOPT);
  BOOST_TEST(f.set_int(s4, IPPROTO_IPV6, IPV6_V6ONLY, 1) == -ENOPROTOOPT);
  BOOST_TEST(f.set_int(s4, 12345, 1, 1) == -ENOPROTOOPT);
  BOOST_TEST(f.get_int(s4, SOL_SOCKET, 9999) == -ENOPROTOOPT);
  BOOST_TEST(f.get_int(s4, IPPROTO_IPV6, IPV6_V6ONLY) == -ENOPROTOOPT);
  BOOST_TEST(f.api.setsockopt(s4, SOL_SOCKET, SO_REUSEADDR, &one, 2) == -EINVAL);
  BOOST_TEST(f.api.setsockopt(s4, IPPROTO_IP, IP_MULTICAST_TTL, &one, 0) == -EINVAL);
  BOOST_TEST(f.api.setsockopt(s4, IPPROTO_IP, IP_TTL, &one, 0) == -EINVAL);
  BOOST_TEST(f.api.setsockopt(s6, IPPROTO_IPV6, IPV6_V6ONLY, &one, 2) == -EINVAL);
  BOOST_TEST(f.api.setsockopt(s6, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &one, 3) == -EINVAL);
  ip_mreq m{};
  BOOST_TEST(f.api.setsockopt(s4, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, 4) == -EINVAL);
  BOOST_TEST(f.api.setsockopt(s4, SOL_SOCKET, SO_REUSEADDR, nullptr, 4) == -EFAULT);
  // getsockopt truncates rather than failing.
  int v = 0;
  socklen_t l = 2;
  f.set_int(s4, SOL_SOCKET, SO_RCVBUF, 0x10000);
  BOOST_TEST(f.api.getsockopt(s4, SOL_SOCKET, SO_RCVBUF, &v, &l) == 0);
  BOOST_TEST(l == 2u);
  BOOST_TEST(f.api.getsockopt(s4, SOL_SOCKET, SO_RCVBUF, &v, nullptr) == -EFAULT);
}

BOOST_AUTO_TEST_CASE(buffer_sizes_are_doubled_and_bounded_as_linux_does) {
  UdpFixture f;
  int s = f.udp4();
  BOOST_TEST(f.get_int(s, SOL_SOCKET, SO_RCVBUF) == 212992);
  BOOST_TEST(f.get_int(s, SOL_SOCKET, SO_SNDBUF) == 212992);
  f.set_int(s, SOL_SOCKET, SO_RCVBUF, 10000);
  BOOST_TEST(f.get_int(s, SOL_SOCKET, SO_RCVBUF) == 20000);
  f.set_int(s, SOL_SOCKET, SO_RCVBUF, 1 << 30);
  BOOST_TEST(f.get_int(s, SOL_SOCKET, SO_RCVBUF) == 2 * 212992);
  f.set_int(s, SOL_SOCKET, SO_RCVBUF, -5);
  BOOST_TEST(f.get_int(s, SOL_SOCKET, SO_RCVBUF) == 2 * 212992);
  f.set_int(s, SOL_SOCKET, SO_RCVBUF, 100);
  BOOST_TEST(f.get_int(s, SOL_SOCKET, SO_RCVBUF) == 2304);
  f.set_int(s, SOL_SOCKET, SO_SNDBUF, 1000);
  BOOST_TEST(f.get_int(s, SOL_SOCKET, SO_SNDBUF) == 4608);
  f.set_int(s, SOL_SOCKET, SO_SNDBUF, 10000);
  BOOST_TEST(f.get_int(s, SOL_SOCKET, SO_SNDBUF) == 20000);
  BOOST_TEST(f.set_int(s, SOL_SOCKET, SO_RCVBUFFORCE, 1) == -EPERM);
}

BOOST_AUTO_TEST_CASE(flag_options_read_back) {
  UdpFixture f;
  int s = f.udp4();
  for (int name : {SO_REUSEADDR, SO_REUSEPORT, SO_BROADCAST}) {
    BOOST_TEST(f.get_int(s, SOL_SOCKET, name) == 0);
    BOOST_TEST(f.set_int(s, SOL_SOCKET, name, 7) == 0);
    BOOST_TEST(f.get_int(s, SOL_SOCKET, name) == 1);
  }
  for (int name : {IP_PKTINFO, IP_RECVTTL, IP_RECVTOS}) {
    BOOST_TEST(f.set_int(s, IPPROTO_IP, name, 1) == 0);
    BOOST_TEST(f.get_int(s, IPPROTO_IP, name) == 1);
  }
}

BOOST_AUTO_TEST_CASE(timeouts_read_back_and_reject_bad_microseconds) {
  UdpFixture f;
  int s = f.udp4();
  timeval tv{2, 500000};
  BOOST_TEST(f.api.setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0);
  timeval got{};
  socklen_t l = sizeof got;
  BOOST_TEST(f.api.getsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &got, &l) == 0);
  BOOST_TEST(got.tv_sec == 2);
  BOOST_TEST(got.tv_usec == 500000);
  timeval bad{1, 1000000};
  BOOST_TEST(f.api.setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &bad, sizeof bad) == -EDOM);
  BOOST_TEST(f.api.setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv - 1) == -EINVAL);
}

BOOST_AUTO_TEST_CASE(ip_level_options_validate_ranges) {
  UdpFixture f;
  int s = f.udp4();
  BOOST_TEST(f.get_int(s, IPPROTO_IP, IP_TTL) == 64);
  BOOST_TEST(f.set_int(s, IPPROTO_IP, IP_TTL, 0) == -EINVAL);
  BOOST_TEST(f.set_int(s, IPPROTO_IP, IP_TTL, 256) == -EINVAL);
  BOOST_TEST(f.set_int(s, IPPROTO_IP, IP_TTL, 9) == 0);
  BOOST_TEST(f.get_int(s, IPPROTO_IP, IP_TTL) == 9);
  BOOST_TEST(f.set_int(s, IPPROTO_IP, IP_TTL, -1) == 0);
  BOOST_TEST(f.get_int(s, IPPROTO_IP, IP_TTL) == 64);
  unsigned char c = 33;  // one byte is enough at this level
  BOOST_TEST(f.api.setsockopt(s, IPPROTO_IP, IP_TTL, &c, 1) == 0);
  unsigned char out = 0;
  socklen_t l = 1;
  BOOST_TEST(f.api.getsockopt(s, IPPROTO_IP, IP_TTL, &out, &l) == 0);
  BOOST_TEST(out == 33);
  BOOST_TEST(f.get_int(s, IPPROTO_IP, IP_MULTICAST_TTL) == 1);
  BOOST_TEST(f.set_int(s, IPPROTO_IP, IP_MULTICAST_TTL, 256) == -EINVAL);
  BOOST_TEST(f.set_int(s, IPPROTO_IP, IP_MULTICAST_TTL, -1) == 0);
  BOOST_TEST(f.get_int(s, IPPROTO_IP, IP_MULTICAST_TTL) == 1);
  BOOST_TEST(f.get_int(s, IPPROTO_IP, IP_MULTICAST_LOOP) == 1);
  BOOST_TEST(f.set_int(s, IPPROTO_IP, IP_MULTICAST_LOOP, 0) == 0);
  BOOST_TEST(f.get_int(s, IPPROTO_IP, IP_MULTICAST_LOOP) == 0);
  BOOST_TEST(f.set_int(s, IPPROTO_IP, IP_TOS, 0xb8) == 0);
  BOOST_TEST(f.get_int(s, IPPROTO_IP, IP_TOS) == 0xb8);
}

BOOST_AUTO_TEST_CASE(ipv6_level_options_validate_ranges) {
  UdpFixture f;
  int s = f.udp6();
  BOOST_TEST(f.get_int(s, IPPROTO_IPV6, IPV6_V6ONLY) == 0);
  BOOST_TEST(f.get_int(s, IPPROTO_IPV6, IPV6_UNICAST_HOPS) == 64);
  BOOST_TEST(f.set_int(s, IPPROTO_IPV6, IPV6_UNICAST_HOPS, 256) == -EINVAL);
  BOOST_TEST(f.set_int(s, IPPROTO_IPV6, IPV6_UNICAST_HOPS, -2) == -EINVAL);
  BOOST_TEST(f.set_int(s, IPPROTO_IPV6, IPV6_UNICAST_HOPS, 5) == 0);
  BOOST_TEST(f.get_int(s, IPPROTO_IPV6, IPV6_UNICAST_HOPS) == 5);
  BOOST_TEST(f.get_int(s, IPPROTO_IPV6, IPV6_MULTICAST_HOPS) == 1);
  BOOST_TEST(f.set_int(s, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, 7) == 0);
  BOOST_TEST(f.get_int(s, IPPROTO_IPV6, IPV6_MULTICAST_HOPS) == 7);
  BOOST_TEST(f.get_int(s, IPPROTO_IPV6, IPV6_MULTICAST_LOOP) == 1);
  BOOST_TEST(f.set_int(s, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, 2) == -EINVAL);
  BOOST_TEST(f.set_int(s, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, 0) == 0);
  BOOST_TEST(f.get_int(s, IPPROTO_IPV6, IPV6_MULTICAST_LOOP) == 0);
  // IPv4 options also steer an IPv6 socket's IPv4 side.
  BOOST_TEST(f.set_int(s, IPPROTO_IP, IP_TTL, 3) == 0);
  BOOST_TEST(f.get_int(s, IPPROTO_IP, IP_TTL) == 3);
}

BOOST_AUTO_TEST_CASE(memberships_reject_doubles_strangers_and_too_many) {
  UdpFixture f;
  int s = f.udp4();
  auto mreq = [](const char* g, const char* ifa) {
    ip_mreq m{};
    inet_pton(AF_INET, g, &m.imr_multiaddr);
    inet_pton(AF_INET, ifa, &m.imr_interface);
    return m;
  };
  ip_mreq m = mreq("239.0.0.1", "0.0.0.0");
  BOOST_TEST(f.api.setsockopt(s, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof m) == 0);
  BOOST_TEST(f.api.setsockopt(s, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof m) == -EADDRINUSE);
  ip_mreq uni = mreq("10.0.0.2", "0.0.0.0");
  BOOST_TEST(f.api.setsockopt(s, IPPROTO_IP, IP_ADD_MEMBERSHIP, &uni, sizeof uni) == -EINVAL);
  ip_mreq stranger = mreq("239.0.0.2", "10.0.0.9");
  BOOST_TEST(f.api.setsockopt(s, IPPROTO_IP, IP_ADD_MEMBERSHIP, &stranger, sizeof stranger) == -ENODEV);
  ip_mreq ours = mreq("239.0.0.2", "10.0.0.1");
  BOOST_TEST(f.api.setsockopt(s, IPPROTO_IP, IP_ADD_MEMBERSHIP, &ours, sizeof ours) == 0);
  ip_mreqn n{};
  inet_pton(AF_INET, "239.0.0.3", &n.imr_multiaddr);
  n.imr_ifindex = 1;
  BOOST_TEST(f.api.setsockopt(s, IPPROTO_IP, IP_ADD_MEMBERSHIP, &n, sizeof n) == 0);
  ip_mreq absent = mreq("239.0.0.9", "0.0.0.0");
  BOOST_TEST(f.api.setsockopt(s, IPPROTO_IP, IP_DROP_MEMBERSHIP, &absent, sizeof absent) == -EADDRNOTAVAIL);
  BOOST_TEST(f.api.setsockopt(s, IPPROTO_IP, IP_DROP_MEMBERSHIP, &m, sizeof m) == 0);
  BOOST_TEST(f.api.setsockopt(s, IPPROTO_IP, IP_DROP_MEMBERSHIP, &m, sizeof m) == -EADDRNOTAVAIL);
  // Linux's igmp_max_memberships (20) per socket.
  int t = f.udp4();
  int last = 0;
  for (int i = 0; i < 21; ++i) {
    std::string g = "239.1.0." + std::to_string(i + 1);
    ip_mreq x = mreq(g.c_str(), "0.0.0.0");
    last = f.api.setsockopt(t, IPPROTO_IP, IP_ADD_MEMBERSHIP, &x, sizeof x);
    if (i < 20) BOOST_TEST(last == 0);
  }
  BOOST_TEST(last == -ENOBUFS);
}

BOOST_AUTO_TEST_CASE(ipv6_memberships_reject_doubles_and_unicast) {
  UdpFixture f;
  int s = f.udp6();
  ipv6_mreq m{};
  inet_pton(AF_INET6, "ff05::4242", &m.ipv6mr_multiaddr);
  BOOST_TEST(f.api.setsockopt(s, IPPROTO_IPV6, IPV6_JOIN_GROUP, &m, sizeof m) == 0);
  BOOST_TEST(f.api.setsockopt(s, IPPROTO_IPV6, IPV6_JOIN_GROUP, &m, sizeof m) == -EADDRINUSE);
  BOOST_TEST(f.api.setsockopt(s, IPPROTO_IPV6, IPV6_JOIN_GROUP, &m, sizeof m - 1) == -EINVAL);
  ipv6_mreq u{};
  inet_pton(AF_INET6, "2001:db8::5", &u.ipv6mr_multiaddr);
  BOOST_TEST(f.api.setsockopt(s, IPPROTO_IPV6, IPV6_JOIN_GROUP, &u, sizeof u) == -EINVAL);
  BOOST_TEST(f.api.setsockopt(s, IPPROTO_IPV6, IPV6_LEAVE_GROUP, &m, sizeof m) == 0);
  BOOST_TEST(f.api.setsockopt(s, IPPROTO_IPV6, IPV6_LEAVE_GROUP, &m, sizeof m) == -EADDRNOTAVAIL);
}

BOOST_AUTO_TEST_CASE(multicast_interface_must_be_ours) {
  UdpFixture f;
  int s = f.udp4();
  in_addr a{};
  inet_pton(AF_INET, "10.0.0.9", &a);
  BOOST_TEST(f.api.setsockopt(s, IPPROTO_IP, IP_MULTICAST_IF, &a, sizeof a) == -EADDRNOTAVAIL);
  inet_pton(AF_INET, "10.0.0.1", &a);
  BOOST_TEST(f.api.setsockopt(s, IPPROTO_IP, IP_MULTICAST_IF, &a, sizeof a) == 0);
  in_addr got{};
  socklen_t l = sizeof got;
  BOOST_TEST(f.api.getsockopt(s, IPPROTO_IP, IP_MULTICAST_IF, &got, &l) == 0);
  BOOST_TEST(got.s_addr == a.s_addr);
  BOOST_TEST(f.api.setsockopt(s, IPPROTO_IP, IP_MULTICAST_IF, &a, 3) == -EINVAL);
}

// --- shutdown, ioctl, poll

BOOST_AUTO_TEST_CASE(shutdown_of_an_unconnected_socket_is_enotconn_but_takes_effect) {
  UdpFixture f;
  int s = f.bound4("0.0.0.0", 5300, 0);
  BOOST_TEST(f.api.shutdown(s, 3) == -EINVAL);
  BOOST_TEST(f.api.shutdown(s, -1) == -EINVAL);
  BOOST_TEST(f.api.shutdown(s, SHUT_RD) == -ENOTCONN);
  BOOST_TEST((f.api.poll_events(s) & POLLIN) != 0u);
  BOOST_TEST((f.api.poll_events(s) & POLLHUP) == 0u);
  char b[4];
  BOOST_TEST(f.api.recv(s, b, 4, 0) == 0);  // blocking: end of input at once
  BOOST_TEST(f.api.recv(s, b, 4, MSG_DONTWAIT) == -EAGAIN);
  BOOST_TEST(f.api.shutdown(s, SHUT_WR) == -ENOTCONN);
  BOOST_TEST((f.api.poll_events(s) & POLLHUP) != 0u);
  int c = f.udp4();
  Addr to = sa4("10.0.0.2", 9);
  f.api.connect(c, to.sa(), to.len);
  BOOST_TEST(f.api.shutdown(c, SHUT_RDWR) == 0);
}

BOOST_AUTO_TEST_CASE(ioctl_fionbio_switches_blocking_and_unknown_requests_are_enotty) {
  UdpFixture f;
  int s = f.bound4("0.0.0.0", 5400, 0);
  int on = 1;
  BOOST_TEST(f.api.ioctl(s, FIONBIO, &on) == 0);
  char b[4];
  BOOST_TEST(f.api.recv(s, b, 4, 0) == -EAGAIN);
  int off = 0;
  BOOST_TEST(f.api.ioctl(s, FIONBIO, &off) == 0);
  BOOST_TEST(f.api.recv(s, b, 4, 0) == -EAGAIN);  // blocking, but no waiter to wait with
  int n = -1;
  BOOST_TEST(f.api.ioctl(s, FIONREAD, &n) == 0);
  BOOST_TEST(n == 0);
  BOOST_TEST(f.api.ioctl(s, FIONREAD, nullptr) == -EFAULT);
  BOOST_TEST(f.api.ioctl(s, 0x1234, &n) == -ENOTTY);
  BOOST_TEST(f.api.set_nonblocking(s, true) == 0);
  BOOST_TEST(f.api.set_nonblocking(99, true) == -EBADF);
}

BOOST_AUTO_TEST_CASE(recv_flags_errqueue_is_eagain) {
  UdpFixture f;
  int s = f.bound4("0.0.0.0", 5500);
  char b[4];
  BOOST_TEST(f.api.recv(s, b, 4, MSG_ERRQUEUE) == -EAGAIN);
}

BOOST_AUTO_TEST_SUITE_END()
