// POSIX semantics over the UDP and TCP modules. Linux is the reference for every errno and
// corner (the function named in a comment is where Linux decides it). The TCP engine is
// non-blocking and answers -errno; this layer parses sockaddrs, blocks through the waiter
// (connect, accept, send until all is queued, recv and MSG_WAITALL, close with SO_LINGER) and
// keeps the socket-level state Linux keeps in struct socket (SS_CONNECTING, timeouts).
#include "stack/socket/socket_api.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/time.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <vector>

#include "stack/net/stack.h"
#include "stack/net/tcp/tcp.h"
#include "stack/net/udp.h"

namespace shunt {

namespace {

constexpr socklen_t kSin6LenRfc2133 = 24;  // sockaddr_in6 without sin6_scope_id
constexpr size_t kIovMax = 1024;           // UIO_MAXIOV
constexpr int kSockTypeMask = 0xf;
constexpr int kSockMax = 11;
constexpr Nanos kForever = -1;  // SO_RCVTIMEO/SO_SNDTIMEO unset
constexpr int kSomaxconn = 4096;  // net.core.somaxconn

Family family_of(int domain) { return domain == AF_INET6 ? Family::kV6 : Family::kV4; }

// IPv6 addresses that need a scope id (Linux __ipv6_addr_needs_scope_id).
bool needs_scope(const Ipv6Addr& a) {
  return a.is_link_local() || (a.is_multicast() && (a.b[1] & 0x0f) <= 2);
}

Ipv4Addr v4_of(const in_addr& a) { return Ipv4Addr{ntohl(a.s_addr)}; }
Ipv6Addr v6_of(const in6_addr& a) { return Ipv6Addr::read(reinterpret_cast<const uint8_t*>(&a)); }
// Our internal form: an IPv4-mapped IPv6 address becomes IPv4.
IpAddr internal(const Ipv6Addr& a) { return unmapped(a); }
Ipv6Addr mapped(Ipv4Addr a) {
  Ipv6Addr m;
  m.b[10] = m.b[11] = 0xff;
  a.write(m.b.data() + 12);
  return m;
}

// Writes `a`/`port` as the socket's family sees it (IPv4 as v4-mapped on an IPv6 socket),
// truncated to *len; *len becomes the full size (getsockname(2)).
void put_sockaddr(Family fam, const IpAddr& a, uint16_t port, sockaddr* out, socklen_t* len) {
  if (!out || !len) return;
  if (fam == Family::kV4) {
    sockaddr_in sin;
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    sin.sin_addr.s_addr = htonl(a.is_v4() ? a.v4.v : 0);
    std::memset(sin.sin_zero, 0, sizeof sin.sin_zero);
    if (*len >= sizeof sin) {
      std::memcpy(out, &sin, sizeof sin);
    } else {
      std::memcpy(out, &sin, *len);
    }
    *len = sizeof sin;
    return;
  }
  sockaddr_in6 sin6;
  sin6.sin6_family = AF_INET6;
  sin6.sin6_port = htons(port);
  sin6.sin6_flowinfo = 0;
  const Ipv6Addr v6 = a.is_v4() ? mapped(a.v4) : a.v6;
  v6.write(reinterpret_cast<uint8_t*>(&sin6.sin6_addr));
  sin6.sin6_scope_id = !a.is_v4() && needs_scope(v6) ? kUdpIfIndex : 0;
  if (*len >= sizeof sin6) {
    std::memcpy(out, &sin6, sizeof sin6);
  } else {
    std::memcpy(out, &sin6, *len);
  }
  *len = sizeof sin6;
}

// A control message builder over msg_control (sets MSG_CTRUNC when one does not fit).
class CmsgWriter {
 public:
  explicit CmsgWriter(msghdr* m) : m_(m) {}
  void put(int level, int type, const void* data, size_t len) {
    if (!m_ || !m_->msg_control) {
      if (m_ && m_->msg_controllen == 0) return;
      if (m_) m_->msg_flags |= MSG_CTRUNC;
      return;
    }
    const size_t space = CMSG_SPACE(len);
    if (used_ + CMSG_LEN(len) > m_->msg_controllen) {
      m_->msg_flags |= MSG_CTRUNC;
      return;
    }
    auto* c = reinterpret_cast<cmsghdr*>(static_cast<uint8_t*>(m_->msg_control) + used_);
    c->cmsg_level = level;
    c->cmsg_type = type;
    c->cmsg_len = CMSG_LEN(len);
    std::memcpy(CMSG_DATA(c), data, len);
    used_ += std::min(space, m_->msg_controllen - used_);
  }
  void finish() {
    if (m_) m_->msg_controllen = used_;
  }

 private:
  msghdr* m_;
  size_t used_ = 0;
};

// An integer option as Linux's IP level reads it (do_ip_setsockopt): an int, or a single
// byte when shorter; no bytes at all reads as 0.
int ip_int(const void* val, socklen_t len) {
  if (len >= sizeof(int)) {
    int v;
    std::memcpy(&v, val, sizeof v);
    return v;
  }
  if (len >= 1) return *static_cast<const unsigned char*>(val);
  return 0;
}

int read_int(const void* val) {
  int v;
  std::memcpy(&v, val, sizeof v);
  return v;
}

// Writes an int option value truncated to *len (sock_getsockopt, ipv6_getsockopt).
int put_int(void* val, socklen_t* len, int v) {
  if (int(*len) < 0) return -EINVAL;
  socklen_t n = std::min<socklen_t>(*len, sizeof(int));
  if (n && !val) return -EFAULT;
  std::memcpy(val, &v, n);
  *len = n;
  return 0;
}

// do_ip_getsockopt: a short buffer gets one byte when the value fits in it.
int put_ip_int(void* val, socklen_t* len, int v) {
  if (int(*len) < 0) return -EINVAL;
  if (*len < sizeof(int) && *len > 0 && v >= 0 && v <= 255) {
    if (!val) return -EFAULT;
    *static_cast<unsigned char*>(val) = uint8_t(v);
    *len = 1;
    return 0;
  }
  return put_int(val, len, v);
}

timeval to_timeval(Nanos t) {
  timeval tv{};
  if (t > 0) {
    tv.tv_sec = time_t(t / kSecond);
    tv.tv_usec = suseconds_t((t % kSecond) / kMicro);
  }
  return tv;
}

}  // namespace

struct SocketApi::Impl final : UdpObserver, TcpSocketObserver {
  struct Sock {
    UdpSocket* u = nullptr;  // a datagram socket, or
    TcpSocket* t = nullptr;  // a stream socket
    int handle = -1;
    int domain = AF_INET;
    bool nonblock = false;
    bool cloexec = false;
    Nanos rcvtimeo = kForever;
    Nanos sndtimeo = kForever;
    // TCP: connect() started and its outcome not yet reported by connect() (SS_CONNECTING).
    bool connecting = false;
    // TCP: SO_LINGER as set, for close() on a blocking socket to wait (the engine sends RST
    // for a zero linger time itself).
    bool linger_on = false;
    int linger_secs = 0;
    bool used() const { return u || t; }
  };

  Impl(Stack& s) : stack(s), udp(s.udp()), tcp(s.tcp()) {}
  ~Impl() {
    for (auto& s : socks) {
      if (s.u) udp.close(s.u);
      if (s.t) tcp.close(*s.t);
    }
  }

  void on_udp_readiness(UdpSocket& s) override {
    if (hook) hook(s.handle);
  }
  void on_tcp_readiness(TcpSocket& s) override {
    if (hook) hook(int(tcp.user(s)));
  }
  void changed(const Sock& s) {
    if (hook) hook(s.handle);
  }

  Sock* get(int s) {
    if (s < 0 || size_t(s) >= socks.size() || !socks[size_t(s)].used()) return nullptr;
    return &socks[size_t(s)];
  }
  // The lowest free handle, as fds are; the slot is reset.
  int alloc_handle() {
    size_t h = 0;
    while (h < socks.size() && socks[h].used()) ++h;
    if (h == socks.size()) socks.emplace_back();
    socks[h] = Sock{};
    socks[h].handle = int(h);
    return int(h);
  }
  int adopt_tcp(TcpSocket* t, int domain, int flags) {
    const int h = alloc_handle();
    Sock& k = socks[size_t(h)];
    k.t = t;
    k.domain = domain;
    k.nonblock = flags & SOCK_NONBLOCK;
    k.cloexec = flags & SOCK_CLOEXEC;
    tcp.set_user(*t, uint64_t(h));
    tcp.set_observer(*t, this);
    return h;
  }

