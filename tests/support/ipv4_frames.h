// Hand-built IPv4/ARP/ICMP/IGMP frames and a one-stack fixture for the IPv4 unit tests.
#pragma once
#include <cstdint>
#include <memory>
#include <ostream>
#include <vector>

#include "stack/core/clock.h"
#include "stack/core/config.h"
#include "stack/net/addr.h"
#include "stack/net/checksum.h"
#include "stack/net/stack.h"
#include "tests/support/test_device.h"

namespace shunt {
// For Boost.Test messages.
inline std::ostream& operator<<(std::ostream& o, const MacAddr& m) { return o << m.str(); }
inline std::ostream& operator<<(std::ostream& o, const Ipv4Addr& a) { return o << a.str(); }
}  // namespace shunt

namespace shunt::test {

inline const MacAddr kOurMac{{0x02, 0, 0, 0, 0, 1}};
inline const MacAddr kPeerMac{{0x02, 0, 0, 0, 0, 2}};
inline const Ipv4Addr kOurIp{0x0a000001};   // 10.0.0.1/24
inline const Ipv4Addr kPeerIp{0x0a000002};  // 10.0.0.2
inline const Ipv4Addr kGateway{0x0a0000fe}; // 10.0.0.254

inline void put16(Bytes& b, size_t at, uint16_t v) {
  b[at] = uint8_t(v >> 8);
  b[at + 1] = uint8_t(v);
}
inline uint16_t get16(const Bytes& b, size_t at) { return uint16_t(b[at] << 8 | b[at + 1]); }
inline Ipv4Addr get_ip(const Bytes& b, size_t at) { return Ipv4Addr::read(b.data() + at); }

inline Bytes eth_frame(const MacAddr& dst, const MacAddr& src, uint16_t type, const Bytes& payload) {
  Bytes f(14);
  dst.write(f.data());
  src.write(f.data() + 6);
  put16(f, 12, type);
  f.insert(f.end(), payload.begin(), payload.end());
  return f;
}

struct Ip4 {
  Ipv4Addr src = kPeerIp;
  Ipv4Addr dst = kOurIp;
  uint8_t proto = 17;
  uint8_t ttl = 64;
  uint8_t tos = 0;
  uint16_t id = 1;
  bool df = false;
  bool mf = false;
  uint16_t frag_offset = 0;  // bytes
  Bytes options;             // padded to 4 by the caller
  int ihl_override = -1;     // in 32-bit words
  int total_len_override = -1;
  bool bad_checksum = false;
  int version = 4;
};

inline Bytes ipv4_packet(const Ip4& h, const Bytes& payload) {
  const size_t hl = 20 + h.options.size();
  Bytes b(hl);
  const int ihl = h.ihl_override >= 0 ? h.ihl_override : int(hl / 4);
  b[0] = uint8_t(h.version << 4 | (ihl & 0x0f));
  b[1] = h.tos;
  put16(b, 2, uint16_t(h.total_len_override >= 0 ? h.total_len_override : int(hl + payload.size())));
  put16(b, 4, h.id);
  put16(b, 6, uint16_t((h.df ? 0x4000 : 0) | (h.mf ? 0x2000 : 0) | (h.frag_offset / 8)));
  b[8] = h.ttl;
  b[9] = h.proto;
  h.src.write(b.data() + 12);
  h.dst.write(b.data() + 16);
  std::copy(h.options.begin(), h.options.end(), b.begin() + 20);
  uint16_t c = checksum(b.data(), hl);
  if (h.bad_checksum) c ^= 0x5a5a;
  put16(b, 10, c);
  b.insert(b.end(), payload.begin(), payload.end());
  return b;
}

inline Bytes ipv4_frame(const Ip4& h, const Bytes& payload, const MacAddr& dst_mac = kOurMac) {
  return eth_frame(dst_mac, kPeerMac, 0x0800, ipv4_packet(h, payload));
}

// An ICMP message with a correct checksum.
inline Bytes icmp_msg(uint8_t type, uint8_t code, uint32_t rest, const Bytes& data) {
  Bytes m(8);
  m[0] = type;
  m[1] = code;
  m[4] = uint8_t(rest >> 24);
  m[5] = uint8_t(rest >> 16);
  m[6] = uint8_t(rest >> 8);
  m[7] = uint8_t(rest);
  m.insert(m.end(), data.begin(), data.end());
  put16(m, 2, checksum(m.data(), m.size()));
  return m;
}

// A UDP datagram with a correct checksum for (src, dst).
inline Bytes udp_datagram(Ipv4Addr src, Ipv4Addr dst, uint16_t sport, uint16_t dport, const Bytes& data) {
  Bytes u(8);
  put16(u, 0, sport);
  put16(u, 2, dport);
  put16(u, 4, uint16_t(8 + data.size()));
  u.insert(u.end(), data.begin(), data.end());
  uint32_t s = pseudo_header_sum(IpAddr(src), IpAddr(dst), 17, uint32_t(u.size()));
  uint16_t c = checksum_fold(checksum_add(s, u.data(), u.size()));
  put16(u, 6, c ? c : 0xffff);
  return u;
}

inline Bytes arp_packet(uint16_t op, const MacAddr& sha, Ipv4Addr spa, const MacAddr& tha, Ipv4Addr tpa) {
  Bytes a(28);
  put16(a, 0, 1);
  put16(a, 2, 0x0800);
  a[4] = 6;
  a[5] = 4;
  put16(a, 6, op);
  sha.write(a.data() + 8);
  spa.write(a.data() + 14);
  tha.write(a.data() + 18);
  tpa.write(a.data() + 24);
  return a;
}

inline Bytes arp_frame(uint16_t op, const MacAddr& sha, Ipv4Addr spa, const MacAddr& tha, Ipv4Addr tpa,
                       const MacAddr& eth_dst = MacAddr::broadcast()) {
  return eth_frame(eth_dst, sha, 0x0806, arp_packet(op, sha, spa, tha, tpa));
}

// One stack on a TestDevice with 10.0.0.1/24, virtual time, IPv6 DAD off.
struct V4Fixture {
  VirtualClock clock{1 * kSecond};
  TestDevice dev{kOurMac};
  Config cfg;
  std::unique_ptr<Stack> stack;

