// ICMP for IPv4 (RFC 792, RFC 1122 3.2.2): echo, and rate-limited error messages.
#pragma once
#include <cstdint>

#include "stack/core/buffer.h"
#include "stack/net/ip_rx.h"

namespace shunt {

class Stack;

class Icmp {
 public:
  explicit Icmp(Stack& stack);
  ~Icmp();
  // data() is the ICMP header.
  void on_rx(PacketPtr p, const IpRx& rx);
  // Sends a destination-unreachable (type 3) with `code` quoting the offending datagram:
  // `offending` has data() at its upper-layer header, with rx.l3_len bytes of IP header before
  // it. Rate limited; never sent in reply to broadcast, multicast or ICMP errors (RFC 1122
  // 3.2.2).
  void send_unreachable(uint8_t code, const PacketBuf& offending, const IpRx& rx);

 private:
  Stack& stack_;
};

}  // namespace shunt
