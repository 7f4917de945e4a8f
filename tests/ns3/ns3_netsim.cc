// `shunt netsim` in real time: build/bin/shunt-netsim runs as a child process with its host
// sockets in a fresh /tmp directory, and two forked processes attach to it as hosts with
// SHUNT_DEVICE-style specs (`unix:path=DIR/hostI.sock`, opened by shunt::open_device). Each
// builds a Stack on a MonotonicClock (10.0.0.1/24 and 10.0.0.2/24) and a SocketApi, and
// busy-polls it: Stack::poll() in a loop, yielding the core every few dozen polls, since three
// processes (two hosts and netsim's simulation thread) share a small machine. Host 0 sends 100
// UDP datagrams to host 1's echo and then 1 MiB over TCP, every byte checked against
// tcp_bulk_pattern; host 1 echoes, receives, and answers with what it got. Each child reports
// through its exit status (and prints its figures); netsim must end by itself once both hosts
// have left, with status 0 and its counters printed.
//
// Also: bad options and missing hosts give one clear line and a nonzero status; --duration ends
// a run whose host stays connected (the host's device then sees the other end closed); bad
// unix: device specs (no such socket, connection refused) are one clear line.
//
// Real-time figures are printed with BOOST_TEST_MESSAGE and never asserted. Every wait is
// bounded; only processes started here are killed, by pid (test::Child).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "stack/core/clock.h"
#include "stack/core/config.h"
#include "stack/driver/device_registry.h"
#include "stack/driver/unixsock/unix_device.h"
#include "stack/harness/tcp_bulk.h"
#include "stack/net/stack.h"
#include "stack/net/tcp/tcp.h"
#include "stack/socket/socket_api.h"
#include "support/child_process.h"

