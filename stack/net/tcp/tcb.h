// One TCP connection (or listener): the transmission control block of RFC 9293 3.3.1 and the
// state machine over it. Private to stack/net/tcp/: the socket layer sees TcpSocket only as an
// opaque handle through Tcp (tcp.h).
//
// Files: tcb.cc (segment arrival, RFC 9293 3.10.7), tcb_output.cc (sending, retransmission,
// loss recovery, timers), tcp.cc (the stack-wide module and the socket-facing calls).
#pragma once
#include <cstdint>
#include <memory>

#include "stack/core/buffer.h"
#include "stack/core/clock.h"
#include "stack/core/config.h"
#include "stack/core/counters.h"
#include "stack/core/timer_wheel.h"
#include "stack/net/addr.h"
#include "stack/net/ip_rx.h"
#include "stack/net/tcp/congestion.h"
#include "stack/net/tcp/rtt.h"
#include "stack/net/tcp/sack_scoreboard.h"
#include "stack/net/tcp/seq.h"
#include "stack/net/tcp/tcp.h"
#include "stack/net/tcp/tcp_wire.h"

namespace shunt {

// Every counter of the module, registered once in Tcp's constructor.
struct TcpCounters {
  explicit TcpCounters(Counters& c);
  Counter& rx_segments;
  Counter& tx_segments;
  Counter& retransmits;
  Counter& fast_retransmits;
  Counter& rto_timeouts;
  Counter& active_opens;
  Counter& passive_opens;
  Counter& established;
  Counter& resets_sent;
  Counter& resets_received;
  Counter& challenge_acks;
  Counter& syncookies_sent;
  Counter& syncookies_ok;
  Counter& dsacks_received;
  Counter& sack_reneging;
  Counter& lost_retransmits;  // a retransmission found lost by SACKs of later data  // the peer discarded data it had SACKed (RFC 2018 8)
  Counter& zero_window_probes;
  Counter& keepalive_probes;
  Counter& delayed_acks;
  Counter& timewait_reused;
  Counter& bad_options;  // malformed options, ignored from the bad one on
  Counter& timeouts;     // connections dropped by a timer (ETIMEDOUT)
  Counter& collapsed;    // small segments merged into a queued buffer
  // Drops, "tcp.drop.<reason>".
  Counter& drop_truncated;
  Counter& drop_bad_data_offset;
  Counter& drop_bad_checksum;
  Counter& drop_not_unicast;
  Counter& drop_bad_flags;
  Counter& drop_no_socket;
  Counter& drop_listen_overflow;
  Counter& drop_syn_queue_full;
  Counter& drop_bad_syncookie;
  Counter& drop_listen_bad_segment;
  Counter& drop_syn_sent_bad_ack;
  Counter& drop_paws;
  Counter& drop_out_of_window;
  Counter& drop_rst_out_of_window;
  Counter& drop_rst_challenged;
  Counter& drop_syn_challenged;
  Counter& drop_no_ack;
  Counter& drop_old_ack;
  Counter& drop_future_ack;
  Counter& drop_challenge_ack_limit;
  Counter& drop_ooo_limit;
  Counter& drop_ooo_pool_low;
  Counter& drop_rcvbuf;
  Counter& drop_memory;
  Counter& drop_no_buffer;
  Counter& drop_after_close;
  Counter& drop_timewait;
  Counter& drop_closed;
  Counter& drop_no_memory_syn;
};

// The part of a received segment the state machine needs. The payload is in `p` (data() at
// the first payload byte, possibly chained when IP reassembled it).
struct TcpSegment {
  TcpRepr h;
  TcpOptions opt;
  uint32_t len = 0;  // payload bytes
  PacketPtr p;
  const IpRx* rx = nullptr;
  uint32_t seq_end() const { return h.seq + len + (h.has(kTcpSyn) ? 1 : 0) + (h.has(kTcpFin) ? 1 : 0); }
};

// Bytes written but not yet acknowledged, from snd_una's first data byte on: a power-of-two
// ring grown (never per segment) up to the send buffer limit.
class SendRing {
 public:
  ~SendRing() { delete[] buf_; }
  uint32_t size() const { return len_; }
  uint32_t capacity() const { return cap_; }
  // Makes room for `need` bytes in total, growing to at most `limit` rounded up to a power of
  // two. False if it cannot.
  bool reserve(uint32_t need, uint32_t limit);
  // Appends from an iovec reader position; returns bytes appended.
  void append(const uint8_t* src, uint32_t n);
  // Copies `n` bytes starting `off` bytes past the head.
  void copy_out(uint32_t off, uint8_t* dst, uint32_t n) const;
  void consume(uint32_t n);
  void release() {
    delete[] buf_;
    buf_ = nullptr;
    cap_ = len_ = head_ = 0;
  }

