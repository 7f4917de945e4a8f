#include "stack/driver/verbs/ud_wire.h"

#include <cstring>

namespace shunt::verbs {

bool carried_ethertype(uint16_t t) { return t == kEtherTypeIpv4 || t == kEtherTypeArp || t == kEtherTypeIpv6; }

UdHeader::Error UdHeader::parse(const uint8_t* p, size_t len, UdHeader& out) {
  if (len < kUdHeaderLen) return Error::kTruncated;
  out.ethertype = load16(p);
  // RFC 4391 6 reserves the last two bytes (zero); the first of them carries our one flag.
  if ((p[2] & ~kFlagGroup) != 0 || p[3] != 0) return Error::kReserved;
  out.group = (p[2] & kFlagGroup) != 0;
  if (!carried_ethertype(out.ethertype)) return Error::kEthertype;
  return Error::kNone;
}

void UdHeader::emit(uint8_t* p) const {
  store16(p, ethertype);
  p[2] = group ? kFlagGroup : 0;
  p[3] = 0;
}

bool grh_source(const uint8_t* grh, bool ipv4_grh, Gid& out) {
  // RoCEv2 annex A17.4.5.1: over IPv4, the IPv4 header occupies the last 20 bytes of the GRH
  // area (the first 20 are undefined); version 4, no options, as the device built it.
  if (ipv4_grh && grh[20] == 0x45) {
    out = ipv4_mapped_gid(Ipv4Addr::read(grh + 20 + 12));
    return true;
  }
  // IBA 8.3.1 (also RoCEv1 and RoCEv2/IPv6): IPVer 6, SGID at bytes 8..23.
  if ((grh[0] >> 4) != 6) return false;
  out = Gid::read(grh + 8);
  return true;
}

MacAddr ud_mac(const Gid& gid, uint32_t qpn) {
  return MacAddr{{0x02, uint8_t(qpn >> 16), uint8_t(qpn >> 8), uint8_t(qpn), gid.b[14], gid.b[15]}};
}

Gid ipv4_mapped_gid(Ipv4Addr a) {
  Gid g;
  g.b[10] = 0xff;
  g.b[11] = 0xff;
  store32(g.b.data() + 12, a.v);
  return g;
}

Gid group_gid(Ipv4Addr group, bool ipv4_gid) {
  Gid g = ipv4_mapped_gid(group);
  if (!ipv4_gid) {
    g.b[0] = 0xff;
    g.b[1] = 0x0e;
  }
  return g;
}

MacAddr group_destination(uint16_t ethertype, const uint8_t* payload, size_t len) {
  if (ethertype == kEtherTypeIpv4 && len >= 20) {
    Ipv4Addr dst = Ipv4Addr::read(payload + 16);
    if (dst.is_multicast()) return ipv4_multicast_mac(dst);
  } else if (ethertype == kEtherTypeIpv6 && len >= 40) {
    Ipv6Addr dst = Ipv6Addr::read(payload + 24);
    if (dst.is_multicast()) return dst.multicast_mac();
  }
  return MacAddr::broadcast();
}

RxFrame ud_to_ethernet(uint8_t* buf, size_t byte_len, bool grh_present, bool ipv4_grh, uint32_t src_qp,
                       const MacAddr& own_mac, size_t max_payload) {
  RxFrame r;
  if (!grh_present) {
    // UD on RoCE always carries a GRH; without one there is no source GID to answer.
    r.error = RxFrame::Error::kNoGrh;
    return r;
  }
  if (byte_len < kGrhLen + kUdHeaderLen) {
    r.error = RxFrame::Error::kRunt;
    return r;
  }
  if (!grh_source(buf, ipv4_grh, r.source)) {
    r.error = RxFrame::Error::kBadGrh;
    return r;
  }
  UdHeader h;
  switch (UdHeader::parse(buf + kGrhLen, byte_len - kGrhLen, h)) {
    case UdHeader::Error::kNone: break;
    case UdHeader::Error::kTruncated: r.error = RxFrame::Error::kTruncated; return r;
    case UdHeader::Error::kReserved: r.error = RxFrame::Error::kReserved; return r;
    case UdHeader::Error::kEthertype: r.error = RxFrame::Error::kEthertype; return r;
  }
  const size_t payload_len = byte_len - kGrhLen - kUdHeaderLen;
  if (payload_len > max_payload) {
    r.error = RxFrame::Error::kOversize;
    return r;
  }
  const uint8_t* payload = buf + kGrhLen + kUdHeaderLen;
  r.group = h.group;
  r.source_mac = ud_mac(r.source, src_qp & 0xffffff);
  const MacAddr dst = h.group ? group_destination(h.ethertype, payload, payload_len) : own_mac;
  // Everything needed from the GRH and the UD header has been read: overwrite them.
  uint8_t* eth = buf + kRxFrameOffset;
  std::memcpy(eth, dst.b.data(), 6);
  std::memcpy(eth + 6, r.source_mac.b.data(), 6);
  store16(eth + 12, h.ethertype);
  r.offset = kRxFrameOffset;
  r.len = kEthLen + payload_len;
  return r;
}

TxMessage ethernet_to_ud(uint8_t* frame, size_t len, size_t max_payload) {
  TxMessage m;
  if (len < kEthLen) {
    m.error = TxMessage::Error::kRunt;
    return m;
  }
  const uint16_t ethertype = load16(frame + 12);
  if (!carried_ethertype(ethertype)) {
    m.error = TxMessage::Error::kEthertype;
    return m;
  }
  if (len - kEthLen > max_payload) {
    m.error = TxMessage::Error::kOversize;
    return m;
  }
  m.destination = MacAddr::read(frame);
  m.group = m.destination.is_multicast();
  UdHeader h;
  h.ethertype = ethertype;
  h.group = m.group;
  h.emit(frame + kTxMessageOffset);
  m.len = len - kTxMessageOffset;
  return m;
}

uint32_t ib_mtu_bytes(int mtu_enum) {
  if (mtu_enum < 1 || mtu_enum > 5) return 0;
  return 128u << mtu_enum;  // IBV_MTU_256 = 1 ... IBV_MTU_4096 = 5
}

}  // namespace shunt::verbs
