// ICMP for IPv4 on the wire (RFC 792): message types and the 8-byte header.
#pragma once
#include <cstddef>
#include <cstdint>

namespace shunt {

inline constexpr size_t kIcmpHeaderLen = 8;
inline constexpr uint8_t kIcmpEchoReply = 0;
inline constexpr uint8_t kIcmpDestUnreachable = 3;
inline constexpr uint8_t kIcmpSourceQuench = 4;
inline constexpr uint8_t kIcmpRedirect = 5;
inline constexpr uint8_t kIcmpEchoRequest = 8;
inline constexpr uint8_t kIcmpTimeExceeded = 11;
inline constexpr uint8_t kIcmpParamProblem = 12;

// Destination unreachable codes (RFC 792, RFC 1122 3.2.2.1).
inline constexpr uint8_t kIcmpUnreachNet = 0;
inline constexpr uint8_t kIcmpUnreachHost = 1;
inline constexpr uint8_t kIcmpUnreachProtocol = 2;
inline constexpr uint8_t kIcmpUnreachPort = 3;
inline constexpr uint8_t kIcmpUnreachFragNeeded = 4;

// RFC 1122 3.2.2: error messages are never sent about ICMP errors, only about queries.
inline bool icmp_is_error(uint8_t type) {
  return type == kIcmpDestUnreachable || type == kIcmpSourceQuench || type == kIcmpRedirect ||
         type == kIcmpTimeExceeded || type == kIcmpParamProblem;
}
inline bool icmp_is_query(uint8_t type) {
  return type == kIcmpEchoReply || type == kIcmpEchoRequest || (type >= 13 && type <= 18);
}

}  // namespace shunt
