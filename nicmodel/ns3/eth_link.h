// A full-duplex Ethernet point-to-point link for ns-3 (DESIGN.md, "Ports").
//
// ns-3's PointToPointNetDevice frames with PPP (no ARP, no MAC addresses) and its CsmaChannel is
// half-duplex; neither is a cable between two Ethernet ports. EthLinkNetDevice is a generic
// Ethernet NIC: DIX header + FCS trailer on the wire, padding to the 64-byte minimum, so pcaps
// (DLT_EN10MB) show real Ethernet. It serves
//   - ns-3 nodes with ns-3's InternetStack (Send, ARP, broadcast/multicast, traffic control on
//     top through the aggregated NetDeviceQueueInterface),
//   - ns-3's BridgeNetDevice (SendFrom and the promiscuous callback),
//   - Mlx5NetDevice as its PHY (SendFrom of the frame minus its Ethernet header; the promiscuous
//     callback gives back payload, ethertype, source and destination).
//
// Timing: a frame occupies the wire for (frame bytes incl. FCS + 8 preamble) * 8 / DataRate; the
// next one may start an inter-frame gap later (96 bit times unless set). The peer receives the
// frame when its last bit arrives: start + serialization + channel Delay. Sub-nanosecond parts of
// the serialization carry over between back-to-back frames, so the long-run rate is exact and a
// frame is never slower than the same frame counted in whole nanoseconds rounded up (what the
// mlx5 model does, so the PHY behind it never falls behind it).
//
// Frames as bytes: a frame handed over with SendFrame() (Mlx5NetDevice does) travels as bytes,
// without an ns-3 Packet, Ethernet header or trailer object, through the queue or a scheduler
// event at the end of its serialization, whenever nothing could tell the difference: no trace
// sink on the sending device, the wire idle and the queue empty. At the other end it goes as bytes
// to an EthFrameReceiver when that device has no error model and no trace sink; otherwise it
// becomes there the Packet it would have been all along. The timing is the same either way.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <ns3/channel.h>
#include <ns3/data-rate.h>
#include <ns3/error-model.h>
#include <ns3/mac48-address.h>
#include <ns3/net-device-container.h>
#include <ns3/net-device.h>
#include <ns3/node-container.h>
#include <ns3/node.h>
#include <ns3/nstime.h>
#include <ns3/object-factory.h>
#include <ns3/packet.h>
#include <ns3/queue.h>
#include <ns3/trace-helper.h>
#include <ns3/traced-callback.h>

namespace nicmodel {

class EthLinkNetDevice;

// Takes whole frames as bytes (header and payload, padded to 60 bytes, no FCS) instead of
// ns-3 Packets through the promiscuous callback.
class EthFrameReceiver {
 public:
  virtual ~EthFrameReceiver() = default;
  virtual void ReceiveFrame(std::span<const uint8_t> frame, ns3::NetDevice::PacketType type) = 0;
};

// The cable: two attachment points, a propagation delay, both directions independent.
class EthLinkChannel : public ns3::Channel {
 public:
  static ns3::TypeId GetTypeId();
  EthLinkChannel();
  ~EthLinkChannel() override;

  // Attaches one end; false when both ends are taken.
  bool Attach(ns3::Ptr<EthLinkNetDevice> device);
  // `src` started sending `frame` now; it is fully on the wire after `tx_time`. The other end
  // receives it `tx_time + Delay` from now, in its node's context. Without another end the
  // frame is lost (an unplugged cable), which is not an error for the sender.
  bool TransmitStart(ns3::Ptr<const ns3::Packet> frame, ns3::Ptr<EthLinkNetDevice> src,
                     ns3::Time tx_time);
  // The same for a frame as bytes (header, payload and padding, no FCS).
  void TransmitStart(std::span<const uint8_t> frame, const EthLinkNetDevice* src, ns3::Time tx_time);
  // A frame in flight as bytes, by the slot its receive event carries; Release() recycles it.
  const std::vector<uint8_t>& InFlight(uint32_t slot) const { return in_flight_[slot]; }
  void Release(uint32_t slot) { free_slots_.push_back(slot); }
  ns3::Time GetDelay() const { return delay_; }
  // The end that is not `device` (null if there is none yet).
  ns3::Ptr<EthLinkNetDevice> GetPeer(ns3::Ptr<const EthLinkNetDevice> device) const;

