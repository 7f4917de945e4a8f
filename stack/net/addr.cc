#include "stack/net/addr.h"

#include <arpa/inet.h>

#include <cstdio>

namespace shunt {

std::string MacAddr::str() const {
  char s[18];
  snprintf(s, sizeof s, "%02x:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3], b[4], b[5]);
  return s;
}

std::optional<MacAddr> MacAddr::parse(std::string_view s) {
  if (s.size() != 17) return std::nullopt;
  MacAddr m;
  for (int i = 0; i < 6; ++i) {
    unsigned v = 0;
    for (int j = 0; j < 2; ++j) {
      char c = s[i * 3 + j];
      unsigned d = (c >= '0' && c <= '9')   ? unsigned(c - '0')
                   : (c >= 'a' && c <= 'f') ? unsigned(c - 'a' + 10)
                   : (c >= 'A' && c <= 'F') ? unsigned(c - 'A' + 10)
                                            : 16u;
      if (d > 15) return std::nullopt;
      v = v * 16 + d;
    }
    if (i < 5 && s[i * 3 + 2] != ':') return std::nullopt;
    m.b[i] = uint8_t(v);
  }
  return m;
}

std::string Ipv4Addr::str() const {
  char s[16];
  snprintf(s, sizeof s, "%u.%u.%u.%u", v >> 24, (v >> 16) & 255, (v >> 8) & 255, v & 255);
  return s;
}

std::optional<Ipv4Addr> Ipv4Addr::parse(std::string_view s) {
  std::string z(s);
  in_addr a;
  if (inet_pton(AF_INET, z.c_str(), &a) != 1) return std::nullopt;
  return Ipv4Addr::read(reinterpret_cast<const uint8_t*>(&a));
}

Ipv6Addr Ipv6Addr::solicited_node() const {
  Ipv6Addr m;
  m.b[0] = 0xff;
  m.b[1] = 0x02;
  m.b[11] = 0x01;
  m.b[12] = 0xff;
  m.b[13] = b[13];
  m.b[14] = b[14];
  m.b[15] = b[15];
  return m;
}

Ipv6Addr Ipv6Addr::link_local_from_mac(const MacAddr& mac) {
  Ipv6Addr a;
  a.b[0] = 0xfe;
  a.b[1] = 0x80;
  a.b[8] = mac.b[0] ^ 0x02;
  a.b[9] = mac.b[1];
  a.b[10] = mac.b[2];
  a.b[11] = 0xff;
  a.b[12] = 0xfe;
  a.b[13] = mac.b[3];
  a.b[14] = mac.b[4];
  a.b[15] = mac.b[5];
  return a;
}

MacAddr Ipv6Addr::multicast_mac() const { return MacAddr{{0x33, 0x33, b[12], b[13], b[14], b[15]}}; }

MacAddr ipv4_multicast_mac(Ipv4Addr a) {
  return MacAddr{{0x01, 0x00, 0x5e, uint8_t((a.v >> 16) & 0x7f), uint8_t(a.v >> 8), uint8_t(a.v)}};
}

std::string Ipv6Addr::str() const {
  char s[INET6_ADDRSTRLEN];
  inet_ntop(AF_INET6, b.data(), s, sizeof s);
  return s;
}

std::optional<Ipv6Addr> Ipv6Addr::parse(std::string_view s) {
  std::string z(s);
  Ipv6Addr a;
  if (inet_pton(AF_INET6, z.c_str(), a.b.data()) != 1) return std::nullopt;
  return a;
}

std::optional<IpAddr> IpAddr::parse(std::string_view s) {
  if (auto a = Ipv4Addr::parse(s)) return IpAddr(*a);
  if (auto a = Ipv6Addr::parse(s)) return IpAddr(*a);
  return std::nullopt;
}

bool prefix_match(const IpAddr& a, const IpAddr& prefix, int len) {
  if (a.family != prefix.family) return false;
  if (a.is_v4()) {
    if (len <= 0) return true;
    if (len >= 32) return a.v4 == prefix.v4;
    uint32_t mask = ~uint32_t(0) << (32 - len);
    return (a.v4.v & mask) == (prefix.v4.v & mask);
  }
  if (len <= 0) return true;
  if (len > 128) len = 128;
  int full = len / 8;
  if (std::memcmp(a.v6.b.data(), prefix.v6.b.data(), size_t(full)) != 0) return false;
  int rest = len % 8;
  if (rest == 0) return true;
  uint8_t mask = uint8_t(0xff << (8 - rest));
  return (a.v6.b[size_t(full)] & mask) == (prefix.v6.b[size_t(full)] & mask);
}

}  // namespace shunt
