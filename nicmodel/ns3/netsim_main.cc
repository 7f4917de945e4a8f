// shunt-netsim (also `shunt netsim`): an ns-3 topology in real time whose hosts are real
// processes (docs/netsim.md). For each host it listens on DIR/hostI.sock (AF_UNIX,
// SOCK_SEQPACKET, one Ethernet frame per message); a process attaches with
// SHUNT_DEVICE=unix:path=DIR/hostI.sock. Once every host is connected, each accepted socket
// becomes an ns-3 FdNetDevice on its own node, bridged (BridgeNetDevice) with that node's port on
// the simulated network -- the classic ns-3 emulation pattern -- and the simulation runs under
// ns-3's RealtimeSimulatorImpl until --duration passes, SIGINT/SIGTERM, or every host has left.
//
// Topologies: two-hosts (one full-duplex Ethernet cable, EthLink, between the two hosts' nodes)
// and star (each host on its own cable to a switch node that bridges them). Rate and delay apply
// to every cable; --loss drops frames at the receiver of the cable that leads to a host (a
// RateErrorModel on each host node's port), so every frame meets it once on its way.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <ns3/boolean.h>
#include <ns3/bridge-helper.h>
#include <ns3/data-rate.h>
#include <ns3/double.h>
#include <ns3/enum.h>
#include <ns3/error-model.h>
#include <ns3/fd-net-device-helper.h>
#include <ns3/fd-net-device.h>
#include <ns3/fd-reader.h>
#include <ns3/global-value.h>
#include <ns3/mac48-address.h>
#include <ns3/net-device-container.h>
#include <ns3/node-container.h>
#include <ns3/nstime.h>
#include <ns3/queue-size.h>
#include <ns3/rng-seed-manager.h>
#include <ns3/simulator.h>
#include <ns3/string.h>
#include <ns3/uinteger.h>

#include "nicmodel/ns3/eth_link.h"

