// ICMPv6 (RFC 4443): echo, rate-limited errors, and dispatch of NDP and MLD messages.
#pragma once
#include <cstdint>

#include "stack/core/buffer.h"
#include "stack/net/ip_rx.h"

namespace shunt {

class Stack;

class Icmp6 {
 public:
  explicit Icmp6(Stack& stack);
  ~Icmp6();
  void on_rx(PacketPtr p, const IpRx& rx);
  // type 1 (unreachable, e.g. code 4 port), 2 (packet too big, param = MTU), 3 (time
  // exceeded), 4 (parameter problem, param = pointer). Rate limited; not in reply to errors
  // or, except packet-too-big and parameter problem code 2, to multicast (RFC 4443 2.4(e)).
  void send_error(uint8_t type, uint8_t code, uint32_t param, const PacketBuf& offending, const IpRx& rx);

 private:
  Stack& stack_;
};

}  // namespace shunt
