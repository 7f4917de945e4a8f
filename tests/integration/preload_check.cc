// A program that exercises the interposed socket API over loopback and checks every result and
// errno value. It prints a transcript of what it saw (no ports, times or other values that vary
// between runs), so a run under LD_PRELOAD=libshunt.so can be compared line by line with a run
// without it. Exit status: 0 when every check passed.
//
//   preload_check [--expect-preload]
//     --expect-preload  also check that every interposed function resolves to libshunt.so
//                       (implied when LD_PRELOAD names libshunt.so)
#include <arpa/inet.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

namespace {

int g_failures = 0;

const char* errname(int e) {
  const char* n = strerrorname_np(e);
  return n ? n : "?";
}

// Records a call's result in the transcript: "what: ok" or "what: -1 EAGAIN".
long note(const char* what, long rc, int err) {
  if (rc < 0) {
    std::printf("%s: -1 %s\n", what, errname(err));
  } else {
    std::printf("%s: ok\n", what);
  }
  return rc;
}

void fail(const char* what, const char* why) {
  ++g_failures;
  std::printf("%s: FAILED (%s)\n", what, why);
}

void expect(bool cond, const char* what) {
  if (!cond) fail(what, "condition false");
}

// The call must succeed.
#define OK(what, call)                                   \
  ([&]() {                                               \
    errno = 0;                                           \
    long rc_ = long(call);                               \
    int e_ = errno;                                      \
    note(what, rc_, e_);                                 \
    if (rc_ < 0) fail(what, errname(e_));                \
    return rc_;                                          \
  }())

// The call must fail with `err`.
#define FAILS(what, call, err)                           \
  ([&]() {                                               \
    errno = 0;                                           \
    long rc_ = long(call);                               \
    int e_ = errno;                                      \
    note(what, rc_, e_);                                 \
    if (rc_ >= 0) fail(what, "succeeded");               \
    else if (e_ != (err)) fail(what, errname(e_));       \
    return rc_;                                          \
  }())

// The call's result is recorded, whatever it is (the comparison with a plain run judges it).
#define RECORD(what, call)                               \
  ([&]() {                                               \
    errno = 0;                                           \
    long rc_ = long(call);                               \
    note(what, rc_, errno);                              \
    return rc_;                                          \
  }())

sockaddr_in v4_loopback(uint16_t port = 0) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

sockaddr* sa(void* p) { return static_cast<sockaddr*>(p); }

bool readable(int fd, int ms = 5000) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, ms) == 1 && (p.revents & POLLIN);
}

// errno must survive successful calls untouched, as it does in libc.
void check_errno_kept() {
  int s = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in a = v4_loopback();
  ::bind(s, sa(&a), sizeof a);
  errno = ERANGE;
  socklen_t len = sizeof a;
  ::getsockname(s, sa(&a), &len);
  int one = 1;
  ::setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  ::fcntl(s, F_GETFL);
  int n = 0;
  ::ioctl(s, FIONREAD, &n);
  pollfd p{s, POLLIN, 0};
  ::poll(&p, 1, 0);
  int d = ::dup(s);
  ::close(d);
  ::close(s);
  expect(errno == ERANGE, "errno unchanged by successful calls");
  std::printf("errno kept across successful calls: %s\n", errno == ERANGE ? "yes" : "no");
}

void check_bad_fds() {
  char buf[4];
  FAILS("close(-1)", ::close(-1), EBADF);
  FAILS("read(-1)", ::read(-1, buf, sizeof buf), EBADF);
  FAILS("write(-1)", ::write(-1, buf, sizeof buf), EBADF);
  FAILS("send(-1)", ::send(-1, buf, sizeof buf, 0), EBADF);
  FAILS("recv(-1)", ::recv(-1, buf, sizeof buf, 0), EBADF);
  FAILS("fcntl(-1, F_GETFD)", ::fcntl(-1, F_GETFD), EBADF);
  FAILS("dup(-1)", ::dup(-1), EBADF);
  int n;
  FAILS("ioctl(-1, FIONREAD)", ::ioctl(-1, FIONREAD, &n), EBADF);
  FAILS("shutdown(-1)", ::shutdown(-1, SHUT_RDWR), EBADF);
  int pipefd[2];
  OK("pipe", ::pipe(pipefd));
  FAILS("getsockname(pipe)", ::getsockname(pipefd[0], nullptr, nullptr), ENOTSOCK);
  FAILS("recv(pipe)", ::recv(pipefd[0], buf, sizeof buf, 0), ENOTSOCK);
  ::close(pipefd[0]);
  ::close(pipefd[1]);
  FAILS("socket(AF_INET, 12345)", ::socket(AF_INET, 12345, 0), EINVAL);
  FAILS("epoll_create(0)", ::epoll_create(0), EINVAL);
}

