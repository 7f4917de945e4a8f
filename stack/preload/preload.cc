// The preload library (build/lib/libshunt.so): interposes the socket API (DESIGN.md, "The
// preload library"; docs/preload.md). An IP socket is held by the stack from socket() on, with
// a kernel socket of the same kind as its fd number (the placeholder); bind, connect, listen or
// the first sendto places it on the stack or hands it to the kernel. Every call on a kernel fd
// goes to libc unchanged, with errno exactly as libc left it; calls on offloaded fds go to the
// SocketApi of the process's Runtime under its lock. Readiness (poll/select/epoll) is mux.cc.
//
// Rules for this file, because it runs inside programs that do not know it is there:
//  - no output unless asked (a bad SHUNT_* value, or SHUNT_DEBUG=1), one write(2) per line;
//  - the pass-through path is an atomic load and a call: async-signal-safe wherever libc is;
//  - nothing before main() may fail in a way the program sees: allocation failure leaves the
//    library a pure pass-through, and configuration errors never exit.
#ifdef _FORTIFY_SOURCE
#undef _FORTIFY_SOURCE  // this file defines the fortified entry points
#endif
#include <errno.h>
#include <arpa/inet.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <pthread.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>

#include "stack/core/config.h"
#include "stack/core/log.h"
#include "stack/preload/fd_table.h"
#include "stack/preload/libc.h"
#include "stack/preload/mux.h"
#include "stack/preload/offload.h"
#include "stack/preload/runtime.h"
#include "stack/include/shunt/shunt.h"
#include "stack/net/stack.h"
#include "stack/socket/socket_api.h"

#define SHUNT_EXPORT extern "C" __attribute__((visibility("default")))

namespace shunt::preload {

constinit FdTable g_fds;

namespace {

// Set once by the constructor; never freed (a call from an atexit handler may still read it).
std::atomic<const Config*> g_config{nullptr};
std::atomic<bool> g_debug{false};



void note_accepted(const char* call, int listen_fd, int fd) {
  g_fds.set(fd, FdKind::kKernel);
  if (!g_debug.load(std::memory_order_relaxed)) return;
  char line[160];
  int n = std::snprintf(line, sizeof line, "shunt: %s(%d) = %d: not offloaded: the listening socket is the kernel's\n",
                        call, listen_fd, fd);
  if (n > 0) say(line, std::min(size_t(n), sizeof line - 1));
}

// Loads SHUNT_* configuration once, when the library is loaded.
__attribute__((constructor)) void preload_init() {
  const int saved = errno;
  resolve_all();
  try {
    ConfigResult r = load_config();
    for (const std::string& e : r.errors) {
      std::string line = "shunt: " + e + "; using the default\n";
      say(line.data(), line.size());
    }
    Config* config = new Config(std::move(r.config));
    if (auto level = parse_log_level(config->log_level)) set_log_level(*level);
    g_debug.store(config->debug != 0, std::memory_order_relaxed);
    g_config.store(config, std::memory_order_release);
    if (config->debug) {
      std::string line = std::string("shunt: libshunt ") + SHUNT_VERSION + " loaded (pid " + std::to_string(getpid()) +
                         "), offload device: " + (config->device.empty() ? "none (SHUNT_DEVICE unset)" : config->device) +
                         "\n";
      say(line.data(), line.size());
    }
  } catch (...) {
    // Out of memory before main(): stay a pure pass-through rather than disturb the program.
  }
  errno = saved;
}

}  // namespace
}  // namespace shunt::preload

