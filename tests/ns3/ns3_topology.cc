// Topologies built from C++ (nicmodel/ns3/topology.h): two hosts back to back on an EthLink, a
// dumbbell whose bottleneck queue discipline (drop-tail, RED, CoDel) drops under two TCP flows
// while every stream still arrives byte-exact, loss from an ns-3 error model, a star of four
// hosts behind ns-3's bridge, and ns-3-native hosts in those topologies.
#include <ns3/ipv4-address.h>
#include <ns3/udp-echo-helper.h>
#include <boost/test/unit_test.hpp>

#include "nicmodel/ns3/shunt_workloads.h"
#include "nicmodel/ns3/topology.h"

using namespace nicmodel;

namespace {

LinkSpec Link(uint64_t rate_bps, Nanos delay, uint32_t queue_packets = 1000) {
  LinkSpec l;
  l.rate_bps = rate_bps;
  l.delay = delay;
  l.queue_packets = queue_packets;
  return l;
}

constexpr uint64_t kGbps = 1'000'000'000ull;

// Two Shunt senders on the left, two Shunt receivers on the right; sender i streams `bytes` to
// receiver i through a 1 Gb/s bottleneck whose queue discipline is `queue`.
struct DumbbellFlows {
  std::unique_ptr<Topology> t;
  std::vector<std::shared_ptr<TcpSinkStats>> sinks;
  std::vector<std::shared_ptr<TcpSendStats>> senders;

