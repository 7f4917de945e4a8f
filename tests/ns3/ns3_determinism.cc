// Determinism (DESIGN.md): a dumbbell with loss (an error model on an edge link, a small
// drop-tail bottleneck), Shunt hosts and an ns-3 host, run twice in one process with the same
// seed, gives byte-identical pcap files on every device and identical per-packet NIC timelines;
// another seed gives another trace.
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include <ns3/udp-echo-helper.h>

#include "nicmodel/ns3/shunt_workloads.h"
#include "nicmodel/ns3/topology.h"

using namespace nicmodel;

namespace {

struct Trace {
  std::vector<std::string> pcap_names;
  std::vector<std::string> pcaps;                      // file contents, in device order
  std::vector<std::vector<PacketTimeline>> timelines;  // per Shunt host
  uint64_t received = 0, phy_drops = 0, queue_drops = 0;
  size_t complete = 0;
};

Trace RunDumbbell(uint32_t seed, const std::string& tag) {
  Trace out;
  const std::string prefix = "/tmp/shunt-ns3-determinism-" + std::to_string(getpid()) + "-" + tag;
  {
    LinkSpec edge;
    edge.rate_bps = 10'000'000'000ull;
    edge.delay = 1'000;
    edge.error = ErrorSpec::Rate(0.005);  // every edge cable, both ends
    LinkSpec bottleneck;
    bottleneck.rate_bps = 1'000'000'000ull;
    bottleneck.delay = 10'000;
    QueueDiscSpec q;
    q.max_packets = 30;
    TopologyOptions options;
    options.ns3_seed = seed;
    options.config.seed = seed;
    options.config.tcp_rto_min_ms = 5;
    options.config.tcp_rto_initial_ms = 20;  // a lost SYN costs 20 ms, not a second
    // Left: two Shunt senders; right: a Shunt receiver and an ns-3 host (ARP, NDP with jitter).
    auto t = Topology::Dumbbell(
        2, 2, {HostKind::kShunt, HostKind::kShunt, HostKind::kShunt, HostKind::kNs3}, edge,
        bottleneck, q, options);
    t->EnablePcap(prefix);
    ns3::UdpEchoServerHelper server(7);
    server.Install(t->host(3).node);
    auto sink = AddTcpSink(t->shunt(2), 5001);
    AddTcpSender(t->shunt(0), t->host(2).addr(), 5001, 1 << 20);
    AddTcpSender(t->shunt(1), t->host(2).addr(), 5001, 1 << 20);
    AddUdpClient(t->shunt(1), t->host(3).addr(), 7, 50, 200, 100 * shunt::kMicro);
    t->Run(300 * shunt::kMilli);

    out.complete = sink->complete(1 << 20);
    out.received = sink->total();
    out.phy_drops = t->phy_rx_drops();
    out.queue_drops = t->bottleneck_queue_disc()->GetStats().nTotalDroppedPackets;
    for (size_t i = 0; i < 3; ++i) out.timelines.push_back(t->shunt(i).nic()->model().timelines());
    out.pcap_names = t->pcap_files();
  }  // the Topology is gone: every pcap file is closed
  for (const auto& name : out.pcap_names) {
    std::ifstream f(name, std::ios::binary);
    std::ostringstream s;
    s << f.rdbuf();
    out.pcaps.push_back(s.str());
    if (!std::getenv("SHUNT_TEST_KEEP_PCAPS")) std::remove(name.c_str());  // set it to look at them
  }
  return out;
}

// A pcap file's records with each frame cut to its Ethernet header and the packet its EtherType
// says it carries: without padding and FCS.
std::vector<std::string> FramesWithoutPadding(const std::string& file) {
  std::vector<std::string> out;
  auto u16 = [&](size_t at) {
    return at + 2 <= file.size() ? size_t(uint8_t(file[at])) << 8 | uint8_t(file[at + 1]) : 0;
  };
  size_t o = 24;  // the file header
  while (o + 16 <= file.size()) {
    uint32_t caplen;
    std::memcpy(&caplen, file.data() + o + 8, 4);
    const size_t f = o + 16;
    if (f + caplen > file.size() || caplen < 14) break;
    size_t len = caplen;
    switch (u16(f + 12)) {
      case 0x0806:
        len = 14 + 28;
        break;  // RFC 826, for IPv4 over Ethernet
      case 0x0800:
        len = 14 + u16(f + 14 + 2);
        break;  // RFC 791 total length
      case 0x86dd:
        len = 14 + 40 + u16(f + 14 + 4);
        break;  // RFC 8200 payload length
    }
    // The record's timestamp (8 bytes) and the frame without its padding.
    out.push_back(file.substr(o, 8) + file.substr(f, std::min<size_t>(len, caplen)));
    o = f + caplen;
  }
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(same_seed_gives_identical_pcaps_and_nic_timelines_another_seed_does_not) {
  const Trace a = RunDumbbell(1, "a");
  const Trace b = RunDumbbell(1, "b");
  const Trace c = RunDumbbell(2, "c");

  BOOST_TEST(a.complete == 2u);
  BOOST_TEST(c.complete == 2u);
  BOOST_TEST(a.queue_drops > 0u);
  size_t bytes = 0;
  for (const auto& p : a.pcaps) bytes += p.size();
  BOOST_TEST_MESSAGE("seed 1: " << a.pcaps.size() << " pcap files, " << bytes << " bytes; "
                                << a.queue_drops << " bottleneck drops, " << a.phy_drops
                                << " frames lost; seed 2: " << c.queue_drops << " drops, "
                                << c.phy_drops << " lost");
  BOOST_REQUIRE(a.pcaps.size() == 10u);  // both ends of the bottleneck and of 4 edge cables
  for (const auto& p : a.pcaps) {
    BOOST_TEST(p.size() > 24u);  // more than the file header
    // pcap link type 1: DLT_EN10MB, whole Ethernet frames (what tshark reads as Ethernet).
    BOOST_TEST((p.size() >= 24 && p[20] == 1 && p[21] == 0 && p[22] == 0 && p[23] == 0));
  }

  // Same seed: every frame at the same time with the same bytes, every timeline field for field.
  BOOST_REQUIRE(b.pcaps.size() == a.pcaps.size());
  for (size_t i = 0; i < a.pcaps.size(); ++i) {
    const auto fa = FramesWithoutPadding(a.pcaps[i]), fb = FramesWithoutPadding(b.pcaps[i]);
    BOOST_TEST(fa.size() > 1u);
    BOOST_TEST((fa == fb), a.pcap_names[i] << ": frames or their times differ");
    // The files byte for byte (padding included: the link pads with zeros).
    BOOST_TEST((a.pcaps[i] == b.pcaps[i]), a.pcap_names[i] << ": the files differ");
  }
  BOOST_REQUIRE(a.timelines.size() == b.timelines.size());
  for (size_t h = 0; h < a.timelines.size(); ++h) {
    BOOST_TEST(!a.timelines[h].empty());
    BOOST_TEST((a.timelines[h] == b.timelines[h]), "NIC timelines of host " << h << " differ");
  }
  BOOST_TEST(a.received == b.received);
  BOOST_TEST(a.queue_drops == b.queue_drops);
  BOOST_TEST(a.phy_drops == b.phy_drops);

  // Another seed: another trace.
  BOOST_REQUIRE(c.pcaps.size() == a.pcaps.size());
  bool differs = false;
  for (size_t i = 0; i < a.pcaps.size(); ++i)
    differs |= FramesWithoutPadding(a.pcaps[i]) != FramesWithoutPadding(c.pcaps[i]);
  BOOST_TEST(differs);
  BOOST_TEST(!(a.timelines == c.timelines));
}
