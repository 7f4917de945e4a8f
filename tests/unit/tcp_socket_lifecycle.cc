// The open/close matrix through the socket API, on two stacks in virtual time: blocking and
// non-blocking connect and accept, close by either side first, simultaneous close, half-close
// with data still flowing the other way, RST (zero linger, unread data) seen as ECONNRESET,
// refused and timed-out connects, SO_LINGER waits, blocking send/recv/MSG_WAITALL through the
// waiter, TIME_WAIT, keepalive and user-timeout expiry.
#include <boost/test/unit_test.hpp>

#include "stack/harness/tcp_bulk.h"
#include "tcp_socket_support.h"

using namespace shunt;
using namespace shunt::tcptest;

namespace {

LinkConfig link_with_delay(Nanos d) {
  LinkConfig l;
  l.delay = d;
  return l;
}

std::string pattern(size_t n, uint64_t seed) {
  std::string s(n, '\0');
  tcp_bulk_pattern(seed, 0, reinterpret_cast<uint8_t*>(s.data()), n);
  return s;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(tcp_socket_lifecycle)

BOOST_AUTO_TEST_CASE(blocking_connect_accept_and_echo_over_both_families) {
  for (bool ipv6 : {false, true}) {
    Net n;
    const int l = n.listener(1, ipv6, 8000, 16, 0);  // a blocking listener
    BOOST_REQUIRE(l >= 0);
    SocketApi& a = n.api(0);
    SocketApi& b = n.api(1);
    const int c = a.socket(domain_of(ipv6), SOCK_STREAM, 0);
    Addr dst = addr_of(1, ipv6, 8000);
    BOOST_TEST(a.connect(c, dst.sa(), dst.len) == 0);  // waits for the handshake
    BOOST_TEST(n.state(0, c) == kLxEstablished);
    const int s = b.accept(l, nullptr, nullptr, 0);  // queued already
    BOOST_REQUIRE(s >= 0);
    BOOST_TEST(a.send(c, "hello", 5, 0) == 5);
    char buf[16] = {};
    BOOST_TEST(b.recv(s, buf, sizeof buf, 0) == 5);  // blocks until it arrives
    BOOST_TEST(std::string(buf, 5) == "hello");
    BOOST_TEST(b.send(s, "world!", 6, 0) == 6);
    BOOST_TEST(a.recv(c, buf, sizeof buf, 0) == 6);
    BOOST_TEST(std::string(buf, 6) == "world!");
    // A blocking accept with nothing pending waits for the next client.
    const int c2 = n.start_connect(0, 1, ipv6, 8000);
    BOOST_REQUIRE(c2 >= 0);
    BOOST_TEST(b.accept(l, nullptr, nullptr, 0) >= 0);
  }
}

BOOST_AUTO_TEST_CASE(client_closes_first_and_holds_time_wait_until_it_expires) {
  Net n;
  Net::Conn c = n.connect_pair(0, 1, false, 8001);
  BOOST_REQUIRE(c.ok());
  BOOST_TEST(n.send_str(0, c.client, "bye") == 3);
  BOOST_TEST(n.api(0).close(c.client) == 0);
  ssize_t last = 1;
  BOOST_REQUIRE(n.run_until([&] {
    n.drain(1, c.server, &last);
    return last == 0;
  }));
  BOOST_TEST(n.state(1, c.server) == kLxCloseWait);
  BOOST_TEST(n.api(1).close(c.server) == 0);
  n.h.run_for(kSecond);
  // The side that closed first waits in TIME_WAIT (RFC 9293 3.6); the other is gone.
  BOOST_TEST(n.tcp(0).count_in_state(TcpState::kTimeWait) == 1u);
  BOOST_TEST(n.tcp(1).count_in_state(TcpState::kTimeWait) == 0u);
  BOOST_TEST(n.tcp(1).connection_count() == 0u);
  n.h.run_for(50 * kSecond);  // 2MSL is 60 s by default
  BOOST_TEST(n.tcp(0).count_in_state(TcpState::kTimeWait) == 1u);
  n.h.run_for(15 * kSecond);
  BOOST_TEST(n.tcp(0).count_in_state(TcpState::kTimeWait) == 0u);
  BOOST_TEST(n.tcp(0).connection_count() == 0u);
}

BOOST_AUTO_TEST_CASE(server_closes_first_and_time_wait_follows_the_configured_length) {
  Config cfg = tcp_config();
  cfg.tcp_time_wait_ms = 5000;
  Net n(net_options(2, LinkConfig{}, cfg));
  Net::Conn c = n.connect_pair(0, 1, true, 8002);
  BOOST_REQUIRE(c.ok());
  BOOST_TEST(n.api(1).close(c.server) == 0);
  BOOST_REQUIRE(n.wait_events(0, c.client, POLLRDHUP));
  char buf[4];
  BOOST_TEST(n.api(0).recv(c.client, buf, sizeof buf, 0) == 0);
  BOOST_TEST(n.api(0).close(c.client) == 0);
  n.h.run_for(kSecond);
  BOOST_TEST(n.tcp(1).count_in_state(TcpState::kTimeWait) == 1u);
  BOOST_TEST(n.tcp(0).connection_count() == 0u);
  n.h.run_for(5 * kSecond);
  BOOST_TEST(n.tcp(1).count_in_state(TcpState::kTimeWait) == 0u);
}

BOOST_AUTO_TEST_CASE(simultaneous_close_passes_closing_into_time_wait_on_both_sides) {
  Net n(net_options(2, link_with_delay(5 * kMilli)));
  Net::Conn c = n.connect_pair(0, 1, false, 8003);
  BOOST_REQUIRE(c.ok());
  n.h.run_for(kSecond);  // quiet: no ACK in flight
  // Both FINs cross on the wire.
  BOOST_TEST(n.api(0).shutdown(c.client, SHUT_WR) == 0);
  BOOST_TEST(n.api(1).shutdown(c.server, SHUT_WR) == 0);
  BOOST_TEST(n.state(0, c.client) == kLxFinWait1);
  BOOST_TEST(n.state(1, c.server) == kLxFinWait1);
  n.h.run_for(7 * kMilli);  // the peer's FIN arrived, our FIN's ACK not yet
  BOOST_TEST(n.state(0, c.client) == kLxClosing);
  BOOST_TEST(n.state(1, c.server) == kLxClosing);
  n.h.run_for(kSecond);
  BOOST_TEST(n.state(0, c.client) == kLxTimeWait);
  BOOST_TEST(n.state(1, c.server) == kLxTimeWait);
  char buf[4];
  BOOST_TEST(n.api(0).recv(c.client, buf, sizeof buf, 0) == 0);
  BOOST_TEST(n.api(1).recv(c.server, buf, sizeof buf, 0) == 0);
  n.api(0).close(c.client);
  n.api(1).close(c.server);
  BOOST_TEST(n.tcp(0).count_in_state(TcpState::kTimeWait) == 1u);
  BOOST_TEST(n.tcp(1).count_in_state(TcpState::kTimeWait) == 1u);
}

BOOST_AUTO_TEST_CASE(half_close_lets_the_other_direction_keep_flowing) {
  Net n(net_options(2, link_with_delay(100 * kMicro)));
  Net::Conn c = n.connect_pair(0, 1, false, 8004);
  BOOST_REQUIRE(c.ok());
  BOOST_TEST(n.send_str(0, c.client, "request") == 7);
  BOOST_TEST(n.api(0).shutdown(c.client, SHUT_WR) == 0);
  std::string got;
  ssize_t last = 1;
  BOOST_REQUIRE(n.run_until([&] {
    got += n.drain(1, c.server, &last);
    return last == 0;
  }));
  BOOST_TEST(got == "request");
  // The server answers with 1 MB on its still-open half, then closes.
  const std::string reply = pattern(1 << 20, 42);
  size_t sent = 0;
  std::string back;
  last = 1;
  BOOST_REQUIRE(n.run_until([&] {
    while (sent < reply.size()) {
      const ssize_t w = n.api(1).send(c.server, reply.data() + sent, reply.size() - sent, MSG_NOSIGNAL);
      if (w <= 0) break;
      sent += size_t(w);
    }
    if (sent == reply.size() && n.state(1, c.server) == kLxCloseWait) n.api(1).shutdown(c.server, SHUT_WR);
    back += n.drain(0, c.client, &last);
    return last == 0;
  }, 120 * kSecond));
  BOOST_TEST(back.size() == reply.size());
  BOOST_TEST((back == reply));
  BOOST_TEST(n.api(0).send(c.client, "x", 1, MSG_NOSIGNAL) == -EPIPE);
}

BOOST_AUTO_TEST_CASE(zero_linger_close_resets_and_the_peer_sees_econnreset) {
  for (bool ipv6 : {false, true}) {
    Net n;
    Net::Conn c = n.connect_pair(0, 1, ipv6, 8005);
    BOOST_REQUIRE(c.ok());
    BOOST_TEST(n.linger(1, c.server, 1, 0) == 0);
    BOOST_TEST(n.api(1).close(c.server) == 0);
    BOOST_REQUIRE(n.wait_events(0, c.client, POLLERR));
    BOOST_TEST((n.api(0).poll_events(c.client) & (POLLIN | POLLERR | POLLHUP)) == uint32_t(POLLIN | POLLERR | POLLHUP));
    char buf[4];
    BOOST_TEST(n.api(0).recv(c.client, buf, sizeof buf, 0) == -ECONNRESET);
    BOOST_TEST(n.api(0).recv(c.client, buf, sizeof buf, 0) == 0);  // the error is taken once
    BOOST_TEST(n.api(0).send(c.client, "x", 1, MSG_NOSIGNAL) == -EPIPE);
    // An abort leaves no TIME_WAIT behind.
    BOOST_TEST(n.tcp(1).connection_count() == 0u);
    BOOST_TEST(n.tcp(1).count_in_state(TcpState::kTimeWait) == 0u);
  }
}

BOOST_AUTO_TEST_CASE(a_blocked_reader_wakes_with_econnreset) {
  Net n;
  Net::Conn c = n.connect_pair(0, 1, false, 8006);
  BOOST_REQUIRE(c.ok());
  n.api(0).set_nonblocking(c.client, false);
  n.linger(1, c.server, 1, 0);
  // The reset happens while the client is blocked in recv: close the server from the waiter.
  bool closed = false;
  n.api(0).set_waiter([&](Nanos deadline) {
    if (!closed) {
      n.api(1).close(c.server);
      closed = true;
    }
    n.h.run_until(std::min(deadline, n.h.now() + kSecond));
    return n.h.now() < 100 * kSecond;
  });
  char buf[4];
  BOOST_TEST(n.api(0).recv(c.client, buf, sizeof buf, 0) == -ECONNRESET);
}

BOOST_AUTO_TEST_CASE(close_with_unread_data_resets_the_connection) {
  Net n;
  Net::Conn c = n.connect_pair(0, 1, false, 8007);
  BOOST_REQUIRE(c.ok());
  n.send_str(0, c.client, "never read");
  BOOST_REQUIRE(n.run_until([&] { return n.fionread(1, c.server) == 10; }));
  BOOST_TEST(n.api(1).close(c.server) == 0);  // RFC 2525 2.17: RST, not FIN
  BOOST_REQUIRE(n.wait_events(0, c.client, POLLERR));
  char buf[4];
  BOOST_TEST(n.api(0).recv(c.client, buf, sizeof buf, 0) == -ECONNRESET);
}

BOOST_AUTO_TEST_CASE(connect_to_a_closed_port_is_refused) {
  for (bool ipv6 : {false, true}) {
    Net n;
    SocketApi& a = n.api(0);
    // Blocking.
    const int s = a.socket(domain_of(ipv6), SOCK_STREAM, 0);
    Addr dst = addr_of(1, ipv6, 8008);
    BOOST_TEST(a.connect(s, dst.sa(), dst.len) == -ECONNREFUSED);
    BOOST_TEST(n.so_error(0, s) == 0);  // reported by connect, not left pending
    // Non-blocking: the error comes through poll and SO_ERROR, once.
    const int t = n.start_connect(0, 1, ipv6, 8008);
    BOOST_REQUIRE(t >= 0);
    BOOST_REQUIRE(n.wait_events(0, t, POLLERR));
    BOOST_TEST((a.poll_events(t) & (POLLERR | POLLHUP)) == uint32_t(POLLERR | POLLHUP));
    BOOST_TEST(n.so_error(0, t) == ECONNREFUSED);
    BOOST_TEST(n.so_error(0, t) == 0);
    BOOST_TEST(a.connect(t, dst.sa(), dst.len) == -ECONNABORTED);  // taken already (Linux)
    // Non-blocking, then connect() again: it reports the refusal itself.
    const int u = n.start_connect(0, 1, ipv6, 8008);
    BOOST_REQUIRE(n.wait_events(0, u, POLLERR));
    BOOST_TEST(a.connect(u, dst.sa(), dst.len) == -ECONNREFUSED);
  }
}

BOOST_AUTO_TEST_CASE(connect_to_a_silent_peer_times_out) {
  Net n;
  // Resolve the neighbour first, then cut the link: only the SYNs go unanswered.
  Net::Conn first = n.connect_pair(0, 1, false, 8009);
  BOOST_REQUIRE(first.ok());
  n.h.link().set_loss(1.0);
  SocketApi& a = n.api(0);
  const int s = a.socket(AF_INET, SOCK_STREAM, 0);
  BOOST_TEST(n.set_int(0, s, IPPROTO_TCP, TCP_SYNCNT, 2) == 0);
  Addr dst = addr_of(1, false, 8009);
  const Nanos t0 = n.h.now();
  BOOST_TEST(a.connect(s, dst.sa(), dst.len) == -ETIMEDOUT);
  // Three SYNs, 1 + 2 + 4 s apart with the default initial RTO: at least 7 s.
  BOOST_TEST(n.h.now() - t0 >= 6 * kSecond);
  BOOST_TEST(n.h.now() - t0 <= 30 * kSecond);
  // Non-blocking: ETIMEDOUT through SO_ERROR.
  const int t = a.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  n.set_int(0, t, IPPROTO_TCP, TCP_SYNCNT, 1);
  BOOST_TEST(a.connect(t, dst.sa(), dst.len) == -EINPROGRESS);
  BOOST_REQUIRE(n.wait_events(0, t, POLLERR, 60 * kSecond));
  BOOST_TEST(n.so_error(0, t) == ETIMEDOUT);
  // SO_SNDTIMEO bounds a blocking connect, which then says it is still in progress.
  const int u = a.socket(AF_INET, SOCK_STREAM, 0);
  timeval tv{0, 500000};
  a.setsockopt(u, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  const Nanos t1 = n.h.now();
  BOOST_TEST(a.connect(u, dst.sa(), dst.len) == -EINPROGRESS);
  BOOST_TEST(n.h.now() - t1 >= 500 * kMilli);
  BOOST_TEST(n.h.now() - t1 < kSecond);
}

BOOST_AUTO_TEST_CASE(connect_to_an_absent_neighbour_fails_with_ehostunreach) {
  // Nobody answers ARP/NDP for 10.0.0.9 / fd00::9. Address resolution fails after its retries
  // and the packets waiting for it are answered with a host/address unreachable (RFC 1122
  // 2.3.2.2, RFC 4861 7.2.2), which fails the connect at once with EHOSTUNREACH, as Linux
  // does ("No route to host" after about 3 s) -- not ETIMEDOUT after every SYN retry.
  for (bool ipv6 : {false, true}) {
    Net n;
    SocketApi& a = n.api(0);
    const int s = a.socket(domain_of(ipv6), SOCK_STREAM, 0);
    Addr dst = addr_of(8, ipv6, 80);
    const Nanos t0 = n.h.now();
    BOOST_TEST(a.connect(s, dst.sa(), dst.len) == -EHOSTUNREACH, (ipv6 ? "IPv6" : "IPv4"));
    BOOST_TEST(n.h.now() - t0 < 10 * kSecond);
  }
}

BOOST_AUTO_TEST_CASE(recv_timeout_and_msg_waitall) {
  Net n(net_options(2, link_with_delay(kMilli)));
  Net::Conn c = n.connect_pair(0, 1, false, 8010);
  BOOST_REQUIRE(c.ok());
  SocketApi& b = n.api(1);
  b.set_nonblocking(c.server, false);
  timeval tv{1, 0};
  b.setsockopt(c.server, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char buf[64];
  const Nanos t0 = n.h.now();
  BOOST_TEST(b.recv(c.server, buf, sizeof buf, 0) == -EAGAIN);
  BOOST_TEST(n.h.now() - t0 >= kSecond);
  // MSG_WAITALL collects pieces sent 10 ms apart.
  tv = timeval{0, 0};
  b.setsockopt(c.server, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  int pieces = 0;
  b.set_waiter([&](Nanos deadline) {
    if (pieces < 8) {
      n.send_str(0, c.client, "abcdefgh");
      ++pieces;
    }
    n.h.run_until(std::min(deadline, n.h.now() + 10 * kMilli));
    return n.h.now() < 100 * kSecond;
  });
  BOOST_TEST(b.recv(c.server, buf, 64, MSG_WAITALL) == 64);
  BOOST_TEST(pieces == 8);
  BOOST_TEST(std::string(buf, 8) == "abcdefgh");
  // MSG_WAITALL stops short at EOF with what it has.
  n.send_str(0, c.client, "tail");
  n.api(0).shutdown(c.client, SHUT_WR);
  pieces = 8;
  BOOST_TEST(b.recv(c.server, buf, 64, MSG_WAITALL) == 4);
  BOOST_TEST(b.recv(c.server, buf, 64, MSG_WAITALL) == 0);
}

BOOST_AUTO_TEST_CASE(blocking_send_queues_everything_and_nonblocking_send_is_partial) {
  Net n(net_options(2, link_with_delay(kMilli)));
  Net::Conn c = n.connect_pair(0, 1, false, 8011);
  BOOST_REQUIRE(c.ok());
  SocketApi& a = n.api(0);
  n.set_int(0, c.client, SOL_SOCKET, SO_SNDBUF, 32 * 1024);
  n.set_int(1, c.server, SOL_SOCKET, SO_RCVBUF, 32 * 1024);
  const std::string big = pattern(1 << 20, 7);
  // Non-blocking: takes what fits, then EAGAIN, and POLLOUT is gone.
  const ssize_t w = a.send(c.client, big.data(), big.size(), MSG_NOSIGNAL);
  BOOST_TEST(w > 0);
  BOOST_TEST(w < ssize_t(big.size()));
  n.h.run_for(100 * kMilli);  // the peer's window fills: it is not reading
  ssize_t more;
  size_t sent = size_t(w);
  while ((more = a.send(c.client, big.data() + sent, big.size() - sent, MSG_NOSIGNAL)) > 0) sent += size_t(more);
  BOOST_TEST(more == -EAGAIN);
  BOOST_TEST(!(a.poll_events(c.client) & POLLOUT));
  // Blocking: the reader drains from inside the waiter; send returns once all is queued.
  a.set_nonblocking(c.client, false);
  std::string got;
  a.set_waiter([&](Nanos deadline) {
    got += n.drain(1, c.server);
    n.h.run_until(std::min(deadline, n.h.now() + 10 * kMilli));
    return n.h.now() < 1000 * kSecond;
  });
  BOOST_TEST(a.send(c.client, big.data() + sent, big.size() - sent, MSG_NOSIGNAL) == ssize_t(big.size() - sent));
  a.shutdown(c.client, SHUT_WR);
  ssize_t last = 1;
  BOOST_REQUIRE(n.run_until([&] {
    got += n.drain(1, c.server, &last);
    return last == 0;
  }));
  BOOST_TEST(got.size() == big.size());
  BOOST_TEST((got == big));
}

BOOST_AUTO_TEST_CASE(send_timeout_returns_what_was_queued) {
  Net n;
  Net::Conn c = n.connect_pair(0, 1, false, 8012);
  BOOST_REQUIRE(c.ok());
  SocketApi& a = n.api(0);
  n.set_int(0, c.client, SOL_SOCKET, SO_SNDBUF, 16 * 1024);
  n.set_int(1, c.server, SOL_SOCKET, SO_RCVBUF, 16 * 1024);
  a.set_nonblocking(c.client, false);
  timeval tv{0, 200000};
  a.setsockopt(c.client, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  const std::string big = pattern(1 << 20, 8);
  const ssize_t w = a.send(c.client, big.data(), big.size(), MSG_NOSIGNAL);
  BOOST_TEST(w > 0);
  BOOST_TEST(w < ssize_t(big.size()));
}

BOOST_AUTO_TEST_CASE(linger_close_waits_for_the_fin_to_be_acknowledged) {
  Net n(net_options(2, link_with_delay(50 * kMilli)));
  Net::Conn c = n.connect_pair(0, 1, false, 8013);
  BOOST_REQUIRE(c.ok());
  SocketApi& a = n.api(0);
  a.set_nonblocking(c.client, false);
  BOOST_TEST(n.linger(0, c.client, 1, 10) == 0);
  const std::string data = pattern(100000, 9);
  BOOST_TEST(a.send(c.client, data.data(), data.size(), MSG_NOSIGNAL) == ssize_t(data.size()));
  const Nanos t0 = n.h.now();
  BOOST_TEST(a.close(c.client) == 0);
  BOOST_TEST(n.h.now() - t0 >= 100 * kMilli);  // at least one round trip
  BOOST_TEST(n.h.now() - t0 < 10 * kSecond);
  // When close returned, every byte and the FIN had been acknowledged: the peer has them.
  BOOST_TEST(n.fionread(1, c.server) == int(data.size()));
  BOOST_TEST(n.state(1, c.server) == kLxCloseWait);
  BOOST_TEST(n.tcp(0).count_in_state(TcpState::kFinWait2) == 1u);
}

BOOST_AUTO_TEST_CASE(linger_close_gives_up_after_the_linger_time) {
  Net n;
  Net::Conn c = n.connect_pair(0, 1, false, 8014);
  BOOST_REQUIRE(c.ok());
  SocketApi& a = n.api(0);
  a.set_nonblocking(c.client, false);
  BOOST_TEST(n.linger(0, c.client, 1, 2) == 0);
  n.h.link().set_loss(1.0);
  BOOST_TEST(n.send_str(0, c.client, "lost") == 4);
  const Nanos t0 = n.h.now();
  BOOST_TEST(a.close(c.client) == 0);
  BOOST_TEST(n.h.now() - t0 >= 2 * kSecond);
  BOOST_TEST(n.h.now() - t0 < 3 * kSecond);
  // A non-blocking socket never waits.
  n.h.link().set_loss(0);
  Net::Conn d = n.connect_pair(0, 1, false, 8015);
  BOOST_REQUIRE(d.ok());
  n.linger(0, d.client, 1, 5);
  n.h.link().set_loss(1.0);
  n.send_str(0, d.client, "lost");
  const Nanos t1 = n.h.now();
  BOOST_TEST(a.close(d.client) == 0);
  BOOST_TEST(n.h.now() == t1);
}

BOOST_AUTO_TEST_CASE(keepalive_drops_a_vanished_peer_with_etimedout) {
  for (bool ipv6 : {false, true}) {
    Net n;
    Net::Conn c = n.connect_pair(0, 1, ipv6, 8016);
    BOOST_REQUIRE(c.ok());
    SocketApi& a = n.api(0);
    BOOST_TEST(n.set_int(0, c.client, SOL_SOCKET, SO_KEEPALIVE, 1) == 0);
    BOOST_TEST(n.set_int(0, c.client, IPPROTO_TCP, TCP_KEEPIDLE, 10) == 0);
    BOOST_TEST(n.set_int(0, c.client, IPPROTO_TCP, TCP_KEEPINTVL, 2) == 0);
    BOOST_TEST(n.set_int(0, c.client, IPPROTO_TCP, TCP_KEEPCNT, 3) == 0);
    // While the peer answers, probes keep an idle connection alive.
    n.h.run_for(100 * kSecond);
    BOOST_TEST(n.state(0, c.client) == kLxEstablished);
    BOOST_TEST(!(a.poll_events(c.client) & POLLERR));
    // The peer vanishes; a blocked reader learns it once the idle time since the last answer
    // and three unanswered probes 2 s apart have passed: 6 to 16 s from the cut.
    n.h.link().set_loss(1.0);
    a.set_nonblocking(c.client, false);
    const Nanos t0 = n.h.now();
    char buf[4];
    BOOST_TEST(a.recv(c.client, buf, sizeof buf, 0) == -ETIMEDOUT);
    BOOST_TEST(n.h.now() - t0 >= 6 * kSecond);
    BOOST_TEST(n.h.now() - t0 <= 17 * kSecond);
    BOOST_TEST(n.state(0, c.client) == kLxClose);
  }
}

BOOST_AUTO_TEST_CASE(user_timeout_bounds_unacknowledged_data) {
  Net n;
  Net::Conn c = n.connect_pair(0, 1, false, 8017);
  BOOST_REQUIRE(c.ok());
  BOOST_TEST(n.set_int(0, c.client, IPPROTO_TCP, TCP_USER_TIMEOUT, 5000) == 0);
  n.h.link().set_loss(1.0);
  BOOST_TEST(n.send_str(0, c.client, "into the void") == 13);
  const Nanos t0 = n.h.now();
  BOOST_REQUIRE(n.wait_events(0, c.client, POLLERR, 120 * kSecond));
  BOOST_TEST(n.h.now() - t0 >= 5 * kSecond);
  BOOST_TEST(n.h.now() - t0 <= 15 * kSecond);
  BOOST_TEST(n.so_error(0, c.client) == ETIMEDOUT);
}

BOOST_AUTO_TEST_CASE(accept_timeout_and_many_connections_through_one_listener) {
  Net n;
  const int l = n.listener(1, true, 8018, 64, 0);  // dual-stack: IPv4 clients arrive v4-mapped
  SocketApi& b = n.api(1);
  timeval tv{0, 300000};
  b.setsockopt(l, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  const Nanos t0 = n.h.now();
  BOOST_TEST(b.accept(l, nullptr, nullptr, 0) == -EAGAIN);
  BOOST_TEST(n.h.now() - t0 >= 300 * kMilli);
  // 25 SYNs per family at once: the neighbour caches hold 16 packets each while resolving, so
  // some SYNs are lost there and come again after the initial RTO (1 s).
  std::vector<int> clients;
  for (int i = 0; i < 50; ++i) clients.push_back(n.start_connect(0, 1, i % 2 == 1, 8018));
  tv = timeval{5, 0};
  b.setsockopt(l, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::vector<int> servers;
  for (int i = 0; i < 50; ++i) {
    const int s = b.accept(l, nullptr, nullptr, SOCK_NONBLOCK);
    if (s < 0) break;
    servers.push_back(s);
  }
  BOOST_TEST(servers.size() == 50u);
  n.h.run_for(kSecond);
  for (int i = 0; i < 50; ++i) {
    BOOST_TEST(n.send_str(0, clients[size_t(i)], std::to_string(i)) > 0);
  }
  n.h.run_for(kSecond);
  size_t total = 0;
  for (int s : servers) total += n.drain(1, s).size();
  BOOST_TEST(total == 90u);  // "0".."49"
}

BOOST_AUTO_TEST_SUITE_END()
