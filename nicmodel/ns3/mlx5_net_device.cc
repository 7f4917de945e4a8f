#include "nicmodel/ns3/mlx5_net_device.h"

#include <ns3/channel.h>
#include <ns3/log.h>
#include <ns3/node.h>
#include <ns3/packet.h>
#include <ns3/simulator.h>
#include <ns3/uinteger.h>

#include "stack/core/log.h"

namespace nicmodel {

NS_OBJECT_ENSURE_REGISTERED(Mlx5NetDevice);

shunt::Nanos Ns3Clock::now() const {
  if (!impl_) {
    impl_ = ns3::Simulator::GetImplementation();
    ns_steps_ = ns3::Time::GetResolution() == ns3::Time::NS;
  }
  const ns3::Time t = impl_->Now();
  return ns_steps_ ? t.GetTimeStep() : t.GetNanoSeconds();
}

ns3::TypeId Mlx5NetDevice::GetTypeId() {
  static ns3::TypeId tid = ns3::TypeId("nicmodel::Mlx5NetDevice")
                               .SetParent<ns3::NetDevice>()
                               .SetGroupName("Shunt")
                               .AddConstructor<Mlx5NetDevice>();
  return tid;
}

Mlx5NetDevice::Mlx5NetDevice() = default;

// The driver goes first (it returns buffers to the model's rings), then the model. Node disposes
// its devices before its applications, so both stay alive until the last reference (the host's)
// is gone; DoDispose only cuts the links to the simulation.
Mlx5NetDevice::~Mlx5NetDevice() {
  driver_.reset();
  model_.reset();
}

void Mlx5NetDevice::DoDispose() {
  ns3::Simulator::Cancel(event_);
  event_at_ = shunt::kNever;
  on_completion_ = nullptr;
  if (phy_) {
    phy_->SetPromiscReceiveCallback(ns3::MakeNullCallback<bool, ns3::Ptr<ns3::NetDevice>, ns3::Ptr<const ns3::Packet>,
                                                          uint16_t, const ns3::Address&, const ns3::Address&,
                                                          ns3::NetDevice::PacketType>());
  }
  phy_ = nullptr;
  eth_phy_ = nullptr;
  node_ = nullptr;
  ns3::NetDevice::DoDispose();
}

namespace {

bool ignore_frame(ns3::Ptr<ns3::NetDevice>, ns3::Ptr<const ns3::Packet>, uint16_t, const ns3::Address&) {
  return true;
}

}  // namespace

void Mlx5NetDevice::AttachPhy(ns3::Ptr<ns3::NetDevice> phy, uint64_t rate_bps) {
  phy_ = phy;
  rate_bps_ = rate_bps;
  phy_->SetAddress(address_);
  // Node::AddDevice points the PHY's ordinary receive path at the node's protocol handlers; a
  // Shunt node has none, and every frame reaches the model through the promiscuous path.
  phy_->SetReceiveCallback(ns3::MakeCallback(&ignore_frame));
  phy_->SetPromiscReceiveCallback(ns3::MakeCallback(&Mlx5NetDevice::PhyReceive, this));
  // An EthLink PHY takes and gives frames as bytes when nothing there needs Packets; the
  // callbacks above serve when something does.
  eth_phy_ = ns3::PeekPointer(ns3::DynamicCast<EthLinkNetDevice>(phy_));
  if (eth_phy_) eth_phy_->SetFrameReceiver(this);
}

bool Mlx5NetDevice::Setup(const shunt::Config& config, std::string& error) {
  if (model_) {
    error = "Mlx5NetDevice::Setup called twice";
    return false;
  }
  NicModelOptions o;
  uint8_t mac[6];
  address_.CopyTo(mac);
  o.mac = shunt::MacAddr::read(mac);
  o.mtu = mtu_;
  o.timing = NicTiming::from(config);
  o.simulator_driven = true;
  o.name = "mlx5sim-ns3";
  WirePort& wire = *this;
  model_ = std::make_unique<Mlx5Model>(clock_, wire, o);
  receiver_ = model_.get();
  driver_ = std::make_unique<shunt::Mlx5Driver>(*model_, shunt::Mlx5DriverOptions::from(config));
  if (!driver_->ok()) {
    error = driver_->error();
    return false;
  }
  return true;
}

shunt::Device& Mlx5NetDevice::driver() { return *driver_; }

ns3::Ptr<ns3::Channel> Mlx5NetDevice::GetChannel() const { return phy_ ? phy_->GetChannel() : nullptr; }

void Mlx5NetDevice::SetAddress(ns3::Address address) {
  address_ = ns3::Mac48Address::ConvertFrom(address);
  if (phy_) phy_->SetAddress(address_);
}

bool Mlx5NetDevice::SetMtu(const uint16_t mtu) {
  if (model_ || mtu < 576 || mtu > 9000) return false;  // fixed once the rings exist
  mtu_ = mtu;
  return true;
}

ns3::Address Mlx5NetDevice::GetMulticast(ns3::Ipv4Address group) const {
  return ns3::Mac48Address::GetMulticast(group);
}

ns3::Address Mlx5NetDevice::GetMulticast(ns3::Ipv6Address addr) const { return ns3::Mac48Address::GetMulticast(addr); }

void Mlx5NetDevice::Kick() {
  if (!model_) return;
  const shunt::Nanos t = model_->next_observable_event();
  if (t == shunt::kNever) return;
  // event_at_ is the time of the pending event (kNever: none); asking ns-3 costs more.
  if (event_at_ <= t) return;
  if (event_at_ != shunt::kNever) ns3::Simulator::Cancel(event_);
  const shunt::Nanos now = clock_.now();
  event_at_ = std::max(t, now);
  event_ = ns3::Simulator::Schedule(clock_.Delay(event_at_ - now), &Mlx5NetDevice::RunModel, this);
}

void Mlx5NetDevice::RunModel() {
  event_at_ = shunt::kNever;
  const uint64_t cqes = model_->cqes_written();
  model_->run_due(clock_.now());
  if (model_->cqes_written() != cqes && on_completion_) on_completion_();
  Kick();
}

bool Mlx5NetDevice::transmit(std::span<const uint8_t> frame, Nanos, Nanos) {
  if (!phy_ || frame.size() < 14) {
    ++phy_drops_;
    return false;
  }
  if (eth_phy_) {
    if (eth_phy_->SendFrame(frame)) return true;
    ++phy_drops_;
    return false;
  }
  ns3::Mac48Address dst, src;
  dst.CopyFrom(frame.data());
  src.CopyFrom(frame.data() + 6);
  const uint16_t type = uint16_t(frame[12] << 8 | frame[13]);
  auto p = ns3::Create<ns3::Packet>(frame.data() + 14, uint32_t(frame.size() - 14));
  if (!phy_->SendFrom(p, src, dst, type)) {
    ++phy_drops_;
    return false;
  }
  return true;
}

void Mlx5NetDevice::ReceiveFrame(std::span<const uint8_t> frame, ns3::NetDevice::PacketType type) {
  // The NIC's MAC filter, as in PhyReceive.
  if (type == ns3::NetDevice::PACKET_OTHERHOST) return;
  if (!receiver_) {
    ++phy_drops_;
    return;
  }
  receiver_->on_wire_frame(frame, clock_.now());
  Kick();
}

bool Mlx5NetDevice::PhyReceive(ns3::Ptr<ns3::NetDevice>, ns3::Ptr<const ns3::Packet> p, uint16_t protocol,
                               const ns3::Address& from, const ns3::Address& to,
                               ns3::NetDevice::PacketType type) {
  // The NIC's MAC filter: unicast frames for other stations (a CSMA segment, a switch flooding)
  // never reach the rings.
  if (type == ns3::NetDevice::PACKET_OTHERHOST) return true;
  if (!receiver_) {
    ++phy_drops_;
    return true;
  }
  const uint32_t payload = p->GetSize();
  if (payload > 65536) {  // far beyond any MTU: the model would count it oversize anyway
    ++phy_drops_;
    return true;
  }
  rx_frame_.resize(14 + payload);
  ns3::Mac48Address::ConvertFrom(to).CopyTo(rx_frame_.data());
  ns3::Mac48Address::ConvertFrom(from).CopyTo(rx_frame_.data() + 6);
  rx_frame_[12] = uint8_t(protocol >> 8);
  rx_frame_[13] = uint8_t(protocol);
  p->CopyData(rx_frame_.data() + 14, payload);
  receiver_->on_wire_frame(rx_frame_, clock_.now());
  Kick();
  return true;
}

}  // namespace nicmodel
