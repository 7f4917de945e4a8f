// The offload decision: which new sockets the stack takes and, for SHUNT_DEBUG, why not.
// Today no socket is offloaded (there is no device wiring yet); the reasons are the real ones.
#pragma once
#include <cstddef>

#include "stack/core/config.h"

namespace shunt::preload {

struct OffloadDecision {
  bool offload = false;
  const char* reason = "";  // static text: why the kernel keeps the socket
  bool mention_device = false;  // reason is followed by the SHUNT_DEVICE value
};

// `config` is null when the call comes before the library finished loading.
OffloadDecision decide_socket(const Config* config, int domain, int type, int protocol);

// Writes "socket(AF_INET, SOCK_DGRAM|SOCK_NONBLOCK, 0) = 3: not offloaded: <reason>" into buf
// (always NUL-terminated, truncated to fit); returns the length written.
size_t format_socket_decision(char* buf, size_t len, const Config* config, int domain, int type, int protocol,
                              int fd, const OffloadDecision& d);

}  // namespace shunt::preload
