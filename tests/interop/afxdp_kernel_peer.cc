// AF_XDP with the Linux kernel as the peer, over a veth pair (label interop).
//
// The test makes two network namespaces of its own and a veth pair between them: the stack's end
// (namespace shunt-xdps-PID) and the kernel's end (shunt-xdpk-PID, 10.84.N.1/24, tx checksum
// offload and TSO/GSO off: an AF_XDP receiver gets frames as they are on the wire, and a veth
// would otherwise hand over partial checksums and 64 KB GSO frames). This process enters the
// stack's namespace and runs a Shunt Stack (10.84.N.2/24) on an AfxdpDevice, in real time
// (MonotonicClock, a loop of Stack::poll() and poll(2) on the XSK fd), first in native mode, then
// in generic mode. In each mode:
// - the kernel's `ping` gets replies from the stack;
// - a kernel UDP socket and a Shunt UDP socket exchange datagrams, echoed;
// - TCP bulk, the stack as client and as server: each side sends AFXDP_INTEROP_MB MB (default 50)
//   of a seeded pattern, checked byte by byte and hashed by the receiver; goodput is printed;
// - closing the device detaches the XDP program from the interface.
// And: a process killed with SIGKILL while it holds the device leaves no program attached; a
// second open of the same queue, an interface that is down, a queue that does not exist, and a
// locked-memory limit too small for the UMEM each fail with one clear line.
//
// Where the test cannot run -- not root, no `ip`/`ping`/`ethtool`, no namespaces, no veth, no
// AF_XDP -- it says why and exits 77 (CTest: skipped). Every wait is bounded; namespaces are
// removed on every path (and those of killed runs by the next run).
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "stack/core/clock.h"
#include "stack/core/config.h"
#include "stack/driver/afxdp/afxdp.h"
#include "stack/net/stack.h"
#include "stack/socket/socket_api.h"
#include "tests/support/child_process.h"
#include "tests/support/kernel_report.h"

namespace shunt {
namespace {

using namespace test;

constexpr Nanos kWait = 10 * kSecond;  // every short wait for the kernel is bounded by this
constexpr const char* kStackNsPrefix = "shunt-xdps-";
constexpr const char* kKernelNsPrefix = "shunt-xdpk-";
constexpr size_t kChunk = 64 * 1024;  // bytes per send/recv call on either side

uint64_t transfer_bytes() {
  if (const char* mb = std::getenv("AFXDP_INTEROP_MB")) {
    uint64_t n = std::strtoull(mb, nullptr, 10);
    if (n > 0) return n * 1000 * 1000;
  }
  return 50ull * 1000 * 1000;
}

// 120 s per 100 MB, for one direction (at least 30 s).
Nanos transfer_limit(uint64_t bytes) {
  return std::max<Nanos>(30 * kSecond, Nanos(double(bytes) / 100e6 * 120.0 * double(kSecond)));
}

// The byte pattern, the running hash and rates: tests/support/kernel_report.h.

// ----- The environment: two namespaces and a veth pair (once), a stack per mode.

struct Skip {
  std::string reason;
};

// The namespaces and the veth, for the whole run. This process lives in the stack's namespace
// from setup to teardown.
class Veth {
 public:
  Veth() {
    try {
      setup();
    } catch (const Skip& s) {
      teardown();
      std::cout << "SKIPPED: " << s.reason << std::endl;
      std::exit(77);
    } catch (const std::exception& e) {
      error_ = e.what();
    }
  }
  ~Veth() { teardown(); }

  bool ready() const { return error_.empty(); }
  const std::string& error() const { return error_; }

  std::string ip, ping, stack_ns, kernel_ns, stack_if, kernel_if, kernel_v4, stack_v4;

  void must(const std::vector<std::string>& argv) {
    ChildResult r = run(argv);
    if (!r.ok()) throw std::runtime_error("`" + join(argv) + "` failed: " + r.output);
  }

