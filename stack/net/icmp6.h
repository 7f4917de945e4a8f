// ICMPv6 (RFC 4443): echo, rate-limited errors, and dispatch of NDP and MLD messages.
#pragma once
#include <cstdint>

#include "stack/core/buffer.h"
#include "stack/core/clock.h"
#include "stack/core/counters.h"
#include "stack/net/ip_rx.h"

namespace shunt {

class Stack;
struct Ipv6Tx;

class Icmp6 {
 public:
  explicit Icmp6(Stack& stack);
  ~Icmp6();
  void on_rx(PacketPtr p, const IpRx& rx);
  // type 1 (unreachable, e.g. code 4 port), 2 (packet too big, param = MTU), 3 (time
  // exceeded), 4 (parameter problem, param = pointer). Rate limited; not in reply to errors
  // or, except packet-too-big and parameter problem code 2, to multicast (RFC 4443 2.4(e)).
  // `offending` has data() at rx.l3_len bytes past the start of its IPv6 header.
  void send_error(uint8_t type, uint8_t code, uint32_t param, const PacketBuf& offending, const IpRx& rx);
  // A packet of ours (data() at its IPv6 header) was dropped because neighbour discovery could
  // not resolve its next hop (RFC 4861 7.2.2): its sender is told "address unreachable" as if
  // an ICMPv6 error had arrived. Nothing is sent.
  void on_link_failure(const PacketBuf& ip);
  // Sends an ICMPv6 message (data() at its header, checksum field anything): picks the source
  // as Ipv6::output would, fills in the checksum (RFC 4443 2.3) and hands it to IPv6.
  int output(PacketPtr msg, const Ipv6Tx& tx);

 private:
  bool take_token();
  void on_error(const uint8_t* d, size_t len, const IpRx& rx);

  Stack& stack_;
  Counter& rx_messages_;
  Counter& tx_messages_;
  Counter& drop_truncated_;
  Counter& drop_bad_checksum_;
  Counter& drop_unknown_type_;
  Counter& drop_bad_quote_;
  Counter& rx_echo_reply_;
  Counter& rx_errors_;
  Counter& tx_echo_reply_;
  Counter& tx_errors_;
  Counter& error_rate_limited_;
  Counter& error_suppressed_;
  Counter& drop_no_buffer_;
  Counter& local_errors_;
  // RFC 4443 2.4(f): a token bucket over errors sent.
  double tokens_ = 0;
  Nanos last_refill_ = 0;
};

}  // namespace shunt
