#include "nicmodel/ns3/topology.h"

#include <list>
#include <stdexcept>

#include <ns3/boolean.h>
#include <ns3/bridge-helper.h>
#include <ns3/codel-queue-disc.h>
#include <ns3/csma-helper.h>
#include <ns3/csma-net-device.h>
#include <ns3/data-rate.h>
#include <ns3/double.h>
#include <ns3/error-model.h>
#include <ns3/fifo-queue-disc.h>
#include <ns3/global-value.h>
#include <ns3/icmpv6-l4-protocol.h>
#include <ns3/internet-stack-helper.h>
#include <ns3/ipv4-static-routing-helper.h>
#include <ns3/ipv4.h>
#include <ns3/ipv6-static-routing-helper.h>
#include <ns3/ipv6.h>
#include <ns3/nstime.h>
#include <ns3/pointer.h>
#include <ns3/queue-size.h>
#include <ns3/random-variable-stream.h>
#include <ns3/red-queue-disc.h>
#include <ns3/rng-seed-manager.h>
#include <ns3/simulator.h>
#include <ns3/trace-helper.h>
#include <ns3/traffic-control-helper.h>
#include <ns3/traffic-control-layer.h>
#include <ns3/uinteger.h>

#include "nicmodel/ns3/eth_link.h"

namespace nicmodel {

namespace {

// Random streams reserved for one node's InternetStack (ARP, NDP, IPv6 jitter; ns-3 uses a few).
constexpr int64_t kStreamsPerInternetStack = 64;

shunt::Ipv4Addr V4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  return shunt::Ipv4Addr{uint32_t(a) << 24 | uint32_t(b) << 16 | uint32_t(c) << 8 | d};
}

// fd00:<g1>:<g2>::<id>
shunt::Ipv6Addr V6(uint16_t g1, uint16_t g2, uint16_t id) {
  shunt::Ipv6Addr a;
  a.b[0] = 0xfd;
  a.b[2] = uint8_t(g1 >> 8);
  a.b[3] = uint8_t(g1);
  a.b[4] = uint8_t(g2 >> 8);
  a.b[5] = uint8_t(g2);
  a.b[14] = uint8_t(id >> 8);
  a.b[15] = uint8_t(id);
  return a;
}

ns3::Ipv6Address Ns3V6(const shunt::Ipv6Addr& a) {
  uint8_t b[16];
  a.write(b);
  return ns3::Ipv6Address(b);
}

void CountDrop(uint64_t* count, ns3::Ptr<const ns3::Packet>) { ++*count; }

ns3::QueueSizeValue Packets(uint32_t n) {
  return ns3::QueueSizeValue(ns3::QueueSize(ns3::QueueSizeUnit::PACKETS, n));
}

}  // namespace

ErrorSpec ErrorSpec::Rate(double p, int64_t stream) {
  ErrorSpec e;
  e.kind = Kind::kRate;
  e.rate = p;
  e.stream = stream;
  return e;
}

ErrorSpec ErrorSpec::Burst(double p, uint32_t min_len, uint32_t max_len, int64_t stream) {
  ErrorSpec e;
  e.kind = Kind::kBurst;
  e.rate = p;
  e.burst_min = min_len;
  e.burst_max = std::max(min_len, max_len);
  e.stream = stream;
  return e;
}

ErrorSpec ErrorSpec::List(std::vector<uint32_t> uids) {
  ErrorSpec e;
  e.kind = Kind::kList;
  e.uids = std::move(uids);
  return e;
}

ns3::Ipv6Address TopologyHost::ns3_v6() const { return Ns3V6(v6); }

Topology::Topology(const TopologyOptions& options) : options_(options) {
  ns3::RngSeedManager::SetSeed(options.ns3_seed);
  ns3::RngSeedManager::SetRun(options.ns3_run);
  // ns-3 leaves IPv4 header, UDP/TCP and FCS checksums zero unless told otherwise; the Shunt
  // hosts check them as any real host does (RFC 791 3.1, RFC 768, RFC 8200 8.1).
  ns3::GlobalValue::Bind("ChecksumEnabled", ns3::BooleanValue(true));
}

Topology::~Topology() {
  // Disposes every node, device and application; the pcap files close when the last reference
  // to their devices (ours) goes below.
  ns3::Simulator::Destroy();
  hosts_.clear();
  link_devices_.clear();
  left_disc_ = right_disc_ = nullptr;
  left_router_ = right_router_ = switch_ = nullptr;
  nodes_ = ns3::NodeContainer();
}