 private:
  void setup() {
    if (geteuid() != 0) throw Skip{"needs root (network namespaces, veth, AF_XDP)"};
    auto ipp = find_program("ip");
    if (!ipp) throw Skip{"the `ip` command (iproute2) is not installed"};
    auto pingp = find_program("ping");
    if (!pingp) throw Skip{"`ping` (iputils-ping) is not installed"};
    auto ethtool = find_program("ethtool");
    if (!ethtool)
      throw Skip{"`ethtool` is not installed (needed to turn off the veth's tx offloads)"};
    ip = *ipp;
    ping = *pingp;
    remove_stale_namespaces(ip, kStackNsPrefix);
    remove_stale_namespaces(ip, kKernelNsPrefix);

    const unsigned pid = unsigned(getpid());
    stack_ns = kStackNsPrefix + std::to_string(pid);
    kernel_ns = kKernelNsPrefix + std::to_string(pid);
    ChildResult r = run({ip, "netns", "add", stack_ns});
    if (!r.ok()) throw Skip{"cannot create a network namespace: " + r.output};
    stack_ns_created_ = true;
    must({ip, "netns", "add", kernel_ns});
    kernel_ns_created_ = true;

    stack_if = "sxs" + std::to_string(pid % 1000000);
    kernel_if = "sxk" + std::to_string(pid % 1000000);
    r = run({ip, "-n", stack_ns, "link", "add", stack_if, "type", "veth", "peer", "name", kernel_if,
             "netns", kernel_ns});
    if (!r.ok()) throw Skip{"cannot create a veth pair: " + r.output};
    const unsigned subnet = pid % 250 + 1;
    kernel_v4 = "10.84." + std::to_string(subnet) + ".1";
    stack_v4 = "10.84." + std::to_string(subnet) + ".2";
    must({ip, "-n", kernel_ns, "link", "set", "lo", "up"});
    must({ip, "-n", kernel_ns, "addr", "add", kernel_v4 + "/24", "dev", kernel_if});
    must({ip, "-n", kernel_ns, "link", "set", kernel_if, "up"});
    must({ip, "netns", "exec", kernel_ns, *ethtool, "-K", kernel_if, "tx", "off", "tso", "off",
          "gso", "off"});
    // No IPv6 of the kernel's on the stack's end (it would send router solicitations from the
    // stack's MAC); a kernel without IPv6 has no such file, and nothing to turn off.
    must({"/bin/sh", "-c",
          ip + " netns exec " + stack_ns + " sh -c 'f=/proc/sys/net/ipv6/conf/" + stack_if +
              "/disable_ipv6; [ ! -e $f ] || echo 1 > $f'"});
    must({ip, "-n", stack_ns, "link", "set", stack_if, "up"});

    // This process into the stack's namespace: the XSK binds to an interface of its own netns.
    home_ns_ = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    const std::string path = "/run/netns/" + stack_ns;
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
      if (fd >= 0) close(fd);
      throw std::runtime_error("cannot enter " + path + ": " + std::strerror(errno));
    }
    close(fd);
    entered_ = true;
    std::cout << "veth " << stack_if << " (stack, namespace " << stack_ns << ") <-> " << kernel_if
              << " (kernel " << kernel_v4 << ", namespace " << kernel_ns << ")" << std::endl;

    // Is there AF_XDP here at all? A device in generic mode answers; it is closed at once.
    AfxdpOptions o;
    o.ifname = stack_if;
    o.mode = AfxdpMode::kGeneric;
    o.frames = 64;
    auto probe = AfxdpDevice::open(o);
    if (!probe.device && (probe.error.find("no AF_XDP") != std::string::npos ||
                          probe.error.find("cannot open an AF_XDP socket") != std::string::npos)) {
      throw Skip{probe.error};
    }
  }

  void teardown() {
    if (entered_ && home_ns_ >= 0) setns(home_ns_, CLONE_NEWNET);
    entered_ = false;
    if (home_ns_ >= 0) close(home_ns_);
    home_ns_ = -1;
    // Deleting a namespace deletes its end of the veth, and with it the other end.
    if (stack_ns_created_) run({ip, "netns", "delete", stack_ns});
    if (kernel_ns_created_) run({ip, "netns", "delete", kernel_ns});
    stack_ns_created_ = kernel_ns_created_ = false;
  }

  bool stack_ns_created_ = false, kernel_ns_created_ = false, entered_ = false;
  int home_ns_ = -1;
  std::string error_;
};

Veth* g_veth = nullptr;

struct GlobalEnv {
  GlobalEnv() { g_veth = new Veth(); }
  ~GlobalEnv() {
    delete g_veth;
    g_veth = nullptr;
  }
};

Veth& veth() {
  BOOST_REQUIRE_MESSAGE(g_veth && g_veth->ready(),
                        "setup failed: " << (g_veth ? g_veth->error() : "no environment"));
  return *g_veth;
}

// A stack on the veth through AF_XDP in one mode.
class KernelPeer {
 public:
  explicit KernelPeer(AfxdpMode mode) : v_(veth()) {
    AfxdpOptions o;
    o.ifname = v_.stack_if;
    o.mode = mode;
    auto opened = AfxdpDevice::open(o);
    if (!opened.device) {
      error_ = opened.error;
      return;
    }
    dev_ = std::move(opened.device);
    std::cout << "AF_XDP on " << o.ifname << ": " << afxdp_mode_name(dev_->mode())
              << " mode, program id " << dev_->program_id() << ", MAC " << dev_->info().mac.str()
              << ", MTU " << dev_->info().mtu << ", frame size " << dev_->frame_size() << std::endl;
    Config config;
    config.buffers = 16384;  // room for a few MB in flight and queued each way
    stack_ = std::make_unique<Stack>(*dev_, clock_, config);
    stack_->add_address(IpAddr(*Ipv4Addr::parse(v_.stack_v4)), 24);
    api_ = std::make_unique<SocketApi>(*stack_);
  }
  ~KernelPeer() { release(); }
  void release() {
    api_.reset();
    stack_.reset();
    dev_.reset();
  }

  bool ready() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  Veth& v() { return v_; }
  Stack& stack() { return *stack_; }
  SocketApi& api() { return *api_; }
  AfxdpDevice& dev() { return *dev_; }
  Nanos now() const { return clock_.now(); }
  const std::string& kernel_v4() const { return v_.kernel_v4; }
  const std::string& stack_v4() const { return v_.stack_v4; }

  // Drives the stack until pred() holds or `limit` passes; false on timeout. pred() does the
  // socket calls and bumps `busy` when it made progress; then the loop does not sleep.
  uint64_t busy = 0;
  bool pump_until(const std::function<bool()>& pred, Nanos limit = kWait) {
    const Nanos end = clock_.now() + limit;
    for (;;) {
      const uint64_t before = busy;
      Nanos next = stack_->poll();
      if (pred()) return true;
      Nanos now = clock_.now();
      if (now >= end) return false;
      if (busy != before) continue;
      next = std::min(next, stack_->timers().next_deadline());
      Nanos wait = std::min({next == kNever ? 10 * kMilli : next - now, 10 * kMilli, end - now});
      if (wait <= 0) continue;
      pollfd p{dev_->wait_fd(), POLLIN, 0};
      timespec ts{time_t(wait / kSecond), long(wait % kSecond)};
      ::ppoll(&p, 1, &ts, nullptr);
    }
  }

