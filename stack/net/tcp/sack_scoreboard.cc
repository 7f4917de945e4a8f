#include "stack/net/tcp/sack_scoreboard.h"

#include <algorithm>

#include "stack/net/tcp/seq.h"

namespace shunt {

namespace {
bool well_formed(const SackBlock& b) { return seq_lt(b.start, b.end); }
uint64_t threshold_bytes(uint32_t smss, int dupthresh) { return uint64_t(dupthresh - 1) * smss; }
}  // namespace

size_t SackScoreboard::first_ending_after(uint32_t seq) const {
  // Ranges are sorted and lie within 2^31 of snd_una_, so seq_le orders them.
  auto it = std::partition_point(ranges_.begin(), ranges_.end(),
                                 [seq](const SackBlock& r) { return seq_le(r.end, seq); });
  return size_t(it - ranges_.begin());
}

void SackScoreboard::reset(uint32_t snd_una) {
  ranges_.clear();
  snd_una_ = snd_una;
  sacked_bytes_ = 0;
  // dropped_ranges_ is a statistic of the connection: it survives.
}

void SackScoreboard::trim_below_una() {
  size_t gone = 0;
  while (gone < ranges_.size() && seq_le(ranges_[gone].end, snd_una_)) {
    sacked_bytes_ -= ranges_[gone].end - ranges_[gone].start;
    ++gone;
  }
  if (gone) ranges_.erase(ranges_.begin(), ranges_.begin() + ptrdiff_t(gone));
  if (!ranges_.empty() && seq_lt(ranges_[0].start, snd_una_)) {
    sacked_bytes_ -= snd_una_ - ranges_[0].start;
    ranges_[0].start = snd_una_;
  }
}

uint32_t SackScoreboard::insert(uint32_t start, uint32_t end) {
  // Ranges [i, j) overlap or touch [start, end); they merge with it into one.
  // First range that ends at or after start (touching merges too).
  size_t i = size_t(std::partition_point(ranges_.begin(), ranges_.end(),
                                         [start](const SackBlock& r) { return seq_lt(r.end, start); }) -
                    ranges_.begin());
  size_t j = i;
  uint32_t merged_old = 0;
  while (j < ranges_.size() && seq_le(ranges_[j].start, end)) {
    merged_old += ranges_[j].end - ranges_[j].start;
    ++j;
  }
  if (i == j) {
    if (ranges_.size() >= max_ranges_) {
      // Memory bound: keep the lowest ranges, they decide the next retransmissions.
      ++dropped_ranges_;
      if (i == ranges_.size()) return 0;
      sacked_bytes_ -= ranges_.back().end - ranges_.back().start;
      ranges_.pop_back();
    } else if (ranges_.size() == ranges_.capacity()) {
      // Grow by doubling, never past the bound (a slow path: a new hole in recovery).
      ranges_.reserve(std::min(max_ranges_, std::max<size_t>(8, 2 * ranges_.capacity())));
    }
    ranges_.insert(ranges_.begin() + ptrdiff_t(i), SackBlock{start, end});
    sacked_bytes_ += end - start;
    return end - start;
  }
  SackBlock merged{seq_min(start, ranges_[i].start), seq_max(end, ranges_[j - 1].end)};
  ranges_[i] = merged;
  ranges_.erase(ranges_.begin() + ptrdiff_t(i + 1), ranges_.begin() + ptrdiff_t(j));
  uint32_t added = (merged.end - merged.start) - merged_old;
  sacked_bytes_ += added;
  return added;
}

SackScoreboard::Update SackScoreboard::on_ack(uint32_t ack, const SackBlock* blocks, size_t n,
                                              uint32_t snd_nxt) {
  Update u;
  if (seq_gt(ack, snd_una_) && seq_le(ack, snd_nxt)) {
    snd_una_ = ack;
    trim_below_una();
  }
  if (!blocks) n = 0;
  size_t first = 0;
  if (n > 0 && well_formed(blocks[0])) {
    const SackBlock& b0 = blocks[0];
    // RFC 2883 4: a first block below the cumulative ACK, or inside the second block,
    // reports duplicate data. It is reported, not recorded (the second block, if any,
    // carries what is really held above the ACK).
    // Distances from the block's start, so nothing depends on a half-space comparison.
    uint32_t to_ack = ack - b0.start;
    bool below_ack = seq_lt(b0.start, ack) && to_ack <= kMaxDsackDistance && seq_le(ack, snd_nxt) &&
                     b0.end - b0.start <= snd_nxt - b0.start;
    bool inside_second = n >= 2 && well_formed(blocks[1]) && seq_le(blocks[1].start, b0.start) &&
                         seq_le(b0.end, blocks[1].end);
    if (below_ack || inside_second) {
      u.dsack = true;
      first = 1;
    }
  }
  for (size_t k = first; k < n; ++k) {
    const SackBlock& b = blocks[k];
    // RFC 2018 5 / hostile peers: a block must be non-empty, not inverted, and report data
    // that was sent and is not yet cumulatively acknowledged.
    // Offsets from snd_una: snd_una <= start < end <= snd_nxt, with no wrap in between.
    uint32_t window = snd_nxt - snd_una_, from = b.start - snd_una_, to = b.end - snd_una_;
    if (seq_gt(snd_una_, snd_nxt) || !(from < to && to <= window)) {
      ++u.ignored_blocks;
      continue;
    }
    u.newly_sacked += insert(b.start, b.end);
  }
  return u;
}

bool SackScoreboard::is_sacked(uint32_t seq) const {
  if (ranges_.empty() || seq_lt(seq, snd_una_)) return false;
  const size_t i = first_ending_after(seq);
  return i < ranges_.size() && seq_in(seq, ranges_[i].start, ranges_[i].end);
}

uint32_t SackScoreboard::highest_sacked() const {
  return ranges_.empty() ? snd_una_ : ranges_.back().end;
}

bool SackScoreboard::is_lost(uint32_t seq, uint32_t smss, int dupthresh) const {
  dupthresh = std::max(dupthresh, 1);
  // RFC 6675 4 IsLost: octets "greater than SeqNum", walking down from the highest range.
  int discontiguous = 0;
  uint64_t bytes = 0;
  const uint32_t above = seq + 1;
  for (size_t i = ranges_.size(); i-- > 0;) {
    const SackBlock& r = ranges_[i];
    if (!seq_lt(above, r.end)) break;  // this range, and all below it, end at or before seq
    bytes += r.end - seq_max(r.start, above);
    ++discontiguous;
    if (discontiguous >= dupthresh || bytes > threshold_bytes(smss, dupthresh)) return true;
  }
  return false;
}

uint32_t SackScoreboard::lost_limit(uint32_t snd_una, uint32_t smss, int dupthresh) const {
  dupthresh = std::max(dupthresh, 1);
  // An unSACKed octet has every octet of each range above it "greater than" itself, so
  // IsLost only changes value at the start of a range: the first range (from the top) at
  // which the count or the bytes cross the threshold bounds the lost octets.
  int discontiguous = 0;
  uint64_t bytes = 0;
  for (size_t i = ranges_.size(); i-- > 0;) {
    const SackBlock& r = ranges_[i];
    if (seq_le(r.end, snd_una)) break;
    uint32_t start = seq_max(r.start, snd_una);
    bytes += r.end - start;
    ++discontiguous;
    if (discontiguous >= dupthresh || bytes > threshold_bytes(smss, dupthresh)) return start;
  }
  return snd_una;
}

uint64_t SackScoreboard::sacked_in(uint32_t a, uint32_t b) const {
  uint64_t sum = 0;
  for (size_t i = seq_lt(a, snd_una_) ? 0 : first_ending_after(a); i < ranges_.size(); ++i) {
    if (!seq_lt(ranges_[i].start, b)) break;
    uint32_t lo = seq_max(ranges_[i].start, a);
    uint32_t hi = seq_min(ranges_[i].end, b);
    if (seq_lt(lo, hi)) sum += hi - lo;
  }
  return sum;
}

uint64_t SackScoreboard::pipe(uint32_t snd_una, uint32_t snd_nxt, uint32_t high_rxt, uint32_t smss,
                              int dupthresh) const {
  if (!seq_lt(snd_una, snd_nxt)) return 0;
  // RFC 6675 4 SetPipe, per octet S1 in [HighACK, HighData) not SACKed:
  //   (a) !IsLost(S1): +1   (b) S1 <= HighRxt (here S1 < high_rxt): +1
  uint32_t limit = lost_limit(snd_una, smss, dupthresh);
  limit = seq_min(seq_max(limit, snd_una), snd_nxt);
  uint64_t not_lost = uint64_t(snd_nxt - limit) - sacked_in(limit, snd_nxt);
  uint32_t rxt = seq_min(seq_max(high_rxt, snd_una), snd_nxt);
  uint64_t retransmitted = uint64_t(rxt - snd_una) - sacked_in(snd_una, rxt);
  return not_lost + retransmitted;
}

bool SackScoreboard::next_retransmit(uint32_t snd_una, uint32_t snd_nxt, uint32_t high_rxt,
                                     uint32_t smss, bool rule3, uint32_t& seq, uint32_t& len,
                                     int dupthresh) const {
  if (smss == 0) return false;
  // RFC 6675 4 NextSeg (1.a): above HighRxt, and never below snd_una.
  uint32_t s = seq_max(snd_una, high_rxt);
  if (!seq_lt(s, snd_nxt) || seq_gt(snd_una, snd_nxt)) return false;
  uint32_t hole_end = snd_nxt;
  for (size_t i = seq_lt(s, snd_una_) ? 0 : first_ending_after(s); i < ranges_.size(); ++i) {
    const SackBlock& r = ranges_[i];
    if (seq_le(r.end, s)) continue;
    if (seq_le(r.start, s)) {
      s = r.end;  // inside a SACKed range: skip past it
      continue;
    }
    hole_end = seq_min(r.start, snd_nxt);
    break;
  }
  if (!seq_lt(s, snd_nxt)) return false;
  // Rule 1: the first unSACKed octet is lost (1.b and 1.c); IsLost is monotone, so if the
  // first candidate is not lost none above it is.
  bool lost = seq_lt(s, lost_limit(snd_una, smss, dupthresh));
  // Rule 3: not lost, but SACKed data lies above it (1.a and 1.b without 1.c).
  bool rule3_ok = rule3 && seq_lt(s, highest_sacked());
  if (!lost && !rule3_ok) return false;
  seq = s;
  len = std::min<uint32_t>(smss, hole_end - s);
  return true;
}

}  // namespace shunt
