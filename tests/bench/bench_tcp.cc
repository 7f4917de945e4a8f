// TCP figures in the virtual-time harness (two stacks on one SimLink). tests/bench/run_tcp_bench.sh
// drives it; docs/benchmarks.md says what each figure means.
//
//   bench_tcp goodput [--bytes N] [--buf B] [--ipv6] [--nagle]
//       One flow (TcpBulk, every byte checked) at 10, 25 and 100 Gbit/s with 1 us and 100 us RTT:
//       bytes delivered / virtual seconds from the connection's establishment to the last byte.
//   bench_tcp bulk [--bytes N] [--warmup-bytes W] [--collect all|sender|receiver|calibrate|none]
//                  [--no-offload]
//       One-way bulk transfer on the default link (10 Gbit/s, 1 us one way); under callgrind,
//       collection is on only for the N measured bytes (after W warm-up bytes that take the
//       flow out of slow start and grow the buffers). Prints the number of data segments.
//   bench_tcp rr [--count K] [--warmup W] [--collect all|client|server|calibrate|none] [--no-offload]
//       K 64-byte requests, each answered by a 64-byte response, on one connection (TCP_NODELAY).
//   bench_tcp idle [--conns N]
//       Heap growth per idle established connection: N connections between the two stacks.
//   bench_tcp churn [--count N] [--parallel P]
//       Connections opened and closed per wall-clock second and per virtual second.
//
// The socket calls are made when the socket layer's readiness hook said something changed (as an
// epoll loop would), not at every step of the harness; a safety net retries every 256 steps and
// counts the looks that found the socket ready without the hook (`hook_misses`), which should be 0.
// `--collect` follows bench_udp_pingpong: `all` counts the whole program, a side counts only the
// time inside that stack (its polls and socket calls) minus the simulated NIC's work on the frames
// it sends; `calibrate` measures what one switch of collection costs.
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "stack/core/clock.h"
#include "stack/harness/harness.h"
#include "stack/harness/tcp_bulk.h"
#include "stack/net/stack.h"
#include "stack/net/tcp/tcp.h"
#include "stack/socket/socket_api.h"
#include "tests/bench/side_collector.h"

// ----- A counting allocator: live heap bytes as malloc_usable_size() sees them (what the
// allocator really set aside, not what was asked). Used by `idle`; the rest pays one add.
namespace {
int64_t g_heap_live = 0;
int64_t g_heap_allocs = 0;

void* counted_alloc(std::size_t n, std::size_t align = 0) {
  void* p = align > alignof(std::max_align_t) ? std::aligned_alloc(align, (n + align - 1) / align * align)
                                              : std::malloc(n ? n : 1);
  if (!p) throw std::bad_alloc();
  g_heap_live += int64_t(malloc_usable_size(p));
  ++g_heap_allocs;
  return p;
}
void counted_free(void* p) {
  if (!p) return;
  g_heap_live -= int64_t(malloc_usable_size(p));
  --g_heap_allocs;
  std::free(p);
}
}  // namespace

