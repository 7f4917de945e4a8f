// The TCP socket API's errno matrix, with Linux as the reference (values checked against the
// kernel's answers to the same calls): socket, bind, listen, accept4, connect (SS_CONNECTING
// rules), send and recv on sockets in each state, shutdown, options, ioctl and poll events.
#include <boost/test/unit_test.hpp>

#include "tcp_socket_support.h"

using namespace shunt;
using namespace shunt::tcptest;

BOOST_AUTO_TEST_SUITE(tcp_socket_api)

BOOST_AUTO_TEST_CASE(socket_accepts_stream_with_tcp_or_zero_and_reports_its_type) {
  Net n;
  SocketApi& a = n.api(0);
  const int s4 = a.socket(AF_INET, SOCK_STREAM, 0);
  const int s4b = a.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
  const int s6 = a.socket(AF_INET6, SOCK_STREAM, IPPROTO_TCP);
  BOOST_TEST(s4 >= 0);
  BOOST_TEST(s4b >= 0);
  BOOST_TEST(s6 >= 0);
  BOOST_TEST(a.socket(AF_INET, SOCK_STREAM, IPPROTO_UDP) == -EPROTONOSUPPORT);
  BOOST_TEST(a.socket(AF_INET, SOCK_STREAM, -1) == -EINVAL);
  BOOST_TEST(a.socket(AF_INET, SOCK_STREAM | (1 << 20), 0) == -EINVAL);
  BOOST_TEST(a.socket(AF_UNIX, SOCK_STREAM, 0) == -EAFNOSUPPORT);
  BOOST_TEST(n.get_int(0, s4, SOL_SOCKET, SO_TYPE) == SOCK_STREAM);
  BOOST_TEST(n.get_int(0, s4, SOL_SOCKET, SO_PROTOCOL) == IPPROTO_TCP);
  BOOST_TEST(n.get_int(0, s6, SOL_SOCKET, SO_DOMAIN) == AF_INET6);
  BOOST_TEST(n.get_int(0, s4, SOL_SOCKET, SO_ACCEPTCONN) == 0);
  BOOST_TEST(n.get_int(0, s4, SOL_SOCKET, SO_ERROR) == 0);
  // UDP sockets still answer as before, side by side with TCP ones.
  const int u = a.socket(AF_INET, SOCK_DGRAM, 0);
  BOOST_TEST(u >= 0);
  BOOST_TEST(n.get_int(0, u, SOL_SOCKET, SO_TYPE) == SOCK_DGRAM);
  BOOST_TEST(a.listen(u, 1) == -EOPNOTSUPP);
  BOOST_TEST(a.accept(u, nullptr, nullptr, 0) == -EOPNOTSUPP);
  for (int s : {s4, s4b, s6, u}) BOOST_TEST(a.close(s) == 0);
  BOOST_TEST(a.close(s4) == -EBADF);
}

BOOST_AUTO_TEST_CASE(a_fresh_socket_answers_as_an_unconnected_linux_socket) {
  Net n;
  SocketApi& a = n.api(0);
  const int s = a.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  Addr name;
  name.len = sizeof name.ss;
  BOOST_TEST(a.getsockname(s, name.sa(), &name.len) == 0);
  BOOST_TEST(name.len == socklen_t(sizeof(sockaddr_in)));
  BOOST_TEST(name.ip() == "0.0.0.0");
  BOOST_TEST(name.port() == 0);
  Addr peer;
  peer.len = sizeof peer.ss;
  BOOST_TEST(a.getpeername(s, peer.sa(), &peer.len) == -ENOTCONN);
  char buf[8] = {};
  BOOST_TEST(a.send(s, "x", 1, MSG_NOSIGNAL) == -EPIPE);  // sk_stream_wait_connect
  BOOST_TEST(a.recv(s, buf, sizeof buf, 0) == -ENOTCONN);
  BOOST_TEST(a.shutdown(s, SHUT_WR) == -ENOTCONN);
  BOOST_TEST(a.accept(s, nullptr, nullptr, 0) == -EINVAL);
  BOOST_TEST(n.fionread(0, s) == 0);
  // tcp_poll on a closed socket: writable in form, and hung up.
  BOOST_TEST((a.poll_events(s) & (POLLIN | POLLOUT | POLLERR | POLLHUP | POLLRDHUP)) == uint32_t(POLLOUT | POLLHUP));
  BOOST_TEST(a.poll_events(99) == uint32_t(POLLNVAL));
}

