// A UDP ping-pong workload over the harness: stack `client` sends a datagram to stack `server`,
// which echoes it; the client measures the round trip in virtual time. Used by `shunt demo`, the
// benchmark and the determinism tests. Each ping carries its sequence number in its first 8 bytes
// so a late pong is recognised and ignored; a ping whose pong does not arrive within the timeout
// is counted lost and the next one is sent.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "stack/core/clock.h"

namespace shunt {

class Harness;
class SocketApi;

struct PingPongOptions {
  size_t client = 0;  // stack index
  size_t server = 1;
  size_t payload = 64;  // UDP payload bytes (>= 8)
  uint16_t client_port = 40000;
  uint16_t server_port = 7;
  bool ipv6 = false;  // over fd00::N instead of 10.0.0.N
  Nanos timeout = 0;  // per ping; 0: 10 ms plus four round trips at the link's rate and delay
  Nanos first_timeout = 30 * kSecond;  // the first ping waits for neighbour resolution
};

struct PingPongResult {
  uint64_t sent = 0;
  uint64_t completed = 0;
  uint64_t lost = 0;
  std::vector<Nanos> rtts;          // one per completed round trip, in order
  Nanos started = 0, finished = 0;  // virtual time
  std::string error;                // set when a socket call failed; the run stopped there
  bool ok() const { return error.empty(); }
  // Nearest-rank percentile (0 < p <= 1) of the round-trip times; 0 if there are none.
  Nanos percentile(double p) const;
};

class UdpPingPong {
 public:
  UdpPingPong(Harness& h, const PingPongOptions& o = PingPongOptions{});
  ~UdpPingPong();
  UdpPingPong(const UdpPingPong&) = delete;
  UdpPingPong& operator=(const UdpPingPong&) = delete;

  // Opens and binds both sockets; false (and error()) on failure.
  bool setup();
  // Runs `count` more round trips and adds them to the result.
  const PingPongResult& run(uint64_t count);
  const PingPongResult& result() const { return result_; }
  const std::string& error() const { return result_.error; }

 private:
  bool ping(uint64_t seq, Nanos timeout);
  void serve();
  bool fail(const char* what, long err);

  Harness& h_;
  PingPongOptions o_;
  SocketApi* client_api_ = nullptr;
  SocketApi* server_api_ = nullptr;
  int client_fd_ = -1, server_fd_ = -1;
  std::vector<uint8_t> out_, in_, echo_;
  uint8_t server_addr_[28] = {};  // sockaddr_in or sockaddr_in6
  uint32_t server_addr_len_ = 0;
  PingPongResult result_;
  uint64_t seq_ = 0;
};

}  // namespace shunt
