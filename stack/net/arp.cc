#include "stack/net/arp.h"

#include <algorithm>

#include "stack/core/log.h"
#include "stack/net/arp_wire.h"
#include "stack/net/icmp.h"
#include "stack/net/stack.h"

namespace shunt {

Arp::Arp(Stack& stack)
    : stack_(stack),
      entries_(new Entry[kMaxEntries]),
      announce_timer_([this](Nanos now) { on_announce_timer(now); }),
      rx_packets_(stack.counters().add("arp.rx_packets")),
      tx_requests_(stack.counters().add("arp.tx_requests")),
      tx_replies_(stack.counters().add("arp.tx_replies")),
      tx_announces_(stack.counters().add("arp.tx_announces")),
      conflicts_(stack.counters().add("arp.conflicts")),
      defended_(stack.counters().add("arp.defended")),
      drop_truncated_(stack.counters().add("arp.drop.truncated")),
      drop_unsupported_(stack.counters().add("arp.drop.unsupported")),
      drop_bad_op_(stack.counters().add("arp.drop.bad_op")),
      drop_bad_sender_(stack.counters().add("arp.drop.bad_sender")),
      drop_own_(stack.counters().add("arp.drop.own")),
      drop_queue_full_(stack.counters().add("arp.drop.queue_full")),
      drop_unresolved_(stack.counters().add("arp.drop.unresolved")),
      drop_evicted_(stack.counters().add("arp.drop.evicted")),
      drop_no_buffer_(stack.counters().add("arp.drop.no_buffer")) {
  buckets_.fill(-1);
  for (size_t i = 0; i < kMaxEntries; ++i) {
    Entry* e = &entries_[i];
    e->retry.set_callback([this, e](Nanos) { on_retry(*e); });
  }
}

Arp::~Arp() {
  announce_timer_.cancel();
  entries_.reset();  // cancels timers and returns queued packets while the pool is alive
}

// ------------------------------------------------------------------------------------------
// The cache

Arp::Entry* Arp::find(Ipv4Addr a) const {
  for (int16_t i = buckets_[bucket_of(a)]; i >= 0; i = entries_[size_t(i)].next) {
    if (entries_[size_t(i)].ip == a) return &entries_[size_t(i)];
  }
  return nullptr;
}

Arp::Entry* Arp::create(Ipv4Addr a) {
  Entry* slot = nullptr;
  if (used_ < kMaxEntries) {
    for (size_t i = 0; i < kMaxEntries && !slot; ++i) {
      if (entries_[i].state == Entry::State::kFree) slot = &entries_[i];
    }
  } else {
    // Full: the least recently used neighbour goes; one being resolved only if all are.
    for (size_t i = 0; i < kMaxEntries; ++i) {
      Entry& e = entries_[i];
      if (!slot || (e.state == Entry::State::kReachable && slot->state != Entry::State::kReachable) ||
          (e.state == slot->state && e.last_used < slot->last_used)) {
        slot = &e;
      }
    }
    remove(*slot);
  }
  if (!slot) return nullptr;
  slot->state = Entry::State::kIncomplete;
  slot->ip = a;
  slot->mac = MacAddr{};
  slot->requests_sent = 0;
  slot->last_used = stack_.now();
  const size_t b = bucket_of(a);
  slot->next = buckets_[b];
  buckets_[b] = int16_t(slot - entries_.get());
  ++used_;
  return slot;
}

void Arp::remove(Entry& e) {
  if (e.state == Entry::State::kFree) return;
  const int16_t idx = int16_t(&e - entries_.get());
  for (int16_t* link = &buckets_[bucket_of(e.ip)]; *link >= 0; link = &entries_[size_t(*link)].next) {
    if (*link == idx) {
      *link = e.next;
      break;
    }
  }
  e.next = -1;
  e.retry.cancel();
  if (!e.pending.empty()) {
    drop_evicted_.inc(e.pending.count());
    e.pending.clear();
  }
  e.state = Entry::State::kFree;
  if (last_ == &e) last_ = nullptr;
  --used_;
}

std::optional<MacAddr> Arp::lookup(Ipv4Addr a) const {
  const Entry* e = find(a);
  if (e && e->state == Entry::State::kReachable && stack_.now() < e->expires) return e->mac;
  return std::nullopt;
}

void Arp::resolved(Entry& e, const MacAddr& mac) {
  e.mac = mac;
  e.state = Entry::State::kReachable;
  e.expires = stack_.now() + stack_.config().arp_timeout_ms * kMilli;
  e.retry.cancel();
  while (!e.pending.empty()) stack_.send_eth(e.pending.pop(), mac, kEtherTypeIpv4);
}

// ------------------------------------------------------------------------------------------
// Sending

void Arp::send_ipv4(PacketPtr p, Ipv4Addr nh) {
  Entry* e = last_ && last_->ip == nh ? last_ : find(nh);
  const Nanos now = stack_.now();
  if (e && e->state == Entry::State::kReachable) {
    if (now < e->expires) {
      e->last_used = now;
      last_ = e;
      stack_.send_eth(std::move(p), e->mac, kEtherTypeIpv4);
      return;
    }
    // RFC 1122 2.3.2.1: the entry timed out; resolve it again before trusting it.
    e->state = Entry::State::kIncomplete;
    start_resolution(*e);
  } else if (!e) {
    e = create(nh);
    if (!e) {
      ++drop_no_buffer_;
      return;
    }
    start_resolution(*e);
  }
  e->last_used = now;
  const size_t per_neighbour = size_t(stack_.config().arp_queue);
  if (e->pending.count() >= per_neighbour) {
    e->pending.pop();  // the oldest goes: newer data is worth more
    ++drop_queue_full_;
  } else {
    // All neighbours together hold at most an eighth of the pool (but always one full queue):
    // replies to sources that never answer must not take every buffer. Slow path: a scan.
    size_t total = 0;
    for (size_t i = 0; i < kMaxEntries; ++i) total += entries_[i].pending.count();
    if (total >= std::max(per_neighbour, stack_.pool().capacity() / 8)) {
      ++drop_queue_full_;
      return;
    }
  }
  e->pending.push(std::move(p));
}

void Arp::start_resolution(Entry& e) {
  e.requests_sent = 1;
  send_request(e.ip);
  stack_.timers().arm(e.retry, stack_.now() + stack_.config().arp_retry_ms * kMilli);
}

void Arp::on_retry(Entry& e) {
  if (e.state != Entry::State::kIncomplete) return;
  if (e.requests_sent >= stack_.config().arp_retries) {
    // Unreachable: what waited for it is dropped (RFC 1122 2.3.2.2), and each sender is told
    // "host unreachable" (Linux ip_link_failure). The queue (bounded by arp_queue) is taken out
    // first, so whatever the upper layers do in answer cannot touch this entry.
    drop_unresolved_.inc(e.pending.count());
    PacketQueue failed = std::move(e.pending);
    remove(e);
    while (PacketPtr p = failed.pop()) stack_.icmp().on_link_failure(*p);
    return;
  }
  ++e.requests_sent;
  send_request(e.ip);
  stack_.timers().arm(e.retry, stack_.now() + stack_.config().arp_retry_ms * kMilli);
}

void Arp::send_request(Ipv4Addr target) {
  auto src = stack_.source_for(IpAddr(target));
  send_arp(kArpOpRequest, src && src->is_v4() ? src->v4 : Ipv4Addr{}, MacAddr{}, target,
           MacAddr::broadcast());
  ++tx_requests_;
}

void Arp::send_arp(uint16_t op, Ipv4Addr sender_ip, const MacAddr& target_mac, Ipv4Addr target_ip,
                   const MacAddr& eth_dst) {
  PacketPtr p = stack_.alloc_tx();
  if (!p) {
    ++drop_no_buffer_;
    return;
  }
  ArpRepr a;
  a.op = op;
  a.sender_mac = stack_.mac();
  a.sender_ip = sender_ip;
  a.target_mac = target_mac;
  a.target_ip = target_ip;
  a.emit(p->append(kArpLen));
  stack_.send_eth(std::move(p), eth_dst, kEtherTypeArp);
}

void Arp::announce(Ipv4Addr a) {
  // RFC 5227 3: an ARP Announcement is a request with our address as sender and target.
  send_arp(kArpOpRequest, a, MacAddr{}, a, MacAddr::broadcast());
  ++tx_announces_;
  if (kAnnounceNum > 1) {
    announces_.push_back({a, kAnnounceNum - 1, stack_.now() + kAnnounceInterval});
    if (!announce_timer_.armed()) stack_.timers().arm(announce_timer_, announces_.front().due);
  }
}

void Arp::on_announce_timer(Nanos now) {
  Nanos next = kNever;
  for (auto& pa : announces_) {
    if (pa.due <= now && stack_.is_local_v4(pa.addr)) {
      send_arp(kArpOpRequest, pa.addr, MacAddr{}, pa.addr, MacAddr::broadcast());
      ++tx_announces_;
      --pa.left;
      pa.due = now + kAnnounceInterval;
    }
  }
  std::erase_if(announces_, [](const PendingAnnounce& pa) { return pa.left <= 0; });
  for (const auto& pa : announces_) next = std::min(next, pa.due);
  if (next != kNever) stack_.timers().arm(announce_timer_, next);
}

// ------------------------------------------------------------------------------------------
// Receiving (RFC 826 "packet reception")

void Arp::on_rx(PacketPtr p, const EthRepr&) {
  ++rx_packets_;
  ArpRepr a;
  switch (ArpRepr::parse(p->data(), p->size(), a)) {
    case ArpError::kNone: break;
    case ArpError::kTruncated: ++drop_truncated_; return;
    case ArpError::kUnsupported: ++drop_unsupported_; return;
    case ArpError::kBadOp: ++drop_bad_op_; return;
  }
  // The sender must be one station with one address.
  if (a.sender_mac.is_multicast() || a.sender_mac.is_zero() || a.sender_ip.is_multicast() ||
      a.sender_ip.is_broadcast() || a.sender_ip.is_loopback() || stack_.is_broadcast_v4(a.sender_ip)) {
    ++drop_bad_sender_;
    return;
  }
  if (a.sender_mac == stack_.mac()) {  // our own, reflected back
    ++drop_own_;
    return;
  }
  // RFC 5227 2.4: someone else uses one of our addresses.
  if (stack_.is_local_v4(a.sender_ip)) {
    on_conflict(a.sender_ip, a.sender_mac);
    return;
  }
  const bool for_us = stack_.is_local_v4(a.target_ip);
  if (!a.sender_ip.is_unspecified()) {  // 0.0.0.0: an RFC 5227 probe, nothing to learn
    // RFC 826: merge into an existing entry; add one only if the packet is for us.
    Entry* e = find(a.sender_ip);
    if (!e && for_us) e = create(a.sender_ip);
    if (e) resolved(*e, a.sender_mac);
  }
  if (for_us && a.op == kArpOpRequest) {
    send_arp(kArpOpReply, a.target_ip, a.sender_mac, a.sender_ip, a.sender_mac);
    ++tx_replies_;
  }
}

void Arp::on_conflict(Ipv4Addr ours, const MacAddr& theirs) {
  ++conflicts_;
  const Nanos now = stack_.now();
  Defence* d = nullptr;
  for (auto& x : defences_) {
    if (x.addr == ours) d = &x;
  }
  if (d && now - d->last < kDefendInterval) {
    SHUNT_DEBUG("arp: %s also claimed by %s (defended recently)", ours.str().c_str(), theirs.str().c_str());
    return;
  }
  if (!d) {
    defences_.push_back({ours, now});
  } else {
    d->last = now;
  }
  // RFC 5227 2.4 (c): a configured address is kept and defended, at most once per interval.
  SHUNT_WARN("arp: address conflict: %s is also claimed by %s; defending it", ours.str().c_str(),
             theirs.str().c_str());
  send_arp(kArpOpRequest, ours, MacAddr{}, ours, MacAddr::broadcast());
  ++defended_;
}

}  // namespace shunt
