// The real libc functions behind the interposed ones. Each is resolved once with
// dlsym(RTLD_NEXT, name) -- all of them when the library loads, or one at a time when a call
// comes earlier (another library's constructor) -- and read afterwards with one atomic load.
// A call that arrives while this thread is inside dlsym (a malloc or loader hook calling back)
// goes straight to the system call, so resolution never recurses.
#pragma once
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>

// decltype(&::read) carries glibc's access attributes, which GCC warns it drops when the type is
// a template argument; the function type itself is what matters here.
#pragma GCC diagnostic ignored "-Wignored-attributes"

// The _FORTIFY_SOURCE entry points programs built with fortification call instead of read(),
// recv(), recvfrom(), poll() and ppoll(). glibc declares them only under fortification.
extern "C" {
ssize_t __read_chk(int fd, void* buf, size_t nbytes, size_t buflen);
ssize_t __recv_chk(int fd, void* buf, size_t len, size_t buflen, int flags);
ssize_t __recvfrom_chk(int fd, void* __restrict buf, size_t len, size_t buflen, int flags,
                       struct sockaddr* __restrict addr, socklen_t* __restrict addrlen);
int __poll_chk(struct pollfd* fds, nfds_t nfds, int timeout, size_t fdslen);
int __ppoll_chk(struct pollfd* fds, nfds_t nfds, const struct timespec* timeout, const __sigset_t* ss,
                size_t fdslen);
}

// Every libc function the library interposes (DESIGN.md, "The preload library").
#define SHUNT_INTERPOSED(X)                                                                  \
  X(socket) X(bind) X(listen) X(accept) X(accept4) X(connect)                                \
  X(send) X(sendto) X(sendmsg) X(sendmmsg) X(recv) X(recvfrom) X(recvmsg) X(recvmmsg)        \
  X(read) X(write) X(readv) X(writev) X(close) X(shutdown) X(dup) X(dup2) X(dup3)            \
  X(fcntl) X(fcntl64) X(ioctl) X(setsockopt) X(getsockopt) X(getsockname) X(getpeername)     \
  X(poll) X(ppoll) X(select) X(pselect)                                                      \
  X(epoll_create) X(epoll_create1) X(epoll_ctl) X(epoll_wait) X(epoll_pwait) X(epoll_pwait2) \
  X(fork) X(sendfile) X(splice) X(sigaction)                                                 \
  X(__read_chk) X(__recv_chk) X(__recvfrom_chk) X(__poll_chk) X(__ppoll_chk)

namespace shunt::preload {

enum class Fn : int {
#define SHUNT_FN_ENUM(name) name,
  SHUNT_INTERPOSED(SHUNT_FN_ENUM)
#undef SHUNT_FN_ENUM
      kCount
};
inline constexpr int kFnCount = int(Fn::kCount);

// The resolved addresses, null until resolved.
extern std::atomic<void*> g_real[kFnCount];

// Resolves one function (or returns its system-call fallback); errno is left untouched.
void* resolve(Fn f);
// Resolves every function; called once from the library's constructor.
void resolve_all();
// The exported name of `f` ("socket").
const char* fn_name(Fn f);

// Writes `n` bytes to stderr through libc's write (whole, retrying on EINTR); errno is preserved.
// The library's one way to print: a line is one call, so lines of threads do not mix.
void say(const char* s, size_t n);

template <typename T>
inline T real(Fn f) {
  void* p = g_real[int(f)].load(std::memory_order_acquire);
  if (__builtin_expect(p == nullptr, 0)) p = resolve(f);
  return reinterpret_cast<T>(p);
}

}  // namespace shunt::preload

// The libc implementation of `name`, e.g. SHUNT_REAL(read)(fd, buf, n).
#define SHUNT_REAL(name) (::shunt::preload::real<decltype(&::name)>(::shunt::preload::Fn::name))
