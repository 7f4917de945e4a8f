// `shunt stat`: a netstat for offloaded sockets. Reads the statistics every process of this user
// publishes under the preload library (/dev/shm/shunt-stat-<uid>-<pid>, stack/preload/stats_shm.h),
// removes those of processes that died, and prints one row per offloaded fd and, with
// --counters, each process's non-zero stack counters (docs/preload.md, "shunt stat").
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "stack/cli/commands.h"
#include "stack/preload/stats_shm.h"

namespace shunt::cli {
namespace {

constexpr int kUsageError = 2;

void stat_usage(FILE* out) {
  std::fprintf(
      out,
      "usage: shunt stat [--counters] [--all] [--pid N] [--dir DIR]\n"
      "\n"
      "Lists the offloaded sockets of your processes running under the preload library, like\n"
      "netstat: Proto Recv-Q Send-Q Local Address Foreign Address State PID:FD Program.\n"
      "Statistics of processes that died are removed.\n"
      "\n"
      "options:\n"
      "  --counters, -c  also print each process's non-zero stack counters\n"
      "  --all, -a       with --counters: the counters that are zero too\n"
      "  --pid N         only process N (exit 1 if it publishes nothing)\n"
      "  --dir DIR       where the objects are (default /dev/shm)\n"
      "  --help, -h      this text\n"
      "\n"
      "A process publishes unless SHUNT_STATS=0. Exit status: 0, 1 when --pid N has no\n"
      "statistics, 2 on a usage error. Problems with one process's statistics are one line\n"
      "each on stderr; the others are still listed.\n");
}

int stat_usage_error(const std::string& msg) {
  std::fprintf(stderr, "shunt: stat: %s\n", msg.c_str());
  std::fprintf(stderr, "usage: shunt stat [--counters] [--all] [--pid N] [--dir DIR]\n");
  return kUsageError;
}

struct Row {
  std::string proto, recv_q, send_q, local, foreign, state, pid_fd, program;
};

}  // namespace

int cmd_stat(int argc, char** argv) {
  bool counters = false, all = false;
  long only_pid = 0;
  std::string dir = "/dev/shm";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      stat_usage(stdout);
      return 0;
    } else if (a == "--counters" || a == "-c") {
      counters = true;
    } else if (a == "--all" || a == "-a") {
      all = true;
    } else if (a == "--pid" || a == "--dir") {
      if (i + 1 >= argc) return stat_usage_error(a + " needs a value");
      const std::string v = argv[++i];
      if (a == "--dir") {
        dir = v;
        continue;
      }
      char* end = nullptr;
      errno = 0;
      only_pid = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end || errno || only_pid <= 0 || only_pid > 0x7fffffff) {
        return stat_usage_error("--pid " + v + ": expected a process id");
      }
    } else {
      return stat_usage_error("unknown option '" + a + "'");
    }
  }

  stats::Scan scan = stats::scan(::getuid(), true, dir);
  for (const auto& w : scan.warnings) std::fprintf(stderr, "shunt: stat: %s\n", w.c_str());
  for (pid_t p : scan.cleaned) {
    std::fprintf(stderr, "shunt: stat: removed the statistics of process %d, which has exited\n",
                 int(p));
  }
  if (only_pid) {
    std::erase_if(scan.snapshots, [&](const stats::Snapshot& s) { return s.pid != only_pid; });
  }

  std::vector<Row> rows;
  rows.push_back({"Proto", "Recv-Q", "Send-Q", "Local Address", "Foreign Address", "State",
                  "PID:FD", "Program"});
  for (const auto& s : scan.snapshots) {
    for (const auto& e : s.sockets) {
      Row r;
      r.proto = std::string(e.proto == stats::kTcp ? "tcp" : "udp") + (e.family == 6 ? "6" : "");
      r.recv_q = std::to_string(e.recv_q);
      r.send_q = std::to_string(e.send_q);
      r.local = stats::address(e.family, e.local_addr, e.local_port, true);
      r.foreign = stats::address(e.family, e.remote_addr, e.remote_port, e.has_peer);
      r.state = stats::state_name(e.proto, e.state);
      r.pid_fd = std::to_string(s.pid) + ":" + std::to_string(e.fd);
      r.program = s.program;
      rows.push_back(std::move(r));
    }
  }
  // netstat's columns, widened where an address is longer.
  size_t w_local = 23, w_foreign = 23, w_state = 11, w_pidfd = 10;
  for (const auto& r : rows) {
    w_local = std::max(w_local, r.local.size());
    w_foreign = std::max(w_foreign, r.foreign.size());
    w_state = std::max(w_state, r.state.size());
    w_pidfd = std::max(w_pidfd, r.pid_fd.size());
  }
  for (const auto& r : rows) {
    std::printf("%-5s %6s %6s %-*s %-*s %-*s %-*s %s\n", r.proto.c_str(), r.recv_q.c_str(),
                r.send_q.c_str(), int(w_local), r.local.c_str(), int(w_foreign), r.foreign.c_str(),
                int(w_state), r.state.c_str(), int(w_pidfd), r.pid_fd.c_str(), r.program.c_str());
  }
  for (const auto& s : scan.snapshots) {
    if (s.sockets_dropped) {
      std::printf("(%" PRIu32 " more sockets of process %d not shown: its table holds %" PRIu32
                  ")\n",
                  s.sockets_dropped, int(s.pid), stats::kMaxSockets);
    }
  }
  if (counters) {
    for (const auto& s : scan.snapshots) {
      std::printf("\nCounters of process %d (%s):\n", int(s.pid), s.program.c_str());
      size_t w = 0;
      for (const auto& [name, value] : s.counters) {
        if (all || value) w = std::max(w, name.size());
      }
      for (const auto& [name, value] : s.counters) {
        if (all || value) std::printf("  %-*s %20" PRIu64 "\n", int(w), name.c_str(), value);
      }
      if (s.counters_dropped)
        std::printf("  (%" PRIu32 " counters not shown)\n", s.counters_dropped);
    }
  }
  if (only_pid && scan.snapshots.empty()) {
    std::fprintf(stderr,
                 "shunt: stat: process %ld publishes no statistics (not running under shunt, or "
                 "SHUNT_STATS=0)\n",
                 only_pid);
    return 1;
  }
  return 0;
}

}  // namespace shunt::cli
