// Topologies of Shunt hosts and ns-3 hosts, built from C++ (issue 5, "Topologies").
//
// A Topology owns one ns-3 simulation: its nodes, links, routers and switches, and the hosts on
// them. A host is either a Shunt host (a node with a Mlx5NetDevice whose PHY is the link's device,
// and a ShuntHost application: no ns-3 InternetStack there) or an ns-3 host (ns-3's InternetStack
// with the link's device as its interface). Builders:
//   TwoHosts  two hosts back to back on one EthLink cable (or a CSMA segment);
//   Dumbbell  left hosts -> left router -> bottleneck -> right router -> right hosts, with a
//             traffic-control queue disc (FIFO drop-tail, RED or CoDel) on the bottleneck;
//   Star      N hosts, each on its own cable to a layer-2 switch (ns-3's BridgeNetDevice).
//
// Determinism: the same TopologyOptions (ns-3 seed and run, shunt::Config::seed) give the same
// simulation, event for event, even when several topologies are built one after the other in one
// process. Every MAC address is set from the build order (never Mac48Address::Allocate's global
// counter), and every ns-3 random variable (error models, ARP/NDP jitter, RED) gets an explicit
// stream number (never the global automatic streams).
//
// One Topology at a time per process: the destructor calls ns3::Simulator::Destroy().
#pragma once
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include <ns3/ipv4-address.h>
#include <ns3/ipv6-address.h>
#include <ns3/mac48-address.h>
#include <ns3/net-device-container.h>
#include <ns3/net-device.h>
#include <ns3/node-container.h>
#include <ns3/node.h>
#include <ns3/queue-disc.h>

#include "nicmodel/ns3/shunt_host.h"
#include "stack/core/clock.h"
#include "stack/core/config.h"
#include "stack/net/addr.h"

namespace nicmodel {

using shunt::Nanos;

// An ns-3 error model on the receiving side of each end of a link (each end its own instance and
// random stream).
struct ErrorSpec {
  enum class Kind { kNone, kRate, kBurst, kList };
  Kind kind = Kind::kNone;
  // kRate: probability that a frame is corrupt (ns3::RateErrorModel, per packet).
  // kBurst: probability that a burst of losses starts at a frame (ns3::BurstErrorModel).
  double rate = 0;
  // kBurst: burst length, uniform in [burst_min, burst_max] frames.
  uint32_t burst_min = 1, burst_max = 4;
  // kList: ns-3 packet uids to corrupt (ns3::ListErrorModel). Uids come from a process-wide
  // counter, so a list names packets of one run only.
  std::vector<uint32_t> uids;
  // ns-3 random stream of the first end's model (the second end takes stream + 1); negative:
  // the topology numbers it in build order.
  int64_t stream = -1;