  // ns3::Channel
  std::size_t GetNDevices() const override;
  ns3::Ptr<ns3::NetDevice> GetDevice(std::size_t i) const override;

 protected:
  void DoDispose() override;

 private:
  ns3::Time delay_;
  ns3::Ptr<EthLinkNetDevice> ends_[2];
  // Buffers of frames in flight as bytes: as many as were ever in flight at once, reused.
  std::vector<std::vector<uint8_t>> in_flight_;
  std::vector<uint32_t> free_slots_;
};

class EthLinkNetDevice : public ns3::NetDevice {
 public:
  static ns3::TypeId GetTypeId();
  EthLinkNetDevice();
  ~EthLinkNetDevice() override;
  EthLinkNetDevice(const EthLinkNetDevice&) = delete;
  EthLinkNetDevice& operator=(const EthLinkNetDevice&) = delete;

  // Plugs this port into `channel`; the link is up from then on. False if the channel is full.
  bool Attach(ns3::Ptr<EthLinkChannel> channel);
  void SetDataRate(ns3::DataRate rate) { rate_ = rate; }
  ns3::DataRate GetDataRate() const { return rate_; }
  // A negative gap (the default) means 96 bit times at the data rate (IEEE 802.3 4.4.2).
  void SetInterframeGap(ns3::Time gap) { ifg_ = gap; }
  ns3::Time GetInterframeGap() const;
  // The transmit queue (whole frames); the aggregated NetDeviceQueueInterface follows it.
  void SetQueue(ns3::Ptr<ns3::Queue<ns3::Packet>> queue);
  ns3::Ptr<ns3::Queue<ns3::Packet>> GetQueue() const { return queue_; }
  void SetReceiveErrorModel(ns3::Ptr<ns3::ErrorModel> em) { rx_error_model_ = em; }
  // Wire occupancy of a frame of `frame_bytes` (header, payload, padding and FCS): its
  // serialization including the preamble, without the inter-frame gap, in whole nanoseconds
  // (sub-nanosecond carry ignored; what a frame sent on an idle link takes).
  ns3::Time SerializationTime(uint32_t frame_bytes) const;

  // Called by the channel when the last bit of `frame` arrived.
  void Receive(ns3::Ptr<ns3::Packet> frame);
  // The same for the frame as bytes in the channel's slot `slot`.
  void ReceiveBytes(uint32_t slot);

  // Sends a whole frame (destination, source, type, payload; no FCS) as SendFrom() would send
  // its payload from its source to its destination: as bytes when nothing needs a Packet (see
  // the top of this file), else as the Packet SendFrom() makes. False when it was dropped.
  bool SendFrame(std::span<const uint8_t> frame);
  // Frames for this device go to `receiver` as bytes, not to the promiscuous and receive
  // callbacks, whenever nothing here needs them as Packets; setting either callback (or null)
  // forgets the receiver.
  void SetFrameReceiver(EthFrameReceiver* receiver) { frame_receiver_ = receiver; }
  // Every frame passes through the queue even when it finds the wire idle, so the queue's traces
  // and counters see each one (ascii tracing asks for it; frames as bytes skip an empty queue).
  void PassEveryFrameThroughQueue() { every_frame_queued_ = true; }

