#include "stack/core/config.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace shunt {

namespace {
using K = ConfigVar::Kind;
constexpr int64_t kMax = INT64_MAX;
#define INT_VAR(n, f, lo, hi, h) ConfigVar{n, K::kInt, &Config::f, nullptr, lo, hi, nullptr, h}
#define STR_VAR(n, f, h) ConfigVar{n, K::kString, nullptr, &Config::f, 0, 0, nullptr, h}
#define CHOICE_VAR(n, f, c, h) ConfigVar{n, K::kChoice, nullptr, &Config::f, 0, 0, c, h}
const ConfigVar kVars[] = {
    CHOICE_VAR("SHUNT_LOG_LEVEL", log_level, "error|warn|info|debug|trace", "Least severe message printed to stderr."),
    INT_VAR("SHUNT_DEBUG", debug, 0, 1, "1: say for each socket whether it is offloaded and why."),
    STR_VAR("SHUNT_PCAP", pcap, "Write every frame the stack sends and receives to this pcap file."),
    STR_VAR("SHUNT_DEVICE", device, "Which NIC the stack drives and how: sim, mlx5sim, mlx5sim:cable=NAME, mlx5:DEVICE, tap:IFNAME, afxdp:IFNAME (docs/config.md, Devices)."),
    INT_VAR("SHUNT_SEED", seed, 0, kMax, "Seed of the stack's random numbers (ports, IDs, ISNs)."),
    INT_VAR("SHUNT_BUFFERS", buffers, 64, 1 << 20, "Packet buffers in the pool (2 KiB each)."),
    INT_VAR("SHUNT_SPIN_US", spin_us, 0, 10'000'000, "Microseconds a blocking call busy-polls before it sleeps."),
    CHOICE_VAR("SHUNT_PROFILE", profile, "default|latency|throughput", "Defaults for a goal: latency spins long and polls often, throughput sleeps sooner and batches (docs/config.md, Profiles); variables set explicitly win."),
    STR_VAR("SHUNT_CONFIG", config_file, "A file of SHUNT_NAME=value lines read before the environment (which wins); # starts a comment."),
    STR_VAR("SHUNT_IPV4", ipv4, "The offload interface's IPv4 address and prefix, A.B.C.D/N; sockets bound to it or routed through it are offloaded."),
    STR_VAR("SHUNT_IPV6", ipv6, "The offload interface's IPv6 address and prefix, ADDR/N."),
    STR_VAR("SHUNT_GATEWAY", gateway, "IPv4 default gateway on the offload interface; unset: only the interface's own subnet is routed through it."),
    STR_VAR("SHUNT_GATEWAY6", gateway6, "IPv6 default gateway on the offload interface."),
    INT_VAR("SHUNT_OFFLOAD", offload, 0, 1, "1: offload every socket the rules and routes allow; 0: default-off, only sockets a rule or SO_SHUNT_OFFLOAD selects."),
    STR_VAR("SHUNT_RULES", rules, "Offload rules, ';'-separated, first match wins: offload|kernel [program=NAME] [local=ADDR[/N]] [remote=ADDR[/N]] [port=N[-M]] (docs/preload.md)."),
    INT_VAR("SHUNT_PROGRESS_US", progress_us, 0, 1'000'000, "Interval of the progress thread that runs timers and drains completions when no thread polls (us); 0: no progress thread."),
    INT_VAR("SHUNT_PROGRESS_CPU", progress_cpu, -1, 4'095, "CPU the progress thread is pinned to; -1: not pinned."),
    INT_VAR("SHUNT_STATS", stats, 0, 1, "1: publish offloaded sockets and counters in shared memory for `shunt stat`."),
    INT_VAR("SHUNT_EXIT_LINGER_MS", exit_linger_ms, 0, 3'600'000, "At exit, how long the process keeps sending what its offloaded TCP sockets still hold, as the kernel would after the process is gone (ms)."),
    INT_VAR("SHUNT_ARP_TIMEOUT_MS", arp_timeout_ms, 1'000, 86'400'000, "How long a resolved ARP entry is trusted (ms)."),
    INT_VAR("SHUNT_ARP_RETRY_MS", arp_retry_ms, 10, 60'000, "Interval between ARP/NDP solicitations while resolving (ms)."),
    INT_VAR("SHUNT_ARP_RETRIES", arp_retries, 1, 16, "Solicitations sent before a neighbour is declared unreachable."),
    INT_VAR("SHUNT_ARP_QUEUE", arp_queue, 1, 1024, "Packets held per neighbour while it is being resolved; more are dropped."),
    INT_VAR("SHUNT_NDP_REACHABLE_MS", ndp_reachable_ms, 1'000, 3'600'000, "NDP REACHABLE time before re-confirmation (ms, RFC 4861)."),
    INT_VAR("SHUNT_DAD_TRANSMITS", dad_transmits, 0, 10, "Duplicate address detection probes per IPv6 address (0 disables)."),
    INT_VAR("SHUNT_REASM_TIMEOUT_MS", reasm_timeout_ms, 100, 120'000, "Time a partly reassembled datagram is kept (ms)."),
    INT_VAR("SHUNT_REASM_MAX_BYTES", reasm_max_bytes, 0, 256 << 20, "Memory for the reassembly queues of one IP family (bytes); never more than a quarter of the buffer pool."),
    INT_VAR("SHUNT_REASM_MAX_FRAGS", reasm_max_frags, 1, 1024, "Fragments accepted per datagram."),
    INT_VAR("SHUNT_ICMP_RATE", icmp_rate, 0, 1'000'000, "ICMP errors sent per second at most (token bucket)."),
    INT_VAR("SHUNT_ICMP_BURST", icmp_burst, 1, 100'000, "ICMP error burst size."),
    INT_VAR("SHUNT_UDP_RCVBUF", udp_rcvbuf, 256, 1 << 30, "Default UDP receive buffer (bytes, like SO_RCVBUF)."),
    INT_VAR("SHUNT_UDP_SNDBUF", udp_sndbuf, 256, 1 << 30, "Default UDP send buffer (bytes, like SO_SNDBUF)."),
    INT_VAR("SHUNT_TTL", ttl, 1, 255, "Default IPv4 TTL and IPv6 hop limit."),
    INT_VAR("SHUNT_TCP_TIME_WAIT_MS", tcp_time_wait_ms, 0, 600'000, "TCP TIME_WAIT length, 2*MSL (ms)."),
    INT_VAR("SHUNT_TCP_RTO_MIN_MS", tcp_rto_min_ms, 1, 60'000, "Smallest TCP retransmission timeout (ms, RFC 6298 2.4)."),
    INT_VAR("SHUNT_TCP_RTO_INITIAL_MS", tcp_rto_initial_ms, 1, 60'000, "TCP retransmission timeout before the first RTT sample (ms, RFC 6298 2.1)."),
    INT_VAR("SHUNT_TCP_RTO_MAX_MS", tcp_rto_max_ms, 1, 3'600'000, "Largest TCP retransmission timeout, backoff included (ms)."),
    INT_VAR("SHUNT_TCP_DELACK_MS", tcp_delack_ms, 1, 500, "TCP delayed-ACK timeout (ms, RFC 1122 4.2.3.2)."),
    CHOICE_VAR("SHUNT_TCP_CONGESTION", tcp_congestion, "cubic|newreno", "Default TCP congestion control (TCP_CONGESTION sets it per socket)."),
    INT_VAR("SHUNT_TCP_SYN_BACKLOG", tcp_syn_backlog, 1, 65'536, "Half-open connections per listener at most (also bounded by its listen backlog)."),
    INT_VAR("SHUNT_TCP_SYNCOOKIES", tcp_syncookies, 0, 1, "1: answer SYNs with SYN cookies when the SYN queue is full (RFC 4987); 0: drop them."),
    INT_VAR("SHUNT_TCP_SNDBUF", tcp_sndbuf, 4'608, 1 << 30, "Default TCP send buffer (bytes, like SO_SNDBUF)."),
    INT_VAR("SHUNT_TCP_RCVBUF", tcp_rcvbuf, 2'304, 1 << 30, "Default TCP receive buffer (bytes, like SO_RCVBUF); the window offered is half of it."),
    INT_VAR("SHUNT_TCP_FIN_TIMEOUT_MS", tcp_fin_timeout_ms, 1'000, 3'600'000, "How long a closed socket waits in FIN_WAIT_2 for the peer's FIN (ms, TCP_LINGER2)."),
    INT_VAR("SHUNT_TCP_KEEPALIVE_TIME_S", tcp_keepalive_time_s, 1, 32'767, "Idle time before the first keepalive probe (s, TCP_KEEPIDLE)."),
    INT_VAR("SHUNT_TCP_KEEPALIVE_INTVL_S", tcp_keepalive_intvl_s, 1, 32'767, "Interval between keepalive probes (s, TCP_KEEPINTVL)."),
    INT_VAR("SHUNT_TCP_KEEPALIVE_PROBES", tcp_keepalive_probes, 1, 127, "Unanswered keepalive probes before the connection is dropped (TCP_KEEPCNT)."),
    INT_VAR("SHUNT_TCP_OOO_MAX_SEGMENTS", tcp_ooo_max_segments, 1, 1 << 20, "Out-of-order segments a TCP connection may hold at least; the limit grows to SO_RCVBUF / 2048 with the receive buffer, and more are dropped."),
    INT_VAR("SHUNT_TCP_SACK_MAX_RANGES", tcp_sack_max_ranges, 32, 1 << 20, "SACKed ranges a sender remembers per connection in loss recovery (8 bytes each, allocated on demand and freed when recovery ends)."),
    INT_VAR("SHUNT_TCP_MEM_MAX", tcp_mem_max, 1 << 20, int64_t(1) << 40, "Memory all TCP connections of a stack may hold (bytes); beyond it data is dropped and new connections refused."),
    INT_VAR("SHUNT_MLX5_SQ_SIZE", mlx5_sq_size, 64, 32'768, "mlx5 send queue size in 64-byte WQE basic blocks (rounded up to a power of two)."),
    INT_VAR("SHUNT_MLX5_RQ_SIZE", mlx5_rq_size, 16, 32'768, "mlx5 receive buffers kept posted (rounded up to a power of two); taken from the packet buffer pool."),
    INT_VAR("SHUNT_MLX5_INLINE", mlx5_inline, 0, 880, "mlx5: frames up to this many bytes are copied into the send WQE; longer ones are sent by a data segment the NIC DMA-reads."),
    INT_VAR("SHUNT_MLX5_TX_SIGNAL_EVERY", mlx5_tx_signal_every, 1, 256, "mlx5: request a send completion every N WQEs; unsignalled sends are freed by the next completion's wqe_counter."),
    INT_VAR("SHUNT_MLX5_BLUEFLAME", mlx5_blueflame, 0, 1, "mlx5: 1 copies small WQEs into the BlueFlame register with the doorbell, so the NIC need not fetch them."),
    INT_VAR("SHUNT_NIC_DOORBELL_NS", nic_doorbell_ns, 0, 1'000'000, "Simulated NIC: time to decode a doorbell and schedule its send queue once the MMIO write arrives (ns)."),
    INT_VAR("SHUNT_NIC_PCIE_LATENCY_NS", nic_pcie_latency_ns, 0, 1'000'000, "Simulated NIC: one-way PCIe latency of a posted write (doorbell, payload DMA write, CQE write) (ns)."),
    INT_VAR("SHUNT_NIC_PCIE_GBPS", nic_pcie_gbps, 1, 10'000, "Simulated NIC: PCIe bandwidth per direction for DMA payload (Gbit/s)."),
    INT_VAR("SHUNT_NIC_WQE_FETCH_NS", nic_wqe_fetch_ns, 0, 1'000'000, "Simulated NIC: DMA read of one 64-byte WQE basic block, request to data (ns)."),
    INT_VAR("SHUNT_NIC_DMA_READ_NS", nic_dma_read_ns, 0, 1'000'000, "Simulated NIC: latency of a payload DMA read before its bytes stream at the PCIe bandwidth (ns)."),
    INT_VAR("SHUNT_NIC_PIPELINE_NS", nic_pipeline_ns, 0, 1'000'000, "Simulated NIC: processing per frame in each direction (parsing, checksums, steering) (ns)."),
    INT_VAR("SHUNT_NIC_CQE_WRITE_NS", nic_cqe_write_ns, 0, 1'000'000, "Simulated NIC: time until a CQE is visible in host memory once its work is done (ns)."),
    INT_VAR("SHUNT_NIC_LINK_GBPS", nic_link_gbps, 1, 800, "Simulated NIC: wire rate of a port that does not set its own, such as the shared-memory cable (Gbit/s)."),
    INT_VAR("SHUNT_NIC_CQ_MOD_COUNT", nic_cq_mod_count, 1, 65'535, "Simulated NIC: completion event moderation, CQEs per event (cq_max_count)."),
    INT_VAR("SHUNT_NIC_CQ_MOD_US", nic_cq_mod_us, 0, 4'095, "Simulated NIC: completion event moderation period (cq_period, us)."),
    INT_VAR("SHUNT_NIC_TIMELINES", nic_timelines, 0, 1 << 20, "Simulated NIC: per-packet timelines kept for reports (the most recent ones)."),
};
#undef INT_VAR
#undef STR_VAR
#undef CHOICE_VAR

bool choice_ok(const char* choices, std::string_view v) {
  std::string_view c(choices);
  while (!c.empty()) {
    size_t bar = c.find('|');
    if (c.substr(0, bar) == v) return true;
    if (bar == std::string_view::npos) break;
    c.remove_prefix(bar + 1);
  }
  return false;
}

std::optional<std::string> set_var(Config& c, const ConfigVar& v, const std::string& value) {
  switch (v.kind) {
    case K::kInt: {
      errno = 0;
      char* end = nullptr;
      long long n = std::strtoll(value.c_str(), &end, 10);
      bool bad = value.empty() || errno != 0 || *end != '\0' || n < v.min || n > v.max;
      if (bad) {
        return std::string(v.name) + "=" + value + ": expected an integer in [" +
               std::to_string(v.min) + ", " + std::to_string(v.max) + "]";
      }
      c.*(v.int_field) = n;
      return std::nullopt;
    }
    case K::kChoice:
      if (!choice_ok(v.choices, value)) {
        return std::string(v.name) + "=" + value + ": expected one of " + v.choices;
      }
      c.*(v.str_field) = value;
      return std::nullopt;
    case K::kString:
      if (value.size() > 4096) return std::string(v.name) + ": longer than 4096 characters";
      c.*(v.str_field) = value;
      return std::nullopt;
  }
  return std::nullopt;
}
const ConfigVar* find_var(std::string_view name) {
  for (const auto& v : kVars) {
    if (name == v.name) return &v;
  }
  return nullptr;
}

// SHUNT_PROFILE: defaults a VMA/Onload user would expect (docs/config.md, Profiles). latency:
// blocking calls spin for a second, every send signalled soon, no completion moderation,
// BlueFlame and a larger inline size (no WQE or payload fetch for small messages). throughput:
// short spin, then sleep; sends signalled in batches; completions moderated; a lazier progress
// thread (fewer lock hand-overs).
const ProfileDefault kProfileDefaults[] = {
    {"latency", "SHUNT_SPIN_US", "1000000"},
    {"latency", "SHUNT_PROGRESS_US", "100"},
    {"latency", "SHUNT_MLX5_TX_SIGNAL_EVERY", "4"},
    {"latency", "SHUNT_MLX5_INLINE", "512"},
    {"latency", "SHUNT_MLX5_BLUEFLAME", "1"},
    {"latency", "SHUNT_NIC_CQ_MOD_COUNT", "1"},
    {"latency", "SHUNT_NIC_CQ_MOD_US", "0"},
    {"throughput", "SHUNT_SPIN_US", "20"},
    {"throughput", "SHUNT_PROGRESS_US", "1000"},
    {"throughput", "SHUNT_MLX5_TX_SIGNAL_EVERY", "64"},
    {"throughput", "SHUNT_MLX5_INLINE", "128"},
    {"throughput", "SHUNT_MLX5_BLUEFLAME", "0"},
    {"throughput", "SHUNT_NIC_CQ_MOD_COUNT", "64"},
    {"throughput", "SHUNT_NIC_CQ_MOD_US", "32"},
};

// One explicitly set variable: where it came from ("FILE:LINE: " or "" for the environment).
struct Explicit {
  const ConfigVar* var;
  std::string value;
  std::string origin;
};

constexpr size_t kConfigFileMax = 1 << 20;
constexpr size_t kConfigLineMax = 8192;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// SHUNT_CONFIG: lines NAME=value; blank lines and lines starting with # are skipped, as is a
// '#' after blanks and what follows it; "export " before the name and quotes around the value
// are accepted (the file can be sourced by a shell too). Each bad line is one error naming
// FILE:LINE.
void read_config_file(const std::string& path, std::vector<Explicit>& out, std::vector<std::string>& errors) {
  std::FILE* f = std::fopen(path.c_str(), "re");
  if (!f) {
    errors.push_back("SHUNT_CONFIG=" + path + ": cannot read: " + std::strerror(errno));
    return;
  }
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0 && text.size() <= kConfigFileMax) text.append(buf, n);
  const bool read_error = std::ferror(f);
  std::fclose(f);
  if (read_error) {
    errors.push_back("SHUNT_CONFIG=" + path + ": cannot read: " + std::strerror(errno));
    return;
  }
  if (text.size() > kConfigFileMax) {
    errors.push_back("SHUNT_CONFIG=" + path + ": larger than " + std::to_string(kConfigFileMax) + " bytes");
    return;
  }
  std::string_view rest(text);
  for (size_t line_no = 1; !rest.empty(); ++line_no) {
    const size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
    const std::string where = path + ":" + std::to_string(line_no) + ": ";
    if (line.size() > kConfigLineMax) {
      errors.push_back(where + "line longer than " + std::to_string(kConfigLineMax) + " characters");
      continue;
    }
    if (line.find('\0') != std::string_view::npos) {
      errors.push_back(where + "a NUL byte");
      continue;
    }
    for (size_t i = 0; i < line.size(); ++i) {
      if (line[i] == '#' && (i == 0 || line[i - 1] == ' ' || line[i - 1] == '\t')) {
        line = line.substr(0, i);
        break;
      }
    }
    line = trim(line);
    if (line.empty()) continue;
    if (line.rfind("export ", 0) == 0) line = trim(line.substr(7));
    const size_t eq = line.find('=');
    if (eq == std::string_view::npos) {
      errors.push_back(where + "expected NAME=value, got '" + std::string(line) + "'");
      continue;
    }
    const std::string_view name = trim(line.substr(0, eq));
    std::string_view value = trim(line.substr(eq + 1));
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') && value.back() == value.front()) {
      value = value.substr(1, value.size() - 2);
    }
    const ConfigVar* v = find_var(name);
    if (!v) {
      errors.push_back(where + std::string(name) + ": no such variable (see `shunt config`)");
      continue;
    }
    if (v->str_field == &Config::config_file) {
      errors.push_back(where + "SHUNT_CONFIG cannot be set in a configuration file");
      continue;
    }
    Config scratch;  // checked here so that errors come in line order
    if (auto err = set_var(scratch, *v, std::string(value))) {
      errors.push_back(where + *err);
      continue;
    }
    out.push_back(Explicit{v, std::string(value), where});
  }
}
}  // namespace

std::span<const ConfigVar> config_vars() { return kVars; }

std::span<const ProfileDefault> profile_defaults() { return kProfileDefaults; }

ConfigResult load_config(const EnvLookup& lookup) {
  ConfigResult r;
  auto get = [&](const char* name) { return lookup ? lookup(name) : std::getenv(name); };
  // Explicit values in the order they apply: the file's, then the environment's (which wins).
  std::vector<Explicit> set;
  if (const char* file = get("SHUNT_CONFIG"); file && *file) {
    if (auto err = set_var(r.config, *find_var("SHUNT_CONFIG"), file)) {
      r.errors.push_back(*err);
    } else {
      read_config_file(file, set, r.errors);
    }
  }
  for (const auto& v : kVars) {
    if (std::string_view(v.name) == "SHUNT_CONFIG") continue;
    if (const char* s = get(v.name)) set.push_back(Explicit{&v, s, ""});
  }
  // The profile (the last valid SHUNT_PROFILE) sets defaults first; explicit values win.
  std::string profile = "default";
  for (const auto& e : set) {
    if (e.var->str_field == &Config::profile && choice_ok(e.var->choices, e.value)) profile = e.value;
  }
  for (const auto& d : kProfileDefaults) {
    if (profile == d.profile) set_var(r.config, *find_var(d.name), d.value);
  }
  for (const auto& e : set) {
    if (auto err = set_var(r.config, *e.var, e.value)) r.errors.push_back(e.origin + *err);
  }
  return r;
}

std::optional<std::string> config_set(Config& c, const std::string& name, const std::string& value) {
  for (const auto& v : kVars) {
    if (name == v.name) return set_var(c, v, value);
  }
  return name + ": no such variable (see `shunt config`)";
}

std::string config_get(const Config& c, const ConfigVar& v) {
  if (v.kind == K::kInt) return std::to_string(c.*(v.int_field));
  return c.*(v.str_field);
}

std::string profile_markdown() {
  std::string out = "| Variable | `default` | `latency` | `throughput` |\n|---|---|---|---|\n";
  std::vector<const char*> names;
  for (const auto& d : kProfileDefaults) {
    bool seen = false;
    for (const char* n : names) seen = seen || std::string_view(n) == d.name;
    if (!seen) names.push_back(d.name);
  }
  Config def;
  for (const char* n : names) {
    std::string row = std::string("| `") + n + "` | " + config_get(def, *find_var(n));
    for (const char* p : {"latency", "throughput"}) {
      std::string value = "(default)";
      for (const auto& d : kProfileDefaults) {
        if (std::string_view(d.profile) == p && std::string_view(d.name) == n) value = d.value;
      }
      row += " | " + value;
    }
    out += row + " |\n";
  }
  return out;
}

std::string config_markdown() {
  Config d;
  std::string out = "| Variable | Default | Accepted | Meaning |\n|---|---|---|---|\n";
  for (const auto& v : kVars) {
    std::string range;
    if (v.kind == K::kInt) {
      range = "integer " + std::to_string(v.min) + " .. " + (v.max == kMax ? std::string("2^63-1") : std::to_string(v.max));
    } else if (v.kind == K::kChoice) {
      range = v.choices;
      for (auto& ch : range) {
        if (ch == '|') ch = ',';
      }
    } else {
      range = "text";
    }
    std::string def = config_get(d, v);
    out += std::string("| `") + v.name + "` | " + (def.empty() ? "(unset)" : "`" + def + "`") + " | " + range + " | " + v.help + " |\n";
  }
  return out;
}

}  // namespace shunt
