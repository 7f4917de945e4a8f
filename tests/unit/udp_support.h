// A one-stack fixture for the UDP and socket tests: a Stack on a TestDevice with 10.0.0.1/24
// and 2001:db8::1/64, a SocketApi over it, hand-built frames from a peer, and a parser for
// the UDP datagrams the stack sends.
#pragma once
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "stack/core/clock.h"
#include "stack/core/config.h"
#include "stack/net/checksum.h"
#include "stack/net/igmp.h"
#include "stack/net/mld.h"
#include "stack/net/stack.h"
#include "stack/net/udp.h"
#include "stack/socket/socket_api.h"
#include "support/test_device.h"

namespace shunt::udptest {

using test::Bytes;

inline const MacAddr kOurMac{{0x02, 0, 0, 0, 0, 1}};
inline const MacAddr kPeerMac{{0x02, 0, 0, 0, 0, 2}};
inline const MacAddr kPeer2Mac{{0x02, 0, 0, 0, 0, 3}};
inline Ipv4Addr V4(const char* s) { return *Ipv4Addr::parse(s); }
inline Ipv6Addr V6(const char* s) { return *Ipv6Addr::parse(s); }
inline const Ipv4Addr kOur4 = V4("10.0.0.1");
inline const Ipv4Addr kPeer4 = V4("10.0.0.2");
inline const Ipv4Addr kPeer4b = V4("10.0.0.3");
inline const Ipv6Addr kOur6 = V6("2001:db8::1");
inline const Ipv6Addr kPeer6 = V6("2001:db8::2");

inline void put16(Bytes& b, uint16_t v) {
  b.push_back(uint8_t(v >> 8));
  b.push_back(uint8_t(v));
}
inline void append(Bytes& b, const Bytes& x) { b.insert(b.end(), x.begin(), x.end()); }
inline Bytes text(const std::string& s) { return Bytes(s.begin(), s.end()); }

// A UDP datagram. checksum: -1 computes it (0 becomes 0xffff), else written as given.
// length: -1 is the true length, else written as given.
struct UdpOpts {
  int checksum = -1;
  int length = -1;
};
inline Bytes udp_bytes(const IpAddr& src, const IpAddr& dst, uint16_t sport, uint16_t dport, const Bytes& payload,
                       UdpOpts o = {}) {
  Bytes u;
  put16(u, sport);
  put16(u, dport);
  put16(u, uint16_t(o.length >= 0 ? o.length : int(8 + payload.size())));
  put16(u, 0);
  append(u, payload);
  uint16_t c;
  if (o.checksum >= 0) {
    c = uint16_t(o.checksum);
  } else {
    uint32_t s = pseudo_header_sum(src, dst, kProtoUdp, uint32_t(u.size()));
    c = checksum_fold(checksum_add(s, u.data(), u.size()));
    if (c == 0) c = 0xffff;
  }
  u[6] = uint8_t(c >> 8);
  u[7] = uint8_t(c);
  return u;
}

inline Bytes eth(const MacAddr& dst, const MacAddr& src, uint16_t type, const Bytes& payload) {
  Bytes f;
  f.insert(f.end(), dst.b.begin(), dst.b.end());
  f.insert(f.end(), src.b.begin(), src.b.end());
  put16(f, type);
  append(f, payload);
  return f;
}

struct Ip4Opts {
  uint8_t ttl = 64;
  uint8_t tos = 0;
  uint8_t proto = kProtoUdp;
  std::optional<MacAddr> dst_mac;
  MacAddr src_mac = kPeerMac;
};
inline Bytes ip4_frame(Ipv4Addr src, Ipv4Addr dst, const Bytes& l4, Ip4Opts o = {}) {
  Bytes h;
  h.push_back(0x45);
  h.push_back(o.tos);
  put16(h, uint16_t(20 + l4.size()));
  put16(h, 0x1234);
  put16(h, 0);
  h.push_back(o.ttl);
  h.push_back(o.proto);
  put16(h, 0);
  h.resize(20);
  src.write(h.data() + 12);
  dst.write(h.data() + 16);
  const uint16_t c = checksum(h.data(), 20);
  h[10] = uint8_t(c >> 8);
  h[11] = uint8_t(c);
  append(h, l4);
  MacAddr dm = o.dst_mac ? *o.dst_mac
               : dst.is_multicast() ? ipv4_multicast_mac(dst)
               : (dst.is_broadcast() || dst == V4("10.0.0.255")) ? MacAddr::broadcast()
                                                                  : kOurMac;
  return eth(dm, o.src_mac, kEtherTypeIpv4, h);
}
inline Bytes udp4_frame(Ipv4Addr src, uint16_t sport, Ipv4Addr dst, uint16_t dport, const Bytes& payload,
                        UdpOpts u = {}, Ip4Opts o = {}) {
  return ip4_frame(src, dst, udp_bytes(IpAddr(src), IpAddr(dst), sport, dport, payload, u), o);
}

inline Bytes ip6_frame(const Ipv6Addr& src, const Ipv6Addr& dst, uint8_t nh, const Bytes& l4, uint8_t hop = 64,
                       std::optional<MacAddr> dst_mac = std::nullopt) {
  Bytes h;
  put16(h, 0x6000);
  put16(h, 0);
  put16(h, uint16_t(l4.size()));
  h.push_back(nh);
  h.push_back(hop);
  h.insert(h.end(), src.b.begin(), src.b.end());
  h.insert(h.end(), dst.b.begin(), dst.b.end());
  append(h, l4);
  MacAddr dm = dst_mac ? *dst_mac : dst.is_multicast() ? dst.multicast_mac() : kOurMac;
  return eth(dm, kPeerMac, kEtherTypeIpv6, h);
}
inline Bytes udp6_frame(const Ipv6Addr& src, uint16_t sport, const Ipv6Addr& dst, uint16_t dport, const Bytes& payload,
                        UdpOpts u = {}, uint8_t hop = 64) {
  return ip6_frame(src, dst, kProtoUdp, udp_bytes(IpAddr(src), IpAddr(dst), sport, dport, payload, u), hop);
}

inline Bytes arp_reply(const MacAddr& sha, Ipv4Addr spa) {
  Bytes a;
  put16(a, 1);
  put16(a, 0x0800);
  a.push_back(6);
  a.push_back(4);
  put16(a, 2);
  a.insert(a.end(), sha.b.begin(), sha.b.end());
  a.resize(a.size() + 4);
  spa.write(a.data() + a.size() - 4);
  a.insert(a.end(), kOurMac.b.begin(), kOurMac.b.end());
  a.resize(a.size() + 4);
  kOur4.write(a.data() + a.size() - 4);
  return eth(kOurMac, sha, 0x0806, a);
}

// A neighbour solicitation for our address carrying the peer's link-layer address: it leaves
// the peer in our neighbour cache, so sends to it go out at once.
inline Bytes ns_from_peer(const Ipv6Addr& peer, const Ipv6Addr& target) {
  Bytes m{135, 0, 0, 0, 0, 0, 0, 0};
  m.insert(m.end(), target.b.begin(), target.b.end());
  m.push_back(1);
  m.push_back(1);
  m.insert(m.end(), kPeerMac.b.begin(), kPeerMac.b.end());
  const Ipv6Addr dst = target.solicited_node();
  uint32_t s = pseudo_header_sum(IpAddr(peer), IpAddr(dst), kProtoIcmpv6, uint32_t(m.size()));
  const uint16_t c = checksum_fold(checksum_add(s, m.data(), m.size()));
  m[2] = uint8_t(c >> 8);
  m[3] = uint8_t(c);
  return ip6_frame(peer, dst, kProtoIcmpv6, m, 255);
}

// A frame the stack sent, parsed as far as its IP header and (when unfragmented) UDP header.
struct Sent {
  Bytes frame;
  MacAddr dst_mac;
  uint16_t ethertype = 0;
  IpAddr src, dst;
  uint8_t proto = 0;  // IPv4 protocol or IPv6 next header
  uint8_t ttl = 0;
  uint8_t tos = 0;
  bool fragment = false;
  size_t l4_off = 0;
  // UDP, when proto is UDP and not a fragment.
  uint16_t sport = 0, dport = 0, ulen = 0, csum = 0;
  Bytes payload;
  bool checksum_ok = false;
  bool is_udp() const { return proto == kProtoUdp && !fragment; }
};

inline std::optional<Sent> parse(const Bytes& f) {
  if (f.size() < 14) return std::nullopt;
  Sent s;
  s.frame = f;
  s.dst_mac = MacAddr::read(f.data());
  s.ethertype = load16(f.data() + 12);
  const uint8_t* ip = f.data() + 14;
  size_t l4_len;
  if (s.ethertype == kEtherTypeIpv4 && f.size() >= 34) {
    const size_t hl = (ip[0] & 0x0f) * 4u;
    s.src = Ipv4Addr::read(ip + 12);
    s.dst = Ipv4Addr::read(ip + 16);
    s.proto = ip[9];
    s.ttl = ip[8];
    s.tos = ip[1];
    s.fragment = (load16(ip + 6) & 0x3fff) != 0;
    s.l4_off = 14 + hl;
    l4_len = load16(ip + 2) - hl;
  } else if (s.ethertype == kEtherTypeIpv6 && f.size() >= 54) {
    s.src = Ipv6Addr::read(ip + 8);
    s.dst = Ipv6Addr::read(ip + 24);
    s.proto = ip[6];
    s.ttl = ip[7];
    s.tos = uint8_t((load16(ip) >> 4) & 0xff);
    s.fragment = s.proto == 44;
    s.l4_off = 54;
    l4_len = load16(ip + 4);
  } else {
    return s;
  }
  if (s.is_udp() && f.size() >= s.l4_off + 8) {
    const uint8_t* u = f.data() + s.l4_off;
    s.sport = load16(u);
    s.dport = load16(u + 2);
    s.ulen = load16(u + 4);
    s.csum = load16(u + 6);
    const size_t n = std::min<size_t>(l4_len, f.size() - s.l4_off);
    if (n >= 8) s.payload.assign(u + 8, u + n);
    uint32_t sum = pseudo_header_sum(s.src, s.dst, kProtoUdp, uint32_t(n));
    s.checksum_ok = checksum_fold(checksum_add(sum, u, n)) == 0;
  }
  return s;
}

// Socket addresses.
struct Addr {
  sockaddr_storage ss{};
  socklen_t len = 0;
  const sockaddr* sa() const { return reinterpret_cast<const sockaddr*>(&ss); }
  sockaddr* sa() { return reinterpret_cast<sockaddr*>(&ss); }
  uint16_t port() const {
    return ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_port
                                          : reinterpret_cast<const sockaddr_in*>(&ss)->sin_port);
  }
  std::string ip() const {
    char buf[INET6_ADDRSTRLEN] = {};
    if (ss.ss_family == AF_INET6) {
      inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_addr, buf, sizeof buf);
    } else {
      inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&ss)->sin_addr, buf, sizeof buf);
    }
    return buf;
  }
};
inline Addr sa4(const char* ip, uint16_t port) {
  Addr a;
  auto* s = reinterpret_cast<sockaddr_in*>(&a.ss);
  s->sin_family = AF_INET;
  s->sin_port = htons(port);
  inet_pton(AF_INET, ip, &s->sin_addr);
  a.len = sizeof(sockaddr_in);
  return a;
}
inline Addr sa6(const char* ip, uint16_t port, uint32_t scope = 0) {
  Addr a;
  auto* s = reinterpret_cast<sockaddr_in6*>(&a.ss);
  s->sin6_family = AF_INET6;
  s->sin6_port = htons(port);
  s->sin6_scope_id = scope;
  inet_pton(AF_INET6, ip, &s->sin6_addr);
  a.len = sizeof(sockaddr_in6);
  return a;
}