ShuntHost& Topology::shunt(size_t i) {
  auto& h = hosts_.at(i);
  if (!h.shunt) throw std::logic_error("host " + std::to_string(i) + " is not a Shunt host");
  return *h.shunt;
}

HostKind Topology::KindOf(const std::vector<HostKind>& kinds, size_t i) {
  if (kinds.empty()) return HostKind::kShunt;
  return kinds.size() == 1 ? kinds[0] : kinds.at(i);
}

ns3::Mac48Address Topology::NextMac() {
  // Locally administered, unicast (IEEE 802 bit 1 of the first octet set, bit 0 clear).
  const uint32_t n = next_mac_++;
  uint8_t b[6] = {0x02, 0x00, uint8_t(n >> 24), uint8_t(n >> 16), uint8_t(n >> 8), uint8_t(n)};
  ns3::Mac48Address m;
  m.CopyFrom(b);
  return m;
}

int64_t Topology::NextStreams(int64_t n) {
  const int64_t first = next_stream_;
  next_stream_ += n;
  return first;
}

Topology::LinkEnds Topology::Cable(ns3::Ptr<ns3::Node> a, ns3::Ptr<ns3::Node> b,
                                   const LinkSpec& link, Medium medium) {
  ns3::NetDeviceContainer devs;
  if (medium == Medium::kEthLink) {
    EthLinkHelper h;
    h.SetDeviceAttribute("DataRate", ns3::DataRateValue(ns3::DataRate(link.rate_bps)));
    h.SetDeviceAttribute("Mtu", ns3::UintegerValue(link.mtu));
    h.SetChannelAttribute("Delay", ns3::TimeValue(ns3::NanoSeconds(link.delay)));
    h.SetQueue("ns3::DropTailQueue<Packet>", "MaxSize", Packets(link.queue_packets));
    devs = h.Install(a, b);
  } else {
    ns3::CsmaHelper h;
    h.SetChannelAttribute("DataRate", ns3::DataRateValue(ns3::DataRate(link.rate_bps)));
    h.SetChannelAttribute("Delay", ns3::TimeValue(ns3::NanoSeconds(link.delay)));
    h.SetDeviceAttribute("Mtu", ns3::UintegerValue(link.mtu));
    h.SetQueue("ns3::DropTailQueue<Packet>", "MaxSize", Packets(link.queue_packets));
    devs = h.Install(ns3::NodeContainer(a, b));
    // CSMA backs off with a random variable: a fixed stream, as for everything else.
    h.AssignStreams(devs, NextStreams(8));
  }
  LinkEnds ends{devs.Get(0), devs.Get(1)};
  for (auto& d : {ends.a, ends.b}) {
    d->SetAddress(NextMac());
    link_devices_.push_back(d);
    phy_rx_drop_counts_.push_back(0);
    d->TraceConnectWithoutContext("PhyRxDrop",
                                  ns3::MakeBoundCallback(&CountDrop, &phy_rx_drop_counts_.back()));
  }
  AddErrorModels(ends, link.error);
  return ends;
}

void Topology::AddErrorModels(const LinkEnds& ends, const ErrorSpec& error) {
  if (error.kind == ErrorSpec::Kind::kNone) return;
  const int64_t first = error.stream >= 0 ? error.stream : NextStreams(4);
  int end = 0;
  for (auto& d : {ends.a, ends.b}) {
    const int64_t stream = first + 2 * end++;
    ns3::Ptr<ns3::ErrorModel> em;
    switch (error.kind) {
      case ErrorSpec::Kind::kRate: {
        auto m = ns3::CreateObject<ns3::RateErrorModel>();
        m->SetUnit(ns3::RateErrorModel::ERROR_UNIT_PACKET);
        m->SetRate(error.rate);
        m->AssignStreams(stream);
        em = m;
        break;
      }
      case ErrorSpec::Kind::kBurst: {
        auto m = ns3::CreateObject<ns3::BurstErrorModel>();
        m->SetBurstRate(error.rate);
        auto size = ns3::CreateObject<ns3::UniformRandomVariable>();
        // GetInteger() of a uniform variable is in [Min, Max], both included.
        size->SetAttribute("Min", ns3::DoubleValue(error.burst_min));
        size->SetAttribute("Max", ns3::DoubleValue(error.burst_max));
        m->SetRandomBurstSize(size);
        m->AssignStreams(stream);  // the burst start and the burst size: two streams
        em = m;
        break;
      }
      case ErrorSpec::Kind::kList: {
        auto m = ns3::CreateObject<ns3::ListErrorModel>();
        m->SetList(std::list<uint32_t>(error.uids.begin(), error.uids.end()));
        em = m;
        break;
      }
      case ErrorSpec::Kind::kNone:
        break;
    }
    d->SetAttribute("ReceiveErrorModel", ns3::PointerValue(em));
  }
}

