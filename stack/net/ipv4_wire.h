// The IPv4 header on the wire (RFC 791 3.1): a checked parse into a plain repr, and emit.
#pragma once
#include <cstddef>
#include <cstdint>

#include "stack/net/addr.h"
#include "stack/net/checksum.h"

namespace shunt {

inline constexpr size_t kIpv4MinHeaderLen = 20;
inline constexpr size_t kIpv4MaxHeaderLen = 60;
inline constexpr size_t kIpv4MaxTotalLen = 65535;
inline constexpr uint16_t kIpv4FlagDf = 0x4000;
inline constexpr uint16_t kIpv4FlagMf = 0x2000;
inline constexpr uint16_t kIpv4OffsetMask = 0x1fff;
// RFC 2113: Router Alert, type 148 (copied, class 0, number 20), length 4, value 0.
inline constexpr uint8_t kIpv4OptRouterAlert = 148;
inline constexpr uint8_t kIpv4OptEnd = 0;
inline constexpr uint8_t kIpv4OptNop = 1;

enum class Ipv4Error {
  kNone,
  kTruncated,      // shorter than 20 bytes, than IHL*4, or than the total length
  kBadVersion,     // version != 4
  kBadHeaderLen,   // IHL < 5
  kBadTotalLen,    // total length < IHL*4
  kBadChecksum,
  kBadOption,      // an option runs past the header or has a length < 2
};

// The parsed form of an IPv4 header.
struct Ipv4Repr {
  Ipv4Addr src;
  Ipv4Addr dst;
  uint16_t header_len = kIpv4MinHeaderLen;  // IHL * 4
  uint16_t total_len = 0;
  uint16_t ident = 0;
  uint16_t frag_offset = 0;  // in bytes
  bool dont_fragment = false;
  bool more_fragments = false;
  uint8_t ttl = 0;
  uint8_t tos = 0;
  uint8_t proto = 0;

  bool is_fragment() const { return more_fragments || frag_offset != 0; }

  // Validates the header at `p` against `len` bytes of buffer (RFC 1122 3.2.1.1-3.2.1.2).
  // Ethernet padding after total_len is allowed. The checksum is verified when asked to.
  static Ipv4Error parse(const uint8_t* p, size_t len, bool verify_checksum, Ipv4Repr& out) {
    if (len < kIpv4MinHeaderLen) return Ipv4Error::kTruncated;
    if ((p[0] >> 4) != 4) return Ipv4Error::kBadVersion;
    const size_t hl = size_t(p[0] & 0x0f) * 4;
    if (hl < kIpv4MinHeaderLen) return Ipv4Error::kBadHeaderLen;
    if (hl > len) return Ipv4Error::kTruncated;
    const uint16_t total = load16(p + 2);
    if (total < hl) return Ipv4Error::kBadTotalLen;
    if (total > len) return Ipv4Error::kTruncated;
    if (verify_checksum && checksum(p, hl) != 0) return Ipv4Error::kBadChecksum;
    // RFC 1122 3.2.1.8: unknown options are ignored, but each must fit in the header.
    if (hl > kIpv4MinHeaderLen && !options_well_formed(p + kIpv4MinHeaderLen, hl - kIpv4MinHeaderLen)) {
      return Ipv4Error::kBadOption;
    }
    out.header_len = uint16_t(hl);
    out.total_len = total;
    out.tos = p[1];
    out.ident = load16(p + 4);
    const uint16_t ff = load16(p + 6);
    out.dont_fragment = ff & kIpv4FlagDf;
    out.more_fragments = ff & kIpv4FlagMf;
    out.frag_offset = uint16_t((ff & kIpv4OffsetMask) * 8);
    out.ttl = p[8];
    out.proto = p[9];
    out.src = Ipv4Addr::read(p + 12);
    out.dst = Ipv4Addr::read(p + 16);
    return Ipv4Error::kNone;
  }

  // RFC 791 3.1: option type 0 ends the list, 1 is one byte of padding; every other option has
  // a length octet counting itself and the type octet.
  static bool options_well_formed(const uint8_t* o, size_t n) {
    size_t i = 0;
    while (i < n) {
      if (o[i] == kIpv4OptEnd) return true;
      if (o[i] == kIpv4OptNop) {
        ++i;
        continue;
      }
      if (i + 1 >= n) return false;
      const size_t olen = o[i + 1];
      if (olen < 2 || i + olen > n) return false;
      i += olen;
    }
    return true;
  }

  // Writes the header (with a Router Alert option if header_len is 24) including its checksum,
  // unless the NIC is to fill that in (transmit checksum offload).
  void emit(uint8_t* p, bool with_checksum = true) const {
    p[0] = uint8_t(0x40 | (header_len / 4));
    p[1] = tos;
    store16(p + 2, total_len);
    store16(p + 4, ident);
    store16(p + 6, uint16_t((dont_fragment ? kIpv4FlagDf : 0) | (more_fragments ? kIpv4FlagMf : 0) |
                            ((frag_offset / 8) & kIpv4OffsetMask)));
    p[8] = ttl;
    p[9] = proto;
    p[10] = 0;
    p[11] = 0;
    src.write(p + 12);
    dst.write(p + 16);
    if (header_len == 24) {
      p[20] = kIpv4OptRouterAlert;
      p[21] = 4;
      p[22] = 0;
      p[23] = 0;
    }
    if (with_checksum) store16(p + 10, checksum(p, header_len));
  }
};

inline const char* ipv4_error_name(Ipv4Error e) {
  switch (e) {
    case Ipv4Error::kNone: return "none";
    case Ipv4Error::kTruncated: return "truncated";
    case Ipv4Error::kBadVersion: return "bad_version";
    case Ipv4Error::kBadHeaderLen: return "bad_header_len";
    case Ipv4Error::kBadTotalLen: return "bad_total_len";
    case Ipv4Error::kBadChecksum: return "bad_checksum";
    case Ipv4Error::kBadOption: return "bad_option";
  }
  return "?";
}

}  // namespace shunt