  // Runs a command in the kernel's namespace while driving the stack; kills it after `limit`.
  ChildResult run_in_kernel_ns(std::vector<std::string> argv, Nanos limit = 2 * kWait) {
    std::vector<std::string> full = {v_.ip, "netns", "exec", v_.kernel_ns};
    full.insert(full.end(), argv.begin(), argv.end());
    std::cout << "+ " << join(full) << std::endl;
    Child c(full);
    if (!c.started()) return {};
    if (!pump_until([&] { return c.poll_exit(); }, limit)) c.kill_now();
    ChildResult r = c.result();
    std::cout << r.output << std::flush;
    return r;
  }

  // Forks a child that enters the kernel's namespace (setns) and runs `body` there.
  std::unique_ptr<Child> fork_in_ns(const std::function<int()>& body, unsigned alarm_s = 30) {
    const std::string path = "/run/netns/" + v_.kernel_ns;
    return std::make_unique<Child>(
        [path, body]() -> int {
          int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
          if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
            std::printf("kernel: cannot enter %s: %s\n", path.c_str(), std::strerror(errno));
            return 90;
          }
          close(fd);
          return body();
        },
        alarm_s);
  }

 private:
  Veth& v_;
  MonotonicClock clock_;
  std::unique_ptr<AfxdpDevice> dev_;
  std::unique_ptr<Stack> stack_;
  std::unique_ptr<SocketApi> api_;
  std::string error_;
};

// The stack of the mode under test; one at a time (the interface takes one program).
std::unique_ptr<KernelPeer> g_peer;
AfxdpMode g_peer_mode = AfxdpMode::kAuto;

KernelPeer& peer(AfxdpMode mode) {
  if (!g_peer || g_peer_mode != mode) {
    g_peer.reset();
    g_peer = std::make_unique<KernelPeer>(mode);
    g_peer_mode = mode;
  }
  BOOST_REQUIRE_MESSAGE(g_peer->ready(), "cannot open AF_XDP in " << afxdp_mode_name(mode)
                                                                  << " mode: " << g_peer->error());
  return *g_peer;
}

// Addresses, the kernel child's report, pipes: tests/support/kernel_report.h.

