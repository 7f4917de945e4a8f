#include "stack/net/icmp6.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "stack/net/checksum.h"
#include "stack/net/icmp6_wire.h"
#include "stack/net/ipv6.h"
#include "stack/net/ipv6_wire.h"
#include "stack/net/mld.h"
#include "stack/net/ndp.h"
#include "stack/net/stack.h"
#include "stack/net/tcp/tcp.h"
#include "stack/net/udp.h"

namespace shunt {

namespace {

// RFC 4443 2.4(e.1), for a packet whose upper layer was not known yet (`ip` at its IPv6
// header): is it an ICMPv6 error or redirect, or an ICMPv6 message too short to tell? As
// Linux's is_ineligible: walk the extension headers; a non-first fragment says nothing.
bool is_icmp6_error_packet(const uint8_t* ip, size_t len) {
  if (len < kIpv6HeaderLen) return false;
  uint8_t nh = ip[6];
  size_t off = kIpv6HeaderLen;
  for (int n = 0; n <= Ipv6::kMaxExtHeaders; ++n) {
    if (nh == kNextHopByHop || nh == kNextDestOpts || nh == kNextRouting) {
      if (len - off < 2 || len - off < ipv6_ext_len(ip + off)) return false;
      nh = ip[off];
      off += ipv6_ext_len(ip + off);
    } else if (nh == kNextFragment) {
      if (len - off < kIpv6FragHeaderLen || Ipv6FragRepr::parse(ip + off).offset != 0) return false;
      nh = ip[off];
      off += kIpv6FragHeaderLen;
    } else {
      break;
    }
  }
  if (nh != kProtoIcmpv6) return false;
  return len <= off || icmp6_is_error(ip[off]) || ip[off] == kIcmp6Redirect;
}

}  // namespace

Icmp6::Icmp6(Stack& stack)
    : stack_(stack),
      rx_messages_(stack.counters().add("icmp6.rx_messages")),
      tx_messages_(stack.counters().add("icmp6.tx_messages")),
      drop_truncated_(stack.counters().add("icmp6.drop.truncated")),
      drop_bad_checksum_(stack.counters().add("icmp6.drop.bad_checksum")),
      drop_unknown_type_(stack.counters().add("icmp6.drop.unknown_type")),
      drop_bad_quote_(stack.counters().add("icmp6.drop.bad_quote")),
      rx_echo_reply_(stack.counters().add("icmp6.rx_echo_reply")),
      rx_errors_(stack.counters().add("icmp6.rx_errors")),
      tx_echo_reply_(stack.counters().add("icmp6.tx_echo_reply")),
      tx_errors_(stack.counters().add("icmp6.tx_errors")),
      error_rate_limited_(stack.counters().add("icmp6.error_rate_limited")),
      error_suppressed_(stack.counters().add("icmp6.error_suppressed")),
      drop_no_buffer_(stack.counters().add("icmp6.drop.no_buffer")),
      local_errors_(stack.counters().add("icmp6.local_errors")),
      tokens_(double(stack.config().icmp_burst)),
      last_refill_(stack.now()) {}

Icmp6::~Icmp6() = default;

int Icmp6::output(PacketPtr msg, const Ipv6Tx& txin) {
  Ipv6Tx tx = txin;
  tx.next_header = kProtoIcmpv6;
  if (!stack_.ipv6().pick_source(tx)) return -EADDRNOTAVAIL;
  uint8_t* d = msg->data();
  const size_t len = msg->chain_size();
  store16(d + 2, 0);
  uint32_t sum = pseudo_header_sum(IpAddr(tx.src), IpAddr(tx.dst), kProtoIcmpv6, uint32_t(len));
  store16(d + 2, checksum_fold(checksum_chain(sum, *msg)));
  ++tx_messages_;
  return stack_.ipv6().output(std::move(msg), tx);
}

void Icmp6::on_rx(PacketPtr p, const IpRx& rx) {
  ++rx_messages_;
  if (p->size() < 4) {
    ++drop_truncated_;
    return;
  }
  const size_t len = p->chain_size();
  // RFC 4443 2.3: the checksum covers the pseudo-header (RFC 8200 8.1) and the message.
  uint32_t sum = pseudo_header_sum(rx.src, rx.dst, kProtoIcmpv6, uint32_t(len));
  if (checksum_fold(checksum_chain(sum, *p)) != 0) {
    ++drop_bad_checksum_;
    return;
  }
  const uint8_t type = p->data()[0];
  switch (type) {
    case kIcmp6EchoRequest: {
      if (len < kIcmp6HeaderLen) {
        ++drop_truncated_;
        return;
      }
      if (rx.src.v6.is_unspecified()) {
        ++drop_unknown_type_;
        return;
      }
      // RFC 4443 4.2: the reply carries the request's identifier, sequence and data. The
      // request buffer is reused when its headroom holds the new headers.
      Ipv6Tx tx;
      tx.dst = rx.src.v6;
      if (!rx.dst.v6.is_multicast()) tx.src = rx.dst.v6;  // else: source selection
      tx.hop_limit = uint8_t(stack_.config().ttl);
      if (p->headroom() < kIpv6HeaderLen + kEthHeaderLen) {
        // No room in front (e.g. a reassembled head): a fresh buffer takes the ICMPv6 header
        // and the request's bytes follow it through the chain.
        PacketPtr c = stack_.alloc_tx();
        if (!c || p->size() < kIcmp6HeaderLen) {
          ++drop_no_buffer_;
          return;
        }
        c->append({p->data(), kIcmp6HeaderLen});
        p->pull(kIcmp6HeaderLen);
        c->chain = p.release();
        p = std::move(c);
      }
      p->data()[0] = kIcmp6EchoReply;
      p->flags = 0;
      ++tx_echo_reply_;
      output(std::move(p), tx);
      return;
    }
    case kIcmp6EchoReply:
      ++rx_echo_reply_;  // no ping sockets yet
      return;
    case kIcmp6DestUnreachable:
    case kIcmp6PacketTooBig:
    case kIcmp6TimeExceeded:
    case kIcmp6ParamProblem:
      ++rx_errors_;
      on_error(p->data(), p->size(), rx);
      return;
    case kIcmp6RouterSolicit:
    case kIcmp6RouterAdvert:
    case kIcmp6NeighborSolicit:
    case kIcmp6NeighborAdvert:
    case kIcmp6Redirect:
      stack_.ndp().on_rx(std::move(p), rx);
      return;
    case kIcmp6MldQuery:
    case kIcmp6MldV1Report:
    case kIcmp6MldV1Done:
    case kIcmp6MldV2Report:
      stack_.mld().on_rx(std::move(p), rx);
      return;
    default:
      // RFC 4443 2.4(a)/(b): unknown informational messages are dropped; unknown errors
      // would go to the upper layer, and none of ours wants them.
      ++drop_unknown_type_;
      return;
  }
}

void Icmp6::on_error(const uint8_t* d, size_t len, const IpRx& rx) {
  // The quote (RFC 4443 3): as much of the invoking packet as fit; we need its IPv6 header, its
  // extension headers and 8 bytes of UDP header.
  if (len < kIcmp6HeaderLen + kIpv6HeaderLen) {
    ++drop_bad_quote_;
    return;
  }
  const uint8_t* q = d + kIcmp6HeaderLen;
  const size_t qlen = len - kIcmp6HeaderLen;
  if ((q[0] >> 4) != 6) {
    ++drop_bad_quote_;
    return;
  }
  IpRx qrx;
  qrx.src = Ipv6Addr::read(q + 8);
  qrx.dst = Ipv6Addr::read(q + 24);
  qrx.hop_limit = q[7];
  // It must quote something we sent (RFC 5927 4.1: a cheap check against blind forgery).
  if (!stack_.is_local_v6(qrx.src.v6)) {
    ++drop_bad_quote_;
    return;
  }
  uint8_t nh = q[6];
  size_t off = kIpv6HeaderLen;
  for (int n = 0; n <= Ipv6::kMaxExtHeaders; ++n) {
    if (nh == kNextHopByHop || nh == kNextDestOpts || nh == kNextRouting) {
      if (qlen - off < 2 || qlen - off < ipv6_ext_len(q + off)) break;
      nh = q[off];
      off += ipv6_ext_len(q + off);
      continue;
    }
    if (nh == kNextFragment) {
      if (qlen - off < kIpv6FragHeaderLen) break;
      if (Ipv6FragRepr::parse(q + off).offset != 0) break;  // no upper-layer header in it
      nh = q[off];
      off += kIpv6FragHeaderLen;
      continue;
    }
    break;
  }
  if ((nh != kProtoUdp && nh != kProtoTcp) || qlen < off || qlen - off < 8) {
    ++drop_bad_quote_;  // not a UDP datagram or TCP segment of ours with its header (ICMPv6 ones need nothing)
    return;
  }
  const uint8_t type = d[0], code = d[1];
  int err = EHOSTUNREACH;
  switch (type) {
    case kIcmp6DestUnreachable:
      err = code == kUnreachNoRoute ? ENETUNREACH
            : code == kUnreachAdmin ? EACCES
            : code == kUnreachPort  ? ECONNREFUSED
                                    : EHOSTUNREACH;
      break;
    case kIcmp6PacketTooBig: err = EMSGSIZE; break;
    case kIcmp6TimeExceeded: err = EHOSTUNREACH; break;
    case kIcmp6ParamProblem: err = EPROTO; break;
  }
  qrx.proto = nh;
  qrx.l3_len = uint16_t(off);
  (void)rx;
  if (nh == kProtoTcp) {
    // RFC 8201 / RFC 4443 3.2: packet too big carries the MTU.
    stack_.tcp().on_icmp_error(err, type == kIcmp6PacketTooBig ? load32(d + 4) : 0, q + off, qlen - off, qrx);
    return;
  }
  stack_.udp().on_icmp_error(err, q + off, qlen - off, qrx);
}

void Icmp6::on_link_failure(const PacketBuf& ip) {
  // RFC 4861 7.2.2 / RFC 4443 3.1: address unreachable (type 1 code 3) to ourselves, quoting
  // the packet's headers, handed straight to on_error.
  uint8_t msg[kIcmp6HeaderLen + 248] = {};
  msg[0] = kIcmp6DestUnreachable;
  msg[1] = 3;
  const size_t n = std::min(ip.size(), sizeof msg - kIcmp6HeaderLen);
  if (n) std::memcpy(msg + kIcmp6HeaderLen, ip.data(), n);
  ++local_errors_;
  on_error(msg, kIcmp6HeaderLen + n, IpRx{});
}

bool Icmp6::take_token() {
  const Nanos now = stack_.now();
  const double burst = double(std::max<int64_t>(stack_.config().icmp_burst, 1));
  if (now > last_refill_) {
    tokens_ = std::min(burst, tokens_ + double(now - last_refill_) * double(stack_.config().icmp_rate) / double(kSecond));
    last_refill_ = now;
  }
  if (tokens_ < 1.0) return false;
  tokens_ -= 1.0;
  return true;
}

void Icmp6::send_error(uint8_t type, uint8_t code, uint32_t param, const PacketBuf& offending, const IpRx& rx) {
  // RFC 4443 2.4(e): never in reply to an ICMPv6 error or a redirect, nor to a packet whose
  // source does not name one node, nor (except packet too big and param problem code 2) to a
  // packet sent to a multicast address or as link-layer multicast/broadcast.
  if (!rx.src.is_v6() || rx.src.v6.is_unspecified() || rx.src.v6.is_multicast()) {
    ++error_suppressed_;
    return;
  }
  if (rx.proto == kProtoIcmpv6 && offending.size() >= 1 &&
      (icmp6_is_error(offending.data()[0]) || offending.data()[0] == kIcmp6Redirect)) {
    ++error_suppressed_;
    return;
  }
  // A parameter problem found before the upper layer was known (data() at the IPv6 header):
  // look for it past the extension headers.
  if (rx.l3_len == 0 && is_icmp6_error_packet(offending.data(), offending.size())) {
    ++error_suppressed_;
    return;
  }
  const bool multicast = rx.dst.v6.is_multicast() || rx.link_multicast || rx.link_broadcast;
  if (multicast && !(type == kIcmp6PacketTooBig || (type == kIcmp6ParamProblem && code == kParamUnknownOption))) {
    ++error_suppressed_;
    return;
  }
  // RFC 4443 2.4(f): rate limited.
  if (!take_token()) {
    ++error_rate_limited_;
    return;
  }
  PacketPtr m = stack_.alloc_tx();
  if (!m) {
    ++drop_no_buffer_;
    return;
  }
  // RFC 4443 2.4(c): quote as much as fits in the minimum MTU.
  const size_t max_quote = kIpv6MinMtu - kIpv6HeaderLen - kIcmp6HeaderLen;
  const size_t first = std::min(max_quote, size_t(rx.l3_len) + offending.size());
  const size_t rest = std::min(max_quote - first, offending.chain_size() - offending.size());
  uint8_t* d = m->append(kIcmp6HeaderLen + first + rest);
  d[0] = type;
  d[1] = code;
  store16(d + 2, 0);
  store32(d + 4, param);
  std::memcpy(d + kIcmp6HeaderLen, offending.data() - rx.l3_len, first);
  if (rest) packet_copy_out(offending, offending.size(), rest, d + kIcmp6HeaderLen + first);
  Ipv6Tx tx;
  tx.dst = rx.src.v6;
  if (!rx.dst.v6.is_multicast() && stack_.is_local_v6(rx.dst.v6)) tx.src = rx.dst.v6;
  tx.hop_limit = uint8_t(stack_.config().ttl);
  ++tx_errors_;
  output(std::move(m), tx);
}

}  // namespace shunt
