// Workloads the scenarios run on any Net (nicmodel/net.h), in virtual time: ping-pong latency (UDP and
// TCP), TCP bulk flows (one flow, or many to one receiver: incast), connection churn, and UDP
// multicast fan-out. Each runs on non-blocking sockets of the hosts' SocketApi, checks what it
// receives (TCP streams carry tcp_bulk_pattern bytes and are compared byte for byte), and
// returns a result with an `error` text instead of throwing when a socket call fails or the
// workload times out. Times are virtual ns. No allocation per packet.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "nicmodel/net.h"
#include "stack/core/clock.h"

namespace shunt::bindings {

using nicmodel::Net;

struct PingPongSpec {
  size_t client = 0, server = 1;  // host indexes
  size_t payload = 64;            // bytes per message (UDP: >= 8, carries a sequence number)
  uint64_t count = 1000;          // round trips measured
  uint64_t warmup = 10;           // round trips before measuring (neighbour resolution, windows)
  bool ipv6 = false;
  uint16_t port = 7000;
  // Per round trip; 0: 10 ms for UDP (a ping with no pong is counted lost), 10 s for TCP (a lost
  // segment waits for a retransmission timeout; a round trip that still fails is an error).
  Nanos timeout = 0;
};

struct LatencyResult {
  std::vector<Nanos> samples;  // one per measured round trip (or one-way delivery), in order
  uint64_t sent = 0, completed = 0, lost = 0;
  Nanos started = 0, finished = 0;  // virtual time of the measured part
  std::string error;
  bool ok() const { return error.empty(); }
};

// UDP: client sends `payload` bytes, server echoes; RTT per round trip.
LatencyResult udp_pingpong(Net& net, const PingPongSpec& spec);
// TCP (TCP_NODELAY both sides, one connection): request of `payload` bytes, response of the same
// size; RTT per round trip. A lost segment is TCP's to repair, so `lost` stays 0.
LatencyResult tcp_pingpong(Net& net, const PingPongSpec& spec);

struct Flow {
  size_t from = 0, to = 1;
  uint64_t bytes = 1 << 20;
};

struct BulkSpec {
  std::vector<Flow> flows{Flow{}};  // one connection each; several to one host = incast
  uint16_t port = 5001;             // the receivers listen here
  bool ipv6 = false;
  size_t chunk = 64 * 1024;         // bytes per send/recv call
  int sndbuf = 0, rcvbuf = 0;       // SO_SNDBUF / SO_RCVBUF when > 0
  Nanos start_spread = 0;           // flow i starts at i * start_spread after the first
  Nanos timeout = 60 * kSecond;
};

struct FlowResult {
  uint64_t sent = 0, received = 0;
  uint64_t mismatch = UINT64_MAX;  // offset of the first byte that differed from the pattern
  Nanos started = 0, connected = -1, finished = -1;  // finished: last byte received
  bool completed = false;          // every byte arrived intact
  double goodput_bps() const;      // received * 8 / (finished - started)
};

struct BulkResult {
  std::vector<FlowResult> flows;
  uint64_t bytes = 0;          // received over all flows
  Nanos started = 0, finished = -1;  // first flow's start, last flow's last byte
  uint64_t retransmits = 0;    // TCP segments retransmitted, all senders
  bool completed = false;      // every flow completed
  std::string error;
  bool ok() const { return completed && error.empty(); }
  double goodput_bps() const;  // bytes * 8 / (finished - started)
};

// Every flow connects from `from` to `to`:port, sends `bytes` of the pattern, shuts down its
// sending half; done when every receiver has every byte and EOF.
BulkResult tcp_bulk(Net& net, const BulkSpec& spec);

struct ChurnSpec {
  size_t client = 0, server = 1;
  uint64_t count = 10'000;  // connections opened and closed
  uint32_t parallel = 1;    // open at once
  size_t request = 0;       // bytes the client sends and the server echoes per connection (0: none)
  bool ipv6 = false;
  uint16_t port = 6000;
  Nanos timeout = 600 * kSecond;
};

struct ChurnResult {
  uint64_t opened = 0, closed = 0, failed = 0;
  std::vector<Nanos> connect_times;  // connect() to established, per connection
  Nanos started = 0, finished = 0;
  double wall_seconds = 0;           // real time the run took (the simulator's own speed)
  std::string error;
  bool ok() const { return error.empty() && failed == 0 && closed == opened; }
  double per_virtual_second() const;
};

// The client opens `count` connections, `parallel` at a time; each exchanges `request` bytes
// and the client closes it (the server closes on EOF).
ChurnResult churn(Net& net, const ChurnSpec& spec);

struct MulticastSpec {
  size_t sender = 0;
  std::vector<size_t> receivers{1};
  std::string group = "239.1.2.3";  // or an IPv6 multicast group (ff1e::...)
  uint16_t port = 9000;
  size_t payload = 64;   // bytes (>= 16: sequence number and send time)
  uint64_t count = 1000;
  Nanos interval = 10 * kMicro;  // between sends
  Nanos timeout = 10 * kSecond;  // for the whole run
};

struct MulticastResult {
  // Per receiver, in the order of spec.receivers: datagrams received, and one-way latency
  // (send to receive, virtual time) of each.
  std::vector<uint64_t> received;
  std::vector<std::vector<Nanos>> latency;
  uint64_t sent = 0;
  uint64_t duplicates = 0, corrupt = 0;  // over all receivers
  std::string error;
  bool ok() const { return error.empty(); }
};

// Receivers join `group` (IGMP/MLD through the stack), the sender sends `count` datagrams.
MulticastResult multicast_fanout(Net& net, const MulticastSpec& spec);

}  // namespace shunt::bindings
