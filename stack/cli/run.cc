// `shunt run`: runs a program under the preload library. It sets LD_PRELOAD to the libshunt.so
// that belongs to this shunt (../lib/libshunt.so from this binary: build/bin/shunt ->
// build/lib/libshunt.so, and the same in an installed prefix), keeps whatever LD_PRELOAD already
// held, turns its options into SHUNT_* variables, and execs the program (docs/preload.md, "shunt
// run").
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "stack/cli/commands.h"
#include "stack/core/config.h"
#include "stack/net/addr.h"

namespace shunt::cli {
namespace {

constexpr int kUsageError = 2;
constexpr int kNotFound = 127;  // as a shell says "command not found"
constexpr int kNotExecutable = 126;

void run_usage(FILE* out) {
  std::fprintf(
      out,
      "usage: shunt run [options] [--] PROGRAM [ARGS...]\n"
      "\n"
      "Runs PROGRAM with its sockets on Shunt: LD_PRELOAD gets the libshunt.so next to this\n"
      "command (../lib/libshunt.so), after whatever LD_PRELOAD already holds, and the options\n"
      "become SHUNT_* variables (the environment's own SHUNT_* variables stay unless an option\n"
      "replaces them).\n"
      "\n"
      "options:\n"
      "  --profile P     SHUNT_PROFILE: default, latency (spin long, no moderation) or\n"
      "                  throughput (short spin, batching); docs/config.md, Profiles\n"
      "  --device SPEC   SHUNT_DEVICE: the NIC, e.g. mlx5sim:cable=NAME,mac=02:53:48:00:00:01\n"
      "  --ipv4 A.B.C.D/N  SHUNT_IPV4: the offload interface's address and prefix\n"
      "  --config FILE   SHUNT_CONFIG: a file of SHUNT_NAME=value lines\n"
      "  --debug         SHUNT_DEBUG=1: say for each socket whether it is offloaded and why\n"
      "  --help, -h      this text\n"
      "\n"
      "Exit status: PROGRAM's; 127 when PROGRAM cannot be found, 126 when it cannot be\n"
      "executed, 2 on a usage error, 1 when libshunt.so is missing.\n");
}

int run_usage_error(const std::string& msg) {
  std::fprintf(stderr, "shunt: run: %s\n", msg.c_str());
  std::fprintf(stderr,
               "usage: shunt run [--profile P] [--device SPEC] [--ipv4 A/N] [--config FILE] "
               "[--debug] [--] PROGRAM [ARGS...]\n");
  return kUsageError;
}

bool ipv4_prefix_ok(const std::string& v) {
  const size_t slash = v.find('/');
  if (slash == std::string::npos || !Ipv4Addr::parse(v.substr(0, slash))) return false;
  const std::string n = v.substr(slash + 1);
  if (n.empty() || n.size() > 2 || n.find_first_not_of("0123456789") != std::string::npos)
    return false;
  return std::stoi(n) <= 32;
}

// The directory of this executable, or "" with a message.
std::string self_dir() {
  char self[4096];
  const ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return "";
  std::string path(self, size_t(n));
  return path.substr(0, path.rfind('/'));
}

}  // namespace

int cmd_run(int argc, char** argv) {
  std::string profile, device, ipv4, config_file;
  bool debug = false;
  int i = 1;
  for (; i < argc; ++i) {
    std::string opt = argv[i];
    if (opt == "--") {
      ++i;
      break;
    }
    if (opt == "--help" || opt == "-h") {
      run_usage(stdout);
      return 0;
    }
    if (opt.rfind("-", 0) != 0) break;  // the program
    if (opt == "--debug") {
      debug = true;
      continue;
    }
    std::string value;
    bool have_value = false;
    if (const size_t eq = opt.find('='); opt.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = opt.substr(eq + 1);
      opt = opt.substr(0, eq);
      have_value = true;
    }
    if (opt != "--profile" && opt != "--device" && opt != "--ipv4" && opt != "--config") {
      return run_usage_error("unknown option '" + std::string(argv[i]) + "'");
    }
    if (!have_value) {
      if (i + 1 >= argc) return run_usage_error(opt + " needs a value");
      value = argv[++i];
    }
    if (opt == "--profile") {
      if (value != "default" && value != "latency" && value != "throughput") {
        return run_usage_error("--profile " + value +
                               ": expected one of default|latency|throughput");
      }
      profile = value;
    } else if (opt == "--device") {
      if (value.empty())
        return run_usage_error("--device needs a device spec (docs/config.md, Devices)");
      device = value;
    } else if (opt == "--ipv4") {
      if (!ipv4_prefix_ok(value))
        return run_usage_error("--ipv4 " + value + ": expected A.B.C.D/N");
      ipv4 = value;
    } else {
      if (value.empty()) return run_usage_error("--config needs a file name");
      config_file = value;
    }
  }
  if (i >= argc) return run_usage_error("no program given");

  const std::string dir = self_dir();
  const std::string lib = dir + "/../lib/libshunt.so";
  if (dir.empty() || ::access(lib.c_str(), R_OK) != 0) {
    std::fprintf(
        stderr,
        "shunt: run: cannot find the preload library at %s (build the shunt_preload target)\n",
        lib.c_str());
    return 1;
  }
  char resolved[4096];
  const std::string lib_path = ::realpath(lib.c_str(), resolved) ? std::string(resolved) : lib;
  std::string preload;
  if (const char* old = std::getenv("LD_PRELOAD"); old && *old) {
    preload = old;
    if (preload.find(lib_path) == std::string::npos) preload += ":" + lib_path;
  } else {
    preload = lib_path;
  }
  ::setenv("LD_PRELOAD", preload.c_str(), 1);
  if (!profile.empty()) ::setenv("SHUNT_PROFILE", profile.c_str(), 1);
  if (!device.empty()) ::setenv("SHUNT_DEVICE", device.c_str(), 1);
  if (!ipv4.empty()) ::setenv("SHUNT_IPV4", ipv4.c_str(), 1);
  if (!config_file.empty()) ::setenv("SHUNT_CONFIG", config_file.c_str(), 1);
  if (debug) ::setenv("SHUNT_DEBUG", "1", 1);

  ::execvp(argv[i], argv + i);
  const int err = errno;
  if (err == ENOENT || err == ENOTDIR) {
    std::fprintf(stderr, "shunt: run: %s: command not found\n", argv[i]);
    return kNotFound;
  }
  std::fprintf(stderr, "shunt: run: cannot run %s: %s\n", argv[i], std::strerror(err));
  return kNotExecutable;
}

}  // namespace shunt::cli
