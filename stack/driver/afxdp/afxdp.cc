#include "stack/driver/afxdp/afxdp.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/ethtool.h>
#include <linux/if_link.h>
#include <linux/if_xdp.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <xdp/xsk.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>

#include "stack/net/ethernet.h"

namespace shunt {

struct AfxdpDevice::Rings {
  xsk_ring_prod fill{};
  xsk_ring_cons comp{};
  xsk_ring_cons rx{};
  xsk_ring_prod tx{};
};

namespace {

// XDP_PACKET_HEADROOM: the kernel writes a received frame this far into its UMEM frame.
constexpr uint32_t kXdpHeadroom = 256;
// Ethernet header plus one 802.1Q tag.
constexpr uint32_t kLinkOverhead = 14 + 4;
constexpr size_t kMaxChainSegments = 16;
// The kernel's copy-mode transmit takes at most 32 descriptors per sendto(); more kicks than
// this per burst would only spin against a peer that cannot keep up.
constexpr int kMaxKicksPerBurst = 64;
constexpr Nanos kStatsEvery = 100 * kMilli;
// While transmits wait in the TX ring, poll() comes back this soon to kick them again.
constexpr Nanos kKickRetry = 50 * kMicro;
// How long open() waits for a queue that a socket closed just before still holds.
constexpr Nanos kBusyRetry = 1 * kSecond;

std::string errno_text(int err) { return std::string(std::strerror(err)); }

std::string permission_hint() {
  return " (AF_XDP needs CAP_NET_RAW, CAP_NET_ADMIN and CAP_BPF: run as root or grant them)";
}

std::string memlock_hint(size_t bytes) {
  rlimit rl{};
  std::string limit = "unknown";
  if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0) {
    limit =
        rl.rlim_cur == RLIM_INFINITY ? "unlimited" : std::to_string(rl.rlim_cur / 1024) + " KiB";
  }
  return "locked-memory limit too low for the UMEM (" + std::to_string(bytes / 1024) +
         " KiB; RLIMIT_MEMLOCK is " + limit +
         "): raise it (`ulimit -l unlimited`, LimitMEMLOCK=), grant CAP_IPC_LOCK, or use fewer "
         "frames=";
}

// struct bpf_insn builders (the kernel's filter.h macros are not exported to user space).
bpf_insn insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  bpf_insn i{};
  i.code = code;
  i.dst_reg = dst & 0xf;
  i.src_reg = src & 0xf;
  i.off = off;
  i.imm = imm;
  return i;
}

bool read_ifreq(int ctl, const std::string& name, unsigned long request, ifreq& ifr) {
  std::memset(&ifr, 0, sizeof ifr);
  std::memcpy(ifr.ifr_name, name.data(), name.size());
  return ::ioctl(ctl, request, &ifr) == 0;
}

}  // namespace

const char* afxdp_mode_name(AfxdpMode m) {
  switch (m) {
    case AfxdpMode::kNative:
      return "native";
    case AfxdpMode::kGeneric:
      return "generic";
    case AfxdpMode::kAuto:
      return "auto";
  }
  return "?";
}

std::optional<uint32_t> afxdp_attached_program(const std::string& ifname) {
  const unsigned idx = if_nametoindex(ifname.c_str());
  if (idx == 0) return std::nullopt;
  uint32_t id = 0;
  if (bpf_xdp_query_id(int(idx), 0, &id) != 0) return 0;
  return id;
}

AfxdpDevice::AfxdpDevice()
    : rings_(new Rings),
      rx_frames_(counters_.add("afxdp.rx.frames")),
      rx_bytes_(counters_.add("afxdp.rx.bytes")),
      rx_no_buffer_(counters_.add("afxdp.rx.no_buffer")),
      rx_wakeups_(counters_.add("afxdp.rx.wakeups")),
      rx_drop_runt_(counters_.add("afxdp.rx.drop.runt")),
      rx_drop_oversize_(counters_.add("afxdp.rx.drop.oversize")),
      rx_drop_bad_desc_(counters_.add("afxdp.rx.drop.bad_desc")),
      tx_frames_(counters_.add("afxdp.tx.frames")),
      tx_bytes_(counters_.add("afxdp.tx.bytes")),
      tx_kicks_(counters_.add("afxdp.tx.kicks")),
      tx_completions_(counters_.add("afxdp.tx.completions")),
      tx_kick_busy_(counters_.add("afxdp.tx.kick_busy")),
      tx_kick_error_(counters_.add("afxdp.tx.kick_error")),
      tx_drop_ring_full_(counters_.add("afxdp.tx.drop.ring_full")),
      tx_drop_oversize_(counters_.add("afxdp.tx.drop.oversize")),
      tx_drop_runt_(counters_.add("afxdp.tx.drop.runt")),
      k_rx_dropped_(counters_.add("afxdp.kernel.rx_dropped")),
      k_rx_invalid_(counters_.add("afxdp.kernel.rx_invalid_descs")),
      k_rx_ring_full_(counters_.add("afxdp.kernel.rx_ring_full")),
      k_rx_fill_empty_(counters_.add("afxdp.kernel.rx_fill_ring_empty")),
      k_tx_invalid_(counters_.add("afxdp.kernel.tx_invalid_descs")),
      k_tx_ring_empty_(counters_.add("afxdp.kernel.tx_ring_empty")) {}

