// Readiness over offloaded and kernel fds together: poll/ppoll/select/pselect and the epoll
// family (DESIGN.md, "The preload library"; docs/preload.md, "Readiness"). Exports of
// libshunt.so. With no runtime active, or no offloaded fd in the call, each call is libc's,
// unchanged.
//
// How it works:
//  - poll/select: offloaded fds are evaluated with SocketApi::poll_events under the runtime's
//    lock, kernel fds by the real call with a zero timeout. Nothing ready: busy-poll for
//    Runtime::spin_ns(), then sleep in the real ppoll over the kernel fds plus this thread's
//    wake eventfd (Runtime::add_wake_fd), which the runtime writes whenever an offloaded
//    socket's readiness may have changed. The caller's signal mask applies to that sleep only.
//  - epoll: epoll fds are the kernel's. The first time an offloaded fd is added to one, it gets
//    a registry: the offloaded members, and an eventfd in the real set (data kWakeMarker, never
//    reported) kept readable exactly while some member is ready to be reported. That keeps an
//    epoll fd correct inside another epoll set or poll(), and lets epoll_wait sleep in the real
//    epoll_wait. The readiness listener updates the registries holding a socket.
//  - The runtime's lock is never held while sleeping in the kernel, nor across a real call
//    that may block.
#ifdef _FORTIFY_SOURCE
#undef _FORTIFY_SOURCE  // this file defines the fortified entry points
#endif
#include "stack/preload/mux.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/eventfd.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "stack/core/clock.h"
#include "stack/preload/fd_table.h"
#include "stack/preload/libc.h"
#include "stack/preload/runtime.h"
#include "stack/preload/signals.h"
#include "stack/socket/socket_api.h"

#define SHUNT_EXPORT extern "C" __attribute__((visibility("default")))

namespace shunt::preload {
namespace {

// poll(2) and epoll(7) use the same bit for the same condition on Linux; the code relies on it.
static_assert(POLLIN == EPOLLIN && POLLPRI == EPOLLPRI && POLLOUT == EPOLLOUT &&
              POLLERR == EPOLLERR && POLLHUP == EPOLLHUP && POLLRDHUP == EPOLLRDHUP &&
              POLLRDNORM == EPOLLRDNORM && POLLWRNORM == EPOLLWRNORM && POLLRDBAND == EPOLLRDBAND &&
              POLLWRBAND == EPOLLWRBAND);

// The data of a registry's eventfd in the real epoll set; filtered out of every result. A kernel
// member registered by the program with exactly this data would be filtered too (docs/preload.md).
constexpr uint64_t kWakeMarker = 0x5348554e54ffffffULL;  // "SHUNT" ...
constexpr uint32_t kEpollEventBits = EPOLLIN | EPOLLPRI | EPOLLOUT | EPOLLERR | EPOLLHUP |
                                     EPOLLRDHUP | EPOLLRDNORM | EPOLLRDBAND | EPOLLWRNORM |
                                     EPOLLWRBAND;
constexpr uint32_t kAlwaysReported = EPOLLERR | EPOLLHUP;  // epoll(7): reported without being asked

// Per fd, lock-free: is it an epoll fd with a registry, is it an offloaded member of some set.
// Set under the runtime's lock, cleared when the fd closes; a stale bit only costs a lock.
enum : uint8_t { kHasRegistry = 1, kIsMember = 2 };
class MuxFlags {
 public:
  uint8_t get(int fd) const {
    if (static_cast<unsigned>(fd) >= static_cast<unsigned>(FdTable::kMaxFds)) return 0;
    return flags_[fd].load(std::memory_order_acquire);
  }
  void add(int fd, uint8_t f) {
    if (static_cast<unsigned>(fd) < static_cast<unsigned>(FdTable::kMaxFds)) flags_[fd].fetch_or(f);
  }
  void clear(int fd, uint8_t f) {
    if (static_cast<unsigned>(fd) < static_cast<unsigned>(FdTable::kMaxFds))
      flags_[fd].fetch_and(uint8_t(~f));
  }

