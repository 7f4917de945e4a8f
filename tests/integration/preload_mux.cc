// Readiness over a mix of offloaded and kernel fds (docs/preload.md, "Readiness"): one epoll set
// holding a UDP socket, a TCP socket (both offloaded under the preload on the cable), an AF_UNIX
// socketpair, a pipe and a timerfd (kernel); an epoll fd inside another epoll set and inside
// poll(); one socket in two sets; EPOLLET, EPOLLONESHOT, epoll_ctl's errors; poll, ppoll, select
// and pselect over the same mix; timeouts; signals (EINTR, the calls' masks). Every check states
// what Linux does, so the same program run on the kernel alone (127.0.0.1) validates the checks
// themselves.
//
//   preload_mux server PORT                       UDP and TCP echo on PORT until "QUIT" (answered
//   "BYE") preload_mux client SERVER_IP PORT [--expect-offload]
//
// The server echoes each UDP datagram to its sender, in arrival order (so a datagram sent after
// others works as a barrier: once its echo is back, the earlier echoes are too), and each TCP
// byte stream back, closing the connection instead when a chunk holds "CLOSE".
// --expect-offload: the client's UDP and TCP sockets must report SO_SHUNT_OFFLOAD = 1.
// Exit status 0 when every check passed.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "shunt/shunt.h"

namespace {

int g_failures = 0;

void fail(const char* fmt, ...) {
  ++g_failures;
  va_list ap;
  va_start(ap, fmt);
  std::printf("FAIL: ");
  std::vprintf(fmt, ap);
  std::printf("\n");
  va_end(ap);
  std::fflush(stdout);
}

#define CHECK(cond, ...)            \
  do {                              \
    if (!(cond)) fail(__VA_ARGS__); \
  } while (0)

[[noreturn]] void die(const char* what) {
  std::printf("FATAL: %s: %s\n", what, std::strerror(errno));
  std::exit(2);
}

long now_ms() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000 + t.tv_nsec / 1'000'000;
}

sockaddr_in addr_of(const char* ip, int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(uint16_t(port));
  if (inet_pton(AF_INET, ip, &a.sin_addr) != 1) {
    std::printf("FATAL: bad address %s\n", ip);
    std::exit(2);
  }
  return a;
}

// --- Server.

int run_server(int port) {
  const sockaddr_in any = addr_of("0.0.0.0", port);
  const int u = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  if (u < 0 || bind(u, reinterpret_cast<const sockaddr*>(&any), sizeof any) != 0) die("server udp");
  const int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  const int one = 1;
  setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (l < 0 || bind(l, reinterpret_cast<const sockaddr*>(&any), sizeof any) != 0 ||
      listen(l, 16) != 0)
    die("server tcp");
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = u;
  epoll_ctl(ep, EPOLL_CTL_ADD, u, &ev);
  ev.data.fd = l;
  epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev);
  std::printf("server ready\n");
  std::fflush(stdout);
  char buf[2048];
  for (;;) {
    epoll_event evs[16];
    const int n = epoll_wait(ep, evs, 16, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("server epoll_wait");
    }
    for (int i = 0; i < n; ++i) {
      const int fd = evs[i].data.fd;
      if (fd == u) {
        for (;;) {
          sockaddr_in from{};
          socklen_t fl = sizeof from;
          const ssize_t r =
              recvfrom(u, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &fl);
          if (r < 0) break;
          if (r == 4 && std::memcmp(buf, "QUIT", 4) == 0) {
            sendto(u, "BYE", 3, 0, reinterpret_cast<sockaddr*>(&from), fl);
            pollfd p{u, POLLIN, 0};
            poll(&p, 1, 200);  // time for the answer to leave before the process does
            std::printf("server done\n");
            return 0;
          }
          sendto(u, buf, size_t(r), 0, reinterpret_cast<sockaddr*>(&from), fl);
        }
      } else if (fd == l) {
        for (;;) {
          const int c = accept4(l, nullptr, nullptr, SOCK_NONBLOCK);
          if (c < 0) break;
          ev.events = EPOLLIN;
          ev.data.fd = c;
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
        }
      } else {
        const ssize_t r = recv(fd, buf, sizeof buf, 0);
        if (r < 0 && errno == EAGAIN) continue;
        if (r <= 0 || memmem(buf, size_t(r), "CLOSE", 5)) {
          close(fd);  // leaves the set with it
          continue;
        }
        ssize_t off = 0;
        while (off < r) {
          const ssize_t w = send(fd, buf + off, size_t(r - off), MSG_NOSIGNAL);
          if (w > 0) {
            off += w;
          } else if (w < 0 && errno == EAGAIN) {
            pollfd p{fd, POLLOUT, 0};
            poll(&p, 1, 1000);
          } else {
            break;
          }
        }
      }
    }
  }
}

// --- Client.

struct Mix {
  int u = -1;            // UDP, connected to the server (offloaded under the preload)
  int w = -1;            // UDP, the barrier's socket
  int t = -1;            // TCP, connected to the server's echo
  int k0 = -1, k1 = -1;  // AF_UNIX socketpair (kernel)
  int p0 = -1, p1 = -1;  // pipe (kernel)
  int tfd = -1;          // timerfd (kernel)
};

sockaddr_in g_server;

int udp_connected() {
  const int s = socket(AF_INET, SOCK_DGRAM, 0);
  if (s < 0 || connect(s, reinterpret_cast<const sockaddr*>(&g_server), sizeof g_server) != 0)
    die("udp connect");
  return s;
}

