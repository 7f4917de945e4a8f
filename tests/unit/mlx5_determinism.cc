// DESIGN.md determinism over the simulated ConnectX: two stacks, each driving the mlx5 driver on
// its own modelled NIC, run a UDP ping-pong and a TCP transfer over a lossy link twice with the
// same seed; the pcaps are byte-identical and every per-packet NIC timeline is the same.
#include <boost/test/unit_test.hpp>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <unistd.h>

#include "nicmodel/nicmodel.h"
#include "stack/harness/harness.h"
#include "stack/harness/tcp_bulk.h"
#include "stack/harness/udp_pingpong.h"

using namespace shunt;

namespace {

struct Outcome {
  std::vector<uint8_t> pcap;
  std::vector<nicmodel::PacketTimeline> timelines;  // both NICs, client's first
  std::vector<Nanos> rtts;
  uint64_t tcp_hash = 0;
  uint64_t nic_frames = 0;
};

Outcome run(uint64_t seed) {
  static int n = 0;
  const std::string path = "/tmp/shunt_test_" + std::to_string(getpid()) + "_mlx5det" + std::to_string(n++) + ".pcap";
  Outcome out;
  {
    HarnessOptions o;
    o.nic = "mlx5sim";
    o.link.seed = seed;
    o.link.loss = 0.01;
    o.config.seed = int64_t(seed);
    o.config.pcap = path;
    o.config.nic_timelines = 1 << 16;
    Harness h(o);
    BOOST_REQUIRE(h.pcap().is_open());
    BOOST_REQUIRE(h.nic(0) && h.nic(1));
    UdpPingPong pp(h);
    const PingPongResult& r = pp.run(200);
    BOOST_REQUIRE_MESSAGE(r.ok(), r.error);
    out.rtts = r.rtts;
    TcpBulkOptions to;
    to.client_to_server = 2 << 20;
    to.server_to_client = 256 << 10;
    TcpBulk bulk(h, to);
    const TcpBulkResult& tr = bulk.run();
    BOOST_REQUIRE_MESSAGE(tr.ok(), tr.error);
    BOOST_TEST(tr.hash_received_c2s == tr.hash_sent_c2s);
    out.tcp_hash = tr.hash_received_c2s ^ tr.hash_received_s2c;
    for (size_t i = 0; i < 2; ++i) {
      auto* nic = static_cast<nicmodel::ModelHarnessNic*>(h.nic(i));
      auto t = nic->model().timelines();
      out.timelines.insert(out.timelines.end(), t.begin(), t.end());
      out.nic_frames += nic->model().counters().get("nic.tx.frames");
    }
  }
  std::ifstream in(path, std::ios::binary);
  out.pcap.assign(std::istreambuf_iterator<char>(in), {});
  std::remove(path.c_str());
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(the_same_seed_gives_identical_pcaps_and_nic_timelines) {
  Outcome a = run(7), b = run(7);
  BOOST_TEST(a.nic_frames > 1000u);  // the frames went through the modelled NICs
  BOOST_TEST(a.pcap.size() > 100'000u);
  BOOST_TEST(a.pcap == b.pcap);
  BOOST_TEST(a.rtts == b.rtts);
  BOOST_TEST(a.tcp_hash == b.tcp_hash);
  BOOST_REQUIRE_EQUAL(a.timelines.size(), b.timelines.size());
  BOOST_TEST(a.timelines.size() > 1000u);
  size_t differ = 0;
  for (size_t i = 0; i < a.timelines.size(); ++i) differ += !(a.timelines[i] == b.timelines[i]);
  BOOST_TEST(differ == 0u);
}

BOOST_AUTO_TEST_CASE(another_seed_gives_another_run) {
  Outcome a = run(7), c = run(8);
  BOOST_TEST(a.pcap != c.pcap);
}