// Connects (client) or listens and accepts one connection (server); the listener's readiness
// goes to `ready_fd`. Returns the connected fd or -1 (with a line saying why).
int kernel_open(bool server, const std::string& kernel_ip, uint16_t kernel_port,
                const std::string& stack_ip, uint16_t stack_port, int ready_fd) {
  if (server) {
    socklen_t klen;
    SockAddr k = make_addr(kernel_ip, kernel_port, &klen);
    int l = socket(k.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(l, &k.sa, klen) != 0 || listen(l, 4) != 0) {
      std::printf("kernel: bind/listen %s: %s\n", addr_str(k).c_str(), std::strerror(errno));
      return -1;
    }
    (void)!write(ready_fd, "r", 1);
    pollfd p{l, POLLIN, 0};
    if (::poll(&p, 1, int(kWait / kMilli)) != 1) {
      std::printf("kernel: no connection from the stack within 10 s\n");
      return -1;
    }
    SockAddr from{};
    socklen_t flen = sizeof from;
    int fd = accept4(l, &from.sa, &flen, SOCK_CLOEXEC);
    close(l);
    if (fd < 0) {
      std::printf("kernel: accept: %s\n", std::strerror(errno));
      return -1;
    }
    std::printf("kernel: accepted %s\n", addr_str(from).c_str());
    return fd;
  }
  socklen_t slen;
  SockAddr s = make_addr(stack_ip, stack_port, &slen);
  int fd = socket(s.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  set_timeouts(fd, 10);  // bounds connect() too
  (void)!write(ready_fd, "r", 1);
  if (connect(fd, &s.sa, slen) != 0) {
    std::printf("kernel: connect %s: %s\n", addr_str(s).c_str(), std::strerror(errno));
    close(fd);
    return -1;
  }
  std::printf("kernel: connected to %s\n", addr_str(s).c_str());
  return fd;
}

// Reads to EOF, checking the pattern; false on an error (said in a line).
bool kernel_receive_all(int fd, uint64_t seed, KernelReport& rep) {
  StreamCheck check;
  check.seed = seed;
  std::vector<uint8_t> buf(kChunk);
  timespec first{}, last{};
  for (;;) {
    ssize_t n = recv(fd, buf.data(), buf.size(), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      std::printf("kernel: recv after %" PRIu64 " bytes: %s\n", check.bytes, std::strerror(errno));
      rep.recv_errno = errno;
      return false;
    }
    if (n == 0) break;
    if (check.bytes == 0) first = mono_now();
    check.received(buf.data(), size_t(n));
  }
  last = mono_now();
  rep.received = check.bytes;
  rep.hash_received = check.hash;
  rep.mismatch = check.mismatch;
  rep.rx_seconds = check.bytes ? seconds_between(first, last) : 0;
  return true;
}

bool kernel_send_all(int fd, uint64_t seed, uint64_t total, KernelReport& rep) {
  StreamCheck sent;
  std::vector<uint8_t> buf(kChunk);
  const timespec first = mono_now();
  while (sent.bytes < total) {
    size_t len = size_t(std::min<uint64_t>(kChunk, total - sent.bytes));
    fill_pattern(seed, sent.bytes, buf.data(), len);
    size_t off = 0;
    while (off < len) {
      ssize_t n = send(fd, buf.data() + off, len - off, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        std::printf("kernel: send after %" PRIu64 " bytes: %s\n", sent.bytes + off,
                    std::strerror(errno));
        return false;
      }
      off += size_t(n);
    }
    sent.sent(buf.data(), len);
  }
  rep.tx_seconds = seconds_between(first, mono_now());
  rep.sent = sent.bytes;
  rep.hash_sent = sent.hash;
  return true;
}

// The bulk exchange from the kernel's side. Client: send, SHUT_WR, read to EOF. Server: read to
// EOF, send, SHUT_WR. Then close.
int kernel_bulk(bool server, const std::string& kernel_ip, uint16_t kernel_port,
                const std::string& stack_ip, uint16_t stack_port, uint64_t total, int ready_fd,
                int report_fd) {
  KernelReport rep;
  int fd = kernel_open(server, kernel_ip, kernel_port, stack_ip, stack_port, ready_fd);
  if (fd < 0) return 10;
  rep.stage = 1;
  // A transfer may legitimately pause (the stack's loop shares two cores with everything else),
  // never for a minute.
  set_timeouts(fd, 60);
  int rc = 0;
  if (server) {
    if (!kernel_receive_all(fd, kSeedClientToServer, rep)) rc = 11;
    rep.stage = 2;
    if (rc == 0 && !kernel_send_all(fd, kSeedServerToClient, total, rep)) rc = 12;
  } else {
    if (!kernel_send_all(fd, kSeedClientToServer, total, rep)) rc = 12;
    rep.stage = 2;
    if (rc == 0 && shutdown(fd, SHUT_WR) != 0) rc = 13;
    if (rc == 0 && !kernel_receive_all(fd, kSeedServerToClient, rep)) rc = 11;
  }
  if (rc == 0) {
    rep.stage = 3;
    if (server && shutdown(fd, SHUT_WR) != 0) rc = 13;
  }
  kernel_tcp_info(fd, rep);
  close(fd);
  write_report(report_fd, rep);
  return rc;
}

// ----- The stack's side of the bulk exchange: non-blocking calls, pumped.

struct StackBulk {
  SocketApi& api;
  int fd;
  bool server;
  uint64_t total;
  StreamCheck out, in;
  std::vector<uint8_t> stage = std::vector<uint8_t>(kChunk);  // pattern bytes not yet accepted
  size_t stage_off = 0, stage_len = 0;
  std::vector<uint8_t> buf = std::vector<uint8_t>(kChunk);
  bool shut = false, eof = false;
  std::string error;
  Nanos rx_first = -1, rx_eof = -1, tx_first = -1, tx_last = -1;

  StackBulk(SocketApi& a, int s, bool is_server, uint64_t bytes)
      : api(a), fd(s), server(is_server), total(bytes) {
    out.seed = server ? kSeedServerToClient : kSeedClientToServer;
    in.seed = server ? kSeedClientToServer : kSeedServerToClient;
  }
  bool sending() const { return server ? eof : true; }
  bool done() const { return !error.empty() || (shut && eof); }

  // One round of calls; bumps `busy` when something moved.
  void pump(uint64_t& busy, Nanos now) {
    while (sending() && !shut && error.empty()) {
      if (stage_off == stage_len) {
        if (out.bytes == total) {
          int r = api.shutdown(fd, SHUT_WR);
          if (r < 0) error = std::string("shutdown(SHUT_WR): ") + std::strerror(-r);
          shut = true;
          ++busy;
          break;
        }
        // out.bytes counts accepted bytes; the next stage starts there.
        stage_len = size_t(std::min<uint64_t>(kChunk, total - out.bytes));
        fill_pattern(out.seed, out.bytes, stage.data(), stage_len);
        stage_off = 0;
      }
      ssize_t n = api.send(fd, stage.data() + stage_off, stage_len - stage_off, MSG_NOSIGNAL);
      if (n == -EAGAIN) break;
      if (n <= 0) {
        error = "send after " + std::to_string(out.bytes) +
                " bytes: " + (n < 0 ? std::strerror(int(-n)) : "0");
        break;
      }
      if (tx_first < 0) tx_first = now;
      out.sent(stage.data() + stage_off, size_t(n));
      stage_off += size_t(n);
      if (stage_off == stage_len) stage_off = stage_len = 0;
      tx_last = now;
      ++busy;
    }
    while (!eof && error.empty()) {
      ssize_t n = api.recv(fd, buf.data(), buf.size(), 0);
      if (n == -EAGAIN) break;
      if (n < 0) {
        error = "recv after " + std::to_string(in.bytes) + " bytes: " + std::strerror(int(-n));
        break;
      }
      ++busy;
      if (n == 0) {
        eof = true;
        rx_eof = now;
        break;
      }
      if (rx_first < 0) rx_first = now;
      in.received(buf.data(), size_t(n));
    }
  }
};

// ----- The cases, each in one mode.

constexpr uint16_t kBasePort = 9200;

void print_counters(KernelPeer& e) {
  e.dev().refresh_kernel_stats();
  std::cout << e.dev().counters().dump();
  std::string dump = e.stack().counters().dump();
  size_t start = 0;
  while (start < dump.size()) {
    size_t end = dump.find('\n', start);
    if (end == std::string::npos) end = dump.size();
    std::string line = dump.substr(start, end - start);
    if (line.find("drop") != std::string::npos || line.find("retrans") != std::string::npos)
      std::cout << "  " << line << "\n";
    start = end + 1;
  }
  std::cout << std::flush;
}

void ping(AfxdpMode mode) {
  KernelPeer& e = peer(mode);
  ChildResult r =
      e.run_in_kernel_ns({e.v().ping, "-c", "3", "-i", "0.2", "-w", "10", e.stack_v4()});
  BOOST_CHECK_MESSAGE(r.ok(), "ping " << e.stack_v4() << " failed");
  BOOST_CHECK_MESSAGE(r.output.find("3 received") != std::string::npos,
                      "not every echo was answered");
  // A datagram that IP fragments on the way in and on the way out.
  r = e.run_in_kernel_ns(
      {e.v().ping, "-c", "2", "-i", "0.2", "-s", "4000", "-w", "10", e.stack_v4()});
  BOOST_CHECK_MESSAGE(r.output.find("2 received") != std::string::npos,
                      "fragmented echoes were not answered");
}

// The kernel echoes every datagram with "echo:" in front; the stack sends kSizes and checks.
const std::vector<size_t> kSizes = {5, 1000, 1472, 3000, 9000};
constexpr uint16_t kUdpKernelPort = 9301;
constexpr uint16_t kUdpStackPort = 9302;

int kernel_udp_echo(const std::string& kernel_ip, int ready_fd) {
  socklen_t klen;
  SockAddr k = make_addr(kernel_ip, kUdpKernelPort, &klen);
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  set_timeouts(fd, 10);
  if (bind(fd, &k.sa, klen) != 0) {
    std::printf("kernel: bind %s: %s\n", addr_str(k).c_str(), std::strerror(errno));
    return 10;
  }
  (void)!write(ready_fd, "r", 1);
  std::vector<char> buf(65536);
  for (size_t i = 0; i < kSizes.size(); ++i) {
    SockAddr from{};
    socklen_t flen = sizeof from;
    ssize_t n = recvfrom(fd, buf.data(), buf.size(), 0, &from.sa, &flen);
    if (n < 0) {
      std::printf("kernel: datagram %zu: %s\n", i, std::strerror(errno));
      return 11;
    }
    std::string echo = "echo:" + std::string(buf.data(), size_t(n));
    if (sendto(fd, echo.data(), echo.size(), 0, &from.sa, flen) != ssize_t(echo.size())) return 12;
  }
  return 0;
}

void udp_echo(AfxdpMode mode) {
  KernelPeer& e = peer(mode);
  SocketApi& api = e.api();
  int s = api.socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  BOOST_REQUIRE_GE(s, 0);
  socklen_t slen, klen;
  SockAddr local = make_addr(e.stack_v4(), kUdpStackPort, &slen);
  BOOST_REQUIRE_EQUAL(api.bind(s, &local.sa, slen), 0);
  SockAddr kernel = make_addr(e.kernel_v4(), kUdpKernelPort, &klen);
  Pipe ready;
  const std::string kernel_ip = e.kernel_v4();
  auto child = e.fork_in_ns([&] {
    ready.close_r();
    return kernel_udp_echo(kernel_ip, ready.w);
  });
  ready.close_w();
  BOOST_REQUIRE_MESSAGE(e.pump_until([&] { return ready.signalled() || child->poll_exit(); }),
                        "the kernel side did not start");
  std::string buf(65536, '\0');
  for (size_t i = 0; i < kSizes.size(); ++i) {
    BOOST_TEST_CONTEXT("datagram of " << kSizes[i] << " bytes") {
      std::string p(kSizes[i], '\0');
      for (size_t j = 0; j < p.size(); ++j) p[j] = char('a' + i + j * 7);
      BOOST_CHECK_EQUAL(api.sendto(s, p.data(), p.size(), 0, &kernel.sa, klen), ssize_t(p.size()));
      ssize_t got = -EAGAIN;
      SockAddr from{};
      const bool echoed = e.pump_until([&] {
        socklen_t flen = sizeof from;
        got = api.recvfrom(s, buf.data(), buf.size(), 0, &from.sa, &flen);
        return got != -EAGAIN;
      });
      BOOST_CHECK_MESSAGE(echoed, "no echo within 10 s");
      if (!echoed) break;
      BOOST_CHECK(std::string(buf.data(), size_t(std::max<ssize_t>(got, 0))) == "echo:" + p);
      BOOST_CHECK_EQUAL(addr_str(from), addr_str(kernel));
    }
  }
  BOOST_CHECK(e.pump_until([&] { return child->poll_exit(); }));
  ChildResult cr = child->result();
  std::cout << cr.output << std::flush;
  BOOST_CHECK_MESSAGE(cr.ok(), "the kernel side failed (exit " << cr.code() << ")");
  api.close(s);
}

// A non-blocking TCP socket of the stack's.
int accept_one(KernelPeer& e, int listener, Nanos limit, SockAddr* from) {
  int c = -EAGAIN;
  e.pump_until(
      [&] {
        socklen_t flen = sizeof *from;
        c = e.api().accept(listener, &from->sa, &flen, SOCK_NONBLOCK);
        return c != -EAGAIN;
      },
      limit);
  return c;
}

int connect_pumped(KernelPeer& e, int s, const SockAddr& to, socklen_t len) {
  int r = e.api().connect(s, &to.sa, len);
  if (r == 0) return 0;
  if (r != -EINPROGRESS) return r;
  int result = -ETIMEDOUT;
  e.pump_until([&] {
    uint32_t ev = e.api().poll_events(s);
    if (!(ev & (POLLOUT | POLLERR | POLLHUP))) return false;
    int soerr = 0;
    socklen_t l = sizeof soerr;
    e.api().getsockopt(s, SOL_SOCKET, SO_ERROR, &soerr, &l);
    result = -soerr;
    return true;
  });
  return result;
}

void bulk(AfxdpMode mode, bool stack_server, uint16_t port) {
  KernelPeer& e = peer(mode);
  SocketApi& api = e.api();
  const uint64_t total = transfer_bytes();
  const std::string kernel_ip = e.kernel_v4(), stack_ip = e.stack_v4();
  const std::string what = std::string(afxdp_mode_name(mode)) + " mode";
  const char* role = stack_server ? "stack server, kernel client" : "stack client, kernel server";

  int s = api.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  BOOST_REQUIRE_GE(s, 0);
  int listener = -1;
  if (stack_server) {
    listener = s;
    socklen_t len;
    SockAddr local = make_addr(stack_ip, port, &len);
    BOOST_REQUIRE_EQUAL(api.bind(listener, &local.sa, len), 0);
    BOOST_REQUIRE_EQUAL(api.listen(listener, 4), 0);
  }
  Pipe ready, report;
  auto child = e.fork_in_ns(
      [&] {
        ready.close_r();
        report.close_r();
        return kernel_bulk(!stack_server, kernel_ip, port, stack_ip, port, total, ready.w,
                           report.w);
      },
      unsigned(2 * transfer_limit(total) / kSecond + 60));
  ready.close_w();
  report.close_w();
  BOOST_REQUIRE_MESSAGE(e.pump_until([&] { return ready.signalled() || child->poll_exit(); }),
                        "the kernel side did not start");
  int conn = -1;
  if (stack_server) {
    SockAddr from{};
    conn = accept_one(e, listener, kWait, &from);
    BOOST_CHECK_MESSAGE(conn >= 0, "accept: " << (conn == -EAGAIN ? "no connection within 10 s"
                                                                  : std::strerror(-conn)));
  } else {
    socklen_t klen;
    SockAddr k = make_addr(kernel_ip, port, &klen);
    int r = connect_pumped(e, s, k, klen);
    BOOST_CHECK_MESSAGE(r == 0, "connect to " << addr_str(k) << ": " << std::strerror(-r));
    if (r == 0) conn = s;
  }
  if (conn >= 0) {
    StackBulk b(api, conn, stack_server, total);
    const bool finished = e.pump_until(
        [&] {
          b.pump(e.busy, e.now());
          return b.done() || child->failed();
        },
        2 * transfer_limit(total));
    BOOST_CHECK_MESSAGE(
        finished, what << " " << role << ": the transfer did not finish in time (stack sent "
                       << b.out.bytes << ", received " << b.in.bytes << " of " << total << ")");
    BOOST_CHECK_MESSAGE(b.error.empty(), "stack: " << b.error);
    BOOST_CHECK_EQUAL(b.in.bytes, total);
    BOOST_CHECK_MESSAGE(b.in.mismatch == UINT64_MAX,
                        "the stack received a wrong byte at offset " << b.in.mismatch);
    BOOST_CHECK_EQUAL(api.close(conn), 0);
    BOOST_CHECK_MESSAGE(e.pump_until([&] { return child->poll_exit(); }, 30 * kSecond),
                        "the kernel side did not exit");
    KernelReport rep;
    const bool got = read_report(report.r, rep);
    ChildResult cr = child->result();
    std::cout << cr.output << std::flush;
    BOOST_CHECK_MESSAGE(cr.ok(), "the kernel side failed (exit " << cr.code() << ")");
    BOOST_REQUIRE_MESSAGE(got, "no report from the kernel side");
    BOOST_CHECK_EQUAL(rep.received, total);
    BOOST_CHECK_MESSAGE(rep.mismatch == UINT64_MAX,
                        "the kernel received a wrong byte at offset " << rep.mismatch);
    BOOST_CHECK_MESSAGE(rep.hash_received == b.out.hash, "stack->kernel hash differs");
    BOOST_CHECK_MESSAGE(rep.hash_sent == b.in.hash, "kernel->stack hash differs");
    const double down =
        b.rx_first >= 0 && b.rx_eof > b.rx_first ? double(b.rx_eof - b.rx_first) / 1e9 : 0;
    std::cout << "THROUGHPUT AF_XDP " << what << ", " << role << ": stack->kernel "
              << rate(rep.received, rep.rx_seconds) << " (kernel's receive time); kernel->stack "
              << rate(b.in.bytes, down) << " (stack's receive time). Kernel socket: rtt "
              << rep.rtt_us << " us, total_retrans " << rep.total_retrans << std::endl;
  } else {
    child->kill_now();
    std::cout << child->result().output << std::flush;
  }
  if (listener >= 0) api.close(listener);
  print_counters(e);
}

void driver_dropped_nothing(AfxdpMode mode) {
  KernelPeer& e = peer(mode);
  e.pump_until([] { return false; }, 50 * kMilli);
  print_counters(e);
  const Counters& c = e.dev().counters();
  BOOST_CHECK_GT(c.get("afxdp.rx.frames"), 0u);
  BOOST_CHECK_GT(c.get("afxdp.tx.frames"), 0u);
  BOOST_CHECK_EQUAL(c.sum("afxdp.rx.drop."), 0u);
  BOOST_CHECK_EQUAL(c.get("afxdp.tx.drop.oversize") + c.get("afxdp.tx.drop.runt"), 0u);
  BOOST_CHECK_EQUAL(c.get("afxdp.tx.kick_error"), 0u);
  BOOST_CHECK_EQUAL(c.get("afxdp.kernel.rx_invalid_descs") + c.get("afxdp.kernel.tx_invalid_descs"),
                    0u);
}

void close_detaches_the_program(AfxdpMode mode) {
  Veth& v = veth();
  {
    KernelPeer& e = peer(mode);
    BOOST_CHECK_EQUAL(e.dev().mode() == mode, true);
    auto id = afxdp_attached_program(v.stack_if);
    BOOST_REQUIRE(id.has_value());
    BOOST_CHECK_EQUAL(*id, e.dev().program_id());
  }
  g_peer.reset();
  auto id = afxdp_attached_program(v.stack_if);
  BOOST_REQUIRE(id.has_value());
  BOOST_CHECK_MESSAGE(*id == 0, "program " << *id << " still attached after close");
}

std::string open_error(const AfxdpOptions& o) {
  auto r = AfxdpDevice::open(o);
  std::cout << "open " << o.ifname << " queue " << o.queue << " " << afxdp_mode_name(o.mode) << ": "
            << (r.device ? "ok" : r.error) << std::endl;
  return r.device ? std::string() : r.error;
}

bool contains(const std::string& s, const std::string& what) {
  return s.find(what) != std::string::npos;
}

}  // namespace