 private:
  uint8_t* buf_ = nullptr;
  uint32_t cap_ = 0;
  uint32_t head_ = 0;
  uint32_t len_ = 0;
};

struct TcpListenQueue;

class TcpSocket {
 public:
  TcpSocket(Tcp& tcp, Family family);
  ~TcpSocket();
  TcpSocket(const TcpSocket&) = delete;
  TcpSocket& operator=(const TcpSocket&) = delete;

  Tcp& tcp;
  Tcp::Impl& m;

  // --- Identity.
  TcpState state = TcpState::kClosed;
  Family family;
  bool v6only = false;
  bool bind_addr_locked = false;
  bool bind_port_locked = false;
  bool bound = false;          // in the port table
  bool hashed = false;         // in the connection table
  bool orphan = false;         // closed by the application; freed when done
  bool dead = false;           // on the reap list
  bool in_accept_queue = false;
  bool in_syn_queue = false;
  IpAddr local_addr;
  IpAddr remote_addr;
  uint16_t local_port = 0;
  uint16_t remote_port = 0;

  // --- Options (SOL_SOCKET, IPPROTO_TCP, IP).
  bool reuse_addr = false;
  bool reuse_port = false;
  bool keepalive = false;
  bool nodelay = false;
  bool cork = false;
  bool quickack = false;
  bool linger_on = false;
  bool rcvbuf_locked = false;
  bool sndbuf_locked = false;
  int linger_s = 0;
  int keep_idle_s = 0;   // 0: the configured default
  int keep_intvl_s = 0;
  int keep_cnt = 0;
  int syn_retries = 6;
  int linger2_s = 0;     // TCP_LINGER2; 0: the configured FIN_WAIT_2 timeout
  uint32_t user_timeout_ms = 0;
  uint32_t window_clamp = 0;
  uint16_t user_mss = 0;  // TCP_MAXSEG
  int16_t ttl = -1;
  uint8_t tos = 0;
  int rcvbuf = 0;  // as getsockopt reports it
  int sndbuf = 0;

  // --- Errors and shutdown.
  int so_error = 0;       // pending, taken by the next call
  int soft_error = 0;     // ICMP said so; reported instead of ETIMEDOUT
  bool shut_rd = false;   // SHUT_RD: reads return 0, arriving data is discarded
  bool shut_wr = false;   // SHUT_WR or close: no more writes, FIN queued
  bool fin_sent = false;
  bool peer_fin = false;  // the peer's FIN arrived in order (EOF after the data)
  bool reset = false;     // the connection was reset or aborted
  bool was_connected = false;
  // A send found the buffer full, or poll found it not writable (Linux SOCK_NOSPACE): tell the
  // observer when it is writable again.
  mutable bool tx_blocked = false;
  bool more_pending = false;  // the last send had MSG_MORE

  TcpSocketObserver* observer = nullptr;
  uint64_t user = 0;

  // --- Listener.
  std::unique_ptr<TcpListenQueue> listen_q;
  TcpSocket* parent = nullptr;  // the listener of an embryonic or not yet accepted connection
  TcpSocket* q_next = nullptr;  // link in the listener's SYN queue or accept queue
  TcpSocket* q_prev = nullptr;

