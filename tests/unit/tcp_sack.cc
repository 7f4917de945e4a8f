// SackScoreboard: RFC 2018 blocks at the sender, RFC 2883 D-SACK, RFC 6675 queries. Each
// scenario runs at a low base and at a base whose segments straddle 2^32.
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>
#include <random>
#include <string>
#include <vector>

#include "stack/net/tcp/sack_scoreboard.h"
#include "stack/net/tcp/seq.h"

using namespace shunt;
namespace bdata = boost::unit_test::data;

namespace {

constexpr uint32_t kSmss = 1000;
// Low base, and a base 4.5 segments below 2^32 so that segment 4 straddles the wrap.
const std::vector<uint32_t> kBases = {1000u, 0xFFFFFFFFu - 4500u};

// Segment k of a flight starting at base: [base + k*1000, base + (k+1)*1000).
SackBlock seg(uint32_t base, uint32_t k) { return {base + k * kSmss, base + (k + 1) * kSmss}; }
SackBlock blk(uint32_t base, uint32_t from, uint32_t to) { return {base + from, base + to}; }

SackScoreboard::Update ack(SackScoreboard& sb, uint32_t ack_seq, std::vector<SackBlock> blocks,
                           uint32_t snd_nxt) {
  return sb.on_ack(ack_seq, blocks.data(), blocks.size(), snd_nxt);
}

// Sorted, disjoint, not touching, inside [snd_una, snd_nxt], and the byte count agrees.
void check_invariants(const SackScoreboard& sb, uint32_t snd_nxt) {
  uint64_t sum = 0;
  BOOST_REQUIRE(sb.ranges() <= sb.max_ranges());
  for (size_t i = 0; i < sb.ranges(); ++i) {
    SackBlock r = sb.range(i);
    // Offsets from snd_una, so a range "beyond" snd_nxt by more than 2^31 cannot hide.
    uint32_t from = r.start - sb.snd_una(), to = r.end - sb.snd_una();
    BOOST_REQUIRE(from < to);
    BOOST_REQUIRE(to <= snd_nxt - sb.snd_una());
    if (i > 0) BOOST_REQUIRE(seq_lt(sb.range(i - 1).end, r.start));
    sum += r.end - r.start;
  }
  BOOST_REQUIRE_EQUAL(sum, sb.sacked_bytes());
}

std::string dump(const SackScoreboard& sb) {
  std::string out;
  for (size_t i = 0; i < sb.ranges(); ++i)
    out += " [" + std::to_string(sb.range(i).start) + "," + std::to_string(sb.range(i).end) + ")";
  return out;
}

}  // namespace

BOOST_DATA_TEST_CASE(blocks_merge_when_they_touch_or_overlap_and_duplicates_add_nothing,
                     bdata::make(kBases), b) {
  SackScoreboard sb;
  sb.reset(b);
  const uint32_t nxt = b + 10 * kSmss;
  auto u = ack(sb, b, {seg(b, 2)}, nxt);
  BOOST_TEST(u.newly_sacked == 1000u);
  BOOST_TEST(!u.dsack);
  BOOST_TEST(u.ignored_blocks == 0u);
  u = ack(sb, b, {seg(b, 4), seg(b, 2)}, nxt);
  BOOST_TEST(u.newly_sacked == 1000u);
  BOOST_TEST(sb.ranges() == 2u);
  u = ack(sb, b, {seg(b, 3), seg(b, 4), seg(b, 2)}, nxt);  // fills the gap: one range
  BOOST_TEST(u.newly_sacked == 1000u);
  BOOST_TEST(sb.ranges() == 1u);
  BOOST_TEST(sb.sacked_bytes() == 3000u);
  u = ack(sb, b, {blk(b, 4500, 6000)}, nxt);  // overlaps the top of [2000, 5000)
  BOOST_TEST(u.newly_sacked == 1000u);
  BOOST_TEST(sb.ranges() == 1u);
  u = ack(sb, b, {blk(b, 4500, 6000)}, nxt);  // the same again
  BOOST_TEST(u.newly_sacked == 0u);
  u = ack(sb, b, {blk(b, 1000, 7000)}, nxt);  // covers it and more on both sides
  BOOST_TEST(u.newly_sacked == 2000u);
  BOOST_TEST(sb.ranges() == 1u);
  BOOST_TEST(sb.range(0).start == b + 1000);
  BOOST_TEST(sb.range(0).end == b + 7000);
  BOOST_TEST(sb.highest_sacked() == b + 7000);
  BOOST_TEST(sb.is_sacked(b + 1000));
  BOOST_TEST(sb.is_sacked(b + 6999));
  BOOST_TEST(!sb.is_sacked(b + 7000));
  BOOST_TEST(!sb.is_sacked(b + 999));
  check_invariants(sb, nxt);
  // Two blocks in one ACK bridging three ranges.
  SackScoreboard sb2;
  sb2.reset(b);
  ack(sb2, b, {seg(b, 1), seg(b, 3), seg(b, 5)}, nxt);
  BOOST_TEST(sb2.ranges() == 3u);
  u = ack(sb2, b, {blk(b, 1500, 5500)}, nxt);
  BOOST_TEST(u.newly_sacked == 2000u);  // segments 2 and 4
  BOOST_TEST(sb2.ranges() == 1u);
  BOOST_TEST(sb2.sacked_bytes() == 5000u);
  check_invariants(sb2, nxt);
}

