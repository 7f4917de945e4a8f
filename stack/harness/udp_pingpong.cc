#include "stack/harness/udp_pingpong.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>

#include "stack/harness/harness.h"
#include "stack/socket/socket_api.h"

namespace shunt {

namespace {

void fill_addr(uint8_t* out, uint32_t& len, bool v6, size_t index, uint16_t port) {
  std::memset(out, 0, 28);
  if (v6) {
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(port);
    Harness::ipv6_of(index).write(reinterpret_cast<uint8_t*>(&a.sin6_addr));
    std::memcpy(out, &a, sizeof a);
    len = sizeof a;
  } else {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(Harness::ipv4_of(index).v);
    std::memcpy(out, &a, sizeof a);
    len = sizeof a;
  }
}
}  // namespace

Nanos PingPongResult::percentile(double p) const {
  if (rtts.empty()) return 0;
  std::vector<Nanos> s(rtts);
  std::sort(s.begin(), s.end());
  size_t rank = size_t(std::ceil(p * double(s.size())));
  rank = std::clamp<size_t>(rank, 1, s.size());
  return s[rank - 1];
}

UdpPingPong::UdpPingPong(Harness& h, const PingPongOptions& o) : h_(h), o_(o) {
  o_.payload = std::max<size_t>(o_.payload, 8);
  out_.assign(o_.payload, 0);
  for (size_t i = 8; i < out_.size(); ++i) out_[i] = uint8_t('a' + i % 26);
  in_.assign(o_.payload + 64, 0);
  echo_.assign(o_.payload + 64, 0);
  if (o_.timeout == 0) {
    const LinkConfig& l = h_.link().config();
    Nanos rtt = 2 * (l.delay + h_.link().serialization_time(o_.payload + 62) + l.reorder_delay);
    o_.timeout = 10 * kMilli + 4 * rtt;
  }
}

UdpPingPong::~UdpPingPong() {
  if (client_api_) {
    if (client_fd_ >= 0) client_api_->close(client_fd_);
    delete client_api_;
  }
  if (server_api_) {
    if (server_fd_ >= 0) server_api_->close(server_fd_);
    delete server_api_;
  }
}

bool UdpPingPong::fail(const char* what, long err) {
  result_.error = std::string(what) + ": " + std::strerror(int(-err));
  return false;
}

bool UdpPingPong::setup() {
  StackObserver* obs = h_.observer();
  client_api_ = new SocketApi(h_.stack(o_.client));
  server_api_ = new SocketApi(h_.stack(o_.server));
  const int domain = o_.ipv6 ? AF_INET6 : AF_INET;
  uint8_t addr[28];
  uint32_t len = 0;
  {
    StackScope e(obs, o_.server);
    server_fd_ = server_api_->socket(domain, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (server_fd_ < 0) return fail("server socket", server_fd_);
    fill_addr(addr, len, o_.ipv6, o_.server, o_.server_port);
    int r = server_api_->bind(server_fd_, reinterpret_cast<sockaddr*>(addr), len);
    if (r < 0) return fail("server bind", r);
  }
  {
    StackScope e(obs, o_.client);
    client_fd_ = client_api_->socket(domain, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (client_fd_ < 0) return fail("client socket", client_fd_);
    fill_addr(addr, len, o_.ipv6, o_.client, o_.client_port);
    int r = client_api_->bind(client_fd_, reinterpret_cast<sockaddr*>(addr), len);
    if (r < 0) return fail("client bind", r);
  }
  fill_addr(server_addr_, server_addr_len_, o_.ipv6, o_.server, o_.server_port);
  return true;
}

// The server echoes everything waiting for it back to its sender.
void UdpPingPong::serve() {
  StackScope e(h_.observer(), o_.server);
  while (true) {
    sockaddr_in6 from{};
    socklen_t from_len = sizeof from;
    ssize_t n = server_api_->recvfrom(server_fd_, echo_.data(), echo_.size(), 0,
                                      reinterpret_cast<sockaddr*>(&from), &from_len);
    if (n < 0) return;
    server_api_->sendto(server_fd_, echo_.data(), size_t(n), 0, reinterpret_cast<sockaddr*>(&from),
                        from_len);
  }
}

bool UdpPingPong::ping(uint64_t seq, Nanos timeout) {
  StackObserver* obs = h_.observer();
  std::memcpy(out_.data(), &seq, 8);
  const Nanos t0 = h_.now();
  {
    StackScope e(obs, o_.client);
    ssize_t r =
        client_api_->sendto(client_fd_, out_.data(), out_.size(), 0,
                            reinterpret_cast<const sockaddr*>(server_addr_), server_addr_len_);
    if (r < 0 && r != -EAGAIN && r != -ENOBUFS && r != -EHOSTUNREACH)
      return fail("client sendto", long(r));
  }
  ++result_.sent;
  bool got = false;
  auto done = [&] {
    serve();
    StackScope e(obs, o_.client);
    while (true) {
      ssize_t n = client_api_->recv(client_fd_, in_.data(), in_.size(), 0);
      if (n < 0) return false;
      uint64_t echoed = 0;
      if (size_t(n) == out_.size()) std::memcpy(&echoed, in_.data(), 8);
      if (size_t(n) == out_.size() && echoed == seq) {
        got = true;
        return true;
      }
      // A late pong of an earlier ping: ignored.
    }
  };
  h_.run_until(done, timeout);
  if (got) {
    ++result_.completed;
    result_.rtts.push_back(h_.now() - t0);
  } else {
    ++result_.lost;
  }
  return true;
}

const PingPongResult& UdpPingPong::run(uint64_t count) {
  if (client_fd_ < 0 && result_.error.empty() && !setup()) return result_;
  if (!result_.error.empty()) return result_;
  if (result_.sent == 0) result_.started = h_.now();
  result_.rtts.reserve(result_.rtts.size() + count);
  for (uint64_t i = 0; i < count; ++i) {
    Nanos timeout = seq_ == 0 ? std::max(o_.first_timeout, o_.timeout) : o_.timeout;
    if (!ping(seq_++, timeout)) break;
  }
  result_.finished = h_.now();
  return result_;
}

}  // namespace shunt
