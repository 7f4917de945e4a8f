#include "stack/net/ipv4.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "stack/core/log.h"
#include "stack/driver/checksum_offload.h"
#include "stack/net/arp.h"
#include "stack/net/icmp.h"
#include "stack/net/igmp.h"
#include "stack/net/ipv4_wire.h"
#include "stack/net/stack.h"
#include "stack/net/tcp/tcp.h"
#include "stack/net/udp.h"

namespace shunt {

namespace {
// A frame must fit one buffer behind the default headroom, whatever the device's MTU.
constexpr size_t kMaxFrameIpLen = PacketBuf::kCapacity - PacketBuf::kDefaultHeadroom;
}  // namespace

Ipv4::Ipv4(Stack& stack)
    : stack_(stack),
      next_ident_(uint16_t(stack.random().next())),
      reasm_(kMaxReassemblies),
      reasm_timer_([this](Nanos now) { on_reasm_timer(now); }),
      rx_packets_(stack.counters().add("ipv4.rx_packets")),
      rx_delivered_(stack.counters().add("ipv4.rx_delivered")),
      tx_packets_(stack.counters().add("ipv4.tx_packets")),
      tx_fragments_(stack.counters().add("ipv4.tx_fragments")),
      drop_truncated_(stack.counters().add("ipv4.drop.truncated")),
      drop_bad_version_(stack.counters().add("ipv4.drop.bad_version")),
      drop_bad_header_len_(stack.counters().add("ipv4.drop.bad_header_len")),
      drop_bad_total_len_(stack.counters().add("ipv4.drop.bad_total_len")),
      drop_bad_checksum_(stack.counters().add("ipv4.drop.bad_checksum")),
      drop_bad_option_(stack.counters().add("ipv4.drop.bad_option")),
      drop_bad_source_(stack.counters().add("ipv4.drop.bad_source")),
      drop_martian_(stack.counters().add("ipv4.drop.martian")),
      drop_not_for_us_(stack.counters().add("ipv4.drop.not_for_us")),
      drop_link_broadcast_unicast_(stack.counters().add("ipv4.drop.unicast_in_link_broadcast")),
      drop_unknown_protocol_(stack.counters().add("ipv4.drop.unknown_protocol")),
      drop_frag_bad_length_(stack.counters().add("ipv4.drop.frag_bad_length")),
      drop_frag_too_big_(stack.counters().add("ipv4.drop.frag_too_big")),
      drop_frag_duplicate_(stack.counters().add("ipv4.drop.frag_duplicate")),
      drop_reasm_overlap_(stack.counters().add("ipv4.drop.reasm_overlap")),
      drop_reasm_inconsistent_(stack.counters().add("ipv4.drop.reasm_inconsistent")),
      drop_reasm_too_many_frags_(stack.counters().add("ipv4.drop.reasm_too_many_frags")),
      drop_reasm_memory_(stack.counters().add("ipv4.drop.reasm_memory")),
      drop_reasm_timeout_(stack.counters().add("ipv4.drop.reasm_timeout")),
      drop_reasm_evicted_(stack.counters().add("ipv4.drop.reasm_evicted")),
      reasm_ok_(stack.counters().add("ipv4.reasm_ok")),
      tx_no_route_(stack.counters().add("ipv4.tx_no_route")),
      tx_no_buffer_(stack.counters().add("ipv4.tx_no_buffer")),
      tx_too_big_(stack.counters().add("ipv4.tx_too_big")) {}

Ipv4::~Ipv4() {
  reasm_timer_.cancel();
  for (auto& r : reasm_) {
    while (r.frags) {
      PacketBuf* b = r.frags;
      r.frags = b->next;
      b->next = nullptr;
      PacketPtr(b).reset();
    }
  }
}

// ------------------------------------------------------------------------------------------
// Receive

void Ipv4::on_rx(PacketPtr p, const EthRepr& eth) {
  ++rx_packets_;
  Ipv4Repr h;
  const bool verify = !(p->flags & PacketBuf::kRxL3ChecksumOk);
  switch (Ipv4Repr::parse(p->data(), p->size(), verify, h)) {
    case Ipv4Error::kNone: break;
    case Ipv4Error::kTruncated: ++drop_truncated_; return;
    case Ipv4Error::kBadVersion: ++drop_bad_version_; return;
    case Ipv4Error::kBadHeaderLen: ++drop_bad_header_len_; return;
    case Ipv4Error::kBadTotalLen: ++drop_bad_total_len_; return;
    case Ipv4Error::kBadChecksum: ++drop_bad_checksum_; return;
    case Ipv4Error::kBadOption: ++drop_bad_option_; return;
  }
  p->trim(h.total_len);  // Ethernet padding (RFC 894)

  // RFC 1122 3.3.6 / 3.2.1.3: which destinations a host accepts.
  if (stack_.is_local_v4(h.dst)) {
    // A unicast datagram that arrived in a link-layer broadcast or multicast frame.
    if (eth.dst.is_multicast()) {
      ++drop_link_broadcast_unicast_;
      return;
    }
  } else if (h.dst.is_multicast()) {
    if (!stack_.igmp().is_member(h.dst)) {
      ++drop_not_for_us_;
      return;
    }
  } else if (!stack_.is_broadcast_v4(h.dst)) {
    ++drop_not_for_us_;
    return;
  }
  // RFC 1122 3.2.1.3: the source must be a single host (not broadcast or multicast);
  // 127/8 never appears on a wire. 0.0.0.0 is allowed (a host learning its address).
  if (h.src.is_multicast() || h.src.is_broadcast() || stack_.is_broadcast_v4(h.src)) {
    ++drop_bad_source_;
    return;
  }
  if (h.src.is_loopback() || h.dst.is_loopback()) {
    ++drop_martian_;
    return;
  }
  // RFC 1122 3.2.1.7: a host does not discard a datagram for its TTL; it is passed up as
  // received (hop_limit).
  if (h.is_fragment()) {
    reassemble(std::move(p), h, eth);
    return;
  }
  p->pull(h.header_len);
  IpRx rx;
  rx.src = h.src;
  rx.dst = h.dst;
  rx.proto = h.proto;
  rx.hop_limit = h.ttl;
  rx.tos = h.tos;
  rx.l3_len = h.header_len;
  rx.link_multicast = eth.dst.is_multicast();
  rx.link_broadcast = eth.dst.is_broadcast();
  deliver(std::move(p), rx);
}

void Ipv4::deliver(PacketPtr p, const IpRx& rx) {
  ++rx_delivered_;
  switch (rx.proto) {
    case kProtoUdp: stack_.udp().on_rx(std::move(p), rx); return;
    case kProtoTcp: stack_.tcp().on_rx(std::move(p), rx); return;
    case kProtoIcmp: stack_.icmp().on_rx(std::move(p), rx); return;
    case kProtoIgmp: stack_.igmp().on_rx(std::move(p), rx); return;
    default:
      ++drop_unknown_protocol_;
      // RFC 1122 3.2.2.1: protocol unreachable (send_unreachable applies the 3.2.2 limits).
      stack_.icmp().send_unreachable(2, *p, rx);
      return;
  }
}

// ------------------------------------------------------------------------------------------
// Reassembly (RFC 791 3.2 "reassembly", RFC 815)

void Ipv4::reassemble(PacketPtr p, const Ipv4Repr& h, const EthRepr& eth) {
  const uint32_t off = h.frag_offset;
  const uint32_t len = uint32_t(h.total_len - h.header_len);
  // RFC 791 3.2: every fragment but the last carries a multiple of 8 octets.
  if (len == 0 || (h.more_fragments && (len & 7))) {
    ++drop_frag_bad_length_;
    return;
  }
  // The reassembled datagram could not have a valid total length.
  if (off + len + kIpv4MinHeaderLen > kIpv4MaxTotalLen) {
    ++drop_frag_too_big_;
    return;
  }
  const auto& cfg = stack_.config();
  Reassembly* r = nullptr;
  Reassembly* free_slot = nullptr;
  Reassembly* oldest = nullptr;
  for (auto& s : reasm_) {
    if (!s.active) {
      if (!free_slot) free_slot = &s;
      continue;
    }
    if (s.ident == h.ident && s.src == h.src && s.dst == h.dst && s.proto == h.proto) {
      r = &s;
      break;
    }
    if (!oldest || s.started < oldest->started) oldest = &s;
  }
  if (!r) {
    if (!free_slot) {  // bounded datagrams in progress: the oldest makes room
      reasm_drop(*oldest, drop_reasm_evicted_);
      free_slot = oldest;
    }
    r = free_slot;
    r->active = true;
    r->src = h.src;
    r->dst = h.dst;
    r->ident = h.ident;
    r->proto = h.proto;
    r->frags = nullptr;
    r->frag_count = 0;
    r->have_bytes = 0;
    r->total_len = 0;
    r->have_last = false;
    r->mem = 0;
    r->deadline = stack_.now() + cfg.reasm_timeout_ms * kMilli;
    r->started = reasm_serial_++;
    ++reasm_active_;
    reasm_arm_timer();
  }
  const uint32_t end = off + len;
  if (r->have_last && end > r->total_len) {
    reasm_drop(*r, drop_reasm_inconsistent_);
    return;
  }
  PacketBuf** pos = &r->frags;
  for (PacketBuf* f = r->frags; f; f = f->next) {
    const uint32_t fo = uint32_t(f->user >> 32);
    const uint32_t fl = uint32_t(f->user);
    if (fo == off && fl == len) {  // a duplicate (the network may copy): ignore it alone
      ++drop_frag_duplicate_;
      if (!h.more_fragments && !r->have_last) {  // same bytes, now known to be the last
        reasm_drop(*r, drop_reasm_inconsistent_);
      }
      return;
    }
    // RFC 5722 (applied to IPv4 as Linux does): any overlap discards the whole datagram.
    if (off < fo + fl && fo < end) {
      reasm_drop(*r, drop_reasm_overlap_);
      return;
    }
    if (fo < off) pos = &f->next;
  }
  if (!h.more_fragments) {
    if (r->have_last && r->total_len != end) {
      reasm_drop(*r, drop_reasm_inconsistent_);
      return;
    }
    for (PacketBuf* f = r->frags; f; f = f->next) {
      if (uint32_t(f->user >> 32) + uint32_t(f->user) > end) {
        reasm_drop(*r, drop_reasm_inconsistent_);
        return;
      }
    }
    r->have_last = true;
    r->total_len = end;
  }
  if (r->frag_count + 1 > uint64_t(cfg.reasm_max_frags)) {
    reasm_drop(*r, drop_reasm_too_many_frags_);
    return;
  }
  // Memory for all datagrams together: the oldest others go first, then this one. Never more
  // than a quarter of the pool, whatever the configuration: IPv6 takes at most another quarter,
  // so fragments that never complete cannot starve the receive path.
  constexpr size_t kTrueSize = PacketBuf::kCapacity;
  const size_t limit = std::min(size_t(std::max<int64_t>(cfg.reasm_max_bytes, 0)),
                                stack_.pool().capacity() * kTrueSize / 4);
  while (reasm_bytes_ + kTrueSize > limit) {
    Reassembly* victim = nullptr;
    for (auto& s : reasm_) {
      if (s.active && &s != r && (!victim || s.started < victim->started)) victim = &s;
    }
    if (!victim) {
      reasm_drop(*r, drop_reasm_memory_);
      return;
    }
    reasm_drop(*victim, drop_reasm_memory_);
  }
  if (off == 0) {
    r->head_header_len = h.header_len;
    r->ttl = h.ttl;
    r->tos = h.tos;
  }
  r->link_multicast |= eth.dst.is_multicast();
  r->link_broadcast |= eth.dst.is_broadcast();
  p->pull(h.header_len);  // the header stays in the buffer in front of data()
  p->user = uint64_t(off) << 32 | len;
  PacketBuf* b = p.release();
  b->next = *pos;
  *pos = b;
  ++r->frag_count;
  r->have_bytes += len;
  r->mem += kTrueSize;
  reasm_bytes_ += kTrueSize;
  if (r->have_last && r->have_bytes == r->total_len) reasm_complete(*r);
}

void Ipv4::reasm_drop(Reassembly& r, Counter& why) {
  ++why;
  while (r.frags) {
    PacketBuf* b = r.frags;
    r.frags = b->next;
    b->next = nullptr;
    PacketPtr(b).reset();
  }
  reasm_bytes_ -= r.mem;
  r.mem = 0;
  r.active = false;
  r.head_header_len = 0;
  r.link_multicast = r.link_broadcast = false;
  --reasm_active_;
}

void Ipv4::reasm_complete(Reassembly& r) {
  PacketBuf* head = r.frags;
  const size_t hl = r.head_header_len;
  const uint32_t total = uint32_t(hl + r.total_len);
  if (hl == 0 || total > kIpv4MaxTotalLen) {  // the first fragment's options made it too big
    reasm_drop(r, drop_frag_too_big_);
    return;
  }
  // The fragments become one chain, released together.
  for (PacketBuf* f = head; f; f = f->chain) {
    f->chain = f->next;
    f->next = nullptr;
    f->user = 0;
  }
  // The head keeps its IP header in front of data(), fixed up to describe the whole datagram.
  uint8_t* iph = head->data() - hl;
  store16(iph + 2, uint16_t(total));
  store16(iph + 6, 0);
  store16(iph + 10, 0);
  store16(iph + 10, checksum(iph, hl));
  head->flags = 0;

  IpRx rx;
  rx.src = r.src;
  rx.dst = r.dst;
  rx.proto = r.proto;
  rx.hop_limit = r.ttl;
  rx.tos = r.tos;
  rx.l3_len = uint16_t(hl);
  rx.link_multicast = r.link_multicast;
  rx.link_broadcast = r.link_broadcast;
  rx.reassembled = true;

  r.frags = nullptr;
  reasm_bytes_ -= r.mem;
  r.mem = 0;
  r.active = false;
  r.head_header_len = 0;
  r.link_multicast = r.link_broadcast = false;
  --reasm_active_;
  ++reasm_ok_;
  deliver(PacketPtr(head), rx);
}

void Ipv4::reasm_arm_timer() {
  Nanos next = kNever;
  for (const auto& s : reasm_) {
    if (s.active) next = std::min(next, s.deadline);
  }
  if (next == kNever) {
    reasm_timer_.cancel();
  } else if (!reasm_timer_.armed() || reasm_timer_.deadline() != next) {
    stack_.timers().arm(reasm_timer_, next);
  }
}

void Ipv4::on_reasm_timer(Nanos now) {
  for (auto& r : reasm_) {
    if (!r.active || r.deadline > now) continue;
    // RFC 1122 3.3.2: time exceeded (fragment reassembly) if the first fragment arrived.
    if (r.head_header_len && r.frags && (r.frags->user >> 32) == 0) {
      IpRx rx;
      rx.src = r.src;
      rx.dst = r.dst;
      rx.proto = r.proto;
      rx.l3_len = r.head_header_len;
      rx.link_multicast = r.link_multicast;
      rx.link_broadcast = r.link_broadcast;
      stack_.icmp().send_error(11, 1, *r.frags, rx);
    }
    reasm_drop(r, drop_reasm_timeout_);
  }
  reasm_arm_timer();
}

// ------------------------------------------------------------------------------------------
// Send

int Ipv4::output(PacketPtr l4, const Ipv4Tx& tx) {
  if (!l4) {
    ++tx_no_buffer_;
    return -ENOBUFS;
  }
  const Ipv4Addr dst = tx.dst;
  LinkTarget t;
  t.next_hop = dst;
  if (dst.is_multicast()) {
    t.kind = LinkTarget::Kind::kMulticast;
    t.loop_copy = tx.multicast_loop && stack_.igmp().is_member(dst);
    t.wire = tx.ttl != 0;  // IP_MULTICAST_TTL 0: never leaves the host
  } else if (stack_.is_local_v4(dst)) {
    t.kind = LinkTarget::Kind::kLocal;
  } else if (stack_.is_broadcast_v4(dst)) {
    if (!tx.allow_broadcast) return -EACCES;
    t.kind = LinkTarget::Kind::kBroadcast;
  } else {
    auto nh = dst.is_unspecified() || dst.is_loopback() ? std::nullopt : stack_.routes().lookup(IpAddr(dst));
    if (!nh || !nh->addr.is_v4()) {
      ++tx_no_route_;
      return -ENETUNREACH;
    }
    t.kind = LinkTarget::Kind::kUnicast;
    t.next_hop = nh->addr.v4;
  }
  Ipv4Addr src = tx.src;
  if (src.is_unspecified()) {
    auto s = stack_.source_for(IpAddr(dst));
    if (s && s->is_v4()) {
      src = s->v4;
    } else if (t.kind == LinkTarget::Kind::kUnicast || t.kind == LinkTarget::Kind::kLocal) {
      ++tx_no_route_;
      return -ENETUNREACH;
    }
    // Else broadcast or multicast from 0.0.0.0 while we have no address (RFC 1122 3.2.1.3,
    // RFC 3376 4.2.13).
  }

  Ipv4Repr h;
  h.src = src;
  h.dst = dst;
  h.header_len = tx.router_alert ? 24 : 20;
  h.ident = next_ident_++;
  h.dont_fragment = tx.dont_fragment;
  // RFC 1122 3.2.1.7: never send TTL 0 (multicast with TTL 0 is only looped back).
  h.ttl = tx.ttl || !t.wire ? tx.ttl : uint8_t(stack_.config().ttl);
  h.tos = tx.tos;
  h.proto = tx.proto;
  const size_t payload = l4->chain ? l4->chain_size() : l4->size();
  const size_t total = h.header_len + payload;
  if (total > kIpv4MaxTotalLen) {
    ++tx_too_big_;
    return -EMSGSIZE;
  }
  const size_t mtu = std::min<size_t>(stack_.mtu(), kMaxFrameIpLen);
  if (total > mtu) {
    if (tx.dont_fragment) {
      ++tx_too_big_;
      return -EMSGSIZE;
    }
    return fragment_and_send(std::move(l4), h, payload, t);
  }
  h.total_len = uint16_t(total);
  // One frame: the header goes in front, in place when the buffer allows.
  if (l4->chain || l4->headroom() < h.header_len + kEthHeaderLen) {
    PacketPtr flat = stack_.alloc_tx();
    if (!flat) {
      ++tx_no_buffer_;
      return -ENOBUFS;
    }
    for (const PacketBuf* b = l4.get(); b; b = b->chain) flat->append(b->bytes());
    flat->flags = l4->flags & PacketBuf::kTxChecksumMask;
    l4 = std::move(flat);
  }
  const bool offload = stack_.device_info().tx_checksum;
  h.emit(l4->prepend(h.header_len), !offload);
  if (offload) l4->flags |= PacketBuf::kTxIpv4Checksum;
  ++tx_packets_;
  send_link(std::move(l4), t);
  return 0;
}

int Ipv4::fragment_and_send(PacketPtr l4, const Ipv4Repr& h0, size_t payload_len, const LinkTarget& t) {
  // RFC 791 3.2 "fragmentation": each fragment but the last carries a multiple of 8 octets;
  // every fragment repeats the header (the only option we send, Router Alert, is copied).
  const size_t hl = h0.header_len;
  const size_t mtu = std::min<size_t>(stack_.mtu(), kMaxFrameIpLen);
  const size_t max_payload = mtu > hl ? ((mtu - hl) / 8) * 8 : 0;
  if (max_payload == 0) {
    ++tx_too_big_;
    return -EMSGSIZE;
  }
  const PacketBuf* cur = l4.get();
  size_t cur_off = 0;
  ++tx_packets_;
  for (size_t off = 0; off < payload_len;) {
    const size_t n = std::min(max_payload, payload_len - off);
    PacketPtr f = stack_.alloc_tx();
    if (!f) {
      ++tx_no_buffer_;
      return -ENOBUFS;
    }
    uint8_t* p = f->append(hl + n);
    uint8_t* d = p + hl;
    for (size_t need = n; need;) {
      const size_t avail = cur->size() - cur_off;
      if (avail == 0) {
        cur = cur->chain;
        cur_off = 0;
        continue;
      }
      const size_t k = std::min(avail, need);
      std::memcpy(d, cur->data() + cur_off, k);
      d += k;
      cur_off += k;
      need -= k;
    }
    Ipv4Repr h = h0;
    h.total_len = uint16_t(hl + n);
    h.frag_offset = uint16_t(off);
    h.more_fragments = off + n < payload_len;
    h.emit(p);
    ++tx_fragments_;
    send_link(std::move(f), t);
    off += n;
  }
  return 0;
}

void Ipv4::send_link(PacketPtr ip, const LinkTarget& t) {
  switch (t.kind) {
    case LinkTarget::Kind::kUnicast:
      stack_.arp().send_ipv4(std::move(ip), t.next_hop);
      return;
    case LinkTarget::Kind::kLocal: {
      // To our own address: back through our receive path as a whole frame.
      uint8_t* e = ip->prepend(kEthHeaderLen);
      if (!e) {
        ++tx_no_buffer_;
        return;
      }
      EthRepr::emit(e, stack_.mac(), stack_.mac(), kEtherTypeIpv4);
      if (ip->flags & PacketBuf::kTxChecksumMask) fill_offloaded_checksums(*ip, ip->flags);
      ip->flags = PacketBuf::kRxL3ChecksumOk | PacketBuf::kRxL4ChecksumOk;
      stack_.loop_back(std::move(ip));
      return;
    }
    case LinkTarget::Kind::kMulticast: {
      const MacAddr mac = ipv4_multicast_mac(t.next_hop);
      if (t.loop_copy) {  // IP_MULTICAST_LOOP
        PacketPtr c = stack_.pool().clone(*ip);
        if (c && c->prepend(kEthHeaderLen)) {
          EthRepr::emit(c->data(), mac, stack_.mac(), kEtherTypeIpv4);
          if (ip->flags & PacketBuf::kTxChecksumMask) fill_offloaded_checksums(*c, ip->flags);
          c->flags = PacketBuf::kRxL3ChecksumOk | PacketBuf::kRxL4ChecksumOk;
          stack_.loop_back(std::move(c));
        } else {
          ++tx_no_buffer_;
        }
      }
      if (t.wire) stack_.send_eth(std::move(ip), mac, kEtherTypeIpv4);
      return;
    }
    case LinkTarget::Kind::kBroadcast:
      stack_.send_eth(std::move(ip), MacAddr::broadcast(), kEtherTypeIpv4);
      return;
  }
}

}  // namespace shunt
