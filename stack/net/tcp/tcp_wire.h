// The TCP header (RFC 9293 3.1) and its options: MSS (RFC 9293 3.2), window scale and
// timestamps (RFC 7323), SACK-permitted and SACK (RFC 2018). A checked parse of a segment in
// place, a plain repr, and emit.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>

#include "stack/net/addr.h"

namespace shunt {

inline constexpr size_t kTcpHeaderLen = 20;
inline constexpr size_t kTcpMaxHeaderLen = 60;
inline constexpr size_t kTcpMaxOptionsLen = 40;

enum TcpFlag : uint8_t {
  kTcpFin = 0x01,
  kTcpSyn = 0x02,
  kTcpRst = 0x04,
  kTcpPsh = 0x08,
  kTcpAck = 0x10,
  kTcpUrg = 0x20,
  kTcpEce = 0x40,
  kTcpCwr = 0x80,
};

enum TcpOptionKind : uint8_t {
  kTcpOptEnd = 0,
  kTcpOptNop = 1,
  kTcpOptMss = 2,
  kTcpOptWscale = 3,
  kTcpOptSackPermitted = 4,
  kTcpOptSack = 5,
  kTcpOptTimestamps = 8,
};

// RFC 7323 2.3: a shift above 14 is used as 14.
inline constexpr uint8_t kTcpMaxWscale = 14;
// Four blocks fill the option space without timestamps (2 + 4 * 8 = 34 bytes), three with them.
inline constexpr size_t kTcpMaxSackBlocks = 4;

struct TcpSackBlock {
  uint32_t left = 0;   // first sequence number of the block
  uint32_t right = 0;  // sequence number just after the block
  friend bool operator==(const TcpSackBlock&, const TcpSackBlock&) = default;
};

enum class TcpError : uint8_t {
  kTruncated,      // shorter than 20 bytes
  kBadDataOffset,  // data offset below 5 or beyond the segment
};

// What the options of one segment said. Unknown options are skipped; a known option with the
// wrong length is ignored (as Linux does); an option whose length is 0 or 1 or runs past the
// option space ends the parse, with `malformed` set for the caller to count.
struct TcpOptions {
  bool has_mss = false;
  bool has_wscale = false;
  bool sack_permitted = false;
  bool has_timestamps = false;
  bool malformed = false;
  uint8_t wscale = 0;  // as received (callers clamp to kTcpMaxWscale)
  uint8_t sack_count = 0;
  uint16_t mss = 0;
  uint32_t tsval = 0;
  uint32_t tsecr = 0;
  TcpSackBlock sack[kTcpMaxSackBlocks];

  static TcpOptions parse(const uint8_t* p, size_t len) {
    TcpOptions o;
    size_t i = 0;
    while (i < len) {
      const uint8_t kind = p[i];
      if (kind == kTcpOptEnd) break;
      if (kind == kTcpOptNop) {
        ++i;
        continue;
      }
      // Every other option has a length byte that counts the kind and itself (RFC 9293 3.2).
      if (len - i < 2) {
        o.malformed = true;
        break;
      }
      const size_t olen = p[i + 1];
      if (olen < 2 || olen > len - i) {
        o.malformed = true;  // a lying length: nothing after it can be trusted
        break;
      }
      const uint8_t* v = p + i + 2;
      switch (kind) {
        case kTcpOptMss:
          if (olen == 4) {
            o.has_mss = true;
            o.mss = load16(v);
          }
          break;
        case kTcpOptWscale:
          if (olen == 3) {
            o.has_wscale = true;
            o.wscale = v[0];
          }
          break;
        case kTcpOptSackPermitted:
          if (olen == 2) o.sack_permitted = true;
          break;
        case kTcpOptTimestamps:
          if (olen == 10) {
            o.has_timestamps = true;
            o.tsval = load32(v);
            o.tsecr = load32(v + 4);
          }
          break;
        case kTcpOptSack:
          // RFC 2018 3: 2 + 8n bytes; more than fits in 40 bytes cannot occur (n <= 4).
          if (olen >= 10 && (olen - 2) % 8 == 0) {
            const size_t n = (olen - 2) / 8;
            o.sack_count = 0;
            for (size_t k = 0; k < n && k < kTcpMaxSackBlocks; ++k) {
              o.sack[k].left = load32(v + 8 * k);
              o.sack[k].right = load32(v + 8 * k + 4);
              ++o.sack_count;
            }
          }
          break;
        default: break;  // unknown: skipped by its length (RFC 9293 3.2, RFC 1122 4.2.2.5)
      }
      i += olen;
    }
    return o;
  }
};

// What a segment we send carries. emit() lays options out as Linux does (aligned, NOP-padded):
// SYN: MSS, SACK-permitted + timestamps, NOP + window scale; others: NOP NOP timestamps,
// NOP NOP SACK. Returns the option bytes written (a multiple of 4, at most 40).
struct TcpTxOptions {
  bool mss = false;
  bool wscale = false;
  bool sack_permitted = false;
  bool timestamps = false;
  uint8_t wscale_value = 0;
  uint8_t sack_count = 0;
  uint16_t mss_value = 0;
  uint32_t tsval = 0;
  uint32_t tsecr = 0;
  const TcpSackBlock* sack = nullptr;