 private:
  std::atomic<uint8_t> flags_[FdTable::kMaxFds] = {};
};
constinit MuxFlags g_flags;

using Locked = std::lock_guard<StackMutex>;

// The runtime when this process drives one (a forked child's offloaded fds are the parent's).
// A signal handler that calls poll or epoll_wait on a thread that holds the runtime's lock gets
// the kernel's view rather than a deadlock (StackMutex).
Runtime* live_runtime() {
  Runtime* rt = Runtime::active();
  if (!rt || rt->forked_child() || StackMutex::held_here()) return nullptr;
  return rt;
}

bool offloaded(const Runtime& rt, int fd) { return rt.handle_of(fd) >= 0; }

// What poll(2) would report for an offloaded socket, with the *NORM bits Linux adds.
uint32_t socket_events(Runtime& rt, int handle) {
  uint32_t p = rt.api().poll_events(handle);
  if (p & POLLIN) p |= POLLRDNORM;
  if (p & POLLOUT) p |= POLLWRNORM;
  return p;
}

// --- Time.

Nanos add_clamped(Nanos a, Nanos b) { return b >= kNever - a ? kNever : a + b; }

// A relative timespec as nanoseconds; -1 when invalid; kNever for null.
Nanos timespec_ns(const timespec* t) {
  if (!t) return kNever;
  if (t->tv_sec < 0 || t->tv_nsec < 0 || t->tv_nsec >= 1'000'000'000) return -1;
  if (t->tv_sec >= (kNever / kSecond) - 1) return kNever;
  return Nanos(t->tv_sec) * kSecond + t->tv_nsec;
}

// Milliseconds for a real call's timeout, rounded up so that it never wakes early; -1: forever.
int ceil_ms(Nanos left) {
  if (left == kNever) return -1;
  if (left <= 0) return 0;
  const Nanos ms = (left + kMilli - 1) / kMilli;
  return ms > INT_MAX ? INT_MAX : int(ms);
}

timespec to_timespec(Nanos ns) { return timespec{time_t(ns / kSecond), long(ns % kSecond)}; }

void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// How long one sleep in the kernel may last: without a progress thread nobody else drains the
// NIC, so the sleeper comes back every millisecond to poll the stack itself.
Nanos sleep_until(const Runtime& rt, Nanos now, Nanos deadline) {
  if (rt.has_progress_thread()) return deadline;
  return std::min(deadline, add_clamped(now, kMilli));
}

// --- The thread's wake eventfd (poll and select sleep on it next to the kernel fds).

struct WakeFd {
  int fd = -1;
  ~WakeFd() {
    if (fd >= 0) SHUNT_REAL(close)(fd);
  }
  int get() {
    if (fd < 0) fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    return fd;
  }
  void drain() const {
    uint64_t v;
    ssize_t r = SHUNT_REAL(read)(fd, &v, sizeof v);
    (void)r;  // EAGAIN: nothing to drain
  }
};
__attribute__((tls_model("initial-exec"))) thread_local WakeFd t_wake;

// Registers the thread's wake fd with the runtime for the rest of a call.
class WakeRegistration {
 public:
  explicit WakeRegistration(Runtime& rt) : rt_(rt) {}
  ~WakeRegistration() {
    if (fd_ >= 0) {
      Locked g(rt_.mu());
      rt_.remove_wake_fd(fd_);
    }
  }
  // The registered fd, or -1 when none can be made (then sleeps are bounded instead).
  int ensure() {
    if (fd_ < 0 && !failed_) {
      const int fd = t_wake.get();
      if (fd < 0) {
        failed_ = true;
        return -1;
      }
      Locked g(rt_.mu());
      rt_.add_wake_fd(fd);
      fd_ = fd;
    }
    return fd_;
  }

 private:
  Runtime& rt_;
  int fd_ = -1;
  bool failed_ = false;
};

// --- epoll registries. Everything below is guarded by the runtime's lock.

struct Member {
  int fd = -1;
  int handle = -1;
  uint32_t interest = 0;  // EPOLLIN... with EPOLLET / EPOLLONESHOT
  epoll_data_t data{};
  bool edge = false;      // EPOLLET: a readiness event not reported yet
  bool disabled = false;  // EPOLLONESHOT: reported; silent until EPOLL_CTL_MOD
  bool armed = false;     // would be reported now: on the registry's ready list
  Member* prev =
      nullptr;  // the ready list (members live in a std::map: their addresses are stable)
  Member* next = nullptr;
};

struct Registry {
  int epfd = -1;
  int efd = -1;                  // in the real set with kWakeMarker; readable while armed > 0
  int armed = 0;                 // length of the ready list
  Member* ready_head = nullptr;  // armed members, oldest first; a reported level-triggered member
  Member* ready_tail = nullptr;  // goes to the tail (round robin, like the kernel's ready list)
  bool signalled = false;
  std::map<int, Member> members;  // by fd
  // Kernel fds in the real set, at most (a closed one leaves it unseen): 0 spares epoll_wait a
  // system call per round when every member is offloaded.
  int kernel_members = 0;
};

struct Registries {
  std::unordered_map<int, Registry*> by_epfd;
  std::unordered_map<int, std::vector<std::pair<Registry*, int>>> by_handle;  // -> (set, fd)
  std::unordered_map<int, std::vector<Registry*>> by_fd;
  bool listening = false;
};

// Never freed: a call from an atexit handler or another thread's exit may still look.
Registries& regs() {
  static Registries* r = new Registries;
  return *r;
}

template <typename V, typename T>
void erase_one(V& v, const T& x) {
  auto it = std::find(v.begin(), v.end(), x);
  if (it != v.end()) v.erase(it);
}

void sync_signal(Registry& r) {
  const bool want = r.armed > 0;
  if (want == r.signalled) return;
  const int saved = errno;
  uint64_t v = 1;
  ssize_t n = want ? SHUNT_REAL(write)(r.efd, &v, sizeof v) : SHUNT_REAL(read)(r.efd, &v, sizeof v);
  (void)n;
  errno = saved;
  r.signalled = want;
}

void unlink_ready(Registry& r, Member& m) {
  (m.prev ? m.prev->next : r.ready_head) = m.next;
  (m.next ? m.next->prev : r.ready_tail) = m.prev;
  m.prev = m.next = nullptr;
}

void append_ready(Registry& r, Member& m) {
  m.prev = r.ready_tail;
  m.next = nullptr;
  (r.ready_tail ? r.ready_tail->next : r.ready_head) = &m;
  r.ready_tail = &m;
}

void set_armed(Registry& r, Member& m, bool armed) {
  if (armed == m.armed) return;
  m.armed = armed;
  if (armed) {
    append_ready(r, m);
    ++r.armed;
  } else {
    unlink_ready(r, m);
    --r.armed;
  }
}

// Re-reads a member's readiness; `event`: the socket signalled a change (an edge, as a kernel
// wakeup is for EPOLLET). Returns the events it is ready for.
uint32_t refresh(Runtime& rt, Registry& r, Member& m, bool event) {
  const uint32_t ready =
      socket_events(rt, m.handle) & ((m.interest & kEpollEventBits) | kAlwaysReported);
  if (m.interest & EPOLLET) {
    if (!ready) {
      m.edge = false;
    } else if (event) {
      m.edge = true;
    }
  }
  set_armed(r, m, ready && !m.disabled && (!(m.interest & EPOLLET) || m.edge));
  return ready;
}

void index_member(Registries& s, Registry& r, int fd, int handle) {
  s.by_handle[handle].emplace_back(&r, fd);
  s.by_fd[fd].push_back(&r);
  g_flags.add(fd, kIsMember);
}

void drop_member(Registries& s, Registry& r, std::map<int, Member>::iterator it) {
  const int fd = it->first;
  set_armed(r, it->second, false);
  if (auto h = s.by_handle.find(it->second.handle); h != s.by_handle.end()) {
    erase_one(h->second, std::make_pair(&r, fd));
    if (h->second.empty()) s.by_handle.erase(h);
  }
  if (auto f = s.by_fd.find(fd); f != s.by_fd.end()) {
    erase_one(f->second, &r);
    if (f->second.empty()) s.by_fd.erase(f);
  }
  r.members.erase(it);
}

// The runtime's readiness listener: `handle`'s readiness may have changed.
void on_readiness(int handle) {
  if (handle < 0) return;  // a closed handle: its fds left the sets when they closed
  Registries& s = regs();
  auto it = s.by_handle.find(handle);
  if (it == s.by_handle.end()) return;
  Runtime* rt = Runtime::active();
  for (auto& [r, fd] : it->second) {
    auto m = r->members.find(fd);
    if (m == r->members.end()) continue;
    refresh(*rt, *r, m->second, true);
    sync_signal(*r);
  }
}

Registry* find_registry(int epfd) {
  Registries& s = regs();
  auto it = s.by_epfd.find(epfd);
  return it == s.by_epfd.end() ? nullptr : it->second;
}

// How many fds the real epoll set holds: its "tfd:" lines in /proc/self/fdinfo (a set may have
// kernel members from before this library looked). INT_MAX when that cannot be read.
int count_real_members(int epfd) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/self/fdinfo/%d", epfd);
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return INT_MAX;
  int count = 0;
  bool line_start = true;
  char buf[4096];
  ssize_t got;
  // "tfd:" at the start of a line; a line may straddle two reads, so keep the state across them.
  int matched = 0;
  while ((got = SHUNT_REAL(read)(fd, buf, sizeof buf)) > 0) {
    for (ssize_t i = 0; i < got; ++i) {
      const char c = buf[i];
      if (line_start || matched > 0) {
        if (c == "tfd:"[matched]) {
          if (++matched == 4) {
            ++count;
            matched = 0;
          }
        } else {
          matched = 0;
        }
      }
      line_start = c == '\n';
    }
  }
  SHUNT_REAL(close)(fd);
  return got < 0 ? INT_MAX : count;
}

// The registry of `epfd`, made on first use; null with errno set when epfd is no epoll fd.
Registry* registry_for(Runtime& rt, int epfd) {
  if (Registry* r = find_registry(epfd)) return r;
  // A closed epfd is EBADF; checked first, as the eventfd below could take its number.
  if (SHUNT_REAL(fcntl)(epfd, F_GETFD) < 0) return nullptr;
  const int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (efd < 0) return nullptr;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kWakeMarker;
  // The kernel checks epfd for us: EBADF when it is no fd, EINVAL when it is no epoll fd.
  if (SHUNT_REAL(epoll_ctl)(epfd, EPOLL_CTL_ADD, efd, &ev) != 0) {
    const int e = errno;
    SHUNT_REAL(close)(efd);
    errno = e;
    return nullptr;
  }
  Registries& s = regs();
  if (!s.listening) {
    rt.set_readiness_listener(&on_readiness);
    s.listening = true;
  }
  auto* r = new Registry;
  r->epfd = epfd;
  r->efd = efd;
  const int real = count_real_members(epfd);  // the eventfd included
  r->kernel_members = real == INT_MAX ? INT_MAX : std::max(0, real - 1);
  s.by_epfd[epfd] = r;
  g_flags.add(epfd, kHasRegistry);
  return r;
}

void drop_registry(Registries& s, Registry* r) {
  while (!r->members.empty()) drop_member(s, *r, r->members.begin());
  SHUNT_REAL(close)(r->efd);
  s.by_epfd.erase(r->epfd);
  g_flags.clear(r->epfd, kHasRegistry);
  delete r;
}

// A member whose fd no longer names its socket: the socket went to the kernel (placement), so
// the fd becomes a kernel member of the real set; otherwise it is dropped.
void settle_stale(Runtime& rt, Registry& r, std::map<int, Member>::iterator it) {
  const int fd = it->first;
  const Member m = it->second;
  drop_member(regs(), r, it);
  if (!offloaded(rt, fd) && g_fds.kernel(fd)) {
    epoll_event ev{};
    ev.events = m.interest;
    ev.data = m.data;
    const int saved = errno;
    if (SHUNT_REAL(epoll_ctl)(r.epfd, EPOLL_CTL_ADD, fd, &ev) == 0 && r.kernel_members < INT_MAX)
      ++r.kernel_members;
    errno = saved;
  }
}

// Under the lock: members whose fd no longer names their socket (placement handed it to the
// kernel, or a close this library did not see). O(members): run before sleeping, not per call.
void settle_all_stale(Runtime& rt, Registry& r) {
  for (auto it = r.members.begin(); it != r.members.end();) {
    auto next = std::next(it);
    if (rt.handle_of(it->first) != it->second.handle) settle_stale(rt, r, it);
    it = next;
  }
}

// Under the lock: the ready offloaded members, at most `max`, from the ready list (O(ready), not
// O(members)). Each visited member is re-read, so one that stopped being ready without an event
// leaves the list here; the eventfd follows the list.
int collect(Runtime& rt, Registry& r, epoll_event* out, int max) {
  int n = 0;
  const int visits = r.armed;
  Member* m = r.ready_head;
  for (int i = 0; i < visits && m && n < max; ++i) {
    Member* next = m->next;
    if (rt.handle_of(m->fd) != m->handle) {
      settle_stale(rt, r, r.members.find(m->fd));
      m = next;
      continue;
    }
    const uint32_t ready = refresh(rt, r, *m, false);
    if (m->armed) {
      out[n].events = ready;
      out[n].data = m->data;
      ++n;
      if (m->interest & EPOLLET) m->edge = false;
      if (m->interest & EPOLLONESHOT) m->disabled = true;
      if (m->disabled || (m->interest & EPOLLET)) {
        set_armed(r, *m, false);
      } else {
        unlink_ready(r, *m);  // still ready: to the tail, behind the others
        append_ready(r, *m);
      }
    }
    m = next;
  }
  sync_signal(r);
  return n;
}

int drop_markers(epoll_event* ev, int n) {
  int k = 0;
  for (int i = 0; i < n; ++i) {
    if (ev[i].data.u64 != kWakeMarker) ev[k++] = ev[i];
  }
  return k;
}

// The real epoll_pwait on a set that has (or had) a registry: the marker never reaches the
// program. A result of only the marker (left readable in a forked child) reads as a timeout.
int real_epoll_filtered(int epfd, epoll_event* ev, int max, Nanos timeout, const sigset_t* mask) {
  const int n = SHUNT_REAL(epoll_pwait)(epfd, ev, max, ceil_ms(timeout), mask);
  return n <= 0 ? n : drop_markers(ev, n);
}

// A handler ran while the call busy-polled: poll, select and epoll end with EINTR whatever
// SA_RESTART says, as in the kernel (signal(7)).
int eintr() {
  errno = EINTR;
  return -1;
}

int epoll_wait_mux(int epfd, epoll_event* out, int max, Nanos timeout, const sigset_t* mask) {
  if (max <= 0 || max > int(INT_MAX / sizeof(epoll_event))) {
    errno = EINVAL;
    return -1;
  }
  Runtime* rt = live_runtime();
  if (!rt) return real_epoll_filtered(epfd, out, max, timeout, mask);
  const Nanos start = rt->now();
  const Nanos deadline = add_clamped(start, timeout);
  const Nanos spin_end = add_clamped(start, rt->spin_ns());
  const uint32_t signals_at_start = signals_seen();
  for (;;) {
    int n = 0;
    bool kernel_members = true;
    {
      Locked g(rt->mu());
      rt->progress_locked();
      Registry* r = find_registry(epfd);
      if (!r) {
        n = -1;  // closed by another thread meanwhile: the kernel says what that means
      } else {
        n = collect(*rt, *r, out, max);
        kernel_members = r->kernel_members > 0;
      }
    }
    if (n < 0)
      return real_epoll_filtered(epfd, out, max, std::max<Nanos>(0, deadline - rt->now()), mask);
    if (n < max && kernel_members) {
      const int k = SHUNT_REAL(epoll_wait)(epfd, out + n, max - n, 0);
      if (k < 0) return n > 0 ? n : -1;
      n += drop_markers(out + n, k);
    }
    if (n > 0) return n;
    const Nanos now = rt->now();
    if (now >= deadline) return 0;
    if (now < spin_end) {
      if (signals_seen() != signals_at_start) return eintr();  // a handler ran: signal(7)
      cpu_relax();
      continue;
    }
    {
      Locked g(rt->mu());
      if (Registry* r = find_registry(epfd)) settle_all_stale(*rt, *r);
    }
    // Sleep in the kernel: the registry's eventfd wakes the real epoll_wait when an offloaded
    // member becomes ready; kernel members report themselves.
    const Nanos until = sleep_until(*rt, now, deadline);
    rt->about_to_sleep();
    int k = SHUNT_REAL(epoll_pwait)(epfd, out, max, ceil_ms(until == kNever ? kNever : until - now),
                                    mask);
    if (k < 0) return -1;  // EINTR: the caller's mask let a signal in
    k = drop_markers(out, k);
    if (k > 0) return k;
  }
}

// --- poll and select: shared wait loop.

// Spins, then sleeps. `round()` evaluates every fd with zero timeout: > 0 ready, 0 none, -1
// error (errno set). `sleep_set` builds the kernel fds to sleep on (the wake fd is appended).
template <typename Round, typename SleepSet>
int wait_loop(Runtime& rt, Nanos timeout, const sigset_t* mask, Round round, SleepSet sleep_set) {
  int n = round();
  if (n != 0 || timeout == 0) return n;
  const Nanos start = rt.now();
  const Nanos deadline = add_clamped(start, timeout);
  const Nanos spin_end = add_clamped(start, rt.spin_ns());
  const uint32_t signals_at_start = signals_seen();
  for (;;) {
    const Nanos now = rt.now();
    if (now >= deadline || now >= spin_end) break;
    if (signals_seen() != signals_at_start) return eintr();  // a handler ran: signal(7)
    cpu_relax();
    n = round();
    if (n != 0) return n;
  }
  WakeRegistration wake(rt);
  std::vector<pollfd> fds;
  sleep_set(fds);
  const size_t kernel_fds = fds.size();
  for (;;) {
    const Nanos now = rt.now();
    if (now >= deadline) return 0;
    // Register and drain before evaluating: a change after the evaluation writes the wake fd.
    const int wfd = wake.ensure();
    fds.resize(kernel_fds);
    if (wfd >= 0) {
      t_wake.drain();
      fds.push_back(pollfd{wfd, POLLIN, 0});
    }
    n = round();
    if (n != 0) return n;
    Nanos until = sleep_until(rt, now, deadline);
    if (wfd < 0) until = std::min(until, add_clamped(now, kMilli));
    timespec ts;
    if (until != kNever) ts = to_timespec(std::max<Nanos>(0, until - now));
    rt.about_to_sleep();
    const int k = SHUNT_REAL(ppoll)(fds.data(), fds.size(), until == kNever ? nullptr : &ts, mask);
    if (k < 0) return -1;  // EINTR: the caller's mask let a signal in
  }
}

int poll_mux(Runtime& rt, pollfd* fds, nfds_t nfds, Nanos timeout, const sigset_t* mask) {
  if (timeout < 0) {
    errno = EINVAL;
    return -1;
  }
  // The kernel fds, in order, for the zero-timeout real poll.
  constexpr size_t kLocal = 32;
  pollfd local[kLocal];
  std::vector<pollfd> heap;
  size_t nk = 0;
  for (nfds_t i = 0; i < nfds; ++i) {
    if (fds[i].fd >= 0 && !offloaded(rt, fds[i].fd)) ++nk;
  }
  pollfd* kfds = local;
  if (nk > kLocal) {
    heap.resize(nk);
    kfds = heap.data();
  }
  auto round = [&]() -> int {
    int count = 0;
    {
      Locked g(rt.mu());
      rt.progress_locked();
      for (nfds_t i = 0; i < nfds; ++i) {
        pollfd& p = fds[i];
        p.revents = 0;
        if (p.fd < 0) continue;
        const int h = rt.handle_of(p.fd);
        if (h < 0) continue;
        p.revents = short(socket_events(rt, h) &
                          (uint32_t(uint16_t(p.events)) | POLLERR | POLLHUP | POLLNVAL));
        if (p.revents) ++count;
      }
    }
    if (nk == 0) return count;
    size_t j = 0;
    for (nfds_t i = 0; i < nfds; ++i) {
      if (fds[i].fd < 0 || offloaded(rt, fds[i].fd)) continue;
      if (j < nk) kfds[j++] = pollfd{fds[i].fd, fds[i].events, 0};
    }
    const int k = SHUNT_REAL(poll)(kfds, j, 0);
    if (k < 0) return -1;
    j = 0;
    for (nfds_t i = 0; i < nfds && j < nk; ++i) {
      if (fds[i].fd < 0 || offloaded(rt, fds[i].fd)) continue;
      if (kfds[j].fd != fds[i].fd)
        break;  // the set changed under us (another thread): recount next round
      fds[i].revents = kfds[j++].revents;
      if (fds[i].revents) ++count;
    }
    return count;
  };
  auto sleep_set = [&](std::vector<pollfd>& out) {
    for (nfds_t i = 0; i < nfds; ++i) {
      if (fds[i].fd >= 0 && !offloaded(rt, fds[i].fd))
        out.push_back(pollfd{fds[i].fd, fds[i].events, 0});
    }
  };
  return wait_loop(rt, timeout, mask, round, sleep_set);
}

// An fd this library must look after in a wait: an offloaded socket, or an epoll fd with a
// registry (its eventfd only turns readable when someone polls the stack, which without a
// progress thread is the waiter itself).
bool needs_mux(const Runtime& rt, int fd) {
  return offloaded(rt, fd) || (g_flags.get(fd) & kHasRegistry);
}

bool any_offloaded(const Runtime& rt, const pollfd* fds, nfds_t n) {
  for (nfds_t i = 0; i < n; ++i) {
    if (needs_mux(rt, fds[i].fd)) return true;
  }
  return false;
}

// select's sets as arrays of words (a program may pass more than FD_SETSIZE bits).
using Word = unsigned long;
constexpr int kWordBits = int(sizeof(Word) * 8);
Word* words(fd_set* s) { return reinterpret_cast<Word*>(s); }
bool bit(const Word* w, int fd) { return (w[fd / kWordBits] >> (fd % kWordBits)) & 1; }
void set_bit(Word* w, int fd) { w[fd / kWordBits] |= Word(1) << (fd % kWordBits); }
void clear_bit(Word* w, int fd) { w[fd / kWordBits] &= ~(Word(1) << (fd % kWordBits)); }

bool select_has_offloaded(const Runtime& rt, int n, fd_set* r, fd_set* w, fd_set* e) {
  for (fd_set* s : {r, w, e}) {
    if (!s) continue;
    const Word* ws = words(s);
    for (int i = 0; i < (n + kWordBits - 1) / kWordBits; ++i) {
      Word x = ws[i];
      if (i == n / kWordBits) x &= (Word(1) << (n % kWordBits)) - 1;
      while (x) {
        const int fd = i * kWordBits + __builtin_ctzl(x);
        x &= x - 1;
        if (needs_mux(rt, fd)) return true;
      }
    }
  }
  return false;
}

// select(2)'s sets over poll bits, as Linux defines them (fs/select.c POLLIN_SET...).
constexpr uint32_t kSelectIn = POLLIN | POLLRDNORM | POLLRDBAND | POLLHUP | POLLERR;
constexpr uint32_t kSelectOut = POLLOUT | POLLWRNORM | POLLWRBAND | POLLERR;
constexpr uint32_t kSelectEx = POLLPRI;

int select_mux(Runtime& rt, int n, fd_set* r, fd_set* w, fd_set* e, Nanos timeout,
               const sigset_t* mask) {
  const int nw = (n + kWordBits - 1) / kWordBits;
  // in[0..2]: what the program asked (copied: the sets are rewritten with results); kin: the
  // kernel fds only; off: the offloaded fds.
  std::vector<Word> in[3], kin[3];
  fd_set* sets[3] = {r, w, e};
  std::vector<int> off;
  bool any_kernel = false;
  for (int s = 0; s < 3; ++s) {
    if (!sets[s]) continue;
    in[s].assign(words(sets[s]), words(sets[s]) + nw);
    if (n % kWordBits) in[s][size_t(nw - 1)] &= (Word(1) << (n % kWordBits)) - 1;
    kin[s] = in[s];
    for (int fd = 0; fd < n; ++fd) {
      if (!bit(in[s].data(), fd)) continue;
      if (offloaded(rt, fd)) {
        clear_bit(kin[s].data(), fd);
        if (std::find(off.begin(), off.end(), fd) == off.end()) off.push_back(fd);
      } else {
        any_kernel = true;
      }
    }
  }
  std::vector<Word> tmp[3];
  auto round = [&]() -> int {
    int count = 0;
    for (int s = 0; s < 3; ++s) {
      if (sets[s]) std::fill(words(sets[s]), words(sets[s]) + nw, Word(0));
    }
    {
      Locked g(rt.mu());
      rt.progress_locked();
      for (int fd : off) {
        const int h = rt.handle_of(fd);
        const uint32_t ev = h < 0 ? POLLNVAL : socket_events(rt, h);
        if (ev & POLLNVAL) {
          errno = EBADF;
          return -1;
        }
        const uint32_t want[3] = {kSelectIn, kSelectOut, kSelectEx};
        for (int s = 0; s < 3; ++s) {
          if (sets[s] && bit(in[s].data(), fd) && (ev & want[s])) {
            set_bit(words(sets[s]), fd);
            ++count;
          }
        }
      }
    }
    if (!any_kernel) return count;
    fd_set* ks[3] = {nullptr, nullptr, nullptr};
    for (int s = 0; s < 3; ++s) {
      if (!sets[s]) continue;
      tmp[s] = kin[s];
      tmp[s].resize(std::max<size_t>(size_t(nw), sizeof(fd_set) / sizeof(Word)), 0);
      ks[s] = reinterpret_cast<fd_set*>(tmp[s].data());
    }
    timeval zero{0, 0};
    const int k = SHUNT_REAL(select)(n, ks[0], ks[1], ks[2], &zero);
    if (k < 0) return -1;
    for (int s = 0; s < 3; ++s) {
      if (!sets[s]) continue;
      for (int i = 0; i < nw; ++i) words(sets[s])[i] |= tmp[s][size_t(i)];
    }
    return count + k;
  };
  auto sleep_set = [&](std::vector<pollfd>& out) {
    const short ev[3] = {POLLIN, POLLOUT, POLLPRI};
    for (int fd = 0; fd < n; ++fd) {
      short want = 0;
      for (int s = 0; s < 3; ++s) {
        if (sets[s] && bit(kin[s].data(), fd)) want |= ev[s];
      }
      if (want) out.push_back(pollfd{fd, want, 0});
    }
  };
  const int rc = wait_loop(rt, timeout, mask, round, sleep_set);
  if (rc <= 0) {
    // Nothing (timeout, or an error): Linux leaves the sets as they were only on error; on a
    // timeout they come back empty, which round() already did.
    if (rc < 0) {
      const int saved = errno;
      for (int s = 0; s < 3; ++s) {
        if (sets[s]) std::copy(in[s].begin(), in[s].end(), words(sets[s]));
      }
      errno = saved;
    }
  }
  return rc;
}

}  // namespace

// --- Called by preload.cc.

void mux_fd_closing(int fd) {
  const uint8_t f = g_flags.get(fd);
  if (!f || StackMutex::held_here()) return;
  Runtime* rt = Runtime::active();
  if (!rt) return;
  Locked g(rt->mu());
  Registries& s = regs();
  if (f & kIsMember) {
    if (auto it = s.by_fd.find(fd); it != s.by_fd.end()) {
      const std::vector<Registry*> sets = it->second;
      for (Registry* r : sets) {
        if (auto m = r->members.find(fd); m != r->members.end()) {
          drop_member(s, *r, m);
          sync_signal(*r);
        }
      }
    }
    g_flags.clear(fd, kIsMember);
  }
  if (f & kHasRegistry) {
    if (Registry* r = find_registry(fd)) drop_registry(s, r);
  }
}

void mux_fd_to_kernel_locked(int fd) {
  if (!(g_flags.get(fd) & kIsMember)) return;
  Runtime* rt = Runtime::active();
  if (!rt) return;
  Registries& s = regs();
  auto it = s.by_fd.find(fd);
  if (it == s.by_fd.end()) return;
  const std::vector<Registry*> sets = it->second;
  for (Registry* r : sets) {
    if (auto m = r->members.find(fd); m != r->members.end()) {
      settle_stale(*rt, *r, m);
      sync_signal(*r);
    }
  }
  g_flags.clear(fd, kIsMember);
}

}  // namespace shunt::preload

