#include "stack/preload/offload.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace shunt::preload {

namespace {

const char* domain_name(int d) {
  switch (d) {
    case AF_INET: return "AF_INET";
    case AF_INET6: return "AF_INET6";
    case AF_UNIX: return "AF_UNIX";
    case AF_NETLINK: return "AF_NETLINK";
    case AF_PACKET: return "AF_PACKET";
    default: return nullptr;
  }
}

const char* type_name(int t) {
  switch (t) {
    case SOCK_STREAM: return "SOCK_STREAM";
    case SOCK_DGRAM: return "SOCK_DGRAM";
    case SOCK_RAW: return "SOCK_RAW";
    case SOCK_SEQPACKET: return "SOCK_SEQPACKET";
    default: return nullptr;
  }
}

constexpr int kTypeFlags = SOCK_NONBLOCK | SOCK_CLOEXEC;

}  // namespace

OffloadDecision decide_socket(const Config* config, int domain, int type, int protocol) {
  OffloadDecision d;
  const int base = type & ~kTypeFlags;
  if (!config) {
    d.reason = "the library is not initialised yet";
  } else if (domain != AF_INET && domain != AF_INET6) {
    d.reason = "not an IP socket";
  } else if (base != SOCK_DGRAM && base != SOCK_STREAM) {
    d.reason = "only UDP and TCP sockets are offloaded";
  } else if ((base == SOCK_DGRAM && protocol != 0 && protocol != IPPROTO_UDP) ||
             (base == SOCK_STREAM && protocol != 0 && protocol != IPPROTO_TCP)) {
    d.reason = "protocol is neither UDP nor TCP";
  } else if (config->device.empty()) {
    d.reason = "no offload device configured (SHUNT_DEVICE unset)";
  } else {
    d.offload = true;  // a candidate: placed at bind/connect/listen/sendto
  }
  return d;
}

namespace {

std::string trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t"), b = s.find_last_not_of(" \t");
  return a == std::string::npos ? std::string() : s.substr(a, b - a + 1);
}

bool parse_uint(const std::string& s, long max, int& out) {
  if (s.empty() || s.size() > 6 || s.find_first_not_of("0123456789") != std::string::npos) return false;
  long v = std::strtol(s.c_str(), nullptr, 10);
  if (v > max) return false;
  out = int(v);
  return true;
}

bool parse_net(const std::string& s, std::optional<IpAddr>& addr, int& len) {
  size_t slash = s.find('/');
  auto a = IpAddr::parse(s.substr(0, slash));
  if (!a) return false;
  const int max = a->is_v6() ? 128 : 32;
  len = max;
  if (slash != std::string::npos && !parse_uint(s.substr(slash + 1), max, len)) return false;
  addr = *a;
  return true;
}

}  // namespace

OffloadRules OffloadRules::parse(const std::string& text, std::vector<std::string>& errors) {
  OffloadRules out;
  size_t start = 0;
  int index = 0;
  while (start <= text.size()) {
    size_t end = text.find(';', start);
    if (end == std::string::npos) end = text.size();
    const std::string rule_text = trim(text.substr(start, end - start));
    start = end + 1;
    if (rule_text.empty()) continue;
    ++index;
    OffloadRule r;
    std::string why;
    size_t pos = 0;
    bool first = true;
    while (why.empty() && pos < rule_text.size()) {
      size_t sp = rule_text.find(' ', pos);
      if (sp == std::string::npos) sp = rule_text.size();
      const std::string word = rule_text.substr(pos, sp - pos);
      pos = sp + 1;
      if (word.empty()) continue;
      if (first) {
        first = false;
        if (word == "offload") {
          r.offload = true;
        } else if (word == "kernel") {
          r.offload = false;
        } else {
          why = "starts with '" + word + "', not offload or kernel";
        }
        continue;
      }
      const size_t eq = word.find('=');
      const std::string key = word.substr(0, eq), value = eq == std::string::npos ? "" : word.substr(eq + 1);
      if (key == "program" && !value.empty()) {
        r.program = value;
      } else if (key == "local") {
        if (!parse_net(value, r.local, r.local_len)) why = "local=" + value + ": expected ADDR[/N]";
      } else if (key == "remote") {
        if (!parse_net(value, r.remote, r.remote_len)) why = "remote=" + value + ": expected ADDR[/N]";
      } else if (key == "port") {
        const size_t dash = value.find('-');
        if (!parse_uint(value.substr(0, dash), 65535, r.port_lo)) why = "port=" + value + ": expected N or N-M";
        r.port_hi = r.port_lo;
        if (why.empty() && dash != std::string::npos &&
            (!parse_uint(value.substr(dash + 1), 65535, r.port_hi) || r.port_hi < r.port_lo)) {
          why = "port=" + value + ": expected N or N-M";
        }
      } else {
        why = "unknown field '" + word + "' (program=, local=, remote=, port=)";
      }
    }
    if (first) why = "empty";
    if (!why.empty()) {
      errors.push_back("SHUNT_RULES: rule " + std::to_string(index) + " '" + rule_text + "': " + why);
      continue;
    }
    out.rules_.push_back(std::move(r));
  }
  return out;
}

