#include "stack/driver/unixsock/unix_device.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <new>

#include "stack/core/iovec.h"
#include "stack/net/ethernet.h"

namespace shunt {

namespace {

// Ethernet header plus one 802.1Q tag on top of the MTU (no FCS on the socket).
constexpr uint32_t kLinkOverhead = 14 + 4;
constexpr size_t kMaxChainSegments = 16;
// Room for bursts in both directions while the other side is busy; the kernel caps it at
// net.core.wmem_max / rmem_max, which is fine.
constexpr int kSocketBuffer = 4 << 20;

std::string errno_text(int err) { return std::string(std::strerror(err)); }

std::string connect_error(const std::string& path, int err) {
  std::string s = "cannot connect to " + path + ": " + errno_text(err);
  switch (err) {
    case ENOENT: s += " (no such socket: is `shunt netsim --dir DIR` running, and is the path DIR/hostN.sock?)"; break;
    case ECONNREFUSED: s += " (nothing listens there: netsim is gone, or another process already took this host)"; break;
    case ENOTSOCK: s += " (the path is not a socket)"; break;
    case EPROTOTYPE: s += " (the socket there is not SOCK_SEQPACKET)"; break;
    case EACCES: s += " (no permission on the path or its directory)"; break;
    default: break;
  }
  return s;
}

// A locally administered unicast MAC from FNV-1a of the path: stable for a path, distinct
// between the hosts of one netsim with overwhelming likelihood.
MacAddr mac_from_path(const std::string& path) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (char c : path) h = (h ^ uint8_t(c)) * 0x100000001b3ull;
  return MacAddr{{0x02, 0x53, 0x55, uint8_t(h >> 16), uint8_t(h >> 8), uint8_t(h)}};
}

}  // namespace

UnixDevice::OpenResult UnixDevice::open(const UnixDeviceOptions& options) {
  OpenResult r;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (options.path.empty()) {
    r.error = "no socket path given (unix:path=DIR/hostN.sock)";
    return r;
  }
  if (options.path.size() >= sizeof addr.sun_path) {
    r.error = "socket path '" + options.path + "' is longer than " + std::to_string(sizeof addr.sun_path - 1) +
              " bytes";
    return r;
  }
  if (options.mtu < 68 || options.mtu + kLinkOverhead > PacketBuf::kCapacity) {
    r.error = "mtu " + std::to_string(options.mtu) + " is outside [68, " +
              std::to_string(PacketBuf::kCapacity - kLinkOverhead) + "]";
    return r;
  }
  MacAddr mac = options.mac.is_zero() ? mac_from_path(options.path) : options.mac;
  if (mac.is_multicast()) {
    r.error = "the stack's MAC " + mac.str() + " is a multicast address";
    return r;
  }
  std::memcpy(addr.sun_path, options.path.data(), options.path.size());

  int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    r.error = "cannot create a unix socket: " + errno_text(errno);
    return r;
  }
  // A blocking connect: on a unix socket it completes at once or fails, and a full backlog
  // (the listener busy) is worth a short wait rather than an error.
  int rc;
  do {
    rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) {
    int err = errno;
    ::close(fd);
    r.error = connect_error(options.path, err);
    return r;
  }
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
    int err = errno;
    ::close(fd);
    r.error = "cannot make the socket non-blocking: " + errno_text(err);
    return r;
  }
  int size = kSocketBuffer;
  ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);

  DeviceInfo info;
  info.name = "unix:" + options.path;
  info.mac = mac;
  info.mtu = options.mtu;
  std::unique_ptr<UnixDevice> dev(new (std::nothrow) UnixDevice(fd, info, options.path));
  if (!dev) {
    ::close(fd);
    r.error = "out of memory opening " + options.path;
    return r;
  }
  r.device = std::move(dev);
  return r;
}

UnixDevice::UnixDevice(int fd, DeviceInfo info, std::string path)
    : fd_(fd), info_(std::move(info)), path_(std::move(path)) {}

UnixDevice::~UnixDevice() {
  if (fd_ >= 0) ::close(fd_);
}

size_t UnixDevice::rx_burst(PacketPtr* out, size_t max) {
  size_t n = 0;
  const size_t max_frame = size_t(info_.mtu) + kLinkOverhead;
  // Frames dropped here count against the burst too: a peer that keeps sending bad frames must
  // not hold poll() here forever.
  for (size_t reads = 0; n < max && reads < 2 * max; ++reads) {
    PacketPtr p = pool_ ? pool_->alloc(0) : PacketPtr();
    if (!p) {
      // Frames wait in the socket (the peer sees EAGAIN when it is full); wait_fd stays readable.
      ++counters_.rx_no_buffer;
      break;
    }
    const size_t room = p->tailroom();
    // MSG_TRUNC: the message's real length, so a frame longer than the buffer is seen and dropped
    // rather than taken in part.
    ssize_t got = ::recv(fd_, p->data(), room, MSG_DONTWAIT | MSG_TRUNC);
    if (got < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) ++counters_.rx_errors;
      break;
    }
    if (got == 0) {
      // SOCK_SEQPACKET: end of file, the other end closed (netsim never sends empty messages).
      if (counters_.rx_peer_closed == 0) ++counters_.rx_peer_closed;
      break;
    }
    if (size_t(got) > room || size_t(got) > max_frame) {
      ++counters_.rx_drop_oversize;
      continue;
    }
    if (size_t(got) < kEthHeaderLen) {
      ++counters_.rx_drop_runt;
      continue;
    }
    p->append(size_t(got));
    ++counters_.rx_frames;
    counters_.rx_bytes += uint64_t(got);
    out[n++] = std::move(p);
  }
  return n;
}

size_t UnixDevice::tx_burst(PacketPtr* frames, size_t n) {
  size_t sent = 0;
  for (size_t i = 0; i < n; ++i) {
    PacketPtr f = std::move(frames[i]);
    if (!f) continue;
    iovec iov[kMaxChainSegments];
    const size_t segs = chain_iov(*f, iov, kMaxChainSegments);
    if (segs == 0) {  // a chain longer than any frame could be
      ++counters_.tx_drop_error;
      continue;
    }
    const size_t total = iov_total(iov, segs);
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = segs;
    ssize_t put;
    do {
      put = ::sendmsg(fd_, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (put < 0 && errno == EINTR);
    if (put < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        // The send buffer is full: the rest of the burst would fail the same way. The Device
        // contract: frames not sent are dropped here and counted; TCP retransmits them.
        counters_.tx_drop_eagain += uint64_t(n - i);
        for (size_t k = i + 1; k < n; ++k) frames[k].reset();
        return sent;
      }
      ++counters_.tx_drop_error;
      continue;
    }
    ++counters_.tx_frames;
    counters_.tx_bytes += total;
    ++sent;
  }
  return sent;
}

}  // namespace shunt
