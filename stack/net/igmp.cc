#include "stack/net/igmp.h"

#include <algorithm>

#include "stack/net/checksum.h"
#include "stack/net/igmp_wire.h"
#include "stack/net/ipv4.h"
#include "stack/net/stack.h"

namespace shunt {

Igmp::Igmp(Stack& stack)
    : stack_(stack),
      change_timer_([this](Nanos now) { on_change_timer(now); }),
      query_timer_([this](Nanos now) { on_query_timer(now); }),
      rx_messages_(stack.counters().add("igmp.rx_messages")),
      rx_queries_(stack.counters().add("igmp.rx_queries")),
      rx_ignored_(stack.counters().add("igmp.rx_ignored")),
      tx_reports_(stack.counters().add("igmp.tx_reports")),
      drop_truncated_(stack.counters().add("igmp.drop.truncated")),
      drop_bad_checksum_(stack.counters().add("igmp.drop.bad_checksum")),
      drop_bad_length_(stack.counters().add("igmp.drop.bad_length")),
      drop_bad_group_(stack.counters().add("igmp.drop.bad_group")) {}

Igmp::~Igmp() = default;

// ------------------------------------------------------------------------------------------
// Membership (RFC 3376 5.1)

void Igmp::join(Ipv4Addr group) {
  if (!group.is_multicast()) return;
  for (auto& g : groups_) {
    if (g.addr == group) {
      ++g.refs;
      return;
    }
  }
  groups_.push_back({group, 1, kNever});
  // RFC 3376 5: 224.0.0.1 is never reported.
  if (group != kIgmpAllSystems) state_change(group, kIgmpChangeToExclude);  // TO_EX {}
}

void Igmp::leave(Ipv4Addr group) {
  for (auto it = groups_.begin(); it != groups_.end(); ++it) {
    if (it->addr != group) continue;
    if (--it->refs > 0) return;
    groups_.erase(it);
    if (group != kIgmpAllSystems) state_change(group, kIgmpChangeToInclude);  // TO_IN {}
    arm_query_timer();
    return;
  }
}

void Igmp::state_change(Ipv4Addr group, uint8_t record_type) {
  // RFC 3376 5.1: the report is sent at once and retransmitted [Robustness Variable] - 1 more
  // times at random intervals within the Unsolicited Report Interval; a newer change for the
  // same group replaces the pending one.
  std::erase_if(changes_, [&](const Change& c) { return c.group == group; });
  send_report({{record_type, group}});
  if (robustness_ > 1) {
    changes_.push_back({group, record_type, robustness_ - 1});
    const Nanos at = stack_.now() + 1 + Nanos(stack_.random().below(uint64_t(kUnsolicitedReportInterval)));
    if (!change_timer_.armed() || change_timer_.deadline() > at) stack_.timers().arm(change_timer_, at);
  }
}

void Igmp::on_change_timer(Nanos now) {
  std::vector<Record> recs;
  for (auto& c : changes_) {
    recs.push_back({c.record_type, c.group});
    --c.left;
  }
  std::erase_if(changes_, [](const Change& c) { return c.left <= 0; });
  if (!recs.empty()) send_report(recs);
  if (!changes_.empty()) {
    stack_.timers().arm(change_timer_, now + 1 + Nanos(stack_.random().below(uint64_t(kUnsolicitedReportInterval))));
  }
}

// ------------------------------------------------------------------------------------------
// Queries (RFC 3376 5.2)

void Igmp::on_rx(PacketPtr p, const IpRx& rx) {
  ++rx_messages_;
  const size_t len = p->size();
  if (len < kIgmpV12Len) {
    ++drop_truncated_;
    return;
  }
  if (checksum_fold(checksum_chain(0, *p)) != 0) {
    ++drop_bad_checksum_;
    return;
  }
  const uint8_t* m = p->data();
  if (m[0] != kIgmpQuery) {
    ++rx_ignored_;  // other hosts' reports: IGMPv3 hosts do not suppress theirs
    return;
  }
  IgmpQuery q;
  switch (IgmpQuery::parse(m, len, q)) {
    case IgmpError::kNone: break;
    case IgmpError::kTruncated: ++drop_truncated_; return;
    case IgmpError::kBadLength: ++drop_bad_length_; return;
    case IgmpError::kBadGroup: ++drop_bad_group_; return;
  }
  ++rx_queries_;
  (void)rx;
  // RFC 3376 4.1.6: adopt the querier's robustness variable.
  if (q.qrv) robustness_ = q.qrv;
  const Nanos now = stack_.now();
  const Nanos at = now + Nanos(stack_.random().below(uint64_t(q.max_resp)));
  if (q.group.is_unspecified()) {
    // Rule 1 and 2: one pending answer to general queries, the sooner one.
    general_at_ = std::min(general_at_, at);
  } else {
    if (general_at_ <= at) return;  // rule 1: the general answer covers it
    for (auto& g : groups_) {
      // Rules 3-5. We are in EXCLUDE {} mode, so a group-and-source-specific query is answered
      // like a group-specific one: with the whole group.
      if (g.addr == q.group && g.addr != kIgmpAllSystems) g.report_at = std::min(g.report_at, at);
    }
  }
  arm_query_timer();
}

void Igmp::arm_query_timer() {
  Nanos next = general_at_;
  for (const auto& g : groups_) next = std::min(next, g.report_at);
  if (next == kNever) {
    query_timer_.cancel();
  } else if (!query_timer_.armed() || query_timer_.deadline() != next) {
    stack_.timers().arm(query_timer_, next);
  }
}

void Igmp::on_query_timer(Nanos now) {
  std::vector<Record> recs;
  const bool general = general_at_ <= now;
  if (general) general_at_ = kNever;
  for (auto& g : groups_) {
    if (g.addr == kIgmpAllSystems) continue;
    if (general || g.report_at <= now) {
      recs.push_back({kIgmpModeIsExclude, g.addr});  // IS_EX {}: current state, any source
      g.report_at = kNever;
    }
  }
  if (!recs.empty()) send_report(recs);
  arm_query_timer();
}

void Igmp::send_report(const std::vector<Record>& recs) {
  // RFC 3376 4.2: to 224.0.0.22, TTL 1, Router Alert; as many records per report as fit.
  const size_t mtu = std::min<size_t>(stack_.mtu(), 1500);
  const size_t per = std::max<size_t>(1, (mtu - 24 - kIgmpV3ReportHeaderLen) / kIgmpGroupRecordLen);
  for (size_t i = 0; i < recs.size(); i += per) {
    const size_t n = std::min(per, recs.size() - i);
    PacketPtr p = stack_.alloc_tx();
    if (!p) return;
    const size_t len = kIgmpV3ReportHeaderLen + n * kIgmpGroupRecordLen;
    uint8_t* m = p->append(len);
    m[0] = kIgmpV3Report;
    m[1] = 0;
    store16(m + 2, 0);
    store16(m + 4, 0);
    store16(m + 6, uint16_t(n));
    for (size_t k = 0; k < n; ++k) {
      uint8_t* r = m + kIgmpV3ReportHeaderLen + k * kIgmpGroupRecordLen;
      r[0] = recs[i + k].type;
      r[1] = 0;  // aux data len
      store16(r + 2, 0);  // number of sources
      recs[i + k].group.write(r + 4);
    }
    store16(m + 2, checksum(m, len));
    Ipv4Tx tx;
    tx.dst = kIgmpV3Routers;
    tx.proto = kProtoIgmp;
    tx.ttl = 1;
    tx.tos = 0xc0;
    tx.router_alert = true;
    tx.multicast_loop = false;
    if (stack_.ipv4().output(std::move(p), tx) == 0) ++tx_reports_;
  }
}

}  // namespace shunt