BOOST_AUTO_TEST_CASE(bind_rules_match_linux) {
  Net n;
  SocketApi& a = n.api(0);
  const int s = a.socket(AF_INET, SOCK_STREAM, 0);
  Addr foreign = v4(*Ipv4Addr::parse("192.0.2.1"), 0);
  BOOST_TEST(a.bind(s, foreign.sa(), foreign.len) == -EADDRNOTAVAIL);
  Addr mine = addr_of(0, false, 6000);
  BOOST_TEST(a.bind(s, mine.sa(), sizeof(sockaddr_in) - 1) == -EINVAL);
  BOOST_TEST(a.bind(s, mine.sa(), mine.len) == 0);
  BOOST_TEST(a.bind(s, mine.sa(), mine.len) == -EINVAL);  // already bound
  Addr name;
  name.len = sizeof name.ss;
  a.getsockname(s, name.sa(), &name.len);
  BOOST_TEST(name.ip() == "10.0.0.1");
  BOOST_TEST(name.port() == 6000);
  BOOST_TEST(a.listen(s, 4) == 0);
  // The port has a listener: taken, SO_REUSEADDR or not.
  const int t = a.socket(AF_INET, SOCK_STREAM, 0);
  BOOST_TEST(a.bind(t, mine.sa(), mine.len) == -EADDRINUSE);
  const int u = a.socket(AF_INET, SOCK_STREAM, 0);
  n.set_int(0, u, SOL_SOCKET, SO_REUSEADDR, 1);
  Addr any = any_addr(false, 6000);
  BOOST_TEST(a.bind(u, any.sa(), any.len) == -EADDRINUSE);
  // Port 0 picks an ephemeral port.
  Addr zero = any_addr(false, 0);
  BOOST_TEST(a.bind(t, zero.sa(), zero.len) == 0);
  name.len = sizeof name.ss;
  a.getsockname(t, name.sa(), &name.len);
  BOOST_TEST(name.port() != 0);
  // An IPv6 socket: AF_INET is the wrong family; a v4-mapped address binds its IPv4 side.
  const int s6 = a.socket(AF_INET6, SOCK_STREAM, 0);
  Addr in4 = addr_of(0, false, 6001);
  BOOST_TEST(a.bind(s6, in4.sa(), sizeof(sockaddr_in6)) == -EAFNOSUPPORT);
  BOOST_TEST(a.bind(s6, in4.sa(), in4.len) == -EINVAL);  // shorter than sockaddr_in6
  Addr mapped = v6(*Ipv6Addr::parse("::ffff:10.0.0.1"), 6001);
  BOOST_TEST(a.bind(s6, mapped.sa(), mapped.len) == 0);
  name.len = sizeof name.ss;
  a.getsockname(s6, name.sa(), &name.len);
  BOOST_TEST(name.ip() == "::ffff:10.0.0.1");
  BOOST_TEST(name.port() == 6001);
  const int s6only = a.socket(AF_INET6, SOCK_STREAM, 0);
  BOOST_TEST(n.set_int(0, s6only, IPPROTO_IPV6, IPV6_V6ONLY, 1) == 0);
  Addr mapped2 = v6(*Ipv6Addr::parse("::ffff:10.0.0.1"), 6002);
  BOOST_TEST(a.bind(s6only, mapped2.sa(), mapped2.len) == -EINVAL);
  Addr ll = v6(*Ipv6Addr::parse("fe80::1"), 6003);
  BOOST_TEST(a.bind(s6only, ll.sa(), ll.len) == -EINVAL);  // link-local without a scope id
}

BOOST_AUTO_TEST_CASE(listen_sets_acceptconn_and_refuses_connected_sockets) {
  Net n;
  SocketApi& a = n.api(1);
  const int l = n.listener(1, false, 7000, -1);  // a negative backlog means somaxconn
  BOOST_REQUIRE(l >= 0);
  BOOST_TEST(n.get_int(1, l, SOL_SOCKET, SO_ACCEPTCONN) == 1);
  BOOST_TEST(a.listen(l, 100000) == 0);  // again: a new (clamped) backlog
  BOOST_TEST(a.poll_events(l) == 0u);
  int v = 0;
  BOOST_TEST(a.ioctl(l, FIONREAD, &v) == -EINVAL);
  BOOST_TEST(a.accept(l, nullptr, nullptr, 0x40000000) == -EINVAL);  // unknown accept4 flag
  BOOST_TEST(a.accept(l, nullptr, nullptr, SOCK_NONBLOCK) == -EAGAIN);
  char buf[4];
  BOOST_TEST(a.recv(l, buf, sizeof buf, 0) == -ENOTCONN);
  BOOST_TEST(a.send(l, "x", 1, MSG_NOSIGNAL) == -EPIPE);
  Net::Conn c = n.connect_pair(0, 1, false, 7000, l);
  BOOST_REQUIRE(c.ok());
  BOOST_TEST(n.api(0).listen(c.client, 1) == -EINVAL);
  BOOST_TEST(a.listen(c.server, 1) == -EINVAL);
  BOOST_TEST(n.get_int(1, c.server, SOL_SOCKET, SO_ACCEPTCONN) == 0);
}

