// One connection: segment arrival (RFC 9293 3.10.7), acknowledgement processing with loss
// detection (RFC 5681, RFC 6582, RFC 6675), and the receive side (in-order and out-of-order
// queues, SACK blocks, FIN).
#include <algorithm>
#include <cerrno>
#include <cstring>

#include "stack/net/stack.h"
#include "stack/net/tcp/tcb.h"

namespace shunt {

namespace {
constexpr Nanos kPawsIdle = Nanos(24) * 24 * 3600 * kSecond;  // RFC 7323 5.5: 24 days
constexpr uint32_t kCollapseMax = 512;  // payloads this small are copied into the queue's tail
constexpr uint32_t kTruesize = PacketBuf::kCapacity;
}  // namespace

// ---------------------------------------------------------------------------------------
// TcpSocket and SendRing.

TcpSocket::TcpSocket(Tcp& t, Family f)
    : tcp(t),
      m(t.impl()),
      family(f),
      local_addr(f == Family::kV4 ? IpAddr(Ipv4Addr{}) : IpAddr(Ipv6Addr{})),
      remote_addr(local_addr),
      rtt(t.impl().cfg.tcp_rto_initial_ms * kMilli, t.impl().cfg.tcp_rto_min_ms * kMilli,
          std::max(t.impl().cfg.tcp_rto_max_ms, t.impl().cfg.tcp_rto_min_ms) * kMilli) {
  timer.set_callback([this](Nanos now) { tcb::on_timer(*this, now); });
  delack_timer.set_callback([this](Nanos now) { tcb::on_delack_timer(*this, now); });
}

TcpSocket::~TcpSocket() {
  timer.cancel();
  delack_timer.cancel();
  rxq.clear();
  while (ooo) {
    PacketBuf* n = ooo->next;
    ooo->next = nullptr;
    PacketPtr drop(ooo);
    ooo = n;
  }
}

Nanos TcpSocket::now() const { return m.stack.now(); }
uint32_t TcpSocket::ts_now() const { return uint32_t(now() / kMilli) + ts_offset; }

uint32_t TcpSocket::window_max() const {
  uint32_t w = uint32_t(std::max(rcvbuf, 0) / 2);
  if (window_clamp && window_clamp < w) w = std::max<uint32_t>(window_clamp, kTcpMinRcvbuf / 2);
  w = std::min<uint32_t>(w, 1u << 30);
  if (!ws_ok && synchronized()) w = std::min<uint32_t>(w, 0xffff);
  return w;
}

uint32_t TcpSocket::sendbuf_limit() const { return uint32_t(std::max(sndbuf, kTcpMinSndbuf)); }
uint32_t TcpSocket::send_free() const {
  const uint32_t l = sendbuf_limit();
  return ring.size() >= l ? 0 : l - ring.size();
}
// Linux sk_stream_is_writeable: free space at least half of what is queued.
bool TcpSocket::writable() const { return send_free() > 0 && send_free() >= ring.size() / 2; }

size_t TcpSocket::memory() const { return sizeof(TcpSocket) + ring.capacity() + rmem; }

bool SendRing::reserve(uint32_t need, uint32_t limit) {
  if (need <= cap_) return true;
  uint32_t cap = cap_ ? cap_ : 4096;
  while (cap < need) cap *= 2;
  uint32_t lim2 = 4096;
  while (lim2 < limit) lim2 *= 2;
  if (cap > lim2) return false;
  auto* b = new uint8_t[cap];
  if (len_) copy_out(0, b, len_);
  delete[] buf_;
  buf_ = b;
  cap_ = cap;
  head_ = 0;
  return true;
}

void SendRing::append(const uint8_t* src, uint32_t n) {
  uint32_t pos = (head_ + len_) & (cap_ - 1);
  const uint32_t first = std::min(n, cap_ - pos);
  std::memcpy(buf_ + pos, src, first);
  if (n > first) std::memcpy(buf_, src + first, n - first);
  len_ += n;
}

void SendRing::copy_out(uint32_t off, uint8_t* dst, uint32_t n) const {
  const uint32_t pos = (head_ + off) & (cap_ - 1);
  const uint32_t first = std::min(n, cap_ - pos);
  std::memcpy(dst, buf_ + pos, first);
  if (n > first) std::memcpy(dst + first, buf_, n - first);
}

void SendRing::consume(uint32_t n) {
  n = std::min(n, len_);
  head_ = (head_ + n) & (cap_ ? cap_ - 1 : 0);
  len_ -= n;
  if (len_ == 0) head_ = 0;
}

namespace tcb {

namespace {

uint8_t choose_wscale(const TcpSocket& s) {
  // The scale must cover the largest window this socket may offer later (SO_RCVBUF can grow
  // after the handshake): at least 4 MiB worth, as Linux's default tcp_rmem max would.
  const uint32_t big = std::max<uint32_t>(uint32_t(std::min<int64_t>(s.rcvbuf / 2, 1 << 30)), 4u << 20);
  uint8_t ws = 0;
  while (ws < kTcpMaxWscale && (big >> ws) > 0xffff) ++ws;
  return ws;
}

void rmem_add(TcpSocket& s, uint32_t bytes) {
  s.rmem += bytes;
  s.m.mem_used += bytes;
}
void rmem_sub(TcpSocket& s, uint32_t bytes) {
  s.rmem -= bytes;
  s.m.mem_used -= bytes;
}

uint32_t buffers_of(const PacketBuf& p) {
  uint32_t n = 0;
  for (const PacketBuf* b = &p; b; b = b->chain) ++n;
  return n;
}

// Appends `len` payload bytes of `p` (and its chain) after skipping `skip` to the in-order
// queue, merging small payloads into the queue's last buffer.
void queue_in_order(TcpSocket& s, PacketPtr p, uint32_t skip, uint32_t len) {
  PacketBuf* b = p.release();
  while (b) {
    PacketBuf* rest = b->chain;
    b->chain = nullptr;
    PacketPtr cur(b);
    rmem_sub(s, kTruesize);  // re-charged below if kept
    b = rest;
    if (skip >= cur->size()) {
      skip -= uint32_t(cur->size());
      continue;
    }
    if (skip) {
      cur->pull(skip);
      skip = 0;
    }
    if (len == 0) continue;
    if (cur->size() > len) cur->trim(len);
    const uint32_t n = uint32_t(cur->size());
    len -= n;
    PacketBuf* tail = nullptr;
    for (PacketBuf* t = s.rxq.front(); t; t = t->next) tail = t;
    if (n <= kCollapseMax && tail && tail->tailroom() >= n) {
      std::memcpy(tail->append(n), cur->data(), n);
      ++s.m.c.collapsed;
    } else {
      rmem_add(s, kTruesize);
      s.rxq.push(std::move(cur));
    }
    s.rx_bytes += n;
  }
}

void drop_ooo(TcpSocket& s) {
  while (s.ooo) {
    PacketBuf* n = s.ooo->next;
    s.ooo->next = nullptr;
    rmem_sub(s, buffers_of(*s.ooo) * kTruesize);
    PacketPtr drop(s.ooo);
    s.ooo = n;
  }
  s.ooo_count = 0;
  s.sack_count = 0;
}

void sack_prune(TcpSocket& s) {
  uint8_t k = 0;
  for (uint8_t i = 0; i < s.sack_count; ++i) {
    TcpSackBlock b = s.sack_blocks[i];
    if (seq_le(b.right, s.rcv_nxt)) continue;
    if (seq_lt(b.left, s.rcv_nxt)) b.left = s.rcv_nxt;
    s.sack_blocks[k++] = b;
  }
  s.sack_count = k;
}

// RFC 2018 4: the first block reports the run holding the segment just received; the others
// repeat the most recent earlier blocks.
void sack_record(TcpSocket& s, uint32_t seq) {
  uint32_t left = 0, right = 0;
  bool in = false, found = false;
  for (PacketBuf* b = s.ooo; b; b = b->next) {
    const uint32_t bs = uint32_t(b->user), be = bs + uint32_t(b->user >> 32);
    if (in && seq_le(bs, right)) {
      right = seq_max(right, be);
    } else {
      if (in && seq_in(seq, left, right)) {
        found = true;
        break;
      }
      left = bs;
      right = be;
      in = true;
    }
  }
  if (!found && !(in && seq_in(seq, left, right))) return;
  TcpSackBlock nb{left, right};
  TcpSackBlock keep[kTcpMaxSackBlocks];
  uint8_t k = 0;
  keep[k++] = nb;
  for (uint8_t i = 0; i < s.sack_count && k < kTcpMaxSackBlocks; ++i) {
    const TcpSackBlock& o = s.sack_blocks[i];
    if (seq_le(nb.left, o.left) && seq_le(o.right, nb.right)) continue;  // merged into the new one
    if (seq_lt(o.left, nb.right) && seq_lt(nb.left, o.right)) continue;
    keep[k++] = o;
  }
  std::copy(keep, keep + k, s.sack_blocks);
  s.sack_count = k;
}

void set_dsack(TcpSocket& s, uint32_t left, uint32_t right) {
  if (!s.sack_ok || !seq_lt(left, right)) return;
  s.dsack_pending = true;
  s.dsack_block = TcpSackBlock{left, right};
}

void process_fin(TcpSocket& s) {
  // RFC 9293 3.10.7.4 eighth: the FIN is in order.
  s.rcv_nxt += 1;
  s.peer_fin = true;
  s.ack_now = true;
  switch (s.state) {
    case TcpState::kSynReceived:
    case TcpState::kEstablished: s.state = TcpState::kCloseWait; break;
    case TcpState::kFinWait1:
      // Our FIN not yet acknowledged (else we would be in FIN_WAIT_2): simultaneous close.
      s.state = TcpState::kClosing;
      break;
    case TcpState::kFinWait2: enter_time_wait(s); break;
    default: break;
  }
  notify(s);
}

// Segment text (RFC 9293 3.10.7.4 seventh) and FIN (eighth). `seq` is the first payload byte.
void receive_text(TcpSocket& s, TcpSegment& seg, uint32_t seq) {
  Tcp::Impl& m = s.m;
  uint32_t len = seg.len;
  bool fin = seg.h.has(kTcpFin);
  uint32_t skip = 0;
  if (len && seq_lt(seq, s.rcv_nxt)) {
    const uint32_t old = s.rcv_nxt - seq;
    if (old >= len) {
      // All old: RFC 2883 D-SACK reports the duplicate; ACK at once (RFC 5681 4.2).
      set_dsack(s, seq, seq + len);
      s.ack_now = true;
      len = 0;
      skip = seg.len;
      if (fin && seq + seg.len != s.rcv_nxt) fin = false;
      if (fin && seq + seg.len == s.rcv_nxt && s.peer_fin) fin = false;  // a FIN we already have
    } else {
      set_dsack(s, seq, s.rcv_nxt);
      skip = old;
      len -= old;
    }
    seq = s.rcv_nxt;
  } else if (!len && fin && seq_lt(seq, s.rcv_nxt)) {
    fin = false;  // an old FIN
    s.ack_now = true;
  }
  // Trim what lies beyond the window (RFC 9293 3.10.7.4: "tailor" the segment).
  const uint32_t right = seq_max(s.rcv_adv, s.rcv_nxt);
  if (len && seq_gt(seq + len, right)) {
    len = seq_ge(seq, right) ? 0 : right - seq;
    fin = false;
    s.ack_now = true;
  }
  if (s.orphan && s.shut_rd && (len || fin)) {
    // Data for a socket the application closed: nobody will read it (RFC 2525 2.17, Linux).
    if (len) {
      ++m.c.drop_after_close;
      abort(s, 0, true);
      return;
    }
  }
  if (len) {
    if (seg.len > s.rcv_mss) s.rcv_mss = uint16_t(std::min<uint32_t>(seg.len, 0xffff));
    const uint32_t bufs = buffers_of(*seg.p);
    const uint32_t charge = bufs * kTruesize;
    if (!m.mem_ok(charge)) {
      ++m.c.drop_memory;
      s.ack_now = true;
      return;
    }
    if (s.rmem + charge > uint32_t(s.rcvbuf) + kTruesize) {
      // Over the receive buffer: the out-of-order queue is expendable (the peer keeps that data
      // until it is ACKed), in-order data is not.
      if (seq == s.rcv_nxt && s.ooo) drop_ooo(s);
      if (s.rmem + charge > uint32_t(s.rcvbuf) + kTruesize) {
        ++m.c.drop_rcvbuf;
        s.ack_now = true;
        return;
      }
    }
    if (seq == s.rcv_nxt) {
      rmem_add(s, charge);
      queue_in_order(s, std::move(seg.p), skip, len);
      s.rcv_nxt += len;
      const bool had_ooo = s.ooo != nullptr;
      // Pull what the out-of-order queue now continues.
      while (s.ooo && seq_le(uint32_t(s.ooo->user), s.rcv_nxt)) {
        PacketBuf* b = s.ooo;
        s.ooo = b->next;
        b->next = nullptr;
        --s.ooo_count;
        const uint32_t bs = uint32_t(b->user), bl = uint32_t(b->user >> 32);
        PacketPtr bp(b);
        if (seq_gt(bs + bl, s.rcv_nxt)) {
          const uint32_t sk = s.rcv_nxt - bs;
          queue_in_order(s, std::move(bp), sk, bl - sk);
          s.rcv_nxt = bs + bl;
        } else {
          rmem_sub(s, buffers_of(*bp) * kTruesize);
        }
      }
      if (had_ooo) {
        s.ack_now = true;  // RFC 5681 4.2: a segment that fills a hole is ACKed at once
        sack_prune(s);
      }
      if (s.ooo_fin && s.ooo_fin_seq == s.rcv_nxt) {
        s.ooo_fin = false;
        fin = true;
        seq = s.rcv_nxt;
        len = 0;
      } else if (fin && seq + len != s.rcv_nxt) {
        fin = false;
      }
      schedule_ack(s, seg.len + (s.ts_ok ? 12u : 0u) >= s.adv_mss || seg.len >= s.rcv_mss);
      notify(s);
    } else {
      // Out of order: keep it sorted by sequence number (RFC 9293 3.10.7.4 seventh, RFC 5681 4.2:
      // ACK at once so the sender sees the duplicate).
      s.ack_now = true;
      // The queue holds at least what the receive buffer can (RFC 9293 3.8.6: what the window
      // offers must be kept, or the sender's recovery data is dropped and never SACKed); its
      // memory stays bounded by the receive buffer (the rmem check above).
      const uint32_t ooo_cap = std::max<uint32_t>(uint32_t(m.cfg.tcp_ooo_max_segments), uint32_t(s.rcvbuf) / kTruesize);
      if (s.ooo_count >= ooo_cap) {
        ++m.c.drop_ooo_limit;
        return;
      }
      // Out-of-order segments stay until their hole fills, and the packet buffers are shared by
      // every connection, the NIC's posted receive buffers and what is sent. With the pool low
      // they are refused (not SACKed, so the sender sends them again): a pool full of them would
      // leave no buffer for the retransmission that fills a hole, and every connection would
      // wait forever (as Linux prunes its out-of-order queue under memory pressure).
      const BufferPool& pool = m.stack.pool();
      if (pool.available() < std::max<size_t>(pool.capacity() / 8, 64)) {
        ++m.c.drop_ooo_pool_low;
        return;
      }
      PacketBuf** link = &s.ooo;
      while (*link && seq_lt(uint32_t((*link)->user), seq)) link = &(*link)->next;
      // Fully covered by one queued segment: a duplicate.
      for (PacketBuf* b = s.ooo; b; b = b->next) {
        const uint32_t bs = uint32_t(b->user), be = bs + uint32_t(b->user >> 32);
        if (seq_le(bs, seq) && seq_le(seq + len, be)) {
          set_dsack(s, seq, seq + len);
          return;
        }
      }
      rmem_add(s, charge);
      PacketPtr p = std::move(seg.p);
      if (skip) {
        // Only the first buffer can hold skipped bytes here (skip < its size in practice).
        p->pull(std::min<size_t>(skip, p->size()));
      }
      // Trim the tail to `len` across the chain.
      uint32_t left = len;
      for (PacketBuf* b = p.get(); b; b = b->chain) {
        if (b->size() >= left) {
          b->trim(left);
          if (b->chain) {
            const uint32_t extra = buffers_of(*b->chain);
            PacketPtr rest(b->chain);
            b->chain = nullptr;
            rmem_sub(s, extra * kTruesize);
          }
          break;
        }
        left -= uint32_t(b->size());
      }
      PacketBuf* nb = p.release();
      nb->user = uint64_t(seq) | uint64_t(len) << 32;
      nb->next = *link;
      *link = nb;
      ++s.ooo_count;
      if (s.sack_ok) sack_record(s, seq);
      if (fin) {
        s.ooo_fin = true;
        s.ooo_fin_seq = seq + len;
        fin = false;
      }
    }
  }
  if (fin) {
    if (seq + len == s.rcv_nxt || (len == 0 && seq == s.rcv_nxt)) {
      process_fin(s);
    } else if (seq_gt(seq, s.rcv_nxt)) {
      s.ooo_fin = true;
      s.ooo_fin_seq = seq + len;
      s.ack_now = true;
    }
  }
}

void enter_fast_recovery(TcpSocket& s) {
  Tcp::Impl& m = s.m;
  const Nanos now = s.now();
  ++m.c.fast_retransmits;
  s.recovery = TcpSocket::Recovery::kFast;
  s.recover = s.snd_max;  // RFC 6582 3.2 step 2 / RFC 6675 RecoveryPoint
  s.high_rxt = s.snd_una;
  s.rescue_rxt = s.snd_una - 1;  // RFC 6675 5 (C.1): "undefined", rule 4 allowed once
  s.rtt_timing = false;  // Karn
  const uint64_t flight = s.snd_max - s.snd_una;
  s.cc->on_loss(flight, now);
  if (s.sack_ok && s.sb) {
    // RFC 6675 5 (4.2): cwnd = ssthresh (done by on_loss); retransmit the first lost segment
    // now, then as the pipe allows (output()).
    s.lost_out = 1;
    retransmit_una(s);
    s.high_rxt = seq_max(s.high_rxt, s.snd_una + std::min<uint32_t>(s.mss, s.snd_max - s.snd_una));
    return;
  }
  // RFC 6582 3.2 step 2-3: retransmit, cwnd = ssthresh + 3*SMSS.
  retransmit_una(s);
  s.cc->set_cwnd(s.cc->ssthresh() + 3 * uint64_t(s.mss));
}

void exit_recovery(TcpSocket& s) {
  const Nanos now = s.now();
  if (s.recovery == TcpSocket::Recovery::kFast) {
    s.cc->on_recovery_end(now);
    if (!s.sack_ok) {
      // RFC 6582 3.2 step 3 (full ACK): cwnd = min(ssthresh, max(FlightSize, SMSS) + SMSS).
      const uint64_t flight = s.snd_max - s.snd_una;
      s.cc->set_cwnd(std::min<uint64_t>(s.cc->ssthresh(), std::max<uint64_t>(flight, s.mss) + s.mss));
    }
  }
  s.recovery = TcpSocket::Recovery::kNone;
  s.lost_out = 0;
}

// RFC 9293 3.10.7.4 fifth: the ACK field, after the acceptability checks. False if the
// connection ended.
bool process_ack(TcpSocket& s, TcpSegment& seg) {
  Tcp::Impl& m = s.m;
  const Nanos now = s.now();
  const uint32_t ack = seg.h.ack;
  const uint32_t seq = seg.h.seq;
  // Window update (RFC 9293 3.10.7.4: SND.WL1 < SEG.SEQ, or equal and SND.WL2 =< SEG.ACK).
  const uint32_t wnd = uint32_t(seg.h.window) << s.snd_wscale;
  bool window_changed = false;
  if (seq_lt(s.snd_wl1, seq) || (s.snd_wl1 == seq && seq_le(s.snd_wl2, ack))) {
    window_changed = s.snd_wnd != wnd;
    if (window_changed && wnd > s.snd_wnd) s.probes = 0;
    s.snd_wnd = wnd;
    s.snd_wl1 = seq;
    s.snd_wl2 = ack;
    s.max_sndwnd = std::max(s.max_sndwnd, wnd);
  }
  // RFC 2018 / RFC 6675: the scoreboard learns from every ACK with SACK blocks.
  uint32_t newly_sacked = 0;
  // RFC 2018 8: the receiver may discard data it SACKed (renege), so a sender that keeps SACK
  // information (here across an RTO too, RFC 6675 5.1) must notice: a cumulative ACK that ends
  // on an octet held as SACKed says the peer no longer holds it (Linux tcp_check_sack_reneging).
  // Forget every range; this ACK's blocks say what the peer holds now.
  if (s.sb && seq_gt(ack, s.snd_una) && seq_le(ack, s.snd_max) && s.sb->is_sacked(ack)) {
    ++m.c.sack_reneging;
    s.sb->reset(s.snd_una);
  }
  if (s.sack_ok && seg.opt.sack_count) {
    if (!s.sb) {
      s.sb = std::make_unique<SackScoreboard>(size_t(m.cfg.tcp_sack_max_ranges));
      s.sb->reset(s.snd_una);
    }
    SackBlock blocks[kTcpMaxSackBlocks];
    for (size_t i = 0; i < seg.opt.sack_count; ++i) blocks[i] = SackBlock{seg.opt.sack[i].left, seg.opt.sack[i].right};
    const auto upd = s.sb->on_ack(ack, blocks, seg.opt.sack_count, s.snd_max);
    newly_sacked = upd.newly_sacked;
    if (upd.dsack) ++m.c.dsacks_received;
  } else if (s.sb && seq_gt(ack, s.snd_una)) {
    s.sb->on_ack(ack, nullptr, 0, s.snd_max);
  }

  if (seq_gt(ack, s.snd_una)) {
    const uint32_t acked = ack - s.snd_una;
    const uint64_t flight_before = s.snd_max - s.snd_una;
    // Data bytes acknowledged leave the ring.
    const uint32_t ring_seq = s.data_end - s.ring.size();
    if (seq_gt(ack, ring_seq)) {
      const uint32_t n = std::min<uint32_t>(seq_min(ack, s.data_end) - ring_seq, s.ring.size());
      s.ring.consume(n);
    }
    // RFC 6298 5.x: a valid sample only from a segment never retransmitted (Karn).
    Nanos sample = 0;
    if (s.rtt_timing && seq_gt(ack, s.rtt_seq)) {
      sample = now - s.rtt_sent;
      s.rtt.sample(sample);
      s.rtt_timing = false;
    }
    s.rtt.reset_backoff();
    s.retries = 0;
    s.probes = 0;
    s.last_progress = now;
    s.snd_una = ack;
    if (seq_lt(s.snd_nxt, s.snd_una)) s.snd_nxt = s.snd_una;
    if (seq_lt(s.high_rxt, s.snd_una)) s.high_rxt = s.snd_una;
    s.dupacks = 0;
    switch (s.recovery) {
      case TcpSocket::Recovery::kFast:
        if (seq_ge(ack, s.recover)) {
          exit_recovery(s);
        } else if (!s.sack_ok || !s.sb) {
          // RFC 6582 3.2 step 5: partial ACK: retransmit the next hole, deflate the window by
          // what was acknowledged, add back one SMSS, restart the timer.
          retransmit_una(s);
          uint64_t cw = s.cc->cwnd();
          cw = cw > acked ? cw - acked : 0;
          if (acked >= s.mss) cw += s.mss;
          s.cc->set_cwnd(std::max<uint64_t>(cw, s.mss));
        }
        break;
      case TcpSocket::Recovery::kRto:
        if (seq_ge(ack, s.recover)) s.recovery = TcpSocket::Recovery::kNone;
        s.cc->on_ack(acked, flight_before, sample, now, false);
        break;
      case TcpSocket::Recovery::kNone: {
        // RFC 7661 spirit: growth only while the window, not the application, limits us.
        const bool app_limited = flight_before + s.mss < s.cc->cwnd() && s.data_end == s.snd_max;
        s.cc->on_ack(acked, flight_before, sample, now, app_limited);
        break;
      }
    }
    // Our FIN acknowledged?
    const bool fin_acked = s.fin_sent && seq_gt(ack, s.data_end);
    if (fin_acked) {
      switch (s.state) {
        case TcpState::kFinWait1:
          s.state = TcpState::kFinWait2;
          s.tw_since = now;
          if (s.orphan) {
            const int64_t l2 = s.linger2_s > 0 ? int64_t(s.linger2_s) * 1000 : s.m.cfg.tcp_fin_timeout_ms;
            s.aux_deadline = now + l2 * kMilli;
          }
          notify(s);
          break;
        case TcpState::kClosing:
          enter_time_wait(s);
          break;
        case TcpState::kLastAck:
          finish(s);
          return false;
        default: break;
      }
    }
    // RFC 6298 5.2 / 5.3: stop the timer when all is acknowledged, else restart it.
    if (s.snd_una == s.snd_max) {
      s.rtx_deadline = kNever;
    } else {
      s.rtx_deadline = now + s.rtt.rto();
    }
    s.persist = false;
    if (s.tx_blocked && s.writable()) {
      s.tx_blocked = false;
      notify(s);
    }
  } else if (ack == s.snd_una && s.snd_una != s.snd_max) {
    // RFC 5681 2 "duplicate acknowledgment" (RFC 6675 2: or one that SACKs new data).
    const bool dup = seg.len == 0 && !seg.h.has(kTcpSyn | kTcpFin) && (!window_changed || newly_sacked > 0);
    if (dup) {
      ++s.dupacks;
      if (s.recovery == TcpSocket::Recovery::kFast && (!s.sack_ok || !s.sb)) {
        // RFC 6582 3.2 step 4: inflate for each further duplicate.
        s.cc->set_cwnd(s.cc->cwnd() + s.mss);
      }
    }
  }
  // RFC 6675 5: enter loss recovery on DupThresh duplicates or when IsLost(HighACK + 1); RFC
  // 6582 4.1: not for data sent before the last recovery began.
  if (s.recovery == TcpSocket::Recovery::kNone && s.snd_una != s.snd_max && seq_gt(s.snd_una, s.recover)) {
    const bool lost = s.sb && s.sb->ranges() && s.sb->is_lost(s.snd_una, s.mss);
    if (s.dupacks >= 3 || lost) enter_fast_recovery(s);
  } else if (s.recovery == TcpSocket::Recovery::kNone && s.snd_una != s.snd_max && s.dupacks == 3 &&
             !seq_gt(s.snd_una, s.recover)) {
    // An old episode's duplicates: no new reduction (RFC 6582 4.1), but resend the hole.
    if (s.snd_una == s.recover || s.recover == s.iss) enter_fast_recovery(s);
  }
  // A lost retransmission (Linux tcp_mark_lost_retrans, the idea of RACK, RFC 8985): the peer
  // SACKed data sent more than DupThresh-1 segments after the retransmission at snd_una went
  // out, yet snd_una did not move. RFC 6675 rule 1 never resends below HighRxt, so lower
  // HighRxt to snd_una: every unSACKed octet is lost again and resent as the pipe allows
  // (instead of waiting for the RTO and resending all of it).
  if (s.recovery == TcpSocket::Recovery::kFast && s.sack_ok && s.sb && seq_gt(s.high_rxt, s.snd_una) &&
      s.rxt_una_seq == s.snd_una && seq_gt(s.sb->highest_sacked(), s.rxt_una_mark + 2u * s.mss)) {
    ++m.c.lost_retransmits;
    s.high_rxt = s.snd_una;
    s.rxt_una_seq = s.snd_una - 1;
  }
  // Nothing SACKed outside recovery: give the scoreboard's memory back.
  if (s.sb && s.sb->ranges() == 0 && s.recovery == TcpSocket::Recovery::kNone) s.sb.reset();
  return true;
}

void syn_sent(TcpSocket& s, TcpSegment& seg) {
  Tcp::Impl& m = s.m;
  const TcpRepr& h = seg.h;
  // RFC 9293 3.10.7.3 first: the ACK must acknowledge our SYN.
  if (h.has(kTcpAck) && (seq_le(h.ack, s.iss) || seq_gt(h.ack, s.snd_max))) {
    ++m.c.drop_syn_sent_bad_ack;
    if (!h.has(kTcpRst)) m.send_raw(s.local_addr, s.remote_addr, s.local_port, s.remote_port, h.ack, 0, kTcpRst, 0, nullptr, s.ttl, s.tos);
    return;
  }
  // second: a RST with an acceptable ACK refuses the connection (RFC 5961 3.2 for SYN_SENT).
  if (h.has(kTcpRst)) {
    if (h.has(kTcpAck)) {
      ++m.c.resets_received;
      abort(s, ECONNREFUSED, false);
    } else {
      ++m.c.drop_rst_out_of_window;
    }
    return;
  }
  if (!h.has(kTcpSyn)) {
    ++m.c.drop_no_ack;
    return;
  }
  // fourth: the SYN. Negotiate the options (RFC 7323 2.2, 3.2; RFC 2018 2).
  s.irs = h.seq;
  s.rcv_nxt = h.seq + 1;
  s.rcv_adv = s.rcv_nxt;
  s.last_ack_sent = s.rcv_nxt;
  const TcpOptions& o = seg.opt;
  s.ws_ok = o.has_wscale;
  s.snd_wscale = s.ws_ok ? std::min<uint8_t>(o.wscale, kTcpMaxWscale) : 0;
  if (!s.ws_ok) s.rcv_wscale = 0;
  s.ts_ok = o.has_timestamps;
  if (s.ts_ok) {
    s.ts_recent = o.tsval;
    s.ts_recent_time = s.now();
  }
  s.sack_ok = o.sack_permitted;
  s.peer_mss = o.has_mss ? o.mss : (s.remote_addr.is_v4() ? kTcpDefaultMss : 1220);
  set_mss(s, 0);
  s.snd_wnd = h.window;  // RFC 7323 2.2: never scaled in a SYN
  s.max_sndwnd = s.snd_wnd;
  s.snd_wl1 = h.seq;
  if (h.has(kTcpAck)) {
    s.snd_wl2 = h.ack;
    if (s.rtt_timing && seq_gt(h.ack, s.rtt_seq)) {
      s.rtt.sample(s.now() - s.rtt_sent);
      s.rtt_timing = false;
    }
    s.rtt.reset_backoff();
    s.retries = 0;
    s.snd_una = h.ack;
    s.rtx_deadline = kNever;
    on_established(s);
    if (s.dead || s.state == TcpState::kClosed) return;
    s.ack_now = true;
    // Data or a FIN riding on the SYN-ACK.
    if (seg.len || h.has(kTcpFin)) receive_text(s, seg, h.seq + 1);
    if (s.state == TcpState::kClosed) return;
    send_ack(s);
    output(s);
    return;
  }
  // Simultaneous open (RFC 9293 3.10.7.3, figure 8): SYN_RECEIVED, SYN-ACK with our ISS.
  s.state = TcpState::kSynReceived;
  s.retries = 0;
  send_syn(s);
  arm_timer(s);
}

}  // namespace

// ---------------------------------------------------------------------------------------

void init_child(TcpSocket& c, TcpSocket& l, const TcpSegment& syn, uint32_t iss, uint16_t mss) {
  Tcp::Impl& m = c.m;
  const Nanos now = c.now();
  // Options the listener carries over (Linux copies the socket).
  c.v6only = l.v6only;
  c.reuse_addr = l.reuse_addr;
  c.reuse_port = l.reuse_port;
  c.keepalive = l.keepalive;
  c.nodelay = l.nodelay;
  c.cork = l.cork;
  c.linger_on = l.linger_on;
  c.linger_s = l.linger_s;
  c.keep_idle_s = l.keep_idle_s;
  c.keep_intvl_s = l.keep_intvl_s;
  c.keep_cnt = l.keep_cnt;
  c.linger2_s = l.linger2_s;
  c.user_timeout_ms = l.user_timeout_ms;
  c.window_clamp = l.window_clamp;
  c.user_mss = l.user_mss;
  c.ttl = l.ttl;
  c.tos = l.tos;
  c.rcvbuf = l.rcvbuf;
  c.sndbuf = l.sndbuf;
  c.quickack = l.quickack;
  c.cc = make_congestion_control(l.cc ? std::string_view(l.cc->name()) : std::string_view(m.cfg.tcp_congestion));
  if (!c.cc) c.cc = make_congestion_control("cubic");

  c.state = TcpState::kSynReceived;
  c.bind_port_locked = true;
  c.bind_addr_locked = true;
  c.irs = syn.h.seq;
  c.rcv_nxt = syn.h.seq + 1;
  c.rcv_adv = c.rcv_nxt;
  c.last_ack_sent = c.rcv_nxt;
  c.iss = iss;
  c.snd_una = iss;
  c.snd_nxt = iss + 1;
  c.snd_max = iss + 1;
  c.data_end = iss + 1;
  c.recover = iss;
  c.high_rxt = iss;
  c.snd_sml = iss;
  c.snd_wl1 = syn.h.seq;
  c.snd_wl2 = iss;
  c.snd_wnd = syn.h.window;  // RFC 7323 2.2: unscaled in a SYN
  c.max_sndwnd = c.snd_wnd;
  c.ts_offset = m.ts_off(c.local_addr, c.local_port, c.remote_addr, c.remote_port);
  const TcpOptions& o = syn.opt;
  c.ws_ok = o.has_wscale;
  c.snd_wscale = c.ws_ok ? std::min<uint8_t>(o.wscale, kTcpMaxWscale) : 0;
  c.rcv_wscale = c.ws_ok ? choose_wscale(c) : 0;
  c.ts_ok = o.has_timestamps;
  if (c.ts_ok) {
    c.ts_recent = o.tsval;
    c.ts_recent_time = now;
  }
  c.sack_ok = o.sack_permitted;
  c.peer_mss = mss ? mss : o.has_mss ? o.mss : (c.remote_addr.is_v4() ? kTcpDefaultMss : 1220);
  c.adv_mss = mss_for_route(c);
  set_mss(c, 0);
  c.last_rx = now;
  c.last_progress = now;

  // Into the listener's SYN queue.
  c.parent = &l;
  TcpListenQueue& q = *l.listen_q;
  c.q_next = q.syn_head;
  if (q.syn_head) q.syn_head->q_prev = &c;
  q.syn_head = &c;
  ++q.syn_count;
  c.in_syn_queue = true;
  m.bind_port(c);
  m.hash_conn(c);
  ++m.c.passive_opens;
  c.rtt_timing = true;
  c.rtt_seq = iss;
  c.rtt_sent = now;
}

void start_connect(TcpSocket& s) {
  Tcp::Impl& m = s.m;
  const Nanos now = s.now();
  s.iss = m.isn(s.local_addr, s.local_port, s.remote_addr, s.remote_port);
  s.snd_una = s.iss;
  s.snd_nxt = s.iss;
  s.snd_max = s.iss;
  s.data_end = s.iss + 1;
  s.recover = s.iss;
  s.high_rxt = s.iss;
  s.snd_sml = s.iss;
  s.ts_offset = m.ts_off(s.local_addr, s.local_port, s.remote_addr, s.remote_port);
  s.adv_mss = mss_for_route(s);
  s.rcv_wscale = choose_wscale(s);
  s.peer_mss = s.remote_addr.is_v4() ? kTcpDefaultMss : 1220;
  set_mss(s, 0);
  if (!s.cc) s.cc = make_congestion_control(m.cfg.tcp_congestion);
  if (!s.cc) s.cc = make_congestion_control("cubic");
  s.state = TcpState::kSynSent;
  s.retries = 0;
  s.last_rx = now;
  s.last_progress = now;
  send_syn(s);
  arm_timer(s);
}

void on_established(TcpSocket& s) {
  Tcp::Impl& m = s.m;
  const Nanos now = s.now();
  s.state = TcpState::kEstablished;
  s.was_connected = true;
  s.retries = 0;
  s.last_rx = now;
  s.last_progress = now;
  s.last_tx_data = now;
  ++m.c.established;
  s.cc->init(s.mss, now);
  s.rtx_deadline = kNever;
  if (s.keepalive) {
    const int64_t idle = s.keep_idle_s ? s.keep_idle_s : m.cfg.tcp_keepalive_time_s;
    s.aux_deadline = now + idle * kSecond;
  }
  arm_timer(s);
  if (TcpSocket* l = s.parent) {
    // From the SYN queue to the accept queue.
    TcpListenQueue& q = *l->listen_q;
    if (!s.in_accept_queue) {
      if (s.in_syn_queue) {
        if (s.q_prev) s.q_prev->q_next = s.q_next; else q.syn_head = s.q_next;
        if (s.q_next) s.q_next->q_prev = s.q_prev;
        --q.syn_count;
        s.in_syn_queue = false;
      }
      s.q_next = s.q_prev = nullptr;
      s.q_prev = q.accept_tail;
      if (q.accept_tail) q.accept_tail->q_next = &s; else q.accept_head = &s;
      q.accept_tail = &s;
      ++q.accept_count;
      s.in_accept_queue = true;
    }
    notify(*l);
  } else {
    notify(s);
  }
}

void input(TcpSocket& s, TcpSegment& seg) {
  Tcp::Impl& m = s.m;
  TcpCounters& c = m.c;
  const TcpRepr& h = seg.h;
  const Nanos now = s.now();
  switch (s.state) {
    case TcpState::kClosed:
      ++c.drop_closed;
      m.send_rst_for(seg, *seg.rx);
      return;
    case TcpState::kListen: return;  // not reached: listeners are not in the connection table
    case TcpState::kSynSent: syn_sent(s, seg); return;
    default: break;
  }
  s.ack_now = false;
  // RFC 9293 3.10.7.4 / RFC 7323 5.3 R1: PAWS, before anything else.
  if (s.ts_ok && seg.opt.has_timestamps && !h.has(kTcpRst) && seq_lt(seg.opt.tsval, s.ts_recent) &&
      now - s.ts_recent_time <= kPawsIdle) {
    ++c.drop_paws;
    send_ack(s);
    return;
  }
  // SYN_RECEIVED: the peer's SYN again (our SYN-ACK was lost): answer it again.
  if (s.state == TcpState::kSynReceived && h.has(kTcpSyn) && !h.has(kTcpAck) && h.seq == s.irs) {
    send_syn(s);
    return;
  }
  // first: is the sequence number acceptable (RFC 9293 3.10.7.4, the four cases)?
  const uint32_t rwnd = seq_gt(s.rcv_adv, s.rcv_nxt) ? s.rcv_adv - s.rcv_nxt : 0;
  const uint32_t seg_len = seg.len + (h.has(kTcpSyn) ? 1 : 0) + (h.has(kTcpFin) ? 1 : 0);
  bool acceptable;
  if (seg_len == 0) {
    // Zero-length: seq within the window, its right edge included (as Linux's tcp_sequence,
    // so ACKs sent at SND.NXT = the window's edge are not lost).
    acceptable = rwnd == 0 ? h.seq == s.rcv_nxt : seq_le(s.rcv_nxt, h.seq) && seq_le(h.seq, s.rcv_nxt + rwnd);
  } else if (rwnd == 0) {
    acceptable = false;
  } else {
    acceptable = seq_in(h.seq, s.rcv_nxt, s.rcv_nxt + rwnd) || seq_in(h.seq + seg_len - 1, s.rcv_nxt, s.rcv_nxt + rwnd);
  }
  // A segment with data while the window is zero still carries a valid ACK and FIN-less old
  // data: RFC 9293 lets an unacceptable segment's ACK go unprocessed, we follow it.
  if (!acceptable && seg_len > 0 && rwnd == 0 && h.seq == s.rcv_nxt) acceptable = false;
  if (!acceptable && seg_len > 0 && seq_lt(h.seq, s.rcv_nxt) && seq_gt(h.seq + seg_len, s.rcv_nxt)) acceptable = true;
  if (!acceptable) {
    if (h.has(kTcpRst)) {
      ++c.drop_rst_out_of_window;  // RFC 5961 3.2: outside the window, silently dropped
      return;
    }
    if (h.has(kTcpSyn) && s.synchronized()) {
      ++c.drop_syn_challenged;  // RFC 5961 4.2: any SYN in a synchronized state
      challenge_ack(s);
      return;
    }
    ++c.drop_out_of_window;
    // An old duplicate (retransmitted data we have): tell the sender with a D-SACK.
    if (seg.len && seq_le(h.seq + seg.len, s.rcv_nxt)) {
      set_dsack(s, h.seq, h.seq + seg.len);
    }
    send_ack(s);
    return;
  }
  s.last_rx = now;
  // second: RST (RFC 5961 3.2): only an exact match resets; in-window ones are challenged.
  if (h.has(kTcpRst)) {
    if (h.seq != s.rcv_nxt) {
      ++c.drop_rst_challenged;
      challenge_ack(s);
      return;
    }
    ++c.resets_received;
    switch (s.state) {
      case TcpState::kSynReceived:
        if (s.parent) {
          // Passive open: back to LISTEN, which for us means the embryo goes away.
          finish(s);
        } else {
          abort(s, ECONNREFUSED, false);
        }
        return;
      case TcpState::kClosing:
      case TcpState::kLastAck:
      case TcpState::kTimeWait: finish(s); return;
      default: abort(s, ECONNRESET, false); return;
    }
  }
  // fourth: SYN in a synchronized state (RFC 5961 4.2; RFC 9293 3.10.7.4).
  if (h.has(kTcpSyn)) {
    ++c.drop_syn_challenged;
    challenge_ack(s);
    return;
  }
  // fifth: the ACK field.
  if (!h.has(kTcpAck)) {
    ++c.drop_no_ack;
    return;
  }
  // RFC 5961 5.2: acceptable if SND.UNA - MAX.SND.WND =< SEG.ACK =< SND.NXT.
  if (seq_gt(h.ack, s.snd_max)) {
    ++c.drop_future_ack;
    challenge_ack(s);
    return;
  }
  const uint32_t max_wnd = std::max<uint32_t>(s.max_sndwnd, 65535);
  if (seq_lt(h.ack, s.snd_una - max_wnd)) {
    ++c.drop_old_ack;
    challenge_ack(s);
    return;
  }
  // RFC 7323 4.3: remember the timestamp to echo (Linux's rule: SEG.SEQ =< Last.ACK.sent).
  if (s.ts_ok && seg.opt.has_timestamps && seq_le(h.seq, s.last_ack_sent) && seq_ge(seg.opt.tsval, s.ts_recent)) {
    s.ts_recent = seg.opt.tsval;
    s.ts_recent_time = now;
  }
  if (s.probes && s.state != TcpState::kTimeWait) s.probes = 0;
  if (s.state == TcpState::kSynReceived) {
    if (!seq_gt(h.ack, s.snd_una) || seq_gt(h.ack, s.snd_max)) {
      // RFC 9293 3.10.7.4 fifth, SYN_RECEIVED: not an ACK of our SYN: <SEQ=SEG.ACK><CTL=RST>.
      ++c.drop_listen_bad_segment;
      m.send_raw(s.local_addr, s.remote_addr, s.local_port, s.remote_port, h.ack, 0, kTcpRst, 0, nullptr, s.ttl, s.tos);
      return;
    }
    if (s.parent && s.parent->listen_q->accept_count > uint32_t(s.parent->listen_q->backlog)) {
      // Linux (tcp_abort_on_overflow = 0): ignore the ACK; the SYN-ACK timer will try again.
      ++c.drop_listen_overflow;
      return;
    }
    if (s.rtt_timing && seq_gt(h.ack, s.rtt_seq)) {
      s.rtt.sample(now - s.rtt_sent);
      s.rtt_timing = false;
    }
    s.rtt.reset_backoff();
    s.snd_una = h.ack;
    s.snd_wnd = uint32_t(h.window) << s.snd_wscale;
    s.max_sndwnd = std::max(s.max_sndwnd, s.snd_wnd);
    s.snd_wl1 = h.seq;
    s.snd_wl2 = h.ack;
    s.rtx_deadline = kNever;
    const bool fin_queued = s.shut_wr;
    on_established(s);
    if (s.dead) return;
    if (fin_queued) s.state = TcpState::kFinWait1;  // close() came during the handshake
  } else if (s.state == TcpState::kTimeWait) {
    // RFC 9293 3.10.7.4: in TIME_WAIT only a retransmitted FIN matters: ACK it, restart 2MSL.
    if (h.has(kTcpFin)) {
      s.aux_deadline = now + m.cfg.tcp_time_wait_ms * kMilli;
      arm_timer(s);
      send_ack(s);
    } else {
      ++c.drop_timewait;
    }
    return;
  } else {
    if (!process_ack(s, seg)) return;
    if (s.dead || s.state == TcpState::kClosed) return;
  }
  // sixth: URG is ignored (urgent data is ordinary data here; see tcp.h).
  // seventh and eighth: text and FIN.
  switch (s.state) {
    case TcpState::kEstablished:
    case TcpState::kFinWait1:
    case TcpState::kFinWait2:
    case TcpState::kSynReceived:
      if (seg.len || h.has(kTcpFin)) receive_text(s, seg, h.seq);
      break;
    default:
      // CLOSE_WAIT, CLOSING, LAST_ACK: the peer already sent its FIN; a retransmission of it
      // is acknowledged.
      if (h.has(kTcpFin) || seg.len) s.ack_now = true;
      break;
  }
  if (s.dead || s.state == TcpState::kClosed) return;
  if (s.ack_now || s.dsack_pending) {
    s.ack_now = false;
    output(s, true);
  } else {
    output(s);
  }
  arm_timer(s);
}

}  // namespace tcb
}  // namespace shunt
