// IPv6 wire formats (RFC 8200): the fixed header, extension headers and the fragment header,
// as checked views over bytes and plain parsed forms.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>

#include "stack/net/addr.h"

namespace shunt {

inline constexpr size_t kIpv6HeaderLen = 40;
inline constexpr size_t kIpv6FragHeaderLen = 8;
inline constexpr size_t kIpv6MinMtu = 1280;  // RFC 8200 5

// Next Header values (IANA protocol numbers) that the walk knows.
inline constexpr uint8_t kNextHopByHop = 0;
inline constexpr uint8_t kNextRouting = 43;
inline constexpr uint8_t kNextFragment = 44;
inline constexpr uint8_t kNextEsp = 50;
inline constexpr uint8_t kNextAh = 51;
inline constexpr uint8_t kNextNone = 59;
inline constexpr uint8_t kNextDestOpts = 60;

// Option types in hop-by-hop and destination options headers (RFC 8200 4.2).
inline constexpr uint8_t kOptPad1 = 0;
inline constexpr uint8_t kOptPadN = 1;
inline constexpr uint8_t kOptRouterAlert = 5;  // RFC 2711
inline constexpr uint16_t kRouterAlertMld = 0;  // RFC 2711 2.1: value 0 = MLD

enum class Ipv6Error { kTruncated, kBadVersion, kBadLength };

// The parsed fixed header.
struct Ipv6Repr {
  Ipv6Addr src;
  Ipv6Addr dst;
  uint8_t next_header = 0;
  uint8_t hop_limit = 0;
  uint8_t traffic_class = 0;
  uint32_t flow_label = 0;
  uint16_t payload_len = 0;

  // Checks version and that the payload length fits in `len` bytes.
  static std::optional<Ipv6Repr> parse(const uint8_t* p, size_t len, Ipv6Error* err) {
    if (len < kIpv6HeaderLen) {
      *err = Ipv6Error::kTruncated;
      return std::nullopt;
    }
    if ((p[0] >> 4) != 6) {
      *err = Ipv6Error::kBadVersion;
      return std::nullopt;
    }
    Ipv6Repr r;
    uint32_t w = load32(p);
    r.traffic_class = uint8_t(w >> 20);
    r.flow_label = w & 0xfffff;
    r.payload_len = load16(p + 4);
    r.next_header = p[6];
    r.hop_limit = p[7];
    r.src = Ipv6Addr::read(p + 8);
    r.dst = Ipv6Addr::read(p + 24);
    if (kIpv6HeaderLen + r.payload_len > len) {
      *err = Ipv6Error::kBadLength;
      return std::nullopt;
    }
    return r;
  }
  void emit(uint8_t* p) const {
    store32(p, uint32_t(6) << 28 | uint32_t(traffic_class) << 20 | (flow_label & 0xfffff));
    store16(p + 4, payload_len);
    p[6] = next_header;
    p[7] = hop_limit;
    src.write(p + 8);
    dst.write(p + 24);
  }
};

// The fragment header (RFC 8200 4.5).
struct Ipv6FragRepr {
  uint8_t next_header = 0;
  uint16_t offset = 0;  // in bytes (a multiple of 8)
  bool more = false;
  uint32_t ident = 0;

  static Ipv6FragRepr parse(const uint8_t* p) {  // caller checked 8 bytes
    Ipv6FragRepr f;
    f.next_header = p[0];
    uint16_t w = load16(p + 2);
    f.offset = uint16_t(w & 0xfff8);
    f.more = w & 1;
    f.ident = load32(p + 4);
    return f;
  }
  void emit(uint8_t* p) const {
    p[0] = next_header;
    p[1] = 0;
    store16(p + 2, uint16_t((offset & 0xfff8) | (more ? 1 : 0)));
    store32(p + 4, ident);
  }
};

// Length in bytes of a hop-by-hop, destination options or routing header from its second
// byte (RFC 8200 4.3, 4.4, 4.6: 8-octet units, not counting the first 8).
inline size_t ipv6_ext_len(const uint8_t* p) { return (size_t(p[1]) + 1) * 8; }

}  // namespace shunt

#include <algorithm>
#include <cstring>

#include "stack/core/buffer.h"

namespace shunt {

// Copies `n` bytes starting `off` bytes into a buffer chain to `dst`; returns bytes copied.
inline size_t packet_copy_out(const PacketBuf& p, size_t off, size_t n, uint8_t* dst) {
  size_t done = 0;
  for (const PacketBuf* b = &p; b && done < n; b = b->chain) {
    if (off >= b->size()) {
      off -= b->size();
      continue;
    }
    size_t k = std::min(b->size() - off, n - done);
    std::memcpy(dst + done, b->data() + off, k);
    done += k;
    off = 0;
  }
  return done;
}

}  // namespace shunt
