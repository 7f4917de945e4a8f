// Outstanding work requests of one queue (receive or send): which pool buffer each posted WR
// owns, found again from the completion's wr_id. A wr_id is generation << 32 | slot: after a
// recovery (the QP went through RESET and every outstanding buffer was reclaimed) completions
// of the old generation still in the CQ are recognised as stale and ignored. Fixed storage,
// allocated once; pure, unit-tested (tests/unit/verbs_peers.cc).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "stack/core/buffer.h"

namespace shunt::verbs {

class WorkRing {
 public:
  explicit WorkRing(uint32_t slots) : bufs_(slots, nullptr), free_(slots) {
    for (uint32_t i = 0; i < slots; ++i) free_[i] = slots - 1 - i;
  }
  uint32_t capacity() const { return uint32_t(bufs_.size()); }
  uint32_t outstanding() const { return capacity() - uint32_t(free_.size()); }
  bool full() const { return free_.empty(); }

  // Takes `b` for a WR about to be posted; returns its wr_id. Requires !full().
  uint64_t post(PacketBuf* b) {
    const uint32_t slot = free_.back();
    free_.pop_back();
    bufs_[slot] = b;
    return uint64_t(generation_) << 32 | slot;
  }
  // The buffer of a completed WR (back to the caller), or null when `wr_id` is stale, unknown
  // or already completed.
  PacketBuf* complete(uint64_t wr_id) {
    const uint32_t slot = uint32_t(wr_id);
    if (uint32_t(wr_id >> 32) != generation_ || slot >= bufs_.size() || !bufs_[slot]) return nullptr;
    PacketBuf* b = bufs_[slot];
    bufs_[slot] = nullptr;
    free_.push_back(slot);
    return b;
  }
  // Hands every outstanding buffer to `f` and starts a new generation (after the QP's reset:
  // those WRs will never complete, or complete stale).
  template <typename F>
  void reclaim_all(F f) {
    for (uint32_t slot = 0; slot < bufs_.size(); ++slot) {
      if (PacketBuf* b = bufs_[slot]) {
        bufs_[slot] = nullptr;
        free_.push_back(slot);
        f(b);
      }
    }
    ++generation_;
  }
  uint32_t generation() const { return generation_; }

 private:
  std::vector<PacketBuf*> bufs_;
  std::vector<uint32_t> free_;  // a stack of free slots; capacity reserved at construction
  uint32_t generation_ = 0;
};

}  // namespace shunt::verbs
