// The routing table for both families: connected routes from interface addresses plus gateways.
#pragma once
#include <optional>
#include <vector>

#include "stack/net/addr.h"

namespace shunt {

struct Route {
  IpAddr prefix;
  int prefix_len = 0;
  std::optional<IpAddr> gateway;  // none: the destination is on the link
  int metric = 0;
};

struct NextHop {
  IpAddr addr;        // the neighbour to send to: the destination itself, or a gateway
  bool via_gateway = false;
};

class RouteTable {
 public:
  void add(const Route& r);
  void add_connected(const IpAddr& addr, int prefix_len);
  // Replaces the default route of the gateway's family.
  void set_default_gateway(const IpAddr& gw);
  void remove(const IpAddr& prefix, int prefix_len);
  // Longest prefix match, then lowest metric. Multicast and limited broadcast are on-link.
  std::optional<NextHop> lookup(const IpAddr& dst) const;
  const std::vector<Route>& routes() const { return routes_; }

 private:
  std::optional<NextHop> lookup_slow(const IpAddr& dst) const;

  std::vector<Route> routes_;
  // The last answer: consecutive sends mostly go to the same destination. Any change to the
  // table clears it.
  mutable bool cache_valid_ = false;
  mutable IpAddr cached_dst_;
  mutable std::optional<NextHop> cached_;
};

}  // namespace shunt