void Topology::InstallInternet(ns3::Ptr<ns3::Node> node) {
  ns3::InternetStackHelper stack;
  stack.Install(node);
  stack.AssignStreams(ns3::NodeContainer(node), NextStreams(kStreamsPerInternetStack));
  // RFC 4862 5.4: see TopologyOptions::dad.
  node->GetObject<ns3::Icmpv6L4Protocol>()->SetAttribute("DAD", ns3::BooleanValue(options_.dad));
}

uint32_t Topology::AddInterface(ns3::Ptr<ns3::Node> node, ns3::Ptr<ns3::NetDevice> dev,
                                shunt::Ipv4Addr v4, shunt::Ipv6Addr v6, bool forwarding) {
  auto ipv4 = node->GetObject<ns3::Ipv4>();
  const int32_t i4 = ipv4->AddInterface(dev);
  ipv4->AddAddress(i4, ns3::Ipv4InterfaceAddress(ns3::Ipv4Address(v4.v), ns3::Ipv4Mask("/24")));
  ipv4->SetMetric(i4, 1);
  ipv4->SetForwarding(i4, forwarding);
  ipv4->SetUp(i4);
  auto ipv6 = node->GetObject<ns3::Ipv6>();
  const int32_t i6 = ipv6->AddInterface(dev);
  ipv6->SetForwarding(i6, forwarding);
  ipv6->AddAddress(i6, ns3::Ipv6InterfaceAddress(Ns3V6(v6), ns3::Ipv6Prefix(64)));
  ipv6->SetMetric(i6, 1);
  ipv6->SetUp(i6);
  if (i4 != i6) throw std::logic_error("ns-3 gave different IPv4 and IPv6 interface indices");
  return uint32_t(i4);
}

void Topology::AddHost(HostKind kind, ns3::Ptr<ns3::Node> node, ns3::Ptr<ns3::NetDevice> phy,
                       ns3::Ptr<ns3::NetDevice> far_end, uint64_t rate_bps, shunt::Ipv4Addr v4,
                       shunt::Ipv6Addr v6, shunt::Ipv4Addr gw4, shunt::Ipv6Addr gw6) {
  TopologyHost h;
  h.kind = kind;
  h.node = node;
  h.phy = phy;
  h.far_end = far_end;
  h.mac = ns3::Mac48Address::ConvertFrom(phy->GetAddress());
  h.v4 = v4;
  h.v6 = v6;
  if (kind == HostKind::kShunt) {
    shunt::Config config = options_.config;
    config.seed = options_.config.seed + int64_t(hosts_.size());
    if (!options_.dad) config.dad_transmits = 0;
    std::string error;
    h.shunt = InstallShuntHost(node, phy, rate_bps, config, h.mac, error);
    if (!h.shunt) throw std::runtime_error("host " + std::to_string(hosts_.size()) + ": " + error);
    h.shunt->AddAddress(v4, h.v4_prefix);
    h.shunt->AddAddress(v6, h.v6_prefix);
    if (!gw4.is_unspecified()) h.shunt->SetDefaultGateway(gw4);
    if (!gw6.is_unspecified()) h.shunt->SetDefaultGateway(gw6);
  } else {
    InstallInternet(node);
    h.ns3_interface = AddInterface(node, phy, v4, v6, false);
    if (!gw4.is_unspecified()) {
      ns3::Ipv4StaticRoutingHelper()
          .GetStaticRouting(node->GetObject<ns3::Ipv4>())
          ->SetDefaultRoute(ns3::Ipv4Address(gw4.v), h.ns3_interface);
    }
    if (!gw6.is_unspecified()) {
      ns3::Ipv6StaticRoutingHelper()
          .GetStaticRouting(node->GetObject<ns3::Ipv6>())
          ->SetDefaultRoute(Ns3V6(gw6), h.ns3_interface);
    }
  }
  hosts_.push_back(std::move(h));
}

std::unique_ptr<Topology> Topology::TwoHosts(HostKind a, HostKind b, const LinkSpec& link,
                                             const TopologyOptions& options, Medium medium) {
  std::unique_ptr<Topology> t(new Topology(options));
  t->nodes_.Create(2);
  auto ends = t->Cable(t->nodes_.Get(0), t->nodes_.Get(1), link, medium);
  t->AddHost(a, t->nodes_.Get(0), ends.a, ends.b, link.rate_bps, V4(10, 0, 0, 1), V6(0, 0, 1), {},
             {});
  t->AddHost(b, t->nodes_.Get(1), ends.b, ends.a, link.rate_bps, V4(10, 0, 0, 2), V6(0, 0, 2), {},
             {});
  return t;
}

