// The preload library (build/lib/libshunt.so): interposes the socket API (DESIGN.md, "The
// preload library"). Today it offloads nothing: every call goes to libc unchanged, with errno
// exactly as libc left it. What is in place for offload: the configuration loaded at start,
// the per-fd table kept in step with socket/accept/close/dup*/F_DUPFD, and the per-socket
// decision with its reason (SHUNT_DEBUG=1).
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
#include <stdarg.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>

#include "stack/core/config.h"
#include "stack/core/log.h"
#include "stack/preload/fd_table.h"
#include "stack/preload/libc.h"
#include "stack/preload/offload.h"

#define SHUNT_EXPORT extern "C" __attribute__((visibility("default")))

namespace shunt::preload {

constinit FdTable g_fds;

namespace {

// Set once by the constructor; never freed (a call from an atexit handler may still read it).
std::atomic<const Config*> g_config{nullptr};
std::atomic<bool> g_debug{false};

// Writes one line to stderr with one write(2); errno is preserved.
void say(const char* s, size_t n) {
  const int saved = errno;
  while (n > 0) {
    ssize_t w = SHUNT_REAL(write)(STDERR_FILENO, s, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;
    s += w;
    n -= size_t(w);
  }
  errno = saved;
}

void note_new_socket(int fd, int domain, int type, int protocol) {
  g_fds.set(fd, FdKind::kKernel);  // whatever this number was before, it is a new socket now
  if (!g_debug.load(std::memory_order_relaxed)) return;
  const Config* config = g_config.load(std::memory_order_acquire);
  const OffloadDecision d = decide_socket(config, domain, type, protocol);
  char line[512];
  size_t n = format_socket_decision(line, sizeof line, config, domain, type, protocol, fd, d);
  say(line, n);
}

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

using shunt::preload::g_fds;

// --- Sockets: creation and addressing.

SHUNT_EXPORT int socket(int domain, int type, int protocol) noexcept {
  int fd = SHUNT_REAL(socket)(domain, type, protocol);
  if (fd >= 0) shunt::preload::note_new_socket(fd, domain, type, protocol);
  return fd;
}

SHUNT_EXPORT int bind(int fd, const sockaddr* addr, socklen_t len) noexcept {
  return SHUNT_REAL(bind)(fd, addr, len);
}

SHUNT_EXPORT int listen(int fd, int backlog) noexcept { return SHUNT_REAL(listen)(fd, backlog); }

SHUNT_EXPORT int accept(int fd, sockaddr* __restrict addr, socklen_t* __restrict len) {
  int c = SHUNT_REAL(accept)(fd, addr, len);
  if (c >= 0) shunt::preload::note_accepted("accept", fd, c);
  return c;
}

SHUNT_EXPORT int accept4(int fd, sockaddr* __restrict addr, socklen_t* __restrict len, int flags) {
  int c = SHUNT_REAL(accept4)(fd, addr, len, flags);
  if (c >= 0) shunt::preload::note_accepted("accept4", fd, c);
  return c;
}

SHUNT_EXPORT int connect(int fd, const sockaddr* addr, socklen_t len) { return SHUNT_REAL(connect)(fd, addr, len); }

SHUNT_EXPORT int shutdown(int fd, int how) noexcept { return SHUNT_REAL(shutdown)(fd, how); }

SHUNT_EXPORT int setsockopt(int fd, int level, int name, const void* val, socklen_t len) noexcept {
  return SHUNT_REAL(setsockopt)(fd, level, name, val, len);
}

SHUNT_EXPORT int getsockopt(int fd, int level, int name, void* __restrict val, socklen_t* __restrict len) noexcept {
  return SHUNT_REAL(getsockopt)(fd, level, name, val, len);
}

SHUNT_EXPORT int getsockname(int fd, sockaddr* __restrict addr, socklen_t* __restrict len) noexcept {
  return SHUNT_REAL(getsockname)(fd, addr, len);
}

SHUNT_EXPORT int getpeername(int fd, sockaddr* __restrict addr, socklen_t* __restrict len) noexcept {
  return SHUNT_REAL(getpeername)(fd, addr, len);
}

// --- Data.

SHUNT_EXPORT ssize_t send(int fd, const void* buf, size_t n, int flags) { return SHUNT_REAL(send)(fd, buf, n, flags); }

SHUNT_EXPORT ssize_t sendto(int fd, const void* buf, size_t n, int flags, const sockaddr* to, socklen_t tolen) {
  return SHUNT_REAL(sendto)(fd, buf, n, flags, to, tolen);
}

SHUNT_EXPORT ssize_t sendmsg(int fd, const msghdr* msg, int flags) { return SHUNT_REAL(sendmsg)(fd, msg, flags); }

SHUNT_EXPORT int sendmmsg(int fd, mmsghdr* vec, unsigned int vlen, int flags) {
  return SHUNT_REAL(sendmmsg)(fd, vec, vlen, flags);
}

SHUNT_EXPORT ssize_t recv(int fd, void* buf, size_t n, int flags) { return SHUNT_REAL(recv)(fd, buf, n, flags); }

SHUNT_EXPORT ssize_t recvfrom(int fd, void* __restrict buf, size_t n, int flags, sockaddr* __restrict from,
                              socklen_t* __restrict fromlen) {
  return SHUNT_REAL(recvfrom)(fd, buf, n, flags, from, fromlen);
}

SHUNT_EXPORT ssize_t recvmsg(int fd, msghdr* msg, int flags) { return SHUNT_REAL(recvmsg)(fd, msg, flags); }

SHUNT_EXPORT int recvmmsg(int fd, mmsghdr* vec, unsigned int vlen, int flags, timespec* timeout) {
  return SHUNT_REAL(recvmmsg)(fd, vec, vlen, flags, timeout);
}

SHUNT_EXPORT ssize_t read(int fd, void* buf, size_t n) { return SHUNT_REAL(read)(fd, buf, n); }

SHUNT_EXPORT ssize_t write(int fd, const void* buf, size_t n) { return SHUNT_REAL(write)(fd, buf, n); }

SHUNT_EXPORT ssize_t readv(int fd, const iovec* iov, int n) { return SHUNT_REAL(readv)(fd, iov, n); }

SHUNT_EXPORT ssize_t writev(int fd, const iovec* iov, int n) { return SHUNT_REAL(writev)(fd, iov, n); }

// Programs built with _FORTIFY_SOURCE reach read/recv/recvfrom through these.
SHUNT_EXPORT ssize_t __read_chk(int fd, void* buf, size_t n, size_t buflen) {
  return SHUNT_REAL(__read_chk)(fd, buf, n, buflen);
}

SHUNT_EXPORT ssize_t __recv_chk(int fd, void* buf, size_t n, size_t buflen, int flags) {
  return SHUNT_REAL(__recv_chk)(fd, buf, n, buflen, flags);
}

SHUNT_EXPORT ssize_t __recvfrom_chk(int fd, void* __restrict buf, size_t n, size_t buflen, int flags,
                                    sockaddr* __restrict from, socklen_t* __restrict fromlen) {
  return SHUNT_REAL(__recvfrom_chk)(fd, buf, n, buflen, flags, from, fromlen);
}

// --- Descriptors: the fd table follows every way a number starts or stops naming a socket.

SHUNT_EXPORT int close(int fd) {
  // Forget first: once the kernel frees the number, socket() in another thread may reuse it.
  g_fds.forget(fd);
  return SHUNT_REAL(close)(fd);
}

SHUNT_EXPORT int dup(int fd) noexcept {
  int c = SHUNT_REAL(dup)(fd);
  if (c >= 0) g_fds.duplicated(fd, c);
  return c;
}

SHUNT_EXPORT int dup2(int fd, int fd2) noexcept {
  int c = SHUNT_REAL(dup2)(fd, fd2);
  if (c >= 0 && fd != fd2) g_fds.duplicated(fd, c);
  return c;
}

SHUNT_EXPORT int dup3(int fd, int fd2, int flags) noexcept {
  int c = SHUNT_REAL(dup3)(fd, fd2, flags);
  if (c >= 0) g_fds.duplicated(fd, c);
  return c;
}

namespace {
// fcntl's third argument is an int, a pointer or absent, depending on cmd. Like glibc, read it
// as a pointer-sized value and pass it on: both ABIs we build for (x86-64, AArch64) pass it in a
// register, so an absent argument is harmless garbage the kernel ignores.
int fcntl_common(int (*real_fcntl)(int, int, ...), int fd, int cmd, void* arg) {
  int r = real_fcntl(fd, cmd, arg);
  if (r >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC)) g_fds.duplicated(fd, r);
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
  return SHUNT_REAL(ioctl)(fd, request, arg);
}

// --- Processes. The child inherits the fd table as it inherits the fds; once sockets are
// offloaded, the child will also need its own progress thread.

SHUNT_EXPORT pid_t fork() noexcept { return SHUNT_REAL(fork)(); }
