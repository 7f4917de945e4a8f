// The in-process socket API: POSIX socket semantics over one Stack, for the preload library and
// for tests. UDP (SOCK_DGRAM) and TCP (SOCK_STREAM) sockets. Handles are small integers private
// to this object. Linux is the reference for every errno and corner case. No call raises a
// signal: where Linux would raise SIGPIPE (send on a broken stream without MSG_NOSIGNAL), the
// call returns -EPIPE and raising the signal is the caller's business (the preload library).
#pragma once
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>

#include "stack/core/clock.h"

namespace shunt {

class Stack;

// One per stack. Every call returns >= 0 on success or -errno; it never touches errno.
class SocketApi {
 public:
  explicit SocketApi(Stack& stack);
  ~SocketApi();
  SocketApi(const SocketApi&) = delete;
  SocketApi& operator=(const SocketApi&) = delete;

  // AF_INET/AF_INET6, SOCK_DGRAM or SOCK_STREAM (+SOCK_NONBLOCK|SOCK_CLOEXEC).
  int socket(int domain, int type, int protocol);
  int bind(int s, const sockaddr* addr, socklen_t len);
  // UDP: sets the default peer (AF_UNSPEC disconnects). TCP: the active open; -EINPROGRESS on
  // a non-blocking socket, else waits for the handshake (-ECONNREFUSED, -ETIMEDOUT...).
  int connect(int s, const sockaddr* addr, socklen_t len);
  // TCP only: backlog clamped to [0, somaxconn]; accept/accept4 (flags SOCK_NONBLOCK|SOCK_CLOEXEC).
  int listen(int s, int backlog);
  int accept(int s, sockaddr* addr, socklen_t* len, int flags = 0);
  ssize_t sendto(int s, const void* buf, size_t len, int flags, const sockaddr* to, socklen_t tolen);
  ssize_t recvfrom(int s, void* buf, size_t len, int flags, sockaddr* from, socklen_t* fromlen);
  ssize_t send(int s, const void* buf, size_t len, int flags) { return sendto(s, buf, len, flags, nullptr, 0); }
  ssize_t recv(int s, void* buf, size_t len, int flags) { return recvfrom(s, buf, len, flags, nullptr, nullptr); }
  ssize_t sendmsg(int s, const msghdr* msg, int flags);
  ssize_t recvmsg(int s, msghdr* msg, int flags);
  int setsockopt(int s, int level, int name, const void* val, socklen_t len);
  int getsockopt(int s, int level, int name, void* val, socklen_t* len);
  int getsockname(int s, sockaddr* addr, socklen_t* len);
  int getpeername(int s, sockaddr* addr, socklen_t* len);
  int shutdown(int s, int how);
  int close(int s);
  int ioctl(int s, unsigned long request, void* arg);      // FIONREAD, SIOCOUTQ, FIONBIO
  int set_nonblocking(int s, bool on);
  // POLLIN | POLLOUT | POLLERR | POLLHUP (| POLLRDHUP for TCP) as poll(2) would report them.
  uint32_t poll_events(int s);
  // Is `s` a handle of this API?
  bool is_socket(int s) const;

  // What `shunt stat` shows of a socket (a netstat row), read without side effects.
  struct SocketInfo {
    int domain = AF_INET;     // AF_INET or AF_INET6 (the socket's own family)
    int type = SOCK_DGRAM;    // SOCK_DGRAM or SOCK_STREAM
    sockaddr_storage local{};   // as getsockname reports it (wildcard and port 0 if unbound)
    sockaddr_storage peer{};    // as getpeername reports it; family AF_UNSPEC when none
    // Linux's tcp_states.h numbering (1 ESTABLISHED ... 10 LISTEN, 11 CLOSING), as netstat and
    // ss show it; UDP: 1 when connected, 7 (CLOSE) otherwise.
    int state = 7;
    uint64_t recv_q = 0;  // TCP: bytes readable; UDP: memory of queued datagrams (netstat's rmem)
    uint64_t send_q = 0;  // TCP: bytes not yet acknowledged; UDP: 0 (nothing lingers)
  };
  // 0 and *out filled, or -EBADF.
  int socket_info(int s, SocketInfo* out) const;

  // A blocking call that cannot complete calls the waiter with its deadline (kNever, or from
  // SO_RCVTIMEO/SO_SNDTIMEO); the waiter makes progress (polls the stack, advances virtual
  // time, sleeps) and returns false to give up (the call then returns -EAGAIN, or -EINTR).
  using Waiter = std::function<bool(Nanos deadline)>;
  void set_waiter(Waiter w);
  // Called with the handle whenever a socket's readiness may have changed (for epoll later).
  using ReadinessHook = std::function<void(int s)>;
  void set_readiness_hook(ReadinessHook h);

  Stack& stack() { return stack_; }

  struct Impl;

 private:
  Stack& stack_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace shunt