using shunt::kMilli;
using shunt::kNever;
using shunt::Nanos;
namespace mux = shunt::preload;

// --- poll and ppoll.

SHUNT_EXPORT int poll(pollfd* fds, nfds_t n, int timeout) {
  mux::Runtime* rt = mux::live_runtime();
  if (__builtin_expect(!rt, 1) || !mux::any_offloaded(*rt, fds, n))
    return SHUNT_REAL(poll)(fds, n, timeout);
  return mux::poll_mux(*rt, fds, n, timeout < 0 ? kNever : Nanos(timeout) * kMilli, nullptr);
}

SHUNT_EXPORT int ppoll(pollfd* fds, nfds_t n, const timespec* timeout, const sigset_t* mask) {
  mux::Runtime* rt = mux::live_runtime();
  if (__builtin_expect(!rt, 1) || !mux::any_offloaded(*rt, fds, n))
    return SHUNT_REAL(ppoll)(fds, n, timeout, mask);
  return mux::poll_mux(*rt, fds, n, mux::timespec_ns(timeout), mask);
}

SHUNT_EXPORT int __poll_chk(pollfd* fds, nfds_t n, int timeout, size_t fdslen) {
  mux::Runtime* rt = mux::live_runtime();
  if (__builtin_expect(!rt, 1) || fdslen / sizeof(*fds) < n || !mux::any_offloaded(*rt, fds, n)) {
    return SHUNT_REAL(__poll_chk)(fds, n, timeout, fdslen);  // also what fails the check
  }
  return mux::poll_mux(*rt, fds, n, timeout < 0 ? kNever : Nanos(timeout) * kMilli, nullptr);
}