BOOST_TEST_GLOBAL_FIXTURE(GlobalEnv);

BOOST_AUTO_TEST_SUITE(native)
BOOST_AUTO_TEST_CASE(kernel_ping_gets_replies_from_the_stack) { ping(AfxdpMode::kNative); }
BOOST_AUTO_TEST_CASE(udp_datagrams_echo_through_the_kernel) { udp_echo(AfxdpMode::kNative); }
BOOST_AUTO_TEST_CASE(tcp_stack_client_bulk_both_ways_intact) {
  bulk(AfxdpMode::kNative, false, kBasePort + 0);
}
BOOST_AUTO_TEST_CASE(tcp_stack_server_bulk_both_ways_intact) {
  bulk(AfxdpMode::kNative, true, kBasePort + 1);
}
BOOST_AUTO_TEST_CASE(driver_dropped_nothing_malformed) {
  driver_dropped_nothing(AfxdpMode::kNative);
}
BOOST_AUTO_TEST_CASE(xsk_socket_is_close_on_exec) {
  // An exec'd program must not keep the queue and the UMEM after this process is gone.
  KernelPeer& e = peer(AfxdpMode::kNative);
  const int flags = fcntl(e.dev().wait_fd(), F_GETFD);
  BOOST_CHECK(flags >= 0 && (flags & FD_CLOEXEC));
}
BOOST_AUTO_TEST_CASE(close_detaches_the_xdp_program) {
  close_detaches_the_program(AfxdpMode::kNative);
}
BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(generic)
BOOST_AUTO_TEST_CASE(kernel_ping_gets_replies_from_the_stack) { ping(AfxdpMode::kGeneric); }
BOOST_AUTO_TEST_CASE(udp_datagrams_echo_through_the_kernel) { udp_echo(AfxdpMode::kGeneric); }
BOOST_AUTO_TEST_CASE(tcp_stack_client_bulk_both_ways_intact) {
  bulk(AfxdpMode::kGeneric, false, kBasePort + 2);
}
BOOST_AUTO_TEST_CASE(tcp_stack_server_bulk_both_ways_intact) {
  bulk(AfxdpMode::kGeneric, true, kBasePort + 3);
}
BOOST_AUTO_TEST_CASE(driver_dropped_nothing_malformed) {
  driver_dropped_nothing(AfxdpMode::kGeneric);
}
BOOST_AUTO_TEST_CASE(close_detaches_the_xdp_program) {
  close_detaches_the_program(AfxdpMode::kGeneric);
}
BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(lifetime_and_errors)

