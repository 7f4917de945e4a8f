// What the IP layers tell the layer above about a received datagram.
#pragma once
#include <cstdint>

#include "stack/net/addr.h"

namespace shunt {

// On delivery to an upper layer, the PacketPtr's data() is the first byte of that layer's
// header, and the `l3_len` bytes just before data() in the same buffer are the IP header (with
// IPv6 extension headers) as received, so ICMP errors can quote them. A reassembled datagram
// continues in PacketBuf::chain.
struct IpRx {
  IpAddr src;
  IpAddr dst;
  uint8_t proto = 0;       // upper-layer protocol, after IPv6 extension headers
  uint8_t hop_limit = 0;   // TTL or hop limit as received
  uint8_t tos = 0;         // IPv4 TOS or IPv6 traffic class
  uint16_t l3_len = 0;
  bool link_multicast = false;  // Ethernet destination was multicast
  bool link_broadcast = false;  // Ethernet destination was ff:ff:ff:ff:ff:ff
  bool reassembled = false;
};

inline constexpr uint8_t kProtoIcmp = 1;
inline constexpr uint8_t kProtoIgmp = 2;
inline constexpr uint8_t kProtoTcp = 6;
inline constexpr uint8_t kProtoUdp = 17;
inline constexpr uint8_t kProtoIcmpv6 = 58;

}  // namespace shunt
