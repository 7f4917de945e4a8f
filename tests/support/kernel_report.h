// What the kernel-peer tests share: socket addresses from text, the fixed-size report a kernel
// child sends its parent through a pipe, a pipe that closes itself, and the kernel side's TCP
// statistics and timeouts. Used by tests/interop/tcp_kernel_peer.cc and afxdp_kernel_peer.cc.
#pragma once
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdint>
#include <string>

namespace shunt::test {

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
