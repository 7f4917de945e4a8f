// The whole-stack receive-path harness shared by the libFuzzer target (fuzz_stack_rx.cc) and the
// CTest replay of the committed corpus (tests/unit/net_fuzz_corpus.cc).
//
// One input is a sequence of records, each one Ethernet frame and what to do around it:
//
//   ctl(1) len(2, big-endian) frame[len]      (a len past the end takes what is left)
//
//   ctl bits 0-2  virtual time to advance before the frame: 0, 1 us, 1 ms, 10 ms, 100 ms, 1 s,
//                 5 s, 40 s (past the reassembly timeout)
//       bit  3    keep the checksums as they are; by default they are fixed first (IPv4 header;
//                 ICMP, IGMP, UDP, ICMPv6 of an unfragmented packet), so mutations reach past the
//                 checksum checks
//       bit  4    do not poll after this frame (frames pile up into one receive burst)
//       bits 5-7  what the application does after the poll:
//                 0 nothing; 1 echo what every socket received back to its sender;
//                 2 send to 10.0.0.<frame[0]> (ARP resolution); 3 send to 2001:db8::<frame[0]>
//                 (NDP resolution); 4 a 3000-byte datagram to 10.0.0.2 (fragments);
//                 5 the same to 2001:db8::2; 6 leave and rejoin the multicast groups;
//                 7 close the first socket and open it again
//
// The stack: MAC 02:00:00:00:00:01, 10.0.0.1/24 with gateway 10.0.0.254, fe80::ff:fe00:1 and
// 2001:db8::1/64 (preferred), 2001:db8::99 (tentative when the input starts), gateway fe80::fe;
// UDP sockets on v4 port 7, v6 port 7, v4 port 5000 in 239.1.1.1, v6 port 5001 in ff02::1:3 and
// ff05::123, one connected v4 (to 10.0.0.2:9) and one connected v6 (to [2001:db8::2]:9).
//
// At the end the sockets close and the stack runs until no timer is left; then every buffer
// must be back in the pool, no reassembly left, and no timer armed.
#pragma once
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "stack/core/clock.h"
#include "stack/core/config.h"
#include "stack/net/checksum.h"
#include "stack/net/ipv4.h"
#include "stack/net/ipv6.h"
#include "stack/net/stack.h"
#include "stack/socket/socket_api.h"
#include "tests/support/test_device.h"