int tcp_connected() {
  const int s = socket(AF_INET, SOCK_STREAM, 0);
  if (s < 0 || connect(s, reinterpret_cast<const sockaddr*>(&g_server), sizeof g_server) != 0)
    die("tcp connect");
  return s;
}

// Waits up to 5 s for `fd` to be readable, with poll.
bool readable(int fd, int ms = 5000) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, ms) == 1 && (p.revents & POLLIN);
}

// Sends "sync" from the barrier socket and waits for its echo: every echo asked for before has
// arrived by then (the server answers in order, the link keeps order).
void barrier(const Mix& m) {
  if (send(m.w, "sync", 4, 0) != 4) die("barrier send");
  char b[16];
  if (!readable(m.w)) {
    fail("barrier: no echo within 5 s");
    return;
  }
  const ssize_t r = recv(m.w, b, sizeof b, 0);
  CHECK(r == 4 && std::memcmp(b, "sync", 4) == 0, "barrier: echo is %zd bytes", r);
}

void udp_send(int s, const char* msg) {
  if (send(s, msg, std::strlen(msg), 0) != ssize_t(std::strlen(msg))) die("udp send");
}

// Reads one datagram (waiting up to 5 s) and compares it.
void udp_expect(int s, const char* msg, const char* what) {
  char b[256];
  if (!readable(s)) {
    fail("%s: no datagram within 5 s", what);
    return;
  }
  const ssize_t r = recv(s, b, sizeof b, MSG_DONTWAIT);
  CHECK(r == ssize_t(std::strlen(msg)) && std::memcmp(b, msg, size_t(r)) == 0,
        "%s: got %zd bytes, not \"%s\"", what, r, msg);
}

// Reads exactly strlen(msg) bytes of the TCP stream (waiting up to 5 s) and compares them.
void tcp_expect(int s, const char* msg, const char* what) {
  std::string got;
  const size_t want = std::strlen(msg);
  const long end = now_ms() + 5000;
  while (got.size() < want && now_ms() < end) {
    char b[256];
    const ssize_t r = recv(s, b, std::min(sizeof b, want - got.size()), MSG_DONTWAIT);
    if (r > 0) {
      got.append(b, size_t(r));
    } else if (r == 0) {
      break;
    } else {
      readable(s, 100);
    }
  }
  CHECK(got == msg, "%s: got \"%s\", not \"%s\"", what, got.c_str(), msg);
}

void pipe_write(int fd, const char* msg) {
  if (write(fd, msg, std::strlen(msg)) != ssize_t(std::strlen(msg))) die("write");
}

void read_expect(int fd, const char* msg, const char* what) {
  char b[64];
  const ssize_t r = read(fd, b, sizeof b);
  CHECK(r == ssize_t(std::strlen(msg)) && std::memcmp(b, msg, size_t(r)) == 0, "%s: read %zd bytes",
        what, r);
}

void timer_arm(int tfd, int ms) {
  itimerspec it{};
  it.it_value.tv_sec = ms / 1000;
  it.it_value.tv_nsec = long(ms % 1000) * 1'000'000;
  if (timerfd_settime(tfd, 0, &it, nullptr) != 0) die("timerfd_settime");
}

void timer_expect(int tfd, const char* what) {
  uint64_t n = 0;
  const ssize_t r = read(tfd, &n, sizeof n);
  CHECK(r == 8 && n == 1, "%s: timerfd read %zd, %llu expirations", what, r, (unsigned long long)n);
}

void ctl(int ep, int op, int fd, uint32_t events, uint64_t data) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = data;
  if (epoll_ctl(ep, op, fd, &ev) != 0) die("epoll_ctl");
}

using Events = std::map<uint64_t, uint32_t>;  // data -> events

std::string show(const Events& e) {
  std::string s = "{";
  for (auto& [d, ev] : e)
    s += " " + std::to_string(d) + ":0x" + [](uint32_t x) {
      char b[16];
      std::snprintf(b, sizeof b, "%x", x);
      return std::string(b);
    }(ev);
  return s + " }";
}

// One epoll_wait; every reported data value must be distinct.
Events wait_once(int ep, int timeout, const char* what) {
  epoll_event evs[16];
  const int n = epoll_wait(ep, evs, 16, timeout);
  Events out;
  if (n < 0) {
    fail("%s: epoll_wait: %s", what, std::strerror(errno));
    return out;
  }
  for (int i = 0; i < n; ++i) {
    CHECK(!out.count(evs[i].data.u64), "%s: data %llu reported twice in one call", what,
          (unsigned long long)evs[i].data.u64);
    out[evs[i].data.u64] = evs[i].events;
  }
  return out;
}

void expect_events(int ep, int timeout, const Events& want, const char* what) {
  const Events got = wait_once(ep, timeout, what);
  CHECK(got == want, "%s: epoll_wait reported %s, expected %s", what, show(got).c_str(),
        show(want).c_str());
}

void test_epoll_each(const Mix& m, int e) {
  expect_events(e, 0, {}, "epoll: nothing ready at first");
  pipe_write(m.k1, "k");
  expect_events(e, 5000, {{uint64_t(m.k0), EPOLLIN}}, "epoll: socketpair");
  read_expect(m.k0, "k", "epoll: socketpair data");
  pipe_write(m.p1, "p");
  expect_events(e, 5000, {{uint64_t(m.p0), EPOLLIN}}, "epoll: pipe");
  read_expect(m.p0, "p", "epoll: pipe data");
  timer_arm(m.tfd, 20);
  expect_events(e, 5000, {{uint64_t(m.tfd), EPOLLIN}}, "epoll: timerfd");
  timer_expect(m.tfd, "epoll: timerfd");
  udp_send(m.u, "hello-udp");
  expect_events(e, 5000, {{uint64_t(m.u), EPOLLIN}}, "epoll: udp");
  udp_expect(m.u, "hello-udp", "epoll: udp data");
  if (send(m.t, "hello-tcp", 9, 0) != 9) die("tcp send");
  expect_events(e, 5000, {{uint64_t(m.t), EPOLLIN}}, "epoll: tcp");
  tcp_expect(m.t, "hello-tcp", "epoll: tcp data");
  expect_events(e, 0, {}, "epoll: nothing ready after draining");
  std::printf("ok: epoll reports each kind of fd alone\n");
}

