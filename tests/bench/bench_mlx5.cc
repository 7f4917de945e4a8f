// The simulated ConnectX under a 64-byte UDP ping-pong between two stacks in the virtual-time
// harness, each stack driving the mlx5 driver on its own modelled NIC (SHUNT_DEVICE=mlx5sim).
//
//   bench_mlx5 [--count K] [--warmup W] [--nic mlx5sim|sim] [--collect all|nic|none]
//              [--inline N] [--blueflame 0|1] [--payload N]
//
// Prints the round-trip time (virtual) and, with the model, where the time of one ping went, one
// line per component, from the NIC's per-packet timelines; round trips and NIC packets per
// wall-clock second. Under `valgrind --tool=callgrind --collect-atstart=no`, --collect all
// counts the whole measured run and --collect nic only the model's own work (its events, run by
// the harness), so tests/bench/run_mlx5_bench.sh can report instructions per packet the model
// adds.
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "nicmodel/nicmodel.h"
#include "stack/core/clock.h"
#include "stack/harness/harness.h"
#include "stack/harness/udp_pingpong.h"
#include "tests/bench/side_collector.h"

using namespace shunt;

namespace {

int usage() {
  std::fprintf(stderr,
               "usage: bench_mlx5 [--count K] [--warmup W] [--nic mlx5sim|sim] [--collect all|nic|none] "
               "[--inline N] [--blueflame 0|1] [--payload N]\n");
  return 2;
}

// Collects only while the harness runs the NICs' own work (device_begin/device_end brackets
// outside any stack call).
class NicCollector final : public StackObserver {
 public:
  void enter(size_t) override {}
  void leave(size_t) override {}
  void device_begin(size_t) override {
    if (depth_++ == 0) CALLGRIND_TOGGLE_COLLECT;
  }
  void device_end(size_t) override {
    if (--depth_ == 0) CALLGRIND_TOGGLE_COLLECT;
  }

 private:
  int depth_ = 0;
};

void line(const char* what, Nanos ns) { std::printf("  %-44s %8lld ns\n", what, (long long)ns); }

}  // namespace