namespace shunt::preload {
namespace {

// Returns -1 with errno = -r for r < 0, else r; errno is untouched on success.
template <typename T>
T ret(T r) {
  if (r < 0) {
    errno = int(-r);
    return -1;
  }
  return r;
}

bool debug() { return g_debug.load(std::memory_order_relaxed); }

void debug_line(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void debug_line(const char* fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  int n = std::vsnprintf(line, sizeof line - 1, fmt, ap);
  va_end(ap);
  if (n <= 0) return;
  size_t len = std::min(size_t(n), sizeof line - 2);
  line[len++] = '\n';
  say(line, len);
}

// "10.9.0.1:5000" or "[fd09::1]:5000" for debug lines.
std::string endpoint(const sockaddr* sa, socklen_t len) {
  char buf[INET6_ADDRSTRLEN + 16];
  if (sa && len >= sizeof(sockaddr_in) && sa->sa_family == AF_INET) {
    auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    char a[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &in->sin_addr, a, sizeof a);
    std::snprintf(buf, sizeof buf, "%s:%u", a, ntohs(in->sin_port));
    return buf;
  }
  if (sa && len >= sizeof(sockaddr_in6) && sa->sa_family == AF_INET6) {
    auto* in = reinterpret_cast<const sockaddr_in6*>(sa);
    char a[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, &in->sin6_addr, a, sizeof a);
    std::snprintf(buf, sizeof buf, "[%s]:%u", a, ntohs(in->sin6_port));
    return buf;
  }
  return "(no address)";
}

// The IP address and port of a sockaddr; false when it is neither family or too short.
bool sockaddr_ip(const sockaddr* sa, socklen_t len, IpAddr& ip, uint16_t& port) {
  if (!sa) return false;
  if (sa->sa_family == AF_INET && len >= socklen_t(sizeof(sockaddr_in))) {
    auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    ip = IpAddr(Ipv4Addr{ntohl(in->sin_addr.s_addr)});
    port = ntohs(in->sin_port);
    return true;
  }
  if (sa->sa_family == AF_INET6 && len >= socklen_t(sizeof(sockaddr_in6))) {
    auto* in = reinterpret_cast<const sockaddr_in6*>(sa);
    ip = unmapped(Ipv6Addr::read(reinterpret_cast<const uint8_t*>(&in->sin6_addr)));
    port = ntohs(in->sin6_port);
    return true;
  }
  return false;
}

struct Placement {
  bool offload = false;
  const char* why = "";
};

// Where a held socket goes (docs/preload.md, "Which sockets are offloaded"). Under the lock.
Placement place(Runtime& r, int fd, const IpAddr* local, uint16_t lport, const IpAddr* remote, uint16_t rport) {
  const bool opt_in = g_fds.kind(fd) == FdKind::kPendingOptIn;
  if (auto rule = r.rules().match(program_invocation_short_name, local, lport, remote, rport)) {
    return *rule ? Placement{true, "a SHUNT_RULES rule says offload"} : Placement{false, "a SHUNT_RULES rule says kernel"};
  }
  if (!r.config().offload && !opt_in) return {false, "SHUNT_OFFLOAD=0 and neither a rule nor SO_SHUNT_OFFLOAD selects it"};
  Stack& st = r.stack();
  if (local && !local->is_unspecified() && !local->is_multicast()) {
    const bool ours = local->is_v4() ? st.is_local_v4(local->v4) : st.is_local_v6(local->v6);
    if (!ours) return {false, "the local address is not the offload interface's"};
  }
  if (remote) {
    if (remote->is_unspecified()) return {false, "the peer address is unspecified"};
    const bool ours = remote->is_v4() ? st.is_local_v4(remote->v4) : st.is_local_v6(remote->v6);
    if (ours) return {true, "the peer is this stack's own address"};
    const bool loop = remote->is_v4() ? remote->v4.is_loopback() : remote->v6.is_loopback();
    if (loop) return {false, "loopback stays on the kernel"};
    if (!remote->is_multicast() && !st.routes().lookup(*remote)) {
      return {false, "no route to the peer through the offload interface"};
    }
  }
  return {true, "the offload interface's address or route"};
}

// Hands a held socket to the kernel: the stack's socket goes, the placeholder stays. Under the lock.
void hand_to_kernel(Runtime& r, int fd) {
  const int h = r.handle_of(fd);
  if (r.unbind_fd(fd) && h >= 0) r.api().close(h);
  g_fds.set(fd, FdKind::kKernel);
  mux_fd_to_kernel_locked(fd);
}

// Places a held socket; true when it stays on the stack. Under the lock.
bool settle(Runtime& r, int fd, const char* call, const sockaddr* local_sa, socklen_t local_len,
            const sockaddr* remote_sa, socklen_t remote_len) {
  IpAddr local, remote;
  uint16_t lport = 0, rport = 0;
  const bool has_local = sockaddr_ip(local_sa, local_len, local, lport);
  const bool has_remote = sockaddr_ip(remote_sa, remote_len, remote, rport);
  Placement p = place(r, fd, has_local ? &local : nullptr, lport, has_remote ? &remote : nullptr, rport);
  if (debug()) {
    const sockaddr* sa = has_remote ? remote_sa : local_sa;
    const socklen_t len = has_remote ? remote_len : local_len;
    debug_line("shunt: %s(%d, %s): %s: %s", call, fd, endpoint(sa, len).c_str(), p.offload ? "offloaded" : "not offloaded",
               p.why);
  }
  if (p.offload) {
    g_fds.set(fd, FdKind::kOffloaded);
  } else {
    hand_to_kernel(r, fd);
  }
  return p.offload;
}

// The runtime for an fd the library handles; null (errno = EBADF) for an offloaded fd inherited
// by a forked child, whose stack is the parent's.
Runtime* runtime_for(int fd) {
  // Re-entered from a signal handler on a thread inside the library: the placeholder answers.
  if (StackMutex::held_here()) return nullptr;
  Runtime* r = Runtime::active();
  if (__builtin_expect(r != nullptr, 1)) return r;
  if (g_fds.pending(fd)) {
    g_fds.set(fd, FdKind::kKernel);  // never placed: the placeholder is a fine kernel socket
    return nullptr;
  }
  errno = EBADF;
  if (debug()) {
    debug_line("shunt: fd %d was offloaded by the parent process; a forked child cannot use it (docs/preload.md)", fd);
  }
  return nullptr;
}

// Inherited and offloaded in a forked child: the caller answers EBADF.
bool forked_away(int fd) { return g_fds.offloaded(fd) && Runtime::active() == nullptr; }

void raise_sigpipe() { pthread_kill(pthread_self(), SIGPIPE); }

// One data call on an offloaded fd: runs `op` under the lock; a non-blocking call that finds
// nothing polls the stack once and tries again (progress without a progress thread).
template <typename Op>
ssize_t data_call(Runtime& r, Op op) {
  Runtime::begin_call();
  std::lock_guard<StackMutex> g(r.mu());
  ssize_t n = op();
  if (n == -EAGAIN) {
    r.progress_locked();
    n = op();
  }
  return n;
}

ssize_t send_common(int fd, const msghdr* msg, int flags, bool is_write) {
  if (forked_away(fd)) return ret<ssize_t>(-EBADF);
  Runtime* r = runtime_for(fd);
  if (!r) return -2;  // the caller goes to the kernel
  ssize_t n;
  {
    Runtime::begin_call();
    std::lock_guard<StackMutex> g(r->mu());
    if (g_fds.pending(fd) && msg->msg_name &&
        !settle(*r, fd, is_write ? "write" : "sendto", nullptr, 0, static_cast<const sockaddr*>(msg->msg_name),
                msg->msg_namelen)) {
      return -2;
    }
    const int h = r->handle_of(fd);
    if (h < 0) return ret<ssize_t>(-EBADF);
    n = r->api().sendmsg(h, msg, flags);
    if (n == -EAGAIN) {
      r->progress_locked();
      n = r->api().sendmsg(h, msg, flags);
    }
  }
  if (n == -EPIPE && !(flags & MSG_NOSIGNAL)) raise_sigpipe();
  return ret(n);
}

ssize_t recv_common(int fd, msghdr* msg, int flags) {
  if (forked_away(fd)) return ret<ssize_t>(-EBADF);
  Runtime* r = runtime_for(fd);
  if (!r) return -2;
  const int h = r->handle_of(fd);
  if (h < 0) return ret<ssize_t>(-EBADF);
  return ret(data_call(*r, [&] { return r->api().recvmsg(h, msg, flags); }));
}

// A kernel fd: -2 from the helpers above means "go to libc".
constexpr ssize_t kToKernel = -2;

int domain_of(int fd) {
  int d = AF_INET;
  socklen_t len = sizeof d;
  const int saved = errno;
  if (SHUNT_REAL(getsockopt)(fd, SOL_SOCKET, SO_DOMAIN, &d, &len) != 0) d = AF_INET;
  errno = saved;
  return d;
}

}  // namespace
}  // namespace shunt::preload

using shunt::preload::data_call;
using shunt::preload::debug;
using shunt::preload::debug_line;
using shunt::preload::FdKind;
using shunt::preload::forked_away;
using shunt::preload::g_fds;
using shunt::preload::kToKernel;
using shunt::preload::ret;
using shunt::preload::Runtime;
using shunt::preload::runtime_for;
using shunt::preload::settle;
using shunt::preload::StackMutex;

// --- Sockets: creation and addressing.

SHUNT_EXPORT int socket(int domain, int type, int protocol) noexcept {
  int fd = SHUNT_REAL(socket)(domain, type, protocol);
  if (fd < 0) return fd;
  g_fds.set(fd, FdKind::kKernel);  // whatever this number was before, it is a new socket now
  const int saved = errno;
  using namespace shunt::preload;
  const shunt::Config* config = g_config.load(std::memory_order_acquire);
  OffloadDecision d = decide_socket(config, domain, type, protocol);
  Runtime* r = nullptr;
  if (d.offload && StackMutex::held_here()) {
    d.offload = false;
    d.reason = "made by a signal handler that interrupted the library";
  }
  if (d.offload) {
    r = Runtime::get();
    if (!r) {
      d.offload = false;
      d.reason = Runtime::unavailable_reason();
    }
  }
  if (r) {
    std::lock_guard<StackMutex> g(r->mu());
    const int h = r->api().socket(domain, type, protocol);
    if (h < 0) {
      d.offload = false;
      d.reason = "the stack refused the socket";
    } else {
      r->bind_fd(fd, h);
        g_fds.set(fd, FdKind::kPending);
    }
  }
  if (debug()) {
    char line[512];
    size_t n = format_socket_decision(line, sizeof line, config, domain, type, protocol, fd, d);
    say(line, n);
  }
  errno = saved;
  return fd;
}

SHUNT_EXPORT int bind(int fd, const sockaddr* addr, socklen_t len) noexcept {
  if (__builtin_expect(g_fds.kernel(fd), 1)) return SHUNT_REAL(bind)(fd, addr, len);
  if (forked_away(fd)) return ret(-EBADF);
  Runtime* r = runtime_for(fd);
  if (!r) return SHUNT_REAL(bind)(fd, addr, len);
  {
    std::lock_guard<StackMutex> g(r->mu());
    if (!g_fds.pending(fd) || settle(*r, fd, "bind", addr, len, nullptr, 0)) {
      return ret(r->api().bind(r->handle_of(fd), addr, len));
    }
  }
  return SHUNT_REAL(bind)(fd, addr, len);
}

SHUNT_EXPORT int listen(int fd, int backlog) noexcept {
  if (__builtin_expect(g_fds.kernel(fd), 1)) return SHUNT_REAL(listen)(fd, backlog);
  if (forked_away(fd)) return ret(-EBADF);
  Runtime* r = runtime_for(fd);
  if (!r) return SHUNT_REAL(listen)(fd, backlog);
  {
    std::lock_guard<StackMutex> g(r->mu());
    if (!g_fds.pending(fd) || settle(*r, fd, "listen", nullptr, 0, nullptr, 0)) {
      return ret(r->api().listen(r->handle_of(fd), backlog));
    }
  }
  return SHUNT_REAL(listen)(fd, backlog);
}

namespace {
int accept_common(const char* call, int fd, sockaddr* addr, socklen_t* len, int flags) {
  Runtime* r = runtime_for(fd);
  if (!r) return -2;
  const int h = r->handle_of(fd);
  if (h < 0) return ret(-EBADF);
  const int c = int(data_call(*r, [&] { return ssize_t(r->api().accept(h, addr, len, flags)); }));
  if (c < 0) return ret(c);
  // The accepted socket's placeholder: a kernel socket of the listener's family.
  const int saved = errno;
  const int nfd = SHUNT_REAL(socket)(shunt::preload::domain_of(fd), SOCK_STREAM | (flags & (SOCK_NONBLOCK | SOCK_CLOEXEC)), 0);
  if (nfd < 0) {
    const int e = errno;
    std::lock_guard<StackMutex> g(r->mu());
    r->api().close(c);
    errno = e;
    return -1;
  }
  {
    std::lock_guard<StackMutex> g(r->mu());
    r->bind_fd(nfd, c);
    g_fds.set(nfd, FdKind::kOffloaded);
  }
  if (debug()) debug_line("shunt: %s(%d) = %d: offloaded", call, fd, nfd);
  errno = saved;
  return nfd;
}
}  // namespace

SHUNT_EXPORT int accept(int fd, sockaddr* __restrict addr, socklen_t* __restrict len) {
  if (!g_fds.kernel(fd)) {
    if (forked_away(fd)) return ret(-EBADF);
    int c = accept_common("accept", fd, addr, len, 0);
    if (c != -2) return c;
  }
  int c = SHUNT_REAL(accept)(fd, addr, len);
  if (c >= 0) shunt::preload::note_accepted("accept", fd, c);
  return c;
}

SHUNT_EXPORT int accept4(int fd, sockaddr* __restrict addr, socklen_t* __restrict len, int flags) {
  if (!g_fds.kernel(fd)) {
    if (forked_away(fd)) return ret(-EBADF);
    int c = accept_common("accept4", fd, addr, len, flags);
    if (c != -2) return c;
  }
  int c = SHUNT_REAL(accept4)(fd, addr, len, flags);
  if (c >= 0) shunt::preload::note_accepted("accept4", fd, c);
  return c;
}

SHUNT_EXPORT int connect(int fd, const sockaddr* addr, socklen_t len) {
  if (__builtin_expect(g_fds.kernel(fd), 1)) return SHUNT_REAL(connect)(fd, addr, len);
  if (forked_away(fd)) return ret(-EBADF);
  Runtime* r = runtime_for(fd);
  if (!r) return SHUNT_REAL(connect)(fd, addr, len);
  {
    Runtime::begin_call();
    std::lock_guard<StackMutex> g(r->mu());
    if (!g_fds.pending(fd) || settle(*r, fd, "connect", nullptr, 0, addr, len)) {
      return ret(r->api().connect(r->handle_of(fd), addr, len));
    }
  }
  return SHUNT_REAL(connect)(fd, addr, len);
}

SHUNT_EXPORT int shutdown(int fd, int how) noexcept {
  if (__builtin_expect(g_fds.kernel(fd), 1)) return SHUNT_REAL(shutdown)(fd, how);
  if (forked_away(fd)) return ret(-EBADF);
  Runtime* r = runtime_for(fd);
  if (!r) return SHUNT_REAL(shutdown)(fd, how);
  std::lock_guard<StackMutex> g(r->mu());
  return ret(r->api().shutdown(r->handle_of(fd), how));
}

SHUNT_EXPORT int setsockopt(int fd, int level, int name, const void* val, socklen_t len) noexcept {
  if (__builtin_expect(g_fds.kernel(fd), 1) && level != SOL_SHUNT) return SHUNT_REAL(setsockopt)(fd, level, name, val, len);
  if (level == SOL_SHUNT) {
    if (name != SO_SHUNT_OFFLOAD) return ret(-ENOPROTOOPT);
    if (!val || len < socklen_t(sizeof(int))) return ret(-EINVAL);
    int on;
    std::memcpy(&on, val, sizeof on);
    Runtime* r = Runtime::active();
    if (StackMutex::held_here()) return ret(-EAGAIN);
    if (!g_fds.pending(fd) || !r) {
      // Already placed (or never a candidate): nothing to change, say so.
      if (g_fds.kernel(fd) && on == 0) return 0;
      return ret(-EISCONN);
    }
    std::lock_guard<StackMutex> g(r->mu());
    if (on) {
      g_fds.set(fd, FdKind::kPendingOptIn);
    } else {
      if (debug()) debug_line("shunt: setsockopt(%d, SO_SHUNT_OFFLOAD, 0): not offloaded: the program opted out", fd);
      shunt::preload::hand_to_kernel(*r, fd);
    }
    return 0;
  }
  if (forked_away(fd)) return ret(-EBADF);
  Runtime* r = runtime_for(fd);
  if (!r) return SHUNT_REAL(setsockopt)(fd, level, name, val, len);
  std::lock_guard<StackMutex> g(r->mu());
  const int h = r->handle_of(fd);
  int s = r->api().setsockopt(h, level, name, val, len);
  if (g_fds.pending(fd)) {
    // Held: the kernel socket takes the option too, in case the socket ends up there.
    const int saved = errno;
    int k = SHUNT_REAL(setsockopt)(fd, level, name, val, len);
    const int kerr = errno;
    errno = saved;
    if (s == -ENOPROTOOPT || s == -EOPNOTSUPP) return k == 0 ? 0 : ret(-kerr);
    return ret(s);
  }
  if (s == -ENOPROTOOPT) {
    // An option the stack does not model (SO_PRIORITY, IP_TOS on some paths, ...): the
    // placeholder takes it, so programs that set it keep working.
    return SHUNT_REAL(setsockopt)(fd, level, name, val, len);
  }
  return ret(s);
}

SHUNT_EXPORT int getsockopt(int fd, int level, int name, void* __restrict val, socklen_t* __restrict len) noexcept {
  if (__builtin_expect(g_fds.kernel(fd), 1) && level != SOL_SHUNT) return SHUNT_REAL(getsockopt)(fd, level, name, val, len);
  if (level == SOL_SHUNT) {
    if (name != SO_SHUNT_OFFLOAD) return ret(-ENOPROTOOPT);
    if (!val || !len || *len < socklen_t(sizeof(int))) return ret(-EINVAL);
    const int v = g_fds.offloaded(fd) && Runtime::active() ? 1 : 0;
    std::memcpy(val, &v, sizeof v);
    *len = sizeof v;
    return 0;
  }
  if (forked_away(fd)) return ret(-EBADF);
  Runtime* r = runtime_for(fd);
  if (!r) return SHUNT_REAL(getsockopt)(fd, level, name, val, len);
  std::lock_guard<StackMutex> g(r->mu());
  int s = r->api().getsockopt(r->handle_of(fd), level, name, val, len);
  if (s == -ENOPROTOOPT) return SHUNT_REAL(getsockopt)(fd, level, name, val, len);
  return ret(s);
}

SHUNT_EXPORT int getsockname(int fd, sockaddr* __restrict addr, socklen_t* __restrict len) noexcept {
  if (__builtin_expect(g_fds.kernel(fd), 1)) return SHUNT_REAL(getsockname)(fd, addr, len);
  if (forked_away(fd)) return ret(-EBADF);
  Runtime* r = runtime_for(fd);
  if (!r) return SHUNT_REAL(getsockname)(fd, addr, len);
  std::lock_guard<StackMutex> g(r->mu());
  return ret(r->api().getsockname(r->handle_of(fd), addr, len));
}

SHUNT_EXPORT int getpeername(int fd, sockaddr* __restrict addr, socklen_t* __restrict len) noexcept {
  if (__builtin_expect(g_fds.kernel(fd), 1)) return SHUNT_REAL(getpeername)(fd, addr, len);
  if (forked_away(fd)) return ret(-EBADF);
  Runtime* r = runtime_for(fd);
  if (!r) return SHUNT_REAL(getpeername)(fd, addr, len);
  std::lock_guard<StackMutex> g(r->mu());
  return ret(r->api().getpeername(r->handle_of(fd), addr, len));
}

// --- Data.

namespace {
msghdr one_buffer(const void* buf, size_t n, iovec& iov, const sockaddr* to = nullptr, socklen_t tolen = 0) {
  iov.iov_base = const_cast<void*>(buf);
  iov.iov_len = n;
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_name = const_cast<sockaddr*>(to);
  m.msg_namelen = tolen;
  return m;
}
}  // namespace

SHUNT_EXPORT ssize_t send(int fd, const void* buf, size_t n, int flags) {
  if (__builtin_expect(!g_fds.kernel(fd), 0)) {
    iovec iov;
    msghdr m = one_buffer(buf, n, iov);
    ssize_t r = shunt::preload::send_common(fd, &m, flags, false);
    if (r != kToKernel) return r;
  }
  return SHUNT_REAL(send)(fd, buf, n, flags);
}

SHUNT_EXPORT ssize_t sendto(int fd, const void* buf, size_t n, int flags, const sockaddr* to, socklen_t tolen) {
  if (__builtin_expect(!g_fds.kernel(fd), 0)) {
    iovec iov;
    msghdr m = one_buffer(buf, n, iov, to, tolen);
    ssize_t r = shunt::preload::send_common(fd, &m, flags, false);
    if (r != kToKernel) return r;
  }
  return SHUNT_REAL(sendto)(fd, buf, n, flags, to, tolen);
}

SHUNT_EXPORT ssize_t sendmsg(int fd, const msghdr* msg, int flags) {
  if (__builtin_expect(!g_fds.kernel(fd), 0)) {
    if (!msg) return ret<ssize_t>(-EFAULT);
    ssize_t r = shunt::preload::send_common(fd, msg, flags, false);
    if (r != kToKernel) return r;
  }
  return SHUNT_REAL(sendmsg)(fd, msg, flags);
}

SHUNT_EXPORT int sendmmsg(int fd, mmsghdr* vec, unsigned int vlen, int flags) {
  if (__builtin_expect(!g_fds.kernel(fd), 0)) {
    if (vlen > 1024) vlen = 1024;  // UIO_MAXIOV, as Linux clamps
    if (vlen == 0) return 0;
    if (!vec) return ret(-EFAULT);
    // Every message after the first goes without waiting; the count so far is the answer
    // when one fails (the error is lost, as in Linux).
    unsigned int i = 0;
    for (; i < vlen; ++i) {
      ssize_t r = shunt::preload::send_common(fd, &vec[i].msg_hdr, i ? flags | MSG_DONTWAIT : flags, false);
      if (r == kToKernel) {
        if (i == 0) return SHUNT_REAL(sendmmsg)(fd, vec, vlen, flags);
        break;
      }
      if (r < 0) {
        if (i == 0) return -1;
        break;
      }
      vec[i].msg_len = unsigned(r);
    }
    return int(i);
  }
  return SHUNT_REAL(sendmmsg)(fd, vec, vlen, flags);
}

SHUNT_EXPORT ssize_t recv(int fd, void* buf, size_t n, int flags) {
  if (__builtin_expect(!g_fds.kernel(fd), 0)) {
    iovec iov;
    msghdr m = one_buffer(buf, n, iov);
    ssize_t r = shunt::preload::recv_common(fd, &m, flags);
    if (r != kToKernel) return r;
  }
  return SHUNT_REAL(recv)(fd, buf, n, flags);
}

SHUNT_EXPORT ssize_t recvfrom(int fd, void* __restrict buf, size_t n, int flags, sockaddr* __restrict from,
                              socklen_t* __restrict fromlen) {
  if (__builtin_expect(!g_fds.kernel(fd), 0)) {
    if (forked_away(fd)) return ret<ssize_t>(-EBADF);
    Runtime* r = runtime_for(fd);
    if (r) {
      const int h = r->handle_of(fd);
      return ret(data_call(*r, [&] { return r->api().recvfrom(h, buf, n, flags, from, fromlen); }));
    }
  }
  return SHUNT_REAL(recvfrom)(fd, buf, n, flags, from, fromlen);
}

SHUNT_EXPORT ssize_t recvmsg(int fd, msghdr* msg, int flags) {
  if (__builtin_expect(!g_fds.kernel(fd), 0)) {
    if (!msg) return ret<ssize_t>(-EFAULT);
    ssize_t r = shunt::preload::recv_common(fd, msg, flags);
    if (r != kToKernel) return r;
  }
  return SHUNT_REAL(recvmsg)(fd, msg, flags);
}

SHUNT_EXPORT int recvmmsg(int fd, mmsghdr* vec, unsigned int vlen, int flags, timespec* timeout) {
  if (__builtin_expect(!g_fds.kernel(fd), 0)) {
    if (vlen > 1024) vlen = 1024;
    if (vlen == 0) return 0;
    if (!vec) return ret(-EFAULT);
    // The first message waits as the socket and flags say; the rest are taken only if they are
    // already there (MSG_WAITFORONE's behaviour; the timeout, checked only between messages in
    // Linux, is not needed for that).
    (void)timeout;
    unsigned int i = 0;
    for (; i < vlen; ++i) {
      int f = flags & ~MSG_WAITFORONE;
      if (i > 0) f |= MSG_DONTWAIT;
      ssize_t r = shunt::preload::recv_common(fd, &vec[i].msg_hdr, f);
      if (r == kToKernel) {
        if (i == 0) return SHUNT_REAL(recvmmsg)(fd, vec, vlen, flags, timeout);
        break;
      }
      if (r < 0) {
        if (i == 0) return -1;
        errno = 0;
        break;
      }
      vec[i].msg_len = unsigned(r);
    }
    return int(i);
  }
  return SHUNT_REAL(recvmmsg)(fd, vec, vlen, flags, timeout);
}

SHUNT_EXPORT ssize_t read(int fd, void* buf, size_t n) {
  if (__builtin_expect(!g_fds.kernel(fd), 0)) {
    iovec iov;
    msghdr m = one_buffer(buf, n, iov);
    ssize_t r = shunt::preload::recv_common(fd, &m, 0);
    if (r != kToKernel) return r;
  }
  return SHUNT_REAL(read)(fd, buf, n);
}

SHUNT_EXPORT ssize_t write(int fd, const void* buf, size_t n) {
  if (__builtin_expect(!g_fds.kernel(fd), 0)) {
    iovec iov;
    msghdr m = one_buffer(buf, n, iov);
    ssize_t r = shunt::preload::send_common(fd, &m, 0, true);
    if (r != kToKernel) return r;
  }
  return SHUNT_REAL(write)(fd, buf, n);
}

SHUNT_EXPORT ssize_t readv(int fd, const iovec* iov, int n) {
  if (__builtin_expect(!g_fds.kernel(fd), 0)) {
    if (n < 0 || n > 1024) return ret<ssize_t>(-EINVAL);
    msghdr m{};
    m.msg_iov = const_cast<iovec*>(iov);
    m.msg_iovlen = size_t(n);
    ssize_t r = shunt::preload::recv_common(fd, &m, 0);
    if (r != kToKernel) return r;
  }
  return SHUNT_REAL(readv)(fd, iov, n);
}

SHUNT_EXPORT ssize_t writev(int fd, const iovec* iov, int n) {
  if (__builtin_expect(!g_fds.kernel(fd), 0)) {
    if (n < 0 || n > 1024) return ret<ssize_t>(-EINVAL);
    msghdr m{};
    m.msg_iov = const_cast<iovec*>(iov);
    m.msg_iovlen = size_t(n);
    ssize_t r = shunt::preload::send_common(fd, &m, 0, true);
    if (r != kToKernel) return r;
  }
  return SHUNT_REAL(writev)(fd, iov, n);
}

// sendfile(2) and splice(2) with an offloaded socket on one side. The kernel cannot move bytes
// into or out of a socket it does not carry, so the library copies them through a buffer, and
// never takes from the source more than the destination accepts: nothing is read and then lost.
namespace {
constexpr size_t kCopyChunk = 64 * 1024;

struct CopyBuffer {
  char* p = static_cast<char*>(std::malloc(kCopyChunk));
  ~CopyBuffer() { std::free(p); }
};

bool nonblocking(int fd) {
  const int fl = fcntl(fd, F_GETFL);  // the library's own: offloaded sockets keep their mode
  return fl >= 0 && (fl & O_NONBLOCK);
}

// Sends all of p[0, n) on the offloaded socket `fd`, waiting for room even if the socket is
// non-blocking (the caller already holds these bytes: they must not be dropped). Returns what
// was sent, or -1 with errno if nothing was.
ssize_t send_fully(int fd, const char* p, size_t n) {
  size_t done = 0;
  while (done < n) {
    const ssize_t w = send(fd, p + done, n - done, done ? MSG_NOSIGNAL : 0);  // SIGPIPE as Linux
    if (w > 0) {
      done += size_t(w);
      continue;
    }
    if (w < 0 && errno == EAGAIN) {
      pollfd pfd{fd, POLLOUT, 0};
      (void)poll(&pfd, 1, 100);
      continue;
    }
    if (done > 0) return ssize_t(done);
    return -1;
  }
  return ssize_t(done);
}

// How many bytes the offloaded socket `fd` takes now: its send buffer less what it holds.
size_t send_room(int fd) {
  int sndbuf = 0, queued = 0;
  socklen_t l = sizeof sndbuf;
  if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, &l) != 0 || ioctl(fd, SIOCOUTQ, &queued) != 0) {
    return kCopyChunk;
  }
  return sndbuf > queued ? size_t(sndbuf - queued) : 0;
}

