#include "stack/harness/tcp_bulk.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "stack/harness/harness.h"
#include "stack/socket/socket_api.h"

namespace shunt {

namespace {


uint64_t mix(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

constexpr uint64_t kFnvOffset = 0xcbf29ce484222325ULL;
constexpr uint64_t kFnvPrime = 0x100000001b3ULL;

uint64_t fnv(uint64_t h, const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * kFnvPrime;
  return h;
}

socklen_t fill_addr(sockaddr_storage& ss, bool v6, size_t index, uint16_t port) {
  std::memset(&ss, 0, sizeof ss);
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    Harness::ipv6_of(index).write(reinterpret_cast<uint8_t*>(&a->sin6_addr));
    return sizeof(sockaddr_in6);
  }
  auto* a = reinterpret_cast<sockaddr_in*>(&ss);
  a->sin_family = AF_INET;
  a->sin_port = htons(port);
  a->sin_addr.s_addr = htonl(Harness::ipv4_of(index).v);
  return sizeof(sockaddr_in);
}

}  // namespace

void tcp_bulk_pattern(uint64_t seed, uint64_t offset, uint8_t* out, size_t len) {
  // Each 8-byte word of the stream is a hash of (seed, word index).
  const uint64_t key = mix(seed);
  uint64_t word = offset / 8;
  size_t skip = size_t(offset % 8);
  while (len > 0) {
    const uint64_t v = mix(key ^ word);
    uint8_t b[8];
    std::memcpy(b, &v, 8);
    const size_t n = std::min(len, 8 - skip);
    std::memcpy(out, b + skip, n);
    out += n;
    len -= n;
    skip = 0;
    ++word;
  }
}

double TcpBulkResult::goodput_bps() const {
  const Nanos t = finished - connected;
  if (t <= 0) return 0;
  uint64_t bytes = received_c2s;
  if (received_s2c && (!received_c2s || received_s2c < received_c2s)) bytes = received_s2c;
  return double(bytes) * 8.0 * double(kSecond) / double(t);
}

TcpBulk::TcpBulk(Harness& h, const TcpBulkOptions& o, SocketApi* client_api, SocketApi* server_api)
    : h_(h), o_(o), capi_(client_api), sapi_(server_api) {
  if (!capi_) {
    capi_ = new SocketApi(h_.stack(o_.client));
    own_capi_ = true;
  }
  if (!sapi_) {
    sapi_ = new SocketApi(h_.stack(o_.server));
    own_sapi_ = true;
  }
  o_.chunk = std::max<size_t>(o_.chunk, 1);
  c2s_.out.resize(o_.chunk);
  s2c_.out.resize(o_.chunk);
  in_.resize(o_.chunk);
  expect_.resize(o_.chunk);
  c2s_.seed = mix(o_.seed * 2 + 0);
  c2s_.total = o_.client_to_server;
  s2c_.seed = mix(o_.seed * 2 + 1);
  s2c_.total = o_.server_to_client;
  c2s_.hash_sent = c2s_.hash_received = s2c_.hash_sent = s2c_.hash_received = kFnvOffset;
}

TcpBulk::~TcpBulk() {
  if (client_fd_ >= 0) capi_->close(client_fd_);
  if (server_fd_ >= 0) sapi_->close(server_fd_);
  if (listen_fd_ >= 0) sapi_->close(listen_fd_);
  if (own_capi_) delete capi_;
  if (own_sapi_) delete sapi_;
}

bool TcpBulk::fail(const char* what, long err) {
  if (r_.error.empty()) r_.error = std::string(what) + ": " + std::strerror(int(-err));
  return false;
}

bool TcpBulk::setup() {
  StackObserver* obs = h_.observer();
  const int domain = o_.ipv6 ? AF_INET6 : AF_INET;
  sockaddr_storage ss;
  auto set_common = [&](SocketApi& api, int fd) -> int {
    int r = 0;
    if (o_.sndbuf > 0 && (r = api.setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &o_.sndbuf, sizeof(int))) < 0) return r;
    if (o_.rcvbuf > 0 && (r = api.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &o_.rcvbuf, sizeof(int))) < 0) return r;
    const int one = 1;
    if (o_.nodelay && (r = api.setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one)) < 0) return r;
    return 0;
  };
  {
    StackScope e(obs, o_.server);
    listen_fd_ = sapi_->socket(domain, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (listen_fd_ < 0) return fail("server socket", listen_fd_);
    const int one = 1;
    sapi_->setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    // Buffers set on the listener are inherited by the accepted socket (and size its window).
    int r = set_common(*sapi_, listen_fd_);
    if (r < 0) return fail("server setsockopt", r);
    const socklen_t len = fill_addr(ss, o_.ipv6, o_.server, o_.port);
    r = sapi_->bind(listen_fd_, reinterpret_cast<sockaddr*>(&ss), len);
    if (r < 0) return fail("server bind", r);
    r = sapi_->listen(listen_fd_, 16);
    if (r < 0) return fail("server listen", r);
  }
  {
    StackScope e(obs, o_.client);
    client_fd_ = capi_->socket(domain, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (client_fd_ < 0) return fail("client socket", client_fd_);
    int r = set_common(*capi_, client_fd_);
    if (r < 0) return fail("client setsockopt", r);
    const socklen_t len = fill_addr(ss, o_.ipv6, o_.server, o_.port);
    r = capi_->connect(client_fd_, reinterpret_cast<sockaddr*>(&ss), len);
    if (r < 0 && r != -EINPROGRESS) return fail("client connect", r);
  }
  return true;
}

bool TcpBulk::send_side(SocketApi& api, size_t stack, int fd, Direction& d) {
  StackScope e(h_.observer(), stack);
  while (d.sent < d.total) {
    if (d.sent >= d.gen_off + d.gen_len) {
      d.gen_off = d.sent;
      d.gen_len = size_t(std::min<uint64_t>(o_.chunk, d.total - d.sent));
      tcp_bulk_pattern(d.seed, d.gen_off, d.out.data(), d.gen_len);
    }
    const uint8_t* p = d.out.data() + (d.sent - d.gen_off);
    const size_t n = size_t(d.gen_off + d.gen_len - d.sent);
    const ssize_t w = api.send(fd, p, n, MSG_NOSIGNAL);
    if (w == -EAGAIN) return true;
    if (w < 0) return fail("send", long(w));
    if (w == 0 || size_t(w) > n) return fail("send returned a bad length", -EIO);
    d.hash_sent = fnv(d.hash_sent, p, size_t(w));
    d.sent += uint64_t(w);
  }
  if (o_.shutdown_at_end && !d.shut) {
    const int r = api.shutdown(fd, SHUT_WR);
    if (r < 0) return fail("shutdown", r);
    d.shut = true;
  }
  return true;
}

bool TcpBulk::recv_side(SocketApi& api, size_t stack, int fd, Direction& d, bool paused) {
  if (paused) return true;
  StackScope e(h_.observer(), stack);
  while (!d.eof) {
    size_t cap = o_.chunk;
    // Stop exactly at the pause point, so the window closes with the reader idle.
    if (&d == &c2s_ && pause_until_ < 0 && o_.reader_pause_at != UINT64_MAX) {
      if (d.received >= o_.reader_pause_at) {
        pause_until_ = h_.now() + o_.reader_pause;
        return true;
      }
      cap = size_t(std::min<uint64_t>(cap, o_.reader_pause_at - d.received));
    }
    const ssize_t n = api.recv(fd, in_.data(), cap, 0);
    if (n == -EAGAIN) return true;
    if (n < 0) return fail("recv", long(n));
    if (n == 0) {
      d.eof = true;
      break;
    }
    const size_t got = size_t(n);
    if (d.received + got > d.total) return fail("received more bytes than were sent", -EIO);
    tcp_bulk_pattern(d.seed, d.received, expect_.data(), got);
    if (d.mismatch == UINT64_MAX && std::memcmp(expect_.data(), in_.data(), got) != 0) {
      for (size_t i = 0; i < got; ++i) {
        if (expect_[i] != in_[i]) {
          d.mismatch = d.received + i;
          break;
        }
      }
      fail("received a byte that differs from the pattern", -EIO);
    }
    d.hash_received = fnv(d.hash_received, in_.data(), got);
    d.received += got;
  }
  return true;
}

bool TcpBulk::pump() {
  if (!r_.error.empty()) return true;
  StackObserver* obs = h_.observer();
  if (server_fd_ < 0) {
    StackScope e(obs, o_.server);
    const int fd = sapi_->accept(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK);
    if (fd >= 0) {
      server_fd_ = fd;
    } else if (fd != -EAGAIN) {
      return !fail("accept", fd);
    }
  }
  if (!connected_) {
    StackScope e(obs, o_.client);
    const uint32_t ev = capi_->poll_events(client_fd_);
    if (ev & (POLLERR | POLLHUP)) {
      int err = 0;
      socklen_t l = sizeof err;
      capi_->getsockopt(client_fd_, SOL_SOCKET, SO_ERROR, &err, &l);
      return !fail("connect", err ? -err : -ECONNRESET);
    }
    if (!(ev & POLLOUT)) return false;
    connected_ = true;
    r_.connected = h_.now();
  }
  const bool paused = pause_until_ >= 0 && h_.now() < pause_until_;
  if (!send_side(*capi_, o_.client, client_fd_, c2s_)) return true;
  if (server_fd_ >= 0) {
    if (!recv_side(*sapi_, o_.server, server_fd_, c2s_, paused)) return true;
    if (!send_side(*sapi_, o_.server, server_fd_, s2c_)) return true;
  }
  if (!recv_side(*capi_, o_.client, client_fd_, s2c_, false)) return true;
  auto dir_done = [&](const Direction& d) {
    if (o_.shutdown_at_end) return d.eof;
    return d.received == d.total;
  };
  return server_fd_ >= 0 && dir_done(c2s_) && dir_done(s2c_);
}

void TcpBulk::finish() {
  r_.sent_c2s = c2s_.sent;
  r_.received_c2s = c2s_.received;
  r_.sent_s2c = s2c_.sent;
  r_.received_s2c = s2c_.received;
  r_.eof_at_server = c2s_.eof;
  r_.eof_at_client = s2c_.eof;
  r_.mismatch_c2s = c2s_.mismatch;
  r_.mismatch_s2c = s2c_.mismatch;
  r_.hash_sent_c2s = c2s_.hash_sent;
  r_.hash_received_c2s = c2s_.hash_received;
  r_.hash_sent_s2c = s2c_.hash_sent;
  r_.hash_received_s2c = s2c_.hash_received;
  r_.completed = r_.error.empty() && c2s_.received == c2s_.total && s2c_.received == s2c_.total &&
                 c2s_.mismatch == UINT64_MAX && s2c_.mismatch == UINT64_MAX &&
                 c2s_.hash_received == c2s_.hash_sent && s2c_.hash_received == s2c_.hash_sent &&
                 (!o_.shutdown_at_end || (c2s_.eof && s2c_.eof));
}

const TcpBulkResult& TcpBulk::run() {
  r_.started = h_.now();
  if (!setup()) {
    finish();
    return r_;
  }
  bool done = false;
  const Nanos limit = r_.started + o_.timeout;
  // In slices: a paused reader must be woken when its pause ends even if nothing else happens.
  while (!done && r_.error.empty() && h_.now() < limit) {
    Nanos until = limit;
    if (pause_until_ >= 0 && h_.now() < pause_until_) until = std::min(until, pause_until_);
    const Nanos before = h_.now();
    h_.run_until([&] { return done = pump(); }, until - h_.now());
    if (!done && h_.now() == before) break;  // the harness gave up (a stall)
  }
  r_.finished = h_.now();
  if (!done && r_.error.empty()) {
    r_.error = "timed out after " + std::to_string((h_.now() - r_.started) / kMilli) + " ms: c2s " +
               std::to_string(c2s_.received) + "/" + std::to_string(c2s_.total) + " s2c " +
               std::to_string(s2c_.received) + "/" + std::to_string(s2c_.total);
  }
  finish();
  if (o_.close_at_end) {
    if (client_fd_ >= 0) capi_->close(client_fd_);
    if (server_fd_ >= 0) sapi_->close(server_fd_);
    if (listen_fd_ >= 0) sapi_->close(listen_fd_);
    client_fd_ = server_fd_ = listen_fd_ = -1;
    h_.run_for(o_.linger);
  }
  return r_;
}

}  // namespace shunt