namespace nicmodel {
namespace {

constexpr int kUsageError = 2;
constexpr uint32_t kMtu = 1500;
// Ethernet header plus one 802.1Q tag: the largest frame a host may send (no FCS on the socket).
constexpr uint32_t kMaxFrame = kMtu + 14 + 4;
constexpr uint32_t kEthHeader = 14;
constexpr int kSocketBuffer = 4 << 20;  // capped by net.core.{w,r}mem_max
constexpr int64_t kStopCheckMs = 10;    // how often the simulation looks at signals and hosts

volatile sig_atomic_t g_signal = 0;
void on_signal(int sig) { g_signal = sig; }

void usage(FILE* out) {
  std::fprintf(out,
               "usage: shunt netsim --dir DIR [options]   (or shunt-netsim --dir DIR [options])\n"
               "\n"
               "Runs an ns-3 topology in real time whose hosts are real processes. Host I attaches\n"
               "by connecting to DIR/hostI.sock: SHUNT_DEVICE=unix:path=DIR/hostI.sock (docs/netsim.md).\n"
               "The simulation starts once every host is connected.\n"
               "\n"
               "options:\n"
               "  --dir DIR            where the host sockets are created (made if missing)\n"
               "  --hosts N            real hosts (default 2; two-hosts takes exactly 2)\n"
               "  --topology T         two-hosts: both hosts on one simulated Ethernet cable;\n"
               "                       star: each host on its own cable to a simulated switch\n"
               "                       (default two-hosts)\n"
               "  --rate RATE          data rate of every simulated link (default 1Gbps)\n"
               "  --delay TIME         one-way delay of every link: N[ns|us|ms|s] (default 50us)\n"
               "  --loss P             probability that a frame is lost on its way to a host,\n"
               "                       0..1 (ns-3 RateErrorModel on receive; default 0)\n"
               "  --queue N            transmit queue of each simulated port, in frames (default 100)\n"
               "  --pcap PREFIX        pcap per device: PREFIX-hostI.pcap (what host I sent and\n"
               "                       received) and PREFIX-NODE-DEV.pcap for every link port\n"
               "  --duration SECONDS   simulated (= wall) time to run, 0 = until SIGINT/SIGTERM\n"
               "                       (default 0); the run also ends once every host has left\n"
               "  --wait SECONDS       how long to wait for every host to connect (default 30)\n"
               "  --seed N             seed of ns-3's random streams (loss; default 1)\n"
               "  --help               this text\n"
               "\n"
               "Exit status: 0 normal end, 1 failure (a host never came, a socket error), 2 bad options.\n");
}

int usage_error(const std::string& msg) {
  std::fprintf(stderr, "shunt-netsim: %s (try --help)\n", msg.c_str());
  return kUsageError;
}

bool parse_double(const std::string& text, double lo, double hi, double& out) {
  errno = 0;
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (text.empty() || errno != 0 || *end != '\0' || !std::isfinite(v) || v < lo || v > hi) return false;
  out = v;
  return true;
}

bool parse_uint(const std::string& text, uint64_t lo, uint64_t hi, uint64_t& out) {
  errno = 0;
  char* end = nullptr;
  if (text.empty() || text[0] == '-') return false;
  unsigned long long v = std::strtoull(text.c_str(), &end, 10);
  if (errno != 0 || *end != '\0' || v < lo || v > hi) return false;
  out = v;
  return true;
}

// N[ns|us|ms|s] (no unit: seconds) into nanoseconds; at most an hour.
bool parse_delay(const std::string& text, int64_t& out_ns) {
  size_t unit_at = text.find_first_not_of("0123456789.");
  std::string number = text.substr(0, unit_at), unit = unit_at == std::string::npos ? "s" : text.substr(unit_at);
  double scale;
  if (unit == "ns") {
    scale = 1;
  } else if (unit == "us") {
    scale = 1e3;
  } else if (unit == "ms") {
    scale = 1e6;
  } else if (unit == "s") {
    scale = 1e9;
  } else {
    return false;
  }
  double v;
  if (!parse_double(number, 0, 3600e9 / scale, v)) return false;
  out_ns = int64_t(std::llround(v * scale));
  return true;
}

struct Options {
  std::string dir;
  uint64_t hosts = 2;
  bool hosts_given = false;
  std::string topology = "two-hosts";
  std::string rate_text = "1Gbps";
  ns3::DataRate rate{"1Gbps"};
  std::string delay_text = "50us";
  int64_t delay_ns = 50'000;
  double loss = 0;
  uint64_t queue = 100;
  std::string pcap;
  double duration = 0;
  double wait = 30;
  uint64_t seed = 1;
};

// Parses argv; returns -1 to go on, else the exit status (help printed, or a usage error).
int parse_options(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    std::string opt = argv[i], value;
    if (opt == "--help" || opt == "-h") {
      usage(stdout);
      return 0;
    }
    size_t eq = opt.find('=');
    bool inline_value = opt.rfind("--", 0) == 0 && eq != std::string::npos;
    if (inline_value) {
      value = opt.substr(eq + 1);
      opt = opt.substr(0, eq);
    }
    static const char* const kOptions[] = {"--dir",  "--hosts", "--topology", "--rate",     "--delay", "--loss",
                                           "--queue", "--pcap", "--duration", "--wait", "--seed"};
    bool known = false;
    for (const char* k : kOptions) known = known || opt == k;
    if (!known) return usage_error("unknown option '" + std::string(argv[i]) + "'");
    if (!inline_value) {
      if (i + 1 >= argc) return usage_error(opt + " needs a value");
      value = argv[++i];
    }
    if (opt == "--dir") {
      if (value.empty()) return usage_error("--dir needs a directory");
      o.dir = value;
    } else if (opt == "--hosts") {
      if (!parse_uint(value, 1, 64, o.hosts)) return usage_error("--hosts " + value + ": expected an integer in [1, 64]");
      o.hosts_given = true;
    } else if (opt == "--topology") {
      if (value != "two-hosts" && value != "star")
        return usage_error("--topology " + value + ": expected two-hosts or star");
      o.topology = value;
    } else if (opt == "--rate") {
      ns3::DataRateValue v;
      if (!v.DeserializeFromString(value, ns3::MakeDataRateChecker()) || v.Get().GetBitRate() == 0)
        return usage_error("--rate " + value + ": expected a data rate such as 1Gbps, 100Mbps, 10Gb/s");
      o.rate = v.Get();
      o.rate_text = value;
    } else if (opt == "--delay") {
      if (!parse_delay(value, o.delay_ns))
        return usage_error("--delay " + value + ": expected a time such as 50us, 1ms, 200ns (at most 1 hour)");
      o.delay_text = value;
    } else if (opt == "--loss") {
      if (!parse_double(value, 0, 1, o.loss)) return usage_error("--loss " + value + ": expected a number in [0, 1]");
    } else if (opt == "--queue") {
      if (!parse_uint(value, 1, 1'000'000, o.queue))
        return usage_error("--queue " + value + ": expected an integer in [1, 1000000]");
    } else if (opt == "--pcap") {
      if (value.empty()) return usage_error("--pcap needs a file name prefix");
      o.pcap = value;
    } else if (opt == "--duration") {
      if (!parse_double(value, 0, 1e7, o.duration))
        return usage_error("--duration " + value + ": expected seconds in [0, 1e7]");
    } else if (opt == "--wait") {
      if (!parse_double(value, 0.001, 1e7, o.wait))
        return usage_error("--wait " + value + ": expected seconds in [0.001, 1e7]");
    } else if (opt == "--seed") {
      if (!parse_uint(value, 1, UINT32_MAX, o.seed))
        return usage_error("--seed " + value + ": expected an integer in [1, 4294967295]");
    }
  }
  if (o.dir.empty()) return usage_error("--dir DIR is required (where the host sockets go)");
  if (o.topology == "two-hosts" && o.hosts != 2) {
    return usage_error("--topology two-hosts takes exactly 2 hosts (got --hosts " + std::to_string(o.hosts) +
                       "); use --topology star for more");
  }
  return -1;
}

// ----- Per-host counters, written by the reader thread (from the host) and the simulation
// thread (to the host).
struct HostCounters {
  std::atomic<uint64_t> from_host{0};      // frames read from the host's socket
  std::atomic<uint64_t> from_host_bytes{0};
  std::atomic<uint64_t> drop_oversize{0};  // from the host, longer than kMaxFrame
  std::atomic<uint64_t> drop_runt{0};      // from the host, shorter than an Ethernet header
  uint64_t to_host = 0;                    // frames written to the host's socket
  uint64_t to_host_bytes = 0;
  uint64_t drop_to_host_full = 0;          // the host's socket was full (it does not read)
  uint64_t drop_to_host_error = 0;         // the write failed otherwise (the host left)
  uint64_t drop_queue = 0;                 // a simulated port queue on the way to the host's node overflowed
  uint64_t drop_loss = 0;                  // the error model took it on the way to the host
  std::atomic<bool> left{false};
};

// Called in the simulation thread when host `index`'s socket reached end of file.
void HostLeft(uint32_t index, HostCounters* c);

// Reads whole frames (one message each) from a host's socket in ns-3's reader thread. A frame
// too long or too short is counted and skipped (a negative length: FdReader ignores it); end
// of file or an error ends the thread and tells the simulation.
class HostFrameReader : public ns3::FdReader {
 public:
  HostFrameReader(uint32_t index, uint32_t node_id, HostCounters* counters)
      : index_(index), node_id_(node_id), counters_(counters) {}