// sendfile onto an offloaded socket: pread from the file at the offset (or its position), send,
// then move the offset (or position) by what was sent.
ssize_t sendfile_offloaded(int out_fd, int in_fd, off_t* offset, size_t count) {
  off_t pos = offset ? *offset : ::lseek(in_fd, 0, SEEK_CUR);
  if (pos < 0) return ret<ssize_t>(errno == ESPIPE ? -EINVAL : -errno);  // as Linux: in_fd must be seekable
  CopyBuffer buf;
  if (!buf.p) return ret<ssize_t>(-ENOMEM);
  size_t total = 0;
  while (total < count) {
    size_t want = std::min(count - total, kCopyChunk);
    const ssize_t got = pread(in_fd, buf.p, want, pos);
    if (got < 0) {
      if (total == 0) return -1;
      break;
    }
    if (got == 0) break;  // end of file
    // SIGPIPE as Linux raises it: for the call's first send only.
    const ssize_t w = send(out_fd, buf.p, size_t(got), total ? MSG_NOSIGNAL : 0);
    if (w < 0) {
      if (total == 0) return -1;
      break;
    }
    total += size_t(w);
    pos += w;
    if (w < got) break;  // a non-blocking socket is full
  }
  if (offset) {
    *offset = pos;
  } else {
    (void)::lseek(in_fd, pos, SEEK_SET);
  }
  return ssize_t(total);
}