  // A blocking call waits for progress until `deadline`: false and *err set when it gives up.
  bool wait(Nanos deadline, int* err) {
    if (!waiter || stack.now() >= deadline) {
      *err = -EAGAIN;
      return false;
    }
    if (!waiter(deadline)) {
      *err = stack.now() >= deadline ? -EAGAIN : -EINTR;
      return false;
    }
    return true;
  }
  Nanos deadline_of(Nanos timeo) const {
    if (timeo == kForever) return kNever;
    return stack.now() + timeo;
  }

  ssize_t send(int s, const iovec* iov, size_t iovcnt, int flags, const sockaddr* to, socklen_t tolen,
               const msghdr* control);
  ssize_t recv(int s, const iovec* iov, size_t iovcnt, int flags, sockaddr* from, socklen_t* fromlen,
               msghdr* msg);
  void put_recv_cmsgs(const Sock& k, const UdpRxInfo& info, msghdr* msg);
  int set_ip(Sock& k, int name, const void* val, socklen_t len);
  int set_ipv6(Sock& k, int name, const void* val, socklen_t len);
  int set_socket(Sock& k, int name, const void* val, socklen_t len);
  int get_ip(Sock& k, int name, void* val, socklen_t* len);
  int get_ipv6(Sock& k, int name, void* val, socklen_t* len);
  int get_socket(Sock& k, int name, void* val, socklen_t* len);

  // TCP (SOCK_STREAM).
  int tcp_connect(int s, const IpAddr& dst, uint16_t port);
  int tcp_accept(int s, sockaddr* addr, socklen_t* len, int flags);
  ssize_t tcp_send(int s, const iovec* iov, size_t iovcnt, int flags);
  ssize_t tcp_recv(int s, const iovec* iov, size_t iovcnt, int flags);
  int tcp_close(int s);
  int tcp_setsockopt(Sock& k, int level, int name, const void* val, socklen_t len);
  int tcp_getsockopt(Sock& k, int level, int name, void* val, socklen_t* len);
  int tcp_ioctl(Sock& k, unsigned long request, void* arg);