void test_epoll_all(const Mix& m, int e) {
  udp_send(m.u, "all-udp");
  if (send(m.t, "all-tcp", 7, 0) != 7) die("tcp send");
  pipe_write(m.k1, "k");
  pipe_write(m.p1, "p");
  timer_arm(m.tfd, 10);
  std::set<uint64_t> seen;
  const std::set<uint64_t> all = {uint64_t(m.u), uint64_t(m.t), uint64_t(m.k0), uint64_t(m.p0),
                                  uint64_t(m.tfd)};
  const long end = now_ms() + 5000;
  while (seen != all && now_ms() < end) {
    for (auto& [d, ev] : wait_once(e, 1000, "epoll: all at once")) {
      CHECK(ev == EPOLLIN, "epoll: all at once: fd %llu reported 0x%x", (unsigned long long)d, ev);
      CHECK(all.count(d) && !seen.count(d), "epoll: all at once: fd %llu reported again or unknown",
            (unsigned long long)d);
      seen.insert(d);
      // Drain each as it is reported: level-triggered, it would be reported again otherwise.
      const int fd = int(d);
      if (fd == m.u) udp_expect(m.u, "all-udp", "epoll: all at once: udp");
      if (fd == m.t) tcp_expect(m.t, "all-tcp", "epoll: all at once: tcp");
      if (fd == m.k0) read_expect(m.k0, "k", "epoll: all at once: socketpair");
      if (fd == m.p0) read_expect(m.p0, "p", "epoll: all at once: pipe");
      if (fd == m.tfd) timer_expect(m.tfd, "epoll: all at once: timerfd");
    }
  }
  CHECK(seen == all, "epoll: all at once: saw %zu of 5 fds in 5 s", seen.size());
  expect_events(e, 0, {}, "epoll: all at once: nothing after draining");
  std::printf("ok: epoll reports offloaded and kernel fds together\n");
}

void test_epoll_timeout_and_out(const Mix& m, int e) {
  const long t0 = now_ms();
  expect_events(e, 50, {}, "epoll: timeout");
  const long took = now_ms() - t0;
  CHECK(took >= 49 && took < 5000, "epoll: a 50 ms timeout took %ld ms", took);
  ctl(e, EPOLL_CTL_MOD, m.t, EPOLLIN | EPOLLOUT, uint64_t(m.t));
  expect_events(e, 0, {{uint64_t(m.t), EPOLLOUT}}, "epoll: EPOLLOUT of a connected TCP socket");
  ctl(e, EPOLL_CTL_MOD, m.u, EPOLLIN | EPOLLOUT, uint64_t(m.u));
  expect_events(e, 0, {{uint64_t(m.t), EPOLLOUT}, {uint64_t(m.u), EPOLLOUT}},
                "epoll: EPOLLOUT of UDP and TCP");
  ctl(e, EPOLL_CTL_MOD, m.t, EPOLLIN, uint64_t(m.t));
  ctl(e, EPOLL_CTL_MOD, m.u, EPOLLIN, uint64_t(m.u));
  expect_events(e, 0, {}, "epoll: EPOLLOUT asked no more");
  // epoll_pwait with a mask, and maxevents 1 over two ready fds: one each call, both reported.
  sigset_t mask;
  sigemptyset(&mask);
  pipe_write(m.k1, "k");
  pipe_write(m.p1, "p");
  std::set<uint64_t> seen;
  for (int i = 0; i < 2; ++i) {
    epoll_event ev;
    const int n = epoll_pwait(e, &ev, 1, 1000, &mask);
    CHECK(n == 1, "epoll_pwait maxevents 1: returned %d", n);
    if (n == 1) {
      seen.insert(ev.data.u64);
      if (int(ev.data.u64) == m.k0) read_expect(m.k0, "k", "epoll_pwait: socketpair");
      if (int(ev.data.u64) == m.p0) read_expect(m.p0, "p", "epoll_pwait: pipe");
    }
  }
  CHECK(seen == std::set<uint64_t>({uint64_t(m.k0), uint64_t(m.p0)}),
        "epoll_pwait maxevents 1: saw %zu fds", seen.size());
  std::printf("ok: epoll timeout, EPOLLOUT, epoll_pwait\n");
}

