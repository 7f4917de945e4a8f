#include "nicmodel/ns3/eth_link.h"

#include <sstream>

#include <ns3/boolean.h>
#include <ns3/data-rate.h>
#include <ns3/drop-tail-queue.h>
#include <ns3/ethernet-header.h>
#include <ns3/ethernet-trailer.h>
#include <ns3/log.h>
#include <ns3/mac48-address.h>
#include <ns3/net-device-queue-interface.h>
#include <ns3/pointer.h>
#include <ns3/simulator.h>
#include <ns3/trace-source-accessor.h>
#include <ns3/uinteger.h>

namespace nicmodel {

NS_LOG_COMPONENT_DEFINE("ShuntEthLink");

NS_OBJECT_ENSURE_REGISTERED(EthLinkChannel);
NS_OBJECT_ENSURE_REGISTERED(EthLinkNetDevice);

namespace {
constexpr uint32_t kPreambleBytes = 8;     // preamble + start frame delimiter (IEEE 802.3 3.1)
constexpr uint32_t kMinFrameBytes = 64;    // header + payload + FCS (IEEE 802.3 4.4.2)
constexpr uint32_t kHeaderBytes = 14;      // DIX: destination, source, type
constexpr uint32_t kFcsBytes = 4;
constexpr uint32_t kMinPayloadBytes = kMinFrameBytes - kHeaderBytes - kFcsBytes;  // 46
constexpr uint64_t kInterframeGapBits = 96;  // IEEE 802.3 4.4.2
constexpr uint16_t kMinMtu = 68;             // RFC 791 3.2
constexpr uint16_t kMaxMtu = 9000;           // jumbo frames
}  // namespace

// ---------------------------------------------------------------------------------------------
// EthLinkChannel

ns3::TypeId EthLinkChannel::GetTypeId() {
  static ns3::TypeId tid =
      ns3::TypeId("nicmodel::EthLinkChannel")
          .SetParent<ns3::Channel>()
          .SetGroupName("Shunt")
          .AddConstructor<EthLinkChannel>()
          .AddAttribute("Delay", "Propagation delay from one end to the other",
                        ns3::TimeValue(ns3::Seconds(0)),
                        ns3::MakeTimeAccessor(&EthLinkChannel::delay_), ns3::MakeTimeChecker());
  return tid;
}

EthLinkChannel::EthLinkChannel() = default;
EthLinkChannel::~EthLinkChannel() = default;

bool EthLinkChannel::Attach(ns3::Ptr<EthLinkNetDevice> device) {
  for (auto& end : ends_) {
    if (end == device) return true;
    if (!end) {
      end = device;
      return true;
    }
  }
  return false;
}

ns3::Ptr<EthLinkNetDevice> EthLinkChannel::GetPeer(ns3::Ptr<const EthLinkNetDevice> device) const {
  if (ends_[0] == device) return ends_[1];
  if (ends_[1] == device) return ends_[0];
  return nullptr;
}

bool EthLinkChannel::TransmitStart(ns3::Ptr<const ns3::Packet> frame,
                                   ns3::Ptr<EthLinkNetDevice> src, ns3::Time tx_time) {
  ns3::Ptr<EthLinkNetDevice> peer = GetPeer(src);
  if (!peer) return true;  // nothing at the other end of the cable
  ns3::Ptr<ns3::Node> node = peer->GetNode();
  uint32_t context = node ? node->GetId() : ns3::Simulator::NO_CONTEXT;
  // The receiver gets its own copy: it strips headers, the sender's traces keep the frame.
  ns3::Simulator::ScheduleWithContext(context, tx_time + delay_, &EthLinkNetDevice::Receive, peer,
                                      frame->Copy());
  return true;
}

void EthLinkChannel::TransmitStart(std::span<const uint8_t> frame, const EthLinkNetDevice* src,
                                   ns3::Time tx_time) {
  EthLinkNetDevice* peer = ns3::PeekPointer(ends_[0]) == src   ? ns3::PeekPointer(ends_[1])
                           : ns3::PeekPointer(ends_[1]) == src ? ns3::PeekPointer(ends_[0])
                                                               : nullptr;
  if (!peer) return;  // nothing at the other end of the cable
  uint32_t slot;
  if (free_slots_.empty()) {  // more frames in flight than ever before: grows, then reused
    slot = uint32_t(in_flight_.size());
    in_flight_.emplace_back();
  } else {
    slot = free_slots_.back();
    free_slots_.pop_back();
  }
  std::vector<uint8_t>& bytes = in_flight_[slot];
  bytes.assign(frame.begin(), frame.end());
  // IEEE 802.3 4.4.2: zero padding up to the 60 bytes before the FCS.
  if (bytes.size() < kMinFrameBytes - kFcsBytes) bytes.resize(kMinFrameBytes - kFcsBytes, 0);
  ns3::Ptr<ns3::Node> node = peer->GetNode();
  uint32_t context = node ? node->GetId() : ns3::Simulator::NO_CONTEXT;
  ns3::Simulator::ScheduleWithContext(context, tx_time + delay_, &EthLinkNetDevice::ReceiveBytes, peer,
                                      slot);
}

std::size_t EthLinkChannel::GetNDevices() const {
  return (ends_[0] ? 1 : 0) + (ends_[1] ? 1 : 0);
}

ns3::Ptr<ns3::NetDevice> EthLinkChannel::GetDevice(std::size_t i) const {
  return i < 2 ? ns3::Ptr<ns3::NetDevice>(ends_[i]) : nullptr;
}

void EthLinkChannel::DoDispose() {
  ends_[0] = nullptr;
  ends_[1] = nullptr;
  in_flight_.clear();
  free_slots_.clear();
  ns3::Channel::DoDispose();
}

// ---------------------------------------------------------------------------------------------
// EthLinkNetDevice

ns3::TypeId EthLinkNetDevice::GetTypeId() {
  static ns3::TypeId tid =
      ns3::TypeId("nicmodel::EthLinkNetDevice")
          .SetParent<ns3::NetDevice>()
          .SetGroupName("Shunt")
          .AddConstructor<EthLinkNetDevice>()
          .AddAttribute("Mtu", "The largest payload of a frame (IP packet size), 68 to 9000",
                        ns3::UintegerValue(1500),
                        ns3::MakeUintegerAccessor(&EthLinkNetDevice::SetMtu, &EthLinkNetDevice::GetMtu),
                        ns3::MakeUintegerChecker<uint16_t>(kMinMtu, kMaxMtu))
          .AddAttribute("Address", "The MAC address of this device",
                        ns3::Mac48AddressValue(ns3::Mac48Address("ff:ff:ff:ff:ff:ff")),
                        ns3::MakeMac48AddressAccessor(&EthLinkNetDevice::address_),
                        ns3::MakeMac48AddressChecker())
          .AddAttribute("DataRate", "The line rate", ns3::DataRateValue(ns3::DataRate("1Gbps")),
                        ns3::MakeDataRateAccessor(&EthLinkNetDevice::rate_), ns3::MakeDataRateChecker())
          .AddAttribute("InterframeGap",
                        "Idle time after each frame; negative means 96 bit times at DataRate",
                        ns3::TimeValue(ns3::NanoSeconds(-1)),
                        ns3::MakeTimeAccessor(&EthLinkNetDevice::ifg_), ns3::MakeTimeChecker())
          .AddAttribute("TxQueue", "The transmit queue of whole frames",
                        ns3::PointerValue(),
                        ns3::MakePointerAccessor(&EthLinkNetDevice::SetQueue, &EthLinkNetDevice::GetQueue),
                        ns3::MakePointerChecker<ns3::Queue<ns3::Packet>>())
          .AddAttribute("ReceiveErrorModel", "Frames it calls corrupt are dropped (PhyRxDrop)",
                        ns3::PointerValue(),
                        ns3::MakePointerAccessor(&EthLinkNetDevice::rx_error_model_),
                        ns3::MakePointerChecker<ns3::ErrorModel>())
          .AddTraceSource("MacTx", "A packet from above, before framing",
                          ns3::MakeTraceSourceAccessor(&EthLinkNetDevice::mac_tx_),
                          "ns3::Packet::TracedCallback")
          .AddTraceSource("MacTxDrop", "A frame dropped before transmission (queue full, too big, link down)",
                          ns3::MakeTraceSourceAccessor(&EthLinkNetDevice::mac_tx_drop_),
                          "ns3::Packet::TracedCallback")
          .AddTraceSource("MacPromiscRx", "A frame passed to the promiscuous callback",
                          ns3::MakeTraceSourceAccessor(&EthLinkNetDevice::mac_promisc_rx_),
                          "ns3::Packet::TracedCallback")
          .AddTraceSource("MacRx", "A frame for this host passed up",
                          ns3::MakeTraceSourceAccessor(&EthLinkNetDevice::mac_rx_),
                          "ns3::Packet::TracedCallback")
          .AddTraceSource("PhyTxBegin", "A frame starts on the wire",
                          ns3::MakeTraceSourceAccessor(&EthLinkNetDevice::phy_tx_begin_),
                          "ns3::Packet::TracedCallback")
          .AddTraceSource("PhyTxEnd", "A frame and its inter-frame gap are done",
                          ns3::MakeTraceSourceAccessor(&EthLinkNetDevice::phy_tx_end_),
                          "ns3::Packet::TracedCallback")
          .AddTraceSource("PhyRxEnd", "A good frame was received",
                          ns3::MakeTraceSourceAccessor(&EthLinkNetDevice::phy_rx_end_),
                          "ns3::Packet::TracedCallback")
          .AddTraceSource("PhyRxDrop", "A received frame was corrupt (error model or bad FCS)",
                          ns3::MakeTraceSourceAccessor(&EthLinkNetDevice::phy_rx_drop_),
                          "ns3::Packet::TracedCallback")
          .AddTraceSource("Sniffer", "Frames sent, and frames received for this host",
                          ns3::MakeTraceSourceAccessor(&EthLinkNetDevice::sniffer_),
                          "ns3::Packet::TracedCallback")
          .AddTraceSource("PromiscSniffer", "Every frame sent or received",
                          ns3::MakeTraceSourceAccessor(&EthLinkNetDevice::promisc_sniffer_),
                          "ns3::Packet::TracedCallback");
  return tid;
}

EthLinkNetDevice::EthLinkNetDevice() = default;
EthLinkNetDevice::~EthLinkNetDevice() = default;

void EthLinkNetDevice::NotifyConstructionCompleted() {
  if (!queue_) queue_ = ns3::CreateObject<ns3::DropTailQueue<ns3::Packet>>();  // 100p
  // As PointToPointHelper does for its devices in ns-3 3.37: the queue's enqueue/dequeue traces
  // stop and wake the interface's tx queue, which holds back or restarts the queue disc above.
  auto ndqi = ns3::CreateObject<ns3::NetDeviceQueueInterface>();
  AggregateObject(ndqi);
  ndqi->GetTxQueue(0)->ConnectQueueTraces(queue_);
  queue_interface_ready_ = true;
  ns3::NetDevice::NotifyConstructionCompleted();
}

void EthLinkNetDevice::DoDispose() {
  node_ = nullptr;
  channel_ = nullptr;
  queue_ = nullptr;
  rx_error_model_ = nullptr;
  current_ = nullptr;
  frame_receiver_ = nullptr;
  rx_callback_ = ns3::NetDevice::ReceiveCallback();
  promisc_callback_ = ns3::NetDevice::PromiscReceiveCallback();
  ns3::NetDevice::DoDispose();
}

bool EthLinkNetDevice::Attach(ns3::Ptr<EthLinkChannel> channel) {
  if (!channel || !channel->Attach(this)) return false;
  channel_ = channel;
  link_up_ = true;
  link_change_();
  return true;
}

void EthLinkNetDevice::SetQueue(ns3::Ptr<ns3::Queue<ns3::Packet>> queue) {
  queue_ = queue;
  if (queue_interface_ready_ && queue_) {
    GetObject<ns3::NetDeviceQueueInterface>()->GetTxQueue(0)->ConnectQueueTraces(queue_);
  }
}

uint64_t EthLinkNetDevice::BitsToPs(uint64_t bits) const {
  uint64_t bps = rate_.GetBitRate();
  if (bps == 0) return 0;
  // 64-bit arithmetic while bits * 10^12 fits (every frame does), without a 128-bit division.
  if (bits <= UINT64_MAX / 1'000'000'000'000ULL) return bits * 1'000'000'000'000ULL / bps;
  return static_cast<uint64_t>(static_cast<unsigned __int128>(bits) * 1'000'000'000'000ULL / bps);
}

ns3::Time EthLinkNetDevice::GetInterframeGap() const {
  return ifg_.IsStrictlyNegative() ? ns3::PicoSeconds(BitsToPs(kInterframeGapBits)) : ifg_;
}

ns3::Time EthLinkNetDevice::SerializationTime(uint32_t frame_bytes) const {
  return ns3::NanoSeconds(BitsToPs(uint64_t{frame_bytes + kPreambleBytes} * 8) / 1000);
}

ns3::Ptr<ns3::Channel> EthLinkNetDevice::GetChannel() const { return channel_; }

void EthLinkNetDevice::SetAddress(ns3::Address address) {
  address_ = ns3::Mac48Address::ConvertFrom(address);
}

bool EthLinkNetDevice::SetMtu(const uint16_t mtu) {
  if (mtu < kMinMtu || mtu > kMaxMtu) return false;
  mtu_ = mtu;
  return true;
}

void EthLinkNetDevice::AddLinkChangeCallback(ns3::Callback<void> callback) {
  link_change_.ConnectWithoutContext(callback);
}

ns3::Address EthLinkNetDevice::GetBroadcast() const { return ns3::Mac48Address::GetBroadcast(); }

// RFC 1112 6.4: 01:00:5e + the low 23 bits of the group.
ns3::Address EthLinkNetDevice::GetMulticast(ns3::Ipv4Address group) const {
  return ns3::Mac48Address::GetMulticast(group);
}

// RFC 2464 7: 33:33 + the low 32 bits of the address.
ns3::Address EthLinkNetDevice::GetMulticast(ns3::Ipv6Address addr) const {
  return ns3::Mac48Address::GetMulticast(addr);
}

bool EthLinkNetDevice::Send(ns3::Ptr<ns3::Packet> packet, const ns3::Address& dest,
                            uint16_t protocol) {
  return Enqueue(packet, address_, ns3::Mac48Address::ConvertFrom(dest), protocol);
}

bool EthLinkNetDevice::SendFrom(ns3::Ptr<ns3::Packet> packet, const ns3::Address& source,
                                const ns3::Address& dest, uint16_t protocol) {
  return Enqueue(packet, ns3::Mac48Address::ConvertFrom(source),
                 ns3::Mac48Address::ConvertFrom(dest), protocol);
}

ns3::Ptr<ns3::Packet> EthLinkNetDevice::Frame(ns3::Ptr<ns3::Packet> payload, ns3::Mac48Address src,
                                               ns3::Mac48Address dst, uint16_t protocol) const {
  // IEEE 802.3 4.4.2: at least 46 bytes of payload, zero-padded.
  if (payload->GetSize() < kMinPayloadBytes) {
    // Not AddPaddingAtEnd: its bytes are whatever ns-3's recycled buffers held, so a trace would
    // depend on what ran before. A new packet's bytes are zeros.
    payload->AddAtEnd(ns3::Create<ns3::Packet>(kMinPayloadBytes - payload->GetSize()));
  }
  ns3::EthernetHeader header(false);
  header.SetSource(src);
  header.SetDestination(dst);
  header.SetLengthType(protocol);
  payload->AddHeader(header);
  ns3::EthernetTrailer trailer;
  if (ns3::Node::ChecksumEnabled()) trailer.EnableFcs(true);
  trailer.CalcFcs(payload);
  payload->AddTrailer(trailer);
  return payload;
}

bool EthLinkNetDevice::Enqueue(ns3::Ptr<ns3::Packet> payload, ns3::Mac48Address src,
                               ns3::Mac48Address dst, uint16_t protocol) {
  mac_tx_(payload);
  // IEEE 802.1Q 6.9: a tagged frame carries its 4-byte tag before the MTU-sized payload.
  const uint32_t max_payload = mtu_ + ((protocol == 0x8100 || protocol == 0x88a8) ? 4 : 0);
  if (!link_up_ || payload->GetSize() > max_payload) {
    mac_tx_drop_(payload);
    return false;
  }
  ns3::Ptr<ns3::Packet> frame = Frame(payload, src, dst, protocol);

  // Only a frame sent as bytes leaves the wire to settle (and only then is the time needed).
  if (tx_state_ == TxState::kBusy && !complete_pending_) SettleWire(ns3::Simulator::Now());
  if (!queue_->Enqueue(frame)) {
    mac_tx_drop_(frame);
    return false;
  }
  if (tx_state_ == TxState::kReady) {
    // Busy before dequeuing: the dequeue may wake the queue disc above, whose Send then only
    // enqueues behind this frame.
    tx_state_ = TxState::kBusy;
    ns3::Ptr<ns3::Packet> next = queue_->Dequeue();
    if (!next) {
      tx_state_ = TxState::kReady;
      return true;
    }
    TransmitStart(next);
  } else if (!complete_pending_) {
    // The frame on the wire went as bytes: the end of its serialization takes the queue on.
    complete_pending_ = true;
    ns3::Simulator::Schedule(busy_until_ - ns3::Simulator::Now(), &EthLinkNetDevice::TransmitComplete,
                             this);
  }
  return true;
}

bool EthLinkNetDevice::CanSendBytes() const {
  return link_up_ && tx_state_ == TxState::kReady && !every_frame_queued_ && queue_->IsEmpty() &&
         mac_tx_.IsEmpty() && sniffer_.IsEmpty() && promisc_sniffer_.IsEmpty() &&
         phy_tx_begin_.IsEmpty() && phy_tx_end_.IsEmpty();
}

bool EthLinkNetDevice::CanReceiveBytes() const {
  return frame_receiver_ && !rx_error_model_ && phy_rx_end_.IsEmpty() && sniffer_.IsEmpty() &&
         promisc_sniffer_.IsEmpty() && mac_promisc_rx_.IsEmpty() && mac_rx_.IsEmpty();
}

bool EthLinkNetDevice::SendFrame(std::span<const uint8_t> frame) {
  if (frame.size() < kHeaderBytes) return false;
  const uint16_t protocol = uint16_t(frame[12] << 8 | frame[13]);
  const uint32_t max_payload = mtu_ + ((protocol == 0x8100 || protocol == 0x88a8) ? 4 : 0);
  const ns3::Time now = ns3::Simulator::Now();
  SettleWire(now);
  if (frame.size() - kHeaderBytes <= max_payload && CanSendBytes()) {
    tx_state_ = TxState::kBusy;
    current_ = nullptr;
    const uint32_t padded = std::max<uint32_t>(uint32_t(frame.size()), kMinFrameBytes - kFcsBytes);
    ns3::Time done;
    const ns3::Time tx = StartSerialization(padded + kFcsBytes, done);
    busy_until_ = now + done;
    channel_->TransmitStart(frame, this, tx);
    return true;
  }
  ns3::Mac48Address dst, src;
  dst.CopyFrom(frame.data());
  src.CopyFrom(frame.data() + 6);
  return Enqueue(ns3::Create<ns3::Packet>(frame.data() + kHeaderBytes, uint32_t(frame.size() - kHeaderBytes)),
                 src, dst, protocol);
}

ns3::Time EthLinkNetDevice::StartSerialization(uint32_t frame_bytes, ns3::Time& done) {
  // Serialization of preamble + frame, then the gap; the sub-nanosecond rest carries over to
  // the next back-to-back frame.
  uint64_t tx_ps = carry_ps_ + BitsToPs(uint64_t{frame_bytes + kPreambleBytes} * 8);
  uint64_t gap_ps;
  if (ifg_.IsStrictlyNegative()) {
    const uint64_t bps = rate_.GetBitRate();
    if (bps != gap_rate_bps_) {  // the default gap at this rate, worked out once
      gap_rate_bps_ = bps;
      default_gap_ps_ = BitsToPs(kInterframeGapBits);
    }
    gap_ps = default_gap_ps_;
  } else {
    gap_ps = static_cast<uint64_t>(ifg_.GetPicoSeconds());
  }
  uint64_t done_ps = tx_ps + gap_ps;
  carry_ps_ = done_ps % 1000;
  done = ns3::NanoSeconds(done_ps / 1000);
  return ns3::NanoSeconds(tx_ps / 1000);
}

void EthLinkNetDevice::SettleWire(ns3::Time now) {
  if (tx_state_ == TxState::kBusy && !complete_pending_ && now >= busy_until_) {
    // What TransmitComplete does when the queue is empty (it is: a frame waiting for the wire
    // schedules the completion).
    tx_state_ = TxState::kReady;
    carry_ps_ = 0;
  }
}

void EthLinkNetDevice::TransmitStart(ns3::Ptr<ns3::Packet> frame) {
  current_ = frame;
  sniffer_(frame);
  promisc_sniffer_(frame);
  phy_tx_begin_(frame);
  ns3::Time done;
  const ns3::Time tx = StartSerialization(frame->GetSize(), done);
  complete_pending_ = true;
  ns3::Simulator::Schedule(done, &EthLinkNetDevice::TransmitComplete, this);
  channel_->TransmitStart(frame, this, tx);
}

void EthLinkNetDevice::TransmitComplete() {
  complete_pending_ = false;
  if (current_) phy_tx_end_(current_);
  current_ = nullptr;
  // Still busy while dequeuing (see Enqueue).
  ns3::Ptr<ns3::Packet> next = queue_ ? queue_->Dequeue() : nullptr;
  if (!next) {
    tx_state_ = TxState::kReady;
    carry_ps_ = 0;
    return;
  }
  TransmitStart(next);
}

ns3::NetDevice::PacketType EthLinkNetDevice::Classify(ns3::Mac48Address dst) const {
  if (dst.IsBroadcast()) return ns3::NetDevice::PACKET_BROADCAST;
  if (dst.IsGroup()) return ns3::NetDevice::PACKET_MULTICAST;
  if (dst == address_) return ns3::NetDevice::PACKET_HOST;
  return ns3::NetDevice::PACKET_OTHERHOST;
}

void EthLinkNetDevice::ReceiveBytes(uint32_t slot) {
  if (!channel_) return;
  const std::vector<uint8_t>& bytes = channel_->InFlight(slot);
  const std::span<const uint8_t> frame(bytes.data(), bytes.size());  // stays put until Release
  ns3::Mac48Address dst;
  dst.CopyFrom(frame.data());
  if (CanReceiveBytes()) {
    frame_receiver_->ReceiveFrame(frame, Classify(dst));
  } else {
    ns3::Mac48Address src;
    src.CopyFrom(frame.data() + 6);
    const uint16_t protocol = uint16_t(frame[12] << 8 | frame[13]);
    ns3::Ptr<ns3::Packet> packet = Frame(
        ns3::Create<ns3::Packet>(frame.data() + kHeaderBytes, uint32_t(frame.size() - kHeaderBytes)), src, dst,
        protocol);
    channel_->Release(slot);
    Receive(packet);
    return;
  }
  channel_->Release(slot);
}

void EthLinkNetDevice::Receive(ns3::Ptr<ns3::Packet> frame) {
  if (rx_error_model_ && rx_error_model_->IsCorrupt(frame)) {
    phy_rx_drop_(frame);
    return;
  }
  ns3::Ptr<ns3::Packet> original = frame->Copy();  // traces see whole frames
  ns3::EthernetTrailer trailer;
  frame->RemoveTrailer(trailer);
  if (ns3::Node::ChecksumEnabled()) {
    trailer.EnableFcs(true);
    if (!trailer.CheckFcs(frame)) {
      phy_rx_drop_(original);
      return;
    }
  }
  ns3::EthernetHeader header(false);
  frame->RemoveHeader(header);
  phy_rx_end_(original);

  ns3::Mac48Address dst = header.GetDestination();
  const ns3::NetDevice::PacketType type = Classify(dst);
  uint16_t protocol = header.GetLengthType();

  promisc_sniffer_(original);
  if (type != ns3::NetDevice::PACKET_OTHERHOST) sniffer_(original);
  if (!promisc_callback_.IsNull()) {
    mac_promisc_rx_(original);
    promisc_callback_(this, frame, protocol, header.GetSource(), dst, type);
  }
  if (type != ns3::NetDevice::PACKET_OTHERHOST && !rx_callback_.IsNull()) {
    mac_rx_(original);
    rx_callback_(this, frame, protocol, header.GetSource());
  }
}

// ---------------------------------------------------------------------------------------------
// EthLinkHelper

EthLinkHelper::EthLinkHelper() {
  queue_factory_.SetTypeId("ns3::DropTailQueue<Packet>");
  device_factory_.SetTypeId(EthLinkNetDevice::GetTypeId());
  channel_factory_.SetTypeId(EthLinkChannel::GetTypeId());
}

void EthLinkHelper::SetDeviceAttribute(std::string name, const ns3::AttributeValue& value) {
  device_factory_.Set(name, value);
}

void EthLinkHelper::SetChannelAttribute(std::string name, const ns3::AttributeValue& value) {
  channel_factory_.Set(name, value);
}

ns3::Ptr<EthLinkChannel> EthLinkHelper::CreateChannel() const {
  return channel_factory_.Create<EthLinkChannel>();
}

ns3::Ptr<EthLinkNetDevice> EthLinkHelper::InstallOne(ns3::Ptr<ns3::Node> node,
                                                     ns3::Ptr<EthLinkChannel> channel) const {
  auto device = device_factory_.Create<EthLinkNetDevice>();
  device->SetAddress(ns3::Mac48Address::Allocate());
  device->SetQueue(queue_factory_.Create<ns3::Queue<ns3::Packet>>());
  node->AddDevice(device);
  NS_ABORT_MSG_UNLESS(device->Attach(channel), "EthLinkChannel: both ends are taken");
  return device;
}

ns3::NetDeviceContainer EthLinkHelper::Install(ns3::Ptr<ns3::Node> a, ns3::Ptr<ns3::Node> b) {
  ns3::Ptr<EthLinkChannel> channel = CreateChannel();
  ns3::NetDeviceContainer devices;
  devices.Add(InstallOne(a, channel));
  devices.Add(InstallOne(b, channel));
  return devices;
}

ns3::NetDeviceContainer EthLinkHelper::Install(const ns3::NodeContainer& nodes) {
  NS_ABORT_MSG_UNLESS(nodes.GetN() == 2, "EthLinkHelper::Install: a cable has two ends");
  return Install(nodes.Get(0), nodes.Get(1));
}

void EthLinkHelper::EnablePcapInternal(std::string prefix, ns3::Ptr<ns3::NetDevice> nd,
                                       bool promiscuous, bool explicit_filename) {
  ns3::Ptr<EthLinkNetDevice> device = nd->GetObject<EthLinkNetDevice>();
  if (!device) return;  // not ours
  ns3::PcapHelper pcap;
  std::string filename = explicit_filename ? prefix : pcap.GetFilenameFromDevice(prefix, device);
  ns3::Ptr<ns3::PcapFileWrapper> file =
      pcap.CreateFile(filename, std::ios::out, ns3::PcapHelper::DLT_EN10MB);
  pcap.HookDefaultSink<EthLinkNetDevice>(device, promiscuous ? "PromiscSniffer" : "Sniffer", file);
}

void EthLinkHelper::EnableAsciiInternal(ns3::Ptr<ns3::OutputStreamWrapper> stream,
                                        std::string prefix, ns3::Ptr<ns3::NetDevice> nd,
                                        bool explicit_filename) {
  ns3::Ptr<EthLinkNetDevice> device = nd->GetObject<EthLinkNetDevice>();
  if (!device) return;
  device->PassEveryFrameThroughQueue();  // the queue's lines below show every frame
  ns3::AsciiTraceHelper ascii;
  if (!stream) {
    std::string filename =
        explicit_filename ? prefix : ascii.GetFilenameFromDevice(prefix, device);
    stream = ascii.CreateFileStream(filename);
  }
  std::ostringstream path;
  path << "/NodeList/" << (device->GetNode() ? device->GetNode()->GetId() : 0) << "/DeviceList/"
       << device->GetIfIndex() << "/$nicmodel::EthLinkNetDevice/";
  std::string base = path.str();
  device->TraceConnect("MacRx", base + "MacRx",
                       ns3::MakeBoundCallback(&ns3::AsciiTraceHelper::DefaultReceiveSinkWithContext,
                                              stream));
  device->TraceConnect("PhyRxDrop", base + "PhyRxDrop",
                       ns3::MakeBoundCallback(&ns3::AsciiTraceHelper::DefaultDropSinkWithContext,
                                              stream));
  device->TraceConnect("MacTxDrop", base + "MacTxDrop",
                       ns3::MakeBoundCallback(&ns3::AsciiTraceHelper::DefaultDropSinkWithContext,
                                              stream));
  ns3::Ptr<ns3::Queue<ns3::Packet>> queue = device->GetQueue();
  if (!queue) return;
  queue->TraceConnect("Enqueue", base + "TxQueue/Enqueue",
                      ns3::MakeBoundCallback(&ns3::AsciiTraceHelper::DefaultEnqueueSinkWithContext,
                                             stream));
  queue->TraceConnect("Dequeue", base + "TxQueue/Dequeue",
                      ns3::MakeBoundCallback(&ns3::AsciiTraceHelper::DefaultDequeueSinkWithContext,
                                             stream));
  queue->TraceConnect("Drop", base + "TxQueue/Drop",
                      ns3::MakeBoundCallback(&ns3::AsciiTraceHelper::DefaultDropSinkWithContext,
                                             stream));
}

}  // namespace nicmodel
