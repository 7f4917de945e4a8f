// The `shunt` command: help, version, configuration, and the demo (UDP ping-pong between two
// stacks in virtual time over the harness link).
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "stack/cli/commands.h"
#include "stack/core/clock.h"
#include "stack/core/config.h"
#include "stack/core/log.h"
#include "stack/driver/device_registry.h"
#include "stack/harness/harness.h"
#include "stack/harness/udp_pingpong.h"
#include "stack/net/stack.h"

namespace shunt {
namespace {

constexpr int kUsageError = 2;

void usage(FILE* out) {
  std::fprintf(
      out,
      "usage: shunt <command> [options]\n"
      "\n"
      "Shunt is a user-space TCP/UDP/IP stack (kernel bypass, LD_PRELOAD, simulation first).\n"
      "\n"
      "commands:\n"
      "  demo [options]     64-byte UDP ping-pong between two stacks in virtual time\n"
      "      --count N        round trips (default 10000)\n"
      "      --seed N         seed of the stacks and of the link's impairments (default "
      "SHUNT_SEED, 1)\n"
      "      --delay-us X     one-way link delay in microseconds (default 1)\n"
      "      --rate-gbps X    link rate in Gbit/s, 0 for no serialization time (default 10)\n"
      "      --loss P         probability that a frame is lost, 0..1 (default 0)\n"
      "      --pcap FILE      write every frame on the link to FILE (like SHUNT_PCAP)\n"
      "      --nic KIND       sim: stacks drive the link directly; mlx5sim: each stack drives\n"
      "                       the mlx5 driver on a simulated ConnectX (default: SHUNT_DEVICE if\n"
      "                       it is mlx5sim, else sim)\n"
      "  config [--markdown|--profiles]  every SHUNT_* variable with its value and accepted range\n"
      "                       (--markdown: the table of docs/config.md; --profiles: what\n"
      "                       SHUNT_PROFILE sets, the Profiles table there)\n"
      "  netsim --dir DIR [options]  real processes as hosts of an ns-3 topology in real\n"
      "                     time; each attaches with SHUNT_DEVICE=unix:path=DIR/hostN.sock\n"
      "                     (runs shunt-netsim next to this binary; `shunt netsim --help`,\n"
      "                     docs/netsim.md)\n"
      "  run [options] [--] PROGRAM [ARGS...]  run PROGRAM with its sockets on Shunt\n"
      "                     (LD_PRELOAD=libshunt.so; --profile, --device, --ipv4, --config,\n"
      "                     --debug; `shunt run --help`)\n"
      "  stat [--counters] [--pid N]  netstat of the offloaded sockets of your processes\n"
      "                     (`shunt stat --help`, docs/preload.md)\n"
      "  scenario list|info|run|gate ...  scenarios on a backend (sim, ns3, cable, afxdp,\n"
      "                     tap): `shunt scenario run NAME --backend B [--param k=v ...]`\n"
      "                     prints a table and stores the results (docs/scenarios.md)\n"
      "  dashboard ...      the static HTML dashboard of the stored results (docs/results.md)\n"
      "  version            print the version\n"
      "  help, --help, -h   this text\n"
      "\n"
      "Configuration comes from SHUNT_* environment variables (SHUNT_LOG_LEVEL, SHUNT_PCAP,\n"
      "SHUNT_SEED, ...): `shunt config` lists them all, docs/config.md documents them.\n"
      "Exit status: 0 success, 1 failure, 2 usage or configuration error.\n");
  std::fprintf(out, "\nSHUNT_DEVICE (which NIC the stack drives; docs/config.md, Devices):\n");
  std::fprintf(out, "  %s\n", "sim  (virtual time) the harness link directly; mlx5sim  (virtual time) the mlx5 driver on a simulated ConnectX");
  for (const auto& [kind, text] : device_kinds()) std::fprintf(out, "  %s\n", text.c_str());
}

int usage_error(const std::string& msg) {
  std::fprintf(stderr, "shunt: %s\n", msg.c_str());
  usage(stderr);
  return kUsageError;
}

// Loads SHUNT_* variables; prints each bad one on one line. False if any was bad.
bool load(Config& out) {
  ConfigResult r = load_config();
  for (const auto& e : r.errors) std::fprintf(stderr, "shunt: %s\n", e.c_str());
  if (!r.ok()) return false;
  out = r.config;
  if (auto l = parse_log_level(out.log_level)) set_log_level(*l);
  return true;
}

std::string range_of(const ConfigVar& v) {
  switch (v.kind) {
    case ConfigVar::Kind::kInt:
      return "[" + std::to_string(v.min) + ", " +
             (v.max == INT64_MAX ? std::string("2^63-1") : std::to_string(v.max)) + "]";
    case ConfigVar::Kind::kChoice:
      return std::string("one of ") + v.choices;
    case ConfigVar::Kind::kString:
      return "text";
  }
  return "";
}

int cmd_config(const std::vector<std::string>& args) {
  bool markdown = false;
  for (const auto& a : args) {
    if (a == "--markdown") {
      markdown = true;
    } else if (a == "--profiles") {
      std::fputs(profile_markdown().c_str(), stdout);
      return 0;
    } else {
      return usage_error("config: unknown option '" + a + "'");
    }
  }
  if (markdown) {
    std::fputs(config_markdown().c_str(), stdout);
    return 0;
  }
  Config c;
  if (!load(c)) return kUsageError;
  size_t name_w = 0, value_w = 7, range_w = 0;
  for (const auto& v : config_vars()) {
    name_w = std::max(name_w, std::strlen(v.name));
    value_w = std::max(value_w, config_get(c, v).size() + 1);
    range_w = std::max(range_w, range_of(v).size());
  }
  std::printf("%-*s %-*s %-*s %s\n", int(name_w), "VARIABLE", int(value_w), "VALUE", int(range_w),
              "ACCEPTED", "MEANING");
  for (const auto& v : config_vars()) {
    std::string value = config_get(c, v);
    if (value.empty()) value = "(unset)";
    if (std::getenv(v.name)) value += "*";
    std::printf("%-*s %-*s %-*s %s\n", int(name_w), v.name, int(value_w), value.c_str(),
                int(range_w), range_of(v).c_str(), v.help);
  }
  std::printf("(* set in the environment)\n");
  return 0;
}

// Parses a number option; false with a message on anything that is not a number in [lo, hi].
bool parse_number(const std::string& opt, const std::string& text, double lo, double hi,
                  double& out, std::string& err) {
  errno = 0;
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (text.empty() || errno != 0 || *end != '\0' || !std::isfinite(v) || v < lo || v > hi) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "%s %s: expected a number in [%g, %g]", opt.c_str(),
                  text.c_str(), lo, hi);
    err = buf;
    return false;
  }
  out = v;
  return true;
}

