#include "stack/net/ipv6.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "stack/core/log.h"
#include "stack/driver/checksum_offload.h"
#include "stack/net/icmp6.h"
#include "stack/net/icmp6_wire.h"
#include "stack/net/ipv6_wire.h"
#include "stack/net/mld.h"
#include "stack/net/ndp.h"
#include "stack/net/stack.h"
#include "stack/net/tcp/tcp.h"
#include "stack/net/udp.h"

namespace shunt {

namespace {

const Ipv6Addr kAllNodes = [] {
  Ipv6Addr a;
  a.b[0] = 0xff;
  a.b[1] = 0x02;
  a.b[15] = 1;
  return a;
}();

uint8_t mcast_scope(const Ipv6Addr& a) { return a.b[1] & 0x0f; }

}  // namespace

// One datagram being reassembled (RFC 8200 4.5). Fragments are kept as received, data() at
// their fragmentable part, sorted by offset through PacketBuf::next; `user` holds the offset.
struct Ipv6::Reasm {
  bool used = false;
  Ipv6Addr src, dst;
  uint32_t ident = 0;
  Nanos created = 0;
  PacketBuf* frags = nullptr;
  size_t count = 0;
  size_t received = 0;  // fragmentable bytes held
  size_t total = 0;     // known once the last fragment (M = 0) arrived
  bool total_known = false;
  PacketBuf* first = nullptr;  // the offset-0 fragment, once it arrived
  size_t unfrag_len = 0;       // IPv6 header and headers before the fragment header
  size_t nh_field = 0;         // where the first fragment named the fragment header
  uint8_t next_header = 0;     // after the fragment header, from the first fragment
  bool link_multicast = false;
  bool dst_tentative = false;
  int ext_count = 0;
  Timer timer;
};

Ipv6::Ipv6(Stack& stack)
    : stack_(stack),
      rx_packets_(stack.counters().add("ipv6.rx_packets")),
      tx_packets_(stack.counters().add("ipv6.tx_packets")),
      drop_truncated_(stack.counters().add("ipv6.drop.truncated")),
      drop_bad_version_(stack.counters().add("ipv6.drop.bad_version")),
      drop_bad_length_(stack.counters().add("ipv6.drop.bad_length")),
      drop_bad_src_(stack.counters().add("ipv6.drop.bad_src")),
      drop_not_for_us_(stack.counters().add("ipv6.drop.not_for_us")),
      drop_ext_limit_(stack.counters().add("ipv6.drop.ext_header_limit")),
      drop_ext_truncated_(stack.counters().add("ipv6.drop.ext_header_truncated")),
      drop_bad_option_(stack.counters().add("ipv6.drop.bad_option")),
      drop_unknown_option_(stack.counters().add("ipv6.drop.unknown_option")),
      drop_hbh_not_first_(stack.counters().add("ipv6.drop.hop_by_hop_not_first")),
      drop_unknown_next_header_(stack.counters().add("ipv6.drop.unknown_next_header")),
      drop_routing_header_(stack.counters().add("ipv6.drop.routing_header")),
      drop_no_next_header_(stack.counters().add("ipv6.drop.no_next_header")),
      drop_tentative_(stack.counters().add("ipv6.drop.tentative_dst")),
      drop_frag_bad_length_(stack.counters().add("ipv6.drop.frag_bad_length")),
      drop_frag_incomplete_chain_(stack.counters().add("ipv6.drop.frag_incomplete_chain")),
      drop_frag_overlap_(stack.counters().add("ipv6.drop.frag_overlap")),
      drop_frag_too_many_(stack.counters().add("ipv6.drop.frag_too_many")),
      drop_frag_memory_(stack.counters().add("ipv6.drop.frag_memory")),
      drop_frag_timeout_(stack.counters().add("ipv6.drop.frag_timeout")),
      drop_frag_evicted_(stack.counters().add("ipv6.drop.frag_evicted")),
      reasm_ok_(stack.counters().add("ipv6.reassembled")),
      tx_fragments_(stack.counters().add("ipv6.tx_fragments")),
      tx_no_buffer_(stack.counters().add("ipv6.drop.tx_no_buffer")),
      tx_no_route_(stack.counters().add("ipv6.drop.tx_no_route")),
      reasm_(new Reasm[kMaxReasm]) {
  for (size_t i = 0; i < kMaxReasm; ++i) {
    Reasm* r = &reasm_[i];
    r->timer.set_callback([this, r](Nanos) { reasm_expire(*r); });
  }
  // Never let reassembly hold more than a quarter of the buffer pool, whatever the
  // configuration: IPv4 takes at most another quarter, and the rest stays for receiving.
  size_t pool_quarter = stack.pool().capacity() * PacketBuf::kCapacity / 4;
  reasm_limit_ = std::min(size_t(std::max<int64_t>(stack.config().reasm_max_bytes, 0)), pool_quarter);
}

Ipv6::~Ipv6() {
  for (size_t i = 0; i < kMaxReasm; ++i) {
    if (reasm_[i].used) reasm_drop(reasm_[i]);
  }
}

size_t Ipv6::reasm_in_progress() const {
  size_t n = 0;
  for (size_t i = 0; i < kMaxReasm; ++i) n += reasm_[i].used;
  return n;
}

// ---------------------------------------------------------------------------------------
// Receive

void Ipv6::on_rx(PacketPtr p, const EthRepr& eth) {
  ++rx_packets_;
  Ipv6Error err = Ipv6Error::kTruncated;
  // A looped-back datagram bigger than one buffer may arrive chained.
  const size_t avail = p->size() < kIpv6HeaderLen ? p->size() : p->chain_size();
  auto r = Ipv6Repr::parse(p->data(), avail, &err);
  if (!r) {
    switch (err) {
      case Ipv6Error::kTruncated: ++drop_truncated_; break;
      case Ipv6Error::kBadVersion: ++drop_bad_version_; break;
      case Ipv6Error::kBadLength: ++drop_bad_length_; break;
    }
    return;
  }
  // RFC 8200 3: bytes past the payload length are link-layer padding.
  if (!p->chain) p->trim(kIpv6HeaderLen + r->payload_len);
  // RFC 4291 2.7: multicast is never a source; 2.5.3: loopback never appears on a link.
  if (r->src.is_multicast() || r->src.is_loopback()) {
    ++drop_bad_src_;
    return;
  }
  bool dst_tentative = false;
  if (r->dst.is_multicast()) {
    // Interface-local and reserved scopes never come off a link (RFC 4291 2.7).
    if (mcast_scope(r->dst) <= 1 || !(r->dst == kAllNodes || stack_.mld().is_member(r->dst))) {
      ++drop_not_for_us_;
      return;
    }
  } else if (!stack_.is_local_v6(r->dst)) {
    // RFC 4862 5.4.3: a tentative address receives only the NS that may show it duplicate.
    for (const auto& i : stack_.ipv6_addresses()) {
      if (i.addr == r->dst && i.state == Ipv6Interface::State::kTentative) dst_tentative = true;
    }
    if (!dst_tentative) {
      ++drop_not_for_us_;
      return;
    }
  }
  IpRx rx;
  rx.src = r->src;
  rx.dst = r->dst;
  rx.hop_limit = r->hop_limit;
  rx.tos = r->traffic_class;
  rx.link_multicast = eth.dst.is_multicast();
  rx.link_broadcast = eth.dst.is_broadcast();
  walk(std::move(p), rx, kIpv6HeaderLen, r->next_header, 6, 0, dst_tentative);
}

void Ipv6::param_problem(PacketPtr p, IpRx& rx, uint8_t code, size_t pointer) {
  // data() is the IPv6 header: the pointer counts from it (RFC 4443 3.4).
  rx.l3_len = 0;
  rx.proto = 0;
  stack_.icmp6().send_error(kIcmp6ParamProblem, code, uint32_t(pointer), *p, rx);
}

bool Ipv6::walk_options(PacketPtr& p, IpRx& rx, size_t off, size_t len) {
  const uint8_t* d = p->data();
  size_t i = off + 2;
  const size_t end = off + len;
  while (i < end) {
    const uint8_t type = d[i];
    if (type == kOptPad1) {
      ++i;
      continue;
    }
    if (end - i < 2 || end - i < 2 + size_t(d[i + 1])) {
      ++drop_bad_option_;  // the option runs past its header
      return false;
    }
    const size_t olen = 2 + size_t(d[i + 1]);
    if (type != kOptPadN && type != kOptRouterAlert) {
      // RFC 8200 4.2: the two high-order bits of an unrecognized option type say what to do.
      switch (type >> 6) {
        case 0: break;  // skip over it
        case 1: ++drop_unknown_option_; return false;
        case 2:
          ++drop_unknown_option_;
          param_problem(std::move(p), rx, kParamUnknownOption, i);
          return false;
        case 3:
          ++drop_unknown_option_;
          if (!rx.dst.v6.is_multicast()) param_problem(std::move(p), rx, kParamUnknownOption, i);
          return false;
      }
    }
    i += olen;
  }
  return true;
}

void Ipv6::walk(PacketPtr p, IpRx& rx, size_t off, uint8_t nh, size_t nh_field, int count, bool dst_tentative) {
  for (;;) {
    const uint8_t* d = p->data();
    const size_t size = p->size();
    switch (nh) {
      case kNextHopByHop:
        // RFC 8200 4.1: only directly after the IPv6 header; elsewhere it is an unknown header.
        if (count != 0) {
          ++drop_hbh_not_first_;
          param_problem(std::move(p), rx, kParamUnknownNextHeader, nh_field);
          return;
        }
        [[fallthrough]];
      case kNextDestOpts:
      case kNextRouting: {
        if (++count > kMaxExtHeaders) {
          ++drop_ext_limit_;
          return;
        }
        if (size - off < 2 || size - off < ipv6_ext_len(d + off)) {
          ++drop_ext_truncated_;
          return;
        }
        const size_t len = ipv6_ext_len(d + off);
        if (off + len - kIpv6HeaderLen > kMaxExtBytes) {
          ++drop_ext_limit_;
          return;
        }
        if (nh == kNextRouting) {
          // RFC 8200 4.4: we route nothing, so every routing type is unrecognized to us (type 0
          // is deprecated, RFC 5095); with segments left it is an error, else it is ignored.
          if (d[off + 3] != 0) {
            ++drop_routing_header_;
            param_problem(std::move(p), rx, kParamErroneousField, off + 2);
            return;
          }
        } else if (!walk_options(p, rx, off, len)) {
          return;
        }
        nh_field = off;
        nh = d[off];
        off += len;
        break;
      }
      case kNextFragment:
        if (rx.reassembled) {  // a fragment inside a reassembled datagram: not ours to nest
          ++drop_frag_bad_length_;
          return;
        }
        if (++count > kMaxExtHeaders) {
          ++drop_ext_limit_;
          return;
        }
        if (size - off < kIpv6FragHeaderLen) {
          ++drop_ext_truncated_;
          return;
        }
        on_fragment(std::move(p), rx, off, nh_field, count, dst_tentative);
        return;
      case kNextNone:
        ++drop_no_next_header_;  // RFC 8200 4.7: nothing follows
        return;
      default:
        rx.proto = nh;
        if (nh != kProtoIcmpv6 && nh != kProtoUdp && nh != kProtoTcp) {
          // RFC 8200 4: unrecognized Next Header -> parameter problem code 1.
          ++drop_unknown_next_header_;
          param_problem(std::move(p), rx, kParamUnknownNextHeader, nh_field);
          return;
        }
        deliver(std::move(p), rx, off, dst_tentative);
        return;
    }
  }
}

void Ipv6::deliver(PacketPtr p, IpRx& rx, size_t off, bool dst_tentative) {
  if (dst_tentative &&
      !(rx.proto == kProtoIcmpv6 && p->size() > off && p->data()[off] == kIcmp6NeighborSolicit)) {
    ++drop_tentative_;
    return;
  }
  rx.l3_len = uint16_t(off);
  p->pull(off);
  if (rx.proto == kProtoUdp) {
    stack_.udp().on_rx(std::move(p), rx);
  } else if (rx.proto == kProtoTcp) {
    stack_.tcp().on_rx(std::move(p), rx);
  } else {
    stack_.icmp6().on_rx(std::move(p), rx);
  }
}

// ---------------------------------------------------------------------------------------
// Reassembly (RFC 8200 4.5)

void Ipv6::reasm_drop(Reasm& r) {
  for (PacketBuf* b = r.frags; b;) {
    PacketBuf* n = b->next;
    b->next = nullptr;
    PacketPtr drop(b);
    reasm_bytes_ -= PacketBuf::kCapacity;
    b = n;
  }
  r.frags = nullptr;
  r.first = nullptr;
  r.count = r.received = r.total = 0;
  r.total_known = false;
  r.used = false;
  r.timer.cancel();
}

void Ipv6::reasm_expire(Reasm& r) {
  ++drop_frag_timeout_;
  // RFC 8200 4.5: time exceeded code 1, but only if the first fragment arrived.
  if (r.first) {
    IpRx rx;
    rx.src = r.src;
    rx.dst = r.dst;
    rx.proto = r.next_header;
    rx.l3_len = uint16_t(r.unfrag_len + kIpv6FragHeaderLen);
    rx.link_multicast = r.link_multicast;
    stack_.icmp6().send_error(kIcmp6TimeExceeded, kTimeExceededReassembly, 0, *r.first, rx);
  }
  reasm_drop(r);
}

void Ipv6::on_fragment(PacketPtr p, IpRx& rx, size_t off, size_t nh_field, int count, bool dst_tentative) {
  const uint8_t* d = p->data();
  const Ipv6FragRepr f = Ipv6FragRepr::parse(d + off);
  const size_t payload_off = off + kIpv6FragHeaderLen;
  const size_t len = p->size() - payload_off;

  // RFC 6946: an atomic fragment (offset 0, M = 0) is processed as a whole datagram at once.
  if (f.offset == 0 && !f.more) {
    walk(std::move(p), rx, payload_off, f.next_header, off, count, dst_tentative);
    return;
  }
  // RFC 8200 4.5: a non-last fragment must be a multiple of 8 bytes long.
  if (f.more && (len % 8 != 0 || len == 0)) {
    ++drop_frag_bad_length_;
    param_problem(std::move(p), rx, kParamErroneousField, 4);
    return;
  }
  if (size_t(f.offset) + len > 65535) {
    ++drop_frag_bad_length_;
    param_problem(std::move(p), rx, kParamErroneousField, off + 2);
    return;
  }
  if (f.offset == 0) {
    // RFC 7112 5: the first fragment carries the whole header chain and the upper-layer header.
    size_t o = payload_off;
    uint8_t nh = f.next_header;
    int n = 0;
    bool complete = false;
    while (n++ <= kMaxExtHeaders) {
      if (nh == kNextHopByHop || nh == kNextDestOpts || nh == kNextRouting) {
        if (p->size() - o < 2 || p->size() - o < ipv6_ext_len(d + o)) break;
        nh = d[o];
        o += ipv6_ext_len(d + o);
        continue;
      }
      const size_t need = nh == kProtoUdp ? 8 : nh == kProtoIcmpv6 ? 4 : nh == kProtoTcp ? 20 : 0;
      complete = p->size() - o >= need;
      break;
    }
    if (!complete) {
      ++drop_frag_incomplete_chain_;
      param_problem(std::move(p), rx, kParamIncompleteChain, 0);
      return;
    }
  }

  const uint32_t ident = f.ident;
  Reasm* r = nullptr;
  Reasm* free_slot = nullptr;
  Reasm* oldest = nullptr;
  for (size_t i = 0; i < kMaxReasm; ++i) {
    Reasm& c = reasm_[i];
    if (!c.used) {
      if (!free_slot) free_slot = &c;
      continue;
    }
    if (c.ident == ident && c.src == rx.src.v6 && c.dst == rx.dst.v6) {
      r = &c;
      break;
    }
    if (!oldest || c.created < oldest->created) oldest = &c;
  }
  if (!r) {
    if (!free_slot) {
      ++drop_frag_evicted_;
      reasm_drop(*oldest);
      free_slot = oldest;
    }
    r = free_slot;
    r->used = true;
    r->src = rx.src.v6;
    r->dst = rx.dst.v6;
    r->ident = ident;
    r->created = stack_.now();
    r->link_multicast = rx.link_multicast;
    r->dst_tentative = dst_tentative;
    stack_.timers().arm(r->timer, stack_.now() + stack_.config().reasm_timeout_ms * kMilli);
  }
  // RFC 8200 4.5 / RFC 5722: any overlap, a disagreeing end or too many pieces end the datagram.
  const size_t end = size_t(f.offset) + len;
  if (r->count + 1 > size_t(std::max<int64_t>(stack_.config().reasm_max_frags, 1))) {
    ++drop_frag_too_many_;
    reasm_drop(*r);
    return;
  }
  if ((!f.more && r->total_known && r->total != end) || (r->total_known && end > r->total)) {
    ++drop_frag_bad_length_;
    reasm_drop(*r);
    return;
  }
  PacketBuf** link = &r->frags;
  for (PacketBuf* b = r->frags; b; b = b->next) {
    const size_t bo = size_t(b->user);
    const size_t be = bo + b->size();
    if (f.offset < be && bo < end) {
      ++drop_frag_overlap_;
      reasm_drop(*r);
      return;
    }
    if (!f.more && be > end) {
      ++drop_frag_bad_length_;
      reasm_drop(*r);
      return;
    }
    if (bo < f.offset) link = &b->next;
  }
  if (reasm_bytes_ + PacketBuf::kCapacity > reasm_limit_) {
    ++drop_frag_memory_;
    if (r->count == 0) reasm_drop(*r);
    return;
  }
  if (f.offset == 0) {
    r->first = p.get();
    r->unfrag_len = off;
    r->nh_field = nh_field;
    r->next_header = f.next_header;
    r->ext_count = count;
  }
  if (!f.more) {
    r->total = end;
    r->total_known = true;
  }
  p->pull(payload_off);
  p->user = f.offset;
  PacketBuf* b = p.release();
  b->next = *link;
  *link = b;
  ++r->count;
  r->received += len;
  reasm_bytes_ += PacketBuf::kCapacity;
  if (!r->total_known || r->received != r->total) return;

  // Complete: the first fragment's buffer becomes the head. Its unfragmentable part moves
  // forward over the fragment header, and the other fragments follow through `chain`.
  PacketBuf* head = r->frags;  // offset 0, since the pieces cover [0, total) without overlap
  const size_t unfrag = r->unfrag_len;
  if (unfrag - kIpv6HeaderLen + r->total > 65535) {
    ++drop_frag_bad_length_;
    reasm_drop(*r);
    return;
  }
  uint8_t* old_hdr = head->data() - kIpv6FragHeaderLen - unfrag;
  std::memmove(old_hdr + kIpv6FragHeaderLen, old_hdr, unfrag);
  uint8_t* hdr = head->prepend(unfrag);
  hdr[r->nh_field] = r->next_header;
  store16(hdr + 4, uint16_t(unfrag - kIpv6HeaderLen + r->total));
  for (PacketBuf* c = head; c; c = c->next) {
    c->chain = c->next;
    c->user = 0;
  }
  for (PacketBuf* c = head; c; c = c->chain) c->next = nullptr;
  reasm_bytes_ -= r->count * PacketBuf::kCapacity;
  r->frags = nullptr;
  r->first = nullptr;
  r->count = 0;
  const bool tentative = r->dst_tentative;
  const int ext_count = r->ext_count;
  const size_t field = r->nh_field;
  const uint8_t nh = r->next_header;
  reasm_drop(*r);  // the (now empty) context and its timer
  ++reasm_ok_;
  PacketPtr whole(head);
  rx.reassembled = true;
  walk(std::move(whole), rx, unfrag, nh, field, ext_count, tentative);
}

// ---------------------------------------------------------------------------------------
// Send

bool Ipv6::pick_source(Ipv6Tx& tx) const {
  if (!tx.src.is_unspecified() || tx.allow_unspecified_src) return true;
  auto s = stack_.source_for(IpAddr(tx.dst));
  if (!s || !s->is_v6()) return false;
  tx.src = s->v6;
  return true;
}

int Ipv6::output(PacketPtr l4, const Ipv6Tx& txin) {
  Ipv6Tx tx = txin;
  if (tx.dst.is_unspecified() || tx.dst.is_loopback()) {
    ++tx_no_route_;
    return -ENETUNREACH;
  }
  if (!pick_source(tx)) return -EADDRNOTAVAIL;
  const bool multicast = tx.dst.is_multicast();
  const bool to_self = !multicast && stack_.is_local_v6(tx.dst);
  Ipv6Addr next_hop = tx.dst;
  if (!multicast && !to_self) {
    auto nh = stack_.routes().lookup(IpAddr(tx.dst));
    if (!nh || !nh->addr.is_v6()) {
      ++tx_no_route_;
      return -ENETUNREACH;
    }
    next_hop = nh->addr.v6;
  }
  const size_t l4_len = l4->chain_size();
  const size_t ext = tx.router_alert ? 8 : 0;
  if (l4_len + ext > 65535) return -EMSGSIZE;
  uint8_t* h = l4->prepend(kIpv6HeaderLen + ext);
  if (!h) {
    ++tx_no_buffer_;
    return -ENOBUFS;
  }
  Ipv6Repr r;
  r.src = tx.src;
  r.dst = tx.dst;
  r.next_header = ext ? kNextHopByHop : tx.next_header;
  r.hop_limit = tx.hop_limit;
  r.traffic_class = tx.traffic_class;
  r.flow_label = tx.flow_label;
  r.payload_len = uint16_t(l4_len + ext);
  r.emit(h);
  if (ext) {
    // RFC 2711: a hop-by-hop header with Router Alert (value 0: MLD), padded with PadN.
    uint8_t* x = h + kIpv6HeaderLen;
    x[0] = tx.next_header;
    x[1] = 0;
    x[2] = kOptRouterAlert;
    x[3] = 2;
    store16(x + 4, kRouterAlertMld);
    x[6] = kOptPadN;
    x[7] = 0;
  }
  if (kIpv6HeaderLen + ext + l4_len > stack_.mtu()) {
    return fragment(std::move(l4), kIpv6HeaderLen + ext, tx, next_hop, to_self);
  }
  return transmit(std::move(l4), tx, next_hop, to_self);
}

int Ipv6::transmit(PacketPtr ip, const Ipv6Tx& tx, const Ipv6Addr& next_hop, bool to_self) {
  ++tx_packets_;
  const uint32_t offload = ip->flags & PacketBuf::kTxChecksumMask;  // set by the upper layer
  ip->flags = offload;
  if (to_self) {
    uint8_t* e = ip->prepend(kEthHeaderLen);
    if (!e) {
      ++tx_no_buffer_;
      return -ENOBUFS;
    }
    EthRepr::emit(e, stack_.mac(), stack_.mac(), kEtherTypeIpv6);
    if (offload) fill_offloaded_checksums(*ip, offload);  // no NIC on this path to do it
    ip->flags = 0;
    stack_.loop_back(std::move(ip));
    return 0;
  }
  if (tx.dst.is_multicast()) {
    const MacAddr mac = tx.dst.multicast_mac();
    if (tx.multicast_loop && (tx.dst == kAllNodes || stack_.mld().is_member(tx.dst))) {
      PacketPtr c = stack_.pool().clone(*ip);
      uint8_t* e = c ? c->prepend(kEthHeaderLen) : nullptr;
      if (e) {
        EthRepr::emit(e, mac, stack_.mac(), kEtherTypeIpv6);
        if (offload) fill_offloaded_checksums(*c, offload);
        c->flags = 0;
        stack_.loop_back(std::move(c));
      } else {
        ++tx_no_buffer_;
      }
    }
    stack_.send_eth(std::move(ip), mac, kEtherTypeIpv6);
    return 0;
  }
  stack_.ndp().send_ipv6(std::move(ip), next_hop);
  return 0;
}

int Ipv6::fragment(PacketPtr ip, size_t unfrag_len, const Ipv6Tx& tx, const Ipv6Addr& next_hop, bool to_self) {
  // RFC 8200 4.5: the unfragmentable part (IPv6 header and hop-by-hop) leads every fragment;
  // each non-last fragment carries a multiple of 8 bytes.
  const size_t frame_max = std::min<size_t>(stack_.mtu(), PacketBuf::kCapacity - PacketBuf::kDefaultHeadroom);
  if (frame_max < unfrag_len + kIpv6FragHeaderLen + 8) return -EMSGSIZE;
  const size_t piece = (frame_max - unfrag_len - kIpv6FragHeaderLen) & ~size_t(7);
  const size_t payload = ip->chain_size() - unfrag_len;
  const uint8_t* h = ip->data();
  const size_t nh_field = unfrag_len > kIpv6HeaderLen ? kIpv6HeaderLen : 6;
  Ipv6FragRepr f;
  f.next_header = h[nh_field];
  f.ident = uint32_t(stack_.random().next());
  for (size_t off = 0; off < payload; off += piece) {
    const size_t n = std::min(piece, payload - off);
    PacketPtr frag = stack_.alloc_tx();
    if (!frag) {
      ++tx_no_buffer_;
      return -ENOBUFS;
    }
    uint8_t* d = frag->append(unfrag_len + kIpv6FragHeaderLen + n);
    std::memcpy(d, h, unfrag_len);
    d[nh_field] = kNextFragment;
    store16(d + 4, uint16_t(unfrag_len - kIpv6HeaderLen + kIpv6FragHeaderLen + n));
    f.offset = uint16_t(off);
    f.more = off + n < payload;
    f.emit(d + unfrag_len);
    packet_copy_out(*ip, unfrag_len + off, n, d + unfrag_len + kIpv6FragHeaderLen);
    ++tx_fragments_;
    int rc = transmit(std::move(frag), tx, next_hop, to_self);
    if (rc < 0) return rc;
  }
  return 0;
}

}  // namespace shunt
