// Run under libshunt.so with SHUNT_DEVICE=mlx5sim:cable=<unique>, SHUNT_IPV4=10.9.0.1/24 (no peer
// on the cable is needed: everything here talks to its own stack or to the kernel). Checks where
// sockets are placed (docs/preload.md, "Which sockets are offloaded"), dup/close reference
// counting, non-blocking mode, FIONREAD, fork (the child gets EBADF on inherited offloaded fds,
// kernel sockets for new ones, and the parent's connection is untouched), and exec (the new
// image sees its inherited placeholder as a plain kernel socket).
//
//   preload_offload all          the checks above
//   preload_offload rules        run with SHUNT_RULES="kernel port=7001": that bind goes to the kernel
//   preload_offload default-off  run with SHUNT_OFFLOAD=0: only SO_SHUNT_OFFLOAD=1 offloads
//   preload_offload eintr-spin   run with SHUNT_SPIN_US=10000000: EINTR while calls busy-poll
//   preload_offload exec-child FD   (internal) the exec'ed image's checks
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "shunt/shunt.h"

namespace {

int failures = 0;
#define CHECK(cond)                                                                  \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      std::fprintf(stderr, "FAIL %s:%d: %s (errno %d %s)\n", __FILE__, __LINE__, #cond, errno, \
                   std::strerror(errno));                                            \
      ++failures;                                                                    \
    }                                                                                \
  } while (0)

sockaddr_in addr(const char* ip, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, ip, &a.sin_addr);
  return a;
}

bool send_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0) return false;
    p += w;
    n -= size_t(w);
  }
  return true;
}

bool recv_all(int fd, char* p, size_t n) {
  while (n > 0) {
    ssize_t r = recv(fd, p, n, 0);
    if (r <= 0) return false;
    p += r;
    n -= size_t(r);
  }
  return true;
}