  Stack& stack;
  Udp& udp;
  Tcp& tcp;
  std::vector<Sock> socks;  // indexed by handle; neither u nor t: free
  Waiter waiter;
  ReadinessHook hook;
};

SocketApi::SocketApi(Stack& stack) : stack_(stack), impl_(std::make_unique<Impl>(stack)) {}
SocketApi::~SocketApi() = default;

void SocketApi::set_waiter(Waiter w) { impl_->waiter = std::move(w); }
void SocketApi::set_readiness_hook(ReadinessHook h) { impl_->hook = std::move(h); }
bool SocketApi::is_socket(int s) const { return impl_->get(s) != nullptr; }

int SocketApi::socket_info(int s, SocketInfo* out) const {
  const Impl::Sock* k = impl_->get(s);
  if (!k) return -EBADF;
  SocketInfo info;
  info.domain = k->domain;
  socklen_t len = sizeof info.local;
  auto* local = reinterpret_cast<sockaddr*>(&info.local);
  auto* peer = reinterpret_cast<sockaddr*>(&info.peer);
  if (k->t) {
    const Tcp& tcp = impl_->tcp;
    const TcpSocket& t = *k->t;
    info.type = SOCK_STREAM;
    IpAddr a;
    uint16_t port = 0;
    tcp.local_name(t, &a, &port);
    put_sockaddr(tcp.family(t), a, port, local, &len);
    // Linux's numbering (include/net/tcp_states.h), indexed by TcpState.
    static constexpr int kLinuxState[] = {7, 10, 2, 3, 1, 4, 5, 8, 11, 9, 6};
    const TcpState st = tcp.state(t);
    info.state = size_t(st) < std::size(kLinuxState) ? kLinuxState[size_t(st)] : 7;
    if (st != TcpState::kClosed && st != TcpState::kListen && tcp.peer_name(t, &a, &port) == 0) {
      len = sizeof info.peer;
      put_sockaddr(tcp.family(t), a, port, peer, &len);
    }
    if (!tcp.is_listening(t)) {
      info.recv_q = tcp.rx_queued(t);
      info.send_q = tcp.tx_queued(t);
    }
  } else {
    const UdpSocket& u = *k->u;
    info.type = SOCK_DGRAM;
    put_sockaddr(u.family, u.local_addr, u.local_port, local, &len);
    if (u.connected) {
      len = sizeof info.peer;
      put_sockaddr(u.family, u.remote_addr, u.remote_port, peer, &len);
    }
    info.state = u.connected ? 1 : 7;
    info.recv_q = u.rmem;
  }
  *out = info;
  return 0;
}

// --- socket, close.

int SocketApi::socket(int domain, int type, int protocol) {
  if (domain != AF_INET && domain != AF_INET6) return -EAFNOSUPPORT;
  // __sys_socket: only SOCK_NONBLOCK and SOCK_CLOEXEC may ride along with the type.
  if (type & ~(kSockTypeMask | SOCK_NONBLOCK | SOCK_CLOEXEC)) return -EINVAL;
  const int base = type & kSockTypeMask;
  if (base >= kSockMax) return -EINVAL;
  // inet_create: a type we have no protocol for, then a protocol the type does not offer.
  if (base != SOCK_DGRAM && base != SOCK_STREAM) return -ESOCKTNOSUPPORT;
  if (protocol < 0 || protocol >= IPPROTO_MAX) return -EINVAL;
  const int proto = base == SOCK_STREAM ? IPPROTO_TCP : IPPROTO_UDP;
  if (protocol != 0 && protocol != proto) return -EPROTONOSUPPORT;

  if (base == SOCK_STREAM) {
    TcpSocket* t = impl_->tcp.open(family_of(domain));
    if (!t) return -ENOBUFS;  // the per-stack socket limit
    return impl_->adopt_tcp(t, domain, type);
  }
  const int h = impl_->alloc_handle();
  Impl::Sock& k = impl_->socks[size_t(h)];
  k.u = impl_->udp.open(family_of(domain));
  k.u->observer = impl_.get();
  k.u->handle = h;
  k.domain = domain;
  k.nonblock = type & SOCK_NONBLOCK;
  k.cloexec = type & SOCK_CLOEXEC;
  return h;
}

int SocketApi::close(int s) {
  Impl::Sock* k = impl_->get(s);
  if (!k) return -EBADF;
  if (k->t) return impl_->tcp_close(s);
  impl_->udp.close(k->u);
  *k = Impl::Sock{};
  return 0;
}

// --- bind, connect, names.

int SocketApi::bind(int s, const sockaddr* addr, socklen_t len) {
  Impl::Sock* k = impl_->get(s);
  if (!k) return -EBADF;
  if (k->t) {
    Tcp& tcp = impl_->tcp;
    TcpSocket& t = *k->t;
    if (tcp.family(t) == Family::kV4) {
      // inet_bind, as for UDP.
      if (len < sizeof(sockaddr_in)) return -EINVAL;
      if (!addr) return -EFAULT;
      sockaddr_in sin;
      std::memcpy(&sin, addr, sizeof sin);
      if (sin.sin_family != AF_INET && (sin.sin_family != AF_UNSPEC || sin.sin_addr.s_addr != htonl(INADDR_ANY))) {
        return -EAFNOSUPPORT;
      }
      return tcp.bind(t, IpAddr(v4_of(sin.sin_addr)), ntohs(sin.sin_port));
    }
    // inet6_bind.
    if (len < kSin6LenRfc2133) return -EINVAL;
    if (!addr) return -EFAULT;
    sockaddr_in6 sin6{};
    std::memcpy(&sin6, addr, std::min<size_t>(len, sizeof sin6));
    if (sin6.sin6_family != AF_INET6) return -EAFNOSUPPORT;
    const Ipv6Addr a = v6_of(sin6.sin6_addr);
    IpAddr bound;
    uint16_t bound_port = 0;
    tcp.local_name(t, &bound, &bound_port);
    if (bound_port != 0) return -EINVAL;
    if (a.is_v4_mapped()) {
      int v6only = 0;
      socklen_t l = sizeof v6only;
      tcp.getsockopt(t, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &l);
      if (v6only) return -EINVAL;
    } else if (needs_scope(a)) {
      if (len < sizeof(sockaddr_in6) || sin6.sin6_scope_id == 0) return -EINVAL;
    }
    return tcp.bind(t, internal(a), ntohs(sin6.sin6_port));
  }
  UdpSocket& u = *k->u;
  if (u.family == Family::kV4) {
    // inet_bind: AF_UNSPEC passes only with INADDR_ANY, for old programs.
    if (len < sizeof(sockaddr_in)) return -EINVAL;
    if (!addr) return -EFAULT;
    sockaddr_in sin;
    std::memcpy(&sin, addr, sizeof sin);
    if (sin.sin_family != AF_INET && (sin.sin_family != AF_UNSPEC || sin.sin_addr.s_addr != htonl(INADDR_ANY))) {
      return -EAFNOSUPPORT;
    }
    return impl_->udp.bind(u, IpAddr(v4_of(sin.sin_addr)), ntohs(sin.sin_port));
  }
  // inet6_bind.
  if (len < kSin6LenRfc2133) return -EINVAL;
  if (!addr) return -EFAULT;
  sockaddr_in6 sin6{};
  std::memcpy(&sin6, addr, std::min<size_t>(len, sizeof sin6));
  if (sin6.sin6_family != AF_INET6) return -EAFNOSUPPORT;
  const Ipv6Addr a = v6_of(sin6.sin6_addr);
  if (u.is_bound()) return -EINVAL;
  if (a.is_v4_mapped()) {
    if (u.v6only) return -EINVAL;  // an IPv6-only socket has no IPv4 side to bind
  } else if (needs_scope(a)) {
    // One interface: any scope id names it, but one must be given.
    if (len < sizeof(sockaddr_in6) || sin6.sin6_scope_id == 0) return -EINVAL;
  }
  return impl_->udp.bind(u, internal(a), ntohs(sin6.sin6_port));
}

int SocketApi::connect(int s, const sockaddr* addr, socklen_t len) {
  Impl::Sock* k = impl_->get(s);
  if (!k) return -EBADF;
  if (k->t) {
    Tcp& tcp = impl_->tcp;
    TcpSocket& t = *k->t;
    // inet_stream_connect.
    if (len < sizeof(sa_family_t)) return -EINVAL;
    if (!addr) return -EFAULT;
    // AF_UNSPEC would disconnect (tcp_disconnect); the engine has no such operation.
    if (addr->sa_family == AF_UNSPEC) return -EOPNOTSUPP;
    if (tcp.family(t) == Family::kV4) {
      // tcp_v4_connect.
      if (len < sizeof(sockaddr_in)) return -EINVAL;
      sockaddr_in sin;
      std::memcpy(&sin, addr, sizeof sin);
      if (sin.sin_family != AF_INET) return -EAFNOSUPPORT;
      const Ipv4Addr a = v4_of(sin.sin_addr);
      // A multicast or broadcast route cannot carry a connection.
      if (a.is_multicast() || a.is_broadcast() || impl_->stack.is_broadcast_v4(a)) return -ENETUNREACH;
      return impl_->tcp_connect(s, IpAddr(a), ntohs(sin.sin_port));
    }
    // tcp_v6_connect: an AF_INET address is too short, then the wrong family.
    if (len < kSin6LenRfc2133) return -EINVAL;
    if (addr->sa_family != AF_INET6) return -EAFNOSUPPORT;
    sockaddr_in6 sin6{};
    std::memcpy(&sin6, addr, std::min<size_t>(len, sizeof sin6));
    const Ipv6Addr a = v6_of(sin6.sin6_addr);
    if (a.is_multicast()) return -ENETUNREACH;
    if (a.is_v4_mapped()) {
      int v6only = 0;
      socklen_t l = sizeof v6only;
      tcp.getsockopt(t, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &l);
      if (v6only) return -ENETUNREACH;
    } else if (needs_scope(a)) {
      if (len < sizeof(sockaddr_in6) || sin6.sin6_scope_id == 0) return -EINVAL;
    }
    return impl_->tcp_connect(s, internal(a), ntohs(sin6.sin6_port));
  }
  UdpSocket& u = *k->u;
  // inet_dgram_connect.
  if (len < sizeof(sa_family_t)) return -EINVAL;
  if (!addr) return -EFAULT;
  if (addr->sa_family == AF_UNSPEC) {
    impl_->udp.disconnect(u);
    impl_->changed(*k);
    return 0;
  }
  IpAddr dst;
  uint16_t port;
  if (addr->sa_family == AF_INET) {
    // __ip6_datagram_connect hands AF_INET on an IPv6 socket to IPv4, unless IPv6-only.
    if (u.family == Family::kV6 && u.v6only) return -EAFNOSUPPORT;
    if (len < sizeof(sockaddr_in)) return -EINVAL;
    sockaddr_in sin;
    std::memcpy(&sin, addr, sizeof sin);
    dst = v4_of(sin.sin_addr);
    port = ntohs(sin.sin_port);
  } else {
    if (u.family == Family::kV4) {
      if (len < sizeof(sockaddr_in)) return -EINVAL;
      return -EAFNOSUPPORT;
    }
    if (len < kSin6LenRfc2133) return -EINVAL;
    if (addr->sa_family != AF_INET6) return -EAFNOSUPPORT;
    sockaddr_in6 sin6{};
    std::memcpy(&sin6, addr, std::min<size_t>(len, sizeof sin6));
    const Ipv6Addr a = v6_of(sin6.sin6_addr);
    if (a.is_v4_mapped() && u.v6only) return -ENETUNREACH;
    dst = internal(a);
    port = ntohs(sin6.sin6_port);
  }
  const int r = impl_->udp.connect(u, dst, port);
  if (r == 0) impl_->changed(*k);
  return r;
}

int SocketApi::getsockname(int s, sockaddr* addr, socklen_t* len) {
  Impl::Sock* k = impl_->get(s);
  if (!k) return -EBADF;
  if (!addr || !len) return -EFAULT;
  if (int(*len) < 0) return -EINVAL;
  if (k->t) {
    IpAddr a;
    uint16_t port = 0;
    const int r = impl_->tcp.local_name(*k->t, &a, &port);
    if (r < 0) return r;
    put_sockaddr(impl_->tcp.family(*k->t), a, port, addr, len);
    return 0;
  }
  put_sockaddr(k->u->family, k->u->local_addr, k->u->local_port, addr, len);
  return 0;
}

int SocketApi::getpeername(int s, sockaddr* addr, socklen_t* len) {
  Impl::Sock* k = impl_->get(s);
  if (!k) return -EBADF;
  if (k->t) {
    // inet_getname: no peer while closed or still in SYN_SENT.
    const TcpState st = impl_->tcp.state(*k->t);
    if (st == TcpState::kClosed || st == TcpState::kSynSent || st == TcpState::kListen) return -ENOTCONN;
    IpAddr a;
    uint16_t port = 0;
    const int r = impl_->tcp.peer_name(*k->t, &a, &port);
    if (r < 0) return r;
    if (!addr || !len) return -EFAULT;
    if (int(*len) < 0) return -EINVAL;
    put_sockaddr(impl_->tcp.family(*k->t), a, port, addr, len);
    return 0;
  }
  if (!k->u->connected) return -ENOTCONN;
  if (!addr || !len) return -EFAULT;
  if (int(*len) < 0) return -EINVAL;
  put_sockaddr(k->u->family, k->u->remote_addr, k->u->remote_port, addr, len);
  return 0;
}

// --- send.

ssize_t SocketApi::sendto(int s, const void* buf, size_t len, int flags, const sockaddr* to, socklen_t tolen) {
  iovec iov{const_cast<void*>(buf), len};
  return impl_->send(s, &iov, 1, flags, to, tolen, nullptr);
}

ssize_t SocketApi::sendmsg(int s, const msghdr* msg, int flags) {
  if (!impl_->get(s)) return -EBADF;
  if (!msg) return -EFAULT;
  if (msg->msg_iovlen > kIovMax) return -EMSGSIZE;
  if (msg->msg_iovlen && !msg->msg_iov) return -EFAULT;
  return impl_->send(s, msg->msg_iov, msg->msg_iovlen, flags, static_cast<const sockaddr*>(msg->msg_name),
                     msg->msg_namelen, msg);
}

ssize_t SocketApi::Impl::send(int s, const iovec* iov, size_t iovcnt, int flags, const sockaddr* to, socklen_t tolen,
                              const msghdr* control) {
  Sock* k = get(s);
  if (!k) return -EBADF;
  // A stream socket ignores the destination and ancillary data (tcp_sendmsg).
  if (k->t) return tcp_send(s, iov, iovcnt, flags);
  size_t len = 0;
  for (size_t i = 0; i < iovcnt; ++i) {
    if (iov[i].iov_len > size_t(SSIZE_MAX) - len) return -EINVAL;
    if (iov[i].iov_len && !iov[i].iov_base) return -EFAULT;
    len += iov[i].iov_len;
  }
  if (flags & MSG_OOB) return -EOPNOTSUPP;  // udp_sendmsg
  UdpSocket* u = k->u;

  // The destination, if given (udp_sendmsg, udpv6_sendmsg).
  Udp::Dest dest;
  const Udp::Dest* dst = nullptr;
  if (to && tolen) {
    if (u->family == Family::kV4 || to->sa_family == AF_INET) {
      if (u->family == Family::kV6 && u->v6only) return -ENETUNREACH;
      if (tolen < sizeof(sockaddr_in)) return -EINVAL;
      sockaddr_in sin;
      std::memcpy(&sin, to, sizeof sin);
      if (sin.sin_family != AF_INET && sin.sin_family != AF_UNSPEC) return -EAFNOSUPPORT;
      dest.addr = v4_of(sin.sin_addr);
      dest.port = ntohs(sin.sin_port);
      dst = &dest;
    } else if (to->sa_family == AF_INET6) {
      if (tolen < kSin6LenRfc2133) return -EINVAL;
      sockaddr_in6 sin6{};
      std::memcpy(&sin6, to, std::min<size_t>(tolen, sizeof sin6));
      const Ipv6Addr a = v6_of(sin6.sin6_addr);
      if (a.is_v4_mapped() && u->v6only) return -ENETUNREACH;
      dest.addr = internal(a);
      dest.port = ntohs(sin6.sin6_port);
      dst = &dest;
    } else if (to->sa_family != AF_UNSPEC) {
      return -EINVAL;
    }
  }

  // Ancillary data (sendmsg): a source address, a TTL or TOS for this datagram.
  IpAddr src;
  Udp::SendOptions opt;
  if (control && control->msg_control && control->msg_controllen) {
    if (control->msg_controllen < sizeof(cmsghdr)) return -EINVAL;
    for (const cmsghdr* c = CMSG_FIRSTHDR(control); c; c = CMSG_NXTHDR(const_cast<msghdr*>(control), const_cast<cmsghdr*>(c))) {
      if (c->cmsg_len < sizeof(cmsghdr) ||
          c->cmsg_len > control->msg_controllen - size_t(reinterpret_cast<const uint8_t*>(c) -
                                                         static_cast<const uint8_t*>(control->msg_control))) {
        return -EINVAL;
      }
      const size_t dlen = c->cmsg_len - CMSG_LEN(0);
      const void* d = CMSG_DATA(c);
      if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
        if (dlen < sizeof(in_pktinfo)) return -EINVAL;
        in_pktinfo pi;
        std::memcpy(&pi, d, sizeof pi);
        src = v4_of(pi.ipi_spec_dst);
        opt.src = &src;
      } else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TTL) {
        if (dlen < sizeof(int)) return -EINVAL;
        const int v = read_int(d);
        if (v < 1 || v > 255) return -EINVAL;
        opt.ttl = v;
      } else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TOS) {
        if (dlen < 1) return -EINVAL;
        opt.tos = dlen >= sizeof(int) ? read_int(d) & 0xff : *static_cast<const uint8_t*>(d);
      } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO && u->family == Family::kV6) {
        if (dlen < sizeof(in6_pktinfo)) return -EINVAL;
        in6_pktinfo pi;
        std::memcpy(&pi, d, sizeof pi);
        src = internal(v6_of(pi.ipi6_addr));
        opt.src = &src;
      } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_HOPLIMIT && u->family == Family::kV6) {
        if (dlen < sizeof(int)) return -EINVAL;
        const int v = read_int(d);
        if (v < -1 || v > 255) return -EINVAL;
        opt.ttl = v;
      } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_TCLASS && u->family == Family::kV6) {
        if (dlen < sizeof(int)) return -EINVAL;
        const int v = read_int(d);
        if (v < -1 || v > 255) return -EINVAL;
        opt.tos = v < 0 ? 0 : v;
      } else {
        return -EINVAL;
      }
    }
  }

  const bool nonblock = k->nonblock || (flags & MSG_DONTWAIT);
  Nanos deadline = 0;
  bool waited = false;
  while (true) {
    const ssize_t r = udp.send(*u, iov, iovcnt, len, dst, opt.src || opt.ttl >= 0 || opt.tos >= 0 ? &opt : nullptr);
    // Out of buffers: the send buffer is full, in effect. Wait for the pool to drain.
    if (r != -ENOBUFS || stack.pool().available() >= Udp::buffers_for(len)) return r;
    if (nonblock) return -EAGAIN;
    if (!waiter) return -ENOBUFS;
    if (!waited) {
      deadline = deadline_of(k->sndtimeo);
      waited = true;
    }
    int err;
    if (!wait(deadline, &err)) return err;
    k = get(s);
    if (!k) return -EBADF;
    u = k->u;
  }
}