std::unique_ptr<Topology> Topology::Dumbbell(size_t n_left, size_t n_right,
                                             const std::vector<HostKind>& kinds,
                                             const LinkSpec& edge, const LinkSpec& bottleneck,
                                             const QueueDiscSpec& queue,
                                             const TopologyOptions& options) {
  if (n_left == 0 || n_right == 0 || n_left > 250 || n_right > 250) {
    throw std::invalid_argument("Dumbbell: 1 to 250 hosts on each side");
  }
  std::unique_ptr<Topology> t(new Topology(options));
  const size_t n = n_left + n_right;
  // Hosts are nodes 0..n-1, then the left and the right router.
  t->nodes_.Create(uint32_t(n + 2));
  t->left_router_ = t->nodes_.Get(uint32_t(n));
  t->right_router_ = t->nodes_.Get(uint32_t(n + 1));
  t->InstallInternet(t->left_router_);
  t->InstallInternet(t->right_router_);

  LinkSpec core = bottleneck;
  core.queue_packets = std::max<uint32_t>(1, queue.device_packets);
  auto mid = t->Cable(t->left_router_, t->right_router_, core, Medium::kEthLink);
  const uint32_t left_core =
      t->AddInterface(t->left_router_, mid.a, V4(10, 0, 0, 1), V6(0, 0, 1), true);
  const uint32_t right_core =
      t->AddInterface(t->right_router_, mid.b, V4(10, 0, 0, 2), V6(0, 0, 2), true);

  for (size_t i = 0; i < n; ++i) {
    const bool left = i < n_left;
    const uint8_t side = left ? 1 : 2;
    const uint8_t subnet = uint8_t((left ? i : i - n_left) + 1);
    auto router = left ? t->left_router_ : t->right_router_;
    auto node = t->nodes_.Get(uint32_t(i));
    auto ends = t->Cable(node, router, edge, Medium::kEthLink);
    t->AddInterface(router, ends.b, V4(10, side, subnet, 1), V6(side, subnet, 1), true);
    t->AddHost(KindOf(kinds, i), node, ends.a, ends.b, edge.rate_bps, V4(10, side, subnet, 2),
               V6(side, subnet, 2), V4(10, side, subnet, 1), V6(side, subnet, 1));
  }

  // Each router reaches the other side's /16 (and fd00:<side>::/32) through the bottleneck.
  auto v4_routes = [](ns3::Ptr<ns3::Node> r, uint8_t other, uint8_t peer, uint32_t ifx) {
    ns3::Ipv4StaticRoutingHelper()
        .GetStaticRouting(r->GetObject<ns3::Ipv4>())
        ->AddNetworkRouteTo(ns3::Ipv4Address(V4(10, other, 0, 0).v), ns3::Ipv4Mask("/16"),
                            ns3::Ipv4Address(V4(10, 0, 0, peer).v), ifx);
    ns3::Ipv6StaticRoutingHelper()
        .GetStaticRouting(r->GetObject<ns3::Ipv6>())
        ->AddNetworkRouteTo(Ns3V6(V6(other, 0, 0)), ns3::Ipv6Prefix(32), Ns3V6(V6(0, 0, peer)),
                            ifx);
  };
  v4_routes(t->left_router_, 2, 2, left_core);
  v4_routes(t->right_router_, 1, 1, right_core);

  // The bottleneck's queue discipline, replacing whatever was there.
  ns3::TrafficControlHelper tch;
  switch (queue.kind) {
    case QueueDiscSpec::Kind::kDropTail:
      tch.SetRootQueueDisc("ns3::FifoQueueDisc", "MaxSize", Packets(queue.max_packets));
      break;
    case QueueDiscSpec::Kind::kRed: {
      const uint32_t min_th =
          queue.red_min_th ? queue.red_min_th : std::max<uint32_t>(1, queue.max_packets / 5);
      const uint32_t max_th =
          queue.red_max_th ? queue.red_max_th : std::max(min_th + 1, queue.max_packets / 2);
      tch.SetRootQueueDisc("ns3::RedQueueDisc", "MaxSize", Packets(queue.max_packets), "MinTh",
                           ns3::DoubleValue(min_th), "MaxTh", ns3::DoubleValue(max_th),
                           "MeanPktSize", ns3::UintegerValue(bottleneck.mtu), "LinkBandwidth",
                           ns3::DataRateValue(ns3::DataRate(bottleneck.rate_bps)), "LinkDelay",
                           ns3::TimeValue(ns3::NanoSeconds(bottleneck.delay)));
      break;
    }
    case QueueDiscSpec::Kind::kCoDel:
      tch.SetRootQueueDisc("ns3::CoDelQueueDisc", "MaxSize", Packets(queue.max_packets), "Target",
                           ns3::TimeValue(ns3::NanoSeconds(queue.codel_target)), "Interval",
                           ns3::TimeValue(ns3::NanoSeconds(queue.codel_interval)));
      break;
  }
  for (auto& [router, dev] :
       {std::pair{t->left_router_, mid.a}, std::pair{t->right_router_, mid.b}}) {
    auto tc = router->GetObject<ns3::TrafficControlLayer>();
    if (tc && tc->GetRootQueueDiscOnDevice(dev)) tch.Uninstall(dev);
  }
  auto discs = tch.Install(ns3::NetDeviceContainer(mid.a, mid.b));
  t->left_disc_ = discs.Get(0);
  t->right_disc_ = discs.Get(1);
  for (auto& d : {t->left_disc_, t->right_disc_}) {
    if (auto red = ns3::DynamicCast<ns3::RedQueueDisc>(d)) red->AssignStreams(t->NextStreams(1));
  }
  return t;
}

