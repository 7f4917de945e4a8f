#include "stack/net/route.h"

#include <algorithm>

namespace shunt {

void RouteTable::add(const Route& r) {
  cache_valid_ = false;
  remove(r.prefix, r.prefix_len);
  routes_.push_back(r);
}

void RouteTable::add_connected(const IpAddr& addr, int prefix_len) {
  Route r;
  r.prefix = addr;
  r.prefix_len = prefix_len;
  add(r);
}

void RouteTable::set_default_gateway(const IpAddr& gw) {
  Route r;
  r.prefix = gw.is_v4() ? IpAddr(Ipv4Addr{}) : IpAddr(Ipv6Addr{});
  r.prefix_len = 0;
  r.gateway = gw;
  add(r);
}

void RouteTable::remove(const IpAddr& prefix, int prefix_len) {
  cache_valid_ = false;
  std::erase_if(routes_, [&](const Route& r) {
    return r.prefix_len == prefix_len && prefix_match(prefix, r.prefix, prefix_len) &&
           r.prefix.family == prefix.family;
  });
}

std::optional<NextHop> RouteTable::lookup(const IpAddr& dst) const {
  if (cache_valid_ && cached_dst_ == dst) return cached_;
  cached_ = lookup_slow(dst);
  cached_dst_ = dst;
  cache_valid_ = true;
  return cached_;
}

std::optional<NextHop> RouteTable::lookup_slow(const IpAddr& dst) const {
  if (dst.is_multicast() || (dst.is_v4() && dst.v4.is_broadcast()) ||
      (dst.is_v6() && dst.v6.is_link_local())) {
    return NextHop{dst, false};
  }
  const Route* best = nullptr;
  for (const auto& r : routes_) {
    if (!prefix_match(dst, r.prefix, r.prefix_len)) continue;
    if (!best || r.prefix_len > best->prefix_len ||
        (r.prefix_len == best->prefix_len && r.metric < best->metric)) {
      best = &r;
    }
  }
  if (!best) return std::nullopt;
  if (best->gateway) return NextHop{*best->gateway, true};
  return NextHop{dst, false};
}

}  // namespace shunt
