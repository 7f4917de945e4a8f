#include "nicmodel/ns3/shunt_workloads.h"

#include <arpa/inet.h>
#include <poll.h>

#include <cstring>

#include "stack/harness/tcp_bulk.h"
#include "stack/socket/socket_api.h"

namespace nicmodel {

using shunt::kNever;
using shunt::Nanos;

socklen_t ToSockaddr(const shunt::IpAddr& addr, uint16_t port, sockaddr_storage& ss) {
  std::memset(&ss, 0, sizeof ss);
  if (addr.is_v6()) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    addr.v6.write(reinterpret_cast<uint8_t*>(&a->sin6_addr));
    return sizeof(sockaddr_in6);
  }
  auto* a = reinterpret_cast<sockaddr_in*>(&ss);
  a->sin_family = AF_INET;
  a->sin_port = htons(port);
  a->sin_addr.s_addr = htonl(addr.v4.v);
  return sizeof(sockaddr_in);
}

uint64_t TcpSinkStats::total() const {
  uint64_t t = 0;
  for (const auto& s : streams) t += s.received;
  return t;
}

size_t TcpSinkStats::complete(uint64_t bytes_each) const {
  size_t n = 0;
  for (const auto& s : streams) n += s.eof && s.received == bytes_each && s.mismatch == UINT64_MAX;
  return n;
}

namespace {

std::string failed(const char* what, long err) { return std::string(what) + ": " + std::strerror(int(-err)); }

struct TcpSender {
  std::shared_ptr<TcpSendStats> stats = std::make_shared<TcpSendStats>();
  shunt::IpAddr to;
  uint16_t port;
  uint64_t bytes, seed;
  Nanos start;
  bool pattern = true;
  std::vector<uint8_t> buf;
  uint64_t buf_at = 0;
  size_t buf_len = 0;
  int fd = -1;
  bool fin_sent = false, done = false;

  Nanos operator()(ShuntHost& h) {
    if (done) return kNever;
    auto& api = h.api();
    const Nanos now = h.now();
    if (now < start) return start;
    if (fd < 0) {
      fd = api.socket(to.is_v6() ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
      if (fd < 0) return fail("socket", fd);
      sockaddr_storage ss;
      const socklen_t len = ToSockaddr(to, port, ss);
      const int r = api.connect(fd, reinterpret_cast<sockaddr*>(&ss), len);
      if (r < 0 && r != -EINPROGRESS) return fail("connect", r);
    }
    const uint32_t ev = api.poll_events(fd);
    if (ev & POLLERR) {
      int err = 0;
      socklen_t l = sizeof err;
      api.getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l);
      return fail("connection", -(err ? err : ECONNRESET));
    }
    if (stats->connected < 0 && (ev & POLLOUT)) stats->connected = now;
    while (stats->connected >= 0 && stats->sent < bytes) {
      // The buffer holds the pattern from buf_at for buf_len bytes; refilled once used up (a
      // send that takes a little must not cost a whole chunk of pattern).
      if (stats->sent >= buf_at + buf_len) {
        buf_at = stats->sent;
        buf_len = size_t(std::min<uint64_t>(buf.size(), bytes - stats->sent));
        if (pattern) shunt::tcp_bulk_pattern(seed, buf_at, buf.data(), buf_len);
      }
      const size_t off = size_t(stats->sent - buf_at);
      const ssize_t w = api.send(fd, buf.data() + off, buf_len - off, MSG_NOSIGNAL);
      if (w == -EAGAIN) break;
      if (w < 0) return fail("send", long(w));
      stats->sent += uint64_t(w);
    }
    if (stats->sent == bytes && !fin_sent) {
      if (int r = api.shutdown(fd, SHUT_WR); r < 0) return fail("shutdown", r);
      fin_sent = true;
      stats->finished = now;
    }
    if (fin_sent) {
      // The peer closes after reading everything: drain until its EOF, then close.
      uint8_t sink[256];
      ssize_t r;
      while ((r = api.recv(fd, sink, sizeof sink, 0)) > 0) {
      }
      if (r == 0 || (r < 0 && r != -EAGAIN)) {
        stats->peer_closed = r == 0;
        api.close(fd);
        fd = -1;
        done = true;
      }
    }
    return kNever;
  }
  Nanos fail(const char* what, long err) {
    stats->error = failed(what, err);
    done = true;
    return kNever;
  }
};

struct TcpSink {
  std::shared_ptr<TcpSinkStats> stats = std::make_shared<TcpSinkStats>();
  uint16_t port;
  uint64_t seed;
  bool any6;
  bool check = true;
  int listen_fd = -1;
  bool failed_ = false;
  std::vector<int> fds;  // per stream, -1 once closed
  std::vector<uint8_t> buf = std::vector<uint8_t>(64 * 1024), expect = std::vector<uint8_t>(64 * 1024);