BOOST_AUTO_TEST_CASE(accept_fills_the_peer_address_and_honours_its_flags) {
  for (bool ipv6 : {false, true}) {
    Net n;
    const int l = n.listener(1, ipv6, 7001);
    const int c = n.start_connect(0, 1, ipv6, 7001);
    BOOST_REQUIRE(c >= 0);
    BOOST_REQUIRE(n.wait_events(1, l, POLLIN));
    Addr peer;
    peer.len = sizeof peer.ss;
    socklen_t bad = socklen_t(-1);
    BOOST_TEST(n.api(1).accept(l, peer.sa(), &bad, 0) == -EINVAL);
    BOOST_TEST(n.api(1).accept(l, peer.sa(), nullptr, 0) == -EFAULT);
    const int s = n.api(1).accept(l, peer.sa(), &peer.len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    BOOST_REQUIRE(s >= 0);
    BOOST_TEST(peer.len == socklen_t(ipv6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in)));
    BOOST_TEST(peer.ip() == (ipv6 ? "fd00::1" : "10.0.0.1"));
    Addr cname;
    cname.len = sizeof cname.ss;
    n.api(0).getsockname(c, cname.sa(), &cname.len);
    BOOST_TEST(peer.port() == cname.port());
    BOOST_TEST(cname.ip() == (ipv6 ? "fd00::1" : "10.0.0.1"));
    Addr sname;
    sname.len = sizeof sname.ss;
    n.api(1).getsockname(s, sname.sa(), &sname.len);
    BOOST_TEST(sname.ip() == (ipv6 ? "fd00::2" : "10.0.0.2"));
    BOOST_TEST(sname.port() == 7001);
    // SOCK_NONBLOCK on the accepted socket: an empty read does not block.
    char buf[4];
    BOOST_TEST(n.api(1).recv(s, buf, sizeof buf, 0) == -EAGAIN);
    BOOST_TEST(n.api(1).accept(l, nullptr, nullptr, 0) == -EAGAIN);  // listener is non-blocking
  }
}

BOOST_AUTO_TEST_CASE(connect_follows_the_ss_connecting_rules) {
  Net n;
  n.listener(1, false, 7002);
  SocketApi& a = n.api(0);
  const int c = a.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  Addr dst = addr_of(1, false, 7002);
  BOOST_TEST(a.connect(c, dst.sa(), dst.len) == -EINPROGRESS);
  BOOST_TEST(a.connect(c, dst.sa(), dst.len) == -EALREADY);
  Addr peer;
  peer.len = sizeof peer.ss;
  BOOST_TEST(a.getpeername(c, peer.sa(), &peer.len) == -ENOTCONN);  // still SYN_SENT
  BOOST_REQUIRE(n.wait_events(0, c, POLLOUT));
  BOOST_TEST(n.so_error(0, c) == 0);
  BOOST_TEST(a.connect(c, dst.sa(), dst.len) == 0);  // reports the completed connect once
  BOOST_TEST(a.connect(c, dst.sa(), dst.len) == -EISCONN);
  peer.len = sizeof peer.ss;
  BOOST_TEST(a.getpeername(c, peer.sa(), &peer.len) == 0);
  BOOST_TEST(peer.ip() == "10.0.0.2");
  BOOST_TEST(peer.port() == 7002);
}

BOOST_AUTO_TEST_CASE(connect_rejects_bad_addresses_like_linux) {
  Net n;
  SocketApi& a = n.api(0);
  const int s = a.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  Addr dst = addr_of(1, false, 7003);
  BOOST_TEST(a.connect(s, dst.sa(), 1) == -EINVAL);
  BOOST_TEST(a.connect(s, dst.sa(), sizeof(sockaddr_in) - 1) == -EINVAL);
  Addr d6 = addr_of(1, true, 7003);
  BOOST_TEST(a.connect(s, d6.sa(), d6.len) == -EAFNOSUPPORT);
  Addr mc = v4(*Ipv4Addr::parse("224.0.0.1"), 7003);
  BOOST_TEST(a.connect(s, mc.sa(), mc.len) == -ENETUNREACH);
  Addr bc = v4(*Ipv4Addr::parse("255.255.255.255"), 7003);
  BOOST_TEST(a.connect(s, bc.sa(), bc.len) == -ENETUNREACH);
  Addr off = v4(*Ipv4Addr::parse("192.0.2.1"), 7003);  // no route, no gateway
  BOOST_TEST(a.connect(s, off.sa(), off.len) == -ENETUNREACH);
  const int s6 = a.socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK, 0);
  BOOST_TEST(a.connect(s6, dst.sa(), dst.len) == -EINVAL);  // sockaddr_in is too short
  Addr mc6 = v6(*Ipv6Addr::parse("ff02::1"), 7003);
  BOOST_TEST(a.connect(s6, mc6.sa(), mc6.len) == -ENETUNREACH);
  Addr ll = v6(*Ipv6Addr::parse("fe80::2"), 7003);
  BOOST_TEST(a.connect(s6, ll.sa(), ll.len) == -EINVAL);  // needs a scope id
  BOOST_TEST(n.set_int(0, s6, IPPROTO_IPV6, IPV6_V6ONLY, 1) == 0);
  Addr mapped = v6(*Ipv6Addr::parse("::ffff:10.0.0.2"), 7003);
  BOOST_TEST(a.connect(s6, mapped.sa(), mapped.len) == -ENETUNREACH);
}

