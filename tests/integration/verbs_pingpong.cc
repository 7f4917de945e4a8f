// Two stacks in one process, each on its own UD QP of the same verbs device (soft-RoCE rxe0 in
// the hil/ guest: rxe loops the traffic back), doing a UDP ping-pong and a TCP transfer each way
// with every byte checked (tests/support/verbs_pingpong.h). Prints one line and exits 0 (ok),
// 1 (failed) or 77 (no RDMA device here: skipped).
//
//   verbs_pingpong [SPEC] [--udp ROUNDS] [--tcp-bytes N] [--limit SECONDS] [--verbose]
//
// SPEC is a SHUNT_DEVICE value, default verbs:rxe0 (for example verbs:rxe0,gid=1,mtu=1000).
// Stack a is 10.77.0.1/24, stack b 10.77.0.2/24. On failure (or with --verbose) both devices'
// and stacks' nonzero counters go to stderr.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

#include "stack/core/clock.h"
#include "stack/core/config.h"
#include "stack/driver/device_registry.h"
#include "stack/driver/verbs/verbs_device.h"
#include "stack/net/stack.h"
#include "tests/support/verbs_pingpong.h"

using namespace shunt;

int main(int argc, char** argv) {
  std::string spec = "verbs:rxe0";
  test::PingPongOptions o;
  o.udp_rounds = 1000;
  o.tcp_bytes = 4 << 20;
  bool verbose = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "verbs_pingpong: %s needs a value\n", a.c_str());
        std::exit(1);
      }
      return argv[++i];
    };
    if (a == "--udp") {
      o.udp_rounds = std::atoi(next());
    } else if (a == "--tcp-bytes") {
      o.tcp_bytes = std::strtoull(next(), nullptr, 10);
    } else if (a == "--limit") {
      o.limit = Nanos(std::atof(next()) * double(kSecond));
    } else if (a == "--verbose") {
      verbose = true;
    } else if (a == "-h" || a == "--help") {
      std::printf("usage: verbs_pingpong [SPEC] [--udp ROUNDS] [--tcp-bytes N] [--limit SECONDS] [--verbose]\n");
      return 0;
    } else if (!a.empty() && a[0] != '-') {
      spec = a;
    } else {
      std::fprintf(stderr, "verbs_pingpong: unknown argument %s\n", a.c_str());
      return 1;
    }
  }
  MonotonicClock clock;
  Config config;
  config.buffers = 8192;
  OpenedDevice da = open_device(spec, clock, config);
  if (!da.device) {
    const bool absent = da.error.find("no RDMA") != std::string::npos;
    std::printf("verbs_pingpong: %s: %s\n", absent ? "SKIPPED" : "FAIL", da.error.c_str());
    return absent ? 77 : 1;
  }
  OpenedDevice db = open_device(spec, clock, config);
  if (!db.device) {
    std::printf("verbs_pingpong: FAIL second device: %s\n", db.error.c_str());
    return 1;
  }
  Stack a(*da.device, clock, config), b(*db.device, clock, config);
  a.add_address(IpAddr(Ipv4Addr{0x0a4d0001}), 24);
  b.add_address(IpAddr(Ipv4Addr{0x0a4d0002}), 24);
  test::PingPongResult r = test::run_pingpong(a, b, clock, o);
  std::printf("verbs_pingpong: %s (%s, MTU %u, MACs %s %s)\n", r.what.c_str(), spec.c_str(), a.mtu(),
              a.mac().str().c_str(), b.mac().str().c_str());
  if (!r.ok || verbose) {
    for (Device* d : {da.device.get(), db.device.get()}) {
      if (auto* v = dynamic_cast<VerbsDevice*>(d)) std::cerr << "device " << d->info().mac.str() << ":\n" << v->counters().dump();
    }
    std::cerr << "stack a:\n" << a.counters().dump() << "stack b:\n" << b.counters().dump();
  }
  return r.ok ? 0 : 1;
}
