// TCP with the Linux kernel as the peer, through a TAP interface (label interop).
//
// As tap.kernel_peer does, the test makes a network namespace of its own, creates a TAP interface,
// moves the kernel's end into the namespace and gives it 10.83.N.1/24 and fd53:6875:6e74:N::1/64;
// this process runs a Shunt Stack on the TAP fd in real time (MonotonicClock, a busy loop of
// Stack::poll() and poll(2) on the fd bounded by the stack's next deadline) with 10.83.N.2/24 and
// fd53:6875:6e74:N::2/64. The kernel's side is a forked child that setns()es into the namespace
// and uses ordinary kernel sockets.
//
// Cases, over IPv4 and IPv6:
// - bulk transfer, the stack as client (kernel listens) and as server (kernel connects): the
//   client sends kBytes (100 MB by default) then shuts down its sending half; the server reads to
//   EOF, then sends kBytes back and shuts down; the client reads to EOF. Each byte is a seeded
//   function of its offset and direction, checked byte by byte by the receiver, and both sides
//   keep an FNV-1a hash of what they sent and received, compared at the end. Throughput is
//   printed (informative, never asserted).
// - abrupt close: the kernel closes with SO_LINGER {1, 0} (an RST) and the stack's recv() fails
//   with ECONNRESET; the stack closes with SO_LINGER {1, 0} and the kernel's recv() fails with
//   ECONNRESET.
//
// TCP_INTEROP_MB=<n> changes the transfer size (for a quick run). The namespace and the interface
// are removed on every path; a run that cannot happen (not root, no /dev/net/tun, no `ip`, no
// namespaces) says why and exits 77 (CTest: skipped). Every wait is bounded: 120 s per 100 MB per
// direction for transfers, 10 s for anything else; a child is killed when its time is up.
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <algorithm>
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
#include "stack/driver/tap/tap.h"
#include "stack/net/stack.h"
#include "stack/socket/socket_api.h"
#include "tests/support/child_process.h"
#include "tests/support/kernel_report.h"