std::optional<bool> OffloadRules::match(const char* program, const IpAddr* local, uint16_t lport,
                                        const IpAddr* remote, uint16_t rport) const {
  for (const OffloadRule& r : rules_) {
    if (!r.program.empty() && (!program || r.program != program)) continue;
    if (r.local && (!local || !prefix_match(unmapped(*local), *r.local, r.local_len))) continue;
    if (r.remote && (!remote || !prefix_match(unmapped(*remote), *r.remote, r.remote_len))) continue;
    if (r.port_lo >= 0) {
      const bool l = local && lport >= r.port_lo && lport <= r.port_hi;
      const bool m = remote && rport >= r.port_lo && rport <= r.port_hi;
      if (!l && !m) continue;
    }
    return r.offload;
  }
  return std::nullopt;
}

size_t format_socket_decision(char* buf, size_t len, const Config* config, int domain, int type, int protocol,
                              int fd, const OffloadDecision& d) {
  if (len == 0) return 0;
  char dom[32];
  char typ[64];
  const char* dn = domain_name(domain);
  if (dn) {
    std::snprintf(dom, sizeof dom, "%s", dn);
  } else {
    std::snprintf(dom, sizeof dom, "%d", domain);
  }
  const char* tn = type_name(type & ~kTypeFlags);
  int n = tn ? std::snprintf(typ, sizeof typ, "%s", tn) : std::snprintf(typ, sizeof typ, "%d", type & ~kTypeFlags);
  if (n > 0 && (type & SOCK_NONBLOCK)) n += std::snprintf(typ + n, sizeof typ - size_t(n), "|SOCK_NONBLOCK");
  if (n > 0 && size_t(n) < sizeof typ && (type & SOCK_CLOEXEC)) std::snprintf(typ + n, sizeof typ - size_t(n), "|SOCK_CLOEXEC");
  int w;
  if (d.offload) {
    w = std::snprintf(buf, len, "shunt: socket(%s, %s, %d) = %d: held by the stack until bind, connect, listen or sendto places it\n",
                      dom, typ, protocol, fd);
  } else if (d.mention_device && config) {
    w = std::snprintf(buf, len, "shunt: socket(%s, %s, %d) = %d: not offloaded: %s (SHUNT_DEVICE=%s)\n", dom, typ, protocol, fd,
                      d.reason, config->device.c_str());
  } else {
    w = std::snprintf(buf, len, "shunt: socket(%s, %s, %d) = %d: not offloaded: %s\n", dom, typ, protocol, fd,
                      d.reason);
  }
  if (w < 0) {
    buf[0] = '\0';
    return 0;
  }
  if (size_t(w) >= len) {  // truncated: still one whole line
    if (len >= 2) buf[len - 2] = '\n';
    return len - 1;
  }
  return size_t(w);
}

}  // namespace shunt::preload
