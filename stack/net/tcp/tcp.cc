// Placeholder bodies of the socket-facing API while the engine lands.
#include "stack/net/tcp/tcp.h"

#include <cerrno>

#include "stack/net/stack.h"

namespace shunt {

struct TcpCounters {};
struct Tcp::Impl {};

const char* tcp_state_name(TcpState s) {
  static const char* const kNames[] = {"CLOSED",     "LISTEN",     "SYN_SENT", "SYN_RECEIVED",
                                       "ESTABLISHED", "FIN_WAIT_1", "FIN_WAIT_2", "CLOSE_WAIT",
                                       "CLOSING",    "LAST_ACK",   "TIME_WAIT"};
  return kNames[size_t(s)];
}

Tcp::Tcp(Stack& stack) : stack_(stack), counters_(new TcpCounters), impl_(new Impl) {}
Tcp::~Tcp() = default;
void Tcp::on_rx(PacketPtr, const IpRx&) {}
void Tcp::on_icmp_error(int, uint32_t, const uint8_t*, size_t, const IpRx&) {}
TcpSocket* Tcp::open(Family) { return nullptr; }
int Tcp::bind(TcpSocket&, const IpAddr&, uint16_t) { return -EOPNOTSUPP; }
int Tcp::listen(TcpSocket&, int) { return -EOPNOTSUPP; }
TcpSocket* Tcp::accept(TcpSocket&, int* err) {
  *err = -EOPNOTSUPP;
  return nullptr;
}
int Tcp::connect(TcpSocket&, const IpAddr&, uint16_t) { return -EOPNOTSUPP; }
ssize_t Tcp::send(TcpSocket&, const iovec*, size_t, int) { return -EOPNOTSUPP; }
ssize_t Tcp::recv(TcpSocket&, const iovec*, size_t, int) { return -EOPNOTSUPP; }
int Tcp::shutdown(TcpSocket&, int) { return -EOPNOTSUPP; }
void Tcp::close(TcpSocket&) {}
uint32_t Tcp::events(const TcpSocket&) const { return 0; }
int Tcp::setsockopt(TcpSocket&, int, int, const void*, socklen_t) { return -ENOPROTOOPT; }
int Tcp::getsockopt(TcpSocket&, int, int, void*, socklen_t*) { return -ENOPROTOOPT; }
int Tcp::local_name(const TcpSocket&, IpAddr*, uint16_t*) const { return -EOPNOTSUPP; }
int Tcp::peer_name(const TcpSocket&, IpAddr*, uint16_t*) const { return -ENOTCONN; }
void Tcp::set_observer(TcpSocket&, TcpSocketObserver*) {}
void Tcp::set_user(TcpSocket&, uint64_t) {}
uint64_t Tcp::user(const TcpSocket&) const { return 0; }
TcpState Tcp::state(const TcpSocket&) const { return TcpState::kClosed; }
Family Tcp::family(const TcpSocket&) const { return Family::kV4; }
bool Tcp::is_listening(const TcpSocket&) const { return false; }
size_t Tcp::rx_queued(const TcpSocket&) const { return 0; }
size_t Tcp::tx_queued(const TcpSocket&) const { return 0; }
int Tcp::take_error(TcpSocket&) { return 0; }
size_t Tcp::connection_count() const { return 0; }
size_t Tcp::memory() const { return 0; }
size_t Tcp::count_in_state(TcpState) const { return 0; }

}  // namespace shunt