BOOST_AUTO_TEST_CASE(an_ipv6_socket_reaches_an_ipv4_listener_through_a_mapped_address) {
  Net n;
  const int l = n.listener(1, false, 7004);
  SocketApi& a = n.api(0);
  const int s = a.socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK, 0);
  Addr mapped = v6(*Ipv6Addr::parse("::ffff:10.0.0.2"), 7004);
  BOOST_TEST(a.connect(s, mapped.sa(), mapped.len) == -EINPROGRESS);
  BOOST_REQUIRE(n.wait_events(0, s, POLLOUT));
  BOOST_TEST(n.so_error(0, s) == 0);
  Addr name;
  name.len = sizeof name.ss;
  a.getsockname(s, name.sa(), &name.len);
  BOOST_TEST(name.ip() == "::ffff:10.0.0.1");
  Addr peer;
  peer.len = sizeof peer.ss;
  a.getpeername(s, peer.sa(), &peer.len);
  BOOST_TEST(peer.ip() == "::ffff:10.0.0.2");
  BOOST_REQUIRE(n.wait_events(1, l, POLLIN));
  Addr from;
  from.len = sizeof from.ss;
  const int srv = n.api(1).accept(l, from.sa(), &from.len, 0);
  BOOST_TEST(srv >= 0);
  BOOST_TEST(from.ip() == "10.0.0.1");
}

BOOST_AUTO_TEST_CASE(send_and_recv_validate_buffers_and_flags) {
  Net n;
  Net::Conn c = n.connect_pair(0, 1, false, 7005);
  BOOST_REQUIRE(c.ok());
  SocketApi& a = n.api(0);
  BOOST_TEST(a.send(c.client, nullptr, 4, 0) == -EFAULT);
  BOOST_TEST(a.send(c.client, "x", 1, MSG_OOB) == -EOPNOTSUPP);  // urgent data is not offered
  char buf[16];
  BOOST_TEST(n.api(1).recv(c.server, buf, sizeof buf, MSG_OOB) == -EINVAL);
  BOOST_TEST(n.api(1).recv(c.server, nullptr, 4, 0) == -EFAULT);
  BOOST_TEST(a.send(c.client, "", 0, 0) == 0);
  BOOST_TEST(n.api(1).recv(c.server, buf, 0, 0) == 0);
  BOOST_TEST(n.api(1).recv(c.server, buf, sizeof buf, 0) == -EAGAIN);
  msghdr m{};
  m.msg_iovlen = 2000;  // more than UIO_MAXIOV
  BOOST_TEST(a.sendmsg(c.client, &m, 0) == -EMSGSIZE);
  // sendmsg gathers; recvmsg scatters; neither names an address for a stream.
  iovec out[3] = {{const_cast<char*>("hel"), 3}, {nullptr, 0}, {const_cast<char*>("lo!"), 3}};
  msghdr sm{};
  sm.msg_iov = out;
  sm.msg_iovlen = 3;
  BOOST_TEST(a.sendmsg(c.client, &sm, MSG_NOSIGNAL) == 6);
  BOOST_REQUIRE(n.wait_events(1, c.server, POLLIN));
  n.run_until([&] { return n.fionread(1, c.server) == 6; }, kSecond);
  BOOST_TEST(n.fionread(1, c.server) == 6);
  char b1[2], b2[8];
  iovec in[2] = {{b1, 2}, {b2, 8}};
  sockaddr_in from{};
  msghdr rm{};
  rm.msg_name = &from;
  rm.msg_namelen = sizeof from;
  rm.msg_iov = in;
  rm.msg_iovlen = 2;
  BOOST_TEST(n.api(1).recvmsg(c.server, &rm, 0) == 6);
  BOOST_TEST(rm.msg_namelen == 0u);
  BOOST_TEST(std::string(b1, 2) + std::string(b2, 4) == "hello!");
  // recvfrom on a stream reports no address.
  n.send_str(0, c.client, "ab");
  n.wait_events(1, c.server, POLLIN);
  Addr f;
  f.len = sizeof f.ss;
  BOOST_TEST(n.api(1).recvfrom(c.server, buf, sizeof buf, 0, f.sa(), &f.len) == 2);
  BOOST_TEST(f.len == 0u);
}

