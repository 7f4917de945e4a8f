// The Ethernet point-to-point link (nicmodel/ns3/eth_link.h): ns-3 hosts with ns-3's own
// InternetStack over it (ARP, UDP echo, TCP bulk), exact frame timing, queue and receive drops,
// pcap readable by tshark, determinism.
#include "nicmodel/ns3/eth_link.h"

#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <ns3/applications-module.h>
#include <ns3/bridge-helper.h>
#include <ns3/double.h>
#include <ns3/pointer.h>
#include <ns3/rng-seed-manager.h>
#include <ns3/simulator.h>
#include <ns3/string.h>
#include <ns3/uinteger.h>
#include <ns3/error-model.h>
#include <ns3/internet-module.h>
#include <ns3/network-module.h>
#include <ns3/traffic-control-module.h>

namespace {

using namespace ns3;
using nicmodel::EthLinkHelper;
using nicmodel::EthLinkNetDevice;

struct Net {
  NodeContainer nodes;
  NetDeviceContainer devs;
  Ipv4InterfaceContainer ifs;
};

Net MakeIpv4Pair(const std::string& rate, const std::string& delay) {
  RngSeedManager::SetSeed(1);
  RngSeedManager::SetRun(1);
  Net n;
  n.nodes.Create(2);
  EthLinkHelper link;
  link.SetDeviceAttribute("DataRate", StringValue(rate));
  link.SetChannelAttribute("Delay", StringValue(delay));
  n.devs = link.Install(n.nodes.Get(0), n.nodes.Get(1));
  InternetStackHelper stack;
  stack.Install(n.nodes);
  // ns-3 numbers random streams from a process-wide counter that Simulator::Destroy() does not
  // reset: fixed streams make a rerun in the same process identical (ARP request jitter).
  stack.AssignStreams(n.nodes, 0);
  Ipv4AddressHelper addr("10.0.0.0", "255.255.255.0");
  n.ifs = addr.Assign(n.devs);
  return n;
}

struct EchoResult {
  uint32_t client_rx = 0;
  uint32_t server_rx = 0;
  std::vector<int64_t> rx_times;
};

EchoResult RunEcho() {
  Net n = MakeIpv4Pair("1Gbps", "10us");
  UdpEchoServerHelper server(9);
  ApplicationContainer s = server.Install(n.nodes.Get(1));
  s.Start(Seconds(0));
  UdpEchoClientHelper client(n.ifs.GetAddress(1), 9);
  client.SetAttribute("MaxPackets", UintegerValue(5));
  // ARP holds 3 packets while it waits (its request is jittered up to 10 ms): one at a time.
  client.SetAttribute("Interval", TimeValue(MilliSeconds(20)));
  client.SetAttribute("PacketSize", UintegerValue(200));
  ApplicationContainer c = client.Install(n.nodes.Get(0));
  c.Start(MilliSeconds(1));
  EchoResult r;
  c.Get(0)->TraceConnectWithoutContext(
      "Rx", MakeCallback(+[](EchoResult* res, Ptr<const Packet>) {
              res->client_rx++;
              res->rx_times.push_back(Simulator::Now().GetNanoSeconds());
            }).Bind(&r));
  s.Get(0)->TraceConnectWithoutContext(
      "Rx", MakeCallback(+[](EchoResult* res, Ptr<const Packet>) { res->server_rx++; }).Bind(&r));
  Simulator::Stop(MilliSeconds(200));
  Simulator::Run();
  Simulator::Destroy();
  return r;
}

// A bare pair of devices on one cable, no InternetStack.
struct RawPair {
  NodeContainer nodes;
  Ptr<EthLinkNetDevice> a, b;
};

RawPair MakeRawPair(EthLinkHelper& link) {
  RawPair p;
  p.nodes.Create(2);
  NetDeviceContainer d = link.Install(p.nodes.Get(0), p.nodes.Get(1));
  p.a = DynamicCast<EthLinkNetDevice>(d.Get(0));
  p.b = DynamicCast<EthLinkNetDevice>(d.Get(1));
  return p;
}

struct Seen {
  int64_t at_ns = -1;
  uint32_t size = 0;
  uint16_t protocol = 0;
  Mac48Address from, to;
  NetDevice::PacketType type = NetDevice::PACKET_HOST;
  int count = 0;
};

bool Promisc(Seen* s, Ptr<NetDevice>, Ptr<const Packet> p, uint16_t protocol, const Address& from,
             const Address& to, NetDevice::PacketType type) {
  s->at_ns = Simulator::Now().GetNanoSeconds();
  s->size = p->GetSize();
  s->protocol = protocol;
  s->from = Mac48Address::ConvertFrom(from);
  s->to = Mac48Address::ConvertFrom(to);
  s->type = type;
  s->count++;
  return true;
}

void Count(int* n, Ptr<const Packet>) { (*n)++; }

}  // namespace

