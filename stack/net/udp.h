// UDP (RFC 768): demultiplexing to sockets, checksum rules for IPv4 and IPv6, port-unreachable.
#pragma once

#include "stack/core/buffer.h"
#include "stack/net/ip_rx.h"

namespace shunt {

class Stack;

class Udp {
 public:
  explicit Udp(Stack& stack);
  ~Udp();
  // data() is the UDP header.
  void on_rx(PacketPtr p, const IpRx& rx);
  // An ICMP/ICMPv6 error quoting a datagram we sent: `quoted` points at the quoted UDP header
  // (at least 8 bytes), `rx` describes the quoted IP header (src = us, dst = peer).
  void on_icmp_error(int err, const uint8_t* quoted, size_t len, const IpRx& quoted_ip);

 private:
  Stack& stack_;
};

}  // namespace shunt