  // --- Table links.
  TcpSocket* port_next = nullptr;  // port table chain
  TcpSocket* hash_next = nullptr;  // connection table chain
  TcpSocket* all_next = nullptr;   // every socket, in creation order
  TcpSocket* all_prev = nullptr;
  uint32_t hash = 0;

  // --- Send sequence space (RFC 9293 3.3.1).
  uint32_t iss = 0;
  uint32_t snd_una = 0;
  uint32_t snd_nxt = 0;
  uint32_t snd_max = 0;  // one past the highest sequence number sent
  uint32_t snd_sml = 0;  // end of the last partial (sub-MSS) segment sent: Nagle, Minshall's variant
  uint32_t snd_wnd = 0;  // scaled
  uint32_t snd_wl1 = 0;
  uint32_t snd_wl2 = 0;
  uint32_t max_sndwnd = 0;
  uint32_t data_end = 0;  // one past the last byte written: snd_una + ring.size() (+1 before SYN acked)
  uint16_t mss = kTcpDefaultMss;  // effective send MSS (payload per segment, options excluded)
  uint16_t peer_mss = 0;
  uint16_t adv_mss = 0;           // what we advertised
  uint16_t rcv_mss = 0;           // largest segment seen from the peer (TCP_INFO, delayed ACK)
  uint32_t pmtu = 0;
  uint8_t snd_wscale = 0;
  uint8_t rcv_wscale = 0;
  bool ws_ok = false;
  bool ts_ok = false;
  bool sack_ok = false;
  bool syn_options_sent_ws = false;

  // --- Receive sequence space.
  uint32_t irs = 0;
  uint32_t rcv_nxt = 0;
  uint32_t rcv_adv = 0;  // right edge of the window last advertised
  uint32_t last_ack_sent = 0;
  uint32_t ts_recent = 0;
  Nanos ts_recent_time = 0;
  uint32_t ts_offset = 0;

  // --- Buffers.
  SendRing ring;
  PacketQueue rxq;         // in-order payload, data() at the next unread byte
  uint32_t rx_bytes = 0;   // payload bytes in rxq
  uint32_t rmem = 0;       // buffer memory of rxq and the out-of-order queue
  PacketBuf* ooo = nullptr;  // out-of-order segments sorted by seq: user = seq | len << 32
  uint32_t ooo_count = 0;
  bool ooo_fin = false;      // a FIN arrived out of order at ooo_fin_seq
  uint32_t ooo_fin_seq = 0;
  // RFC 2018 4: the blocks to report, most recent first; [0] may be a D-SACK (RFC 2883).
  TcpSackBlock sack_blocks[kTcpMaxSackBlocks];
  uint8_t sack_count = 0;
  bool dsack_pending = false;
  TcpSackBlock dsack_block;

  // --- Acknowledgement scheduling.
  uint8_t acks_owed = 0;     // full-sized segments received and not acknowledged
  bool ack_now = false;      // send an ACK at the end of this input

  // --- Retransmission, RTT, congestion control, loss recovery.
  RttEstimator rtt;
  std::unique_ptr<CongestionControl> cc;
  // Created at the first SACK block, freed once it is empty outside recovery: an idle
  // connection holds none.
  std::unique_ptr<SackScoreboard> sb;
  bool rtt_timing = false;
  uint32_t rtt_seq = 0;
  Nanos rtt_sent = 0;
  enum class Recovery : uint8_t { kNone, kFast, kRto } recovery = Recovery::kNone;
  uint32_t recover = 0;      // RFC 6582 "recover" / RFC 6675 RecoveryPoint
  uint32_t high_rxt = 0;     // RFC 6675 HighRxt (one past)
  uint32_t rxt_una_seq = 0;  // the last retransmission of the segment at snd_una ...
  uint32_t rxt_una_mark = 0; // ... and snd_max when it went out: SACKs above say it was lost
  uint32_t rescue_rxt = 0;   // RFC 6675 RescueRxt: recover once rule 4 was used
  uint16_t dupacks = 0;
  uint8_t retries = 0;       // consecutive RTO expirations (or SYN/SYN-ACK retransmissions)
  uint8_t probes = 0;        // unanswered zero-window or keepalive probes
  bool persist = false;      // the retransmission timer is a persist timer
  uint32_t total_retrans = 0;
  uint32_t lost_out = 0;
  Nanos last_progress = 0;   // snd_una last moved (or data became outstanding): user timeout
  Nanos last_rx = 0;         // any segment from the peer: keepalive
  Nanos last_rx_data = 0;    // payload from the peer: TCP_QUICKACK ends on a quick reply
  Nanos last_tx_data = 0;    // slow start after idle (RFC 5681 4.1)

