#include "stack/driver/tap/tap.h"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <net/if_arp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>

#include "stack/core/iovec.h"
#include "stack/net/ethernet.h"

namespace shunt {

namespace {

constexpr const char* kTunPath = "/dev/net/tun";
// Without a vnet header the kernel hands over whole frames of at most MTU + Ethernet header +
// one VLAN tag; the largest MTU a Linux interface takes is 65535.
constexpr size_t kOverflowBytes = 65536 + 64;
constexpr size_t kMaxFrameInBuffer = PacketBuf::kCapacity;
// Ethernet header plus one 802.1Q tag: the rest of a buffer is what the MTU may be.
constexpr uint32_t kLinkOverhead = 14 + 4;
constexpr size_t kMaxChainSegments = 16;

std::string errno_text(int err) { return std::string(std::strerror(err)); }

std::string open_error(int err) {
  std::string s = std::string("cannot open ") + kTunPath + ": " + errno_text(err);
  if (err == ENOENT || err == ENODEV || err == ENXIO) s += " (no TUN/TAP support here: load the tun module)";
  if (err == EACCES || err == EPERM) s += " (needs root or CAP_NET_ADMIN)";
  return s;
}

std::string setiff_error(const std::string& name, int err) {
  std::string what = name.empty() ? std::string("a new TAP interface") : "TAP interface " + name;
  std::string s = "cannot attach to " + what + ": " + errno_text(err);
  switch (err) {
    case EPERM:
    case EACCES: s += " (needs CAP_NET_ADMIN, or to own the persistent interface)"; break;
    case EBUSY: s += " (another process has it open)"; break;
    case EINVAL: s += " (it exists and is not a TAP interface, or the name is invalid)"; break;
    default: break;
  }
  return s;
}

}  // namespace

TapDevice::OpenResult TapDevice::open(const TapOptions& options) {
  OpenResult r;
  if (options.ifname.size() >= IFNAMSIZ) {
    r.error = "interface name '" + options.ifname + "' is longer than " + std::to_string(IFNAMSIZ - 1) + " characters";
    return r;
  }
  int fd = ::open(kTunPath, O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    r.error = open_error(errno);
    return r;
  }
  // Closes fd on every early return below.
  struct FdGuard {
    int fd;
    ~FdGuard() {
      if (fd >= 0) ::close(fd);
    }
  } guard{fd};

  ifreq ifr{};
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  std::memcpy(ifr.ifr_name, options.ifname.data(), options.ifname.size());
  if (::ioctl(fd, TUNSETIFF, &ifr) < 0) {
    r.error = setiff_error(options.ifname, errno);
    return r;
  }
  std::string name(ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ));

  // The kernel side's MAC, read from the tun fd itself (works whatever namespace we are in).
  ifreq hw{};
  std::memcpy(hw.ifr_name, name.data(), name.size());
  if (::ioctl(fd, SIOCGIFHWADDR, &hw) < 0) {
    r.error = "cannot read the MAC of " + name + ": " + errno_text(errno);
    return r;
  }
  MacAddr kernel_mac = MacAddr::read(reinterpret_cast<const uint8_t*>(hw.ifr_hwaddr.sa_data));

  // The MTU: only through a socket, in the namespace where the interface was just found.
  uint32_t if_mtu = 1500;
  int ctl = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (ctl < 0) {
    r.error = "cannot open a control socket to read the MTU of " + name + ": " + errno_text(errno);
    return r;
  }
  ifreq mtu{};
  std::memcpy(mtu.ifr_name, name.data(), name.size());
  int rc = ::ioctl(ctl, SIOCGIFMTU, &mtu);
  int err = errno;
  ::close(ctl);
  if (rc < 0) {
    r.error = "cannot read the MTU of " + name + ": " + errno_text(err);
    return r;
  }
  if_mtu = uint32_t(mtu.ifr_mtu);

  MacAddr mac = options.mac;
  if (mac.is_zero()) {
    // None given: a locally administered unicast address next to the kernel's.
    mac = kernel_mac;
    mac.b[0] = uint8_t((mac.b[0] | 0x02) & ~0x01);
    mac.b[5] ^= 0x01;
  }
  if (mac.is_multicast()) {
    r.error = "the stack's MAC " + mac.str() + " is a multicast address";
    return r;
  }
  if (mac == kernel_mac) {
    r.error = "the stack's MAC " + mac.str() + " equals the kernel side's MAC of " + name +
              "; the two ends of the link need different addresses";
    return r;
  }

  DeviceInfo info;
  info.name = name;
  info.mac = mac;
  info.mtu = std::min<uint32_t>(if_mtu, uint32_t(kMaxFrameInBuffer) - kLinkOverhead);

  std::unique_ptr<TapDevice> dev(new (std::nothrow) TapDevice(fd, info, kernel_mac, if_mtu));
  if (!dev || !dev->overflow_) {
    r.error = "out of memory opening " + name;
    if (dev) dev->fd_ = -1;  // the guard closes it
    return r;
  }
  guard.fd = -1;  // the device owns it now
  r.device = std::move(dev);
  return r;
}

TapDevice::TapDevice(int fd, DeviceInfo info, MacAddr kernel_mac, uint32_t interface_mtu)
    : fd_(fd),
      info_(std::move(info)),
      kernel_mac_(kernel_mac),
      interface_mtu_(interface_mtu),
      overflow_(new (std::nothrow) uint8_t[kOverflowBytes]) {}

TapDevice::~TapDevice() {
  if (fd_ >= 0) ::close(fd_);
}

size_t TapDevice::rx_burst(PacketPtr* out, size_t max) {
  size_t n = 0;
  // Frames dropped here (oversize, runts) count against the burst too: a kernel queue that
  // keeps refilling with them must not hold poll() here forever.
  for (size_t reads = 0; n < max && reads < 2 * max; ++reads) {
    PacketPtr p = pool_ ? pool_->alloc(0) : PacketPtr();
    if (!p) {
      // Frames wait in the kernel's queue (it drops when that is full); wait_fd stays readable.
      ++counters_.rx_no_buffer;
      break;
    }
    const size_t room = p->tailroom();
    iovec iov[2] = {{p->data(), room}, {overflow_.get(), kOverflowBytes}};
    ssize_t got = ::readv(fd_, iov, 2);
    if (got < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) ++counters_.rx_errors;
      break;
    }
    if (got == 0) break;
    if (size_t(got) > room) {
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

size_t TapDevice::tx_burst(PacketPtr* frames, size_t n) {
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
    ssize_t put;
    do {
      put = segs == 1 ? ::write(fd_, iov[0].iov_base, iov[0].iov_len) : ::writev(fd_, iov, int(segs));
    } while (put < 0 && errno == EINTR);
    if (put < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        ++counters_.tx_drop_eagain;
      } else {
        ++counters_.tx_drop_error;
      }
      continue;
    }
    if (size_t(put) != total) {
      ++counters_.tx_drop_truncated;
      continue;
    }
    ++counters_.tx_frames;
    counters_.tx_bytes += total;
    ++sent;
  }
  return sent;
}

}  // namespace shunt