BOOST_AUTO_TEST_CASE(program_is_detached_when_the_holder_is_killed) {
  Veth& v = veth();
  g_peer.reset();
  Pipe opened;
  const std::string ifname = v.stack_if;
  Child holder(
      [&]() -> int {
        opened.close_r();
        AfxdpOptions o;
        o.ifname = ifname;
        auto r = AfxdpDevice::open(o);
        if (!r.device) {
          std::printf("holder: %s\n", r.error.c_str());
          return 1;
        }
        (void)!write(opened.w, "o", 1);
        for (;;) pause();  // SIGKILL ends it
      },
      30);
  opened.close_w();
  MonotonicClock clock;
  const Nanos end = clock.now() + kWait;
  bool up = false;
  while (!(up = opened.signalled()) && !holder.poll_exit() && clock.now() < end) usleep(1000);
  BOOST_REQUIRE_MESSAGE(up, "the holder did not open the device: " << holder.result().output);
  auto id = afxdp_attached_program(ifname);
  BOOST_REQUIRE(id.has_value());
  BOOST_CHECK_MESSAGE(*id != 0, "no program attached while the holder runs");
  holder.kill_now();  // SIGKILL: no destructor runs
  // The kernel releases the bpf_link with the process's last file descriptor.
  const Nanos end2 = clock.now() + kWait;
  while ((id = afxdp_attached_program(ifname)) && *id != 0 && clock.now() < end2) usleep(1000);
  BOOST_CHECK_MESSAGE(id && *id == 0,
                      "program " << (id ? *id : 0) << " still attached after SIGKILL");
  // And the interface takes a new device at once.
  AfxdpOptions o;
  o.ifname = ifname;
  BOOST_CHECK_EQUAL(open_error(o), "");
}

