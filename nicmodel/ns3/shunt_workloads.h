// Workloads for Shunt hosts in ns-3 (ShuntHost tasks), on non-blocking sockets of the host's
// SocketApi. TCP streams carry tcp_bulk_pattern bytes (stack/harness/tcp_bulk.h) and receivers
// check every byte in order, so a stream that completes is byte-exact end to end; ns-3-native
// hosts run the same pattern (ns3_apps.h), so either side can be either kind of host.
#pragma once
#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nicmodel/ns3/shunt_host.h"
#include "stack/net/addr.h"

namespace nicmodel {

// Sends `bytes` of the pattern seeded by `seed` to addr:port after `start`, then shuts down its
// sending half and closes once the peer closes too. `pattern` false sends zeros (benchmarks that
// compare with ns-3's BulkSendApplication, which sends no pattern either).
struct TcpSendStats {
  uint64_t sent = 0;
  shunt::Nanos connected = -1, finished = -1;  // finished: every byte written and FIN sent
  bool peer_closed = false;
  std::string error;
};
std::shared_ptr<TcpSendStats> AddTcpSender(ShuntHost& host, const shunt::IpAddr& to, uint16_t port,
                                           uint64_t bytes, uint64_t seed = 1, shunt::Nanos start = 0,
                                           size_t chunk = 64 * 1024, bool pattern = true);

// Listens on `port` (both families when `any6`, else IPv4) and accepts any number of streams;
// each is checked against the pattern seeded by `seed` from offset 0 (unless `check` is false:
// bytes are only counted, as ns-3's PacketSink does).
struct TcpStreamStats {
  uint64_t received = 0;
  uint64_t mismatch = UINT64_MAX;  // offset of the first byte that differed
  bool eof = false;
  shunt::Nanos accepted = -1, eof_at = -1;
};
struct TcpSinkStats {
  std::vector<TcpStreamStats> streams;  // in accept order
  std::string error;
  uint64_t total() const;
  size_t complete(uint64_t bytes_each) const;  // streams with exactly that many intact bytes and EOF
};
std::shared_ptr<TcpSinkStats> AddTcpSink(ShuntHost& host, uint16_t port, uint64_t seed = 1, bool any6 = false,
                                         bool check = true);

// Echoes every datagram that arrives on `port` (IPv4 or IPv6 wildcard).
struct UdpEchoStats {
  uint64_t echoed = 0;
  std::string error;
};
std::shared_ptr<UdpEchoStats> AddUdpEcho(ShuntHost& host, uint16_t port, bool v6 = false);

// Sends `count` datagrams of `size` bytes (>= 16) to addr:port, one every `interval` (0: the next
// when the previous one's echo came back, a ping-pong), and checks each echo's bytes. Round
// trips are measured for echoes that come back.
struct UdpClientStats {
  uint64_t sent = 0, echoes = 0, bad_echoes = 0;
  std::vector<shunt::Nanos> rtts;
  std::string error;
};
std::shared_ptr<UdpClientStats> AddUdpClient(ShuntHost& host, const shunt::IpAddr& to, uint16_t port,
                                             uint64_t count, size_t size, shunt::Nanos interval,
                                             shunt::Nanos start = 0);

// sockaddr for addr:port; returns its length.
socklen_t ToSockaddr(const shunt::IpAddr& addr, uint16_t port, sockaddr_storage& ss);

}  // namespace nicmodel