  size_t size() const {
    size_t n = 0;
    if (mss) n += 4;
    if (timestamps) n += 12;  // (SACK-permitted or NOP NOP) + timestamps
    else if (sack_permitted) n += 4;
    if (wscale) n += 4;
    if (sack_count) n += 4 + 8 * size_t(sack_count);
    return n;
  }
  size_t emit(uint8_t* p) const {
    uint8_t* s = p;
    if (mss) {
      p[0] = kTcpOptMss;
      p[1] = 4;
      store16(p + 2, mss_value);
      p += 4;
    }
    if (timestamps) {
      if (sack_permitted) {
        p[0] = kTcpOptSackPermitted;
        p[1] = 2;
      } else {
        p[0] = kTcpOptNop;
        p[1] = kTcpOptNop;
      }
      p[2] = kTcpOptTimestamps;
      p[3] = 10;
      store32(p + 4, tsval);
      store32(p + 8, tsecr);
      p += 12;
    } else if (sack_permitted) {
      p[0] = kTcpOptNop;
      p[1] = kTcpOptNop;
      p[2] = kTcpOptSackPermitted;
      p[3] = 2;
      p += 4;
    }
    if (wscale) {
      p[0] = kTcpOptNop;
      p[1] = kTcpOptWscale;
      p[2] = 3;
      p[3] = wscale_value;
      p += 4;
    }
    if (sack_count) {
      p[0] = kTcpOptNop;
      p[1] = kTcpOptNop;
      p[2] = kTcpOptSack;
      p[3] = uint8_t(2 + 8 * sack_count);
      p += 4;
      for (size_t k = 0; k < sack_count; ++k) {
        store32(p, sack[k].left);
        store32(p + 4, sack[k].right);
        p += 8;
      }
    }
    return size_t(p - s);
  }
};

// A checked view of a received segment's fixed header; data_offset is validated against the
// bytes present.
struct TcpRepr {
  uint16_t src_port = 0;
  uint16_t dst_port = 0;
  uint32_t seq = 0;
  uint32_t ack = 0;
  uint8_t flags = 0;
  uint16_t window = 0;  // unscaled, as on the wire
  uint16_t checksum = 0;
  uint16_t urgent = 0;
  uint8_t header_len = 0;  // data offset * 4, 20..60

  // `len` is what the segment holds (header and payload).
  static std::optional<TcpRepr> parse(const uint8_t* p, size_t len, TcpError* err = nullptr) {
    if (len < kTcpHeaderLen) {
      if (err) *err = TcpError::kTruncated;
      return std::nullopt;
    }
    TcpRepr r;
    r.header_len = uint8_t((p[12] >> 4) * 4);
    // RFC 9293 3.1: the data offset counts 32-bit words, at least 5.
    if (r.header_len < kTcpHeaderLen || r.header_len > len) {
      if (err) *err = TcpError::kBadDataOffset;
      return std::nullopt;
    }
    r.src_port = load16(p);
    r.dst_port = load16(p + 2);
    r.seq = load32(p + 4);
    r.ack = load32(p + 8);
    r.flags = p[13];
    r.window = load16(p + 14);
    r.checksum = load16(p + 16);
    r.urgent = load16(p + 18);
    return r;
  }
  bool has(uint8_t f) const { return (flags & f) != 0; }

  // Writes the fixed header with data offset for `options_len` bytes of options (checksum 0).
  static void emit(uint8_t* p, uint16_t sport, uint16_t dport, uint32_t seq, uint32_t ack, uint8_t flags,
                   uint16_t window, size_t options_len) {
    store16(p, sport);
    store16(p + 2, dport);
    store32(p + 4, seq);
    store32(p + 8, ack);
    p[12] = uint8_t(((kTcpHeaderLen + options_len) / 4) << 4);
    p[13] = flags;
    store16(p + 14, window);
    store16(p + 16, 0);
    store16(p + 18, 0);
  }
};

}  // namespace shunt
