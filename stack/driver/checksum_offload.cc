#include "stack/driver/checksum_offload.h"

#include "stack/net/checksum.h"
#include "stack/net/ethernet.h"
#include "stack/net/ip_rx.h"

namespace shunt {

namespace {

// Where the L3 and L4 headers of a frame are, if it is a packet whose checksums a NIC handles.
struct Layout {
  uint8_t* l3 = nullptr;
  size_t l3_len = 0;
  bool v4 = false;
  uint8_t* l4 = nullptr;  // null: a fragment, or not TCP/UDP
  size_t l4_len = 0;
  uint8_t proto = 0;
  IpAddr src, dst;
};

bool locate(uint8_t* f, size_t len, Layout& out) {
  auto eth = EthRepr::parse(f, len);
  if (!eth.repr) return false;
  uint8_t* ip = f + eth.repr->header_len;
  size_t avail = len - eth.repr->header_len;
  if (eth.repr->ethertype == kEtherTypeIpv4) {
    if (avail < 20 || (ip[0] >> 4) != 4) return false;
    size_t hl = size_t(ip[0] & 15) * 4;
    size_t total = load16(ip + 2);
    if (hl < 20 || total < hl || total > avail) return false;
    out.v4 = true;
    out.l3 = ip;
    out.l3_len = hl;
    out.proto = ip[9];
    out.src = Ipv4Addr::read(ip + 12);
    out.dst = Ipv4Addr::read(ip + 16);
    if ((load16(ip + 6) & 0x3fff) == 0) {  // neither MF nor an offset: not a fragment
      out.l4 = ip + hl;
      out.l4_len = total - hl;
    }
    return true;
  }
  if (eth.repr->ethertype == kEtherTypeIpv6) {
    if (avail < 40 || (ip[0] >> 4) != 6) return false;
    size_t payload = load16(ip + 4);
    if (payload + 40 > avail) return false;
    out.l3 = ip;
    out.l3_len = 40;
    out.proto = ip[6];  // extension headers: not offloaded
    out.src = Ipv6Addr::read(ip + 8);
    out.dst = Ipv6Addr::read(ip + 24);
    out.l4 = ip + 40;
    out.l4_len = payload;
    return true;
  }
  return false;
}

// Offset of the checksum field in a TCP or UDP header, or 0 if neither.
size_t checksum_offset(uint8_t proto, size_t l4_len) {
  if (proto == kProtoUdp && l4_len >= 8) return 6;
  if (proto == kProtoTcp && l4_len >= 20) return 16;
  return 0;
}

}  // namespace

void fill_offloaded_checksums(std::span<uint8_t> frame, bool ipv4_header, bool l4) {
  Layout l;
  if (!locate(frame.data(), frame.size(), l)) return;
  if (ipv4_header && l.v4) {
    store16(l.l3 + 10, 0);
    store16(l.l3 + 10, checksum(l.l3, l.l3_len));
  }
  if (l4 && l.l4) {
    size_t off = checksum_offset(l.proto, l.l4_len);
    if (!off) return;
    store16(l.l4 + off, 0);
    uint16_t c = checksum_fold(checksum_add(pseudo_header_sum(l.src, l.dst, l.proto, uint32_t(l.l4_len)), l.l4, l.l4_len));
    if (c == 0 && l.proto == kProtoUdp) c = 0xffff;  // RFC 768: zero means "none"
    store16(l.l4 + off, c);
  }
}

ChecksumCheck check_checksums(std::span<const uint8_t> frame) {
  ChecksumCheck r;
  Layout l;
  if (!locate(const_cast<uint8_t*>(frame.data()), frame.size(), l)) return r;
  r.ipv4 = l.v4;
  r.ipv6 = !l.v4;
  r.l3_ok = !l.v4 || checksum(l.l3, l.l3_len) == 0;
  if (!l.l4) return r;
  size_t off = checksum_offset(l.proto, l.l4_len);
  if (!off) return r;
  r.l4_proto = l.proto;
  r.l4_ok = !(l.proto == kProtoUdp && load16(l.l4 + off) == 0) &&
            checksum_fold(checksum_add(pseudo_header_sum(l.src, l.dst, l.proto, uint32_t(l.l4_len)), l.l4, l.l4_len)) == 0;
  return r;
}

void fill_offloaded_checksums(PacketBuf& frame, uint32_t tx_flags) {
  if (frame.chain) return;
  fill_offloaded_checksums(std::span<uint8_t>(frame.data(), frame.size()), tx_flags & PacketBuf::kTxIpv4Checksum,
                           tx_flags & PacketBuf::kTxL4Checksum);
}

uint32_t verify_checksums(const PacketBuf& frame) {
  if (frame.chain) return 0;
  ChecksumCheck c = check_checksums(frame.bytes());
  return (c.ipv4 && c.l3_ok ? PacketBuf::kRxL3ChecksumOk : 0) | (c.l4_ok ? PacketBuf::kRxL4ChecksumOk : 0);
}

}  // namespace shunt