 private:
  Data DoRead() override {
    auto* buf = static_cast<uint8_t*>(std::malloc(kMaxFrame));
    if (!buf) return Data(nullptr, -1);
    // MSG_TRUNC: the message's real length, so an oversize frame is seen, not cut.
    ssize_t len = ::recv(m_fd, buf, kMaxFrame, MSG_TRUNC);
    if (len < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) {
      std::free(buf);
      return Data(nullptr, -1);
    }
    if (len <= 0) {
      std::free(buf);
      if (!counters_->left.exchange(true)) {
        ns3::Simulator::ScheduleWithContext(node_id_, ns3::Time(0), &HostLeft, index_, counters_);
      }
      return Data(nullptr, 0);  // the thread ends
    }
    if (size_t(len) > kMaxFrame || size_t(len) < kEthHeader) {
      std::free(buf);
      (size_t(len) > kMaxFrame ? counters_->drop_oversize : counters_->drop_runt).fetch_add(1);
      return Data(nullptr, -1);
    }
    counters_->from_host.fetch_add(1, std::memory_order_relaxed);
    counters_->from_host_bytes.fetch_add(uint64_t(len), std::memory_order_relaxed);
    return Data(buf, len);
  }

  uint32_t index_;
  uint32_t node_id_;
  HostCounters* counters_;
};

// The FdNetDevice of one host: its own reader, and writes that never block the simulation (a
// host that does not read loses frames, as a NIC whose receive ring is empty would).
class HostNetDevice : public ns3::FdNetDevice {
 public:
  HostNetDevice(uint32_t index, HostCounters* counters) : index_(index), counters_(counters) {}