  static ErrorSpec None() { return {}; }
  static ErrorSpec Rate(double p, int64_t stream = -1);
  static ErrorSpec Burst(double p, uint32_t min_len, uint32_t max_len, int64_t stream = -1);
  static ErrorSpec List(std::vector<uint32_t> uids);
};

struct LinkSpec {
  uint64_t rate_bps = 10'000'000'000ull;
  Nanos delay = 1'000;             // propagation, one way
  uint32_t mtu = 1500;             // IP MTU of both ends
  uint32_t queue_packets = 1'000;  // each device's transmit queue (DropTailQueue)
  ErrorSpec error;
};

enum class HostKind { kShunt, kNs3 };
enum class Medium { kEthLink, kCsma };

// The bottleneck's queue discipline (ns-3 traffic-control), at both ends of the bottleneck.
struct QueueDiscSpec {
  enum class Kind { kDropTail, kRed, kCoDel };
  Kind kind = Kind::kDropTail;  // kDropTail is ns3::FifoQueueDisc
  uint32_t max_packets = 100;
  // The bottleneck devices' own transmit queue under the disc: small, so that the backlog builds
  // in the disc (the device stops the disc while its queue is full).
  uint32_t device_packets = 2;
  // RED thresholds in packets; 0: max_packets / 5 and max_packets / 2.
  uint32_t red_min_th = 0, red_max_th = 0;
  // CoDel's target sojourn time and interval (RFC 8289 defaults are 5 ms / 100 ms, for the
  // Internet; a data-centre bottleneck drains far faster).
  Nanos codel_target = 50'000;
  Nanos codel_interval = 1'000'000;
};

struct TopologyOptions {
  uint32_t ns3_seed = 1;  // ns3::RngSeedManager::SetSeed
  uint64_t ns3_run = 1;   // ns3::RngSeedManager::SetRun
  // Every Shunt host's configuration; host i runs with seed config.seed + i.
  shunt::Config config;
  // RFC 4862 duplicate address detection on every host (Shunt and ns-3). Off by default: the
  // topology's addresses are unique by construction, and DAD would hold each IPv6 address
  // tentative for a simulated second.
  bool dad = false;
};

struct TopologyHost {
  HostKind kind = HostKind::kShunt;
  ns3::Ptr<ns3::Node> node;
  ns3::Ptr<ShuntHost> shunt;         // kShunt only
  ns3::Ptr<ns3::NetDevice> phy;      // the host's device on its link (EthLink or CSMA)
  ns3::Ptr<ns3::NetDevice> far_end;  // the router or switch port it is cabled to (null if none)
  ns3::Mac48Address mac;
  shunt::Ipv4Addr v4;  // 10.x.y.z
  shunt::Ipv6Addr v6;  // fd00:...
  int v4_prefix = 24, v6_prefix = 64;
  uint32_t ns3_interface = 0;  // kNs3: the Ipv4/Ipv6 interface index of `phy`

  shunt::IpAddr addr(bool ipv6 = false) const {
    return ipv6 ? shunt::IpAddr(v6) : shunt::IpAddr(v4);
  }
  ns3::Ipv4Address ns3_v4() const { return ns3::Ipv4Address(v4.v); }
  ns3::Ipv6Address ns3_v6() const;
};

class Topology {
 public:
  // The builders throw std::runtime_error when a host cannot be set up (e.g. an MTU the NIC
  // does not take).
  //
  // 10.0.0.1/24 and 10.0.0.2/24, fd00::1/64 and fd00::2/64.
  static std::unique_ptr<Topology> TwoHosts(HostKind a, HostKind b, const LinkSpec& link,
                                            const TopologyOptions& options = {},
                                            Medium medium = Medium::kEthLink);
  // Hosts 0..n_left-1 on the left, n_left..n_left+n_right-1 on the right; `kinds` has one entry
  // per host, or a single entry for all. Left host i: 10.1.(i+1).2/24 (gateway .1),
  // fd00:1:(i+1)::2/64 (gateway ::1); right host j: 10.2.(j+1).2/24, fd00:2:(j+1)::2/64. The
  // bottleneck is 10.0.0.0/24 and fd00::/64 (left router .1, right router .2); the routers
  // have static routes to the other side. `queue` applies to both bottleneck ends.
  static std::unique_ptr<Topology> Dumbbell(size_t n_left, size_t n_right,
                                            const std::vector<HostKind>& kinds,
                                            const LinkSpec& edge, const LinkSpec& bottleneck,
                                            const QueueDiscSpec& queue,
                                            const TopologyOptions& options = {});
  // Host i: 10.0.0.(i+1)/24, fd00::(i+1)/64, on its own cable to switch port i. `links` has one
  // entry per host (the cable of host i, both ends) or a single entry for all.
  static std::unique_ptr<Topology> Star(size_t n, const std::vector<HostKind>& kinds,
                                        const std::vector<LinkSpec>& links,
                                        const TopologyOptions& options = {});
  static std::unique_ptr<Topology> Star(size_t n, const std::vector<HostKind>& kinds,
                                        const LinkSpec& link, const TopologyOptions& options = {}) {
    return Star(n, kinds, std::vector<LinkSpec>{link}, options);
  }

  ~Topology();
  Topology(const Topology&) = delete;
  Topology& operator=(const Topology&) = delete;

