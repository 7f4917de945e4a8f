// Which file descriptors belong to the offload path. Every offloaded socket keeps a real kernel
// fd (DESIGN.md), so the kernel's fd number is the key and numbers never collide. The table is
// zero-initialised static storage: nothing to allocate, nothing that can fail before main(),
// and a lookup is one relaxed byte load (async-signal-safe).
#pragma once
#include <atomic>
#include <cstdint>

namespace shunt::preload {

enum class FdKind : uint8_t {
  kKernel = 0,     // libc handles it (every fd, for now)
  kOffloaded = 1,  // the socket layer handles it; the kernel fd is a placeholder
  kPending = 2,    // an IP socket the stack holds until bind/connect/listen/sendto places it
  kPendingOptIn = 3,  // the same, with SO_SHUNT_OFFLOAD=1
};

class FdTable {
 public:
  // fds at or above this are always the kernel's (1 MiB of table, touched only where used).
  static constexpr int kMaxFds = 1 << 20;

  FdKind kind(int fd) const {
    if (static_cast<unsigned>(fd) >= static_cast<unsigned>(kMaxFds)) return FdKind::kKernel;
    return FdKind(kinds_[fd].load(std::memory_order_relaxed));
  }
  bool offloaded(int fd) const { return kind(fd) == FdKind::kOffloaded; }
  bool kernel(int fd) const { return kind(fd) == FdKind::kKernel; }
  bool pending(int fd) const { return kind(fd) == FdKind::kPending || kind(fd) == FdKind::kPendingOptIn; }
  bool in_range(int fd) const { return fd >= 0 && fd < kMaxFds; }
  void set(int fd, FdKind k) {
    if (in_range(fd)) kinds_[fd].store(uint8_t(k), std::memory_order_relaxed);
  }
  // `fd` was closed (or is about to be reused): it is the kernel's again.
  void forget(int fd) {
    if (in_range(fd) && kinds_[fd].load(std::memory_order_relaxed) != 0) {
      kinds_[fd].store(0, std::memory_order_relaxed);
    }
  }
  // `copy` now names what `orig` names (dup, dup2, dup3, F_DUPFD).
  void duplicated(int orig, int copy) { set(copy, kind(orig)); }

 private:
  std::atomic<uint8_t> kinds_[kMaxFds] = {};
};

extern FdTable g_fds;

}  // namespace shunt::preload
