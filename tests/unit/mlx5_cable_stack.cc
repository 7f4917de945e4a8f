// The whole path between two real processes in real time: socket API, stack, mlx5 driver, the
// simulated ConnectX, and the shared-memory cable (docs/cable.md). The parent and a forked child
// each open `mlx5sim:cable=<name>,mac=...` with shunt::open_device on a MonotonicClock, build a
// Stack (10.9.0.1/24 and fd09::1/64 in the parent, .2 and ::2 in the child) and a SocketApi, and
// busy-poll the stack (the driver's service() runs the model's due events and polls the cable).
//
// Cases: 1000 UDP requests and responses of 8 to 1400 bytes with their contents checked; 20 MB
// over TCP from the child to the parent over IPv4 and over IPv6, every byte checked, a checksum
// echoed back and a clean close both ways; the child dying in the middle of a transfer (the
// parent's cable says so, its TCP connection times out with TCP_USER_TIMEOUT, nothing hangs);
// bad device specs. Real-time figures are printed with BOOST_TEST_MESSAGE and never asserted.
//
// Every wait is bounded: each process gives up after a generous limit, the child also kills
// itself with alarm(), and the parent kills a child that overstays. A run on a loaded machine is
// slower, never stuck.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "nicmodel/nicmodel.h"
#include "stack/core/clock.h"
#include "stack/core/config.h"
#include "stack/driver/device_registry.h"
#include "stack/net/stack.h"
#include "stack/net/tcp/tcp.h"
#include "stack/socket/socket_api.h"
#include "support/child_process.h"
#include "support/kernel_report.h"

namespace shunt {
namespace {

using test::make_addr;
using test::SockAddr;

constexpr Nanos kSetupLimit = 20 * kSecond;     // open, peer attach, handshake
constexpr Nanos kStepLimit = 10 * kSecond;      // one datagram's answer, one small exchange
constexpr Nanos kTransferLimit = 120 * kSecond;  // 20 MB on a loaded machine
constexpr unsigned kChildAlarm = 200;            // seconds; the child dies after this whatever happens
constexpr uint64_t kTcpBytes = 20ull * 1000 * 1000;

std::string cable_name(const char* tag) { return "stk" + std::to_string(getpid()) + "-" + tag; }

double ms(Nanos d) { return double(d) / 1e6; }
double us(Nanos d) { return double(d) / 1e3; }

// One process's end: the device opened by spec, its stack and socket API.
struct Node {
  MonotonicClock clock;
  Config config;
  OpenedDevice dev;
  nicmodel::CableNic* nic = nullptr;
  std::unique_ptr<Stack> stack;
  std::unique_ptr<SocketApi> api;
  std::string error;
  std::string v4, v6;

  // host 1: the parent, host 2: the child. Nothing is polled here, so sockets bound before the
  // first poll see every frame the peer sends (frames wait in the cable until we poll).
  Node(const std::string& cable, int host) {
    config.dad_transmits = 0;  // RFC 4862 5.4: no DAD wait, the addresses are ours at once
    const std::string spec = "mlx5sim:cable=" + cable + ",mac=02:53:48:09:00:0" + std::to_string(host);
    dev = open_device(spec, clock, config);
    if (!dev.device) {
      error = dev.error;
      return;
    }
    nic = nicmodel::cable_nic(dev);
    if (!nic) {
      error = spec + ": opened, but not as a cable NIC";
      return;
    }
    v4 = "10.9.0." + std::to_string(host);
    v6 = "fd09::" + std::to_string(host);
    stack = std::make_unique<Stack>(*dev.device, clock, config);
    stack->add_address(*IpAddr::parse(v4), 24);
    stack->add_address(*IpAddr::parse(v6), 64);
    api = std::make_unique<SocketApi>(*stack);
  }
  ~Node() {
    api.reset();
    stack.reset();  // detaches the driver: the model forgets the pool's buffers
    dev.device.reset();
    dev.keep.reset();  // the model, then the cable (detached; unlinked by the last side)
  }
  bool ok() const { return error.empty(); }

