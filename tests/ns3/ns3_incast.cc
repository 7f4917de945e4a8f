// Incast: 16 Shunt hosts send to one Shunt receiver at once through a layer-2 switch (ns-3's
// bridge). The receiver's switch port is the bottleneck and its queue is small, so it drops;
// every stream still arrives whole and byte-exact.
#include <boost/test/unit_test.hpp>

#include <algorithm>

#include "nicmodel/ns3/shunt_workloads.h"
#include "nicmodel/ns3/topology.h"

using namespace nicmodel;

namespace {

void Incast(Nanos rto_min_ms, const char* label) {
  constexpr size_t kSenders = 16;
  constexpr uint64_t kBytes = 256 << 10;
  LinkSpec link;
  link.rate_bps = 10'000'000'000ull;
  link.delay = 1'000;
  std::vector<LinkSpec> links(kSenders + 1, link);
  links[0].queue_packets = 64;  // the receiver's cable: its switch port holds 64 frames
  TopologyOptions options;
  options.config.tcp_rto_min_ms = rto_min_ms;
  auto t = Topology::Star(kSenders + 1, {HostKind::kShunt}, links, options);

  auto sink = AddTcpSink(t->shunt(0), 5001);
  std::vector<std::shared_ptr<TcpSendStats>> senders;
  for (size_t i = 1; i <= kSenders; ++i) {
    senders.push_back(
        AddTcpSender(t->shunt(i), t->host(0).addr(), 5001, kBytes, 1, 10 * shunt::kMicro));
  }
  t->Run(3'000 * shunt::kMilli);

  BOOST_TEST(sink->error == "");
  for (auto& s : senders) BOOST_TEST(s->error == "");
  BOOST_TEST(sink->streams.size() == kSenders);
  BOOST_TEST(sink->complete(kBytes) == kSenders);
  Nanos first = shunt::kNever, last = 0;
  for (auto& s : senders) first = std::min(first, s->connected);
  for (auto& s : sink->streams) last = std::max(last, s.eof_at);
  const uint64_t drops = Topology::TxQueueDrops(t->host(0).far_end);
  BOOST_TEST_MESSAGE(label << ": " << kSenders << " x " << kBytes / 1024 << " KiB complete in "
                           << double(last - first) / 1e6 << " ms (ideal "
                           << double(kSenders * kBytes * 8) / 10e9 * 1e3 << " ms at 10 Gb/s); "
                           << drops << " drops at the receiver's switch port");
  BOOST_TEST(drops > 0u);
}

}  // namespace

BOOST_AUTO_TEST_CASE(sixteen_senders_through_one_switch_port_all_complete_byte_exact) {
  Incast(200, "incast, RTO min 200 ms");
}

BOOST_AUTO_TEST_CASE(sixteen_senders_with_a_data_centre_rto_min_all_complete_byte_exact) {
  Incast(5, "incast, RTO min 5 ms");
}