  size_t size() const { return hosts_.size(); }
  TopologyHost& host(size_t i) { return hosts_.at(i); }
  // The Shunt host i (throws if host i is an ns-3 host).
  ShuntHost& shunt(size_t i);
  ns3::NodeContainer& nodes() { return nodes_; }
  // Dumbbell: the routers, and the queue discs at the left (towards the right) and right ends
  // of the bottleneck; null otherwise.
  ns3::Ptr<ns3::Node> left_router() const { return left_router_; }
  ns3::Ptr<ns3::Node> right_router() const { return right_router_; }
  ns3::Ptr<ns3::QueueDisc> bottleneck_queue_disc(bool left = true) const {
    return left ? left_disc_ : right_disc_;
  }
  // Star: the switch node; its port i faces host i (host(i).far_end).
  ns3::Ptr<ns3::Node> switch_node() const { return switch_; }

  // pcap (DLT_EN10MB) of every link device, hosts', routers' and switch ports', through ns-3's
  // tracing: `prefix-<node>-<device>.pcap`. Call before Run(). Files are complete once the
  // Topology is destroyed.
  void EnablePcap(const std::string& prefix);
  const std::vector<std::string>& pcap_files() const { return pcap_files_; }

  // Runs the simulation until virtual time `until` (absolute, ns).
  void Run(Nanos until);
  static Nanos Now();

  // Frames the error models (or a bad FCS) dropped at the receiving end of every link device.
  uint64_t phy_rx_drops() const;
  // Frames the transmit queue of `device` (EthLink or CSMA) dropped.
  static uint64_t TxQueueDrops(ns3::Ptr<ns3::NetDevice> device);

 private:
  explicit Topology(const TopologyOptions& options);

  struct LinkEnds {
    ns3::Ptr<ns3::NetDevice> a, b;
  };
  // A cable between a and b per `link`, both devices with MAC addresses from the build order.
  LinkEnds Cable(ns3::Ptr<ns3::Node> a, ns3::Ptr<ns3::Node> b, const LinkSpec& link, Medium medium);
  void AddErrorModels(const LinkEnds& ends, const ErrorSpec& error);
  ns3::Mac48Address NextMac();
  int64_t NextStreams(int64_t n);
  // Puts a host of `kind` on `node` whose link device is `phy`, with its addresses; gateways
  // optional (zero: none).
  void AddHost(HostKind kind, ns3::Ptr<ns3::Node> node, ns3::Ptr<ns3::NetDevice> phy,
               ns3::Ptr<ns3::NetDevice> far_end, uint64_t rate_bps, shunt::Ipv4Addr v4,
               shunt::Ipv6Addr v6, shunt::Ipv4Addr gw4, shunt::Ipv6Addr gw6);
  // ns-3's InternetStack on `node`, with fixed random streams and no DAD (addresses usable at
  // once).
  void InstallInternet(ns3::Ptr<ns3::Node> node);
  // Adds `dev` as an ns-3 IP interface with the two addresses; returns the interface index.
  uint32_t AddInterface(ns3::Ptr<ns3::Node> node, ns3::Ptr<ns3::NetDevice> dev, shunt::Ipv4Addr v4,
                        shunt::Ipv6Addr v6, bool forwarding);
  static HostKind KindOf(const std::vector<HostKind>& kinds, size_t i);

  TopologyOptions options_;
  ns3::NodeContainer nodes_;
  std::vector<TopologyHost> hosts_;
  std::vector<ns3::Ptr<ns3::NetDevice>> link_devices_;  // every device on a link, in build order
  ns3::Ptr<ns3::Node> left_router_, right_router_, switch_;
  ns3::Ptr<ns3::QueueDisc> left_disc_, right_disc_;
  std::vector<std::string> pcap_files_;
  std::deque<uint64_t> phy_rx_drop_counts_;  // one per link device (PhyRxDrop)
  uint32_t next_mac_ = 1;
  int64_t next_stream_ = 0;
};

}  // namespace nicmodel
