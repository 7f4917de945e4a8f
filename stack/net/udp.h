// UDP (RFC 768): demultiplexing to sockets, checksum rules for IPv4 and IPv6, port-unreachable.
// The protocol half of UDP sockets lives here (bindings, the demux table, receive queues,
// building datagrams); the POSIX half (sockaddr parsing, options, blocking) is stack/socket/.
#pragma once
#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "stack/core/buffer.h"
#include "stack/core/counters.h"
#include "stack/net/addr.h"
#include "stack/net/ip_rx.h"
#include "stack/net/udp_wire.h"

namespace shunt {

class Stack;
class UdpSocket;

// The interface index the socket layer reports for our one port (IP_PKTINFO, scope ids).
inline constexpr int kUdpIfIndex = 1;
// Linux's defaults: net.core.rmem_max / wmem_max, SOCK_MIN_RCVBUF / SOCK_MIN_SNDBUF, and
// net.ipv4.igmp_max_memberships.
inline constexpr int kUdpBufMax = 212'992;
inline constexpr int kUdpMinRcvbuf = 2'304;
inline constexpr int kUdpMinSndbuf = 4'608;
inline constexpr size_t kUdpMaxMemberships = 20;

// Told when a socket's readiness may have changed (a datagram queued, an error set).
class UdpObserver {
 public:
  virtual void on_udp_readiness(UdpSocket& s) = 0;

 protected:
  ~UdpObserver() = default;
};

struct UdpMembership {
  IpAddr group;
  int ifindex = 0;
};

// What recv learns about a queued datagram.
struct UdpRxInfo {
  IpAddr src;
  IpAddr dst;  // the IP destination (ours, a broadcast or a group)
  uint16_t src_port = 0;
  uint16_t dst_port = 0;
  uint8_t ttl = 0;  // or hop limit
  uint8_t tos = 0;  // or traffic class
  size_t payload_len = 0;
};

// One UDP socket: created by Udp::open, released by Udp::close. Options are plain fields the
// socket layer validates and sets.
class UdpSocket {
 public:
  // The socket's own family. An IPv6 socket stores IPv4-mapped addresses in their IPv4 form;
  // its wildcard "::" covers IPv4 too unless v6only.
  Family family = Family::kV4;
  bool v6only = false;

  // Binding. local_port 0: not bound. local_addr unspecified: any address (of its family).
  IpAddr local_addr;
  uint16_t local_port = 0;
  bool bind_addr_locked = false;  // bound to a specific address by bind()
  bool bind_port_locked = false;  // bound to a specific port by bind()
  // Default peer (connect).
  bool connected = false;
  IpAddr remote_addr;
  uint16_t remote_port = 0;

  // SOL_SOCKET.
  bool reuse_addr = false;
  bool reuse_port = false;
  bool broadcast = false;
  int rcvbuf = 0;  // as getsockopt reports it (Linux doubles what is set)
  int sndbuf = 0;
  int error = 0;   // pending (SO_ERROR), positive errno
  bool shut_rd = false;
  bool shut_wr = false;
  // IPPROTO_IP.
  int ttl = -1;  // -1: the stack default
  uint8_t tos = 0;
  uint8_t mcast_ttl = 1;
  bool mcast_loop = true;
  Ipv4Addr mcast_if;
  int mcast_ifindex = 0;
  bool recv_pktinfo = false;
  bool recv_ttl = false;
  bool recv_tos = false;
  // IPPROTO_IPV6.
  int hop_limit = -1;  // -1: the stack default
  uint8_t mcast_hops = 1;
  bool mcast_loop6 = true;
  int mcast_if6 = 0;
  int tclass = 0;
  bool recv_pktinfo6 = false;
  bool recv_hoplimit6 = false;
  bool recv_tclass6 = false;

  std::vector<UdpMembership> memberships;  // bounded by kUdpMaxMemberships

  // Receive queue: whole datagrams, data() at the UDP header. rmem is what they charge
  // against rcvbuf (the memory of their buffers, as Linux charges skb truesize).
  PacketQueue rxq;
  size_t rmem = 0;
  uint64_t drops = 0;

  // Who to tell about readiness, and its name for this socket.
  UdpObserver* observer = nullptr;
  int handle = -1;

  bool is_bound() const { return local_port != 0; }

 private:
  friend class Udp;
  UdpSocket* next_on_port_ = nullptr;  // demux chain, in bind order
  bool hashed_ = false;
};

class Udp {
 public:
  explicit Udp(Stack& stack);
  ~Udp();
  Udp(const Udp&) = delete;
  Udp& operator=(const Udp&) = delete;