// splice from a pipe onto an offloaded socket.
ssize_t splice_to_offloaded(int pipe_fd, int sock_fd, size_t len, unsigned flags) {
  size_t want = std::min(len, kCopyChunk);
  if (nonblocking(sock_fd) || (flags & SPLICE_F_NONBLOCK)) {
    want = std::min(want, send_room(sock_fd));
    if (want == 0) return ret<ssize_t>(-EAGAIN);
  }
  CopyBuffer buf;
  if (!buf.p) return ret<ssize_t>(-ENOMEM);
  const ssize_t got = SHUNT_REAL(read)(pipe_fd, buf.p, want);
  if (got <= 0) return got;
  return send_fully(sock_fd, buf.p, size_t(got));
}

// splice from an offloaded socket into a pipe: never more than the pipe has room for.
ssize_t splice_from_offloaded(int sock_fd, int pipe_fd, size_t len, unsigned flags) {
  const int size = SHUNT_REAL(fcntl)(pipe_fd, F_GETPIPE_SZ);
  if (size < 0) return ret<ssize_t>(-EINVAL);  // not a pipe
  size_t room = 0;
  for (;;) {
    int held = 0;
    if (SHUNT_REAL(ioctl)(pipe_fd, FIONREAD, &held) != 0) return -1;
    room = size > held ? size_t(size - held) : 0;
    if (room > 0) break;
    if (flags & SPLICE_F_NONBLOCK) return ret<ssize_t>(-EAGAIN);
    pollfd pfd{pipe_fd, POLLOUT, 0};
    if (SHUNT_REAL(poll)(&pfd, 1, -1) < 0) return -1;
  }
  CopyBuffer buf;
  if (!buf.p) return ret<ssize_t>(-ENOMEM);
  const ssize_t got = recv(sock_fd, buf.p, std::min({len, room, kCopyChunk}),
                           (flags & SPLICE_F_NONBLOCK) ? MSG_DONTWAIT : 0);
  if (got <= 0) return got;
  const ssize_t w = SHUNT_REAL(write)(pipe_fd, buf.p, size_t(got));
  return w;
}
}  // namespace