void* operator new(std::size_t n) { return counted_alloc(n); }
void* operator new[](std::size_t n) { return counted_alloc(n); }
void* operator new(std::size_t n, std::align_val_t a) { return counted_alloc(n, std::size_t(a)); }
void* operator new[](std::size_t n, std::align_val_t a) { return counted_alloc(n, std::size_t(a)); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return counted_alloc(n);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return counted_alloc(n);
  } catch (...) {
    return nullptr;
  }
}
void operator delete(void* p) noexcept { counted_free(p); }
void operator delete[](void* p) noexcept { counted_free(p); }
void operator delete(void* p, std::size_t) noexcept { counted_free(p); }
void operator delete[](void* p, std::size_t) noexcept { counted_free(p); }
void operator delete(void* p, std::align_val_t) noexcept { counted_free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { counted_free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { counted_free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { counted_free(p); }

using namespace shunt;

namespace {

constexpr size_t kClient = 0, kServer = 1;
constexpr uint16_t kPort = 5001;



socklen_t fill_addr(sockaddr_storage& ss, bool v6, size_t index, uint16_t port) {
  std::memset(&ss, 0, sizeof ss);
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    Harness::ipv6_of(index).write(reinterpret_cast<uint8_t*>(&a->sin6_addr));
    return sizeof(sockaddr_in6);
  }
  auto* a = reinterpret_cast<sockaddr_in*>(&ss);
  a->sin_family = AF_INET;
  a->sin_port = htons(port);
  a->sin_addr.s_addr = htonl(Harness::ipv4_of(index).v);
  return sizeof(sockaddr_in);
}

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "bench_tcp: %s\n", what.c_str());
  std::exit(1);
}
std::string err_str(long e) { return e < 0 ? std::strerror(int(-e)) : std::to_string(e); }

// Two stacks, their socket APIs, and readiness flags set by the APIs' hooks.
struct Bench {
  Harness h;
  SocketApi capi, sapi;
  std::vector<uint8_t> ready_c, ready_s;  // by handle: the hook fired since the last look
  uint64_t steps = 0, hook_misses = 0;

  explicit Bench(const HarnessOptions& o) : h(o), capi(h.stack(kClient)), sapi(h.stack(kServer)) {
    capi.set_readiness_hook([this](int s) { mark(ready_c, s); });
    sapi.set_readiness_hook([this](int s) { mark(ready_s, s); });
  }
  static void mark(std::vector<uint8_t>& v, int s) {
    if (s < 0) return;
    if (size_t(s) >= v.size()) v.resize(size_t(s) + 64);
    v[size_t(s)] = 1;
  }
  // Takes the flag of `s`: kHook if the hook fired, kSafety if not but `safety` says look
  // anyway (every 256th step), else kNo. A look that finds the socket ready for `want`
  // (POLLIN/POLLOUT) although the hook said nothing is a miss.
  enum Take { kNo, kHook, kSafety };
  Take take(std::vector<uint8_t>& v, SocketApi& api, int s, bool safety, uint32_t want) {
    if (size_t(s) < v.size() && v[size_t(s)]) {
      v[size_t(s)] = 0;
      return kHook;
    }
    if (!safety) return kNo;
    if (api.poll_events(s) & want) ++hook_misses;
    return kSafety;
  }
  StackObserver* obs() { return h.observer(); }
};

HarnessOptions default_options(bool offload) {
  HarnessOptions o;  // 10 Gbit/s, 1 us one way
  o.link.checksum_offload = offload;
  o.config.buffers = 32768;  // 64 MiB of packet buffers per stack: windows of many MB fit
  return o;
}

// A listener on the server and one connected pair. Buffers and TCP_NODELAY on both sides
// (set on the listener, inherited by the accepted socket).
struct Conn {
  int listener = -1, client = -1, server = -1;
};
Conn open_pair(Bench& b, bool v6, int buf, bool nodelay) {
  Conn c;
  sockaddr_storage ss;
  const int domain = v6 ? AF_INET6 : AF_INET;
  auto opts = [&](SocketApi& api, int fd) {
    if (buf > 0) {
      api.setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
      api.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    }
    const int one = 1;
    if (nodelay) api.setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  };
  c.listener = b.sapi.socket(domain, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (c.listener < 0) die("socket: " + err_str(c.listener));
  opts(b.sapi, c.listener);
  socklen_t len = fill_addr(ss, v6, kServer, kPort);
  int r = b.sapi.bind(c.listener, reinterpret_cast<sockaddr*>(&ss), len);
  if (r < 0) die("bind: " + err_str(r));
  if ((r = b.sapi.listen(c.listener, 128)) < 0) die("listen: " + err_str(r));
  c.client = b.capi.socket(domain, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (c.client < 0) die("socket: " + err_str(c.client));
  opts(b.capi, c.client);
  r = b.capi.connect(c.client, reinterpret_cast<sockaddr*>(&ss), len);
  if (r < 0 && r != -EINPROGRESS) die("connect: " + err_str(r));
  bool ok = b.h.run_until(
      [&] {
        if (c.server < 0) {
          int fd = b.sapi.accept(c.listener, nullptr, nullptr, SOCK_NONBLOCK);
          if (fd >= 0) c.server = fd;
        }
        return c.server >= 0 && (b.capi.poll_events(c.client) & POLLOUT);
      },
      30 * kSecond);
  if (!ok) die("the connection was not established within 30 s of virtual time");
  return c;
}

tcp_info sender_info(SocketApi& api, int fd) {
  tcp_info ti{};
  socklen_t l = sizeof ti;
  api.getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l);
  return ti;
}

int getint(SocketApi& api, int fd, int level, int name) {
  int v = -1;
  socklen_t l = sizeof v;
  if (api.getsockopt(fd, level, name, &v, &l) < 0) return -1;
  return v;
}

// ----- goodput

// buf_arg 0: each run asks for max(256 KiB, 2 x BDP).
int run_goodput(uint64_t bytes, int buf_arg, bool v6, bool nagle) {
  const uint64_t rates[] = {10'000'000'000ull, 25'000'000'000ull, 100'000'000'000ull};
  const Nanos rtts[] = {kMicro, 100 * kMicro};
  std::printf("goodput of one flow, %s, %.0f MB client -> server%s; SO_SNDBUF = SO_RCVBUF asked on both sides: %s\n",
              v6 ? "IPv6" : "IPv4", double(bytes) / 1e6, nagle ? "" : ", TCP_NODELAY",
              buf_arg ? (std::to_string(buf_arg) + " bytes").c_str() : "max(256 KiB, 2 x BDP)");
  std::printf("%-5s %-6s %-12s %-8s %-8s %-9s %-5s %-19s %-7s %-7s %-7s %s\n", "rate", "RTT", "goodput", "of limit",
              "BDP", "buf asked", "mss", "sndbuf/rcvbuf (get)", "drops", "retrans", "cwnd", "wall");
  for (uint64_t rate : rates) {
    for (Nanos rtt : rtts) {
      const double bdp = double(rate) / 8 * double(rtt) / 1e9;
      const int buf = buf_arg ? buf_arg : std::max(256 * 1024, int(2 * bdp));
      HarnessOptions o = default_options(true);
      o.link.rate_bps = rate;
      o.link.delay = rtt / 2;
      Harness h(o);
      // IPv6 addresses are usable once duplicate address detection is over (RFC 4862 5.4).
      if (v6 && !h.run_until([&] { return h.stack(0).is_local_v6(Harness::ipv6_of(0)) && h.stack(1).is_local_v6(Harness::ipv6_of(1)); },
                             10 * kSecond))
        die("IPv6 addresses did not become preferred");
      TcpBulkOptions bo;
      bo.ipv6 = v6;
      bo.client_to_server = bytes;
      bo.sndbuf = bo.rcvbuf = buf;
      bo.shutdown_at_end = false;
      bo.close_at_end = false;
      // Nagle would hold the sub-MSS tail of the transfer until everything before it is ACKed,
      // and the receiver may delay that ACK (40 ms): an end effect, not goodput. --nagle keeps it.
      bo.nodelay = !nagle;
      // TcpBulk fills a whole chunk of pattern per send() call, and a call takes what one step
      // freed (a few segments): a small chunk keeps the wall time down.
      bo.chunk = 8 * 1024;
      TcpBulk bulk(h, bo);
      MonotonicClock wall;
      const Nanos w0 = wall.now();
      const TcpBulkResult& r = bulk.run();
      const double wall_s = double(wall.now() - w0) / 1e9;
      if (!r.ok()) die("goodput run failed: " + r.error);
      tcp_info ti = sender_info(bulk.client_api(), bulk.client_socket());
      const uint64_t drops = h.link().counters().sum("link.drop.");
      const int sb = getint(bulk.client_api(), bulk.client_socket(), SOL_SOCKET, SO_SNDBUF);
      const int rb = getint(bulk.server_api(), bulk.server_socket(), SOL_SOCKET, SO_RCVBUF);
      // What the wire allows: payload / (payload + TCP/IP headers + Ethernet + preamble/FCS/gap).
      const double mss = ti.tcpi_snd_mss ? double(ti.tcpi_snd_mss) : (v6 ? 1428.0 : 1448.0);
      const double hdr = (v6 ? 40.0 : 20.0) + 20.0 + (ti.tcpi_options & TCPI_OPT_TIMESTAMPS ? 12.0 : 0.0);
      const double limit = double(rate) * mss / (mss + hdr + 14.0 + double(kWireOverhead));
      const double g = r.goodput_bps();
      char rate_s[16], rtt_s[16], g_s[24], bdp_s[24], pct_s[16], bufs_s[40];
      std::snprintf(bufs_s, sizeof bufs_s, "%d/%d", sb, rb);
      std::snprintf(pct_s, sizeof pct_s, "%.1f%%", 100.0 * g / limit);
      std::snprintf(rate_s, sizeof rate_s, "%.0fG", double(rate) / 1e9);
      std::snprintf(rtt_s, sizeof rtt_s, "%.0fus", double(rtt) / 1e3);
      std::snprintf(g_s, sizeof g_s, "%.2f Gb/s", g / 1e9);
      std::snprintf(bdp_s, sizeof bdp_s, "%.1f KB", bdp / 1e3);
      std::printf("%-5s %-6s %-12s %-8s %-8s %-9d %-5u %-19s %-7" PRIu64 " %-7u %-7u %.2f s\n", rate_s, rtt_s, g_s,
                  pct_s, bdp_s, buf, ti.tcpi_snd_mss, bufs_s, drops, ti.tcpi_total_retrans, ti.tcpi_snd_cwnd, wall_s);
      std::fflush(stdout);
    }
  }
  std::printf("(goodput: bytes the receiver read / virtual time from the connection's establishment to the last byte;\n"
              " limit: the link rate x payload / (payload + IP, TCP, options, Ethernet, preamble, FCS and gap);\n"
              " drops: frames the link dropped (its in-flight limit is %zu frames); retrans, cwnd: the sender's TCP_INFO)\n",
              LinkConfig{}.max_in_flight);
  return 0;
}

// ----- bulk: instructions per segment

int run_bulk(uint64_t bytes, uint64_t warmup, const std::string& collect, bool offload) {
  Bench b(default_options(offload));
  const int buf = 4 << 20;
  // TCP_NODELAY: Nagle would hold the sub-MSS tail of the measured part for the receiver's
  // delayed ACK (40 ms idle; the segments are full-sized either way).
  Conn c = open_pair(b, false, buf, true);
  std::vector<uint8_t> out(256 * 1024, 'x'), in(256 * 1024);
  uint64_t sent = 0, received = 0;
  // Moves data until the receiver has `target` bytes.
  auto transfer = [&](uint64_t target) {
    return b.h.run_until(
        [&] {
          const bool safety = (++b.steps & 255) == 0;
          // The first call of a transfer needs no hook: the caller has new data.
          Bench::Take t = sent == received ? Bench::kHook
                          : sent < target  ? b.take(b.ready_c, b.capi, c.client, safety, POLLOUT)
                                           : Bench::kNo;
          if (sent < target && t != Bench::kNo) {
            StackScope e(b.obs(), kClient);
            while (sent < target) {
              ssize_t n = b.capi.send(c.client, out.data(), size_t(std::min<uint64_t>(out.size(), target - sent)), 0);
              if (n == -EAGAIN) break;
              if (n <= 0) die("send: " + err_str(long(n)));
              sent += uint64_t(n);
            }
          }
          if ((t = b.take(b.ready_s, b.sapi, c.server, safety, POLLIN)) != Bench::kNo) {
            StackScope e(b.obs(), kServer);
            for (;;) {
              ssize_t n = b.sapi.recv(c.server, in.data(), in.size(), 0);
              if (n == -EAGAIN) break;
              if (n <= 0) die("recv: " + err_str(long(n)));
              received += uint64_t(n);
            }
          }
          return received >= target;
        },
        600 * kSecond);
  };
  if (!transfer(warmup)) die("bulk warm-up did not finish");
  const tcp_info before = sender_info(b.capi, c.client);
  SideCollector sender(kClient), receiver(kServer);
  if (collect == "sender") b.h.set_observer(&sender);
  if (collect == "receiver") b.h.set_observer(&receiver);
  const uint64_t frames0 = b.h.link().counters().get("link.tx_frames");
  const Nanos v0 = b.h.now();
  MonotonicClock wall;
  const Nanos w0 = wall.now();
  if (collect == "all") CALLGRIND_TOGGLE_COLLECT;
  const bool ok = transfer(warmup + bytes);
  if (collect == "all") CALLGRIND_TOGGLE_COLLECT;
  const Nanos took = wall.now() - w0;
  b.h.set_observer(nullptr);
  if (!ok) die("bulk transfer did not finish");
  const tcp_info after = sender_info(b.capi, c.client);
  const uint64_t frames = b.h.link().counters().get("link.tx_frames") - frames0;
  const uint32_t mss = after.tcpi_snd_mss ? after.tcpi_snd_mss : 1448;
  // Full-sized data segments (the sender always has more queued than one segment), plus the
  // retransmissions during the measured part (none on this lossless link).
  const uint64_t segments = (received - warmup + mss - 1) / mss + (after.tcpi_total_retrans - before.tcpi_total_retrans);
  std::printf("bytes %" PRIu64 "\n", received - warmup);
  std::printf("mss %u\n", mss);
  std::printf("segments %" PRIu64 "\n", segments);
  std::printf("frames %" PRIu64 "\n", frames);  // data segments and ACKs, both directions
  std::printf("acks %" PRIu64 "\n", frames > segments ? frames - segments : 0);
  std::printf("retransmits %u\n", after.tcpi_total_retrans - before.tcpi_total_retrans);
  std::printf("wall_ns %lld\n", (long long)took);
  std::printf("segments_per_second %.0f\n", took > 0 ? double(segments) * 1e9 / double(took) : 0.0);
  std::printf("virtual_gbps %.2f\n", double(received - warmup) * 8 / double(b.h.now() - v0));
  std::printf("link_drops %" PRIu64 "\n", b.h.link().counters().sum("link.drop."));
  std::printf("virtual_ns %lld\n", (long long)(b.h.now() - v0));
  std::printf("hook_misses %" PRIu64 "\n", b.hook_misses);
  std::printf("callgrind_support %d\n", SHUNT_HAVE_CALLGRIND);
  if (collect == "sender") std::printf("switches %" PRIu64 "\n", sender.switches());
  if (collect == "receiver") std::printf("switches %" PRIu64 "\n", receiver.switches());
  return 0;
}

// ----- rr: 64-byte request/response

int run_rr(uint64_t count, uint64_t warmup, const std::string& collect, bool offload) {
  Bench b(default_options(offload));
  Conn c = open_pair(b, false, 0, true);
  constexpr size_t kMsg = 64;
  uint8_t req[kMsg], resp[kMsg], sbuf[4096], cbuf[4096];
  std::memset(req, 'q', sizeof req);
  std::memset(resp, 'r', sizeof resp);
  uint64_t server_pending = 0;  // request bytes the server has read and not yet answered
  std::vector<Nanos> rtts;
  rtts.reserve(size_t(count + warmup));
  auto one = [&]() {
    const Nanos t0 = b.h.now();
    {
      StackScope e(b.obs(), kClient);
      ssize_t n = b.capi.send(c.client, req, kMsg, 0);
      if (n != ssize_t(kMsg)) die("request send: " + err_str(long(n)));
    }
    size_t got = 0;
    bool ok = b.h.run_until(
        [&] {
          const bool safety = (++b.steps & 255) == 0;
          Bench::Take t = b.take(b.ready_s, b.sapi, c.server, safety, POLLIN);
          if (t != Bench::kNo) {
            StackScope e(b.obs(), kServer);
            for (;;) {
              ssize_t n = b.sapi.recv(c.server, sbuf, sizeof sbuf, 0);
              if (n == -EAGAIN) break;
              if (n <= 0) die("server recv: " + err_str(long(n)));
              server_pending += uint64_t(n);
            }
            while (server_pending >= kMsg) {
              ssize_t n = b.sapi.send(c.server, resp, kMsg, 0);
              if (n != ssize_t(kMsg)) die("response send: " + err_str(long(n)));
              server_pending -= kMsg;
            }
          }
          if ((t = b.take(b.ready_c, b.capi, c.client, safety, POLLIN)) != Bench::kNo) {
            StackScope e(b.obs(), kClient);
            for (;;) {
              ssize_t n = b.capi.recv(c.client, cbuf, sizeof cbuf, 0);
              if (n == -EAGAIN) break;
              if (n <= 0) die("client recv: " + err_str(long(n)));
              got += size_t(n);
            }
          }
          return got >= kMsg;
        },
        10 * kSecond);
    if (!ok || got != kMsg) die("a request got no (or a wrong-sized) response");
    rtts.push_back(b.h.now() - t0);
  };
  for (uint64_t i = 0; i < warmup; ++i) one();
  SideCollector client(kClient), server(kServer);
  if (collect == "client") b.h.set_observer(&client);
  if (collect == "server") b.h.set_observer(&server);
  MonotonicClock wall;
  const Nanos w0 = wall.now();
  if (collect == "all") CALLGRIND_TOGGLE_COLLECT;
  for (uint64_t i = 0; i < count; ++i) one();
  if (collect == "all") CALLGRIND_TOGGLE_COLLECT;
  const Nanos took = wall.now() - w0;
  b.h.set_observer(nullptr);
  std::vector<Nanos> m(rtts.begin() + long(warmup), rtts.end());
  std::sort(m.begin(), m.end());
  const tcp_info ti = sender_info(b.capi, c.client);
  std::printf("requests %" PRIu64 "\n", count);
  std::printf("wall_ns %lld\n", (long long)took);
  std::printf("requests_per_second %.0f\n", took > 0 ? double(count) * 1e9 / double(took) : 0.0);
  std::printf("rtt_p50_ns %lld\n", (long long)m[m.size() / 2]);
  std::printf("retransmits %u\n", ti.tcpi_total_retrans);
  std::printf("hook_misses %" PRIu64 "\n", b.hook_misses);
  std::printf("callgrind_support %d\n", SHUNT_HAVE_CALLGRIND);
  if (collect == "client") std::printf("switches %" PRIu64 "\n", client.switches());
  if (collect == "server") std::printf("switches %" PRIu64 "\n", server.switches());
  return 0;
}

// ----- idle: memory per established connection

struct MemSnap {
  int64_t heap = 0;       // the counting allocator's live bytes
  int64_t allocs = 0;     // live allocations
  int64_t malloc_in_use = 0;  // mallinfo2().uordblks: every malloc, ours or not
  int64_t tcp_memory = 0;     // Tcp::memory() of both stacks: the engine's own accounting
  int64_t pool_in_use = 0;    // packet buffers taken from both stacks' pools
};
MemSnap snap(Bench& b) {
  MemSnap s;
  s.heap = g_heap_live;
  s.allocs = g_heap_allocs;
  s.malloc_in_use = int64_t(mallinfo2().uordblks);
  for (size_t i = 0; i < 2; ++i) {
    s.tcp_memory += int64_t(b.h.stack(i).tcp().memory());
    s.pool_in_use += int64_t(b.h.stack(i).pool().capacity() - b.h.stack(i).pool().available());
  }
  return s;
}

int run_idle(size_t conns) {
  HarnessOptions o = default_options(true);
  Bench b(o);
  // Warm-up: one connection, so ARP is resolved and every lazy table exists; it stays open.
  Conn first = open_pair(b, false, 0, false);
  b.h.run_for(kSecond);
  sockaddr_storage ss;
  const socklen_t len = fill_addr(ss, false, kServer, kPort);
  std::vector<int> clients, servers;
  clients.reserve(conns);
  servers.reserve(conns);
  auto accept_all = [&] {
    for (;;) {
      int fd = b.sapi.accept(first.listener, nullptr, nullptr, SOCK_NONBLOCK);
      if (fd < 0) break;
      servers.push_back(fd);
    }
  };
  const MemSnap s0 = snap(b);
  // Open them in batches within the listener's backlog.
  for (size_t i = 0; i < conns; ++i) {
    int fd = b.capi.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) die("socket #" + std::to_string(i) + ": " + err_str(fd));
    int r = b.capi.connect(fd, reinterpret_cast<sockaddr*>(&ss), len);
    if (r < 0 && r != -EINPROGRESS) die("connect #" + std::to_string(i) + ": " + err_str(r));
    clients.push_back(fd);
    if (clients.size() % 64 == 0 || i + 1 == conns) {
      if (!b.h.run_until([&] { accept_all(); return servers.size() == clients.size(); }, 10 * kSecond))
        die("only " + std::to_string(servers.size()) + " of " + std::to_string(clients.size()) + " connections accepted");
    }
  }
  for (int fd : clients)
    if (!(b.capi.poll_events(fd) & POLLOUT)) die("a client connection is not established");
  // Idle: a second of virtual time for the last ACKs and timers to settle.
  b.h.run_for(kSecond);
  const MemSnap s1 = snap(b);
  const double pairs = double(conns), ends = 2.0 * double(conns);
  auto line = [&](const char* what, int64_t d) {
    std::printf("  %-52s %10" PRId64 " bytes, %7.0f per connection (both ends), %7.0f per endpoint\n", what, d,
                double(d) / pairs, double(d) / ends);
  };
  std::printf("memory per idle established connection: %zu connections (10.0.0.1 -> 10.0.0.2:%u), no data ever sent\n",
              conns, kPort);
  line("heap growth (operator new, malloc_usable_size)", s1.heap - s0.heap);
  line("malloc in use (mallinfo2 uordblks)", s1.malloc_in_use - s0.malloc_in_use);
  line("Tcp::memory() of both stacks", s1.tcp_memory - s0.tcp_memory);
  std::printf("  %-52s %10" PRId64 ", %7.2f per endpoint\n", "heap allocations alive", s1.allocs - s0.allocs,
              double(s1.allocs - s0.allocs) / ends);
  std::printf("  %-52s %10" PRId64 "\n", "packet buffers held (pool, 2 KiB each)", s1.pool_in_use - s0.pool_in_use);

  // The same connections after one 64-byte request and response each: what the buffers keep.
  char msg[64];
  std::memset(msg, 'm', sizeof msg);
  for (int fd : clients)
    if (b.capi.send(fd, msg, sizeof msg, 0) != 64) die("send on an idle connection failed");
  size_t answered = 0, done_reading = 0;
  std::vector<uint8_t> seen(servers.size(), 0);
  b.h.run_until(
      [&] {
        for (size_t i = 0; i < servers.size(); ++i) {
          if (seen[i]) continue;
          char in[64];
          ssize_t n = b.sapi.recv(servers[i], in, sizeof in, 0);
          if (n > 0) {
            seen[i] = 1;
            b.sapi.send(servers[i], in, size_t(n), 0);
            ++answered;
          }
        }
        return answered == servers.size();
      },
      10 * kSecond);
  b.h.run_until(
      [&] {
        char in[64];
        for (int fd : clients)
          if (b.capi.recv(fd, in, sizeof in, 0) > 0) ++done_reading;
        return done_reading == clients.size();
      },
      10 * kSecond);
  b.h.run_for(kSecond);
  const MemSnap s2 = snap(b);
  std::printf("after one 64-byte request and response on each (%zu answered, %zu read), idle again:\n", answered,
              done_reading);
  line("heap growth (operator new, malloc_usable_size)", s2.heap - s0.heap);
  line("Tcp::memory() of both stacks", s2.tcp_memory - s0.tcp_memory);
  std::printf("  %-52s %10" PRId64 "\n", "packet buffers held (pool, 2 KiB each)", s2.pool_in_use - s0.pool_in_use);

  // Close everything, wait out TIME_WAIT: the heap must come back.
  for (int fd : clients) b.capi.close(fd);
  for (int fd : servers) b.sapi.close(fd);
  b.h.run_for(300 * kSecond);
  const MemSnap s3 = snap(b);
  std::printf("after closing all and 300 s of virtual time (TIME_WAIT over): heap %+" PRId64
              " bytes against before opening, %zu connection blocks left in TCP\n",
              s3.heap - s0.heap, b.h.stack(0).tcp().connection_count() + b.h.stack(1).tcp().connection_count());
  return 0;
}

// ----- churn: connections opened and closed per second

int run_churn(uint64_t count, size_t parallel) {
  Bench b(default_options(true));
  Conn first = open_pair(b, false, 0, false);  // resolves ARP; its listener serves the rest
  b.capi.close(first.client);
  b.sapi.close(first.server);
  b.h.run_for(kSecond);
  sockaddr_storage ss;
  const socklen_t len = fill_addr(ss, false, kServer, kPort);
  std::vector<int> connecting;  // client sockets in progress
  std::vector<int> serving;     // accepted sockets waiting for the client's FIN
  uint64_t started = 0, completed = 0;
  auto start_one = [&] {
    int fd = b.capi.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) die("socket: " + err_str(fd));
    int r = b.capi.connect(fd, reinterpret_cast<sockaddr*>(&ss), len);
    if (r < 0 && r != -EINPROGRESS) die("connect #" + std::to_string(started) + ": " + err_str(r));
    connecting.push_back(fd);
    ++started;
  };
  MonotonicClock wall;
  const Nanos w0 = wall.now(), v0 = b.h.now();
  while (started < std::min<uint64_t>(count, parallel)) start_one();
  const bool ok = b.h.run_until(
      [&] {
        // Client: close as soon as established (the client closes first and keeps TIME_WAIT).
        for (size_t i = 0; i < connecting.size();) {
          uint32_t ev = b.capi.poll_events(connecting[i]);
          if (ev & (POLLERR | POLLHUP)) die("a connection failed");
          if (ev & POLLOUT) {
            b.capi.close(connecting[i]);
            connecting[i] = connecting.back();
            connecting.pop_back();
          } else {
            ++i;
          }
        }
        for (;;) {
          int fd = b.sapi.accept(first.listener, nullptr, nullptr, SOCK_NONBLOCK);
          if (fd < 0) break;
          serving.push_back(fd);
        }
        // Server: close on EOF; then the connection is done (LAST_ACK is the stack's business).
        for (size_t i = 0; i < serving.size();) {
          char c;
          ssize_t n = b.sapi.recv(serving[i], &c, 1, 0);
          if (n == -EAGAIN) {
            ++i;
            continue;
          }
          if (n != 0) die("server recv: " + err_str(long(n)));
          b.sapi.close(serving[i]);
          serving[i] = serving.back();
          serving.pop_back();
          ++completed;
          if (started < count) start_one();
        }
        return completed == count;
      },
      3600 * kSecond);
  const Nanos took = wall.now() - w0, vtook = b.h.now() - v0;
  if (!ok) die("churn did not finish: " + std::to_string(completed) + " of " + std::to_string(count));
  std::printf("connections opened and closed: %" PRIu64 ", %zu at a time, 10 Gbit/s link with 1 us one way\n", count,
              parallel);
  std::printf("  %-40s %.0f\n", "per wall-clock second", double(count) * 1e9 / double(took));
  std::printf("  %-40s %.0f\n", "per virtual second", double(count) * 1e9 / double(vtook));
  std::printf("  %-40s %zu\n", "client TIME_WAIT blocks at the end", b.h.stack(0).tcp().count_in_state(TcpState::kTimeWait));
  return 0;
}

int usage() {
  std::fprintf(stderr,
               "usage: bench_tcp goodput [--bytes N] [--buf B] [--ipv6] [--nagle]\n"
               "       bench_tcp bulk [--bytes N] [--warmup-bytes W] [--collect all|sender|receiver|calibrate|none] [--no-offload]\n"
               "       bench_tcp rr [--count K] [--warmup W] [--collect all|client|server|calibrate|none] [--no-offload]\n"
               "       bench_tcp idle [--conns N]\n"
               "       bench_tcp churn [--count N] [--parallel P]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage();
  const std::string mode = argv[1];
  uint64_t bytes = 0, warmup = UINT64_MAX, count = 0;
  int buf = 0;
  size_t conns = 1000, parallel = 1;
  std::string collect = "none";
  bool offload = true, v6 = false, nagle = false;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--no-offload") {
      offload = false;
      continue;
    }
    if (a == "--ipv6") {
      v6 = true;
      continue;
    }
    if (a == "--nagle") {
      nagle = true;
      continue;
    }
    if (i + 1 >= argc) return usage();
    const char* v = argv[++i];
    if (a == "--bytes") {
      bytes = std::strtoull(v, nullptr, 10);
    } else if (a == "--warmup-bytes" || a == "--warmup") {
      warmup = std::strtoull(v, nullptr, 10);
    } else if (a == "--count") {
      count = std::strtoull(v, nullptr, 10);
    } else if (a == "--buf") {
      buf = int(std::strtol(v, nullptr, 10));
    } else if (a == "--conns") {
      conns = std::strtoull(v, nullptr, 10);
    } else if (a == "--parallel") {
      parallel = std::max<size_t>(1, std::strtoull(v, nullptr, 10));
    } else if (a == "--collect") {
      collect = v;
    } else {
      return usage();
    }
  }
  if (collect != "all" && collect != "client" && collect != "server" && collect != "sender" &&
      collect != "receiver" && collect != "calibrate" && collect != "none")
    return usage();
  if (collect == "calibrate") {
    // The cost of switching collection on and off around nothing, `count` times.
    SideCollector c(0);
    const uint64_t k = count ? count : 10000;
    for (uint64_t i = 0; i < k; ++i) {
      c.enter(0);
      c.leave(0);
    }
    std::printf("switches %" PRIu64 "\n", c.switches());
    return 0;
  }
  if (mode == "goodput") return run_goodput(bytes ? bytes : 256'000'000, buf, v6, nagle);
  if (mode == "bulk") return run_bulk(bytes ? bytes : 20'000'000, warmup == UINT64_MAX ? 20'000'000 : warmup, collect, offload);
  if (mode == "rr") return run_rr(count ? count : 20'000, warmup == UINT64_MAX ? 1'000 : warmup, collect, offload);
  if (mode == "idle") return run_idle(conns);
  if (mode == "churn") return run_churn(count ? count : 10'000, parallel);
  return usage();
}
