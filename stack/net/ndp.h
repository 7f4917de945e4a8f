// Neighbor Discovery (RFC 4861) and duplicate address detection (RFC 4862): the IPv6
// neighbour cache with NS/NA, neighbour unreachability detection, and DAD.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>

#include "stack/core/buffer.h"
#include "stack/core/counters.h"
#include "stack/core/timer_wheel.h"
#include "stack/net/addr.h"
#include "stack/net/ip_rx.h"

namespace shunt {

class Stack;

// RFC 4861 7.3.2 neighbour cache entry states.
enum class NeighborState : uint8_t { kIncomplete, kReachable, kStale, kDelay, kProbe };

class Ndp {
 public:
  static constexpr size_t kCacheSize = 256;   // entries; the least recently used is evicted
  static constexpr size_t kBuckets = 512;     // hash buckets (a power of two)
  static constexpr size_t kMaxDad = 16;       // addresses under DAD at once
  static constexpr Nanos kDelayFirstProbe = 5 * kSecond;  // RFC 4861 10 DELAY_FIRST_PROBE_TIME

  explicit Ndp(Stack& stack);
  ~Ndp();
  // An NDP message (type 133..137) handed over by ICMPv6; data() is the ICMPv6 header.
  void on_rx(PacketPtr p, const IpRx& rx);
  // Sends an IPv6 packet (data() is the IPv6 header) to `next_hop` on the link, resolving it.
  void send_ipv6(PacketPtr ip_packet, const Ipv6Addr& next_hop);
  // Starts DAD for a new address (it is in Stack::ipv6_addresses() as kTentative).
  void start_dad(const Ipv6Addr& a);
  // Upper layers report forward progress (RFC 4861 7.3.1), e.g. TCP ACKs.
  void confirm_reachable(const Ipv6Addr& a);
  std::optional<MacAddr> lookup(const Ipv6Addr& a) const;
  // For tests and statistics.
  std::optional<NeighborState> state_of(const Ipv6Addr& a) const;
  size_t pending_count(const Ipv6Addr& a) const;

 private:
  struct Entry;
  struct Dad;
  Entry* find(const Ipv6Addr& a) const;
  Entry* insert(const Ipv6Addr& a);
  void remove(Entry& e);
  static size_t bucket_of(const Ipv6Addr& a);
  void on_timer(Entry& e);
  void on_dad_timer(Dad& d);
  void set_reachable(Entry& e);
  void set_state(Entry& e, NeighborState s);
  void flush_pending(Entry& e);
  void on_ns(const uint8_t* d, size_t len, const IpRx& rx);
  void on_na(const uint8_t* d, size_t len, const IpRx& rx);
  void dad_conflict(const Ipv6Addr& a, const char* why);
  void send_ns(const Ipv6Addr& target, const Ipv6Addr& dst, bool dad);
  void send_na(const Ipv6Addr& target, const Ipv6Addr& dst, bool solicited);

  Stack& stack_;
  std::unique_ptr<Entry[]> entries_;
  int16_t buckets_[kBuckets];
  int16_t free_ = -1;
  uint64_t use_seq_ = 0;
  std::unique_ptr<Dad[]> dad_;

  Counter& rx_ns_;
  Counter& rx_na_;
  Counter& tx_ns_;
  Counter& tx_na_;
  Counter& drop_invalid_;
  Counter& drop_bad_option_;
  Counter& drop_not_our_target_;
  Counter& ignored_router_msgs_;
  Counter& na_ignored_;
  Counter& drop_queue_full_;
  Counter& drop_unresolved_;
  Counter& drop_cache_full_;
  Counter& evicted_;
  Counter& unreachable_;
  Counter& dad_duplicate_;
  Counter& dad_ok_;
  Counter& address_conflict_;
};

}  // namespace shunt