  // Busy-polls the stack until pred() holds or `limit` passes.
  bool pump_until(const std::function<bool()>& pred, Nanos limit) {
    const Nanos end = clock.now() + limit;
    for (uint64_t i = 1;; ++i) {
      stack->poll();
      if (pred()) return true;
      if ((i & 63) == 0) {
        if (clock.now() > end) return false;
        // Two processes busy-poll on a shared machine: give the core away now and then.
        if ((i & 1023) == 0) sched_yield();
      }
    }
  }
  bool peer_present() const { return nic->cable->peer_present(); }
  std::string status() const { return nic->cable->status(); }
  bool wait_peer() {
    return pump_until([&] { return peer_present(); }, kSetupLimit);
  }
  // Keeps serving until the other process has left the cable: the model puts our last frames
  // (a final ACK, an echo) on the wire only while the stack is polled.
  bool serve_until_peer_leaves(Nanos limit) {
    uint64_t n = 0;
    return pump_until([&] { return ++n % 256 == 0 && !peer_present(); }, limit);
  }
  uint64_t counter(const char* name) const { return stack->counters().get(name); }
  // "mlx5.*" of the driver, "nic.*" of the model, "cable.*" of the cable.
  uint64_t driver_counter(const char* name) const {
    auto* driver = dynamic_cast<const Mlx5Driver*>(dev.device.get());
    return driver ? driver->counters().get(name) : 0;
  }
  uint64_t nic_counter(const char* name) const { return nic->model->counters().get(name); }
  uint64_t cable_counter(const char* name) const { return nic->cable->counters().get(name); }
  uint64_t sum(const char* prefix) const {
    return stack->counters().sum(prefix) + nic->model->counters().sum(prefix) + nic->cable->counters().sum(prefix);
  }
};

int bound_socket(SocketApi& api, int type, const std::string& ip, uint16_t port) {
  socklen_t len = 0;
  SockAddr a = make_addr(ip, port, &len);
  int s = api.socket(a.sa.sa_family, type | SOCK_NONBLOCK, 0);
  if (s < 0) return s;
  int one = 1;
  api.setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  int r = api.bind(s, &a.sa, len);
  if (r < 0) {
    api.close(s);
    return r;
  }
  return s;
}

std::string err(long r) { return std::to_string(r) + " (" + std::strerror(int(-r)) + ")"; }

// ----- Contents.

// UDP request `seq`: its length (8..1400) and bytes; the response is every byte inverted.
size_t request_len(uint32_t seq) { return 8 + (size_t(seq) * 389u) % 1393u; }
void fill_request(uint32_t seq, uint8_t* p, size_t len) {
  std::memcpy(p, &seq, 4);
  for (size_t k = 4; k < len; ++k) p[k] = uint8_t(seq * 31u + k * 7u + (k >> 8));
}

// The TCP stream: word k is splitmix64(seed ^ k).
uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
void fill_pattern(uint64_t seed, uint64_t offset, uint8_t* out, size_t len) {
  while (len > 0) {
    const uint64_t word = splitmix64(seed ^ (offset / 8));
    uint8_t bytes[8];
    std::memcpy(bytes, &word, 8);
    const size_t at = offset % 8;
    const size_t n = std::min<size_t>(8 - at, len);
    std::memcpy(out, bytes + at, n);
    out += n;
    offset += n;
    len -= n;
  }
}
uint64_t fnv1a(uint64_t h, const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}
constexpr uint64_t kFnvBasis = 0xcbf29ce484222325ull;
constexpr uint64_t kSeed = 0x5348554e54434142ull;
constexpr size_t kChunk = 64 * 1024;

// What the parent echoes back after the stream: how many bytes it got and their checksum.
struct StreamSummary {
  uint64_t bytes = 0;
  uint64_t hash = 0;
};

// Runs `body` in a forked child; a non-empty result is printed and makes the exit status 1.
std::unique_ptr<test::Child> fork_child(const std::function<std::string()>& body) {
  return std::make_unique<test::Child>(
      [body]() -> int {
        std::string why = body();
        if (!why.empty()) std::printf("child: %s\n", why.c_str());
        return why.empty() ? 0 : 1;
      },
      kChildAlarm);
}

// Waits for the child (it is killed if it overstays) and checks its exit status.
void finish_child(test::Child& c, Nanos limit, int want_code = 0) {
  const bool exited = test::wait_for(c, limit);
  test::ChildResult r = c.result();
  BOOST_TEST(exited, "the child did not exit in time; its output: " << r.output);
  BOOST_TEST(r.code() == want_code, "child exit status " << r.status << ", output: " << r.output);
  if (!r.output.empty()) BOOST_TEST_MESSAGE(r.output);
}

// ----- UDP.

std::string udp_child(const std::string& cable, uint32_t count) {
  Node n(cable, 2);
  if (!n.ok()) return n.error;
  SocketApi& api = *n.api;
  const int s = bound_socket(api, SOCK_DGRAM, n.v4, 7002);
  if (s < 0) return "bind: " + err(s);
  if (!n.wait_peer()) return "no peer: " + n.status();
  std::vector<uint8_t> buf(2048), want(2048);
  for (uint32_t seq = 0; seq < count; ++seq) {
    SockAddr from{};
    socklen_t flen = sizeof from;
    ssize_t got = -EAGAIN;
    if (!n.pump_until(
            [&] {
              flen = sizeof from;
              got = api.recvfrom(s, buf.data(), buf.size(), 0, &from.sa, &flen);
              return got != -EAGAIN;
            },
            kStepLimit))
      return "request " + std::to_string(seq) + " did not come; cable: " + n.status();
    if (got < 0) return "recvfrom: " + err(got);
    const size_t len = request_len(seq);
    fill_request(seq, want.data(), len);
    if (size_t(got) != len || std::memcmp(buf.data(), want.data(), len) != 0)
      return "request " + std::to_string(seq) + ": " + std::to_string(got) + " bytes, expected " +
             std::to_string(len) + " with its pattern";
    for (size_t k = 0; k < len; ++k) buf[k] = uint8_t(~buf[k]);
    ssize_t sent = api.sendto(s, buf.data(), len, 0, &from.sa, flen);
    if (sent != ssize_t(len)) return "sendto: " + err(sent);
  }
  api.close(s);
  if (!n.serve_until_peer_leaves(kSetupLimit)) return "the parent did not leave the cable";
  return {};
}

BOOST_AUTO_TEST_CASE(udp_requests_and_responses_of_8_to_1400_bytes_cross_between_processes) {
  constexpr uint32_t kCount = 1000;
  const std::string cable = cable_name("udp");
  auto child = fork_child([cable] { return udp_child(cable, kCount); });
  BOOST_REQUIRE(child->started());
  std::vector<Nanos> rtts;
  uint64_t bytes = 0;
  {
    Node n(cable, 1);
    BOOST_REQUIRE_MESSAGE(n.ok(), n.error);
    SocketApi& api = *n.api;
    const int s = bound_socket(api, SOCK_DGRAM, n.v4, 7001);
    BOOST_REQUIRE_MESSAGE(s >= 0, "bind: " << err(s));
    BOOST_REQUIRE_MESSAGE(n.wait_peer(), "the child never attached: " << n.status());
    const uint64_t cable_drops_before = n.sum("cable.drop.");
    socklen_t tolen = 0;
    const SockAddr to = make_addr("10.9.0.2", 7002, &tolen);
    std::vector<uint8_t> req(2048), resp(2048);
    uint32_t bad = 0;
    std::string first_bad;
    const Nanos start = n.clock.now();
    for (uint32_t seq = 0; seq < kCount; ++seq) {
      const size_t len = request_len(seq);
      fill_request(seq, req.data(), len);
      const Nanos t0 = n.clock.now();
      ssize_t sent = api.sendto(s, req.data(), len, 0, &to.sa, tolen);
      BOOST_REQUIRE_MESSAGE(sent == ssize_t(len), "sendto " << seq << ": " << err(sent));
      ssize_t got = -EAGAIN;
      SockAddr from{};
      socklen_t flen = sizeof from;
      const bool answered = n.pump_until(
          [&] {
            flen = sizeof from;
            got = api.recvfrom(s, resp.data(), resp.size(), 0, &from.sa, &flen);
            return got != -EAGAIN;
          },
          kStepLimit);
      BOOST_REQUIRE_MESSAGE(answered, "no response to request " << seq << "; cable: " << n.status());
      rtts.push_back(n.clock.now() - t0);
      bool good = got == ssize_t(len) && from.sa.sa_family == AF_INET &&
                  from.v4.sin_port == htons(7002) && from.v4.sin_addr.s_addr == to.v4.sin_addr.s_addr;
      for (size_t k = 0; good && k < len; ++k) good = resp[k] == uint8_t(~req[k]);
      if (!good && bad++ == 0)
        first_bad = "response " + std::to_string(seq) + ": " + std::to_string(got) + " bytes, expected " +
                    std::to_string(len) + " inverted";
      bytes += 2 * len;
    }
    const Nanos elapsed = n.clock.now() - start;
    BOOST_TEST(bad == 0u, first_bad);
    BOOST_TEST(n.sum("udp.drop.") == 0u);
    // Announcements sent before the child attached may have gone nowhere; nothing since.
    BOOST_TEST(n.sum("cable.drop.") == cable_drops_before);
    BOOST_TEST(n.nic_counter("nic.rx.drop.no_wqe") == 0u);
    api.close(s);
    std::vector<Nanos> sorted = rtts;
    std::sort(sorted.begin(), sorted.end());
    BOOST_TEST_MESSAGE("UDP over the cable, " << kCount << " round trips of 8..1400 bytes in " << ms(elapsed)
                                              << " ms: round trip min " << us(sorted.front()) << " us, median "
                                              << us(sorted[sorted.size() / 2]) << " us, p99 "
                                              << us(sorted[sorted.size() * 99 / 100]) << " us, max "
                                              << us(sorted.back()) << " us; " << double(kCount) / (double(elapsed) / 1e9)
                                              << " round trips/s, " << double(bytes) / 1e6 / (double(elapsed) / 1e9)
                                              << " MB/s both ways");
  }  // leaving the cable lets the child finish
  finish_child(*child, kSetupLimit);
}

// ----- TCP.

// The child: connects to the parent, sends kTcpBytes of the pattern, shuts down its sending
// half, reads the parent's summary and then its FIN, and checks both ends closed cleanly.
std::string tcp_child(const std::string& cable, bool v6, uint16_t port) {
  Node n(cable, 2);
  if (!n.ok()) return n.error;
  SocketApi& api = *n.api;
  if (!n.wait_peer()) return "no peer: " + n.status();
  socklen_t len = 0;
  const SockAddr to = make_addr(v6 ? "fd09::1" : "10.9.0.1", port, &len);
  const int s = api.socket(to.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (s < 0) return "socket: " + err(s);
  int r = api.connect(s, &to.sa, len);
  if (r != -EINPROGRESS && r != 0) return "connect: " + err(r);
  if (!n.pump_until([&] { return api.poll_events(s) & (POLLOUT | POLLERR | POLLHUP); }, kSetupLimit))
    return "connect did not complete; cable: " + n.status();
  int soerr = 0;
  socklen_t elen = sizeof soerr;
  api.getsockopt(s, SOL_SOCKET, SO_ERROR, &soerr, &elen);
  if (soerr) return std::string("connect: ") + std::strerror(soerr);

  std::vector<uint8_t> buf(kChunk);
  uint64_t sent = 0, hash = kFnvBasis;
  size_t have = 0, off = 0;  // bytes of `buf` filled from the pattern, and sent of them
  const Nanos start = n.clock.now();
  std::string failure;
  const bool done = n.pump_until(
      [&] {
        while (sent < kTcpBytes) {
          if (off == have) {
            have = size_t(std::min<uint64_t>(kChunk, kTcpBytes - sent));
            fill_pattern(kSeed, sent, buf.data(), have);
            hash = fnv1a(hash, buf.data(), have);
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
      kTransferLimit);
  if (!failure.empty()) return failure;
  if (!done) return "sent only " + std::to_string(sent) + " bytes in time; cable: " + n.status();
  r = api.shutdown(s, SHUT_WR);
  if (r < 0) return "shutdown: " + err(r);
  const Nanos sent_at = n.clock.now();

  // The parent's summary, then its FIN.
  StreamSummary summary;
  size_t got = 0;
  bool eof = false;
  if (!n.pump_until(
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
            eof = true;
            return true;
          },
          kTransferLimit))
    return "no summary and FIN from the parent; cable: " + n.status();
  if (!failure.empty()) return failure;
  if (summary.bytes != sent || summary.hash != hash)
    return "the parent got " + std::to_string(summary.bytes) + " bytes with another checksum";
  // Both FINs exchanged and ours acknowledged: TIME_WAIT (we closed first), no error.
  tcp_info ti{};
  socklen_t tlen = sizeof ti;
  api.getsockopt(s, IPPROTO_TCP, TCP_INFO, &ti, &tlen);
  if (!n.pump_until([&] { return n.stack->tcp().count_in_state(TcpState::kTimeWait) == 1; }, kStepLimit))
    return "not in TIME_WAIT after both FINs (TCP_INFO state " + std::to_string(ti.tcpi_state) + ")";
  elen = sizeof soerr;
  api.getsockopt(s, SOL_SOCKET, SO_ERROR, &soerr, &elen);
  if (soerr) return std::string("SO_ERROR after close: ") + std::strerror(soerr);
  api.close(s);
  std::printf("child (%s): sent %.1f MB in %.1f ms = %.1f MB/s; %llu segments retransmitted (%llu fast "
              "retransmits, %llu timeouts), %llu resets; cable drops ring_full %llu\n",
              v6 ? "IPv6" : "IPv4", double(sent) / 1e6, ms(sent_at - start),
              double(sent) / 1e6 / (double(sent_at - start) / 1e9),
              (unsigned long long)n.counter("tcp.retransmits"), (unsigned long long)n.counter("tcp.fast_retransmits"),
              (unsigned long long)n.counter("tcp.rto_timeouts"), (unsigned long long)n.counter("tcp.resets_sent"),
              (unsigned long long)n.cable_counter("cable.drop.ring_full"));
  if (!n.serve_until_peer_leaves(kSetupLimit)) return "the parent did not leave the cable";
  return {};
}

void tcp_transfer(bool v6) {
  const uint16_t port = v6 ? 8006 : 8004;
  const std::string cable = cable_name(v6 ? "tcp6" : "tcp4");
  auto child = fork_child([cable, v6, port] { return tcp_child(cable, v6, port); });
  BOOST_REQUIRE(child->started());
  {
    Node n(cable, 1);
    BOOST_REQUIRE_MESSAGE(n.ok(), n.error);
    SocketApi& api = *n.api;
    const int ls = bound_socket(api, SOCK_STREAM, v6 ? n.v6 : n.v4, port);
    BOOST_REQUIRE_MESSAGE(ls >= 0, "bind: " << err(ls));
    BOOST_REQUIRE(api.listen(ls, 4) == 0);
    BOOST_REQUIRE_MESSAGE(n.wait_peer(), "the child never attached: " << n.status());
    int s = -1;
    const Nanos t_accept = n.clock.now();
    BOOST_REQUIRE_MESSAGE(n.pump_until(
                              [&] {
                                s = api.accept(ls, nullptr, nullptr, SOCK_NONBLOCK);
                                return s != -EAGAIN;
                              },
                              kSetupLimit),
                          "no connection from the child; cable: " << n.status());
    BOOST_REQUIRE_MESSAGE(s >= 0, "accept: " << err(s));
    const Nanos connected = n.clock.now();
    SockAddr peer{};
    socklen_t plen = sizeof peer;
    BOOST_TEST(api.getpeername(s, &peer.sa, &plen) == 0);
    BOOST_TEST(peer.sa.sa_family == (v6 ? AF_INET6 : AF_INET));

    // Every byte checked as it comes.
    std::vector<uint8_t> buf(kChunk), want(kChunk);
    uint64_t got = 0, hash = kFnvBasis, mismatch = UINT64_MAX;
    Nanos first_byte = 0;
    std::string failure;
    const bool eof = n.pump_until(
        [&] {
          for (;;) {
            ssize_t k = api.recv(s, buf.data(), buf.size(), 0);
            if (k == -EAGAIN) return false;
            if (k < 0) {
              failure = "recv: " + err(k);
              return true;
            }
            if (k == 0) return true;
            if (got == 0) first_byte = n.clock.now();
            fill_pattern(kSeed, got, want.data(), size_t(k));
            if (mismatch == UINT64_MAX && std::memcmp(buf.data(), want.data(), size_t(k)) != 0) {
              for (size_t i = 0; i < size_t(k); ++i) {
                if (buf[i] != want[i]) {
                  mismatch = got + i;
                  break;
                }
              }
            }
            hash = fnv1a(hash, buf.data(), size_t(k));
            got += uint64_t(k);
          }
        },
        kTransferLimit);
    const Nanos last_byte = n.clock.now();
    BOOST_REQUIRE_MESSAGE(failure.empty(), failure);
    BOOST_REQUIRE_MESSAGE(eof, "no EOF after " << got << " bytes; cable: " << n.status());
    BOOST_TEST(got == kTcpBytes);
    BOOST_TEST(mismatch == UINT64_MAX, "first wrong byte at offset " << mismatch);

    tcp_info ti{};
    socklen_t tlen = sizeof ti;
    api.getsockopt(s, IPPROTO_TCP, TCP_INFO, &ti, &tlen);

    // The summary, then our FIN: LAST_ACK until the child acknowledges it, then gone.
    const StreamSummary summary{got, hash};
    BOOST_REQUIRE(api.send(s, &summary, sizeof summary, MSG_NOSIGNAL) == ssize_t(sizeof summary));
    BOOST_TEST(api.close(s) == 0);
    BOOST_TEST(n.pump_until([&] { return n.stack->tcp().connection_count() == 0; }, kStepLimit),
               "the connection did not close cleanly (" << n.stack->tcp().connection_count() << " left)");
    BOOST_TEST(api.close(ls) == 0);
    BOOST_TEST(n.counter("tcp.resets_sent") == 0u);
    BOOST_TEST(n.counter("tcp.resets_received") == 0u);
    const double secs = double(last_byte - first_byte) / 1e9;
    BOOST_TEST_MESSAGE("TCP over the cable (" << (v6 ? "IPv6" : "IPv4") << "): connection accepted "
                                              << us(connected - t_accept) << " us after the child was seen attached; "
                                              << double(got) / 1e6 << " MB received in " << secs * 1e3 << " ms = "
                                              << double(got) / 1e6 / secs << " MB/s (" << double(got) * 8 / 1e9 / secs
                                              << " Gbit/s); smoothed RTT " << ti.tcpi_rtt << " us; parent: "
                                              << n.counter("tcp.rx_segments")
                                              << " segments in, " << n.counter("tcp.tx_segments") << " out, "
                                              << n.driver_counter("mlx5.rx.frames") << " driver rx frames, NIC drops "
                                              << n.nic_counter("nic.rx.drop.no_wqe") << " (no WQE)");
  }
  finish_child(*child, kSetupLimit);
}

BOOST_AUTO_TEST_CASE(twenty_megabytes_over_tcp_ipv4_arrive_intact_and_both_sides_close_cleanly) {
  tcp_transfer(false);
}

BOOST_AUTO_TEST_CASE(twenty_megabytes_over_tcp_ipv6_arrive_intact_and_both_sides_close_cleanly) {
  tcp_transfer(true);
}

// ----- The peer dies.

constexpr int kDiedAsPlanned = 42;

// The child connects, reads 2 MB of the parent's stream and _exits: no destructor, no FIN, its
// side of the cable released by the kernel.
std::string dying_child(const std::string& cable) {
  Node n(cable, 2);
  if (!n.ok()) return n.error;
  SocketApi& api = *n.api;
  if (!n.wait_peer()) return "no peer: " + n.status();
  socklen_t len = 0;
  const SockAddr to = make_addr("10.9.0.1", 8010, &len);
  const int s = api.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int r = api.connect(s, &to.sa, len);
  if (r != -EINPROGRESS && r != 0) return "connect: " + err(r);
  std::vector<uint8_t> buf(kChunk);
  uint64_t got = 0;
  std::string failure;
  n.pump_until(
      [&] {
        ssize_t k = api.recv(s, buf.data(), buf.size(), 0);
        if (k == -EAGAIN || k == -ENOTCONN) return false;
        if (k <= 0) {
          failure = "recv: " + err(k);
          return true;
        }
        got += uint64_t(k);
        return got >= 2'000'000;
      },
      kTransferLimit);
  if (!failure.empty()) return failure;
  if (got < 2'000'000) return "only " + std::to_string(got) + " bytes came";
  std::fflush(nullptr);
  _exit(kDiedAsPlanned);
}

BOOST_AUTO_TEST_CASE(a_peer_that_dies_mid_transfer_is_reported_by_the_cable_and_times_out_the_connection) {
  const std::string cable = cable_name("die");
  auto child = fork_child([cable] { return dying_child(cable); });
  BOOST_REQUIRE(child->started());
  Node n(cable, 1);
  BOOST_REQUIRE_MESSAGE(n.ok(), n.error);
  SocketApi& api = *n.api;
  const int ls = bound_socket(api, SOCK_STREAM, n.v4, 8010);
  BOOST_REQUIRE(ls >= 0);
  BOOST_REQUIRE(api.listen(ls, 4) == 0);
  BOOST_REQUIRE_MESSAGE(n.wait_peer(), "the child never attached: " << n.status());
  int s = -1;
  BOOST_REQUIRE(n.pump_until(
      [&] {
        s = api.accept(ls, nullptr, nullptr, SOCK_NONBLOCK);
        return s != -EAGAIN;
      },
      kSetupLimit));
  BOOST_REQUIRE_MESSAGE(s >= 0, "accept: " << err(s));
  const int user_timeout_ms = 500;
  BOOST_REQUIRE(api.setsockopt(s, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms, sizeof user_timeout_ms) == 0);

  // Send until the connection fails; note when the cable first says the peer is gone.
  std::vector<uint8_t> buf(kChunk);
  uint64_t sent = 0;
  ssize_t last = 0;
  Nanos peer_gone_at = 0, failed_at = 0;
  uint64_t i = 0;
  const bool failed = n.pump_until(
      [&] {
        if (++i % 128 == 0 && !peer_gone_at && !n.peer_present()) peer_gone_at = n.clock.now();
        fill_pattern(kSeed, sent, buf.data(), buf.size());
        last = api.send(s, buf.data(), buf.size(), MSG_NOSIGNAL);
        if (last > 0) sent += uint64_t(last);
        return last < 0 && last != -EAGAIN;
      },
      kTransferLimit);
  failed_at = n.clock.now();
  BOOST_REQUIRE_MESSAGE(failed, "the connection never failed after " << sent << " bytes; cable: " << n.status());
  BOOST_TEST(last == -ETIMEDOUT, "send failed with " << err(last));
  BOOST_TEST(sent >= 2'000'000u);
  if (!peer_gone_at) peer_gone_at = failed_at;

  const std::string status = n.status();
  const std::string prefix = "cable " + cable + ": peer (pid ";
  BOOST_TEST(status.rfind(prefix, 0) == 0u, status);
  BOOST_TEST(status.ends_with(") exited"), status);
  BOOST_TEST(status.find("pid " + std::to_string(getpid()) + ")") == std::string::npos, status);
  BOOST_TEST(!n.peer_present());
  BOOST_TEST(n.cable_counter("cable.drop.no_peer") > 0u);
  BOOST_TEST(n.nic_counter("nic.tx.drop.port") > 0u);
  BOOST_TEST(n.counter("tcp.timeouts") == 1u);

  // The stack keeps working on a dead cable: polls, a new socket, a datagram into the void.
  BOOST_TEST(api.close(s) == 0);
  BOOST_TEST(api.close(ls) == 0);
  const int u = bound_socket(api, SOCK_DGRAM, n.v4, 7010);
  socklen_t tolen = 0;
  const SockAddr to = make_addr("10.9.0.2", 7010, &tolen);
  BOOST_TEST(api.sendto(u, "x", 1, 0, &to.sa, tolen) == 1);
  n.pump_until([] { return false; }, 20 * kMilli);
  BOOST_TEST(api.close(u) == 0);
  BOOST_TEST_MESSAGE("peer death: " << double(sent) / 1e6 << " MB sent before the connection failed; the cable "
                                    << "said \"" << status << "\"; TCP_USER_TIMEOUT " << user_timeout_ms
                                    << " ms: ETIMEDOUT " << ms(failed_at - peer_gone_at)
                                    << " ms after the peer was first seen gone");
  finish_child(*child, kSetupLimit, kDiedAsPlanned);
}

// ----- Bad specs.

BOOST_AUTO_TEST_CASE(bad_device_specs_are_one_clear_line) {
  MonotonicClock clock;
  Config config;
  struct Case {
    std::string spec;
    std::string says;
  };
  const std::string ok = cable_name("bad");
  const std::vector<Case> cases = {
      {"mlx5sim", "needs a wire: mlx5sim:cable=NAME"},
      {"mlx5sim:cable=bad/name", "cable name 'bad/name' is invalid"},
      {"mlx5sim:cable=" + std::string(65, 'x'), "is invalid"},
      {"mlx5sim:cable=" + ok + ",speed=9", "unknown option 'speed' for mlx5sim"},
      {"mlx5sim:cable=" + ok + ",mac=zz", "mac=zz: not a MAC address"},
      {"mlx5sim:cable=" + ok + ",slots=3", "slots"},
      {"mlx5sim:cable=" + ok + ",mtu=100", "mtu=100"},
  };
  for (const Case& c : cases) {
    OpenedDevice d = open_device(c.spec, clock, config);
    BOOST_TEST(!d.device, c.spec);
    BOOST_TEST(d.error.rfind("SHUNT_DEVICE=" + c.spec + ": ", 0) == 0u, d.error);
    BOOST_TEST(d.error.find('\n') == std::string::npos, d.error);
    BOOST_TEST(d.error.find(c.says) != std::string::npos, d.error << " (expected: " << c.says << ")");
    BOOST_TEST(nicmodel::cable_nic(d) == nullptr);
  }
  // Nothing was left behind under the names tried.
  BOOST_TEST(access(("/dev/shm/shunt-cable-" + ok).c_str(), F_OK) != 0);
}

}  // namespace
}  // namespace shunt
