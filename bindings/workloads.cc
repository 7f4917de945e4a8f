// The workloads of workloads.h on any Net. Each is a small state machine over non-blocking
// sockets: its pump makes every call that can progress and returns whether the workload is done;
// drive() runs the network with it, waking it also at the times it has something of its own to do
// (a send on a schedule, a flow's start, a round trip's timeout), since the network only calls the
// pump when a host may have seen socket events. Buffers are sized once at setup; the pumps capture
// only `this`, so handing them to Net::run allocates nothing.
#include "bindings/workloads.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <stdexcept>

#include "stack/harness/tcp_bulk.h"  // tcp_bulk_pattern
#include "stack/net/stack.h"
#include "stack/socket/socket_api.h"

namespace shunt::bindings {

double FlowResult::goodput_bps() const {
  if (finished <= started) return 0;
  return double(received) * 8e9 / double(finished - started);
}

double BulkResult::goodput_bps() const {
  if (finished <= started) return 0;
  return double(bytes) * 8e9 / double(finished - started);
}

double ChurnResult::per_virtual_second() const {
  if (finished <= started) return 0;
  return double(closed) * 1e9 / double(finished - started);
}

namespace {

// The largest UDP payload in one IPv4 datagram (RFC 768 length field, less the IPv4 header).
constexpr size_t kMaxUdpPayload = 65'507;
// How long a workload waits for IPv6 duplicate address detection (RFC 4862 5.4) to finish.
constexpr Nanos kAddressWait = 10 * kSecond;
// Connection setup of the ping-pongs (the first SYN may wait for address resolution).
constexpr Nanos kConnectTimeout = 10 * kSecond;
// Rounds of drive() in a row that moved neither the clock nor the workload before it gives up.
constexpr int kMaxIdleRounds = 1000;

// `d` after `t`, saturating far short of kNever: a timeout meant as "forever" must not wrap, and
// a simulator's clock must be able to reach the limit.
Nanos after(Nanos t, Nanos d) {
  constexpr Nanos kFar = kNever / 4;
  return d >= kFar - t ? kFar : t + d;
}

std::string errno_text(long err) { return std::strerror(int(err < 0 ? -err : err)); }

std::string host_name(size_t host) { return "host " + std::to_string(host); }

void check_host(Net& net, size_t host, const char* workload, const char* role) {
  if (host >= net.size()) {
    throw std::invalid_argument(std::string(workload) + ": " + role + " " + host_name(host) +
                                " out of range (the network has " + std::to_string(net.size()) +
                                " hosts)");
  }
  if (!net.is_shunt(host)) {
    throw std::invalid_argument(std::string(workload) + ": " + role + " " + host_name(host) +
                                " is not a Shunt host (it has no socket API)");
  }
}

struct SockAddr {
  sockaddr_storage ss{};
  socklen_t len = 0;
  const sockaddr* sa() const { return reinterpret_cast<const sockaddr*>(&ss); }
};

SockAddr sockaddr_of(const IpAddr& ip, uint16_t port) {
  SockAddr a;
  if (ip.is_v6()) {
    auto* s = reinterpret_cast<sockaddr_in6*>(&a.ss);
    s->sin6_family = AF_INET6;
    s->sin6_port = htons(port);
    ip.v6.write(reinterpret_cast<uint8_t*>(&s->sin6_addr));
    a.len = sizeof(sockaddr_in6);
  } else {
    auto* s = reinterpret_cast<sockaddr_in*>(&a.ss);
    s->sin_family = AF_INET;
    s->sin_port = htons(port);
    ip.v4.write(reinterpret_cast<uint8_t*>(&s->sin_addr));
    a.len = sizeof(sockaddr_in);
  }
  return a;
}

SockAddr any_addr(bool ipv6, uint16_t port) {
  return sockaddr_of(ipv6 ? IpAddr(Ipv6Addr{}) : IpAddr(Ipv4Addr{}), port);
}

// The port and address of a sockaddr (v4 or v6), to tell connections apart.
bool same_endpoint(const sockaddr_storage& a, const SockAddr& b) {
  if (a.ss_family != b.ss.ss_family) return false;
  if (a.ss_family == AF_INET) {
    const auto& x = reinterpret_cast<const sockaddr_in&>(a);
    const auto& y = reinterpret_cast<const sockaddr_in&>(b.ss);
    return x.sin_port == y.sin_port && x.sin_addr.s_addr == y.sin_addr.s_addr;
  }
  const auto& x = reinterpret_cast<const sockaddr_in6&>(a);
  const auto& y = reinterpret_cast<const sockaddr_in6&>(b.ss);
  return x.sin6_port == y.sin6_port && std::memcmp(&x.sin6_addr, &y.sin6_addr, 16) == 0;
}

// A UDP send the network may refuse for a while (no room, neighbour not resolved): the datagram
// is lost, not the workload.
bool transient_udp_error(long r) {
  return r == -EAGAIN || r == -ENOBUFS || r == -EHOSTUNREACH || r == -ENETUNREACH ||
         r == -ECONNREFUSED;
}

// The error a failed non-blocking connect left on the socket.
long socket_error(SocketApi& api, int fd) {
  int err = 0;
  socklen_t l = sizeof err;
  api.getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l);
  return err ? -long(err) : -long(ECONNRESET);
}

// Base of the workloads: the network, the first error, and the run loop.
class Workload {
 public:
  explicit Workload(Net& net, const char* name) : net_(net), name_(name) {}

 protected:
  // Records the first failure as "<workload>: <where>: <why>"; returns false.
  bool fail(const std::string& where, long err) {
    return fail_text(where + ": " + errno_text(err));
  }
  bool fail_text(const std::string& what) {
    if (error_.empty()) error_ = std::string(name_) + ": " + what;
    return false;
  }
  bool failed() const { return !error_.empty(); }

  // Waits until every host in `hosts` may use its IPv6 address (duplicate address detection
  // done); nothing to wait for with IPv4.
  bool wait_for_addresses(const std::vector<size_t>& hosts, bool ipv6) {
    if (!ipv6) return true;
    auto ready = [&] {
      for (size_t h : hosts) {
        if (!net_.stack(h).is_local_v6(net_.addr(h, true).v6)) return false;
      }
      return true;
    };
    if (ready()) return true;
    if (net_.run(ready, kAddressWait)) return true;
    for (size_t h : hosts) {
      if (!net_.stack(h).is_local_v6(net_.addr(h, true).v6)) {
        return fail_text(host_name(h) + "'s IPv6 address " + net_.addr(h, true).str() +
                         " is still tentative after " + std::to_string(kAddressWait / kMilli) +
                         " ms (duplicate address detection)");
      }
    }
    return true;
  }

