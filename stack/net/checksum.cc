#include "stack/net/checksum.h"

#include <cstring>

namespace shunt {

uint32_t checksum_add(uint32_t sum32, const void* data, size_t len) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  uint64_t sum = sum32;
  // 32-bit big-endian words summed into 64 bits; folded at the end (RFC 1071 2(A)).
  while (len >= 8) {
    uint32_t a, b;
    std::memcpy(&a, p, 4);
    std::memcpy(&b, p + 4, 4);
    sum += __builtin_bswap32(a);
    sum += __builtin_bswap32(b);
    p += 8;
    len -= 8;
  }
  if (len >= 4) {
    uint32_t a;
    std::memcpy(&a, p, 4);
    sum += __builtin_bswap32(a);
    p += 4;
    len -= 4;
  }
  if (len >= 2) {
    sum += uint32_t(p[0]) << 8 | p[1];
    p += 2;
    len -= 2;
  }
  if (len) sum += uint32_t(p[0]) << 8;
  while (sum >> 32) sum = (sum & 0xffffffff) + (sum >> 32);
  // Fold to 32 bits without losing carries.
  uint64_t s = (sum & 0xffff) + ((sum >> 16) & 0xffff) + (sum >> 32);
  return uint32_t(s);
}

uint32_t pseudo_header_sum(const IpAddr& src, const IpAddr& dst, uint8_t proto, uint32_t length) {
  uint32_t sum = 0;
  if (src.is_v4()) {
    sum += src.v4.v >> 16;
    sum += src.v4.v & 0xffff;
    sum += dst.v4.v >> 16;
    sum += dst.v4.v & 0xffff;
    sum += proto;
    sum += length & 0xffff;
    return sum;
  }
  sum = checksum_add(sum, src.v6.b.data(), 16);
  sum = checksum_add(sum, dst.v6.b.data(), 16);
  sum += length >> 16;
  sum += length & 0xffff;
  sum += proto;
  return sum;
}

uint32_t checksum_chain(uint32_t sum, const PacketBuf& p, size_t offset) {
  // Pieces of odd length shift the byte lanes of what follows; track the parity.
  bool odd = false;
  uint64_t total = sum;
  for (const PacketBuf* b = &p; b; b = b->chain) {
    const uint8_t* d = b->data() + offset;
    size_t n = b->size() - offset;
    offset = 0;
    if (n == 0) continue;
    if (odd) {
      total += d[0];  // low byte of the word begun by the previous piece
      ++d;
      --n;
      odd = false;
    }
    total += checksum_add(0, d, n);
    if (n & 1) odd = true;
  }
  while (total >> 32) total = (total & 0xffffffff) + (total >> 32);
  return uint32_t((total & 0xffff) + (total >> 16));
}

}  // namespace shunt
