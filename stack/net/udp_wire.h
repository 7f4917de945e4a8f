// The UDP header on the wire (RFC 768): a checked view and a plain parsed form.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>

#include "stack/net/addr.h"

namespace shunt {

inline constexpr size_t kUdpHeaderLen = 8;
// Largest payload: 65535 minus the UDP header and the IPv4 header without options (RFC 791);
// IPv6 counts only the UDP header against its 16-bit payload length (RFC 8200 3, no jumbograms).
inline constexpr size_t kUdpMaxPayloadV4 = 65535 - 20 - kUdpHeaderLen;
inline constexpr size_t kUdpMaxPayloadV6 = 65535 - kUdpHeaderLen;

enum class UdpError { kTruncated, kBadLength };

// The parsed form of a UDP header.
struct UdpRepr {
  uint16_t src_port = 0;
  uint16_t dst_port = 0;
  uint16_t length = 0;    // header plus payload, as the header says
  uint16_t checksum = 0;  // 0: none sent (allowed for IPv4 only, RFC 768)

  // `avail` is what the IP layer delivered (header plus payload). The length field may be
  // shorter (the rest is padding to trim) but never longer, nor below the header size.
  static std::optional<UdpRepr> parse(const uint8_t* p, size_t avail, UdpError* err = nullptr) {
    if (avail < kUdpHeaderLen) {
      if (err) *err = UdpError::kTruncated;
      return std::nullopt;
    }
    UdpRepr r;
    r.src_port = load16(p);
    r.dst_port = load16(p + 2);
    r.length = load16(p + 4);
    r.checksum = load16(p + 6);
    if (r.length < kUdpHeaderLen || r.length > avail) {
      if (err) *err = UdpError::kBadLength;
      return std::nullopt;
    }
    return r;
  }
  // Writes the header; the checksum is written as given (fill it in afterwards).
  void emit(uint8_t* p) const {
    store16(p, src_port);
    store16(p + 2, dst_port);
    store16(p + 4, length);
    store16(p + 6, checksum);
  }
};

}  // namespace shunt
