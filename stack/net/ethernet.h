// Ethernet II with up to two VLAN tags (802.1Q / 802.1ad).
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>

#include "stack/net/addr.h"

namespace shunt {

inline constexpr uint16_t kEtherTypeIpv4 = 0x0800;
inline constexpr uint16_t kEtherTypeArp = 0x0806;
inline constexpr uint16_t kEtherTypeIpv6 = 0x86dd;
inline constexpr uint16_t kEtherTypeVlan = 0x8100;
inline constexpr uint16_t kEtherTypeQinQ = 0x88a8;
inline constexpr size_t kEthHeaderLen = 14;

enum class EthError { kTruncated, kNotEthernetII, kTooManyTags };
const char* eth_error_name(EthError e);

// The parsed form of an Ethernet header.
struct EthRepr {
  MacAddr dst;
  MacAddr src;
  uint16_t ethertype = 0;      // of the payload, after any tags
  uint16_t vlan_id = 0;        // innermost tag's VID, 0 if untagged
  uint8_t vlan_count = 0;
  uint8_t pcp = 0;
  size_t header_len = kEthHeaderLen;  // including tags

  struct Result;
  static Result parse(const uint8_t* p, size_t len);
  // Writes a 14-byte untagged header.
  static void emit(uint8_t* p, const MacAddr& dst, const MacAddr& src, uint16_t ethertype) {
    dst.write(p);
    src.write(p + 6);
    store16(p + 12, ethertype);
  }
};

struct EthRepr::Result {
  std::optional<EthRepr> repr;
  EthError error = EthError::kTruncated;
};

inline EthRepr::Result EthRepr::parse(const uint8_t* p, size_t len) {
  Result r;
  if (len < kEthHeaderLen) return r;
  EthRepr e;
  e.dst = MacAddr::read(p);
  e.src = MacAddr::read(p + 6);
  size_t off = 12;
  uint16_t type = load16(p + off);
  while (type == kEtherTypeVlan || type == kEtherTypeQinQ) {
    if (e.vlan_count == 2) {
      r.error = EthError::kTooManyTags;
      return r;
    }
    if (len < off + 6) return r;
    uint16_t tci = load16(p + off + 2);
    e.pcp = uint8_t(tci >> 13);
    e.vlan_id = tci & 0x0fff;
    ++e.vlan_count;
    off += 4;
    type = load16(p + off);
  }
  if (type < 0x0600) {  // an 802.3 length field, not an EtherType
    r.error = EthError::kNotEthernetII;
    return r;
  }
  e.ethertype = type;
  e.header_len = off + 2;
  r.repr = e;
  return r;
}

inline const char* eth_error_name(EthError e) {
  switch (e) {
    case EthError::kTruncated: return "truncated";
    case EthError::kNotEthernetII: return "not_ethernet_ii";
    case EthError::kTooManyTags: return "too_many_vlan_tags";
  }
  return "?";
}

}  // namespace shunt
