// The offload decision: which new sockets the stack takes and, for SHUNT_DEBUG, why not.
// A socket that may be offloaded is held by the stack from socket() and placed -- on the stack
// or handed to the kernel -- at bind, connect, listen or the first sendto (docs/preload.md).
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "stack/core/config.h"
#include "stack/net/addr.h"

namespace shunt::preload {

struct OffloadDecision {
  bool offload = false;
  const char* reason = "";  // static text: why the kernel keeps the socket
  bool mention_device = false;  // reason is followed by the SHUNT_DEVICE value
};

// `config` is null when the call comes before the library finished loading.
OffloadDecision decide_socket(const Config* config, int domain, int type, int protocol);

// SHUNT_RULES: "offload|kernel [program=NAME] [local=ADDR[/N]] [remote=ADDR[/N]] [port=N[-M]]",
// ';'-separated; the first rule whose every given field matches decides.
struct OffloadRule {
  bool offload = true;
  std::string program;  // empty: any
  std::optional<IpAddr> local, remote;
  int local_len = 0, remote_len = 0;
  int port_lo = -1, port_hi = -1;  // -1: any; matches the local or the remote port
};

class OffloadRules {
 public:
  // Parses `text`; each bad rule adds one error line ("SHUNT_RULES: rule 2 'x': why") and is left out.
  static OffloadRules parse(const std::string& text, std::vector<std::string>& errors);
  // What the first matching rule says, or nullopt. `local`/`remote` are null when unknown.
  std::optional<bool> match(const char* program, const IpAddr* local, uint16_t lport, const IpAddr* remote,
                            uint16_t rport) const;
  size_t size() const { return rules_.size(); }

 private:
  std::vector<OffloadRule> rules_;
};

// Writes "socket(AF_INET, SOCK_DGRAM|SOCK_NONBLOCK, 0) = 3: not offloaded: <reason>" into buf
// (always NUL-terminated, truncated to fit); returns the length written.
size_t format_socket_decision(char* buf, size_t len, const Config* config, int domain, int type, int protocol,
                              int fd, const OffloadDecision& d);

}  // namespace shunt::preload
