// The shared-memory cable: a WirePort that joins the simulated NICs of two processes in real
// time. One single-producer/single-consumer ring per direction lives in the POSIX shared-memory
// object "/shunt-cable-<name>" (mode 0600). The first side to open creates it (side 'a'), the
// second attaches (side 'b'). Each side holds an OFD byte-range lock on its own byte of the
// object; the kernel drops it when the holder dies, which is how the other side learns of the
// death. Layout, ordering rules and lifetime: docs/cable.md.
//
// The peer is untrusted memory: geometry is read once, validated, and kept locally; every index
// and length read from the mapping is checked before use, and a bad one is a counted drop
// ("cable.drop.corrupt"), never an out-of-bounds access.
//
// One ShmCable is used by one thread at a time. Both sides may live in one process (each in its
// own thread): they then share one mapping, so ThreadSanitizer sees the ring's synchronization.
#pragma once
#include <sys/types.h>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "nicmodel/port/wire_port.h"
#include "stack/core/counters.h"

namespace nicmodel {

struct CableOptions {
  std::string name;       // [A-Za-z0-9_.-]{1,64}; the object is "/shunt-cable-<name>"
  uint32_t slots = 1024;  // per direction; a power of two in [2, 16384]; the creator's count wins
  uint64_t rate_bps = 0;  // 0: the model's default; recorded by the creator, must match on attach
};

// The documented layout of the shared object (docs/cable.md). Offsets are bytes from the start of
// the object; integers are in host byte order (both sides run on one machine).
namespace cable_layout {
inline constexpr uint64_t kMagic = 0x4c4243544e554853ull;  // "SHUNTCBL" in memory order
inline constexpr uint32_t kVersion = 1;
inline constexpr uint32_t kHeaderSize = 4096;
inline constexpr uint32_t kMaxFrame = 9216;  // jumbo frame, no FCS
inline constexpr uint32_t kSlotHeader = 64;
inline constexpr uint32_t kSlotSize = kSlotHeader + kMaxFrame;  // 9280: fixed-size slots
inline constexpr uint32_t kMinSlots = 2;
inline constexpr uint32_t kMaxSlots = 16384;

// Header (written by the creator before it release-stores the magic).
inline constexpr size_t kOffMagic = 0;        // u64
inline constexpr size_t kOffVersion = 8;      // u32
inline constexpr size_t kOffHeaderSize = 12;  // u32
inline constexpr size_t kOffSlots = 16;       // u32, per ring
inline constexpr size_t kOffSlotSize = 20;    // u32
inline constexpr size_t kOffTotalSize = 24;   // u64, size of the whole object
inline constexpr size_t kOffRateBps = 32;     // u64
inline constexpr size_t kOffMaxFrame = 40;    // u32
// Side records: side 0 ('a') at 64, side 1 ('b') at 96.
inline constexpr size_t side_record(int side) { return 64 + 32 * size_t(side); }
inline constexpr size_t kSideState = 0;       // u32: kStateNever / kStateAttached / kStateDetached
inline constexpr size_t kSidePid = 4;         // u32: pid of the last process to attach
inline constexpr size_t kSideGeneration = 8;  // u32: bumped on every attach
inline constexpr uint32_t kStateNever = 0;
inline constexpr uint32_t kStateAttached = 1;
inline constexpr uint32_t kStateDetached = 2;
// Ring 0 carries a -> b, ring 1 carries b -> a. Head (frames produced, written by the producer)
// and tail (frames consumed, written by the consumer) are free-running u64 counters, each on its
// own 128-byte block (two cache lines: no false sharing, even with the adjacent-line prefetcher).
inline constexpr size_t ring_head(int ring) { return 256 + 256 * size_t(ring); }
inline constexpr size_t ring_tail(int ring) { return 256 + 256 * size_t(ring) + 128; }
inline constexpr size_t ring_slots(int ring, uint32_t slots) {
  return kHeaderSize + size_t(ring) * slots * size_t(kSlotSize);
}
inline constexpr size_t total_size(uint32_t slots) {
  return kHeaderSize + 2 * size_t(slots) * kSlotSize;
}
// Slot: frame length, then its wire times (CLOCK_MONOTONIC ns), then the frame at offset 64.
inline constexpr size_t kSlotLength = 0;     // u32, <= kMaxFrame
inline constexpr size_t kSlotFlags = 4;      // u32, 0
inline constexpr size_t kSlotWireStart = 8;  // i64
inline constexpr size_t kSlotWireEnd = 16;   // i64
inline constexpr size_t kSlotFrame = kSlotHeader;
// OFD lock bytes (advisory, no data lives "in" them): setup/teardown, then one per side.
inline constexpr off_t kLockSetup = 0;
inline constexpr off_t lock_side(int side) { return 1 + side; }
}  // namespace cable_layout

class ShmCable final : public WirePort {
 public:
  // Creates or attaches. On failure returns nullptr and sets `error` to one line.
  static std::unique_ptr<ShmCable> open(const CableOptions& o, std::string& error);
  ~ShmCable() override;  // detaches; unlinks when last
  ShmCable(const ShmCable&) = delete;
  ShmCable& operator=(const ShmCable&) = delete;