BOOST_AUTO_TEST_CASE(peek_trunc_and_dontwait) {
  Net n;
  Net::Conn c = n.connect_pair(0, 1, true, 7006);
  BOOST_REQUIRE(c.ok());
  BOOST_TEST(n.send_str(0, c.client, "abcdefgh") == 8);
  n.run_until([&] { return n.fionread(1, c.server) == 8; }, kSecond);
  char buf[16] = {};
  SocketApi& b = n.api(1);
  BOOST_TEST(b.recv(c.server, buf, 3, MSG_PEEK) == 3);
  BOOST_TEST(std::string(buf, 3) == "abc");
  BOOST_TEST(b.recv(c.server, buf, 16, MSG_PEEK) == 8);
  BOOST_TEST(n.fionread(1, c.server) == 8);
  BOOST_TEST(b.recv(c.server, nullptr, 2, MSG_TRUNC) == 2);  // discards
  BOOST_TEST(b.recv(c.server, buf, 16, 0) == 6);
  BOOST_TEST(std::string(buf, 6) == "cdefgh");
  BOOST_TEST(b.recv(c.server, buf, 16, MSG_DONTWAIT) == -EAGAIN);
  // A blocking socket with MSG_DONTWAIT does not wait either.
  const int l = n.listener(1, false, 7007);
  const int blocking = n.api(0).socket(AF_INET, SOCK_STREAM, 0);
  Addr dst = addr_of(1, false, 7007);
  BOOST_TEST(n.api(0).connect(blocking, dst.sa(), dst.len) == 0);
  const uint64_t waits = n.waits;
  BOOST_TEST(n.api(0).recv(blocking, buf, 16, MSG_DONTWAIT) == -EAGAIN);
  BOOST_TEST(n.waits == waits);
  (void)l;
}

BOOST_AUTO_TEST_CASE(shutdown_checks_how_and_reports_in_poll) {
  Net n;
  Net::Conn c = n.connect_pair(0, 1, false, 7008);
  BOOST_REQUIRE(c.ok());
  SocketApi& a = n.api(0);
  BOOST_TEST(a.shutdown(c.client, 7) == -EINVAL);
  BOOST_TEST(a.poll_events(c.client) & POLLOUT);
  BOOST_TEST(!(a.poll_events(c.client) & (POLLIN | POLLHUP | POLLRDHUP)));
  BOOST_TEST(a.shutdown(c.client, SHUT_WR) == 0);
  BOOST_TEST(a.send(c.client, "x", 1, MSG_NOSIGNAL) == -EPIPE);
  // The server sees EOF: POLLIN | POLLRDHUP, still writable.
  BOOST_REQUIRE(n.wait_events(1, c.server, POLLRDHUP));
  const uint32_t ev = n.api(1).poll_events(c.server);
  BOOST_TEST((ev & (POLLIN | POLLOUT | POLLRDHUP)) == uint32_t(POLLIN | POLLOUT | POLLRDHUP));
  BOOST_TEST(!(ev & POLLHUP));
  char buf[4];
  BOOST_TEST(n.api(1).recv(c.server, buf, sizeof buf, 0) == 0);
  BOOST_TEST(n.api(1).shutdown(c.server, SHUT_WR) == 0);
  BOOST_REQUIRE(n.wait_events(0, c.client, POLLHUP));  // both halves shut: hung up
  BOOST_TEST(a.poll_events(c.client) & POLLIN);
  BOOST_TEST(a.recv(c.client, buf, sizeof buf, 0) == 0);
  // SHUT_RD: reads end at once.
  Net::Conn d = n.connect_pair(0, 1, false, 7009);
  BOOST_REQUIRE(d.ok());
  BOOST_TEST(a.shutdown(d.client, SHUT_RD) == 0);
  BOOST_TEST(a.recv(d.client, buf, sizeof buf, 0) == 0);
  BOOST_TEST(a.poll_events(d.client) & POLLRDHUP);
}

