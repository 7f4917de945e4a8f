// DESIGN.md determinism: the same seed and configuration give byte-identical frames. A UDP
// ping-pong over the harness link is run twice and the pcap files compared.
#include <boost/test/unit_test.hpp>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <unistd.h>

#include "stack/harness/harness.h"
#include "stack/harness/udp_pingpong.h"

using namespace shunt;

namespace {
struct Outcome {
  std::vector<uint8_t> pcap;
  uint64_t completed = 0, lost = 0;
  std::vector<Nanos> rtts;
};

Outcome ping_pong(uint64_t seed, const LinkConfig& link, uint64_t count = 300, bool ipv6 = false) {
  static int run = 0;
  std::string path =
      "/tmp/shunt_test_" + std::to_string(getpid()) + "_det" + std::to_string(run++) + ".pcap";
  Outcome out;
  {
    HarnessOptions o;
    o.link = link;
    o.link.seed = seed;
    o.config.seed = int64_t(seed);
    o.config.pcap = path;
    Harness h(o);
    BOOST_REQUIRE(h.pcap().is_open());
    if (ipv6) h.run_for(5 * kSecond);  // duplicate address detection
    PingPongOptions po;
    po.ipv6 = ipv6;
    UdpPingPong pp(h, po);
    const PingPongResult& r = pp.run(count);
    BOOST_REQUIRE_MESSAGE(r.ok(), r.error);
    out.completed = r.completed;
    out.lost = r.lost;
    out.rtts = r.rtts;
  }
  std::ifstream in(path, std::ios::binary);
  out.pcap.assign(std::istreambuf_iterator<char>(in), {});
  std::remove(path.c_str());
  return out;
}
}  // namespace

BOOST_AUTO_TEST_CASE(the_same_seed_gives_byte_identical_pcaps) {
  LinkConfig link;
  Outcome a = ping_pong(1, link), b = ping_pong(1, link);
  BOOST_TEST(a.completed == 300u);
  BOOST_TEST(a.pcap.size() > 300u * 2 * 100);
  BOOST_TEST(a.pcap == b.pcap);
}

BOOST_AUTO_TEST_CASE(the_same_seed_gives_identical_results_under_every_impairment) {
  LinkConfig link;
  link.loss = 0.05;
  link.duplicate = 0.05;
  link.reorder = 0.05;
  link.corrupt = 0.05;
  Outcome a = ping_pong(11, link, 500), b = ping_pong(11, link, 500);
  BOOST_TEST(a.lost > 0u);
  BOOST_TEST(a.completed + a.lost == 500u);
  BOOST_TEST(a.completed == b.completed);
  BOOST_TEST(a.rtts == b.rtts);
  BOOST_TEST(a.pcap == b.pcap);
}

BOOST_AUTO_TEST_CASE(a_different_seed_gives_a_different_run_with_loss) {
  LinkConfig link;
  link.loss = 0.05;
  Outcome a = ping_pong(1, link, 500), b = ping_pong(2, link, 500);
  BOOST_TEST(a.pcap != b.pcap);
  // Loss roughly as configured: about 2 frames per round trip, each lost with p = 0.05.
  BOOST_TEST(a.lost > 10u);
  BOOST_TEST(a.lost < 120u);
}

BOOST_AUTO_TEST_CASE(ipv6_ping_pong_is_deterministic_too) {
  LinkConfig link;
  Outcome a = ping_pong(5, link, 100, true), b = ping_pong(5, link, 100, true);
  BOOST_TEST(a.completed == 100u);
  BOOST_TEST(a.pcap == b.pcap);
}