// --- recv.

ssize_t SocketApi::recvfrom(int s, void* buf, size_t len, int flags, sockaddr* from, socklen_t* fromlen) {
  iovec iov{buf, len};
  return impl_->recv(s, &iov, 1, flags, from, fromlen, nullptr);
}

ssize_t SocketApi::recvmsg(int s, msghdr* msg, int flags) {
  if (!impl_->get(s)) return -EBADF;
  if (!msg) return -EFAULT;
  if (msg->msg_iovlen > kIovMax) return -EMSGSIZE;
  if (msg->msg_iovlen && !msg->msg_iov) return -EFAULT;
  msg->msg_flags = 0;
  socklen_t namelen = msg->msg_namelen;
  ssize_t r = impl_->recv(s, msg->msg_iov, msg->msg_iovlen, flags, static_cast<sockaddr*>(msg->msg_name),
                          msg->msg_name ? &namelen : nullptr, msg);
  if (r >= 0) msg->msg_namelen = msg->msg_name ? namelen : 0;
  return r;
}

ssize_t SocketApi::Impl::recv(int s, const iovec* iov, size_t iovcnt, int flags, sockaddr* from, socklen_t* fromlen,
                              msghdr* msg) {
  Sock* k = get(s);
  if (!k) return -EBADF;
  if (k->t) {
    // tcp_recvmsg names no sender: the address length comes back 0, and no control data.
    if (fromlen && int(*fromlen) < 0) return -EINVAL;
    const ssize_t r = tcp_recv(s, iov, iovcnt, flags);
    if (r >= 0) {
      if (fromlen) *fromlen = 0;
      if (msg) msg->msg_controllen = 0;
    }
    return r;
  }
  if (flags & MSG_ERRQUEUE) return -EAGAIN;  // no error queue (IP_RECVERR is not offered)
  const bool nonblock = k->nonblock || (flags & MSG_DONTWAIT);
  Nanos deadline = 0;
  bool waited = false;
  while (true) {
    UdpSocket& u = *k->u;
    // __skb_recv_udp: a pending error is reported (and cleared) before any datagram.
    if (u.error) {
      const int e = u.error;
      u.error = 0;
      changed(*k);
      return -e;
    }
    if (const PacketBuf* p = u.rxq.front()) {
      if (fromlen && int(*fromlen) < 0) return -EINVAL;
      for (size_t i = 0; i < iovcnt; ++i) {
        if (iov[i].iov_len && !iov[i].iov_base) return -EFAULT;
      }
      const UdpRxInfo info = Udp::rx_info(*p);
      const size_t copied = Udp::copy_payload(*p, iov, iovcnt);
      if (msg && copied < info.payload_len) msg->msg_flags |= MSG_TRUNC;
      if (from && fromlen) put_sockaddr(u.family, info.src, info.src_port, from, fromlen);
      if (msg) put_recv_cmsgs(*k, info, msg);
      if (!(flags & MSG_PEEK)) {
        udp.pop_rx(u);
        if (u.rxq.empty()) changed(*k);
      }
      // MSG_TRUNC asks for the datagram's real length (udp_recvmsg).
      return ssize_t((flags & MSG_TRUNC) ? info.payload_len : copied);
    }
    if (nonblock || k->rcvtimeo == 0) return -EAGAIN;
    if (u.shut_rd) return 0;  // __skb_wait_for_more_packets: shut down for reading
    if (!waited) {
      deadline = deadline_of(k->rcvtimeo);  // the call's start: nothing has run since
      waited = true;
    }
    int err;
    if (!wait(deadline, &err)) return err;
    k = get(s);
    if (!k) return -EBADF;
  }
}

