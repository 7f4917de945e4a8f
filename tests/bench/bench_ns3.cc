// One TCP flow at 10 Gbit/s between two hosts inside ns-3, either two Shunt hosts (the stack as an
// ns-3 Application, the mlx5 driver and the simulated ConnectX as their NICs) or two ns-3-native
// hosts (ns-3's InternetStack, BulkSendApplication -> PacketSink), on the same topology: one
// full-duplex Ethernet link (EthLink, 10 Gbit/s, 5 us).
//
//   bench_ns3 [--hosts shunt|ns3] [--sim-ms N] [--warmup-ms W] [--collect 0|1] [--pcap PREFIX]
//             [--digest 0|1]
//
// Runs N ms of simulated time and prints the wall time, the bytes delivered and the segments
// (delivered bytes / 1448-byte MSS). Under `valgrind --tool=callgrind --collect-atstart=no`,
// --collect 1 counts instructions only from W ms to the end, and the line `window_segments`
// says how many segments were delivered in that window, so tests/bench/run_ns3_bench.sh reports
// instructions per delivered segment for both kinds of host. --pcap writes both link ends'
// frames; --digest 1 (Shunt hosts) prints a hash of every frame's NIC timeline on both hosts
// (wire, DMA and CQE times), so a change meant to make the simulation cheaper can show that it
// did not move any event in virtual time.
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <ns3/bulk-send-helper.h>
#include <ns3/config.h>
#include <ns3/data-rate.h>
#include <ns3/inet-socket-address.h>
#include <ns3/internet-stack-helper.h>
#include <ns3/ipv4-address-helper.h>
#include <ns3/node-container.h>
#include <ns3/nstime.h>
#include <ns3/packet-sink-helper.h>
#include <ns3/packet-sink.h>
#include <ns3/rng-seed-manager.h>
#include <ns3/simulator.h>
#include <ns3/string.h>
#include <ns3/tcp-socket.h>
#include <ns3/uinteger.h>

#include "nicmodel/ns3/eth_link.h"
#include "nicmodel/ns3/shunt_host.h"
#include "nicmodel/ns3/shunt_workloads.h"
#include "tests/bench/side_collector.h"  // CALLGRIND_TOGGLE_COLLECT, SHUNT_HAVE_CALLGRIND


using namespace nicmodel;

namespace {

constexpr uint64_t kRate = 10'000'000'000ull;
constexpr uint64_t kMss = 1448;

int usage() {
  std::fprintf(stderr, "usage: bench_ns3 [--hosts shunt|ns3] [--sim-ms N] [--warmup-ms W] [--collect 0|1] [--pcap PREFIX] [--digest 0|1]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string hosts = "shunt";
  long sim_ms = 1000, warmup_ms = 0;
  bool collect = false, digest = false;
  std::string pcap;  // PREFIX-<node>-<device>.pcap of both link ends (to look at what the hosts send)
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) return usage();
    const char* v = argv[++i];
    char* end = nullptr;
    if (a == "--hosts") {
      hosts = v;
      if (hosts != "shunt" && hosts != "ns3") return usage();
    } else if (a == "--sim-ms") {
      sim_ms = std::strtol(v, &end, 10);
      if (*end || sim_ms < 1 || sim_ms > 100000) return usage();
    } else if (a == "--warmup-ms") {
      warmup_ms = std::strtol(v, &end, 10);
      if (*end || warmup_ms < 0) return usage();
    } else if (a == "--digest") {
      digest = std::string(v) == "1";
    } else if (a == "--pcap") {
      pcap = v;
    } else if (a == "--collect") {
      collect = std::string(v) == "1";
    } else {
      return usage();
    }
  }
  if (warmup_ms >= sim_ms) return usage();

  ns3::RngSeedManager::SetSeed(1);
  ns3::RngSeedManager::SetRun(1);
  ns3::NodeContainer nodes;
  nodes.Create(2);
  EthLinkHelper link;
  link.SetDeviceAttribute("DataRate", ns3::DataRateValue(ns3::DataRate(kRate)));
  link.SetChannelAttribute("Delay", ns3::TimeValue(ns3::MicroSeconds(5)));
  link.SetQueue("ns3::DropTailQueue<Packet>", "MaxSize", ns3::QueueSizeValue(ns3::QueueSize("1000p")));
  ns3::NetDeviceContainer phys = link.Install(nodes.Get(0), nodes.Get(1));
  if (!pcap.empty()) link.EnablePcapAll(pcap);

