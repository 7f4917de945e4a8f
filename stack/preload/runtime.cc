#include "stack/preload/runtime.h"

#include <errno.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "stack/core/log.h"
#include "stack/driver/device_registry.h"
#include "stack/harness/pcap.h"
#include "stack/net/addr.h"
#include "stack/net/stack.h"
#include "stack/net/tcp/tcp.h"
#include "stack/preload/fd_table.h"
#include "stack/preload/libc.h"
#include "stack/preload/signals.h"
#include "stack/preload/stats_shm.h"
#include "stack/socket/socket_api.h"

namespace shunt::preload {

namespace {

// fd -> SocketApi handle + 1 (0: none). Static storage like FdTable: 4 MiB of zero pages,
// touched only where fds live.
std::atomic<int32_t> g_handles[FdTable::kMaxFds] = {};

std::atomic<Runtime*> g_runtime{nullptr};
std::atomic<int> g_state{0};  // 0: not tried, 1: starting, 2: running, 3: unavailable
const char* g_unavailable = "the library is not initialised yet";
std::string* g_unavailable_text = nullptr;  // owns the text of a start error
std::mutex g_start_mu;
Runtime* g_exiting_owner = nullptr;  // the runtime, for exit handlers of a forked child

thread_local bool tl_new_call = true;
thread_local bool tl_starting = false;  // this thread is opening the device: its sockets are the kernel's
thread_local Nanos tl_spin_until = 0;
// interrupts_seen() when the call began to wait: a handler without SA_RESTART since then ends it.
thread_local uint32_t tl_interrupts_at_wait = 0;

void say_line(const std::string& s) {
  const std::string line = "shunt: " + s + "\n";
  say(line.data(), line.size());
}

// "A.B.C.D/N" or "ADDR/N" into addr and prefix; false when it is not one of `family`.
bool parse_prefix(const std::string& text, bool v6, IpAddr& addr, int& prefix) {
  size_t slash = text.find('/');
  if (slash == std::string::npos) return false;
  auto a = IpAddr::parse(text.substr(0, slash));
  if (!a || a->is_v6() != v6) return false;
  const std::string p = text.substr(slash + 1);
  if (p.empty() || p.size() > 3 || p.find_first_not_of("0123456789") != std::string::npos) return false;
  prefix = std::atoi(p.c_str());
  if (prefix > (v6 ? 128 : 32) || prefix < 1) return false;
  addr = *a;
  return true;
}

long futex(std::atomic<uint32_t>* addr, int op, uint32_t val, const timespec* ts) {
  return syscall(SYS_futex, reinterpret_cast<uint32_t*>(addr), op, val, ts, nullptr, 0);
}

}  // namespace

struct Runtime::Parts {
  MonotonicClock clock;
  OpenedDevice dev;
  PcapWriter pcap;
  std::unique_ptr<PcapDevice> pcap_dev;
  std::unique_ptr<Stack> stack;
  std::unique_ptr<SocketApi> api;
  std::vector<int> wake_fds;
  std::vector<int32_t> refs;  // per handle: fds naming it
  std::unique_ptr<stats::StatsPublisher> stats;
  Nanos next_stats = 0;
  uint64_t polls = 63;  // the first poll publishes
  pid_t owner = 0;
  int wait_fd = -1;
  Device* wait_dev = nullptr;  // the device behind wait_fd (arm_wait / ack_wait)
};

thread_local bool StackMutex::held_ = false;

Runtime* Runtime::active() { return g_runtime.load(std::memory_order_acquire); }

const char* Runtime::unavailable_reason() {
  return tl_starting ? "the library's own socket, made while it opens the device" : g_unavailable;
}

Runtime* Runtime::get() {
  Runtime* r = g_runtime.load(std::memory_order_acquire);
  if (r || g_state.load(std::memory_order_acquire) == 3 || tl_starting) return r;
  std::lock_guard<std::mutex> g(g_start_mu);
  if (g_state.load() != 0) return g_runtime.load();
  g_state.store(1);
  auto* rt = new (std::nothrow) Runtime();
  std::string error;
  tl_starting = true;  // a driver that makes a socket while opening (TAP's ioctl socket) gets a kernel one
  const bool started = rt && rt->start(error);
  tl_starting = false;
  if (started) {
    g_runtime.store(rt, std::memory_order_release);
    g_state.store(2, std::memory_order_release);
    return rt;
  }
  // The runtime never goes away once made (threads may have seen it); a failed one leaks.
  g_unavailable_text = new std::string(rt ? error : "out of memory");
  g_unavailable = g_unavailable_text->c_str();
  say_line(*g_unavailable_text + "; sockets stay on the kernel");
  g_state.store(3, std::memory_order_release);
  return nullptr;
}

bool Runtime::start(std::string& error) {
  ConfigResult cr = load_config();
  config_ = std::move(cr.config);
  if (config_.device.empty()) {
    error = "no offload device configured (SHUNT_DEVICE unset)";
    return false;
  }
  IpAddr v4, v6;
  int p4 = 0, p6 = 0;
  const bool has4 = !config_.ipv4.empty(), has6 = !config_.ipv6.empty();
  if (has4 && !parse_prefix(config_.ipv4, false, v4, p4)) {
    error = "SHUNT_IPV4=" + config_.ipv4 + ": expected A.B.C.D/N";
    return false;
  }
  if (has6 && !parse_prefix(config_.ipv6, true, v6, p6)) {
    error = "SHUNT_IPV6=" + config_.ipv6 + ": expected ADDR/N";
    return false;
  }
  if (!has4 && !has6) {
    error = "SHUNT_DEVICE=" + config_.device + ": the offload interface has no address (set SHUNT_IPV4=A.B.C.D/N or SHUNT_IPV6=ADDR/N)";
    return false;
  }
  std::optional<IpAddr> gw4, gw6;
  if (!config_.gateway.empty()) {
    gw4 = IpAddr::parse(config_.gateway);
    if (!gw4 || gw4->is_v6()) {
      error = "SHUNT_GATEWAY=" + config_.gateway + ": expected an IPv4 address";
      return false;
    }
  }
  if (!config_.gateway6.empty()) {
    gw6 = IpAddr::parse(config_.gateway6);
    if (!gw6 || !gw6->is_v6()) {
      error = "SHUNT_GATEWAY6=" + config_.gateway6 + ": expected an IPv6 address";
      return false;
    }
  }
  std::vector<std::string> rule_errors;
  rules_ = OffloadRules::parse(config_.rules, rule_errors);
  for (const auto& e : rule_errors) say_line(e + "; rule ignored");
  auto* p = new Parts();
  p->owner = getpid();
  p->dev = open_device(config_.device, p->clock, config_);
  if (!p->dev.device) {
    error = p->dev.error;
    return false;  // Parts leaks with the failed runtime: this happens once
  }
  Device* dev = p->dev.device.get();
  if (!config_.pcap.empty()) {
    if (!p->pcap.open(config_.pcap)) {
      error = "SHUNT_PCAP=" + config_.pcap + ": " + p->pcap.error();
      return false;
    }
    p->pcap_dev = std::make_unique<PcapDevice>(*dev, p->clock, p->pcap);
    dev = p->pcap_dev.get();
  }
  p->wait_fd = dev->wait_fd();
  p->wait_dev = p->dev.device.get();
  p->stack = std::make_unique<Stack>(*dev, p->clock, config_);
  if (has4) p->stack->add_address(v4, p4);
  if (has6) p->stack->add_address(v6, p6);
  if (gw4) p->stack->routes().set_default_gateway(*gw4);
  if (gw6) p->stack->routes().set_default_gateway(*gw6);
  p->api = std::make_unique<SocketApi>(*p->stack);
  p->api->set_waiter([this](Nanos deadline) { return wait_locked(deadline); });
  p->api->set_readiness_hook([this](int h) { on_readiness(h); });
  parts_ = p;
  stack_ = p->stack.get();
  api_ = p->api.get();
  spin_ns_ = Nanos(config_.spin_us) * 1000;
  progress_ns_ = Nanos(config_.progress_us) * 1000;
  if (config_.stats) {
    std::string e;
    p->stats = stats::StatsPublisher::open(program_invocation_short_name, e);
    if (!p->stats) say_line("SHUNT_STATS: " + e + "; `shunt stat` will not list this process");
  }
  std::atexit([] {
    Runtime* r = g_runtime.load();
    const bool own = r != nullptr;  // a forked child's inherited runtime is only torn down
    if (!r) r = g_exiting_owner;
    if (!r) return;
    std::unique_lock<StackMutex> l = r->lock_at_exit();
    if (!l.owns_lock()) return;
    if (own) r->flush_at_exit_locked();
    // The statistics object goes too (only the creating process unlinks it; a killed one's is
    // removed by `shunt stat`).
    r->parts_->stats.reset();
    r->parts_->pcap.flush();  // the FILE's buffer would go with the process otherwise
  });
  pthread_atfork(&Runtime::atfork_prepare, &Runtime::atfork_parent, &Runtime::atfork_child);
  if (progress_ns_ > 0) {
    try {
      std::thread([this] { progress_thread_main(); }).detach();
    } catch (...) {
      say_line("cannot start the progress thread; blocking calls poll for themselves");
      progress_ns_ = 0;
    }
  }
  return true;
}

Nanos Runtime::now() const { return parts_->clock.now(); }

int Runtime::handle_of(int fd) const {
  if (static_cast<unsigned>(fd) >= static_cast<unsigned>(FdTable::kMaxFds)) return -1;
  return g_handles[fd].load(std::memory_order_acquire) - 1;
}

void Runtime::bind_fd(int fd, int handle) {
  if (static_cast<unsigned>(fd) >= static_cast<unsigned>(FdTable::kMaxFds) || handle < 0) return;
  auto& refs = parts_->refs;
  if (size_t(handle) >= refs.size()) refs.resize(size_t(handle) + 1, 0);
  ++refs[size_t(handle)];
  g_handles[fd].store(handle + 1, std::memory_order_release);
  max_fd_ = std::max(max_fd_, fd);
}

bool Runtime::unbind_fd(int fd) {
  const int h = handle_of(fd);
  if (h < 0) return false;
  g_handles[fd].store(0, std::memory_order_release);
  auto& refs = parts_->refs;
  if (size_t(h) >= refs.size() || refs[size_t(h)] <= 0) return true;
  return --refs[size_t(h)] == 0;
}

Nanos Runtime::progress_locked() {
  polls_.store(polls_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);  // under mu_
  Nanos next = stack_->poll();
  // Statistics every 100 ms. Busy-polling threads poll millions of times a second, so the clock
  // is read for this once every 64 polls, not on each.
  if (parts_->stats && (++parts_->polls & 63) == 0) {
    const Nanos t = now();
    if (t >= parts_->next_stats) {
      parts_->next_stats = t + 100 * kMilli;
      parts_->stats->publish(*api_, stack_->counters(), [this](int fd) { return handle_of(fd); }, max_fd_);
    }
  }
  return next;
}

void Runtime::on_readiness(int handle) {
  activity_.fetch_add(1, std::memory_order_acq_rel);
  if (sleepers_.load(std::memory_order_acquire) > 0) {
    futex(&activity_, FUTEX_WAKE_PRIVATE, INT32_MAX, nullptr);
  }
  for (int efd : parts_->wake_fds) {
    uint64_t one = 1;
    ssize_t w = SHUNT_REAL(write)(efd, &one, sizeof one);
    (void)w;  // EAGAIN: already signalled enough
  }
  if (listener_) listener_(handle);
}

void Runtime::add_wake_fd(int efd) { parts_->wake_fds.push_back(efd); }

void Runtime::remove_wake_fd(int efd) {
  auto& v = parts_->wake_fds;
  v.erase(std::remove(v.begin(), v.end(), efd), v.end());
}

void Runtime::wait_activity(uint32_t seen, Nanos deadline) {
  sleepers_.fetch_add(1, std::memory_order_seq_cst);
  about_to_sleep();
  timespec ts;
  const timespec* tp = nullptr;
  if (deadline != kNever) {
    Nanos left = deadline - now();
    if (left <= 0) {
      sleepers_.fetch_sub(1, std::memory_order_acq_rel);
      return;
    }
    ts.tv_sec = time_t(left / 1'000'000'000);
    ts.tv_nsec = long(left % 1'000'000'000);
    tp = &ts;
  }
  if (activity_.load(std::memory_order_acquire) == seen) futex(&activity_, FUTEX_WAIT_PRIVATE, seen, tp);
  sleepers_.fetch_sub(1, std::memory_order_acq_rel);
}

void Runtime::begin_call() { tl_new_call = true; }

void Runtime::about_to_sleep() {
  // Nobody may poll while this thread sleeps: the progress thread resumes its cadence now.
  if (progress_backing_off_.load(std::memory_order_seq_cst)) {
    progress_kick_.fetch_add(1, std::memory_order_seq_cst);
    futex(&progress_kick_, FUTEX_WAKE_PRIVATE, 1, nullptr);
  }
}

bool Runtime::wait_locked(Nanos deadline) {
  const Nanos t = now();
  if (tl_new_call) {
    tl_new_call = false;
    tl_spin_until = t + spin_ns_;
    tl_interrupts_at_wait = interrupts_seen();
  }
  // A handler without SA_RESTART ran while this call waited: EINTR, as the kernel would say.
  if (interrupts_seen() != tl_interrupts_at_wait) return false;
  if (t < tl_spin_until) {
    // Busy-poll, but let other threads in between two polls.
    mu_.unlock();
    for (int i = 0; i < 16; ++i) __builtin_ia32_pause();
    mu_.lock();
    progress_locked();
    return true;
  }
  Nanos wake = deadline;
  if (!has_progress_thread()) {
    // Nobody else polls: come back for the stack's next deadline, and soon anyway.
    wake = std::min({deadline, progress_locked(), t + 50 * kMicro});
  }
  const uint32_t seen = activity();
  mu_.unlock();
  wait_activity(seen, wake);
  mu_.lock();
  progress_locked();
  return interrupts_seen() == tl_interrupts_at_wait;
}

void Runtime::progress_thread_main() {
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
  pthread_setname_np(pthread_self(), "shunt-progress");
  if (config_.progress_cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(int(config_.progress_cpu), &set);
    if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) != 0) {
      say_line("SHUNT_PROGRESS_CPU=" + std::to_string(config_.progress_cpu) + ": cannot pin the progress thread there; it runs unpinned");
    }
  }
  const int wfd = parts_->wait_fd;
  Device* const wdev = parts_->wait_dev;
  // Sleeps of a millisecond or more wait on the device's fd; shorter ones are plain sleeps.
  const bool sleeps_on_fd = wfd >= 0 && wdev && progress_ns_ >= kMilli;
  // While the program's threads poll the stack themselves, the progress thread has nothing to
  // do: it stays off the lock and sleeps longer each time (up to 64 intervals, at most 10 ms), so
  // that it does not preempt a busy-polling thread on its core ten thousand times a second. A
  // thread that goes to sleep (wait_activity) kicks it back to its interval at once.
  uint64_t polls_after_mine = ~uint64_t(0);
  Nanos backoff = progress_ns_;
  const Nanos max_backoff = std::max(progress_ns_, std::min<Nanos>(64 * progress_ns_, 10 * kMilli));
  for (;;) {
    if (forked_child_) return;
    const uint64_t polls = polls_.load(std::memory_order_relaxed);
    if (polls != polls_after_mine && polls_after_mine != ~uint64_t(0) && !sleeps_on_fd &&
        sleepers_.load(std::memory_order_acquire) == 0) {
      polls_after_mine = polls;
      backoff = std::min(backoff * 2, max_backoff);
      // seq_cst, with the sleeper's side: either it sees the flag and kicks, or this sees it.
      progress_backing_off_.store(true, std::memory_order_seq_cst);
      const uint32_t kick = progress_kick_.load(std::memory_order_seq_cst);
      if (sleepers_.load(std::memory_order_seq_cst) == 0) {
        timespec ts{time_t(backoff / 1'000'000'000), long(backoff % 1'000'000'000)};
        futex(&progress_kick_, FUTEX_WAIT_PRIVATE, kick, &ts);
      }
      progress_backing_off_.store(false, std::memory_order_release);
      continue;
    }
    backoff = progress_ns_;
    Nanos next = kNever;
    if (mu_.try_lock()) {
      // Armed before this last poll, so a completion after it makes the fd readable.
      if (sleeps_on_fd) wdev->arm_wait();
      next = progress_locked();
      polls_after_mine = polls_.load(std::memory_order_relaxed);
      mu_.unlock();
    }
    Nanos sleep = progress_ns_;
    const Nanos t = now();
    if (next != kNever && next > t) sleep = std::min(sleep, next - t);
    if (next != kNever && next <= t) sleep = std::min<Nanos>(sleep, 1000);
    if (wfd >= 0) {
      pollfd pfd{wfd, POLLIN, 0};
      const int ms = int(std::max<Nanos>(sleep / kMilli, 0));
      if (ms > 0) {
        if (SHUNT_REAL(poll)(&pfd, 1, ms) > 0 && wdev) wdev->ack_wait();
        continue;
      }
    }
    timespec ts{time_t(sleep / 1'000'000'000), long(sleep % 1'000'000'000)};
    nanosleep(&ts, nullptr);
  }
}

// The process is exiting: what the kernel would do for its sockets (close them, and keep
// sending what they hold until the peer has it) only this process can do for offloaded ones,
// so it closes every offloaded socket and polls until their data and FINs are acknowledged,
// for at most SHUNT_EXIT_LINGER_MS.
std::unique_lock<StackMutex> Runtime::lock_at_exit() {
  std::unique_lock<StackMutex> l(mu_, std::defer_lock);
  if (StackMutex::held_here()) return l;  // exit() from a handler that interrupted the stack
  // The progress thread and the program's other threads hold the lock for one poll at a time
  // (waiters release it between polls), so keep trying for up to a second: a single try_lock
  // lost the race to the progress thread now and then, and the process left with data unsent.
  const Nanos give_up = now() + kSecond;
  while (!l.try_lock() && now() < give_up) {
    timespec ts{0, 5'000};
    nanosleep(&ts, nullptr);
  }
  return l;  // not owned if a thread stays inside the stack that long: leave it be
}

void Runtime::flush_at_exit_locked() {
  for (int fd = 0; fd <= max_fd_; ++fd) {
    const int h = handle_of(fd);
    if (h < 0) continue;
    if (unbind_fd(fd)) api_->close(h);
  }
  Tcp& tcp = stack_->tcp();
  const Nanos start = now();
  const Nanos end = start + Nanos(config_.exit_linger_ms) * kMilli;
  // A connection this side closed first waits a little in FIN-WAIT-2 for the peer's FIN, so that
  // it is acknowledged: the kernel would do it after the process is gone, and a peer whose FIN
  // nobody acknowledges keeps retransmitting it (and a peer under this library lingers at exit).
  const Nanos fin_wait2_end = start + std::min<Nanos>(Nanos(config_.exit_linger_ms) * kMilli, 500 * kMilli);
  auto busy = [&] {
    if (tcp.count_in_state(TcpState::kFinWait1) + tcp.count_in_state(TcpState::kClosing) +
            tcp.count_in_state(TcpState::kLastAck) + tcp.count_in_state(TcpState::kSynSent) > 0) {
      return true;
    }
    return tcp.count_in_state(TcpState::kFinWait2) > 0 && now() < fin_wait2_end;
  };
  // A peer that has sent nothing for a second is gone (a process under this library that has
  // exited, a host that went down): retransmitting to it until the linger ends would only hold
  // up this exit.
  const Counters& counters = stack_->counters();
  uint64_t rx = counters.get("tcp.rx_segments");
  Nanos last_rx = start;
  while (busy() && now() < end) {
    progress_locked();
    if (!busy()) break;
    const uint64_t r = counters.get("tcp.rx_segments");
    const Nanos t = now();
    if (r != rx) {
      rx = r;
      last_rx = t;
    } else if (t - last_rx >= kSecond) {
      break;
    }
    timespec ts{0, 20'000};
    nanosleep(&ts, nullptr);
  }
}

void Runtime::atfork_prepare() {
  if (Runtime* r = active()) r->mu_.lock();
}

void Runtime::atfork_parent() {
  if (Runtime* r = active()) r->mu_.unlock();
}

void Runtime::atfork_child() {
  Runtime* r = active();
  if (!r) return;
  // The device, its rings and the cable stay the parent's: the child must never touch them.
  r->forked_child_ = true;
  new (&r->mu_) StackMutex();
  g_exiting_owner = r;  // its exit handler drops the inherited publisher without unlinking
  g_runtime.store(nullptr, std::memory_order_release);
  g_unavailable = "this process is a forked child: the offload device belongs to the parent";
  g_state.store(3, std::memory_order_release);
  new (&g_start_mu) std::mutex();
}

}  // namespace shunt::preload
