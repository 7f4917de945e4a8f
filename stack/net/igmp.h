// IGMPv3 (RFC 3376) host side: group membership with state-change and current-state reports.
#pragma once
#include <vector>

#include "stack/core/buffer.h"
#include "stack/core/timer_wheel.h"
#include "stack/net/addr.h"
#include "stack/net/ip_rx.h"

namespace shunt {

class Stack;
struct Counter;

class Igmp {
 public:
  explicit Igmp(Stack& stack);
  ~Igmp();
  void on_rx(PacketPtr p, const IpRx& rx);
  // Reference-counted membership (any-source). The first join and the last leave send
  // state-change reports.
  void join(Ipv4Addr group);
  void leave(Ipv4Addr group);
  // 224.0.0.1 (all systems) is always joined (RFC 1112 4).
  bool is_member(Ipv4Addr group) const {
    if (group.v == 0xe0000001u) return true;
    for (const auto& g : groups_) {
      if (g.addr == group) return true;
    }
    return false;
  }

  // RFC 3376 8.1 and 8.11.
  static constexpr int kDefaultRobustness = 2;
  static constexpr Nanos kUnsolicitedReportInterval = kSecond;

 private:
  struct Group {
    Ipv4Addr addr;
    int refs = 0;
    Nanos report_at = kNever;  // a pending answer to a group-specific query
  };
  struct Change {
    Ipv4Addr group;
    uint8_t record_type;
    int left;  // transmissions still to make
  };
  struct Record {
    uint8_t type;
    Ipv4Addr group;
  };
  void state_change(Ipv4Addr group, uint8_t record_type);
  void send_report(const std::vector<Record>& records);
  void on_change_timer(Nanos now);
  void on_query_timer(Nanos now);
  void arm_query_timer();

  Stack& stack_;
  std::vector<Group> groups_;    // joined groups (never 224.0.0.1)
  std::vector<Change> changes_;  // state-change reports still to retransmit
  Timer change_timer_;
  Timer query_timer_;
  Nanos general_at_ = kNever;    // a pending answer to a general query
  int robustness_ = kDefaultRobustness;

  Counter& rx_messages_;
  Counter& rx_queries_;
  Counter& rx_ignored_;
  Counter& tx_reports_;
  Counter& drop_truncated_;
  Counter& drop_bad_checksum_;
  Counter& drop_bad_length_;
  Counter& drop_bad_group_;
};

}  // namespace shunt
