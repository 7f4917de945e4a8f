#include "stack/preload/offload.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdio>

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
    d.reason = "offload is not implemented in this build yet";
    d.mention_device = true;
  }
  return d;
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
    w = std::snprintf(buf, len, "shunt: socket(%s, %s, %d) = %d: offloaded\n", dom, typ, protocol, fd);
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