  Nanos operator()(ShuntHost& h) {
    if (failed_) return kNever;
    auto& api = h.api();
    if (listen_fd < 0) {
      listen_fd = api.socket(any6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
      if (listen_fd < 0) return fail("socket", listen_fd);
      sockaddr_storage ss;
      shunt::IpAddr any = any6 ? shunt::IpAddr(shunt::Ipv6Addr{}) : shunt::IpAddr(shunt::Ipv4Addr{});
      const socklen_t len = ToSockaddr(any, port, ss);
      if (int r = api.bind(listen_fd, reinterpret_cast<sockaddr*>(&ss), len); r < 0) return fail("bind", r);
      if (int r = api.listen(listen_fd, 128); r < 0) return fail("listen", r);
    }
    for (;;) {
      const int c = api.accept(listen_fd, nullptr, nullptr, SOCK_NONBLOCK);
      if (c == -EAGAIN) break;
      if (c < 0) return fail("accept", c);
      fds.push_back(c);
      stats->streams.push_back(TcpStreamStats{});
      stats->streams.back().accepted = h.now();
    }
    for (size_t i = 0; i < fds.size(); ++i) {
      if (fds[i] < 0) continue;
      auto& s = stats->streams[i];
      for (;;) {
        const ssize_t r = api.recv(fds[i], buf.data(), buf.size(), 0);
        if (r == -EAGAIN) break;
        if (r <= 0) {  // EOF, or the stream failed: either way it is over
          s.eof = r == 0;
          s.eof_at = h.now();
          api.close(fds[i]);
          fds[i] = -1;
          break;
        }
        if (check && s.mismatch == UINT64_MAX) {
          shunt::tcp_bulk_pattern(seed, s.received, expect.data(), size_t(r));
          if (std::memcmp(buf.data(), expect.data(), size_t(r)) != 0) {
            for (ssize_t k = 0; k < r; ++k) {
              if (buf[size_t(k)] != expect[size_t(k)]) {
                s.mismatch = s.received + uint64_t(k);
                break;
              }
            }
          }
        }
        s.received += uint64_t(r);
      }
    }
    return kNever;
  }
  Nanos fail(const char* what, long err) {
    stats->error = failed(what, err);
    failed_ = true;
    return kNever;
  }
};

struct UdpEcho {
  std::shared_ptr<UdpEchoStats> stats = std::make_shared<UdpEchoStats>();
  uint16_t port;
  bool v6;
  int fd = -1;
  bool failed_ = false;
  std::vector<uint8_t> buf = std::vector<uint8_t>(65536);

  Nanos operator()(ShuntHost& h) {
    if (failed_) return kNever;
    auto& api = h.api();
    if (fd < 0) {
      fd = api.socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
      if (fd < 0) return fail("socket", fd);
      sockaddr_storage ss;
      const socklen_t len =
          ToSockaddr(v6 ? shunt::IpAddr(shunt::Ipv6Addr{}) : shunt::IpAddr(shunt::Ipv4Addr{}), port, ss);
      if (int r = api.bind(fd, reinterpret_cast<sockaddr*>(&ss), len); r < 0) return fail("bind", r);
    }
    for (;;) {
      sockaddr_storage from;
      socklen_t flen = sizeof from;
      const ssize_t r = api.recvfrom(fd, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from), &flen);
      if (r == -EAGAIN) break;
      if (r < 0) return fail("recvfrom", long(r));
      const ssize_t w = api.sendto(fd, buf.data(), size_t(r), 0, reinterpret_cast<sockaddr*>(&from), flen);
      if (w >= 0) ++stats->echoed;
    }
    return kNever;
  }
  Nanos fail(const char* what, long err) {
    stats->error = failed(what, err);
    failed_ = true;
    return kNever;
  }
};

// Datagram i: 8 bytes of i, 8 bytes of its send time, then bytes derived from i.
void fill_datagram(uint64_t i, Nanos sent, uint8_t* p, size_t size) {
  std::memcpy(p, &i, 8);
  std::memcpy(p + 8, &sent, 8);
  for (size_t k = 16; k < size; ++k) p[k] = uint8_t(i * 131 + k);
}

struct UdpClient {
  std::shared_ptr<UdpClientStats> stats = std::make_shared<UdpClientStats>();
  shunt::IpAddr to;
  uint16_t port;
  uint64_t count;
  size_t size;
  Nanos interval, start;
  int fd = -1;
  bool failed_ = false, waiting = false;
  Nanos next_send = 0;
  std::vector<uint8_t> buf, expect;

