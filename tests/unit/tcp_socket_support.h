// The fixture of the TCP socket tests: N stacks on the virtual-time harness, a SocketApi on
// each whose blocking calls run the harness (until a readiness change or the call's deadline),
// and helpers for addresses, listeners, connected pairs and options.
#pragma once
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "stack/core/config.h"
#include "stack/harness/harness.h"
#include "stack/net/stack.h"
#include "stack/net/tcp/tcp.h"
#include "stack/socket/socket_api.h"

namespace shunt::tcptest {

struct Addr {
  sockaddr_storage ss{};
  socklen_t len = 0;
  const sockaddr* sa() const { return reinterpret_cast<const sockaddr*>(&ss); }
  sockaddr* sa() { return reinterpret_cast<sockaddr*>(&ss); }
  uint16_t port() const {
    return ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_port
                                          : reinterpret_cast<const sockaddr_in*>(&ss)->sin_port);
  }
  std::string ip() const {
    char buf[INET6_ADDRSTRLEN] = {};
    if (ss.ss_family == AF_INET6) {
      inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_addr, buf, sizeof buf);
    } else {
      inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&ss)->sin_addr, buf, sizeof buf);
    }
    return buf;
  }
};

inline Addr v4(Ipv4Addr ip, uint16_t port) {
  Addr a;
  auto* s = reinterpret_cast<sockaddr_in*>(&a.ss);
  s->sin_family = AF_INET;
  s->sin_port = htons(port);
  s->sin_addr.s_addr = htonl(ip.v);
  a.len = sizeof(sockaddr_in);
  return a;
}
inline Addr v6(const Ipv6Addr& ip, uint16_t port) {
  Addr a;
  auto* s = reinterpret_cast<sockaddr_in6*>(&a.ss);
  s->sin6_family = AF_INET6;
  s->sin6_port = htons(port);
  ip.write(reinterpret_cast<uint8_t*>(&s->sin6_addr));
  a.len = sizeof(sockaddr_in6);
  return a;
}
// Stack i's address (10.0.0.i+1 or fd00::i+1).
inline Addr addr_of(size_t i, bool ipv6, uint16_t port) {
  return ipv6 ? v6(Harness::ipv6_of(i), port) : v4(Harness::ipv4_of(i), port);
}
inline Addr any_addr(bool ipv6, uint16_t port) { return ipv6 ? v6(Ipv6Addr{}, port) : v4(Ipv4Addr{}, port); }
inline int domain_of(bool ipv6) { return ipv6 ? AF_INET6 : AF_INET; }

inline Config tcp_config(int64_t seed = 7) {
  Config c;
  c.dad_transmits = 0;  // addresses usable at once
  c.seed = seed;
  c.buffers = 16384;
  return c;
}

inline HarnessOptions net_options(size_t stacks = 2, LinkConfig link = LinkConfig{}, Config c = tcp_config()) {
  HarnessOptions o;
  o.stacks = stacks;
  o.link = link;
  o.config = c;
  return o;
}

// Linux's tcpi_state numbers (include/net/tcp_states.h).
enum LinuxTcpState : uint8_t {
  kLxEstablished = 1,
  kLxSynSent,
  kLxSynRecv,
  kLxFinWait1,
  kLxFinWait2,
  kLxTimeWait,
  kLxClose,
  kLxCloseWait,
  kLxLastAck,
  kLxListen,
  kLxClosing,
};

struct Net {
  explicit Net(const HarnessOptions& o = net_options()) : h(o) {
    woke.assign(h.size(), 0);
    hooks.assign(h.size(), std::vector<int>());
    for (size_t i = 0; i < h.size(); ++i) {
      apis.push_back(std::make_unique<SocketApi>(h.stack(i)));
      SocketApi* a = apis.back().get();
      a->set_readiness_hook([this, i](int s) {
        woke[i] = 1;
        if (record_hooks) hooks[i].push_back(s);
      });
      // A blocking call runs the harness until some socket of this API may have become ready,
      // its deadline, or a slice of time (so a missed wake-up only costs time); it gives up
      // (EINTR) once the test's virtual time budget is spent.
      a->set_waiter([this, i](Nanos deadline) {
        ++waits;
        if (h.now() >= give_up_at) return false;
        woke[i] = 0;
        Nanos limit = std::min(deadline, give_up_at);
        if (limit - h.now() > kWaitSlice) limit = h.now() + kWaitSlice;
        h.run_until([this, i] { return woke[i] != 0; }, limit - h.now());
        return true;
      });
    }
    h.run_for(10 * kMilli);
    give_up_at = h.now() + 4 * 3600 * kSecond;
  }
  ~Net() {
    apis.clear();  // sockets go before the stacks
  }

