#include "nicmodel/port/shm_cable.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <vector>

#include "stack/core/log.h"

namespace nicmodel {

namespace L = cable_layout;

namespace {

static_assert(std::atomic_ref<uint64_t>::is_always_lock_free,
              "the rings need lock-free 64-bit atomics");
static_assert(std::atomic_ref<uint32_t>::is_always_lock_free,
              "the side records need lock-free 32-bit atomics");

// How long open() and the destructor wait for another process's setup lock, and for a creator
// that has made the object but not yet initialized it.
constexpr int64_t kSetupWait = 2'000'000'000;
constexpr int64_t kUninitializedWait = 500'000'000;
// How stale transmit()'s belief in a live peer may be.
constexpr int64_t kPeerCheck = 1'000'000;

int64_t monotonic_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

void pause_briefly() { usleep(200); }

std::string errno_text(int e) { return std::strerror(e); }

// OFD locks (F_OFD_*) belong to the open file description, not to the process: two sides opened
// in one process conflict as two processes would, and the kernel releases them when the last
// descriptor of the description closes, i.e. when the holder dies.
bool try_lock_byte(int fd, off_t byte) {
  struct flock l {};
  l.l_type = F_WRLCK;
  l.l_whence = SEEK_SET;
  l.l_start = byte;
  l.l_len = 1;
  return fcntl(fd, F_OFD_SETLK, &l) == 0;
}

void unlock_byte(int fd, off_t byte) {
  struct flock l {};
  l.l_type = F_UNLCK;
  l.l_whence = SEEK_SET;
  l.l_start = byte;
  l.l_len = 1;
  fcntl(fd, F_OFD_SETLK, &l);
}

// Whether another open file description holds `byte`. If the kernel cannot say, assume it does:
// the caller then neither reclaims nor unlinks.
bool byte_held_elsewhere(int fd, off_t byte) {
  struct flock l {};
  l.l_type = F_WRLCK;
  l.l_whence = SEEK_SET;
  l.l_start = byte;
  l.l_len = 1;
  if (fcntl(fd, F_OFD_GETLK, &l) != 0) return true;
  return l.l_type != F_UNLCK;
}

bool lock_setup(int fd) {
  const int64_t deadline = monotonic_ns() + kSetupWait;
  while (!try_lock_byte(fd, L::kLockSetup)) {
    if (errno != EAGAIN && errno != EACCES && errno != EINTR) return false;
    if (monotonic_ns() > deadline) return false;
    pause_briefly();
  }
  return true;
}

bool same_object(int fd, const char* object) {
  int again = shm_open(object, O_RDWR | O_CLOEXEC, 0);
  if (again < 0) return false;
  struct stat a {};
  struct stat b {};
  bool same =
      fstat(fd, &a) == 0 && fstat(again, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
  close(again);  // an OFD lock lives on its own description: closing this one releases nothing
  return same;
}

template <typename T>
T load_relaxed(const uint8_t* p) {
  return std::atomic_ref<T>(*reinterpret_cast<T*>(const_cast<uint8_t*>(p)))
      .load(std::memory_order_relaxed);
}
template <typename T>
T load_acquire(const uint8_t* p) {
  return std::atomic_ref<T>(*reinterpret_cast<T*>(const_cast<uint8_t*>(p)))
      .load(std::memory_order_acquire);
}
template <typename T>
void store_release(uint8_t* p, T v) {
  std::atomic_ref<T>(*reinterpret_cast<T*>(p)).store(v, std::memory_order_release);
}
template <typename T>
T fetch_add_acq_rel(uint8_t* p, T v) {
  return std::atomic_ref<T>(*reinterpret_cast<T*>(p)).fetch_add(v, std::memory_order_acq_rel);
}

bool valid_name(const std::string& n) {
  if (n.empty() || n.size() > 64) return false;
  for (char c : n) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// What the header says, copied out and checked before anything else is believed.
struct HeaderCopy {
  uint64_t magic, total;
  uint32_t version, header_size, slots, slot_size, max_frame;
  uint64_t rate_bps;
};

// Empty if the header describes a cable this code can use and whose size matches the object.
std::string check_header(const HeaderCopy& h, uint64_t object_size) {
  if (h.magic != L::kMagic) return "not a Shunt cable (bad magic)";
  if (h.version != L::kVersion)
    return "layout version " + std::to_string(h.version) + ", this build speaks " +
           std::to_string(L::kVersion);
  if (h.header_size != L::kHeaderSize || h.slot_size != L::kSlotSize || h.max_frame != L::kMaxFrame)
    return "bad header (header " + std::to_string(h.header_size) + ", slot " +
           std::to_string(h.slot_size) + ", max frame " + std::to_string(h.max_frame) + " bytes)";
  if (h.slots < L::kMinSlots || h.slots > L::kMaxSlots || (h.slots & (h.slots - 1)) != 0)
    return "bad header (slot count " + std::to_string(h.slots) + ")";
  if (h.total != L::total_size(h.slots) || object_size != h.total)
    return "bad header (size " + std::to_string(h.total) + ", object " +
           std::to_string(object_size) + " bytes)";
  return {};
}

}  // namespace

// One mapping per object per process. Both sides opened in one process share it, so the ring's
// atomics have one address and ThreadSanitizer sees their synchronization.
struct ShmCable::Mapping {
  uint8_t* base = nullptr;
  size_t size = 0;
  dev_t dev = 0;
  ino_t ino = 0;
  ~Mapping() {
    if (base) munmap(base, size);
  }
};

namespace {

std::mutex& mappings_mutex() {
  static std::mutex m;
  return m;
}
std::vector<std::weak_ptr<ShmCable::Mapping>>& mappings() {
  static std::vector<std::weak_ptr<ShmCable::Mapping>> v;
  return v;
}

std::shared_ptr<ShmCable::Mapping> map_object(int fd, const struct stat& st, std::string& why) {
  std::lock_guard<std::mutex> guard(mappings_mutex());
  auto& all = mappings();
  for (size_t i = 0; i < all.size();) {
    auto m = all[i].lock();
    if (!m) {
      all.erase(all.begin() + long(i));
      continue;
    }
    if (m->dev == st.st_dev && m->ino == st.st_ino && m->size == size_t(st.st_size)) return m;
    ++i;
  }
  void* p = mmap(nullptr, size_t(st.st_size), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    why = "mmap: " + errno_text(errno);
    return nullptr;
  }
  auto m = std::make_shared<ShmCable::Mapping>();
  m->base = static_cast<uint8_t*>(p);
  m->size = size_t(st.st_size);
  m->dev = st.st_dev;
  m->ino = st.st_ino;
  all.push_back(m);
  return m;
}

}  // namespace

// The steps of open(): create, or attach, or reclaim a stale object and create again.
struct CableOpener {
  const CableOptions& o;
  std::string& error;
  std::string object;
  int64_t uninitialized_since = 0;

  enum class Step { kDone, kRetry, kFail };

  std::string prefix() const { return "cable " + o.name + ": "; }
  Step fail(int fd, const std::string& why) {
    error = prefix() + why;
    if (fd >= 0) close(fd);
    return Step::kFail;
  }

  // Both sides are dead (or the object never got initialized): remove it and start again.
  Step reclaim(int fd, const char* why) {
    SHUNT_INFO("cable %s: reclaiming stale %s (%s)", o.name.c_str(), object.c_str(), why);
    shm_unlink(object.c_str());
    unlock_byte(fd, L::kLockSetup);
    close(fd);
    return Step::kRetry;
  }

  Step create(int fd, std::unique_ptr<ShmCable>& out) {
    fchmod(fd, 0600);  // exactly owner-only, whatever the umask
    if (!lock_setup(fd) || !try_lock_byte(fd, L::lock_side(0))) {
      // An attacher holds the setup lock of our fresh object for too long; let it sort it out.
      close(fd);
      return Step::kRetry;
    }
    const size_t total = L::total_size(o.slots);
    // posix_fallocate: a full /dev/shm is a clear error now rather than SIGBUS on a later write.
    int rc = ftruncate(fd, off_t(total)) == 0 ? posix_fallocate(fd, 0, off_t(total)) : errno;
    if (rc != 0) {
      shm_unlink(object.c_str());
      return fail(fd, "cannot size /dev/shm" + object + " to " + std::to_string(total) +
                          " bytes (" + std::to_string(o.slots) +
                          " slots per direction): " + errno_text(rc));
    }
    struct stat st {};
    fstat(fd, &st);
    std::string why;
    auto map = map_object(fd, st, why);
    if (!map) {
      shm_unlink(object.c_str());
      return fail(fd, why);
    }
    uint8_t* b = map->base;
    auto put32 = [&](size_t off, uint32_t v) { std::memcpy(b + off, &v, 4); };
    auto put64 = [&](size_t off, uint64_t v) { std::memcpy(b + off, &v, 8); };
    put32(L::kOffVersion, L::kVersion);
    put32(L::kOffHeaderSize, L::kHeaderSize);
    put32(L::kOffSlots, o.slots);
    put32(L::kOffSlotSize, L::kSlotSize);
    put64(L::kOffTotalSize, total);
    put64(L::kOffRateBps, o.rate_bps);
    put32(L::kOffMaxFrame, L::kMaxFrame);
    const size_t me = L::side_record(0);
    store_release<uint32_t>(b + me + L::kSidePid, uint32_t(getpid()));
    fetch_add_acq_rel<uint32_t>(b + me + L::kSideGeneration, 1);
    store_release<uint32_t>(b + me + L::kSideState, L::kStateAttached);
    store_release<uint64_t>(b + L::kOffMagic, L::kMagic);  // last: the header is now valid
    out.reset(new ShmCable(o.name, fd, 0, std::move(map), o.slots, o.rate_bps));
    unlock_byte(fd, L::kLockSetup);
    return Step::kDone;
  }

  Step attach(int fd, std::unique_ptr<ShmCable>& out) {
    if (!lock_setup(fd))
      return fail(fd, "busy: another process has held " + object + "'s setup lock for 2 s");
    // Between our shm_open and the lock, the last side may have unlinked it, or a reclaimer
    // replaced it: attach only to what the name names now.
    if (!same_object(fd, object.c_str())) {
      close(fd);
      return Step::kRetry;
    }
    struct stat st {};
    if (fstat(fd, &st) != 0) return fail(fd, "fstat: " + errno_text(errno));
    if (st.st_uid != geteuid())
      return fail(fd, "/dev/shm" + object + " belongs to uid " + std::to_string(st.st_uid) +
                          ", not to us; refusing it");
    if ((st.st_mode & 0777) != 0600) {
      char mode[8];
      snprintf(mode, sizeof mode, "%04o", unsigned(st.st_mode & 0777));
      return fail(fd, "/dev/shm" + object + " has mode " + mode +
                          ", not 0600; refusing it (remove it to start afresh)");
    }
    const bool alive[2] = {byte_held_elsewhere(fd, L::lock_side(0)),
                           byte_held_elsewhere(fd, L::lock_side(1))};
    if (!alive[0] && !alive[1]) {
      HeaderCopy h{};
      bool blank = st.st_size < off_t(L::kHeaderSize) ||
                   (pread(fd, &h.magic, sizeof h.magic, L::kOffMagic) == ssize_t(sizeof h.magic) &&
                    h.magic == 0);
      if (blank) {
        // A creator between its shm_open and its setup lock, or one that died there: give it
        // a moment, then take the name over.
        const int64_t now = monotonic_ns();
        if (uninitialized_since == 0) uninitialized_since = now;
        if (now - uninitialized_since < kUninitializedWait) {
          unlock_byte(fd, L::kLockSetup);
          close(fd);
          pause_briefly();
          return Step::kRetry;
        }
        return reclaim(fd, "never initialized");
      }
      return reclaim(fd, "both sides gone");
    }
    if (alive[0] && alive[1]) {
      auto pid = [&](int s) {
        uint32_t v = 0;
        if (pread(fd, &v, 4, off_t(L::side_record(s) + L::kSidePid)) != 4) v = 0;
        return std::to_string(v);
      };
      return fail(fd, "both sides are in use (pids " + pid(0) + " and " + pid(1) + ")");
    }
    const int side =
        alive[0] ? 1 : 0;  // the free side: 'b' normally, 'a' when taking over a dead creator

    HeaderCopy h{};
    if (st.st_size < off_t(L::kHeaderSize))
      return fail(fd, "bad header (object of " + std::to_string(st.st_size) + " bytes)");
    uint8_t raw[64];
    if (pread(fd, raw, sizeof raw, 0) != ssize_t(sizeof raw))
      return fail(fd, "read: " + errno_text(errno));
    std::memcpy(&h.magic, raw + L::kOffMagic, 8);
    std::memcpy(&h.version, raw + L::kOffVersion, 4);
    std::memcpy(&h.header_size, raw + L::kOffHeaderSize, 4);
    std::memcpy(&h.slots, raw + L::kOffSlots, 4);
    std::memcpy(&h.slot_size, raw + L::kOffSlotSize, 4);
    std::memcpy(&h.total, raw + L::kOffTotalSize, 8);
    std::memcpy(&h.rate_bps, raw + L::kOffRateBps, 8);
    std::memcpy(&h.max_frame, raw + L::kOffMaxFrame, 4);
    std::string bad = check_header(h, uint64_t(st.st_size));
    if (!bad.empty()) return fail(fd, "/dev/shm" + object + ": " + bad);
    if (o.rate_bps != 0 && h.rate_bps != o.rate_bps)
      return fail(fd, "rate " + std::to_string(o.rate_bps) +
                          " bit/s asked, but the cable was made with " +
                          std::to_string(h.rate_bps) + " bit/s");
    if (!try_lock_byte(fd, L::lock_side(side))) return fail(fd, "side lock: " + errno_text(errno));

    std::string why;
    auto map = map_object(fd, st, why);
    if (!map) return fail(fd, why);
    uint8_t* b = map->base;
    out.reset(new ShmCable(o.name, fd, side, std::move(map), h.slots, h.rate_bps));
    ShmCable& c = *out;
    // Frames waiting for a dead predecessor on this side are stale: start at the producer's head.
    c.rx_tail_ = load_acquire<uint64_t>(b + L::ring_head(c.rx_ring_));
    store_release<uint64_t>(b + L::ring_tail(c.rx_ring_), c.rx_tail_);
    // Continue the producer index a predecessor left, if it is consistent with the peer's tail.
    uint64_t head = load_relaxed<uint64_t>(b + L::ring_head(c.tx_ring_));
    uint64_t tail = load_acquire<uint64_t>(b + L::ring_tail(c.tx_ring_));
    if (head - tail > c.slots_) head = tail;
    c.tx_head_ = head;
    c.tx_tail_seen_ = tail;
    store_release<uint64_t>(b + L::ring_head(c.tx_ring_), head);
    const size_t me = L::side_record(side);
    store_release<uint32_t>(b + me + L::kSidePid, uint32_t(getpid()));
    fetch_add_acq_rel<uint32_t>(b + me + L::kSideGeneration, 1);
    store_release<uint32_t>(b + me + L::kSideState, L::kStateAttached);
    unlock_byte(fd, L::kLockSetup);
    return Step::kDone;
  }
};

std::string ShmCable::object_name(const std::string& cable_name) {
  return valid_name(cable_name) ? "/shunt-cable-" + cable_name : std::string();
}

std::unique_ptr<ShmCable> ShmCable::open(const CableOptions& o, std::string& error) {
  error.clear();
  if (!valid_name(o.name)) {
    error = "cable name '" + o.name + "' is invalid: use 1 to 64 characters of A-Z a-z 0-9 _ . -";
    return nullptr;
  }
  if (o.slots < L::kMinSlots || o.slots > L::kMaxSlots || (o.slots & (o.slots - 1)) != 0) {
    error = "cable " + o.name + ": slots must be a power of two from " +
            std::to_string(L::kMinSlots) + " to " + std::to_string(L::kMaxSlots) + ", not " +
            std::to_string(o.slots);
    return nullptr;
  }
  CableOpener op{o, error, object_name(o.name)};
  const int64_t deadline = monotonic_ns() + 2 * kSetupWait;
  std::unique_ptr<ShmCable> out;
  while (monotonic_ns() < deadline) {
    int fd = shm_open(op.object.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    CableOpener::Step step;
    if (fd >= 0) {
      step = op.create(fd, out);
    } else if (errno != EEXIST) {
      error = op.prefix() + "shm_open " + op.object + ": " + errno_text(errno);
      return nullptr;
    } else if ((fd = shm_open(op.object.c_str(), O_RDWR | O_CLOEXEC, 0)) < 0) {
      if (errno != ENOENT) {
        error = op.prefix() + "shm_open " + op.object + ": " + errno_text(errno);
        return nullptr;
      }
      continue;  // the last side unlinked it meanwhile: create it
    } else {
      step = op.attach(fd, out);
    }
    if (step == CableOpener::Step::kDone) return out;
    if (step == CableOpener::Step::kFail) return nullptr;
  }
  error = op.prefix() + "could not create or attach to " + op.object +
          " within 4 s (others keep changing it)";
  return nullptr;
}

ShmCable::ShmCable(std::string name, int fd, int side, std::shared_ptr<Mapping> map, uint32_t slots,
                   uint64_t rate_bps)
    : name_(std::move(name)),
      fd_(fd),
      side_(side),
      map_(std::move(map)),
      base_(map_->base),
      slots_(slots),
      mask_(slots - 1),
      rate_bps_(rate_bps),
      tx_ring_(side == 0 ? 0 : 1),
      rx_ring_(side == 0 ? 1 : 0),
      tx_frames_(counters_.add("cable.tx_frames")),
      tx_bytes_(counters_.add("cable.tx_bytes")),
      rx_frames_(counters_.add("cable.rx_frames")),
      rx_bytes_(counters_.add("cable.rx_bytes")),
      drop_no_peer_(counters_.add("cable.drop.no_peer")),
      drop_ring_full_(counters_.add("cable.drop.ring_full")),
      drop_too_big_(counters_.add("cable.drop.too_big")),
      drop_corrupt_(counters_.add("cable.drop.corrupt")),
      drop_no_receiver_(counters_.add("cable.drop.no_receiver")) {}

ShmCable::~ShmCable() {
  const bool serialized = lock_setup(fd_);
  store_release<uint32_t>(at(L::side_record(side_) + L::kSideState), L::kStateDetached);
  unlock_byte(fd_, L::lock_side(side_));
  const std::string object = object_name(name_);
  // Last one out removes the name, if it still names our object.
  if (serialized && !byte_held_elsewhere(fd_, L::lock_side(1 - side_)) &&
      same_object(fd_, object.c_str()))
    shm_unlink(object.c_str());
  if (serialized) unlock_byte(fd_, L::kLockSetup);
  close(fd_);
}

uint8_t* ShmCable::at(size_t off) const { return base_ + off; }

bool ShmCable::peer_lock_held() const { return byte_held_elsewhere(fd_, L::lock_side(1 - side_)); }

bool ShmCable::peer_ready_for_tx() {
  const size_t peer = L::side_record(1 - side_);
  if (load_acquire<uint32_t>(at(peer + L::kSideState)) != L::kStateAttached)
    return peer_alive_ = false;
  const uint32_t gen = load_relaxed<uint32_t>(at(peer + L::kSideGeneration));
  const int64_t now = monotonic_ns();
  // A lock check is a system call: ask again only when a new peer attached or kPeerCheck passed.
  if (gen != peer_generation_ || now - peer_checked_at_ >= kPeerCheck || peer_checked_at_ == 0) {
    peer_alive_ = peer_lock_held();
    peer_generation_ = gen;
    peer_checked_at_ = now;
  }
  return peer_alive_;
}

bool ShmCable::peer_present() const {
  const size_t peer = L::side_record(1 - side_);
  if (load_acquire<uint32_t>(at(peer + L::kSideState)) != L::kStateAttached) return false;
  return peer_lock_held();
}

bool ShmCable::transmit(std::span<const uint8_t> frame, Nanos start, Nanos end) {
  if (frame.size() > L::kMaxFrame) {
    ++drop_too_big_;
    return false;
  }
  if (!peer_ready_for_tx()) {
    ++drop_no_peer_;
    return false;
  }
  if (tx_head_ - tx_tail_seen_ >= slots_) {
    // Looks full with the tail we knew: fetch the consumer's progress.
    const uint64_t tail = load_acquire<uint64_t>(at(L::ring_tail(tx_ring_)));
    // The tail may only move forward, and never past our head.
    if (tail - tx_tail_seen_ > tx_head_ - tx_tail_seen_) {
      ++drop_corrupt_;
      return false;
    }
    tx_tail_seen_ = tail;
    if (tx_head_ - tail >= slots_) {
      ++drop_ring_full_;
      return false;
    }
  }
  uint8_t* slot = at(L::ring_slots(tx_ring_, slots_) + size_t(tx_head_ & mask_) * L::kSlotSize);
  const uint32_t len = uint32_t(frame.size());
  const uint32_t flags = 0;
  std::memcpy(slot + L::kSlotLength, &len, 4);
  std::memcpy(slot + L::kSlotFlags, &flags, 4);
  std::memcpy(slot + L::kSlotWireStart, &start, 8);
  std::memcpy(slot + L::kSlotWireEnd, &end, 8);
  if (len) std::memcpy(slot + L::kSlotFrame, frame.data(), len);
  // The slot is written; publishing the head hands it to the consumer.
  store_release<uint64_t>(at(L::ring_head(tx_ring_)), ++tx_head_);
  ++tx_frames_;
  tx_bytes_.inc(len);
  return true;
}

Nanos ShmCable::poll(Nanos now) {
  const uint64_t head = load_acquire<uint64_t>(at(L::ring_head(rx_ring_)));
  uint64_t waiting = head - rx_tail_;
  if (waiting > slots_) {
    // The producer's head is behind our tail or too far ahead: deliver nothing until it is sane.
    if (!bad_head_seen_ || head != last_bad_head_) {
      ++drop_corrupt_;
      SHUNT_WARN("cable %s: corrupt ring head %llu (tail %llu, %u slots)", name_.c_str(),
                 (unsigned long long)head, (unsigned long long)rx_tail_, slots_);
    }
    bad_head_seen_ = true;
    last_bad_head_ = head;
    return shunt::kNever;
  }
  bad_head_seen_ = false;
  const uint8_t* ring = at(L::ring_slots(rx_ring_, slots_));
  uint8_t* tail_at = at(L::ring_tail(rx_ring_));
  for (; waiting > 0; --waiting) {
    const uint8_t* slot = ring + size_t(rx_tail_ & mask_) * L::kSlotSize;
    // Each field is read once into a local: the peer may rewrite the slot under us.
    const uint32_t len = load_relaxed<uint32_t>(slot + L::kSlotLength);
    const Nanos end = load_relaxed<int64_t>(slot + L::kSlotWireEnd);
    if (len > L::kMaxFrame) {
      ++drop_corrupt_;
    } else if (end > now) {
      return end;
    } else if (receiver_ == nullptr) {
      ++drop_no_receiver_;
    } else {
      ++rx_frames_;
      rx_bytes_.inc(len);
      receiver_->on_wire_frame(std::span<const uint8_t>(slot + L::kSlotFrame, len), end);
    }
    // Read; releasing the tail hands the slot back to the producer.
    store_release<uint64_t>(tail_at, ++rx_tail_);
  }
  return shunt::kNever;
}

std::string ShmCable::status() const {
  const std::string p = "cable " + name_ + ": ";
  if (load_relaxed<uint64_t>(at(L::kOffMagic)) != L::kMagic)
    return p + "shared header corrupted (bad magic)";
  const size_t peer = L::side_record(1 - side_);
  const uint32_t state = load_acquire<uint32_t>(at(peer + L::kSideState));
  const std::string pid = std::to_string(load_relaxed<uint32_t>(at(peer + L::kSidePid)));
  switch (state) {
    case L::kStateNever:
      return p + "no peer attached";
    case L::kStateDetached:
      return p + "no peer attached (pid " + pid + " detached)";
    case L::kStateAttached:
      return peer_lock_held() ? std::string() : p + "peer (pid " + pid + ") exited";
    default:
      return p + "peer record corrupted (state " + std::to_string(state) + ")";
  }
}

}  // namespace nicmodel
