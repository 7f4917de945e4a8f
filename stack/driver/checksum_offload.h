// What a NIC with checksum offload does to a frame (ConnectX: the cs_flags of a send WQE and the
// l3_ok/l4_ok bits of a receive CQE). Used by simulated devices, and as the software fallback
// where an offloaded frame does not go through a NIC (looped back to our own stack).
#pragma once
#include <cstdint>
#include <span>

#include "stack/core/buffer.h"

namespace shunt {

// Fills the checksums `tx_flags` (PacketBuf::kTxIpv4Checksum, kTxL4Checksum) ask for in an
// Ethernet frame held in one buffer. Frames it cannot parse are left as they are.
void fill_offloaded_checksums(PacketBuf& frame, uint32_t tx_flags);

// Checks an Ethernet frame's IPv4 header checksum and its TCP/UDP checksum (unfragmented
// packets, IPv4 or IPv6 without extension headers) and returns the PacketBuf::kRx*ChecksumOk
// bits for those that are right. A UDP checksum of zero is left for the stack to judge.
uint32_t verify_checksums(const PacketBuf& frame);

// The same on a frame of any length as bytes (the simulated ConnectX: jumbo frames do not fit a
// PacketBuf). `ipv4_header` / `l4` say which checksums to fill.
void fill_offloaded_checksums(std::span<uint8_t> frame, bool ipv4_header, bool l4);

// What a receiving NIC finds in a frame: the L3 and L4 header types it recognised and which
// checksums are right. l3_ok: an IPv4 header checksum that verifies, or a well-formed IPv6
// header. l4_ok: a TCP or UDP checksum that verifies (a UDP checksum of zero never does).
struct ChecksumCheck {
  bool ipv4 = false, ipv6 = false;
  uint8_t l4_proto = 0;  // kProtoTcp or kProtoUdp when the NIC parses that header, else 0
  bool l3_ok = false, l4_ok = false;
};
ChecksumCheck check_checksums(std::span<const uint8_t> frame);

}  // namespace shunt
