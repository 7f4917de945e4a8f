// The Tcp module: counters, tables, demultiplexing, listeners and SYN cookies, numbers (ISN,
// timestamps offsets), and the socket-facing calls.
#include "stack/net/tcp/tcp.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "stack/core/iovec.h"
#include "stack/net/checksum.h"
#include "stack/net/ipv4.h"
#include "stack/net/ipv6.h"
#include "stack/net/stack.h"
#include "stack/net/tcp/tcb.h"

namespace shunt {

namespace {

// Linux's default ephemeral range (net.ipv4.ip_local_port_range).
constexpr uint32_t kEphemeralLow = 32768;
constexpr uint32_t kEphemeralCount = 61000 - kEphemeralLow;
constexpr int kSomaxconn = 4096;
// SYN cookies (RFC 4987 3.6, Linux's layout): the top 8 bits of the cookie are a 64-second
// counter, the low 24 bits a keyed hash plus the MSS index; a cookie is good for 2 counts.
constexpr int kCookieBits = 24;
constexpr uint32_t kCookieMask = (1u << kCookieBits) - 1;
constexpr Nanos kCookiePeriod = 64 * kSecond;
constexpr uint32_t kCookieMaxAge = 2;
// The MSS values a cookie can encode (Linux msstab): the index is in the cookie.
constexpr uint16_t kCookieMss[] = {536, 1300, 1440, 1460};
// Timestamp bits a cookie SYN-ACK uses to carry window scale (4 bits, 0xf = none) and SACK.
constexpr uint32_t kTsOptBits = 6;
constexpr uint32_t kTsOptMask = (1u << kTsOptBits) - 1;
constexpr uint32_t kTsWscaleNone = 0xf;
constexpr uint32_t kTsSackBit = 1u << 4;

uint64_t mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

uint64_t hash_tuple(uint64_t key, const IpAddr& a, uint16_t ap, const IpAddr& b, uint16_t bp) {
  uint64_t h = mix64(key ^ (uint64_t(ap) << 16 | bp) ^ 0x9e3779b97f4a7c15ULL);
  if (a.is_v4()) {
    h = mix64(h ^ (uint64_t(a.v4.v) << 32 | b.v4.v));
  } else {
    uint64_t w[4];
    std::memcpy(w, a.v6.b.data(), 16);
    std::memcpy(w + 2, b.v6.b.data(), 16);
    for (uint64_t x : w) h = mix64(h ^ x);
  }
  return h;
}

// Which local addresses a binding covers (as in udp.cc).
struct Cover {
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

Cover cover_of(bool v6only, const IpAddr& addr) {
  Cover c;
  if (addr.is_v4()) {
    c.v4 = addr.v4.is_unspecified() ? Cover::kAll : Cover::kOne;
    c.a4 = addr.v4;
  } else if (addr.v6.is_unspecified()) {
    c.v6 = Cover::kAll;
    if (!v6only) c.v4 = Cover::kAll;
  } else {
    c.v6 = Cover::kOne;
    c.a6 = addr.v6;
  }
  return c;
}

IpAddr any_of(Family f) { return f == Family::kV4 ? IpAddr(Ipv4Addr{}) : IpAddr(Ipv6Addr{}); }

int clamp_buf(int64_t v, int min) { return int(std::clamp<int64_t>(v, min, 2 * int64_t(kTcpBufMax))); }

uint32_t tcp_sum(const IpAddr& src, const IpAddr& dst, const PacketBuf& p) {
  const size_t len = p.chain ? p.chain_size() : p.size();
  uint32_t sum;
  if (src.is_v4()) {
    sum = (src.v4.v >> 16) + (src.v4.v & 0xffff) + (dst.v4.v >> 16) + (dst.v4.v & 0xffff) + kProtoTcp + uint32_t(len);
  } else {
    sum = pseudo_header_sum(src, dst, kProtoTcp, uint32_t(len));
  }
  if (p.chain) return checksum_chain(sum, p);
  return checksum_add(sum, p.data(), p.size());
}

}  // namespace

const char* tcp_state_name(TcpState s) {
  static const char* const kNames[] = {"CLOSED",      "LISTEN",     "SYN_SENT",   "SYN_RECEIVED",
                                       "ESTABLISHED", "FIN_WAIT_1", "FIN_WAIT_2", "CLOSE_WAIT",
                                       "CLOSING",     "LAST_ACK",   "TIME_WAIT"};
  return kNames[size_t(s)];
}

TcpCounters::TcpCounters(Counters& c)
    : rx_segments(c.add("tcp.rx_segments")),
      tx_segments(c.add("tcp.tx_segments")),
      retransmits(c.add("tcp.retransmits")),
      fast_retransmits(c.add("tcp.fast_retransmits")),
      rto_timeouts(c.add("tcp.rto_timeouts")),
      active_opens(c.add("tcp.active_opens")),
      passive_opens(c.add("tcp.passive_opens")),
      established(c.add("tcp.established")),
      resets_sent(c.add("tcp.resets_sent")),
      resets_received(c.add("tcp.resets_received")),
      challenge_acks(c.add("tcp.challenge_acks")),
      syncookies_sent(c.add("tcp.syncookies_sent")),
      syncookies_ok(c.add("tcp.syncookies_ok")),
      dsacks_received(c.add("tcp.dsacks_received")),
      sack_reneging(c.add("tcp.sack_reneging")),
      lost_retransmits(c.add("tcp.lost_retransmits")),
      zero_window_probes(c.add("tcp.zero_window_probes")),
      keepalive_probes(c.add("tcp.keepalive_probes")),
      delayed_acks(c.add("tcp.delayed_acks")),
      timewait_reused(c.add("tcp.timewait_reused")),
      bad_options(c.add("tcp.bad_options")),
      timeouts(c.add("tcp.timeouts")),
      collapsed(c.add("tcp.collapsed")),
      drop_truncated(c.add("tcp.drop.truncated")),
      drop_bad_data_offset(c.add("tcp.drop.bad_data_offset")),
      drop_bad_checksum(c.add("tcp.drop.bad_checksum")),
      drop_not_unicast(c.add("tcp.drop.not_unicast")),
      drop_bad_flags(c.add("tcp.drop.bad_flags")),
      drop_no_socket(c.add("tcp.drop.no_socket")),
      drop_listen_overflow(c.add("tcp.drop.listen_overflow")),
      drop_syn_queue_full(c.add("tcp.drop.syn_queue_full")),
      drop_bad_syncookie(c.add("tcp.drop.bad_syncookie")),
      drop_listen_bad_segment(c.add("tcp.drop.listen_bad_segment")),
      drop_syn_sent_bad_ack(c.add("tcp.drop.syn_sent_bad_ack")),
      drop_paws(c.add("tcp.drop.paws")),
      drop_out_of_window(c.add("tcp.drop.out_of_window")),
      drop_rst_out_of_window(c.add("tcp.drop.rst_out_of_window")),
      drop_rst_challenged(c.add("tcp.drop.rst_challenged")),
      drop_syn_challenged(c.add("tcp.drop.syn_challenged")),
      drop_no_ack(c.add("tcp.drop.no_ack")),
      drop_old_ack(c.add("tcp.drop.old_ack")),
      drop_future_ack(c.add("tcp.drop.future_ack")),
      drop_challenge_ack_limit(c.add("tcp.drop.challenge_ack_limit")),
      drop_ooo_limit(c.add("tcp.drop.ooo_limit")),
      drop_ooo_pool_low(c.add("tcp.drop.ooo_pool_low")),
      drop_rcvbuf(c.add("tcp.drop.rcvbuf")),
      drop_memory(c.add("tcp.drop.memory")),
      drop_no_buffer(c.add("tcp.drop.no_buffer")),
      drop_after_close(c.add("tcp.drop.after_close")),
      drop_timewait(c.add("tcp.drop.timewait")),
      drop_closed(c.add("tcp.drop.closed")),
      drop_no_memory_syn(c.add("tcp.drop.no_memory_syn")) {}

// ---------------------------------------------------------------------------------------
// Impl: tables and numbers.

Tcp::Impl::Impl(Tcp& t, Stack& s)
    : tcp(t), stack(s), c(t.counters()), cfg(s.config()), by_port(65536, nullptr), conns(1024, nullptr) {
  Random& r = s.random();
  isn_key[0] = r.next();
  isn_key[1] = r.next();
  cookie_key[0] = r.next();
  cookie_key[1] = r.next();
  ts_key = r.next();
  port_key = r.next();
  reap_timer.set_callback([this](Nanos) { reap_now(); });
}

Tcp::Impl::~Impl() {
  reap_timer.cancel();
  reap_now();
  while (all_head) {
    TcpSocket* s = all_head;
    all_head = s->all_next;
    delete s;
  }
}

uint32_t Tcp::Impl::hash4(const IpAddr& la, uint16_t lp, const IpAddr& ra, uint16_t rp) const {
  // Cheap and seeded: the table is private, the seed keeps chains from being chosen by peers.
  uint64_t h = port_key ^ (uint64_t(lp) << 16 | rp);
  if (la.is_v4()) {
    h ^= uint64_t(la.v4.v) << 32 | ra.v4.v;
  } else {
    uint64_t w[4];
    std::memcpy(w, la.v6.b.data(), 16);
    std::memcpy(w + 2, ra.v6.b.data(), 16);
    h ^= w[0] ^ w[1] * 31 ^ w[2] * 131 ^ w[3] * 1031;
  }
  return uint32_t(mix64(h));
}

TcpSocket* Tcp::Impl::lookup_conn(const IpAddr& la, uint16_t lp, const IpAddr& ra, uint16_t rp) {
  TcpSocket* s = last_hit;
  if (s && s->local_port == lp && s->remote_port == rp && s->remote_addr == ra && s->local_addr == la) return s;
  const uint32_t h = hash4(la, lp, ra, rp);
  for (s = conns[h & (conns.size() - 1)]; s; s = s->hash_next) {
    if (s->hash == h && s->local_port == lp && s->remote_port == rp && s->remote_addr == ra && s->local_addr == la) {
      last_hit = s;
      return s;
    }
  }
  return nullptr;
}

void Tcp::Impl::hash_conn(TcpSocket& s) {
  if (s.hashed) return;
  if (conn_count + 1 > conns.size()) {
    // Grow (a setup-time cost, amortized): rehash every connection.
    std::vector<TcpSocket*> bigger(conns.size() * 2, nullptr);
    for (TcpSocket* b : conns) {
      while (b) {
        TcpSocket* n = b->hash_next;
        TcpSocket*& head = bigger[b->hash & (bigger.size() - 1)];
        b->hash_next = head;
        head = b;
        b = n;
      }
    }
    conns.swap(bigger);
  }
  s.hash = hash4(s.local_addr, s.local_port, s.remote_addr, s.remote_port);
  TcpSocket*& head = conns[s.hash & (conns.size() - 1)];
  s.hash_next = head;
  head = &s;
  s.hashed = true;
  ++conn_count;
}

void Tcp::Impl::unhash_conn(TcpSocket& s) {
  if (!s.hashed) return;
  for (TcpSocket** l = &conns[s.hash & (conns.size() - 1)]; *l; l = &(*l)->hash_next) {
    if (*l == &s) {
      *l = s.hash_next;
      break;
    }
  }
  s.hash_next = nullptr;
  s.hashed = false;
  --conn_count;
  if (last_hit == &s) last_hit = nullptr;
}

void Tcp::Impl::bind_port(TcpSocket& s) {
  if (s.bound) return;
  TcpSocket** l = &by_port[s.local_port];
  while (*l) l = &(*l)->port_next;  // appended: bind order decides ties (deterministic)
  *l = &s;
  s.port_next = nullptr;
  s.bound = true;
}

void Tcp::Impl::unbind_port(TcpSocket& s) {
  if (!s.bound) return;
  for (TcpSocket** l = &by_port[s.local_port]; *l; l = &(*l)->port_next) {
    if (*l == &s) {
      *l = s.port_next;
      break;
    }
  }
  s.port_next = nullptr;
  s.bound = false;
}

// Linux inet_csk_bind_conflict: overlapping bindings of one port conflict unless both set
// SO_REUSEADDR and the other does not listen, or both set SO_REUSEPORT.
bool Tcp::Impl::bind_conflict(const TcpSocket& s, const IpAddr& addr, uint16_t port) const {
  const Cover mine = cover_of(s.v6only, addr);
  for (const TcpSocket* o = by_port[port]; o; o = o->port_next) {
    if (o == &s) continue;
    if (!mine.overlaps(cover_of(o->v6only, o->local_addr))) continue;
    if (s.reuse_addr && o->reuse_addr && o->state != TcpState::kListen) continue;
    if (s.reuse_port && o->reuse_port) continue;
    return true;
  }
  return false;
}

int Tcp::Impl::pick_bind_port(TcpSocket& s, const IpAddr& addr) {
  const uint32_t start = uint32_t(stack.random().below(kEphemeralCount));
  for (uint32_t i = 0; i < kEphemeralCount; ++i) {
    const uint32_t port = kEphemeralLow + (start + i) % kEphemeralCount;
    if (!by_port[port] && !bind_conflict(s, addr, uint16_t(port))) return int(port);
  }
  return -1;
}

// RFC 6056 3.3.3 (Linux's double-hash variant, simplified): a keyed hash of the destination
// picks where to start, so consecutive connections to one peer walk the range; a port is
// usable when nothing has bound it explicitly and the 4-tuple is free (a TIME_WAIT holder
// with timestamps, older than a second, is recycled as Linux's tcp_tw_reuse does).
int Tcp::Impl::pick_connect_port(TcpSocket& s) {
  const uint32_t offset = uint32_t(hash_tuple(port_key, s.local_addr, 0, s.remote_addr, s.remote_port)) + port_counter;
  for (uint32_t i = 0; i < kEphemeralCount; ++i) {
    const uint32_t port = kEphemeralLow + (offset + i) % kEphemeralCount;
    bool usable = true;
    for (TcpSocket* o = by_port[port]; o && usable; o = o->port_next) {
      if (o->bind_port_locked || o->state == TcpState::kListen) usable = false;
    }
    if (!usable) continue;
    TcpSocket* old = lookup_conn(s.local_addr, uint16_t(port), s.remote_addr, s.remote_port);
    if (old) {
      if (old->state != TcpState::kTimeWait || !old->ts_ok || stack.now() - old->tw_since < kSecond) continue;
      ++c.timewait_reused;
      tcb::finish(*old);
    }
    port_counter += i + 1;
    return int(port);
  }
  return -1;
}

TcpSocket* Tcp::Impl::lookup_listener(const IpAddr& la, uint16_t lp, const IpAddr& ra, uint16_t rp) {
  TcpSocket* best = nullptr;
  int best_score = -1;
  for (TcpSocket* s = by_port[lp]; s; s = s->port_next) {
    if (s->state != TcpState::kListen) continue;
    int sc;
    const IpAddr& l = s->local_addr;
    if (la.is_v4()) {
      if (l.is_v4()) {
        sc = s->family == Family::kV4 ? 2 : 1;
        if (!l.v4.is_unspecified()) {
          if (l.v4 != la.v4) continue;
          sc += 4;
        }
      } else {
        if (s->v6only || !l.v6.is_unspecified()) continue;
        sc = 1;
      }
    } else {
      if (l.is_v4()) continue;
      sc = 2;
      if (!l.v6.is_unspecified()) {
        if (l.v6 != la.v6) continue;
        sc += 4;
      }
    }
    if (sc > best_score) {
      best = s;
      best_score = sc;
    }
  }
  if (!best || !best->reuse_port) return best;
  // SO_REUSEPORT: a keyed hash of the 4-tuple spreads connections over the group.
  auto same = [&](const TcpSocket* s) {
    return s->state == TcpState::kListen && s->reuse_port && s->family == best->family &&
           s->local_addr == best->local_addr && s->v6only == best->v6only;
  };
  uint32_t n = 0;
  for (TcpSocket* s = by_port[lp]; s; s = s->port_next) n += same(s);
  if (n < 2) return best;
  uint32_t k = uint32_t(hash_tuple(port_key, ra, rp, la, lp) >> 32) % n;
  for (TcpSocket* s = by_port[lp]; s; s = s->port_next) {
    if (same(s) && k-- == 0) return s;
  }
  return best;
}

TcpSocket* Tcp::Impl::create(Family f) {
  if (!mem_ok(sizeof(TcpSocket))) return nullptr;
  auto* s = new TcpSocket(tcp, f);
  s->all_prev = all_tail;
  if (all_tail) {
    all_tail->all_next = s;
  } else {
    all_head = s;
  }
  all_tail = s;
  ++sockets;
  mem_used += sizeof(TcpSocket);
  s->rcvbuf = clamp_buf(cfg.tcp_rcvbuf, kTcpMinRcvbuf);
  s->sndbuf = clamp_buf(cfg.tcp_sndbuf, kTcpMinSndbuf);
  return s;
}

void Tcp::Impl::destroy(TcpSocket& s) {
  if (s.dead) return;
  s.dead = true;
  s.timer.cancel();
  s.delack_timer.cancel();
  unhash_conn(s);
  unbind_port(s);
  if (s.parent) {
    // Unlink from the listener's SYN or accept queue.
    TcpListenQueue& q = *s.parent->listen_q;
    if (s.in_accept_queue) {
      if (s.q_prev) s.q_prev->q_next = s.q_next; else q.accept_head = s.q_next;
      if (s.q_next) s.q_next->q_prev = s.q_prev; else q.accept_tail = s.q_prev;
      --q.accept_count;
    } else if (s.in_syn_queue) {
      if (s.q_prev) s.q_prev->q_next = s.q_next; else q.syn_head = s.q_next;
      if (s.q_next) s.q_next->q_prev = s.q_prev;
      --q.syn_count;
    }
    s.q_next = s.q_prev = nullptr;
    s.parent = nullptr;
    s.in_accept_queue = false;
    s.in_syn_queue = false;
  }
  tcb::free_rx(s);
  mem_used -= s.ring.capacity();
  s.ring.release();
  s.observer = nullptr;
  reap.push_back(&s);
  stack.timers().arm(reap_timer, stack.now());
}

void Tcp::Impl::reap_now() {
  for (TcpSocket* s : reap) {
    if (s->all_prev) s->all_prev->all_next = s->all_next; else all_head = s->all_next;
    if (s->all_next) s->all_next->all_prev = s->all_prev; else all_tail = s->all_prev;
    --sockets;
    mem_used -= sizeof(TcpSocket);
    delete s;
  }
  reap.clear();
}

// RFC 6528 3: ISN = M + F(localip, localport, remoteip, remoteport, secretkey), M a 4 us clock.
uint32_t Tcp::Impl::isn(const IpAddr& la, uint16_t lp, const IpAddr& ra, uint16_t rp) const {
  const uint64_t f = hash_tuple(isn_key[0], la, lp, ra, rp) ^ isn_key[1];
  return uint32_t(mix64(f)) + uint32_t(stack.now() / (4 * kMicro));
}

// RFC 7323 5.4: a per-connection random offset for timestamps, from the 4-tuple so a SYN
// cookie's timestamp can be checked without state.
uint32_t Tcp::Impl::ts_off(const IpAddr& la, uint16_t lp, const IpAddr& ra, uint16_t rp) const {
  return uint32_t(hash_tuple(ts_key, la, lp, ra, rp));
}

uint32_t Tcp::Impl::cookie_hash(const IpAddr& la, uint16_t lp, const IpAddr& ra, uint16_t rp, uint32_t count,
                                int which) const {
  return uint32_t(mix64(hash_tuple(cookie_key[which], la, lp, ra, rp) ^ count));
}

// RFC 5961 7: at most kChallengeAckLimit challenge ACKs per second across the stack.
bool Tcp::Impl::challenge_ack_allowed() {
  const Nanos now = stack.now();
  if (now - challenge_window_start >= kSecond) {
    challenge_window_start = now;
    challenge_count = 0;
  }
  if (challenge_count >= kChallengeAckLimit) {
    ++c.drop_challenge_ack_limit;
    return false;
  }
  ++challenge_count;
  ++c.challenge_acks;
  return true;
}

int Tcp::Impl::ip_output(PacketPtr p, const IpAddr& src, const IpAddr& dst, int ttl, uint8_t tos) {
  const bool v4 = src.is_v4();
  // A NIC with checksum offload fills in the checksum of a packet that goes out whole (TCP
  // segments are sized to the MTU and never fragmented), as udp.cc does.
  if (stack.device_info().tx_checksum && !p->chain && p->size() + (v4 ? 20u : 40u) <= stack.mtu()) {
    p->flags |= PacketBuf::kTxL4Checksum;
  } else {
    store16(p->data() + 16, checksum_fold(tcp_sum(src, dst, *p)));
  }
  ++c.tx_segments;
  const int hops = ttl >= 0 ? ttl : int(cfg.ttl);
  if (v4) {
    Ipv4Tx tx;
    tx.src = src.v4;
    tx.dst = dst.v4;
    tx.proto = kProtoTcp;
    tx.ttl = uint8_t(hops);
    tx.tos = tos;
    tx.dont_fragment = true;  // RFC 1191: path MTU discovery
    return stack.ipv4().output(std::move(p), tx);
  }
  Ipv6Tx tx;
  tx.src = src.v6;
  tx.dst = dst.v6;
  tx.next_header = kProtoTcp;
  tx.hop_limit = uint8_t(hops);
  tx.traffic_class = tos;
  return stack.ipv6().output(std::move(p), tx);
}

void Tcp::Impl::send_raw(const IpAddr& src, const IpAddr& dst, uint16_t sport, uint16_t dport, uint32_t seq,
                         uint32_t ack, uint8_t flags, uint16_t window, const TcpTxOptions* opt, int ttl, uint8_t tos) {
  PacketPtr p = stack.alloc_tx();
  if (!p) {
    ++c.drop_no_buffer;
    return;
  }
  const size_t olen = opt ? opt->size() : 0;
  uint8_t* h = p->append(kTcpHeaderLen + olen);
  TcpRepr::emit(h, sport, dport, seq, ack, flags, window, olen);
  if (opt) opt->emit(h + kTcpHeaderLen);
  if (flags & kTcpRst) ++c.resets_sent;
  ip_output(std::move(p), src, dst, ttl, tos);
}

// RFC 9293 3.10.7.1 (and LISTEN with a bad ACK, 3.10.7.2): a reset for a segment that belongs
// to no connection. Never in answer to a RST.
void Tcp::Impl::send_rst_for(const TcpSegment& seg, const IpRx& rx) {
  if (seg.h.has(kTcpRst)) return;
  if (seg.h.has(kTcpAck)) {
    send_raw(rx.dst, rx.src, seg.h.dst_port, seg.h.src_port, seg.h.ack, 0, kTcpRst, 0, nullptr, -1, 0);
  } else {
    send_raw(rx.dst, rx.src, seg.h.dst_port, seg.h.src_port, 0, seg.h.seq + seg.len + (seg.h.has(kTcpSyn) ? 1 : 0) + (seg.h.has(kTcpFin) ? 1 : 0),
             kTcpRst | kTcpAck, 0, nullptr, -1, 0);
  }
}

// RFC 6191 2 / Linux tcp_timewait_state_process: a SYN may reopen a connection in TIME_WAIT if
// its timestamp is newer than the last one seen, or (without timestamps) its sequence number is
// beyond the end of the old connection.
bool Tcp::Impl::timewait_accepts_syn(const TcpSocket& tw, const TcpSegment& seg) const {
  if (tw.ts_ok && seg.opt.has_timestamps) return seq_gt(seg.opt.tsval, tw.ts_recent);
  if (tw.ts_ok && !seg.opt.has_timestamps) return false;
  return seq_gt(seg.h.seq, tw.rcv_nxt);
}

void Tcp::Impl::send_syncookie(TcpSocket& l, TcpSegment& seg) {
  const IpRx& rx = *seg.rx;
  // Largest table MSS not above what the peer offered and our route allows.
  uint16_t want = seg.opt.has_mss ? seg.opt.mss : kTcpDefaultMss;
  const uint16_t route = uint16_t(stack.mtu() - (rx.dst.is_v4() ? 40 : 60));
  want = std::min(want, route);
  uint32_t idx = 0;
  for (uint32_t i = 0; i < 4; ++i) {
    if (kCookieMss[i] <= want) idx = i;
  }
  const uint32_t count = uint32_t(stack.now() / kCookiePeriod);
  const uint32_t h1 = cookie_hash(rx.dst, seg.h.dst_port, rx.src, seg.h.src_port, 0, 0);
  const uint32_t h2 = cookie_hash(rx.dst, seg.h.dst_port, rx.src, seg.h.src_port, count, 1);
  const uint32_t cookie = h1 + seg.h.seq + (count << kCookieBits) + ((h2 + idx) & kCookieMask);

  TcpTxOptions o;
  o.mss = true;
  o.mss_value = kCookieMss[idx];
  uint8_t ws = 0;
  {
    // The same scale a full SYN-ACK would offer (tcb::init_child's rule).
    const uint32_t win = uint32_t(std::min<int64_t>(l.rcvbuf / 2, 1 << 30));
    const uint32_t big = std::max<uint32_t>(win, 4u << 20);
    while (ws < kTcpMaxWscale && (big >> ws) > 0xffff) ++ws;
  }
  // RFC 4987 3.6: without timestamps a cookie cannot carry window scaling or SACK: the
  // connection goes on without them. With timestamps (as Linux does) their low bits do.
  if (seg.opt.has_timestamps) {
    o.timestamps = true;
    uint32_t opts = seg.opt.has_wscale ? std::min<uint32_t>(seg.opt.wscale, kTcpMaxWscale) : kTsWscaleNone;
    if (seg.opt.sack_permitted) opts |= kTsSackBit;
    const uint32_t now_ts = uint32_t(stack.now() / kMilli) + ts_off(rx.dst, seg.h.dst_port, rx.src, seg.h.src_port);
    uint32_t ts = (now_ts & ~kTsOptMask) | opts;
    if (seq_gt(ts, now_ts)) ts -= 1u << kTsOptBits;
    o.tsval = ts;
    o.tsecr = seg.opt.tsval;
    o.sack_permitted = seg.opt.sack_permitted;
    if (seg.opt.has_wscale) {
      o.wscale = true;
      o.wscale_value = ws;
    }
  }
  const uint16_t window = uint16_t(std::min<uint32_t>(uint32_t(l.rcvbuf / 2), 0xffff));
  ++c.syncookies_sent;
  send_raw(rx.dst, rx.src, seg.h.dst_port, seg.h.src_port, cookie, seg.h.seq + 1, kTcpSyn | kTcpAck, window, &o,
           l.ttl, l.tos);
}

// The ACK completing a cookie handshake: validate and build the connection, ESTABLISHED.
TcpSocket* Tcp::Impl::syncookie_check(TcpSocket& l, TcpSegment& seg) {
  const IpRx& rx = *seg.rx;
  const uint32_t cookie = seg.h.ack - 1;
  const uint32_t client_isn = seg.h.seq - 1;
  const uint32_t h1 = cookie_hash(rx.dst, seg.h.dst_port, rx.src, seg.h.src_port, 0, 0);
  const uint32_t c = cookie - h1 - client_isn;
  const uint32_t now_count = uint32_t(stack.now() / kCookiePeriod);
  const uint32_t count = c >> kCookieBits;
  if (((now_count - count) & 0xff) > kCookieMaxAge) return nullptr;
  const uint32_t full_count = now_count - ((now_count - count) & 0xff);
  const uint32_t h2 = cookie_hash(rx.dst, seg.h.dst_port, rx.src, seg.h.src_port, full_count, 1);
  const uint32_t idx = (c - h2) & kCookieMask;
  if (idx >= 4) return nullptr;
  if (!mem_ok(sizeof(TcpSocket))) return nullptr;

  // Rebuild the SYN's options from the timestamp echo: its low bits hold the peer's window
  // scale and SACK-permitted (Linux cookie_init_timestamp). Without timestamps both are lost.
  TcpSegment syn;
  syn.h = seg.h;
  syn.h.seq = client_isn;
  syn.h.flags = kTcpSyn;
  syn.rx = seg.rx;
  syn.opt.has_mss = true;
  syn.opt.mss = kCookieMss[idx];
  if (seg.opt.has_timestamps && seg.opt.tsecr != 0) {
    const uint32_t opts = seg.opt.tsecr & kTsOptMask;
    syn.opt.has_timestamps = true;
    syn.opt.tsval = seg.opt.tsval;
    if ((opts & 0xf) != kTsWscaleNone) {
      syn.opt.has_wscale = true;
      syn.opt.wscale = uint8_t(opts & 0xf);
    }
    syn.opt.sack_permitted = (opts & kTsSackBit) != 0;
  }
  TcpSocket* child = create(l.family);
  if (!child) return nullptr;
  child->local_addr = rx.dst;
  child->local_port = seg.h.dst_port;
  child->remote_addr = rx.src;
  child->remote_port = seg.h.src_port;
  tcb::init_child(*child, l, syn, cookie, kCookieMss[idx]);
  child->snd_wnd = uint32_t(seg.h.window) << child->snd_wscale;
  child->max_sndwnd = child->snd_wnd;
  child->snd_wl1 = seg.h.seq;
  child->snd_wl2 = seg.h.ack;
  child->snd_una = seg.h.ack;
  child->rtt_timing = false;
  // The window the stateless SYN-ACK offered (send_syncookie).
  child->rcv_adv = child->rcv_nxt + uint32_t(std::min<uint32_t>(uint32_t(l.rcvbuf / 2), 0xffff));
  return child;
}

// RFC 9293 3.10.7.2: a segment for a listener.
void Tcp::Impl::on_listener(TcpSocket& l, TcpSegment& seg) {
  const IpRx& rx = *seg.rx;
  TcpListenQueue& q = *l.listen_q;
  if (seg.h.has(kTcpRst)) {  // first: ignore a RST
    ++c.drop_listen_bad_segment;
    return;
  }
  if (seg.h.has(kTcpAck)) {
    // second: an ACK is bad, unless it completes a SYN cookie handshake (RFC 4987 3.6).
    if (!seg.h.has(kTcpSyn) && cfg.tcp_syncookies) {
      if (q.accept_count > uint32_t(q.backlog)) {
        ++c.drop_listen_overflow;
        return;
      }
      TcpSocket* child = syncookie_check(l, seg);
      if (child) {
        ++c.syncookies_ok;
        tcb::on_established(*child);
        if (child->dead) return;
        // The ACK may carry data (or a FIN): the connection handles it now.
        tcb::input(*child, seg);
        return;
      }
      ++c.drop_bad_syncookie;
    } else {
      ++c.drop_listen_bad_segment;
    }
    send_rst_for(seg, rx);
    return;
  }
  if (!seg.h.has(kTcpSyn)) {
    ++c.drop_listen_bad_segment;
    return;
  }
  if (seg.h.has(kTcpFin)) {
    ++c.drop_bad_flags;
    return;
  }
  // third: a SYN. A full accept queue drops it (the client retries), as Linux does.
  if (q.accept_count > uint32_t(q.backlog)) {
    ++c.drop_listen_overflow;
    return;
  }
  const uint32_t syn_limit = uint32_t(std::clamp<int64_t>(std::min<int64_t>(std::max(q.backlog, 1), cfg.tcp_syn_backlog), 1, 65536));
  if (q.syn_count >= syn_limit) {
    if (cfg.tcp_syncookies) {
      send_syncookie(l, seg);
    } else {
      ++c.drop_syn_queue_full;
    }
    return;
  }
  if (!mem_ok(sizeof(TcpSocket))) {
    ++c.drop_no_memory_syn;
    if (cfg.tcp_syncookies) send_syncookie(l, seg);
    return;
  }
  TcpSocket* child = create(l.family);
  if (!child) {
    ++c.drop_no_memory_syn;
    return;
  }
  child->local_addr = rx.dst;
  child->local_port = seg.h.dst_port;
  child->remote_addr = rx.src;
  child->remote_port = seg.h.src_port;
  const uint32_t iss = isn(rx.dst, seg.h.dst_port, rx.src, seg.h.src_port);
  tcb::init_child(*child, l, seg, iss, 0);
  tcb::send_syn(*child);
  tcb::arm_timer(*child);
}

// ---------------------------------------------------------------------------------------
// Tcp.

Tcp::Tcp(Stack& stack)
    : stack_(stack), counters_(new TcpCounters(stack.counters())), impl_(new Impl(*this, stack)) {}

Tcp::~Tcp() { impl_.reset(); }

void Tcp::on_rx(PacketPtr p, const IpRx& rx) {
  Impl& m = *impl_;
  TcpCounters& c = *counters_;
  ++c.rx_segments;
  const size_t avail = p->chain ? p->chain_size() : p->size();
  TcpError err = TcpError::kTruncated;
  auto h = TcpRepr::parse(p->data(), std::min(avail, p->size()), &err);
  if (!h) {
    ++(err == TcpError::kTruncated ? c.drop_truncated : c.drop_bad_data_offset);
    return;
  }
  // RFC 9293 3.9.1 / RFC 1122 4.2.3.10: never for a broadcast or multicast address.
  if (rx.dst.is_multicast() || rx.link_broadcast || rx.link_multicast || rx.src.is_multicast() ||
      (rx.dst.is_v4() && !m.stack.is_local_v4(rx.dst.v4)) || rx.src.is_unspecified() ||
      (rx.src.is_v4() && m.stack.is_broadcast_v4(rx.src.v4))) {
    ++c.drop_not_unicast;
    return;
  }
  if (!(p->flags & PacketBuf::kRxL4ChecksumOk) && checksum_fold(tcp_sum(rx.src, rx.dst, *p)) != 0) {
    ++c.drop_bad_checksum;
    return;
  }
  TcpSegment seg;
  seg.h = *h;
  seg.rx = &rx;
  if (h->header_len > kTcpHeaderLen) {
    seg.opt = TcpOptions::parse(p->data() + kTcpHeaderLen, h->header_len - kTcpHeaderLen);
    if (seg.opt.malformed) ++c.bad_options;
  }
  seg.len = uint32_t(avail - h->header_len);
  p->pull(h->header_len);
  seg.p = std::move(p);
  // RFC 9293 3.1 leaves combinations open; these are never meaningful and only probe.
  if ((h->flags & (kTcpSyn | kTcpRst)) == (kTcpSyn | kTcpRst)) {
    ++c.drop_bad_flags;
    return;
  }

  TcpSocket* s = m.lookup_conn(rx.dst, h->dst_port, rx.src, h->src_port);
  if (s) {
    // RFC 6191: a new SYN for a 4-tuple in TIME_WAIT may start a new connection.
    if (s->state == TcpState::kTimeWait && h->has(kTcpSyn) && !h->has(kTcpAck) && !h->has(kTcpRst) &&
        m.timewait_accepts_syn(*s, seg)) {
      TcpSocket* l = m.lookup_listener(rx.dst, h->dst_port, rx.src, h->src_port);
      if (l) {
        ++c.timewait_reused;
        tcb::finish(*s);
        m.on_listener(*l, seg);
        return;
      }
    }
    tcb::input(*s, seg);
    return;
  }
  TcpSocket* l = m.lookup_listener(rx.dst, h->dst_port, rx.src, h->src_port);
  if (l) {
    m.on_listener(*l, seg);
    return;
  }
  // RFC 9293 3.10.7.1: CLOSED. Anything but a RST is answered with a RST.
  ++c.drop_no_socket;
  m.send_rst_for(seg, rx);
}

void Tcp::on_icmp_error(int err, uint32_t mtu, const uint8_t* quoted, size_t len, const IpRx& quoted_ip) {
  if (len < 8) return;
  Impl& m = *impl_;
  const uint16_t sport = load16(quoted);
  const uint16_t dport = load16(quoted + 2);
  const uint32_t seq = load32(quoted + 4);
  TcpSocket* s = m.lookup_conn(quoted_ip.src, sport, quoted_ip.dst, dport);
  if (!s || s->state == TcpState::kListen || s->state == TcpState::kTimeWait) return;
  // RFC 5927 4.1: believe it only if it quotes a sequence number in flight.
  if (!seq_in(seq, s->snd_una, s->snd_max + 1)) return;
  if (err == EMSGSIZE) {
    // RFC 1191 / RFC 8201: path MTU discovery. Never below what IPv4/IPv6 guarantee.
    const uint32_t floor = s->remote_addr.is_v4() ? 576 : 1280;
    if (mtu == 0 || mtu < floor) mtu = floor;
    if (s->pmtu && mtu >= s->pmtu) return;
    s->pmtu = mtu;
    const uint16_t before = s->mss;
    tcb::set_mss(*s, tcb::mss_for_route(*s));
    if (s->mss < before && s->snd_una != s->snd_max) {
      // Resend what was too big at once (Linux tcp_simple_retransmit, without a window cut).
      s->snd_nxt = s->snd_una;
      if (s->recovery == TcpSocket::Recovery::kNone) s->recover = s->snd_max;
      tcb::output(*s);
    }
    return;
  }
  // RFC 1122 4.2.3.9: hard errors abort a connection being opened; otherwise they are soft,
  // reported only if the connection later times out.
  if (s->state == TcpState::kSynSent && (err == ECONNREFUSED || err == EHOSTUNREACH || err == ENETUNREACH ||
                                         err == ENOPROTOOPT || err == EACCES)) {
    tcb::abort(*s, err, false);
    return;
  }
  s->soft_error = err;
}

// --- Sockets.

TcpSocket* Tcp::open(Family family) { return impl_->create(family); }

int Tcp::bind(TcpSocket& s, const IpAddr& addr, uint16_t port) {
  Impl& m = *impl_;
  if (s.bound || s.state != TcpState::kClosed) return -EINVAL;
  if (s.family == Family::kV4 && !addr.is_v4()) return -EAFNOSUPPORT;
  if (addr.is_v4() && s.family == Family::kV6 && s.v6only) return -EINVAL;
  if (!addr.is_unspecified()) {
    if (addr.is_multicast()) return -EADDRNOTAVAIL;
    if (addr.is_v4() ? !m.stack.is_local_v4(addr.v4) : !m.stack.is_local_v6(addr.v6)) return -EADDRNOTAVAIL;
  }
  if (port == 0) {
    const int p = m.pick_bind_port(s, addr);
    if (p < 0) return -EADDRINUSE;
    port = uint16_t(p);
    s.bind_port_locked = false;
  } else {
    if (m.bind_conflict(s, addr, port)) return -EADDRINUSE;
    s.bind_port_locked = true;
  }
  s.local_addr = addr;
  s.local_port = port;
  s.bind_addr_locked = !addr.is_unspecified();
  m.bind_port(s);
  return 0;
}

int Tcp::listen(TcpSocket& s, int backlog) {
  Impl& m = *impl_;
  backlog = std::clamp(backlog, 0, kSomaxconn);
  if (s.state == TcpState::kListen) {
    s.listen_q->backlog = backlog;
    return 0;
  }
  if (s.state != TcpState::kClosed || s.was_connected) return -EINVAL;
  if (!s.bound) {
    const int r = bind(s, any_of(s.family), 0);
    if (r < 0) return r;
  }
  // Linux inet_csk_get_port at listen: SO_REUSEADDR does not let two sockets listen.
  s.state = TcpState::kListen;
  if (m.bind_conflict(s, s.local_addr, s.local_port)) {
    s.state = TcpState::kClosed;
    return -EADDRINUSE;
  }
  s.listen_q = std::make_unique<TcpListenQueue>();
  s.listen_q->backlog = backlog;
  return 0;
}

TcpSocket* Tcp::accept(TcpSocket& l, int* err) {
  if (l.state != TcpState::kListen || !l.listen_q) {
    *err = -EINVAL;
    return nullptr;
  }
  TcpListenQueue& q = *l.listen_q;
  TcpSocket* c = q.accept_head;
  if (!c) {
    *err = -EAGAIN;
    return nullptr;
  }
  q.accept_head = c->q_next;
  if (q.accept_head) q.accept_head->q_prev = nullptr; else q.accept_tail = nullptr;
  --q.accept_count;
  c->q_next = c->q_prev = nullptr;
  c->parent = nullptr;
  c->in_accept_queue = false;
  *err = 0;
  return c;
}

int Tcp::connect(TcpSocket& s, const IpAddr& addr, uint16_t port) {
  Impl& m = *impl_;
  switch (s.state) {
    case TcpState::kSynSent:
    case TcpState::kSynReceived: return -EALREADY;
    case TcpState::kClosed: break;
    default: return -EISCONN;
  }
  if (s.so_error) return -std::exchange(s.so_error, 0);
  if (s.was_connected) return -EISCONN;  // a finished connection cannot be reopened here
  if (port == 0) return -ECONNREFUSED;
  if (s.family == Family::kV4 && !addr.is_v4()) return -EAFNOSUPPORT;
  if (addr.is_v4() && s.family == Family::kV6 && s.v6only) return -ENETUNREACH;
  if (addr.is_unspecified() || addr.is_multicast() || (addr.is_v4() && m.stack.is_broadcast_v4(addr.v4))) {
    return -ENETUNREACH;
  }
  if (s.bound && !s.local_addr.is_unspecified() && s.local_addr.family != addr.family) return -EINVAL;
  IpAddr src = s.local_addr;
  if (!s.bound || s.local_addr.is_unspecified() || s.local_addr.family != addr.family) {
    const bool local = addr.is_v4() ? m.stack.is_local_v4(addr.v4) : m.stack.is_local_v6(addr.v6);
    if (!local && !m.stack.routes().lookup(addr)) return -ENETUNREACH;
    auto chosen = m.stack.source_for(addr);
    if (!chosen) return -ENETUNREACH;
    src = *chosen;
  }
  const IpAddr old_local = s.local_addr;
  s.local_addr = src;
  s.remote_addr = addr;
  s.remote_port = port;
  if (!s.bound) {
    const int p = m.pick_connect_port(s);
    if (p < 0) {
      s.local_addr = old_local;
      return -EADDRNOTAVAIL;
    }
    s.local_port = uint16_t(p);
    s.bind_port_locked = false;
    m.bind_port(s);
  } else if (TcpSocket* old = m.lookup_conn(src, s.local_port, addr, port)) {
    if (old->state == TcpState::kTimeWait && old->ts_ok && m.stack.now() - old->tw_since >= kSecond) {
      ++m.c.timewait_reused;
      tcb::finish(*old);
    } else {
      s.local_addr = old_local;
      return -EADDRNOTAVAIL;
    }
  }
  m.hash_conn(s);
  ++m.c.active_opens;
  tcb::start_connect(s);
  return -EINPROGRESS;
}

ssize_t Tcp::send(TcpSocket& s, const iovec* iov, size_t iovcnt, int flags) {
  Impl& m = *impl_;
  if (flags & MSG_OOB) return -EOPNOTSUPP;
  if (s.so_error) return -std::exchange(s.so_error, 0);
  if (s.shut_wr || s.reset) return -EPIPE;
  if (s.state == TcpState::kSynSent || s.state == TcpState::kSynReceived) return -EAGAIN;
  if (!s.can_send_data()) return s.was_connected ? -EPIPE : -ENOTCONN;
  const size_t len = iov_total(iov, iovcnt);
  if (len == 0) return 0;
  const uint32_t limit = s.sendbuf_limit();
  const uint32_t used = s.ring.size();
  if (used >= limit) {
    s.tx_blocked = true;
    return -EAGAIN;
  }
  uint32_t n = uint32_t(std::min<size_t>(len, limit - used));
  const uint32_t cap_before = s.ring.capacity();
  if (used + n > cap_before) {
    // Grow: charged to the stack's TCP memory.
    uint32_t target = cap_before ? cap_before : 4096;
    while (target < used + n && target < limit) target *= 2;
    if (!m.mem_ok(target - cap_before)) {
      n = cap_before > used ? cap_before - used : 0;
      if (n == 0) {
        ++m.c.drop_memory;
        s.tx_blocked = true;
        return -ENOBUFS;
      }
    } else if (!s.ring.reserve(used + n, limit)) {
      return -ENOBUFS;
    }
    m.mem_used += s.ring.capacity() - cap_before;
  }
  size_t left = n;
  for (size_t i = 0; i < iovcnt && left; ++i) {
    const size_t k = std::min(left, iov[i].iov_len);
    if (k) s.ring.append(static_cast<const uint8_t*>(iov[i].iov_base), uint32_t(k));
    left -= k;
  }
  s.data_end += n;
  s.more_pending = (flags & MSG_MORE) != 0;
  if (n < len) s.tx_blocked = true;
  tcb::output(s);
  return ssize_t(n);
}

ssize_t Tcp::recv(TcpSocket& s, const iovec* iov, size_t iovcnt, int flags) {
  if (flags & MSG_OOB) return -EINVAL;
  if (s.state == TcpState::kListen) return -ENOTCONN;
  if (iov && iov_total(iov, iovcnt) == 0) return 0;
  if (s.rx_bytes == 0) {
    if (s.so_error) return -std::exchange(s.so_error, 0);
    if (s.readable_eof()) return 0;
    if (s.state == TcpState::kClosed && !s.was_connected) return -ENOTCONN;
    return -EAGAIN;
  }
  const bool peek = flags & MSG_PEEK;
  const bool trunc = flags & MSG_TRUNC;
  size_t want = trunc && !iov ? size_t(-1) : iov_total(iov, iovcnt);
  if (trunc) want = iov ? iov_total(iov, iovcnt) : s.rx_bytes;
  size_t copied = 0;
  IovWriter out(iov, iovcnt);
  PacketBuf* b = s.rxq.front();
  size_t boff = 0;
  while (b && copied < want) {
    size_t avail = b->size() - boff;
    size_t k = std::min(avail, want - copied);
    if (!trunc) {
      k = out.write(b->data() + boff, k);  // into the scatter list, as far as it goes
      if (k == 0) break;
    }
    copied += k;
    if (peek) {
      boff += k;
      if (boff == b->size()) {
        b = b->next;
        boff = 0;
      }
      continue;
    }
    if (k == b->size()) {
      s.rxq.pop();
      s.rmem -= uint32_t(PacketBuf::kCapacity);
      impl_->mem_used -= PacketBuf::kCapacity;
      b = s.rxq.front();
    } else {
      b->pull(k);
    }
  }
  if (!peek) {
    s.rx_bytes -= uint32_t(copied);
    tcb::window_update_after_read(s);
  }
  return ssize_t(copied);
}

void Tcp::stop_listening(TcpSocket& s) {
  // Connections not accepted die with their listener (RST, as Linux does).
  TcpListenQueue& q = *s.listen_q;
  while (q.accept_head) tcb::abort(*q.accept_head, ECONNRESET, true);
  while (q.syn_head) tcb::abort(*q.syn_head, ECONNRESET, true);
  s.state = TcpState::kClosed;
  s.listen_q.reset();
}

int Tcp::shutdown(TcpSocket& s, int how) {
  if (how < SHUT_RD || how > SHUT_RDWR) return -EINVAL;
  switch (s.state) {
    case TcpState::kClosed:
      if (!s.was_connected) return -ENOTCONN;
      break;
    case TcpState::kListen:
      // Linux inet_shutdown: SHUT_WR leaves a listener as it is; SHUT_RD/SHUT_RDWR disconnect it
      // (tcp_disconnect -> inet_csk_listen_stop): connections not accepted are reset, the socket
      // goes back to CLOSED with its bound name kept, and listen() may be called again.
      if (how == SHUT_WR) return 0;
      stop_listening(s);
      tcb::notify(s);
      return 0;
    case TcpState::kSynSent:
      // Linux tcp_disconnect: an open in progress is abandoned.
      if (how != SHUT_RD) {
        tcb::abort(s, 0, false);
        s.reset = false;
        s.shut_wr = true;
        return 0;
      }
      break;
    default: break;
  }
  if (how != SHUT_WR) {
    s.shut_rd = true;
  }
  if (how != SHUT_RD && !s.shut_wr) {
    s.shut_wr = true;
    // RFC 9293 3.10.4 CLOSE: queue a FIN after the data.
    if (s.state == TcpState::kEstablished || s.state == TcpState::kSynReceived) {
      s.state = TcpState::kFinWait1;
    } else if (s.state == TcpState::kCloseWait) {
      s.state = TcpState::kLastAck;
    }
    tcb::output(s);
  }
  tcb::notify(s);
  return 0;
}

void Tcp::close(TcpSocket& s) {
  Impl& m = *impl_;
  s.observer = nullptr;
  s.orphan = true;
  if (s.dead) return;
  if (s.state == TcpState::kListen) {
    stop_listening(s);
    m.destroy(s);
    return;
  }
  switch (s.state) {
    case TcpState::kClosed:
    case TcpState::kSynSent:
      m.destroy(s);
      return;
    case TcpState::kTimeWait:
      return;  // lives on until 2MSL
    default: break;
  }
  // RFC 2525 2.17 / Linux: unread data, or SO_LINGER with zero time, aborts with a RST.
  if (s.rx_bytes > 0 || (s.linger_on && s.linger_s == 0)) {
    tcb::abort(s, 0, true);
    return;
  }
  if (!s.shut_wr) {
    s.shut_wr = true;
    if (s.state == TcpState::kEstablished || s.state == TcpState::kSynReceived) {
      s.state = TcpState::kFinWait1;
    } else if (s.state == TcpState::kCloseWait) {
      s.state = TcpState::kLastAck;
    }
  }
  s.shut_rd = true;
  tcb::output(s);
  if (s.dead) return;
  if (s.state == TcpState::kFinWait2) tcb::arm_timer(s);  // the FIN_WAIT_2 timeout now applies
  if (s.state == TcpState::kClosed) m.destroy(s);
}

uint32_t Tcp::events(const TcpSocket& s) const {
  if (s.state == TcpState::kListen) return s.listen_q->accept_count ? (POLLIN | POLLRDNORM) : 0;
  uint32_t ev = 0;
  const bool rcv_shut = s.peer_fin || s.shut_rd || s.reset;
  const bool snd_shut = s.shut_wr || s.reset;
  if (s.so_error) ev |= POLLERR;
  if ((rcv_shut && snd_shut) || s.state == TcpState::kClosed) ev |= POLLHUP;
  if (rcv_shut) ev |= POLLIN | POLLRDNORM | POLLRDHUP;
  if (s.state != TcpState::kSynSent && s.state != TcpState::kSynReceived) {
    if (s.rx_bytes) ev |= POLLIN | POLLRDNORM;
    if (snd_shut || s.writable()) {
      ev |= POLLOUT | POLLWRNORM;
    } else {
      s.tx_blocked = true;  // Linux tcp_poll sets SOCK_NOSPACE: the ACK that frees space wakes the poller
    }
  }
  return ev;
}

int Tcp::local_name(const TcpSocket& s, IpAddr* addr, uint16_t* port) const {
  *addr = s.bound || s.hashed ? s.local_addr : (s.local_port ? s.local_addr : any_of(s.family));
  *port = s.local_port;
  return 0;
}

int Tcp::peer_name(const TcpSocket& s, IpAddr* addr, uint16_t* port) const {
  if (s.state == TcpState::kListen || (s.state == TcpState::kClosed) || s.remote_port == 0) return -ENOTCONN;
  *addr = s.remote_addr;
  *port = s.remote_port;
  return 0;
}

void Tcp::set_observer(TcpSocket& s, TcpSocketObserver* o) { s.observer = o; }
void Tcp::set_user(TcpSocket& s, uint64_t u) { s.user = u; }
uint64_t Tcp::user(const TcpSocket& s) const { return s.user; }
TcpState Tcp::state(const TcpSocket& s) const { return s.state; }
Family Tcp::family(const TcpSocket& s) const { return s.family; }
bool Tcp::is_listening(const TcpSocket& s) const { return s.state == TcpState::kListen; }
size_t Tcp::rx_queued(const TcpSocket& s) const { return s.rx_bytes; }
size_t Tcp::tx_queued(const TcpSocket& s) const { return s.ring.size(); }
int Tcp::take_error(TcpSocket& s) { return std::exchange(s.so_error, 0); }
size_t Tcp::connection_count() const {
  size_t n = 0;
  for (const TcpSocket* s = impl_->all_head; s; s = s->all_next) n += s->hashed && !s->dead;
  return n;
}
size_t Tcp::memory() const { return impl_->mem_used; }
size_t Tcp::count_in_state(TcpState st) const {
  size_t n = 0;
  for (const TcpSocket* s = impl_->all_head; s; s = s->all_next) n += !s->dead && s->state == st;
  return n;
}

// --- Options.

namespace {
template <typename T>
int put_opt(void* val, socklen_t* len, T v) {
  if (!val || !len) return -EFAULT;
  const socklen_t n = std::min<socklen_t>(*len, sizeof(T));
  std::memcpy(val, &v, n);
  *len = n;
  return 0;
}
// Linux sock_setsockopt / do_tcp_setsockopt: an int or EINVAL; IPPROTO_IP accepts a char.
int get_int(const void* val, socklen_t len, int* out, bool char_ok = false) {
  if (!val) return -EFAULT;
  if (len < socklen_t(sizeof(int))) {
    if (len == 0 || !char_ok) return -EINVAL;
    *out = *static_cast<const uint8_t*>(val);
    return 0;
  }
  std::memcpy(out, val, sizeof(int));
  return 0;
}
uint8_t linux_state(TcpState s) {
  switch (s) {
    case TcpState::kEstablished: return 1;
    case TcpState::kSynSent: return 2;
    case TcpState::kSynReceived: return 3;
    case TcpState::kFinWait1: return 4;
    case TcpState::kFinWait2: return 5;
    case TcpState::kTimeWait: return 6;
    case TcpState::kClosed: return 7;
    case TcpState::kCloseWait: return 8;
    case TcpState::kLastAck: return 9;
    case TcpState::kListen: return 10;
    case TcpState::kClosing: return 11;
  }
  return 7;
}
}  // namespace

int Tcp::setsockopt(TcpSocket& s, int level, int name, const void* val, socklen_t len) {
  Impl& m = *impl_;
  if (level == SOL_SOCKET) {
    if (name == SO_LINGER) {
      if (!val) return -EFAULT;
      if (len < socklen_t(sizeof(linger))) return -EINVAL;
      linger l;
      std::memcpy(&l, val, sizeof(l));
      s.linger_on = l.l_onoff != 0;
      s.linger_s = std::max(0, l.l_linger);
      return 0;
    }
    int v = 0;
    const int r = get_int(val, len, &v);
    if (r < 0) return r;
    switch (name) {
      case SO_REUSEADDR: s.reuse_addr = v != 0; return 0;
      case SO_REUSEPORT: s.reuse_port = v != 0; return 0;
      case SO_KEEPALIVE:
        s.keepalive = v != 0;
        tcb::restart_keepalive(s);
        return 0;
      case SO_SNDBUF:
        // Linux: doubled, bounded by wmem_max (here kTcpBufMax) and SOCK_MIN_SNDBUF.
        s.sndbuf = clamp_buf(2 * int64_t(std::clamp(v, 0, kTcpBufMax)), kTcpMinSndbuf);
        s.sndbuf_locked = true;
        if (s.writable() && s.tx_blocked) tcb::notify(s);
        return 0;
      case SO_RCVBUF:
        s.rcvbuf = clamp_buf(2 * int64_t(std::clamp(v, 0, kTcpBufMax)), kTcpMinRcvbuf);
        s.rcvbuf_locked = true;
        return 0;
      case SO_RCVLOWAT:
      case SO_SNDLOWAT: return 0;
      default: return -ENOPROTOOPT;
    }
  }
  if (level == IPPROTO_TCP) {
    if (name == TCP_CONGESTION) {
      if (!val) return -EFAULT;
      std::string_view n(static_cast<const char*>(val), strnlen(static_cast<const char*>(val), len));
      auto cc = make_congestion_control(n);
      if (!cc) return -ENOENT;
      if (s.cc) {
        cc->init(s.mss, m.stack.now());
      }
      s.cc = std::move(cc);
      return 0;
    }
    int v = 0;
    const int r = get_int(val, len, &v);
    if (r < 0) return r;
    switch (name) {
      case TCP_NODELAY:
        s.nodelay = v != 0;
        if (s.nodelay) tcb::output(s);  // Linux pushes pending data at once
        return 0;
      case TCP_CORK:
        s.cork = v != 0;
        if (!s.cork) tcb::output(s);
        return 0;
      case TCP_MAXSEG:
        if (v != 0 && (v < 88 || v > 65535 - 40)) return -EINVAL;
        s.user_mss = uint16_t(v);
        return 0;
      case TCP_KEEPIDLE:
        if (v < 1 || v > 32767) return -EINVAL;
        s.keep_idle_s = v;
        tcb::restart_keepalive(s);
        return 0;
      case TCP_KEEPINTVL:
        if (v < 1 || v > 32767) return -EINVAL;
        s.keep_intvl_s = v;
        return 0;
      case TCP_KEEPCNT:
        if (v < 1 || v > 127) return -EINVAL;
        s.keep_cnt = v;
        return 0;
      case TCP_SYNCNT:
        if (v < 1 || v > 127) return -EINVAL;
        s.syn_retries = v;
        return 0;
      case TCP_LINGER2: s.linger2_s = v < 0 ? -1 : v; return 0;
      case TCP_DEFER_ACCEPT: return 0;
      case TCP_WINDOW_CLAMP:
        if (v < 0) return -EINVAL;
        s.window_clamp = uint32_t(v);
        return 0;
      case TCP_QUICKACK:
        s.quickack = v != 0;
        if (s.quickack && s.acks_owed) tcb::send_ack(s);
        return 0;
      case TCP_USER_TIMEOUT:
        if (v < 0) return -EINVAL;
        s.user_timeout_ms = uint32_t(v);
        return 0;
      default: return -ENOPROTOOPT;
    }
  }
  if (level == IPPROTO_IP || level == IPPROTO_IPV6) {
    int v = 0;
    const int r = get_int(val, len, &v, level == IPPROTO_IP);
    if (r < 0) return r;
    if (level == IPPROTO_IP && name == IP_TTL) {
      if (v == -1) { s.ttl = -1; return 0; }
      if (v < 1 || v > 255) return -EINVAL;
      s.ttl = int16_t(v);
      return 0;
    }
    if (level == IPPROTO_IP && name == IP_TOS) {
      s.tos = uint8_t(v);
      return 0;
    }
    if (level == IPPROTO_IPV6 && name == IPV6_V6ONLY) {
      if (s.family != Family::kV6) return -ENOPROTOOPT;
      if (s.bound) return -EINVAL;
      s.v6only = v != 0;
      return 0;
    }
    if (level == IPPROTO_IPV6 && name == IPV6_UNICAST_HOPS) {
      if (v < -1 || v > 255) return -EINVAL;
      s.ttl = int16_t(v);
      return 0;
    }
    if (level == IPPROTO_IPV6 && name == IPV6_TCLASS) {
      if (v < -1 || v > 255) return -EINVAL;
      s.tos = uint8_t(v < 0 ? 0 : v);
      return 0;
    }
  }
  return -ENOPROTOOPT;
}

int Tcp::getsockopt(TcpSocket& s, int level, int name, void* val, socklen_t* len) {
  Impl& m = *impl_;
  if (level == SOL_SOCKET) {
    switch (name) {
      case SO_REUSEADDR: return put_opt<int>(val, len, s.reuse_addr);
      case SO_REUSEPORT: return put_opt<int>(val, len, s.reuse_port);
      case SO_KEEPALIVE: return put_opt<int>(val, len, s.keepalive);
      case SO_SNDBUF: return put_opt<int>(val, len, s.sndbuf);
      case SO_RCVBUF: return put_opt<int>(val, len, s.rcvbuf);
      case SO_ERROR: return put_opt<int>(val, len, std::exchange(s.so_error, 0));
      case SO_ACCEPTCONN: return put_opt<int>(val, len, s.state == TcpState::kListen);
      case SO_RCVLOWAT:
      case SO_SNDLOWAT: return put_opt<int>(val, len, 1);
      case SO_LINGER: {
        linger l{s.linger_on ? 1 : 0, s.linger_s};
        return put_opt(val, len, l);
      }
      default: return -ENOPROTOOPT;
    }
  }
  if (level == IPPROTO_TCP) {
    switch (name) {
      case TCP_NODELAY: return put_opt<int>(val, len, s.nodelay);
      case TCP_CORK: return put_opt<int>(val, len, s.cork);
      case TCP_MAXSEG:
        return put_opt<int>(val, len, s.state == TcpState::kClosed || s.state == TcpState::kListen
                                          ? (s.user_mss ? s.user_mss : kTcpDefaultMss)
                                          : s.mss);
      case TCP_KEEPIDLE: return put_opt<int>(val, len, s.keep_idle_s ? s.keep_idle_s : int(m.cfg.tcp_keepalive_time_s));
      case TCP_KEEPINTVL: return put_opt<int>(val, len, s.keep_intvl_s ? s.keep_intvl_s : int(m.cfg.tcp_keepalive_intvl_s));
      case TCP_KEEPCNT: return put_opt<int>(val, len, s.keep_cnt ? s.keep_cnt : int(m.cfg.tcp_keepalive_probes));
      case TCP_SYNCNT: return put_opt<int>(val, len, s.syn_retries);
      case TCP_LINGER2: return put_opt<int>(val, len, s.linger2_s ? s.linger2_s : int(m.cfg.tcp_fin_timeout_ms / 1000));
      case TCP_DEFER_ACCEPT: return put_opt<int>(val, len, 0);
      case TCP_WINDOW_CLAMP: return put_opt<int>(val, len, int(s.window_clamp));
      case TCP_QUICKACK: return put_opt<int>(val, len, s.quickack);
      case TCP_USER_TIMEOUT: return put_opt<int>(val, len, int(s.user_timeout_ms));
      case TCP_CONGESTION: {
        if (!val || !len) return -EFAULT;
        const char* n = s.cc ? s.cc->name() : m.cfg.tcp_congestion.c_str();
        const socklen_t k = std::min<socklen_t>(*len, 16);
        char buf[16] = {};
        std::strncpy(buf, n, sizeof(buf) - 1);
        std::memcpy(val, buf, k);
        *len = k;
        return 0;
      }
      case TCP_INFO: {
        if (!val || !len) return -EFAULT;
        tcp_info ti;
        std::memset(&ti, 0, sizeof(ti));
        ti.tcpi_state = linux_state(s.state);
        ti.tcpi_ca_state = s.recovery == TcpSocket::Recovery::kFast ? 3 : s.recovery == TcpSocket::Recovery::kRto ? 4 : 0;
        ti.tcpi_retransmits = s.retries;
        ti.tcpi_probes = s.probes;
        ti.tcpi_backoff = uint8_t(s.rtt.backoff_count());
        ti.tcpi_options = uint8_t((s.ts_ok ? 1 : 0) | (s.sack_ok ? 2 : 0) | (s.ws_ok ? 4 : 0));
        ti.tcpi_snd_wscale = s.ws_ok ? s.snd_wscale : 0;
        ti.tcpi_rcv_wscale = s.ws_ok ? s.rcv_wscale : 0;
        ti.tcpi_rto = uint32_t(s.rtt.rto() / kMicro);
        ti.tcpi_ato = uint32_t(m.cfg.tcp_delack_ms * 1000);
        ti.tcpi_snd_mss = s.mss;
        ti.tcpi_rcv_mss = s.rcv_mss ? s.rcv_mss : s.adv_mss;
        ti.tcpi_unacked = s.synchronized() || s.state == TcpState::kSynReceived
                              ? (s.snd_max - s.snd_una + s.mss - 1) / std::max<uint32_t>(s.mss, 1)
                              : 0;
        ti.tcpi_sacked = s.sb ? (s.sb->sacked_bytes() + s.mss - 1) / std::max<uint32_t>(s.mss, 1) : 0;
        ti.tcpi_lost = s.lost_out;
        ti.tcpi_retrans = s.recovery != TcpSocket::Recovery::kNone ? s.lost_out : 0;
        ti.tcpi_last_data_recv = uint32_t((m.stack.now() - s.last_rx) / kMilli);
        ti.tcpi_pmtu = s.pmtu ? s.pmtu : m.stack.mtu();
        ti.tcpi_rcv_ssthresh = s.window_max();
        ti.tcpi_rtt = uint32_t(s.rtt.srtt() / kMicro);
        ti.tcpi_rttvar = uint32_t(s.rtt.rttvar() / kMicro);
        ti.tcpi_snd_ssthresh = s.cc ? uint32_t(std::min<uint64_t>(s.cc->ssthresh() / std::max<uint32_t>(s.mss, 1), 0x7fffffff)) : 0x7fffffff;
        ti.tcpi_snd_cwnd = s.cc ? uint32_t(s.cc->cwnd() / std::max<uint32_t>(s.mss, 1)) : 0;
        ti.tcpi_advmss = s.adv_mss;
        ti.tcpi_reordering = 3;
        ti.tcpi_rcv_space = s.window_max();
        ti.tcpi_total_retrans = s.total_retrans;
        const socklen_t k = std::min<socklen_t>(*len, sizeof(ti));
        std::memcpy(val, &ti, k);
        *len = k;
        return 0;
      }
      default: return -ENOPROTOOPT;
    }
  }
  if (level == IPPROTO_IP) {
    if (name == IP_TTL) return put_opt<int>(val, len, s.ttl >= 0 ? s.ttl : int(m.cfg.ttl));
    if (name == IP_TOS) return put_opt<int>(val, len, s.tos);
  }
  if (level == IPPROTO_IPV6) {
    if (s.family != Family::kV6) return -ENOPROTOOPT;
    if (name == IPV6_V6ONLY) return put_opt<int>(val, len, s.v6only);
    if (name == IPV6_UNICAST_HOPS) return put_opt<int>(val, len, s.ttl >= 0 ? s.ttl : int(m.cfg.ttl));
    if (name == IPV6_TCLASS) return put_opt<int>(val, len, s.tos);
  }
  return -ENOPROTOOPT;
}

}  // namespace shunt