void test_nested(const Mix& m, int e) {
  const int outer = epoll_create1(0);
  ctl(outer, EPOLL_CTL_ADD, e, EPOLLIN, uint64_t(e));
  expect_events(outer, 0, {}, "nested: nothing ready");
  pollfd pe{e, POLLIN, 0};
  CHECK(poll(&pe, 1, 0) == 0, "nested: poll() says the epoll fd is ready when nothing is");
  udp_send(m.u, "nested");
  expect_events(outer, 5000, {{uint64_t(e), EPOLLIN}},
                "nested: an offloaded member makes the inner set readable");
  pe.revents = 0;
  CHECK(poll(&pe, 1, 0) == 1 && pe.revents == POLLIN,
        "nested: poll() on the epoll fd: revents 0x%x", pe.revents);
  expect_events(e, 0, {{uint64_t(m.u), EPOLLIN}}, "nested: the inner set names the socket");
  udp_expect(m.u, "nested", "nested: data");
  expect_events(outer, 0, {}, "nested: drained inner set is not readable");
  pe.revents = 0;
  CHECK(poll(&pe, 1, 0) == 0, "nested: poll() on the drained epoll fd: revents 0x%x", pe.revents);
  pipe_write(m.k1, "k");
  expect_events(outer, 5000, {{uint64_t(e), EPOLLIN}},
                "nested: a kernel member makes the inner set readable");
  read_expect(m.k0, "k", "nested: socketpair");
  expect_events(outer, 0, {}, "nested: nothing after draining");
  close(outer);
  std::printf("ok: an epoll fd inside another epoll set and inside poll()\n");
}

void test_two_sets(const Mix& m, int e) {
  const int e2 = epoll_create1(0);
  ctl(e2, EPOLL_CTL_ADD, m.u, EPOLLIN, 7777);
  udp_send(m.u, "both");
  barrier(m);
  expect_events(e, 0, {{uint64_t(m.u), EPOLLIN}}, "two sets: the first");
  expect_events(e2, 0, {{7777, EPOLLIN}}, "two sets: the second");
  udp_expect(m.u, "both", "two sets: data");
  expect_events(e, 0, {}, "two sets: the first, drained");
  expect_events(e2, 0, {}, "two sets: the second, drained");
  close(e2);  // the socket stays in the first set
  udp_send(m.u, "after");
  expect_events(e, 5000, {{uint64_t(m.u), EPOLLIN}}, "two sets: the first after the second closed");
  udp_expect(m.u, "after", "two sets: data after");
  std::printf("ok: one socket in two epoll sets\n");
}

void test_edge_and_oneshot(const Mix& m) {
  const int et = epoll_create1(0);
  ctl(et, EPOLL_CTL_ADD, m.u, EPOLLIN | EPOLLET, uint64_t(m.u));
  ctl(et, EPOLL_CTL_ADD, m.p0, EPOLLIN | EPOLLET, uint64_t(m.p0));
  expect_events(et, 0, {}, "EPOLLET: nothing at first");
  udp_send(m.u, "a");
  udp_send(m.u, "b");
  pipe_write(m.p1, "ab");
  barrier(m);
  expect_events(et, 0, {{uint64_t(m.u), EPOLLIN}, {uint64_t(m.p0), EPOLLIN}},
                "EPOLLET: first report");
  expect_events(et, 0, {}, "EPOLLET: no second report without new data");
  udp_expect(m.u, "a", "EPOLLET: first datagram");
  char c;
  CHECK(read(m.p0, &c, 1) == 1, "EPOLLET: pipe read");
  expect_events(et, 0, {}, "EPOLLET: still readable, no new data: no report");
  udp_send(m.u, "c");
  pipe_write(m.p1, "c");
  barrier(m);
  expect_events(et, 0, {{uint64_t(m.u), EPOLLIN}, {uint64_t(m.p0), EPOLLIN}},
                "EPOLLET: new data is a new edge");
  udp_expect(m.u, "b", "EPOLLET: second datagram");
  udp_expect(m.u, "c", "EPOLLET: third datagram");
  char b[8];
  CHECK(read(m.p0, b, sizeof b) == 2, "EPOLLET: pipe rest");
  expect_events(et, 0, {}, "EPOLLET: drained");
  close(et);

  const int os = epoll_create1(0);
  ctl(os, EPOLL_CTL_ADD, m.u, EPOLLIN | EPOLLONESHOT, uint64_t(m.u));
  ctl(os, EPOLL_CTL_ADD, m.p0, EPOLLIN | EPOLLONESHOT, uint64_t(m.p0));
  udp_send(m.u, "x");
  pipe_write(m.p1, "x");
  barrier(m);
  expect_events(os, 0, {{uint64_t(m.u), EPOLLIN}, {uint64_t(m.p0), EPOLLIN}},
                "EPOLLONESHOT: first report");
  udp_send(m.u, "y");
  pipe_write(m.p1, "y");
  barrier(m);
  expect_events(os, 0, {}, "EPOLLONESHOT: disabled after one report");
  ctl(os, EPOLL_CTL_MOD, m.u, EPOLLIN | EPOLLONESHOT, 4242);
  ctl(os, EPOLL_CTL_MOD, m.p0, EPOLLIN | EPOLLONESHOT, 4343);
  expect_events(os, 0, {{4242, EPOLLIN}, {4343, EPOLLIN}}, "EPOLLONESHOT: EPOLL_CTL_MOD re-arms");
  expect_events(os, 0, {}, "EPOLLONESHOT: disabled again");
  udp_expect(m.u, "x", "EPOLLONESHOT: data x");
  udp_expect(m.u, "y", "EPOLLONESHOT: data y");
  CHECK(read(m.p0, b, sizeof b) == 2, "EPOLLONESHOT: pipe data");
  close(os);
  std::printf("ok: EPOLLET and EPOLLONESHOT\n");
}

void expect_errno(int rc, int err, const char* what) {
  CHECK(rc == -1 && errno == err, "%s: returned %d errno %s, expected %s", what, rc,
        rc < 0 ? strerrorname_np(errno) : "-", strerrorname_np(err));
}

