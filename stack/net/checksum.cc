#include "stack/net/checksum.h"

#include <bit>
#include <cstring>

namespace shunt {

uint32_t checksum_add(uint32_t sum32, const void* data, size_t len) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  // Native-order 64-bit words with the end-around carry (RFC 1071 2(C)), folded and
  // byte-swapped once at the end: RFC 1071 2(B), the sum is independent of byte order, and 2^64-1
  // is a multiple of 0xffff, so the folded sum is that of the 16-bit words. Only the final fold
  // depends on the machine being little-endian.
  static_assert(std::endian::native == std::endian::little, "checksum_add assumes little-endian");
  uint64_t acc = 0;
  auto add = [&acc](uint64_t w) {
    acc += w;
    acc += acc < w;  // the carry out goes back in at the bottom
  };
  auto word = [](const uint8_t* q) {
    uint64_t w;
    std::memcpy(&w, q, 8);
    return w;
  };
  while (len >= 32) {
    add(word(p));
    add(word(p + 8));
    add(word(p + 16));
    add(word(p + 24));
    p += 32;
    len -= 32;
  }
  while (len >= 8) {
    add(word(p));
    p += 8;
    len -= 8;
  }
  if (len >= 4) {
    uint32_t w;
    std::memcpy(&w, p, 4);
    add(w);
    p += 4;
    len -= 4;
  }
  if (len >= 2) {
    uint16_t w;
    std::memcpy(&w, p, 2);
    add(w);
    p += 2;
    len -= 2;
  }
  if (len) add(p[0]);  // the high byte of a big-endian word is the low byte here
  acc = (acc & 0xffffffffu) + (acc >> 32);
  acc = (acc & 0xffffu) + (acc >> 16);
  acc = (acc & 0xffffu) + (acc >> 16);
  acc = (acc & 0xffffu) + (acc >> 16);
  const uint32_t be = __builtin_bswap16(uint16_t(acc));
  return sum32 + be;  // callers fold; 32 bits hold far more than any packet's worth of pieces
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