BOOST_DATA_TEST_CASE(cumulative_ack_trims_and_drops_ranges, bdata::make(kBases), b) {
  SackScoreboard sb;
  sb.reset(b);
  const uint32_t nxt = b + 10 * kSmss;
  ack(sb, b, {blk(b, 1000, 3000), blk(b, 5000, 6000)}, nxt);
  auto u = ack(sb, b + 2500, {blk(b, 5000, 6000)}, nxt);  // ACK inside a range (odd but legal)
  BOOST_TEST(u.newly_sacked == 0u);
  BOOST_TEST(sb.snd_una() == b + 2500);
  BOOST_TEST(sb.sacked_bytes() == 1500u);
  BOOST_TEST(sb.range(0).start == b + 2500);
  check_invariants(sb, nxt);
  ack(sb, b + 6000, {}, nxt);
  BOOST_TEST(sb.ranges() == 0u);
  BOOST_TEST(sb.sacked_bytes() == 0u);
  BOOST_TEST(sb.highest_sacked() == b + 6000);
  // An old ACK does not move snd_una back; one beyond snd_nxt does not move it at all.
  ack(sb, b + 3000, {}, nxt);
  BOOST_TEST(sb.snd_una() == b + 6000);
  ack(sb, nxt + 1, {}, nxt);
  BOOST_TEST(sb.snd_una() == b + 6000);
}

BOOST_DATA_TEST_CASE(blocks_below_ack_beyond_snd_nxt_empty_or_inverted_are_ignored_and_counted,
                     bdata::make(kBases), b) {
  SackScoreboard sb;
  sb.reset(b);
  const uint32_t nxt = b + 10 * kSmss;
  // The first block is a valid one, so the later ones cannot be taken for a D-SACK.
  auto u = ack(sb, b + 1000,
               {seg(b, 5), blk(b, 0, 500), blk(b, 9500, 10500), blk(b, 7000, 6000),
                blk(b, 7000, 7000), blk(b, 500, 1500),
                // starts less than 2^31 ahead but ends more than 2^31 ahead of snd_una
                blk(b, 0x77000000u, 0x88000000u)},
               nxt);
  BOOST_TEST(!u.dsack);
  BOOST_TEST(u.ignored_blocks == 6u);
  BOOST_TEST(u.newly_sacked == 1000u);
  BOOST_TEST(sb.ranges() == 1u);
  // An inverted first block is no D-SACK either: just ignored.
  u = ack(sb, b + 1000, {blk(b, 3000, 2000)}, nxt);
  BOOST_TEST(!u.dsack);
  BOOST_TEST(u.ignored_blocks == 1u);
  // A block reaching exactly snd_nxt is fine.
  u = ack(sb, b + 1000, {seg(b, 9)}, nxt);
  BOOST_TEST(u.ignored_blocks == 0u);
  BOOST_TEST(u.newly_sacked == 1000u);
  // A null block pointer is no block at all.
  u = sb.on_ack(b + 1000, nullptr, 3, nxt);
  BOOST_TEST(u.ignored_blocks == 0u);
  check_invariants(sb, nxt);
}

