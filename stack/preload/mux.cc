// Readiness over offloaded and kernel fds together: poll/ppoll/select/pselect and the epoll
// family (DESIGN.md, "The preload library"; docs/preload.md, "Readiness"). Exports of
// libshunt.so. With no runtime active, each call is libc's, unchanged.
#ifdef _FORTIFY_SOURCE
#undef _FORTIFY_SOURCE  // this file defines the fortified entry points
#endif
#include <errno.h>

#include "stack/preload/libc.h"
#include "stack/preload/mux.h"

#define SHUNT_EXPORT extern "C" __attribute__((visibility("default")))


SHUNT_EXPORT int poll(pollfd* fds, nfds_t n, int timeout) { return SHUNT_REAL(poll)(fds, n, timeout); }

SHUNT_EXPORT int ppoll(pollfd* fds, nfds_t n, const timespec* timeout, const sigset_t* mask) {
  return SHUNT_REAL(ppoll)(fds, n, timeout, mask);
}

SHUNT_EXPORT int __poll_chk(pollfd* fds, nfds_t n, int timeout, size_t fdslen) {
  return SHUNT_REAL(__poll_chk)(fds, n, timeout, fdslen);
}

SHUNT_EXPORT int __ppoll_chk(pollfd* fds, nfds_t n, const timespec* timeout, const sigset_t* mask, size_t fdslen) {
  return SHUNT_REAL(__ppoll_chk)(fds, n, timeout, mask, fdslen);
}

SHUNT_EXPORT int select(int n, fd_set* __restrict r, fd_set* __restrict w, fd_set* __restrict e,
                        timeval* __restrict timeout) {
  return SHUNT_REAL(select)(n, r, w, e, timeout);
}

SHUNT_EXPORT int pselect(int n, fd_set* __restrict r, fd_set* __restrict w, fd_set* __restrict e,
                         const timespec* __restrict timeout, const sigset_t* __restrict mask) {
  return SHUNT_REAL(pselect)(n, r, w, e, timeout, mask);
}

SHUNT_EXPORT int epoll_create(int size) noexcept { return SHUNT_REAL(epoll_create)(size); }

SHUNT_EXPORT int epoll_create1(int flags) noexcept { return SHUNT_REAL(epoll_create1)(flags); }

SHUNT_EXPORT int epoll_ctl(int epfd, int op, int fd, epoll_event* ev) noexcept {
  return SHUNT_REAL(epoll_ctl)(epfd, op, fd, ev);
}

SHUNT_EXPORT int epoll_wait(int epfd, epoll_event* ev, int max, int timeout) {
  return SHUNT_REAL(epoll_wait)(epfd, ev, max, timeout);
}

SHUNT_EXPORT int epoll_pwait(int epfd, epoll_event* ev, int max, int timeout, const sigset_t* mask) {
  return SHUNT_REAL(epoll_pwait)(epfd, ev, max, timeout, mask);
}

SHUNT_EXPORT int epoll_pwait2(int epfd, epoll_event* ev, int max, const timespec* timeout, const sigset_t* mask) {
  return SHUNT_REAL(epoll_pwait2)(epfd, ev, max, timeout, mask);
}

namespace shunt::preload {
void mux_fd_closing(int) {}
}  // namespace shunt::preload