void SocketApi::Impl::put_recv_cmsgs(const Sock& k, const UdpRxInfo& info, msghdr* msg) {
  if (!msg->msg_control && msg->msg_controllen == 0) {
    msg->msg_controllen = 0;
    return;
  }
  const UdpSocket& u = *k.u;
  CmsgWriter w(msg);
  const bool v4 = info.dst.is_v4();
  if (v4) {
    if (u.recv_pktinfo) {
      in_pktinfo pi{};
      pi.ipi_ifindex = kUdpIfIndex;
      pi.ipi_addr.s_addr = htonl(info.dst.v4.v);
      // The local address a reply would come from (Linux fib_compute_spec_dst).
      Ipv4Addr spec = info.dst.v4;
      if (!stack.is_local_v4(spec)) {
        auto s = stack.source_for(info.src);
        spec = s && s->is_v4() ? s->v4 : Ipv4Addr{};
      }
      pi.ipi_spec_dst.s_addr = htonl(spec.v);
      w.put(IPPROTO_IP, IP_PKTINFO, &pi, sizeof pi);
    }
    if (u.recv_ttl) {
      int ttl = info.ttl;
      w.put(IPPROTO_IP, IP_TTL, &ttl, sizeof ttl);
    }
    if (u.recv_tos) {
      uint8_t tos = info.tos;
      w.put(IPPROTO_IP, IP_TOS, &tos, sizeof tos);
    }
  }
  if (u.family == Family::kV6) {
    if (u.recv_pktinfo6) {
      in6_pktinfo pi{};
      const Ipv6Addr d = v4 ? mapped(info.dst.v4) : info.dst.v6;
      d.write(reinterpret_cast<uint8_t*>(&pi.ipi6_addr));
      pi.ipi6_ifindex = kUdpIfIndex;
      w.put(IPPROTO_IPV6, IPV6_PKTINFO, &pi, sizeof pi);
    }
    if (!v4 && u.recv_hoplimit6) {
      int hl = info.ttl;
      w.put(IPPROTO_IPV6, IPV6_HOPLIMIT, &hl, sizeof hl);
    }
    if (!v4 && u.recv_tclass6) {
      int tc = info.tos;
      w.put(IPPROTO_IPV6, IPV6_TCLASS, &tc, sizeof tc);
    }
  }
  w.finish();
}

// --- shutdown, ioctl, readiness.

int SocketApi::shutdown(int s, int how) {
  Impl::Sock* k = impl_->get(s);
  if (!k) return -EBADF;
  if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR) return -EINVAL;
  if (k->t) {
    // inet_shutdown: a listener has no sending half; SHUT_WR leaves it as it is.
    if (how == SHUT_WR && impl_->tcp.is_listening(*k->t)) return 0;
    const int r = impl_->tcp.shutdown(*k->t, how);
    impl_->changed(*k);
    return r;
  }
  UdpSocket& u = *k->u;
  if (how != SHUT_WR) u.shut_rd = true;
  if (how != SHUT_RD) u.shut_wr = true;
  impl_->changed(*k);
  // inet_shutdown: an unconnected datagram socket is shut down all the same, and told so.
  return u.connected ? 0 : -ENOTCONN;
}

int SocketApi::ioctl(int s, unsigned long request, void* arg) {
  Impl::Sock* k = impl_->get(s);
  if (!k) return -EBADF;
  if (k->t && request != FIONBIO) return impl_->tcp_ioctl(*k, request, arg);
  switch (request) {
    case FIONREAD: {  // udp_ioctl SIOCINQ: the first datagram's payload
      if (!arg) return -EFAULT;
      const PacketBuf* p = k->u->rxq.front();
      int v = p ? int(Udp::rx_info(*p).payload_len) : 0;
      std::memcpy(arg, &v, sizeof v);
      return 0;
    }
    case TIOCOUTQ: {  // SIOCOUTQ: nothing lingers in a send queue here
      if (!arg) return -EFAULT;
      int v = 0;
      std::memcpy(arg, &v, sizeof v);
      return 0;
    }
    case FIONBIO: {
      if (!arg) return -EFAULT;
      return set_nonblocking(s, read_int(arg) != 0);
    }
    default:
      return -ENOTTY;
  }
}

int SocketApi::set_nonblocking(int s, bool on) {
  Impl::Sock* k = impl_->get(s);
  if (!k) return -EBADF;
  k->nonblock = on;
  return 0;
}

uint32_t SocketApi::poll_events(int s) {
  Impl::Sock* k = impl_->get(s);
  if (!k) return POLLNVAL;
  if (k->t) return impl_->tcp.events(*k->t);
  const UdpSocket& u = *k->u;
  // datagram_poll.
  uint32_t ev = 0;
  if (u.error) ev |= POLLERR;
  if (u.shut_rd) ev |= POLLIN | POLLRDHUP;
  if (u.shut_rd && u.shut_wr) ev |= POLLHUP;
  if (!u.rxq.empty()) ev |= POLLIN;
  if (stack_.pool().available() > 0) ev |= POLLOUT;
  return ev;
}

// --- Options.

int SocketApi::setsockopt(int s, int level, int name, const void* val, socklen_t len) {
  Impl::Sock* k = impl_->get(s);
  if (!k) return -EBADF;
  if (int(len) < 0) return -EINVAL;
  if (len && !val) return -EFAULT;
  if (k->t) return impl_->tcp_setsockopt(*k, level, name, val, len);
  switch (level) {
    case SOL_SOCKET: return impl_->set_socket(*k, name, val, len);
    case IPPROTO_IP: return impl_->set_ip(*k, name, val, len);
    case IPPROTO_IPV6:
      if (k->u->family != Family::kV6) return -ENOPROTOOPT;
      return impl_->set_ipv6(*k, name, val, len);
    default: return -ENOPROTOOPT;  // IPPROTO_UDP: no UDP_CORK, UDP_SEGMENT yet
  }
}

int SocketApi::getsockopt(int s, int level, int name, void* val, socklen_t* len) {
  Impl::Sock* k = impl_->get(s);
  if (!k) return -EBADF;
  if (!len) return -EFAULT;
  if (int(*len) < 0) return -EINVAL;
  if (k->t) return impl_->tcp_getsockopt(*k, level, name, val, len);
  switch (level) {
    case SOL_SOCKET: return impl_->get_socket(*k, name, val, len);
    case IPPROTO_IP: return impl_->get_ip(*k, name, val, len);
    case IPPROTO_IPV6:
      if (k->u->family != Family::kV6) return -ENOPROTOOPT;
      return impl_->get_ipv6(*k, name, val, len);
    default: return -ENOPROTOOPT;
  }
}