SHUNT_EXPORT int __ppoll_chk(pollfd* fds, nfds_t n, const timespec* timeout, const sigset_t* mask,
                             size_t fdslen) {
  mux::Runtime* rt = mux::live_runtime();
  if (__builtin_expect(!rt, 1) || fdslen / sizeof(*fds) < n || !mux::any_offloaded(*rt, fds, n)) {
    return SHUNT_REAL(__ppoll_chk)(fds, n, timeout, mask, fdslen);
  }
  return mux::poll_mux(*rt, fds, n, mux::timespec_ns(timeout), mask);
}

// --- select and pselect.

SHUNT_EXPORT int select(int n, fd_set* __restrict r, fd_set* __restrict w, fd_set* __restrict e,
                        timeval* __restrict timeout) {
  mux::Runtime* rt = mux::live_runtime();
  if (__builtin_expect(!rt, 1) || n <= 0 || !mux::select_has_offloaded(*rt, n, r, w, e)) {
    return SHUNT_REAL(select)(n, r, w, e, timeout);
  }
  Nanos t = kNever;
  if (timeout) {
    if (timeout->tv_sec < 0 || timeout->tv_usec < 0) {
      errno = EINVAL;
      return -1;
    }
    // Linux folds whole seconds of tv_usec into tv_sec (fs/select.c kern_select).
    const Nanos sec = Nanos(timeout->tv_sec) + timeout->tv_usec / 1'000'000;
    t = sec >= kNever / shunt::kSecond - 1
            ? kNever
            : sec * shunt::kSecond + Nanos(timeout->tv_usec % 1'000'000) * 1000;
  }
  const Nanos start = rt->now();
  const int rc = mux::select_mux(*rt, n, r, w, e, t, nullptr);
  if (timeout && t != kNever) {
    // Linux select() writes back the time left (select(2), "Linux").
    const int saved = errno;
    const Nanos left = std::max<Nanos>(0, t - (rt->now() - start));
    timeout->tv_sec = time_t(left / shunt::kSecond);
    timeout->tv_usec = suseconds_t((left % shunt::kSecond) / 1000);
    errno = saved;
  }
  return rc;
}