BOOST_DATA_TEST_CASE(dsack_is_detected_below_the_ack_and_inside_the_second_block,
                     bdata::make(kBases), b) {
  SackScoreboard sb;
  sb.reset(b);
  const uint32_t nxt = b + 10 * kSmss;
  // RFC 2883 4.1.1: a retransmitted segment arrives twice below the cumulative ACK.
  auto u = ack(sb, b + 3000, {seg(b, 1)}, nxt);
  BOOST_TEST(u.dsack);
  BOOST_TEST(u.ignored_blocks == 0u);
  BOOST_TEST(u.newly_sacked == 0u);
  BOOST_TEST(sb.ranges() == 0u);
  // D-SACK below the ACK followed by ordinary SACK blocks.
  u = ack(sb, b + 3000, {seg(b, 2), seg(b, 5)}, nxt);
  BOOST_TEST(u.dsack);
  BOOST_TEST(u.newly_sacked == 1000u);
  // RFC 2883 4.1.3 style: the duplicate lies above the ACK, inside the second block.
  u = ack(sb, b + 3000, {seg(b, 7), blk(b, 6000, 9000)}, nxt);
  BOOST_TEST(u.dsack);
  BOOST_TEST(u.ignored_blocks == 0u);
  BOOST_TEST(u.newly_sacked == 3000u);
  BOOST_TEST(sb.sacked_bytes() == 4000u);
  // The same block first and second is a D-SACK too (inside, not strictly).
  u = ack(sb, b + 3000, {seg(b, 7), seg(b, 7)}, nxt);
  BOOST_TEST(u.dsack);
  // A first block above the ACK and not inside the second is an ordinary SACK.
  u = ack(sb, b + 3000, {seg(b, 4), seg(b, 7)}, nxt);
  BOOST_TEST(!u.dsack);
  BOOST_TEST(u.newly_sacked == 1000u);
  // A "duplicate" far below the ACK (more than any window) is not believed.
  u = ack(sb, b + 3000, {blk(b, 3000 - (1u << 30) - 1000, 3000 - (1u << 30) - 500)}, nxt);
  BOOST_TEST(!u.dsack);
  BOOST_TEST(u.ignored_blocks == 1u);
  check_invariants(sb, nxt);
}

BOOST_DATA_TEST_CASE(is_lost_by_three_discontiguous_ranges_or_by_bytes, bdata::make(kBases), b) {
  const uint32_t nxt = b + 10 * kSmss;
  // Three small discontiguous ranges: 300 bytes, far below 2*SMSS, but DupThresh of them.
  SackScoreboard count;
  count.reset(b);
  ack(count, b, {blk(b, 3000, 3100), blk(b, 5000, 5100), blk(b, 7000, 7100)}, nxt);
  BOOST_TEST(count.is_lost(b + 1000, kSmss));
  BOOST_TEST(count.is_lost(b + 2999, kSmss));
  BOOST_TEST(count.is_lost(b + 3000, kSmss));   // the rest of its own range counts as one
  BOOST_TEST(!count.is_lost(b + 3100, kSmss));  // only two ranges above it
  BOOST_TEST(!count.is_lost(b + 4000, kSmss));
  BOOST_TEST(!count.is_lost(b + 1000, kSmss, 4));  // DupThresh 4
  // One range: lost once more than (DupThresh-1)*SMSS = 2000 bytes are above.
  SackScoreboard bytes;
  bytes.reset(b);
  ack(bytes, b, {blk(b, 2000, 4000)}, nxt);
  BOOST_TEST(!bytes.is_lost(b + 1000, kSmss));  // exactly 2000: not more
  ack(bytes, b, {blk(b, 4000, 4500)}, nxt);
  BOOST_TEST(bytes.is_lost(b + 1000, kSmss));   // 2500
  BOOST_TEST(bytes.is_lost(b + 2000, kSmss));   // 2499 above an octet inside the range
  BOOST_TEST(!bytes.is_lost(b + 2500, kSmss));  // 1999
  BOOST_TEST(!bytes.is_lost(b + 4500, kSmss));  // nothing above
  // Bytes split over two ranges add up.
  SackScoreboard two;
  two.reset(b);
  ack(two, b, {blk(b, 2000, 3200), blk(b, 5000, 6000)}, nxt);
  BOOST_TEST(two.is_lost(b + 1000, kSmss));
  BOOST_TEST(!two.is_lost(b + 4000, kSmss));
}

