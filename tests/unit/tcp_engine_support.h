// Helpers for the TCP engine tests: two stacks on the harness driven through Tcp directly, and
// a TestDevice-based rig to hand-craft segments against one stack.
#pragma once
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/uio.h>

#include <boost/test/unit_test.hpp>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "stack/core/random.h"
#include "stack/harness/harness.h"
#include "stack/net/checksum.h"
#include "stack/net/ethernet.h"
#include "stack/net/ipv4_wire.h"
#include "stack/net/stack.h"
#include "stack/net/tcp/seq.h"
#include "stack/net/tcp/tcp.h"
#include "stack/net/tcp/tcp_wire.h"
#include "support/test_device.h"

namespace shunt::test {

// Counts readiness calls.
struct Readiness : TcpSocketObserver {
  int calls = 0;
  void on_tcp_readiness(TcpSocket&) override { ++calls; }
};

inline std::vector<uint8_t> pattern(size_t n, uint64_t seed) {
  std::vector<uint8_t> v(n);
  Random r(seed);
  for (size_t i = 0; i < n; i += 8) {
    uint64_t x = r.next();
    for (size_t k = 0; k < 8 && i + k < n; ++k) v[i + k] = uint8_t(x >> (8 * k));
  }
  return v;
}

inline ssize_t tsend(Tcp& t, TcpSocket& s, const void* p, size_t n, int flags = 0) {
  iovec v{const_cast<void*>(p), n};
  return t.send(s, &v, 1, flags);
}
inline ssize_t trecv(Tcp& t, TcpSocket& s, void* p, size_t n, int flags = 0) {
  iovec v{p, n};
  return t.recv(s, &v, 1, flags);
}

// Two stacks (0 = client 10.0.0.1, 1 = server 10.0.0.2) on one harness link.
struct TcpPair {
  explicit TcpPair(LinkConfig link = LinkConfig{}, Config cfg = Config{}) {
    HarnessOptions o;
    o.link = link;
    o.config = cfg;
    o.config.dad_transmits = 0;
    h = std::make_unique<Harness>(o);
  }
  Tcp& a() { return h->stack(0).tcp(); }
  Tcp& b() { return h->stack(1).tcp(); }
  Stack& sa() { return h->stack(0); }
  Stack& sb() { return h->stack(1); }
  IpAddr addr(size_t i, bool v6 = false) {
    return v6 ? IpAddr(Harness::ipv6_of(i)) : IpAddr(Harness::ipv4_of(i));
  }
  bool run(const std::function<bool()>& done, Nanos timeout = 10 * kSecond) { return h->run_until(done, timeout); }

  TcpSocket* listener = nullptr;
  // Listens on b:port, connects from a, accepts. Returns {client, server}.
  std::pair<TcpSocket*, TcpSocket*> connect(uint16_t port = 5000, bool v6 = false, int backlog = 16) {
    Family f = v6 ? Family::kV6 : Family::kV4;
    if (!listener) {
      listener = b().open(f);
      BOOST_REQUIRE(listener);
      BOOST_REQUIRE_EQUAL(b().bind(*listener, v6 ? IpAddr(Ipv6Addr{}) : IpAddr(Ipv4Addr{}), port), 0);
      BOOST_REQUIRE_EQUAL(b().listen(*listener, backlog), 0);
    }
    TcpSocket* c = a().open(f);
    BOOST_REQUIRE(c);
    BOOST_REQUIRE_EQUAL(a().connect(*c, addr(1, v6), port), -EINPROGRESS);
    TcpSocket* s = nullptr;
    BOOST_REQUIRE(run([&] {
      if (!s) {
        int err = 0;
        s = b().accept(*listener, &err);
      }
      return s && a().state(*c) == TcpState::kEstablished;
    }));
    return {c, s};
  }

  // Moves `data` from (tx on ta) to (rx on tb) through the windows; returns what arrived.
  std::vector<uint8_t> transfer(Tcp& ta, TcpSocket& tx, Tcp& tb, TcpSocket& rx, const std::vector<uint8_t>& data,
                                Nanos timeout = 60 * kSecond, bool close_after = false) {
    std::vector<uint8_t> got;
    got.reserve(data.size());
    size_t sent = 0;
    bool closed = false;
    std::vector<uint8_t> buf(65536);
    run([&] {
      while (sent < data.size()) {
        ssize_t n = tsend(ta, tx, data.data() + sent, data.size() - sent);
        if (n <= 0) break;
        sent += size_t(n);
      }
      if (close_after && sent == data.size() && !closed) {
        ta.shutdown(tx, SHUT_WR);
        closed = true;
      }
      for (;;) {
        ssize_t n = trecv(tb, rx, buf.data(), buf.size());
        if (n <= 0) break;
        got.insert(got.end(), buf.begin(), buf.begin() + n);
      }
      return got.size() >= data.size();
    }, timeout);
    return got;
  }

  std::unique_ptr<Harness> h;
};

}  // namespace shunt::test