SHUNT_EXPORT ssize_t sendfile(int out_fd, int in_fd, off_t* offset, size_t count) {
  if (__builtin_expect(!g_fds.kernel(out_fd), 0) && g_fds.offloaded(out_fd)) {
    if (forked_away(out_fd)) return ret<ssize_t>(-EBADF);
    return sendfile_offloaded(out_fd, in_fd, offset, count);
  }
  return SHUNT_REAL(sendfile)(out_fd, in_fd, offset, count);
}

SHUNT_EXPORT ssize_t sendfile64(int out_fd, int in_fd, off64_t* offset, size_t count) {
  static_assert(sizeof(off64_t) == sizeof(off_t), "64-bit off_t only");
  return sendfile(out_fd, in_fd, reinterpret_cast<off_t*>(offset), count);
}

SHUNT_EXPORT ssize_t splice(int fd_in, loff_t* off_in, int fd_out, loff_t* off_out, size_t len, unsigned flags) {
  const bool in_off = !g_fds.kernel(fd_in) && g_fds.offloaded(fd_in);
  const bool out_off = !g_fds.kernel(fd_out) && g_fds.offloaded(fd_out);
  if (__builtin_expect(in_off || out_off, 0)) {
    if ((in_off && forked_away(fd_in)) || (out_off && forked_away(fd_out))) return ret<ssize_t>(-EBADF);
    if (in_off && out_off) return ret<ssize_t>(-EINVAL);  // one side must be a pipe
    if ((in_off && off_in) || (out_off && off_out)) return ret<ssize_t>(-ESPIPE);
    if (len == 0) return 0;
    return out_off ? splice_to_offloaded(fd_in, fd_out, len, flags)
                   : splice_from_offloaded(fd_in, fd_out, len, flags);
  }
  return SHUNT_REAL(splice)(fd_in, off_in, fd_out, off_out, len, flags);
}

