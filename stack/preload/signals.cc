// sigaction() and the signal() family, interposed so that the library knows when a handler ran
// on a thread that is busy-polling (signals.h).
#include "stack/preload/signals.h"

#include <errno.h>
#include <signal.h>

#include <atomic>

#include "stack/preload/libc.h"

#define SHUNT_EXPORT extern "C" __attribute__((visibility("default")))

namespace shunt::preload {
namespace {

thread_local uint32_t tl_signals __attribute__((tls_model("initial-exec"))) = 0;
thread_local uint32_t tl_interrupts __attribute__((tls_model("initial-exec"))) = 0;

// The program's own action for each signal the trampoline stands in for. Two words, each
// atomic: a handler that runs while the program changes its action sees the old or the new one.
struct ProgramAction {
  std::atomic<uintptr_t> handler{0};  // sa_handler / sa_sigaction
  std::atomic<int> flags{0};
  std::atomic<bool> wrapped{false};   // the kernel has the trampoline for this signal
  sigset_t mask;                      // what the program asked to block (for its old-action view)
};
ProgramAction g_actions[_NSIG];

// Faults are synchronous: they never interrupt a wait, and their handlers (crash reporters,
// runtimes that catch SIGSEGV) are left exactly as installed.
bool wrappable(int sig) {
  switch (sig) {
    case SIGSEGV:
    case SIGBUS:
    case SIGILL:
    case SIGFPE:
    case SIGTRAP:
    case SIGSYS:
      return false;
    default:
      return sig > 0 && sig < _NSIG;
  }
}

void trampoline(int sig, siginfo_t* info, void* context) {
  ProgramAction& a = g_actions[sig];
  const int flags = a.flags.load(std::memory_order_acquire);
  const uintptr_t h = a.handler.load(std::memory_order_acquire);
  ++tl_signals;
  if (!(flags & SA_RESTART)) ++tl_interrupts;
  if (flags & SA_RESETHAND) {  // one-shot: the kernel has reset it to SIG_DFL already
    a.handler.store(uintptr_t(SIG_DFL), std::memory_order_release);
    a.wrapped.store(false, std::memory_order_release);
  }
  if (h == uintptr_t(SIG_IGN) || h == uintptr_t(SIG_DFL)) return;  // changed under us
  if (flags & SA_SIGINFO) {
    reinterpret_cast<void (*)(int, siginfo_t*, void*)>(h)(sig, info, context);
  } else {
    reinterpret_cast<void (*)(int)>(h)(sig);
  }
}

// What the program installed, as it installed it.
void program_view(int sig, struct sigaction* out) {
  const ProgramAction& a = g_actions[sig];
  *out = {};
  const int flags = a.flags.load(std::memory_order_acquire);
  out->sa_flags = flags;
  out->sa_mask = a.mask;
  const uintptr_t h = a.handler.load(std::memory_order_acquire);
  if (flags & SA_SIGINFO) {
    out->sa_sigaction = reinterpret_cast<void (*)(int, siginfo_t*, void*)>(h);
  } else {
    out->sa_handler = reinterpret_cast<void (*)(int)>(h);
  }
}

bool is_trampoline(const struct sigaction& k) {
  return (k.sa_flags & SA_SIGINFO) && k.sa_sigaction == &trampoline;
}

int do_sigaction(int sig, const struct sigaction* act, struct sigaction* old) {
  auto real = SHUNT_REAL(sigaction);
  if (!wrappable(sig)) return real(sig, act, old);
  struct sigaction kernel_old;
  if (!act) {
    const int r = real(sig, nullptr, &kernel_old);
    if (r == 0 && old) {
      if (is_trampoline(kernel_old)) {
        program_view(sig, old);
      } else {
        *old = kernel_old;
      }
    }
    return r;
  }
  struct sigaction before;
  const bool was_wrapped = g_actions[sig].wrapped.load(std::memory_order_acquire);
  if (was_wrapped) program_view(sig, &before);
  const bool plain = !(act->sa_flags & SA_SIGINFO) &&
                     (act->sa_handler == SIG_DFL || act->sa_handler == SIG_IGN);
  int r;
  if (plain) {
    r = real(sig, act, &kernel_old);
    if (r == 0) g_actions[sig].wrapped.store(false, std::memory_order_release);
  } else {
    ProgramAction& a = g_actions[sig];
    // The table first: a signal that arrives as soon as the trampoline is in place finds it.
    a.handler.store(act->sa_flags & SA_SIGINFO ? reinterpret_cast<uintptr_t>(act->sa_sigaction)
                                               : reinterpret_cast<uintptr_t>(act->sa_handler),
                    std::memory_order_release);
    a.flags.store(act->sa_flags, std::memory_order_release);
    a.mask = act->sa_mask;
    struct sigaction k = *act;
    k.sa_flags |= SA_SIGINFO;
    k.sa_sigaction = &trampoline;
    r = real(sig, &k, &kernel_old);
    if (r == 0) {
      a.wrapped.store(true, std::memory_order_release);
    } else if (was_wrapped) {
      const int saved = errno;
      do_sigaction(sig, &before, nullptr);  // put the previous action back in the table
      errno = saved;
    }
  }
  if (r == 0 && old) {
    if (is_trampoline(kernel_old) && was_wrapped) {
      *old = before;
    } else {
      *old = kernel_old;
    }
  }
  return r;
}

// signal(): glibc's BSD semantics (the handler stays, the signal is blocked while it runs,
// interrupted calls restart); sysv_signal(): one-shot, not blocked, not restarted.
sighandler_t install(int sig, sighandler_t handler, int flags) {
  struct sigaction act {};
  act.sa_handler = handler;
  act.sa_flags = flags;
  sigemptyset(&act.sa_mask);
  if (!(flags & SA_NODEFER) && sig > 0 && sig < _NSIG) sigaddset(&act.sa_mask, sig);
  struct sigaction old {};
  if (sig <= 0 || sig >= _NSIG || do_sigaction(sig, &act, &old) != 0) {
    if (sig <= 0 || sig >= _NSIG) errno = EINVAL;
    return SIG_ERR;
  }
  return old.sa_handler;
}

}  // namespace

uint32_t signals_seen() { return tl_signals; }
uint32_t interrupts_seen() { return tl_interrupts; }

}  // namespace shunt::preload

using shunt::preload::do_sigaction;
using shunt::preload::install;

SHUNT_EXPORT int sigaction(int sig, const struct sigaction* act, struct sigaction* old) noexcept {
  return do_sigaction(sig, act, old);
}

SHUNT_EXPORT sighandler_t signal(int sig, sighandler_t handler) noexcept {
  return install(sig, handler, SA_RESTART);
}

SHUNT_EXPORT sighandler_t bsd_signal(int sig, sighandler_t handler) noexcept {
  return install(sig, handler, SA_RESTART);
}

SHUNT_EXPORT sighandler_t sysv_signal(int sig, sighandler_t handler) noexcept {
  return install(sig, handler, SA_RESETHAND | SA_NODEFER);
}

SHUNT_EXPORT sighandler_t __sysv_signal(int sig, sighandler_t handler) noexcept {
  return install(sig, handler, SA_RESETHAND | SA_NODEFER);
}
