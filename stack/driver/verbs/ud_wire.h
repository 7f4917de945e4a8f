// How the verbs driver carries the stack's Ethernet frames in UD messages, as IPoIB does
// (RFC 4391 6: a 4-byte encapsulation header in front of the IP packet), and how a peer's
// "MAC" maps to the UD address (GID, QPN) it stands for. Pure functions on bytes: no verbs call,
// unit-tested in tests/unit/verbs_wire.cc. docs/hardware.md ("verbs") describes the design.
//
//   UD message:    [Shunt UD header, 4 bytes][IP packet or ARP message]
//   UD header:     ethertype (be16) | flags (u8: bit 0 = sent to the broadcast group) | 0 (u8)
//   receive buffer [GRH, 40 bytes][UD message]   (RoCEv2/IPv4: GRH bytes 20..39 = the IPv4 header)
//
// A received message becomes an Ethernet frame in place: its 14-byte header is written over the
// last 14 bytes of GRH + UD header (offsets 30..43), so the payload never moves. A frame to send
// becomes a UD message in place: the UD header replaces bytes 10..13 of the Ethernet header.
#pragma once
#include <cstddef>
#include <cstdint>

#include "stack/net/addr.h"

namespace shunt::verbs {

using Gid = Ipv6Addr;  // a GID has the layout of an IPv6 address (RoCE: it is one)

constexpr size_t kGrhLen = 40;
constexpr size_t kUdHeaderLen = 4;
constexpr size_t kEthLen = 14;
// Where the Ethernet header of a received frame starts in the receive buffer.
constexpr size_t kRxFrameOffset = kGrhLen + kUdHeaderLen - kEthLen;  // 30
// Where the UD message of a frame to send starts in the frame.
constexpr size_t kTxMessageOffset = kEthLen - kUdHeaderLen;  // 10
constexpr uint32_t kMulticastQpn = 0xffffff;  // IBA 10.8.1: the QPN of a multicast send
constexpr uint8_t kFlagGroup = 1;

constexpr uint16_t kEtherTypeIpv4 = 0x0800;
constexpr uint16_t kEtherTypeArp = 0x0806;
constexpr uint16_t kEtherTypeIpv6 = 0x86dd;
bool carried_ethertype(uint16_t t);  // IPv4, ARP, IPv6: what the driver carries

// The parsed UD header.
struct UdHeader {
  uint16_t ethertype = 0;
  bool group = false;

  enum class Error { kNone, kTruncated, kReserved, kEthertype };
  // A header at `p` of a message of `len` bytes; kReserved for unknown flags or a nonzero last
  // byte, kEthertype for anything but IPv4, ARP, IPv6.
  static Error parse(const uint8_t* p, size_t len, UdHeader& out);
  void emit(uint8_t* p) const;
};

// The GID of the port that sent a message, from the GRH the device put in front of it. RoCEv2
// over IPv4 (the port's own GID is IPv4-mapped): bytes 20..39 hold the IPv4 header, and the
// source GID is ::ffff:<source address>. Otherwise (RoCEv1, RoCEv2/IPv6, InfiniBand): an IPv6-
// shaped GRH (IBA 8.3.1), SGID at bytes 8..23. False when the GRH is not of the expected form.
bool grh_source(const uint8_t* grh, bool ipv4_grh, Gid& out);

// The MAC a UD address stands for: 02:QQ:QQ:QQ:GG:GG, locally administered, unicast, from the
// 24-bit QPN and the GID's last two bytes (for ::ffff:a.b.c.d, c and d). Both ends compute it
// the same way: a sender's MAC in its ARP messages is the MAC its receivers derive from the
// GRH and the completion's source QPN.
MacAddr ud_mac(const Gid& gid, uint32_t qpn);
// ::ffff:a.b.c.d
Gid ipv4_mapped_gid(Ipv4Addr a);
// The broadcast group's GID: ::ffff:<group> when the port's GID is IPv4-mapped (RoCEv2/IPv4),
// else ff0e::ffff:<group> (an IPv6 multicast GID of global scope).
Gid group_gid(Ipv4Addr group, bool ipv4_gid);

// The Ethernet destination a message sent to the broadcast group had: the multicast MAC of its
// multicast IPv4/IPv6 destination (RFC 1112 6.4, RFC 2464 7), else broadcast (ARP requests, IPv4
// broadcast). `payload` is the IP packet or ARP message.
MacAddr group_destination(uint16_t ethertype, const uint8_t* payload, size_t len);

// A received message, in place, as an Ethernet frame.
struct RxFrame {
  enum class Error { kNone, kRunt, kNoGrh, kBadGrh, kTruncated, kReserved, kEthertype, kOversize };
  Error error = Error::kNone;
  size_t offset = 0;  // where the frame starts in the buffer (kRxFrameOffset)
  size_t len = 0;     // frame length
  Gid source;         // the sender's GID
  MacAddr source_mac;
  bool group = false;
};
// `buf` holds `byte_len` bytes written by the device (GRH + message); the frame is rewritten in
// place when error is kNone. `max_payload`: the largest message body accepted (the MTU).
RxFrame ud_to_ethernet(uint8_t* buf, size_t byte_len, bool grh_present, bool ipv4_grh, uint32_t src_qp,
                       const MacAddr& own_mac, size_t max_payload);

// A frame to send, rewritten in place as a UD message at frame + kTxMessageOffset.
struct TxMessage {
  enum class Error { kNone, kRunt, kEthertype, kOversize };
  Error error = Error::kNone;
  MacAddr destination;
  bool group = false;  // to the broadcast group (broadcast or multicast destination)
  size_t len = 0;      // message length (frame length - kTxMessageOffset)
};
TxMessage ethernet_to_ud(uint8_t* frame, size_t len, size_t max_payload);

// IB MTU enum value (1..5) in bytes; 0 for anything else.
uint32_t ib_mtu_bytes(int mtu_enum);

}  // namespace shunt::verbs