SHUNT_EXPORT int pselect(int n, fd_set* __restrict r, fd_set* __restrict w, fd_set* __restrict e,
                         const timespec* __restrict timeout, const sigset_t* __restrict mask) {
  mux::Runtime* rt = mux::live_runtime();
  if (__builtin_expect(!rt, 1) || n <= 0 || !mux::select_has_offloaded(*rt, n, r, w, e)) {
    return SHUNT_REAL(pselect)(n, r, w, e, timeout, mask);
  }
  const Nanos t = mux::timespec_ns(timeout);
  if (t < 0) {
    errno = EINVAL;
    return -1;
  }
  return mux::select_mux(*rt, n, r, w, e, t, mask);
}

// --- The epoll family. epoll fds are the kernel's; see the top of this file.

SHUNT_EXPORT int epoll_create(int size) noexcept { return SHUNT_REAL(epoll_create)(size); }

SHUNT_EXPORT int epoll_create1(int flags) noexcept { return SHUNT_REAL(epoll_create1)(flags); }

SHUNT_EXPORT int epoll_ctl(int epfd, int op, int fd, epoll_event* ev) noexcept {
  mux::Runtime* rt = mux::live_runtime();
  if (__builtin_expect(!rt, 1)) return SHUNT_REAL(epoll_ctl)(epfd, op, fd, ev);
  if (rt->handle_of(fd) < 0) {
    const int rc = SHUNT_REAL(epoll_ctl)(epfd, op, fd, ev);
    if (rc == 0 && op != EPOLL_CTL_MOD &&
        ((mux::g_flags.get(epfd) & mux::kHasRegistry) ||
         (mux::g_flags.get(fd) & mux::kHasRegistry))) {
      const int saved = errno;
      mux::Locked g(rt->mu());
      mux::Registry* r = mux::find_registry(epfd);
      if (!r && op == EPOLL_CTL_ADD) {
        // An epoll fd with offloaded members inside another set: the outer set's waits must
        // poll the stack too (a registry, empty, sends them through the mux). It counts the
        // real set's members itself.
        mux::registry_for(*rt, epfd);
      } else if (r && op == EPOLL_CTL_ADD) {
        if (r->kernel_members < INT_MAX) ++r->kernel_members;
      } else if (r && r->kernel_members > 0 && r->kernel_members < INT_MAX) {
        --r->kernel_members;
      }
      errno = saved;
    }
    return rc;
  }
  if (op != EPOLL_CTL_ADD && op != EPOLL_CTL_MOD && op != EPOLL_CTL_DEL) {
    errno = EINVAL;
    return -1;
  }
  if (op != EPOLL_CTL_DEL && !ev) {
    errno = EFAULT;
    return -1;
  }
  mux::Locked g(rt->mu());
  const int handle = rt->handle_of(fd);
  mux::Registry* r = mux::find_registry(epfd);
  if (handle < 0 || (!r && op != EPOLL_CTL_ADD)) {
    // Not (or no longer) offloaded, or a set with no offloaded member: the kernel's answer
    // (ENOENT, or EBADF/EINVAL for a bad epfd; a socket added before it was placed is there).
    return SHUNT_REAL(epoll_ctl)(epfd, op, fd, ev);
  }
  if (epfd == fd) {
    errno = EINVAL;
    return -1;
  }
  if (!r && !(r = mux::registry_for(*rt, epfd))) return -1;
  mux::Registries& s = mux::regs();
  auto it = r->members.find(fd);
  if (it != r->members.end() && it->second.handle != handle) {
    mux::settle_stale(*rt, *r, it);  // the number names another socket now
    it = r->members.end();
  }
  switch (op) {
    case EPOLL_CTL_ADD: {
      if (it != r->members.end()) {
        errno = EEXIST;
        return -1;
      }
      // epoll_ctl(2): EPOLLEXCLUSIVE goes only with these flags.
      if ((ev->events & EPOLLEXCLUSIVE) &&
          (ev->events & ~uint32_t(EPOLLEXCLUSIVE | EPOLLIN | EPOLLOUT | EPOLLERR | EPOLLHUP |
                                  EPOLLWAKEUP | EPOLLET))) {
        errno = EINVAL;
        return -1;
      }
      mux::Member m;
      m.fd = fd;
      m.handle = handle;
      m.interest = ev->events;
      m.data = ev->data;
      auto [pos, inserted] = r->members.emplace(fd, m);
      (void)inserted;
      mux::index_member(s, *r, fd, handle);
      mux::refresh(*rt, *r, pos->second, true);  // ready now: reported once, even with EPOLLET
      break;
    }
    case EPOLL_CTL_MOD: {
      if (it == r->members.end()) {
        errno = ENOENT;
        return -1;
      }
      if ((ev->events & EPOLLEXCLUSIVE) || (it->second.interest & EPOLLEXCLUSIVE)) {
        errno = EINVAL;
        return -1;
      }
      it->second.interest = ev->events;
      it->second.data = ev->data;
      it->second.disabled = false;
      mux::refresh(*rt, *r, it->second, true);
      break;
    }
    default: {  // EPOLL_CTL_DEL
      if (it == r->members.end()) {
        errno = ENOENT;
        return -1;
      }
      mux::drop_member(s, *r, it);
      break;
    }
  }
  mux::sync_signal(*r);
  return 0;
}