  explicit V4Fixture(Config c = base_config()) : cfg(c) {
    stack = std::make_unique<Stack>(dev, clock, cfg);
    stack->add_address(IpAddr(kOurIp), 24);
    advance(2 * kSecond);  // past the second gratuitous ARP (RFC 5227 ANNOUNCE_INTERVAL)
    clear_sent();
  }
  static Config base_config() {
    Config c;
    c.dad_transmits = 0;
    c.seed = 7;
    return c;
  }
  uint64_t counter(const char* name) const { return stack->counters().get(name); }
  // Feeds frames and polls until the stack has nothing more to do right now.
  void inject(const Bytes& f) { dev.inject(f); }
  void run() {
    for (int i = 0; i < 64; ++i) {
      Nanos next = stack->poll();
      if (next > clock.now()) break;
    }
  }
  void advance(Nanos d) {
    const Nanos end = clock.now() + d;
    run();
    for (int guard = 0; guard < 100000; ++guard) {
      Nanos next = stack->timers().next_deadline();
      if (next > end) break;
      clock.advance_to(next);
      run();
    }
    clock.advance_to(end);
    run();
  }
  // What the stack sent with this EtherType, in order; frames of other types stay for later.
  std::vector<Bytes> sent(uint16_t ethertype) {
    for (auto& fr : dev.take_sent()) unread_.push_back(std::move(fr));
    std::vector<Bytes> out, rest;
    for (auto& fr : unread_) {
      if (fr.size() >= 14 && get16(fr, 12) == ethertype) {
        out.push_back(std::move(fr));
      } else {
        rest.push_back(std::move(fr));
      }
    }
    unread_.swap(rest);
    return out;
  }
  // Forgets everything sent so far.
  void clear_sent() {
    dev.take_sent();
    unread_.clear();
  }
  std::vector<Bytes> unread_;
  std::vector<Bytes> sent_ipv4() { return sent(0x0800); }
  std::vector<Bytes> sent_arp() { return sent(0x0806); }
  // Teaches the stack the peer's MAC, so unicast goes out at once.
  void learn_peer(Ipv4Addr ip = kPeerIp, const MacAddr& mac = kPeerMac) {
    inject(arp_frame(2, mac, ip, kOurMac, kOurIp, kOurMac));
    run();
    clear_sent();
  }
};

}  // namespace shunt::test