void test_ctl_errors(const Mix& m, int e) {
  epoll_event ev{};
  ev.events = EPOLLIN;
  expect_errno(epoll_ctl(e, EPOLL_CTL_ADD, m.u, &ev), EEXIST, "EPOLL_CTL_ADD twice (udp)");
  expect_errno(epoll_ctl(e, EPOLL_CTL_ADD, m.t, &ev), EEXIST, "EPOLL_CTL_ADD twice (tcp)");
  expect_errno(epoll_ctl(e, EPOLL_CTL_ADD, m.k0, &ev), EEXIST, "EPOLL_CTL_ADD twice (kernel)");
  const int fresh = epoll_create1(0);
  expect_errno(epoll_ctl(fresh, EPOLL_CTL_MOD, m.u, &ev), ENOENT, "EPOLL_CTL_MOD of a non-member");
  expect_errno(epoll_ctl(fresh, EPOLL_CTL_DEL, m.u, nullptr), ENOENT,
               "EPOLL_CTL_DEL of a non-member");
  ctl(fresh, EPOLL_CTL_ADD, m.u, EPOLLIN, 1);
  expect_errno(epoll_ctl(fresh, EPOLL_CTL_MOD, m.t, &ev), ENOENT,
               "EPOLL_CTL_MOD of a non-member, set in use");
  CHECK(epoll_ctl(fresh, EPOLL_CTL_DEL, m.u, nullptr) == 0, "EPOLL_CTL_DEL of a member");
  expect_errno(epoll_ctl(fresh, EPOLL_CTL_DEL, m.u, nullptr), ENOENT, "EPOLL_CTL_DEL twice");
  expect_errno(epoll_ctl(fresh, EPOLL_CTL_ADD, fresh, &ev), EINVAL, "epoll fd added to itself");
  expect_errno(epoll_ctl(m.p0, EPOLL_CTL_ADD, m.u, &ev), EINVAL, "epoll_ctl on a pipe");
  expect_errno(epoll_ctl(fresh, 99, m.u, &ev), EINVAL, "epoll_ctl with a bad op");
  const int gone = dup(m.p0);
  close(gone);
  expect_errno(epoll_ctl(gone, EPOLL_CTL_ADD, m.u, &ev), EBADF, "epoll_ctl on a closed epoll fd");
  expect_errno(epoll_ctl(fresh, EPOLL_CTL_ADD, gone, &ev), EBADF, "epoll_ctl of a closed fd");
  close(fresh);
  // A member that is closed leaves the set.
  const int u2 = udp_connected();
  ctl(e, EPOLL_CTL_ADD, u2, EPOLLIN, uint64_t(u2));
  udp_send(u2, "z");
  barrier(m);
  expect_events(e, 0, {{uint64_t(u2), EPOLLIN}}, "close: member reported before");
  close(u2);
  expect_events(e, 0, {}, "close: a closed member is not reported");
  std::printf("ok: epoll_ctl errors, close removes a member\n");
}

void test_poll(const Mix& m) {
  const int gone = dup(m.p0);
  close(gone);
  pollfd p[] = {{m.u, POLLIN, 0},  {m.t, POLLIN | POLLOUT, 0}, {m.k0, POLLIN, 0},
                {m.p0, POLLIN, 0}, {m.tfd, POLLIN, 0},         {gone, POLLIN, 0},
                {-1, POLLIN, 0}};
  constexpr int n = 7;
  int rc = poll(p, n, 0);
  CHECK(rc == 2 && p[1].revents == POLLOUT && p[5].revents == POLLNVAL && p[0].revents == 0 &&
            p[6].revents == 0,
        "poll: idle mix: %d, tcp 0x%x, closed 0x%x", rc, p[1].revents, p[5].revents);
  udp_send(m.u, "pu");
  if (send(m.t, "pt", 2, 0) != 2) die("tcp send");
  pipe_write(m.k1, "k");
  pipe_write(m.p1, "p");
  timer_arm(m.tfd, 10);
  const long end = now_ms() + 5000;
  for (;;) {
    rc = poll(p, n, 1000);
    bool all = true;
    for (int i = 0; i < 5; ++i) all = all && (p[i].revents & POLLIN);
    if (all || now_ms() > end) break;
  }
  CHECK(rc == 6 && p[0].revents == POLLIN && p[1].revents == (POLLIN | POLLOUT) &&
            p[2].revents == POLLIN && p[3].revents == POLLIN && p[4].revents == POLLIN &&
            p[5].revents == POLLNVAL && p[6].revents == 0,
        "poll: everything ready: %d, revents 0x%x 0x%x 0x%x 0x%x 0x%x 0x%x", rc, p[0].revents,
        p[1].revents, p[2].revents, p[3].revents, p[4].revents, p[5].revents);
  udp_expect(m.u, "pu", "poll: udp data");
  tcp_expect(m.t, "pt", "poll: tcp data");
  read_expect(m.k0, "k", "poll: socketpair data");
  read_expect(m.p0, "p", "poll: pipe data");
  timer_expect(m.tfd, "poll: timerfd");
  // A timeout over offloaded and kernel fds.
  p[1].events = POLLIN;  // a connected TCP socket is always writable
  long t0 = now_ms();
  rc = poll(p, 5, 30);
  long took = now_ms() - t0;
  CHECK(rc == 0 && took >= 29 && took < 5000, "poll: 30 ms timeout: %d after %ld ms", rc, took);
  // A wakeup by an offloaded socket while poll sleeps (the server's echo arrives later).
  udp_send(m.u, "late");
  rc = poll(p, 5, 5000);
  CHECK(rc == 1 && p[0].revents == POLLIN, "poll: woken by the udp socket: %d 0x%x", rc,
        p[0].revents);
  udp_expect(m.u, "late", "poll: late data");
  // ppoll: a timeout, then ready.
  sigset_t mask;
  sigemptyset(&mask);
  timespec ts{0, 30'000'000};
  t0 = now_ms();
  rc = ppoll(p, 5, &ts, &mask);
  took = now_ms() - t0;
  CHECK(rc == 0 && took >= 29, "ppoll: 30 ms timeout: %d after %ld ms", rc, took);
  pipe_write(m.p1, "p");
  ts = {5, 0};
  rc = ppoll(p, 5, &ts, &mask);
  CHECK(rc == 1 && p[3].revents == POLLIN, "ppoll: pipe ready: %d 0x%x", rc, p[3].revents);
  read_expect(m.p0, "p", "ppoll: pipe data");
  std::printf("ok: poll and ppoll over the mix\n");
}

