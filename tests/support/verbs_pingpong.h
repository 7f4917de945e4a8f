// Two stacks on two devices that reach each other: a UDP ping-pong and a TCP transfer each way,
// every byte checked. Used by tests/integration/verbs_pingpong.cc (two UD QPs on one rxe device
// in a qemu guest: rxe loops the traffic back) and by tests/unit/verbs_device.cc (the same over
// the fake verbs calls, in virtual time). Header-only; needs only the stack.
#pragma once
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "stack/core/clock.h"
#include "stack/net/stack.h"
#include "stack/socket/socket_api.h"

namespace shunt::test {

struct PingPongOptions {
  int udp_rounds = 200;
  size_t tcp_bytes = 1 << 20;  // each way
  Nanos limit = 60 * kSecond;  // for the whole run, on `clock`
  // Called once per loop turn after both stacks polled: a test advances its virtual clock here.
  std::function<void()> tick;
};

struct PingPongResult {
  bool ok = false;
  std::string what;  // one line: what passed, or what failed
  int udp_rounds = 0;
  size_t tcp_a_to_b = 0, tcp_b_to_a = 0;
  Nanos udp_time = 0, tcp_time = 0;
};

inline uint8_t pattern_byte(uint64_t seed, uint64_t i) {
  uint64_t x = (i + 1) * 0x9e3779b97f4a7c15ull ^ seed;
  x ^= x >> 29;
  return uint8_t(x * 0xbf58476d1ce4e5b9ull >> 56);
}

inline sockaddr_in sock4(Ipv4Addr a, uint16_t port) {
  sockaddr_in s{};
  s.sin_family = AF_INET;
  s.sin_port = htons(port);
  s.sin_addr.s_addr = htonl(a.v);
  return s;
}

// `a` is 10.77.0.1, `b` 10.77.0.2 (the caller added those addresses).
inline PingPongResult run_pingpong(Stack& a, Stack& b, Clock& clock, const PingPongOptions& o) {
  PingPongResult r;
  SocketApi sa(a), sb(b);
  const Ipv4Addr ip_a = a.ipv4_addresses().at(0).addr, ip_b = b.ipv4_addresses().at(0).addr;
  const Nanos end = clock.now() + o.limit;
  auto turn = [&] {
    a.poll();
    b.poll();
    if (o.tick) o.tick();
  };
  auto fail = [&](const std::string& why) {
    r.ok = false;
    r.what = "FAIL " + why;
    return r;
  };

  // --- UDP: a sends a datagram of a varying size, b echoes it, a checks every byte.
  int ua = sa.socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  int ub = sb.socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  sockaddr_in addr_a = sock4(ip_a, 7001), addr_b = sock4(ip_b, 7002);
  if (ua < 0 || ub < 0 || sa.bind(ua, reinterpret_cast<sockaddr*>(&addr_a), sizeof addr_a) < 0 ||
      sb.bind(ub, reinterpret_cast<sockaddr*>(&addr_b), sizeof addr_b) < 0)
    return fail("udp: socket/bind");
  const size_t max_udp = std::min<size_t>(a.mtu(), b.mtu()) - 28;
  std::vector<uint8_t> out(65536), in(65536);
  const Nanos udp_start = clock.now();
  for (int round = 0; round < o.udp_rounds; ++round) {
    const size_t len = 1 + size_t(round * 97) % max_udp;
    for (size_t i = 0; i < len; ++i) out[i] = pattern_byte(uint64_t(round), i);
    bool got = false;
    Nanos resend = 0;
    while (!got) {
      // The first datagrams wait for ARP (the stack queues a few); resend after a quiet second.
      if (clock.now() >= resend) {
        if (sa.sendto(ua, out.data(), len, 0, reinterpret_cast<sockaddr*>(&addr_b), sizeof addr_b) < 0)
          return fail("udp: sendto");
        resend = clock.now() + kSecond;
      }
      turn();
      ssize_t n = sb.recvfrom(ub, in.data(), in.size(), 0, nullptr, nullptr);
      if (n > 0 && sb.sendto(ub, in.data(), size_t(n), 0, reinterpret_cast<sockaddr*>(&addr_a), sizeof addr_a) < 0)
        return fail("udp: echo sendto");
      turn();
      for (;;) {
        n = sa.recvfrom(ua, in.data(), in.size(), 0, nullptr, nullptr);
        if (n < 0) break;
        if (size_t(n) == len && std::equal(out.begin(), out.begin() + ptrdiff_t(len), in.begin())) {
          got = true;
        } else if (round == 0 || size_t(n) != len) {
          // A late echo of an earlier resend has the earlier length; anything else is corrupt.
          bool earlier = false;
          for (int k = std::max(0, round - 3); k < round && !earlier; ++k) earlier = size_t(n) == 1 + size_t(k * 97) % max_udp;
          if (!earlier) return fail("udp: round " + std::to_string(round) + ": echo of " + std::to_string(n) + " bytes, sent " + std::to_string(len));
        } else {
          return fail("udp: round " + std::to_string(round) + ": echo differs from what was sent");
        }
      }
      if (clock.now() > end) return fail("udp: no echo in round " + std::to_string(round) + " before the time limit");
    }
    ++r.udp_rounds;
  }
  r.udp_time = clock.now() - udp_start;

  // --- TCP: a connects to b; both send tcp_bytes of their own pattern; each checks what it gets.
  int lb = sb.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  sockaddr_in tb = sock4(ip_b, 7003);
  if (lb < 0 || sb.bind(lb, reinterpret_cast<sockaddr*>(&tb), sizeof tb) < 0 || sb.listen(lb, 4) < 0)
    return fail("tcp: listen");
  int ca = sa.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int rc = sa.connect(ca, reinterpret_cast<sockaddr*>(&tb), sizeof tb);
  if (ca < 0 || (rc < 0 && rc != -EINPROGRESS)) return fail("tcp: connect " + std::to_string(rc));
  int cb = -1;
  const Nanos tcp_start = clock.now();
  size_t sent_a = 0, sent_b = 0, got_a = 0, got_b = 0;
  const size_t total = o.tcp_bytes;
  auto pump = [&](SocketApi& api, int s, size_t& sent, uint64_t seed) -> bool {
    while (sent < total) {
      const size_t chunk = std::min<size_t>(total - sent, 16384);
      for (size_t i = 0; i < chunk; ++i) out[i] = pattern_byte(seed, sent + i);
      ssize_t n = api.send(s, out.data(), chunk, MSG_NOSIGNAL);
      if (n == -EAGAIN) return true;
      if (n < 0) return false;
      sent += size_t(n);
    }
    return true;
  };
  auto drain = [&](SocketApi& api, int s, size_t& got, uint64_t seed, std::string& err) -> bool {
    for (;;) {
      ssize_t n = api.recv(s, in.data(), in.size(), 0);
      if (n == -EAGAIN) return true;
      if (n <= 0) {
        err = n == 0 ? "connection closed early" : "recv " + std::to_string(n);
        return false;
      }
      for (ssize_t i = 0; i < n; ++i) {
        if (in[size_t(i)] != pattern_byte(seed, got + size_t(i))) {
          err = "byte " + std::to_string(got + size_t(i)) + " differs";
          return false;
        }
      }
      got += size_t(n);
      if (got > total) {
        err = "more bytes than were sent";
        return false;
      }
    }
  };
  while (got_a < total || got_b < total) {
    turn();
    if (cb < 0) {
      cb = sb.accept(lb, nullptr, nullptr, SOCK_NONBLOCK);
      if (cb < 0 && cb != -EAGAIN) return fail("tcp: accept " + std::to_string(cb));
      if (cb < 0) cb = -1;
    }
    std::string err;
    if (sa.poll_events(ca) & POLLOUT) {
      if (!pump(sa, ca, sent_a, 0xa)) return fail("tcp: a send failed");
    }
    if (cb >= 0) {
      if (!pump(sb, cb, sent_b, 0xb)) return fail("tcp: b send failed");
      if (got_b < total && !drain(sb, cb, got_b, 0xa, err)) return fail("tcp: a->b: " + err);
    }
    if (got_a < total && (sa.poll_events(ca) & POLLIN) && !drain(sa, ca, got_a, 0xb, err))
      return fail("tcp: b->a: " + err);
    if (clock.now() > end)
      return fail("tcp: time limit with " + std::to_string(got_b) + "/" + std::to_string(total) + " bytes a->b, " +
                  std::to_string(got_a) + "/" + std::to_string(total) + " b->a");
  }
  r.tcp_time = clock.now() - tcp_start;
  r.tcp_a_to_b = got_b;
  r.tcp_b_to_a = got_a;
  sa.close(ca);
  if (cb >= 0) sb.close(cb);
  sb.close(lb);
  sa.close(ua);
  sb.close(ub);
  for (int i = 0; i < 100; ++i) turn();  // FINs out
  char line[256];
  std::snprintf(line, sizeof line, "ok: udp %d round trips (%.1f us each), tcp %zu bytes each way (%.1f Mbit/s)",
                r.udp_rounds, double(r.udp_time) / 1e3 / std::max(1, r.udp_rounds), total,
                r.tcp_time > 0 ? double(2 * total) * 8e3 / double(r.tcp_time) : 0.0);
  r.ok = true;
  r.what = line;
  return r;
}

}  // namespace shunt::test
