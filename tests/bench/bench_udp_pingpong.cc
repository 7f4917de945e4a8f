// K 64-byte UDP round trips between two stacks in the virtual-time harness.
//
//   bench_udp_pingpong [--count K] [--warmup W] [--collect all|client|server|none] [--no-offload]
// --no-offload: the simulated NICs offer no checksum offload, so the stacks compute every checksum.
//
// Prints round trips per wall-clock second. Under `valgrind --tool=callgrind
// --collect-atstart=no` it turns collection on only for the measured round trips (after W
// warm-up ones that resolve neighbours and fill caches): for `all` the whole program, for
// `client`/`server` only the time spent inside that stack (its polls and its socket calls), so
// callgrind's total divided by K is instructions per round trip. tests/bench/run_bench.sh
// drives it.
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "stack/core/clock.h"
#include "stack/harness/harness.h"
#include "stack/harness/udp_pingpong.h"
#include "tests/bench/side_collector.h"

using namespace shunt;

namespace {

int usage() {
  std::fprintf(stderr,
               "usage: bench_udp_pingpong [--count K] [--warmup W] [--collect "
               "all|client|server|calibrate|none] [--no-offload]\n");
  return 2;
}
}  // namespace

int main(int argc, char** argv) {
  uint64_t count = 100'000, warmup = 1'000;
  std::string collect = "none";
  bool offload = true;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--no-offload") {
      offload = false;
      continue;
    }
    if (i + 1 >= argc) return usage();
    if (a == "--count") {
      count = std::strtoull(argv[++i], nullptr, 10);
    } else if (a == "--warmup") {
      warmup = std::strtoull(argv[++i], nullptr, 10);
    } else if (a == "--collect") {
      collect = argv[++i];
    } else {
      return usage();
    }
  }
  if (count == 0 || (collect != "all" && collect != "client" && collect != "server" &&
                     collect != "calibrate" && collect != "none"))
    return usage();
  if (collect == "calibrate") {
    // The cost of switching collection on and off around nothing, `count` times.
    SideCollector c(0);
    for (uint64_t i = 0; i < count; ++i) {
      c.enter(0);
      c.leave(0);
    }
    std::printf("switches %" PRIu64 "\n", c.switches());
    return 0;
  }

  HarnessOptions o;  // two stacks, 10 Gbit/s, 1 us one way
  o.link.checksum_offload = offload;
  Harness h(o);
  PingPongOptions po;
  po.payload = 64;
  UdpPingPong pp(h, po);
  pp.run(warmup);
  if (!pp.result().ok() || pp.result().completed != warmup) {
    std::fprintf(stderr, "bench: warm-up failed: %s (%" PRIu64 " of %" PRIu64 " round trips)\n",
                 pp.result().error.c_str(), pp.result().completed, warmup);
    return 1;
  }

  SideCollector client(po.client), server(po.server);
  if (collect == "client") h.set_observer(&client);
  if (collect == "server") h.set_observer(&server);
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
    std::fprintf(stderr, "bench: run failed: %s (%" PRIu64 " of %" PRIu64 " round trips)\n",
                 r.error.c_str(), measured, count);
    return 1;
  }
  std::printf("round_trips %" PRIu64 "\n", measured);
  std::printf("wall_ns %lld\n", (long long)took);
  std::printf("round_trips_per_second %.0f\n",
              took > 0 ? double(measured) * 1e9 / double(took) : 0.0);
  std::printf("rtt_p50_ns %lld\n", (long long)r.percentile(0.5));
  std::printf("callgrind_support %d\n", SHUNT_HAVE_CALLGRIND);
  if (collect == "client") std::printf("switches %" PRIu64 "\n", client.switches());
  if (collect == "server") std::printf("switches %" PRIu64 "\n", server.switches());
  return 0;
}
