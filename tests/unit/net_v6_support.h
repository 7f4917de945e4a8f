// Hand-built IPv6 frames and a stack fixture for the IPv6/NDP/ICMPv6/MLD unit tests.
#pragma once
#include <boost/test/unit_test.hpp>
#include <cstdint>
#include <optional>
#include <ostream>
#include <vector>

#include "stack/core/clock.h"
#include "stack/core/config.h"
#include "stack/net/checksum.h"
#include "stack/net/icmp6.h"
#include "stack/net/icmp6_wire.h"
#include "stack/net/mld.h"
#include "stack/net/ndp.h"
#include "stack/net/ipv6.h"
#include "stack/net/ipv6_wire.h"
#include "stack/net/stack.h"
#include "support/test_device.h"

namespace shunt {
inline std::ostream& operator<<(std::ostream& o, const MacAddr& m) { return o << m.str(); }
inline std::ostream& operator<<(std::ostream& o, const Ipv6Addr& a) { return o << a.str(); }
}  // namespace shunt

namespace shunt::v6test {

using test::Bytes;

inline Ipv6Addr A(const char* s) { return *Ipv6Addr::parse(s); }
inline const MacAddr kOurMac{{0x02, 0, 0, 0, 0, 1}};
inline const MacAddr kPeerMac{{0x02, 0, 0, 0, 0, 2}};
inline const Ipv6Addr kOurLl = Ipv6Addr::link_local_from_mac(kOurMac);  // fe80::ff:fe00:1
inline const Ipv6Addr kPeerLl = A("fe80::2");
inline const Ipv6Addr kOurGlobal = A("2001:db8::1");
inline const Ipv6Addr kPeer = A("2001:db8::2");
inline const Ipv6Addr kAllNodes = A("ff02::1");

inline void put16(Bytes& b, uint16_t v) {
  b.push_back(uint8_t(v >> 8));
  b.push_back(uint8_t(v));
}
inline void put32(Bytes& b, uint32_t v) {
  put16(b, uint16_t(v >> 16));
  put16(b, uint16_t(v));
}
inline void put_addr(Bytes& b, const Ipv6Addr& a) { b.insert(b.end(), a.b.begin(), a.b.end()); }
inline void append(Bytes& b, const Bytes& x) { b.insert(b.end(), x.begin(), x.end()); }

// Ethernet + IPv6 header + `payload` (extension headers and upper layer, as given).
inline Bytes ip6_frame(const Ipv6Addr& src, const Ipv6Addr& dst, uint8_t nh, const Bytes& payload,
                       uint8_t hop = 64, std::optional<MacAddr> dst_mac = std::nullopt) {
  Bytes f;
  MacAddr dm = dst_mac ? *dst_mac : (dst.is_multicast() ? dst.multicast_mac() : kOurMac);
  f.insert(f.end(), dm.b.begin(), dm.b.end());
  f.insert(f.end(), kPeerMac.b.begin(), kPeerMac.b.end());
  put16(f, kEtherTypeIpv6);
  put32(f, 0x60000000);
  put16(f, uint16_t(payload.size()));
  f.push_back(nh);
  f.push_back(hop);
  put_addr(f, src);
  put_addr(f, dst);
  append(f, payload);
  return f;
}

// An ICMPv6 message with a correct checksum.
inline Bytes icmp6_msg(const Ipv6Addr& src, const Ipv6Addr& dst, uint8_t type, uint8_t code, const Bytes& body) {
  Bytes m{type, code, 0, 0};
  append(m, body);
  uint32_t sum = pseudo_header_sum(IpAddr(src), IpAddr(dst), kProtoIcmpv6, uint32_t(m.size()));
  uint16_t c = checksum_fold(checksum_add(sum, m.data(), m.size()));
  m[2] = uint8_t(c >> 8);
  m[3] = uint8_t(c);
  return m;
}

inline Bytes echo_body(uint16_t id, uint16_t seq, size_t data_len) {
  Bytes b;
  put16(b, id);
  put16(b, seq);
  for (size_t i = 0; i < data_len; ++i) b.push_back(uint8_t(i * 7 + 3));
  return b;
}

inline Bytes echo_request_frame(const Ipv6Addr& src, const Ipv6Addr& dst, uint16_t seq = 1, size_t data_len = 16) {
  return ip6_frame(src, dst, kProtoIcmpv6, icmp6_msg(src, dst, kIcmp6EchoRequest, 0, echo_body(0x1234, seq, data_len)));
}

inline Bytes ns_body(const Ipv6Addr& target, std::optional<MacAddr> slla) {
  Bytes b;
  put32(b, 0);
  put_addr(b, target);
  if (slla) {
    b.push_back(kNdpOptSourceLla);
    b.push_back(1);
    b.insert(b.end(), slla->b.begin(), slla->b.end());
  }
  return b;
}

inline Bytes na_body(const Ipv6Addr& target, uint32_t flags, std::optional<MacAddr> tlla) {
  Bytes b;
  put32(b, flags);
  put_addr(b, target);
  if (tlla) {
    b.push_back(kNdpOptTargetLla);
    b.push_back(1);
    b.insert(b.end(), tlla->b.begin(), tlla->b.end());
  }
  return b;
}

inline Bytes ns_frame(const Ipv6Addr& src, const Ipv6Addr& dst, const Ipv6Addr& target,
                      std::optional<MacAddr> slla, uint8_t hop = 255) {
  return ip6_frame(src, dst, kProtoIcmpv6, icmp6_msg(src, dst, kIcmp6NeighborSolicit, 0, ns_body(target, slla)), hop);
}

inline Bytes na_frame(const Ipv6Addr& src, const Ipv6Addr& dst, const Ipv6Addr& target, uint32_t flags,
                      std::optional<MacAddr> tlla, uint8_t hop = 255) {
  return ip6_frame(src, dst, kProtoIcmpv6, icmp6_msg(src, dst, kIcmp6NeighborAdvert, 0, na_body(target, flags, tlla)), hop);
}

// A parsed frame the stack sent.
struct Sent {
  MacAddr dst_mac;
  Ipv6Addr src, dst;
  uint8_t hop = 0;
  uint8_t nh = 0;        // first Next Header in the IPv6 header
  uint8_t l4 = 0;        // upper-layer protocol after hop-by-hop / fragment headers
  size_t l4_off = 0;     // offset of the upper-layer header in `frame`
  bool router_alert = false;
  std::optional<Ipv6FragRepr> frag;
  Bytes frame;
  uint8_t icmp_type() const { return frame.size() > l4_off ? frame[l4_off] : 0; }
  const uint8_t* l4p() const { return frame.data() + l4_off; }
  size_t l4_len() const { return frame.size() - l4_off; }
};

inline std::optional<Sent> parse_sent(const Bytes& f) {
  if (f.size() < 54 || load16(f.data() + 12) != kEtherTypeIpv6) return std::nullopt;
  Sent s;
  s.frame = f;
  s.dst_mac = MacAddr::read(f.data());
  const uint8_t* ip = f.data() + 14;
  s.hop = ip[7];
  s.nh = ip[6];
  s.src = Ipv6Addr::read(ip + 8);
  s.dst = Ipv6Addr::read(ip + 24);
  size_t off = 54;
  uint8_t nh = s.nh;
  for (;;) {
    if (nh == kNextHopByHop) {
      s.router_alert = f.size() >= off + 4 && f[off + 2] == kOptRouterAlert;
      nh = f[off];
      off += ipv6_ext_len(f.data() + off);
    } else if (nh == kNextFragment) {
      s.frag = Ipv6FragRepr::parse(f.data() + off);
      nh = f[off];
      off += 8;
    } else {
      break;
    }
  }
  s.l4 = nh;
  s.l4_off = off;
  return s;
}

// Everything the stack sent since the last call, as IPv6 frames.
inline std::vector<Sent> sent_v6(test::TestDevice& dev) {
  std::vector<Sent> out;
  for (auto& f : dev.take_sent()) {
    if (auto s = parse_sent(f)) out.push_back(*s);
  }
  return out;
}

// Without the neighbour solicitations that unreachability detection sends as time passes.
inline std::vector<Sent> non_ndp(std::vector<Sent> v) {
  std::erase_if(v, [](const Sent& s) { return s.l4 == kProtoIcmpv6 && s.icmp_type() == kIcmp6NeighborSolicit; });
  return v;
}

inline bool icmp6_checksum_ok(const Sent& s) {
  uint32_t sum = pseudo_header_sum(IpAddr(s.src), IpAddr(s.dst), kProtoIcmpv6, uint32_t(s.l4_len()));
  return checksum_fold(checksum_add(sum, s.l4p(), s.l4_len())) == 0;
}

inline Config v6_config() {
  Config c;
  c.icmp_burst = 1000;
  return c;
}

// A stack with its link-local and 2001:db8::1/64 past DAD, and the peer's link-layer address
// known (REACHABLE) for both peer addresses.
struct V6Fixture {
  explicit V6Fixture(Config c = v6_config(), uint32_t mtu = 1500)
      : dev(kOurMac, mtu), cfg(c), stack(dev, clock, cfg) {
    stack.add_address(IpAddr(kOurGlobal), 64);
    run_for(2 * kSecond);
    dev.take_sent();
  }
  // Advances virtual time in 1 ms steps, polling.
  void run_for(Nanos d) {
    const Nanos end = clock.now() + d;
    while (clock.now() < end) {
      clock.advance(kMilli);
      stack.poll();
    }
  }
  void inject(const Bytes& f) {
    dev.inject(f);
    stack.poll();
    stack.poll();  // looped-back frames
  }
  // The peer resolves our addresses (NS with its link-layer address), which leaves it in our
  // cache as STALE: sends to it go straight out.
  void learn_peer() {
    inject(ns_frame(kPeer, kOurGlobal.solicited_node(), kOurGlobal, kPeerMac));
    inject(ns_frame(kPeerLl, kOurLl.solicited_node(), kOurLl, kPeerMac));
    dev.take_sent();
  }
  uint64_t counter(const char* name) { return stack.counters().get(name); }

  VirtualClock clock{0};
  test::TestDevice dev;
  Config cfg;
  Stack stack;
};

}  // namespace shunt::v6test