  SocketApi& api(size_t i) { return *apis[i]; }
  Tcp& tcp(size_t i) { return h.stack(i).tcp(); }
  bool run_until(const std::function<bool()>& done, Nanos timeout = 60 * kSecond) {
    return h.run_until(done, timeout);
  }

  // A listening socket on stack i, bound to the wildcard address.
  int listener(size_t i, bool ipv6, uint16_t port, int backlog = 16, int flags = SOCK_NONBLOCK) {
    SocketApi& a = api(i);
    const int s = a.socket(domain_of(ipv6), SOCK_STREAM | flags, 0);
    if (s < 0) return s;
    const int one = 1;
    a.setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    Addr any = any_addr(ipv6, port);
    int r = a.bind(s, any.sa(), any.len);
    if (r < 0) return r;
    r = a.listen(s, backlog);
    if (r < 0) return r;
    return s;
  }
  // A non-blocking connect from stack i to stack `to`; the socket, or -errno.
  int start_connect(size_t i, size_t to, bool ipv6, uint16_t port, int flags = SOCK_NONBLOCK) {
    SocketApi& a = api(i);
    const int s = a.socket(domain_of(ipv6), SOCK_STREAM | flags, 0);
    if (s < 0) return s;
    Addr dst = addr_of(to, ipv6, port);
    const int r = a.connect(s, dst.sa(), dst.len);
    if (r < 0 && r != -EINPROGRESS) return r;
    return s;
  }
  struct Conn {
    int client = -1, server = -1, listener = -1;
    bool ok() const { return client >= 0 && server >= 0; }
  };
  // A connection from stack ci to stack si (non-blocking sockets), established on both sides.
  Conn connect_pair(size_t ci, size_t si, bool ipv6, uint16_t port, int listener = -1) {
    Conn c;
    c.listener = listener >= 0 ? listener : this->listener(si, ipv6, port);
    if (c.listener < 0) return c;
    c.client = start_connect(ci, si, ipv6, port);
    if (c.client < 0) return c;
    run_until([&] {
      if (c.server < 0) {
        const int s = api(si).accept(c.listener, nullptr, nullptr, SOCK_NONBLOCK);
        if (s >= 0) c.server = s;
      }
      return c.server >= 0 && (api(ci).poll_events(c.client) & POLLOUT);
    });
    return c;
  }

  int set_int(size_t i, int s, int level, int name, int v) {
    return api(i).setsockopt(s, level, name, &v, sizeof v);
  }
  int get_int(size_t i, int s, int level, int name) {
    int v = -12345;
    socklen_t l = sizeof v;
    const int r = api(i).getsockopt(s, level, name, &v, &l);
    return r < 0 ? r : v;
  }
  tcp_info info(size_t i, int s) {
    tcp_info ti{};
    socklen_t l = sizeof ti;
    api(i).getsockopt(s, IPPROTO_TCP, TCP_INFO, &ti, &l);
    return ti;
  }
  int state(size_t i, int s) { return info(i, s).tcpi_state; }
  int so_error(size_t i, int s) { return get_int(i, s, SOL_SOCKET, SO_ERROR); }
  int linger(size_t i, int s, int on, int secs) {
    ::linger l{on, secs};
    return api(i).setsockopt(s, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  }
  int fionread(size_t i, int s) {
    int v = -1;
    const int r = api(i).ioctl(s, FIONREAD, &v);
    return r < 0 ? r : v;
  }

  ssize_t send_str(size_t i, int s, const std::string& d, int flags = MSG_NOSIGNAL) {
    return api(i).send(s, d.data(), d.size(), flags);
  }
  // Everything readable now (non-blocking); `*last` is the last recv's result (0 at EOF).
  std::string drain(size_t i, int s, ssize_t* last = nullptr) {
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = api(i).recv(s, buf, sizeof buf, MSG_DONTWAIT)) > 0) out.append(buf, size_t(n));
    if (last) *last = n;
    return out;
  }
  // Runs until stack i's socket s has `ev` among its poll events.
  bool wait_events(size_t i, int s, uint32_t ev, Nanos timeout = 60 * kSecond) {
    return run_until([&] { return (api(i).poll_events(s) & ev) != 0; }, timeout);
  }

  static constexpr Nanos kWaitSlice = 1 * kSecond;
  Harness h;
  std::vector<std::unique_ptr<SocketApi>> apis;
  std::vector<char> woke;
  bool record_hooks = false;
  std::vector<std::vector<int>> hooks;  // handles the readiness hook named, per stack
  uint64_t waits = 0;
  Nanos give_up_at = kNever;
};

}  // namespace shunt::tcptest
