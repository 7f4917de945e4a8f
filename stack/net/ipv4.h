// IPv4 (RFC 791, RFC 1122 3.2): validation, options skipped safely, reassembly with memory
// limits and timeouts, fragmentation on send, local delivery to ICMP, IGMP and UDP.
#pragma once
#include <cstdint>

#include "stack/core/buffer.h"
#include "stack/net/addr.h"
#include "stack/net/ethernet.h"
#include "stack/net/ip_rx.h"

namespace shunt {

class Stack;

struct Ipv4Tx {
  Ipv4Addr src;  // unspecified: chosen from the route
  Ipv4Addr dst;
  uint8_t proto = 0;
  uint8_t ttl = 64;
  uint8_t tos = 0;
  bool dont_fragment = false;
  bool multicast_loop = true;   // IP_MULTICAST_LOOP: also deliver a copy to ourselves
  bool allow_broadcast = false; // SO_BROADCAST
};

class Ipv4 {
 public:
  explicit Ipv4(Stack& stack);
  ~Ipv4();
  // A received packet; data() is the IPv4 header.
  void on_rx(PacketPtr p, const EthRepr& eth);
  // Sends an upper-layer packet (data() is its header; it may be chained). Returns 0, or
  // -ENETUNREACH (no route), -EMSGSIZE (too big, or DF and over the MTU), -EACCES (broadcast
  // without allow_broadcast), -ENOBUFS (no buffers).
  int output(PacketPtr l4, const Ipv4Tx& tx);

 private:
  Stack& stack_;
};

}  // namespace shunt
