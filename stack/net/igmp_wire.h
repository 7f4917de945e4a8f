// IGMP on the wire (RFC 3376 4, with the v1/v2 query forms of RFC 1112 and RFC 2236).
#pragma once
#include <cstddef>
#include <cstdint>

#include "stack/core/clock.h"
#include "stack/net/addr.h"

namespace shunt {

inline constexpr uint8_t kIgmpQuery = 0x11;
inline constexpr uint8_t kIgmpV1Report = 0x12;
inline constexpr uint8_t kIgmpV2Report = 0x16;
inline constexpr uint8_t kIgmpV2Leave = 0x17;
inline constexpr uint8_t kIgmpV3Report = 0x22;

// Group record types (RFC 3376 4.2.12).
inline constexpr uint8_t kIgmpModeIsInclude = 1;
inline constexpr uint8_t kIgmpModeIsExclude = 2;
inline constexpr uint8_t kIgmpChangeToInclude = 3;
inline constexpr uint8_t kIgmpChangeToExclude = 4;

inline constexpr size_t kIgmpV12Len = 8;
inline constexpr size_t kIgmpV3QueryMinLen = 12;
inline constexpr size_t kIgmpV3ReportHeaderLen = 8;
inline constexpr size_t kIgmpGroupRecordLen = 8;  // with no sources and no aux data

inline constexpr Ipv4Addr kIgmpAllSystems{0xe0000001};    // 224.0.0.1
inline constexpr Ipv4Addr kIgmpV3Routers{0xe0000016};     // 224.0.0.22

enum class IgmpError { kNone, kTruncated, kBadLength, kBadGroup };

struct IgmpQuery {
  int version = 3;          // 1, 2 or 3 (RFC 3376 7.1)
  Ipv4Addr group;           // 0: a general query
  Nanos max_resp = 0;       // Max Resp Time
  uint8_t qrv = 0;          // querier's robustness variable, 0 if none
  uint16_t num_sources = 0;

  // `p` is the IGMP message (type 0x11), `len` its length.
  static IgmpError parse(const uint8_t* p, size_t len, IgmpQuery& q) {
    if (len < kIgmpV12Len) return IgmpError::kTruncated;
    q.group = Ipv4Addr::read(p + 4);
    if (!q.group.is_unspecified() && !q.group.is_multicast()) return IgmpError::kBadGroup;
    const uint8_t code = p[1];
    if (len == kIgmpV12Len) {
      // RFC 3376 7.1: an 8-byte query is IGMPv1 if Max Resp Code is 0, else IGMPv2.
      q.version = code == 0 ? 1 : 2;
      q.max_resp = (code == 0 ? 100 : code) * 100 * kMilli;
      q.qrv = 0;
      q.num_sources = 0;
      return IgmpError::kNone;
    }
    // RFC 3376 7.1: queries of 9 to 11 bytes are ignored.
    if (len < kIgmpV3QueryMinLen) return IgmpError::kBadLength;
    q.version = 3;
    q.max_resp = decode_time(code) * 100 * kMilli;
    q.qrv = p[8] & 0x07;
    q.num_sources = load16(p + 10);
    if (len < kIgmpV3QueryMinLen + size_t(q.num_sources) * 4) return IgmpError::kTruncated;
    return IgmpError::kNone;
  }
  // RFC 3376 4.1.1: Max Resp Code (and QQIC) as a floating-point value in tenths of a second.
  static int64_t decode_time(uint8_t code) {
    if (code < 128) return code;
    const int64_t mant = code & 0x0f;
    const int exp = (code >> 4) & 0x07;
    return (mant | 0x10) << (exp + 3);
  }
};

}  // namespace shunt
