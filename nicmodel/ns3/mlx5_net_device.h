// The simulated ConnectX as an ns-3 NetDevice (DESIGN.md, "Ports"). It holds the mlx5 model and
// the mlx5 driver that a ShuntHost's stack drives; its wire is an ns-3 channel.
//
// The model's wire port is a PHY: a standard ns-3 device that sits on the channel with the
// model's MAC address and carries whole Ethernet frames (SendFrom out, promiscuous receive in).
// The PHY is an EthLinkNetDevice (a full-duplex Ethernet point-to-point link, eth_link.h) or a
// CsmaNetDevice (a CSMA segment, or a port of ns-3's bridge as a switch). The model hands a frame
// to the PHY when its first bit goes out and the PHY serializes it at the same rate, so the wire
// time is counted once; frames the PHY receives reach the model when their last bit is in.
//
// Every model event runs from ns-3's scheduler at its time: the NIC keeps one scheduled event at
// the model's next_event(), and tells its host (the completion callback) when CQEs were written.
// With the same seed and run number a simulation is identical, event for event.
//
// On an EthLinkNetDevice PHY, frames go out and come in as bytes (SendFrame, EthFrameReceiver)
// whenever the link allows (eth_link.h): no ns-3 Packet is made for them.
#pragma once
#include <functional>
#include <memory>

#include <ns3/event-id.h>
#include <ns3/mac48-address.h>
#include <ns3/net-device.h>
#include <ns3/simulator-impl.h>
#include <ns3/traced-callback.h>

#include "nicmodel/mlx5/mlx5_model.h"
#include "nicmodel/ns3/eth_link.h"
#include "nicmodel/port/wire_port.h"
#include "stack/core/config.h"
#include "stack/driver/mlx5/mlx5_driver.h"

namespace nicmodel {

// Time in an ns-3 simulation, in nanoseconds: the clock of every Shunt host in it.
class Ns3Clock final : public shunt::Clock {
 public:
  shunt::Nanos now() const override;
  // `ns` nanoseconds as an ns-3 Time (a time step when steps are nanoseconds); after now().
  ns3::Time Delay(shunt::Nanos ns) const { return ns_steps_ ? ns3::TimeStep(ns) : ns3::NanoSeconds(ns); }

 private:
  // The simulator this clock reads, taken on first use (where Simulator::Now() would make it),
  // so that each read is one call (stacks read the clock dozens of times per segment). Held: a
  // clock read after Simulator::Destroy() gives that simulation's last time.
  mutable ns3::Ptr<ns3::SimulatorImpl> impl_;
  mutable bool ns_steps_ = false;  // time steps are nanoseconds (ns-3's default resolution)
};

class Mlx5NetDevice final : public ns3::NetDevice, private WirePort, private EthFrameReceiver {
 public:
  static ns3::TypeId GetTypeId();
  Mlx5NetDevice();
  ~Mlx5NetDevice() override;

  // Creates the model and the driver. `config` gives the NIC timing (SHUNT_NIC_*) and the
  // driver's queue sizes (SHUNT_MLX5_*); the link rate is the PHY's. Call once, after Attach.
  // Returns false with `error` set when the driver cannot open the model's queues.
  bool Setup(const shunt::Config& config, std::string& error);
  // Puts the model's wire on `phy`, whose data rate is `rate_bps`. The PHY takes our MAC.
  void AttachPhy(ns3::Ptr<ns3::NetDevice> phy, uint64_t rate_bps);
  ns3::Ptr<ns3::NetDevice> GetPhy() const { return phy_; }

  // What the host's stack drives (valid after Setup).
  shunt::Device& driver();
  Mlx5Model& model() { return *model_; }
  // The simulation's clock, which the host's stack uses too.
  shunt::Clock& model_clock() { return clock_; }
  // Called (from the scheduler) when the model wrote CQEs: the host should poll its stack.
  void SetCompletionCallback(std::function<void()> cb) { on_completion_ = std::move(cb); }
  // After the host rang doorbells: (re)schedules the model's next event.
  void Kick();
  // Frames the PHY refused (its queue full) and frames received before Setup.
  uint64_t phy_drops() const { return phy_drops_; }