namespace shunt {
namespace {

using namespace test;

constexpr Nanos kWait = 10 * kSecond;  // every short wait for the kernel is bounded by this
constexpr const char* kNetnsPrefix = "shunt-tcp-";
constexpr size_t kChunk = 64 * 1024;  // bytes per send/recv call on either side

uint64_t transfer_bytes() {
  if (const char* mb = std::getenv("TCP_INTEROP_MB")) {
    uint64_t n = std::strtoull(mb, nullptr, 10);
    if (n > 0) return n * 1000 * 1000;
  }
  return 100ull * 1000 * 1000;
}

// 120 s per 100 MB, for one direction (at least 30 s).
Nanos transfer_limit(uint64_t bytes) {
  return std::max<Nanos>(30 * kSecond, Nanos(double(bytes) / 100e6 * 120.0 * double(kSecond)));
}

// The byte pattern, the running hash and rates: tests/support/kernel_report.h.

// ----- The environment: namespace, TAP interface, stack.

struct Skip {
  std::string reason;
};

class KernelPeer {
 public:
  KernelPeer() {
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
  ~KernelPeer() { teardown(); }

  bool ready() const { return error_.empty(); }
  const std::string& error() const { return error_; }

  Stack& stack() { return *stack_; }
  SocketApi& api() { return *api_; }
  TapDevice& tap() { return *tap_; }
  Nanos now() const { return clock_.now(); }

  std::string kernel_v4, stack_v4, kernel_v6, stack_v6;

  // Drives the stack until pred() holds or `limit` passes; false on timeout. pred() does the
  // socket calls; it bumps `busy` when it made progress, and then the loop does not sleep.
  // Otherwise it waits in poll(2) for a frame on the TAP fd or the stack's next deadline.
  uint64_t busy = 0;
  bool pump_until(const std::function<bool()>& pred, Nanos limit = kWait) {
    const Nanos end = clock_.now() + limit;
    for (;;) {
      const uint64_t before = busy;
      stack_->poll();
      if (pred()) return true;
      Nanos now = clock_.now();
      if (now >= end) return false;
      if (busy != before) continue;
      // pred() may have armed timers: take the deadline after it.
      Nanos next = stack_->timers().next_deadline();
      Nanos wait = std::min({next == kNever ? 10 * kMilli : next - now, 10 * kMilli, end - now});
      if (wait <= 0) continue;
      pollfd p{tap_->wait_fd(), POLLIN, 0};
      timespec ts{time_t(wait / kSecond), long(wait % kSecond)};
      ::ppoll(&p, 1, &ts, nullptr);
    }
  }

  // Forks a child that enters the namespace (setns) and runs `body` there.
  std::unique_ptr<Child> fork_in_ns(const std::function<int()>& body, unsigned alarm_s = 30) {
    const std::string path = "/run/netns/" + ns_;
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
  void must(const std::vector<std::string>& argv) {
    ChildResult r = run(argv);
    if (!r.ok()) throw std::runtime_error("`" + join(argv) + "` failed: " + r.output);
  }

  void setup() {
    if (geteuid() != 0) throw Skip{"needs root (network namespaces and TAP interfaces)"};
    if (access("/dev/net/tun", F_OK) != 0) throw Skip{"/dev/net/tun does not exist (no TUN/TAP support)"};
    auto ip = find_program("ip");
    if (!ip) throw Skip{"the `ip` command (iproute2) is not installed"};
    ip_ = *ip;
    remove_stale_namespaces(ip_, kNetnsPrefix);

    const unsigned pid = unsigned(getpid());
    ns_ = kNetnsPrefix + std::to_string(pid);
    ChildResult r = run({ip_, "netns", "add", ns_});
    if (!r.ok()) throw Skip{"cannot create a network namespace: " + r.output};
    ns_created_ = true;

    TapOptions opt;
    opt.ifname = "shtcp" + std::to_string(pid % 1000000);
    opt.mac = MacAddr{{0x02, 0x53, 0x48, 0x54, 0x00, 0x03}};
    auto opened = TapDevice::open(opt);
    if (!opened.device) throw Skip{opened.error};
    tap_ = std::move(opened.device);
    const std::string ifname = tap_->ifname();
    std::cout << "TAP " << ifname << ": kernel MAC " << tap_->kernel_mac().str() << ", stack MAC "
              << tap_->info().mac.str() << ", MTU " << tap_->info().mtu << "; namespace " << ns_ << std::endl;

    const unsigned subnet = (pid + 97) % 250 + 1;
    kernel_v4 = "10.83." + std::to_string(subnet) + ".1";
    stack_v4 = "10.83." + std::to_string(subnet) + ".2";
    char v6prefix[64];
    std::snprintf(v6prefix, sizeof v6prefix, "fd53:6875:6e74:%x::", subnet);
    kernel_v6 = std::string(v6prefix) + "1";
    stack_v6 = std::string(v6prefix) + "2";

    must({ip_, "link", "set", ifname, "netns", ns_});
    const std::vector<std::string> in_ns = {ip_, "-n", ns_};
    auto ns_cmd = [&](std::vector<std::string> rest) {
      std::vector<std::string> v = in_ns;
      v.insert(v.end(), rest.begin(), rest.end());
      must(v);
    };
    ns_cmd({"link", "set", "lo", "up"});
    ns_cmd({"addr", "add", kernel_v4 + "/24", "dev", ifname});
    ns_cmd({"-6", "addr", "add", kernel_v6 + "/64", "dev", ifname, "nodad"});
    ns_cmd({"link", "set", ifname, "up"});

    Config config;
    config.buffers = 16384;  // room for a few MB in flight and queued each way
    stack_ = std::make_unique<Stack>(*tap_, clock_, config);
    stack_->add_address(IpAddr(*Ipv4Addr::parse(stack_v4)), 24);
    stack_->add_address(IpAddr(*Ipv6Addr::parse(stack_v6)), 64);
    api_ = std::make_unique<SocketApi>(*stack_);
    // Duplicate address detection against the kernel (RFC 4862 5.4) must finish first.
    const Ipv6Addr v6 = *Ipv6Addr::parse(stack_v6);
    if (!pump_until([&] { return stack_->is_local_v6(v6); })) {
      throw std::runtime_error("the stack's " + stack_v6 + " did not become preferred (DAD) within 10 s");
    }
  }

  void teardown() {
    api_.reset();
    stack_.reset();
    tap_.reset();  // closing the fd removes the (non-persistent) interface
    if (ns_created_) {
      run({ip_, "netns", "delete", ns_});
      ns_created_ = false;
    }
  }

  MonotonicClock clock_;
  std::string ip_, ns_;
  bool ns_created_ = false;
  std::unique_ptr<TapDevice> tap_;
  std::unique_ptr<Stack> stack_;
  std::unique_ptr<SocketApi> api_;
  std::string error_;
};

KernelPeer* g_env = nullptr;

struct GlobalEnv {
  GlobalEnv() { g_env = new KernelPeer(); }
  ~GlobalEnv() {
    delete g_env;
    g_env = nullptr;
  }
};

KernelPeer& env() {
  BOOST_REQUIRE_MESSAGE(g_env && g_env->ready(), "setup failed: " << (g_env ? g_env->error() : "no environment"));
  return *g_env;
}

// Addresses, the kernel child's report, pipes: tests/support/kernel_report.h.

// Connects (client) or listens and accepts one connection (server); the listener's readiness
// goes to `ready_fd`. Returns the connected fd or -1 (with a line saying why).
int kernel_open(bool server, const std::string& kernel_ip, uint16_t kernel_port, const std::string& stack_ip,
                uint16_t stack_port, int ready_fd) {
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
        std::printf("kernel: send after %" PRIu64 " bytes: %s\n", sent.bytes + off, std::strerror(errno));
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
int kernel_bulk(bool server, const std::string& kernel_ip, uint16_t kernel_port, const std::string& stack_ip,
                uint16_t stack_port, uint64_t total, int ready_fd, int report_fd) {
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

  StackBulk(SocketApi& a, int s, bool is_server, uint64_t bytes) : api(a), fd(s), server(is_server), total(bytes) {
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
        error = "send after " + std::to_string(out.bytes) + " bytes: " + (n < 0 ? std::strerror(int(-n)) : "0");
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

constexpr uint16_t kBasePort = 9100;

void print_stack_counters(KernelPeer& e) {
  const TapCounters& c = e.tap().counters();
  std::cout << "tap: rx " << c.rx_frames << " frames, tx " << c.tx_frames << " frames; drops: rx oversize "
            << c.rx_drop_oversize << ", rx no buffer " << c.rx_no_buffer << ", rx errors " << c.rx_errors
            << ", tx eagain " << c.tx_drop_eagain << ", tx errors " << c.tx_drop_error << "\n";
  std::string dump = e.stack().counters().dump();
  // Only the TCP lines: the rest is tap.kernel_peer's business.
  size_t start = 0;
  while (start < dump.size()) {
    size_t end = dump.find('\n', start);
    if (end == std::string::npos) end = dump.size();
    std::string line = dump.substr(start, end - start);
    if (line.find("tcp") != std::string::npos) std::cout << "  " << line << "\n";
    start = end + 1;
  }
  std::cout << std::flush;
}

// A non-blocking TCP socket of the stack's.
int stack_socket(SocketApi& api, bool v6, std::string& err) {
  int s = api.socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (s < 0) err = std::string("socket(SOCK_STREAM): ") + std::strerror(-s);
  return s;
}

// Accepts one connection on `listener`, pumping the stack; -1 on timeout.
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

// Connects `s` to the kernel, pumping the stack until the connection is established (or fails).
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

void bulk(bool v6, bool stack_server, uint16_t port) {
  KernelPeer& e = env();
  SocketApi& api = e.api();
  const uint64_t total = transfer_bytes();
  const std::string kernel_ip = v6 ? e.kernel_v6 : e.kernel_v4;
  const std::string stack_ip = v6 ? e.stack_v6 : e.stack_v4;
  const char* what = v6 ? "IPv6" : "IPv4";
  const char* role = stack_server ? "stack server, kernel client" : "stack client, kernel server";

  std::string err;
  int s = stack_socket(api, v6, err);
  BOOST_REQUIRE_MESSAGE(s >= 0, err);
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
        return kernel_bulk(!stack_server, kernel_ip, port, stack_ip, port, total, ready.w, report.w);
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
    BOOST_CHECK_MESSAGE(conn >= 0, "accept: " << (conn == -EAGAIN ? "no connection from the kernel within 10 s"
                                                                   : std::strerror(-conn)));
    if (conn >= 0) std::cout << "stack: accepted " << addr_str(from) << std::endl;
  } else {
    socklen_t klen;
    SockAddr k = make_addr(kernel_ip, port, &klen);
    int r = connect_pumped(e, s, k, klen);
    BOOST_CHECK_MESSAGE(r == 0, "connect to " << addr_str(k) << ": " << std::strerror(-r));
    if (r == 0) conn = s;
  }

  if (conn >= 0) {
    StackBulk b(api, conn, stack_server, total);
    const Nanos t0 = e.now();
    const bool finished = e.pump_until(
        [&] {
          b.pump(e.busy, e.now());
          return b.done() || child->failed();
        },
        2 * transfer_limit(total));
    BOOST_CHECK_MESSAGE(finished, what << " " << role << ": the transfer did not finish in time (stack sent "
                                       << b.out.bytes << ", received " << b.in.bytes << " of " << total
                                       << " bytes each way; eof " << b.eof << ")");
    BOOST_CHECK_MESSAGE(b.error.empty(), "stack: " << b.error);
    BOOST_CHECK_EQUAL(b.in.bytes, total);
    BOOST_CHECK_MESSAGE(b.in.mismatch == UINT64_MAX, "the stack received a wrong byte at offset " << b.in.mismatch);
    const double secs = double(e.now() - t0) / 1e9;
    // Gracefully: the kernel has sent its FIN (we saw EOF) and we sent ours (shut).
    int rc = api.close(conn);
    BOOST_CHECK_EQUAL(rc, 0);

    // The kernel reports when it is done.
    BOOST_CHECK_MESSAGE(e.pump_until([&] { return child->poll_exit(); }, 30 * kSecond), "the kernel side did not exit");
    KernelReport rep;
    const bool got = read_report(report.r, rep);
    ChildResult cr = child->result();
    std::cout << cr.output << std::flush;
    BOOST_CHECK_MESSAGE(cr.ok(), "the kernel side failed (exit " << cr.code() << ")");
    BOOST_REQUIRE_MESSAGE(got, "no report from the kernel side");
    BOOST_CHECK_EQUAL(rep.received, total);
    BOOST_CHECK_MESSAGE(rep.mismatch == UINT64_MAX, "the kernel received a wrong byte at offset " << rep.mismatch);
    BOOST_CHECK_MESSAGE(rep.hash_received == b.out.hash,
                        "stack->kernel hash differs: sent " << std::hex << b.out.hash << ", kernel got " << rep.hash_received
                                                            << std::dec);
    BOOST_CHECK_MESSAGE(rep.hash_sent == b.in.hash, "kernel->stack hash differs: kernel sent "
                                                        << std::hex << rep.hash_sent << ", stack got " << b.in.hash << std::dec);
    const double down = b.rx_first >= 0 && b.rx_eof > b.rx_first ? double(b.rx_eof - b.rx_first) / 1e9 : 0;
    std::cout << "THROUGHPUT " << what << " " << role << ": stack->kernel " << rate(rep.received, rep.rx_seconds)
              << " (kernel's receive time); kernel->stack " << rate(b.in.bytes, down)
              << " (stack's receive time); whole exchange " << secs << " s. Kernel socket: rtt " << rep.rtt_us
              << " us, total_retrans " << rep.total_retrans << ", snd_mss " << rep.snd_mss << ", rcv_mss "
              << rep.rcv_mss << std::endl;
  } else {
    child->kill_now();
    std::cout << child->result().output << std::flush;
  }
  if (listener >= 0) api.close(listener);
  print_stack_counters(e);
}

// ----- Abrupt close.

// Kernel side of the RST cases. It exchanges "hi"/"ok" with the stack first (so both ends are
// established and the data path works), then either resets (SO_LINGER {1, 0} and close) or
// signals `ready_fd` again and waits in recv() for the stack's RST.
int kernel_rst(bool server, bool kernel_resets, const std::string& kernel_ip, uint16_t port, const std::string& stack_ip,
               int ready_fd, int report_fd) {
  KernelReport rep;
  int fd = kernel_open(server, kernel_ip, port, stack_ip, port, ready_fd);
  if (fd < 0) return 10;
  set_timeouts(fd, 10);
  rep.stage = 1;
  if (send(fd, "hi", 2, MSG_NOSIGNAL) != 2) {
    std::printf("kernel: send hi: %s\n", std::strerror(errno));
    return 11;
  }
  char buf[16];
  ssize_t n = recv(fd, buf, 2, MSG_WAITALL);
  if (n != 2 || std::memcmp(buf, "ok", 2) != 0) {
    std::printf("kernel: expected \"ok\", recv returned %zd (%s)\n", n, n < 0 ? std::strerror(errno) : "");
    return 12;
  }
  rep.stage = 2;
  int rc = 0;
  if (kernel_resets) {
    linger l{1, 0};
    if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l) != 0) rc = 13;
    close(fd);
    std::printf("kernel: closed with SO_LINGER {1, 0}\n");
  } else {
    (void)!write(ready_fd, "x", 1);  // waiting for the RST now
    n = recv(fd, buf, sizeof buf, 0);
    rep.recv_errno = n < 0 ? errno : 0;
    std::printf("kernel: recv after the stack's close returned %zd (%s)\n", n, n < 0 ? std::strerror(errno) : "no error");
    kernel_tcp_info(fd, rep);
    close(fd);
  }
  write_report(report_fd, rep);
  return rc;
}

void abrupt_close(bool v6, bool stack_server, bool kernel_resets, uint16_t port) {
  KernelPeer& e = env();
  SocketApi& api = e.api();
  const std::string kernel_ip = v6 ? e.kernel_v6 : e.kernel_v4;
  const std::string stack_ip = v6 ? e.stack_v6 : e.stack_v4;

  std::string err;
  int s = stack_socket(api, v6, err);
  BOOST_REQUIRE_MESSAGE(s >= 0, err);
  int listener = -1;
  if (stack_server) {
    listener = s;
    socklen_t len;
    SockAddr local = make_addr(stack_ip, port, &len);
    BOOST_REQUIRE_EQUAL(api.bind(listener, &local.sa, len), 0);
    BOOST_REQUIRE_EQUAL(api.listen(listener, 4), 0);
  }
  Pipe ready, report;
  auto child = e.fork_in_ns([&] {
    ready.close_r();
    report.close_r();
    return kernel_rst(!stack_server, kernel_resets, kernel_ip, port, stack_ip, ready.w, report.w);
  });
  ready.close_w();
  report.close_w();
  BOOST_REQUIRE_MESSAGE(e.pump_until([&] { return ready.signalled() || child->poll_exit(); }),
                        "the kernel side did not start");

  int conn = -1;
  if (stack_server) {
    SockAddr from{};
    conn = accept_one(e, listener, kWait, &from);
    BOOST_CHECK_MESSAGE(conn >= 0, "accept: " << (conn == -EAGAIN ? "timed out" : std::strerror(-conn)));
  } else {
    socklen_t klen;
    SockAddr k = make_addr(kernel_ip, port, &klen);
    int r = connect_pumped(e, s, k, klen);
    BOOST_CHECK_MESSAGE(r == 0, "connect to " << addr_str(k) << ": " << std::strerror(-r));
    if (r == 0) conn = s;
  }
  if (conn >= 0) {
    char buf[16];
    ssize_t n = -EAGAIN;
    BOOST_CHECK_MESSAGE(e.pump_until([&] {
      n = api.recv(conn, buf, sizeof buf, 0);
      return n != -EAGAIN;
    }),
                        "no \"hi\" from the kernel");
    BOOST_CHECK_EQUAL(n, 2);
    BOOST_CHECK_EQUAL(api.send(conn, "ok", 2, MSG_NOSIGNAL), 2);
    if (kernel_resets) {
      // RFC 9293 3.10.7.4: a RST in a synchronized state -> the user's calls fail with "connection reset".
      n = -EAGAIN;
      BOOST_CHECK_MESSAGE(e.pump_until([&] {
        n = api.recv(conn, buf, sizeof buf, 0);
        return n != -EAGAIN;
      }),
                          "the stack saw nothing of the kernel's RST within 10 s");
      BOOST_CHECK_MESSAGE(n == -ECONNRESET, "recv() after the kernel's RST returned "
                                                << n << (n < 0 ? std::string(" (") + std::strerror(int(-n)) + ")" : ""));
      BOOST_CHECK_EQUAL(api.close(conn), 0);
    } else {
      BOOST_CHECK_MESSAGE(e.pump_until([&] { return ready.signalled() || child->poll_exit(); }),
                          "the kernel did not read \"ok\"");
      linger l{1, 0};
      BOOST_CHECK_EQUAL(api.setsockopt(conn, SOL_SOCKET, SO_LINGER, &l, sizeof l), 0);
      BOOST_CHECK_EQUAL(api.close(conn), 0);
    }
  }
  BOOST_CHECK_MESSAGE(e.pump_until([&] { return child->poll_exit(); }), "the kernel side did not exit");
  if (!child->poll_exit()) child->kill_now();
  KernelReport rep;
  const bool got = read_report(report.r, rep);
  ChildResult cr = child->result();
  std::cout << cr.output << std::flush;
  BOOST_CHECK_MESSAGE(cr.ok(), "the kernel side failed (exit " << cr.code() << ")");
  if (!kernel_resets && got) {
    BOOST_CHECK_MESSAGE(rep.recv_errno == ECONNRESET, "the kernel's recv() after the stack's zero-linger close failed with "
                                                          << (rep.recv_errno ? std::strerror(rep.recv_errno) : "nothing"));
  }
  if (listener >= 0) api.close(listener);
}

}  // namespace

BOOST_TEST_GLOBAL_FIXTURE(GlobalEnv);

BOOST_AUTO_TEST_SUITE(tcp_kernel_peer)

BOOST_AUTO_TEST_CASE(ipv4_stack_client_sends_and_receives_100mb_intact) { bulk(false, false, kBasePort + 0); }
BOOST_AUTO_TEST_CASE(ipv4_stack_server_receives_and_sends_100mb_intact) { bulk(false, true, kBasePort + 1); }
BOOST_AUTO_TEST_CASE(ipv6_stack_client_sends_and_receives_100mb_intact) { bulk(true, false, kBasePort + 2); }
BOOST_AUTO_TEST_CASE(ipv6_stack_server_receives_and_sends_100mb_intact) { bulk(true, true, kBasePort + 3); }

BOOST_AUTO_TEST_CASE(ipv4_kernel_rst_fails_stack_recv_with_econnreset) { abrupt_close(false, false, true, kBasePort + 10); }
BOOST_AUTO_TEST_CASE(ipv4_stack_zero_linger_close_resets_kernel) { abrupt_close(false, true, false, kBasePort + 11); }
BOOST_AUTO_TEST_CASE(ipv6_kernel_rst_fails_stack_recv_with_econnreset) { abrupt_close(true, true, true, kBasePort + 12); }
BOOST_AUTO_TEST_CASE(ipv6_stack_zero_linger_close_resets_kernel) { abrupt_close(true, false, false, kBasePort + 13); }

BOOST_AUTO_TEST_SUITE_END()

}  // namespace shunt