int main(int argc, char** argv) {
  uint64_t count = 100'000, warmup = 1'000;
  std::string collect = "none", nic = "mlx5sim";
  int64_t inline_threshold = -1, blueflame = -1, payload = 64;
  for (int i = 1; i + 1 < argc || i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) return usage();
    std::string v = argv[++i];
    if (a == "--count") {
      count = std::strtoull(v.c_str(), nullptr, 10);
    } else if (a == "--warmup") {
      warmup = std::strtoull(v.c_str(), nullptr, 10);
    } else if (a == "--collect") {
      collect = v;
    } else if (a == "--nic") {
      nic = v;
    } else if (a == "--inline") {
      inline_threshold = std::strtoll(v.c_str(), nullptr, 10);
    } else if (a == "--blueflame") {
      blueflame = std::strtoll(v.c_str(), nullptr, 10);
    } else if (a == "--payload") {
      payload = std::strtoll(v.c_str(), nullptr, 10);
    } else {
      return usage();
    }
  }
  if (count == 0 || payload < 8 || payload > 1400 || (collect != "all" && collect != "nic" && collect != "none") ||
      (nic != "mlx5sim" && nic != "sim"))
    return usage();

  nicmodel::register_devices();
  HarnessOptions o;  // two stacks, 10 Gbit/s, 1 us one way
  o.nic = nic;
  if (inline_threshold >= 0) o.config.mlx5_inline = inline_threshold;
  if (blueflame >= 0) o.config.mlx5_blueflame = blueflame;
  Harness h(o);
  PingPongOptions po;
  po.payload = size_t(payload);
  UdpPingPong pp(h, po);
  pp.run(warmup);
  if (!pp.result().ok() || pp.result().completed != warmup) {
    std::fprintf(stderr, "bench: warm-up failed: %s (%" PRIu64 " of %" PRIu64 " round trips)\n",
                 pp.result().error.c_str(), pp.result().completed, warmup);
    return 1;
  }

  NicCollector nic_collector;
  if (collect == "nic") h.set_observer(&nic_collector);
  MonotonicClock wall;
  const Nanos t0 = wall.now();
  if (collect == "all") CALLGRIND_TOGGLE_COLLECT;
  pp.run(count);
  if (collect == "all") CALLGRIND_TOGGLE_COLLECT;
  const Nanos took = wall.now() - t0;
  h.set_observer(nullptr);

  const PingPongResult& r = pp.result();
  uint64_t measured = r.completed - warmup;
  if (!r.ok() || measured != count) {
    std::fprintf(stderr, "bench: run failed: %s (%" PRIu64 " of %" PRIu64 " round trips)\n", r.error.c_str(),
                 measured, count);
    return 1;
  }
  const double rt_per_s = took > 0 ? double(measured) * 1e9 / double(took) : 0.0;
  std::printf("nic %s\n", nic.c_str());
  std::printf("round_trips %" PRIu64 "\n", measured);
  std::printf("round_trips_per_second %.0f\n", rt_per_s);
  // Each round trip is two frames, and each frame passes two NICs (out of one, into the other).
  std::printf("nic_packets_per_second %.0f\n", rt_per_s * 4);
  std::printf("rtt_p50_ns %lld\n", (long long)r.percentile(0.5));
  std::printf("rtt_p99_ns %lld\n", (long long)r.percentile(0.99));
  std::printf("callgrind_support %d\n", SHUNT_HAVE_CALLGRIND);

  if (nic == "mlx5sim") {
    // The last ping: out of the client's NIC, into the server's. Timelines are completed in
    // order, so the latest of each kind belongs to the last round trip.
    auto* client = static_cast<nicmodel::ModelHarnessNic*>(h.nic(po.client));
    auto* server = static_cast<nicmodel::ModelHarnessNic*>(h.nic(po.server));
    nicmodel::PacketTimeline tx{}, rx{}, pong_tx{};
    bool have_tx = false, have_rx = false, have_pong = false;
    for (const auto& t : client->model().timelines()) {
      if (t.tx) tx = t, have_tx = true;
    }
    for (const auto& t : server->model().timelines()) {
      if (!t.tx) rx = t, have_rx = true;
      if (t.tx) pong_tx = t, have_pong = true;
    }
    if (!have_tx || !have_rx || !have_pong) {
      std::fprintf(stderr, "bench: no timelines (SHUNT_NIC_TIMELINES=0?)\n");
      return 1;
    }
    std::printf("breakdown of one ping, client send doorbell to server receive CQE (virtual time):\n");
    line("doorbell MMIO write reaches the NIC", tx.doorbell_seen - tx.doorbell);
    line("WQE fetch (DMA read; 0 with BlueFlame)", tx.wqe_fetched - tx.doorbell_seen);
    line("payload DMA read (0 when inline)", tx.dma_done - tx.wqe_fetched);
    line("NIC transmit pipeline and queueing", tx.wire_start - tx.dma_done);
    line("serialization on the wire", tx.wire_end - tx.wire_start);
    line("propagation (link delay)", rx.wire_end - tx.wire_end);
    line("NIC receive pipeline and payload DMA write", rx.dma_done - rx.wire_end);
    line("CQE write until visible to the host", rx.cqe - rx.dma_done);
    line("total, one way", rx.cqe - tx.doorbell);
    line("host: receive CQE to the reply's doorbell", pong_tx.doorbell - rx.cqe);
    if (tx.cqe == kNever) {
      std::printf("  %-44s %8s\n", "send completion", "unsignalled (freed by a later CQE's wqe_counter)");
    } else {
      line("send completion CQE after the doorbell", tx.cqe - tx.doorbell);
    }
  }
  return 0;
}
