// One connection: sending (Nagle, cork, sender and receiver silly-window avoidance),
// retransmission and loss recovery (RFC 6298, RFC 5681, RFC 6582, RFC 6675), the timers
// (retransmission, persist, keepalive, delayed ACK, FIN_WAIT_2, TIME_WAIT) and endings.
#include <algorithm>
#include <cerrno>
#include <cstring>

#include "stack/net/stack.h"
#include "stack/net/tcp/tcb.h"

namespace shunt {
namespace tcb {

namespace {

constexpr int kMaxRetries = 15;        // Linux tcp_retries2
constexpr int kMaxSynAckRetries = 5;   // Linux tcp_synack_retries
constexpr Nanos kPersistMin = 200 * kMilli;
constexpr Nanos kPersistMax = 120 * kSecond;
// The payload one PacketBuf can carry after the headroom and the largest TCP header.
constexpr uint32_t kMaxSegPayload = PacketBuf::kCapacity - PacketBuf::kDefaultHeadroom - kTcpMaxHeaderLen;

size_t sack_option_bytes(const TcpSocket& s) {
  if (!s.sack_ok) return 0;
  size_t n = s.sack_count + (s.dsack_pending ? 1 : 0);
  const size_t max = s.ts_ok ? 3 : 4;
  if (n > max) n = max;
  return n ? 4 + 8 * n : 0;
}

// Builds and sends one segment: [seq, seq+len) from the ring, with `flags` (ACK is added once
// synchronized). Returns false if no buffer was free.
bool send_segment(TcpSocket& s, uint32_t seq, uint32_t len, uint8_t flags) {
  Tcp::Impl& m = s.m;
  PacketPtr p = m.stack.alloc_tx();
  if (!p) {
    ++m.c.drop_no_buffer;
    return false;
  }
  TcpTxOptions o;
  TcpSackBlock blocks[kTcpMaxSackBlocks];
  const bool syn = flags & kTcpSyn;
  if (syn) {
    o.mss = true;
    o.mss_value = s.adv_mss;
    if (s.state == TcpState::kSynSent) {
      o.sack_permitted = true;
      o.timestamps = true;
      o.wscale = true;
      o.wscale_value = s.rcv_wscale;
    } else {
      o.sack_permitted = s.sack_ok;
      o.timestamps = s.ts_ok;
      o.wscale = s.ws_ok;
      o.wscale_value = s.rcv_wscale;
    }
  } else {
    o.timestamps = s.ts_ok;
    if (s.sack_ok && (s.sack_count || s.dsack_pending)) {
      const size_t max = s.ts_ok ? 3 : 4;
      size_t n = 0;
      if (s.dsack_pending) blocks[n++] = s.dsack_block;  // RFC 2883 4: first
      for (uint8_t i = 0; i < s.sack_count && n < max; ++i) blocks[n++] = s.sack_blocks[i];
      o.sack = blocks;
      o.sack_count = uint8_t(n);
      s.dsack_pending = false;
    }
  }
  if (o.timestamps) {
    o.tsval = s.ts_now();
    o.tsecr = s.state == TcpState::kSynSent ? 0 : s.ts_recent;
  }
  const size_t olen = o.size();
  uint8_t* h = p->append(kTcpHeaderLen + olen + len);
  if (!h) {
    ++m.c.drop_no_buffer;
    return false;
  }
  if (!(flags & kTcpRst) && s.state != TcpState::kSynSent) flags |= kTcpAck;
  if (len && seq + len == s.data_end) flags |= kTcpPsh;
  uint16_t window;
  if (flags & kTcpRst) {
    window = 0;
  } else if (syn) {
    window = uint16_t(std::min<uint32_t>(s.window_max(), 0xffff));  // RFC 7323 2.2: unscaled
    s.rcv_adv = s.rcv_nxt + window;
  } else {
    window = window_to_advertise(s);
  }
  const uint32_t ack = (flags & kTcpAck) ? s.rcv_nxt : 0;
  TcpRepr::emit(h, s.local_port, s.remote_port, seq, ack, flags, window, olen);
  o.emit(h + kTcpHeaderLen);
  if (len) {
    const uint32_t ring_seq = s.data_end - s.ring.size();
    s.ring.copy_out(seq - ring_seq, h + kTcpHeaderLen + olen, len);
  }
  if (flags & kTcpAck) {
    s.last_ack_sent = s.rcv_nxt;
    s.acks_owed = 0;
    s.delack_timer.cancel();
  }
  if (flags & kTcpRst) ++m.c.resets_sent;
  m.ip_output(std::move(p), s.local_addr, s.remote_addr, s.ttl, s.tos);
  return true;
}

// Sends [seq, seq+len) of data (or the FIN at data_end) at `seq`, counting retransmissions.
bool send_data(TcpSocket& s, uint32_t seq, uint32_t len, bool retransmission) {
  uint8_t flags = 0;
  if (s.fin_sent || s.shut_wr) {
    if (s.shut_wr && seq + len == s.data_end &&
        (s.state == TcpState::kFinWait1 || s.state == TcpState::kLastAck || s.state == TcpState::kClosing)) {
      flags |= kTcpFin;
    }
  }
  if (!send_segment(s, seq, len, flags)) return false;
  const Nanos now = s.now();
  if (retransmission) {
    if (seq == s.snd_una) {
      s.rxt_una_seq = seq;
      s.rxt_una_mark = s.snd_max;
    }
    ++s.m.c.retransmits;
    ++s.total_retrans;
    s.rtt_timing = false;  // Karn: no sample while retransmissions are in flight
  } else if (!s.rtt_timing && len) {
    s.rtt_timing = true;
    s.rtt_seq = seq;
    s.rtt_sent = now;
  }
  // Linux (tcp_event_data_sent, tcp_pingpong_thresh 1): new data sent within the delayed-ACK
  // timeout of receiving data makes the connection interactive, which ends TCP_QUICKACK; the
  // application sets it again if it wants it (tcp(7): "not permanent").
  if (!retransmission && len && s.quickack && now - s.last_rx_data < s.m.cfg.tcp_delack_ms * kMilli) {
    s.quickack = false;
  }
  if (len) s.last_tx_data = now;
  const uint32_t end = seq + len + ((flags & kTcpFin) ? 1 : 0);
  if (flags & kTcpFin) s.fin_sent = true;
  if (seq_gt(end, s.snd_max)) s.snd_max = end;
  if (s.rtx_deadline == kNever || s.persist) {
    s.persist = false;
    s.rtx_deadline = now + s.rtt.rto();
  }
  return true;
}

// The end of the SACKed range holding `seq`, or `seq` if it is not SACKed.
uint32_t skip_sacked(const TcpSocket& s, uint32_t seq) {
  if (!s.sb) return seq;
  for (size_t i = 0; i < s.sb->ranges(); ++i) {
    const SackBlock r = s.sb->range(i);
    if (seq_le(r.start, seq) && seq_lt(seq, r.end)) return r.end;
  }
  return seq;
}

// The payload room of a segment carrying this connection's usual options.
uint32_t seg_mss(const TcpSocket& s) {
  uint32_t mss = s.mss;
  const size_t sack = sack_option_bytes(s);
  if (sack && mss > sack + 64) mss -= uint32_t(sack);
  return mss;
}

void sack_recovery_send(TcpSocket& s) {
  // RFC 6675 5 (C): while cwnd - pipe >= 1 SMSS, send NextSeg().
  const uint32_t mss = seg_mss(s);
  for (int guard = 0; guard < 1024; ++guard) {
    const uint64_t pipe = s.sb->pipe(s.snd_una, s.snd_max, s.high_rxt, s.mss);
    if (s.cc->cwnd() < pipe + mss) break;
    uint32_t seq = 0, len = 0;
    if (s.sb->next_retransmit(s.snd_una, s.snd_max, s.high_rxt, mss, false, seq, len)) {  // rule 1
      if (seq_ge(seq + len, s.data_end) && s.fin_sent) len = s.data_end - seq;
      if (!send_data(s, seq, len, true)) return;
      s.high_rxt = seq + std::max<uint32_t>(len, 1);
      ++s.lost_out;
      continue;
    }
    // Rule 2: new data, if the peer's window allows.
    const uint32_t unsent = seq_gt(s.data_end, s.snd_nxt) ? s.data_end - s.snd_nxt : 0;
    const uint32_t wnd_end = s.snd_una + s.snd_wnd;
    if (unsent && seq_lt(s.snd_nxt, wnd_end)) {
      const uint32_t n = std::min({mss, unsent, wnd_end - s.snd_nxt});
      if (!send_data(s, s.snd_nxt, n, false)) return;
      if (n < mss) s.snd_sml = s.snd_nxt + n;
      s.snd_nxt += n;
      if (s.snd_nxt == s.data_end && s.fin_sent) s.snd_nxt += 1;
      continue;
    }
    // Rule 3: an unSACKed segment with SACKed data above it.
    if (s.sb->next_retransmit(s.snd_una, s.snd_max, s.high_rxt, mss, true, seq, len)) {
      if (!send_data(s, seq, len, true)) return;
      s.high_rxt = seq + std::max<uint32_t>(len, 1);
      continue;
    }
    // Rule 4 (rescue retransmission), once per recovery (5 (C.1): HighACK > RescueRxt): the
    // segment holding the highest outstanding unSACKed octet, above the highest SACK block, so
    // a lost tail is repaired without waiting for the RTO. 5 (C.5): RescueRxt = RecoveryPoint,
    // HighRxt unchanged.
    if (seq_gt(s.snd_una, s.rescue_rxt)) {
      const uint32_t top = seq_min(s.snd_max, s.data_end);
      const uint32_t floor = seq_max(seq_max(s.snd_una, s.high_rxt), s.sb->highest_sacked());
      if (seq_lt(floor, top)) {
        const uint32_t n = std::min(mss, top - floor);
        if (!send_data(s, top - n, n, true)) return;
        s.rescue_rxt = s.recover;
        continue;
      }
    }
    break;
  }
}

}  // namespace

uint16_t mss_for_route(const TcpSocket& s) {
  uint32_t mtu = s.m.stack.mtu();
  if (s.pmtu && s.pmtu < mtu) mtu = s.pmtu;
  // RFC 9293 3.7.1 / RFC 8201: IPv4 MTU - 40, IPv6 MTU - 60.
  const uint32_t hdr = s.remote_addr.is_v4() ? 40 : 60;
  uint32_t mss = mtu > hdr + 64 ? mtu - hdr : 64;
  return uint16_t(std::min(mss, kMaxSegPayload));
}

void set_mss(TcpSocket& s, uint16_t) {
  if (!s.adv_mss) s.adv_mss = mss_for_route(s);
  uint32_t mss = std::min<uint32_t>(s.peer_mss ? s.peer_mss : kTcpDefaultMss, mss_for_route(s));
  if (s.user_mss) mss = std::min<uint32_t>(mss, s.user_mss);
  // RFC 9293 3.7.1: the options every segment carries come out of the MSS.
  if (s.ts_ok) mss -= 12;
  mss = std::clamp<uint32_t>(mss, 48, kMaxSegPayload);
  s.mss = uint16_t(mss);
  if (s.cc) s.cc->set_mss(mss);
}

uint16_t window_to_advertise(TcpSocket& s) {
  const uint32_t wmax = s.window_max();
  uint32_t space = wmax > s.rx_bytes ? wmax - s.rx_bytes : 0;
  // Memory guard: a queue of many small buffers may hold more memory than its bytes say.
  if (s.rmem > uint32_t(s.rcvbuf)) space = 0;
  const uint32_t cur = seq_gt(s.rcv_adv, s.rcv_nxt) ? s.rcv_adv - s.rcv_nxt : 0;
  uint32_t win = cur;
  // RFC 1122 4.2.3.3 / RFC 9293 3.8.6.2.2: move the right edge only by at least
  // min(RCV.BUFF/2, MSS); never shrink the window already offered.
  const uint32_t step = std::min<uint32_t>(wmax / 2, s.adv_mss ? s.adv_mss : s.mss);
  if (space > cur && (space - cur >= step || space == wmax)) win = space;
  const uint8_t ws = s.ws_ok ? s.rcv_wscale : 0;
  uint32_t wire = (win + (1u << ws) - 1) >> ws;
  if (wire > 0xffff) wire = 0xffff;
  const uint32_t offered = wire << ws;
  if (seq_gt(s.rcv_nxt + offered, s.rcv_adv) || s.rcv_adv == 0) s.rcv_adv = s.rcv_nxt + offered;
  return uint16_t(wire);
}

void window_update_after_read(TcpSocket& s) {
  if (s.state != TcpState::kEstablished && s.state != TcpState::kFinWait1 && s.state != TcpState::kFinWait2) return;
  const uint32_t wmax = s.window_max();
  const uint32_t space = wmax > s.rx_bytes ? wmax - s.rx_bytes : 0;
  const uint32_t cur = seq_gt(s.rcv_adv, s.rcv_nxt) ? s.rcv_adv - s.rcv_nxt : 0;
  // RFC 1122 4.2.3.3: tell the peer once the window grew by enough to be worth it.
  const uint32_t mss = s.adv_mss ? s.adv_mss : s.mss;
  if (space > cur && (space - cur >= std::min<uint32_t>(wmax / 2, 2 * mss) || cur < mss)) {
    if (space - cur >= std::min<uint32_t>(wmax / 2, mss)) send_ack(s);
  }
}

void output(TcpSocket& s, bool force_ack) {
  const Nanos now = s.now();
  bool sent = false;
  switch (s.state) {
    case TcpState::kEstablished:
    case TcpState::kCloseWait:
    case TcpState::kFinWait1:
    case TcpState::kClosing:
    case TcpState::kLastAck:
    case TcpState::kFinWait2:
      break;
    case TcpState::kSynReceived:
    case TcpState::kTimeWait:
      if (force_ack) send_ack(s);
      return;
    default: return;
  }
  // RFC 5681 4.1: restart from the initial window after an idle period longer than the RTO.
  if (s.snd_una == s.snd_max && seq_gt(s.data_end, s.snd_nxt) && now - s.last_tx_data > s.rtt.rto()) {
    s.cc->on_idle_restart(now);
  }
  if (s.recovery == TcpSocket::Recovery::kFast && s.sack_ok && s.sb) {
    const uint32_t before = s.snd_max;
    const uint64_t tx_before = s.m.c.tx_segments.value;
    sack_recovery_send(s);
    sent = s.m.c.tx_segments.value != tx_before || before != s.snd_max;
  } else {
    const uint32_t mss = seg_mss(s);
    for (int guard = 0; guard < 4096; ++guard) {
      // After an RTO, go back over what the peer has not SACKed.
      if (seq_lt(s.snd_nxt, s.snd_max)) {
        const uint32_t skipped = skip_sacked(s, s.snd_nxt);
        if (skipped != s.snd_nxt) {
          s.snd_nxt = seq_min(skipped, s.snd_max);
          continue;
        }
      }
      const uint32_t unsent = seq_gt(s.data_end, s.snd_nxt) ? s.data_end - s.snd_nxt : 0;
      if (unsent == 0) break;
      const bool retrans = seq_lt(s.snd_nxt, s.snd_max);
      uint64_t flight = s.snd_nxt - s.snd_una;
      // After an RTO everything above snd_nxt is deemed lost and what the peer SACKed is not in
      // flight (RFC 6675 5.1: use the SACK information in the recovery after a timeout).
      if (s.recovery == TcpSocket::Recovery::kRto && s.sb) flight -= s.sb->sacked_in(s.snd_una, s.snd_nxt);
      uint64_t cwnd = s.cc->cwnd();
      // RFC 3042 limited transmit: on the first two duplicate ACKs, one new segment each
      // (FlightSize <= cwnd + 2*SMSS), so a small window still gets its third duplicate.
      if (s.recovery == TcpSocket::Recovery::kNone && s.dupacks > 0 && s.dupacks < 3 && !retrans) {
        cwnd += uint64_t(s.dupacks) * s.mss;
      }
      const uint64_t wnd = std::min<uint64_t>(s.snd_wnd, cwnd);
      const int64_t usable = int64_t(wnd) - int64_t(flight);
      uint32_t len = std::min(mss, unsent);
      if (retrans) len = std::min<uint32_t>(len, seq_gt(s.snd_max, s.snd_nxt) ? s.snd_max - s.snd_nxt : len);
      if (retrans && s.sb) {
        // Stop at the next SACKed range.
        for (size_t i = 0; i < s.sb->ranges(); ++i) {
          const SackBlock r = s.sb->range(i);
          if (seq_gt(r.start, s.snd_nxt) && seq_lt(r.start, s.snd_nxt + len)) len = r.start - s.snd_nxt;
        }
      }
      if (usable < int64_t(len)) {
        // RFC 1122 4.2.3.4 sender SWS avoidance: a partial segment only if it is at least
        // half the largest window the peer offered; the persist timer covers the rest.
        const bool cwnd_limited = cwnd < s.snd_wnd;
        if (usable <= 0 || cwnd_limited || uint64_t(usable) < s.max_sndwnd / 2) break;
        len = uint32_t(usable);
      }
      if (len < mss && !retrans) {
        // TCP_CORK and MSG_MORE hold a partial segment until uncorked or the last piece (the FIN
        // pushes everything). Nagle (RFC 896, RFC 1122 4.2.3.4) in Minshall's variant, as Linux
        // (tcp_nagle_check): hold it only while an earlier partial segment is unacknowledged,
        // so a tail after full segments is not held for the peer's delayed ACK.
        const bool pushing = s.shut_wr;
        if (!pushing && (s.cork || s.more_pending)) break;
        const bool small_in_flight = seq_gt(s.snd_sml, s.snd_una) && seq_le(s.snd_sml, s.snd_max);
        if (!pushing && !s.nodelay && small_in_flight) break;
      }
      if (s.snd_una == s.snd_max) s.last_progress = now;
      if (!send_data(s, s.snd_nxt, len, retrans)) break;
      sent = true;
      if (len < mss && !retrans) s.snd_sml = s.snd_nxt + len;  // Linux tcp_minshall_update
      s.snd_nxt += len;
      if (s.fin_sent && s.snd_nxt == s.data_end && s.shut_wr) s.snd_nxt += 1;
    }
    // A FIN on its own, once every byte went out (RFC 9293 3.10.4).
    if (s.shut_wr && s.snd_nxt == s.data_end &&
        (s.state == TcpState::kFinWait1 || s.state == TcpState::kLastAck || s.state == TcpState::kClosing)) {
      if (send_data(s, s.data_end, 0, s.fin_sent && seq_gt(s.snd_max, s.data_end))) {
        s.snd_nxt = s.data_end + 1;
        sent = true;
      }
    }
  }
  if (!sent && force_ack) send_ack(s);
  // Persist (RFC 9293 3.8.6.1, RFC 1122 4.2.2.17): nothing in flight, data waiting, and the
  // window too small to send it.
  if (s.snd_una == s.snd_max && seq_gt(s.data_end, s.snd_nxt) && !s.persist) {
    if (s.snd_wnd < std::min<uint32_t>(s.data_end - s.snd_nxt, s.mss)) {
      s.persist = true;
      s.rtx_deadline = now + std::clamp(s.rtt.rto(), kPersistMin, kPersistMax);
    }
  }
  arm_timer(s);
}

void send_ack(TcpSocket& s) {
  // RFC 9293 3.10.7.4: <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, SND.NXT being the highest sent.
  send_segment(s, s.snd_max, 0, kTcpAck);
}

void send_syn(TcpSocket& s) {
  const bool syn_sent = s.state == TcpState::kSynSent;
  send_segment(s, s.iss, 0, syn_sent ? kTcpSyn : (kTcpSyn | kTcpAck));
  const Nanos now = s.now();
  if (s.snd_max == s.iss) {
    s.snd_max = s.iss + 1;
    s.snd_nxt = s.iss + 1;
  }
  if (s.retries == 0) {
    s.rtt_timing = true;
    s.rtt_seq = s.iss;
    s.rtt_sent = now;
  } else {
    s.rtt_timing = false;
  }
  s.rtx_deadline = now + s.rtt.rto();
}

void send_rst(TcpSocket& s) {
  // RFC 9293 3.10.4 ABORT: <SEQ=SND.NXT><CTL=RST> (with an ACK, as Linux sends it).
  send_segment(s, s.snd_max, 0, kTcpRst | kTcpAck);
}

void retransmit_una(TcpSocket& s) {
  uint32_t len = std::min<uint32_t>(seg_mss(s), s.snd_max - s.snd_una);
  if (s.fin_sent && seq_ge(s.snd_una + len, s.data_end)) len = seq_gt(s.data_end, s.snd_una) ? s.data_end - s.snd_una : 0;
  send_data(s, s.snd_una, len, true);
}

void challenge_ack(TcpSocket& s) {
  if (s.m.challenge_ack_allowed()) send_ack(s);
}

void notify(TcpSocket& s) {
  if (s.observer) s.observer->on_tcp_readiness(s);
}

void free_rx(TcpSocket& s) {
  while (s.ooo) {
    PacketBuf* n = s.ooo->next;
    s.ooo->next = nullptr;
    PacketPtr drop(s.ooo);
    s.ooo = n;
  }
  s.rxq.clear();
  s.m.mem_used -= s.rmem;
  s.rmem = 0;
  s.rx_bytes = 0;
  s.ooo_count = 0;
}

void abort(TcpSocket& s, int err, bool send_reset) {
  if (send_reset && s.state != TcpState::kClosed && s.state != TcpState::kListen && s.state != TcpState::kSynSent &&
      s.state != TcpState::kTimeWait) {
    send_rst(s);
  }
  if (err) {
    s.so_error = err;
  }
  s.reset = true;
  finish(s);
}

void finish(TcpSocket& s) {
  Tcp::Impl& m = s.m;
  s.state = TcpState::kClosed;
  s.timer.cancel();
  s.delack_timer.cancel();
  s.rtx_deadline = s.aux_deadline = kNever;
  m.unhash_conn(s);
  m.unbind_port(s);
  m.mem_used -= s.ring.capacity();
  s.ring.release();
  s.data_end = s.snd_una;
  if (s.orphan || s.parent) {
    m.destroy(s);
    return;
  }
  notify(s);
}

void enter_time_wait(TcpSocket& s) {
  Tcp::Impl& m = s.m;
  const Nanos now = s.now();
  s.state = TcpState::kTimeWait;
  s.tw_since = now;
  s.rtx_deadline = kNever;
  s.persist = false;
  s.delack_timer.cancel();
  m.mem_used -= s.ring.capacity();
  s.ring.release();
  s.data_end = s.snd_una - (s.fin_sent ? 1 : 0);
  if (m.cfg.tcp_time_wait_ms == 0) {
    finish(s);
    return;
  }
  // RFC 9293 3.10.7.4 eighth: TIME_WAIT lasts 2 MSL.
  s.aux_deadline = now + m.cfg.tcp_time_wait_ms * kMilli;
  arm_timer(s);
  notify(s);
}

void arm_timer(TcpSocket& s) {
  if (s.dead) return;
  if (s.keepalive && s.aux_deadline == kNever &&
      (s.state == TcpState::kEstablished || s.state == TcpState::kCloseWait)) {
    const int64_t idle = s.keep_idle_s ? s.keep_idle_s : s.m.cfg.tcp_keepalive_time_s;
    s.aux_deadline = s.last_rx + idle * kSecond;
  }
  const Nanos d = std::min(s.rtx_deadline, s.aux_deadline);
  if (d == kNever) {
    s.timer.cancel();
    return;
  }
  // Lazily: a timer already due earlier fires, finds nothing due, and re-arms.
  if (!s.timer.armed() || s.timer.deadline() > d) s.m.stack.timers().arm(s.timer, d);
}

namespace {

void on_rto(TcpSocket& s, Nanos now) {
  Tcp::Impl& m = s.m;
  if (s.state == TcpState::kSynSent || s.state == TcpState::kSynReceived) {
    const int limit = s.state == TcpState::kSynSent ? s.syn_retries : kMaxSynAckRetries;
    const bool user_expired = s.user_timeout_ms && now - s.last_progress >= Nanos(s.user_timeout_ms) * kMilli;
    if (s.retries >= limit || user_expired) {
      ++m.c.timeouts;
      if (s.parent) {
        finish(s);  // an embryo the peer never completed
      } else {
        abort(s, s.soft_error ? s.soft_error : ETIMEDOUT, false);
      }
      return;
    }
    ++s.retries;
    ++m.c.retransmits;
    ++s.total_retrans;
    s.rtt.backoff();
    send_syn(s);
    return;
  }
  if (s.snd_una == s.snd_max) return;
  // RFC 1122 4.2.3.5 R2 / TCP_USER_TIMEOUT: give up.
  const bool user_expired = s.user_timeout_ms && now - s.last_progress >= Nanos(s.user_timeout_ms) * kMilli;
  if (user_expired || (!s.user_timeout_ms && s.retries >= kMaxRetries)) {
    ++m.c.timeouts;
    abort(s, s.soft_error ? s.soft_error : ETIMEDOUT, false);
    return;
  }
  ++m.c.rto_timeouts;
  ++s.retries;
  // RFC 5681 3.1 (4), RFC 6298 5.5-5.6: cut the window, back off, go back to SND.UNA.
  s.cc->on_rto(s.snd_max - s.snd_una, now);
  s.rtt.backoff();
  s.rtt_timing = false;
  s.recovery = TcpSocket::Recovery::kRto;
  s.recover = s.snd_max;  // RFC 6582 4.1: no fast retransmit for what was sent before this
  s.high_rxt = s.snd_una;
  s.dupacks = 0;
  s.lost_out = (s.snd_max - s.snd_una + s.mss - 1) / s.mss;
  s.snd_nxt = s.snd_una;
  s.rtx_deadline = now + s.rtt.rto();
  output(s);
  if (s.dead || s.state == TcpState::kClosed) return;
  if (s.snd_nxt == s.snd_una) {
    // Nothing could go (no buffer, or a zero window): retransmit the first segment anyway.
    retransmit_una(s);
    s.snd_nxt = seq_max(s.snd_nxt, s.snd_una + std::min<uint32_t>(seg_mss(s), s.snd_max - s.snd_una));
  }
  s.rtx_deadline = now + s.rtt.rto();
}

void on_persist(TcpSocket& s, Nanos now) {
  Tcp::Impl& m = s.m;
  s.persist = false;
  if (!seq_gt(s.data_end, s.snd_nxt) || s.snd_una != s.snd_max) {
    output(s);
    return;
  }
  if (s.user_timeout_ms && now - s.last_rx >= Nanos(s.user_timeout_ms) * kMilli) {
    ++m.c.timeouts;
    abort(s, ETIMEDOUT, true);
    return;
  }
  ++s.probes;
  s.rtt.backoff();
  if (s.snd_wnd > 0) {
    // The window opened a little: send what fits (RFC 9293 3.8.6.1).
    const uint32_t n = std::min({s.snd_wnd, s.data_end - s.snd_nxt, uint32_t(s.mss)});
    if (send_data(s, s.snd_nxt, n, false)) {
      if (n < s.mss) s.snd_sml = s.snd_nxt + n;
      s.snd_nxt += n;
    }
  } else {
    // A zero-window probe: Linux's form, an ACK one below SND.UNA that the peer must answer
    // with its current window (RFC 1122 4.2.2.17 allows any probe the peer answers).
    ++m.c.zero_window_probes;
    send_segment(s, s.snd_una - 1, 0, kTcpAck);
  }
  if (s.snd_una == s.snd_max) {
    s.persist = true;
    s.rtx_deadline = now + std::clamp(s.rtt.rto(), kPersistMin, kPersistMax);
  }
}

void on_keepalive(TcpSocket& s, Nanos now) {
  Tcp::Impl& m = s.m;
  s.aux_deadline = kNever;
  if (!s.keepalive || (s.state != TcpState::kEstablished && s.state != TcpState::kCloseWait)) return;
  const Nanos idle = (s.keep_idle_s ? s.keep_idle_s : m.cfg.tcp_keepalive_time_s) * kSecond;
  const Nanos intvl = (s.keep_intvl_s ? s.keep_intvl_s : m.cfg.tcp_keepalive_intvl_s) * kSecond;
  const int cnt = s.keep_cnt ? s.keep_cnt : int(m.cfg.tcp_keepalive_probes);
  if (s.snd_una != s.snd_max || seq_gt(s.data_end, s.snd_nxt)) {
    // Data in flight or waiting: the retransmission or persist timer watches the peer.
    s.aux_deadline = now + idle;
    return;
  }
  if (s.probes == 0 && now - s.last_rx < idle) {
    s.aux_deadline = s.last_rx + idle;
    return;
  }
  // RFC 1122 4.2.3.6; Linux: with TCP_USER_TIMEOUT the probes stop when it has passed.
  const bool user_expired = s.user_timeout_ms && now - s.last_rx >= Nanos(s.user_timeout_ms) * kMilli;
  if (s.probes >= cnt || (user_expired && s.probes > 0)) {
    ++m.c.timeouts;
    abort(s, ETIMEDOUT, true);
    return;
  }
  ++s.probes;
  ++m.c.keepalive_probes;
  send_segment(s, s.snd_una - 1, 0, kTcpAck);
  s.aux_deadline = now + intvl;
}

}  // namespace

void on_timer(TcpSocket& s, Nanos now) {
  if (s.dead) return;
  if (s.state == TcpState::kTimeWait) {
    if (now >= s.aux_deadline) {
      finish(s);
      return;
    }
  } else if (s.state == TcpState::kFinWait2 && s.orphan && now >= s.aux_deadline) {
    // The peer never sent its FIN: give up on it (Linux tcp_fin_timeout).
    ++s.m.c.timeouts;
    abort(s, 0, true);
    return;
  } else if (now >= s.aux_deadline) {
    on_keepalive(s, now);
    if (s.dead || s.state == TcpState::kClosed) return;
  }
  if (now >= s.rtx_deadline) {
    s.rtx_deadline = kNever;
    if (s.persist) {
      on_persist(s, now);
    } else {
      on_rto(s, now);
    }
    if (s.dead || s.state == TcpState::kClosed) return;
  }
  arm_timer(s);
}

void schedule_ack(TcpSocket& s, bool full_segment) {
  // RFC 1122 4.2.3.2, RFC 5681 4.2: ACK at least every second full-sized segment, and within
  // the delayed-ACK timeout (40 ms by default); TCP_QUICKACK acknowledges every segment.
  s.last_rx_data = s.now();
  if (s.quickack) {
    s.ack_now = true;
    return;
  }
  if (full_segment) ++s.acks_owed;
  if (s.acks_owed >= 2) {
    s.ack_now = true;
    return;
  }
  if (!s.delack_timer.armed()) {
    s.m.stack.timers().arm(s.delack_timer, s.now() + s.m.cfg.tcp_delack_ms * kMilli);
  }
}

void on_delack_timer(TcpSocket& s, Nanos) {
  if (s.dead) return;
  if (s.last_ack_sent == s.rcv_nxt && s.acks_owed == 0) return;
  ++s.m.c.delayed_acks;
  if (s.synchronized() || s.state == TcpState::kSynReceived) send_ack(s);
}

void restart_keepalive(TcpSocket& s) {
  s.probes = 0;
  if (s.state == TcpState::kEstablished || s.state == TcpState::kCloseWait) {
    s.aux_deadline = kNever;
    s.timer.cancel();
    arm_timer(s);
  }
}

}  // namespace tcb
}  // namespace shunt
