// TCP sequence number arithmetic (RFC 9293 3.4: comparisons are modulo 2^32).
#pragma once
#include <cstdint>

namespace shunt {

inline bool seq_lt(uint32_t a, uint32_t b) { return int32_t(a - b) < 0; }
inline bool seq_le(uint32_t a, uint32_t b) { return int32_t(a - b) <= 0; }
inline bool seq_gt(uint32_t a, uint32_t b) { return int32_t(a - b) > 0; }
inline bool seq_ge(uint32_t a, uint32_t b) { return int32_t(a - b) >= 0; }
inline uint32_t seq_max(uint32_t a, uint32_t b) { return seq_ge(a, b) ? a : b; }
inline uint32_t seq_min(uint32_t a, uint32_t b) { return seq_le(a, b) ? a : b; }
// a <= x < b, modulo 2^32.
inline bool seq_in(uint32_t x, uint32_t a, uint32_t b) { return seq_le(a, x) && seq_lt(x, b); }

}  // namespace shunt