  ssize_t Write(uint8_t* buffer, size_t length) override {
    ssize_t put;
    do {
      put = ::send(GetFileDescriptor(), buffer, length, MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (put < 0 && errno == EINTR);
    if (put < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        ++counters_->drop_to_host_full;
      } else {
        ++counters_->drop_to_host_error;
      }
      return -1;
    }
    ++counters_->to_host;
    counters_->to_host_bytes += uint64_t(put);
    return put;
  }

 private:
  ns3::Ptr<ns3::FdReader> DoCreateFdReader() override {
    return ns3::Create<HostFrameReader>(index_, GetNode()->GetId(), counters_);
  }

  uint32_t index_;
  HostCounters* counters_;
};

struct Host {
  std::string path;
  int listen_fd = -1;
  int fd = -1;
  HostCounters counters;
};

std::vector<std::unique_ptr<Host>>* g_hosts = nullptr;

void HostLeft(uint32_t index, HostCounters*) {
  std::fprintf(stderr, "netsim: host%u disconnected at %.3f s\n", index, ns3::Simulator::Now().GetSeconds());
}

void CountDrop(uint64_t* counter, ns3::Ptr<const ns3::Packet>) { ++*counter; }

// Every kStopCheckMs: stops on a signal, or once every host has left.
void CheckStop() {
  if (g_signal) {
    std::fprintf(stderr, "netsim: %s, stopping at %.3f s\n", g_signal == SIGINT ? "SIGINT" : "SIGTERM",
                 ns3::Simulator::Now().GetSeconds());
    ns3::Simulator::Stop();
    return;
  }
  bool all_left = true;
  for (const auto& h : *g_hosts) all_left = all_left && h->counters.left.load();
  if (all_left) {
    std::fprintf(stderr, "netsim: every host has left, stopping at %.3f s\n", ns3::Simulator::Now().GetSeconds());
    ns3::Simulator::Stop();
    return;
  }
  ns3::Simulator::Schedule(ns3::MilliSeconds(kStopCheckMs), &CheckStop);
}

std::string errno_text(int err) { return std::strerror(err); }

// Makes DIR (one level) if missing; an error line or empty.
std::string prepare_dir(const std::string& dir) {
  struct stat st{};
  if (::stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) return dir + " exists and is not a directory";
    return {};
  }
  if (errno != ENOENT) return "cannot use " + dir + ": " + errno_text(errno);
  if (::mkdir(dir.c_str(), 0700) != 0) return "cannot create " + dir + ": " + errno_text(errno);
  return {};
}

// Listens on `path` (SOCK_SEQPACKET). A stale socket left by an earlier run is replaced; a live
// one (another netsim) is an error. Returns the fd, or -1 with `error` set.
int listen_at(const std::string& path, std::string& error) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    error = "socket path " + path + " is longer than " + std::to_string(sizeof addr.sun_path - 1) + " bytes";
    return -1;
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  struct stat st{};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      error = path + " exists and is not a socket";
      return -1;
    }
    int probe = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    bool live = probe >= 0 && ::connect(probe, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
    if (probe >= 0) ::close(probe);
    if (live) {
      error = path + " is in use (another netsim listens there)";
      return -1;
    }
    ::unlink(path.c_str());
  }
  int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = "cannot create a unix socket: " + errno_text(errno);
    return -1;
  }
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    error = "cannot bind " + path + ": " + errno_text(errno);
    ::close(fd);
    return -1;
  }
  if (::listen(fd, 1) != 0) {
    error = "cannot listen on " + path + ": " + errno_text(errno);
    ::close(fd);
    return -1;
  }
  return fd;
}

