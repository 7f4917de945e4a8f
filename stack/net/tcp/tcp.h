// TCP (RFC 9293): the stack-wide half. Demultiplexing segments to connections and listeners,
// binding and ephemeral ports, listen with a SYN queue and an accept backlog, SYN cookies
// (RFC 4987), initial sequence numbers (RFC 6528), TIME_WAIT, per-stack memory limits and the
// counters. One connection's state machine lives in tcb.h / tcb*.cc.
//
// The socket-facing API is non-blocking and returns -errno, like Udp: the socket layer
// (stack/socket/) does the blocking through its waiter, loops for MSG_WAITALL, raises SIGPIPE,
// and converts sockaddrs. Addresses here are in internal form: an IPv6 socket stores an
// IPv4-mapped peer in its IPv4 form (as UdpSocket does), and local_name/peer_name report it so.
//
// Urgent data: the urgent pointer is ignored and urgent bytes are delivered inline, in sequence,
// as ordinary data (as with SO_OOBINLINE); recv(MSG_OOB) returns -EINVAL and send(MSG_OOB)
// -EOPNOTSUPP. The URG flag is never sent.
//
// Buffers: received payload stays in the PacketBufs it arrived in (stack.pool()), queued in
// order and copied once into the application's buffer; the out-of-order queue holds PacketBufs
// too. Data to send is copied into a per-connection byte ring (heap, grown in powers of two up
// to SO_SNDBUF when writes need it, never per segment) and segments are built from it on
// (re)transmit.
#pragma once
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "stack/core/buffer.h"
#include "stack/core/clock.h"
#include "stack/core/counters.h"
#include "stack/core/timer_wheel.h"
#include "stack/net/addr.h"
#include "stack/net/ip_rx.h"

namespace shunt {

class Stack;
class TcpSocket;
struct TcpRepr;
struct TcpOptions;
struct TcpCounters;

// RFC 9293 3.3.2.
enum class TcpState : uint8_t {
  kClosed,
  kListen,
  kSynSent,
  kSynReceived,
  kEstablished,
  kFinWait1,
  kFinWait2,
  kCloseWait,
  kClosing,
  kLastAck,
  kTimeWait,
};
const char* tcp_state_name(TcpState s);

// Told when a socket's readiness may have changed (data or a connection arrived, buffer space
// freed, the connection completed, failed or was reset). Called from inside the stack: it must
// not call back into Tcp for the same socket except to read events().
class TcpSocketObserver {
 public:
  virtual void on_tcp_readiness(TcpSocket& s) = 0;

 protected:
  ~TcpSocketObserver() = default;
};

// TCP's defaults that are not configuration: Linux's tcp_rmem/tcp_wmem bounds, SOCK_MIN_*.
inline constexpr int kTcpMinRcvbuf = 2'304;
inline constexpr int kTcpMinSndbuf = 4'608;
inline constexpr int kTcpBufMax = 16 << 20;  // SO_SNDBUF/SO_RCVBUF are clamped here (then doubled)
inline constexpr uint16_t kTcpDefaultMss = 536;  // RFC 9293 3.7.1, without an MSS option (IPv4)

class Tcp {
 public:
  explicit Tcp(Stack& stack);
  ~Tcp();
  Tcp(const Tcp&) = delete;
  Tcp& operator=(const Tcp&) = delete;

  // --- From IP. data() is the TCP header (a reassembled datagram continues in chain).
  void on_rx(PacketPtr p, const IpRx& rx);
  // An ICMP/ICMPv6 error quoting a segment we sent: `quoted` points at the quoted TCP header
  // (at least 8 bytes: ports and sequence number), `quoted_ip` describes the quoted IP header
  // (src = us, dst = peer). err: ECONNREFUSED, EHOSTUNREACH, ENETUNREACH, EMSGSIZE... For
  // EMSGSIZE (IPv4 fragmentation needed, ICMPv6 packet too big) `mtu` is the reported next-hop
  // MTU, else 0.
  void on_icmp_error(int err, uint32_t mtu, const uint8_t* quoted, size_t len, const IpRx& quoted_ip);

