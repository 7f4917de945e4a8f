// Two stacks on the virtual-time harness link, talking through their socket APIs: address
// resolution on first send, blocking calls driven by a waiter, port unreachable coming back as
// ECONNREFUSED, large datagrams fragmented and reassembled, multicast and broadcast.
#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <poll.h>

#include <memory>
#include <string>

#include "stack/harness/harness.h"
#include "stack/net/stack.h"
#include "stack/socket/socket_api.h"

using namespace shunt;

namespace {

struct Addr {
  sockaddr_storage ss{};
  socklen_t len = 0;
  const sockaddr* sa() const { return reinterpret_cast<const sockaddr*>(&ss); }
  sockaddr* sa() { return reinterpret_cast<sockaddr*>(&ss); }
};

Addr v4(Ipv4Addr ip, uint16_t port) {
  Addr a;
  auto* s = reinterpret_cast<sockaddr_in*>(&a.ss);
  s->sin_family = AF_INET;
  s->sin_port = htons(port);
  s->sin_addr.s_addr = htonl(ip.v);
  a.len = sizeof(sockaddr_in);
  return a;
}
Addr v6(const Ipv6Addr& ip, uint16_t port) {
  Addr a;
  auto* s = reinterpret_cast<sockaddr_in6*>(&a.ss);
  s->sin6_family = AF_INET6;
  s->sin6_port = htons(port);
  ip.write(reinterpret_cast<uint8_t*>(&s->sin6_addr));
  a.len = sizeof(sockaddr_in6);
  return a;
}

std::string pattern(size_t n, uint8_t seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = char(uint8_t(i * 7 + seed + i / 251));
  return s;
}

// Two stacks (10.0.0.1 / fd00::1 and 10.0.0.2 / fd00::2), a socket API on each, and IPv6
// duplicate address detection already done.
struct Pair {
  Pair() {
    h.run_for(2 * kSecond);
    for (auto* api : {&a, &b}) {
      // Blocking calls run the harness until the socket may be ready, or the deadline.
      api->set_waiter([this](Nanos deadline) {
        ++waits;
        if (waits > 1000) return false;
        const Nanos limit = deadline == kNever ? h.now() + kSecond : deadline;
        h.run_until(limit < h.now() + 10 * kMilli ? limit : h.now() + 10 * kMilli);
        return true;
      });
    }
  }
  int sock(SocketApi& api, int domain, uint16_t port, int flags = 0) {
    int s = api.socket(domain, SOCK_DGRAM | flags, 0);
    if (port) {
      Addr any = domain == AF_INET ? v4(Ipv4Addr{}, port) : v6(Ipv6Addr{}, port);
      if (api.bind(s, any.sa(), any.len) != 0) return -1;
    }
    return s;
  }
  std::string recv(SocketApi& api, int s, size_t cap = 70000, ssize_t* n_out = nullptr) {
    std::string buf(cap, '\0');
    ssize_t n = api.recv(s, buf.data(), cap, 0);
    if (n_out) *n_out = n;
    if (n < 0) return "error " + std::to_string(n);
    buf.resize(size_t(n));
    return buf;
  }

  Harness h;
  SocketApi a{h.stack(0)};
  SocketApi b{h.stack(1)};
  int waits = 0;
};

}  // namespace

BOOST_AUTO_TEST_SUITE(udp_end_to_end)

BOOST_AUTO_TEST_CASE(ping_pong_over_ipv4_resolves_the_peer_and_echoes) {
  Pair p;
  int server = p.sock(p.b, AF_INET, 7);
  int client = p.sock(p.a, AF_INET, 0);
  Addr to = v4(Harness::ipv4_of(1), 7);
  BOOST_TEST(p.a.sendto(client, "ping", 4, 0, to.sa(), to.len) == 4);
  sockaddr_in from{};
  socklen_t fl = sizeof from;
  char buf[16];
  ssize_t n = p.b.recvfrom(server, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &fl);
  BOOST_REQUIRE(n == 4);
  BOOST_TEST(ntohl(from.sin_addr.s_addr) == Harness::ipv4_of(0).v);
  BOOST_TEST(p.b.sendto(server, "pong", 4, 0, reinterpret_cast<sockaddr*>(&from), fl) == 4);
  BOOST_TEST(p.recv(p.a, client) == "pong");
}

BOOST_AUTO_TEST_CASE(ping_pong_over_ipv6_with_connected_sockets) {
  Pair p;
  int server = p.sock(p.b, AF_INET6, 7);
  int client = p.sock(p.a, AF_INET6, 0);
  Addr to = v6(Harness::ipv6_of(1), 7);
  BOOST_TEST(p.a.connect(client, to.sa(), to.len) == 0);
  for (int i = 0; i < 5; ++i) {
    const std::string msg = "ping " + std::to_string(i);
    BOOST_TEST(p.a.send(client, msg.data(), msg.size(), 0) == ssize_t(msg.size()));
    sockaddr_in6 from{};
    socklen_t fl = sizeof from;
    char buf[32];
    ssize_t n = p.b.recvfrom(server, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &fl);
    BOOST_REQUIRE(n == ssize_t(msg.size()));
    BOOST_TEST(std::string(buf, size_t(n)) == msg);
    BOOST_TEST(p.b.sendto(server, buf, size_t(n), 0, reinterpret_cast<sockaddr*>(&from), fl) == n);
    BOOST_TEST(p.recv(p.a, client) == msg);
  }
}