BOOST_DATA_TEST_CASE(pipe_counts_unsacked_not_lost_octets_and_retransmissions_again,
                     bdata::make(kBases), b) {
  SackScoreboard sb;
  sb.reset(b);
  const uint32_t nxt = b + 10 * kSmss;
  BOOST_TEST(sb.pipe(b, nxt, b, kSmss) == 10000u);  // no SACK: everything is in flight
  // Segments 2, 4 and 6 SACKed: three ranges, so segments 0 and 1 are lost; 3, 5, 7, 8, 9
  // are unSACKed but not lost (fewer than three ranges and 2000 bytes not exceeded above 3).
  ack(sb, b, {seg(b, 6), seg(b, 4), seg(b, 2)}, nxt);
  BOOST_TEST(sb.pipe(b, nxt, b, kSmss) == 5000u);
  // Segment 0 retransmitted (HighRxt covers it): it counts once, as a retransmission.
  BOOST_TEST(sb.pipe(b, nxt, b + 1000, kSmss) == 6000u);
  // Retransmitted up to segment 3: 0 and 1 (lost, resent) + 3 (not lost, and resent: twice).
  BOOST_TEST(sb.pipe(b, nxt, b + 4000, kSmss) == 8000u);
  // A high_rxt beyond snd_nxt is taken as snd_nxt; one below snd_una as snd_una.
  BOOST_TEST(sb.pipe(b, nxt, nxt + 5000, kSmss) == 5000u + 7000u);
  BOOST_TEST(sb.pipe(b, nxt, b - 5000, kSmss) == 5000u);
  // The bytes rule: one range of three segments makes everything below it lost.
  SackScoreboard one;
  one.reset(b);
  ack(one, b, {blk(b, 5000, 8000)}, nxt);
  BOOST_TEST(one.pipe(b, nxt, b, kSmss) == 2000u);  // segments 8 and 9
  BOOST_TEST(one.pipe(b, nxt, b + 2000, kSmss) == 4000u);
  // Nothing outstanding.
  BOOST_TEST(one.pipe(nxt, nxt, nxt, kSmss) == 0u);
  // After the cumulative ACK moves past the holes, only what remains counts.
  ack(sb, b + 7000, {}, nxt);
  BOOST_TEST(sb.pipe(b + 7000, nxt, b + 7000, kSmss) == 3000u);
}

BOOST_DATA_TEST_CASE(next_retransmit_rule1_takes_lost_holes_and_rule3_the_rest_below_sacks,
                     bdata::make(kBases), b) {
  SackScoreboard sb;
  sb.reset(b);
  const uint32_t nxt = b + 10 * kSmss;
  uint32_t s = 0, len = 0;
  BOOST_TEST(!sb.next_retransmit(b, nxt, b, kSmss, true, s, len));  // no SACK, nothing
  ack(sb, b, {seg(b, 6), seg(b, 4), seg(b, 2)}, nxt);
  BOOST_TEST(sb.next_retransmit(b, nxt, b, kSmss, false, s, len));
  BOOST_TEST(s == b);
  BOOST_TEST(len == 1000u);
  BOOST_TEST(sb.next_retransmit(b, nxt, b, 1500, false, s, len));  // a bigger SMSS: 1500
  BOOST_TEST(s == b);
  BOOST_TEST(len == 1500u);
  BOOST_TEST(sb.next_retransmit(b, nxt, b + 1500, 1500, false, s, len));  // stops at the range
  BOOST_TEST(s == b + 1500);
  BOOST_TEST(len == 500u);
  // Above HighRxt = segment 2 (SACKed): the next hole is segment 3, not lost.
  BOOST_TEST(!sb.next_retransmit(b, nxt, b + 2000, kSmss, false, s, len));
  BOOST_TEST(sb.next_retransmit(b, nxt, b + 2000, kSmss, true, s, len));  // rule 3
  BOOST_TEST(s == b + 3000);
  BOOST_TEST(len == 1000u);
  // Segment 7 and above have no SACKed data above them: neither rule.
  BOOST_TEST(!sb.next_retransmit(b, nxt, b + 7000, kSmss, true, s, len));
  // HighRxt below snd_una starts at snd_una.
  BOOST_TEST(sb.next_retransmit(b, nxt, b - 100, kSmss, false, s, len));
  BOOST_TEST(s == b);
  // Rule 1 is preferred even when rule 3 is allowed.
  BOOST_TEST(sb.next_retransmit(b, nxt, b + 1000, kSmss, true, s, len));
  BOOST_TEST(s == b + 1000);
  // SMSS 0 never loops.
  BOOST_TEST(!sb.next_retransmit(b, nxt, b, 0, true, s, len));
}

