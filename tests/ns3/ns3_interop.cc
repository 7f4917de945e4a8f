// Interop inside the simulation: a Shunt host (the stack on the simulated ConnectX) and an ns-3
// host running ns-3's own InternetStack on one CSMA segment or EthLink cable. ARP/NDP between the
// two stacks, UDP echo (also with fragmented datagrams) and 2 MiB TCP bulk both ways over IPv4 and
// IPv6, every byte checked (shunt_workloads.h on the Shunt side, ns3_apps.h on the ns-3 side).
//
// What ns-3 needs to talk to a real stack, set in Mixed: checksums on (ChecksumEnabled), a TCP
// SegmentSize that fits the MTU per family, fixed IPv6 addresses (its Ipv6AddressHelper derives
// them from the MAC), DAD off (Icmpv6L4Protocol::DAD) to keep the timeline short.
#include <boost/test/results_collector.hpp>
#include <boost/test/unit_test.hpp>
#include <ns3/boolean.h>
#include <ns3/config.h>
#include <ns3/csma-helper.h>
#include <ns3/data-rate.h>
#include <ns3/global-value.h>
#include <ns3/internet-stack-helper.h>
#include <ns3/ipv4-address-helper.h>
#include <ns3/ipv6-interface-address.h>
#include <ns3/ipv6.h>
#include <ns3/net-device-container.h>
#include <ns3/node-container.h>
#include <ns3/nstime.h>
#include <ns3/rng-seed-manager.h>
#include <ns3/simulator.h>
#include <ns3/queue-size.h>
#include <ns3/uinteger.h>

#include "nicmodel/ns3/eth_link.h"
#include "nicmodel/ns3/ns3_apps.h"
#include "nicmodel/ns3/shunt_host.h"
#include "nicmodel/ns3/shunt_workloads.h"
#include "stack/core/counters.h"
#include "stack/net/stack.h"

using namespace nicmodel;

namespace {

const shunt::IpAddr kShunt4 = shunt::Ipv4Addr{0x0a000001u};  // 10.0.0.1
const shunt::IpAddr kNs34 = shunt::Ipv4Addr{0x0a000002u};    // 10.0.0.2
const shunt::IpAddr kShunt6 = *shunt::Ipv6Addr::parse("fd00::1");
const shunt::IpAddr kNs36 = *shunt::Ipv6Addr::parse("fd00::2");

// Shunt's IPv6 address is usable once its duplicate address detection is over (one probe,
// RetransTimer = 1 s); workloads start after that. ns-3's DAD is off (Icmpv6L4Protocol::DAD).
const ns3::Time kV6Start = ns3::MilliSeconds(1500);

// What joins the two hosts: a CSMA segment (half duplex) or an EthLink cable (full duplex).
enum class Link { kCsma, kEthLink };

// Node 0: a Shunt host; node 1: an ns-3 host with ns-3's InternetStack, on one 10 Gb/s link.
struct Mixed {
  ns3::NodeContainer nodes;
  ns3::NetDeviceContainer phys;
  ns3::Ptr<ShuntHost> shunt;
  ns3::Ptr<ns3::Node> native;

