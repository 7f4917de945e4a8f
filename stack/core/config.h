// Configuration from SHUNT_* environment variables. Every variable is in one table (kVars), which
// also generates docs/config.md and `shunt config`. A bad value is reported as one line naming
// the variable and the accepted range; loading never throws or exits.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace shunt {

struct Config {
  std::string log_level = "warn";
  int64_t debug = 0;
  std::string pcap;
  std::string device;
  int64_t seed = 1;
  int64_t buffers = 4096;
  int64_t spin_us = 100;
  // The preload library (stack/preload/, docs/preload.md): the interface the stack owns, which
  // sockets it takes, and who makes progress.
  std::string profile = "default";
  std::string config_file;
  std::string ipv4;      // "A.B.C.D/N": the offload interface's IPv4 address and prefix
  std::string ipv6;      // "ADDR/N"
  std::string gateway;   // IPv4 default gateway (reached through the offload interface)
  std::string gateway6;  // IPv6 default gateway
  int64_t offload = 1;   // 0: default-off; only rules or the per-socket option offload
  std::string rules;     // offload rules, first match wins (docs/preload.md)
  int64_t progress_us = 100;  // progress thread interval; 0: no progress thread
  int64_t progress_cpu = -1;  // CPU the progress thread is pinned to; -1: not pinned
  int64_t stats = 1;          // 1: publish sockets and counters for `shunt stat`
  int64_t exit_linger_ms = 10'000;  // at exit, how long TCP data of offloaded sockets may take to drain
  int64_t arp_timeout_ms = 60'000;
  int64_t arp_retry_ms = 1'000;
  int64_t arp_retries = 3;
  int64_t arp_queue = 16;
  int64_t ndp_reachable_ms = 30'000;
  int64_t dad_transmits = 1;
  int64_t reasm_timeout_ms = 30'000;
  int64_t reasm_max_bytes = 4 << 20;
  int64_t reasm_max_frags = 64;
  int64_t icmp_rate = 1'000;
  int64_t icmp_burst = 50;
  int64_t udp_rcvbuf = 212'992;
  int64_t udp_sndbuf = 212'992;
  int64_t ttl = 64;
  // TCP (stack/net/tcp/).
  int64_t tcp_time_wait_ms = 60'000;
  int64_t tcp_rto_min_ms = 200;
  int64_t tcp_rto_initial_ms = 1'000;
  int64_t tcp_rto_max_ms = 120'000;
  int64_t tcp_delack_ms = 40;
  std::string tcp_congestion = "cubic";
  int64_t tcp_syn_backlog = 256;
  int64_t tcp_syncookies = 1;
  int64_t tcp_sndbuf = 4 << 20;
  int64_t tcp_rcvbuf = 4 << 20;
  int64_t tcp_fin_timeout_ms = 60'000;
  int64_t tcp_keepalive_time_s = 7'200;
  int64_t tcp_keepalive_intvl_s = 75;
  int64_t tcp_keepalive_probes = 9;
  int64_t tcp_ooo_max_segments = 2'048;
  int64_t tcp_sack_max_ranges = 4'096;
  int64_t tcp_mem_max = int64_t(512) << 20;
  // The mlx5 driver (stack/driver/mlx5/): queue sizes, inline threshold, completion moderation.
  int64_t mlx5_sq_size = 1'024;
  int64_t mlx5_rq_size = 512;
  int64_t mlx5_inline = 204;
  int64_t mlx5_tx_signal_every = 16;
  int64_t mlx5_blueflame = 0;
  // The simulated ConnectX (nicmodel/mlx5/): timing of each step; sources in docs/nicmodel.md.
  int64_t nic_doorbell_ns = 100;
  int64_t nic_pcie_latency_ns = 250;
  int64_t nic_pcie_gbps = 100;
  int64_t nic_wqe_fetch_ns = 550;
  int64_t nic_dma_read_ns = 550;
  int64_t nic_pipeline_ns = 100;
  int64_t nic_cqe_write_ns = 250;
  int64_t nic_link_gbps = 25;
  int64_t nic_cq_mod_count = 32;
  int64_t nic_cq_mod_us = 3;
  int64_t nic_timelines = 4'096;
};

struct ConfigVar {
  enum class Kind { kInt, kString, kChoice };
  const char* name;
  Kind kind;
  int64_t Config::*int_field;
  std::string Config::*str_field;
  int64_t min, max;
  const char* choices;  // '|'-separated, for kChoice
  const char* help;
};

std::span<const ConfigVar> config_vars();

struct ConfigResult {
  Config config;
  std::vector<std::string> errors;  // one line each; the config keeps defaults for those
  bool ok() const { return errors.empty(); }
};

using EnvLookup = std::function<const char*(const char* name)>;
// Reads every SHUNT_* variable through `lookup` (getenv by default) and validates it. Order:
// the defaults, then those of SHUNT_PROFILE, then the file SHUNT_CONFIG names (NAME=value lines),
// then the environment: a variable set explicitly (file or environment) wins over the profile,
// the environment over the file. Errors in the file name FILE:LINE.
ConfigResult load_config(const EnvLookup& lookup = nullptr);

// What each SHUNT_PROFILE sets (before explicit values apply).
struct ProfileDefault {
  const char* profile;
  const char* name;
  const char* value;
};
std::span<const ProfileDefault> profile_defaults();
// The profiles table of docs/config.md.
std::string profile_markdown();
// Sets one variable by name; returns an error line or nullopt.
std::optional<std::string> config_set(Config& c, const std::string& name, const std::string& value);
// The value of a variable as text.
std::string config_get(const Config& c, const ConfigVar& v);
// The docs/config.md table.
std::string config_markdown();

}  // namespace shunt