  bool transmit(std::span<const uint8_t> frame, Nanos start, Nanos end) override;
  void set_receiver(WireReceiver* r) override { receiver_ = r; }
  uint64_t rate_bps() const override { return rate_bps_; }
  // Delivers, in order, the frames whose wire_end <= now; returns the wire_end of the next one
  // (kNever if none is waiting).
  Nanos poll(Nanos now) override;
  std::string status() const override;

  // Asks the kernel now (not the cached answer transmit() uses).
  bool peer_present() const;
  char side() const { return side_ == 0 ? 'a' : 'b'; }
  const std::string& name() const { return name_; }
  uint32_t slots() const { return slots_; }
  // "cable.*": tx_frames, tx_bytes, rx_frames, rx_bytes, drop.no_peer, drop.ring_full,
  // drop.too_big, drop.corrupt, drop.no_receiver.
  shunt::Counters& counters() { return counters_; }

  // The object's name for a cable name: "/shunt-cable-<name>"; empty if the name is invalid.
  static std::string object_name(const std::string& cable_name);

  struct Mapping;  // one mapping of one object per process, shared by both sides if both are here

 private:
  ShmCable(std::string name, int fd, int side, std::shared_ptr<Mapping> map, uint32_t slots,
           uint64_t rate_bps);
  friend struct CableOpener;

  uint8_t* at(size_t off) const;
  bool peer_ready_for_tx();
  bool peer_lock_held() const;

  std::string name_;
  int fd_;
  int side_;
  std::shared_ptr<Mapping> map_;
  uint8_t* base_;
  uint32_t slots_;
  uint32_t mask_;
  uint64_t rate_bps_;
  int tx_ring_;
  int rx_ring_;

  uint64_t tx_head_ = 0;        // ours; only ever stored to the mapping
  uint64_t tx_tail_seen_ = 0;   // last validated tail of the tx ring
  uint64_t rx_tail_ = 0;        // ours; only ever stored to the mapping
  uint64_t last_bad_head_ = 0;  // a corrupt head is counted once per distinct value
  bool bad_head_seen_ = false;

  // What transmit() believes of the peer: re-asked of the kernel at most every kPeerCheck.
  mutable bool peer_alive_ = false;
  mutable int64_t peer_checked_at_ = 0;
  mutable uint32_t peer_generation_ = 0;

  WireReceiver* receiver_ = nullptr;
  shunt::Counters counters_;
  shunt::Counter& tx_frames_;
  shunt::Counter& tx_bytes_;
  shunt::Counter& rx_frames_;
  shunt::Counter& rx_bytes_;
  shunt::Counter& drop_no_peer_;
  shunt::Counter& drop_ring_full_;
  shunt::Counter& drop_too_big_;
  shunt::Counter& drop_corrupt_;
  shunt::Counter& drop_no_receiver_;
};

}  // namespace nicmodel