// sock_setsockopt.
int SocketApi::Impl::set_socket(Sock& k, int name, const void* val, socklen_t len) {
  if (name == SO_RCVTIMEO || name == SO_SNDTIMEO) {
    if (len < sizeof(timeval)) return -EINVAL;
    timeval tv;
    std::memcpy(&tv, val, sizeof tv);
    if (tv.tv_usec < 0 || tv.tv_usec >= 1'000'000) return -EDOM;
    Nanos t;
    if (tv.tv_sec < 0) {
      t = 0;  // sock_set_timeout: a negative time means do not wait
    } else if (tv.tv_sec == 0 && tv.tv_usec == 0) {
      t = kForever;
    } else {
      t = Nanos(tv.tv_sec) * kSecond + Nanos(tv.tv_usec) * kMicro;
      if (t < 0) t = kForever;
    }
    (name == SO_RCVTIMEO ? k.rcvtimeo : k.sndtimeo) = t;
    return 0;
  }
  UdpSocket& u = *k.u;
  if (len < sizeof(int)) return -EINVAL;
  const int v = read_int(val);
  switch (name) {
    case SO_REUSEADDR: u.reuse_addr = v != 0; return 0;
    case SO_REUSEPORT: u.reuse_port = v != 0; return 0;
    case SO_BROADCAST: u.broadcast = v != 0; return 0;
    case SO_RCVBUF: {
      // Linux doubles the request (for bookkeeping overhead), capped by rmem_max.
      const uint32_t req = std::min<uint32_t>(uint32_t(v), kUdpBufMax);
      u.rcvbuf = std::max<int>(int(req) * 2, kUdpMinRcvbuf);
      changed(k);
      return 0;
    }
    case SO_SNDBUF: {
      const uint32_t req = std::min<uint32_t>(uint32_t(v), kUdpBufMax);
      u.sndbuf = std::max<int>(int(req) * 2, kUdpMinSndbuf);
      return 0;
    }
    case SO_RCVBUFFORCE:
    case SO_SNDBUFFORCE: return -EPERM;  // needs CAP_NET_ADMIN
    default: return -ENOPROTOOPT;
  }
}

int SocketApi::Impl::get_socket(Sock& k, int name, void* val, socklen_t* len) {
  if (name == SO_RCVTIMEO || name == SO_SNDTIMEO) {
    const timeval tv = to_timeval(name == SO_RCVTIMEO ? k.rcvtimeo : k.sndtimeo);
    const socklen_t n = std::min<socklen_t>(*len, sizeof tv);
    if (n && !val) return -EFAULT;
    std::memcpy(val, &tv, n);
    *len = n;
    return 0;
  }
  UdpSocket& u = *k.u;
  int v;
  switch (name) {
    case SO_TYPE: v = SOCK_DGRAM; break;
    case SO_DOMAIN: v = k.domain; break;
    case SO_PROTOCOL: v = IPPROTO_UDP; break;
    case SO_ACCEPTCONN: v = 0; break;
    case SO_REUSEADDR: v = u.reuse_addr; break;
    case SO_REUSEPORT: v = u.reuse_port; break;
    case SO_BROADCAST: v = u.broadcast; break;
    case SO_RCVBUF: v = u.rcvbuf; break;
    case SO_SNDBUF: v = u.sndbuf; break;
    case SO_ERROR:  // sock_error: read and clear
      v = u.error;
      u.error = 0;
      if (v) changed(k);
      break;
    default: return -ENOPROTOOPT;
  }
  return put_int(val, len, v);
}

// do_ip_setsockopt (also for IPv6 sockets, whose IPv4 side these options steer).
int SocketApi::Impl::set_ip(Sock& k, int name, const void* val, socklen_t len) {
  UdpSocket& u = *k.u;
  switch (name) {
    case IP_TTL: {
      if (len < 1) return -EINVAL;
      const int v = ip_int(val, len);
      if (v != -1 && (v < 1 || v > 255)) return -EINVAL;
      u.ttl = v;
      return 0;
    }
    case IP_TOS: u.tos = uint8_t(ip_int(val, len)); return 0;
    case IP_MULTICAST_TTL: {
      if (len < 1) return -EINVAL;
      int v = ip_int(val, len);
      if (v == -1) v = 1;
      if (v < 0 || v > 255) return -EINVAL;
      u.mcast_ttl = uint8_t(v);
      return 0;
    }
    case IP_MULTICAST_LOOP:
      if (len < 1) return -EINVAL;
      u.mcast_loop = ip_int(val, len) != 0;
      return 0;
    case IP_PKTINFO: u.recv_pktinfo = ip_int(val, len) != 0; return 0;
    case IP_RECVTTL: u.recv_ttl = ip_int(val, len) != 0; return 0;
    case IP_RECVTOS: u.recv_tos = ip_int(val, len) != 0; return 0;
    case IP_MULTICAST_IF: {
      // An ip_mreqn, an ip_mreq, or a bare in_addr naming the interface by address.
      ip_mreqn m{};
      if (len >= sizeof(ip_mreqn)) {
        std::memcpy(&m, val, sizeof m);
      } else if (len >= sizeof(ip_mreq)) {
        std::memcpy(&m, val, sizeof(ip_mreq));
      } else if (len >= sizeof(in_addr)) {
        std::memcpy(&m.imr_address, val, sizeof(in_addr));
      } else {
        return -EINVAL;
      }
      const Ipv4Addr a = v4_of(m.imr_address);
      if (a.is_unspecified() && m.imr_ifindex == 0) {
        u.mcast_if = Ipv4Addr{};
        u.mcast_ifindex = 0;
        return 0;
      }
      if (!a.is_unspecified() && !stack.is_local_v4(a)) return -EADDRNOTAVAIL;
      u.mcast_if = a;
      u.mcast_ifindex = m.imr_ifindex;
      return 0;
    }
    case IP_ADD_MEMBERSHIP:
    case IP_DROP_MEMBERSHIP: {
      if (len < sizeof(ip_mreq)) return -EINVAL;
      ip_mreqn m{};
      if (len >= sizeof(ip_mreqn)) {
        std::memcpy(&m, val, sizeof m);
      } else {
        std::memcpy(&m, val, sizeof(ip_mreq));
      }
      const Ipv4Addr group = v4_of(m.imr_multiaddr);
      if (!group.is_multicast()) return -EINVAL;
      // ip_mc_find_dev: an interface named by an address that is not ours does not exist.
      const Ipv4Addr ifaddr = v4_of(m.imr_address);
      if (m.imr_ifindex == 0 && !ifaddr.is_unspecified() && !stack.is_local_v4(ifaddr)) return -ENODEV;
      if (name == IP_ADD_MEMBERSHIP) return udp.join(u, IpAddr(group), kUdpIfIndex);
      return udp.leave(u, IpAddr(group), kUdpIfIndex);
    }
    default: return -ENOPROTOOPT;
  }
}

int SocketApi::Impl::get_ip(Sock& k, int name, void* val, socklen_t* len) {
  UdpSocket& u = *k.u;
  int v;
  switch (name) {
    case IP_TTL: v = u.ttl >= 0 ? u.ttl : udp.default_ttl(); break;
    case IP_TOS: v = u.tos; break;
    case IP_MULTICAST_TTL: v = u.mcast_ttl; break;
    case IP_MULTICAST_LOOP: v = u.mcast_loop; break;
    case IP_PKTINFO: v = u.recv_pktinfo; break;
    case IP_RECVTTL: v = u.recv_ttl; break;
    case IP_RECVTOS: v = u.recv_tos; break;
    case IP_MULTICAST_IF: {
      in_addr a{htonl(u.mcast_if.v)};
      const socklen_t n = std::min<socklen_t>(*len, sizeof a);
      if (n && !val) return -EFAULT;
      std::memcpy(val, &a, n);
      *len = n;
      return 0;
    }
    default: return -ENOPROTOOPT;
  }
  return put_ip_int(val, len, v);
}