BOOST_AUTO_TEST_CASE(blocking_recv_with_a_timeout_gives_up_in_virtual_time) {
  Pair p;
  int s = p.sock(p.b, AF_INET, 9);
  timeval tv{0, 300000};
  BOOST_TEST(p.b.setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0);
  const Nanos t0 = p.h.now();
  ssize_t n = 0;
  p.recv(p.b, s, 100, &n);
  BOOST_TEST(n == -EAGAIN);
  BOOST_TEST(p.h.now() == t0 + 300 * kMilli);
}

BOOST_AUTO_TEST_CASE(port_unreachable_from_the_peer_is_econnrefused) {
  Pair p;
  for (int domain : {AF_INET, AF_INET6}) {
    int s = p.sock(p.a, domain, 0);
    Addr to = domain == AF_INET ? v4(Harness::ipv4_of(1), 9999) : v6(Harness::ipv6_of(1), 9999);
    BOOST_TEST(p.a.connect(s, to.sa(), to.len) == 0);
    BOOST_TEST(p.a.send(s, "anyone?", 7, 0) == 7);
    ssize_t n = 0;
    p.recv(p.a, s, 100, &n);  // blocks until the ICMP error arrives
    BOOST_TEST(n == -ECONNREFUSED);
    BOOST_TEST((p.a.poll_events(s) & POLLERR) == 0u);
  }
  BOOST_TEST(p.h.stack(1).counters().get("udp.drop.no_port") == 2u);
}

BOOST_AUTO_TEST_CASE(large_datagrams_are_fragmented_and_reassembled) {
  Pair p;
  for (int domain : {AF_INET, AF_INET6}) {
    int server = p.sock(p.b, domain, 4000);
    int client = p.sock(p.a, domain, 0);
    Addr to = domain == AF_INET ? v4(Harness::ipv4_of(1), 4000) : v6(Harness::ipv6_of(1), 4000);
    const size_t max = domain == AF_INET ? 65507 : 65527;
    for (size_t len : {size_t(1473), size_t(3000), size_t(20000), max}) {
      const std::string data = pattern(len, uint8_t(len));
      BOOST_TEST(p.a.sendto(client, data.data(), data.size(), 0, to.sa(), to.len) == ssize_t(len));
      const std::string got = p.recv(p.b, server);
      BOOST_TEST(got.size() == len);
      BOOST_TEST((got == data));
    }
    p.a.close(client);
    p.b.close(server);
  }
}

BOOST_AUTO_TEST_CASE(multicast_reaches_members_across_the_link_only) {
  Pair p;
  int member = p.sock(p.b, AF_INET, 5353, SOCK_NONBLOCK);
  ip_mreq m{};
  inet_pton(AF_INET, "239.10.0.1", &m.imr_multiaddr);
  BOOST_TEST(p.b.setsockopt(member, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof m) == 0);
  int sender = p.sock(p.a, AF_INET, 0);
  Addr joined = v4(*Ipv4Addr::parse("239.10.0.1"), 5353), other = v4(*Ipv4Addr::parse("239.10.0.2"), 5353);
  BOOST_TEST(p.a.sendto(sender, "joined", 6, 0, joined.sa(), joined.len) == 6);
  BOOST_TEST(p.a.sendto(sender, "other", 5, 0, other.sa(), other.len) == 5);
  p.h.run_for(10 * kMilli);
  BOOST_TEST(p.recv(p.b, member) == "joined");
  ssize_t n = 0;
  p.recv(p.b, member, 100, &n);
  BOOST_TEST(n == -EAGAIN);
  // After leaving, the group no longer arrives.
  BOOST_TEST(p.b.setsockopt(member, IPPROTO_IP, IP_DROP_MEMBERSHIP, &m, sizeof m) == 0);
  BOOST_TEST(p.a.sendto(sender, "joined", 6, 0, joined.sa(), joined.len) == 6);
  p.h.run_for(10 * kMilli);
  p.recv(p.b, member, 100, &n);
  BOOST_TEST(n == -EAGAIN);
}

BOOST_AUTO_TEST_CASE(ipv6_multicast_reaches_members_across_the_link) {
  Pair p;
  int member = p.sock(p.b, AF_INET6, 5353, SOCK_NONBLOCK);
  ipv6_mreq m{};
  inet_pton(AF_INET6, "ff05::fb", &m.ipv6mr_multiaddr);
  BOOST_TEST(p.b.setsockopt(member, IPPROTO_IPV6, IPV6_JOIN_GROUP, &m, sizeof m) == 0);
  int sender = p.sock(p.a, AF_INET6, 0);
  Addr group = v6(*Ipv6Addr::parse("ff05::fb"), 5353);
  BOOST_TEST(p.a.sendto(sender, "six", 3, 0, group.sa(), group.len) == 3);
  p.h.run_for(10 * kMilli);
  BOOST_TEST(p.recv(p.b, member) == "six");
}

BOOST_AUTO_TEST_CASE(broadcast_reaches_the_other_stack) {
  Pair p;
  int listener = p.sock(p.b, AF_INET, 6767, SOCK_NONBLOCK);
  int sender = p.sock(p.a, AF_INET, 0);
  int on = 1;
  p.a.setsockopt(sender, SOL_SOCKET, SO_BROADCAST, &on, sizeof on);
  Addr all = v4(Ipv4Addr{0xffffffffu}, 6767);
  BOOST_TEST(p.a.sendto(sender, "hello all", 9, 0, all.sa(), all.len) == 9);
  p.h.run_for(10 * kMilli);
  BOOST_TEST(p.recv(p.b, listener) == "hello all");
}

BOOST_AUTO_TEST_SUITE_END()
