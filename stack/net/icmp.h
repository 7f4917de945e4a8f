// ICMP for IPv4 (RFC 792, RFC 1122 3.2.2): echo, and rate-limited error messages.
#pragma once
#include <cstdint>

#include "stack/core/buffer.h"
#include "stack/core/clock.h"
#include "stack/net/ip_rx.h"

namespace shunt {

class Stack;
struct Counter;

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
  // Any error message (type 3, 11, 12), with the same rules as send_unreachable.
  void send_error(uint8_t type, uint8_t code, const PacketBuf& offending, const IpRx& rx);
  // A datagram of ours (data() at its IPv4 header) was dropped because ARP could not resolve
  // its next hop: its sender is told "host unreachable" as if an ICMP error had arrived (Linux
  // ip_link_failure). Nothing is sent.
  void on_link_failure(const PacketBuf& ip);

 private:
  bool take_token();
  void on_error(const uint8_t* msg, size_t len, const IpRx& rx);

  Stack& stack_;
  // Token bucket for errors (RFC 1812 4.3.2.8): tokens in units of 1/kSecond of a token.
  int64_t tokens_ = 0;
  Nanos last_refill_ = 0;

  Counter& rx_messages_;
  Counter& rx_echo_request_;
  Counter& rx_echo_reply_;
  Counter& rx_errors_;
  Counter& tx_echo_reply_;
  Counter& tx_errors_;
  Counter& tx_rate_limited_;
  Counter& tx_suppressed_;
  Counter& drop_truncated_;
  Counter& drop_bad_checksum_;
  Counter& drop_broadcast_echo_;
  Counter& drop_unknown_type_;
  Counter& drop_bad_code_;
  Counter& drop_error_to_broadcast_;
  Counter& drop_bad_quote_;
  Counter& local_errors_;
};

}  // namespace shunt
