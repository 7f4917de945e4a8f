// MLDv2 (RFC 3810) host side: multicast listening with state-change and current-state reports.
#pragma once

#include "stack/core/buffer.h"
#include "stack/net/addr.h"
#include "stack/net/ip_rx.h"

namespace shunt {

class Stack;

class Mld {
 public:
  explicit Mld(Stack& stack);
  ~Mld();
  void on_rx(PacketPtr p, const IpRx& rx);
  // Reference-counted, any-source. Also used for the solicited-node groups of our addresses.
  void join(const Ipv6Addr& group);
  void leave(const Ipv6Addr& group);
  bool is_member(const Ipv6Addr& group) const;

 private:
  Stack& stack_;
};

}  // namespace shunt