  // Runs the network with `pump` until it is done, `limit` (virtual time) passes, or the
  // network stops making progress; wakes the pump also at wake() (kNever: no wake-up of its own).
  // Returns whether the pump said done.
  template <class Pump, class Wake>
  bool drive(Pump&& pump, Wake&& wake, Nanos limit) {
    const std::function<bool()> f(std::ref(pump));
    int idle = 0;
    while (true) {
      const Nanos now = net_.now();
      if (now >= limit) return pump();
      const Nanos until = std::clamp(wake(), now, limit);
      if (net_.run(f, until - now)) return true;
      if (net_.now() != now) {
        idle = 0;
      } else if (until > now || ++idle > kMaxIdleRounds) {
        // The network gave up before the time asked for (it stalled), or the pump keeps asking
        // to be woken now without doing anything.
        fail_text("the network stopped making progress at " + std::to_string(now) + " ns");
        return false;
      }
    }
  }

  Net& net_;
  const char* name_;
  std::string error_;
};

// ----- UDP ping-pong

class UdpPingPongRun : Workload {
 public:
  UdpPingPongRun(Net& net, const PingPongSpec& spec) : Workload(net, "udp_pingpong"), s_(spec) {
    check_host(net, s_.client, name_, "client");
    check_host(net, s_.server, name_, "server");
    if (s_.client == s_.server)
      throw std::invalid_argument("udp_pingpong: client and server are the same host");
    if (s_.payload < 8)
      throw std::invalid_argument(
          "udp_pingpong: payload must be at least 8 bytes (it carries a sequence number)");
    if (s_.payload > kMaxUdpPayload)
      throw std::invalid_argument("udp_pingpong: payload larger than a UDP datagram (65507 bytes)");
    if (s_.timeout < 0) throw std::invalid_argument("udp_pingpong: negative timeout");
    if (s_.timeout == 0) s_.timeout = 10 * kMilli;
    out_.resize(s_.payload);
    for (size_t i = 8; i < out_.size(); ++i) out_[i] = uint8_t('a' + i % 26);
    in_.resize(s_.payload + 1);  // one more: a longer datagram shows as such
    echo_.resize(s_.payload + 1);
  }
  ~UdpPingPongRun() {
    if (cfd_ >= 0) capi_->close(cfd_);
    if (sfd_ >= 0) sapi_->close(sfd_);
    if (cfd_ >= 0 || sfd_ >= 0) net_.kick();
  }

  LatencyResult run() {
    if (setup()) {
      const Nanos warm_timeout = std::max(s_.timeout, kSecond);  // the first one resolves addresses
      for (uint64_t i = 0; i < s_.warmup && !failed(); ++i) ping(warm_timeout);
      r_.started = net_.now();
      r_.samples.reserve(s_.count);
      for (uint64_t i = 0; i < s_.count && !failed(); ++i) {
        ++r_.sent;
        const Nanos rtt = ping(s_.timeout);
        if (rtt >= 0) {
          ++r_.completed;
          r_.samples.push_back(rtt);
        } else if (!failed()) {
          ++r_.lost;
        }
      }
      r_.finished = net_.now();
    }
    r_.error = error_;
    return std::move(r_);
  }

