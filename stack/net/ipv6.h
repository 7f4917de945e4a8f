// IPv6 (RFC 8200): header validation, the extension-header walk with limits, reassembly,
// fragmentation on send, local delivery to ICMPv6 and UDP.
#pragma once
#include <cstdint>
#include <memory>

#include "stack/core/buffer.h"
#include "stack/core/counters.h"
#include "stack/core/timer_wheel.h"
#include "stack/net/addr.h"
#include "stack/net/ethernet.h"
#include "stack/net/ip_rx.h"

namespace shunt {

class Stack;

struct Ipv6Tx {
  Ipv6Addr src;  // unspecified: chosen by source address selection
  Ipv6Addr dst;
  uint8_t next_header = 0;
  uint8_t hop_limit = 64;
  uint8_t traffic_class = 0;
  uint32_t flow_label = 0;
  bool multicast_loop = true;  // IPV6_MULTICAST_LOOP
  bool allow_unspecified_src = false;  // DAD probes are sent from ::
  bool router_alert = false;           // MLD reports carry a hop-by-hop router alert
};

class Ipv6 {
 public:
  // Limits on the extension-header walk: a chain longer than this is dropped, not walked.
  static constexpr int kMaxExtHeaders = 8;
  static constexpr size_t kMaxExtBytes = 512;
  // Datagrams being reassembled at once; more evict the oldest.
  static constexpr size_t kMaxReasm = 32;

  explicit Ipv6(Stack& stack);
  ~Ipv6();
  // data() is the IPv6 header.
  void on_rx(PacketPtr p, const EthRepr& eth);
  // As Ipv4::output: 0 or -ENETUNREACH, -EMSGSIZE, -EADDRNOTAVAIL, -ENOBUFS.
  int output(PacketPtr l4, const Ipv6Tx& tx);
  // The source output() would use for `tx` (unspecified if none and not allowed).
  bool pick_source(Ipv6Tx& tx) const;

  // Reassembly state, for tests.
  size_t reasm_in_progress() const;
  size_t reasm_bytes() const { return reasm_bytes_; }

 private:
  struct Reasm;
  // Walks the header chain from `off` (where header `nh` starts; `nh_field` is where its
  // number was read) and delivers or drops.
  void walk(PacketPtr p, IpRx& rx, size_t off, uint8_t nh, size_t nh_field, int count, bool dst_tentative);
  void deliver(PacketPtr p, IpRx& rx, size_t off, bool dst_tentative);
  void param_problem(PacketPtr p, IpRx& rx, uint8_t code, size_t pointer);
  // Returns false when the packet must be dropped (and has counted/answered).
  bool walk_options(PacketPtr& p, IpRx& rx, size_t off, size_t len);
  void on_fragment(PacketPtr p, IpRx& rx, size_t off, size_t nh_field, int count, bool dst_tentative);
  void reasm_drop(Reasm& r);
  void reasm_expire(Reasm& r);
  int transmit(PacketPtr ip, const Ipv6Tx& tx, const Ipv6Addr& next_hop, bool to_self);
  int fragment(PacketPtr ip, size_t unfrag_len, const Ipv6Tx& tx, const Ipv6Addr& next_hop, bool to_self);

  Stack& stack_;
  Counter& rx_packets_;
  Counter& tx_packets_;
  Counter& drop_truncated_;
  Counter& drop_bad_version_;
  Counter& drop_bad_length_;
  Counter& drop_bad_src_;
  Counter& drop_not_for_us_;
  Counter& drop_ext_limit_;
  Counter& drop_ext_truncated_;
  Counter& drop_bad_option_;
  Counter& drop_unknown_option_;
  Counter& drop_hbh_not_first_;
  Counter& drop_unknown_next_header_;
  Counter& drop_routing_header_;
  Counter& drop_no_next_header_;
  Counter& drop_tentative_;
  Counter& drop_frag_bad_length_;
  Counter& drop_frag_incomplete_chain_;
  Counter& drop_frag_overlap_;
  Counter& drop_frag_too_many_;
  Counter& drop_frag_memory_;
  Counter& drop_frag_timeout_;
  Counter& drop_frag_evicted_;
  Counter& reasm_ok_;
  Counter& tx_fragments_;
  Counter& tx_no_buffer_;
  Counter& tx_no_route_;

  std::unique_ptr<Reasm[]> reasm_;
  size_t reasm_bytes_ = 0;
  size_t reasm_limit_ = 0;
};

}  // namespace shunt