BOOST_AUTO_TEST_SUITE(ns3_eth_link)

BOOST_AUTO_TEST_CASE(udp_echo_between_ns3_hosts_resolves_arp_and_returns_every_echo) {
  EchoResult r = RunEcho();
  BOOST_TEST(r.server_rx == 5u);
  BOOST_TEST(r.client_rx == 5u);
}

// A TCP bulk transfer; returns the time and size of every frame the receiver took in.
static std::vector<std::pair<int64_t, uint32_t>> RunBulkTrace(uint64_t bytes) {
  Net n = MakeIpv4Pair("1Gbps", "10us");
  PacketSinkHelper sink("ns3::TcpSocketFactory", InetSocketAddress(Ipv4Address::GetAny(), 5000));
  sink.Install(n.nodes.Get(1));
  BulkSendHelper bulk("ns3::TcpSocketFactory", InetSocketAddress(n.ifs.GetAddress(1), 5000));
  bulk.SetAttribute("MaxBytes", UintegerValue(bytes));
  bulk.Install(n.nodes.Get(0)).Start(MilliSeconds(1));
  std::vector<std::pair<int64_t, uint32_t>> trace;
  n.devs.Get(1)->TraceConnectWithoutContext(
      "PhyRxEnd", MakeCallback(+[](std::vector<std::pair<int64_t, uint32_t>>* t, Ptr<const Packet> p) {
                    t->emplace_back(Simulator::Now().GetNanoSeconds(), p->GetSize());
                  }).Bind(&trace));
  Simulator::Stop(Seconds(1));
  Simulator::Run();
  Simulator::Destroy();
  return trace;
}

BOOST_AUTO_TEST_CASE(tcp_bulk_transfer_delivers_exactly_the_bytes_sent) {
  Net n = MakeIpv4Pair("1Gbps", "10us");
  const uint64_t kBytes = 2'000'000;
  PacketSinkHelper sink("ns3::TcpSocketFactory", InetSocketAddress(Ipv4Address::GetAny(), 5000));
  ApplicationContainer sa = sink.Install(n.nodes.Get(1));
  sa.Start(Seconds(0));
  BulkSendHelper bulk("ns3::TcpSocketFactory", InetSocketAddress(n.ifs.GetAddress(1), 5000));
  bulk.SetAttribute("MaxBytes", UintegerValue(kBytes));
  bulk.SetAttribute("SendSize", UintegerValue(1448));
  ApplicationContainer ba = bulk.Install(n.nodes.Get(0));
  ba.Start(MilliSeconds(1));
  int64_t done_at = -1;
  sa.Get(0)->TraceConnectWithoutContext(
      "Rx", MakeCallback(+[](int64_t* at, PacketSink* s, uint64_t total, Ptr<const Packet>,
                             const Address&) {
              if (s->GetTotalRx() == total && *at < 0) *at = Simulator::Now().GetNanoSeconds();
            })
                // A raw pointer: a Ptr bound into the sink's own trace would keep it alive.
                .Bind(&done_at, PeekPointer(DynamicCast<PacketSink>(sa.Get(0))), kBytes));
  Simulator::Stop(Seconds(2));
  Simulator::Run();
  auto ps = DynamicCast<PacketSink>(sa.Get(0));
  BOOST_TEST(ps->GetTotalRx() == kBytes);
  // 2 MB at 1 Gb/s is at least 16 ms of wire time; slow start and ACK clocking add some.
  BOOST_TEST(done_at > 17'000'000);
  BOOST_TEST(done_at < 200'000'000);
  Simulator::Destroy();
}