// Programs built with _FORTIFY_SOURCE reach read/recv/recvfrom through these.
SHUNT_EXPORT ssize_t __read_chk(int fd, void* buf, size_t n, size_t buflen) {
  if (__builtin_expect(!g_fds.kernel(fd), 0)) {
    if (n > buflen) return SHUNT_REAL(__read_chk)(fd, buf, n, buflen);  // libc reports the overflow
    return read(fd, buf, n);
  }
  return SHUNT_REAL(__read_chk)(fd, buf, n, buflen);
}

SHUNT_EXPORT ssize_t __recv_chk(int fd, void* buf, size_t n, size_t buflen, int flags) {
  if (__builtin_expect(!g_fds.kernel(fd), 0)) {
    if (n > buflen) return SHUNT_REAL(__recv_chk)(fd, buf, n, buflen, flags);
    return recv(fd, buf, n, flags);
  }
  return SHUNT_REAL(__recv_chk)(fd, buf, n, buflen, flags);
}

SHUNT_EXPORT ssize_t __recvfrom_chk(int fd, void* __restrict buf, size_t n, size_t buflen, int flags,
                                    sockaddr* __restrict from, socklen_t* __restrict fromlen) {
  if (__builtin_expect(!g_fds.kernel(fd), 0)) {
    if (n > buflen) return SHUNT_REAL(__recvfrom_chk)(fd, buf, n, buflen, flags, from, fromlen);
    return recvfrom(fd, buf, n, flags, from, fromlen);
  }
  return SHUNT_REAL(__recvfrom_chk)(fd, buf, n, buflen, flags, from, fromlen);
}

