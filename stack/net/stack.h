// One stack instance: one NIC port, single-threaded. poll() drains receive completions, runs
// due timers, flushes transmits and returns the next deadline. Protocol modules hang off it
// and reach each other through it.
#pragma once
#include <memory>
#include <optional>
#include <vector>

#include "stack/core/buffer.h"
#include "stack/core/clock.h"
#include "stack/core/config.h"
#include "stack/core/counters.h"
#include "stack/core/random.h"
#include "stack/core/timer_wheel.h"
#include "stack/driver/device.h"
#include "stack/net/addr.h"
#include "stack/net/ethernet.h"
#include "stack/net/route.h"

namespace shunt {

class Arp;
class Ipv4;
class Icmp;
class Igmp;
class Ipv6;
class Ndp;
class Icmp6;
class Mld;
class Udp;
class Tcp;

struct Ipv4Interface {
  Ipv4Addr addr;
  int prefix_len = 24;
  Ipv4Addr broadcast() const {
    uint32_t host = prefix_len >= 32 ? 0 : (~uint32_t(0) >> prefix_len);
    return Ipv4Addr{addr.v | host};
  }
};

struct Ipv6Interface {
  enum class State { kTentative, kPreferred, kDuplicate };
  Ipv6Addr addr;
  int prefix_len = 64;
  State state = State::kTentative;
};

class Stack {
 public:
  // The device and clock must outlive the stack. Frames pass through `device` only.
  Stack(Device& device, Clock& clock, const Config& config = Config{});
  ~Stack();
  Stack(const Stack&) = delete;
  Stack& operator=(const Stack&) = delete;

  // --- Setup.
  // Adds an address with its connected route. IPv4: announces it with a gratuitous ARP.
  // IPv6: starts duplicate address detection; the address is usable once it is kPreferred.
  // The IPv6 link-local address is added automatically at construction.
  void add_address(const IpAddr& addr, int prefix_len);
  void set_default_gateway(const IpAddr& gw) { routes_.set_default_gateway(gw); }

  // --- The loop.
  // Receives and processes up to a burst of frames, fires due timers, flushes transmits.
  // Returns the earliest time the stack next needs poll() without new input (or kNever).
  Nanos poll();

  // --- For protocol modules.
  Nanos now() const { return clock_.now(); }
  Clock& clock() { return clock_; }
  TimerWheel& timers() { return timers_; }
  BufferPool& pool() { return pool_; }
  Counters& counters() { return counters_; }
  Random& random() { return random_; }
  const Config& config() const { return config_; }
  const DeviceInfo& device_info() const { return device_.info(); }
  const MacAddr& mac() const { return device_.info().mac; }
  uint32_t mtu() const { return device_.info().mtu; }
  RouteTable& routes() { return routes_; }

  // A transmit buffer with room for every header in front.
  PacketPtr alloc_tx() { return pool_.alloc(PacketBuf::kDefaultHeadroom); }
  // Prepends an Ethernet header and queues the frame for the device.
  void send_eth(PacketPtr p, const MacAddr& dst, uint16_t ethertype);
  // Queues a complete frame. Outside poll() it goes to the device at once; inside, at the end
  // of the poll (in order, in one burst).
  void send_frame(PacketPtr frame);
  // Feeds a frame back into our own receive path at the next poll() (IP_MULTICAST_LOOP,
  // traffic to our own address).
  void loop_back(PacketPtr frame);
  // Frames looped back and not yet processed: the stack needs poll() now.
  bool loopback_pending() const { return !loop_queue_.empty(); }

  // --- Addresses.
  const std::vector<Ipv4Interface>& ipv4_addresses() const { return v4_; }
  std::vector<Ipv6Interface>& ipv6_addresses() { return v6_; }
  const std::vector<Ipv6Interface>& ipv6_addresses() const { return v6_; }
  bool is_local_v4(Ipv4Addr a) const;
  // Assigned to us and not tentative or duplicate.
  bool is_local_v6(const Ipv6Addr& a) const;
  // Is `a` a (subnet-directed) broadcast address of one of our IPv4 subnets?
  bool is_broadcast_v4(Ipv4Addr a) const;
  // The source address to use towards `dst` (RFC 6724 in its simplest form for IPv6: same
  // scope first, then a matching prefix), or nullopt if there is none.
  std::optional<IpAddr> source_for(const IpAddr& dst) const;
  Ipv6Addr link_local() const { return link_local_; }

  Arp& arp() { return *arp_; }
  Ipv4& ipv4() { return *ipv4_; }
  Icmp& icmp() { return *icmp_; }
  Igmp& igmp() { return *igmp_; }
  Ipv6& ipv6() { return *ipv6_; }
  Ndp& ndp() { return *ndp_; }
  Icmp6& icmp6() { return *icmp6_; }
  Mld& mld() { return *mld_; }
  Udp& udp() { return *udp_; }
  Tcp& tcp() { return *tcp_; }

 private:
  void on_frame(PacketPtr frame);
  void flush();

  Device& device_;
  Clock& clock_;
  Config config_;
  Counters counters_;
  BufferPool pool_;
  TimerWheel timers_;
  Random random_;
  RouteTable routes_;
  std::vector<Ipv4Interface> v4_;
  std::vector<Ipv6Interface> v6_;
  Ipv6Addr link_local_;

  static constexpr size_t kBurst = 32;
  PacketPtr tx_[kBurst];
  PacketPtr rx_[kBurst];
  size_t tx_count_ = 0;
  bool in_poll_ = false;
  PacketQueue loop_queue_;

  Counter& rx_frames_;
  Counter& rx_bytes_;
  Counter& tx_frames_;
  Counter& tx_bytes_;
  Counter& tx_dropped_;
  Counter& drop_eth_truncated_;
  Counter& drop_eth_not_ethernet_ii_;
  Counter& drop_eth_vlan_;
  Counter& drop_eth_not_for_us_;
  Counter& drop_eth_ethertype_;
  Counter& drop_no_buffer_;

  std::unique_ptr<Arp> arp_;
  std::unique_ptr<Ipv4> ipv4_;
  std::unique_ptr<Icmp> icmp_;
  std::unique_ptr<Igmp> igmp_;
  std::unique_ptr<Ipv6> ipv6_;
  std::unique_ptr<Ndp> ndp_;
  std::unique_ptr<Icmp6> icmp6_;
  std::unique_ptr<Mld> mld_;
  std::unique_ptr<Udp> udp_;
  std::unique_ptr<Tcp> tcp_;
};

}  // namespace shunt
