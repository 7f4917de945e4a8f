// The preload library's one stack per process: the device named by SHUNT_DEVICE, the Stack and
// SocketApi on it, the map from kernel fd numbers to SocketApi handles, the big lock that
// serializes every thread's entry into the stack, the progress thread, and how blocked threads
// sleep and wake (DESIGN.md, "The preload library"; docs/preload.md).
//
// Locking: one mutex (`mu()`) guards the Stack, the SocketApi, the handle map's writes and the
// readiness registries of mux.cc. The readiness listener and the activity signal run with it
// held (they are called from inside Stack::poll). Lookups of fd -> handle are lock-free.
#pragma once
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>

#include "stack/core/clock.h"
#include "stack/core/config.h"
#include "stack/preload/offload.h"

namespace shunt {
class Stack;
class SocketApi;
}  // namespace shunt

namespace shunt::preload {

// The runtime's lock. It knows whether this thread holds it (or is about to), so a signal handler
// that interrupts the library and calls it again on the same thread is served by the kernel
// (the fd's placeholder) instead of deadlocking on a lock its own thread holds.
class StackMutex {
 public:
  void lock() {
    held_ = true;  // before waiting: a handler that runs while we wait must not wait too
    m_.lock();
  }
  void unlock() {
    m_.unlock();
    held_ = false;
  }
  bool try_lock() {
    held_ = true;
    if (m_.try_lock()) return true;
    held_ = false;
    return false;
  }
  static bool held_here() { return held_; }

 private:
  std::mutex m_;
  static thread_local bool held_ __attribute__((tls_model("initial-exec")));
};

class Runtime {
 public:
  // The process's runtime, started on first call when SHUNT_DEVICE is set and the device opens;
  // null when there is none (every socket then stays on the kernel; the reason is kept in
  // `unavailable_reason()`). Thread-safe; cheap after the first call.
  static Runtime* get();
  // The runtime if it is already running, without starting it.
  static Runtime* active();
  // Why get() returned null: static or process-lifetime text.
  static const char* unavailable_reason();

  StackMutex& mu() { return mu_; }
  // Under mu().
  Stack& stack() { return *stack_; }
  SocketApi& api() { return *api_; }
  const Config& config() const { return config_; }
  const OffloadRules& rules() const { return rules_; }
  Nanos now() const;

  // The SocketApi handle behind kernel fd `fd`, or -1 when the fd is not offloaded. Lock-free.
  int handle_of(int fd) const;
  // Under mu(): `fd` now names `handle` (socket, accept, dup); the handle's reference count
  // goes up. unbind_fd drops the fd and returns true when that was the handle's last fd (the
  // caller then closes the handle).
  void bind_fd(int fd, int handle);
  bool unbind_fd(int fd);
  // Under mu(): the highest fd number ever bound (for listing sockets).
  int max_fd() const { return max_fd_; }

  // Under mu(): one stack poll (receive completions, timers, transmit flush); returns the
  // stack's next deadline.
  Nanos progress_locked();
  // Nanoseconds a blocking call busy-polls before it sleeps (SHUNT_SPIN_US).
  Nanos spin_ns() const { return spin_ns_; }
  // True when a progress thread runs (it polls every `progress_interval()`).
  bool has_progress_thread() const { return progress_ns_ > 0; }
  Nanos progress_interval() const { return progress_ns_; }

  // Activity: bumped, with a futex wake and a write to every registered wake fd, each time any
  // offloaded socket's readiness may have changed. A thread that found nothing ready reads
  // activity() under mu(), releases mu(), and calls wait_activity() to sleep until it changes
  // or `deadline` (a MonotonicClock time; kNever) passes.
  uint32_t activity() const { return activity_.load(std::memory_order_acquire); }
  void wait_activity(uint32_t seen, Nanos deadline);
  // Under mu(): eventfds (EFD_NONBLOCK) written on each activity bump, for threads that sleep in
  // the kernel on a mix of fds (poll/select/epoll). Each fd is written at most once per bump.
  void add_wake_fd(int efd);
  void remove_wake_fd(int efd);

  // Under mu(): called with the SocketApi handle whenever its readiness may have changed (and
  // with -1 after a handle was closed). mux.cc registers it once.
  using ReadinessListener = void (*)(int handle);
  void set_readiness_listener(ReadinessListener l) { listener_ = l; }

  // The waiter SocketApi calls in a blocking call: spin (releasing mu() between polls) for
  // spin_ns() from the start of the call, then sleep on activity. Returns false on a signal
  // the program handles (EINTR semantics) -- today it never does.
  bool wait_locked(Nanos deadline);
  // Marks the start of a new blocking call on this thread (resets the spin budget).
  static void begin_call();
  // A thread is about to sleep in the kernel (futex, poll, epoll) instead of polling: brings the
  // progress thread back from the long sleeps it takes while threads busy-poll.
  void about_to_sleep();

  // fork(): the child has no device (the parent keeps it); from then on every inherited
  // offloaded fd answers as docs/preload.md says and new sockets go to the kernel.
  bool forked_child() const { return forked_child_; }
  // At exit: the lock, waited for up to a second (not held if this thread already holds it);
  // then, under it, close every offloaded socket and poll until TCP has delivered what they
  // held (bounded by SHUNT_EXIT_LINGER_MS).
  std::unique_lock<StackMutex> lock_at_exit();
  void flush_at_exit_locked();

 private:
  Runtime() = default;
  bool start(std::string& error);
  void on_readiness(int handle);
  void progress_thread_main();
  static void atfork_prepare();
  static void atfork_parent();
  static void atfork_child();

  StackMutex mu_;
  Config config_;
  OffloadRules rules_;
  struct Parts;
  Parts* parts_ = nullptr;  // device, clock, pcap, stats: never freed (atexit handlers may call in)
  Stack* stack_ = nullptr;
  SocketApi* api_ = nullptr;
  Nanos spin_ns_ = 0;
  Nanos progress_ns_ = 0;
  ReadinessListener listener_ = nullptr;
  std::atomic<uint32_t> activity_{0};
  std::atomic<int> sleepers_{0};
  // Polls of the stack by any thread (the progress thread stands back while others poll).
  std::atomic<uint64_t> polls_{0};
  // The progress thread's futex word: a thread that goes to sleep bumps it to bring the
  // progress thread back from a long back-off; `progress_backing_off_` says whether it is in one.
  std::atomic<uint32_t> progress_kick_{0};
  std::atomic<bool> progress_backing_off_{false};
  bool forked_child_ = false;
  int max_fd_ = -1;
};

}  // namespace shunt::preload