BOOST_AUTO_TEST_CASE(options_reach_the_engine_with_linux_validation) {
  Net n;
  Net::Conn c = n.connect_pair(0, 1, false, 7010);
  BOOST_REQUIRE(c.ok());
  const int s = c.client;
  for (int name : {TCP_NODELAY, TCP_CORK, TCP_QUICKACK}) {
    BOOST_TEST(n.set_int(0, s, IPPROTO_TCP, name, 1) == 0);
  }
  BOOST_TEST(n.get_int(0, s, IPPROTO_TCP, TCP_NODELAY) == 1);
  BOOST_TEST(n.get_int(0, s, IPPROTO_TCP, TCP_CORK) == 1);
  BOOST_TEST(n.set_int(0, s, IPPROTO_TCP, TCP_CORK, 0) == 0);
  BOOST_TEST(n.set_int(0, s, IPPROTO_TCP, TCP_KEEPIDLE, 30) == 0);
  BOOST_TEST(n.get_int(0, s, IPPROTO_TCP, TCP_KEEPIDLE) == 30);
  BOOST_TEST(n.set_int(0, s, IPPROTO_TCP, TCP_KEEPIDLE, 0) == -EINVAL);
  BOOST_TEST(n.set_int(0, s, IPPROTO_TCP, TCP_KEEPINTVL, 5) == 0);
  BOOST_TEST(n.get_int(0, s, IPPROTO_TCP, TCP_KEEPINTVL) == 5);
  BOOST_TEST(n.set_int(0, s, IPPROTO_TCP, TCP_KEEPCNT, 3) == 0);
  BOOST_TEST(n.get_int(0, s, IPPROTO_TCP, TCP_KEEPCNT) == 3);
  BOOST_TEST(n.set_int(0, s, IPPROTO_TCP, TCP_KEEPCNT, 0) == -EINVAL);
  BOOST_TEST(n.set_int(0, s, IPPROTO_TCP, TCP_USER_TIMEOUT, 5000) == 0);
  BOOST_TEST(n.get_int(0, s, IPPROTO_TCP, TCP_USER_TIMEOUT) == 5000);
  BOOST_TEST(n.set_int(0, s, IPPROTO_TCP, TCP_USER_TIMEOUT, -1) == -EINVAL);
  BOOST_TEST(n.set_int(0, s, SOL_SOCKET, SO_KEEPALIVE, 1) == 0);
  BOOST_TEST(n.get_int(0, s, SOL_SOCKET, SO_KEEPALIVE) == 1);
  BOOST_TEST(n.get_int(0, s, IPPROTO_TCP, TCP_MAXSEG) > 0);
  BOOST_TEST(n.get_int(0, s, IPPROTO_TCP, TCP_MAXSEG) <= 1460);
  // Short ints are EINVAL at the TCP level.
  const char one = 1;
  BOOST_TEST(n.api(0).setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, 1) == -EINVAL);
  // Congestion control by name.
  char cc[16] = {};
  socklen_t cl = sizeof cc;
  BOOST_TEST(n.api(0).setsockopt(s, IPPROTO_TCP, TCP_CONGESTION, "newreno", 7) == 0);
  BOOST_TEST(n.api(0).getsockopt(s, IPPROTO_TCP, TCP_CONGESTION, cc, &cl) == 0);
  BOOST_TEST(std::string(cc) == "newreno");
  BOOST_TEST(n.api(0).setsockopt(s, IPPROTO_TCP, TCP_CONGESTION, "bogus", 5) == -ENOENT);
  // Buffers are doubled as Linux reports them.
  BOOST_TEST(n.set_int(0, s, SOL_SOCKET, SO_SNDBUF, 10000) == 0);
  BOOST_TEST(n.get_int(0, s, SOL_SOCKET, SO_SNDBUF) == 20000);
  BOOST_TEST(n.set_int(0, s, SOL_SOCKET, SO_RCVBUF, 1) == 0);
  BOOST_TEST(n.get_int(0, s, SOL_SOCKET, SO_RCVBUF) == kTcpMinRcvbuf);
  // SO_LINGER round trip; SO_RCVTIMEO handled by the socket layer.
  BOOST_TEST(n.linger(0, s, 1, 7) == 0);
  ::linger l{};
  socklen_t ll = sizeof l;
  BOOST_TEST(n.api(0).getsockopt(s, SOL_SOCKET, SO_LINGER, &l, &ll) == 0);
  BOOST_TEST(l.l_onoff == 1);
  BOOST_TEST(l.l_linger == 7);
  timeval tv{2, 500000};
  BOOST_TEST(n.api(0).setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0);
  timeval got{};
  socklen_t tl = sizeof got;
  BOOST_TEST(n.api(0).getsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &got, &tl) == 0);
  BOOST_TEST(got.tv_sec == 2);
  BOOST_TEST(got.tv_usec == 500000);
  // IPv6 options on an IPv4 socket, unknown levels and names.
  BOOST_TEST(n.set_int(0, s, IPPROTO_IPV6, IPV6_V6ONLY, 1) == -ENOPROTOOPT);
  BOOST_TEST(n.set_int(0, s, IPPROTO_TCP, 9999, 1) == -ENOPROTOOPT);
  BOOST_TEST(n.set_int(0, s, 12345, 1, 1) == -ENOPROTOOPT);
  BOOST_TEST(n.get_int(0, s, IPPROTO_TCP, 9999) == -ENOPROTOOPT);
}

BOOST_AUTO_TEST_CASE(tcp_info_reports_state_and_segment_sizes) {
  Net n;
  Net::Conn c = n.connect_pair(0, 1, false, 7011);
  BOOST_REQUIRE(c.ok());
  tcp_info ti = n.info(0, c.client);
  BOOST_TEST(ti.tcpi_state == kLxEstablished);
  BOOST_TEST(ti.tcpi_snd_mss > 0u);
  BOOST_TEST(ti.tcpi_snd_mss <= 1460u);
  BOOST_TEST(ti.tcpi_rcv_mss > 0u);
  BOOST_TEST(ti.tcpi_pmtu == 1500u);
  BOOST_TEST(ti.tcpi_snd_cwnd > 0u);
  BOOST_TEST(ti.tcpi_rtt > 0u);
  BOOST_TEST(n.info(1, c.listener).tcpi_state == kLxListen);
  // A short buffer gets a prefix.
  uint8_t head[8] = {};
  socklen_t l = sizeof head;
  BOOST_TEST(n.api(0).getsockopt(c.client, IPPROTO_TCP, TCP_INFO, head, &l) == 0);
  BOOST_TEST(l == 8u);
  BOOST_TEST(head[0] == kLxEstablished);
}

