#include "stack/net/stack.h"

#include <algorithm>

#include "stack/core/log.h"
#include "stack/net/arp.h"
#include "stack/net/icmp.h"
#include "stack/net/icmp6.h"
#include "stack/net/igmp.h"
#include "stack/net/ipv4.h"
#include "stack/net/ipv6.h"
#include "stack/net/mld.h"
#include "stack/net/ndp.h"
#include "stack/net/tcp/tcp.h"
#include "stack/net/udp.h"

namespace shunt {

Stack::Stack(Device& device, Clock& clock, const Config& config)
    : device_(device),
      clock_(clock),
      config_(config),
      pool_(size_t(config.buffers)),
      random_(uint64_t(config.seed)),
      rx_frames_(counters_.add("eth.rx_frames")),
      rx_bytes_(counters_.add("eth.rx_bytes")),
      tx_frames_(counters_.add("eth.tx_frames")),
      tx_bytes_(counters_.add("eth.tx_bytes")),
      tx_dropped_(counters_.add("eth.drop.tx_device")),
      drop_eth_truncated_(counters_.add("eth.drop.truncated")),
      drop_eth_not_ethernet_ii_(counters_.add("eth.drop.not_ethernet_ii")),
      drop_eth_vlan_(counters_.add("eth.drop.vlan")),
      drop_eth_not_for_us_(counters_.add("eth.drop.not_for_us")),
      drop_eth_ethertype_(counters_.add("eth.drop.unknown_ethertype")),
      drop_no_buffer_(counters_.add("eth.drop.tx_no_headroom")) {
  timers_.advance(clock_.now());
  device_.attach(pool_);
  arp_ = std::make_unique<Arp>(*this);
  ipv4_ = std::make_unique<Ipv4>(*this);
  icmp_ = std::make_unique<Icmp>(*this);
  igmp_ = std::make_unique<Igmp>(*this);
  ipv6_ = std::make_unique<Ipv6>(*this);
  ndp_ = std::make_unique<Ndp>(*this);
  icmp6_ = std::make_unique<Icmp6>(*this);
  mld_ = std::make_unique<Mld>(*this);
  udp_ = std::make_unique<Udp>(*this);
  tcp_ = std::make_unique<Tcp>(*this);
  if (!device_.info().mac.is_zero()) {
    link_local_ = Ipv6Addr::link_local_from_mac(device_.info().mac);
    add_address(link_local_, 64);
  }
}

Stack::~Stack() {
  // The driver's buffers (posted receives, sends in flight) and then the modules' timers and
  // queues go back to the pool before it is destroyed.
  device_.detach();
  tcp_.reset();
  udp_.reset();
  mld_.reset();
  icmp6_.reset();
  ndp_.reset();
  ipv6_.reset();
  igmp_.reset();
  icmp_.reset();
  ipv4_.reset();
  arp_.reset();
  for (auto& t : tx_) t.reset();
  for (auto& r : rx_) r.reset();
  loop_queue_.clear();
}

void Stack::add_address(const IpAddr& addr, int prefix_len) {
  if (addr.is_v4()) {
    prefix_len = std::clamp(prefix_len, 0, 32);
    for (const auto& i : v4_) {
      if (i.addr == addr.v4) return;
    }
    v4_.push_back(Ipv4Interface{addr.v4, prefix_len});
    routes_.add_connected(addr, prefix_len);
    arp_->announce(addr.v4);
    return;
  }
  prefix_len = std::clamp(prefix_len, 0, 128);
  for (const auto& i : v6_) {
    if (i.addr == addr.v6) return;
  }
  Ipv6Interface i;
  i.addr = addr.v6;
  i.prefix_len = prefix_len;
  i.state = config_.dad_transmits > 0 ? Ipv6Interface::State::kTentative : Ipv6Interface::State::kPreferred;
  v6_.push_back(i);
  if (!addr.v6.is_link_local()) routes_.add_connected(addr, prefix_len);
  // RFC 4862 5.4.2: join the solicited-node group before probing.
  mld_->join(addr.v6.solicited_node());
  if (i.state == Ipv6Interface::State::kTentative) ndp_->start_dad(addr.v6);
}

bool Stack::is_local_v4(Ipv4Addr a) const {
  for (const auto& i : v4_) {
    if (i.addr == a) return true;
  }
  return false;
}

bool Stack::is_local_v6(const Ipv6Addr& a) const {
  for (const auto& i : v6_) {
    if (i.addr == a) return i.state == Ipv6Interface::State::kPreferred;
  }
  return false;
}

bool Stack::is_broadcast_v4(Ipv4Addr a) const {
  if (a.is_broadcast()) return true;
  for (const auto& i : v4_) {
    if (i.prefix_len < 31 && i.broadcast() == a) return true;
  }
  return false;
}

std::optional<IpAddr> Stack::source_for(const IpAddr& dst) const {
  if (dst.is_v4()) {
    const Ipv4Interface* best = nullptr;
    for (const auto& i : v4_) {
      if (prefix_match(dst, IpAddr(i.addr), i.prefix_len)) return IpAddr(i.addr);
      if (!best) best = &i;
    }
    if (best) return IpAddr(best->addr);
    return std::nullopt;
  }
  // RFC 6724 5, rules 1, 2 and 8 (same address, matching scope, longest matching prefix).
  const Ipv6Interface* best = nullptr;
  bool dst_ll = dst.v6.is_link_local() || (dst.v6.is_multicast() && (dst.v6.b[1] & 0x0f) <= 2);
  for (const auto& i : v6_) {
    if (i.state != Ipv6Interface::State::kPreferred) continue;
    if (i.addr == dst.v6) return IpAddr(i.addr);
    if (i.addr.is_link_local() != dst_ll) {
      if (!best) best = &i;
      continue;
    }
    if (!best || best->addr.is_link_local() != dst_ll || prefix_match(dst, IpAddr(i.addr), i.prefix_len)) {
      best = &i;
    }
  }
  if (best) return IpAddr(best->addr);
  return std::nullopt;
}

void Stack::send_eth(PacketPtr p, const MacAddr& dst, uint16_t ethertype) {
  uint8_t* h = p->prepend(kEthHeaderLen);
  if (!h) {
    ++drop_no_buffer_;
    return;
  }
  EthRepr::emit(h, dst, mac(), ethertype);
  send_frame(std::move(p));
}

void Stack::send_frame(PacketPtr frame) {
  ++tx_frames_;
  tx_bytes_.inc(frame->size());
  tx_[tx_count_++] = std::move(frame);
  if (!in_poll_ || tx_count_ == kBurst) flush();
}

void Stack::flush() {
  if (tx_count_ == 0) return;
  size_t n = tx_count_;
  tx_count_ = 0;
  size_t sent = device_.tx_burst(tx_, n);
  if (sent < n) tx_dropped_.inc(n - sent);
  for (size_t i = 0; i < n; ++i) tx_[i].reset();
}

void Stack::loop_back(PacketPtr frame) { loop_queue_.push(std::move(frame)); }

Nanos Stack::poll() {
  in_poll_ = true;
  const Nanos t = clock_.now();
  const Nanos device_deadline = device_.service(t);
  // rx_ is a member: a local array of handles would be built and destroyed on every poll.
  size_t n = device_.rx_burst(rx_, kBurst);
  for (size_t i = 0; i < n; ++i) on_frame(std::move(rx_[i]));
  // Frames we sent to ourselves; bounded so a loop cannot starve the device.
  for (size_t i = 0; i < kBurst && !loop_queue_.empty(); ++i) on_frame(loop_queue_.pop());
  timers_.advance(t);
  flush();
  in_poll_ = false;
  if (!loop_queue_.empty() || n == kBurst) return t;
  return std::min(timers_.next_deadline(), device_deadline);
}

void Stack::on_frame(PacketPtr frame) {
  ++rx_frames_;
  rx_bytes_.inc(frame->size());
  auto r = EthRepr::parse(frame->data(), frame->size());
  if (!r.repr) {
    switch (r.error) {
      case EthError::kTruncated: ++drop_eth_truncated_; break;
      case EthError::kNotEthernetII: ++drop_eth_not_ethernet_ii_; break;
      case EthError::kTooManyTags: ++drop_eth_vlan_; break;
    }
    return;
  }
  const EthRepr& eth = *r.repr;
  // One port, no VLAN interfaces yet: tagged frames are parsed but not ours.
  if (eth.vlan_count && eth.vlan_id != 0) {
    ++drop_eth_vlan_;
    return;
  }
  if (eth.dst != mac() && !eth.dst.is_multicast()) {
    ++drop_eth_not_for_us_;
    return;
  }
  frame->pull(eth.header_len);
  switch (eth.ethertype) {
    case kEtherTypeIpv4: ipv4_->on_rx(std::move(frame), eth); break;
    case kEtherTypeIpv6: ipv6_->on_rx(std::move(frame), eth); break;
    case kEtherTypeArp: arp_->on_rx(std::move(frame), eth); break;
    default: ++drop_eth_ethertype_; break;
  }
}

}  // namespace shunt
