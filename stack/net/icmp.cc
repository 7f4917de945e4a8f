#include "stack/net/icmp.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "stack/net/checksum.h"
#include "stack/net/icmp_wire.h"
#include "stack/net/ipv4.h"
#include "stack/net/ipv4_wire.h"
#include "stack/net/stack.h"
#include "stack/net/tcp/tcp.h"
#include "stack/net/udp.h"

namespace shunt {

namespace {
// RFC 1812 4.3.2.3: an error quotes as much of the datagram as fits in 576 bytes.
constexpr size_t kMaxErrorLen = 576;

// What a socket sees for an unreachable code (as Linux's icmp_err_convert).
int unreachable_errno(uint8_t code) {
  static constexpr int kErr[16] = {ENETUNREACH, EHOSTUNREACH, ENOPROTOOPT,  ECONNREFUSED,
                                   EMSGSIZE,    EOPNOTSUPP,   ENETUNREACH,  EHOSTDOWN,
                                   ENONET,      ENETUNREACH,  EHOSTUNREACH, ENETUNREACH,
                                   EHOSTUNREACH, EHOSTUNREACH, EHOSTUNREACH, EHOSTUNREACH};
  return code < 16 ? kErr[code] : 0;
}
}  // namespace

Icmp::Icmp(Stack& stack)
    : stack_(stack),
      tokens_(stack.config().icmp_burst * kSecond),
      last_refill_(stack.now()),
      rx_messages_(stack.counters().add("icmp.rx_messages")),
      rx_echo_request_(stack.counters().add("icmp.rx_echo_request")),
      rx_echo_reply_(stack.counters().add("icmp.rx_echo_reply")),
      rx_errors_(stack.counters().add("icmp.rx_errors")),
      tx_echo_reply_(stack.counters().add("icmp.tx_echo_reply")),
      tx_errors_(stack.counters().add("icmp.tx_errors")),
      tx_rate_limited_(stack.counters().add("icmp.tx_rate_limited")),
      tx_suppressed_(stack.counters().add("icmp.tx_suppressed")),
      drop_truncated_(stack.counters().add("icmp.drop.truncated")),
      drop_bad_checksum_(stack.counters().add("icmp.drop.bad_checksum")),
      drop_broadcast_echo_(stack.counters().add("icmp.drop.broadcast_echo")),
      drop_unknown_type_(stack.counters().add("icmp.drop.unknown_type")),
      drop_bad_code_(stack.counters().add("icmp.drop.bad_code")),
      drop_error_to_broadcast_(stack.counters().add("icmp.drop.error_to_broadcast")),
      drop_bad_quote_(stack.counters().add("icmp.drop.bad_quote")),
      local_errors_(stack.counters().add("icmp.local_errors")) {}

Icmp::~Icmp() = default;

void Icmp::on_rx(PacketPtr p, const IpRx& rx) {
  ++rx_messages_;
  if (p->size() < kIcmpHeaderLen) {
    ++drop_truncated_;
    return;
  }
  if (checksum_fold(checksum_chain(0, *p)) != 0) {
    ++drop_bad_checksum_;
    return;
  }
  uint8_t* m = p->data();
  const bool to_group = rx.link_broadcast || rx.link_multicast || !stack_.is_local_v4(rx.dst.v4);
  switch (m[0]) {
    case kIcmpEchoRequest: {
      ++rx_echo_request_;
      // RFC 1122 3.2.2.6: echo to a broadcast or multicast address MAY be ignored; we do.
      if (to_group) {
        ++drop_broadcast_echo_;
        return;
      }
      // The reply reuses the request's buffer: same identifier, sequence and data.
      m[0] = kIcmpEchoReply;
      m[1] = 0;
      store16(m + 2, 0);
      store16(m + 2, checksum_fold(checksum_chain(0, *p)));
      p->flags = 0;
      p->user = 0;
      Ipv4Tx tx;
      tx.src = rx.dst.v4;
      tx.dst = rx.src.v4;
      tx.proto = kProtoIcmp;
      tx.ttl = uint8_t(stack_.config().ttl);
      tx.tos = rx.tos;
      if (stack_.ipv4().output(std::move(p), tx) == 0) ++tx_echo_reply_;
      return;
    }
    case kIcmpEchoReply:
      ++rx_echo_reply_;  // no ping sockets yet
      return;
    case kIcmpDestUnreachable:
    case kIcmpTimeExceeded:
    case kIcmpParamProblem:
      // RFC 1122 3.2.2: errors are never sent to broadcast or multicast addresses.
      if (to_group) {
        ++drop_error_to_broadcast_;
        return;
      }
      on_error(m, p->size(), rx);
      return;
    default:
      // Source quench (RFC 6633), redirects (a host on one link has no use for them),
      // timestamps and the rest.
      ++drop_unknown_type_;
      return;
  }
}

void Icmp::on_error(const uint8_t* m, size_t len, const IpRx& rx) {
  (void)rx;
  const uint8_t type = m[0];
  const uint8_t code = m[1];
  int err = 0;
  if (type == kIcmpDestUnreachable) {
    err = unreachable_errno(code);
  } else if (type == kIcmpTimeExceeded) {
    err = code <= 1 ? EHOSTUNREACH : 0;
  } else {
    err = EPROTO;  // parameter problem
  }
  if (!err) {
    ++drop_bad_code_;
    return;
  }
  // RFC 1122 3.2.2: the quote is the offending IP header and at least 8 bytes after it.
  const uint8_t* q = m + kIcmpHeaderLen;
  const size_t qlen = len - kIcmpHeaderLen;
  if (qlen < kIpv4MinHeaderLen || (q[0] >> 4) != 4) {
    ++drop_bad_quote_;
    return;
  }
  const size_t ihl = size_t(q[0] & 0x0f) * 4;
  if (ihl < kIpv4MinHeaderLen || qlen < ihl + 8) {
    ++drop_bad_quote_;
    return;
  }
  const Ipv4Addr qsrc = Ipv4Addr::read(q + 12);
  // It must quote a datagram we sent, and its first fragment (the one with the ports).
  if (!stack_.is_local_v4(qsrc) || (load16(q + 6) & kIpv4OffsetMask) != 0) {
    ++drop_bad_quote_;
    return;
  }
  ++rx_errors_;
  IpRx quoted;
  quoted.src = qsrc;
  quoted.dst = Ipv4Addr::read(q + 16);
  quoted.proto = q[9];
  quoted.hop_limit = q[8];
  quoted.tos = q[1];
  quoted.l3_len = uint16_t(ihl);
  if (quoted.proto == kProtoUdp) stack_.udp().on_icmp_error(err, q + ihl, qlen - ihl, quoted);
  if (quoted.proto == kProtoTcp) {
    // RFC 1191 4: fragmentation needed carries the next-hop MTU in bytes 6-7.
    const uint32_t mtu = type == kIcmpDestUnreachable && code == 4 ? load16(m + 6) : 0;
    stack_.tcp().on_icmp_error(err, mtu, q + ihl, qlen - ihl, quoted);
  }
}

void Icmp::on_link_failure(const PacketBuf& ip) {
  // Linux ip_link_failure: a host unreachable (type 3 code 1) to ourselves, quoting the
  // datagram's header and the first 8 bytes after it, handed straight to on_error.
  uint8_t msg[kIcmpHeaderLen + 60 + 8] = {};
  msg[0] = kIcmpDestUnreachable;
  msg[1] = 1;
  const size_t n = std::min(ip.size(), sizeof msg - kIcmpHeaderLen);
  if (n) std::memcpy(msg + kIcmpHeaderLen, ip.data(), n);
  ++local_errors_;
  on_error(msg, kIcmpHeaderLen + n, IpRx{});
}

void Icmp::send_unreachable(uint8_t code, const PacketBuf& offending, const IpRx& rx) {
  send_error(kIcmpDestUnreachable, code, offending, rx);
}

void Icmp::send_error(uint8_t type, uint8_t code, const PacketBuf& off, const IpRx& rx) {
  // RFC 1122 3.2.2: never about a datagram to a broadcast or multicast address (IP or link),
  // from a source that is not one host, a non-initial fragment, or an ICMP error.
  if (!rx.dst.is_v4() || !rx.src.is_v4()) return;
  const Ipv4Addr d = rx.dst.v4;
  const Ipv4Addr s = rx.src.v4;
  if (rx.link_broadcast || rx.link_multicast || d.is_multicast() || stack_.is_broadcast_v4(d) ||
      s.is_unspecified() || s.is_multicast() || s.is_loopback() || stack_.is_broadcast_v4(s) ||
      !stack_.is_local_v4(d) || rx.l3_len < kIpv4MinHeaderLen || off.headroom() < rx.l3_len) {
    ++tx_suppressed_;
    return;
  }
  const uint8_t* iph = off.data() - rx.l3_len;
  if ((load16(iph + 6) & kIpv4OffsetMask) != 0) {
    ++tx_suppressed_;
    return;
  }
  if (rx.proto == kProtoIcmp && (off.size() < 1 || !icmp_is_query(off.data()[0]))) {
    ++tx_suppressed_;
    return;
  }
  if (!take_token()) {
    ++tx_rate_limited_;
    return;
  }
  PacketPtr p = stack_.alloc_tx();
  if (!p) return;
  const size_t room = kMaxErrorLen - kIpv4MinHeaderLen - kIcmpHeaderLen - rx.l3_len;
  const size_t quote = std::min(off.size(), room);
  const size_t len = kIcmpHeaderLen + rx.l3_len + quote;
  uint8_t* m = p->append(len);
  m[0] = type;
  m[1] = code;
  store16(m + 2, 0);
  store32(m + 4, 0);
  std::memcpy(m + kIcmpHeaderLen, iph, rx.l3_len);
  std::memcpy(m + kIcmpHeaderLen + rx.l3_len, off.data(), quote);
  store16(m + 2, checksum(m, len));
  Ipv4Tx tx;
  tx.src = d;
  tx.dst = s;
  tx.proto = kProtoIcmp;
  tx.ttl = uint8_t(stack_.config().ttl);
  tx.tos = 0xc0;  // internetwork control, as other hosts send errors
  if (stack_.ipv4().output(std::move(p), tx) == 0) ++tx_errors_;
}

bool Icmp::take_token() {
  const auto& c = stack_.config();
  if (c.icmp_rate <= 0) return false;
  const int64_t cap = c.icmp_burst * kSecond;
  const Nanos now = stack_.now();
  Nanos elapsed = now - last_refill_;
  last_refill_ = now;
  if (elapsed > 0) {
    elapsed = std::min<Nanos>(elapsed, cap / c.icmp_rate + 1);
    tokens_ = std::min(cap, tokens_ + elapsed * c.icmp_rate);
  }
  if (tokens_ < kSecond) return false;
  tokens_ -= kSecond;
  return true;
}

}  // namespace shunt
