// ICMPv6 (RFC 4443), NDP (RFC 4861 4) and MLDv2 (RFC 3810 5) wire constants and parsers.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>

#include "stack/net/addr.h"

namespace shunt {

inline constexpr size_t kIcmp6HeaderLen = 8;  // type, code, checksum, 4 bytes of body

// RFC 4443 2.1 message types.
inline constexpr uint8_t kIcmp6DestUnreachable = 1;
inline constexpr uint8_t kIcmp6PacketTooBig = 2;
inline constexpr uint8_t kIcmp6TimeExceeded = 3;
inline constexpr uint8_t kIcmp6ParamProblem = 4;
inline constexpr uint8_t kIcmp6EchoRequest = 128;
inline constexpr uint8_t kIcmp6EchoReply = 129;
inline constexpr uint8_t kIcmp6MldQuery = 130;     // RFC 3810 5.1
inline constexpr uint8_t kIcmp6MldV1Report = 131;  // RFC 2710
inline constexpr uint8_t kIcmp6MldV1Done = 132;
inline constexpr uint8_t kIcmp6RouterSolicit = 133;  // RFC 4861 4.1
inline constexpr uint8_t kIcmp6RouterAdvert = 134;
inline constexpr uint8_t kIcmp6NeighborSolicit = 135;
inline constexpr uint8_t kIcmp6NeighborAdvert = 136;
inline constexpr uint8_t kIcmp6Redirect = 137;
inline constexpr uint8_t kIcmp6MldV2Report = 143;  // RFC 3810 5.2

// Codes.
inline constexpr uint8_t kUnreachNoRoute = 0;
inline constexpr uint8_t kUnreachAdmin = 1;
inline constexpr uint8_t kUnreachAddress = 3;
inline constexpr uint8_t kUnreachPort = 4;
inline constexpr uint8_t kTimeExceededHopLimit = 0;
inline constexpr uint8_t kTimeExceededReassembly = 1;
inline constexpr uint8_t kParamErroneousField = 0;
inline constexpr uint8_t kParamUnknownNextHeader = 1;
inline constexpr uint8_t kParamUnknownOption = 2;
inline constexpr uint8_t kParamIncompleteChain = 3;  // RFC 7112 5

inline bool icmp6_is_error(uint8_t type) { return type < 128; }

// --- NDP (RFC 4861 4.3, 4.4): NS and NA share a layout: 4 bytes of header, 4 of flags or
// reserved, the 16-byte target, then options.
inline constexpr size_t kNdpNsNaLen = 24;
inline constexpr uint8_t kNdpOptSourceLla = 1;
inline constexpr uint8_t kNdpOptTargetLla = 2;
inline constexpr uint32_t kNaFlagRouter = 0x80000000u;
inline constexpr uint32_t kNaFlagSolicited = 0x40000000u;
inline constexpr uint32_t kNaFlagOverride = 0x20000000u;

// The parsed form of an NS or NA (data() at the ICMPv6 header).
struct NdpNsNaRepr {
  Ipv6Addr target;
  uint32_t flags = 0;             // NA only
  std::optional<MacAddr> lla;     // source LLA (NS) or target LLA (NA)
  bool bad_option = false;        // an option with length 0 or running past the message

  static NdpNsNaRepr parse(const uint8_t* p, size_t len, uint8_t lla_type) {
    NdpNsNaRepr r;
    r.flags = load32(p + 4);
    r.target = Ipv6Addr::read(p + 8);
    // RFC 4861 4.6: options are type, length in 8-octet units (0 is invalid), value.
    size_t off = kNdpNsNaLen;
    while (off < len) {
      if (len - off < 2 || p[off + 1] == 0 || size_t(p[off + 1]) * 8 > len - off) {
        r.bad_option = true;
        return r;
      }
      size_t olen = size_t(p[off + 1]) * 8;
      // RFC 4861 4.6.1: for Ethernet the option is 8 bytes with the 6-byte address.
      if (p[off] == lla_type && olen >= 8) r.lla = MacAddr::read(p + off + 2);
      off += olen;
    }
    return r;
  }
};

// --- MLDv2 (RFC 3810 5).
inline constexpr size_t kMldV1Len = 24;       // MLDv1 query/report (RFC 2710 3)
inline constexpr size_t kMldV2QueryLen = 28;  // RFC 3810 5.1
inline constexpr size_t kMldV2RecordLen = 20; // a record with no sources and no aux data
inline constexpr uint8_t kMldModeIsInclude = 1;
inline constexpr uint8_t kMldModeIsExclude = 2;
inline constexpr uint8_t kMldChangeToInclude = 3;
inline constexpr uint8_t kMldChangeToExclude = 4;

// RFC 3810 5.1.3: Maximum Response Code to milliseconds.
inline uint32_t mld_max_response_ms(uint16_t code) {
  if (code < 32768) return code;
  uint32_t mant = code & 0x0fff;
  uint32_t exp = (code >> 12) & 0x7;
  return (mant | 0x1000) << (exp + 3);
}

}  // namespace shunt