// A connected pair of offloaded TCP sockets inside this process's own stack.
bool tcp_pair(int& client, int& server, uint16_t port) {
  int l = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a = addr("10.9.0.1", port);
  if (bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(l, 4) != 0) return false;
  CHECK(shunt_is_offloaded(l) == 1);
  client = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(client, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return false;
  server = accept(l, nullptr, nullptr);
  close(l);
  return server >= 0;
}

void exchange(int a, int b, size_t n, char seed) {
  std::vector<char> out(n), in(n);
  for (size_t i = 0; i < n; ++i) out[i] = char(seed + i * 7);
  std::thread t([&] { CHECK(send_all(a, out.data(), n)); });
  CHECK(recv_all(b, in.data(), n));
  t.join();
  CHECK(in == out);
}

// A signal handler that calls into offloaded sockets while its thread may be inside the library
// (holding the stack's lock): the call must be served (by the stack or the placeholder), never
// deadlock.
volatile sig_atomic_t g_handler_calls = 0;
int g_handler_fd = -1;       // getsockname on the connection being read
int g_handler_udp_fd = -1;   // a non-blocking recv on an idle offloaded UDP socket
void on_alarm(int) {
  const int saved = errno;
  sockaddr_in a{};
  socklen_t l = sizeof a;
  (void)getsockname(g_handler_fd, reinterpret_cast<sockaddr*>(&a), &l);
  char b[8];
  (void)recv(g_handler_udp_fd, b, sizeof b, MSG_DONTWAIT);
  g_handler_calls = g_handler_calls + 1;
  errno = saved;
}

void signal_reentry(int a, int b, int udp) {
  g_handler_fd = b;
  g_handler_udp_fd = udp;
  struct sigaction sa {};
  sa.sa_handler = on_alarm;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGALRM, &sa, nullptr);
  itimerval it{{0, 200}, {0, 200}};
  setitimer(ITIMER_REAL, &it, nullptr);
  char buf[64] = {};
  int one = 1;
  CHECK(setsockopt(a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0);  // no Nagle wait per message
  for (int i = 0; i < 3000; ++i) {
    CHECK(send(a, buf, sizeof buf, 0) == ssize_t(sizeof buf));
    CHECK(recv_all(b, buf, sizeof buf));
  }
  itimerval off{};
  setitimer(ITIMER_REAL, &off, nullptr);
  signal(SIGALRM, SIG_DFL);
  CHECK(g_handler_calls > 0);
}

// sendfile and splice with an offloaded socket on one side: the bytes arrive in order and
// intact, offsets and file positions move by what was sent, a non-blocking socket takes what
// it can and nothing is lost, and misuse gets the errors Linux gives.
void sendfile_and_splice(int c, int s) {
  const size_t n = 300 * 1024 + 17;
  std::vector<char> data(n);
  for (size_t i = 0; i < n; ++i) data[i] = char(i * 13 + i / 4093);
  char path[] = "/tmp/shunt-sendfile-XXXXXX";
  int f = mkstemp(path);
  CHECK(f >= 0);
  unlink(path);
  CHECK(write(f, data.data(), n) == ssize_t(n));

  // With an offset: the file position stays where it is.
  CHECK(lseek(f, 5, SEEK_SET) == 5);
  std::vector<char> in(n);
  std::thread rx([&] { CHECK(recv_all(s, in.data(), n)); });
  off_t off = 0;
  size_t sent = 0;
  while (sent < n) {
    ssize_t w = sendfile(c, f, &off, n - sent);
    CHECK(w > 0);
    if (w <= 0) break;
    sent += size_t(w);
  }
  rx.join();
  CHECK(off == off_t(n) && in == data);
  CHECK(lseek(f, 0, SEEK_CUR) == 5);

  // Without: from the file position, which moves.
  std::vector<char> in2(n - 5);
  std::thread rx2([&] { CHECK(recv_all(s, in2.data(), n - 5)); });
  sent = 0;
  while (sent < n - 5) {
    ssize_t w = sendfile(c, f, nullptr, n);
    CHECK(w > 0);
    if (w <= 0) break;
    sent += size_t(w);
  }
  rx2.join();
  CHECK(std::equal(in2.begin(), in2.end(), data.begin() + 5));
  CHECK(lseek(f, 0, SEEK_CUR) == off_t(n));

  // A non-blocking socket with nobody reading: sendfile takes a part, then EAGAIN; what was
  // counted as sent is exactly what arrives.
  int fl0 = fcntl(c, F_GETFL);
  CHECK(fcntl(c, F_SETFL, fl0 | O_NONBLOCK) == 0);
  off = 0;
  size_t taken = 0;
  for (int i = 0; i < 64 && taken < n; ++i) {
    ssize_t w = sendfile(c, f, &off, n - taken);
    if (w < 0) {
      CHECK(errno == EAGAIN);
      break;
    }
    taken += size_t(w);
  }
  CHECK(off == off_t(taken) && taken > 0);
  CHECK(fcntl(c, F_SETFL, fl0) == 0);
  std::vector<char> in3(taken);
  CHECK(recv_all(s, in3.data(), taken));
  CHECK(std::equal(in3.begin(), in3.end(), data.begin()));

  // splice: pipe -> offloaded socket, and offloaded socket -> pipe.
  int p1[2], p2[2];
  CHECK(pipe(p1) == 0 && pipe(p2) == 0);
  std::thread feed([&] {
    size_t w = 0;
    while (w < n) {
      ssize_t k = write(p1[1], data.data() + w, std::min<size_t>(n - w, 10000));
      if (k <= 0) break;
      w += size_t(k);
    }
    close(p1[1]);
  });
  std::vector<char> out(n);
  std::thread drain([&] {
    size_t r = 0;
    while (r < n) {
      ssize_t k = read(p2[0], out.data() + r, n - r);
      if (k <= 0) break;
      r += size_t(k);
    }
  });
  std::thread relay([&] {  // s -> p2: what arrives on the socket goes into the second pipe
    size_t r = 0;
    while (r < n) {
      ssize_t k = splice(s, nullptr, p2[1], nullptr, n - r, 0);
      CHECK(k > 0);
      if (k <= 0) break;
      r += size_t(k);
    }
  });
  size_t moved = 0;
  for (;;) {
    ssize_t k = splice(p1[0], nullptr, c, nullptr, 1 << 20, 0);
    if (k == 0) break;  // the pipe's writer is done
    CHECK(k > 0);
    if (k < 0) break;
    moved += size_t(k);
  }
  feed.join();
  relay.join();
  drain.join();
  CHECK(moved == n && out == data);

  // Misuse: an offset on the socket side, two sockets, a file that cannot seek.
  loff_t lo = 0;
  CHECK(splice(p1[0], nullptr, c, &lo, 10, 0) == -1 && errno == ESPIPE);
  CHECK(splice(s, nullptr, c, nullptr, 10, 0) == -1 && errno == EINVAL);
  CHECK(sendfile(c, p2[0], nullptr, 10) == -1 && errno == EINVAL);
  for (int fd : {p1[0], p2[0], p2[1], f}) close(fd);
}

// Signals: the program sees its own handlers; a handler without SA_RESTART ends a blocking call
// on an offloaded socket with EINTR, one with SA_RESTART lets it carry on; poll and epoll end
// with EINTR either way (signal(7)). Run with the default spin (the calls sleep when the signal
// comes) and with SHUNT_SPIN_US=10000000 (they busy-poll: only the library can notice).
volatile sig_atomic_t g_usr = 0;
void on_usr1(int) { g_usr = g_usr + 1; }
void on_usr2(int sig, siginfo_t* si, void*) {
  if (sig == SIGUSR2 && si && si->si_signo == SIGUSR2) g_usr = g_usr + 100;
}

std::thread kick_after(pthread_t target, int ms) {
  return std::thread([=] {
    usleep(ms * 1000);
    pthread_kill(target, SIGUSR1);
  });
}

void eintr_checks(int c, int s) {
  const pthread_t self = pthread_self();
  g_usr = 0;
  struct sigaction sa {};
  sa.sa_handler = on_usr1;
  sigemptyset(&sa.sa_mask);
  CHECK(sigaction(SIGUSR1, &sa, nullptr) == 0);
  struct sigaction q {};
  CHECK(sigaction(SIGUSR1, nullptr, &q) == 0);
  CHECK(q.sa_handler == on_usr1 && !(q.sa_flags & SA_SIGINFO) && !(q.sa_flags & SA_RESTART));

  char b[16];
  {
    std::thread t = kick_after(self, 50);
    const ssize_t r = recv(s, b, sizeof b, 0);
    const int e = errno;
    t.join();
    CHECK(r == -1 && e == EINTR);
  }
  {
    std::thread t = kick_after(self, 50);
    pollfd p{s, POLLIN, 0};
    const int r = poll(&p, 1, 10'000);
    const int e = errno;
    t.join();
    CHECK(r == -1 && e == EINTR);
  }
  {
    int ep = epoll_create1(0);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = s;
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev) == 0);
    std::thread t = kick_after(self, 50);
    const int r = epoll_wait(ep, &ev, 1, 10'000);
    const int e = errno;
    t.join();
    CHECK(r == -1 && e == EINTR);
    close(ep);
  }

  // SA_RESTART: recv carries on through the handler and returns the data sent after it.
  sa.sa_flags = SA_RESTART;
  CHECK(sigaction(SIGUSR1, &sa, &q) == 0);
  CHECK(q.sa_handler == on_usr1 && !(q.sa_flags & SA_RESTART));
  {
    std::thread t([=] {
      usleep(50'000);
      pthread_kill(self, SIGUSR1);
      usleep(50'000);
      (void)send(c, "abc", 3, 0);
    });
    const ssize_t r = recv(s, b, sizeof b, 0);
    t.join();
    CHECK(r == 3);
  }
  {
    std::thread t = kick_after(self, 50);
    pollfd p{s, POLLIN, 0};
    const int r = poll(&p, 1, 10'000);
    const int e = errno;
    t.join();
    CHECK(r == -1 && e == EINTR);  // poll is never restarted
  }
  CHECK(g_usr == 5);

  // signal(): returns the previous handler; SIG_IGN and SIG_DFL pass through.
  CHECK(signal(SIGUSR1, SIG_IGN) == on_usr1);
  CHECK(sigaction(SIGUSR1, nullptr, &q) == 0 && q.sa_handler == SIG_IGN);
  CHECK(signal(SIGUSR1, SIG_DFL) == SIG_IGN);

  // An SA_SIGINFO handler gets its siginfo.
  struct sigaction si {};
  si.sa_sigaction = on_usr2;
  si.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&si.sa_mask);
  CHECK(sigaction(SIGUSR2, &si, nullptr) == 0);
  CHECK(sigaction(SIGUSR2, nullptr, &q) == 0 && q.sa_sigaction == on_usr2 && (q.sa_flags & SA_SIGINFO));
  raise(SIGUSR2);
  CHECK(g_usr == 105);
  CHECK(signal(SIGUSR2, SIG_DFL) != SIG_ERR);
}

int run_eintr_spin() {
  int c = -1, s = -1;
  CHECK(tcp_pair(c, s, 7300));
  eintr_checks(c, s);
  close(c);
  close(s);
  return failures;
}

int run_all(const char* self) {
  // UDP bound to the offload interface's address: offloaded. To loopback: the kernel's.
  int u = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in ua = addr("10.9.0.1", 7000);
  CHECK(bind(u, reinterpret_cast<sockaddr*>(&ua), sizeof ua) == 0);
  CHECK(shunt_is_offloaded(u) == 1);
  int one = 1;
  CHECK(shunt_set_offload(u, 1) == -1 && errno == EISCONN);  // already placed

  int kr = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in ka = addr("127.0.0.1", 0);
  CHECK(bind(kr, reinterpret_cast<sockaddr*>(&ka), sizeof ka) == 0);
  CHECK(shunt_is_offloaded(kr) == 0);
  socklen_t kl = sizeof ka;
  CHECK(getsockname(kr, reinterpret_cast<sockaddr*>(&ka), &kl) == 0);
  int ks = socket(AF_INET, SOCK_DGRAM, 0);
  CHECK(sendto(ks, "hi", 2, 0, reinterpret_cast<sockaddr*>(&ka), sizeof ka) == 2);  // placed at sendto
  CHECK(shunt_is_offloaded(ks) == 0);
  char b[16];
  CHECK(recv(kr, b, sizeof b, 0) == 2);

  // A bind to an address the stack does not own goes to the kernel, which answers for it.
  int other = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in oa = addr("10.77.0.1", 7000);
  CHECK(bind(other, reinterpret_cast<sockaddr*>(&oa), sizeof oa) == -1 && errno == EADDRNOTAVAIL);
  CHECK(shunt_is_offloaded(other) == 0);

  // The per-socket opt-out, before placement: a wildcard bind then stays on the kernel.
  int opt = socket(AF_INET, SOCK_DGRAM, 0);
  CHECK(shunt_set_offload(opt, 0) == 0);
  sockaddr_in wa = addr("0.0.0.0", 0);
  CHECK(bind(opt, reinterpret_cast<sockaddr*>(&wa), sizeof wa) == 0);
  CHECK(shunt_is_offloaded(opt) == 0);

  // UDP between two offloaded sockets of this stack.
  int u2 = socket(AF_INET, SOCK_DGRAM, 0);
  CHECK(sendto(u2, "ping", 4, 0, reinterpret_cast<sockaddr*>(&ua), sizeof ua) == 4);
  CHECK(shunt_is_offloaded(u2) == 1);
  sockaddr_in from{};
  socklen_t fl = sizeof from;
  CHECK(recvfrom(u, b, sizeof b, 0, reinterpret_cast<sockaddr*>(&from), &fl) == 4 && std::memcmp(b, "ping", 4) == 0);
  CHECK(from.sin_addr.s_addr == ua.sin_addr.s_addr);

  // TCP between two offloaded sockets of this stack, 1 MiB each way.
  int c = -1, s = -1;
  CHECK(tcp_pair(c, s, 7100));
  CHECK(shunt_is_offloaded(c) == 1 && shunt_is_offloaded(s) == 1);
  exchange(c, s, 1 << 20, 1);
  exchange(s, c, 1 << 20, 2);
  signal_reentry(c, s, u2);
  sendfile_and_splice(c, s);
  eintr_checks(c, s);

  // Non-blocking through fcntl, and FIONREAD.
  int fl0 = fcntl(s, F_GETFL);
  CHECK(fcntl(s, F_SETFL, fl0 | O_NONBLOCK) == 0);
  CHECK((fcntl(s, F_GETFL) & O_NONBLOCK) != 0);
  CHECK(recv(s, b, sizeof b, 0) == -1 && errno == EAGAIN);
  CHECK(send_all(c, "0123456789", 10));
  int avail = 0;
  for (int i = 0; i < 100000 && avail < 10; ++i) CHECK(ioctl(s, FIONREAD, &avail) == 0);
  CHECK(avail == 10);
  CHECK(recv(s, b, sizeof b, 0) == 10);
  CHECK(fcntl(s, F_SETFL, fl0) == 0);

  // dup: the socket lives until its last fd closes.
  int d = dup(c);
  CHECK(d >= 0 && shunt_is_offloaded(d) == 1);
  CHECK(close(c) == 0);
  exchange(d, s, 4096, 3);
  int d2 = fcntl(d, F_DUPFD_CLOEXEC, 100);
  CHECK(d2 >= 100 && shunt_is_offloaded(d2) == 1);
  CHECK(dup2(d2, d) == d);  // same socket: still one connection
  exchange(d, s, 4096, 4);

  // fork: the child cannot use the parent's offloaded sockets, gets kernel sockets, exits
  // cleanly; the parent's connection is untouched.
  pid_t pid = fork();
  if (pid == 0) {
    int bad = 0;
    char cb[4];
    if (!(recv(d, cb, sizeof cb, MSG_DONTWAIT) == -1 && errno == EBADF)) bad |= 1;
    if (!(send(d, "x", 1, MSG_NOSIGNAL) == -1 && errno == EBADF)) bad |= 2;
    int k = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in ca = addr("10.9.0.1", 7200);
    if (!(bind(k, reinterpret_cast<sockaddr*>(&ca), sizeof ca) == -1 && errno == EADDRNOTAVAIL)) bad |= 4;
    if (shunt_is_offloaded(k) != 0) bad |= 8;
    if (close(d) != 0) bad |= 16;
    _exit(bad);
  }
  int st = -1;
  CHECK(waitpid(pid, &st, 0) == pid);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  if (WIFEXITED(st) && WEXITSTATUS(st)) std::fprintf(stderr, "fork child failed checks 0x%x\n", WEXITSTATUS(st));
  exchange(d, s, 65536, 5);
  exchange(s, d, 65536, 6);

  // exec: the new image starts clean; the inherited placeholder is a plain kernel socket.
  pid = fork();
  if (pid == 0) {
    std::string fd = std::to_string(s);
    execl(self, self, "exec-child", fd.c_str(), static_cast<char*>(nullptr));
    _exit(99);
  }
  CHECK(waitpid(pid, &st, 0) == pid);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  exchange(d, s, 65536, 7);

  // `shunt stat` (SHUNT_STAT_BIN) lists this process's offloaded sockets, published by the
  // progress thread every 100 ms.
  if (const char* bin = std::getenv("SHUNT_STAT_BIN")) {
    usleep(300'000);
    std::string cmd = std::string(bin) + " stat --pid " + std::to_string(getpid());
    std::string out;
    if (FILE* p = popen(cmd.c_str(), "r")) {
      char line[512];
      while (std::fgets(line, sizeof line, p)) out += line;
      CHECK(pclose(p) == 0);
    }
    CHECK(out.find("udp") != std::string::npos && out.find("10.9.0.1:7000") != std::string::npos);
    CHECK(out.find("ESTABLISHED") != std::string::npos && out.find("10.9.0.1:7100") != std::string::npos);
    CHECK(out.find(std::to_string(getpid()) + ":" + std::to_string(d)) != std::string::npos);
    if (failures) std::fprintf(stderr, "shunt stat said:\n%s", out.c_str());
  }

  // Close: the peer sees EOF.
  CHECK(close(d) == 0 && close(d2) == 0);
  CHECK(recv(s, b, sizeof b, 0) == 0);
  close(s);
  close(u);
  close(u2);
  (void)one;
  return failures;
}

int exec_child(int fd) {
  // The library is loaded afresh here: fd is the kernel's, an unbound socket.
  CHECK(shunt_is_offloaded(fd) == 0);
  sockaddr_in a{};
  socklen_t l = sizeof a;
  CHECK(getsockname(fd, reinterpret_cast<sockaddr*>(&a), &l) == 0 && a.sin_port == 0);
  return failures;
}

int run_rules() {
  // SHUNT_RULES="kernel port=7001": that bind goes to the kernel (which does not own the
  // address), the next port is offloaded.
  int a = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in x = addr("10.9.0.1", 7001);
  CHECK(bind(a, reinterpret_cast<sockaddr*>(&x), sizeof x) == -1 && errno == EADDRNOTAVAIL);
  int b = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in y = addr("10.9.0.1", 7002);
  CHECK(bind(b, reinterpret_cast<sockaddr*>(&y), sizeof y) == 0 && shunt_is_offloaded(b) == 1);
  return failures;
}

int run_default_off() {
  int a = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in x = addr("10.9.0.1", 7003);
  CHECK(bind(a, reinterpret_cast<sockaddr*>(&x), sizeof x) == -1 && errno == EADDRNOTAVAIL);
  int b = socket(AF_INET, SOCK_DGRAM, 0);
  CHECK(shunt_set_offload(b, 1) == 0);
  CHECK(bind(b, reinterpret_cast<sockaddr*>(&x), sizeof x) == 0 && shunt_is_offloaded(b) == 1);
  return failures;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: preload_offload all|eintr-spin|rules|default-off|exec-child FD\n");
    return 2;
  }
  const std::string mode = argv[1];
  int r;
  if (mode == "all") {
    r = run_all(argv[0]);
  } else if (mode == "eintr-spin") {
    r = run_eintr_spin();
  } else if (mode == "rules") {
    r = run_rules();
  } else if (mode == "default-off") {
    r = run_default_off();
  } else if (mode == "exec-child" && argc > 2) {
    r = exec_child(std::atoi(argv[2]));
  } else {
    std::fprintf(stderr, "preload_offload: unknown mode %s\n", mode.c_str());
    return 2;
  }
  if (r == 0) std::printf("preload_offload %s: ok\n", mode.c_str());
  return r == 0 ? 0 : 1;
}
