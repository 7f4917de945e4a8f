// ARP for IPv4 over Ethernet on the wire (RFC 826): a checked parse into a plain repr, and emit.
#pragma once
#include <cstddef>
#include <cstdint>

#include "stack/net/addr.h"

namespace shunt {

inline constexpr size_t kArpLen = 28;
inline constexpr uint16_t kArpHwEthernet = 1;
inline constexpr uint16_t kArpOpRequest = 1;
inline constexpr uint16_t kArpOpReply = 2;

enum class ArpError { kNone, kTruncated, kUnsupported, kBadOp };

struct ArpRepr {
  uint16_t op = kArpOpRequest;
  MacAddr sender_mac;
  Ipv4Addr sender_ip;
  MacAddr target_mac;
  Ipv4Addr target_ip;

  // RFC 826 "packet reception": only Ethernet hardware and IPv4 protocol addresses are ours.
  static ArpError parse(const uint8_t* p, size_t len, ArpRepr& out) {
    if (len < kArpLen) return ArpError::kTruncated;
    if (load16(p) != kArpHwEthernet || load16(p + 2) != 0x0800 || p[4] != 6 || p[5] != 4) {
      return ArpError::kUnsupported;
    }
    out.op = load16(p + 6);
    if (out.op != kArpOpRequest && out.op != kArpOpReply) return ArpError::kBadOp;
    out.sender_mac = MacAddr::read(p + 8);
    out.sender_ip = Ipv4Addr::read(p + 14);
    out.target_mac = MacAddr::read(p + 18);
    out.target_ip = Ipv4Addr::read(p + 24);
    return ArpError::kNone;
  }
  void emit(uint8_t* p) const {
    store16(p, kArpHwEthernet);
    store16(p + 2, 0x0800);
    p[4] = 6;
    p[5] = 4;
    store16(p + 6, op);
    sender_mac.write(p + 8);
    sender_ip.write(p + 14);
    target_mac.write(p + 18);
    target_ip.write(p + 24);
  }
};

}  // namespace shunt
