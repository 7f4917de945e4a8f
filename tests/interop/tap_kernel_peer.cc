// The Linux kernel as the stack's peer, through a TAP interface (label interop).
//
// The test makes a network namespace of its own, creates a TAP interface, moves the kernel's
// end into the namespace and gives it 10.83.N.1/24 and fd53:6875:6e74:N::1/64. This process
// runs a Shunt Stack on the TAP fd in real time (MonotonicClock, poll(2) on the fd and the
// stack's next deadline) with 10.83.N.2/24 and fd53:6875:6e74:N::2/64. Then the kernel's own
// `ping` and `ping -6` must get replies from the stack, and a kernel UDP socket in the namespace
// (a forked child that setns()es into it) must exchange datagrams with a Shunt UDP socket both
// ways, over IPv4 and IPv6, including datagrams that need fragmentation.
//
// The namespace and the interface are removed in every case (namespaces left by a killed run
// are removed by the next one). Where the test cannot run -- not root, no /dev/net/tun, no `ip`
// or `ping`, no namespaces -- it says why and exits 77 (CTest: skipped). Every wait is bounded.
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <algorithm>
#include <cerrno>
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

constexpr Nanos kWait = 10 * kSecond;  // every wait for the kernel is bounded by this
constexpr const char* kNetnsPrefix = "shunt-tap-";
constexpr uint16_t kKernelPort = 9001;
constexpr uint16_t kStackPort = 9002;

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
  const std::string& ns() const { return ns_; }
  const std::string& ip() const { return ip_; }
  const std::string& ping() const { return ping_; }

  std::string kernel_v4, stack_v4, kernel_v6, stack_v6;

  // Drives the stack until pred() holds or `limit` passes; false on timeout.
  bool pump_until(const std::function<bool()>& pred, Nanos limit = kWait) {
    const Nanos end = clock_.now() + limit;
    for (;;) {
      Nanos next = stack_->poll();
      if (pred()) return true;
      Nanos now = clock_.now();
      if (now >= end) return false;
      // Sleep until a frame arrives, the stack's next deadline, or 10 ms (to look at pred again).
      Nanos wait = std::min({next == kNever ? 10 * kMilli : next - now, 10 * kMilli, end - now});
      if (wait < 0) wait = 0;
      pollfd p{tap_->wait_fd(), POLLIN, 0};
      ::poll(&p, 1, int((wait + kMilli - 1) / kMilli));
    }
  }

  // Runs a command in the namespace while driving the stack; kills it after `limit`.
  ChildResult run_in_ns(std::vector<std::string> argv, Nanos limit = 2 * kWait) {
    std::vector<std::string> full = {ip_, "netns", "exec", ns_};
    full.insert(full.end(), argv.begin(), argv.end());
    std::cout << "+ " << join(full) << std::endl;
    Child c(full);
    if (!c.started()) return {};
    if (!pump_until([&] { return c.poll_exit(); }, limit)) c.kill_now();
    ChildResult r = c.result();
    std::cout << r.output << std::flush;
    return r;
  }

  // Forks a child that enters the namespace (setns) and runs `body` there.
  std::unique_ptr<Child> fork_in_ns(const std::function<int()>& body) {
    const std::string path = "/run/netns/" + ns_;
    return std::make_unique<Child>([path, body]() -> int {
      int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
        std::printf("child: cannot enter %s: %s\n", path.c_str(), std::strerror(errno));
        return 90;
      }
      close(fd);
      return body();
    });
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
    auto ping = find_program("ping");
    if (!ping) throw Skip{"`ping` (iputils-ping) is not installed"};
    ip_ = *ip;
    ping_ = *ping;
    remove_stale_namespaces(ip_, kNetnsPrefix);

    const unsigned pid = unsigned(getpid());
    ns_ = kNetnsPrefix + std::to_string(pid);
    ChildResult r = run({ip_, "netns", "add", ns_});
    if (!r.ok()) throw Skip{"cannot create a network namespace: " + r.output};
    ns_created_ = true;

    TapOptions opt;
    opt.ifname = "shtap" + std::to_string(pid % 1000000);
    opt.mac = MacAddr{{0x02, 0x53, 0x48, 0x54, 0x00, 0x02}};
    auto opened = TapDevice::open(opt);
    if (!opened.device) throw Skip{opened.error};
    tap_ = std::move(opened.device);
    const std::string ifname = tap_->ifname();
    std::cout << "TAP " << ifname << ": kernel MAC " << tap_->kernel_mac().str() << ", stack MAC "
              << tap_->info().mac.str() << ", MTU " << tap_->info().mtu << "; namespace " << ns_ << std::endl;

    const unsigned subnet = pid % 250 + 1;
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

    // The stack comes up once the kernel's end is up: its first frames (gratuitous ARP, DAD)
    // would be refused by a TAP interface that is down.
    Config config;
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
  std::string ip_, ping_, ns_;
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