void test_select(const Mix& m) {
  const int fds[] = {m.u, m.t, m.k0, m.p0, m.tfd};
  int maxfd = 0;
  for (int fd : fds) maxfd = std::max(maxfd, fd);
  auto fill = [&](fd_set& r, fd_set& w) {
    FD_ZERO(&r);
    FD_ZERO(&w);
    for (int fd : fds) FD_SET(fd, &r);
    FD_SET(m.t, &w);
  };
  fd_set r, w;
  fill(r, w);
  timeval tv{0, 0};
  int rc = select(maxfd + 1, &r, &w, nullptr, &tv);
  CHECK(rc == 1 && FD_ISSET(m.t, &w) && !FD_ISSET(m.u, &r) && !FD_ISSET(m.t, &r),
        "select: idle mix: %d, tcp writable %d", rc, int(FD_ISSET(m.t, &w)));
  udp_send(m.u, "su");
  if (send(m.t, "st", 2, 0) != 2) die("tcp send");
  pipe_write(m.k1, "k");
  pipe_write(m.p1, "p");
  timer_arm(m.tfd, 10);
  const long end = now_ms() + 5000;
  for (;;) {
    fill(r, w);
    tv = {1, 0};
    rc = select(maxfd + 1, &r, &w, nullptr, &tv);
    bool all = rc > 0;
    for (int fd : fds) all = all && FD_ISSET(fd, &r);
    if (all || now_ms() > end) break;
  }
  bool all = true;
  for (int fd : fds) all = all && FD_ISSET(fd, &r);
  CHECK(rc == 6 && all && FD_ISSET(m.t, &w), "select: everything ready: %d", rc);
  CHECK(tv.tv_sec < 1 || (tv.tv_sec == 1 && tv.tv_usec == 0), "select: time left %ld.%06ld",
        long(tv.tv_sec), long(tv.tv_usec));
  udp_expect(m.u, "su", "select: udp data");
  tcp_expect(m.t, "st", "select: tcp data");
  read_expect(m.k0, "k", "select: socketpair data");
  read_expect(m.p0, "p", "select: pipe data");
  timer_expect(m.tfd, "select: timerfd");
  // A timeout: Linux writes the time left (zero) back.
  FD_ZERO(&r);
  for (int fd : fds) FD_SET(fd, &r);
  tv = {0, 30'000};
  long t0 = now_ms();
  rc = select(maxfd + 1, &r, nullptr, nullptr, &tv);
  long took = now_ms() - t0;
  CHECK(rc == 0 && tv.tv_sec == 0 && tv.tv_usec == 0 && took >= 29,
        "select: 30 ms timeout: %d after %ld ms, left %ld us", rc, took, long(tv.tv_usec));
  for (int fd : fds) CHECK(!FD_ISSET(fd, &r), "select: fd %d set after a timeout", fd);
  // Woken by the udp socket.
  udp_send(m.u, "late");
  FD_ZERO(&r);
  for (int fd : fds) FD_SET(fd, &r);
  tv = {5, 0};
  rc = select(maxfd + 1, &r, nullptr, nullptr, &tv);
  CHECK(rc == 1 && FD_ISSET(m.u, &r), "select: woken by the udp socket: %d", rc);
  udp_expect(m.u, "late", "select: late data");
  // A closed fd: EBADF.
  const int gone = dup(m.p0);
  close(gone);
  FD_ZERO(&r);
  FD_SET(m.u, &r);
  FD_SET(gone, &r);
  tv = {0, 0};
  rc = select(std::max(gone, m.u) + 1, &r, nullptr, nullptr, &tv);
  expect_errno(rc, EBADF, "select: a closed fd");
  // pselect: a timeout, then ready.
  FD_ZERO(&r);
  for (int fd : fds) FD_SET(fd, &r);
  timespec ts{0, 30'000'000};
  sigset_t mask;
  sigemptyset(&mask);
  t0 = now_ms();
  rc = pselect(maxfd + 1, &r, nullptr, nullptr, &ts, &mask);
  took = now_ms() - t0;
  CHECK(rc == 0 && took >= 29, "pselect: 30 ms timeout: %d after %ld ms", rc, took);
  udp_send(m.u, "ps");
  FD_ZERO(&r);
  for (int fd : fds) FD_SET(fd, &r);
  ts = {5, 0};
  rc = pselect(maxfd + 1, &r, nullptr, nullptr, &ts, &mask);
  CHECK(rc == 1 && FD_ISSET(m.u, &r), "pselect: udp ready: %d", rc);
  udp_expect(m.u, "ps", "pselect: data");
  std::printf("ok: select and pselect over the mix\n");
}

void test_hangup(int e) {
  const int t2 = tcp_connected();
  ctl(e, EPOLL_CTL_ADD, t2, EPOLLIN | EPOLLRDHUP, uint64_t(t2));
  expect_events(e, 0, {}, "hangup: nothing before");
  if (send(t2, "CLOSE", 5, 0) != 5) die("tcp send");
  expect_events(e, 5000, {{uint64_t(t2), EPOLLIN | EPOLLRDHUP}}, "hangup: the peer closed");
  char b[8];
  CHECK(recv(t2, b, sizeof b, 0) == 0, "hangup: recv gives end of stream");
  close(t2);
  expect_events(e, 0, {}, "hangup: closed socket left the set");
  std::printf("ok: the peer's close reports EPOLLIN|EPOLLRDHUP\n");
}

// maxevents 1 over three ready level-triggered sockets: each call reports the one reported
// longest ago (the kernel's ready list puts a reported member at its tail).
void test_round_robin(const Mix& m) {
  const int ep = epoll_create1(0);
  int s[3];
  for (int i = 0; i < 3; ++i) {
    s[i] = udp_connected();
    ctl(ep, EPOLL_CTL_ADD, s[i], EPOLLIN, uint64_t(i));
    udp_send(s[i], "rr");
  }
  barrier(m);
  std::vector<uint64_t> order;
  for (int round = 0; round < 6; ++round) {
    epoll_event ev;
    if (epoll_wait(ep, &ev, 1, 0) == 1) order.push_back(ev.data.u64);
  }
  bool fair = order.size() == 6;
  for (size_t i = 0; fair && i < 3; ++i) {
    fair = order[i] != order[(i + 1) % 3] && order[i + 3] == order[i];
  }
  CHECK(fair,
        "round robin: maxevents 1 over three ready sockets reported %zu times, not each in turn",
        order.size());
  for (int i = 0; i < 3; ++i) {
    udp_expect(s[i], "rr", "round robin: data");
    close(s[i]);
  }
  expect_events(ep, 0, {}, "round robin: closed members are gone");
  close(ep);
  std::printf("ok: maxevents 1 takes ready members in turn\n");
}

// Kernel fds already in a set when the first offloaded socket joins it are still reported.
void test_kernel_first(const Mix& m) {
  const int ep = epoll_create1(0);
  ctl(ep, EPOLL_CTL_ADD, m.p0, EPOLLIN, 1);
  ctl(ep, EPOLL_CTL_ADD, m.k0, EPOLLIN, 2);
  ctl(ep, EPOLL_CTL_ADD, m.u, EPOLLIN, 3);
  pipe_write(m.p1, "p");
  expect_events(ep, 0, {{1, EPOLLIN}}, "kernel first: the pipe");
  read_expect(m.p0, "p", "kernel first: pipe data");
  CHECK(epoll_ctl(ep, EPOLL_CTL_DEL, m.p0, nullptr) == 0,
        "kernel first: EPOLL_CTL_DEL of the pipe");
  pipe_write(m.k1, "k");
  expect_events(ep, 0, {{2, EPOLLIN}}, "kernel first: the socketpair");
  read_expect(m.k0, "k", "kernel first: socketpair data");
  udp_send(m.u, "kf");
  expect_events(ep, 5000, {{3, EPOLLIN}}, "kernel first: the udp socket");
  udp_expect(m.u, "kf", "kernel first: udp data");
  close(ep);
  std::printf("ok: kernel fds added before the first offloaded socket\n");
}

// A socket added to a set before bind/connect placed it (the library holds such a socket until
// then), which then goes to the kernel (loopback): it is reported like any kernel fd.
void test_added_before_placement() {
  const int s = socket(AF_INET, SOCK_DGRAM, 0);
  const int ep = epoll_create1(0);
  ctl(ep, EPOLL_CTL_ADD, s, EPOLLIN, 99);
  expect_events(ep, 0, {}, "placement: nothing before");
  const sockaddr_in lo = addr_of("127.0.0.1", 0);
  if (bind(s, reinterpret_cast<const sockaddr*>(&lo), sizeof lo) != 0) die("bind 127.0.0.1");
  sockaddr_in at{};
  socklen_t len = sizeof at;
  getsockname(s, reinterpret_cast<sockaddr*>(&at), &len);
  const int k = socket(AF_INET, SOCK_DGRAM, 0);
  if (sendto(k, "lo", 2, 0, reinterpret_cast<const sockaddr*>(&at), len) != 2)
    die("sendto loopback");
  expect_events(ep, 5000, {{99, EPOLLIN}},
                "placement: a socket placed on the kernel after it was added");
  udp_expect(s, "lo", "placement: data");
  expect_events(ep, 0, {}, "placement: drained");
  epoll_event ev{};
  expect_errno(epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev), EEXIST, "placement: still a member");
  CHECK(epoll_ctl(ep, EPOLL_CTL_DEL, s, nullptr) == 0, "placement: EPOLL_CTL_DEL");
  close(k);
  close(s);
  close(ep);
  std::printf("ok: a socket added before placement and placed on the kernel\n");
}

