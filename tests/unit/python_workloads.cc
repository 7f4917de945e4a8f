// The bindings' workloads (bindings/workloads.h) on the harness-backed Net (bindings/sim_net.h),
// over both NIC kinds: ping-pong RTTs, UDP loss, byte-exact TCP bulk flows and incast, connection
// churn, multicast fan-out, bad specs, and the same seed giving the same samples.
#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>

#include "nicmodel/ns3/ns3_net.h"
#include "bindings/sim_net.h"
#include "bindings/workloads.h"
#include "stack/socket/socket_api.h"

using namespace shunt;
using namespace shunt::bindings;
using nicmodel::make_ns3_net;
using nicmodel::Ns3Net;
using nicmodel::Ns3NetOptions;

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

const char* const kNics[] = {"sim", "mlx5sim"};

std::unique_ptr<Net> make(SimNetOptions o) {
  std::string error;
  auto net = make_sim_net(o, error);
  BOOST_TEST_REQUIRE(net != nullptr, error);
  BOOST_TEST(error.empty());
  return net;
}

SimNetOptions opts(const char* nic, size_t hosts = 2) {
  SimNetOptions o;
  o.nic = nic;
  o.hosts = hosts;
  return o;
}

Nanos median(std::vector<Nanos> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// On each NIC kind and IP version, 5 us one way: `workload` measures all of 200 round trips of
// `payload` bytes, none shorter than two one-way delays; `more` checks what is its own.
template <class More>
void every_round_trip_measured(const char* name, LatencyResult (*workload)(Net&, const PingPongSpec&),
                               size_t payload, More more) {
  for (const char* nic : kNics) {
    for (bool v6 : {false, true}) {
      BOOST_TEST_CONTEXT("nic " << nic << (v6 ? " IPv6" : " IPv4")) {
        SimNetOptions o = opts(nic);
        o.delay = 5 * kMicro;
        auto net = make(o);
        PingPongSpec s;
        s.count = 200;
        s.payload = payload;
        s.ipv6 = v6;
        LatencyResult r = workload(*net, s);
        BOOST_TEST(r.ok(), r.error);
        BOOST_TEST(r.completed == 200u);
        BOOST_TEST(r.lost == 0u);
        BOOST_TEST_REQUIRE(r.samples.size() == 200u);
        for (Nanos rtt : r.samples) BOOST_TEST(rtt >= 2 * o.delay);
        more(r, o.delay);
        BOOST_TEST_MESSAGE(name << " ping-pong " << nic << (v6 ? " v6" : " v4") << ": median RTT "
                                << median(r.samples) << " ns");
      }
    }
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(python_workloads)

BOOST_AUTO_TEST_CASE(udp_pingpong_measures_every_round_trip_at_no_less_than_twice_the_delay) {
  every_round_trip_measured("udp", udp_pingpong, 64, [](const LatencyResult& r, Nanos delay) {
    BOOST_TEST(r.sent == 200u);
    BOOST_TEST(*std::max_element(r.samples.begin(), r.samples.end()) < 2 * delay + 20 * kMicro);
    BOOST_TEST(r.finished > r.started);
  });
}

BOOST_AUTO_TEST_CASE(the_modelled_nic_adds_to_the_round_trip_and_keeps_timelines_and_counters) {
  Nanos rtt[2] = {};
  for (int i = 0; i < 2; ++i) {
    auto net = make(opts(kNics[i]));
    PingPongSpec s;
    s.count = 50;
    LatencyResult r = udp_pingpong(*net, s);
    BOOST_TEST_REQUIRE(r.ok(), r.error);
    rtt[i] = median(r.samples);
    auto counters = net->counters(0);
    BOOST_TEST(counters.count("udp.tx_datagrams") + counters.count("ipv4.tx_packets") > 0u);
    if (i == 0) {
      BOOST_TEST(net->timelines(0).empty());
      BOOST_TEST(counters.count("nic.tx.frames") == 0u);
    } else {
      auto tl = net->timelines(1);
      BOOST_TEST(!tl.empty());
      BOOST_TEST(counters.at("nic.tx.frames") >= 60u);  // 50 + warm-up + ARP
      bool tx = false, rx = false;
      for (const auto& t : tl) {
        if (t.tx) {
          tx = true;
          BOOST_TEST(t.doorbell <= t.wire_start);
          BOOST_TEST(t.wire_start <= t.wire_end);
        } else {
          rx = true;
          BOOST_TEST(t.wire_end <= t.dma_done);
        }
      }
      BOOST_TEST(tx);
      BOOST_TEST(rx);
    }
  }
  BOOST_TEST(rtt[1] > rtt[0]);
  BOOST_TEST_MESSAGE("median UDP RTT, 64 bytes, 1 us one way: sim " << rtt[0] << " ns, mlx5sim "
                                                                    << rtt[1] << " ns");
}

BOOST_AUTO_TEST_CASE(udp_pingpong_counts_the_round_trips_a_lossy_link_loses) {
  for (const char* nic : kNics) {
    BOOST_TEST_CONTEXT("nic " << nic) {
      SimNetOptions o = opts(nic);
      o.loss = 0.05;
      auto net = make(o);
      PingPongSpec s;
      s.count = 400;
      LatencyResult r = udp_pingpong(*net, s);
      BOOST_TEST(r.ok(), r.error);
      BOOST_TEST(r.sent == 400u);
      BOOST_TEST(r.lost > 0u);
      BOOST_TEST(r.completed + r.lost == r.sent);
      BOOST_TEST(r.samples.size() == r.completed);
      BOOST_TEST(net->network_drops() > 0u);
      // Two frames per round trip, each lost with 5%: about 10% of them.
      BOOST_TEST(r.lost < 100u);
    }
  }
}

BOOST_AUTO_TEST_CASE(tcp_pingpong_measures_every_round_trip) {
  every_round_trip_measured("tcp", tcp_pingpong, 100, [](const LatencyResult&, Nanos) {});
}

BOOST_AUTO_TEST_CASE(tcp_pingpong_messages_larger_than_a_segment_and_a_lossy_link) {
  SimNetOptions o = opts("mlx5sim");
  o.loss = 0.02;
  auto net = make(o);
  PingPongSpec s;
  s.count = 100;
  s.payload = 20'000;
  LatencyResult r = tcp_pingpong(*net, s);
  BOOST_TEST(r.ok(), r.error);
  BOOST_TEST(r.completed == 100u);
  BOOST_TEST(r.lost == 0u);
  BOOST_TEST(net->counters(0).at("tcp.retransmits") + net->counters(1).at("tcp.retransmits") > 0u);
}

BOOST_AUTO_TEST_CASE(tcp_bulk_delivers_every_byte_of_one_flow) {
  for (const char* nic : kNics) {
    BOOST_TEST_CONTEXT("nic " << nic) {
      auto net = make(opts(nic));
      BulkSpec s;
      s.flows = {Flow{0, 1, 8u << 20}};
      BulkResult r = tcp_bulk(*net, s);
      BOOST_TEST(r.ok(), r.error);
      BOOST_TEST_REQUIRE(r.flows.size() == 1u);
      BOOST_TEST(r.flows[0].completed);
      BOOST_TEST(r.flows[0].sent == 8u << 20);
      BOOST_TEST(r.flows[0].received == 8u << 20);
      BOOST_TEST(r.flows[0].mismatch == UINT64_MAX);
      BOOST_TEST(r.bytes == 8u << 20);
      BOOST_TEST(r.flows[0].connected >= r.flows[0].started);
      BOOST_TEST(r.flows[0].finished > r.flows[0].connected);
      BOOST_TEST(r.goodput_bps() > 1e9);
      BOOST_TEST(r.goodput_bps() < 10e9);  // the link's rate
      BOOST_TEST_MESSAGE("tcp bulk " << nic << ": " << r.goodput_bps() / 1e9 << " Gbit/s");
    }
  }
}

BOOST_AUTO_TEST_CASE(tcp_bulk_over_ipv6_both_ways_at_once) {
  auto net = make(opts("mlx5sim"));
  BulkSpec s;
  s.ipv6 = true;
  s.flows = {Flow{0, 1, 1u << 20}, Flow{1, 0, 1u << 20}};
  BulkResult r = tcp_bulk(*net, s);
  BOOST_TEST(r.ok(), r.error);
  BOOST_TEST(r.bytes == 2u << 20);
}

BOOST_AUTO_TEST_CASE(incast_of_16_senders_completes_byte_exact_with_retransmits_on_a_lossy_link) {
  for (const char* nic : kNics) {
    BOOST_TEST_CONTEXT("nic " << nic) {
      SimNetOptions o = opts(nic, 17);
      o.loss = 0.005;
      auto net = make(o);
      BulkSpec s;
      s.flows.clear();
      for (size_t i = 1; i <= 16; ++i) s.flows.push_back(Flow{i, 0, 256u << 10});
      s.rcvbuf = 64 << 10;
      s.start_spread = 2 * kMicro;
      BulkResult r = tcp_bulk(*net, s);
      BOOST_TEST(r.ok(), r.error);
      BOOST_TEST(r.completed);
      BOOST_TEST(r.bytes == 16u * (256u << 10));
      BOOST_TEST(r.retransmits > 0u);
      for (size_t i = 0; i < r.flows.size(); ++i) {
        BOOST_TEST(r.flows[i].completed);
        BOOST_TEST(r.flows[i].started == r.started + Nanos(i) * s.start_spread);
      }
      BOOST_TEST_MESSAGE("incast 16 to 1 " << nic << ": " << r.goodput_bps() / 1e9 << " Gbit/s, "
                                           << r.retransmits << " retransmits");
    }
  }
}

// 16 x 1 MiB through a 200-frame switch queue: the receiver's connections together would hold
// more out-of-order segments than its whole buffer pool (each may hold up to its receive
// buffer). TCP refuses them while the pool is low, so a buffer is always left for the
// retransmission that fills a hole: the incast completes instead of every connection waiting.
BOOST_AUTO_TEST_CASE(an_incast_that_would_fill_the_buffer_pool_with_out_of_order_segments_completes) {
  SimNetOptions o = opts("sim", 17);
  o.queue = 200;
  auto net = make(o);
  BulkSpec s;
  s.flows.clear();
  for (size_t i = 1; i <= 16; ++i) s.flows.push_back(Flow{i, 0, 1u << 20});
  BulkResult r = tcp_bulk(*net, s);
  BOOST_TEST(r.ok(), r.error);
  BOOST_TEST(r.bytes == 16u * (1u << 20));
  for (const auto& f : r.flows) BOOST_TEST(f.mismatch == UINT64_MAX);
  BOOST_TEST(net->counters(0).at("tcp.drop.ooo_pool_low") > 0u);
}

BOOST_AUTO_TEST_CASE(
    incast_of_16_senders_through_a_switch_queue_drops_retransmits_and_keeps_to_the_link_rate) {
  for (const char* nic : kNics) {
    BOOST_TEST_CONTEXT("nic " << nic) {
      auto incast = [nic](size_t queue) {
        SimNetOptions o = opts(nic, 17);
        o.queue = queue;
        auto net = make(o);
        BulkSpec s;
        s.flows.clear();
        for (size_t i = 1; i <= 16; ++i) s.flows.push_back(Flow{i, 0, 256u << 10});
        BulkResult r = tcp_bulk(*net, s);
        return std::make_pair(r, net->network_drops());
      };
      auto [r, drops] = incast(64);
      BOOST_TEST(r.ok(), r.error);
      BOOST_TEST(r.completed);
      BOOST_TEST(r.bytes == 16u * (256u << 10));
      for (const auto& f : r.flows) {
        BOOST_TEST(f.completed);
        BOOST_TEST(f.received == 256u << 10);
        BOOST_TEST(f.mismatch == UINT64_MAX);  // byte-exact
      }
      BOOST_TEST(drops > 0u);  // the receiver's 64-frame egress queue overflowed
      BOOST_TEST(r.retransmits > 0u);
      BOOST_TEST(r.goodput_bps() <= 10e9);  // one downlink carries it all
      BOOST_TEST_MESSAGE("incast 16 to 1 through a 64-frame switch queue, "
                         << nic << ": " << r.goodput_bps() / 1e9 << " Gbit/s, " << drops
                         << " drops, " << r.retransmits << " retransmits");
      // Without the switch the segment has no bottleneck at the receiver: the link loses nothing,
      // and straight on the ports the aggregate goes beyond the link rate (the mlx5 model's own
      // receive path limits it).
      auto [plain, plain_drops] = incast(0);
      BOOST_TEST(plain.ok(), plain.error);
      BOOST_TEST(plain_drops == 0u);
      if (std::string(nic) == "sim") BOOST_TEST(plain.goodput_bps() > 10e9);
    }
  }
}

BOOST_AUTO_TEST_CASE(churn_opens_and_closes_every_connection) {
  const uint64_t count = kSanitized ? 2'000 : 10'000;
  auto net = make(opts("sim"));
  ChurnSpec s;
  s.count = count;
  ChurnResult r = churn(*net, s);
  BOOST_TEST(r.ok(), r.error);
  BOOST_TEST(r.opened == count);
  BOOST_TEST(r.closed == count);
  BOOST_TEST(r.failed == 0u);
  BOOST_TEST_REQUIRE(r.connect_times.size() == count);
  for (Nanos t : r.connect_times) BOOST_TEST_REQUIRE(t >= 2 * kMicro);
  BOOST_TEST(r.per_virtual_second() > 0);
  BOOST_TEST_MESSAGE("churn: " << count << " connections, " << r.per_virtual_second()
                               << " per virtual second, " << r.wall_seconds << " s of wall time");
}

BOOST_AUTO_TEST_CASE(churn_in_parallel_with_requests_over_the_modelled_nic) {
  auto net = make(opts("mlx5sim"));
  ChurnSpec s;
  s.count = 500;
  s.parallel = 8;
  s.request = 3000;
  s.ipv6 = true;
  ChurnResult r = churn(*net, s);
  BOOST_TEST(r.ok(), r.error);
  BOOST_TEST(r.closed == 500u);
  BOOST_TEST(r.connect_times.size() == 500u);
}

BOOST_AUTO_TEST_CASE(multicast_reaches_every_receiver) {
  for (const char* nic : kNics) {
    for (const char* group : {"239.1.2.3", "ff1e::1234"}) {
      BOOST_TEST_CONTEXT("nic " << nic << " group " << group) {
        SimNetOptions o = opts(nic, 5);
        o.delay = 3 * kMicro;
        auto net = make(o);
        MulticastSpec s;
        s.sender = 0;
        s.receivers = {1, 2, 4};
        s.group = group;
        s.count = 300;
        MulticastResult r = multicast_fanout(*net, s);
        BOOST_TEST(r.ok(), r.error);
        BOOST_TEST(r.sent == 300u);
        BOOST_TEST_REQUIRE(r.received.size() == 3u);
        BOOST_TEST_REQUIRE(r.latency.size() == 3u);
        for (size_t i = 0; i < 3; ++i) {
          BOOST_TEST(r.received[i] == 300u);
          BOOST_TEST_REQUIRE(r.latency[i].size() == 300u);
          for (Nanos l : r.latency[i]) BOOST_TEST_REQUIRE(l >= o.delay);
        }
        BOOST_TEST(r.duplicates == 0u);
        BOOST_TEST(r.corrupt == 0u);
        // Host 3 did not join: it received nothing on the port.
        BOOST_TEST(net->counters(3).at("udp.rx_datagrams") == 0u);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(bad_specs_throw_invalid_argument) {
  auto net = make(opts("sim", 3));
  PingPongSpec p;
  p.server = 3;
  BOOST_CHECK_THROW(udp_pingpong(*net, p), std::invalid_argument);
  BOOST_CHECK_THROW(tcp_pingpong(*net, p), std::invalid_argument);
  p.server = 1;
  p.payload = 4;
  BOOST_CHECK_THROW(udp_pingpong(*net, p), std::invalid_argument);
  p.payload = 64;
  p.client = 1;
  BOOST_CHECK_THROW(udp_pingpong(*net, p), std::invalid_argument);
  BulkSpec b;
  b.flows.clear();
  BOOST_CHECK_THROW(tcp_bulk(*net, b), std::invalid_argument);
  b.flows = {Flow{0, 7, 10}};
  BOOST_CHECK_THROW(tcp_bulk(*net, b), std::invalid_argument);
  b.flows = {Flow{2, 2, 10}};
  BOOST_CHECK_THROW(tcp_bulk(*net, b), std::invalid_argument);
  ChurnSpec c;
  c.server = 9;
  BOOST_CHECK_THROW(churn(*net, c), std::invalid_argument);
  MulticastSpec m;
  m.receivers = {};
  BOOST_CHECK_THROW(multicast_fanout(*net, m), std::invalid_argument);
  m.receivers = {1};
  m.group = "10.0.0.2";
  BOOST_CHECK_THROW(multicast_fanout(*net, m), std::invalid_argument);
  m.group = "239.1.1.1";
  m.payload = 8;
  BOOST_CHECK_THROW(multicast_fanout(*net, m), std::invalid_argument);
  m.payload = 64;
  m.receivers = {0};
  BOOST_CHECK_THROW(multicast_fanout(*net, m), std::invalid_argument);
  // The network is still usable after refusing them.
  PingPongSpec ok;
  ok.count = 5;
  BOOST_TEST(udp_pingpong(*net, ok).ok());
}

BOOST_AUTO_TEST_CASE(runtime_failures_come_back_as_errors_saying_where_and_why) {
  auto net = make(opts("sim"));
  // The server's port is taken by a socket of someone else on that host.
  SocketApi& api = net->api(1);
  const int taken = api.socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in at{};
  at.sin_family = AF_INET;
  at.sin_port = htons(7000);
  BOOST_TEST_REQUIRE(api.bind(taken, reinterpret_cast<sockaddr*>(&at), sizeof at) == 0);
  PingPongSpec p;
  p.count = 5;
  LatencyResult u = udp_pingpong(*net, p);
  BOOST_TEST(!u.ok());
  BOOST_TEST(u.error.find("udp_pingpong: server (host 1) bind") != std::string::npos, u.error);
  BOOST_TEST(u.error.find("Address already in use") != std::string::npos, u.error);
  api.close(taken);
  BOOST_TEST(udp_pingpong(*net, p).ok());
  // A link that loses everything: the transfer times out.
  SimNetOptions o = opts("mlx5sim");
  o.loss = 1;
  auto dead = make(o);
  BulkSpec b;
  b.timeout = 2 * kSecond;
  BulkResult k = tcp_bulk(*dead, b);
  BOOST_TEST(!k.ok());
  BOOST_TEST(k.error.find("tcp_bulk: timed out") != std::string::npos, k.error);
  BOOST_TEST(k.error.find("flow 0 (host 0 -> host 1) not connected") != std::string::npos, k.error);
  p.timeout = 0;
  LatencyResult t = tcp_pingpong(*dead, p);
  BOOST_TEST(!t.ok());
  // Address resolution gives up first (RFC 1122 2.3.2.1): the connect fails.
  BOOST_TEST(
      t.error.find("tcp_pingpong: client (host 0) connect: No route to host") != std::string::npos,
      t.error);
  LatencyResult lost = udp_pingpong(*dead, p);
  BOOST_TEST(lost.ok(), lost.error);  // a UDP ping with no pong is lost, not an error
  BOOST_TEST(lost.lost == 5u);
}

BOOST_AUTO_TEST_CASE(jumbo_frames_and_a_small_mtu_carry_bulk_byte_exact) {
  for (uint32_t mtu : {576u, 9000u}) {
    BOOST_TEST_CONTEXT("mtu " << mtu) {
      SimNetOptions o = opts("mlx5sim");
      o.mtu = mtu;
      auto net = make(o);
      BulkSpec b;
      b.flows = {Flow{0, 1, 2u << 20}};
      BulkResult k = tcp_bulk(*net, b);
      BOOST_TEST(k.ok(), k.error);
      PingPongSpec p;
      p.count = 20;
      p.payload = 4000;  // fragmented below 4000
      LatencyResult u = udp_pingpong(*net, p);
      BOOST_TEST(u.ok(), u.error);
      BOOST_TEST(u.completed == 20u);
    }
  }
}

BOOST_AUTO_TEST_CASE(invalid_network_options_are_refused_with_a_reason) {
  auto refused = [](SimNetOptions o, const std::string& word) {
    std::string error;
    auto net = make_sim_net(o, error);
    BOOST_TEST(!net);
    BOOST_TEST(error.find(word) != std::string::npos, error);
  };
  SimNetOptions o;
  o.hosts = 0;
  refused(o, "hosts");
  o = SimNetOptions{};
  o.nic = "e1000";
  refused(o, "nic");
  o = SimNetOptions{};
  o.loss = 1.5;
  refused(o, "loss");
  o.loss = -0.1;
  refused(o, "loss");
  o = SimNetOptions{};
  o.mtu = 100;
  refused(o, "mtu");
  o.mtu = 65000;
  refused(o, "mtu");
  o = SimNetOptions{};
  o.pcap = "/nonexistent-dir/x.pcap";
  refused(o, "pcap");
  o = SimNetOptions{};
  o.queue = 1'000'001;
  refused(o, "queue");
}

BOOST_AUTO_TEST_CASE(a_network_runs_several_workloads_one_after_another_and_writes_a_pcap) {
  const std::string pcap = "/tmp/shunt-python-workloads-" + std::to_string(::getpid()) + ".pcap";
  {
    SimNetOptions o = opts("mlx5sim");
    o.pcap = pcap;
    auto net = make(o);
    PingPongSpec p;
    p.count = 20;
    BOOST_TEST(udp_pingpong(*net, p).ok());
    BOOST_TEST(tcp_pingpong(*net, p).ok());
    BOOST_TEST(tcp_pingpong(*net, p).ok());  // the same port again
    BulkSpec b;
    b.flows = {Flow{0, 1, 100'000}};
    BOOST_TEST(tcp_bulk(*net, b).ok());
    BOOST_TEST(tcp_bulk(*net, b).ok());
    const Nanos t = net->now();
    net->run_for(kMilli);
    BOOST_TEST(net->now() == t + kMilli);
  }
  FILE* f = std::fopen(pcap.c_str(), "rb");
  BOOST_TEST_REQUIRE(f != nullptr);
  std::fseek(f, 0, SEEK_END);
  BOOST_TEST(std::ftell(f) > 10'000);
  std::fclose(f);
  std::remove(pcap.c_str());
}

BOOST_AUTO_TEST_CASE(the_same_seed_gives_the_same_samples) {
  auto once = [](uint64_t seed) {
    SimNetOptions o = opts("mlx5sim", 3);
    o.loss = 0.02;
    o.seed = seed;
    auto net = make(o);
    PingPongSpec p;
    p.count = 200;
    LatencyResult u = udp_pingpong(*net, p);
    LatencyResult t = tcp_pingpong(*net, p);
    BulkSpec b;
    b.flows = {Flow{1, 0, 300'000}, Flow{2, 0, 300'000}};
    BulkResult k = tcp_bulk(*net, b);
    std::vector<Nanos> all = u.samples;
    all.push_back(Nanos(u.lost));
    all.insert(all.end(), t.samples.begin(), t.samples.end());
    all.push_back(k.finished);
    all.push_back(Nanos(k.retransmits));
    all.push_back(net->now());
    return all;
  };
  const auto a = once(11), b = once(11), c = once(12);
  BOOST_TEST(a == b);
  BOOST_TEST(a != c);
}

BOOST_AUTO_TEST_SUITE_END()

// The same workloads, unchanged, on ns-3 topologies (nicmodel/ns3/ns3_net.h).

BOOST_AUTO_TEST_SUITE(python_workloads_ns3)

BOOST_AUTO_TEST_CASE(every_workload_runs_on_an_ns3_star_too) {
  Ns3NetOptions o;
  o.shape = Ns3NetOptions::Shape::kStar;
  o.hosts = 4;
  std::string error;
  auto net = make_ns3_net(o, error);
  BOOST_TEST_REQUIRE(net != nullptr, error);
  PingPongSpec p;
  p.count = 50;
  LatencyResult u = udp_pingpong(*net, p);
  BOOST_TEST(u.ok(), u.error);
  BOOST_TEST(u.completed == 50u);
  for (Nanos rtt : u.samples) BOOST_TEST_REQUIRE(rtt >= 2 * o.link.delay);
  LatencyResult t = tcp_pingpong(*net, p);
  BOOST_TEST(t.ok(), t.error);
  BOOST_TEST(t.completed == 50u);
  BulkSpec b;
  b.flows = {Flow{1, 0, 1u << 20}, Flow{2, 0, 1u << 20}, Flow{3, 0, 1u << 20}};
  BulkResult k = tcp_bulk(*net, b);
  BOOST_TEST(k.ok(), k.error);
  BOOST_TEST(k.bytes == 3u << 20);
  ChurnSpec c;
  c.count = 200;
  ChurnResult ch = churn(*net, c);
  BOOST_TEST(ch.ok(), ch.error);
  BOOST_TEST(ch.closed == 200u);
  MulticastSpec m;
  m.receivers = {1, 2, 3};
  m.count = 100;
  MulticastResult mc = multicast_fanout(*net, m);
  BOOST_TEST(mc.ok(), mc.error);
  BOOST_TEST(mc.received == std::vector<uint64_t>(3, 100));
  BOOST_TEST_MESSAGE("ns-3 star: UDP RTT " << median(u.samples) << " ns, TCP RTT "
                                           << median(t.samples) << " ns, incast 3 to 1 "
                                           << k.goodput_bps() / 1e9 << " Gbit/s");
}

BOOST_AUTO_TEST_CASE(ipv6_and_a_dumbbell_bottleneck_on_ns3) {
  Ns3NetOptions o;
  o.shape = Ns3NetOptions::Shape::kDumbbell;
  o.left = 2;
  o.right = 1;
  std::string error;
  auto net = make_ns3_net(o, error);
  BOOST_TEST_REQUIRE(net != nullptr, error);
  std::vector<size_t> shunt;  // left hosts, then right (the topology's order)
  for (size_t i = 0; i < net->size(); ++i) {
    if (net->is_shunt(i)) shunt.push_back(i);
  }
  BOOST_TEST_REQUIRE(shunt.size() == 3u);
  PingPongSpec p;
  p.client = shunt[0];
  p.server = shunt[2];
  p.count = 20;
  p.ipv6 = true;
  LatencyResult t = tcp_pingpong(*net, p);
  BOOST_TEST(t.ok(), t.error);
  BOOST_TEST(t.completed == 20u);
  BulkSpec b;
  b.flows = {Flow{shunt[0], shunt[2], 2u << 20}, Flow{shunt[1], shunt[2], 2u << 20}};
  BulkResult k = tcp_bulk(*net, b);
  BOOST_TEST(k.ok(), k.error);
  BOOST_TEST(k.goodput_bps() < 1.0e9);  // the 1 Gbit/s bottleneck
  BOOST_TEST_MESSAGE("ns-3 dumbbell: TCP RTT over IPv6 "
                     << median(t.samples) << " ns, 2 flows through 1 Gbit/s: "
                     << k.goodput_bps() / 1e9 << " Gbit/s, " << k.retransmits << " retransmits");
}

BOOST_AUTO_TEST_SUITE_END()