namespace shunt::fuzz {

using Bytes = std::vector<uint8_t>;

inline constexpr Nanos kTimeSteps[8] = {0, kMicro, kMilli, 10 * kMilli, 100 * kMilli, kSecond, 5 * kSecond, 40 * kSecond};
inline constexpr uint8_t kCtlKeepChecksums = 0x08;
inline constexpr uint8_t kCtlNoPoll = 0x10;

// Recomputes the checksums a mutation broke (unless bit 3 says not to). Never reads past `f`.
inline void fix_checksums(Bytes& f) {
  size_t off = 12;
  if (f.size() < 14) return;
  uint16_t type = load16(&f[off]);
  for (int tags = 0; (type == 0x8100 || type == 0x88a8) && tags < 2; ++tags) {
    off += 4;
    if (f.size() < off + 2) return;
    type = load16(&f[off]);
  }
  const size_t l3 = off + 2;
  auto sum_at = [&](size_t at, size_t l4, size_t end, uint32_t pseudo) {
    if (end > f.size() || l4 > end || at + 2 > end) return;
    f[at] = f[at + 1] = 0;
    uint16_t c = checksum_fold(checksum_add(pseudo, f.data() + l4, end - l4));
    store16(&f[at], c);
  };
  if (type == 0x0800) {
    if (f.size() < l3 + 20) return;
    const size_t hl = size_t(f[l3] & 0x0f) * 4;
    if (hl < 20 || f.size() < l3 + hl) return;
    f[l3 + 10] = f[l3 + 11] = 0;
    store16(&f[l3 + 10], checksum(&f[l3], hl));
    const size_t end = std::min(f.size(), l3 + load16(&f[l3 + 2]));
    const size_t l4 = l3 + hl;
    if ((load16(&f[l3 + 6]) & 0x3fff) != 0 || end < l4) return;  // a fragment, or a lying length
    const uint8_t proto = f[l3 + 9];
    if (proto == 1 || proto == 2) {
      sum_at(l4 + 2, l4, end, 0);
    } else if (proto == 17 && end >= l4 + 8) {
      const size_t ulen = std::min<size_t>(load16(&f[l4 + 4]), end - l4);
      uint32_t ph = pseudo_header_sum(IpAddr(Ipv4Addr::read(&f[l3 + 12])), IpAddr(Ipv4Addr::read(&f[l3 + 16])), 17,
                                      uint32_t(load16(&f[l4 + 4])));
      sum_at(l4 + 6, l4, l4 + ulen, ph);
    }
  } else if (type == 0x86dd) {
    if (f.size() < l3 + 40) return;
    const size_t end = std::min(f.size(), l3 + 40 + load16(&f[l3 + 4]));
    uint8_t nh = f[l3 + 6];
    size_t o = l3 + 40;
    for (int n = 0; n < 10; ++n) {
      if (nh == 0 || nh == 43 || nh == 60) {
        if (end < o + 2 || end < o + (size_t(f[o + 1]) + 1) * 8) return;
        nh = f[o];
        o += (size_t(f[o + 1]) + 1) * 8;
      } else if (nh == 44) {
        if (end < o + 8 || (load16(&f[o + 2]) & 0xfff9) != 0) return;  // only atomic fragments
        nh = f[o];
        o += 8;
      } else {
        break;
      }
    }
    if ((nh != 58 && nh != 17) || end < o + 8) return;
    const IpAddr src(Ipv6Addr::read(&f[l3 + 8]));
    const IpAddr dst(Ipv6Addr::read(&f[l3 + 24]));
    size_t l4end = end;
    if (nh == 17) l4end = o + std::clamp<size_t>(load16(&f[o + 4]), 8, end - o);
    sum_at(o + (nh == 58 ? 2 : 6), o, l4end, pseudo_header_sum(src, dst, nh, uint32_t(l4end - o)));
  }
}

struct Result {
  bool ok = true;
  std::string why;
  uint64_t frames = 0;
  size_t pool_available = 0;
  size_t pool_capacity = 0;
  size_t timers_armed = 0;
  size_t ipv4_reassembly = 0;
  size_t ipv6_reassembly = 0;
};

class StackRxHarness {
 public:
  StackRxHarness() : dev_(MacAddr{{0x02, 0, 0, 0, 0, 1}}, 1500), stack_(dev_, clock_, config()), api_(stack_) {
    stack_.add_address(IpAddr(Ipv4Addr{0x0a000001}), 24);
    stack_.add_address(IpAddr(*Ipv6Addr::parse("2001:db8::1")), 64);
    stack_.set_default_gateway(IpAddr(Ipv4Addr{0x0a0000fe}));
    stack_.set_default_gateway(IpAddr(*Ipv6Addr::parse("fe80::fe")));
    run_until(clock_.now() + 2 * kSecond);  // DAD passes, announcements go out
    stack_.add_address(IpAddr(*Ipv6Addr::parse("2001:db8::99")), 64);  // tentative for a while
    for (size_t i = 0; i < kSockets; ++i) open_socket(i);
    stack_.poll();
    dev_.take_sent();
  }

  static Config config() {
    Config c;
    c.buffers = 256;  // small: exhaustion paths run too (and a fresh stack per input is cheap)
    c.reasm_max_bytes = 128 * 2048;
    c.icmp_burst = 20;
    c.arp_queue = 4;
    return c;
  }

