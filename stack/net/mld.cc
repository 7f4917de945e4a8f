#include "stack/net/mld.h"

#include <algorithm>

#include "stack/core/log.h"
#include "stack/net/icmp6.h"
#include "stack/net/icmp6_wire.h"
#include "stack/net/ipv6.h"
#include "stack/net/ipv6_wire.h"
#include "stack/net/stack.h"

namespace shunt {

Mld::Mld(Stack& stack)
    : stack_(stack),
      change_timer_([this](Nanos) {
        send_report(ReportKind::kStateChange);
        arm_change_timer();
      }),
      response_timer_([this](Nanos) { send_report(ReportKind::kCurrentState); }),
      tx_reports_(stack.counters().add("mld.tx_reports")),
      rx_queries_(stack.counters().add("mld.rx_queries")),
      drop_invalid_(stack.counters().add("mld.drop.invalid")),
      ignored_reports_(stack.counters().add("mld.ignored_reports")),
      join_refused_(stack.counters().add("mld.join_refused")) {}

Mld::~Mld() = default;

bool Mld::reportable(const Ipv6Addr& g) {
  // RFC 3810 6: never for the link-scope all-nodes group, nor interface-local (or reserved)
  // scopes, which never leave the host.
  if ((g.b[1] & 0x0f) <= 1) return false;
  Ipv6Addr all_nodes;
  all_nodes.b[0] = 0xff;
  all_nodes.b[1] = 0x02;
  all_nodes.b[15] = 1;
  return g != all_nodes;
}

Mld::Group* Mld::find(const Ipv6Addr& g) {
  for (size_t i = 0; i < high_; ++i) {
    if (groups_[i].used && groups_[i].addr == g) return &groups_[i];
  }
  return nullptr;
}

bool Mld::is_member(const Ipv6Addr& g) const {
  for (size_t i = 0; i < high_; ++i) {
    if (groups_[i].refs > 0 && groups_[i].addr == g) return true;
  }
  return false;
}

void Mld::arm_change_timer() {
  bool left = false;
  for (size_t i = 0; i < high_; ++i) left |= groups_[i].used && groups_[i].change_left > 0;
  // RFC 3810 6.1: retransmissions at random times within the Unsolicited Report Interval.
  if (left && !change_timer_.armed()) {
    stack_.timers().arm(change_timer_, stack_.now() + kMilli +
                                           Nanos(stack_.random().below(uint64_t(kUnsolicitedReportInterval))));
  }
}

void Mld::join(const Ipv6Addr& g) {
  if (!g.is_multicast()) return;
  Group* gr = find(g);
  if (gr && gr->refs > 0) {
    ++gr->refs;
    return;
  }
  if (!gr) {
    for (size_t i = 0; i < kMaxGroups; ++i) {
      if (!groups_[i].used) {
        gr = &groups_[i];
        high_ = std::max(high_, i + 1);
        break;
      }
    }
    if (!gr) {
      ++join_refused_;
      SHUNT_WARN("mld: cannot join %s: %zu groups already joined", g.str().c_str(), kMaxGroups);
      return;
    }
    *gr = Group{};
    gr->used = true;
    gr->addr = g;
  }
  gr->refs = 1;
  if (!reportable(g)) return;
  // RFC 3810 6.1: a state change to EXCLUDE {} (any source), sent Robustness times.
  gr->change_type = kMldChangeToExclude;
  gr->change_left = kRobustness;
  send_report(ReportKind::kStateChange);
  arm_change_timer();
}

void Mld::leave(const Ipv6Addr& g) {
  Group* gr = find(g);
  if (!gr || gr->refs == 0) return;
  if (--gr->refs > 0) return;
  gr->query_pending = false;
  if (!reportable(g)) {
    gr->used = false;
    return;
  }
  // RFC 3810 6.1: a state change to INCLUDE {} (leaving), sent Robustness times.
  gr->change_type = kMldChangeToInclude;
  gr->change_left = kRobustness;
  send_report(ReportKind::kStateChange);
  arm_change_timer();
}

void Mld::send_report(ReportKind kind) {
  // RFC 3810 5.2: a report holds as many 20-byte records as fit in the link MTU.
  const size_t room = std::min<size_t>(stack_.mtu(), PacketBuf::kCapacity - PacketBuf::kDefaultHeadroom);
  const size_t max_records = std::max<size_t>(1, (room - kIpv6HeaderLen - 8 - kIcmp6HeaderLen) / kMldV2RecordLen);
  size_t i = 0;
  while (i < high_) {
    PacketPtr m;
    uint16_t records = 0;
    for (; i < high_ && records < max_records; ++i) {
      Group& g = groups_[i];
      if (!g.used) continue;
      uint8_t type = 0;
      if (kind == ReportKind::kStateChange) {
        if (g.change_left <= 0) continue;
        type = g.change_type;
        if (--g.change_left == 0 && g.refs == 0) g.used = false;  // the leave is fully announced
      } else {
        const bool wanted = g.refs > 0 && (general_pending_ || g.query_pending);
        g.query_pending = false;
        if (!wanted || !reportable(g.addr)) continue;
        type = kMldModeIsExclude;  // RFC 3810 6.2: current state: EXCLUDE {} (any source)
      }
      if (!m) {
        m = stack_.alloc_tx();
        if (!m) return;
        uint8_t* h = m->append(kIcmp6HeaderLen);
        h[0] = kIcmp6MldV2Report;
        h[1] = 0;
        store16(h + 2, 0);
        store16(h + 4, 0);
        store16(h + 6, 0);
      }
      uint8_t* r = m->append(kMldV2RecordLen);
      r[0] = type;
      r[1] = 0;  // aux data length
      store16(r + 2, 0);  // number of sources
      g.addr.write(r + 4);
      ++records;
    }
    if (!m) break;
    store16(m->data() + 6, records);
    Ipv6Tx tx;
    tx.dst = Ipv6Addr{};
    tx.dst.b[0] = 0xff;
    tx.dst.b[1] = 0x02;
    tx.dst.b[15] = 0x16;  // ff02::16, all MLDv2-capable routers (RFC 3810 5.2.14)
    tx.hop_limit = 1;
    tx.router_alert = true;
    tx.multicast_loop = false;
    // RFC 3810 5.2.13: from the link-local address, or from :: while it is still tentative.
    if (stack_.is_local_v6(stack_.link_local())) {
      tx.src = stack_.link_local();
    } else {
      tx.allow_unspecified_src = true;
    }
    ++tx_reports_;
    stack_.icmp6().output(std::move(m), tx);
  }
  if (kind == ReportKind::kCurrentState) general_pending_ = false;
  while (high_ > 0 && !groups_[high_ - 1].used) --high_;
}

void Mld::on_query(const uint8_t* d, size_t len, const IpRx& rx) {
  // RFC 3810 5.1.14 / 6.2: queries come from a link-local source with hop limit 1.
  if (!rx.src.v6.is_link_local() || rx.hop_limit != 1 || d[1] != 0) {
    ++drop_invalid_;
    return;
  }
  uint32_t max_delay_ms = 0;
  if (len == kMldV1Len) {
    // An MLDv1 query (RFC 2710): answered with an MLDv2 report; no v1 compatibility mode.
    max_delay_ms = load16(d + 4);
  } else if (len >= kMldV2QueryLen) {
    const size_t sources = load16(d + 26);
    if (len < kMldV2QueryLen + 16 * sources) {
      ++drop_invalid_;
      return;
    }
    max_delay_ms = mld_max_response_ms(load16(d + 4));
  } else {
    ++drop_invalid_;
    return;
  }
  const Ipv6Addr group = Ipv6Addr::read(d + 8);
  if (group.is_unspecified()) {
    general_pending_ = true;
  } else if (!group.is_multicast()) {
    ++drop_invalid_;
    return;
  } else {
    // Address-specific (and address-and-source-specific: with EXCLUDE {} we hear every
    // source, so the answer is the same).
    Group* g = find(group);
    if (!g || g->refs == 0 || !reportable(group)) return;
    g->query_pending = true;
  }
  // RFC 3810 6.2: answer at a random time within Maximum Response Delay, or earlier if a
  // response was already scheduled sooner.
  const Nanos deadline = stack_.now() + Nanos(stack_.random().below(uint64_t(std::max<uint32_t>(max_delay_ms, 1)) * kMilli));
  if (!response_timer_.armed() || deadline < response_timer_.deadline()) {
    stack_.timers().arm(response_timer_, deadline);
  }
}

void Mld::on_rx(PacketPtr p, const IpRx& rx) {
  const uint8_t* d = p->data();
  const size_t len = p->size();
  switch (d[0]) {
    case kIcmp6MldQuery:
      ++rx_queries_;
      on_query(d, len, rx);
      return;
    default:
      // RFC 3810 6: MLDv2 hosts neither suppress their reports nor act on others'.
      ++ignored_reports_;
      return;
  }
}

}  // namespace shunt
