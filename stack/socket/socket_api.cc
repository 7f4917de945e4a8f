// Stub: the implementation follows.
#include "stack/socket/socket_api.h"

#include <cerrno>

#include "stack/net/stack.h"

namespace shunt {

struct SocketApi::Impl {
  Waiter waiter;
  ReadinessHook hook;
};

SocketApi::SocketApi(Stack& stack) : stack_(stack), impl_(std::make_unique<Impl>()) {}
SocketApi::~SocketApi() = default;
int SocketApi::socket(int, int, int) { return -ENOSYS; }
int SocketApi::bind(int, const sockaddr*, socklen_t) { return -EBADF; }
int SocketApi::connect(int, const sockaddr*, socklen_t) { return -EBADF; }
ssize_t SocketApi::sendto(int, const void*, size_t, int, const sockaddr*, socklen_t) { return -EBADF; }
ssize_t SocketApi::recvfrom(int, void*, size_t, int, sockaddr*, socklen_t*) { return -EBADF; }
ssize_t SocketApi::sendmsg(int, const msghdr*, int) { return -EBADF; }
ssize_t SocketApi::recvmsg(int, msghdr*, int) { return -EBADF; }
int SocketApi::setsockopt(int, int, int, const void*, socklen_t) { return -EBADF; }
int SocketApi::getsockopt(int, int, int, void*, socklen_t*) { return -EBADF; }
int SocketApi::getsockname(int, sockaddr*, socklen_t*) { return -EBADF; }
int SocketApi::getpeername(int, sockaddr*, socklen_t*) { return -EBADF; }
int SocketApi::shutdown(int, int) { return -EBADF; }
int SocketApi::close(int) { return -EBADF; }
int SocketApi::ioctl(int, unsigned long, void*) { return -EBADF; }
int SocketApi::set_nonblocking(int, bool) { return -EBADF; }
uint32_t SocketApi::poll_events(int) { return 0; }
bool SocketApi::is_socket(int) const { return false; }
void SocketApi::set_waiter(Waiter w) { impl_->waiter = std::move(w); }
void SocketApi::set_readiness_hook(ReadinessHook h) { impl_->hook = std::move(h); }

}  // namespace shunt
