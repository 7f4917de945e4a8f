// A stand-in for a program under the preload library, for the `shunt stat` tests: two stacks on
// the virtual-time harness with a listener, an established TCP connection with unread data, and
// a UDP socket, published through StatsPublisher under fake fd numbers (handle + 10). It prints
// "ready <pid>" once the first snapshot is out, republishes every 20 ms, and exits when stdin
// closes (or is killed, which leaves its object behind, as a crash would).
#include <arpa/inet.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "stack/core/config.h"
#include "stack/harness/harness.h"
#include "stack/net/stack.h"
#include "stack/preload/stats_shm.h"
#include "stack/socket/socket_api.h"

using namespace shunt;

namespace {
sockaddr_in v4(Ipv4Addr ip, uint16_t port) {
  sockaddr_in s{};
  s.sin_family = AF_INET;
  s.sin_port = htons(port);
  s.sin_addr.s_addr = htonl(ip.v);
  return s;
}
const sockaddr* sa(const sockaddr_in& s) { return reinterpret_cast<const sockaddr*>(&s); }
}  // namespace

int main(int argc, char** argv) {
  const char* program = argc > 1 ? argv[1] : "stat_publisher";
  HarnessOptions o;
  o.stacks = 2;
  o.config.dad_transmits = 0;
  Harness h(o);
  SocketApi server(h.stack(1)), client(h.stack(0));
  h.run_for(10 * kMilli);

  const int l = server.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  const sockaddr_in any = v4(Ipv4Addr{}, 5001);
  if (server.bind(l, sa(any), sizeof any) < 0 || server.listen(l, 8) < 0) return 1;
  const int c = client.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  const sockaddr_in to = v4(Harness::ipv4_of(1), 5001);
  client.connect(c, sa(to), sizeof to);
  int a = -1;
  h.run_until([&] { return (a = server.accept(l, nullptr, nullptr, SOCK_NONBLOCK)) >= 0; },
              kSecond);
  if (a < 0) return 1;
  client.send(c, "hello, stat", 11, 0);
  h.run_until(
      [&] {
        int n = 0;
        server.ioctl(a, FIONREAD, &n);
        return n == 11;
      },
      kSecond);
  const int u = server.socket(AF_INET, SOCK_DGRAM, 0);
  const sockaddr_in ua = v4(Harness::ipv4_of(1), 7001);
  if (server.bind(u, sa(ua), sizeof ua) < 0) return 1;

  std::string err;
  auto pub = stats::StatsPublisher::open(program, err);
  if (!pub) {
    std::fprintf(stderr, "stat_publisher: %s\n", err.c_str());
    return 1;
  }
  auto handle_of = [&](int fd) { return fd >= 10 && server.is_socket(fd - 10) ? fd - 10 : -1; };
  pub->publish(server, h.stack(1).counters(), handle_of, 64);
  std::printf("ready %d\n", int(::getpid()));
  std::fflush(stdout);
  for (;;) {
    pollfd p{0, POLLIN, 0};
    if (::poll(&p, 1, 20) != 0) break;  // stdin readable or closed
    pub->publish(server, h.stack(1).counters(), handle_of, 64);
  }
  return 0;
}
