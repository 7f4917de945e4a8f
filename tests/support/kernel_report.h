// What the kernel-peer tests share: the seeded byte pattern and running hash of a checked
// stream, socket addresses from text, the fixed-size report a kernel child sends its parent
// through a pipe, a pipe that closes itself, and the kernel side's TCP statistics and timeouts.
// Used by tests/interop/tcp_kernel_peer.cc and afxdp_kernel_peer.cc.
#pragma once
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <time.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace shunt::test {

// ----- The byte pattern and the running hash.

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Bytes [offset, offset + len) of the stream seeded by `seed`: word k is splitmix64(seed ^ k).
inline void fill_pattern(uint64_t seed, uint64_t offset, uint8_t* out, size_t len) {
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

constexpr uint64_t kFnvBasis = 0xcbf29ce484222325ull;
inline uint64_t fnv1a(uint64_t h, const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

// What one side saw of one direction of a transfer.
struct StreamCheck {
  uint64_t seed = 0;
  uint64_t bytes = 0;
  uint64_t hash = kFnvBasis;
  uint64_t mismatch = UINT64_MAX;  // offset of the first byte that differed
  std::vector<uint8_t> expect = std::vector<uint8_t>(64 * 1024);

  void sent(const uint8_t* p, size_t n) {
    hash = fnv1a(hash, p, n);
    bytes += n;
  }
  void received(const uint8_t* p, size_t n) {
    if (expect.size() < n) expect.resize(n);
    fill_pattern(seed, bytes, expect.data(), n);
    if (mismatch == UINT64_MAX && std::memcmp(p, expect.data(), n) != 0) {
      for (size_t i = 0; i < n; ++i) {
        if (p[i] != expect[i]) {
          mismatch = bytes + i;
          break;
        }
      }
    }
    hash = fnv1a(hash, p, n);
    bytes += n;
  }
};

constexpr uint64_t kSeedClientToServer = 0x5348554e54433253ull;  // each direction its own bytes
constexpr uint64_t kSeedServerToClient = 0x5348554e54533243ull;

inline double seconds_between(const timespec& a, const timespec& b) {
  return double(b.tv_sec - a.tv_sec) + double(b.tv_nsec - a.tv_nsec) / 1e9;
}

inline timespec mono_now() {
  timespec t{};
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t;
}

inline std::string rate(uint64_t bytes, double seconds) {
  char buf[128];
  if (seconds <= 0) return "n/a";
  std::snprintf(buf, sizeof buf, "%.1f MB in %.2f s = %.1f MB/s (%.2f Gbit/s)", double(bytes) / 1e6, seconds,
                double(bytes) / 1e6 / seconds, double(bytes) * 8 / 1e9 / seconds);
  return buf;
}

union SockAddr {
  sockaddr sa;
  sockaddr_in v4;
  sockaddr_in6 v6;
  sockaddr_storage any;
};

inline SockAddr make_addr(const std::string& ip, uint16_t port, socklen_t* len) {
  SockAddr a{};
  if (ip.find(':') == std::string::npos) {
    a.v4.sin_family = AF_INET;
    a.v4.sin_port = htons(port);
    inet_pton(AF_INET, ip.c_str(), &a.v4.sin_addr);
    *len = sizeof a.v4;
  } else {
    a.v6.sin6_family = AF_INET6;
    a.v6.sin6_port = htons(port);
    inet_pton(AF_INET6, ip.c_str(), &a.v6.sin6_addr);
    *len = sizeof a.v6;
  }
  return a;
}

inline std::string addr_str(const SockAddr& a) {
  char buf[INET6_ADDRSTRLEN] = "?";
  if (a.sa.sa_family == AF_INET) {
    inet_ntop(AF_INET, &a.v4.sin_addr, buf, sizeof buf);
    return std::string(buf) + ":" + std::to_string(ntohs(a.v4.sin_port));
  }
  inet_ntop(AF_INET6, &a.v6.sin6_addr, buf, sizeof buf);
  return "[" + std::string(buf) + "]:" + std::to_string(ntohs(a.v6.sin6_port));
}

// ----- What a kernel child reports to the parent through a pipe (one fixed-size record).

struct KernelReport {
  int stage = 0;  // how far it got (for the message on failure)
  uint64_t received = 0, sent = 0;
  uint64_t hash_received = 0, hash_sent = 0;
  uint64_t mismatch = UINT64_MAX;
  double rx_seconds = 0, tx_seconds = 0;  // first byte to EOF; first send to the last send
  int recv_errno = 0;                     // what the last recv() failed with (RST cases)
  uint32_t total_retrans = 0, rtt_us = 0, snd_mss = 0, rcv_mss = 0;
};

inline bool read_report(int fd, KernelReport& r) {
  size_t got = 0;
  auto* p = reinterpret_cast<uint8_t*>(&r);
  while (got < sizeof r) {
    ssize_t n = read(fd, p + got, sizeof r - got);
    if (n <= 0) return false;
    got += size_t(n);
  }
  return true;
}

inline void write_report(int fd, const KernelReport& r) {
  const auto* p = reinterpret_cast<const uint8_t*>(&r);
  size_t put = 0;
  while (put < sizeof r) {
    ssize_t n = write(fd, p + put, sizeof r - put);
    if (n <= 0) return;
    put += size_t(n);
  }
}

// A pipe whose ends are closed on every path.
struct Pipe {
  int r = -1, w = -1;
  Pipe() {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) == 0) {
      r = fds[0];
      w = fds[1];
    }
  }
  ~Pipe() {
    close_r();
    close_w();
  }
  void close_r() {
    if (r >= 0) close(r);
    r = -1;
  }
  void close_w() {
    if (w >= 0) close(w);
    w = -1;
  }
  // Non-blocking: true once a byte arrived.
  bool signalled() {
    pollfd p{r, POLLIN, 0};
    char c;
    return ::poll(&p, 1, 0) == 1 && read(r, &c, 1) == 1;
  }
};

// ----- The kernel's side (runs in the forked child, in the namespace).

inline void kernel_tcp_info(int fd, KernelReport& rep) {
  tcp_info ti{};
  socklen_t len = sizeof ti;
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0) {
    rep.total_retrans = ti.tcpi_total_retrans;
    rep.rtt_us = ti.tcpi_rtt;
    rep.snd_mss = ti.tcpi_snd_mss;
    rep.rcv_mss = ti.tcpi_rcv_mss;
  }
}

inline void set_timeouts(int fd, int seconds) {
  timeval tv{seconds, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

}  // namespace shunt::test
