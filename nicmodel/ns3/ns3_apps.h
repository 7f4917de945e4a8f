// ns-3-native applications (ns3::Socket over ns-3's own InternetStack) that speak the same
// byte-checked workloads as shunt_workloads.h, so that either end of a transfer can be a Shunt
// host or an ns-3 host:
//   - TCP: PatternTcpSource sends tcp_bulk_pattern bytes (stack/harness/tcp_bulk.h) and
//     PatternTcpSink checks every byte of every accepted stream in order (AddTcpSender/AddTcpSink).
//   - UDP: PatternUdpEcho echoes datagrams and PatternUdpClient sends AddUdpClient's datagrams
//     (8 bytes index, 8 bytes send time in ns, then uint8_t(i * 131 + k)) and checks each echo.
// Their statistics are the structs of shunt_workloads.h, held by shared pointers so that they
// outlive the applications (ns3::Simulator::Destroy disposes of those).
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include <ns3/address.h>
#include <ns3/application.h>
#include <ns3/event-id.h>
#include <ns3/node.h>
#include <ns3/nstime.h>
#include <ns3/ptr.h>
#include <ns3/socket.h>

#include "nicmodel/ns3/shunt_workloads.h"
#include "stack/net/addr.h"

namespace nicmodel {

// addr:port as an ns-3 socket address: InetSocketAddress or Inet6SocketAddress.
ns3::Address ToNs3SocketAddress(const shunt::IpAddr& addr, uint16_t port);

// Connects to `peer` (InetSocketAddress or Inet6SocketAddress) at its start time, writes `bytes`
// of the pattern seeded by `seed` as fast as the socket's send buffer takes them (the send
// callback refills it), then closes its sending half; it reads and discards whatever the peer
// sends and records the peer's close.
class PatternTcpSource final : public ns3::Application {
 public:
  static ns3::TypeId GetTypeId();
  PatternTcpSource();
  ~PatternTcpSource() override;

  void Setup(const ns3::Address& peer, uint64_t bytes, uint64_t seed = 1);
  std::shared_ptr<TcpSendStats> stats() const { return stats_; }
  ns3::Ptr<ns3::Socket> socket() const { return socket_; }

 protected:
  void DoDispose() override;

 private:
  void StartApplication() override;
  void StopApplication() override;
  void Fail(const char* what);
  void Fill();
  void ConnectionSucceeded(ns3::Ptr<ns3::Socket> s);
  void ConnectionFailed(ns3::Ptr<ns3::Socket> s);
  void SendSpace(ns3::Ptr<ns3::Socket> s, uint32_t available);
  void Receive(ns3::Ptr<ns3::Socket> s);
  void NormalClose(ns3::Ptr<ns3::Socket> s);
  void ErrorClose(ns3::Ptr<ns3::Socket> s);

  ns3::Address peer_;
  uint64_t bytes_ = 0;
  uint64_t seed_ = 1;
  ns3::Ptr<ns3::Socket> socket_;
  std::shared_ptr<TcpSendStats> stats_ = std::make_shared<TcpSendStats>();
  bool fin_sent_ = false;
  std::vector<uint8_t> buf_;
};

// Listens on `port` (IPv4, or IPv6 when `v6`: ns-3 sockets are of one family) and accepts any
// number of streams; each is checked against the pattern seeded by `seed` from offset 0. A
// stream ends at the peer's FIN (the normal close callback: eof) or on an error.
class PatternTcpSink final : public ns3::Application {
 public:
  static ns3::TypeId GetTypeId();
  PatternTcpSink();
  ~PatternTcpSink() override;

  void Setup(uint16_t port, uint64_t seed = 1, bool v6 = false);
  std::shared_ptr<TcpSinkStats> stats() const { return stats_; }

 protected:
  void DoDispose() override;