  // Runs one input; never throws. The stack is used up afterwards.
  Result run(const uint8_t* data, size_t size) {
    Result r;
    size_t i = 0;
    Bytes frame;
    while (i < size) {
      const uint8_t ctl = data[i++];
      size_t len = 0;
      if (i < size) len = size_t(data[i++]) << 8;
      if (i < size) len |= data[i++];
      len = std::min(len, size - i);
      frame.assign(data + i, data + i + len);
      i += len;
      clock_.advance(kTimeSteps[ctl & 7]);
      if (!(ctl & kCtlKeepChecksums)) fix_checksums(frame);
      dev_.inject(frame);
      ++r.frames;
      if (ctl & kCtlNoPoll) continue;
      stack_.poll();
      stack_.poll();  // what was looped back
      if (on_frame) on_frame(frame);
      act(ctl >> 5, frame);
      dev_.take_sent();
    }
    stack_.poll();
    // Closing everything and letting time pass must give every buffer back and leave no timer.
    for (size_t k = 0; k < kSockets; ++k) {
      if (socks_[k] >= 0) api_.close(socks_[k]);
      socks_[k] = -1;
    }
    size_t steps = 0;
    for (;; ++steps) {
      const Nanos next = stack_.poll();
      dev_.take_sent();
      if (next == kNever) break;
      if (steps > 100'000 || next > clock_.now() + 3600 * kSecond) {
        r.ok = false;
        r.why = "timers keep re-arming";
        break;
      }
      clock_.advance_to(next);
    }
    r.pool_available = stack_.pool().available();
    r.pool_capacity = stack_.pool().capacity();
    r.timers_armed = stack_.timers().armed_count();
    r.ipv4_reassembly = stack_.ipv4().reassembly_in_progress();
    r.ipv6_reassembly = stack_.ipv6().reasm_in_progress();
    if (r.ok && r.pool_available != r.pool_capacity) {
      r.ok = false;
      r.why = "buffers not returned: " + std::to_string(r.pool_capacity - r.pool_available);
    } else if (r.ok && (r.ipv4_reassembly || r.ipv6_reassembly)) {
      r.ok = false;
      r.why = "reassembly left over";
    } else if (r.ok && r.timers_armed) {
      r.ok = false;
      r.why = "timers left armed: " + std::to_string(r.timers_armed);
    }
    return r;
  }

  // The local port of socket k (0 to 5 in the order above), 0 if closed.
  uint16_t port_of(size_t k) {
    sockaddr_storage a{};
    socklen_t len = sizeof a;
    if (k >= kSockets || socks_[k] < 0 || api_.getsockname(socks_[k], reinterpret_cast<sockaddr*>(&a), &len) < 0) {
      return 0;
    }
    return ntohs(a.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&a)->sin_port
                                        : reinterpret_cast<sockaddr_in6*>(&a)->sin6_port);
  }
  Stack& stack() { return stack_; }
  std::function<void(const Bytes&)> on_frame;  // debugging: called after each polled frame
  test::TestDevice& device() { return dev_; }

 private:
  static constexpr size_t kSockets = 6;

  // Polls at every deadline up to `end`.
  void run_until(Nanos end) {
    for (int i = 0; i < 10'000 && clock_.now() < end; ++i) {
      const Nanos next = stack_.poll();
      clock_.advance_to(std::min(next, end));
    }
    stack_.poll();
  }

  static sockaddr_in v4(const char* a, uint16_t port) {
    sockaddr_in s{};
    s.sin_family = AF_INET;
    s.sin_port = htons(port);
    inet_pton(AF_INET, a, &s.sin_addr);
    return s;
  }
  static sockaddr_in6 v6(const char* a, uint16_t port) {
    sockaddr_in6 s{};
    s.sin6_family = AF_INET6;
    s.sin6_port = htons(port);
    inet_pton(AF_INET6, a, &s.sin6_addr);
    return s;
  }