// do_ipv6_setsockopt.
int SocketApi::Impl::set_ipv6(Sock& k, int name, const void* val, socklen_t len) {
  UdpSocket& u = *k.u;
  if (name == IPV6_JOIN_GROUP || name == IPV6_LEAVE_GROUP) {
    if (len < sizeof(ipv6_mreq)) return -EINVAL;
    ipv6_mreq m;
    std::memcpy(&m, val, sizeof m);
    const Ipv6Addr group = v6_of(m.ipv6mr_multiaddr);
    if (!group.is_multicast()) return -EINVAL;
    if (name == IPV6_JOIN_GROUP) return udp.join(u, IpAddr(group), kUdpIfIndex);
    return udp.leave(u, IpAddr(group), kUdpIfIndex);
  }
  if (len < sizeof(int)) {
    switch (name) {
      case IPV6_V6ONLY:
      case IPV6_UNICAST_HOPS:
      case IPV6_MULTICAST_HOPS:
      case IPV6_MULTICAST_LOOP:
      case IPV6_MULTICAST_IF:
      case IPV6_RECVPKTINFO:
      case IPV6_RECVHOPLIMIT:
      case IPV6_RECVTCLASS:
      case IPV6_TCLASS: return -EINVAL;
      default: return -ENOPROTOOPT;
    }
  }
  const int v = read_int(val);
  switch (name) {
    case IPV6_V6ONLY:
      if (u.is_bound()) return -EINVAL;  // fixed once bound
      u.v6only = v != 0;
      return 0;
    case IPV6_UNICAST_HOPS:
      if (v < -1 || v > 255) return -EINVAL;
      u.hop_limit = v;
      return 0;
    case IPV6_MULTICAST_HOPS:
      if (v < -1 || v > 255) return -EINVAL;
      u.mcast_hops = uint8_t(v == -1 ? 1 : v);
      return 0;
    case IPV6_MULTICAST_LOOP:
      if (v != 0 && v != 1) return -EINVAL;
      u.mcast_loop6 = v;
      return 0;
    case IPV6_MULTICAST_IF: u.mcast_if6 = v; return 0;
    case IPV6_RECVPKTINFO: u.recv_pktinfo6 = v != 0; return 0;
    case IPV6_RECVHOPLIMIT: u.recv_hoplimit6 = v != 0; return 0;
    case IPV6_RECVTCLASS: u.recv_tclass6 = v != 0; return 0;
    case IPV6_TCLASS:
      if (v < -1 || v > 255) return -EINVAL;
      u.tclass = v < 0 ? 0 : v;
      return 0;
    default: return -ENOPROTOOPT;
  }
}

int SocketApi::Impl::get_ipv6(Sock& k, int name, void* val, socklen_t* len) {
  UdpSocket& u = *k.u;
  int v;
  switch (name) {
    case IPV6_V6ONLY: v = u.v6only; break;
    case IPV6_UNICAST_HOPS: v = u.hop_limit >= 0 ? u.hop_limit : udp.default_ttl(); break;
    case IPV6_MULTICAST_HOPS: v = u.mcast_hops; break;
    case IPV6_MULTICAST_LOOP: v = u.mcast_loop6; break;
    case IPV6_MULTICAST_IF: v = u.mcast_if6; break;
    case IPV6_RECVPKTINFO: v = u.recv_pktinfo6; break;
    case IPV6_RECVHOPLIMIT: v = u.recv_hoplimit6; break;
    case IPV6_RECVTCLASS: v = u.recv_tclass6; break;
    case IPV6_TCLASS: v = u.tclass; break;
    default: return -ENOPROTOOPT;
  }
  return put_int(val, len, v);
}

// --- TCP (SOCK_STREAM).

namespace {

bool handshaking(TcpState st) { return st == TcpState::kSynSent || st == TcpState::kSynReceived; }

// Checks an iovec array as the kernel's import_iovec does: total length and non-null bases.
ssize_t iov_total(const iovec* iov, size_t iovcnt, bool need_base) {
  size_t len = 0;
  for (size_t i = 0; i < iovcnt; ++i) {
    if (iov[i].iov_len > size_t(SSIZE_MAX) - len) return -EINVAL;
    if (need_base && iov[i].iov_len && !iov[i].iov_base) return -EFAULT;
    len += iov[i].iov_len;
  }
  return ssize_t(len);
}

// The part of `iov` after its first `skip` bytes (a blocking call that already moved some).
void iov_rest(const iovec* iov, size_t iovcnt, size_t skip, std::vector<iovec>& out) {
  out.clear();
  for (size_t i = 0; i < iovcnt; ++i) {
    if (skip >= iov[i].iov_len) {
      skip -= iov[i].iov_len;
      continue;
    }
    out.push_back(iovec{iov[i].iov_base ? static_cast<uint8_t*>(iov[i].iov_base) + skip : nullptr,
                        iov[i].iov_len - skip});
    skip = 0;
  }
}

}  // namespace

int SocketApi::listen(int s, int backlog) {
  Impl::Sock* k = impl_->get(s);
  if (!k) return -EBADF;
  if (!k->t) return -EOPNOTSUPP;  // sock_no_listen
  // inet_listen: only an unconnected (or already listening) stream socket.
  const TcpState st = impl_->tcp.state(*k->t);
  if (k->connecting || (st != TcpState::kClosed && st != TcpState::kListen)) return -EINVAL;
  // __sys_listen: clamped to somaxconn, a negative backlog included (it is unsigned there).
  if (unsigned(backlog) > unsigned(kSomaxconn)) backlog = kSomaxconn;
  const int r = impl_->tcp.listen(*k->t, backlog);
  impl_->changed(*k);
  return r;
}

int SocketApi::accept(int s, sockaddr* addr, socklen_t* len, int flags) {
  // __sys_accept4 checks the flags before the descriptor.
  if (flags & ~(SOCK_CLOEXEC | SOCK_NONBLOCK)) return -EINVAL;
  Impl::Sock* k = impl_->get(s);
  if (!k) return -EBADF;
  if (!k->t) return -EOPNOTSUPP;  // sock_no_accept
  return impl_->tcp_accept(s, addr, len, flags);
}

int SocketApi::Impl::tcp_accept(int s, sockaddr* addr, socklen_t* len, int flags) {
  // Linux checks the address length only after accepting, and loses the connection when it is
  // bad; checking first keeps the connection queued.
  if (addr && !len) return -EFAULT;
  if (addr && int(*len) < 0) return -EINVAL;
  Nanos deadline = 0;
  bool waited = false;
  while (true) {
    Sock* k = get(s);
    if (!k || !k->t) return -EBADF;
    int err = 0;
    TcpSocket* c = tcp.accept(*k->t, &err);
    if (c) {
      const int domain = k->domain;
      const int h = adopt_tcp(c, domain, flags);  // may move `socks`: k is stale now
      if (addr) {
        IpAddr a;
        uint16_t port = 0;
        tcp.peer_name(*c, &a, &port);
        put_sockaddr(tcp.family(*c), a, port, addr, len);
      }
      if (Sock* l = get(s)) changed(*l);
      return h;
    }
    if (err != -EAGAIN) return err;
    // inet_csk_accept: O_NONBLOCK of the listener (accept4's flags are for the new socket).
    if (k->nonblock || k->rcvtimeo == 0) return -EAGAIN;
    if (!waited) {
      deadline = deadline_of(k->rcvtimeo);
      waited = true;
    }
    if (!wait(deadline, &err)) return err;
  }
}

int SocketApi::Impl::tcp_connect(int s, const IpAddr& dst, uint16_t port) {
  Sock* k = get(s);
  TcpSocket* t = k->t;
  int r;
  if (k->connecting) {
    r = -EALREADY;  // __inet_stream_connect, SS_CONNECTING
  } else {
    r = tcp.connect(*t, dst, port);
    if (r != -EINPROGRESS) {
      if (r == 0) changed(*k);
      return r;
    }
    k->connecting = true;
    changed(*k);
  }
  // Still in the handshake: a non-blocking socket says so; a blocking one waits (SO_SNDTIMEO).
  if (handshaking(tcp.state(*t))) {
    if (k->nonblock || k->sndtimeo == 0) return r;
    const Nanos deadline = deadline_of(k->sndtimeo);
    while (handshaking(tcp.state(*t))) {
      int err;
      // A timeout leaves the connect in progress and says so; an interruption is EINTR.
      if (!wait(deadline, &err)) return err == -EAGAIN ? r : err;
      k = get(s);
      if (!k || k->t != t) return -EBADF;
    }
  }
  k->connecting = false;
  changed(*k);
  // Closed by RST, timeout or an ICMP error: report it once; the socket may connect again.
  if (tcp.state(*t) == TcpState::kClosed) {
    const int e = tcp.take_error(*t);
    return e ? -e : -ECONNABORTED;
  }
  return 0;
}