// ----- UDP exchange between a Shunt socket and a kernel socket in the namespace.

std::string payload(size_t n, char seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = char(seed + i * 7);
  return s;
}

// Sizes: tiny, one full frame, and two that IP must fragment (and reassemble) each way.
const std::vector<size_t> kSizes = {5, 1000, 3000, 9000};

// The kernel side, in the namespace: greets the stack first, then echoes every datagram back
// with "echo:" in front, checking that it came from the stack's address and port.
int kernel_udp_peer(const std::string& kernel_ip, const std::string& stack_ip, int ready_fd) {
  socklen_t klen, slen;
  SockAddr k = make_addr(kernel_ip, kKernelPort, &klen);
  SockAddr s = make_addr(stack_ip, kStackPort, &slen);
  int fd = socket(k.sa.sa_family, SOCK_DGRAM, 0);
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (bind(fd, &k.sa, klen) != 0) {
    std::printf("kernel: bind %s: %s\n", addr_str(k).c_str(), std::strerror(errno));
    return 10;
  }
  (void)!write(ready_fd, "r", 1);
  const std::string hello = "hello from the kernel";
  if (sendto(fd, hello.data(), hello.size(), 0, &s.sa, slen) != ssize_t(hello.size())) {
    std::printf("kernel: sendto %s: %s\n", addr_str(s).c_str(), std::strerror(errno));
    return 11;
  }
  std::string buf(65536, '\0');
  for (size_t i = 0; i < kSizes.size(); ++i) {
    SockAddr from{};
    socklen_t flen = sizeof from;
    ssize_t n = recvfrom(fd, buf.data(), buf.size(), 0, &from.sa, &flen);
    if (n < 0) {
      std::printf("kernel: datagram %zu (%zu bytes) from the stack: %s\n", i, kSizes[i], std::strerror(errno));
      return 12;
    }
    std::printf("kernel: got %zd bytes from %s\n", n, addr_str(from).c_str());
    if (addr_str(from) != addr_str(s)) {
      std::printf("kernel: expected the datagram from %s\n", addr_str(s).c_str());
      return 13;
    }
    if (std::string(buf.data(), size_t(n)) != payload(kSizes[i], char('a' + i))) {
      std::printf("kernel: datagram %zu has the wrong payload\n", i);
      return 14;
    }
    std::string echo = "echo:" + std::string(buf.data(), size_t(n));
    if (sendto(fd, echo.data(), echo.size(), 0, &from.sa, flen) != ssize_t(echo.size())) {
      std::printf("kernel: echo sendto: %s\n", std::strerror(errno));
      return 15;
    }
  }
  return 0;
}

