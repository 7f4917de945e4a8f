#include "nicmodel/ns3/ns3_apps.h"

#include <cstring>
#include <string>

#include <ns3/callback.h>
#include <ns3/inet-socket-address.h>
#include <ns3/inet6-socket-address.h>
#include <ns3/ipv4-address.h>
#include <ns3/ipv6-address.h>
#include <ns3/packet.h>
#include <ns3/simulator.h>
#include <ns3/tcp-socket-factory.h>
#include <ns3/udp-socket-factory.h>

#include "stack/harness/tcp_bulk.h"

namespace nicmodel {

NS_OBJECT_ENSURE_REGISTERED(PatternTcpSource);
NS_OBJECT_ENSURE_REGISTERED(PatternTcpSink);
NS_OBJECT_ENSURE_REGISTERED(PatternUdpEcho);
NS_OBJECT_ENSURE_REGISTERED(PatternUdpClient);

using shunt::Nanos;

namespace {

Nanos Now() { return ns3::Simulator::Now().GetNanoSeconds(); }

const char* ErrnoName(ns3::Socket::SocketErrno e) {
  switch (e) {
    case ns3::Socket::ERROR_NOTERROR: return "no error";
    case ns3::Socket::ERROR_ISCONN: return "already connected";
    case ns3::Socket::ERROR_NOTCONN: return "not connected";
    case ns3::Socket::ERROR_MSGSIZE: return "message too long";
    case ns3::Socket::ERROR_AGAIN: return "try again";
    case ns3::Socket::ERROR_SHUTDOWN: return "shut down";
    case ns3::Socket::ERROR_OPNOTSUPP: return "operation not supported";
    case ns3::Socket::ERROR_AFNOSUPPORT: return "address family not supported";
    case ns3::Socket::ERROR_INVAL: return "invalid argument";
    case ns3::Socket::ERROR_BADF: return "bad socket";
    case ns3::Socket::ERROR_NOROUTETOHOST: return "no route to host";
    case ns3::Socket::ERROR_NODEV: return "no device";
    case ns3::Socket::ERROR_ADDRNOTAVAIL: return "address not available";
    case ns3::Socket::ERROR_ADDRINUSE: return "address in use";
    default: return "unknown error";
  }
}

std::string SocketError(const char* what, ns3::Ptr<ns3::Socket> s) {
  return std::string(what) + ": " + (s ? ErrnoName(s->GetErrno()) : "no socket");
}

bool IsV6(const ns3::Address& a) { return ns3::Inet6SocketAddress::IsMatchingType(a); }

// Datagram i as AddUdpClient sends it: 8 bytes of i, 8 bytes of its send time, then bytes
// derived from i (host byte order, as shunt_workloads.cc writes them).
void FillDatagram(uint64_t i, Nanos sent, uint8_t* p, size_t size) {
  std::memcpy(p, &i, 8);
  std::memcpy(p + 8, &sent, 8);
  for (size_t k = 16; k < size; ++k) p[k] = uint8_t(i * 131 + k);
}

// Offset of the first byte of `got` that differs from the pattern at `offset`, or UINT64_MAX.
uint64_t FirstMismatch(uint64_t seed, uint64_t offset, const uint8_t* got, size_t n, std::vector<uint8_t>& expect) {
  if (expect.size() < n) expect.resize(n);
  shunt::tcp_bulk_pattern(seed, offset, expect.data(), n);
  if (std::memcmp(got, expect.data(), n) == 0) return UINT64_MAX;
  for (size_t k = 0; k < n; ++k) {
    if (got[k] != expect[k]) return offset + k;
  }
  return UINT64_MAX;
}

}  // namespace

ns3::Address ToNs3SocketAddress(const shunt::IpAddr& addr, uint16_t port) {
  if (addr.is_v6()) {
    uint8_t b[16];
    addr.v6.write(b);
    return ns3::Inet6SocketAddress(ns3::Ipv6Address(b), port);
  }
  return ns3::InetSocketAddress(ns3::Ipv4Address(addr.v4.v), port);
}

// --- PatternTcpSource -------------------------------------------------------------------------

ns3::TypeId PatternTcpSource::GetTypeId() {
  static ns3::TypeId tid = ns3::TypeId("nicmodel::PatternTcpSource")
                               .SetParent<ns3::Application>()
                               .SetGroupName("Shunt")
                               .AddConstructor<PatternTcpSource>();
  return tid;
}

PatternTcpSource::PatternTcpSource() = default;
PatternTcpSource::~PatternTcpSource() = default;

void PatternTcpSource::Setup(const ns3::Address& peer, uint64_t bytes, uint64_t seed) {
  peer_ = peer;
  bytes_ = bytes;
  seed_ = seed;
}

void PatternTcpSource::DoDispose() {
  if (socket_) {
    socket_->SetConnectCallback(ns3::MakeNullCallback<void, ns3::Ptr<ns3::Socket>>(),
                                ns3::MakeNullCallback<void, ns3::Ptr<ns3::Socket>>());
    socket_->SetSendCallback(ns3::MakeNullCallback<void, ns3::Ptr<ns3::Socket>, uint32_t>());
    socket_->SetRecvCallback(ns3::MakeNullCallback<void, ns3::Ptr<ns3::Socket>>());
    socket_->SetCloseCallbacks(ns3::MakeNullCallback<void, ns3::Ptr<ns3::Socket>>(),
                               ns3::MakeNullCallback<void, ns3::Ptr<ns3::Socket>>());
  }
  socket_ = nullptr;
  ns3::Application::DoDispose();
}

void PatternTcpSource::StartApplication() {
  if (socket_) return;
  socket_ = ns3::Socket::CreateSocket(GetNode(), ns3::TcpSocketFactory::GetTypeId());
  const int bound = IsV6(peer_) ? socket_->Bind6() : socket_->Bind();
  if (bound < 0) return Fail("bind");
  socket_->SetConnectCallback(ns3::MakeCallback(&PatternTcpSource::ConnectionSucceeded, this),
                              ns3::MakeCallback(&PatternTcpSource::ConnectionFailed, this));
  socket_->SetSendCallback(ns3::MakeCallback(&PatternTcpSource::SendSpace, this));
  socket_->SetRecvCallback(ns3::MakeCallback(&PatternTcpSource::Receive, this));
  socket_->SetCloseCallbacks(ns3::MakeCallback(&PatternTcpSource::NormalClose, this),
                             ns3::MakeCallback(&PatternTcpSource::ErrorClose, this));
  if (socket_->Connect(peer_) < 0) return Fail("connect");
}

void PatternTcpSource::StopApplication() {
  if (socket_ && stats_->error.empty() && !stats_->peer_closed) socket_->Close();
}

void PatternTcpSource::Fail(const char* what) {
  if (stats_->error.empty()) stats_->error = SocketError(what, socket_);
}

void PatternTcpSource::ConnectionSucceeded(ns3::Ptr<ns3::Socket>) {
  stats_->connected = Now();
  Fill();
}

void PatternTcpSource::ConnectionFailed(ns3::Ptr<ns3::Socket>) { Fail("connection"); }

void PatternTcpSource::SendSpace(ns3::Ptr<ns3::Socket>, uint32_t) {
  if (stats_->connected >= 0) Fill();
}

void PatternTcpSource::Fill() {
  while (stats_->sent < bytes_) {
    const uint32_t room = socket_->GetTxAvailable();
    if (room == 0) break;
    const size_t n = size_t(std::min<uint64_t>(room, bytes_ - stats_->sent));
    if (buf_.size() < n) buf_.resize(n);
    shunt::tcp_bulk_pattern(seed_, stats_->sent, buf_.data(), n);
    const int w = socket_->Send(buf_.data(), uint32_t(n), 0);
    if (w < 0) {
      if (socket_->GetErrno() == ns3::Socket::ERROR_AGAIN || socket_->GetErrno() == ns3::Socket::ERROR_MSGSIZE) break;
      return Fail("send");
    }
    stats_->sent += uint64_t(w);
    if (w == 0) break;
  }
  if (stats_->sent == bytes_ && !fin_sent_) {
    // The FIN follows the last byte once the send buffer has drained (RFC 9293 3.10.4).
    if (socket_->ShutdownSend() < 0) return Fail("shutdown");
    fin_sent_ = true;
    stats_->finished = Now();
  }
}

void PatternTcpSource::Receive(ns3::Ptr<ns3::Socket> s) {
  while (auto p = s->Recv()) {
    if (p->GetSize() == 0) break;
  }
}

void PatternTcpSource::NormalClose(ns3::Ptr<ns3::Socket> s) {
  Receive(s);
  stats_->peer_closed = true;
  // Our half went with ShutdownSend; closing now lets the connection finish (LAST_ACK or
  // TIME_WAIT), as the Shunt sender closes after the peer's EOF.
  s->Close();
}

void PatternTcpSource::ErrorClose(ns3::Ptr<ns3::Socket>) { Fail("connection reset or timed out"); }

// --- PatternTcpSink ---------------------------------------------------------------------------

ns3::TypeId PatternTcpSink::GetTypeId() {
  static ns3::TypeId tid = ns3::TypeId("nicmodel::PatternTcpSink")
                               .SetParent<ns3::Application>()
                               .SetGroupName("Shunt")
                               .AddConstructor<PatternTcpSink>();
  return tid;
}

PatternTcpSink::PatternTcpSink() = default;
PatternTcpSink::~PatternTcpSink() = default;

void PatternTcpSink::Setup(uint16_t port, uint64_t seed, bool v6) {
  port_ = port;
  seed_ = seed;
  v6_ = v6;
}

void PatternTcpSink::DoDispose() {
  for (auto& s : open_) {
    if (!s) continue;
    s->SetRecvCallback(ns3::MakeNullCallback<void, ns3::Ptr<ns3::Socket>>());
    s->SetCloseCallbacks(ns3::MakeNullCallback<void, ns3::Ptr<ns3::Socket>>(),
                         ns3::MakeNullCallback<void, ns3::Ptr<ns3::Socket>>());
  }
  open_.clear();
  index_.clear();
  if (listener_) {
    listener_->SetAcceptCallback(ns3::MakeNullCallback<bool, ns3::Ptr<ns3::Socket>, const ns3::Address&>(),
                                 ns3::MakeNullCallback<void, ns3::Ptr<ns3::Socket>, const ns3::Address&>());
  }
  listener_ = nullptr;
  ns3::Application::DoDispose();
}

void PatternTcpSink::StartApplication() {
  if (listener_) return;
  listener_ = ns3::Socket::CreateSocket(GetNode(), ns3::TcpSocketFactory::GetTypeId());
  const ns3::Address local = v6_ ? ns3::Address(ns3::Inet6SocketAddress(ns3::Ipv6Address::GetAny(), port_))
                                 : ns3::Address(ns3::InetSocketAddress(ns3::Ipv4Address::GetAny(), port_));
  if (listener_->Bind(local) < 0) {
    stats_->error = SocketError("bind", listener_);
    return;
  }
  if (listener_->Listen() < 0) {
    stats_->error = SocketError("listen", listener_);
    return;
  }
  listener_->SetAcceptCallback(ns3::MakeNullCallback<bool, ns3::Ptr<ns3::Socket>, const ns3::Address&>(),
                               ns3::MakeCallback(&PatternTcpSink::Accepted, this));
}

void PatternTcpSink::StopApplication() {
  if (listener_) listener_->Close();
}

void PatternTcpSink::Accepted(ns3::Ptr<ns3::Socket> s, const ns3::Address&) {
  index_[ns3::PeekPointer(s)] = open_.size();
  open_.push_back(s);
  stats_->streams.push_back(TcpStreamStats{});
  stats_->streams.back().accepted = Now();
  s->SetRecvCallback(ns3::MakeCallback(&PatternTcpSink::Receive, this));
  s->SetCloseCallbacks(ns3::MakeCallback(&PatternTcpSink::NormalClose, this),
                       ns3::MakeCallback(&PatternTcpSink::ErrorClose, this));
  Receive(s);  // data may have come with the handshake's last segment
}

void PatternTcpSink::Receive(ns3::Ptr<ns3::Socket> s) {
  auto it = index_.find(ns3::PeekPointer(s));
  if (it == index_.end()) return;
  auto& st = stats_->streams[it->second];
  while (auto p = s->Recv()) {
    const uint32_t n = p->GetSize();
    if (n == 0) break;
    if (buf_.size() < n) buf_.resize(n);
    p->CopyData(buf_.data(), n);
    if (st.mismatch == UINT64_MAX) st.mismatch = FirstMismatch(seed_, st.received, buf_.data(), n, expect_);
    st.received += n;
  }
}

void PatternTcpSink::NormalClose(ns3::Ptr<ns3::Socket> s) {
  Receive(s);  // what arrived before the FIN
  Ended(s, true);
}

void PatternTcpSink::ErrorClose(ns3::Ptr<ns3::Socket> s) { Ended(s, false); }

void PatternTcpSink::Ended(ns3::Ptr<ns3::Socket> s, bool eof) {
  auto it = index_.find(ns3::PeekPointer(s));
  if (it == index_.end()) return;
  auto& st = stats_->streams[it->second];
  st.eof = eof;
  st.eof_at = Now();
  const size_t i = it->second;
  index_.erase(it);
  s->SetRecvCallback(ns3::MakeNullCallback<void, ns3::Ptr<ns3::Socket>>());
  // The sink has nothing to send: its FIN answers the peer's at once.
  if (eof) s->Close();
  open_[i] = nullptr;
}

// --- PatternUdpEcho ---------------------------------------------------------------------------

ns3::TypeId PatternUdpEcho::GetTypeId() {
  static ns3::TypeId tid = ns3::TypeId("nicmodel::PatternUdpEcho")
                               .SetParent<ns3::Application>()
                               .SetGroupName("Shunt")
                               .AddConstructor<PatternUdpEcho>();
  return tid;
}

PatternUdpEcho::PatternUdpEcho() = default;
PatternUdpEcho::~PatternUdpEcho() = default;

void PatternUdpEcho::Setup(uint16_t port, bool v6) {
  port_ = port;
  v6_ = v6;
}

void PatternUdpEcho::DoDispose() {
  if (socket_) socket_->SetRecvCallback(ns3::MakeNullCallback<void, ns3::Ptr<ns3::Socket>>());
  socket_ = nullptr;
  ns3::Application::DoDispose();
}

void PatternUdpEcho::StartApplication() {
  if (socket_) return;
  socket_ = ns3::Socket::CreateSocket(GetNode(), ns3::UdpSocketFactory::GetTypeId());
  const ns3::Address local = v6_ ? ns3::Address(ns3::Inet6SocketAddress(ns3::Ipv6Address::GetAny(), port_))
                                 : ns3::Address(ns3::InetSocketAddress(ns3::Ipv4Address::GetAny(), port_));
  if (socket_->Bind(local) < 0) {
    stats_->error = SocketError("bind", socket_);
    return;
  }
  socket_->SetRecvCallback(ns3::MakeCallback(&PatternUdpEcho::Receive, this));
}

void PatternUdpEcho::StopApplication() {
  if (socket_) socket_->Close();
}

void PatternUdpEcho::Receive(ns3::Ptr<ns3::Socket> s) {
  ns3::Address from;
  while (auto p = s->RecvFrom(from)) {
    // The copy that goes back carries none of the tags the way in attached.
    p->RemoveAllPacketTags();
    p->RemoveAllByteTags();
    if (s->SendTo(p, 0, from) >= 0) ++stats_->echoed;
  }
}

// --- PatternUdpClient -------------------------------------------------------------------------

ns3::TypeId PatternUdpClient::GetTypeId() {
  static ns3::TypeId tid = ns3::TypeId("nicmodel::PatternUdpClient")
                               .SetParent<ns3::Application>()
                               .SetGroupName("Shunt")
                               .AddConstructor<PatternUdpClient>();
  return tid;
}

PatternUdpClient::PatternUdpClient() = default;
PatternUdpClient::~PatternUdpClient() = default;

void PatternUdpClient::Setup(const ns3::Address& peer, uint64_t count, size_t size, ns3::Time interval) {
  peer_ = peer;
  count_ = count;
  size_ = std::max<size_t>(size, 16);
  interval_ = interval;
}

void PatternUdpClient::DoDispose() {
  ns3::Simulator::Cancel(send_event_);
  if (socket_) socket_->SetRecvCallback(ns3::MakeNullCallback<void, ns3::Ptr<ns3::Socket>>());
  socket_ = nullptr;
  ns3::Application::DoDispose();
}

void PatternUdpClient::StartApplication() {
  if (socket_) return;
  buf_.resize(size_);
  expect_.resize(size_);
  socket_ = ns3::Socket::CreateSocket(GetNode(), ns3::UdpSocketFactory::GetTypeId());
  const int bound = IsV6(peer_) ? socket_->Bind6() : socket_->Bind();
  if (bound < 0 || socket_->Connect(peer_) < 0) {
    stats_->error = SocketError(bound < 0 ? "bind" : "connect", socket_);
    return;
  }
  socket_->SetRecvCallback(ns3::MakeCallback(&PatternUdpClient::Receive, this));
  SendNext();
}

void PatternUdpClient::StopApplication() {
  ns3::Simulator::Cancel(send_event_);
  if (socket_) socket_->Close();
}

void PatternUdpClient::SendNext() {
  if (stats_->sent >= count_ || !stats_->error.empty()) return;
  FillDatagram(stats_->sent, Now(), buf_.data(), size_);
  if (socket_->Send(buf_.data(), uint32_t(size_), 0) < 0) {
    stats_->error = SocketError("send", socket_);
    return;
  }
  ++stats_->sent;
  if (!interval_.IsZero() && stats_->sent < count_) {
    send_event_ = ns3::Simulator::Schedule(interval_, &PatternUdpClient::SendNext, this);
  }
}

void PatternUdpClient::Receive(ns3::Ptr<ns3::Socket> s) {
  bool send_next = false;
  while (auto p = s->Recv()) {
    const uint32_t n = p->GetSize();
    if (n < 16 || n != size_) {
      ++stats_->bad_echoes;
      continue;
    }
    p->CopyData(buf_.data(), n);
    uint64_t i;
    Nanos sent;
    std::memcpy(&i, buf_.data(), 8);
    std::memcpy(&sent, buf_.data() + 8, 8);
    FillDatagram(i, sent, expect_.data(), size_);
    if (i >= stats_->sent || std::memcmp(buf_.data(), expect_.data(), size_) != 0) {
      ++stats_->bad_echoes;
      continue;
    }
    ++stats_->echoes;
    stats_->rtts.push_back(Now() - sent);
    if (interval_.IsZero() && i + 1 == stats_->sent) send_next = true;
  }
  if (send_next) SendNext();  // a ping-pong: the next datagram goes when this echo came back
}

// --- helpers ----------------------------------------------------------------------------------

ns3::Ptr<PatternTcpSource> InstallPatternTcpSource(ns3::Ptr<ns3::Node> node, const ns3::Address& peer,
                                                   uint64_t bytes, uint64_t seed, ns3::Time start) {
  auto app = ns3::CreateObject<PatternTcpSource>();
  app->Setup(peer, bytes, seed);
  node->AddApplication(app);
  app->SetStartTime(start);
  return app;
}

ns3::Ptr<PatternTcpSink> InstallPatternTcpSink(ns3::Ptr<ns3::Node> node, uint16_t port, uint64_t seed, bool v6,
                                               ns3::Time start) {
  auto app = ns3::CreateObject<PatternTcpSink>();
  app->Setup(port, seed, v6);
  node->AddApplication(app);
  app->SetStartTime(start);
  return app;
}

ns3::Ptr<PatternUdpEcho> InstallPatternUdpEcho(ns3::Ptr<ns3::Node> node, uint16_t port, bool v6, ns3::Time start) {
  auto app = ns3::CreateObject<PatternUdpEcho>();
  app->Setup(port, v6);
  node->AddApplication(app);
  app->SetStartTime(start);
  return app;
}

ns3::Ptr<PatternUdpClient> InstallPatternUdpClient(ns3::Ptr<ns3::Node> node, const ns3::Address& peer,
                                                   uint64_t count, size_t size, ns3::Time interval,
                                                   ns3::Time start) {
  auto app = ns3::CreateObject<PatternUdpClient>();
  app->Setup(peer, count, size, interval);
  node->AddApplication(app);
  app->SetStartTime(start);
  return app;
}

}  // namespace nicmodel
