#include "stack/net/ndp.h"

#include <algorithm>
#include <bit>
#include <cstring>

#include "stack/core/log.h"
#include "stack/net/icmp6.h"
#include "stack/net/icmp6_wire.h"
#include "stack/net/ipv6.h"
#include "stack/net/ipv6_wire.h"
#include "stack/net/mld.h"
#include "stack/net/stack.h"

namespace shunt {

struct Ndp::Entry {
  Ipv6Addr ip;
  MacAddr mac;
  NeighborState state = NeighborState::kIncomplete;
  bool used = false;
  uint8_t probes = 0;  // solicitations sent in INCOMPLETE or PROBE
  int16_t next = -1;   // hash chain, or free list
  uint64_t last_use = 0;
  PacketQueue pending;  // INCOMPLETE only, bounded by config arp_queue
  Timer timer;
};

struct Ndp::Dad {
  bool used = false;
  Ipv6Addr addr;
  int sent = 0;
  Timer timer;
};

Ndp::Ndp(Stack& stack)
    : stack_(stack),
      entries_(new Entry[kCacheSize]),
      dad_(new Dad[kMaxDad]),
      rx_ns_(stack.counters().add("ndp.rx_ns")),
      rx_na_(stack.counters().add("ndp.rx_na")),
      tx_ns_(stack.counters().add("ndp.tx_ns")),
      tx_na_(stack.counters().add("ndp.tx_na")),
      drop_invalid_(stack.counters().add("ndp.drop.invalid")),
      drop_bad_option_(stack.counters().add("ndp.drop.bad_option")),
      drop_not_our_target_(stack.counters().add("ndp.drop.not_our_target")),
      ignored_router_msgs_(stack.counters().add("ndp.ignored_router_messages")),
      na_ignored_(stack.counters().add("ndp.na_ignored")),
      drop_queue_full_(stack.counters().add("ndp.drop.queue_full")),
      drop_unresolved_(stack.counters().add("ndp.drop.unresolved")),
      drop_cache_full_(stack.counters().add("ndp.drop.cache_full")),
      evicted_(stack.counters().add("ndp.evicted")),
      unreachable_(stack.counters().add("ndp.unreachable")),
      dad_duplicate_(stack.counters().add("ndp.dad_duplicate")),
      dad_ok_(stack.counters().add("ndp.dad_ok")),
      address_conflict_(stack.counters().add("ndp.address_conflict")) {
  for (auto& b : buckets_) b = -1;
  for (size_t i = kCacheSize; i-- > 0;) {
    Entry* e = &entries_[i];
    e->next = free_;
    free_ = int16_t(i);
    e->timer.set_callback([this, e](Nanos) { on_timer(*e); });
  }
  for (size_t i = 0; i < kMaxDad; ++i) {
    Dad* d = &dad_[i];
    d->timer.set_callback([this, d](Nanos) { on_dad_timer(*d); });
  }
}

Ndp::~Ndp() = default;

// ---------------------------------------------------------------------------------------
// The cache

size_t Ndp::bucket_of(const Ipv6Addr& a) {
  uint32_t h = load32(a.b.data() + 12) ^ (load32(a.b.data() + 8) * 0x85ebca6bu) ^ (load32(a.b.data()) * 0xc2b2ae35u);
  h *= 0x9e3779b1u;
  return (h >> 16) & (kBuckets - 1);
}

Ndp::Entry* Ndp::find(const Ipv6Addr& a) const {
  for (int16_t i = buckets_[bucket_of(a)]; i >= 0; i = entries_[size_t(i)].next) {
    if (entries_[size_t(i)].ip == a) return &entries_[size_t(i)];
  }
  return nullptr;
}

Ndp::Entry* Ndp::insert(const Ipv6Addr& a) {
  if (free_ < 0) {
    // Full: evict the least recently used entry, preferring ones not being resolved.
    Entry* victim = nullptr;
    for (size_t i = 0; i < kCacheSize; ++i) {
      Entry& e = entries_[i];
      const bool inc = e.state == NeighborState::kIncomplete;
      if (!victim || (victim->state == NeighborState::kIncomplete && !inc) ||
          ((victim->state == NeighborState::kIncomplete) == inc && e.last_use < victim->last_use)) {
        victim = &e;
      }
    }
    if (!victim) return nullptr;
    ++evicted_;
    drop_cache_full_.inc(victim->pending.count());
    remove(*victim);
  }
  const int16_t i = free_;
  Entry& e = entries_[size_t(i)];
  free_ = e.next;
  e.used = true;
  e.ip = a;
  e.mac = MacAddr{};
  e.state = NeighborState::kIncomplete;
  e.probes = 0;
  e.last_use = ++use_seq_;
  const size_t b = bucket_of(a);
  e.next = buckets_[b];
  buckets_[b] = i;
  return &e;
}

void Ndp::remove(Entry& e) {
  const int16_t idx = int16_t(&e - entries_.get());
  int16_t* link = &buckets_[bucket_of(e.ip)];
  while (*link >= 0 && *link != idx) link = &entries_[size_t(*link)].next;
  if (*link == idx) *link = e.next;
  e.timer.cancel();
  e.pending.clear();
  e.used = false;
  e.next = free_;
  free_ = idx;
}

std::optional<MacAddr> Ndp::lookup(const Ipv6Addr& a) const {
  const Entry* e = find(a);
  if (!e || e->state == NeighborState::kIncomplete) return std::nullopt;
  return e->mac;
}

std::optional<NeighborState> Ndp::state_of(const Ipv6Addr& a) const {
  const Entry* e = find(a);
  if (!e) return std::nullopt;
  return e->state;
}

size_t Ndp::pending_count(const Ipv6Addr& a) const {
  const Entry* e = find(a);
  return e ? e->pending.count() : 0;
}

void Ndp::set_state(Entry& e, NeighborState s) {
  e.state = s;
  if (s == NeighborState::kStale) e.timer.cancel();  // STALE waits for traffic, not time
}

void Ndp::set_reachable(Entry& e) {
  e.state = NeighborState::kReachable;
  e.probes = 0;
  // RFC 4861 6.3.2: ReachableTime is BaseReachableTime times a random factor in [0.5, 1.5).
  const Nanos base = stack_.config().ndp_reachable_ms * kMilli;
  const Nanos t = base / 2 + Nanos(stack_.random().below(uint64_t(base > 0 ? base : 1)));
  stack_.timers().arm(e.timer, stack_.now() + t);
}

void Ndp::flush_pending(Entry& e) {
  while (!e.pending.empty()) stack_.send_eth(e.pending.pop(), e.mac, kEtherTypeIpv6);
}

void Ndp::confirm_reachable(const Ipv6Addr& a) {
  Entry* e = find(a);
  if (e && e->state != NeighborState::kIncomplete) set_reachable(*e);
}

void Ndp::send_ipv6(PacketPtr ip, const Ipv6Addr& next_hop) {
  // All neighbours together hold at most an eighth of the pool (but always one full queue):
  // replies to sources that never answer must not take every buffer. Slow path: a scan.
  auto pending_room = [this] {
    size_t total = 0;
    for (size_t i = 0; i < kCacheSize; ++i) total += entries_[i].pending.count();
    return total < std::max(size_t(stack_.config().arp_queue), stack_.pool().capacity() / 8);
  };
  Entry* e = find(next_hop);
  if (e) {
    e->last_use = ++use_seq_;
    switch (e->state) {
      case NeighborState::kReachable:
      case NeighborState::kDelay:
      case NeighborState::kProbe:
        stack_.send_eth(std::move(ip), e->mac, kEtherTypeIpv6);
        return;
      case NeighborState::kStale:
        // RFC 4861 7.3.3: sending to a STALE neighbour starts the DELAY timer.
        e->state = NeighborState::kDelay;
        stack_.timers().arm(e->timer, stack_.now() + kDelayFirstProbe);
        stack_.send_eth(std::move(ip), e->mac, kEtherTypeIpv6);
        return;
      case NeighborState::kIncomplete:
        if (e->pending.count() >= size_t(stack_.config().arp_queue) || !pending_room()) {
          ++drop_queue_full_;
          return;
        }
        e->pending.push(std::move(ip));
        return;
    }
  }
  // RFC 4861 7.2.2: a new entry in INCOMPLETE, the packet queued, an NS to the solicited-node
  // group, retransmitted every RetransTimer.
  const bool room = pending_room();
  e = insert(next_hop);
  e->probes = 1;
  if (room) {
    e->pending.push(std::move(ip));
  } else {
    ++drop_queue_full_;
  }
  stack_.timers().arm(e->timer, stack_.now() + stack_.config().arp_retry_ms * kMilli);
  send_ns(next_hop, next_hop.solicited_node(), false);
}

void Ndp::on_timer(Entry& e) {
  const uint8_t max = uint8_t(stack_.config().arp_retries);
  switch (e.state) {
    case NeighborState::kIncomplete:
      if (e.probes < max) {
        ++e.probes;
        stack_.timers().arm(e.timer, stack_.now() + stack_.config().arp_retry_ms * kMilli);
        send_ns(e.ip, e.ip.solicited_node(), false);
        return;
      }
      // RFC 4861 7.2.2: resolution failed; the queued packets are dropped and each sender is
      // told "address unreachable". The queue (bounded by arp_queue) is taken out first, so
      // whatever the upper layers do in answer cannot touch this entry.
      ++unreachable_;
      drop_unresolved_.inc(e.pending.count());
      {
        PacketQueue failed = std::move(e.pending);
        remove(e);
        while (PacketPtr p = failed.pop()) stack_.icmp6().on_link_failure(*p);
      }
      return;
    case NeighborState::kReachable:
      set_state(e, NeighborState::kStale);  // RFC 4861 7.3.3: ReachableTime passed
      return;
    case NeighborState::kDelay:
      // RFC 4861 7.3.3: no confirmation within DELAY_FIRST_PROBE_TIME: probe by unicast.
      e.state = NeighborState::kProbe;
      e.probes = 1;
      stack_.timers().arm(e.timer, stack_.now() + stack_.config().arp_retry_ms * kMilli);
      send_ns(e.ip, e.ip, false);
      return;
    case NeighborState::kProbe:
      if (e.probes < max) {
        ++e.probes;
        stack_.timers().arm(e.timer, stack_.now() + stack_.config().arp_retry_ms * kMilli);
        send_ns(e.ip, e.ip, false);
        return;
      }
      ++unreachable_;  // RFC 4861 7.3.3: MAX_UNICAST_SOLICIT probes unanswered
      remove(e);
      return;
    case NeighborState::kStale:
      return;
  }
}

// ---------------------------------------------------------------------------------------
// Messages

void Ndp::send_ns(const Ipv6Addr& target, const Ipv6Addr& dst, bool dad) {
  PacketPtr m = stack_.alloc_tx();
  if (!m) return;
  // RFC 4861 4.3; the source link-layer address option is omitted when the source is ::.
  uint8_t* d = m->append(kNdpNsNaLen + (dad ? 0 : 8));
  d[0] = kIcmp6NeighborSolicit;
  d[1] = 0;
  store16(d + 2, 0);
  store32(d + 4, 0);
  target.write(d + 8);
  if (!dad) {
    d[24] = kNdpOptSourceLla;
    d[25] = 1;
    stack_.mac().write(d + 26);
  }
  Ipv6Tx tx;
  tx.dst = dst;
  tx.hop_limit = 255;
  tx.multicast_loop = false;  // our own probe must not look like someone else's
  tx.allow_unspecified_src = dad;
  // RFC 4861 7.2.2: from an address of ours in the target's scope (a global target is
  // solicited from a global address, though the destination group is link-scoped).
  if (!dad) {
    if (auto s = stack_.source_for(IpAddr(target)); s && s->is_v6()) tx.src = s->v6;
  }
  ++tx_ns_;
  stack_.icmp6().output(std::move(m), tx);
}

void Ndp::send_na(const Ipv6Addr& target, const Ipv6Addr& dst, bool solicited) {
  PacketPtr m = stack_.alloc_tx();
  if (!m) return;
  uint8_t* d = m->append(kNdpNsNaLen + 8);
  d[0] = kIcmp6NeighborAdvert;
  d[1] = 0;
  store16(d + 2, 0);
  // RFC 4861 7.2.4: Override set (our own address, no anycast), Solicited when answering.
  store32(d + 4, kNaFlagOverride | (solicited ? kNaFlagSolicited : 0));
  target.write(d + 8);
  d[24] = kNdpOptTargetLla;
  d[25] = 1;
  stack_.mac().write(d + 26);
  Ipv6Tx tx;
  tx.src = target;
  tx.dst = dst;
  tx.hop_limit = 255;
  tx.multicast_loop = false;
  ++tx_na_;
  stack_.icmp6().output(std::move(m), tx);
}

void Ndp::on_rx(PacketPtr p, const IpRx& rx) {
  const uint8_t* d = p->data();
  const size_t len = p->size();
  switch (d[0]) {
    case kIcmp6NeighborSolicit:
      ++rx_ns_;
      on_ns(d, len, rx);
      return;
    case kIcmp6NeighborAdvert:
      ++rx_na_;
      on_na(d, len, rx);
      return;
    default:
      // Router solicitations are for routers; router advertisements and redirects are ignored
      // on purpose: addresses and the default gateway are configured, not learned (no SLAAC).
      ++ignored_router_msgs_;
      return;
  }
}

void Ndp::on_ns(const uint8_t* d, size_t len, const IpRx& rx) {
  // RFC 4861 7.1.1 validation (the checksum was checked by ICMPv6).
  if (rx.hop_limit != 255 || d[1] != 0 || len < kNdpNsNaLen) {
    ++drop_invalid_;
    return;
  }
  const NdpNsNaRepr ns = NdpNsNaRepr::parse(d, len, kNdpOptSourceLla);
  if (ns.bad_option) {
    ++drop_bad_option_;
    return;
  }
  const bool from_unspecified = rx.src.v6.is_unspecified();
  if (ns.target.is_multicast() ||
      (from_unspecified && (ns.lla || !(rx.dst.v6.is_multicast() && rx.dst.v6 == ns.target.solicited_node())))) {
    ++drop_invalid_;
    return;
  }
  const Ipv6Interface* ours = nullptr;
  for (const auto& i : stack_.ipv6_addresses()) {
    if (i.addr == ns.target) ours = &i;
  }
  if (!ours) {
    ++drop_not_our_target_;
    return;
  }
  if (ours->state == Ipv6Interface::State::kTentative) {
    // RFC 4862 5.4.3: another node probing the same tentative address: a duplicate. A
    // solicitation from a unicast source is address resolution, not for a tentative address.
    if (from_unspecified) {
      dad_conflict(ns.target, "neighbor solicitation");
    } else {
      ++drop_not_our_target_;  // not ours yet
    }
    return;
  }
  if (ours->state != Ipv6Interface::State::kPreferred) {
    ++drop_not_our_target_;  // a duplicate: not ours to answer for
    return;
  }
  if (from_unspecified) {
    // RFC 4861 7.2.4: answering a DAD probe: to all-nodes, not solicited.
    Ipv6Addr all_nodes;
    all_nodes.b[0] = 0xff;
    all_nodes.b[1] = 0x02;
    all_nodes.b[15] = 1;
    send_na(ns.target, all_nodes, false);
    return;
  }
  if (ns.lla) {
    // RFC 4861 7.2.3: learn or refresh the solicitor's link-layer address as STALE.
    Entry* e = find(rx.src.v6);
    if (!e) {
      e = insert(rx.src.v6);
      e->mac = *ns.lla;
      set_state(*e, NeighborState::kStale);
    } else if (e->state == NeighborState::kIncomplete) {
      e->mac = *ns.lla;
      set_state(*e, NeighborState::kStale);
      flush_pending(*e);
    } else if (e->mac != *ns.lla) {
      e->mac = *ns.lla;
      set_state(*e, NeighborState::kStale);
    }
  }
  send_na(ns.target, rx.src.v6, true);
}

void Ndp::on_na(const uint8_t* d, size_t len, const IpRx& rx) {
  // RFC 4861 7.1.2 validation.
  if (rx.hop_limit != 255 || d[1] != 0 || len < kNdpNsNaLen) {
    ++drop_invalid_;
    return;
  }
  const NdpNsNaRepr na = NdpNsNaRepr::parse(d, len, kNdpOptTargetLla);
  if (na.bad_option) {
    ++drop_bad_option_;
    return;
  }
  const bool solicited = na.flags & kNaFlagSolicited;
  const bool override_flag = na.flags & kNaFlagOverride;
  if (na.target.is_multicast() || (rx.dst.v6.is_multicast() && solicited)) {
    ++drop_invalid_;
    return;
  }
  for (const auto& i : stack_.ipv6_addresses()) {
    if (i.addr != na.target) continue;
    if (i.state == Ipv6Interface::State::kTentative) {
      dad_conflict(na.target, "neighbor advertisement");  // RFC 4862 5.4.4
    } else {
      // RFC 4861 7.2.5 leaves this to the node: someone else claims an address we use. Said on
      // the 1st, 2nd, 4th, 8th... claim: a peer repeating it must not flood the log.
      ++address_conflict_;
      if (std::has_single_bit(address_conflict_.value)) {
        SHUNT_WARN("ndp: %s claims our address %s (%llu claims so far)", rx.src.v6.str().c_str(),
                   na.target.str().c_str(), static_cast<unsigned long long>(address_conflict_.value));
      }
    }
    return;
  }
  Entry* e = find(na.target);
  if (!e) {
    ++na_ignored_;  // RFC 4861 7.2.5: no entry, no new one from an advertisement
    return;
  }
  if (e->state == NeighborState::kIncomplete) {
    if (!na.lla) {
      ++na_ignored_;
      return;
    }
    e->mac = *na.lla;
    if (solicited) {
      set_reachable(*e);
    } else {
      set_state(*e, NeighborState::kStale);
    }
    flush_pending(*e);
    return;
  }
  const bool differs = na.lla && *na.lla != e->mac;
  if (!override_flag && differs) {
    // RFC 4861 7.2.5: a different address without Override does not replace ours; a
    // REACHABLE entry becomes STALE so that it is reconfirmed.
    if (e->state == NeighborState::kReachable) set_state(*e, NeighborState::kStale);
    ++na_ignored_;
    return;
  }
  if (na.lla) e->mac = *na.lla;
  if (solicited) {
    set_reachable(*e);
  } else if (differs) {
    set_state(*e, NeighborState::kStale);
  }
}

// ---------------------------------------------------------------------------------------
// Duplicate address detection (RFC 4862 5.4)

void Ndp::start_dad(const Ipv6Addr& a) {
  Dad* slot = nullptr;
  for (size_t i = 0; i < kMaxDad; ++i) {
    if (dad_[i].used && dad_[i].addr == a) return;
    if (!dad_[i].used && !slot) slot = &dad_[i];
  }
  if (!slot || stack_.config().dad_transmits <= 0) {
    // No probe slot (or DAD disabled): the address is used without detection.
    for (auto& i : stack_.ipv6_addresses()) {
      if (i.addr == a && i.state == Ipv6Interface::State::kTentative) i.state = Ipv6Interface::State::kPreferred;
    }
    return;
  }
  slot->used = true;
  slot->addr = a;
  slot->sent = 0;
  // RFC 4862 5.4.2 suggests a random delay before the first probe for hosts that start
  // together; one simulated stack starting probes at once is deterministic and harmless.
  on_dad_timer(*slot);
}

void Ndp::on_dad_timer(Dad& d) {
  if (d.sent < stack_.config().dad_transmits) {
    ++d.sent;
    // RFC 4862 5.4.2: NS from :: to the solicited-node group, probes RetransTimer apart.
    stack_.timers().arm(d.timer, stack_.now() + stack_.config().arp_retry_ms * kMilli);
    send_ns(d.addr, d.addr.solicited_node(), true);
    return;
  }
  // RFC 4862 5.4.5: no conflict in RetransTimer after the last probe: the address is ours.
  d.used = false;
  for (auto& i : stack_.ipv6_addresses()) {
    if (i.addr == d.addr && i.state == Ipv6Interface::State::kTentative) {
      i.state = Ipv6Interface::State::kPreferred;
      ++dad_ok_;
      SHUNT_DEBUG("ndp: %s passed duplicate address detection", d.addr.str().c_str());
    }
  }
}

void Ndp::dad_conflict(const Ipv6Addr& a, const char* why) {
  for (size_t i = 0; i < kMaxDad; ++i) {
    if (dad_[i].used && dad_[i].addr == a) {
      dad_[i].used = false;
      dad_[i].timer.cancel();
    }
  }
  for (auto& i : stack_.ipv6_addresses()) {
    if (i.addr == a && i.state == Ipv6Interface::State::kTentative) {
      i.state = Ipv6Interface::State::kDuplicate;
      ++dad_duplicate_;
      SHUNT_WARN("ndp: duplicate address %s detected (%s); it will not be used", a.str().c_str(), why);
      stack_.mld().leave(a.solicited_node());
    }
  }
}

}  // namespace shunt
