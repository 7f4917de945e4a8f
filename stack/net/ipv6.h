// IPv6 (RFC 8200): header validation, the extension-header walk with limits, reassembly,
// fragmentation on send, local delivery to ICMPv6 and UDP.
#pragma once
#include <cstdint>

#include "stack/core/buffer.h"
#include "stack/net/addr.h"
#include "stack/net/ethernet.h"
#include "stack/net/ip_rx.h"

namespace shunt {

class Stack;

struct Ipv6Tx {
  Ipv6Addr src;  // unspecified: chosen by source address selection
  Ipv6Addr dst;
  uint8_t next_header = 0;
  uint8_t hop_limit = 64;
  uint8_t traffic_class = 0;
  uint32_t flow_label = 0;
  bool multicast_loop = true;  // IPV6_MULTICAST_LOOP
  bool allow_unspecified_src = false;  // DAD probes are sent from ::
  bool router_alert = false;           // MLD reports carry a hop-by-hop router alert
};

class Ipv6 {
 public:
  explicit Ipv6(Stack& stack);
  ~Ipv6();
  // data() is the IPv6 header.
  void on_rx(PacketPtr p, const EthRepr& eth);
  // As Ipv4::output: 0 or -ENETUNREACH, -EMSGSIZE, -EADDRNOTAVAIL, -ENOBUFS.
  int output(PacketPtr l4, const Ipv6Tx& tx);

 private:
  Stack& stack_;
};

}  // namespace shunt