  // --- Timers: one for retransmission, persist, keepalive, SYN-ACK, FIN_WAIT_2 and TIME_WAIT;
  // one for delayed ACKs.
  Timer timer;
  Timer delack_timer;
  Nanos rtx_deadline = kNever;   // retransmission or persist
  Nanos aux_deadline = kNever;   // keepalive, FIN_WAIT_2, TIME_WAIT
  Nanos tw_since = 0;

  bool synchronized() const {
    return state != TcpState::kClosed && state != TcpState::kListen && state != TcpState::kSynSent &&
           state != TcpState::kSynReceived;
  }
  bool can_send_data() const {
    return state == TcpState::kEstablished || state == TcpState::kCloseWait;
  }
  uint32_t window_max() const;     // the most we offer: half the receive buffer, clamped
  uint32_t sendbuf_limit() const;  // payload bytes the send ring may hold
  uint32_t send_free() const;
  bool writable() const;
  bool readable_eof() const { return peer_fin || shut_rd || reset; }
  uint32_t ts_now() const;
  Nanos now() const;
  size_t memory() const;
};

struct TcpListenQueue {
  int backlog = 0;
  uint32_t syn_count = 0;
  uint32_t accept_count = 0;
  TcpSocket* syn_head = nullptr;     // embryonic connections (SYN_RECEIVED), oldest first
  TcpSocket* accept_head = nullptr;  // established, not accepted, oldest first
  TcpSocket* accept_tail = nullptr;
};

// The module's private state, shared by tcp.cc and tcb*.cc.
struct Tcp::Impl {
  Impl(Tcp& tcp, Stack& stack);
  ~Impl();

  Tcp& tcp;
  Stack& stack;
  TcpCounters& c;
  const Config& cfg;

  // Secrets from stack.random() (deterministic per seed).
  uint64_t isn_key[2];
  uint64_t cookie_key[2];
  uint64_t ts_key;
  uint64_t port_key;

  std::vector<TcpSocket*> by_port;  // 65536 chain heads: every bound socket
  std::vector<TcpSocket*> conns;    // connection table, power-of-two buckets
  size_t conn_count = 0;
  TcpSocket* last_hit = nullptr;    // one-entry cache of the connection table
  TcpSocket* all_head = nullptr;
  TcpSocket* all_tail = nullptr;
  size_t sockets = 0;
  size_t mem_used = 0;              // TcpSocket blocks, rings, receive buffers
  std::vector<TcpSocket*> reap;     // dead sockets to free (outside their own timer callbacks)
  Timer reap_timer;
  uint32_t port_counter = 0;
  // RFC 5961 7: challenge ACKs per second, stack-wide.
  Nanos challenge_window_start = 0;
  uint32_t challenge_count = 0;
  static constexpr uint32_t kChallengeAckLimit = 1000;  // Linux tcp_challenge_ack_limit

  // --- Tables.
  uint32_t hash4(const IpAddr& laddr, uint16_t lport, const IpAddr& raddr, uint16_t rport) const;
  TcpSocket* lookup_conn(const IpAddr& laddr, uint16_t lport, const IpAddr& raddr, uint16_t rport);
  TcpSocket* lookup_listener(const IpAddr& laddr, uint16_t lport, const IpAddr& raddr, uint16_t rport);
  void hash_conn(TcpSocket& s);
  void unhash_conn(TcpSocket& s);
  void bind_port(TcpSocket& s);
  void unbind_port(TcpSocket& s);
  bool bind_conflict(const TcpSocket& s, const IpAddr& addr, uint16_t port) const;
  int pick_connect_port(TcpSocket& s);
  int pick_bind_port(TcpSocket& s, const IpAddr& addr);