  // Bytes delivered so far to the receiving application.
  std::function<uint64_t()> delivered;
  std::shared_ptr<TcpSinkStats> sink_stats;
  std::shared_ptr<TcpSendStats> send_stats;
  uint64_t timeline_hash = 14695981039346656037ull, timeline_count = 0;  // FNV-1a over the fields
  ns3::Ptr<ns3::PacketSink> sink;
  if (hosts == "shunt") {
    shunt::Config config;
    ns3::Ptr<ShuntHost> h[2];
    for (uint32_t i = 0; i < 2; ++i) {
      std::string error;
      h[i] = InstallShuntHost(nodes.Get(i), phys.Get(i), kRate, config,
                              ns3::Mac48Address::ConvertFrom(phys.Get(i)->GetAddress()), error);
      if (!h[i]) {
        std::fprintf(stderr, "bench_ns3: %s\n", error.c_str());
        return 1;
      }
      h[i]->AddAddress(shunt::Ipv4Addr{0x0a000001u + i}, 24);
      if (digest) {
        h[i]->nic()->model().set_timeline_sink([&, i](const PacketTimeline& tl) {
          const uint64_t fields[] = {i,
                                     tl.seq,
                                     tl.tx,
                                     tl.bytes,
                                     tl.wqe_index,
                                     uint64_t(tl.doorbell),
                                     uint64_t(tl.doorbell_seen),
                                     uint64_t(tl.wqe_fetched),
                                     uint64_t(tl.dma_done),
                                     uint64_t(tl.wire_start),
                                     uint64_t(tl.wire_end),
                                     uint64_t(tl.cqe)};
          for (uint64_t f : fields) {
            for (int b = 0; b < 8; ++b) timeline_hash = (timeline_hash ^ ((f >> (8 * b)) & 0xff)) * 1099511628211ull;
          }
          ++timeline_count;
        });
      }
    }
    // Like BulkSendApplication and PacketSink: no byte pattern is made or checked (the tests
    // check every byte; here only the network's cost is measured).
    sink_stats = AddTcpSink(*h[1], 5001, 1, false, false);
    // More than the run can carry: the flow never ends inside it.
    send_stats = AddTcpSender(*h[0], shunt::Ipv4Addr{0x0a000002u}, 5001, uint64_t(1) << 50, 1, 0, 64 * 1024, false);
    delivered = [&] { return sink_stats->total(); };
  } else {
    ns3::Config::SetDefault("ns3::TcpSocket::SegmentSize", ns3::UintegerValue(kMss));
    ns3::Config::SetDefault("ns3::TcpSocket::SndBufSize", ns3::UintegerValue(1 << 20));
    ns3::Config::SetDefault("ns3::TcpSocket::RcvBufSize", ns3::UintegerValue(1 << 20));
    ns3::InternetStackHelper internet;
    internet.Install(nodes);
    ns3::Ipv4AddressHelper addr("10.0.0.0", "255.255.255.0");
    auto ifs = addr.Assign(phys);
    ns3::PacketSinkHelper sink_helper("ns3::TcpSocketFactory",
                                      ns3::InetSocketAddress(ns3::Ipv4Address::GetAny(), 5001));
    auto sink_apps = sink_helper.Install(nodes.Get(1));
    sink = ns3::DynamicCast<ns3::PacketSink>(sink_apps.Get(0));
    ns3::BulkSendHelper bulk("ns3::TcpSocketFactory", ns3::InetSocketAddress(ifs.GetAddress(1), 5001));
    bulk.SetAttribute("MaxBytes", ns3::UintegerValue(0));
    bulk.SetAttribute("SendSize", ns3::UintegerValue(64 * 1024));
    bulk.Install(nodes.Get(0));
    delivered = [&] { return sink->GetTotalRx(); };
  }

  uint64_t at_warmup = 0;
  if (warmup_ms > 0) {
    ns3::Simulator::Schedule(ns3::MilliSeconds(warmup_ms), [&] {
      at_warmup = delivered();
      if (collect) CALLGRIND_TOGGLE_COLLECT;
    });
  } else if (collect) {
    CALLGRIND_TOGGLE_COLLECT;
  }
  uint64_t at_end = 0;
  ns3::Simulator::Schedule(ns3::MilliSeconds(sim_ms), [&] {
    if (collect) CALLGRIND_TOGGLE_COLLECT;
    at_end = delivered();
    ns3::Simulator::Stop();
  });
  const auto t0 = std::chrono::steady_clock::now();
  ns3::Simulator::Run();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ns3::Simulator::Destroy();

  if (sink_stats && !sink_stats->error.empty()) std::fprintf(stderr, "bench_ns3: sink: %s\n", sink_stats->error.c_str());
  if (send_stats && !send_stats->error.empty()) std::fprintf(stderr, "bench_ns3: sender: %s\n", send_stats->error.c_str());
  if (at_end == 0) {
    std::fprintf(stderr, "bench_ns3: nothing was delivered\n");
    return 1;
  }
  if (sink_stats && sink_stats->streams.size() == 1 && sink_stats->streams[0].mismatch != UINT64_MAX) {
    std::fprintf(stderr, "bench_ns3: byte %" PRIu64 " differs from the pattern\n", sink_stats->streams[0].mismatch);
    return 1;
  }
  std::printf("hosts %s\n", hosts.c_str());
  std::printf("simulated_ms %ld\n", sim_ms);
  std::printf("wall_s %.3f\n", wall);
  std::printf("delivered_bytes %" PRIu64 "\n", at_end);
  std::printf("segments %" PRIu64 "\n", at_end / kMss);
  std::printf("goodput_gbps %.3f\n", double(at_end) * 8 / (double(sim_ms) / 1e3) / 1e9);
  std::printf("window_segments %" PRIu64 "\n", (at_end - at_warmup) / kMss);
  std::printf("callgrind_support %d\n", SHUNT_HAVE_CALLGRIND);
  if (digest) std::printf("timelines %" PRIu64 " digest %016" PRIx64 "\n", timeline_count, timeline_hash);
  return 0;
}