void check_udp_v4() {
  int a = int(OK("udp4 socket a", ::socket(AF_INET, SOCK_DGRAM, 0)));
  int b = int(OK("udp4 socket b", ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)));
  sockaddr_in aa = v4_loopback();
  OK("udp4 bind a", ::bind(a, sa(&aa), sizeof aa));
  socklen_t len = sizeof aa;
  OK("udp4 getsockname a", ::getsockname(a, sa(&aa), &len));
  expect(len == sizeof aa && aa.sin_port != 0, "udp4 bound port");
  FAILS("udp4 bind b to a's port", ::bind(b, sa(&aa), sizeof aa), EADDRINUSE);
  sockaddr_in ba = v4_loopback();
  OK("udp4 bind b", ::bind(b, sa(&ba), sizeof ba));
  len = sizeof ba;
  ::getsockname(b, sa(&ba), &len);
  FAILS("udp4 getpeername unconnected", ::getpeername(a, sa(&ba), &len), ENOTCONN);
  len = sizeof ba;
  ::getsockname(b, sa(&ba), &len);
  OK("udp4 connect b->a", ::connect(b, sa(&aa), sizeof aa));
  sockaddr_in peer{};
  len = sizeof peer;
  OK("udp4 getpeername b", ::getpeername(b, sa(&peer), &len));
  expect(peer.sin_port == aa.sin_port, "udp4 peer is a");
  FAILS("udp4 sendto short addrlen", ::sendto(a, "x", 1, 0, sa(&ba), 3), EINVAL);
  int optval = 0;
  FAILS("udp4 getsockopt unknown", ::getsockopt(a, SOL_SOCKET, 12345, &optval, &len), ENOPROTOOPT);
  FAILS("udp4 listen", ::listen(a, 1), EOPNOTSUPP);
  FAILS("udp4 accept", ::accept(a, nullptr, nullptr), EOPNOTSUPP);

  // send/recvfrom, with poll, select and FIONREAD in between.
  OK("udp4 send", ::send(b, "hello", 5, 0));
  pollfd p{a, POLLIN, 0};
  long pr = OK("udp4 poll", ::poll(&p, 1, 5000));
  expect(pr == 1 && (p.revents & POLLIN), "udp4 poll readable");
  fd_set rs;
  FD_ZERO(&rs);
  FD_SET(a, &rs);
  timeval tv{5, 0};
  long sr = OK("udp4 select", ::select(a + 1, &rs, nullptr, nullptr, &tv));
  expect(sr == 1 && FD_ISSET(a, &rs), "udp4 select readable");
  FD_ZERO(&rs);
  FD_SET(a, &rs);
  timespec ts{5, 0};
  sigset_t mask;
  sigemptyset(&mask);
  long psr = OK("udp4 pselect", ::pselect(a + 1, &rs, nullptr, nullptr, &ts, &mask));
  expect(psr == 1 && FD_ISSET(a, &rs), "udp4 pselect readable");
  int avail = -1;
  OK("udp4 ioctl FIONREAD", ::ioctl(a, FIONREAD, &avail));
  expect(avail == 5, "udp4 FIONREAD is 5");
  char buf[64];
  sockaddr_in from{};
  len = sizeof from;
  long n = OK("udp4 recvfrom", ::recvfrom(a, buf, sizeof buf, 0, sa(&from), &len));
  expect(n == 5 && std::memcmp(buf, "hello", 5) == 0, "udp4 payload");
  expect(from.sin_port == ba.sin_port, "udp4 source is b");
  FAILS("udp4 recv MSG_DONTWAIT empty", ::recv(a, buf, sizeof buf, MSG_DONTWAIT), EAGAIN);
  timespec zero{0, 0};
  p = pollfd{a, POLLIN, 0};
  long ppr = OK("udp4 ppoll empty", ::ppoll(&p, 1, &zero, nullptr));
  expect(ppr == 0, "udp4 ppoll times out");

  // Nonblocking through fcntl and FIONBIO.
  int fl = int(OK("udp4 F_GETFL", ::fcntl(a, F_GETFL)));
  OK("udp4 F_SETFL O_NONBLOCK", ::fcntl(a, F_SETFL, fl | O_NONBLOCK));
  expect((::fcntl(a, F_GETFL) & O_NONBLOCK) != 0, "udp4 O_NONBLOCK set");
  FAILS("udp4 recv nonblocking empty", ::recv(a, buf, sizeof buf, 0), EAGAIN);
  int off = 0;
  OK("udp4 FIONBIO off", ::ioctl(a, FIONBIO, &off));
  expect((::fcntl(a, F_GETFL) & O_NONBLOCK) == 0, "udp4 O_NONBLOCK cleared");
  int on = 1;
  OK("udp4 FIONBIO on", ::ioctl(a, FIONBIO, &on));
  expect((::fcntl(a, F_GETFL) & O_NONBLOCK) != 0, "udp4 O_NONBLOCK set again");

  // writev/readv and write/read on sockets.
  iovec out[2] = {{const_cast<char*>("ab"), 2}, {const_cast<char*>("cde"), 3}};
  OK("udp4 writev", ::writev(b, out, 2));
  expect(readable(a), "udp4 readable after writev");
  char x[2], y[8];
  iovec in[2] = {{x, sizeof x}, {y, sizeof y}};
  n = OK("udp4 readv", ::readv(a, in, 2));
  expect(n == 5 && std::memcmp(x, "ab", 2) == 0 && std::memcmp(y, "cde", 3) == 0, "udp4 readv scatter");
  OK("udp4 write", ::write(b, "wxyz", 4));
  expect(readable(a), "udp4 readable after write");
  n = OK("udp4 read", ::read(a, buf, sizeof buf));
  expect(n == 4 && std::memcmp(buf, "wxyz", 4) == 0, "udp4 read payload");

  // sendmsg/recvmsg with addresses.
  msghdr m{};
  iovec io{const_cast<char*>("msg"), 3};
  m.msg_iov = &io;
  m.msg_iovlen = 1;
  OK("udp4 sendmsg", ::sendmsg(b, &m, 0));
  expect(readable(a), "udp4 readable after sendmsg");
  msghdr r{};
  iovec rio{buf, sizeof buf};
  r.msg_iov = &rio;
  r.msg_iovlen = 1;
  r.msg_name = &from;
  r.msg_namelen = sizeof from;
  n = OK("udp4 recvmsg", ::recvmsg(a, &r, 0));
  expect(n == 3 && r.msg_namelen == sizeof from && from.sin_port == ba.sin_port, "udp4 recvmsg source");

  // sendmmsg/recvmmsg.
  mmsghdr sv[3]{};
  iovec sio[3] = {{const_cast<char*>("one"), 3}, {const_cast<char*>("two"), 3}, {const_cast<char*>("three"), 5}};
  for (int i = 0; i < 3; ++i) {
    sv[i].msg_hdr.msg_iov = &sio[i];
    sv[i].msg_hdr.msg_iovlen = 1;
  }
  long sent = OK("udp4 sendmmsg", ::sendmmsg(b, sv, 3, 0));
  expect(sent == 3, "udp4 sendmmsg sent 3");
  expect(readable(a), "udp4 readable after sendmmsg");
  usleep(10'000);  // all three queued on loopback (delivery there is synchronous anyway)
  mmsghdr rv[4]{};
  char rb[4][16];
  iovec rio4[4];
  for (int i = 0; i < 4; ++i) {
    rio4[i] = iovec{rb[i], sizeof rb[i]};
    rv[i].msg_hdr.msg_iov = &rio4[i];
    rv[i].msg_hdr.msg_iovlen = 1;
  }
  long got = OK("udp4 recvmmsg", ::recvmmsg(a, rv, 4, 0, nullptr));
  expect(got == 3 && rv[2].msg_len == 5 && std::memcmp(rb[2], "three", 5) == 0, "udp4 recvmmsg got 3 in order");

  // Socket options.
  int rcv = 65536;
  OK("udp4 SO_RCVBUF set", ::setsockopt(a, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv));
  int got_rcv = 0;
  len = sizeof got_rcv;
  OK("udp4 SO_RCVBUF get", ::getsockopt(a, SOL_SOCKET, SO_RCVBUF, &got_rcv, &len));
  expect(got_rcv >= rcv, "udp4 SO_RCVBUF at least what was asked");
  int type = 0;
  len = sizeof type;
  OK("udp4 SO_TYPE", ::getsockopt(a, SOL_SOCKET, SO_TYPE, &type, &len));
  expect(type == SOCK_DGRAM, "udp4 SO_TYPE is SOCK_DGRAM");

  // dup, dup2, dup3 and F_DUPFD: every copy reads the same socket.
  int d = int(OK("udp4 dup", ::dup(a)));
  OK("udp4 send for dup", ::send(b, "dup", 3, 0));
  expect(readable(d), "udp4 dup readable");
  n = OK("udp4 recv on dup", ::recv(d, buf, sizeof buf, 0));
  expect(n == 3, "udp4 recv on dup got 3");
  int d2 = int(OK("udp4 dup2 to 100", ::dup2(a, 100)));
  expect(d2 == 100, "udp4 dup2 gives 100");
  OK("udp4 dup2 to itself", ::dup2(a, a));
  FAILS("udp4 dup3 to itself", ::dup3(a, a, 0), EINVAL);
  OK("udp4 dup3 over 100", ::dup3(b, 100, O_CLOEXEC));
  expect((::fcntl(100, F_GETFD) & FD_CLOEXEC) != 0, "udp4 dup3 O_CLOEXEC");
  int d3 = int(OK("udp4 F_DUPFD_CLOEXEC", ::fcntl(a, F_DUPFD_CLOEXEC, 200)));
  expect(d3 >= 200, "udp4 F_DUPFD_CLOEXEC at least 200");
  expect((::fcntl(d3, F_GETFD) & FD_CLOEXEC) != 0, "udp4 F_DUPFD_CLOEXEC sets FD_CLOEXEC");
  OK("udp4 close dups", ::close(d) | ::close(d2) | ::close(d3));

  // epoll.
  int ep = int(OK("epoll_create1", ::epoll_create1(EPOLL_CLOEXEC)));
  int ep2 = int(OK("epoll_create", ::epoll_create(8)));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = a;
  OK("epoll_ctl ADD", ::epoll_ctl(ep, EPOLL_CTL_ADD, a, &ev));
  FAILS("epoll_ctl ADD twice", ::epoll_ctl(ep, EPOLL_CTL_ADD, a, &ev), EEXIST);
  FAILS("epoll_ctl DEL not added", ::epoll_ctl(ep, EPOLL_CTL_DEL, b, nullptr), ENOENT);
  epoll_event evs[4];
  long w = OK("epoll_wait empty", ::epoll_wait(ep, evs, 4, 0));
  expect(w == 0, "epoll_wait nothing ready");
  OK("udp4 send for epoll", ::send(b, "ep", 2, 0));
  w = OK("epoll_wait", ::epoll_wait(ep, evs, 4, 5000));
  expect(w == 1 && evs[0].data.fd == a && (evs[0].events & EPOLLIN), "epoll_wait reports a");
  w = OK("epoll_pwait", ::epoll_pwait(ep, evs, 4, 5000, &mask));
  expect(w == 1, "epoll_pwait level-triggered");
  timespec ets{1, 0};
  w = RECORD("epoll_pwait2", ::epoll_pwait2(ep, evs, 4, &ets, nullptr));
  ::recv(a, buf, sizeof buf, 0);
  OK("epoll_ctl MOD", ::epoll_ctl(ep, EPOLL_CTL_MOD, a, &ev));
  OK("epoll_ctl DEL", ::epoll_ctl(ep, EPOLL_CTL_DEL, a, nullptr));
  ::close(ep);
  ::close(ep2);

  // fork: the child sends through the inherited socket, the parent receives.
  std::fflush(stdout);
  pid_t pid = ::fork();
  if (pid == 0) {
    ssize_t s = ::send(b, "child", 5, 0);
    _exit(s == 5 ? 0 : 1);
  }
  expect(pid > 0, "fork");
  int status = -1;
  ::waitpid(pid, &status, 0);
  expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "fork child sent");
  expect(readable(a), "udp4 readable after child");
  n = OK("udp4 recv from child", ::recv(a, buf, sizeof buf, 0));
  expect(n == 5 && std::memcmp(buf, "child", 5) == 0, "udp4 child's payload");
  std::printf("fork: ok\n");

  OK("udp4 shutdown", ::shutdown(b, SHUT_RDWR));
  OK("udp4 close a", ::close(a));
  OK("udp4 close b", ::close(b));
  FAILS("udp4 close a again", ::close(a), EBADF);
}