volatile sig_atomic_t g_alarms = 0;
void on_alarm(int) { g_alarms = g_alarms + 1; }

void alarm_in(int ms) {
  itimerval it{};
  it.it_value.tv_usec = ms * 1000;
  setitimer(ITIMER_REAL, &it, nullptr);
}

// signal(7): poll, ppoll, select, pselect and the epoll waits fail with EINTR after a handler ran,
// SA_RESTART or not; the masks of ppoll/pselect/epoll_pwait let a blocked, pending signal in.
void test_signals(const Mix& m, int e) {
  struct sigaction sa {};
  sa.sa_handler = on_alarm;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGALRM, &sa, nullptr);
  epoll_event evs[8];
  pollfd p[] = {{m.u, POLLIN, 0}, {m.k0, POLLIN, 0}};
  const int maxfd = std::max(m.u, m.k0);
  fd_set r;
  auto fill = [&] {
    FD_ZERO(&r);
    FD_SET(m.u, &r);
    FD_SET(m.k0, &r);
  };
  alarm_in(20);
  expect_errno(epoll_wait(e, evs, 8, 5000), EINTR, "signal: epoll_wait");
  alarm_in(20);
  expect_errno(poll(p, 2, 5000), EINTR, "signal: poll");
  alarm_in(20);
  fill();
  timeval tv{5, 0};
  expect_errno(select(maxfd + 1, &r, nullptr, nullptr, &tv), EINTR, "signal: select");
  CHECK(g_alarms == 3, "signal: %d handler runs, expected 3", int(g_alarms));

  // Blocked: a pending signal does not interrupt; the call's mask lets it in.
  sigset_t block, empty;
  sigemptyset(&block);
  sigaddset(&block, SIGALRM);
  sigemptyset(&empty);
  sigprocmask(SIG_BLOCK, &block, nullptr);
  alarm_in(5);
  expect_events(e, 50, {}, "signal blocked: epoll_wait times out");
  expect_errno(epoll_pwait(e, evs, 8, 5000, &empty), EINTR, "signal: epoll_pwait's mask");
  alarm_in(5);
  CHECK(poll(p, 2, 50) == 0, "signal blocked: poll times out");
  timespec ts{5, 0};
  expect_errno(ppoll(p, 2, &ts, &empty), EINTR, "signal: ppoll's mask");
  alarm_in(5);
  fill();
  tv = {0, 50'000};
  CHECK(select(maxfd + 1, &r, nullptr, nullptr, &tv) == 0, "signal blocked: select times out");
  fill();
  expect_errno(pselect(maxfd + 1, &r, nullptr, nullptr, &ts, &empty), EINTR,
               "signal: pselect's mask");
  sigprocmask(SIG_UNBLOCK, &block, nullptr);
  CHECK(g_alarms == 6, "signal: %d handler runs, expected 6", int(g_alarms));
  signal(SIGALRM, SIG_DFL);
  std::printf("ok: signals interrupt waits; the masks of epoll_pwait, ppoll and pselect\n");
}

