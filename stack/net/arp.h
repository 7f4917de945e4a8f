// ARP (RFC 826): the neighbour cache for IPv4, resolution with a bounded pending queue and
// retries, gratuitous ARP and address conflict detection (RFC 5227).
#pragma once
#include <optional>

#include "stack/core/buffer.h"
#include "stack/net/addr.h"
#include "stack/net/ethernet.h"

namespace shunt {

class Stack;

class Arp {
 public:
  explicit Arp(Stack& stack);
  ~Arp();
  // A received ARP packet; data() is the ARP header.
  void on_rx(PacketPtr p, const EthRepr& eth);
  // Sends an IPv4 packet (data() is the IP header) to `next_hop` on the link: at once if the
  // neighbour is known, else queued (bounded) while it is resolved.
  void send_ipv4(PacketPtr ip_packet, Ipv4Addr next_hop);
  // Broadcasts a gratuitous ARP request for `a` (RFC 5227 3).
  void announce(Ipv4Addr a);
  std::optional<MacAddr> lookup(Ipv4Addr a) const;

 private:
  Stack& stack_;
};

}  // namespace shunt
