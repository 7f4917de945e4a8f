// The verbs driver's neighbours: MAC -> UD address (GID, QPN) and the address handle made for
// it, learned from the GRH and source QPN of every received message, bounded (least recently
// used goes first). Fixed storage allocated at construction; lookups and learning never allocate
// (open addressing, linear probing, backward-shift deletion). Pure: the address handle is an
// opaque pointer the driver creates on the first send and destroys when the entry goes.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "stack/driver/verbs/ud_wire.h"

namespace shunt::verbs {

struct Peer {
  MacAddr mac;
  Gid gid;
  uint32_t qpn = 0;
  void* ah = nullptr;      // the driver's address handle, made on first send
  uint64_t last_used = 0;  // a tick of the table: larger is more recent
  bool in_use = false;
};

class PeerTable {
 public:
  explicit PeerTable(size_t capacity);

  // The peer with this MAC, or null; a hit counts as a use.
  Peer* find(const MacAddr& mac);

  struct Learned {
    Peer* peer = nullptr;
    bool inserted = false;   // a new entry
    bool changed = false;    // the MAC was known with another GID/QPN (a collision or a new QP)
    bool evicted = false;    // the least recently used entry made room
    void* retired_ah = nullptr;  // an address handle no entry refers to any more: destroy it
  };
  // Records that (gid, qpn) is at `mac` (ud_mac(gid, qpn) in the driver).
  Learned learn(const MacAddr& mac, const Gid& gid, uint32_t qpn);

  size_t size() const { return size_; }
  size_t capacity() const { return entries_.size(); }
  // Every address handle held (for tear-down).
  template <typename F>
  void for_each_ah(F f) const {
    for (const Peer& p : entries_)
      if (p.in_use && p.ah) f(p.ah);
  }
  // Forgets every address handle (after the driver destroyed them all); entries stay.
  void clear_ahs() {
    for (Peer& p : entries_) p.ah = nullptr;
  }

 private:
  size_t bucket_of(const MacAddr& mac) const;
  int32_t find_slot(const MacAddr& mac) const;  // index into index_, or -1
  void erase_index(size_t pos);

  std::vector<Peer> entries_;
  std::vector<int32_t> index_;  // -1 empty, else entry number; size a power of two >= 2 x capacity
  size_t mask_ = 0;
  size_t size_ = 0;
  uint64_t tick_ = 0;
  Peer* last_ = nullptr;  // the last hit: one peer usually takes most of the traffic
};

}  // namespace shunt::verbs