 private:
  bool setup() {
    if (!wait_for_addresses({s_.client, s_.server}, s_.ipv6)) return false;
    const int domain = s_.ipv6 ? AF_INET6 : AF_INET;
    capi_ = &net_.api(s_.client);
    sapi_ = &net_.api(s_.server);
    sfd_ = sapi_->socket(domain, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (sfd_ < 0) return fail("server (" + host_name(s_.server) + ") socket", sfd_);
    server_ = sockaddr_of(net_.addr(s_.server, s_.ipv6), s_.port);
    int r = sapi_->bind(sfd_, server_.sa(), server_.len);
    if (r < 0)
      return fail("server (" + host_name(s_.server) + ") bind to " +
                      net_.addr(s_.server, s_.ipv6).str() + " port " + std::to_string(s_.port),
                  r);
    cfd_ = capi_->socket(domain, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (cfd_ < 0) return fail("client (" + host_name(s_.client) + ") socket", cfd_);
    const SockAddr any = any_addr(s_.ipv6, 0);
    r = capi_->bind(cfd_, any.sa(), any.len);
    if (r < 0) return fail("client (" + host_name(s_.client) + ") bind", r);
    return true;
  }

  // One round trip: its RTT, or -1 if the pong did not come within `timeout`.
  Nanos ping(Nanos timeout) {
    ++seq_;
    std::memcpy(out_.data(), &seq_, 8);
    sent_ = got_ = false;
    const Nanos limit = after(net_.now(), timeout);
    auto pump = [this] { return pump_once(); };
    drive(
        pump, [] { return kNever; }, limit);
    return got_ ? got_at_ - t0_ : -1;
  }

  bool pump_once() {
    if (!sent_) {
      sent_ = true;
      t0_ = net_.now();
      const ssize_t w = capi_->sendto(cfd_, out_.data(), out_.size(), 0, server_.sa(), server_.len);
      if (w < 0 && !transient_udp_error(long(w)))
        return !fail("client (" + host_name(s_.client) + ") sendto", long(w));
    }
    // The server echoes every datagram back to its sender.
    while (true) {
      sockaddr_storage from{};
      socklen_t from_len = sizeof from;
      const ssize_t n = sapi_->recvfrom(sfd_, echo_.data(), echo_.size(), 0,
                                        reinterpret_cast<sockaddr*>(&from), &from_len);
      if (n == -EAGAIN) break;
      if (n < 0) return !fail("server (" + host_name(s_.server) + ") recvfrom", long(n));
      const ssize_t w = sapi_->sendto(sfd_, echo_.data(), size_t(n), 0,
                                      reinterpret_cast<sockaddr*>(&from), from_len);
      if (w < 0 && !transient_udp_error(long(w)))
        return !fail("server (" + host_name(s_.server) + ") sendto", long(w));
    }
    while (true) {
      const ssize_t n = capi_->recv(cfd_, in_.data(), in_.size(), 0);
      if (n == -EAGAIN) return false;
      if (n < 0 && n != -ECONNREFUSED)
        return !fail("client (" + host_name(s_.client) + ") recv", long(n));
      // A late pong of an earlier ping, or something else, is not this round trip's.
      if (size_t(n) == out_.size() && std::memcmp(in_.data(), out_.data(), out_.size()) == 0) {
        got_ = true;
        got_at_ = net_.now();
        return true;
      }
    }
  }

  PingPongSpec s_;
  LatencyResult r_;
  SocketApi* capi_ = nullptr;
  SocketApi* sapi_ = nullptr;
  int cfd_ = -1, sfd_ = -1;
  SockAddr server_;
  std::vector<uint8_t> out_, in_, echo_;
  uint64_t seq_ = 0;
  bool sent_ = false, got_ = false;
  Nanos t0_ = 0, got_at_ = 0;
};

// ----- TCP ping-pong

class TcpPingPongRun : Workload {
 public:
  TcpPingPongRun(Net& net, const PingPongSpec& spec) : Workload(net, "tcp_pingpong"), s_(spec) {
    check_host(net, s_.client, name_, "client");
    check_host(net, s_.server, name_, "server");
    if (s_.client == s_.server)
      throw std::invalid_argument("tcp_pingpong: client and server are the same host");
    if (s_.payload < 1)
      throw std::invalid_argument("tcp_pingpong: payload must be at least 1 byte");
    if (s_.timeout < 0) throw std::invalid_argument("tcp_pingpong: negative timeout");
    // TCP repairs a lost segment after a retransmission timeout (RFC 6298: 200 ms and more), so
    // a round trip is given seconds, not the UDP ping's 10 ms; one that still does not complete
    // is an error.
    if (s_.timeout == 0) s_.timeout = 10 * kSecond;
    out_.resize(s_.payload);
    for (size_t i = 0; i < out_.size(); ++i) out_[i] = uint8_t('A' + i % 26);
    srv_in_.resize(s_.payload);
    cli_in_.resize(s_.payload);
  }
  ~TcpPingPongRun() {
    if (cfd_ >= 0) capi_->close(cfd_);
    if (sfd_ >= 0) sapi_->close(sfd_);
    if (lfd_ >= 0) sapi_->close(lfd_);
    if (cfd_ >= 0 || sfd_ >= 0 || lfd_ >= 0) net_.kick();
  }

  LatencyResult run() {
    if (setup() && establish()) {
      for (uint64_t i = 0; i < s_.warmup && !failed(); ++i) round_trip();
      r_.started = net_.now();
      r_.samples.reserve(s_.count);
      for (uint64_t i = 0; i < s_.count && !failed(); ++i) {
        ++r_.sent;
        const Nanos rtt = round_trip();
        if (rtt < 0) break;
        ++r_.completed;
        r_.samples.push_back(rtt);
      }
      r_.finished = net_.now();
    }
    r_.error = error_;
    return std::move(r_);
  }

 private:
  std::string client() const { return "client (" + host_name(s_.client) + ")"; }
  std::string server() const { return "server (" + host_name(s_.server) + ")"; }

  bool setup() {
    if (!wait_for_addresses({s_.client, s_.server}, s_.ipv6)) return false;
    const int domain = s_.ipv6 ? AF_INET6 : AF_INET;
    capi_ = &net_.api(s_.client);
    sapi_ = &net_.api(s_.server);
    const int one = 1;
    lfd_ = sapi_->socket(domain, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (lfd_ < 0) return fail(server() + " socket", lfd_);
    sapi_->setsockopt(lfd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int r = sapi_->setsockopt(lfd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (r < 0) return fail(server() + " setsockopt TCP_NODELAY", r);
    const SockAddr at = sockaddr_of(net_.addr(s_.server, s_.ipv6), s_.port);
    r = sapi_->bind(lfd_, at.sa(), at.len);
    if (r < 0)
      return fail(server() + " bind to " + net_.addr(s_.server, s_.ipv6).str() + " port " +
                      std::to_string(s_.port),
                  r);
    r = sapi_->listen(lfd_, 1);
    if (r < 0) return fail(server() + " listen", r);
    cfd_ = capi_->socket(domain, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (cfd_ < 0) return fail(client() + " socket", cfd_);
    r = capi_->setsockopt(cfd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (r < 0) return fail(client() + " setsockopt TCP_NODELAY", r);
    r = capi_->connect(cfd_, at.sa(), at.len);
    if (r < 0 && r != -EINPROGRESS)
      return fail(client() + " connect to " + net_.addr(s_.server, s_.ipv6).str(), r);
    net_.kick();
    return true;
  }

  bool establish() {
    auto pump = [this] { return pump_connect(); };
    if (drive(
            pump, [] { return kNever; }, after(net_.now(), kConnectTimeout)))
      return !failed();
    return fail_text("the connection was not established within " +
                     std::to_string(kConnectTimeout / kMilli) + " ms");
  }

  bool pump_connect() {
    if (sfd_ < 0) {
      const int fd = sapi_->accept(lfd_, nullptr, nullptr, SOCK_NONBLOCK);
      if (fd >= 0) {
        sfd_ = fd;
        const int one = 1;
        sapi_->setsockopt(sfd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      } else if (fd != -EAGAIN) {
        return !fail(server() + " accept", fd);
      }
    }
    if (!connected_) {
      const uint32_t ev = capi_->poll_events(cfd_);
      if (ev & (POLLERR | POLLHUP)) return !fail(client() + " connect", socket_error(*capi_, cfd_));
      connected_ = (ev & POLLOUT) != 0;
    }
    return connected_ && sfd_ >= 0;
  }

  // One request and its response: the RTT, or -1 (and the error set).
  Nanos round_trip() {
    ++seq_;
    std::memcpy(out_.data(), &seq_, std::min<size_t>(8, out_.size()));
    started_ = false;
    c_sent_ = s_recv_ = s_sent_ = c_recv_ = 0;
    const Nanos limit = after(net_.now(), s_.timeout);
    auto pump = [this] { return pump_round_trip(); };
    if (drive(
            pump, [] { return kNever; }, limit) &&
        !failed())
      return done_at_ - t0_;
    fail_text("round trip " + std::to_string(seq_) + " did not complete within " +
              std::to_string(s_.timeout / kMilli) + " ms (client sent " + std::to_string(c_sent_) +
              ", server received " + std::to_string(s_recv_) + " and sent " +
              std::to_string(s_sent_) + ", client received " + std::to_string(c_recv_) + " of " +
              std::to_string(s_.payload) + " bytes)");
    return -1;
  }

  // Sends buf[done, end) on the client's (or the server's) socket as far as it takes; false (and
  // the error set) on a failure.
  bool send_upto(bool at_client, const uint8_t* buf, size_t& done, size_t end) {
    SocketApi& api = at_client ? *capi_ : *sapi_;
    const int fd = at_client ? cfd_ : sfd_;
    while (done < end) {
      const ssize_t w = api.send(fd, buf + done, end - done, MSG_NOSIGNAL);
      if (w == -EAGAIN) break;
      if (w <= 0) return fail((at_client ? client() : server()) + " send", w < 0 ? long(w) : -EIO);
      done += size_t(w);
    }
    return true;
  }

  // Receives into buf[done, end) what the client's (or the server's) socket holds; false (and
  // the error set) on a failure or the end of the stream.
  bool recv_upto(bool at_client, uint8_t* buf, size_t& done, size_t end) {
    SocketApi& api = at_client ? *capi_ : *sapi_;
    const int fd = at_client ? cfd_ : sfd_;
    while (done < end) {
      const ssize_t r = api.recv(fd, buf + done, end - done, 0);
      if (r == -EAGAIN) break;
      if (r < 0) return fail((at_client ? client() : server()) + " recv", long(r));
      if (r == 0)
        return fail_text(at_client ? client() + " recv: the server closed the connection"
                                   : server() + " recv: the client closed the connection");
      done += size_t(r);
    }
    return true;
  }

  bool pump_round_trip() {
    if (failed()) return true;
    if (!started_) {
      started_ = true;
      t0_ = net_.now();
    }
    const size_t n = s_.payload;
    // The server echoes the request as it arrives.
    if (!send_upto(true, out_.data(), c_sent_, n) || !recv_upto(false, srv_in_.data(), s_recv_, n) ||
        !send_upto(false, srv_in_.data(), s_sent_, s_recv_) ||
        !recv_upto(true, cli_in_.data(), c_recv_, n))
      return true;
    if (c_recv_ < n) return false;
    done_at_ = net_.now();
    if (std::memcmp(cli_in_.data(), out_.data(), n) != 0) {
      return !fail_text("round trip " + std::to_string(seq_) +
                        ": the response differs from the request");
    }
    return true;
  }

  PingPongSpec s_;
  LatencyResult r_;
  SocketApi* capi_ = nullptr;
  SocketApi* sapi_ = nullptr;
  int cfd_ = -1, sfd_ = -1, lfd_ = -1;
  bool connected_ = false, started_ = false;
  std::vector<uint8_t> out_, srv_in_, cli_in_;
  uint64_t seq_ = 0;
  size_t c_sent_ = 0, s_recv_ = 0, s_sent_ = 0, c_recv_ = 0;
  Nanos t0_ = 0, done_at_ = 0;
};

// ----- TCP bulk flows (and incast)

uint64_t mix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

class TcpBulkRun : Workload {
 public:
  TcpBulkRun(Net& net, const BulkSpec& spec) : Workload(net, "tcp_bulk"), s_(spec) {
    if (s_.flows.empty()) throw std::invalid_argument("tcp_bulk: no flows");
    if (s_.chunk == 0) throw std::invalid_argument("tcp_bulk: chunk must be at least 1 byte");
    if (s_.start_spread < 0 || s_.timeout < 0)
      throw std::invalid_argument("tcp_bulk: negative start_spread or timeout");
    for (size_t i = 0; i < s_.flows.size(); ++i) {
      const Flow& f = s_.flows[i];
      const std::string which = "flow " + std::to_string(i) + " sender";
      check_host(net, f.from, name_, which.c_str());
      check_host(net, f.to, name_, ("flow " + std::to_string(i) + " receiver").c_str());
      if (f.from == f.to)
        throw std::invalid_argument("tcp_bulk: flow " + std::to_string(i) +
                                    " sends to its own host");
    }
    flows_.resize(s_.flows.size());
    for (size_t i = 0; i < flows_.size(); ++i) {
      flows_[i].seed = mix64(s_.flows[i].from * 1'000'003 + s_.flows[i].to * 1'009 + i);
      flows_[i].out.resize(std::min<uint64_t>(s_.chunk, std::max<uint64_t>(s_.flows[i].bytes, 1)));
    }
    in_.resize(s_.chunk);
    expect_.resize(s_.chunk);
    for (const Flow& f : s_.flows) {
      if (std::none_of(receivers_.begin(), receivers_.end(),
                       [&](const Receiver& r) { return r.host == f.to; })) {
        receivers_.push_back(Receiver{f.to, -1, 0});
      }
      if (std::find(senders_.begin(), senders_.end(), f.from) == senders_.end())
        senders_.push_back(f.from);
    }
    for (Receiver& r : receivers_) {
      for (const Flow& f : s_.flows) r.flows += f.to == r.host;
    }
    r_.flows.resize(flows_.size());
  }
  ~TcpBulkRun() { close_all(); }

  BulkResult run() {
    std::vector<size_t> hosts(senders_);
    for (const Receiver& r : receivers_) hosts.push_back(r.host);
    uint64_t retransmits = 0;
    if (wait_for_addresses(hosts, s_.ipv6) && listen()) {
      for (size_t h : senders_) retransmits += net_.stack(h).counters().get("tcp.retransmits");
      r_.started = net_.now();
      for (size_t i = 0; i < flows_.size(); ++i)
        flows_[i].start_at = r_.started + Nanos(i) * s_.start_spread;
      auto pump = [this] { return pump_once(); };
      auto wake = [this] { return next_start(); };
      const bool done = drive(pump, wake, after(r_.started, s_.timeout));
      if (!done && !failed())
        fail_text(progress("timed out after " + std::to_string((net_.now() - r_.started) / kMilli) +
                           " ms"));
      for (size_t h : senders_) r_.retransmits += net_.stack(h).counters().get("tcp.retransmits");
      r_.retransmits -= retransmits;
    }
    r_.completed = !failed();
    r_.finished = -1;
    for (size_t i = 0; i < flows_.size(); ++i) {
      const FlowState& f = flows_[i];
      FlowResult& out = r_.flows[i];
      out.sent = f.sent;
      out.received = f.received;
      out.mismatch = f.mismatch;
      out.started = f.start_at;
      out.connected = f.connected_at;
      out.finished = f.finished_at;
      out.completed = f.received == s_.flows[i].bytes && f.mismatch == UINT64_MAX && f.eof;
      r_.bytes += f.received;
      r_.completed = r_.completed && out.completed;
      if (out.finished >= 0) r_.finished = std::max(r_.finished, out.finished);
    }
    if (!r_.completed) r_.finished = r_.finished < 0 ? net_.now() : r_.finished;
    r_.error = error_;
    close_all();
    return std::move(r_);
  }

 private:
  struct Receiver {
    size_t host;
    int lfd;
    size_t flows;
  };
  struct FlowState {
    uint64_t seed = 0;
    Nanos start_at = 0, connected_at = -1, finished_at = -1;
    int cfd = -1, sfd = -1;
    bool started = false, connected = false, shut = false, eof = false;
    SockAddr local;  // the sender's end, to know the connection when it is accepted
    uint64_t sent = 0, received = 0, mismatch = UINT64_MAX;
    // The pattern from stream offset gen_off, generated once and sent from until used up (most
    // send attempts find the buffer full and must cost next to nothing).
    std::vector<uint8_t> out;
    uint64_t gen_off = 0;
    size_t gen_len = 0;
  };

  std::string flow_name(size_t i) const {
    return "flow " + std::to_string(i) + " (host " + std::to_string(s_.flows[i].from) +
           " -> host " + std::to_string(s_.flows[i].to) + ")";
  }

  std::string progress(const std::string& head) const {
    std::string t = head;
    size_t shown = 0;
    for (size_t i = 0; i < flows_.size() && shown < 4; ++i) {
      const FlowState& f = flows_[i];
      if (f.eof) continue;
      t += "; " + flow_name(i) + " " + (f.connected ? "" : "not connected, ") + "received " +
           std::to_string(f.received) + "/" + std::to_string(s_.flows[i].bytes);
      ++shown;
    }
    return t;
  }

  void set_buffers(SocketApi& api, int fd) {
    if (s_.sndbuf > 0) api.setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &s_.sndbuf, sizeof(int));
    if (s_.rcvbuf > 0) api.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &s_.rcvbuf, sizeof(int));
  }

  bool listen() {
    const int domain = s_.ipv6 ? AF_INET6 : AF_INET;
    for (Receiver& r : receivers_) {
      SocketApi& api = net_.api(r.host);
      const std::string who = "receiver (" + host_name(r.host) + ")";
      r.lfd = api.socket(domain, SOCK_STREAM | SOCK_NONBLOCK, 0);
      if (r.lfd < 0) return fail(who + " socket", r.lfd);
      const int one = 1;
      api.setsockopt(r.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      set_buffers(api, r.lfd);  // inherited by the accepted sockets (and sizes their window)
      const SockAddr at = sockaddr_of(net_.addr(r.host, s_.ipv6), s_.port);
      int rc = api.bind(r.lfd, at.sa(), at.len);
      if (rc < 0)
        return fail(who + " bind to " + net_.addr(r.host, s_.ipv6).str() + " port " +
                        std::to_string(s_.port),
                    rc);
      rc = api.listen(r.lfd, int(std::min<size_t>(r.flows + 16, 4096)));
      if (rc < 0) return fail(who + " listen", rc);
    }
    return true;
  }

  Nanos next_start() const {
    for (const FlowState& f : flows_) {
      if (!f.started) return f.start_at;  // flows start in order
    }
    return kNever;
  }

  bool start(size_t i) {
    FlowState& f = flows_[i];
    const Flow& spec = s_.flows[i];
    SocketApi& api = net_.api(spec.from);
    f.started = true;
    f.start_at = net_.now();
    f.cfd = api.socket(s_.ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (f.cfd < 0) return fail(flow_name(i) + " socket", f.cfd);
    set_buffers(api, f.cfd);
    const SockAddr to = sockaddr_of(net_.addr(spec.to, s_.ipv6), s_.port);
    const int r = api.connect(f.cfd, to.sa(), to.len);
    if (r < 0 && r != -EINPROGRESS) return fail(flow_name(i) + " connect", r);
    f.local.len = sizeof f.local.ss;
    const int g = api.getsockname(f.cfd, reinterpret_cast<sockaddr*>(&f.local.ss), &f.local.len);
    if (g < 0) return fail(flow_name(i) + " getsockname", g);
    return true;
  }

  bool accept_all(Receiver& r) {
    SocketApi& api = net_.api(r.host);
    while (true) {
      sockaddr_storage peer{};
      socklen_t len = sizeof peer;
      const int fd = api.accept(r.lfd, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_NONBLOCK);
      if (fd == -EAGAIN) return true;
      if (fd < 0) return fail("receiver (" + host_name(r.host) + ") accept", fd);
      bool matched = false;
      for (size_t i = 0; i < flows_.size() && !matched; ++i) {
        FlowState& f = flows_[i];
        if (s_.flows[i].to != r.host || f.cfd < 0 || f.sfd >= 0 || !same_endpoint(peer, f.local))
          continue;
        f.sfd = fd;
        matched = true;
      }
      if (!matched) {
        api.close(fd);
        return fail_text("receiver (" + host_name(r.host) +
                         ") accepted a connection that no flow made");
      }
    }
  }

  bool send_side(size_t i) {
    FlowState& f = flows_[i];
    const uint64_t total = s_.flows[i].bytes;
    SocketApi& api = net_.api(s_.flows[i].from);
    while (f.sent < total) {
      if (f.sent >= f.gen_off + f.gen_len) {
        f.gen_off = f.sent;
        f.gen_len = size_t(std::min<uint64_t>(f.out.size(), total - f.sent));
        tcp_bulk_pattern(f.seed, f.gen_off, f.out.data(), f.gen_len);
      }
      const uint8_t* p = f.out.data() + (f.sent - f.gen_off);
      const size_t n = size_t(f.gen_off + f.gen_len - f.sent);
      const ssize_t w = api.send(f.cfd, p, n, MSG_NOSIGNAL);
      if (w == -EAGAIN) return true;
      if (w < 0) return fail(flow_name(i) + " send", long(w));
      if (w == 0 || size_t(w) > n) return fail(flow_name(i) + " send returned a bad length", -EIO);
      f.sent += uint64_t(w);
    }
    if (!f.shut) {
      const int r = api.shutdown(f.cfd, SHUT_WR);
      if (r < 0) return fail(flow_name(i) + " shutdown", r);
      f.shut = true;
    }
    return true;
  }

  bool recv_side(size_t i) {
    FlowState& f = flows_[i];
    const uint64_t total = s_.flows[i].bytes;
    SocketApi& api = net_.api(s_.flows[i].to);
    while (!f.eof) {
      const ssize_t n = api.recv(f.sfd, in_.data(), in_.size(), 0);
      if (n == -EAGAIN) return true;
      if (n < 0) return fail(flow_name(i) + " recv", long(n));
      if (n == 0) {
        f.eof = true;
        if (f.received != total) {
          return fail_text(flow_name(i) + ": end of stream after " + std::to_string(f.received) +
                           " of " + std::to_string(total) + " bytes");
        }
        break;
      }
      const size_t got = size_t(n);
      if (f.received + got > total)
        return fail_text(flow_name(i) + " received more bytes than were sent");
      tcp_bulk_pattern(f.seed, f.received, expect_.data(), got);
      if (std::memcmp(expect_.data(), in_.data(), got) != 0) {
        for (size_t k = 0; k < got; ++k) {
          if (expect_[k] != in_[k]) {
            f.mismatch = f.received + k;
            break;
          }
        }
        return fail_text(flow_name(i) + ": byte " + std::to_string(f.mismatch) +
                         " differs from what was sent");
      }
      f.received += got;
      if (f.received == total) f.finished_at = net_.now();
    }
    return true;
  }

  bool pump_once() {
    if (failed()) return true;
    const Nanos now = net_.now();
    for (size_t i = 0; i < flows_.size(); ++i) {
      if (!flows_[i].started && flows_[i].start_at <= now && !start(i)) return true;
    }
    for (Receiver& r : receivers_) {
      if (!accept_all(r)) return true;
    }
    bool done = true;
    for (size_t i = 0; i < flows_.size(); ++i) {
      FlowState& f = flows_[i];
      if (!f.started) {
        done = false;
        continue;
      }
      if (!f.connected) {
        SocketApi& api = net_.api(s_.flows[i].from);
        const uint32_t ev = api.poll_events(f.cfd);
        if (ev & (POLLERR | POLLHUP))
          return !fail(flow_name(i) + " connect", socket_error(api, f.cfd));
        if (ev & POLLOUT) {
          f.connected = true;
          f.connected_at = now;
          if (s_.flows[i].bytes == 0) f.finished_at = now;
        }
      }
      if (f.connected && !send_side(i)) return true;
      if (f.sfd >= 0 && !recv_side(i)) return true;
      done = done && f.eof;
    }
    return done;
  }

  void close_all() {
    bool any = false;
    for (size_t i = 0; i < flows_.size(); ++i) {
      FlowState& f = flows_[i];
      if (f.cfd >= 0) net_.api(s_.flows[i].from).close(f.cfd), any = true;
      if (f.sfd >= 0) net_.api(s_.flows[i].to).close(f.sfd), any = true;
      f.cfd = f.sfd = -1;
    }
    for (Receiver& r : receivers_) {
      if (r.lfd >= 0) net_.api(r.host).close(r.lfd), any = true;
      r.lfd = -1;
    }
    if (any) net_.kick();
  }

  BulkSpec s_;
  BulkResult r_;
  std::vector<FlowState> flows_;
  std::vector<Receiver> receivers_;
  std::vector<size_t> senders_;
  std::vector<uint8_t> in_, expect_;
};

// ----- Connection churn

class ChurnRun : Workload {
 public:
  ChurnRun(Net& net, const ChurnSpec& spec) : Workload(net, "churn"), s_(spec) {
    check_host(net, s_.client, name_, "client");
    check_host(net, s_.server, name_, "server");
    if (s_.client == s_.server)
      throw std::invalid_argument("churn: client and server are the same host");
    if (s_.parallel == 0) throw std::invalid_argument("churn: parallel must be at least 1");
    if (s_.timeout < 0) throw std::invalid_argument("churn: negative timeout");
    request_.resize(s_.request);
    tcp_bulk_pattern(7, 0, request_.data(), request_.size());
    in_.resize(std::max<size_t>(s_.request, 1));
    slots_.resize(std::min<uint64_t>(s_.parallel, std::max<uint64_t>(s_.count, 1)));
    serving_.reserve(2 * slots_.size() + 16);
    r_.connect_times.reserve(s_.count);
  }
  ~ChurnRun() { close_all(); }

  ChurnResult run() {
    const auto wall0 = std::chrono::steady_clock::now();
    if (wait_for_addresses({s_.client, s_.server}, s_.ipv6) && listen()) {
      capi_ = &net_.api(s_.client);
      r_.started = net_.now();
      for (Slot& c : slots_) {
        if (r_.opened < s_.count && !start(c)) break;
      }
      auto pump = [this] { return pump_once(); };
      const bool done =
          !failed() && drive(
                           pump, [] { return kNever; }, after(r_.started, s_.timeout));
      r_.finished = net_.now();
      if (!done && !failed()) {
        fail_text("timed out after " + std::to_string((net_.now() - r_.started) / kMilli) +
                  " ms: " + std::to_string(r_.closed) + " of " + std::to_string(s_.count) +
                  " connections closed, " + std::to_string(r_.failed) + " failed");
      }
    }
    if (error_.empty() && r_.failed > 0) {
      fail_text(std::to_string(r_.failed) + " connections failed; the first: " + first_failure_);
    }
    r_.error = error_;
    close_all();
    r_.wall_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
    return std::move(r_);
  }

 private:
  struct Slot {  // a client connection
    int fd = -1;
    bool established = false;
    Nanos connect_at = 0;
    size_t sent = 0, received = 0;
    uint64_t number = 0;
  };
  struct Served {  // an accepted connection
    int fd = -1;
    size_t received = 0, echoed = 0;
  };

  std::string client() const { return "client (" + host_name(s_.client) + ")"; }
  std::string server() const { return "server (" + host_name(s_.server) + ")"; }

  bool listen() {
    sapi_ = &net_.api(s_.server);
    lfd_ = sapi_->socket(s_.ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (lfd_ < 0) return fail(server() + " socket", lfd_);
    const int one = 1;
    sapi_->setsockopt(lfd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sapi_->setsockopt(lfd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    to_ = sockaddr_of(net_.addr(s_.server, s_.ipv6), s_.port);
    int r = sapi_->bind(lfd_, to_.sa(), to_.len);
    if (r < 0)
      return fail(server() + " bind to " + net_.addr(s_.server, s_.ipv6).str() + " port " +
                      std::to_string(s_.port),
                  r);
    r = sapi_->listen(lfd_, int(std::min<size_t>(2 * slots_.size() + 16, 4096)));
    if (r < 0) return fail(server() + " listen", r);
    return true;
  }

  uint64_t open_now() const { return r_.opened - r_.closed - r_.failed; }

  bool start(Slot& c) {
    c = Slot{};
    c.number = r_.opened++;
    c.connect_at = net_.now();
    c.fd = capi_->socket(s_.ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c.fd < 0)
      return fail(client() + " socket for connection " + std::to_string(c.number), c.fd);
    const int one = 1;
    capi_->setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    const int r = capi_->connect(c.fd, to_.sa(), to_.len);
    if (r < 0 && r != -EINPROGRESS) return connection_failed(c, "connect", r);
    return true;
  }

  // A connection that failed is counted, not fatal: the next one starts.
  bool connection_failed(Slot& c, const char* call, long err) {
    ++r_.failed;
    if (first_failure_.empty())
      first_failure_ =
          "connection " + std::to_string(c.number) + ": " + call + ": " + errno_text(err);
    capi_->close(c.fd);
    c.fd = -1;
    return true;
  }

  // One client connection's progress; false on a fatal error.
  bool pump_client(Slot& c) {
    if (!c.established) {
      const uint32_t ev = capi_->poll_events(c.fd);
      if (ev & (POLLERR | POLLHUP))
        return connection_failed(c, "connect", socket_error(*capi_, c.fd));
      if (!(ev & POLLOUT)) return true;
      c.established = true;
      r_.connect_times.push_back(net_.now() - c.connect_at);
    }
    while (c.sent < request_.size()) {
      const ssize_t w =
          capi_->send(c.fd, request_.data() + c.sent, request_.size() - c.sent, MSG_NOSIGNAL);
      if (w == -EAGAIN) break;
      if (w <= 0) return connection_failed(c, "send", w < 0 ? long(w) : -EIO);
      c.sent += size_t(w);
    }
    while (c.received < request_.size()) {
      const ssize_t n = capi_->recv(c.fd, in_.data(), request_.size() - c.received, 0);
      if (n == -EAGAIN) break;
      if (n <= 0) return connection_failed(c, "recv", n < 0 ? long(n) : -ECONNRESET);
      if (std::memcmp(in_.data(), request_.data() + c.received, size_t(n)) != 0) {
        return fail_text(client() + " connection " + std::to_string(c.number) +
                         ": the echo differs from the request");
      }
      c.received += size_t(n);
    }
    if (c.received < request_.size()) return true;
    // The client closes first (and keeps TIME_WAIT, RFC 9293 3.6), then opens the next one.
    capi_->close(c.fd);
    c.fd = -1;
    return true;
  }

  // One accepted connection's progress: echo, and close on the client's FIN; false on a fatal
  // error. Sets `closed` when the server closed it.
  bool pump_served(Served& v, bool& closed) {
    closed = false;
    while (true) {
      const size_t want = v.received < request_.size() ? request_.size() - v.received : 1;
      const ssize_t n = sapi_->recv(v.fd, in_.data(), want, 0);
      if (n == -EAGAIN) break;
      if (n < 0) {
        // The client gave up on it (a reset): counted as the client's failure, if it failed.
        sapi_->close(v.fd);
        closed = true;
        return true;
      }
      if (n == 0) {
        if (v.received != request_.size()) {
          return fail_text(server() + ": end of stream after " + std::to_string(v.received) +
                           " of " + std::to_string(request_.size()) + " request bytes");
        }
        sapi_->close(v.fd);
        closed = true;
        ++r_.closed;
        return true;
      }
      if (v.received + size_t(n) > request_.size() ||
          std::memcmp(in_.data(), request_.data() + v.received, size_t(n)) != 0) {
        return fail_text(server() + ": a request differs from what clients send");
      }
      v.received += size_t(n);
    }
    while (v.echoed < v.received) {
      const ssize_t w =
          sapi_->send(v.fd, request_.data() + v.echoed, v.received - v.echoed, MSG_NOSIGNAL);
      if (w == -EAGAIN) break;
      if (w <= 0) return fail(server() + " send", w < 0 ? long(w) : -EIO);
      v.echoed += size_t(w);
    }
    return true;
  }

  bool pump_once() {
    if (failed()) return true;
    while (true) {
      const int fd = sapi_->accept(lfd_, nullptr, nullptr, SOCK_NONBLOCK);
      if (fd == -EAGAIN) break;
      if (fd < 0) return !fail(server() + " accept", fd);
      serving_.push_back(Served{fd, 0, 0});
    }
    for (size_t i = 0; i < serving_.size();) {
      bool closed = false;
      if (!pump_served(serving_[i], closed)) return true;
      if (closed) {
        serving_[i] = serving_.back();
        serving_.pop_back();
      } else {
        ++i;
      }
    }
    for (Slot& c : slots_) {
      if (c.fd >= 0 && !pump_client(c)) return true;
      // A connection is open until the server has closed it too: `parallel` at a time.
      if (c.fd < 0 && r_.opened < s_.count && open_now() < slots_.size() && !start(c)) return true;
    }
    return r_.closed + r_.failed >= s_.count && serving_.empty();
  }

  void close_all() {
    bool any = false;
    for (Slot& c : slots_) {
      if (c.fd >= 0) capi_->close(c.fd), any = true;
      c.fd = -1;
    }
    for (Served& v : serving_) sapi_->close(v.fd), any = true;
    serving_.clear();
    if (lfd_ >= 0) sapi_->close(lfd_), any = true;
    lfd_ = -1;
    if (any) net_.kick();
  }

  ChurnSpec s_;
  ChurnResult r_;
  SocketApi* capi_ = nullptr;
  SocketApi* sapi_ = nullptr;
  int lfd_ = -1;
  SockAddr to_;
  std::vector<uint8_t> request_, in_;
  std::vector<Slot> slots_;
  std::vector<Served> serving_;
  std::string first_failure_;
};

// ----- Multicast fan-out

class MulticastRun : Workload {
 public:
  MulticastRun(Net& net, const MulticastSpec& spec) : Workload(net, "multicast_fanout"), s_(spec) {
    check_host(net, s_.sender, name_, "sender");
    if (s_.receivers.empty()) throw std::invalid_argument("multicast_fanout: no receivers");
    for (size_t i = 0; i < s_.receivers.size(); ++i) {
      const size_t h = s_.receivers[i];
      check_host(net, h, name_, "receiver");
      if (h == s_.sender)
        throw std::invalid_argument("multicast_fanout: the sender is also a receiver");
      if (std::find(s_.receivers.begin(), s_.receivers.begin() + long(i), h) !=
          s_.receivers.begin() + long(i)) {
        throw std::invalid_argument("multicast_fanout: receiver " + host_name(h) + " listed twice");
      }
    }
    auto group = IpAddr::parse(s_.group);
    if (!group || !group->is_multicast()) {
      throw std::invalid_argument("multicast_fanout: group '" + s_.group +
                                  "' is not a multicast address");
    }
    group_ = *group;
    if (s_.payload < 16)
      throw std::invalid_argument(
          "multicast_fanout: payload must be at least 16 bytes (sequence number and send time)");
    if (s_.payload > kMaxUdpPayload)
      throw std::invalid_argument(
          "multicast_fanout: payload larger than a UDP datagram (65507 bytes)");
    if (s_.interval < 0 || s_.timeout < 0)
      throw std::invalid_argument("multicast_fanout: negative interval or timeout");
    out_.resize(s_.payload);
    // Bytes 16.. stay as they are: what every receiver checks.
    for (size_t i = 16; i < s_.payload; ++i) out_[i] = uint8_t(i * 7 + 3);
    in_.resize(s_.payload + 1);
    rx_.resize(s_.receivers.size());
    for (Rx& r : rx_) r.seen.assign(s_.count, false);
    r_.received.assign(s_.receivers.size(), 0);
    r_.latency.resize(s_.receivers.size());
    for (auto& l : r_.latency) l.reserve(s_.count);
  }
  ~MulticastRun() { close_all(); }

  MulticastResult run() {
    std::vector<size_t> hosts(s_.receivers);
    hosts.push_back(s_.sender);
    if (wait_for_addresses(hosts, group_.is_v6()) && setup()) {
      start_ = net_.now();
      auto pump = [this] { return pump_once(); };
      auto wake = [this] { return next_wake(); };
      const Nanos limit = after(start_, s_.timeout);
      drive(pump, wake, limit);
      if (r_.sent < s_.count && !failed()) {
        fail_text("timed out after " + std::to_string((net_.now() - start_) / kMilli) +
                  " ms with " + std::to_string(r_.sent) + " of " + std::to_string(s_.count) +
                  " datagrams sent");
      }
    }
    r_.error = error_;
    close_all();
    return std::move(r_);
  }

 private:
  struct Rx {
    int fd = -1;
    std::vector<bool> seen;  // by sequence number
  };

  // After the last send, stragglers are waited for this long; a datagram later than that counts
  // as lost (received < sent).
  static constexpr Nanos kDrain = kSecond;

  bool setup() {
    const bool v6 = group_.is_v6();
    const int domain = v6 ? AF_INET6 : AF_INET;
    const SockAddr any = any_addr(v6, s_.port);
    for (size_t i = 0; i < rx_.size(); ++i) {
      const size_t h = s_.receivers[i];
      SocketApi& api = net_.api(h);
      const std::string who = "receiver (" + host_name(h) + ")";
      rx_[i].fd = api.socket(domain, SOCK_DGRAM | SOCK_NONBLOCK, 0);
      if (rx_[i].fd < 0) return fail(who + " socket", rx_[i].fd);
      const int one = 1;
      api.setsockopt(rx_[i].fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      int r = api.bind(rx_[i].fd, any.sa(), any.len);
      if (r < 0) return fail(who + " bind to port " + std::to_string(s_.port), r);
      // Joining sends an unsolicited report (RFC 3376 5.1, RFC 3810 6.1).
      if (v6) {
        ipv6_mreq m{};
        group_.v6.write(reinterpret_cast<uint8_t*>(&m.ipv6mr_multiaddr));
        r = api.setsockopt(rx_[i].fd, IPPROTO_IPV6, IPV6_JOIN_GROUP, &m, sizeof m);
      } else {
        ip_mreq m{};
        group_.v4.write(reinterpret_cast<uint8_t*>(&m.imr_multiaddr));
        r = api.setsockopt(rx_[i].fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof m);
      }
      if (r < 0) return fail(who + " join " + s_.group, r);
    }
    SocketApi& api = net_.api(s_.sender);
    const std::string who = "sender (" + host_name(s_.sender) + ")";
    tx_ = api.socket(domain, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (tx_ < 0) return fail(who + " socket", tx_);
    const int zero = 0;
    const int r = v6 ? api.setsockopt(tx_, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &zero, sizeof zero)
                     : api.setsockopt(tx_, IPPROTO_IP, IP_MULTICAST_LOOP, &zero, sizeof zero);
    if (r < 0) return fail(who + " setsockopt multicast loop", r);
    to_ = sockaddr_of(group_, s_.port);
    net_.kick();
    return true;
  }

  Nanos next_wake() const {
    if (r_.sent < s_.count) return std::max(start_ + Nanos(r_.sent) * s_.interval, retry_at_);
    return last_send_ + kDrain;
  }

  bool pump_once() {
    if (failed()) return true;
    const Nanos now = net_.now();
    SocketApi& api = net_.api(s_.sender);
    while (r_.sent < s_.count && now >= start_ + Nanos(r_.sent) * s_.interval && now >= retry_at_) {
      const uint64_t seq = r_.sent;
      std::memcpy(out_.data(), &seq, 8);
      std::memcpy(out_.data() + 8, &now, 8);
      const ssize_t w = api.sendto(tx_, out_.data(), out_.size(), 0, to_.sa(), to_.len);
      if (w == -EAGAIN || w == -ENOBUFS) {
        retry_at_ = now + kMicro;  // the NIC's queue is full: again a little later
        break;
      }
      if (w < 0) return !fail("sender (" + host_name(s_.sender) + ") sendto " + s_.group, long(w));
      ++r_.sent;
      last_send_ = now;
    }
    bool all = r_.sent == s_.count;
    for (size_t i = 0; i < rx_.size(); ++i) {
      SocketApi& rapi = net_.api(s_.receivers[i]);
      while (true) {
        const ssize_t n = rapi.recv(rx_[i].fd, in_.data(), in_.size(), 0);
        if (n == -EAGAIN) break;
        if (n < 0) return !fail("receiver (" + host_name(s_.receivers[i]) + ") recv", long(n));
        uint64_t seq = 0;
        Nanos sent_at = 0;
        if (size_t(n) != s_.payload) {
          ++r_.corrupt;
          continue;
        }
        std::memcpy(&seq, in_.data(), 8);
        std::memcpy(&sent_at, in_.data() + 8, 8);
        if (seq >= s_.count || sent_at > now ||
            std::memcmp(in_.data() + 16, out_.data() + 16, s_.payload - 16) != 0) {
          ++r_.corrupt;
          continue;
        }
        if (rx_[i].seen[seq]) {
          ++r_.duplicates;
          continue;
        }
        rx_[i].seen[seq] = true;
        ++r_.received[i];
        r_.latency[i].push_back(now - sent_at);
      }
      all = all && r_.received[i] == s_.count;
    }
    if (all) return true;
    return r_.sent == s_.count && now >= last_send_ + kDrain;
  }

  void close_all() {
    bool any = false;
    for (size_t i = 0; i < rx_.size(); ++i) {
      if (rx_[i].fd >= 0) net_.api(s_.receivers[i]).close(rx_[i].fd), any = true;
      rx_[i].fd = -1;
    }
    if (tx_ >= 0) net_.api(s_.sender).close(tx_), any = true;
    tx_ = -1;
    if (any) net_.kick();
  }

  MulticastSpec s_;
  MulticastResult r_;
  IpAddr group_;
  SockAddr to_;
  int tx_ = -1;
  std::vector<Rx> rx_;
  std::vector<uint8_t> out_, in_;
  Nanos start_ = 0, last_send_ = 0, retry_at_ = 0;
};

}  // namespace

LatencyResult udp_pingpong(Net& net, const PingPongSpec& spec) {
  return UdpPingPongRun(net, spec).run();
}

LatencyResult tcp_pingpong(Net& net, const PingPongSpec& spec) {
  return TcpPingPongRun(net, spec).run();
}

BulkResult tcp_bulk(Net& net, const BulkSpec& spec) { return TcpBulkRun(net, spec).run(); }

ChurnResult churn(Net& net, const ChurnSpec& spec) { return ChurnRun(net, spec).run(); }

MulticastResult multicast_fanout(Net& net, const MulticastSpec& spec) {
  return MulticastRun(net, spec).run();
}

}  // namespace shunt::bindings