  // ns3::NetDevice
  void SetIfIndex(const uint32_t index) override { if_index_ = index; }
  uint32_t GetIfIndex() const override { return if_index_; }
  ns3::Ptr<ns3::Channel> GetChannel() const override;
  void SetAddress(ns3::Address address) override;
  ns3::Address GetAddress() const override { return address_; }
  // 68 (RFC 791 3.2 minimum) to 9000 (jumbo frames). Larger payloads are dropped (MacTxDrop);
  // a VLAN-tagged payload (ethertype 0x8100/0x88a8) may be 4 bytes longer.
  bool SetMtu(const uint16_t mtu) override;
  uint16_t GetMtu() const override { return mtu_; }
  bool IsLinkUp() const override { return link_up_; }
  void AddLinkChangeCallback(ns3::Callback<void> callback) override;
  bool IsBroadcast() const override { return true; }
  ns3::Address GetBroadcast() const override;
  bool IsMulticast() const override { return true; }
  ns3::Address GetMulticast(ns3::Ipv4Address group) const override;
  ns3::Address GetMulticast(ns3::Ipv6Address addr) const override;
  bool IsBridge() const override { return false; }
  // An Ethernet segment with two stations, not a PPP link: ARP and broadcast apply.
  bool IsPointToPoint() const override { return false; }
  bool Send(ns3::Ptr<ns3::Packet> packet, const ns3::Address& dest, uint16_t protocol) override;
  bool SendFrom(ns3::Ptr<ns3::Packet> packet, const ns3::Address& source, const ns3::Address& dest,
                uint16_t protocol) override;
  ns3::Ptr<ns3::Node> GetNode() const override { return node_; }
  void SetNode(ns3::Ptr<ns3::Node> node) override { node_ = node; }
  bool NeedsArp() const override { return true; }
  void SetReceiveCallback(ns3::NetDevice::ReceiveCallback cb) override {
    rx_callback_ = cb;
    frame_receiver_ = nullptr;
  }
  void SetPromiscReceiveCallback(ns3::NetDevice::PromiscReceiveCallback cb) override {
    promisc_callback_ = cb;
    frame_receiver_ = nullptr;
  }
  bool SupportsSendFrom() const override { return true; }

 protected:
  void DoDispose() override;
  // Creates the default queue if none was given and aggregates the NetDeviceQueueInterface, so
  // ns-3's traffic-control layer finds it before any address is assigned.
  void NotifyConstructionCompleted() override;

 private:
  enum class TxState { kReady, kBusy };

  // Frames `payload` and queues it (or starts it on an idle wire).
  bool Enqueue(ns3::Ptr<ns3::Packet> payload, ns3::Mac48Address src, ns3::Mac48Address dst,
               uint16_t protocol);
  void TransmitStart(ns3::Ptr<ns3::Packet> frame);
  void TransmitComplete();
  // Serialization of `frame_bytes` (incl. FCS) from now on, carrying the sub-nanosecond rest:
  // returns the time until the last bit is out and sets `done` to the time until the gap after
  // it is over too.
  ns3::Time StartSerialization(uint32_t frame_bytes, ns3::Time& done);
  // A frame sent as bytes schedules no TransmitComplete: once its time has passed, the wire is
  // idle as TransmitComplete would have left it with an empty queue.
  void SettleWire(ns3::Time now);
  // `payload` with padding, Ethernet header and trailer: the frame as a Packet.
  ns3::Ptr<ns3::Packet> Frame(ns3::Ptr<ns3::Packet> payload, ns3::Mac48Address src,
                              ns3::Mac48Address dst, uint16_t protocol) const;
  // Whether a frame sent now may go as bytes, and whether one received may.
  bool CanSendBytes() const;
  ns3::NetDevice::PacketType Classify(ns3::Mac48Address dst) const;
  bool CanReceiveBytes() const;
  // Bit times in picoseconds at the data rate.
  uint64_t BitsToPs(uint64_t bits) const;

  ns3::Ptr<ns3::Node> node_;
  ns3::Ptr<EthLinkChannel> channel_;
  ns3::Ptr<ns3::Queue<ns3::Packet>> queue_;
  ns3::Ptr<ns3::ErrorModel> rx_error_model_;
  ns3::Mac48Address address_;
  ns3::DataRate rate_;
  ns3::Time ifg_;
  uint32_t if_index_ = 0;
  uint16_t mtu_ = 1500;
  bool link_up_ = false;
  bool queue_interface_ready_ = false;
  TxState tx_state_ = TxState::kReady;
  ns3::Ptr<ns3::Packet> current_;  // the frame on the wire (null for a frame sent as bytes)
  uint64_t carry_ps_ = 0;          // sub-nanosecond rest of back-to-back serializations
  uint64_t gap_rate_bps_ = 0;      // the rate default_gap_ps_ is for
  uint64_t default_gap_ps_ = 0;    // 96 bit times at that rate
  ns3::Time busy_until_;           // end of the serialization and gap of a frame sent as bytes
  bool complete_pending_ = false;  // a TransmitComplete event is scheduled
  bool every_frame_queued_ = false;
  EthFrameReceiver* frame_receiver_ = nullptr;