void check_udp_v6() {
  int a = int(OK("udp6 socket", ::socket(AF_INET6, SOCK_DGRAM, 0)));
  sockaddr_in6 aa{};
  aa.sin6_family = AF_INET6;
  aa.sin6_addr = in6addr_loopback;
  errno = 0;
  if (::bind(a, sa(&aa), sizeof aa) < 0) {
    // No ::1 on this machine: the same in both runs, so the transcript still compares.
    std::printf("udp6 bind ::1: -1 %s (IPv6 loopback unavailable, skipped)\n", errname(errno));
    ::close(a);
    return;
  }
  std::printf("udp6 bind ::1: ok\n");
  socklen_t len = sizeof aa;
  OK("udp6 getsockname", ::getsockname(a, sa(&aa), &len));
  int b = int(OK("udp6 socket b", ::socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK, 0)));
  OK("udp6 sendto", ::sendto(b, "six", 3, 0, sa(&aa), sizeof aa));
  expect(readable(a), "udp6 readable");
  char buf[16];
  sockaddr_in6 from{};
  len = sizeof from;
  long n = OK("udp6 recvfrom", ::recvfrom(a, buf, sizeof buf, 0, sa(&from), &len));
  expect(n == 3 && len == sizeof from && from.sin6_family == AF_INET6, "udp6 payload and source");
  FAILS("udp6 recv nonblocking empty", ::recv(b, buf, sizeof buf, 0), EAGAIN);
  ::close(a);
  ::close(b);
}

