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

#include "support/ipv4_frames.h"

namespace shunt::test {

// One stack on a TestDevice (10.0.0.1) and a hand-driven peer (10.0.0.2): segments are built
// byte by byte and what the stack sends is parsed back.
struct TcpRig : V4Fixture {
  static Config rig_config() {
    Config c = V4Fixture::base_config();
    return c;
  }
  explicit TcpRig(Config c = rig_config()) : V4Fixture(c) { learn_peer(); }
  Tcp& tcp() { return stack->tcp(); }

  struct Seg {
    uint16_t sport = 40000, dport = 80;
    uint32_t seq = 0, ack = 0;
    uint8_t flags = kTcpAck;
    uint16_t window = 65535;
    Bytes options;
    Bytes payload;
    int data_offset_override = -1;
    bool bad_checksum = false;
  };
  static Bytes ts_option(uint32_t tsval, uint32_t tsecr) {
    Bytes o{1, 1, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0};
    store32(o.data() + 4, tsval);
    store32(o.data() + 8, tsecr);
    return o;
  }
  static Bytes syn_options(uint16_t mss = 1460, int wscale = 7, bool sack = true, bool ts = true, uint32_t tsval = 1000) {
    Bytes o{2, 4, uint8_t(mss >> 8), uint8_t(mss)};
    if (ts) {
      Bytes t = ts_option(tsval, 0);
      if (sack) { t[0] = 4; t[1] = 2; }
      o.insert(o.end(), t.begin(), t.end());
    } else if (sack) {
      o.insert(o.end(), {1, 1, 4, 2});
    }
    if (wscale >= 0) o.insert(o.end(), {1, 3, 3, uint8_t(wscale)});
    return o;
  }
  static Bytes tcp_bytes(const Seg& s, Ipv4Addr src = kPeerIp, Ipv4Addr dst = kOurIp) {
    Bytes t(20 + s.options.size());
    put16(t, 0, s.sport);
    put16(t, 2, s.dport);
    store32(t.data() + 4, s.seq);
    store32(t.data() + 8, s.ack);
    const int doff = s.data_offset_override >= 0 ? s.data_offset_override : int(t.size() / 4);
    t[12] = uint8_t(doff << 4);
    t[13] = s.flags;
    put16(t, 14, s.window);
    for (size_t i = 0; i < s.options.size(); ++i) t[20 + i] = s.options[i];
    t.insert(t.end(), s.payload.begin(), s.payload.end());
    uint32_t sum = pseudo_header_sum(IpAddr(src), IpAddr(dst), 6, uint32_t(t.size()));
    uint16_t c = checksum_fold(checksum_add(sum, t.data(), t.size()));
    if (s.bad_checksum) c ^= 0x1234;
    put16(t, 16, c);
    return t;
  }
  void send(const Seg& s) {
    Ip4 ip;
    ip.proto = 6;
    inject(ipv4_frame(ip, tcp_bytes(s)));
    run();
  }
  void send_raw_tcp(const Bytes& tcp_segment) {
    Ip4 ip;
    ip.proto = 6;
    inject(ipv4_frame(ip, tcp_segment));
    run();
  }

  struct Out {
    TcpRepr h;
    TcpOptions o;
    Bytes payload;
    bool has(uint8_t f) const { return h.has(f); }
  };
  // TCP segments the stack sent since the last call.
  std::vector<Out> out() {
    std::vector<Out> r;
    for (auto& f : sent_ipv4()) {
      const size_t ihl = size_t(f[14] & 0x0f) * 4;
      if (f[14 + 9] != 6) continue;
      const size_t total = get16(f, 16);
      const uint8_t* t = f.data() + 14 + ihl;
      const size_t len = total - ihl;
      auto h = TcpRepr::parse(t, len);
      BOOST_REQUIRE(h);
      // The checksum must verify (no offload on a TestDevice).
      uint32_t sum = pseudo_header_sum(IpAddr(get_ip(f, 26)), IpAddr(get_ip(f, 30)), 6, uint32_t(len));
      BOOST_CHECK_EQUAL(checksum_fold(checksum_add(sum, t, len)), 0);
      Out o;
      o.h = *h;
      o.o = TcpOptions::parse(t + 20, h->header_len - 20);
      o.payload.assign(t + h->header_len, t + len);
      r.push_back(std::move(o));
    }
    return r;
  }

  // A connection accepted from the peer: listener on :80, peer ISN `irs`.
  struct Passive {
    TcpSocket* listener = nullptr;
    TcpSocket* conn = nullptr;
    uint32_t irs = 0;     // peer's ISN
    uint32_t iss = 0;     // ours
    uint32_t snd = 0;     // the peer's next sequence number
    uint32_t rcv = 0;     // what the peer expects from us next
    uint32_t tsval = 1000;
    bool ts = true;
  };
  Passive accept_one(bool ts = true, bool sack = true, int wscale = 7, uint16_t sport = 40000, int backlog = 8) {
    Passive p;
    p.ts = ts;
    if (!listener_) {
      listener_ = tcp().open(Family::kV4);
      BOOST_REQUIRE_EQUAL(tcp().bind(*listener_, IpAddr(Ipv4Addr{}), 80), 0);
      BOOST_REQUIRE_EQUAL(tcp().listen(*listener_, backlog), 0);
    }
    p.listener = listener_;
    p.irs = 0x10000000u + sport;
    Seg syn;
    syn.sport = sport;
    syn.seq = p.irs;
    syn.flags = kTcpSyn;
    syn.options = syn_options(1460, wscale, sack, ts, p.tsval);
    send(syn);
    auto o = out();
    BOOST_REQUIRE_EQUAL(o.size(), 1u);
    BOOST_REQUIRE(o[0].has(kTcpSyn) && o[0].has(kTcpAck));
    BOOST_REQUIRE_EQUAL(o[0].h.ack, p.irs + 1);
    p.iss = o[0].h.seq;
    p.snd = p.irs + 1;
    p.rcv = p.iss + 1;
    ack(p, sport);
    int err = 0;
    p.conn = tcp().accept(*listener_, &err);
    BOOST_REQUIRE(p.conn);
    BOOST_REQUIRE(tcp().state(*p.conn) == TcpState::kEstablished);
    out();
    return p;
  }
  // A segment from the peer on connection `p`.
  Seg peer(const Passive& p, uint8_t flags = kTcpAck, Bytes payload = {}, uint16_t sport = 40000) {
    Seg s;
    s.sport = sport;
    s.seq = p.snd;
    s.ack = p.rcv;
    s.flags = flags;
    s.payload = std::move(payload);
    s.window = 1000;  // scaled by 128: 128000 bytes
    if (p.ts) s.options = ts_option(p.tsval, 0);
    return s;
  }
  void ack(Passive& p, uint16_t sport = 40000) { send(peer(p, kTcpAck, {}, sport)); }

  TcpSocket* listener_ = nullptr;
};

}  // namespace shunt::test
