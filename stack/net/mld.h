// MLDv2 (RFC 3810) host side: multicast listening with state-change and current-state reports.
#pragma once
#include <cstdint>

#include "stack/core/buffer.h"
#include "stack/core/counters.h"
#include "stack/core/timer_wheel.h"
#include "stack/net/addr.h"
#include "stack/net/ip_rx.h"

namespace shunt {

class Stack;

class Mld {
 public:
  static constexpr size_t kMaxGroups = 64;   // groups joined at once; more joins are refused
  static constexpr int kRobustness = 2;      // RFC 3810 9.1
  static constexpr Nanos kUnsolicitedReportInterval = 1 * kSecond;  // RFC 3810 9.11

  explicit Mld(Stack& stack);
  ~Mld();
  void on_rx(PacketPtr p, const IpRx& rx);
  // Reference-counted, any-source. Also used for the solicited-node groups of our addresses.
  void join(const Ipv6Addr& group);
  void leave(const Ipv6Addr& group);
  bool is_member(const Ipv6Addr& group) const;

 private:
  struct Group {
    Ipv6Addr addr;
    int refs = 0;
    bool used = false;          // joined, or left with state-change reports still to send
    uint8_t change_type = 0;    // CHANGE_TO_EXCLUDE / CHANGE_TO_INCLUDE while retransmitting
    int change_left = 0;
    bool query_pending = false; // an address-specific query awaits our answer
  };
  enum class ReportKind { kStateChange, kCurrentState };
  Group* find(const Ipv6Addr& g);
  static bool reportable(const Ipv6Addr& g);
  void send_report(ReportKind kind);
  void arm_change_timer();
  void on_query(const uint8_t* d, size_t len, const IpRx& rx);

  Stack& stack_;
  Group groups_[kMaxGroups];
  size_t high_ = 0;  // groups_[0, high_) may be in use
  bool general_pending_ = false;
  Timer change_timer_;
  Timer response_timer_;

  Counter& tx_reports_;
  Counter& rx_queries_;
  Counter& drop_invalid_;
  Counter& ignored_reports_;
  Counter& join_refused_;
};

}  // namespace shunt
