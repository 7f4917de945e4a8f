#include "stack/driver/verbs/peer_table.h"

#include <algorithm>

namespace shunt::verbs {

PeerTable::PeerTable(size_t capacity) : entries_(std::max<size_t>(capacity, 1)) {
  size_t n = 4;
  while (n < 2 * entries_.size()) n <<= 1;
  index_.assign(n, -1);
  mask_ = n - 1;
}

size_t PeerTable::bucket_of(const MacAddr& mac) const {
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a
  for (uint8_t b : mac.b) h = (h ^ b) * 0x100000001b3ull;
  return size_t(h ^ (h >> 29)) & mask_;
}

int32_t PeerTable::find_slot(const MacAddr& mac) const {
  for (size_t pos = bucket_of(mac);; pos = (pos + 1) & mask_) {
    const int32_t e = index_[pos];
    if (e < 0) return -1;
    if (entries_[size_t(e)].mac == mac) return int32_t(pos);
  }
}

Peer* PeerTable::find(const MacAddr& mac) {
  if (last_ && last_->in_use && last_->mac == mac) {
    last_->last_used = ++tick_;
    return last_;
  }
  const int32_t pos = find_slot(mac);
  if (pos < 0) return nullptr;
  Peer* p = &entries_[size_t(index_[size_t(pos)])];
  p->last_used = ++tick_;
  last_ = p;
  return p;
}

void PeerTable::erase_index(size_t pos) {
  index_[pos] = -1;
  // Backward-shift deletion: pull later members of the probe run into the hole.
  size_t hole = pos;
  for (size_t i = (pos + 1) & mask_; index_[i] >= 0; i = (i + 1) & mask_) {
    const size_t home = bucket_of(entries_[size_t(index_[i])].mac);
    // Move i into the hole unless its home lies cyclically in (hole, i].
    const bool home_in_range = hole <= i ? (home > hole && home <= i) : (home > hole || home <= i);
    if (!home_in_range) {
      index_[hole] = index_[i];
      index_[i] = -1;
      hole = i;
    }
  }
}

PeerTable::Learned PeerTable::learn(const MacAddr& mac, const Gid& gid, uint32_t qpn) {
  Learned r;
  if (Peer* p = find(mac)) {
    r.peer = p;
    if (p->gid != gid || p->qpn != qpn) {
      r.changed = true;
      r.retired_ah = p->ah;
      p->ah = nullptr;
      p->gid = gid;
      p->qpn = qpn;
    }
    return r;
  }
  // Entries are only freed by an eviction, which refills the same one: [0, size_) are in use.
  size_t e = size_;
  if (size_ == entries_.size()) {
    // Full: the least recently used goes (a linear scan, only when a new peer arrives).
    e = 0;
    for (size_t i = 1; i < entries_.size(); ++i)
      if (entries_[i].last_used < entries_[e].last_used) e = i;
    Peer& old = entries_[e];
    r.evicted = true;
    r.retired_ah = old.ah;
    erase_index(size_t(find_slot(old.mac)));
    old = Peer{};
    --size_;
  }
  Peer& p = entries_[e];
  p.mac = mac;
  p.gid = gid;
  p.qpn = qpn;
  p.ah = nullptr;
  p.in_use = true;
  p.last_used = ++tick_;
  size_t pos = bucket_of(mac);
  while (index_[pos] >= 0) pos = (pos + 1) & mask_;
  index_[pos] = int32_t(e);
  ++size_;
  last_ = &p;
  r.peer = &p;
  r.inserted = true;
  return r;
}

}  // namespace shunt::verbs