// Waits until every host has connected, a signal, or `wait_s`. True when all are connected.
bool accept_hosts(std::vector<std::unique_ptr<Host>>& hosts, double wait_s) {
  const auto start = std::chrono::steady_clock::now();
  size_t connected = 0;
  while (connected < hosts.size()) {
    if (g_signal) {
      std::fprintf(stderr, "netsim: interrupted with %zu of %zu hosts connected\n", connected, hosts.size());
      return false;
    }
    const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (waited >= wait_s) {
      std::string missing;
      for (size_t i = 0; i < hosts.size(); ++i)
        if (hosts[i]->fd < 0) missing += (missing.empty() ? "host" : ", host") + std::to_string(i);
      std::fprintf(stderr, "netsim: only %zu of %zu hosts connected within %g s (missing: %s)\n", connected,
                   hosts.size(), wait_s, missing.c_str());
      return false;
    }
    std::vector<pollfd> fds;
    std::vector<size_t> which;
    for (size_t i = 0; i < hosts.size(); ++i) {
      if (hosts[i]->fd >= 0) continue;
      fds.push_back(pollfd{hosts[i]->listen_fd, POLLIN, 0});
      which.push_back(i);
    }
    int timeout_ms = int(std::min(100.0, (wait_s - waited) * 1e3)) + 1;
    int r = ::poll(fds.data(), fds.size(), timeout_ms);
    if (r < 0) {
      if (errno == EINTR) continue;
      std::fprintf(stderr, "netsim: poll: %s\n", std::strerror(errno));
      return false;
    }
    for (size_t k = 0; k < fds.size(); ++k) {
      if (!(fds[k].revents & POLLIN)) continue;
      Host& h = *hosts[which[k]];
      // Blocking: ns-3's reader thread sleeps in select() then reads; writes use MSG_DONTWAIT.
      int fd = ::accept4(h.listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == EAGAIN || errno == ECONNABORTED) continue;
        std::fprintf(stderr, "netsim: accept on %s: %s\n", h.path.c_str(), std::strerror(errno));
        return false;
      }
      int size = kSocketBuffer;
      ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
      ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
      h.fd = fd;
      // One process per host: later connects are refused (the path stays until we exit).
      ::close(h.listen_fd);
      h.listen_fd = -1;
      ++connected;
      std::fprintf(stderr, "netsim: host%zu connected\n", which[k]);
    }
  }
  return true;
}

void cleanup(std::vector<std::unique_ptr<Host>>& hosts) {
  for (auto& h : hosts) {
    if (h->listen_fd >= 0) ::close(h->listen_fd);
    h->listen_fd = -1;
    // Accepted fds belong to their FdNetDevice once the simulation is built (it closes them).
    if (!h->path.empty()) ::unlink(h->path.c_str());
  }
}