  void join(size_t k) {
    if ((k != 2 && k != 3) || socks_[k] < 0) return;
    if (k == 2) {
      ip_mreq m{};
      inet_pton(AF_INET, "239.1.1.1", &m.imr_multiaddr);
      api_.setsockopt(socks_[k], IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof m);
    } else if (k == 3) {
      for (const char* g : {"ff02::1:3", "ff05::123"}) {
        ipv6_mreq m{};
        inet_pton(AF_INET6, g, &m.ipv6mr_multiaddr);
        m.ipv6mr_interface = 1;
        api_.setsockopt(socks_[k], IPPROTO_IPV6, IPV6_JOIN_GROUP, &m, sizeof m);
      }
    }
  }
  void leave(size_t k) {
    if ((k != 2 && k != 3) || socks_[k] < 0) return;
    if (k == 2) {
      ip_mreq m{};
      inet_pton(AF_INET, "239.1.1.1", &m.imr_multiaddr);
      api_.setsockopt(socks_[k], IPPROTO_IP, IP_DROP_MEMBERSHIP, &m, sizeof m);
    } else if (k == 3) {
      for (const char* g : {"ff02::1:3", "ff05::123"}) {
        ipv6_mreq m{};
        inet_pton(AF_INET6, g, &m.ipv6mr_multiaddr);
        m.ipv6mr_interface = 1;
        api_.setsockopt(socks_[k], IPPROTO_IPV6, IPV6_LEAVE_GROUP, &m, sizeof m);
      }
    }
  }

  void open_socket(size_t k) {
    const bool is_v6 = k % 2 == 1;
    const int s = api_.socket(is_v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    socks_[k] = s;
    if (s < 0) return;
    const int one = 1;
    if (is_v6) api_.setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    switch (k) {
      case 0: {
        auto a = v4("0.0.0.0", 7);
        api_.bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
        break;
      }
      case 1: {
        auto a = v6("::", 7);
        api_.bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
        break;
      }
      case 2: {
        auto a = v4("0.0.0.0", 5000);
        api_.bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
        break;
      }
      case 3: {
        auto a = v6("::", 5001);
        api_.bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
        break;
      }
      case 4: {
        auto a = v4("10.0.0.2", 9);
        api_.connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
        break;
      }
      case 5: {
        auto a = v6("2001:db8::2", 9);
        api_.connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
        break;
      }
    }
    join(k);
  }

  void echo_all() {
    uint8_t buf[4096];
    for (size_t k = 0; k < kSockets; ++k) {
      if (socks_[k] < 0) continue;
      for (int n = 0; n < 8; ++n) {
        sockaddr_storage from{};
        socklen_t fl = sizeof from;
        const ssize_t got = api_.recvfrom(socks_[k], buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &fl);
        if (got < 0) break;
        if (k >= 4) continue;  // connected: nothing to answer
        api_.sendto(socks_[k], buf, size_t(got), 0, reinterpret_cast<sockaddr*>(&from), fl);
      }
    }
  }

  void act(uint8_t what, const Bytes& frame) {
    static const uint8_t kPayload[3000] = {};
    const uint8_t b = frame.empty() ? 2 : frame[0];
    switch (what) {
      case 0: return;
      case 1: echo_all(); break;
      case 2: {
        char a[32];
        std::snprintf(a, sizeof a, "10.0.0.%u", unsigned(b));
        auto to = v4(a, 9);
        api_.sendto(socks_[0], kPayload, 32, 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
        break;
      }
      case 3: {
        char a[48];
        std::snprintf(a, sizeof a, "2001:db8::%x", unsigned(b));
        auto to = v6(a, 9);
        api_.sendto(socks_[1], kPayload, 32, 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
        break;
      }
      case 4: api_.send(socks_[4], kPayload, sizeof kPayload, 0); break;
      case 5: api_.send(socks_[5], kPayload, sizeof kPayload, 0); break;
      case 6:
        leave(2);
        leave(3);
        join(2);
        join(3);
        break;
      case 7:
        if (socks_[0] >= 0) api_.close(socks_[0]);
        open_socket(0);
        break;
    }
    stack_.poll();
  }

  VirtualClock clock_{0};
  test::TestDevice dev_;
  Stack stack_;
  SocketApi api_;
  int socks_[kSockets] = {-1, -1, -1, -1, -1, -1};
};

// Runs one input on a fresh stack.
inline Result run_stack_rx(const uint8_t* data, size_t size) {
  StackRxHarness h;
  return h.run(data, size);
}

}  // namespace shunt::fuzz
