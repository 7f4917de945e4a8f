// The sender's view of what the peer holds out of order: RFC 2018 SACK information, the
// RFC 6675 queries over it (IsLost, SetPipe, NextSeg rules 1 and 3) and RFC 2883 D-SACK
// detection. Pure logic: at most max_ranges() disjoint, non-adjacent SACKed ranges [start, end)
// in sequence space above snd_una, sorted. The range array starts empty and grows (doubling) only
// when a block needs a new range, up to the bound given at construction (SHUNT_TCP_SACK_MAX_RANGES
// for a connection): a slow-path allocation during loss recovery, never per segment. Everything in sequence space is compared
// modulo 2^32 (stack/net/tcp/seq.h).
//
// Conventions: `high_rxt` is one past the highest octet retransmitted in the current recovery
// (== snd_una when nothing was retransmitted), so RFC 6675's "S1 <= HighRxt" reads here
// "S1 < high_rxt" and "above HighRxt" reads "S1 >= high_rxt".
//
// The peer is hostile: a block it sends is kept only if it lies inside [ack, snd_nxt], is
// non-empty and not inverted; otherwise it is ignored and counted. When max_ranges() ranges are
// held and a block would need a new one, the scoreboard keeps the lowest ranges (those next to
// snd_una, which decide what is retransmitted first) and forgets the highest, counting it in
// dropped_ranges(). Forgetting is safe, only conservative: forgotten octets count as in flight
// in pipe() and may be retransmitted needlessly; a block reported again is counted again in
// newly_sacked.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace shunt {

struct SackBlock {
  uint32_t start = 0, end = 0;  // [start, end)
};

class SackScoreboard {
 public:
  // The default bound: enough for every hole of a multi-megabyte window (Linux keeps one mark
  // per segment, unbounded); 8 bytes each.
  static constexpr size_t kDefaultMaxRanges = 4096;
  explicit SackScoreboard(size_t max_ranges = kDefaultMaxRanges) : max_ranges_(max_ranges ? max_ranges : 1) {}
  size_t max_ranges() const { return max_ranges_; }
  // A D-SACK block below the cumulative ACK is believed only within this distance of it (the
  // largest RFC 7323 window); farther ones are ignored and counted.
  static constexpr uint32_t kMaxDsackDistance = 1u << 30;

  // Forget every SACKed range (a new connection, or an RTO: RFC 6675 5.1 lets the sender
  // forget SACK information then); ranges will be kept above snd_una. dropped_ranges() is a
  // statistic of the connection and survives.
  void reset(uint32_t snd_una);

  struct Update {
    uint32_t newly_sacked = 0;    // octets SACKed by this ACK that were not SACKed before
    bool dsack = false;           // the first block was a D-SACK (RFC 2883 4)
    uint32_t ignored_blocks = 0;  // blocks not used (outside [ack, snd_nxt], empty, inverted)
  };
  // Applies an ACK: cumulative `ack` and the SACK blocks as received. Blocks outside
  // [ack, snd_nxt], empty or inverted are ignored and counted; the first block is a D-SACK if it
  // starts below `ack` or lies inside the second block (RFC 2883 4). A D-SACK is reported, not
  // recorded. An `ack` below the one already seen does not move snd_una back; one beyond
  // snd_nxt does not move it at all.
  Update on_ack(uint32_t ack, const SackBlock* blocks, size_t n, uint32_t snd_nxt);

  bool is_sacked(uint32_t seq) const;
  // RFC 6675 IsLost(SeqNum): true if DupThresh discontiguous SACKed sequences (ranges), or more
  // than (DupThresh-1)*SMSS bytes, are SACKed above seq.
  bool is_lost(uint32_t seq, uint32_t smss, int dupthresh = 3) const;
  // RFC 6675 SetPipe(): octets in flight in [snd_una, snd_nxt) given HighRxt: every unSACKed
  // octet counts once if not lost, and once more if retransmitted (below high_rxt).
  uint64_t pipe(uint32_t snd_una, uint32_t snd_nxt, uint32_t high_rxt, uint32_t smss,
                int dupthresh = 3) const;
  // RFC 6675 NextSeg() rules 1 and 3 for retransmissions: the first unSACKed range at or above
  // high_rxt (and >= snd_una, < snd_nxt) that is lost (rule 1) or, if `rule3`, not SACKed with
  // SACKed data above it. Returns false if none. 0 < len <= smss, and [seq, seq+len) holds no
  // SACKed octet. Rule 2 (new data) and rule 4 (rescue) are the engine's.
  bool next_retransmit(uint32_t snd_una, uint32_t snd_nxt, uint32_t high_rxt, uint32_t smss,
                       bool rule3, uint32_t& seq, uint32_t& len, int dupthresh = 3) const;

  uint32_t sacked_bytes() const { return sacked_bytes_; }
  uint32_t highest_sacked() const;  // end of the highest SACKed range, or snd_una
  size_t ranges() const { return ranges_.size(); }
  // SACKed octets inside [a, b).
  uint64_t sacked_in(uint32_t a, uint32_t b) const;
  uint64_t dropped_ranges() const { return dropped_ranges_; }  // blocks it could not keep
  uint32_t snd_una() const { return snd_una_; }
  // The i-th SACKed range from the lowest, i < ranges().
  SackBlock range(size_t i) const { return ranges_[i]; }
  // Up to `max` of the most relevant SACK blocks a RECEIVER should send for its out-of-order
  // data is a different job -- not here.

 private:
  // Start of the lowest unSACKed octets at or above which nothing is lost (RFC 6675 IsLost is
  // monotone: true below it, false at and above it, for unSACKed octets).
  uint32_t lost_limit(uint32_t snd_una, uint32_t smss, int dupthresh) const;
  // Index of the first range ending after seq (seq_lt(seq, end)), or ranges().
  size_t first_ending_after(uint32_t seq) const;
  // Drop ranges (or their parts) below snd_una_.
  void trim_below_una();
  // Records [start, end), above snd_una_; returns the octets newly SACKed.
  uint32_t insert(uint32_t start, uint32_t end);

  std::vector<SackBlock> ranges_;
  size_t max_ranges_;
  uint32_t snd_una_ = 0;
  uint32_t sacked_bytes_ = 0;
  uint64_t dropped_ranges_ = 0;
};

}  // namespace shunt