  // ns3::NetDevice. The NIC carries only what its stack sends: Send() from ns-3's own layers
  // is refused (a Shunt node has no ns-3 InternetStack).
  void SetIfIndex(const uint32_t index) override { if_index_ = index; }
  uint32_t GetIfIndex() const override { return if_index_; }
  ns3::Ptr<ns3::Channel> GetChannel() const override;
  void SetAddress(ns3::Address address) override;
  ns3::Address GetAddress() const override { return address_; }
  bool SetMtu(const uint16_t mtu) override;
  uint16_t GetMtu() const override { return mtu_; }
  bool IsLinkUp() const override { return phy_ != nullptr; }
  void AddLinkChangeCallback(ns3::Callback<void>) override {}
  bool IsBroadcast() const override { return true; }
  ns3::Address GetBroadcast() const override { return ns3::Mac48Address::GetBroadcast(); }
  bool IsMulticast() const override { return true; }
  ns3::Address GetMulticast(ns3::Ipv4Address group) const override;
  ns3::Address GetMulticast(ns3::Ipv6Address addr) const override;
  bool IsBridge() const override { return false; }
  bool IsPointToPoint() const override { return false; }
  bool Send(ns3::Ptr<ns3::Packet>, const ns3::Address&, uint16_t) override { return false; }
  bool SendFrom(ns3::Ptr<ns3::Packet>, const ns3::Address&, const ns3::Address&, uint16_t) override {
    return false;
  }
  ns3::Ptr<ns3::Node> GetNode() const override { return node_; }
  void SetNode(ns3::Ptr<ns3::Node> node) override { node_ = node; }
  bool NeedsArp() const override { return false; }
  void SetReceiveCallback(ns3::NetDevice::ReceiveCallback) override {}
  void SetPromiscReceiveCallback(ns3::NetDevice::PromiscReceiveCallback) override {}
  bool SupportsSendFrom() const override { return false; }

 protected:
  void DoDispose() override;

 private:
  // WirePort: the model's frames go to the PHY.
  bool transmit(std::span<const uint8_t> frame, Nanos start, Nanos end) override;
  void set_receiver(WireReceiver* r) override { receiver_ = r; }
  uint64_t rate_bps() const override { return rate_bps_; }

  // EthFrameReceiver: a frame from an EthLink PHY as bytes.
  void ReceiveFrame(std::span<const uint8_t> frame, ns3::NetDevice::PacketType type) override;
  bool PhyReceive(ns3::Ptr<ns3::NetDevice> dev, ns3::Ptr<const ns3::Packet> p, uint16_t protocol,
                  const ns3::Address& from, const ns3::Address& to, ns3::NetDevice::PacketType type);
  void RunModel();

  Ns3Clock clock_;
  ns3::Ptr<ns3::Node> node_;
  ns3::Ptr<ns3::NetDevice> phy_;
  EthLinkNetDevice* eth_phy_ = nullptr;  // phy_ when it is an EthLink (frames as bytes)
  ns3::Mac48Address address_;
  uint32_t if_index_ = 0;
  uint16_t mtu_ = 1500;
  uint64_t rate_bps_ = 0;
  std::unique_ptr<Mlx5Model> model_;
  std::unique_ptr<shunt::Mlx5Driver> driver_;
  WireReceiver* receiver_ = nullptr;
  std::function<void()> on_completion_;
  ns3::EventId event_;
  shunt::Nanos event_at_ = shunt::kNever;
  uint64_t phy_drops_ = 0;
  std::vector<uint8_t> rx_frame_;  // the frame rebuilt from the PHY's packet
};

}  // namespace nicmodel