inline Config udp_config() {
  Config c;
  c.dad_transmits = 0;  // addresses usable at once
  c.seed = 11;
  c.icmp_burst = 1000;
  c.buffers = 1024;
  return c;
}

struct UdpFixture {
  explicit UdpFixture(Config c = udp_config()) : cfg(c), stack(dev, clock, cfg), api(stack) {
    stack.add_address(IpAddr(kOur4), 24);
    stack.add_address(IpAddr(kOur6), 64);
    run();
    learn_peers();
  }
  // Feeds frames, then polls until nothing is left to do now (looped-back frames included).
  void inject(const Bytes& f) {
    dev.inject(f);
    run();
  }
  void run() {
    for (int i = 0; i < 16; ++i) {
      if (stack.poll() > clock.now()) break;
    }
  }
  void learn_peers() {
    inject(arp_reply(kPeerMac, kPeer4));
    inject(arp_reply(kPeer2Mac, kPeer4b));
    inject(ns_from_peer(kPeer6, kOur6));
    dev.take_sent();
  }
  std::vector<Sent> sent() {
    run();
    std::vector<Sent> out;
    for (auto& f : dev.take_sent()) {
      if (auto s = parse(f)) out.push_back(*s);
    }
    return out;
  }
  std::vector<Sent> sent_udp() {
    std::vector<Sent> out;
    for (auto& s : sent()) {
      if (s.is_udp()) out.push_back(s);
    }
    return out;
  }
  uint64_t counter(const char* name) { return stack.counters().get(name); }