AfxdpDevice::~AfxdpDevice() {
  // The program goes first, so no frame is redirected to a socket that is going away.
  if (link_fd_ >= 0) ::close(link_fd_);
  if (prog_fd_ >= 0) ::close(prog_fd_);
  // The map's reference to the socket goes now, not when the map is freed after a grace period.
  if (map_fd_ >= 0 && xsk_fd_ >= 0) bpf_map_delete_elem(map_fd_, &queue_);
  if (xsk_) xsk_socket__delete(xsk_);
  if (map_fd_ >= 0) ::close(map_fd_);
  if (umem_) xsk_umem__delete(umem_);
  if (area_) ::munmap(area_, area_size_);
}

AfxdpDevice::OpenResult AfxdpDevice::open(const AfxdpOptions& options) {
  OpenResult r;
  std::unique_ptr<AfxdpDevice> dev(new (std::nothrow) AfxdpDevice());
  if (!dev) {
    r.error = "out of memory";
    return r;
  }
  r.error = dev->setup(options);
  if (r.error.empty()) r.device = std::move(dev);
  return r;
}

std::string AfxdpDevice::setup(const AfxdpOptions& o) {
  const std::string& name = o.ifname;
  if (name.empty()) return "needs an interface: afxdp:IFNAME";
  if (name.size() >= IFNAMSIZ) {
    return "interface name '" + name + "' is longer than " + std::to_string(IFNAMSIZ - 1) +
           " characters";
  }
  if (o.frames < 64 || o.frames > 65536 || (o.frames & (o.frames - 1)) != 0) {
    return "frames=" + std::to_string(o.frames) + ": expected a power of two in [64, 65536]";
  }
  const unsigned idx = if_nametoindex(name.c_str());
  if (idx == 0) {
    if (errno == ENODEV || errno == ENXIO)
      return "no interface '" + name + "' in this network namespace";
    return "cannot look up interface '" + name + "': " + errno_text(errno);
  }
  ifindex_ = int(idx);
  queue_ = o.queue;
  info_.name = name;

  // MAC, MTU, state and queue count through a control socket in this namespace. AF_UNIX, not
  // AF_INET: under the preload library an AF_INET socket() made while the runtime opens this
  // device would come back into the runtime (AF_UNIX ioctls fall through to dev_ioctl alike).
  int ctl = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (ctl < 0) return "cannot open a control socket: " + errno_text(errno);
  struct CtlGuard {
    int fd;
    ~CtlGuard() { ::close(fd); }
  } ctl_guard{ctl};
  ifreq ifr;
  if (!read_ifreq(ctl, name, SIOCGIFHWADDR, ifr))
    return "cannot read the MAC of " + name + ": " + errno_text(errno);
  if (ifr.ifr_hwaddr.sa_family != 1 /* ARPHRD_ETHER */)
    return name + " is not an Ethernet interface";
  const MacAddr if_mac = MacAddr::read(reinterpret_cast<const uint8_t*>(ifr.ifr_hwaddr.sa_data));
  if (!read_ifreq(ctl, name, SIOCGIFMTU, ifr))
    return "cannot read the MTU of " + name + ": " + errno_text(errno);
  interface_mtu_ = uint32_t(ifr.ifr_mtu);
  if (!read_ifreq(ctl, name, SIOCGIFFLAGS, ifr))
    return "cannot read the flags of " + name + ": " + errno_text(errno);
  if (!(ifr.ifr_flags & IFF_UP)) return name + " is down (ip link set " + name + " up)";
  ethtool_channels ch{};
  ch.cmd = ETHTOOL_GCHANNELS;
  std::memset(&ifr, 0, sizeof ifr);
  std::memcpy(ifr.ifr_name, name.data(), name.size());
  ifr.ifr_data = reinterpret_cast<char*>(&ch);
  if (::ioctl(ctl, SIOCETHTOOL, &ifr) == 0) {
    const uint32_t queues = std::max(ch.rx_count, ch.combined_count);
    if (queues > 0 && o.queue >= queues) {
      return "queue=" + std::to_string(o.queue) + ": " + name + " has " + std::to_string(queues) +
             " receive queue" + (queues == 1 ? "" : "s") + " (0.." + std::to_string(queues - 1) +
             ")";
    }
  }

  MacAddr mac = o.mac ? *o.mac : if_mac;
  if (mac.is_multicast() || mac.is_zero())
    return "the stack's MAC " + mac.str() + " is not a unicast address";

  // Frames hold XDP_PACKET_HEADROOM plus the largest frame; chunks are 2048 or 4096 bytes.
  frame_size_ = interface_mtu_ + kLinkOverhead + kXdpHeadroom <= 2048 ? 2048 : 4096;
  frames_ = o.frames;

  // Is there AF_XDP at all, and may we use it? A plain socket says so before anything is set up.
  int probe = ::socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0);
  if (probe < 0) {
    const int err = errno;
    if (err == EAFNOSUPPORT) return "this kernel has no AF_XDP sockets (CONFIG_XDP_SOCKETS)";
    if (err == EPERM || err == EACCES)
      return "cannot open an AF_XDP socket: " + errno_text(err) + permission_hint();
    return "cannot open an AF_XDP socket: " + errno_text(err);
  }
  ::close(probe);

  area_size_ = size_t(frames_) * frame_size_;
  void* area = ::mmap(nullptr, area_size_, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (area == MAP_FAILED) {
    const int err = errno;
    const size_t kib = area_size_ / 1024;
    area_size_ = 0;
    return "cannot map " + std::to_string(kib) + " KiB for the UMEM: " + errno_text(err);
  }
  area_ = static_cast<uint8_t*>(area);
  // A forked child gets none of it: the kernel writes into these pages, which must stay the
  // parent's (no copy-on-write of DMA memory).
  ::madvise(area_, area_size_, MADV_DONTFORK);

  // Three quarters receive, one quarter transmits: a sender on a fast peer fills the receive
  // side between two polls, while transmit frames come back as soon as the kernel has copied
  // them (copy mode) or sent them. The fill and RX rings hold every receive frame, the TX and
  // completion rings every transmit frame (ring sizes are powers of two).
  rx_count_ = frames_ / 4 * 3;
  const uint32_t tx_count = frames_ / 4;
  xsk_umem_config ucfg{};
  ucfg.fill_size = frames_;
  ucfg.comp_size = tx_count;
  ucfg.frame_size = frame_size_;
  ucfg.frame_headroom = 0;
  ucfg.flags = 0;
  if (int rc = xsk_umem__create(&umem_, area_, area_size_, &rings_->fill, &rings_->comp, &ucfg);
      rc != 0) {
    umem_ = nullptr;
    const int err = -rc;
    // The kernel charges UMEM pages to RLIMIT_MEMLOCK unless CAP_IPC_LOCK (ENOBUFS; ENOMEM
    // on older kernels).
    if (err == ENOBUFS || err == ENOMEM) return memlock_hint(area_size_);
    if (err == EPERM) return "cannot register the UMEM: " + errno_text(err) + permission_hint();
    return "cannot register the UMEM: " + errno_text(err);
  }

  // Native mode may run zero-copy where the driver has it; generic mode is copy mode always.
  const AfxdpMode first = o.mode == AfxdpMode::kGeneric ? AfxdpMode::kGeneric : AfxdpMode::kNative;
  xsk_socket_config scfg{};
  scfg.rx_size = frames_;
  scfg.tx_size = tx_count;
  scfg.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD;  // our program, attached below
  scfg.xdp_flags = 0;
  scfg.bind_flags = XDP_USE_NEED_WAKEUP | (first == AfxdpMode::kGeneric ? XDP_COPY : 0);
  int rc = xsk_socket__create(&xsk_, name.c_str(), o.queue, umem_, &rings_->rx, &rings_->tx, &scfg);
  // The kernel releases a closed socket's hold on its queue in deferred work (and an XSKMAP
  // holds the socket until the map is freed, after an RCU grace period): a queue closed a moment
  // ago reads EBUSY for a while. Wait up to kBusyRetry for it before calling it taken.
  for (Nanos waited = 0; rc == -EBUSY && waited < kBusyRetry; waited += 10 * kMilli) {
    ::usleep(10'000);
    rc = xsk_socket__create(&xsk_, name.c_str(), o.queue, umem_, &rings_->rx, &rings_->tx, &scfg);
  }
  if (rc != 0) {
    xsk_ = nullptr;
    const int err = -rc;
    std::string s = "cannot bind an AF_XDP socket to " + name + " queue " +
                    std::to_string(o.queue) + ": " + errno_text(err);
    if (err == EBUSY) s += " (another AF_XDP socket uses this queue)";
    if (err == EINVAL) s += " (no such queue, or the interface cannot do AF_XDP)";
    if (err == EPERM) s += permission_hint();
    return s;
  }
  xsk_fd_ = xsk_socket__fd(xsk_);
  // libxdp opens the socket without SOCK_CLOEXEC: a program exec'd by this one would keep the
  // queue and the UMEM after we are gone. (The map, program and link fds are O_CLOEXEC already.)
  ::fcntl(xsk_fd_, F_SETFD, FD_CLOEXEC);
  ::fcntl(xsk_umem__fd(umem_), F_SETFD, FD_CLOEXEC);

  // The XSKMAP our program redirects through: this socket at its queue, nothing elsewhere.
  map_fd_ = bpf_map_create(BPF_MAP_TYPE_XSKMAP, "shunt_xsks", sizeof(uint32_t), sizeof(int),
                           o.queue + 1, nullptr);
  if (map_fd_ < 0) {
    const int err = errno;
    map_fd_ = -1;
    if (err == EPERM) return "cannot create the XSKMAP: " + errno_text(err) + permission_hint();
    return "cannot create the XSKMAP: " + errno_text(err);
  }
  const uint32_t key = o.queue;
  const int value = xsk_fd_;
  if (bpf_map_update_elem(map_fd_, &key, &value, 0) != 0)
    return "cannot put the socket in the XSKMAP: " + errno_text(errno);

  // r2 = ctx->rx_queue_index; r1 = &xsks_map; r3 = XDP_PASS; r0 = bpf_redirect_map(r1, r2, r3)
  // (the flags' low bits are the action when the map has no socket at that queue); exit.
  const bpf_insn prog[] = {
      insn(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_2, BPF_REG_1,
           int16_t(offsetof(xdp_md, rx_queue_index)), 0),
      insn(BPF_LD | BPF_DW | BPF_IMM, BPF_REG_1, BPF_PSEUDO_MAP_FD, 0, map_fd_),
      insn(0, 0, 0, 0, 0),
      insn(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_3, 0, 0, XDP_PASS),
      insn(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_redirect_map),
      insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
  };
  bpf_prog_load_opts popts{};
  popts.sz = sizeof popts;
  popts.expected_attach_type = BPF_XDP;
  prog_fd_ = bpf_prog_load(BPF_PROG_TYPE_XDP, "shunt_xsk", "GPL", prog,
                           sizeof prog / sizeof prog[0], &popts);
  if (prog_fd_ < 0) {
    const int err = errno;
    prog_fd_ = -1;
    std::string s = "cannot load the XDP program: " + errno_text(err);
    if (err == EPERM) s += permission_hint();
    return s;
  }

  std::string err = attach_program(first);
  if (!err.empty() && o.mode == AfxdpMode::kAuto) {
    std::string generic_err = attach_program(AfxdpMode::kGeneric);
    if (!generic_err.empty()) return err + "; generic mode: " + generic_err;
    err.clear();
  }
  if (!err.empty()) return err;

  // Receive frames [0, rx_count) go to the fill ring; transmit frames [rx_count, frames) are idle.
  uint32_t fidx = 0;
  if (xsk_ring_prod__reserve(&rings_->fill, rx_count_, &fidx) != rx_count_)
    return "cannot fill the fill ring";
  for (uint32_t i = 0; i < rx_count_; ++i)
    *xsk_ring_prod__fill_addr(&rings_->fill, fidx + i) = uint64_t(i) * frame_size_;
  xsk_ring_prod__submit(&rings_->fill, rx_count_);
  tx_free_.reserve(tx_count);
  for (uint32_t i = frames_; i > rx_count_; --i) tx_free_.push_back(uint64_t(i - 1) * frame_size_);
  wake_rx();

  info_.mac = mac;
  // What one pool buffer and one UMEM frame hold; checksums are the stack's (no offload).
  info_.mtu = std::min({interface_mtu_, uint32_t(PacketBuf::kCapacity) - kLinkOverhead,
                        frame_size_ - kXdpHeadroom - kLinkOverhead});
  info_.rx_checksum = false;
  info_.tx_checksum = false;
  return {};
}

std::string AfxdpDevice::attach_program(AfxdpMode mode) {
  bpf_link_create_opts lopts{};
  lopts.sz = sizeof lopts;
  lopts.flags = mode == AfxdpMode::kGeneric ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE;
  const int fd = bpf_link_create(prog_fd_, ifindex_, BPF_XDP, &lopts);
  if (fd < 0) {
    const int err = errno;
    std::string s = "cannot attach the XDP program to " + info_.name + " in " +
                    afxdp_mode_name(mode) + " mode: " + errno_text(err);
    if (err == EOPNOTSUPP || (err == EINVAL && mode == AfxdpMode::kNative)) {
      s += " (the driver has no native XDP: use mode=generic or mode=auto)";
    } else if (err == EBUSY || err == EEXIST) {
      s += " (another XDP program is attached: `ip link set dev IF xdp off` or `xdp-loader unload "
           "IF --all`)";
    } else if (err == EPERM) {
      s += permission_hint();
    } else if (err == ERANGE) {
      s += " (the MTU is too large for XDP in this mode)";
    }
    return s;
  }
  link_fd_ = fd;
  mode_ = mode;
  bpf_prog_info pinfo{};
  uint32_t len = sizeof pinfo;
  if (bpf_obj_get_info_by_fd(prog_fd_, &pinfo, &len) == 0) prog_id_ = pinfo.id;
  return {};
}

void AfxdpDevice::wake_rx() {
  // The kernel sets need_wakeup on the fill ring when it ran out of frames; a recvfrom() makes
  // it look again (native mode: schedules the driver's NAPI).
  if (xsk_ring_prod__needs_wakeup(&rings_->fill)) {
    ++rx_wakeups_;
    ::recvfrom(xsk_fd_, nullptr, 0, MSG_DONTWAIT, nullptr, nullptr);
  }
}

void AfxdpDevice::reap_completions() {
  uint32_t idx = 0;
  const uint32_t n = xsk_ring_cons__peek(&rings_->comp, frames_ / 4, &idx);
  if (n == 0) return;
  for (uint32_t i = 0; i < n; ++i) {
    // Aligned mode: the chunk's start, whatever offset the descriptor had.
    tx_free_.push_back(*xsk_ring_cons__comp_addr(&rings_->comp, idx + i) &
                       ~uint64_t(frame_size_ - 1));
  }
  xsk_ring_cons__release(&rings_->comp, n);
  tx_completions_.inc(n);
}

void AfxdpDevice::kick_tx() {
  // Copy mode sends in the sendto() (32 descriptors per call, then EAGAIN: more are waiting);
  // zero-copy drivers only need the nudge when the TX ring says need_wakeup.
  kick_pending_ = false;
  for (int i = 0; i < kMaxKicksPerBurst; ++i) {
    if (!xsk_ring_prod__needs_wakeup(&rings_->tx)) return;
    ++tx_kicks_;
    if (::sendto(xsk_fd_, nullptr, 0, MSG_DONTWAIT, nullptr, 0) >= 0) return;
    const int err = errno;
    if (err == EINTR) continue;
    if (err == EAGAIN || err == EBUSY || err == ENOBUFS) {
      // EAGAIN: the per-call budget ran out; EBUSY/ENOBUFS: the device's queue was full or an
      // skb could not be had. Completions free frames; try again now and at the next poll.
      ++tx_kick_busy_;
      reap_completions();
      kick_pending_ = true;
      continue;
    }
    ++tx_kick_error_;  // ENETDOWN, ENXIO: the interface went away or down
    return;
  }
}

size_t AfxdpDevice::rx_burst(PacketPtr* out, size_t max) {
  reap_completions();
  if (!pool_ || max == 0) return 0;
  uint32_t idx = 0;
  const uint32_t avail =
      xsk_ring_cons__peek(&rings_->rx, uint32_t(std::min<size_t>(max, rx_count_)), &idx);
  if (avail == 0) {
    wake_rx();
    return 0;
  }
  uint32_t fidx = 0;
  // Every frame taken off the RX ring goes straight back to the fill ring (its bytes are
  // copied first), so the fill ring always has room for them: it holds every receive frame.
  if (xsk_ring_prod__reserve(&rings_->fill, avail, &fidx) != avail) {
    xsk_ring_cons__cancel(&rings_->rx, avail);
    ++rx_drop_bad_desc_;
    return 0;
  }
  size_t n = 0;
  uint32_t used = 0;
  for (; used < avail; ++used) {
    const xdp_desc* d = xsk_ring_cons__rx_desc(&rings_->rx, idx + used);
    const uint64_t addr = xsk_umem__add_offset_to_addr(d->addr);
    const uint64_t chunk = addr & ~uint64_t(frame_size_ - 1);
    PacketPtr p;
    if (addr + d->len > area_size_ || addr - chunk + d->len > frame_size_) {
      ++rx_drop_bad_desc_;  // the kernel never does this; a bad ring would
    } else if (d->len < kEthHeaderLen) {
      ++rx_drop_runt_;
    } else if (d->len > PacketBuf::kCapacity) {
      ++rx_drop_oversize_;
    } else {
      p = pool_->alloc(0);
      if (!p) {
        // The rest stay in the RX ring (the kernel drops when it is full) until buffers return.
        ++rx_no_buffer_;
        break;
      }
      std::memcpy(p->append(d->len), area_ + addr, d->len);
      ++rx_frames_;
      rx_bytes_.inc(d->len);
      out[n++] = std::move(p);
    }
    *xsk_ring_prod__fill_addr(&rings_->fill, fidx + used) = chunk;
  }
  if (used < avail) {
    xsk_ring_cons__cancel(&rings_->rx, avail - used);
    // Give back the fill slots not used: libxdp has no cancel for producers.
    rings_->fill.cached_prod -= avail - used;
  }
  xsk_ring_cons__release(&rings_->rx, used);
  xsk_ring_prod__submit(&rings_->fill, used);
  wake_rx();
  return n;
}

size_t AfxdpDevice::tx_burst(PacketPtr* frames, size_t n) {
  reap_completions();
  // First the frames that cannot go at all, so the TX ring is reserved only for those that can.
  uint32_t sendable = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!frames[i]) continue;
    const size_t len = frames[i]->chain_size();
    if (len < kEthHeaderLen) {
      ++tx_drop_runt_;
      frames[i].reset();
    } else if (len > frame_size_) {
      ++tx_drop_oversize_;
      frames[i].reset();
    } else {
      ++sendable;
    }
  }
  uint32_t want = std::min<uint32_t>(sendable, uint32_t(tx_free_.size()));
  uint32_t idx = 0;
  if (want > 0 && xsk_ring_prod__reserve(&rings_->tx, want, &idx) != want) want = 0;
  uint32_t put = 0;
  for (size_t i = 0; i < n; ++i) {
    PacketPtr f = std::move(frames[i]);
    if (!f) continue;
    if (put == want) {
      ++tx_drop_ring_full_;
      continue;
    }
    const uint64_t addr = tx_free_.back();
    tx_free_.pop_back();
    uint8_t* dst = area_ + addr;
    size_t len = 0;
    for (const PacketBuf* b = f.get(); b; b = b->chain) {
      std::memcpy(dst + len, b->data(), b->size());
      len += b->size();
    }
    xdp_desc* d = xsk_ring_prod__tx_desc(&rings_->tx, idx + put);
    d->addr = addr;
    d->len = uint32_t(len);
    d->options = 0;
    ++put;
    ++tx_frames_;
    tx_bytes_.inc(len);
  }
  if (put > 0) {
    xsk_ring_prod__submit(&rings_->tx, put);
    kick_tx();
  }
  return put;
}

Nanos AfxdpDevice::service(Nanos now) {
  if (kick_pending_) kick_tx();
  reap_completions();
  if (now >= next_stats_) {
    refresh_kernel_stats();
    next_stats_ = now + kStatsEvery;
  }
  return kick_pending_ ? now + kKickRetry : kNever;
}

void AfxdpDevice::refresh_kernel_stats() {
  xdp_statistics st{};
  socklen_t len = sizeof st;
  if (::getsockopt(xsk_fd_, SOL_XDP, XDP_STATISTICS, &st, &len) != 0) return;
  k_rx_dropped_.value = st.rx_dropped;
  k_rx_invalid_.value = st.rx_invalid_descs;
  k_tx_invalid_.value = st.tx_invalid_descs;
  if (len >= sizeof st) {
    k_rx_ring_full_.value = st.rx_ring_full;
    k_rx_fill_empty_.value = st.rx_fill_ring_empty_descs;
    k_tx_ring_empty_.value = st.tx_ring_empty_descs;
  }
}

}  // namespace shunt
