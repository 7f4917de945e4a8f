// Neighbor Discovery (RFC 4861) and duplicate address detection (RFC 4862): the IPv6
// neighbour cache with NS/NA, neighbour unreachability detection, and DAD.
#pragma once
#include <optional>

#include "stack/core/buffer.h"
#include "stack/net/addr.h"
#include "stack/net/ip_rx.h"

namespace shunt {

class Stack;

class Ndp {
 public:
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

 private:
  Stack& stack_;
};

}  // namespace shunt