  // `v6`: ns-3's TCP sockets are sized for IPv6 (see SegmentSize below).
  explicit Mixed(bool v6 = false, Link link = Link::kCsma) {
    ns3::RngSeedManager::SetSeed(1);
    ns3::RngSeedManager::SetRun(1);
    // ns-3's TCP sends 536-byte segments unless told. SegmentSize is its payload per segment,
    // and it does not subtract its 12 bytes of timestamps nor the IP header's size: 1448 fills a
    // 1500-byte MTU over IPv4 (20 + 20 + 12 + 1448), 1428 over IPv6 (40 + 20 + 12 + 1428); more
    // and ns-3 fragments every segment at the IP layer.
    ns3::Config::SetDefault("ns3::TcpSocket::SegmentSize", ns3::UintegerValue(v6 ? 1428 : 1448));
    ns3::Config::SetDefault("ns3::Icmpv6L4Protocol::DAD", ns3::BooleanValue(false));
    // ns-3 leaves IP, UDP and TCP checksums zero unless enabled; Shunt (and its NIC's checksum
    // offload) verifies them and would drop every segment.
    ns3::GlobalValue::Bind("ChecksumEnabled", ns3::BooleanValue(true));

    nodes.Create(2);
    // Debugging aid: NS3_INTEROP_PCAP=/tmp/x writes /tmp/x-<node>-<device>.pcap.
    const char* pcap = std::getenv("NS3_INTEROP_PCAP");
    if (link == Link::kCsma) {
      ns3::CsmaHelper csma;
      csma.SetChannelAttribute("DataRate", ns3::DataRateValue(ns3::DataRate("10Gbps")));
      csma.SetChannelAttribute("Delay", ns3::TimeValue(ns3::NanoSeconds(500)));
      // Half duplex: data and ACKs take turns, so each sender's queue must hold what its NIC or
      // TCP hands it meanwhile.
      csma.SetQueue("ns3::DropTailQueue<Packet>", "MaxSize", ns3::QueueSizeValue(ns3::QueueSize("10000p")));
      phys = csma.Install(nodes);
      csma.AssignStreams(phys, 100);
      if (pcap) csma.EnablePcapAll(pcap, true);
    } else {
      EthLinkHelper eth;
      eth.SetDeviceAttribute("DataRate", ns3::DataRateValue(ns3::DataRate("10Gbps")));
      eth.SetChannelAttribute("Delay", ns3::TimeValue(ns3::NanoSeconds(500)));
      eth.SetQueue("ns3::DropTailQueue", "MaxSize", ns3::QueueSizeValue(ns3::QueueSize("1000p")));
      phys = eth.Install(nodes);
      if (pcap) eth.EnablePcapAll(pcap, true);
    }

    shunt::Config config;
    config.seed = 1;
    std::string error;
    uint8_t mac[6] = {0x02, 0, 0, 0, 0, 0x01};
    ns3::Mac48Address m;
    m.CopyFrom(mac);
    shunt = InstallShuntHost(nodes.Get(0), phys.Get(0), 10'000'000'000ull, config, m, error);
    BOOST_REQUIRE_MESSAGE(shunt, error);
    shunt->AddAddress(kShunt4, 24);
    shunt->AddAddress(kShunt6, 64);

    native = nodes.Get(1);
    ns3::InternetStackHelper internet;
    internet.Install(native);
    // Fixed random streams (ARP jitter, ...): a case gives the same figures alone or in a run.
    internet.AssignStreams(ns3::NodeContainer(native), 0);
    ns3::NetDeviceContainer native_dev(phys.Get(1));
    ns3::Ipv4AddressHelper v4;
    v4.SetBase("10.0.0.0", "255.255.255.0", "0.0.0.2");
    v4.Assign(native_dev);
    // Ipv6AddressHelper::Assign would make fd00::200:ff:fe00:2 from the MAC (SLAAC style); the
    // test wants a fixed address, added as the helper adds its own.
    auto ipv6 = native->GetObject<ns3::Ipv6>();
    int32_t ifi = ipv6->GetInterfaceForDevice(phys.Get(1));
    if (ifi < 0) ifi = int32_t(ipv6->AddInterface(phys.Get(1)));
    ipv6->AddAddress(uint32_t(ifi), ns3::Ipv6InterfaceAddress(ns3::Ipv6Address("fd00::2"), ns3::Ipv6Prefix(64)));
    ipv6->SetMetric(uint32_t(ifi), 1);
    ipv6->SetUp(uint32_t(ifi));
  }
  ~Mixed() {
    // What the Shunt stack counted (drops by reason) when a case failed.
    if (!boost::unit_test::results_collector.results(boost::unit_test::framework::current_test_case().p_id).passed())
      BOOST_TEST_MESSAGE("shunt counters:\n" << shunt->stack().counters().dump());
    ns3::Simulator::Destroy();
  }

  uint64_t counter(const char* name) { return shunt->stack().counters().get(name); }
};

void ReportTcp(const std::string& what, uint64_t bytes, const TcpSendStats& tx, const TcpStreamStats& rx) {
  const double secs = double(rx.eof_at - tx.connected) / 1e9;
  BOOST_TEST_MESSAGE(what << ": " << bytes << " bytes in " << secs * 1e3 << " ms: " << bytes * 8 / secs / 1e9
                          << " Gbit/s goodput");
}

std::string Label(bool v6, Link link) {
  return std::string(v6 ? " (v6, " : " (v4, ") + (link == Link::kCsma ? "csma)" : "ethlink)");
}

void ReportUdp(const char* what, const UdpClientStats& c) {
  if (c.rtts.empty()) return;
  BOOST_TEST_MESSAGE(what << ": " << c.echoes << " echoes, first rtt " << c.rtts.front() << " ns (with "
                          << "address resolution), last " << c.rtts.back() << " ns");
}

}  // namespace

BOOST_AUTO_TEST_SUITE(ns3_interop)

BOOST_AUTO_TEST_CASE(udp_echo_shunt_client_to_ns3_server_ipv4) {
  Mixed t;
  auto echo = InstallPatternUdpEcho(t.native, 7)->stats();
  auto client = AddUdpClient(*t.shunt, kNs34, 7, 100, 512, 0, 1 * shunt::kMilli);
  ns3::Simulator::Stop(ns3::MilliSeconds(100));
  ns3::Simulator::Run();
  BOOST_TEST(client->error == "");
  BOOST_TEST(echo->error == "");
  BOOST_TEST(client->sent == 100u);
  BOOST_TEST(client->echoes == 100u);
  BOOST_TEST(client->bad_echoes == 0u);
  BOOST_TEST(echo->echoed == 100u);
  // Shunt asked for ns-3's MAC; ns-3 does not learn from a request it answers (it creates no
  // cache entry for the sender, unlike RFC 826's merge), so it asked back and Shunt answered.
  BOOST_TEST(t.counter("arp.tx_requests") >= 1u);
  BOOST_TEST(t.counter("arp.tx_replies") >= 1u);
  BOOST_TEST(t.shunt->stack().counters().sum("arp.drop.") == 0u);
  ReportUdp("shunt -> ns-3 udp echo (v4)", *client);
}

BOOST_AUTO_TEST_CASE(udp_echo_ns3_client_to_shunt_server_ipv4) {
  Mixed t;
  auto echo = AddUdpEcho(*t.shunt, 7);
  auto client =
      InstallPatternUdpClient(t.native, ToNs3SocketAddress(kShunt4, 7), 100, 512, ns3::Seconds(0), ns3::MilliSeconds(1))
          ->stats();
  ns3::Simulator::Stop(ns3::MilliSeconds(100));
  ns3::Simulator::Run();
  BOOST_TEST(client->error == "");
  BOOST_TEST(echo->error == "");
  BOOST_TEST(client->sent == 100u);
  BOOST_TEST(client->echoes == 100u);
  BOOST_TEST(client->bad_echoes == 0u);
  BOOST_TEST(echo->echoed == 100u);
  BOOST_TEST(t.counter("arp.tx_replies") >= 1u);  // to ns-3's request
  BOOST_TEST(t.shunt->stack().counters().sum("arp.drop.") == 0u);
  ReportUdp("ns-3 -> shunt udp echo (v4)", *client);
}

BOOST_AUTO_TEST_CASE(udp_echo_shunt_client_to_ns3_server_ipv6) {
  Mixed t;
  auto echo = InstallPatternUdpEcho(t.native, 7, true)->stats();
  auto client = AddUdpClient(*t.shunt, kNs36, 7, 100, 512, 0, kV6Start.GetNanoSeconds());
  ns3::Simulator::Stop(ns3::Seconds(2));
  ns3::Simulator::Run();
  BOOST_TEST(client->error == "");
  BOOST_TEST(echo->error == "");
  BOOST_TEST(client->sent == 100u);
  BOOST_TEST(client->echoes == 100u);
  BOOST_TEST(client->bad_echoes == 0u);
  BOOST_TEST(echo->echoed == 100u);
  // ns-3 answered Shunt's NS (and took Shunt's MAC from its source link-layer option).
  BOOST_TEST(t.counter("ndp.rx_na") >= 1u);
  BOOST_TEST(t.shunt->stack().counters().sum("ndp.drop.") == 0u);
  ReportUdp("shunt -> ns-3 udp echo (v6)", *client);
}

BOOST_AUTO_TEST_CASE(udp_echo_ns3_client_to_shunt_server_ipv6) {
  Mixed t;
  auto echo = AddUdpEcho(*t.shunt, 7, true);
  auto client =
      InstallPatternUdpClient(t.native, ToNs3SocketAddress(kShunt6, 7), 100, 512, ns3::Seconds(0), kV6Start)->stats();
  ns3::Simulator::Stop(ns3::Seconds(2));
  ns3::Simulator::Run();
  BOOST_TEST(client->error == "");
  BOOST_TEST(echo->error == "");
  BOOST_TEST(client->sent == 100u);
  BOOST_TEST(client->echoes == 100u);
  BOOST_TEST(client->bad_echoes == 0u);
  BOOST_TEST(echo->echoed == 100u);
  BOOST_TEST(t.counter("ndp.rx_ns") >= 1u);  // ns-3's solicitation, which Shunt answered
  BOOST_TEST(t.counter("ndp.tx_na") >= 1u);
  BOOST_TEST(t.shunt->stack().counters().sum("ndp.drop.") == 0u);
  ReportUdp("ns-3 -> shunt udp echo (v6)", *client);
}

// Datagrams bigger than the MTU: each stack reassembles the other's IP fragments (RFC 791 3.2,
// RFC 8200 4.5), and the echo goes back fragmented too. Paced, not a ping-pong.
//
// One ping first resolves addresses both ways: ns-3 holds only 3 packets per unresolved
// neighbour (ArpCache / NdiscCache PendingQueueSize) and delays its ARP requests by up to 10 ms
// (ArpL3Protocol::RequestJitter), so datagrams sent during resolution would be lost on its side.
void FragmentedEcho(bool v6, bool shunt_client) {
  Mixed t;
  const ns3::Time warmup = v6 ? kV6Start : ns3::MilliSeconds(1);
  const ns3::Time start = warmup + ns3::MilliSeconds(50);
  auto warm_echo = InstallPatternUdpEcho(t.native, 9, v6)->stats();
  auto warm = AddUdpClient(*t.shunt, v6 ? kNs36 : kNs34, 9, 1, 64, 0, warmup.GetNanoSeconds());
  std::shared_ptr<UdpClientStats> client;
  std::shared_ptr<UdpEchoStats> echo;
  if (shunt_client) {
    echo = InstallPatternUdpEcho(t.native, 7, v6)->stats();
    client = AddUdpClient(*t.shunt, v6 ? kNs36 : kNs34, 7, 50, 4000, 100 * shunt::kMicro, start.GetNanoSeconds());
  } else {
    echo = AddUdpEcho(*t.shunt, 7, v6);
    client = InstallPatternUdpClient(t.native, ToNs3SocketAddress(v6 ? kShunt6 : kShunt4, 7), 50, 4000,
                                     ns3::MicroSeconds(100), start)
                 ->stats();
  }
  ns3::Simulator::Stop(start + ns3::MilliSeconds(100));
  ns3::Simulator::Run();
  BOOST_TEST(warm->echoes == 1u);
  BOOST_TEST(client->error == "");
  BOOST_TEST(echo->error == "");
  BOOST_TEST(client->sent == 50u);
  BOOST_TEST(echo->echoed == 50u);
  BOOST_TEST(client->echoes == 50u);
  BOOST_TEST(client->bad_echoes == 0u);
}

BOOST_AUTO_TEST_CASE(udp_fragmented_datagrams_shunt_client_ipv4) { FragmentedEcho(false, true); }
BOOST_AUTO_TEST_CASE(udp_fragmented_datagrams_ns3_client_ipv4) { FragmentedEcho(false, false); }
BOOST_AUTO_TEST_CASE(udp_fragmented_datagrams_shunt_client_ipv6) { FragmentedEcho(true, true); }
BOOST_AUTO_TEST_CASE(udp_fragmented_datagrams_ns3_client_ipv6) { FragmentedEcho(true, false); }

constexpr uint64_t kBulk = 2 << 20;

// ns-3's TCP never sends an MSS option (3.37, and ns-3-dev still: TcpOptionMSS exists but
// TcpSocketBase does not emit it), so Shunt, as RFC 9293 3.7.1 (RFC 1122 4.2.2.6) requires,
// assumes the default send MSS towards it: 536 bytes over IPv4, 1220 over IPv6, less 12 bytes of
// timestamps: 524- and 1208-byte segments. Shunt -> ns-3 goodput is lower for that reason, not
// for lack of window: the other direction carries full 1448/1428-byte segments.
void ShuntToNs3(bool v6, Link link = Link::kCsma) {
  Mixed t(v6, link);
  const ns3::Time start = v6 ? kV6Start : ns3::MilliSeconds(1);
  auto sink = InstallPatternTcpSink(t.native, 5001, 7, v6)->stats();
  auto sender = AddTcpSender(*t.shunt, v6 ? kNs36 : kNs34, 5001, kBulk, 7, start.GetNanoSeconds());
  ns3::Simulator::Stop(start + ns3::Seconds(3));
  ns3::Simulator::Run();
  BOOST_TEST(sender->error == "");
  BOOST_TEST(sink->error == "");
  BOOST_REQUIRE(sink->streams.size() == 1u);
  const auto& s = sink->streams[0];
  BOOST_TEST_MESSAGE("received " << s.received << " eof " << s.eof << " mismatch " << s.mismatch << " sent "
                                 << sender->sent << " phy drops " << t.shunt->nic()->phy_drops());
  BOOST_TEST(sink->complete(kBulk) == 1u);
  BOOST_TEST(sender->sent == kBulk);
  BOOST_TEST(sender->peer_closed);
  const uint64_t default_payload = v6 ? 1220 - 12 : 536 - 12;
  BOOST_TEST(t.counter("tcp.tx_segments") >= kBulk / default_payload);
  if (sink->complete(kBulk) == 1u) ReportTcp("shunt -> ns-3 tcp" + Label(v6, link), kBulk, *sender, s);
}

void Ns3ToShunt(bool v6, Link link = Link::kCsma) {
  Mixed t(v6, link);
  const ns3::Time start = v6 ? kV6Start : ns3::MilliSeconds(1);
  auto sink = AddTcpSink(*t.shunt, 5001, 9, v6);
  auto source =
      InstallPatternTcpSource(t.native, ToNs3SocketAddress(v6 ? kShunt6 : kShunt4, 5001), kBulk, 9, start)->stats();
  ns3::Simulator::Stop(start + ns3::Seconds(3));
  ns3::Simulator::Run();
  BOOST_TEST(source->error == "");
  BOOST_TEST(sink->error == "");
  BOOST_REQUIRE(sink->streams.size() == 1u);
  const auto& s = sink->streams[0];
  BOOST_TEST_MESSAGE("received " << s.received << " eof " << s.eof << " mismatch " << s.mismatch << " sent "
                                 << source->sent << " phy drops " << t.shunt->nic()->phy_drops());
  BOOST_TEST(sink->complete(kBulk) == 1u);
  BOOST_TEST(source->sent == kBulk);
  BOOST_TEST(source->peer_closed);
  if (sink->complete(kBulk) == 1u) ReportTcp("ns-3 -> shunt tcp" + Label(v6, link), kBulk, *source, s);
}

BOOST_AUTO_TEST_CASE(tcp_bulk_shunt_to_ns3_ipv4_is_byte_exact) { ShuntToNs3(false); }
BOOST_AUTO_TEST_CASE(tcp_bulk_ns3_to_shunt_ipv4_is_byte_exact) { Ns3ToShunt(false); }
BOOST_AUTO_TEST_CASE(tcp_bulk_shunt_to_ns3_ipv6_is_byte_exact) { ShuntToNs3(true); }
BOOST_AUTO_TEST_CASE(tcp_bulk_ns3_to_shunt_ipv6_is_byte_exact) { Ns3ToShunt(true); }
// The same over a full-duplex EthLink cable (data and ACKs do not take turns).
BOOST_AUTO_TEST_CASE(tcp_bulk_shunt_to_ns3_ipv4_over_ethlink) { ShuntToNs3(false, Link::kEthLink); }
BOOST_AUTO_TEST_CASE(tcp_bulk_ns3_to_shunt_ipv4_over_ethlink) { Ns3ToShunt(false, Link::kEthLink); }
BOOST_AUTO_TEST_CASE(tcp_bulk_shunt_to_ns3_ipv6_over_ethlink) { ShuntToNs3(true, Link::kEthLink); }
BOOST_AUTO_TEST_CASE(tcp_bulk_ns3_to_shunt_ipv6_over_ethlink) { Ns3ToShunt(true, Link::kEthLink); }

// Both directions at once on the full-duplex cable, twice: the same seeds give the same
// simulation (end times, every Shunt counter), with ns-3's random streams fixed.
BOOST_AUTO_TEST_CASE(tcp_both_ways_at_once_is_byte_exact_and_deterministic) {
  auto once = [] {
    Mixed t(false, Link::kEthLink);
    auto ns3_sink = InstallPatternTcpSink(t.native, 5001, 3)->stats();
    auto shunt_sink = AddTcpSink(*t.shunt, 5002, 4);
    auto sender = AddTcpSender(*t.shunt, kNs34, 5001, kBulk, 3, shunt::kMilli);
    auto source = InstallPatternTcpSource(t.native, ToNs3SocketAddress(kShunt4, 5002), kBulk, 4,
                                          ns3::MilliSeconds(1))
                      ->stats();
    ns3::Simulator::Stop(ns3::Seconds(3));
    ns3::Simulator::Run();
    BOOST_TEST(sender->error == "");
    BOOST_TEST(source->error == "");
    BOOST_TEST(ns3_sink->complete(kBulk) == 1u);
    BOOST_TEST(shunt_sink->complete(kBulk) == 1u);
    std::vector<shunt::Nanos> ends;
    for (const auto& st : ns3_sink->streams) ends.push_back(st.eof_at);
    for (const auto& st : shunt_sink->streams) ends.push_back(st.eof_at);
    if (ends.size() == 2)
      BOOST_TEST_MESSAGE("both ways at once (v4, ethlink): 2 x " << kBulk << " bytes, done at " << ends[0] / 1000
                                                                   << " us and " << ends[1] / 1000 << " us");
    return std::make_pair(ends, t.shunt->stack().counters().dump());
  };
  const auto first = once();
  const auto second = once();
  BOOST_TEST(first.first == second.first);
  BOOST_TEST(first.second == second.second);
}

BOOST_AUTO_TEST_SUITE_END()