ssize_t SocketApi::Impl::tcp_send(int s, const iovec* iov, size_t iovcnt, int flags) {
  const ssize_t total = iov_total(iov, iovcnt, true);
  if (total < 0) return total;
  Sock* k = get(s);
  TcpSocket* t = k->t;
  const bool nonblock = k->nonblock || (flags & MSG_DONTWAIT);
  // The common case: everything fits, or a non-blocking call takes what fits.
  ssize_t r = tcp.send(*t, iov, iovcnt, flags);
  // sk_stream_wait_connect: a socket that is neither connected nor connecting is a broken pipe.
  if (r == -ENOTCONN) return -EPIPE;
  if (r == total || nonblock) return r;
  if (r < 0 && r != -EAGAIN && r != -ENOBUFS) return r;
  // A blocking send queues everything, waiting for room (sk_stream_wait_memory; the stack's
  // TCP memory limit, ENOBUFS, is waited out the same way), unless its SO_SNDTIMEO runs out
  // or it is interrupted; then it reports what it queued.
  size_t copied = r > 0 ? size_t(r) : 0;
  std::vector<iovec> rest;
  const Nanos deadline = deadline_of(k->sndtimeo);
  while (true) {
    if (r == -EAGAIN || r == -ENOBUFS || r == 0) {
      int err;
      if (k->sndtimeo == 0 || !wait(deadline, &err)) return copied ? ssize_t(copied) : (k->sndtimeo == 0 ? -EAGAIN : err);
      k = get(s);
      if (!k || k->t != t) return copied ? ssize_t(copied) : -EBADF;
    }
    iov_rest(iov, iovcnt, copied, rest);
    r = tcp.send(*t, rest.data(), rest.size(), flags);
    if (r > 0) {
      copied += size_t(r);
      if (copied == size_t(total)) return ssize_t(copied);
      continue;  // probably full now: the next try says so
    }
    if (r < 0 && r != -EAGAIN && r != -ENOBUFS) return copied ? ssize_t(copied) : r;
  }
}

ssize_t SocketApi::Impl::tcp_recv(int s, const iovec* iov, size_t iovcnt, int flags) {
  // MSG_TRUNC discards: the buffer may be absent (tcp_recvmsg).
  const ssize_t total = iov_total(iov, iovcnt, !(flags & MSG_TRUNC));
  if (total < 0) return total;
  Sock* k = get(s);
  TcpSocket* t = k->t;
  const bool nonblock = k->nonblock || (flags & MSG_DONTWAIT);
  const bool peek = flags & MSG_PEEK;
  // MSG_WAITALL (sock_rcvlowat): wait for the whole request, unless non-blocking; a peek with
  // it waits until that much is there.
  const bool waitall = (flags & MSG_WAITALL) && !nonblock;
  size_t copied = 0;
  std::vector<iovec> rest;
  Nanos deadline = 0;
  bool waited = false;
  while (true) {
    ssize_t r;
    if (copied == 0) {
      r = tcp.recv(*t, iov, iovcnt, flags);
    } else {
      iov_rest(iov, iovcnt, copied, rest);
      r = tcp.recv(*t, rest.data(), rest.size(), flags);
    }
    if (r > 0) {
      if (peek) {
        // Wait for more only while more can come.
        if (!waitall || r == total || (tcp.events(*t) & (POLLRDHUP | POLLHUP | POLLERR))) return r;
      } else {
        copied += size_t(r);
        if (!waitall || copied == size_t(total)) return ssize_t(copied);
        continue;
      }
    } else if (r == 0) {
      return ssize_t(copied);  // end of stream (or an empty request)
    } else if (r != -EAGAIN) {
      return copied ? ssize_t(copied) : r;
    }
    if (nonblock || k->rcvtimeo == 0) return copied ? ssize_t(copied) : -EAGAIN;
    if (!waited) {
      deadline = deadline_of(k->rcvtimeo);
      waited = true;
    }
    int err;
    if (!wait(deadline, &err)) return copied ? ssize_t(copied) : err;
    k = get(s);
    if (!k || k->t != t) return copied ? ssize_t(copied) : -EBADF;
  }
}

int SocketApi::Impl::tcp_close(int s) {
  Sock* k = get(s);
  TcpSocket* t = k->t;
  // SO_LINGER with a time, on a blocking socket: send the FIN behind the queued data and wait,
  // up to the linger time, for it all to be acknowledged (tcp_close, sk_stream_wait_close).
  // Unread data means a reset instead (the engine's close), and nothing to wait for. Linux
  // lingers on non-blocking sockets too; here they never block.
  if (k->linger_on && k->linger_secs > 0 && !k->nonblock && waiter && tcp.rx_queued(*t) == 0) {
    TcpState st = tcp.state(*t);
    if (st == TcpState::kEstablished || st == TcpState::kCloseWait) {
      tcp.shutdown(*t, SHUT_WR);
      st = tcp.state(*t);
    }
    const Nanos deadline = stack.now() + Nanos(k->linger_secs) * kSecond;
    while (st == TcpState::kFinWait1 || st == TcpState::kClosing || st == TcpState::kLastAck) {
      int err;
      if (!wait(deadline, &err)) break;
      k = get(s);
      if (!k || k->t != t) return 0;
      st = tcp.state(*t);
    }
  }
  tcp.close(*t);
  *k = Sock{};
  return 0;
}

int SocketApi::Impl::tcp_setsockopt(Sock& k, int level, int name, const void* val, socklen_t len) {
  TcpSocket& t = *k.t;
  if (level == IPPROTO_IPV6 && tcp.family(t) != Family::kV6) return -ENOPROTOOPT;
  if (level == SOL_SOCKET) {
    switch (name) {
      case SO_RCVTIMEO:
      case SO_SNDTIMEO: return set_socket(k, name, val, len);
      case SO_LINGER: {
        const int r = tcp.setsockopt(t, level, name, val, len);
        if (r == 0 && len >= sizeof(linger)) {
          linger l;
          std::memcpy(&l, val, sizeof l);
          k.linger_on = l.l_onoff != 0;
          k.linger_secs = l.l_linger;
        }
        return r;
      }
      default: break;
    }
  }
  const int r = tcp.setsockopt(t, level, name, val, len);
  if (r == 0) changed(k);  // SO_RCVBUF, SO_SNDBUF, TCP_CORK... may change readiness
  return r;
}

int SocketApi::Impl::tcp_getsockopt(Sock& k, int level, int name, void* val, socklen_t* len) {
  TcpSocket& t = *k.t;
  if (level == IPPROTO_IPV6 && tcp.family(t) != Family::kV6) return -ENOPROTOOPT;
  if (level == SOL_SOCKET) {
    switch (name) {
      case SO_RCVTIMEO:
      case SO_SNDTIMEO: return get_socket(k, name, val, len);
      case SO_TYPE: return put_int(val, len, SOCK_STREAM);
      case SO_DOMAIN: return put_int(val, len, k.domain);
      case SO_PROTOCOL: return put_int(val, len, IPPROTO_TCP);
      case SO_ERROR: {
        const int r = tcp.getsockopt(t, level, name, val, len);
        changed(k);  // POLLERR is gone with the error
        return r;
      }
      default: break;
    }
  }
  return tcp.getsockopt(t, level, name, val, len);
}

int SocketApi::Impl::tcp_ioctl(Sock& k, unsigned long request, void* arg) {
  TcpSocket& t = *k.t;
  int v;
  switch (request) {
    case FIONREAD:  // SIOCINQ (tcp_ioctl): bytes readable in order
      if (tcp.is_listening(t)) return -EINVAL;
      v = int(std::min<size_t>(tcp.rx_queued(t), INT_MAX));
      break;
    case TIOCOUTQ:  // SIOCOUTQ: bytes not yet acknowledged
      if (tcp.is_listening(t)) return -EINVAL;
      v = int(std::min<size_t>(tcp.tx_queued(t), INT_MAX));
      break;
    case SIOCATMARK: v = 0; break;  // urgent data is inline, in sequence: never at a mark
    default: return -ENOTTY;
  }
  if (!arg) return -EFAULT;
  std::memcpy(arg, &v, sizeof v);
  return 0;
}

}  // namespace shunt