  // --- Life.
  TcpSocket* create(Family f);
  // Unhashes, unbinds, drops buffers and queues it for freeing (not inside its own callback).
  void destroy(TcpSocket& s);
  void reap_now();

  // --- Numbers.
  uint32_t isn(const IpAddr& laddr, uint16_t lport, const IpAddr& raddr, uint16_t rport) const;
  uint32_t ts_off(const IpAddr& laddr, uint16_t lport, const IpAddr& raddr, uint16_t rport) const;
  uint32_t cookie_hash(const IpAddr& laddr, uint16_t lport, const IpAddr& raddr, uint16_t rport,
                       uint32_t count, int which) const;
  bool challenge_ack_allowed();
  bool mem_ok(size_t more) const { return mem_used + more <= size_t(cfg.tcp_mem_max); }

  // --- Segments without a connection.
  void on_listener(TcpSocket& l, TcpSegment& seg);
  void send_rst_for(const TcpSegment& seg, const IpRx& rx);
  // Sends a bare segment (RST or cookie SYN-ACK) not tied to a TCB.
  void send_raw(const IpAddr& src, const IpAddr& dst, uint16_t sport, uint16_t dport, uint32_t seq,
                uint32_t ack, uint8_t flags, uint16_t window, const TcpTxOptions* opt, int ttl, uint8_t tos);
  TcpSocket* syncookie_check(TcpSocket& l, TcpSegment& seg);
  void send_syncookie(TcpSocket& l, TcpSegment& seg);
  // Output helper: checksum (offload or software) and IP.
  int ip_output(PacketPtr p, const IpAddr& src, const IpAddr& dst, int ttl, uint8_t tos);
  // Time-wait reuse by a new SYN (RFC 6191).
  bool timewait_accepts_syn(const TcpSocket& tw, const TcpSegment& seg) const;
};

// --- Connection functions (tcb.cc, tcb_output.cc).
namespace tcb {
void input(TcpSocket& s, TcpSegment& seg);
// Active open: state, options, the first SYN.
void start_connect(TcpSocket& s);
// A new child of a listener after a SYN (RFC 9293 3.10.7.2), or from a valid cookie ACK.
void init_child(TcpSocket& child, TcpSocket& l, const TcpSegment& syn, uint32_t iss, uint16_t mss);
void on_established(TcpSocket& s);
// Sends whatever the windows and Nagle allow; `force_ack`: at least one ACK.
void output(TcpSocket& s, bool force_ack = false);
void send_ack(TcpSocket& s);
void send_syn(TcpSocket& s);  // SYN or SYN-ACK by state
void send_rst(TcpSocket& s);
// Retransmits the segment at snd_una (fast retransmit, NewReno partial ACK).
void retransmit_una(TcpSocket& s);
// RFC 5961 challenge ACK, rate limited stack-wide.
void challenge_ack(TcpSocket& s);
// Aborts: RST unless `silent`, error set, CLOSED, observers told, orphans destroyed.
void abort(TcpSocket& s, int err, bool send_reset);
// CLOSED without error (normal end): orphans destroyed.
void finish(TcpSocket& s);
void enter_time_wait(TcpSocket& s);
void arm_timer(TcpSocket& s);
void on_timer(TcpSocket& s, Nanos now);
void on_delack_timer(TcpSocket& s, Nanos now);
void schedule_ack(TcpSocket& s, bool full_segment);
void notify(TcpSocket& s);
// After the application read: a window update if the window grew enough (RFC 1122 4.2.3.3).
void window_update_after_read(TcpSocket& s);
uint16_t window_to_advertise(TcpSocket& s);
void set_mss(TcpSocket& s, uint16_t mss);
uint16_t mss_for_route(const TcpSocket& s);
void free_rx(TcpSocket& s);
// SO_KEEPALIVE or TCP_KEEPIDLE changed: the next probe is due idle time after the last segment.
void restart_keepalive(TcpSocket& s);
}  // namespace tcb

}  // namespace shunt