bool parse_integer(const std::string& opt, const std::string& text, uint64_t lo, uint64_t hi,
                   uint64_t& out, std::string& err) {
  errno = 0;
  char* end = nullptr;
  unsigned long long v = std::strtoull(text.c_str(), &end, 10);
  if (text.empty() || text[0] == '-' || errno != 0 || *end != '\0' || v < lo || v > hi) {
    err = opt + " " + text + ": expected an integer in [" + std::to_string(lo) + ", " +
          std::to_string(hi) + "]";
    return false;
  }
  out = v;
  return true;
}

std::string micros(Nanos ns) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3f us", double(ns) / 1e3);
  return buf;
}

std::string with_commas(uint64_t v) {
  std::string digits = std::to_string(v), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

int cmd_demo(const std::vector<std::string>& args) {
  Config config;
  if (!load(config)) return kUsageError;
  uint64_t count = 10000;
  uint64_t seed = uint64_t(config.seed);
  double delay_us = 1, rate_gbps = 10, loss = 0;
  std::string pcap = config.pcap;
  std::string nic = config.device == "mlx5sim" ? "mlx5sim" : "sim";
  for (size_t i = 0; i < args.size(); ++i) {
    std::string opt = args[i], value;
    size_t eq = opt.find('=');
    bool inline_value = opt.rfind("--", 0) == 0 && eq != std::string::npos;
    if (inline_value) {
      value = opt.substr(eq + 1);
      opt = opt.substr(0, eq);
    }
    static const char* const kOptions[] = {"--count",     "--seed", "--delay-us",
                                           "--rate-gbps", "--loss", "--pcap", "--nic"};
    bool known = false;
    for (const char* k : kOptions) known = known || opt == k;
    if (!known) return usage_error("demo: unknown option '" + args[i] + "'");
    if (!inline_value) {
      if (i + 1 >= args.size()) return usage_error("demo: " + opt + " needs a value");
      value = args[++i];
    }
    std::string err;
    bool ok = true;
    if (opt == "--count") {
      ok = parse_integer(opt, value, 1, 10'000'000, count, err);
    } else if (opt == "--seed") {
      ok = parse_integer(opt, value, 0, uint64_t(INT64_MAX), seed, err);
    } else if (opt == "--delay-us") {
      ok = parse_number(opt, value, 0, 1e6, delay_us, err);
    } else if (opt == "--rate-gbps") {
      ok = parse_number(opt, value, 0, 1e4, rate_gbps, err);
    } else if (opt == "--loss") {
      ok = parse_number(opt, value, 0, 1, loss, err);
    } else if (opt == "--nic") {
      nic = value;
      ok = nic == "sim" || nic == "mlx5sim";
      err = "--nic: expected sim or mlx5sim";
    } else if (opt == "--pcap") {
      pcap = value;
      ok = !value.empty();
      err = "--pcap needs a file name";
    }
    if (!ok) return usage_error("demo: " + err);
  }

  HarnessOptions o;
  o.stacks = 2;
  o.config = config;
  o.config.seed = int64_t(seed);
  o.config.pcap = pcap;
  o.link.seed = seed;
  o.link.delay = Nanos(std::llround(delay_us * 1e3));
  o.link.rate_bps = uint64_t(std::llround(rate_gbps * 1e9));
  o.link.loss = loss;
  o.nic = nic;

  MonotonicClock wall;
  const Nanos wall_start = wall.now();
  Harness h(o);
  if (!pcap.empty() && !h.pcap().is_open()) {
    std::fprintf(stderr, "shunt: demo: cannot write the pcap: %s\n", h.pcap().error().c_str());
    return 1;
  }
  UdpPingPong pp(h);
  const PingPongResult& r = pp.run(count);
  const Nanos wall_taken = wall.now() - wall_start;
  if (!r.ok()) {
    std::fprintf(stderr, "shunt: demo: %s\n", r.error.c_str());
    return 1;
  }
  h.pcap().flush();

  const Counters& link = h.link().counters();
  char rate[64];
  if (o.link.rate_bps) {
    std::snprintf(rate, sizeof rate, "%g Gbit/s", rate_gbps);
  } else {
    std::snprintf(rate, sizeof rate, "unlimited");
  }
  std::printf("shunt demo: 64-byte UDP ping-pong between two stacks, virtual time\n");
  std::printf("  link           %s, %s one way, MTU %u, loss %g, seed %" PRIu64 "\n", rate,
              micros(o.link.delay).c_str(), o.link.mtu, loss, seed);
  std::printf("  %-14s %s\n", "nic", nic == "sim" ? "none (stacks on the link)"
                                                     : "mlx5 driver on a simulated ConnectX per stack");
  std::printf("  %-14s %s\n", "round trips", with_commas(r.completed).c_str());
  std::printf("  %-14s %s\n", "lost", with_commas(r.lost).c_str());
  std::printf("  %-14s %s\n", "rtt p50", micros(r.percentile(0.50)).c_str());
  std::printf("  %-14s %s\n", "rtt p99", micros(r.percentile(0.99)).c_str());
  std::printf("  %-14s %s\n", "rtt p99.9", micros(r.percentile(0.999)).c_str());
  std::printf("  %-14s %s\n", "rtt max", micros(r.percentile(1.0)).c_str());
  std::printf("  %-14s %s on the link (%s dropped by impairments)\n", "packets",
              with_commas(link.get("link.tx_frames")).c_str(),
              with_commas(link.get("link.drop.loss")).c_str());
  std::printf("  %-14s %s on the link\n", "bytes", with_commas(link.get("link.tx_bytes")).c_str());
  std::printf("  %-14s %.3f ms\n", "virtual time", double(h.now()) / 1e6);
  std::printf(
      "  %-14s %.3f ms (%s round trips per second)\n", "wall time", double(wall_taken) / 1e6,
      with_commas(wall_taken > 0 ? uint64_t(double(r.completed) * 1e9 / double(wall_taken)) : 0)
          .c_str());
  if (!pcap.empty())
    std::printf("  %-14s %s (%" PRIu64 " frames)\n", "pcap", pcap.c_str(), h.pcap().records());
  if (r.completed == 0) {
    std::fprintf(stderr, "shunt: demo: no round trip completed\n");
    return 1;
  }
  return 0;
}

// `shunt netsim ...`: execs the shunt-netsim program that sits next to this binary (it links
// ns-3, which the stack must not).
int cmd_netsim(char** argv_rest) {
  char self[4096];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) {
    std::fprintf(stderr, "shunt: netsim: cannot find this program's directory: %s\n", std::strerror(errno));
    return 1;
  }
  std::string dir(self, size_t(n));
  dir = dir.substr(0, dir.rfind('/'));
  const std::string program = dir + "/shunt-netsim";
  std::vector<char*> args;
  args.push_back(const_cast<char*>("shunt-netsim"));
  for (char** a = argv_rest; *a; ++a) args.push_back(*a);
  args.push_back(nullptr);
  ::execv(program.c_str(), args.data());
  std::fprintf(stderr, "shunt: netsim: cannot run %s: %s%s\n", program.c_str(), std::strerror(errno),
               errno == ENOENT ? " (build the shunt-netsim target)" : "");
  return 1;
}

int run(int argc, char** argv) {
  if (argc < 2) return usage_error("no command given");
  std::string cmd = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    usage(stdout);
    return 0;
  }
  if (cmd == "version" || cmd == "--version") {
    std::printf("shunt %s\n", SHUNT_VERSION);
    return 0;
  }
  if (cmd == "config") return cmd_config(args);
  if (cmd == "netsim") return cmd_netsim(argv + 2);
  if (cmd == "run") return cli::cmd_run(argc - 1, argv + 1);
  if (cmd == "stat") return cli::cmd_stat(argc - 1, argv + 1);
  if (cmd == "scenario" || cmd == "dashboard") return cli::cmd_python(cmd.c_str(), argc - 1, argv + 1);
  if (cmd == "demo") {
    for (const auto& a : args) {
      if (a == "--help" || a == "-h") {
        usage(stdout);
        return 0;
      }
    }
    return cmd_demo(args);
  }
  return usage_error("unknown command '" + cmd + "'");
}

}  // namespace
}  // namespace shunt

int main(int argc, char** argv) { return shunt::run(argc, argv); }
