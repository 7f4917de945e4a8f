// A harness pcap read back by Wireshark's dissectors: no malformed packets, no bad checksums.
// Skipped (exit 77) where tshark is not installed.
#include <boost/test/unit_test.hpp>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <unistd.h>

#include "stack/harness/harness.h"
#include "stack/harness/udp_pingpong.h"

using namespace shunt;

namespace {
std::string run(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}
size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}
}  // namespace

BOOST_AUTO_TEST_CASE(tshark_reads_a_harness_capture_without_warnings) {
  if (std::system("command -v tshark > /dev/null 2>&1") != 0) {
    std::printf("tshark is not installed: skipped\n");
    std::fflush(stdout);
    std::_Exit(77);
  }
  std::string path = "/tmp/shunt_test_" + std::to_string(getpid()) + "_tshark.pcap";
  uint64_t frames = 0;
  {
    HarnessOptions o;
    o.config.pcap = path;
    Harness h(o);
    BOOST_TEST_REQUIRE(h.pcap().is_open());
    h.run_for(5 * kSecond);  // ARP announcements, DAD, MLD reports
    PingPongOptions v4;
    v4.payload = 64;
    UdpPingPong a(h, v4);
    BOOST_TEST(a.run(20).completed == 20u);
    PingPongOptions v6;
    v6.ipv6 = true;
    v6.payload = 3000;  // fragmented
    v6.client_port = 40001;
    UdpPingPong b(h, v6);
    BOOST_TEST(b.run(5).completed == 5u);
    PingPongOptions big;
    big.payload = 4000;  // fragmented IPv4
    big.client_port = 40002;
    big.server_port = 9;
    UdpPingPong c(h, big);
    BOOST_TEST(c.run(5).completed == 5u);
    frames = h.link().counters().get("link.tx_frames");
  }
  std::string out =
      run("tshark -n -r " + path + " -o ip.check_checksum:TRUE -o udp.check_checksum:TRUE -V 2>&1");
  BOOST_TEST(count(out, "Frame ") >= frames);
  BOOST_TEST(count(out, "alformed") == 0u, "tshark says malformed:\n" << out.substr(0, 4000));
  BOOST_TEST(count(out, " incorrect") == 0u);
  BOOST_TEST(count(out, "Status: Bad") == 0u);
  BOOST_TEST(count(out, "Expert Info (Warning") == 0u);
  BOOST_TEST(count(out, "Expert Info (Error") == 0u);
  BOOST_TEST(count(out, "User Datagram Protocol") > 0u);
  BOOST_TEST(count(out, "Internet Protocol Version 6") > 0u);
  std::string summary = run("tshark -n -r " + path + " 2>&1");
  BOOST_TEST(count(summary, "alformed") == 0u);
  std::remove(path.c_str());
}