  ns3::NetDevice::ReceiveCallback rx_callback_;
  ns3::NetDevice::PromiscReceiveCallback promisc_callback_;
  ns3::TracedCallback<> link_change_;

  // Traces as CsmaNetDevice names them: Mac* at the top (MacTx/MacTxDrop without the Ethernet
  // header, MacRx/MacPromiscRx whole frames), Phy* and the sniffers at the wire (whole frames).
  ns3::TracedCallback<ns3::Ptr<const ns3::Packet>> mac_tx_;
  ns3::TracedCallback<ns3::Ptr<const ns3::Packet>> mac_tx_drop_;
  ns3::TracedCallback<ns3::Ptr<const ns3::Packet>> mac_promisc_rx_;
  ns3::TracedCallback<ns3::Ptr<const ns3::Packet>> mac_rx_;
  ns3::TracedCallback<ns3::Ptr<const ns3::Packet>> phy_tx_begin_;
  ns3::TracedCallback<ns3::Ptr<const ns3::Packet>> phy_tx_end_;
  ns3::TracedCallback<ns3::Ptr<const ns3::Packet>> phy_rx_end_;
  ns3::TracedCallback<ns3::Ptr<const ns3::Packet>> phy_rx_drop_;
  ns3::TracedCallback<ns3::Ptr<const ns3::Packet>> sniffer_;
  ns3::TracedCallback<ns3::Ptr<const ns3::Packet>> promisc_sniffer_;
};

// Builds EthLink cables as PointToPointHelper builds PPP links, with pcap (DLT_EN10MB, what the
// "PromiscSniffer" trace sees) and ascii tracing.
class EthLinkHelper : public ns3::PcapHelperForDevice, public ns3::AsciiTraceHelperForDevice {
 public:
  EthLinkHelper();
  ~EthLinkHelper() override = default;

  // The transmit queue type of each device, e.g. SetQueue("ns3::DropTailQueue", "MaxSize",
  // StringValue("50p")). Default: DropTailQueue<Packet> of 100 packets.
  template <typename... Ts>
  void SetQueue(std::string type, Ts&&... args);
  void SetDeviceAttribute(std::string name, const ns3::AttributeValue& value);
  void SetChannelAttribute(std::string name, const ns3::AttributeValue& value);

  // A new cable between `a` and `b`: two devices with allocated MAC addresses, added to the
  // nodes, plugged into one new channel.
  ns3::NetDeviceContainer Install(ns3::Ptr<ns3::Node> a, ns3::Ptr<ns3::Node> b);
  // The same for a container of exactly two nodes.
  ns3::NetDeviceContainer Install(const ns3::NodeContainer& nodes);
  // A new, empty cable with the channel attributes.
  ns3::Ptr<EthLinkChannel> CreateChannel() const;
  // One device with an allocated MAC address on `node`, plugged into `channel` (whose other
  // end may come later).
  ns3::Ptr<EthLinkNetDevice> InstallOne(ns3::Ptr<ns3::Node> node,
                                        ns3::Ptr<EthLinkChannel> channel) const;

 private:
  void EnablePcapInternal(std::string prefix, ns3::Ptr<ns3::NetDevice> nd, bool promiscuous,
                          bool explicit_filename) override;
  void EnableAsciiInternal(ns3::Ptr<ns3::OutputStreamWrapper> stream, std::string prefix,
                           ns3::Ptr<ns3::NetDevice> nd, bool explicit_filename) override;

  ns3::ObjectFactory queue_factory_;
  ns3::ObjectFactory device_factory_;
  ns3::ObjectFactory channel_factory_;
};

template <typename... Ts>
void EthLinkHelper::SetQueue(std::string type, Ts&&... args) {
  ns3::QueueBase::AppendItemTypeIfNotPresent(type, "Packet");
  queue_factory_.SetTypeId(type);
  queue_factory_.Set(std::forward<Ts>(args)...);
}

}  // namespace nicmodel