  int udp4(int flags = SOCK_NONBLOCK) { return api.socket(AF_INET, SOCK_DGRAM | flags, 0); }
  int udp6(int flags = SOCK_NONBLOCK) { return api.socket(AF_INET6, SOCK_DGRAM | flags, 0); }
  int bound4(const char* ip, uint16_t port, int flags = SOCK_NONBLOCK) {
    int s = udp4(flags);
    Addr a = sa4(ip, port);
    if (api.bind(s, a.sa(), a.len) != 0) return -1;
    return s;
  }
  int bound6(const char* ip, uint16_t port, int flags = SOCK_NONBLOCK) {
    int s = udp6(flags);
    Addr a = sa6(ip, port);
    if (api.bind(s, a.sa(), a.len) != 0) return -1;
    return s;
  }
  int set_int(int s, int level, int name, int v) { return api.setsockopt(s, level, name, &v, sizeof v); }
  int get_int(int s, int level, int name) {
    int v = -12345;
    socklen_t l = sizeof v;
    int r = api.getsockopt(s, level, name, &v, &l);
    return r < 0 ? r : v;
  }
  // recvfrom into a string; the result's size, or an error as a negative number in `err`.
  struct Got {
    ssize_t n = 0;
    std::string data;
    Addr from;
  };
  Got recv(int s, size_t cap = 2048, int flags = 0) {
    Got g;
    std::string buf(cap, '\0');
    g.from.len = sizeof g.from.ss;
    g.n = api.recvfrom(s, buf.data(), cap, flags, g.from.sa(), &g.from.len);
    if (g.n >= 0) g.data = buf.substr(0, std::min<size_t>(size_t(g.n), cap));
    return g;
  }
  ssize_t send(int s, const std::string& d, const Addr& to, int flags = 0) {
    return api.sendto(s, d.data(), d.size(), flags, to.sa(), to.len);
  }
  uint16_t local_port(int s) {
    Addr a;
    a.len = sizeof a.ss;
    api.getsockname(s, a.sa(), &a.len);
    return a.port();
  }

  VirtualClock clock{1 * kSecond};
  test::TestDevice dev{kOurMac};
  Config cfg;
  Stack stack;
  SocketApi api;  // after the stack: destroyed first
};

}  // namespace shunt::udptest
