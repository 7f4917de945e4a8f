// What a NIC with checksum offload does to a frame (ConnectX: the cs_flags of a send WQE and the
// l3_ok/l4_ok bits of a receive CQE). Used by simulated devices, and as the software fallback
// where an offloaded frame does not go through a NIC (looped back to our own stack).
#pragma once
#include <cstdint>

#include "stack/core/buffer.h"

namespace shunt {

// Fills the checksums `tx_flags` (PacketBuf::kTxIpv4Checksum, kTxL4Checksum) ask for in an
// Ethernet frame held in one buffer. Frames it cannot parse are left as they are.
void fill_offloaded_checksums(PacketBuf& frame, uint32_t tx_flags);

// Checks an Ethernet frame's IPv4 header checksum and its TCP/UDP checksum (unfragmented
// packets, IPv4 or IPv6 without extension headers) and returns the PacketBuf::kRx*ChecksumOk
// bits for those that are right. A UDP checksum of zero is left for the stack to judge.
uint32_t verify_checksums(const PacketBuf& frame);

}  // namespace shunt