void udp_both_ways(KernelPeer& e, bool v6) {
  const std::string kernel_ip = v6 ? e.kernel_v6 : e.kernel_v4;
  const std::string stack_ip = v6 ? e.stack_v6 : e.stack_v4;
  SocketApi& api = e.api();
  int s = api.socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  BOOST_REQUIRE_GE(s, 0);
  socklen_t slen, klen;
  SockAddr local = make_addr(stack_ip, kStackPort, &slen);
  BOOST_REQUIRE_EQUAL(api.bind(s, &local.sa, slen), 0);
  SockAddr kernel = make_addr(kernel_ip, kKernelPort, &klen);

  int ready[2];
  BOOST_REQUIRE_EQUAL(pipe2(ready, O_CLOEXEC | O_NONBLOCK), 0);
  auto child = e.fork_in_ns([&] { return kernel_udp_peer(kernel_ip, stack_ip, ready[1]); });
  close(ready[1]);
  char r;
  BOOST_REQUIRE_MESSAGE(e.pump_until([&] { return read(ready[0], &r, 1) == 1; }), "the kernel side did not start");
  close(ready[0]);

  std::string buf(65536, '\0');
  SockAddr from{};
  socklen_t flen = 0;
  ssize_t got = -EAGAIN;
  auto receive = [&] {
    flen = sizeof from;
    got = api.recvfrom(s, buf.data(), buf.size(), 0, &from.sa, &flen);
    return got != -EAGAIN;
  };

  // Kernel -> stack, first contact from the kernel's side.
  BOOST_CHECK_MESSAGE(e.pump_until(receive), "no datagram from the kernel within 10 s");
  BOOST_CHECK_EQUAL(std::string(buf.data(), size_t(std::max<ssize_t>(got, 0))), "hello from the kernel");
  BOOST_CHECK_EQUAL(addr_str(from), addr_str(kernel));

  // Stack -> kernel and the kernel's echo back, at every size.
  for (size_t i = 0; i < kSizes.size(); ++i) {
    BOOST_TEST_CONTEXT((v6 ? "IPv6" : "IPv4") << " datagram of " << kSizes[i] << " bytes") {
      const std::string p = payload(kSizes[i], char('a' + i));
      ssize_t sent = api.sendto(s, p.data(), p.size(), 0, &kernel.sa, klen);
      BOOST_CHECK_EQUAL(sent, ssize_t(p.size()));
      got = -EAGAIN;
      bool echoed = e.pump_until(receive);
      BOOST_CHECK_MESSAGE(echoed, "no echo from the kernel within 10 s");
      if (!echoed) break;
      BOOST_CHECK_EQUAL(got, ssize_t(p.size() + 5));
      BOOST_CHECK(std::string(buf.data(), size_t(std::max<ssize_t>(got, 0))) == "echo:" + p);
      BOOST_CHECK_EQUAL(addr_str(from), addr_str(kernel));
    }
  }

  BOOST_CHECK(e.pump_until([&] { return child->poll_exit(); }));
  ChildResult cr = child->result();
  std::cout << cr.output << std::flush;
  BOOST_CHECK_MESSAGE(cr.ok(), "the kernel side failed (exit status " << (WIFEXITED(cr.status) ? WEXITSTATUS(cr.status) : -1)
                                                                      << "): " << cr.output);
  api.close(s);
}

void print_counters(KernelPeer& e) {
  const TapCounters& c = e.tap().counters();
  std::cout << "tap: rx " << c.rx_frames << " frames, tx " << c.tx_frames << " frames; drops: rx oversize "
            << c.rx_drop_oversize << ", rx runt " << c.rx_drop_runt << ", rx errors " << c.rx_errors << ", tx eagain "
            << c.tx_drop_eagain << ", tx errors " << c.tx_drop_error << "\n"
            << e.stack().counters().dump() << std::flush;
}

}  // namespace

BOOST_TEST_GLOBAL_FIXTURE(GlobalEnv);

BOOST_AUTO_TEST_SUITE(tap_kernel_peer)

BOOST_AUTO_TEST_CASE(kernel_ping_gets_replies_from_the_stack) {
  KernelPeer& e = env();
  ChildResult r = e.run_in_ns({e.ping(), "-c", "3", "-i", "0.2", "-w", "10", e.stack_v4});
  BOOST_CHECK_MESSAGE(r.ok(), "ping " << e.stack_v4 << " failed");
  BOOST_CHECK_MESSAGE(r.output.find("3 received") != std::string::npos, "not every echo was answered");
}

BOOST_AUTO_TEST_CASE(kernel_ping6_gets_replies_from_the_stack) {
  KernelPeer& e = env();
  ChildResult r = e.run_in_ns({e.ping(), "-6", "-c", "3", "-i", "0.2", "-w", "10", e.stack_v6});
  BOOST_CHECK_MESSAGE(r.ok(), "ping -6 " << e.stack_v6 << " failed");
  BOOST_CHECK_MESSAGE(r.output.find("3 received") != std::string::npos, "not every echo was answered");
}

BOOST_AUTO_TEST_CASE(udp_ipv4_datagrams_cross_both_ways) { udp_both_ways(env(), false); }

BOOST_AUTO_TEST_CASE(udp_ipv6_datagrams_cross_both_ways) { udp_both_ways(env(), true); }

BOOST_AUTO_TEST_CASE(driver_dropped_nothing) {
  KernelPeer& e = env();
  print_counters(e);
  const TapCounters& c = e.tap().counters();
  BOOST_CHECK_GT(c.rx_frames, 0u);
  BOOST_CHECK_GT(c.tx_frames, 0u);
  BOOST_CHECK_EQUAL(c.rx_errors, 0u);
  BOOST_CHECK_EQUAL(c.tx_drop_error, 0u);
  BOOST_CHECK_EQUAL(c.tx_drop_eagain, 0u);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace shunt