std::unique_ptr<Topology> Topology::Star(size_t n, const std::vector<HostKind>& kinds,
                                         const std::vector<LinkSpec>& links,
                                         const TopologyOptions& options) {
  if (n == 0 || n > 250) throw std::invalid_argument("Star: 1 to 250 hosts");
  if (links.size() != 1 && links.size() != n)
    throw std::invalid_argument("Star: one LinkSpec, or one per host");
  std::unique_ptr<Topology> t(new Topology(options));
  // Hosts are nodes 0..n-1, then the switch.
  t->nodes_.Create(uint32_t(n + 1));
  t->switch_ = t->nodes_.Get(uint32_t(n));
  ns3::NetDeviceContainer ports;
  std::vector<LinkEnds> cables;
  for (size_t i = 0; i < n; ++i) {
    const LinkSpec& link = links.size() == 1 ? links[0] : links[i];
    cables.push_back(t->Cable(t->nodes_.Get(uint32_t(i)), t->switch_, link, Medium::kEthLink));
    ports.Add(cables.back().b);
  }
  // The switch: a learning bridge over its ports (before the hosts send anything).
  ns3::BridgeHelper().Install(t->switch_, ports);
  for (size_t i = 0; i < n; ++i) {
    const LinkSpec& link = links.size() == 1 ? links[0] : links[i];
    t->AddHost(KindOf(kinds, i), t->nodes_.Get(uint32_t(i)), cables[i].a, cables[i].b,
               link.rate_bps, V4(10, 0, 0, uint8_t(i + 1)), V6(0, 0, uint16_t(i + 1)), {}, {});
  }
  return t;
}

void Topology::EnablePcap(const std::string& prefix) {
  ns3::PcapHelper names;
  for (auto& d : link_devices_) {
    if (ns3::DynamicCast<EthLinkNetDevice>(d)) {
      EthLinkHelper().EnablePcap(prefix, d, true, false);
    } else {
      ns3::CsmaHelper().EnablePcap(prefix, d, true, false);
    }
    pcap_files_.push_back(names.GetFilenameFromDevice(prefix, d));
  }
}

void Topology::Run(Nanos until) {
  const Nanos now = Now();
  if (until <= now) return;
  ns3::Simulator::Stop(ns3::NanoSeconds(until - now));
  ns3::Simulator::Run();
}

Nanos Topology::Now() { return ns3::Simulator::Now().GetNanoSeconds(); }

uint64_t Topology::phy_rx_drops() const {
  uint64_t n = 0;
  for (uint64_t c : phy_rx_drop_counts_) n += c;
  return n;
}

uint64_t Topology::TxQueueDrops(ns3::Ptr<ns3::NetDevice> device) {
  if (auto e = ns3::DynamicCast<EthLinkNetDevice>(device))
    return e->GetQueue()->GetTotalDroppedPackets();
  if (auto c = ns3::DynamicCast<ns3::CsmaNetDevice>(device))
    return c->GetQueue()->GetTotalDroppedPackets();
  return 0;
}

}  // namespace nicmodel
