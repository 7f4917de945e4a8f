// IPv4 (RFC 791, RFC 1122 3.2): validation, options skipped safely, reassembly with memory
// limits and timeouts, fragmentation on send, local delivery to ICMP, IGMP and UDP.
#pragma once
#include <cstdint>
#include <vector>

#include "stack/core/buffer.h"
#include "stack/core/timer_wheel.h"
#include "stack/net/addr.h"
#include "stack/net/ethernet.h"
#include "stack/net/ip_rx.h"

namespace shunt {

class Stack;
struct Counter;
struct Ipv4Repr;

struct Ipv4Tx {
  Ipv4Addr src;  // unspecified: chosen from the route
  Ipv4Addr dst;
  uint8_t proto = 0;
  uint8_t ttl = 64;
  uint8_t tos = 0;
  bool dont_fragment = false;
  bool multicast_loop = true;   // IP_MULTICAST_LOOP: also deliver a copy to ourselves
  bool allow_broadcast = false; // SO_BROADCAST
  bool router_alert = false;    // RFC 2113 option (IGMP)
};

class Ipv4 {
 public:
  explicit Ipv4(Stack& stack);
  ~Ipv4();
  // A received packet; data() is the IPv4 header.
  void on_rx(PacketPtr p, const EthRepr& eth);
  // Sends an upper-layer packet (data() is its header; it may be chained). Returns 0, or
  // -ENETUNREACH (no route), -EMSGSIZE (too big, or DF and over the MTU), -EACCES (broadcast
  // without allow_broadcast), -ENOBUFS (no buffers).
  int output(PacketPtr l4, const Ipv4Tx& tx);

  // Datagrams being reassembled and the buffer memory they hold (for tests and stats).
  size_t reassembly_in_progress() const { return reasm_active_; }
  size_t reassembly_bytes() const { return reasm_bytes_; }

  // At most this many datagrams are reassembled at once; a new one evicts the oldest.
  static constexpr size_t kMaxReassemblies = 64;

 private:
  // Where a datagram goes on the link, decided once per output().
  struct LinkTarget {
    enum class Kind : uint8_t { kLocal, kMulticast, kBroadcast, kUnicast } kind;
    Ipv4Addr next_hop;
    bool loop_copy = false;  // multicast to a group we are in, with multicast_loop
    bool wire = true;        // false: multicast with TTL 0, for this host only
  };
  void send_link(PacketPtr ip, const LinkTarget& t);
  int fragment_and_send(PacketPtr l4, const Ipv4Repr& hdr, size_t payload_len, const LinkTarget& t);
  void deliver(PacketPtr p, const IpRx& rx);

  // --- Reassembly (RFC 791 3.2, RFC 815). Fragments of one datagram are kept sorted by offset,
  // linked through PacketBuf::next; PacketBuf::user holds (offset << 32 | length).
  struct Reassembly {
    bool active = false;
    Ipv4Addr src, dst;
    uint16_t ident = 0;
    uint8_t proto = 0;
    PacketBuf* frags = nullptr;
    uint32_t frag_count = 0;
    uint32_t have_bytes = 0;    // payload bytes received (fragments never overlap)
    uint32_t total_len = 0;     // payload length once the last fragment is seen, else 0
    bool have_last = false;
    size_t mem = 0;             // buffer memory held
    Nanos deadline = 0;
    uint64_t started = 0;       // arrival order, for eviction
    uint16_t head_header_len = 0;  // of the first fragment, once it is here
    uint8_t ttl = 0, tos = 0;      // of the first fragment
    bool link_multicast = false, link_broadcast = false;
  };
  void reassemble(PacketPtr p, const Ipv4Repr& h, const EthRepr& eth);
  void reasm_drop(Reassembly& r, Counter& why);
  void reasm_complete(Reassembly& r);
  void reasm_arm_timer();
  void on_reasm_timer(Nanos now);

  Stack& stack_;
  uint16_t next_ident_;
  std::vector<Reassembly> reasm_;  // kMaxReassemblies slots, sized once
  size_t reasm_active_ = 0;
  size_t reasm_bytes_ = 0;
  uint64_t reasm_serial_ = 0;
  Timer reasm_timer_;

  Counter& rx_packets_;
  Counter& rx_delivered_;
  Counter& tx_packets_;
  Counter& tx_fragments_;
  Counter& drop_truncated_;
  Counter& drop_bad_version_;
  Counter& drop_bad_header_len_;
  Counter& drop_bad_total_len_;
  Counter& drop_bad_checksum_;
  Counter& drop_bad_option_;
  Counter& drop_bad_source_;
  Counter& drop_martian_;
  Counter& drop_not_for_us_;
  Counter& drop_link_broadcast_unicast_;
  Counter& drop_unknown_protocol_;
  Counter& drop_frag_bad_length_;
  Counter& drop_frag_too_big_;
  Counter& drop_frag_duplicate_;
  Counter& drop_reasm_overlap_;
  Counter& drop_reasm_inconsistent_;
  Counter& drop_reasm_too_many_frags_;
  Counter& drop_reasm_memory_;
  Counter& drop_reasm_timeout_;
  Counter& drop_reasm_evicted_;
  Counter& reasm_ok_;
  Counter& tx_no_route_;
  Counter& tx_no_buffer_;
  Counter& tx_too_big_;
};

}  // namespace shunt