void check_tcp_v4() {
  int l = int(OK("tcp4 socket listen", ::socket(AF_INET, SOCK_STREAM, 0)));
  int one = 1;
  OK("tcp4 SO_REUSEADDR", ::setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one));
  sockaddr_in la = v4_loopback();
  OK("tcp4 bind", ::bind(l, sa(&la), sizeof la));
  socklen_t len = sizeof la;
  ::getsockname(l, sa(&la), &len);
  FAILS("tcp4 accept before listen", ::accept(l, nullptr, nullptr), EINVAL);
  OK("tcp4 listen", ::listen(l, 8));
  FAILS("tcp4 accept4 nonblocking empty", (::fcntl(l, F_SETFL, O_NONBLOCK), ::accept4(l, nullptr, nullptr, 0)),
        EAGAIN);
  ::fcntl(l, F_SETFL, 0);

  int c = int(OK("tcp4 socket client", ::socket(AF_INET, SOCK_STREAM, 0)));
  FAILS("tcp4 send unconnected", ::send(c, "x", 1, MSG_NOSIGNAL), EPIPE);
  OK("tcp4 connect", ::connect(c, sa(&la), sizeof la));
  OK("tcp4 TCP_NODELAY", ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one));
  sockaddr_in peer{};
  len = sizeof peer;
  int s = int(OK("tcp4 accept4", ::accept4(l, sa(&peer), &len, SOCK_CLOEXEC)));
  expect(len == sizeof peer && peer.sin_family == AF_INET, "tcp4 accept4 peer address");
  expect((::fcntl(s, F_GETFD) & FD_CLOEXEC) != 0, "tcp4 accept4 SOCK_CLOEXEC");
  int c2 = int(OK("tcp4 socket client 2", ::socket(AF_INET, SOCK_STREAM, 0)));
  OK("tcp4 connect 2", ::connect(c2, sa(&la), sizeof la));
  int s2 = int(OK("tcp4 accept", ::accept(l, nullptr, nullptr)));

  char buf[64];
  OK("tcp4 send", ::send(c, "ping", 4, 0));
  long n = OK("tcp4 recv", ::recv(s, buf, 4, MSG_WAITALL));
  expect(n == 4 && std::memcmp(buf, "ping", 4) == 0, "tcp4 payload");
  OK("tcp4 write", ::write(s, "pong", 4));
  n = OK("tcp4 read", ::read(c, buf, 4));
  expect(n == 4 && std::memcmp(buf, "pong", 4) == 0, "tcp4 read payload");
  iovec out[2] = {{const_cast<char*>("vec"), 3}, {const_cast<char*>("tor"), 3}};
  OK("tcp4 writev", ::writev(c, out, 2));
  char x[3], y[3];
  iovec in[2] = {{x, 3}, {y, 3}};
  msghdr m{};
  m.msg_iov = in;
  m.msg_iovlen = 2;
  n = OK("tcp4 recvmsg", ::recvmsg(s, &m, MSG_WAITALL));
  expect(n == 6 && std::memcmp(x, "vec", 3) == 0 && std::memcmp(y, "tor", 3) == 0, "tcp4 recvmsg scatter");
  msghdr sm{};
  iovec sio{const_cast<char*>("sm"), 2};
  sm.msg_iov = &sio;
  sm.msg_iovlen = 1;
  OK("tcp4 sendmsg", ::sendmsg(s, &sm, 0));
  iovec rio{buf, 2};
  n = OK("tcp4 readv", ::readv(c, &rio, 1));
  expect(n == 2, "tcp4 readv got 2");
  OK("tcp4 sendto (address ignored)", ::sendto(c2, "s2", 2, 0, nullptr, 0));
  n = OK("tcp4 recvfrom", ::recvfrom(s2, buf, 2, MSG_WAITALL, nullptr, nullptr));
  expect(n == 2, "tcp4 recvfrom got 2");

  pollfd pw{s, POLLOUT, 0};
  long pr = OK("tcp4 poll POLLOUT", ::poll(&pw, 1, 5000));
  expect(pr == 1 && (pw.revents & POLLOUT), "tcp4 writable");
  int avail = -1;
  OK("tcp4 send for FIONREAD", ::send(c, "12345678", 8, 0));
  expect(readable(s), "tcp4 readable");
  OK("tcp4 FIONREAD", ::ioctl(s, FIONREAD, &avail));
  expect(avail == 8, "tcp4 FIONREAD is 8");
  ::recv(s, buf, sizeof buf, 0);

  // epoll on a stream: edge-triggered readiness.
  int ep = ::epoll_create1(0);
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLET;
  ev.data.u32 = 7;
  OK("tcp4 epoll_ctl ADD", ::epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev));
  OK("tcp4 send for epoll", ::send(c, "e", 1, 0));
  epoll_event evs[2];
  long w = OK("tcp4 epoll_wait", ::epoll_wait(ep, evs, 2, 5000));
  expect(w == 1 && evs[0].data.u32 == 7, "tcp4 epoll data");
  w = OK("tcp4 epoll_wait edge consumed", ::epoll_wait(ep, evs, 2, 0));
  expect(w == 0, "tcp4 edge-triggered once");
  ::recv(s, buf, sizeof buf, 0);
  ::close(ep);

  // fork: the child writes on the inherited connection.
  std::fflush(stdout);
  pid_t pid = ::fork();
  if (pid == 0) {
    ssize_t k = ::send(c, "kid", 3, 0);
    _exit(k == 3 ? 0 : 1);
  }
  int status = -1;
  ::waitpid(pid, &status, 0);
  expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "tcp4 fork child sent");
  n = OK("tcp4 recv from child", ::recv(s, buf, 3, MSG_WAITALL));
  expect(n == 3 && std::memcmp(buf, "kid", 3) == 0, "tcp4 child's payload");

  // Orderly shutdown: the reader sees end of stream; the writer then sees EPIPE.
  OK("tcp4 shutdown SHUT_WR", ::shutdown(c, SHUT_WR));
  n = OK("tcp4 recv EOF", ::recv(s, buf, sizeof buf, 0));
  expect(n == 0, "tcp4 end of stream");
  FAILS("tcp4 send after SHUT_WR", ::send(c, "x", 1, MSG_NOSIGNAL), EPIPE);
  FAILS("tcp4 shutdown bad how", ::shutdown(c, 99), EINVAL);
  OK("tcp4 close", ::close(c) | ::close(s) | ::close(c2) | ::close(s2));

  // Nobody listens on a port we just released.
  int t = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in closed = v4_loopback();
  ::bind(t, sa(&closed), sizeof closed);
  len = sizeof closed;
  ::getsockname(t, sa(&closed), &len);
  ::close(t);
  int r = ::socket(AF_INET, SOCK_STREAM, 0);
  FAILS("tcp4 connect refused", ::connect(r, sa(&closed), sizeof closed), ECONNREFUSED);
  int soerr = -1;
  len = sizeof soerr;
  OK("tcp4 SO_ERROR", ::getsockopt(r, SOL_SOCKET, SO_ERROR, &soerr, &len));
  ::close(r);

  // A nonblocking connect completes through poll.
  int nb = int(OK("tcp4 socket nonblocking", ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)));
  errno = 0;
  int cr = ::connect(nb, sa(&la), sizeof la);
  int ce = errno;
  expect(cr == 0 || ce == EINPROGRESS, "tcp4 nonblocking connect starts");
  std::printf("tcp4 nonblocking connect: %s\n", cr == 0 ? "ok" : (ce == EINPROGRESS ? "EINPROGRESS" : errname(ce)));
  pollfd pc{nb, POLLOUT, 0};
  ::poll(&pc, 1, 5000);
  soerr = -1;
  len = sizeof soerr;
  ::getsockopt(nb, SOL_SOCKET, SO_ERROR, &soerr, &len);
  expect(soerr == 0, "tcp4 nonblocking connect completed");
  int sa2 = ::accept(l, nullptr, nullptr);
  ::close(sa2);
  ::close(nb);
  ::close(l);
}