// --- Descriptors: the fd table follows every way a number starts or stops naming a socket.

namespace {
// `fd` stops naming what it named (close, or the target of dup2/dup3). Before the real close:
// once the kernel frees the number, socket() in another thread may reuse it.
void release_fd(int fd) {
  if (Runtime::active()) shunt::preload::mux_fd_closing(fd);
  if (g_fds.kernel(fd)) return;
  if (StackMutex::held_here()) {
    // A signal handler closing an fd while its thread is inside the library: the stack's
    // socket stays open (a leak, not a deadlock); the number is the kernel's again.
    g_fds.forget(fd);
    return;
  }
  if (Runtime* r = Runtime::active()) {
    Runtime::begin_call();  // SO_LINGER may wait
    std::lock_guard<StackMutex> g(r->mu());
    const int h = r->handle_of(fd);
    if (r->unbind_fd(fd) && h >= 0) r->api().close(h);
  }
  g_fds.forget(fd);
}

// `copy` now names what `orig` names (dup, dup2, dup3, F_DUPFD).
void duplicated(int orig, int copy) {
  if (g_fds.kernel(orig) || StackMutex::held_here()) {
    g_fds.forget(copy);
    return;
  }
  if (Runtime* r = Runtime::active()) {
    std::lock_guard<StackMutex> g(r->mu());
    r->bind_fd(copy, r->handle_of(orig));
  }
  g_fds.duplicated(orig, copy);
}
}  // namespace

