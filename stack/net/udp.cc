#include "stack/net/udp.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>

#include "stack/core/iovec.h"
#include "stack/net/checksum.h"
#include "stack/net/icmp.h"
#include "stack/net/icmp6.h"
#include "stack/net/igmp.h"
#include "stack/net/ipv4.h"
#include "stack/net/ipv6.h"
#include "stack/net/mld.h"
#include "stack/net/stack.h"

namespace shunt {

namespace {

// Linux's default ephemeral range (net.ipv4.ip_local_port_range).
constexpr uint32_t kEphemeralLow = 32768;
constexpr uint32_t kEphemeralCount = 61000 - kEphemeralLow;

// What a queued datagram remembers about its IP header, written into the buffer's headroom
// just before the UDP header (the IP header that was there is no longer needed):
//   IPv4: src(4) dst(4) ttl tos flags family(=4)      12 bytes
//   IPv6: src(16) dst(16) hop tclass flags family(=6) 36 bytes
constexpr size_t kMetaV4 = 12;
constexpr size_t kMetaV6 = 36;

uint64_t mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

// The pseudo-header (RFC 768, RFC 8200 8.1) plus the datagram.
uint32_t udp_sum(const IpAddr& src, const IpAddr& dst, uint16_t length, const PacketBuf& p) {
  uint32_t sum;
  if (src.is_v4()) {
    sum = (src.v4.v >> 16) + (src.v4.v & 0xffff) + (dst.v4.v >> 16) + (dst.v4.v & 0xffff) + kProtoUdp + length;
  } else {
    sum = pseudo_header_sum(src, dst, kProtoUdp, length);
  }
  if (p.chain) return checksum_chain(sum, p);
  return checksum_add(sum, p.data(), p.size());
}

// The memory a queued datagram holds: its buffers.
size_t charge_of(const PacketBuf& p) {
  size_t n = 0;
  for (const PacketBuf* b = &p; b; b = b->chain) ++n;
  return n * PacketBuf::kCapacity;
}


}  // namespace

// Which local addresses a binding covers, per family: none, all, or one.
struct Udp::Cover {
  enum Kind : uint8_t { kNone, kAll, kOne };
  Kind v4 = kNone;
  Ipv4Addr a4;
  Kind v6 = kNone;
  Ipv6Addr a6;
  bool overlaps(const Cover& o) const {
    if (v4 != kNone && o.v4 != kNone && (v4 == kAll || o.v4 == kAll || a4 == o.a4)) return true;
    return v6 != kNone && o.v6 != kNone && (v6 == kAll || o.v6 == kAll || a6 == o.a6);
  }
};

Udp::Udp(Stack& stack)
    : stack_(stack),
      hash_seed_(mix64(uint64_t(stack.config().seed) ^ 0x75647072657573ULL)),
      by_port_(65536, nullptr),
      rx_datagrams_(stack.counters().add("udp.rx_datagrams")),
      tx_datagrams_(stack.counters().add("udp.tx_datagrams")),
      drop_truncated_(stack.counters().add("udp.drop.truncated")),
      drop_bad_length_(stack.counters().add("udp.drop.bad_length")),
      drop_bad_checksum_(stack.counters().add("udp.drop.bad_checksum")),
      drop_zero_checksum_v6_(stack.counters().add("udp.drop.zero_checksum_v6")),
      drop_no_port_(stack.counters().add("udp.drop.no_port")),
      drop_rcvbuf_(stack.counters().add("udp.drop.rcvbuf")),
      drop_no_buffer_(stack.counters().add("udp.drop.no_buffer")),
      drop_no_headroom_(stack.counters().add("udp.drop.no_headroom")),
      icmp_errors_(stack.counters().add("udp.icmp_errors")) {}

Udp::~Udp() {
  // Queued buffers go back to the pool; group memberships die with the stack.
  for (auto& s : sockets_) s->rxq.clear();
}

int Udp::default_ttl() const { return int(stack_.config().ttl); }

// --- Receive.

void Udp::on_rx(PacketPtr p, const IpRx& rx) {
  if (p->size() < kUdpHeaderLen) {
    ++drop_truncated_;
    return;
  }
  const size_t avail = p->chain ? p->chain_size() : p->size();
  UdpError err = UdpError::kTruncated;
  const auto h = UdpRepr::parse(p->data(), avail, &err);
  if (!h) {
    ++(err == UdpError::kTruncated ? drop_truncated_ : drop_bad_length_);
    return;
  }
  // RFC 768: the length field covers the datagram; anything after it is padding.
  if (h->length < avail) trim_chain(*p, h->length);
  if (h->checksum == 0) {
    // RFC 768: zero means the sender computed none (IPv4). RFC 8200 8.1: IPv6 requires it.
    if (rx.dst.is_v6()) {
      ++drop_zero_checksum_v6_;
      return;
    }
  } else if (!(p->flags & PacketBuf::kRxL4ChecksumOk) || h->length != avail) {
    // A NIC sums the whole IP payload: when the UDP length is shorter, its verdict says nothing
    // about the datagram (the padding can be chosen to balance a wrong checksum).
    if (checksum_fold(udp_sum(rx.src, rx.dst, h->length, *p)) != 0) {
      ++drop_bad_checksum_;
      return;
    }
  }

  // IP passes up only what is for our addresses, our groups, or a broadcast (RFC 1122 3.3.6).
  const bool to_many = rx.dst.is_multicast() || (rx.dst.is_v4() && !stack_.is_local_v4(rx.dst.v4));
  if (to_many) {
    deliver_all(std::move(p), rx, *h);
    return;
  }
  UdpSocket* s = lookup(rx.src, h->src_port, rx.dst, h->dst_port);
  if (!s) {
    ++drop_no_port_;
    // RFC 1122 3.2.2 / 4.1.3.1: port unreachable, never for link-layer broadcast or multicast.
    if (rx.link_broadcast || rx.link_multicast) return;
    if (rx.dst.is_v4()) {
      stack_.icmp().send_unreachable(3, *p, rx);
    } else {
      stack_.icmp6().send_error(1, 4, 0, *p, rx);  // RFC 4443 3.1 code 4
    }
    return;
  }
  deliver(*s, std::move(p), rx, h->length - kUdpHeaderLen);
}

// Multicast and broadcast go to every matching socket (Linux: IP_MULTICAST_ALL is on by
// default, so membership is a host-wide filter that the IP layer applies).
void Udp::deliver_all(PacketPtr p, const IpRx& rx, const UdpRepr& h) {
  UdpSocket* prev = nullptr;
  const size_t payload = h.length - kUdpHeaderLen;
  for (UdpSocket* s = by_port_[h.dst_port]; s; s = s->next_on_port_) {
    if (score(*s, rx.src, h.src_port, rx.dst) < 0) continue;
    if (prev) {
      PacketPtr c = stack_.pool().clone(*p);
      if (c) {
        deliver(*prev, std::move(c), rx, payload);
      } else {
        ++drop_no_buffer_;
        ++prev->drops;
      }
    }
    prev = s;
  }
  if (prev) {
    deliver(*prev, std::move(p), rx, payload);
  } else {
    ++drop_no_port_;  // no ICMP error for broadcast or multicast (RFC 1122 3.2.2)
  }
}

void Udp::deliver(UdpSocket& s, PacketPtr p, const IpRx& rx, size_t payload_len) {
  const size_t charge = p->chain ? charge_of(*p) : PacketBuf::kCapacity;
  // The queue is bounded by SO_RCVBUF, but always takes one datagram (as Linux does).
  if (!s.rxq.empty() && s.rmem + charge > size_t(s.rcvbuf)) {
    ++drop_rcvbuf_;
    ++s.drops;
    return;
  }
  const bool v4 = rx.src.is_v4();
  const size_t need = v4 ? kMetaV4 : kMetaV6;
  if (p->headroom() < need) {
    ++drop_no_headroom_;
    ++s.drops;
    return;
  }
  uint8_t* m = p->data() - need;
  if (v4) {
    store32(m, rx.src.v4.v);
    store32(m + 4, rx.dst.v4.v);
  } else {
    std::memcpy(m, rx.src.v6.b.data(), 16);
    std::memcpy(m + 16, rx.dst.v6.b.data(), 16);
  }
  m[need - 4] = rx.hop_limit;
  m[need - 3] = rx.tos;
  m[need - 2] = 0;
  m[need - 1] = v4 ? 4 : 6;
  p->user = uint64_t(payload_len) | uint64_t(charge) << 32;
  s.rxq.push(std::move(p));
  s.rmem += charge;
  ++rx_datagrams_;
  if (s.observer) s.observer->on_udp_readiness(s);
}

bool Udp::trim_chain(PacketBuf& p, size_t len) {
  size_t left = len;
  for (PacketBuf* b = &p; b; b = b->chain) {
    if (b->size() >= left) {
      b->trim(left);
      if (b->chain) {
        PacketPtr rest(b->chain);
        b->chain = nullptr;
      }
      return true;
    }
    left -= b->size();
  }
  return false;
}

UdpRxInfo Udp::rx_info(const PacketBuf& p) {
  UdpRxInfo r;
  const uint8_t* d = p.data();
  if (d[-1] == 4) {
    const uint8_t* m = d - kMetaV4;
    r.src = Ipv4Addr{load32(m)};
    r.dst = Ipv4Addr{load32(m + 4)};
    r.ttl = m[8];
    r.tos = m[9];
  } else {
    const uint8_t* m = d - kMetaV6;
    r.src = Ipv6Addr::read(m);
    r.dst = Ipv6Addr::read(m + 16);
    r.ttl = m[32];
    r.tos = m[33];
  }
  r.src_port = load16(d);
  r.dst_port = load16(d + 2);
  r.payload_len = size_t(p.user & 0xffffffffu);
  return r;
}

size_t Udp::copy_payload(const PacketBuf& p, const iovec* iov, size_t iovcnt) {
  if (!p.chain && iovcnt == 1) {  // the common case: one buffer into one buffer
    const size_t n = std::min(p.size() - kUdpHeaderLen, iov[0].iov_len);
    if (n) std::memcpy(iov[0].iov_base, p.data() + kUdpHeaderLen, n);
    return n;
  }
  IovWriter out(iov, iovcnt);
  size_t copied = 0;
  size_t off = kUdpHeaderLen;
  for (const PacketBuf* b = &p; b; b = b->chain, off = 0) {
    const size_t n = b->size() - off;
    const size_t k = out.write(b->data() + off, n);
    copied += k;
    if (k < n) break;  // the scatter list is full
  }
  return copied;
}

void Udp::pop_rx(UdpSocket& s) {
  PacketBuf* f = s.rxq.front();
  if (!f) return;
  s.rmem -= size_t(f->user >> 32);
  s.rxq.pop();
}

// --- Demultiplexing.

// Linux's compute_score: a socket of the packet's own family beats a dual-stack one, a
// specific local address beats the wildcard, a connected socket beats both.
int Udp::score(const UdpSocket& s, const IpAddr& src, uint16_t sport, const IpAddr& dst) {
  int sc;
  const IpAddr& l = s.local_addr;
  if (dst.is_v4()) {
    if (l.is_v4()) {
      sc = s.family == Family::kV4 ? 2 : 1;
      if (!l.v4.is_unspecified()) {
        if (l.v4 != dst.v4) return -1;
        sc += 4;
      }
    } else {
      if (s.v6only || !l.v6.is_unspecified()) return -1;
      sc = 1;
    }
  } else {
    if (l.is_v4()) return -1;
    sc = 2;
    if (!l.v6.is_unspecified()) {
      if (l.v6 != dst.v6) return -1;
      sc += 4;
    }
  }
  if (s.connected) {
    if (s.remote_port != sport || !(s.remote_addr == src)) return -1;
    sc += 8;
  }
  return sc;
}

uint32_t Udp::flow_hash(const IpAddr& src, uint16_t sport, const IpAddr& dst, uint16_t dport) const {
  uint64_t h = hash_seed_ ^ (uint64_t(sport) << 16 | dport);
  if (src.is_v4()) {
    h = mix64(h ^ (uint64_t(src.v4.v) << 32 | dst.v4.v));
  } else {
    uint64_t w[4];
    std::memcpy(w, src.v6.b.data(), 16);
    std::memcpy(w + 2, dst.v6.b.data(), 16);
    for (uint64_t x : w) h = mix64(h ^ x);
  }
  return uint32_t(h >> 32);
}

UdpSocket* Udp::lookup(const IpAddr& src, uint16_t sport, const IpAddr& dst, uint16_t dport) const {
  UdpSocket* best = nullptr;
  int best_score = -1;
  for (UdpSocket* s = by_port_[dport]; s; s = s->next_on_port_) {
    const int sc = score(*s, src, sport, dst);
    if (sc > best_score) {
      best = s;
      best_score = sc;
    }
  }
  if (!best || !best->reuse_port || best->connected) return best;
  // SO_REUSEPORT: a seeded hash of the 4-tuple picks one of the equally good sockets of the
  // group, so one flow always lands on the same socket.
  auto same_group = [&](const UdpSocket* s) {
    return s->reuse_port && !s->connected && s->family == best->family &&
           s->local_addr == best->local_addr && score(*s, src, sport, dst) == best_score;
  };
  uint32_t n = 0;
  for (UdpSocket* s = by_port_[dport]; s; s = s->next_on_port_) n += same_group(s);
  if (n < 2) return best;
  uint32_t k = flow_hash(src, sport, dst, dport) % n;
  for (UdpSocket* s = by_port_[dport]; s; s = s->next_on_port_) {
    if (same_group(s) && k-- == 0) return s;
  }
  return best;
}

// --- Sockets.

UdpSocket* Udp::open(Family family) {
  auto s = std::make_unique<UdpSocket>();
  s->family = family;
  s->local_addr = family == Family::kV4 ? IpAddr(Ipv4Addr{}) : IpAddr(Ipv6Addr{});
  // Linux doubles what is set; the defaults are reported as they are.
  s->rcvbuf = int(std::clamp<int64_t>(stack_.config().udp_rcvbuf, kUdpMinRcvbuf, 2 * int64_t(kUdpBufMax)));
  s->sndbuf = int(std::clamp<int64_t>(stack_.config().udp_sndbuf, kUdpMinSndbuf, 2 * int64_t(kUdpBufMax)));
  UdpSocket* raw = s.get();
  sockets_.push_back(std::move(s));
  return raw;
}

void Udp::close(UdpSocket* s) {
  if (!s) return;
  for (const auto& m : s->memberships) {
    if (m.group.is_v4()) {
      stack_.igmp().leave(m.group.v4);
    } else {
      stack_.mld().leave(m.group.v6);
    }
  }
  s->memberships.clear();
  unhash(*s);
  s->rxq.clear();
  s->rmem = 0;
  for (auto it = sockets_.begin(); it != sockets_.end(); ++it) {
    if (it->get() == s) {
      sockets_.erase(it);
      break;
    }
  }
}

void Udp::hash(UdpSocket& s) {
  if (s.hashed_) return;
  // Appended, so delivery order follows bind order (deterministic).
  UdpSocket** link = &by_port_[s.local_port];
  while (*link) link = &(*link)->next_on_port_;
  *link = &s;
  s.next_on_port_ = nullptr;
  s.hashed_ = true;
}

void Udp::unhash(UdpSocket& s) {
  if (!s.hashed_) return;
  for (UdpSocket** link = &by_port_[s.local_port]; *link; link = &(*link)->next_on_port_) {
    if (*link == &s) {
      *link = s.next_on_port_;
      break;
    }
  }
  s.next_on_port_ = nullptr;
  s.hashed_ = false;
}

Udp::Cover Udp::cover_of(const UdpSocket& s, const IpAddr& addr) {
  Cover c;
  if (addr.is_v4()) {
    c.v4 = addr.v4.is_unspecified() ? Cover::kAll : Cover::kOne;
    c.a4 = addr.v4;
  } else if (addr.v6.is_unspecified()) {
    c.v6 = Cover::kAll;
    if (!s.v6only) c.v4 = Cover::kAll;  // a dual-stack wildcard covers IPv4 too
  } else {
    c.v6 = Cover::kOne;
    c.a6 = addr.v6;
  }
  return c;
}

// Linux udp_lib_lport_inuse: two bindings of a port conflict when their addresses overlap,
// unless both sockets set SO_REUSEADDR or both set SO_REUSEPORT.
bool Udp::conflicts(const UdpSocket& s, const IpAddr& addr, uint16_t port) const {
  const Cover mine = cover_of(s, addr);
  for (const UdpSocket* o = by_port_[port]; o; o = o->next_on_port_) {
    if (o == &s) continue;
    if (s.reuse_addr && o->reuse_addr) continue;
    if (s.reuse_port && o->reuse_port) continue;
    if (mine.overlaps(cover_of(*o, o->local_addr))) return true;
  }
  return false;
}

// A random start in Linux's range, then the next free port; free means no socket at all
// uses it, so an ephemeral port is never shared by accident.
int Udp::pick_ephemeral(const UdpSocket&, const IpAddr&) {
  const uint32_t start = uint32_t(stack_.random().below(kEphemeralCount));
  for (uint32_t i = 0; i < kEphemeralCount; ++i) {
    const uint32_t port = kEphemeralLow + (start + i) % kEphemeralCount;
    if (!by_port_[port]) return int(port);
  }
  return -1;
}

bool Udp::is_bindable(const IpAddr& a) const {
  if (a.is_v4()) return stack_.is_local_v4(a.v4) || a.v4.is_multicast() || stack_.is_broadcast_v4(a.v4);
  return stack_.is_local_v6(a.v6) || a.v6.is_multicast();
}

int Udp::bind(UdpSocket& s, const IpAddr& addr, uint16_t port) {
  if (s.is_bound()) return -EINVAL;
  if (!addr.is_unspecified() && !is_bindable(addr)) return -EADDRNOTAVAIL;
  const bool port_given = port != 0;
  if (!port_given) {
    const int p = pick_ephemeral(s, addr);
    if (p < 0) return -EADDRINUSE;
    port = uint16_t(p);
  } else if (conflicts(s, addr, port)) {
    return -EADDRINUSE;
  }
  s.local_addr = addr;
  s.local_port = port;
  // Linux SOCK_BINDADDR_LOCK: set for any address but the socket's own wildcard (so
  // ::ffff:0.0.0.0 on an IPv6 socket counts as specific).
  s.bind_addr_locked = !addr.is_unspecified() || (s.family == Family::kV6 && addr.is_v4());
  s.bind_port_locked = port_given;
  hash(s);
  return 0;
}

int Udp::connect(UdpSocket& s, const IpAddr& addr, uint16_t port) {
  if (addr.is_unspecified()) return -ENETUNREACH;  // no loopback interface here
  if (addr.is_v4() && stack_.is_broadcast_v4(addr.v4) && !s.broadcast) return -EACCES;
  // A binding of the other family cannot reach this destination.
  if (s.bind_addr_locked && s.local_addr.family != addr.family) return -ENETUNREACH;
  if (!stack_.routes().lookup(addr)) return -ENETUNREACH;
  std::optional<IpAddr> src;
  if (addr.is_v4() && addr.v4.is_multicast() && !s.mcast_if.is_unspecified()) {
    src = IpAddr(s.mcast_if);
  } else {
    src = stack_.source_for(addr);
  }
  if (!src) return -ENETUNREACH;
  if (!s.is_bound()) {
    // Linux inet_autobind: an ephemeral port on the wildcard address.
    const int p = pick_ephemeral(s, s.local_addr);
    if (p < 0) return -EAGAIN;
    s.local_port = uint16_t(p);
    s.bind_port_locked = false;
    hash(s);
  }
  // Linux ip4_datagram_connect: an unbound local address becomes the route's source.
  if (!s.bind_addr_locked) s.local_addr = *src;
  s.connected = true;
  s.remote_addr = addr;
  s.remote_port = port;
  return 0;
}

// Linux __udp_disconnect: forget the peer, and whatever connect() chose for us.
void Udp::disconnect(UdpSocket& s) {
  s.connected = false;
  s.remote_addr = s.family == Family::kV4 ? IpAddr(Ipv4Addr{}) : IpAddr(Ipv6Addr{});
  s.remote_port = 0;
  if (!s.bind_addr_locked) s.local_addr = s.family == Family::kV4 ? IpAddr(Ipv4Addr{}) : IpAddr(Ipv6Addr{});
  if (!s.bind_port_locked && s.is_bound()) {
    unhash(s);
    s.local_port = 0;
  }
}

size_t Udp::buffers_for(size_t len) {
  const size_t first = PacketBuf::kCapacity - PacketBuf::kDefaultHeadroom - kUdpHeaderLen;
  if (len <= first) return 1;
  return 1 + (len - first + PacketBuf::kCapacity - 1) / PacketBuf::kCapacity;
}

ssize_t Udp::send(UdpSocket& s, const iovec* iov, size_t iovcnt, size_t len, const Dest* dst,
                  const SendOptions* opt) {
  if (len > 0xffff) return -EMSGSIZE;
  IpAddr daddr;
  uint16_t dport;
  if (dst) {
    if (dst->port == 0) return -EINVAL;  // Linux udp_sendmsg
    daddr = dst->addr;
    dport = dst->port;
  } else {
    if (!s.connected) return -EDESTADDRREQ;
    daddr = s.remote_addr;
    dport = s.remote_port;
  }
  if (!s.is_bound()) {
    const int p = pick_ephemeral(s, s.local_addr);
    if (p < 0) return -EAGAIN;
    s.local_port = uint16_t(p);
    s.bind_port_locked = false;
    hash(s);
  }
  if (daddr.is_unspecified()) return -ENETUNREACH;
  if (s.bind_addr_locked && s.local_addr.family != daddr.family) return -ENETUNREACH;
  // No route (ENETUNREACH) and broadcast without SO_BROADCAST (EACCES) are the IP layer's
  // to find: it looks them up anyway.
  const bool v4 = daddr.is_v4();
  if (len > (v4 ? kUdpMaxPayloadV4 : kUdpMaxPayloadV6)) return -EMSGSIZE;
  // Linux sock_alloc_send_skb: a pending error first, then a shut-down sender.
  if (s.error) {
    const int e = s.error;
    s.error = 0;
    return -e;
  }
  if (s.shut_wr) return -EPIPE;

  // The source address: the caller's, a unicast binding, IP_MULTICAST_IF, or the route's.
  IpAddr src;
  if (opt && opt->src && !opt->src->is_unspecified()) {
    if (opt->src->family != daddr.family || !is_bindable(*opt->src) || opt->src->is_multicast()) return -EINVAL;
    src = *opt->src;
  } else if (s.local_addr.is_v4() ? stack_.is_local_v4(s.local_addr.v4)
                                   : (!s.local_addr.v6.is_unspecified() && !s.local_addr.v6.is_multicast())) {
    src = s.local_addr;  // a unicast binding (not a group or broadcast address)
  } else if (v4 && daddr.v4.is_multicast() && !s.mcast_if.is_unspecified()) {
    src = s.mcast_if;
  } else {
    auto chosen = stack_.source_for(daddr);
    if (!chosen) return -ENETUNREACH;
    src = *chosen;
  }

  // Build the datagram: the header and as much payload as fits in the first buffer, the rest
  // in a chain of whole buffers for the IP layer to fragment.
  BufferPool& pool = stack_.pool();
  if (pool.available() < buffers_for(len)) return -ENOBUFS;
  PacketPtr head = stack_.alloc_tx();
  if (!head) return -ENOBUFS;
  uint8_t* h = head->append(kUdpHeaderLen);
  IovReader reader(iov, iovcnt);
  size_t left = len;
  size_t n = std::min(left, head->tailroom());
  reader.copy(head->append(n), n);
  left -= n;
  PacketBuf* tail = head.get();
  while (left) {
    PacketPtr c = pool.alloc(0);
    if (!c) return -ENOBUFS;
    n = std::min(left, c->tailroom());
    reader.copy(c->append(n), n);
    left -= n;
    tail->chain = c.release();
    tail = tail->chain;
  }
  UdpRepr repr;
  repr.src_port = s.local_port;
  repr.dst_port = dport;
  repr.length = uint16_t(len + kUdpHeaderLen);
  repr.checksum = 0;
  repr.emit(h);
  // A NIC with checksum offload fills in the checksum of a datagram that goes out whole.
  if (stack_.device_info().tx_checksum && !head->chain &&
      repr.length + (v4 ? 20u : 40u) <= stack_.mtu()) {
    head->flags |= PacketBuf::kTxL4Checksum;
  } else {
    uint16_t c = checksum_fold(udp_sum(src, daddr, repr.length, *head));
    if (c == 0) c = 0xffff;  // RFC 768: a computed zero is sent as all ones
    store16(h + 6, c);
  }

  const bool multicast = daddr.is_multicast();
  int r;
  if (v4) {
    Ipv4Tx tx;
    tx.src = src.v4;
    tx.dst = daddr.v4;
    tx.proto = kProtoUdp;
    int ttl = opt && opt->ttl >= 0 ? opt->ttl : multicast ? s.mcast_ttl : s.ttl >= 0 ? s.ttl : default_ttl();
    tx.ttl = uint8_t(ttl);
    tx.tos = uint8_t(opt && opt->tos >= 0 ? opt->tos : s.tos);
    tx.multicast_loop = s.mcast_loop;
    tx.allow_broadcast = s.broadcast;
    r = stack_.ipv4().output(std::move(head), tx);
  } else {
    Ipv6Tx tx;
    tx.src = src.v6;
    tx.dst = daddr.v6;
    tx.next_header = kProtoUdp;
    int hops = opt && opt->ttl >= 0 ? opt->ttl
               : multicast          ? s.mcast_hops
               : s.hop_limit >= 0   ? s.hop_limit
                                    : default_ttl();
    tx.hop_limit = uint8_t(hops);
    tx.traffic_class = uint8_t(opt && opt->tos >= 0 ? opt->tos : s.tclass);
    tx.multicast_loop = s.mcast_loop6;
    r = stack_.ipv6().output(std::move(head), tx);
  }
  if (r < 0) return r;
  ++tx_datagrams_;
  return ssize_t(len);
}

// --- Multicast membership (RFC 3376 / RFC 3810 through the stack-wide Igmp and Mld).

int Udp::join(UdpSocket& s, const IpAddr& group, int ifindex) {
  if (!group.is_multicast()) return -EINVAL;
  for (const auto& m : s.memberships) {
    if (m.group == group) return -EADDRINUSE;  // one interface: the index cannot differ
  }
  if (s.memberships.size() >= kUdpMaxMemberships) return -ENOBUFS;
  s.memberships.push_back(UdpMembership{group, ifindex});
  if (group.is_v4()) {
    stack_.igmp().join(group.v4);
  } else {
    stack_.mld().join(group.v6);
  }
  return 0;
}

int Udp::leave(UdpSocket& s, const IpAddr& group, int) {
  for (auto it = s.memberships.begin(); it != s.memberships.end(); ++it) {
    if (it->group == group) {
      s.memberships.erase(it);
      if (group.is_v4()) {
        stack_.igmp().leave(group.v4);
      } else {
        stack_.mld().leave(group.v6);
      }
      return 0;
    }
  }
  return -EADDRNOTAVAIL;
}

// --- ICMP errors.

void Udp::on_icmp_error(int err, const uint8_t* quoted, size_t len, const IpRx& quoted_ip) {
  if (len < 4) return;
  const uint16_t our_port = load16(quoted);
  const uint16_t peer_port = load16(quoted + 2);
  // The socket that sent it is the one a reply from the peer would reach.
  UdpSocket* s = lookup(quoted_ip.dst, peer_port, quoted_ip.src, our_port);
  if (!s) return;
  ++icmp_errors_;
  // RFC 1122 4.1.3.3 and Linux: only connected sockets hear of errors; a too-big message
  // updates the path MTU (the IP layer's business), it is not an error to report.
  if (!s->connected || err == EMSGSIZE || err <= 0) return;
  s->error = err;
  if (s->observer) s->observer->on_udp_readiness(*s);
}

}  // namespace shunt