  DumbbellFlows(const QueueDiscSpec& queue, uint64_t bytes) {
    t = Topology::Dumbbell(2, 2, {HostKind::kShunt}, Link(10 * kGbps, 1'000), Link(kGbps, 10'000),
                           queue);
    for (size_t i = 0; i < 2; ++i) {
      sinks.push_back(AddTcpSink(t->shunt(2 + i), 5001));
      senders.push_back(AddTcpSender(t->shunt(i), t->host(2 + i).addr(), 5001, bytes));
    }
  }
};

void CheckFlows(DumbbellFlows& f, uint64_t bytes) {
  for (size_t i = 0; i < 2; ++i) {
    BOOST_TEST(f.senders[i]->error == "");
    BOOST_TEST(f.sinks[i]->error == "");
    BOOST_REQUIRE(f.sinks[i]->streams.size() == 1u);
    BOOST_TEST(f.sinks[i]->complete(bytes) == 1u);
    BOOST_TEST_MESSAGE(
        "flow " << i << ": " << bytes << " bytes in "
                << double(f.sinks[i]->streams[0].eof_at - f.senders[i]->connected) / 1e6 << " ms");
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(two_shunt_hosts_back_to_back_echo_udp_and_stream_tcp_byte_exact) {
  auto t = Topology::TwoHosts(HostKind::kShunt, HostKind::kShunt, Link(10 * kGbps, 500));
  BOOST_TEST(t->size() == 2u);
  auto echo = AddUdpEcho(t->shunt(1), 7);
  auto client = AddUdpClient(t->shunt(0), t->host(1).addr(), 7, 50, 200, 0);
  auto sink = AddTcpSink(t->shunt(1), 5001);
  auto sender = AddTcpSender(t->shunt(0), t->host(1).addr(), 5001, 2 << 20);
  t->Run(100 * shunt::kMilli);
  BOOST_TEST(client->error == "");
  BOOST_TEST(client->echoes == 50u);
  BOOST_TEST(client->bad_echoes == 0u);
  BOOST_TEST(sender->error == "");
  BOOST_REQUIRE(sink->streams.size() == 1u);
  BOOST_TEST(sink->complete(2 << 20) == 1u);
  BOOST_TEST(sender->peer_closed);
  BOOST_TEST_MESSAGE("EthLink back to back: udp rtt "
                     << client->rtts.back() << " ns, 2 MiB in "
                     << double(sink->streams[0].eof_at - sender->connected) / 1e6 << " ms");
}

BOOST_AUTO_TEST_CASE(two_shunt_hosts_on_csma_when_asked) {
  auto t = Topology::TwoHosts(HostKind::kShunt, HostKind::kShunt, Link(kGbps, 500, 10'000), {},
                              Medium::kCsma);
  auto sink = AddTcpSink(t->shunt(1), 5001);
  auto sender = AddTcpSender(t->shunt(0), t->host(1).addr(), 5001, 256 << 10);
  t->Run(100 * shunt::kMilli);
  BOOST_REQUIRE(sink->streams.size() == 1u);
  BOOST_TEST(sink->complete(256 << 10) == 1u);
}

BOOST_AUTO_TEST_CASE(shunt_host_echoes_with_an_ns3_host_over_ipv4_and_ipv6) {
  auto t = Topology::TwoHosts(HostKind::kShunt, HostKind::kNs3, Link(10 * kGbps, 500));
  BOOST_TEST((t->host(1).kind == HostKind::kNs3));
  ns3::UdpEchoServerHelper server(7);
  server.Install(t->host(1).node);
  auto v4 = AddUdpClient(t->shunt(0), t->host(1).addr(), 7, 20, 300, 0);
  auto v6 = AddUdpClient(t->shunt(0), t->host(1).addr(true), 7, 20, 300, 0, 5 * shunt::kMilli);
  t->Run(50 * shunt::kMilli);
  BOOST_TEST(v4->error == "");
  BOOST_TEST(v4->echoes == 20u);
  BOOST_TEST(v4->bad_echoes == 0u);
  BOOST_TEST(v6->error == "");
  BOOST_TEST(v6->echoes == 20u);
  BOOST_TEST(v6->bad_echoes == 0u);
}

BOOST_AUTO_TEST_CASE(dumbbell_drop_tail_drops_at_the_bottleneck_and_streams_complete) {
  QueueDiscSpec q;
  q.kind = QueueDiscSpec::Kind::kDropTail;
  q.max_packets = 20;
  const uint64_t bytes = 2 << 20;
  DumbbellFlows f(q, bytes);
  f.t->Run(1000 * shunt::kMilli);
  CheckFlows(f, bytes);
  const auto& stats = f.t->bottleneck_queue_disc()->GetStats();
  BOOST_TEST_MESSAGE("drop-tail: " << stats.nTotalDroppedPackets << " drops of "
                                   << stats.nTotalReceivedPackets);
  BOOST_TEST(stats.nTotalDroppedPackets > 0u);
}

BOOST_AUTO_TEST_CASE(dumbbell_red_drops_or_marks_and_streams_complete) {
  QueueDiscSpec q;
  q.kind = QueueDiscSpec::Kind::kRed;
  q.max_packets = 60;
  const uint64_t bytes = 2 << 20;
  DumbbellFlows f(q, bytes);
  f.t->Run(1000 * shunt::kMilli);
  CheckFlows(f, bytes);
  const auto& stats = f.t->bottleneck_queue_disc()->GetStats();
  BOOST_TEST_MESSAGE("RED: " << stats.nTotalDroppedPackets << " drops, "
                             << stats.nTotalMarkedPackets << " marks of "
                             << stats.nTotalReceivedPackets);
  BOOST_TEST(stats.nTotalDroppedPackets + stats.nTotalMarkedPackets > 0u);
}

BOOST_AUTO_TEST_CASE(dumbbell_codel_drops_or_marks_and_streams_complete) {
  QueueDiscSpec q;
  q.kind = QueueDiscSpec::Kind::kCoDel;
  q.max_packets = 1000;  // CoDel's own decisions, not overflow
  const uint64_t bytes = 2 << 20;
  DumbbellFlows f(q, bytes);
  f.t->Run(1000 * shunt::kMilli);
  CheckFlows(f, bytes);
  const auto& stats = f.t->bottleneck_queue_disc()->GetStats();
  BOOST_TEST_MESSAGE("CoDel: " << stats.nTotalDroppedPackets << " drops, "
                               << stats.nTotalMarkedPackets << " marks of "
                               << stats.nTotalReceivedPackets);
  BOOST_TEST(stats.nTotalDroppedPackets + stats.nTotalMarkedPackets > 0u);
}

BOOST_AUTO_TEST_CASE(rate_error_model_loses_frames_and_tcp_still_delivers_every_byte) {
  LinkSpec link = Link(10 * kGbps, 1'000);
  link.error = ErrorSpec::Rate(0.01);
  auto t = Topology::TwoHosts(HostKind::kShunt, HostKind::kShunt, link);
  auto sink = AddTcpSink(t->shunt(1), 5001);
  auto sender = AddTcpSender(t->shunt(0), t->host(1).addr(), 5001, 2 << 20);
  t->Run(2000 * shunt::kMilli);
  BOOST_TEST(sender->error == "");
  BOOST_REQUIRE(sink->streams.size() == 1u);
  BOOST_TEST(sink->complete(2 << 20) == 1u);
  BOOST_TEST_MESSAGE("1% loss: " << t->phy_rx_drops() << " frames lost, 2 MiB in "
                                 << double(sink->streams[0].eof_at - sender->connected) / 1e6
                                 << " ms");
  BOOST_TEST(t->phy_rx_drops() > 0u);
}

BOOST_AUTO_TEST_CASE(burst_error_model_loses_frames_and_tcp_still_delivers_every_byte) {
  LinkSpec link = Link(10 * kGbps, 1'000);
  link.error = ErrorSpec::Burst(0.01, 2, 5);
  auto t = Topology::TwoHosts(HostKind::kShunt, HostKind::kShunt, link);
  auto sink = AddTcpSink(t->shunt(1), 5001);
  auto sender = AddTcpSender(t->shunt(0), t->host(1).addr(), 5001, 1 << 20);
  t->Run(2000 * shunt::kMilli);
  BOOST_REQUIRE(sink->streams.size() == 1u);
  BOOST_TEST(sink->complete(1 << 20) == 1u);
  BOOST_TEST_MESSAGE("bursts: " << t->phy_rx_drops() << " frames lost");
  BOOST_TEST(t->phy_rx_drops() > 0u);
}

BOOST_AUTO_TEST_CASE(star_of_four_hosts_all_to_one_udp) {
  auto t = Topology::Star(4, {HostKind::kShunt}, Link(10 * kGbps, 500));
  BOOST_TEST(t->size() == 4u);
  BOOST_TEST(t->switch_node());
  auto echo = AddUdpEcho(t->shunt(0), 7);
  std::vector<std::shared_ptr<UdpClientStats>> clients;
  for (size_t i = 1; i < 4; ++i)
    clients.push_back(AddUdpClient(t->shunt(i), t->host(0).addr(), 7, 30, 500, 0));
  t->Run(50 * shunt::kMilli);
  BOOST_TEST(echo->echoed == 90u);
  for (auto& c : clients) {
    BOOST_TEST(c->error == "");
    BOOST_TEST(c->echoes == 30u);
    BOOST_TEST(c->bad_echoes == 0u);
  }
}

BOOST_AUTO_TEST_CASE(dumbbell_with_an_ns3_host_on_each_side_routes_udp_through_the_routers) {
  QueueDiscSpec q;
  auto t = Topology::Dumbbell(1, 2, {HostKind::kShunt, HostKind::kNs3, HostKind::kShunt},
                              Link(10 * kGbps, 1'000), Link(kGbps, 10'000), q);
  ns3::UdpEchoServerHelper server(7);
  server.Install(t->host(1).node);
  auto echo = AddUdpEcho(t->shunt(2), 7);
  auto echo6 = AddUdpEcho(t->shunt(2), 9, true);
  auto to_ns3 = AddUdpClient(t->shunt(0), t->host(1).addr(), 7, 10, 400, 0);
  auto to_ns3_v6 =
      AddUdpClient(t->shunt(0), t->host(1).addr(true), 7, 10, 400, 0, 5 * shunt::kMilli);
  auto to_shunt = AddUdpClient(t->shunt(0), t->host(2).addr(), 7, 10, 400, 0);
  auto v6 = AddUdpClient(t->shunt(0), t->host(2).addr(true), 9, 10, 400, 0, 10 * shunt::kMilli);
  t->Run(50 * shunt::kMilli);
  BOOST_TEST(to_ns3->echoes == 10u);
  BOOST_TEST(to_ns3_v6->echoes == 10u);
  BOOST_TEST(to_shunt->echoes == 10u);
  BOOST_TEST(v6->echoes == 10u);
  BOOST_TEST(echo->echoed == 10u);
  BOOST_TEST(echo6->echoed == 10u);
}