BOOST_AUTO_TEST_CASE(frame_arrives_after_serialization_plus_delay_with_its_addresses) {
  EthLinkHelper link;
  link.SetDeviceAttribute("DataRate", StringValue("1Gbps"));
  link.SetChannelAttribute("Delay", StringValue("10us"));
  RawPair p = MakeRawPair(link);
  Seen seen;
  p.b->SetPromiscReceiveCallback(MakeCallback(&Promisc).Bind(&seen));
  Mac48Address src("02:00:00:00:00:01");
  Mac48Address dst = Mac48Address::ConvertFrom(p.b->GetAddress());
  const int64_t kSendAt = 1'000'000;
  Simulator::Schedule(NanoSeconds(kSendAt), [&] {
    p.a->SendFrom(Create<Packet>(100), src, dst, 0x0800);
  });
  Simulator::Run();
  // 14 header + 100 payload + 4 FCS + 8 preamble = 126 bytes = 1008 ns at 1 Gb/s; + 10 us.
  BOOST_TEST(seen.count == 1);
  BOOST_TEST(seen.at_ns == kSendAt + 1008 + 10'000);
  BOOST_TEST(p.a->SerializationTime(118).GetNanoSeconds() == 1008);
  BOOST_TEST(seen.size == 100u);
  BOOST_TEST(seen.protocol == 0x0800);
  BOOST_TEST(seen.from == src);
  BOOST_TEST(seen.to == dst);
  BOOST_TEST(seen.type == NetDevice::PACKET_HOST);
  Simulator::Destroy();
}

BOOST_AUTO_TEST_CASE(short_frames_are_padded_and_back_to_back_frames_keep_the_gap) {
  EthLinkHelper link;
  link.SetDeviceAttribute("DataRate", StringValue("10Gbps"));
  link.SetChannelAttribute("Delay", StringValue("0s"));
  RawPair p = MakeRawPair(link);
  std::vector<int64_t> arrivals;
  std::vector<uint32_t> sizes;
  p.b->SetPromiscReceiveCallback(MakeCallback(
      +[](std::vector<int64_t>* at, std::vector<uint32_t>* sz, Ptr<NetDevice>, Ptr<const Packet> pk,
          uint16_t, const Address&, const Address&, NetDevice::PacketType) {
        at->push_back(Simulator::Now().GetNanoSeconds());
        sz->push_back(pk->GetSize());
        return true;
      }).Bind(&arrivals, &sizes));
  Mac48Address dst = Mac48Address::ConvertFrom(p.b->GetAddress());
  Simulator::Schedule(Seconds(0), [&] {
    for (int i = 0; i < 5; ++i) p.a->Send(Create<Packet>(10), dst, 0x88b5);
  });
  Simulator::Run();
  BOOST_REQUIRE(arrivals.size() == 5u);
  // 10 bytes are padded to 46: a 64-byte frame + 8 preamble = 576 bits = 57.6 ns at 10 Gb/s,
  // plus 96 bits (9.6 ns) of gap: one frame every 67.2 ns on average, carried in picoseconds.
  for (uint32_t s : sizes) BOOST_TEST(s == 46u);
  BOOST_TEST(arrivals[0] == 57);
  BOOST_TEST(arrivals[4] == (4 * 67200 + 57600) / 1000);
  Simulator::Destroy();
}

BOOST_AUTO_TEST_CASE(frames_for_another_host_reach_only_the_promiscuous_callback) {
  EthLinkHelper link;
  RawPair p = MakeRawPair(link);
  Seen promisc;
  int host_rx = 0;
  p.b->SetPromiscReceiveCallback(MakeCallback(&Promisc).Bind(&promisc));
  p.b->SetReceiveCallback(MakeCallback(
      +[](int* n, Ptr<NetDevice>, Ptr<const Packet>, uint16_t, const Address&) {
        (*n)++;
        return true;
      }).Bind(&host_rx));
  Simulator::Schedule(Seconds(0), [&] {
    p.a->Send(Create<Packet>(60), Mac48Address("02:aa:bb:cc:dd:ee"), 0x0800);
  });
  Simulator::Run();
  BOOST_TEST(promisc.count == 1);
  BOOST_TEST(promisc.type == NetDevice::PACKET_OTHERHOST);
  BOOST_TEST(host_rx == 0);
  Simulator::Schedule(Seconds(0), [&] {
    p.a->Send(Create<Packet>(60), Mac48Address::GetBroadcast(), 0x0806);
    p.a->Send(Create<Packet>(60), Mac48Address::ConvertFrom(p.b->GetMulticast(Ipv4Address("224.1.2.3"))),
              0x0800);
  });
  Simulator::Run();
  BOOST_TEST(promisc.count == 3);
  BOOST_TEST(promisc.type == NetDevice::PACKET_MULTICAST);
  BOOST_TEST(host_rx == 2);
  BOOST_TEST(Mac48Address::ConvertFrom(p.b->GetMulticast(Ipv4Address("224.1.2.3"))) ==
             Mac48Address("01:00:5e:01:02:03"));
  BOOST_TEST(Mac48Address::ConvertFrom(p.b->GetMulticast(Ipv6Address("ff02::1:ff00:1"))) ==
             Mac48Address("33:33:ff:00:00:01"));
  Simulator::Destroy();
}

BOOST_AUTO_TEST_CASE(a_full_tx_queue_drops_and_fires_mac_tx_drop) {
  EthLinkHelper link;
  link.SetQueue("ns3::DropTailQueue", "MaxSize", StringValue("3p"));
  RawPair p = MakeRawPair(link);
  int drops = 0, rx = 0;
  p.a->TraceConnectWithoutContext("MacTxDrop", MakeBoundCallback(&Count, &drops));
  p.b->TraceConnectWithoutContext("PhyRxEnd", MakeBoundCallback(&Count, &rx));
  int accepted = 0;
  Mac48Address dst = Mac48Address::ConvertFrom(p.b->GetAddress());
  Simulator::Schedule(Seconds(0), [&] {
    // One goes on the wire at once, three wait in the queue, the other six are dropped.
    for (int i = 0; i < 10; ++i) accepted += p.a->Send(Create<Packet>(1000), dst, 0x0800) ? 1 : 0;
  });
  Simulator::Run();
  BOOST_TEST(accepted == 4);
  BOOST_TEST(drops == 6);
  BOOST_TEST(rx == 4);
  // Too big for the MTU: dropped as well; a VLAN tag may come on top of it.
  Simulator::Schedule(Seconds(0), [&] { accepted += p.a->Send(Create<Packet>(1501), dst, 0x0800); });
  Simulator::Run();
  BOOST_TEST(drops == 7);
  Simulator::Schedule(Seconds(0), [&] { accepted += p.a->Send(Create<Packet>(1504), dst, 0x8100); });
  Simulator::Run();
  BOOST_TEST(drops == 7);
  BOOST_TEST(rx == 5);
  Simulator::Destroy();
}

BOOST_AUTO_TEST_CASE(receive_error_model_drops_and_fires_phy_rx_drop) {
  EthLinkHelper link;
  RawPair p = MakeRawPair(link);
  Seen seen;
  p.b->SetPromiscReceiveCallback(MakeCallback(&Promisc).Bind(&seen));
  int drops = 0;
  p.b->TraceConnectWithoutContext("PhyRxDrop", MakeBoundCallback(&Count, &drops));
  Ptr<Packet> lost = Create<Packet>(500);
  Ptr<Packet> kept = Create<Packet>(500);
  auto em = CreateObject<ListErrorModel>();
  em->SetList({static_cast<uint32_t>(lost->GetUid())});
  p.b->SetAttribute("ReceiveErrorModel", PointerValue(em));
  Mac48Address dst = Mac48Address::ConvertFrom(p.b->GetAddress());
  Simulator::Schedule(Seconds(0), [&] {
    p.a->Send(lost, dst, 0x0800);
    p.a->Send(kept, dst, 0x0800);
  });
  Simulator::Run();
  BOOST_TEST(drops == 1);
  BOOST_TEST(seen.count == 1);
  // Every frame lost at rate 1.0.
  auto all = CreateObject<RateErrorModel>();
  all->SetAttribute("ErrorRate", DoubleValue(1.0));
  all->SetAttribute("ErrorUnit", StringValue("ERROR_UNIT_PACKET"));
  p.b->SetReceiveErrorModel(all);
  Simulator::Schedule(Seconds(0), [&] {
    for (int i = 0; i < 3; ++i) p.a->Send(Create<Packet>(100), dst, 0x0800);
  });
  Simulator::Run();
  BOOST_TEST(drops == 4);
  BOOST_TEST(seen.count == 1);
  Simulator::Destroy();
}

BOOST_AUTO_TEST_CASE(queue_discs_sit_on_top_and_the_device_queue_stops_them) {
  // A bottleneck: RED on a 100 Mb/s link, the device queue small. The queue disc must get
  // packets back through the stop/wake of the device queue, and TCP must still finish.
  RngSeedManager::SetSeed(1);
  RngSeedManager::SetRun(1);
  NodeContainer nodes;
  nodes.Create(2);
  EthLinkHelper link;
  link.SetDeviceAttribute("DataRate", StringValue("100Mbps"));
  link.SetChannelAttribute("Delay", StringValue("100us"));
  link.SetQueue("ns3::DropTailQueue", "MaxSize", StringValue("5p"));
  NetDeviceContainer devs = link.Install(nodes.Get(0), nodes.Get(1));
  BOOST_TEST(devs.Get(0)->GetObject<NetDeviceQueueInterface>() != nullptr);
  InternetStackHelper stack;
  stack.Install(nodes);
  TrafficControlHelper tch;
  tch.SetRootQueueDisc("ns3::RedQueueDisc", "MaxSize", StringValue("50p"));
  QueueDiscContainer qdiscs = tch.Install(devs);
  Ipv4AddressHelper addr("10.0.1.0", "255.255.255.0");
  Ipv4InterfaceContainer ifs = addr.Assign(devs);
  const uint64_t kBytes = 500'000;
  PacketSinkHelper sink("ns3::TcpSocketFactory", InetSocketAddress(Ipv4Address::GetAny(), 5000));
  ApplicationContainer sa = sink.Install(nodes.Get(1));
  BulkSendHelper bulk("ns3::TcpSocketFactory", InetSocketAddress(ifs.GetAddress(1), 5000));
  bulk.SetAttribute("MaxBytes", UintegerValue(kBytes));
  bulk.Install(nodes.Get(0)).Start(MilliSeconds(1));
  int dev_drops = 0;
  devs.Get(0)->TraceConnectWithoutContext("MacTxDrop", MakeBoundCallback(&Count, &dev_drops));
  Simulator::Stop(Seconds(5));
  Simulator::Run();
  BOOST_TEST(DynamicCast<PacketSink>(sa.Get(0))->GetTotalRx() == kBytes);
  BOOST_TEST(dev_drops == 0);  // the queue disc held back what the device queue had no room for
  BOOST_TEST(qdiscs.Get(0)->GetStats().nTotalReceivedPackets > 0u);
  Simulator::Destroy();
}

BOOST_AUTO_TEST_CASE(ns3_hosts_talk_through_a_bridge_whose_ports_are_eth_links) {
  // h0 -- sw -- h1: BridgeNetDevice forwards with SendFrom and learns from the promiscuous path.
  RngSeedManager::SetSeed(1);
  RngSeedManager::SetRun(1);
  NodeContainer hosts, sw;
  hosts.Create(2);
  sw.Create(1);
  EthLinkHelper link;
  link.SetChannelAttribute("Delay", StringValue("1us"));
  NetDeviceContainer l0 = link.Install(hosts.Get(0), sw.Get(0));
  NetDeviceContainer l1 = link.Install(hosts.Get(1), sw.Get(0));
  NetDeviceContainer ports;
  ports.Add(l0.Get(1));
  ports.Add(l1.Get(1));
  BridgeHelper bridge;
  bridge.Install(sw.Get(0), ports);
  InternetStackHelper stack;
  stack.Install(hosts);
  stack.AssignStreams(hosts, 0);
  NetDeviceContainer host_devs;
  host_devs.Add(l0.Get(0));
  host_devs.Add(l1.Get(0));
  Ipv4AddressHelper addr("10.0.3.0", "255.255.255.0");
  Ipv4InterfaceContainer ifs = addr.Assign(host_devs);
  UdpEchoServerHelper server(9);
  ApplicationContainer s = server.Install(hosts.Get(1));
  UdpEchoClientHelper client(ifs.GetAddress(1), 9);
  client.SetAttribute("MaxPackets", UintegerValue(3));
  client.SetAttribute("Interval", TimeValue(MilliSeconds(20)));
  ApplicationContainer c = client.Install(hosts.Get(0));
  c.Start(MilliSeconds(1));
  int echoes = 0;
  c.Get(0)->TraceConnectWithoutContext("Rx", MakeBoundCallback(&Count, &echoes));
  Simulator::Stop(MilliSeconds(200));
  Simulator::Run();
  BOOST_TEST(echoes == 3);
  Simulator::Destroy();
}

BOOST_AUTO_TEST_CASE(ipv6_with_neighbor_discovery_works_over_the_link) {
  RngSeedManager::SetSeed(1);
  RngSeedManager::SetRun(1);
  NodeContainer nodes;
  nodes.Create(2);
  EthLinkHelper link;
  link.SetChannelAttribute("Delay", StringValue("5us"));
  NetDeviceContainer devs = link.Install(nodes.Get(0), nodes.Get(1));
  InternetStackHelper stack;
  stack.Install(nodes);
  stack.AssignStreams(nodes, 0);
  Ipv6AddressHelper addr(Ipv6Address("2001:db8::"), Ipv6Prefix(64));
  Ipv6InterfaceContainer ifs = addr.Assign(devs);
  UdpEchoServerHelper server(9);
  server.Install(nodes.Get(1));
  UdpEchoClientHelper client(ifs.GetAddress(1, 1), 9);
  client.SetAttribute("MaxPackets", UintegerValue(3));
  client.SetAttribute("Interval", TimeValue(MilliSeconds(20)));
  ApplicationContainer c = client.Install(nodes.Get(0));
  c.Start(Seconds(2));  // after duplicate address detection
  int echoes = 0;
  c.Get(0)->TraceConnectWithoutContext("Rx", MakeBoundCallback(&Count, &echoes));
  Simulator::Stop(Seconds(3));
  Simulator::Run();
  BOOST_TEST(echoes == 3);
  Simulator::Destroy();
}

BOOST_AUTO_TEST_CASE(pcap_from_the_helper_is_ethernet_that_tshark_reads) {
  char dir[] = "/tmp/shunt-ethlink-XXXXXX";
  BOOST_REQUIRE(mkdtemp(dir) != nullptr);
  std::string file = std::string(dir) + "/a.pcap";
  std::string ascii_file = std::string(dir) + "/b.tr";
  {
    RngSeedManager::SetSeed(1);
    RngSeedManager::SetRun(1);
    NodeContainer nodes;
    nodes.Create(2);
    EthLinkHelper link;
    link.SetChannelAttribute("Delay", StringValue("10us"));
    NetDeviceContainer devs = link.Install(nodes.Get(0), nodes.Get(1));
    link.EnablePcap(file, devs.Get(0), true, true);
    link.EnableAscii(ascii_file, devs.Get(1), true);
    InternetStackHelper stack;
    stack.Install(nodes);
    Ipv4AddressHelper addr("10.0.2.0", "255.255.255.0");
    Ipv4InterfaceContainer ifs = addr.Assign(devs);
    UdpEchoServerHelper server(9);
    server.Install(nodes.Get(1)).Start(Seconds(0));
    UdpEchoClientHelper client(ifs.GetAddress(1), 9);
    client.SetAttribute("MaxPackets", UintegerValue(2));
    client.SetAttribute("PacketSize", UintegerValue(10));
    client.Install(nodes.Get(0)).Start(MilliSeconds(1));
    Simulator::Stop(MilliSeconds(100));
    Simulator::Run();
    Simulator::Destroy();
  }
  std::ifstream in(file, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  BOOST_REQUIRE(bytes.size() > 24u);
  BOOST_TEST(static_cast<uint8_t>(bytes[20]) == 1);  // link type DLT_EN10MB (little endian)
  if (access("/usr/bin/tshark", X_OK) != 0) {
    BOOST_TEST_MESSAGE("tshark missing: pcap not decoded");
  } else {
    std::string cmd = "/usr/bin/tshark -n -r " + file + " 2>&1";
    FILE* f = popen(cmd.c_str(), "r");
    BOOST_REQUIRE(f != nullptr);
    std::string out;
    char buf[512];
    while (fgets(buf, sizeof buf, f)) out += buf;
    int rc = pclose(f);
    BOOST_TEST_MESSAGE(out);
    BOOST_TEST(WEXITSTATUS(rc) == 0);
    BOOST_TEST(out.find("Malformed") == std::string::npos);
    BOOST_TEST(out.find("ARP") != std::string::npos);
    BOOST_TEST(out.find("10.0.2.1 → 10.0.2.2     UDP") != std::string::npos);
    BOOST_TEST(out.find("10.0.2.2 → 10.0.2.1     UDP") != std::string::npos);
  }
  std::ifstream tr(ascii_file);
  std::string text((std::istreambuf_iterator<char>(tr)), std::istreambuf_iterator<char>());
  BOOST_TEST(text.find("r ") == 0u);  // first line: the ARP request received
  BOOST_TEST(text.find("$nicmodel::EthLinkNetDevice/MacRx") != std::string::npos);
  BOOST_TEST(text.find("TxQueue/Enqueue") != std::string::npos);
  std::remove(file.c_str());
  std::remove(ascii_file.c_str());
  rmdir(dir);
}

BOOST_AUTO_TEST_CASE(the_same_simulation_twice_gives_identical_results) {
  EchoResult a = RunEcho();
  EchoResult b = RunEcho();
  BOOST_TEST(a.rx_times.size() == 5u);
  BOOST_TEST(a.rx_times == b.rx_times, boost::test_tools::per_element());
  auto t1 = RunBulkTrace(300'000);
  auto t2 = RunBulkTrace(300'000);
  BOOST_TEST(t1.size() > 200u);
  BOOST_TEST((t1 == t2));
}

BOOST_AUTO_TEST_SUITE_END()