BOOST_AUTO_TEST_CASE(second_open_of_the_same_queue_fails_clearly) {
  Veth& v = veth();
  g_peer.reset();
  AfxdpOptions o;
  o.ifname = v.stack_if;
  auto first = AfxdpDevice::open(o);
  BOOST_REQUIRE_MESSAGE(first.device, first.error);
  const std::string e = open_error(o);
  BOOST_CHECK_MESSAGE(
      contains(e, "another AF_XDP socket uses this queue") || contains(e, "another XDP program"),
      e);
}

BOOST_AUTO_TEST_CASE(queue_that_does_not_exist_fails_clearly) {
  Veth& v = veth();
  g_peer.reset();
  AfxdpOptions o;
  o.ifname = v.stack_if;
  o.queue = 7;
  const std::string e = open_error(o);
  BOOST_CHECK_MESSAGE(contains(e, "queue=7") || contains(e, "no such queue"), e);
}

BOOST_AUTO_TEST_CASE(interface_that_is_down_fails_clearly) {
  Veth& v = veth();
  g_peer.reset();
  v.must({v.ip, "link", "set", v.stack_if, "down"});
  AfxdpOptions o;
  o.ifname = v.stack_if;
  const std::string e = open_error(o);
  v.must({v.ip, "link", "set", v.stack_if, "up"});
  BOOST_CHECK_MESSAGE(contains(e, "is down"), e);
}

