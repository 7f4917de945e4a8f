#ifdef _FORTIFY_SOURCE
#undef _FORTIFY_SOURCE  // this file defines the fortified entry points' fallbacks itself
#endif
#include "stack/preload/libc.h"

#include <dlfcn.h>
#include <sys/syscall.h>

#include <cerrno>
#include <cstdarg>
#include <cstdlib>
#include <type_traits>

namespace shunt::preload {

constinit std::atomic<void*> g_real[kFnCount] = {};

namespace {

// Set while this thread is inside dlsym(): a call that comes back in takes the system call.
// initial-exec: reading it never allocates (a preloaded library gets static TLS).
__attribute__((tls_model("initial-exec"))) thread_local bool t_resolving = false;

// The kernel's sigset size for the *pselect6/ppoll/epoll_pwait system calls.
constexpr size_t kKernelSigsetBytes = 8;

// System-call versions of each function, used only while the libc one cannot be looked up.
// They keep libc's calling convention: -1 and errno on failure.
int fb_socket(int d, int t, int p) noexcept { return int(syscall(SYS_socket, d, t, p)); }
int fb_bind(int fd, const sockaddr* a, socklen_t l) noexcept { return int(syscall(SYS_bind, fd, a, l)); }
int fb_listen(int fd, int n) noexcept { return int(syscall(SYS_listen, fd, n)); }
int fb_accept(int fd, sockaddr* a, socklen_t* l) { return int(syscall(SYS_accept4, fd, a, l, 0)); }
int fb_accept4(int fd, sockaddr* a, socklen_t* l, int fl) { return int(syscall(SYS_accept4, fd, a, l, fl)); }
int fb_connect(int fd, const sockaddr* a, socklen_t l) { return int(syscall(SYS_connect, fd, a, l)); }
ssize_t fb_send(int fd, const void* b, size_t n, int fl) { return syscall(SYS_sendto, fd, b, n, fl, nullptr, 0); }
ssize_t fb_sendto(int fd, const void* b, size_t n, int fl, const sockaddr* a, socklen_t l) {
  return syscall(SYS_sendto, fd, b, n, fl, a, l);
}
ssize_t fb_sendmsg(int fd, const msghdr* m, int fl) { return syscall(SYS_sendmsg, fd, m, fl); }
int fb_sendmmsg(int fd, mmsghdr* v, unsigned n, int fl) { return int(syscall(SYS_sendmmsg, fd, v, n, fl)); }
ssize_t fb_recv(int fd, void* b, size_t n, int fl) { return syscall(SYS_recvfrom, fd, b, n, fl, nullptr, nullptr); }
ssize_t fb_recvfrom(int fd, void* b, size_t n, int fl, sockaddr* a, socklen_t* l) {
  return syscall(SYS_recvfrom, fd, b, n, fl, a, l);
}
ssize_t fb_recvmsg(int fd, msghdr* m, int fl) { return syscall(SYS_recvmsg, fd, m, fl); }
int fb_recvmmsg(int fd, mmsghdr* v, unsigned n, int fl, timespec* t) {
  return int(syscall(SYS_recvmmsg, fd, v, n, fl, t));
}
ssize_t fb_read(int fd, void* b, size_t n) { return syscall(SYS_read, fd, b, n); }
ssize_t fb_write(int fd, const void* b, size_t n) { return syscall(SYS_write, fd, b, n); }
ssize_t fb_readv(int fd, const iovec* v, int n) { return syscall(SYS_readv, fd, v, n); }
ssize_t fb_writev(int fd, const iovec* v, int n) { return syscall(SYS_writev, fd, v, n); }
int fb_close(int fd) { return int(syscall(SYS_close, fd)); }
int fb_shutdown(int fd, int how) noexcept { return int(syscall(SYS_shutdown, fd, how)); }
int fb_dup(int fd) noexcept { return int(syscall(SYS_dup, fd)); }
int fb_dup2(int fd, int fd2) noexcept {
  // dup3 refuses equal descriptors; dup2 returns fd2 if it is open (POSIX dup2).
  if (fd == fd2) return syscall(SYS_fcntl, fd, F_GETFD) < 0 ? -1 : fd2;
  return int(syscall(SYS_dup3, fd, fd2, 0));
}
int fb_dup3(int fd, int fd2, int fl) noexcept { return int(syscall(SYS_dup3, fd, fd2, fl)); }
// fcntl and ioctl take one optional argument; like glibc, pass whatever is in its slot.
int fb_fcntl(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  return int(syscall(SYS_fcntl, fd, cmd, arg));
}
int fb_fcntl64(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  return int(syscall(SYS_fcntl, fd, cmd, arg));
}
int fb_ioctl(int fd, unsigned long req, ...) noexcept {
  va_list ap;
  va_start(ap, req);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  return int(syscall(SYS_ioctl, fd, req, arg));
}
int fb_setsockopt(int fd, int lv, int nm, const void* v, socklen_t l) noexcept {
  return int(syscall(SYS_setsockopt, fd, lv, nm, v, l));
}
int fb_getsockopt(int fd, int lv, int nm, void* v, socklen_t* l) noexcept {
  return int(syscall(SYS_getsockopt, fd, lv, nm, v, l));
}
int fb_getsockname(int fd, sockaddr* a, socklen_t* l) noexcept { return int(syscall(SYS_getsockname, fd, a, l)); }
int fb_getpeername(int fd, sockaddr* a, socklen_t* l) noexcept { return int(syscall(SYS_getpeername, fd, a, l)); }
int fb_ppoll(pollfd* f, nfds_t n, const timespec* t, const sigset_t* ss) {
  timespec copy;  // the kernel writes the time left back; ppoll(3) does not
  if (t) copy = *t;
  return int(syscall(SYS_ppoll, f, n, t ? &copy : nullptr, ss, kKernelSigsetBytes));
}
int fb_poll(pollfd* f, nfds_t n, int ms) {
  timespec t{ms / 1000, long(ms % 1000) * 1'000'000};
  return fb_ppoll(f, n, ms < 0 ? nullptr : &t, nullptr);
}
int fb_pselect(int n, fd_set* r, fd_set* w, fd_set* e, const timespec* t, const sigset_t* ss) {
  timespec copy;
  if (t) copy = *t;
  struct {
    const sigset_t* ss;
    size_t len;
  } mask{ss, kKernelSigsetBytes};
  return int(syscall(SYS_pselect6, n, r, w, e, t ? &copy : nullptr, ss ? &mask : nullptr));
}
int fb_select(int n, fd_set* r, fd_set* w, fd_set* e, timeval* tv) {
  timespec t;
  if (tv) t = timespec{tv->tv_sec, tv->tv_usec * 1000};
  int rc = int(syscall(SYS_pselect6, n, r, w, e, tv ? &t : nullptr, nullptr));
  if (tv) *tv = timeval{t.tv_sec, t.tv_nsec / 1000};  // Linux select() reports the time left
  return rc;
}
int fb_epoll_create1(int fl) noexcept { return int(syscall(SYS_epoll_create1, fl)); }
int fb_epoll_create(int size) noexcept {
  if (size <= 0) {
    errno = EINVAL;
    return -1;
  }
  return fb_epoll_create1(0);
}
int fb_epoll_ctl(int ep, int op, int fd, epoll_event* ev) noexcept { return int(syscall(SYS_epoll_ctl, ep, op, fd, ev)); }
int fb_epoll_pwait(int ep, epoll_event* ev, int n, int ms, const sigset_t* ss) {
  return int(syscall(SYS_epoll_pwait, ep, ev, n, ms, ss, kKernelSigsetBytes));
}
int fb_epoll_wait(int ep, epoll_event* ev, int n, int ms) { return fb_epoll_pwait(ep, ev, n, ms, nullptr); }
int fb_epoll_pwait2(int ep, epoll_event* ev, int n, const timespec* t, const sigset_t* ss) {
#ifdef SYS_epoll_pwait2
  return int(syscall(SYS_epoll_pwait2, ep, ev, n, t, ss, kKernelSigsetBytes));
#else
  (void)ep, (void)ev, (void)n, (void)t, (void)ss;
  errno = ENOSYS;
  return -1;
#endif
}
// A raw clone would skip libc's fork bookkeeping (atfork handlers, locks); refuse instead.
// Only reachable if fork() were called from inside dlsym().
ssize_t fb_sendfile(int out, int in, off_t* off, size_t n) noexcept {
  return syscall(SYS_sendfile, out, in, off, n);
}
ssize_t fb_splice(int in, loff_t* off_in, int out, loff_t* off_out, size_t n, unsigned flags) {
  return syscall(SYS_splice, in, off_in, out, off_out, n, flags);
}
extern "C" int __sigaction(int sig, const struct sigaction* act, struct sigaction* old);
int fb_sigaction(int sig, const struct sigaction* act, struct sigaction* old) noexcept {
  return __sigaction(sig, act, old);
}
pid_t fb_fork() noexcept {
  errno = ENOSYS;
  return -1;
}
ssize_t fb___read_chk(int fd, void* b, size_t n, size_t buflen) {
  if (n > buflen) abort();  // what __chk_fail does
  return fb_read(fd, b, n);
}
ssize_t fb___recv_chk(int fd, void* b, size_t n, size_t buflen, int fl) {
  if (n > buflen) abort();
  return fb_recv(fd, b, n, fl);
}
ssize_t fb___recvfrom_chk(int fd, void* b, size_t n, size_t buflen, int fl, sockaddr* a, socklen_t* l) {
  if (n > buflen) abort();
  return fb_recvfrom(fd, b, n, fl, a, l);
}
int fb___poll_chk(pollfd* f, nfds_t n, int ms, size_t fdslen) {
  if (fdslen / sizeof(*f) < n) abort();
  return fb_poll(f, n, ms);
}
int fb___ppoll_chk(pollfd* f, nfds_t n, const timespec* t, const sigset_t* ss, size_t fdslen) {
  if (fdslen / sizeof(*f) < n) abort();
  return fb_ppoll(f, n, t, ss);
}

// Each fallback has exactly the type of the function it stands in for.
#define SHUNT_CHECK_TYPE(name) \
  static_assert(std::is_same_v<decltype(&fb_##name), decltype(&::name)>, "fallback type of " #name);
SHUNT_INTERPOSED(SHUNT_CHECK_TYPE)
#undef SHUNT_CHECK_TYPE

#define SHUNT_NAME(name) #name,
constexpr const char* kNames[kFnCount] = {SHUNT_INTERPOSED(SHUNT_NAME)};
#undef SHUNT_NAME

#define SHUNT_FALLBACK(name) reinterpret_cast<void*>(&fb_##name),
void* const kFallbacks[kFnCount] = {SHUNT_INTERPOSED(SHUNT_FALLBACK)};
#undef SHUNT_FALLBACK

}  // namespace

const char* fn_name(Fn f) { return kNames[int(f)]; }

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

void* resolve(Fn f) {
  const int i = int(f);
  if (t_resolving) return kFallbacks[i];
  const int saved_errno = errno;
  t_resolving = true;
  void* p = dlsym(RTLD_NEXT, kNames[i]);
  t_resolving = false;
  if (!p) p = kFallbacks[i];  // e.g. epoll_pwait2 on an older libc
  // Racing resolvers store the same address.
  g_real[i].store(p, std::memory_order_release);
  errno = saved_errno;
  return p;
}

void resolve_all() {
  for (int i = 0; i < kFnCount; ++i) {
    if (!g_real[i].load(std::memory_order_acquire)) resolve(Fn(i));
  }
}

}  // namespace shunt::preload