namespace shunt {
namespace {

constexpr Nanos kAttachLimit = 30 * kSecond;    // netsim up and the socket there
constexpr Nanos kStepLimit = 10 * kSecond;      // one datagram's answer, a handshake
constexpr Nanos kTransferLimit = 120 * kSecond;  // 1 MiB on a loaded machine
constexpr unsigned kChildAlarm = 240;            // seconds; a child dies after this whatever happens
constexpr uint32_t kDatagrams = 100;
constexpr uint64_t kTcpBytes = 1 << 20;
constexpr uint64_t kPatternSeed = 0x6e657473696dull;
constexpr uint16_t kEchoPort = 7;
constexpr uint16_t kTcpPort = 5001;

double us(Nanos d) { return double(d) / 1e3; }

std::string netsim_program() {
  // The test binary is build/tests/test_ns3_netsim; the program build/bin/shunt-netsim.
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  return (self.parent_path().parent_path() / "bin" / "shunt-netsim").string();
}

// A fresh private directory under /tmp, removed with everything in it.
struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/shunt-netsim-XXXXXX";
    if (char* p = mkdtemp(tmpl)) path = p;
  }
  ~TempDir() {
    if (path.empty()) return;
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

// One host process's end: the unix device, its stack and socket API.
struct Host {
  MonotonicClock clock;
  Config config;
  OpenedDevice dev;
  std::unique_ptr<Stack> stack;
  std::unique_ptr<SocketApi> api;
  std::string error;

  // Opens unix:path=... (retrying while netsim is still starting: no socket yet), then the stack.
  Host(const std::string& path, const std::string& addr) {
    config.dad_transmits = 0;
    const std::string spec = "unix:path=" + path;
    const Nanos end = clock.now() + kAttachLimit;
    for (;;) {
      dev = open_device(spec, clock, config);
      if (dev.device || clock.now() > end) break;
      usleep(20'000);
    }
    if (!dev.device) {
      error = dev.error;
      return;
    }
    stack = std::make_unique<Stack>(*dev.device, clock, config);
    stack->add_address(*IpAddr::parse(addr), 24);
    api = std::make_unique<SocketApi>(*stack);
  }
  ~Host() {
    api.reset();
    stack.reset();
  }
  bool ok() const { return error.empty(); }
  const UnixDevice& device() const { return static_cast<const UnixDevice&>(*dev.device); }

  // Busy-polls the stack until pred() holds or `limit` passes.
  bool pump_until(const std::function<bool()>& pred, Nanos limit) {
    const Nanos end = clock.now() + limit;
    for (uint64_t i = 1;; ++i) {
      stack->poll();
      if (pred()) return true;
      if ((i & 31) == 0) {
        if (clock.now() > end) return false;
        // Three processes busy on a shared machine: give the core away now and then.
        sched_yield();
      }
    }
  }
  uint64_t counter(const char* name) const { return stack->counters().get(name); }
};

sockaddr_in v4(const char* ip, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, ip, &a.sin_addr);
  return a;
}

std::string err(long r) { return std::to_string(r) + " (" + std::strerror(int(-r)) + ")"; }

// What host 1 answers after the stream: bytes received and the first wrong offset.
struct StreamSummary {
  uint64_t bytes = 0;
  uint64_t mismatch = UINT64_MAX;
};

// ----- Host 1 (10.0.0.2): UDP echo on port 7 throughout, TCP receiver on 5001.
std::string echo_and_receive(const std::string& path) {
  Host h(path, "10.0.0.2");
  if (!h.ok()) return h.error;
  SocketApi& api = *h.api;
  const sockaddr_in any_echo = v4("10.0.0.2", kEchoPort), any_tcp = v4("10.0.0.2", kTcpPort);
  const int u = api.socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  if (int r = api.bind(u, reinterpret_cast<const sockaddr*>(&any_echo), sizeof any_echo); r < 0) return "bind: " + err(r);
  const int ls = api.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (int r = api.bind(ls, reinterpret_cast<const sockaddr*>(&any_tcp), sizeof any_tcp); r < 0) return "bind: " + err(r);
  if (int r = api.listen(ls, 4); r < 0) return "listen: " + err(r);

  std::vector<uint8_t> buf(64 * 1024), want(64 * 1024);
  uint64_t echoed = 0;
  int s = -1;
  StreamSummary got;
  bool eof = false, summary_sent = false;
  std::string failure;
  // Echo datagrams whenever they come, while the TCP stream is accepted, checked and answered.
  auto serve = [&]() -> bool {
    for (;;) {
      sockaddr_in from{};
      socklen_t flen = sizeof from;
      ssize_t k = api.recvfrom(u, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from), &flen);
      if (k < 0) break;
      api.sendto(u, buf.data(), size_t(k), 0, reinterpret_cast<sockaddr*>(&from), flen);
      ++echoed;
    }
    if (s < 0) {
      s = api.accept(ls, nullptr, nullptr, SOCK_NONBLOCK);
      if (s == -EAGAIN) s = -1;
      if (s < -1) {
        failure = "accept: " + err(s);
        return true;
      }
      return false;
    }
    while (!eof) {
      ssize_t k = api.recv(s, buf.data(), buf.size(), 0);
      if (k == -EAGAIN) return false;
      if (k < 0) {
        failure = "recv: " + err(k);
        return true;
      }
      if (k == 0) {
        eof = true;
        break;
      }
      tcp_bulk_pattern(kPatternSeed, got.bytes, want.data(), size_t(k));
      if (got.mismatch == UINT64_MAX && std::memcmp(buf.data(), want.data(), size_t(k)) != 0) {
        for (size_t i = 0; i < size_t(k); ++i) {
          if (buf[i] != want[i]) {
            got.mismatch = got.bytes + i;
            break;
          }
        }
      }
      got.bytes += uint64_t(k);
    }
    if (!summary_sent) {
      if (api.send(s, &got, sizeof got, MSG_NOSIGNAL) != ssize_t(sizeof got)) {
        failure = "send of the summary failed";
        return true;
      }
      api.close(s);  // our FIN after the summary
      summary_sent = true;
    }
    // Done once our FIN is acknowledged and the connection is gone.
    return h.stack->tcp().connection_count() == 0;
  };
  if (!h.pump_until(serve, kTransferLimit))
    return "host 1: timed out (echoed " + std::to_string(echoed) + ", received " + std::to_string(got.bytes) + " bytes)";
  if (!failure.empty()) return "host 1: " + failure;
  std::printf("host 1: echoed %llu datagrams, received %llu bytes over TCP (first wrong byte: %s); device: "
              "rx %llu frames, tx %llu frames, tx dropped (socket full) %llu\n",
              (unsigned long long)echoed, (unsigned long long)got.bytes,
              got.mismatch == UINT64_MAX ? "none" : std::to_string(got.mismatch).c_str(),
              (unsigned long long)h.device().counters().rx_frames, (unsigned long long)h.device().counters().tx_frames,
              (unsigned long long)h.device().counters().tx_drop_eagain);
  if (got.bytes != kTcpBytes || got.mismatch != UINT64_MAX) return "host 1: the stream was not intact";
  return {};
}

// ----- Host 0 (10.0.0.1): 100 datagrams to the echo, then 1 MiB to host 1.
std::string ping_and_send(const std::string& path) {
  Host h(path, "10.0.0.1");
  if (!h.ok()) return h.error;
  SocketApi& api = *h.api;
  const sockaddr_in echo = v4("10.0.0.2", kEchoPort);
  const int u = api.socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  if (u < 0) return "socket: " + err(u);

  // UDP: each datagram waits for its echo; one that gets none in a second goes again (the first
  // may wait for ARP, and netsim starts only when both hosts are there).
  std::vector<Nanos> rtts;
  uint32_t resent = 0;
  uint8_t req[64], resp[256];
  for (uint32_t seq = 0; seq < kDatagrams; ++seq) {
    for (size_t k = 0; k < sizeof req; ++k) req[k] = uint8_t(seq * 13 + k);
    std::memcpy(req, &seq, sizeof seq);
    bool answered = false;
    for (int attempt = 0; attempt < 10 && !answered; ++attempt) {
      if (attempt) ++resent;
      const Nanos t0 = h.clock.now();
      ssize_t sent = api.sendto(u, req, sizeof req, 0, reinterpret_cast<const sockaddr*>(&echo), sizeof echo);
      if (sent != ssize_t(sizeof req)) return "sendto: " + err(sent);
      ssize_t got = -EAGAIN;
      h.pump_until(
          [&] {
            for (;;) {
              got = api.recvfrom(u, resp, sizeof resp, 0, nullptr, nullptr);
              if (got < 0) return false;
              uint32_t echoed_seq;
              std::memcpy(&echoed_seq, resp, sizeof echoed_seq);
              if (got == ssize_t(sizeof req) && echoed_seq == seq) return true;  // older echoes: skipped
            }
          },
          attempt == 0 && seq == 0 ? kStepLimit : kSecond);
      if (got == ssize_t(sizeof req)) {
        if (std::memcmp(req, resp, sizeof req) != 0) return "echo " + std::to_string(seq) + " differs";
        rtts.push_back(h.clock.now() - t0);
        answered = true;
      }
    }
    if (!answered) return "no echo for datagram " + std::to_string(seq) + " after 10 tries";
  }
  api.close(u);
  std::sort(rtts.begin(), rtts.end());

  // TCP: 1 MiB of the pattern, then our FIN; host 1's summary, then its FIN.
  const sockaddr_in to = v4("10.0.0.2", kTcpPort);
  const int s = api.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int r = api.connect(s, reinterpret_cast<const sockaddr*>(&to), sizeof to);
  if (r != -EINPROGRESS && r != 0) return "connect: " + err(r);
  if (!h.pump_until([&] { return api.poll_events(s) & (POLLOUT | POLLERR | POLLHUP); }, kStepLimit))
    return "connect did not complete";
  int soerr = 0;
  socklen_t elen = sizeof soerr;
  api.getsockopt(s, SOL_SOCKET, SO_ERROR, &soerr, &elen);
  if (soerr) return std::string("connect: ") + std::strerror(soerr);
  std::vector<uint8_t> buf(64 * 1024);
  uint64_t sent = 0;
  size_t have = 0, off = 0;
  std::string failure;
  const Nanos start = h.clock.now();
  if (!h.pump_until(
          [&] {
            while (sent < kTcpBytes) {
              if (off == have) {
                have = size_t(std::min<uint64_t>(buf.size(), kTcpBytes - sent));
                tcp_bulk_pattern(kPatternSeed, sent, buf.data(), have);
                off = 0;
              }
              ssize_t w = api.send(s, buf.data() + off, have - off, MSG_NOSIGNAL);
              if (w == -EAGAIN) return false;
              if (w < 0) {
                failure = "send: " + err(w);
                return true;
              }
              off += size_t(w);
              sent += uint64_t(w);
            }
            return true;
          },
          kTransferLimit))
    return "sent only " + std::to_string(sent) + " bytes in time";
  if (!failure.empty()) return failure;
  if ((r = api.shutdown(s, SHUT_WR)) < 0) return "shutdown: " + err(r);
  StreamSummary summary;
  size_t got = 0;
  if (!h.pump_until(
          [&] {
            while (got < sizeof summary) {
              ssize_t k = api.recv(s, reinterpret_cast<uint8_t*>(&summary) + got, sizeof summary - got, 0);
              if (k == -EAGAIN) return false;
              if (k <= 0) {
                failure = "recv of the summary: " + err(k);
                return true;
              }
              got += size_t(k);
            }
            uint8_t extra;
            ssize_t k = api.recv(s, &extra, 1, 0);
            if (k == -EAGAIN) return false;
            if (k != 0) failure = "after the summary, recv gave " + err(k) + " instead of EOF";
            return true;
          },
          kTransferLimit))
    return "no summary and FIN from host 1";
  const Nanos done = h.clock.now();
  if (!failure.empty()) return failure;
  if (summary.bytes != kTcpBytes || summary.mismatch != UINT64_MAX)
    return "host 1 got " + std::to_string(summary.bytes) + " bytes, first wrong at " + std::to_string(summary.mismatch);
  api.close(s);
  // Our last ACK (of host 1's FIN) must leave: poll a little longer (we are in TIME_WAIT).
  h.pump_until([&] { return h.stack->tcp().count_in_state(TcpState::kTimeWait) == 1; }, kStepLimit);
  h.pump_until([] { return false; }, 50 * kMilli);
  const double secs = double(done - start) / 1e9;
  std::printf("host 0: UDP %u echoes (%u resent): round trip min %.1f us, median %.1f us, p99 %.1f us, max %.1f us\n",
              kDatagrams, resent, us(rtts.front()), us(rtts[rtts.size() / 2]), us(rtts[rtts.size() * 99 / 100]),
              us(rtts.back()));
  std::printf("host 0: TCP %.2f MB in %.1f ms = %.1f Mbit/s goodput (first send to the summary back); "
              "%llu retransmits (%llu fast, %llu timeouts); device tx dropped (socket full) %llu\n",
              double(kTcpBytes) / 1e6, secs * 1e3, double(kTcpBytes) * 8 / 1e6 / secs,
              (unsigned long long)h.counter("tcp.retransmits"), (unsigned long long)h.counter("tcp.fast_retransmits"),
              (unsigned long long)h.counter("tcp.rto_timeouts"), (unsigned long long)h.device().counters().tx_drop_eagain);
  return {};
}

std::unique_ptr<test::Child> fork_host(const std::function<std::string()>& body) {
  return std::make_unique<test::Child>(
      [body]() -> int {
        std::string why = body();
        if (!why.empty()) std::printf("child: %s\n", why.c_str());
        std::fflush(nullptr);
        return why.empty() ? 0 : 1;
      },
      kChildAlarm);
}

// Waits for `c` to exit (killed, by its pid, if it overstays); its result.
test::ChildResult wait_child(test::Child& c, Nanos limit) {
  test::wait_for(c, limit);
  return c.result();
}

bool contains(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

BOOST_AUTO_TEST_CASE(two_processes_exchange_udp_and_a_checked_tcp_stream_through_netsim) {
  const std::string program = netsim_program();
  BOOST_REQUIRE_MESSAGE(access(program.c_str(), X_OK) == 0, program << " is missing: build the shunt-netsim target");
  TempDir dir;
  BOOST_REQUIRE(!dir.path.empty());
  // --duration bounds the run; netsim ends by itself as soon as both hosts have left.
  test::Child netsim({program, "--dir", dir.path, "--topology", "two-hosts", "--rate", "1Gbps", "--delay", "50us",
                      "--duration", "200", "--wait", "60", "--pcap", dir.path + "/trace"});
  BOOST_REQUIRE(netsim.started());
  auto host1 = fork_host([p = dir.path + "/host1.sock"] { return echo_and_receive(p); });
  auto host0 = fork_host([p = dir.path + "/host0.sock"] { return ping_and_send(p); });
  BOOST_REQUIRE(host0->started());
  BOOST_REQUIRE(host1->started());

  const test::ChildResult r0 = wait_child(*host0, Nanos(kChildAlarm) * kSecond);
  const test::ChildResult r1 = wait_child(*host1, 30 * kSecond);
  const test::ChildResult rn = wait_child(netsim, 30 * kSecond);
  BOOST_TEST_MESSAGE(r0.output << r1.output << rn.output);
  BOOST_TEST(r0.code() == 0, "host 0 exit status " << r0.status << ": " << r0.output);
  BOOST_TEST(r1.code() == 0, "host 1 exit status " << r1.status << ": " << r1.output);
  BOOST_TEST(rn.code() == 0, "netsim exit status " << rn.status << ", timed out " << rn.timed_out << ": " << rn.output);
  BOOST_TEST(contains(rn.output, "netsim: host0 connected"), rn.output);
  BOOST_TEST(contains(rn.output, "netsim: host1 connected"), rn.output);
  BOOST_TEST(contains(rn.output, "netsim: running 2 hosts, two-hosts, 1Gbps 50us"), rn.output);
  BOOST_TEST(contains(rn.output, "netsim: every host has left"), rn.output);
  BOOST_TEST(contains(rn.output, "netsim: host0: from host "), rn.output);
  BOOST_TEST(contains(rn.output, "netsim: host1: from host "), rn.output);
  BOOST_TEST(contains(rn.output, "frames dropped in all"), rn.output);
  // ns-3's pcap per device: what each real host sent and received.
  for (const char* f : {"/trace-host0.pcap", "/trace-host1.pcap"}) {
    struct stat st{};
    BOOST_TEST((stat((dir.path + f).c_str(), &st) == 0 && st.st_size > 24), f);
  }
}

BOOST_AUTO_TEST_CASE(duration_ends_a_run_and_the_host_device_sees_the_other_end_close) {
  const std::string program = netsim_program();
  BOOST_REQUIRE(access(program.c_str(), X_OK) == 0);
  TempDir dir;
  test::Child netsim({program, "--dir", dir.path, "--hosts", "1", "--topology", "star", "--duration", "1"});
  BOOST_REQUIRE(netsim.started());
  auto host = fork_host([p = dir.path + "/host0.sock"]() -> std::string {
    Host h(p, "10.0.0.1");
    if (!h.ok()) return h.error;
    if (!h.pump_until([&] { return !h.device().peer_open(); }, kTransferLimit))
      return "the device never saw netsim close the socket";
    return {};
  });
  const test::ChildResult rh = wait_child(*host, kTransferLimit + 10 * kSecond);
  const test::ChildResult rn = wait_child(netsim, 30 * kSecond);
  BOOST_TEST(rh.code() == 0, rh.output);
  BOOST_TEST(rn.code() == 0, rn.output);
  BOOST_TEST(contains(rn.output, "netsim: running 1 hosts, star"), rn.output);
  BOOST_TEST(contains(rn.output, "netsim: stopped after 1.0"), rn.output);
}

BOOST_AUTO_TEST_CASE(bad_options_and_missing_hosts_are_one_clear_line_and_a_nonzero_status) {
  const std::string program = netsim_program();
  BOOST_REQUIRE(access(program.c_str(), X_OK) == 0);
  TempDir dir;
  struct Case {
    std::vector<std::string> args;
    int code;
    std::string says;
  };
  const std::vector<Case> cases = {
      {{"--hosts", "2"}, 2, "--dir DIR is required"},
      {{"--dir", dir.path, "--rate", "fast"}, 2, "--rate fast: expected a data rate"},
      {{"--dir", dir.path, "--delay", "5 parsecs"}, 2, "--delay 5 parsecs: expected a time"},
      {{"--dir", dir.path, "--loss", "2"}, 2, "--loss 2: expected a number in [0, 1]"},
      {{"--dir", dir.path, "--topology", "ring"}, 2, "expected two-hosts or star"},
      {{"--dir", dir.path, "--hosts", "3"}, 2, "two-hosts takes exactly 2 hosts"},
      {{"--dir", dir.path, "--bogus"}, 2, "unknown option '--bogus'"},
      {{"--dir", dir.path, "--wait", "0.2"}, 1, "only 0 of 2 hosts connected within 0.2 s (missing: host0, host1)"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> argv{program};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    test::ChildResult r = test::run(argv, 20 * kSecond);
    BOOST_TEST(r.code() == c.code, test::join(argv) << ": status " << r.status << ": " << r.output);
    BOOST_TEST(contains(r.output, c.says), test::join(argv) << ": " << r.output);
  }
  test::ChildResult help = test::run({program, "--help"});
  BOOST_TEST(help.code() == 0);
  BOOST_TEST(contains(help.output, "--topology"));
}

BOOST_AUTO_TEST_CASE(unix_device_specs_that_cannot_connect_are_one_clear_line) {
  TempDir dir;
  MonotonicClock clock;
  Config config;
  // A socket file nobody listens on: bound, never listening.
  const std::string dead = dir.path + "/dead.sock";
  int fd = ::socket(AF_UNIX, SOCK_SEQPACKET, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::memcpy(a.sun_path, dead.data(), dead.size());
  BOOST_REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  struct Case {
    std::string spec;
    std::string says;
  };
  const std::vector<Case> cases = {
      {"unix", "needs a socket: unix:path=DIR/hostN.sock"},
      {"unix:path=" + dir.path + "/none.sock", "no such socket"},
      {"unix:path=" + dead, "Connection refused"},
      {"unix:path=" + dead + ",speed=9", "unknown option 'speed' for unix"},
      {"unix:path=" + dead + ",mac=zz", "mac=zz: not a MAC address"},
      {"unix:path=" + dead + ",mtu=9000", "mtu=9000"},
      {"unix:path=/" + std::string(120, 'x'), "longer than"},
  };
  for (const Case& c : cases) {
    OpenedDevice d = open_device(c.spec, clock, config);
    BOOST_TEST(!d.device, c.spec);
    BOOST_TEST(d.error.rfind("SHUNT_DEVICE=" + c.spec + ": ", 0) == 0u, d.error);
    BOOST_TEST(d.error.find('\n') == std::string::npos, d.error);
    BOOST_TEST(contains(d.error, c.says), d.error << " (expected: " << c.says << ")");
  }
  ::close(fd);
}

}  // namespace
}  // namespace shunt