  // data() is the UDP header.
  void on_rx(PacketPtr p, const IpRx& rx);
  // An ICMP/ICMPv6 error quoting a datagram we sent: `quoted` points at the quoted UDP header
  // (at least 8 bytes), `rx` describes the quoted IP header (src = us, dst = peer).
  void on_icmp_error(int err, const uint8_t* quoted, size_t len, const IpRx& quoted_ip);

  // --- Sockets. Calls return 0 (or a length) or -errno.
  UdpSocket* open(Family family);
  // Leaves its groups, unbinds, frees its queue and the socket.
  void close(UdpSocket* s);
  // `addr` in internal form (IPv4-mapped already converted to IPv4); port 0 picks an
  // ephemeral port. EINVAL if bound, EADDRNOTAVAIL if not ours, EADDRINUSE on conflict.
  int bind(UdpSocket& s, const IpAddr& addr, uint16_t port);
  // Sets the default peer; binds an ephemeral port and the route's source address as Linux
  // does. ENETUNREACH without a route, EACCES for broadcast without SO_BROADCAST.
  int connect(UdpSocket& s, const IpAddr& addr, uint16_t port);
  void disconnect(UdpSocket& s);
  // Builds one datagram from `iov` and hands it to IP. `dst` null: the connected peer.
  // Returns the payload length or -EDESTADDRREQ, -EMSGSIZE, -EACCES, -ENETUNREACH,
  // -ENOBUFS (pool exhausted), -EAGAIN (no ephemeral port)...
  struct Dest {
    IpAddr addr;
    uint16_t port = 0;
  };
  struct SendOptions {
    const IpAddr* src = nullptr;  // IP_PKTINFO / IPV6_PKTINFO source, else the binding's
    int ttl = -1;                 // per-call TTL / hop limit, else the socket's
    int tos = -1;
  };
  ssize_t send(UdpSocket& s, const iovec* iov, size_t iovcnt, size_t len, const Dest* dst,
               const SendOptions* opt = nullptr);
  // Buffers one send of `len` payload bytes needs.
  static size_t buffers_for(size_t len);
  int join(UdpSocket& s, const IpAddr& group, int ifindex);
  int leave(UdpSocket& s, const IpAddr& group, int ifindex);

  // --- The receive queue.
  // The datagram at the head of the queue: its metadata.
  static UdpRxInfo rx_info(const PacketBuf& p);
  // Copies up to `len` payload bytes of `p` (and its chain) into iov; returns bytes copied.
  static size_t copy_payload(const PacketBuf& p, const iovec* iov, size_t iovcnt);
  // Removes the head datagram (after a non-peeking recv).
  void pop_rx(UdpSocket& s);
  // Is any address of ours `a` (for bind)?
  bool is_bindable(const IpAddr& a) const;
  // Stack default TTL / hop limit.
  int default_ttl() const;

 private:
  struct Cover;
  static Cover cover_of(const UdpSocket& s, const IpAddr& addr);
  bool conflicts(const UdpSocket& s, const IpAddr& addr, uint16_t port) const;
  int pick_ephemeral(const UdpSocket& s, const IpAddr& addr);
  void hash(UdpSocket& s);
  void unhash(UdpSocket& s);
  UdpSocket* lookup(const IpAddr& src, uint16_t sport, const IpAddr& dst, uint16_t dport) const;
  static int score(const UdpSocket& s, const IpAddr& src, uint16_t sport, const IpAddr& dst);
  uint32_t flow_hash(const IpAddr& src, uint16_t sport, const IpAddr& dst, uint16_t dport) const;
  void deliver(UdpSocket& s, PacketPtr p, const IpRx& rx, size_t payload_len);
  void deliver_all(PacketPtr p, const IpRx& rx, const UdpRepr& h);
  PacketPtr clone(const PacketBuf& p);
  bool trim_chain(PacketBuf& p, size_t len);

  Stack& stack_;
  uint64_t hash_seed_;
  std::vector<UdpSocket*> by_port_;  // 65536 chain heads, allocated once
  std::vector<std::unique_ptr<UdpSocket>> sockets_;

  Counter& rx_datagrams_;
  Counter& tx_datagrams_;
  Counter& drop_truncated_;
  Counter& drop_bad_length_;
  Counter& drop_bad_checksum_;
  Counter& drop_zero_checksum_v6_;
  Counter& drop_no_port_;
  Counter& drop_rcvbuf_;
  Counter& drop_no_buffer_;
  Counter& drop_no_headroom_;
  Counter& icmp_errors_;
};

}  // namespace shunt