SHUNT_EXPORT int epoll_wait(int epfd, epoll_event* ev, int max, int timeout) {
  if (__builtin_expect(!(mux::g_flags.get(epfd) & mux::kHasRegistry), 1))
    return SHUNT_REAL(epoll_wait)(epfd, ev, max, timeout);
  return mux::epoll_wait_mux(epfd, ev, max, timeout < 0 ? kNever : Nanos(timeout) * kMilli,
                             nullptr);
}

SHUNT_EXPORT int epoll_pwait(int epfd, epoll_event* ev, int max, int timeout,
                             const sigset_t* mask) {
  if (__builtin_expect(!(mux::g_flags.get(epfd) & mux::kHasRegistry), 1)) {
    return SHUNT_REAL(epoll_pwait)(epfd, ev, max, timeout, mask);
  }
  return mux::epoll_wait_mux(epfd, ev, max, timeout < 0 ? kNever : Nanos(timeout) * kMilli, mask);
}

SHUNT_EXPORT int epoll_pwait2(int epfd, epoll_event* ev, int max, const timespec* timeout,
                              const sigset_t* mask) {
  if (__builtin_expect(!(mux::g_flags.get(epfd) & mux::kHasRegistry), 1)) {
    return SHUNT_REAL(epoll_pwait2)(epfd, ev, max, timeout, mask);
  }
  const Nanos t = mux::timespec_ns(timeout);
  if (t < 0) {
    errno = EINVAL;
    return -1;
  }
  return mux::epoll_wait_mux(epfd, ev, max, t, mask);
}
