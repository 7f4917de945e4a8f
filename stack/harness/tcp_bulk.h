// A TCP bulk-transfer workload over the harness, through the socket API: stack `client` connects
// to stack `server`, then N bytes flow one way, the other, or both at once. Every byte is a
// seeded function of its offset and direction (tcp_bulk_pattern), and the receiver checks each
// byte in order as it arrives, so a transfer that completes is byte-exact end to end. All calls
// are non-blocking; the workload pumps the sockets between harness steps. Used by the TCP tests,
// `shunt demo` style tools and benchmarks.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "stack/core/clock.h"

namespace shunt {

class Harness;
class SocketApi;

// Byte `offset` of the stream seeded by `seed`, for `len` bytes starting there.
void tcp_bulk_pattern(uint64_t seed, uint64_t offset, uint8_t* out, size_t len);

struct TcpBulkOptions {
  size_t client = 0;  // stack index
  size_t server = 1;
  bool ipv6 = false;  // over fd00::N instead of 10.0.0.N
  uint16_t port = 5001;
  uint64_t client_to_server = 1 << 20;  // bytes
  uint64_t server_to_client = 0;
  uint64_t seed = 1;                   // of the byte pattern (each direction derives its own)
  size_t chunk = 64 * 1024;            // bytes per send/recv call
  int sndbuf = 0, rcvbuf = 0;          // SO_SNDBUF / SO_RCVBUF on both sides when > 0
  bool nodelay = false;                // TCP_NODELAY on both sides
  // Each side shuts down its sending half after its last byte; the transfer is done when both
  // sides have seen EOF. Without it, done when every byte has arrived.
  bool shutdown_at_end = true;
  // Close both sockets once done (and run until they are gone or `linger` passed).
  bool close_at_end = true;
  Nanos linger = 5 * kSecond;
  // The server stops reading after this many bytes for `reader_pause` of virtual time (a
  // receiver that stalls: the window closes, the sender probes), then resumes.
  uint64_t reader_pause_at = UINT64_MAX;
  Nanos reader_pause = 0;
  Nanos timeout = 600 * kSecond;  // virtual time for the whole transfer
};

struct TcpBulkResult {
  uint64_t sent_c2s = 0, received_c2s = 0;  // bytes
  uint64_t sent_s2c = 0, received_s2c = 0;
  bool eof_at_server = false, eof_at_client = false;
  // Offset of the first byte that differed from the pattern, per direction (UINT64_MAX: none).
  uint64_t mismatch_c2s = UINT64_MAX, mismatch_s2c = UINT64_MAX;
  // FNV-1a of every byte received, per direction (and of every byte sent, to compare).
  uint64_t hash_sent_c2s = 0, hash_received_c2s = 0, hash_sent_s2c = 0, hash_received_s2c = 0;
  Nanos started = 0, connected = 0, finished = 0;  // virtual time
  bool completed = false;  // every byte arrived intact (and EOF, with shutdown_at_end)
  std::string error;       // a socket call failed or the transfer timed out: where and why
  bool ok() const { return completed && error.empty(); }
  // Goodput of the slower direction, in bits per second of virtual time.
  double goodput_bps() const;
};

class TcpBulk {
 public:
  // `client_api`/`server_api`: the socket APIs to use, or null to make private ones.
  TcpBulk(Harness& h, const TcpBulkOptions& o = TcpBulkOptions{}, SocketApi* client_api = nullptr,
          SocketApi* server_api = nullptr);
  ~TcpBulk();
  TcpBulk(const TcpBulk&) = delete;
  TcpBulk& operator=(const TcpBulk&) = delete;

  // Listens, connects and runs the transfer to its end or the timeout.
  const TcpBulkResult& run();
  const TcpBulkResult& result() const { return r_; }
  // The connected sockets (valid after run() unless close_at_end), and the listener.
  int client_socket() const { return client_fd_; }
  int server_socket() const { return server_fd_; }
  int listen_socket() const { return listen_fd_; }
  SocketApi& client_api() { return *capi_; }
  SocketApi& server_api() { return *sapi_; }

 private:
  struct Direction {
    uint64_t seed = 0;
    uint64_t total = 0;
    uint64_t sent = 0, received = 0;
    bool shut = false;  // SHUT_WR done
    bool eof = false;
    uint64_t mismatch = UINT64_MAX;
    uint64_t hash_sent = 0, hash_received = 0;
    // The pattern from stream offset gen_off, generated once and sent from until used up
    // (most send attempts find the buffer full and must cost next to nothing).
    std::vector<uint8_t> out;
    uint64_t gen_off = 0;
    size_t gen_len = 0;
  };
  bool setup();
  bool pump();  // one round of non-blocking calls; true when the transfer is done
  bool send_side(SocketApi& api, size_t stack, int fd, Direction& d);
  bool recv_side(SocketApi& api, size_t stack, int fd, Direction& d, bool paused);
  bool fail(const char* what, long err);
  void finish();

  Harness& h_;
  TcpBulkOptions o_;
  SocketApi* capi_;
  SocketApi* sapi_;
  bool own_capi_ = false, own_sapi_ = false;
  int listen_fd_ = -1, client_fd_ = -1, server_fd_ = -1;
  bool connected_ = false;
  Direction c2s_, s2c_;
  Nanos pause_until_ = -1;  // -1: not paused yet
  std::vector<uint8_t> in_, expect_;
  TcpBulkResult r_;
};

}  // namespace shunt
