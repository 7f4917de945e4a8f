// The readiness side of the preload library (mux.cc): what the rest of the library tells it.
#pragma once

namespace shunt::preload {

// `fd` is about to be closed by the program (called before the real close, without the
// runtime's lock): drop it from every epoll set's offloaded members, and forget the registry of
// an epoll fd.
void mux_fd_closing(int fd);

}  // namespace shunt::preload