BOOST_AUTO_TEST_CASE(at_most_max_ranges_are_kept_and_the_lowest_win) {
  SackScoreboard sb(32);
  const uint32_t base = 0xFFFFFF00u;  // straddle the wrap as well
  sb.reset(base);
  const uint32_t nxt = base + 100 * kSmss;
  // 40 odd segments, from the top down, as a receiver reporting its newest block first would.
  for (uint32_t k = 79; k >= 1 && k <= 79; k -= 2) ack(sb, base, {seg(base, k)}, nxt);
  BOOST_TEST(sb.ranges() == 32u);
  BOOST_TEST(sb.dropped_ranges() == 8u);
  BOOST_TEST(sb.range(0).start == base + 1000);          // segment 1 is kept
  BOOST_TEST(sb.highest_sacked() == base + 64 * kSmss);  // segment 63 is the highest
  BOOST_TEST(sb.sacked_bytes() == 32u * kSmss);
  // A block above every range while full is not kept.
  auto u = ack(sb, base, {seg(base, 90)}, nxt);
  BOOST_TEST(u.newly_sacked == 0u);
  BOOST_TEST(sb.dropped_ranges() == 9u);
  // A block merging with a range needs no room.
  u = ack(sb, base, {seg(base, 2)}, nxt);
  BOOST_TEST(u.newly_sacked == 1000u);
  BOOST_TEST(sb.ranges() == 32u - 1);  // 1, 2, 3 became one range
  check_invariants(sb, nxt);
  // reset() forgets the ranges but not the statistic.
  sb.reset(base);
  BOOST_TEST(sb.ranges() == 0u);
  BOOST_TEST(sb.dropped_ranges() == 9u);
}

BOOST_AUTO_TEST_CASE(the_default_bound_keeps_every_hole_of_a_large_window) {
  // 2,000 holes in an 8 MB flight (a queue overflow at 10 Gbit/s): every range is kept, so
  // nothing SACKed counts as in flight or is resent.
  SackScoreboard sb;
  const uint32_t base = 0xFFFFF000u;
  sb.reset(base);
  const uint32_t nxt = base + 4000 * kSmss;
  for (uint32_t k = 1; k < 4000; k += 2) ack(sb, base, {seg(base, k)}, nxt);
  BOOST_TEST(sb.ranges() == 2000u);
  BOOST_TEST(sb.dropped_ranges() == 0u);
  BOOST_TEST(sb.sacked_bytes() == 2000u * kSmss);
  BOOST_TEST(sb.is_sacked(base + 3999 * kSmss));
  BOOST_TEST(!sb.is_sacked(base + 3998 * kSmss));
  BOOST_TEST(sb.sacked_in(base, nxt) == 2000u * kSmss);
  check_invariants(sb, nxt);
  // The cumulative ACK sweeps them away.
  ack(sb, base + 3000 * kSmss, {}, nxt);
  BOOST_TEST(sb.ranges() == 500u);
  check_invariants(sb, nxt);
}

BOOST_AUTO_TEST_CASE(hostile_random_blocks_never_exceed_the_bound_nor_break_invariants) {
  std::mt19937 rng(20240601);
  for (uint32_t base : {0u, 0x7FFFF000u, 0xFFFF0000u}) {
    SackScoreboard sb(32);
    sb.reset(base);
    uint32_t una = base;
    const uint32_t window = 4'000'000;
    uint32_t nxt = base + window;
    uint64_t ignored = 0;
    for (int i = 0; i < 20000; ++i) {
      std::vector<SackBlock> blocks(rng() % 6);
      for (auto& blk : blocks) {
        switch (rng() % 4) {
          case 0:  // anything at all
            blk = {uint32_t(rng()), uint32_t(rng())};
            break;
          default: {  // plausible: inside the window, sometimes inverted or empty
            uint32_t s = una + rng() % window;
            blk = {s, s + uint32_t(rng() % 5000) - 500};
          }
        }
      }
      uint32_t a = una;
      if (rng() % 50 == 0) a = una + rng() % 3000;  // the cumulative ACK creeps up
      if (rng() % 200 == 0) a = uint32_t(rng());    // or is nonsense
      auto u = sb.on_ack(a, blocks.data(), blocks.size(), nxt);
      ignored += u.ignored_blocks;
      una = sb.snd_una();
      if (seq_lt(nxt, una + window)) nxt = una + window;  // keep sending
      check_invariants(sb, nxt);
      uint32_t s = 0, len = 0;
      if (sb.next_retransmit(una, nxt, una, kSmss, true, s, len)) {
        BOOST_REQUIRE(len > 0 && len <= kSmss);
        BOOST_REQUIRE(!sb.is_sacked(s));
        BOOST_REQUIRE(!sb.is_sacked(s + len - 1));
      }
      uint64_t p = sb.pipe(una, nxt, una + 1000, kSmss);
      if (p > 2ull * (nxt - una))
        BOOST_FAIL("pipe " << p << " una " << una << " nxt " << nxt << " i " << i << " base "
                           << base << dump(sb));
    }
    BOOST_TEST(sb.dropped_ranges() > 0u);
    BOOST_TEST(ignored > 0u);
  }
}