BOOST_AUTO_TEST_CASE(ioctl_counts_readable_and_unacknowledged_bytes) {
  Net n(net_options(2, [] {
    LinkConfig l;
    l.delay = 10 * kMilli;
    return l;
  }()));
  Net::Conn c = n.connect_pair(0, 1, false, 7012);
  BOOST_REQUIRE(c.ok());
  BOOST_TEST(n.send_str(0, c.client, std::string(3000, 'q')) == 3000);
  int out = -1;
  BOOST_TEST(n.api(0).ioctl(c.client, TIOCOUTQ, &out) == 0);
  BOOST_TEST(out == 3000);  // nothing acknowledged yet: the peer is 10 ms away
  BOOST_REQUIRE(n.run_until([&] { return n.fionread(1, c.server) == 3000; }, kSecond));
  n.run_until([&] {
    n.api(0).ioctl(c.client, TIOCOUTQ, &out);
    return out == 0;
  }, kSecond);
  BOOST_TEST(out == 0);
  BOOST_TEST(n.api(0).ioctl(c.client, 0x12345678, &out) == -ENOTTY);
  int nb = 1;
  BOOST_TEST(n.api(1).ioctl(c.server, FIONBIO, &nb) == 0);
}

BOOST_AUTO_TEST_CASE(readiness_hook_names_the_socket_whose_state_changed) {
  Net n;
  n.record_hooks = true;
  Net::Conn c = n.connect_pair(0, 1, false, 7013);
  BOOST_REQUIRE(c.ok());
  n.hooks[1].clear();
  n.hooks[0].clear();
  n.send_str(0, c.client, "ping");
  BOOST_REQUIRE(n.wait_events(1, c.server, POLLIN));
  BOOST_TEST(std::count(n.hooks[1].begin(), n.hooks[1].end(), c.server) >= 1);
  n.hooks[1].clear();
  // A pending connection wakes the listener.
  const int c2 = n.start_connect(0, 1, false, 7013);
  BOOST_REQUIRE(c2 >= 0);
  BOOST_REQUIRE(n.wait_events(1, c.listener, POLLIN));
  BOOST_TEST(std::count(n.hooks[1].begin(), n.hooks[1].end(), c.listener) >= 1);
  // The client's connect completing wakes it.
  BOOST_TEST(std::count(n.hooks[0].begin(), n.hooks[0].end(), c2) >= 1);
}

BOOST_AUTO_TEST_CASE(so_reuseport_lets_two_listeners_share_a_port) {
  Net n;
  SocketApi& b = n.api(1);
  int l[2];
  for (int& x : l) {
    x = b.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    BOOST_TEST(n.set_int(1, x, SOL_SOCKET, SO_REUSEPORT, 1) == 0);
    BOOST_TEST(n.get_int(1, x, SOL_SOCKET, SO_REUSEPORT) == 1);
    Addr any = any_addr(false, 7100);
    BOOST_TEST(b.bind(x, any.sa(), any.len) == 0);
    BOOST_TEST(b.listen(x, 64) == 0);
  }
  // Without the option, the port stays taken.
  const int other = b.socket(AF_INET, SOCK_STREAM, 0);
  Addr any = any_addr(false, 7100);
  BOOST_TEST(b.bind(other, any.sa(), any.len) == -EADDRINUSE);
  for (int i = 0; i < 32; ++i) BOOST_REQUIRE(n.start_connect(0, 1, false, 7100) >= 0);
  n.h.run_for(5 * kSecond);  // SYNs beyond the 16 ARP holds while resolving come again after 1 s
  int got[2] = {0, 0};
  for (int k = 0; k < 2; ++k) {
    while (b.accept(l[k], nullptr, nullptr, 0) >= 0) ++got[k];
  }
  BOOST_TEST(got[0] + got[1] == 32);
  BOOST_TEST(got[0] > 0);  // spread over both listeners
  BOOST_TEST(got[1] > 0);
}