  // --- Sockets. Every call returns 0 (or a length) or -errno and never blocks.
  // A new unbound socket; nullptr if the per-stack limit on sockets is reached.
  TcpSocket* open(Family family);
  // port 0 picks an ephemeral port. Honours the socket's SO_REUSEADDR, SO_REUSEPORT and
  // IPV6_V6ONLY. -EINVAL if bound, -EADDRNOTAVAIL if not ours, -EADDRINUSE on conflict.
  int bind(TcpSocket& s, const IpAddr& addr, uint16_t port);
  // Binds an ephemeral port if unbound. Calling it again on a listener changes the backlog.
  int listen(TcpSocket& s, int backlog);
  // A connection from the accept queue (established or in CLOSE_WAIT), or nullptr with
  // *err = -EAGAIN when none is ready, -EINVAL when not listening.
  TcpSocket* accept(TcpSocket& listener, int* err);
  // Starts an active open: -EINPROGRESS, then readiness. POLLOUT once established; on failure
  // POLLERR|POLLHUP and the error in SO_ERROR (take_error). -EALREADY while in progress,
  // -EISCONN once connected, -ENETUNREACH without a route, -EADDRNOTAVAIL without a free port.
  int connect(TcpSocket& s, const IpAddr& addr, uint16_t port);
  // Copies into the send buffer and sends what the window, Nagle and cork allow. Returns the
  // bytes taken (possibly fewer than asked), -EAGAIN when the buffer is full, -EPIPE after
  // shutdown(SHUT_WR)/close or a reset, a pending error first (taken), -ENOTCONN before
  // connected (-EAGAIN while the handshake is in progress, as Linux blocks there).
  // Flags: MSG_MORE (hold a partial segment like TCP_CORK), MSG_DONTWAIT and MSG_NOSIGNAL
  // (the socket layer's business; ignored here), MSG_OOB -> -EOPNOTSUPP.
  ssize_t send(TcpSocket& s, const iovec* iov, size_t iovcnt, int flags);
  // Copies in-order data out. Returns bytes, 0 at end of stream (peer FIN, or SHUT_RD), -EAGAIN
  // when empty, a pending error first (taken), -ENOTCONN if never connected.
  // Flags: MSG_PEEK (leave the data), MSG_TRUNC (discard instead of copying; iov may be null),
  // MSG_WAITALL and MSG_DONTWAIT (the socket layer's loop; ignored here), MSG_OOB -> -EINVAL.
  ssize_t recv(TcpSocket& s, const iovec* iov, size_t iovcnt, int flags);
  // SHUT_RD, SHUT_WR, SHUT_RDWR. -ENOTCONN unless connected or connecting.
  int shutdown(TcpSocket& s, int how);
  // Releases the socket: the caller must not use `s` afterwards. A listener resets its queued
  // connections. SO_LINGER with zero time, or unread data, aborts with RST (RFC 9293 3.10.4,
  // RFC 2525 2.17); otherwise a FIN follows the queued data and the connection lives on,
  // orphaned, until it is done (FIN_WAIT_2 timeout, TIME_WAIT).
  void close(TcpSocket& s);

  // POLLIN, POLLOUT, POLLERR, POLLHUP, POLLRDHUP (and POLLRDNORM/POLLWRNORM with them) as Linux
  // reports them for a TCP socket.
  uint32_t events(const TcpSocket& s) const;
  // SOL_SOCKET: SO_REUSEADDR, SO_REUSEPORT, SO_KEEPALIVE, SO_LINGER, SO_SNDBUF, SO_RCVBUF,
  //   SO_ERROR (get, taking it), SO_ACCEPTCONN (get), SO_RCVLOWAT, SO_SNDLOWAT (get).
  // IPPROTO_TCP: TCP_NODELAY, TCP_MAXSEG, TCP_CORK, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT,
  //   TCP_SYNCNT, TCP_LINGER2, TCP_DEFER_ACCEPT (accepted, ignored), TCP_WINDOW_CLAMP,
  //   TCP_INFO (get), TCP_QUICKACK, TCP_CONGESTION, TCP_USER_TIMEOUT.
  // IPPROTO_IP: IP_TTL, IP_TOS. IPPROTO_IPV6: IPV6_V6ONLY, IPV6_UNICAST_HOPS, IPV6_TCLASS.
  // Anything else: -ENOPROTOOPT (the socket layer may answer it itself).
  int setsockopt(TcpSocket& s, int level, int name, const void* val, socklen_t len);
  int getsockopt(TcpSocket& s, int level, int name, void* val, socklen_t* len);
  // The bound address and port (unspecified and 0 when unbound).
  int local_name(const TcpSocket& s, IpAddr* addr, uint16_t* port) const;
  // The peer: -ENOTCONN unless connected (or connecting).
  int peer_name(const TcpSocket& s, IpAddr* addr, uint16_t* port) const;
  void set_observer(TcpSocket& s, TcpSocketObserver* o);
  // A word for the socket layer to find its own object from a socket in a callback.
  void set_user(TcpSocket& s, uint64_t user);
  uint64_t user(const TcpSocket& s) const;

  TcpState state(const TcpSocket& s) const;
  Family family(const TcpSocket& s) const;
  bool is_listening(const TcpSocket& s) const;
  // Bytes readable now (FIONREAD / SIOCINQ) and bytes not yet acknowledged (SIOCOUTQ).
  size_t rx_queued(const TcpSocket& s) const;
  size_t tx_queued(const TcpSocket& s) const;
  // The pending error (SO_ERROR), cleared by reading it; 0 if none.
  int take_error(TcpSocket& s);

  // --- Stack-wide numbers, for tests and stats.
  // Live connection blocks, including orphans and TIME_WAIT, excluding listeners' sockets.
  size_t connection_count() const;
  // Bytes of memory TCP holds now: connection blocks, send rings, queued receive buffers.
  size_t memory() const;
  // Connections in `state`.
  size_t count_in_state(TcpState st) const;

  // --- Internal (used by the connection code in tcb*.cc).
  Stack& stack() { return stack_; }
  TcpCounters& counters() { return *counters_; }
  struct Impl;
  Impl& impl() { return *impl_; }

 private:
  // A listener back to CLOSED: its queued connections are reset, its bound name kept.
  void stop_listening(TcpSocket& s);

  Stack& stack_;
  std::unique_ptr<TcpCounters> counters_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace shunt
