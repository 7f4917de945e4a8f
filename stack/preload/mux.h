// The readiness side of the preload library (mux.cc): what the rest of the library tells it.
#pragma once

namespace shunt::preload {

// `fd` is about to be closed by the program (called before the real close, without the
// runtime's lock): drop it from every epoll set's offloaded members, and forget the registry of
// an epoll fd. Cheap (one byte load) for an fd that is neither.
void mux_fd_closing(int fd);

// Under the runtime's lock: `fd`, a socket the stack held, was handed to the kernel (placement
// said kernel). Every epoll set that holds it as an offloaded member gets it as a kernel member
// instead (the real epoll_ctl ADD with the same events and data). epoll_wait on such a set also
// does this by itself when it notices, so calling this only makes it immediate.
void mux_fd_to_kernel_locked(int fd);

}  // namespace shunt::preload