BOOST_AUTO_TEST_CASE(a_restarted_server_rebinds_over_its_time_wait_only_with_so_reuseaddr) {
  Net n;
  Net::Conn c = n.connect_pair(0, 1, false, 7101);
  BOOST_REQUIRE(c.ok());
  SocketApi& b = n.api(1);
  // The server closes first and keeps TIME_WAIT on its port.
  b.close(c.listener);
  b.close(c.server);
  n.wait_events(0, c.client, POLLRDHUP);
  n.api(0).close(c.client);
  n.h.run_for(kSecond);
  BOOST_REQUIRE(n.tcp(1).count_in_state(TcpState::kTimeWait) == 1u);
  Addr any = any_addr(false, 7101);
  const int plain = b.socket(AF_INET, SOCK_STREAM, 0);
  BOOST_TEST(b.bind(plain, any.sa(), any.len) == -EADDRINUSE);
  const int reuse = b.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  BOOST_TEST(n.set_int(1, reuse, SOL_SOCKET, SO_REUSEADDR, 1) == 0);
  BOOST_TEST(b.bind(reuse, any.sa(), any.len) == 0);
  BOOST_TEST(b.listen(reuse, 4) == 0);
  // And it serves again.
  Net::Conn d = n.connect_pair(0, 1, false, 7101, reuse);
  BOOST_TEST(d.ok());
}

BOOST_AUTO_TEST_CASE(shutdown_of_a_listener_stops_listening_and_keeps_the_name) {
  // Linux inet_shutdown on a listener: SHUT_WR does nothing and succeeds; SHUT_RD (or RDWR)
  // stops listening (accept says EINVAL, pending connections are reset) but keeps the bound
  // address, and listen() may be called again.
  Net n;
  SocketApi& b = n.api(1);
  const int l = n.listener(1, false, 7102);
  BOOST_TEST(b.shutdown(l, SHUT_WR) == 0);
  BOOST_TEST(n.get_int(1, l, SOL_SOCKET, SO_ACCEPTCONN) == 1);
  BOOST_TEST(b.shutdown(l, SHUT_RD) == 0);
  BOOST_TEST(b.accept(l, nullptr, nullptr, 0) == -EINVAL);
  BOOST_TEST(n.get_int(1, l, SOL_SOCKET, SO_ACCEPTCONN) == 0);
  Addr name;
  name.len = sizeof name.ss;
  b.getsockname(l, name.sa(), &name.len);
  BOOST_TEST(name.port() == 7102);
  BOOST_TEST(b.listen(l, 4) == 0);
  BOOST_TEST(b.accept(l, nullptr, nullptr, 0) == -EAGAIN);
}

BOOST_AUTO_TEST_CASE(closing_a_listener_resets_connections_not_yet_accepted) {
  Net n;
  const int l = n.listener(1, false, 7103);
  const int c = n.start_connect(0, 1, false, 7103);
  BOOST_REQUIRE(n.wait_events(0, c, POLLOUT));
  BOOST_REQUIRE(n.wait_events(1, l, POLLIN));
  BOOST_TEST(n.api(1).close(l) == 0);
  BOOST_REQUIRE(n.wait_events(0, c, POLLERR));
  char buf[4];
  BOOST_TEST(n.api(0).recv(c, buf, sizeof buf, 0) == -ECONNRESET);
  BOOST_TEST(n.tcp(1).connection_count() == 0u);
}

BOOST_AUTO_TEST_CASE(handles_are_shared_lowest_first_between_udp_and_tcp) {
  Net n;
  SocketApi& a = n.api(0);
  const int t0 = a.socket(AF_INET, SOCK_STREAM, 0);
  const int u1 = a.socket(AF_INET, SOCK_DGRAM, 0);
  const int t2 = a.socket(AF_INET6, SOCK_STREAM, 0);
  BOOST_TEST(t0 == 0);
  BOOST_TEST(u1 == 1);
  BOOST_TEST(t2 == 2);
  BOOST_TEST(a.close(t0) == 0);
  BOOST_TEST(a.socket(AF_INET, SOCK_DGRAM, 0) == 0);  // a UDP socket takes the TCP one's handle
  BOOST_TEST(a.close(u1) == 0);
  BOOST_TEST(a.socket(AF_INET, SOCK_STREAM, 0) == 1);
  BOOST_TEST(a.is_socket(2));
  BOOST_TEST(!a.is_socket(3));
}

BOOST_AUTO_TEST_CASE(an_interrupted_blocking_connect_goes_on_in_the_background) {
  Net n;
  n.listener(1, false, 7104);
  SocketApi& a = n.api(0);
  const int s = a.socket(AF_INET, SOCK_STREAM, 0);
  a.set_waiter([](Nanos) { return false; });  // a signal arrives at once
  Addr dst = addr_of(1, false, 7104);
  BOOST_TEST(a.connect(s, dst.sa(), dst.len) == -EINTR);
  BOOST_TEST(n.wait_events(0, s, POLLOUT));
  BOOST_TEST(n.state(0, s) == kLxEstablished);
  BOOST_TEST(a.connect(s, dst.sa(), dst.len) == 0);  // reports the completed connect once
  BOOST_TEST(a.connect(s, dst.sa(), dst.len) == -EISCONN);
}

BOOST_AUTO_TEST_SUITE_END()
