// Link and network addresses, and byte-order helpers for reading and writing wire formats.
#pragma once
#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace shunt {

// Big-endian loads and stores at any alignment.
inline uint16_t load16(const uint8_t* p) { return uint16_t(p[0] << 8 | p[1]); }
inline uint32_t load32(const uint8_t* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3];
}
inline void store16(uint8_t* p, uint16_t v) {
  p[0] = uint8_t(v >> 8);
  p[1] = uint8_t(v);
}
inline void store32(uint8_t* p, uint32_t v) {
  p[0] = uint8_t(v >> 24);
  p[1] = uint8_t(v >> 16);
  p[2] = uint8_t(v >> 8);
  p[3] = uint8_t(v);
}

struct MacAddr {
  std::array<uint8_t, 6> b{};
  static MacAddr broadcast() { return MacAddr{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}; }
  static MacAddr read(const uint8_t* p) {
    MacAddr m;
    std::memcpy(m.b.data(), p, 6);
    return m;
  }
  void write(uint8_t* p) const { std::memcpy(p, b.data(), 6); }
  bool is_broadcast() const { return *this == broadcast(); }
  bool is_multicast() const { return b[0] & 1; }
  bool is_zero() const { return *this == MacAddr{}; }
  std::string str() const;
  static std::optional<MacAddr> parse(std::string_view s);
  friend bool operator==(const MacAddr&, const MacAddr&) = default;
};

// IPv4 address in host byte order.
struct Ipv4Addr {
  uint32_t v = 0;
  static Ipv4Addr read(const uint8_t* p) { return Ipv4Addr{load32(p)}; }
  void write(uint8_t* p) const { store32(p, v); }
  bool is_unspecified() const { return v == 0; }
  bool is_broadcast() const { return v == 0xffffffffu; }
  bool is_multicast() const { return (v >> 28) == 0xe; }
  bool is_loopback() const { return (v >> 24) == 127; }
  std::string str() const;
  static std::optional<Ipv4Addr> parse(std::string_view s);
  friend auto operator<=>(const Ipv4Addr&, const Ipv4Addr&) = default;
};

struct Ipv6Addr {
  std::array<uint8_t, 16> b{};
  static Ipv6Addr read(const uint8_t* p) {
    Ipv6Addr a;
    std::memcpy(a.b.data(), p, 16);
    return a;
  }
  void write(uint8_t* p) const { std::memcpy(p, b.data(), 16); }
  bool is_unspecified() const { return *this == Ipv6Addr{}; }
  bool is_multicast() const { return b[0] == 0xff; }
  bool is_link_local() const { return b[0] == 0xfe && (b[1] & 0xc0) == 0x80; }
  bool is_loopback() const {
    Ipv6Addr l;
    l.b[15] = 1;
    return *this == l;
  }
  bool is_v4_mapped() const {
    static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return std::memcmp(b.data(), prefix, 12) == 0;
  }
  // ff02::1:ffXX:XXXX for this address (RFC 4291 2.7.1).
  Ipv6Addr solicited_node() const;
  // fe80::/64 with a modified EUI-64 interface identifier from `mac` (RFC 4291 appendix A).
  static Ipv6Addr link_local_from_mac(const MacAddr& mac);
  // The Ethernet multicast address of a multicast IPv6 address (RFC 2464 7).
  MacAddr multicast_mac() const;
  std::string str() const;
  static std::optional<Ipv6Addr> parse(std::string_view s);
  friend auto operator<=>(const Ipv6Addr&, const Ipv6Addr&) = default;
};

// The Ethernet multicast address of a multicast IPv4 address (RFC 1112 6.4).
MacAddr ipv4_multicast_mac(Ipv4Addr a);

enum class Family : uint8_t { kV4 = 4, kV6 = 6 };

// An address of either family.
struct IpAddr {
  Family family = Family::kV4;
  Ipv4Addr v4;
  Ipv6Addr v6;
  IpAddr() = default;
  IpAddr(Ipv4Addr a) : family(Family::kV4), v4(a) {}  // NOLINT: implicit by design
  IpAddr(Ipv6Addr a) : family(Family::kV6), v6(a) {}  // NOLINT
  bool is_v4() const { return family == Family::kV4; }
  bool is_v6() const { return family == Family::kV6; }
  bool is_unspecified() const { return is_v4() ? v4.is_unspecified() : v6.is_unspecified(); }
  bool is_multicast() const { return is_v4() ? v4.is_multicast() : v6.is_multicast(); }
  std::string str() const { return is_v4() ? v4.str() : v6.str(); }
  static std::optional<IpAddr> parse(std::string_view s);
  friend bool operator==(const IpAddr& a, const IpAddr& b) {
    return a.family == b.family && (a.is_v4() ? a.v4 == b.v4 : a.v6 == b.v6);
  }
};

// True if `a` is inside prefix/len of the same family.
bool prefix_match(const IpAddr& a, const IpAddr& prefix, int len);

// The stack's internal form of an address: an IPv4-mapped IPv6 address (::ffff:a.b.c.d,
// RFC 4291 2.5.5.2) becomes the IPv4 address it maps; every other address is itself.
inline IpAddr unmapped(const Ipv6Addr& a) {
  if (a.is_v4_mapped()) return IpAddr(Ipv4Addr::read(a.b.data() + 12));
  return IpAddr(a);
}
inline IpAddr unmapped(const IpAddr& a) { return a.is_v6() ? unmapped(a.v6) : a; }

}  // namespace shunt