SHUNT_EXPORT int close(int fd) {
  release_fd(fd);
  return SHUNT_REAL(close)(fd);
}

SHUNT_EXPORT int dup(int fd) noexcept {
  int c = SHUNT_REAL(dup)(fd);
  if (c >= 0) duplicated(fd, c);
  return c;
}

SHUNT_EXPORT int dup2(int fd, int fd2) noexcept {
  if (fd == fd2) return SHUNT_REAL(dup2)(fd, fd2);
  const int saved = errno;
  if (fcntl(fd, F_GETFD) < 0) return -1;  // a bad fd leaves fd2 alone (EBADF)
  errno = saved;
  if (!g_fds.kernel(fd2)) release_fd(fd2);
  int c = SHUNT_REAL(dup2)(fd, fd2);
  if (c >= 0) duplicated(fd, c);
  return c;
}

SHUNT_EXPORT int dup3(int fd, int fd2, int flags) noexcept {
  if (fd == fd2) return SHUNT_REAL(dup3)(fd, fd2, flags);  // EINVAL
  const int saved = errno;
  if (fcntl(fd, F_GETFD) < 0) return -1;
  errno = saved;
  if (!g_fds.kernel(fd2)) release_fd(fd2);
  int c = SHUNT_REAL(dup3)(fd, fd2, flags);
  if (c >= 0) duplicated(fd, c);
  return c;
}

namespace {
// fcntl's third argument is an int, a pointer or absent, depending on cmd. Like glibc, read it
// as a pointer-sized value and pass it on: both ABIs we build for (x86-64, AArch64) pass it in a
// register, so an absent argument is harmless garbage the kernel ignores.
int fcntl_common(int (*real_fcntl)(int, int, ...), int fd, int cmd, void* arg) {
  if (!g_fds.kernel(fd) && cmd == F_SETFL) {
    if (forked_away(fd)) return ret(-EBADF);
    if (Runtime* r = runtime_for(fd)) {
      std::lock_guard<StackMutex> g(r->mu());
      r->api().set_nonblocking(r->handle_of(fd), (reinterpret_cast<intptr_t>(arg) & O_NONBLOCK) != 0);
    }
  }
  int r = real_fcntl(fd, cmd, arg);
  if (r >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC)) duplicated(fd, r);
  return r;
}
}  // namespace

SHUNT_EXPORT int fcntl(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  return fcntl_common(SHUNT_REAL(fcntl), fd, cmd, arg);
}

// Programs built with _FILE_OFFSET_BITS=64 call fcntl64 (glibc >= 2.28).
SHUNT_EXPORT int fcntl64(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  return fcntl_common(SHUNT_REAL(fcntl64), fd, cmd, arg);
}

SHUNT_EXPORT int ioctl(int fd, unsigned long request, ...) noexcept {
  va_list ap;
  va_start(ap, request);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  if (__builtin_expect(!g_fds.kernel(fd), 0) &&
      (request == FIONREAD || request == FIONBIO || request == SIOCOUTQ)) {
    if (forked_away(fd)) return ret(-EBADF);
    if (Runtime* r = runtime_for(fd)) {
      int s;
      {
        std::lock_guard<StackMutex> g(r->mu());
        r->progress_locked();
        s = r->api().ioctl(r->handle_of(fd), request, arg);
      }
      if (s < 0) return ret(s);
      if (request == FIONBIO) return SHUNT_REAL(ioctl)(fd, request, arg);  // F_GETFL agrees
      return s;
    }
  }
  return SHUNT_REAL(ioctl)(fd, request, arg);
}

// --- Processes. The runtime's pthread_atfork handlers hold its lock across fork, and mark the
// child: the device stays the parent's, inherited offloaded fds answer EBADF (close works), and
// new sockets go to the kernel (docs/preload.md, "fork and exec"). exec needs nothing: the new
// image loads the library afresh, and inherited placeholders are plain kernel sockets there.

SHUNT_EXPORT pid_t fork() noexcept { return SHUNT_REAL(fork)(); }

// vfork's child shares the parent's memory and stack, so it must not run the library's fork
// handlers half-way; it is a fork here, as it is for every program that only execs after it.
SHUNT_EXPORT pid_t vfork() noexcept { return fork(); }
