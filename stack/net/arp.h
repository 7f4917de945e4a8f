// ARP (RFC 826): the neighbour cache for IPv4, resolution with a bounded pending queue and
// retries, gratuitous ARP and address conflict detection (RFC 5227).
#pragma once
#include <array>
#include <memory>
#include <optional>
#include <vector>

#include "stack/core/buffer.h"
#include "stack/core/timer_wheel.h"
#include "stack/net/addr.h"
#include "stack/net/ethernet.h"

namespace shunt {

class Stack;
struct Counter;

class Arp {
 public:
  explicit Arp(Stack& stack);
  ~Arp();
  // A received ARP packet; data() is the ARP header.
  void on_rx(PacketPtr p, const EthRepr& eth);
  // Sends an IPv4 packet (data() is the IP header) to `next_hop` on the link: at once if the
  // neighbour is known, else queued (bounded) while it is resolved.
  void send_ipv4(PacketPtr ip_packet, Ipv4Addr next_hop);
  // Broadcasts a gratuitous ARP request for `a` (RFC 5227 3), and once more 2 s later.
  void announce(Ipv4Addr a);
  std::optional<MacAddr> lookup(Ipv4Addr a) const;

  // The cache holds at most this many neighbours; a new one evicts the least recently used.
  static constexpr size_t kMaxEntries = 256;
  size_t cache_size() const { return used_; }
  // RFC 5227 2.4 DEFEND_INTERVAL.
  static constexpr Nanos kDefendInterval = 10 * kSecond;
  // RFC 5227 1.1 ANNOUNCE_NUM and ANNOUNCE_INTERVAL.
  static constexpr int kAnnounceNum = 2;
  static constexpr Nanos kAnnounceInterval = 2 * kSecond;

 private:
  struct Entry {
    enum class State : uint8_t { kFree, kIncomplete, kReachable };
    State state = State::kFree;
    Ipv4Addr ip;
    MacAddr mac;
    Nanos expires = 0;    // kReachable: trusted until then (RFC 1122 2.3.2.1)
    Nanos last_used = 0;  // for eviction
    int requests_sent = 0;
    int16_t next = -1;    // hash chain
    PacketQueue pending;  // kIncomplete: packets waiting for the answer
    Timer retry;
  };
  static size_t bucket_of(Ipv4Addr a) { return (a.v * 2654435761u) >> (32 - kBucketBits); }
  Entry* find(Ipv4Addr a) const;
  Entry* create(Ipv4Addr a);
  void remove(Entry& e);
  void resolved(Entry& e, const MacAddr& mac);
  void start_resolution(Entry& e);
  void on_retry(Entry& e);
  void send_request(Ipv4Addr target);
  void send_arp(uint16_t op, Ipv4Addr sender_ip, const MacAddr& target_mac, Ipv4Addr target_ip,
                const MacAddr& eth_dst);
  void on_conflict(Ipv4Addr ours, const MacAddr& theirs);
  void on_announce_timer(Nanos now);

  static constexpr int kBucketBits = 7;
  Stack& stack_;
  std::unique_ptr<Entry[]> entries_;
  std::array<int16_t, size_t(1) << kBucketBits> buckets_;
  size_t used_ = 0;
  Entry* last_ = nullptr;  // the last neighbour sent to: the fast path

  struct PendingAnnounce {
    Ipv4Addr addr;
    int left;
    Nanos due;
  };
  std::vector<PendingAnnounce> announces_;  // setup path only, one per address
  Timer announce_timer_;
  struct Defence {
    Ipv4Addr addr;
    Nanos last;
  };
  std::vector<Defence> defences_;  // one per address of ours

  Counter& rx_packets_;
  Counter& tx_requests_;
  Counter& tx_replies_;
  Counter& tx_announces_;
  Counter& conflicts_;
  Counter& defended_;
  Counter& drop_truncated_;
  Counter& drop_unsupported_;
  Counter& drop_bad_op_;
  Counter& drop_bad_sender_;
  Counter& drop_own_;
  Counter& drop_queue_full_;
  Counter& drop_unresolved_;
  Counter& drop_evicted_;
  Counter& drop_no_buffer_;
};

}  // namespace shunt