 private:
  void StartApplication() override;
  void StopApplication() override;
  void Accepted(ns3::Ptr<ns3::Socket> s, const ns3::Address& from);
  void Receive(ns3::Ptr<ns3::Socket> s);
  void NormalClose(ns3::Ptr<ns3::Socket> s);
  void ErrorClose(ns3::Ptr<ns3::Socket> s);
  void Ended(ns3::Ptr<ns3::Socket> s, bool eof);

  uint16_t port_ = 0;
  uint64_t seed_ = 1;
  bool v6_ = false;
  ns3::Ptr<ns3::Socket> listener_;
  std::map<ns3::Socket*, size_t> index_;      // accepted socket -> stream index
  std::vector<ns3::Ptr<ns3::Socket>> open_;   // by stream index; null once ended
  std::shared_ptr<TcpSinkStats> stats_ = std::make_shared<TcpSinkStats>();
  std::vector<uint8_t> buf_, expect_;
};

// Echoes every datagram that arrives on `port` (IPv4, or IPv6 when `v6`) to its sender.
class PatternUdpEcho final : public ns3::Application {
 public:
  static ns3::TypeId GetTypeId();
  PatternUdpEcho();
  ~PatternUdpEcho() override;

  void Setup(uint16_t port, bool v6 = false);
  std::shared_ptr<UdpEchoStats> stats() const { return stats_; }

 protected:
  void DoDispose() override;

 private:
  void StartApplication() override;
  void StopApplication() override;
  void Receive(ns3::Ptr<ns3::Socket> s);

  uint16_t port_ = 0;
  bool v6_ = false;
  ns3::Ptr<ns3::Socket> socket_;
  std::shared_ptr<UdpEchoStats> stats_ = std::make_shared<UdpEchoStats>();
};

// Sends `count` datagrams of `size` bytes (>= 16) to `peer`, one every `interval` (zero: the
// next when the previous one's echo came back, a ping-pong), and checks every echo's bytes.
class PatternUdpClient final : public ns3::Application {
 public:
  static ns3::TypeId GetTypeId();
  PatternUdpClient();
  ~PatternUdpClient() override;

  void Setup(const ns3::Address& peer, uint64_t count, size_t size, ns3::Time interval);
  std::shared_ptr<UdpClientStats> stats() const { return stats_; }

 protected:
  void DoDispose() override;

 private:
  void StartApplication() override;
  void StopApplication() override;
  void SendNext();
  void Receive(ns3::Ptr<ns3::Socket> s);

  ns3::Address peer_;
  uint64_t count_ = 0;
  size_t size_ = 16;
  ns3::Time interval_;
  ns3::Ptr<ns3::Socket> socket_;
  ns3::EventId send_event_;
  std::shared_ptr<UdpClientStats> stats_ = std::make_shared<UdpClientStats>();
  std::vector<uint8_t> buf_, expect_;
};

// Each helper creates the application on `node` (which has ns-3's InternetStack), starts it at
// `start` and returns it; its stats() stay valid after the simulation is destroyed.
ns3::Ptr<PatternTcpSource> InstallPatternTcpSource(ns3::Ptr<ns3::Node> node, const ns3::Address& peer,
                                                   uint64_t bytes, uint64_t seed = 1,
                                                   ns3::Time start = ns3::Seconds(0));
ns3::Ptr<PatternTcpSink> InstallPatternTcpSink(ns3::Ptr<ns3::Node> node, uint16_t port, uint64_t seed = 1,
                                               bool v6 = false, ns3::Time start = ns3::Seconds(0));
ns3::Ptr<PatternUdpEcho> InstallPatternUdpEcho(ns3::Ptr<ns3::Node> node, uint16_t port, bool v6 = false,
                                               ns3::Time start = ns3::Seconds(0));
ns3::Ptr<PatternUdpClient> InstallPatternUdpClient(ns3::Ptr<ns3::Node> node, const ns3::Address& peer,
                                                   uint64_t count, size_t size, ns3::Time interval,
                                                   ns3::Time start = ns3::Seconds(0));

}  // namespace nicmodel
