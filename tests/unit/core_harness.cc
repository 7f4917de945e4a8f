// The virtual-time harness loop with real stacks, without sockets: ICMP echo through ARP.
#include <boost/test/unit_test.hpp>
#include <cstdio>
#include <string>

#include <unistd.h>

#include "stack/harness/harness.h"
#include "stack/harness/udp_pingpong.h"
#include "stack/net/arp.h"
#include "stack/net/checksum.h"
#include "stack/net/ipv4.h"
#include "stack/net/stack.h"

using namespace shunt;

namespace {
// Sends an ICMP echo request from stack `from` to stack `to`.
int send_echo(Harness& h, size_t from, size_t to, uint16_t seq) {
  Stack& s = h.stack(from);
  PacketPtr p = s.alloc_tx();
  uint8_t* icmp = p->append(8 + 32);
  icmp[0] = 8;  // echo request
  icmp[1] = 0;
  store16(icmp + 2, 0);
  store16(icmp + 4, 0x5348);
  store16(icmp + 6, seq);
  for (int i = 0; i < 32; ++i) icmp[8 + i] = uint8_t(i);
  store16(icmp + 2, checksum(icmp, 40));
  Ipv4Tx tx;
  tx.dst = Harness::ipv4_of(to);
  tx.proto = 1;
  return s.ipv4().output(std::move(p), tx);
}
}  // namespace

BOOST_AUTO_TEST_CASE(stacks_get_the_default_addresses) {
  Harness h;
  BOOST_TEST(h.size() == 2u);
  BOOST_TEST(h.stack(0).mac().str() == "02:00:00:00:00:01");
  BOOST_TEST(h.stack(1).mac().str() == "02:00:00:00:00:02");
  BOOST_TEST(h.stack(1).is_local_v4(*Ipv4Addr::parse("10.0.0.2")));
  BOOST_TEST(Harness::ipv6_of(2).str() == "fd00::3");
  h.run_for(5 * kSecond);  // DAD completes
  BOOST_TEST(h.stack(0).is_local_v6(*Ipv6Addr::parse("fd00::1")));
}

BOOST_AUTO_TEST_CASE(an_idle_run_jumps_to_its_end_without_spinning) {
  Harness h;
  h.run_for(3600 * kSecond);
  BOOST_TEST(h.now() == 3600 * kSecond);
  // Only the stacks' own timers (DAD, reports, cache expiry) wake them.
  BOOST_TEST(h.polls() < 10'000u);
  BOOST_TEST(h.stalls() == 0u);
  uint64_t before = h.polls();
  h.run_for(3600 * kSecond);
  BOOST_TEST(h.polls() - before < 1'000u);
}

BOOST_AUTO_TEST_CASE(run_until_a_predicate_stops_when_it_holds_or_at_the_timeout) {
  Harness h;
  Nanos start = h.now();
  BOOST_TEST(!h.run_until([] { return false; }, 50 * kMilli));
  BOOST_TEST(h.now() == start + 50 * kMilli);
  int calls = 0;
  BOOST_TEST(h.run_until([&] { return ++calls == 1; }, kSecond));
  BOOST_TEST(h.now() == start + 50 * kMilli);  // held at once: no time passed
  h.run_until(10 * kMilli);                    // the past: the clock stays
  BOOST_TEST(h.now() == start + 50 * kMilli);
}

BOOST_AUTO_TEST_CASE(an_echo_request_is_answered_across_the_link_after_arp) {
  Harness h;
  h.run_for(kMilli);
  BOOST_TEST(send_echo(h, 0, 1, 1) == 0);
  bool answered =
      h.run_until([&] { return h.stack(0).counters().get("icmp.rx_echo_reply") == 1; }, kSecond);
  BOOST_TEST(answered);
  BOOST_TEST(h.stack(1).counters().get("icmp.rx_echo_request") == 1u);
  BOOST_TEST(h.stack(0).arp().lookup(Harness::ipv4_of(1)).has_value());
  BOOST_TEST(h.link().counters().get("link.tx_frames") >= 4u);  // request, reply and two ARP
}

BOOST_AUTO_TEST_CASE(virtual_time_of_a_round_trip_is_serialization_plus_delay) {
  HarnessOptions o;
  o.link.delay = 10 * kMicro;
  o.link.rate_bps = 1'000'000'000;
  Harness h(o);
  h.run_for(kMilli);
  send_echo(h, 0, 1, 1);  // resolves ARP
  h.run_until([&] { return h.stack(0).counters().get("icmp.rx_echo_reply") == 1; }, kSecond);
  Nanos t0 = h.now();
  send_echo(h, 0, 1, 2);
  h.run_until([&] { return h.stack(0).counters().get("icmp.rx_echo_reply") == 2; }, kSecond);
  // 14 + 20 + 8 + 32 = 74 bytes each way.
  BOOST_TEST(h.now() - t0 == 2 * (10 * kMicro + h.link().serialization_time(74)));
}

BOOST_AUTO_TEST_CASE(shunt_pcap_in_the_config_records_the_link) {
  std::string path = "/tmp/shunt_test_" + std::to_string(getpid()) + "_harness.pcap";
  uint64_t frames = 0;
  {
    HarnessOptions o;
    o.config.pcap = path;
    Harness h(o);
    BOOST_TEST_REQUIRE(h.pcap().is_open());
    h.run_for(kMilli);
    send_echo(h, 0, 1, 1);
    h.run_for(kSecond);
    frames = h.link().counters().get("link.tx_frames");
    BOOST_TEST(h.pcap().records() == frames);
  }
  FILE* f = std::fopen(path.c_str(), "rb");
  BOOST_TEST_REQUIRE(f != nullptr);
  std::fseek(f, 0, SEEK_END);
  BOOST_TEST(std::ftell(f) > long(24 + frames * 16));
  std::fclose(f);
  std::remove(path.c_str());
}

BOOST_AUTO_TEST_CASE(corrupted_frames_are_dropped_by_the_stacks_and_nothing_breaks) {
  HarnessOptions o;
  o.link.corrupt = 0.5;
  o.link.seed = 3;
  Harness h(o);
  h.run_for(kMilli);
  for (uint16_t i = 0; i < 300; ++i) {
    send_echo(h, 0, 1, i);
    h.run_for(10 * kMilli);
  }
  h.run_for(10 * kSecond);
  BOOST_TEST(h.link().counters().get("link.corrupted") > 100u);
  uint64_t dropped =
      h.stack(0).counters().sum("eth.drop.") + h.stack(1).counters().sum("eth.drop.") +
      h.stack(0).counters().sum("ipv4.drop.") + h.stack(1).counters().sum("ipv4.drop.") +
      h.stack(0).counters().sum("icmp.drop.") + h.stack(1).counters().sum("icmp.drop.") +
      h.stack(0).counters().sum("arp.drop.") + h.stack(1).counters().sum("arp.drop.");
  BOOST_TEST(dropped > 0u);
  BOOST_TEST(h.stack(0).counters().get("icmp.rx_echo_reply") <= 300u);
  BOOST_TEST(h.stalls() == 0u);
}

BOOST_AUTO_TEST_CASE(a_link_without_delay_or_rate_makes_progress_without_time_passing) {
  HarnessOptions o;
  o.link.delay = 0;
  o.link.rate_bps = 0;
  Harness h(o);
  h.run_for(kMilli);
  UdpPingPong pp(h);
  const PingPongResult& r = pp.run(1000);
  BOOST_TEST(r.ok());
  BOOST_TEST(r.completed == 1000u);
  BOOST_TEST(r.percentile(0.5) == 0);
  BOOST_TEST(h.stalls() == 0u);
}