int run(int argc, char** argv) {
  Options o;
  if (int rc = parse_options(argc, argv, o); rc >= 0) return rc;
  if (std::string e = prepare_dir(o.dir); !e.empty()) {
    std::fprintf(stderr, "shunt-netsim: %s\n", e.c_str());
    return 1;
  }

  struct sigaction sa{};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);

  std::vector<std::unique_ptr<Host>> hosts;
  g_hosts = &hosts;
  for (uint64_t i = 0; i < o.hosts; ++i) {
    auto h = std::make_unique<Host>();
    std::string path = o.dir + "/host" + std::to_string(i) + ".sock";
    std::string error;
    h->listen_fd = listen_at(path, error);
    if (h->listen_fd < 0) {
      std::fprintf(stderr, "shunt-netsim: %s\n", error.c_str());
      cleanup(hosts);
      return 1;
    }
    h->path = path;
    hosts.push_back(std::move(h));
  }
  std::fprintf(stderr, "netsim: waiting for %zu hosts on %s/host0.sock%s (up to %g s)\n", hosts.size(),
               o.dir.c_str(), hosts.size() > 1 ? (" .. host" + std::to_string(hosts.size() - 1) + ".sock").c_str() : "",
               o.wait);
  if (!accept_hosts(hosts, o.wait)) {
    for (auto& h : hosts)
      if (h->fd >= 0) ::close(h->fd);
    cleanup(hosts);
    return 1;
  }

  // ----- The simulation, in real time.
  ns3::GlobalValue::Bind("SimulatorImplementationType", ns3::StringValue("ns3::RealtimeSimulatorImpl"));
  ns3::RngSeedManager::SetSeed(uint32_t(o.seed));
  ns3::RngSeedManager::SetRun(1);

  ns3::NodeContainer host_nodes;
  host_nodes.Create(uint32_t(hosts.size()));
  EthLinkHelper link;
  link.SetDeviceAttribute("DataRate", ns3::DataRateValue(o.rate));
  link.SetChannelAttribute("Delay", ns3::TimeValue(ns3::NanoSeconds(o.delay_ns)));
  link.SetDeviceAttribute("Mtu", ns3::UintegerValue(kMtu));
  link.SetQueue("ns3::DropTailQueue<Packet>", "MaxSize",
                ns3::QueueSizeValue(ns3::QueueSize(ns3::QueueSizeUnit::PACKETS, uint32_t(o.queue))));

  // host_ports[i]: node i's port on the simulated network; switch_ports: the switch's (star).
  ns3::NetDeviceContainer host_ports, switch_ports, link_ports;
  ns3::NodeContainer switch_node;
  if (o.topology == "two-hosts") {
    link_ports = link.Install(host_nodes);
    host_ports = link_ports;
  } else {
    switch_node.Create(1);
    for (uint32_t i = 0; i < host_nodes.GetN(); ++i) {
      ns3::NetDeviceContainer cable = link.Install(host_nodes.Get(i), switch_node.Get(0));
      host_ports.Add(cable.Get(0));
      switch_ports.Add(cable.Get(1));
      link_ports.Add(cable);
    }
    ns3::BridgeHelper().Install(switch_node.Get(0), switch_ports);
  }

  ns3::NetDeviceContainer fd_devices;
  ns3::BridgeHelper bridge;
  for (uint32_t i = 0; i < host_nodes.GetN(); ++i) {
    Host& h = *hosts[i];
    ns3::Ptr<ns3::Node> node = host_nodes.Get(i);
    ns3::Ptr<HostNetDevice> dev = ns3::CreateObject<HostNetDevice>(i, &h.counters);
    dev->SetAddress(ns3::Mac48Address::Allocate());
    dev->SetEncapsulationMode(ns3::FdNetDevice::DIX);
    dev->SetMtu(uint16_t(kMtu));
    dev->SetFileDescriptor(h.fd);
    node->AddDevice(dev);
    h.fd = -1;  // the device closes it
    fd_devices.Add(dev);
    // The real host and the node's port on the simulated network, one Ethernet segment.
    bridge.Install(node, ns3::NetDeviceContainer(ns3::NetDeviceContainer(dev), host_ports.Get(i)));

    auto port = ns3::DynamicCast<EthLinkNetDevice>(host_ports.Get(i));
    if (o.loss > 0) {
      auto em = ns3::CreateObject<ns3::RateErrorModel>();
      em->SetAttribute("ErrorRate", ns3::DoubleValue(o.loss));
      em->SetAttribute("ErrorUnit", ns3::EnumValue(ns3::RateErrorModel::ERROR_UNIT_PACKET));
      port->SetReceiveErrorModel(em);
    }
    port->TraceConnectWithoutContext("PhyRxDrop", ns3::MakeBoundCallback(&CountDrop, &h.counters.drop_loss));
  }
  // Queue overflows on the way to host i at the switch's port i (star). On one cable (two-hosts)
  // that port is the other host's own, whose overflows count as that host's "from host" drops.
  if (o.topology == "star") {
    for (uint32_t i = 0; i < host_nodes.GetN(); ++i)
      switch_ports.Get(i)->TraceConnectWithoutContext(
          "MacTxDrop", ns3::MakeBoundCallback(&CountDrop, &hosts[i]->counters.drop_queue));
  }
  // Frames from a host that its own node's port could not queue: counted with the host's.
  std::vector<uint64_t> drop_from_host_queue(hosts.size(), 0);
  for (uint32_t i = 0; i < host_nodes.GetN(); ++i)
    host_ports.Get(i)->TraceConnectWithoutContext("MacTxDrop",
                                                  ns3::MakeBoundCallback(&CountDrop, &drop_from_host_queue[i]));

  if (!o.pcap.empty()) {
    ns3::FdNetDeviceHelper fd_helper;
    for (uint32_t i = 0; i < fd_devices.GetN(); ++i)
      fd_helper.EnablePcap(o.pcap + "-host" + std::to_string(i) + ".pcap", fd_devices.Get(i), true, true);
    link.EnablePcap(o.pcap, link_ports, true);
  }

  char loss_text[64] = "";
  if (o.loss > 0) std::snprintf(loss_text, sizeof loss_text, ", loss %g", o.loss);
  char until[96];
  if (o.duration > 0) {
    std::snprintf(until, sizeof until, ", for %g s or until every host has left", o.duration);
  } else {
    std::snprintf(until, sizeof until, ", until SIGINT/SIGTERM or every host has left");
  }
  std::fprintf(stderr, "netsim: running %zu hosts, %s, %s %s%s%s\n", hosts.size(), o.topology.c_str(),
               o.rate_text.c_str(), o.delay_text.c_str(), loss_text, until);

  ns3::Simulator::Schedule(ns3::MilliSeconds(kStopCheckMs), &CheckStop);
  if (o.duration > 0) ns3::Simulator::Stop(ns3::NanoSeconds(int64_t(std::llround(o.duration * 1e9))));
  ns3::Simulator::Run();
  const double ran = ns3::Simulator::Now().GetSeconds();

  std::fprintf(stderr, "netsim: stopped after %.3f s\n", ran);
  uint64_t total_drops = 0;
  for (size_t i = 0; i < hosts.size(); ++i) {
    const HostCounters& c = hosts[i]->counters;
    const uint64_t drops = c.drop_oversize + c.drop_runt + drop_from_host_queue[i] + c.drop_queue + c.drop_loss +
                           c.drop_to_host_full + c.drop_to_host_error;
    total_drops += drops;
    std::fprintf(stderr,
                 "netsim: host%zu: from host %" PRIu64 " frames (%" PRIu64 " bytes), to host %" PRIu64
                 " frames (%" PRIu64 " bytes); drops: from host oversize %" PRIu64 ", runt %" PRIu64
                 ", queue %" PRIu64 "; to host queue %" PRIu64 ", loss %" PRIu64 ", socket full %" PRIu64
                 ", socket error %" PRIu64 "\n",
                 i, c.from_host.load(), c.from_host_bytes.load(), c.to_host, c.to_host_bytes, c.drop_oversize.load(),
                 c.drop_runt.load(), drop_from_host_queue[i], c.drop_queue, c.drop_loss, c.drop_to_host_full,
                 c.drop_to_host_error);
  }
  std::fprintf(stderr, "netsim: %" PRIu64 " frames dropped in all\n", total_drops);
  // Stops the reader threads (joined) and closes the hosts' sockets.
  ns3::Simulator::Destroy();
  cleanup(hosts);
  g_hosts = nullptr;
  return 0;
}

}  // namespace
}  // namespace nicmodel

int main(int argc, char** argv) { return nicmodel::run(argc, argv); }
