// Signal handlers seen by the library (docs/preload.md, "Signals and EINTR"). The kernel ends a
// blocked system call with EINTR when a handler runs; a call that busy-polls the stack in user
// space never enters the kernel, so the library must learn itself that a handler ran. It
// interposes sigaction() and signal(): each handler the program installs for an asynchronous
// signal runs through a trampoline that counts, per thread, the handlers that ran and those
// installed without SA_RESTART. The program sees its own handlers in every answer.
#pragma once
#include <cstdint>

namespace shunt::preload {

// Handlers that ran on this thread (any flags). poll/select/epoll end with EINTR when this
// moves during their wait, whatever SA_RESTART says (signal(7): they are never restarted).
uint32_t signals_seen();
// Handlers without SA_RESTART that ran on this thread. A blocking socket call ends with EINTR
// when this moves during its wait; with SA_RESTART it carries on, as Linux restarts it.
uint32_t interrupts_seen();

}  // namespace shunt::preload