// Every interposed name must resolve to libshunt.so in this process.
void check_interposed() {
  static const char* const kNames[] = {
      "socket", "bind", "listen", "accept", "accept4", "connect", "send", "sendto", "sendmsg", "sendmmsg",
      "recv", "recvfrom", "recvmsg", "recvmmsg", "read", "write", "readv", "writev", "close", "shutdown",
      "dup", "dup2", "dup3", "fcntl", "fcntl64", "ioctl", "setsockopt", "getsockopt", "getsockname",
      "getpeername", "poll", "ppoll", "select", "pselect", "epoll_create", "epoll_create1", "epoll_ctl",
      "epoll_wait", "epoll_pwait", "epoll_pwait2", "fork", "__read_chk", "__recv_chk", "__recvfrom_chk",
      "__poll_chk", "__ppoll_chk"};
  int bad = 0;
  for (const char* name : kNames) {
    void* p = dlsym(RTLD_DEFAULT, name);
    Dl_info info{};
    const char* where = (p && dladdr(p, &info) && info.dli_fname) ? info.dli_fname : "(nowhere)";
    std::string_view w(where);
    if (w.substr(w.rfind('/') == std::string_view::npos ? 0 : w.rfind('/') + 1) != "libshunt.so") {
      std::fprintf(stderr, "preload_check: %s resolves to %s, not libshunt.so\n", name, where);
      ++bad;
    }
  }
  if (bad) fail("interposition", "some functions are not interposed");
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  // Under LD_PRELOAD=...libshunt.so the interposition itself is checked too.
  const char* preload = std::getenv("LD_PRELOAD");
  bool expect_preload = (argc > 1 && std::string_view(argv[1]) == "--expect-preload") ||
                        (preload && std::strstr(preload, "libshunt.so"));
  signal(SIGPIPE, SIG_IGN);
  alarm(60);  // never hang a test run: SIGALRM ends the program
  if (expect_preload) check_interposed();
  check_errno_kept();
  check_bad_fds();
  check_udp_v4();
  check_udp_v6();
  check_tcp_v4();
  check_errno_kept();
  std::printf("failures: %d\n", g_failures);
  return g_failures == 0 ? 0 : 1;
}
