// IGMPv3 (RFC 3376) host side: group membership with state-change and current-state reports.
#pragma once

#include "stack/core/buffer.h"
#include "stack/net/addr.h"
#include "stack/net/ip_rx.h"

namespace shunt {

class Stack;

class Igmp {
 public:
  explicit Igmp(Stack& stack);
  ~Igmp();
  void on_rx(PacketPtr p, const IpRx& rx);
  // Reference-counted membership (any-source). The first join and the last leave send
  // state-change reports.
  void join(Ipv4Addr group);
  void leave(Ipv4Addr group);
  bool is_member(Ipv4Addr group) const;

 private:
  Stack& stack_;
};

}  // namespace shunt
