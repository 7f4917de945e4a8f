// Shunt hosts inside ns-3: the stack as an Application on a node whose NIC is the simulated
// ConnectX (Mlx5NetDevice), on an ns-3 CSMA segment. UDP and TCP between two Shunt hosts, with
// every byte checked; the NIC's timelines show the model ran in ns-3's scheduler.
#include <boost/test/unit_test.hpp>
#include <ns3/csma-helper.h>
#include <ns3/data-rate.h>
#include <ns3/node-container.h>
#include <ns3/nstime.h>
#include <ns3/rng-seed-manager.h>
#include <ns3/simulator.h>

#include "nicmodel/ns3/shunt_host.h"
#include "nicmodel/ns3/shunt_workloads.h"
#include "stack/net/stack.h"

using namespace nicmodel;

namespace {

struct TwoOnCsma {
  ns3::NodeContainer nodes;
  ns3::Ptr<ShuntHost> host[2];
  explicit TwoOnCsma(uint64_t seed = 1) {
    ns3::RngSeedManager::SetSeed(uint32_t(seed));
    ns3::RngSeedManager::SetRun(1);
    nodes.Create(2);
    ns3::CsmaHelper csma;
    csma.SetChannelAttribute("DataRate", ns3::DataRateValue(ns3::DataRate("10Gbps")));
    csma.SetChannelAttribute("Delay", ns3::TimeValue(ns3::NanoSeconds(500)));
    // A CSMA segment is half duplex: data and ACKs take turns, so the sender's queue must
    // hold what the NIC serializes meanwhile.
    csma.SetQueue("ns3::DropTailQueue<Packet>", "MaxSize", ns3::QueueSizeValue(ns3::QueueSize("10000p")));
    auto phys = csma.Install(nodes);
    shunt::Config config;
    config.seed = seed;
    for (int i = 0; i < 2; ++i) {
      std::string error;
      uint8_t mac[6] = {0x02, 0, 0, 0, 0, uint8_t(i + 1)};
      ns3::Mac48Address m;
      m.CopyFrom(mac);
      host[i] = InstallShuntHost(nodes.Get(i), phys.Get(i), 10'000'000'000ull, config, m, error);
      BOOST_REQUIRE_MESSAGE(host[i], error);
      host[i]->AddAddress(shunt::Ipv4Addr{0x0a000001u + uint32_t(i)}, 24);
    }
  }
  ~TwoOnCsma() { ns3::Simulator::Destroy(); }
};

}  // namespace

BOOST_AUTO_TEST_CASE(udp_echo_between_two_shunt_hosts) {
  TwoOnCsma t;
  auto echo = AddUdpEcho(*t.host[1], 7);
  auto client = AddUdpClient(*t.host[0], shunt::Ipv4Addr{0x0a000002u}, 7, 100, 64, 0);
  ns3::Simulator::Stop(ns3::MilliSeconds(50));
  ns3::Simulator::Run();
  BOOST_TEST(client->error == "");
  BOOST_TEST(echo->error == "");
  BOOST_TEST(client->sent == 100u);
  BOOST_TEST(client->echoes == 100u);
  BOOST_TEST(client->bad_echoes == 0u);
  BOOST_REQUIRE(client->rtts.size() == 100u);
  // After ARP, a round trip is two NIC traversals each way plus the wire: microseconds.
  BOOST_TEST(client->rtts.back() > 1000);
  BOOST_TEST(client->rtts.back() < 50'000);
  BOOST_TEST(t.host[0]->nic()->model().cqes_written() > 0u);
  BOOST_TEST_MESSAGE("rtt " << client->rtts.back() << " ns");
}

BOOST_AUTO_TEST_CASE(tcp_stream_between_two_shunt_hosts_is_byte_exact) {
  TwoOnCsma t;
  auto sink = AddTcpSink(*t.host[1], 5001);
  auto sender = AddTcpSender(*t.host[0], shunt::Ipv4Addr{0x0a000002u}, 5001, 4 << 20);
  ns3::Simulator::Stop(ns3::MilliSeconds(200));
  ns3::Simulator::Run();
  BOOST_TEST(sender->error == "");
  BOOST_TEST(sink->error == "");
  BOOST_REQUIRE(sink->streams.size() == 1u);
  BOOST_TEST_MESSAGE("received " << sink->streams[0].received << " eof " << sink->streams[0].eof << " sent " << sender->sent
                     << " mismatch " << sink->streams[0].mismatch << " phy drops " << t.host[0]->nic()->phy_drops()
                     << " polls " << t.host[0]->polls());
  BOOST_TEST(sink->complete(4 << 20) == 1u);
  BOOST_TEST(sender->peer_closed);
  const double secs = double(sink->streams[0].eof_at - sender->connected) / 1e9;
  BOOST_TEST_MESSAGE("4 MiB in " << secs * 1e3 << " ms: " << (4 << 20) * 8 / secs / 1e9 << " Gbit/s");
}