  Nanos operator()(ShuntHost& h) {
    if (failed_) return kNever;
    auto& api = h.api();
    const Nanos now = h.now();
    if (now < start) return start;
    if (fd < 0) {
      fd = api.socket(to.is_v6() ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
      if (fd < 0) return fail("socket", fd);
      sockaddr_storage ss;
      const socklen_t len = ToSockaddr(to, port, ss);
      if (int r = api.connect(fd, reinterpret_cast<sockaddr*>(&ss), len); r < 0) return fail("connect", r);
      next_send = now;
    }
    for (;;) {
      const ssize_t r = api.recv(fd, buf.data(), buf.size(), 0);
      if (r == -EAGAIN) break;
      if (r < 0) return fail("recv", long(r));
      uint64_t i;
      Nanos sent;
      std::memcpy(&i, buf.data(), 8);
      std::memcpy(&sent, buf.data() + 8, 8);
      fill_datagram(i, sent, expect.data(), size);
      if (size_t(r) != size || std::memcmp(buf.data(), expect.data(), size) != 0 || i >= stats->sent) {
        ++stats->bad_echoes;
        continue;
      }
      ++stats->echoes;
      stats->rtts.push_back(now - sent);
      if (interval == 0 && i + 1 == stats->sent) waiting = false;
    }
    while (stats->sent < count && now >= next_send && !waiting) {
      fill_datagram(stats->sent, now, buf.data(), size);
      const ssize_t w = api.send(fd, buf.data(), size, 0);
      if (w == -EAGAIN) return now + shunt::kMicro;
      if (w < 0) return fail("send", long(w));
      ++stats->sent;
      if (interval == 0) {
        waiting = true;
      } else {
        next_send += interval;
      }
    }
    return stats->sent < count && !waiting ? next_send : kNever;
  }
  Nanos fail(const char* what, long err) {
    stats->error = failed(what, err);
    failed_ = true;
    return kNever;
  }
};

}  // namespace

std::shared_ptr<TcpSendStats> AddTcpSender(ShuntHost& host, const shunt::IpAddr& to, uint16_t port,
                                           uint64_t bytes, uint64_t seed, Nanos start, size_t chunk, bool pattern) {
  TcpSender s;
  s.pattern = pattern;
  s.to = to;
  s.port = port;
  s.bytes = bytes;
  s.seed = seed;
  s.start = start;
  s.buf.resize(chunk ? chunk : 1);
  auto stats = s.stats;
  host.AddTask(std::move(s));
  return stats;
}

std::shared_ptr<TcpSinkStats> AddTcpSink(ShuntHost& host, uint16_t port, uint64_t seed, bool any6, bool check) {
  TcpSink s;
  s.check = check;
  s.port = port;
  s.seed = seed;
  s.any6 = any6;
  auto stats = s.stats;
  host.AddTask(std::move(s));
  return stats;
}

std::shared_ptr<UdpEchoStats> AddUdpEcho(ShuntHost& host, uint16_t port, bool v6) {
  UdpEcho s;
  s.port = port;
  s.v6 = v6;
  auto stats = s.stats;
  host.AddTask(std::move(s));
  return stats;
}

std::shared_ptr<UdpClientStats> AddUdpClient(ShuntHost& host, const shunt::IpAddr& to, uint16_t port,
                                             uint64_t count, size_t size, Nanos interval, Nanos start) {
  UdpClient s;
  s.to = to;
  s.port = port;
  s.count = count;
  s.size = std::max<size_t>(size, 16);
  s.interval = interval;
  s.start = start;
  s.buf.resize(65536);
  s.expect.resize(65536);
  auto stats = s.stats;
  host.AddTask(std::move(s));
  return stats;
}

}  // namespace nicmodel