int run_client(const char* ip, int port, bool expect_offload) {
  g_server = addr_of(ip, port);
  Mix m;
  m.u = udp_connected();
  m.w = udp_connected();
  m.t = tcp_connected();
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) die("socketpair");
  m.k0 = sv[0];
  m.k1 = sv[1];
  int pp[2];
  if (pipe(pp) != 0) die("pipe");
  m.p0 = pp[0];
  m.p1 = pp[1];
  m.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
  if (m.tfd < 0) die("timerfd_create");
  const bool off_u = shunt_is_offloaded(m.u), off_t = shunt_is_offloaded(m.t),
             off_k = shunt_is_offloaded(m.k0);
  std::printf("offloaded: udp %d, tcp %d, unix %d\n", int(off_u), int(off_t), int(off_k));
  if (expect_offload) CHECK(off_u && off_t && !off_k, "the UDP and TCP sockets are not offloaded");
  // The server is up when an echo comes back.
  bool up = false;
  for (int i = 0; i < 50 && !up; ++i) {
    udp_send(m.w, "sync");
    char b[8];
    if (readable(m.w, 100)) up = recv(m.w, b, sizeof b, 0) == 4;
  }
  if (!up) {
    fail("no echo from the server");
    return 1;
  }

  const int e = epoll_create1(EPOLL_CLOEXEC);
  for (int fd : {m.u, m.t, m.k0, m.p0, m.tfd}) ctl(e, EPOLL_CTL_ADD, fd, EPOLLIN, uint64_t(fd));
  test_epoll_each(m, e);
  test_epoll_all(m, e);
  test_epoll_timeout_and_out(m, e);
  test_nested(m, e);
  test_two_sets(m, e);
  test_edge_and_oneshot(m);
  test_ctl_errors(m, e);
  test_poll(m);
  test_select(m);
  test_hangup(e);
  test_signals(m, e);
  test_added_before_placement();
  test_round_robin(m);
  test_kernel_first(m);
  close(e);

  // The server answers QUIT with BYE and exits; ask again if either datagram got lost.
  bool bye = false;
  for (int i = 0; i < 20 && !bye; ++i) {
    udp_send(m.w, "QUIT");
    char b[8];
    if (readable(m.w, 250)) bye = recv(m.w, b, sizeof b, 0) == 3 && std::memcmp(b, "BYE", 3) == 0;
  }
  CHECK(bye, "the server did not answer QUIT");
  std::printf("%s: %d failure(s)\n", g_failures ? "FAILED" : "PASSED", g_failures);
  return g_failures ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  setvbuf(stdout, nullptr, _IOLBF, 0);
  signal(SIGPIPE, SIG_IGN);
  if (argc == 3 && std::strcmp(argv[1], "server") == 0) return run_server(std::atoi(argv[2]));
  if ((argc == 4 || argc == 5) && std::strcmp(argv[1], "client") == 0) {
    const bool expect = argc == 5 && std::strcmp(argv[4], "--expect-offload") == 0;
    return run_client(argv[2], std::atoi(argv[3]), expect);
  }
  std::fprintf(stderr,
               "usage: preload_mux server PORT | client SERVER_IP PORT [--expect-offload]\n");
  return 2;
}
