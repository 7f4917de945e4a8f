// The Internet checksum (RFC 1071), incrementally over pieces and buffer chains.
#pragma once
#include <cstddef>
#include <cstdint>

#include "stack/core/buffer.h"
#include "stack/net/addr.h"

namespace shunt {

// Adds `len` bytes at `p` to a running 32-bit sum. Pieces must be summed at even offsets,
// except the last one.
uint32_t checksum_add(uint32_t sum, const void* p, size_t len);
// Folds to 16 bits and complements: the value to write into a header.
inline uint16_t checksum_fold(uint64_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return uint16_t(~sum & 0xffff);
}
inline uint16_t checksum(const void* p, size_t len) { return checksum_fold(checksum_add(0, p, len)); }
// Sum of the TCP/UDP/ICMPv6 pseudo-header (RFC 768, RFC 8200 8.1).
uint32_t pseudo_header_sum(const IpAddr& src, const IpAddr& dst, uint8_t proto, uint32_t length);
// Sum over a buffer and its chain, starting `offset` bytes into the first buffer.
uint32_t checksum_chain(uint32_t sum, const PacketBuf& p, size_t offset = 0);

}  // namespace shunt