BOOST_AUTO_TEST_CASE(locked_memory_limit_too_small_fails_clearly) {
  Veth& v = veth();
  g_peer.reset();
  const std::string ifname = v.stack_if;
  // A child without CAP_IPC_LOCK and with a 64 KiB RLIMIT_MEMLOCK: the 8 MiB UMEM cannot be pinned.
  Child c([&]() -> int {
    __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2]{};
    if (syscall(SYS_capget, &hdr, data) != 0) return 2;
    data[CAP_IPC_LOCK / 32].effective &= ~(1u << (CAP_IPC_LOCK % 32));
    data[CAP_IPC_LOCK / 32].permitted &= ~(1u << (CAP_IPC_LOCK % 32));
    if (syscall(SYS_capset, &hdr, data) != 0) return 3;
    rlimit rl{64 * 1024, 64 * 1024};
    if (setrlimit(RLIMIT_MEMLOCK, &rl) != 0) return 4;
    AfxdpOptions o;
    o.ifname = ifname;
    auto r = AfxdpDevice::open(o);
    std::printf("%s\n", r.device ? "opened" : r.error.c_str());
    return r.device ? 1 : 0;
  });
  wait_for(c, kWait);
  ChildResult r = c.result();
  std::cout << r.output << std::flush;
  BOOST_CHECK_MESSAGE(r.ok(), "exit " << r.code());
  BOOST_CHECK_MESSAGE(contains(r.output, "locked-memory limit"), r.output);
}

BOOST_AUTO_TEST_CASE(native_mode_on_an_interface_without_it_fails_clearly_and_auto_falls_back) {
  Veth& v = veth();
  g_peer.reset();
  // A bridge (or a dummy): Ethernet interfaces whose drivers have no native XDP.
  const std::string dummy = "sxd" + std::to_string(unsigned(getpid()) % 1000000);
  ChildResult r = run({v.ip, "link", "add", dummy, "type", "bridge"});
  if (!r.ok()) r = run({v.ip, "link", "add", dummy, "type", "dummy"});
  if (!r.ok()) {
    std::cout << "neither bridge nor dummy interfaces here, case not run: " << r.output
              << std::flush;
    return;
  }
  v.must({v.ip, "link", "set", dummy, "up"});
  AfxdpOptions o;
  o.ifname = dummy;
  o.mode = AfxdpMode::kNative;
  const std::string e = open_error(o);
  BOOST_CHECK_MESSAGE(contains(e, "no native XDP: use mode=generic or mode=auto"), e);
  o.mode = AfxdpMode::kAuto;
  auto opened = AfxdpDevice::open(o);
  BOOST_CHECK_MESSAGE(opened.device, opened.error);
  if (opened.device) BOOST_CHECK(opened.device->mode() == AfxdpMode::kGeneric);
  opened.device.reset();
  run({v.ip, "link", "del", dummy});
}

BOOST_AUTO_TEST_CASE(no_capabilities_fails_clearly) {
  Veth& v = veth();
  g_peer.reset();
  const std::string ifname = v.stack_if;
  Child c([&]() -> int {
    __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2]{};
    if (syscall(SYS_capset, &hdr, data) != 0) return 3;  // every capability dropped
    AfxdpOptions o;
    o.ifname = ifname;
    auto r = AfxdpDevice::open(o);
    std::printf("%s\n", r.device ? "opened" : r.error.c_str());
    return r.device ? 1 : 0;
  });
  wait_for(c, kWait);
  ChildResult r = c.result();
  std::cout << r.output << std::flush;
  BOOST_CHECK_MESSAGE(r.ok(), "exit " << r.code());
  BOOST_CHECK_MESSAGE(contains(r.output, "needs CAP_NET_RAW, CAP_NET_ADMIN and CAP_BPF"), r.output);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace shunt
