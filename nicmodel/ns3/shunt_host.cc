#include "nicmodel/ns3/shunt_host.h"

#include <ns3/node.h>
#include <ns3/simulator.h>

#include "stack/net/stack.h"
#include "stack/socket/socket_api.h"

namespace nicmodel {

NS_OBJECT_ENSURE_REGISTERED(ShuntHost);

namespace {
// Polls in a row at one instant before the host counts a stall and steps a microsecond.
constexpr uint64_t kMaxPollsPerInstant = 100'000;
}  // namespace

ns3::TypeId ShuntHost::GetTypeId() {
  static ns3::TypeId tid = ns3::TypeId("nicmodel::ShuntHost")
                               .SetParent<ns3::Application>()
                               .SetGroupName("Shunt")
                               .AddConstructor<ShuntHost>();
  return tid;
}

ShuntHost::ShuntHost() = default;
ShuntHost::~ShuntHost() = default;

void ShuntHost::DoDispose() {
  ns3::Simulator::Cancel(poll_event_);
  running_ = false;
  tasks_.clear();
  // Sockets, then the stack (it returns the driver's buffers), then our hold on the NIC.
  api_.reset();
  stack_.reset();
  if (nic_) nic_->SetCompletionCallback(nullptr);
  nic_ = nullptr;
  ns3::Application::DoDispose();
}

bool ShuntHost::Configure(ns3::Ptr<Mlx5NetDevice> nic, const shunt::Config& config, std::string& error) {
  if (stack_) {
    error = "ShuntHost::Configure called twice";
    return false;
  }
  if (!nic->Setup(config, error)) return false;
  nic_ = nic;
  stack_ = std::make_unique<shunt::Stack>(nic_->driver(), nic_->model_clock(), config);
  api_ = std::make_unique<shunt::SocketApi>(*stack_);
  // Nothing in a simulation may block: a blocking call that cannot complete fails at once.
  api_->set_waiter([](shunt::Nanos) { return false; });
  // Completions are looked at in the same event that wrote them: no event of its own per CQE.
  nic_->SetCompletionCallback([this] {
    if (running_) Poll();
  });
  nic_->Kick();
  return true;
}

void ShuntHost::AddAddress(const shunt::IpAddr& addr, int prefix_len) {
  stack_->add_address(addr, prefix_len);
  nic_->Kick();
  Wake();
}

void ShuntHost::SetDefaultGateway(const shunt::IpAddr& gw) { stack_->set_default_gateway(gw); }

shunt::Nanos ShuntHost::now() const {
  return nic_ ? nic_->model_clock().now() : ns3::Simulator::Now().GetNanoSeconds();  // the same time, cheaper
}

void ShuntHost::AddTask(Task task) {
  tasks_.push_back(std::move(task));
  Wake();
}

void ShuntHost::StartApplication() {
  running_ = true;
  ScheduleAt(now());
}

void ShuntHost::StopApplication() {
  running_ = false;
  if (poll_at_ != shunt::kNever) ns3::Simulator::Cancel(poll_event_);
  poll_at_ = shunt::kNever;
}

void ShuntHost::Wake() {
  if (running_) ScheduleAt(now());
}

void ShuntHost::ScheduleAt(shunt::Nanos t) {
  if (!running_ || t == shunt::kNever) return;
  // poll_at_ is the time of the pending poll (kNever: none); asking ns-3 costs more.
  if (poll_at_ <= t) return;
  if (poll_at_ != shunt::kNever) ns3::Simulator::Cancel(poll_event_);
  const shunt::Nanos n = now();
  poll_at_ = std::max(t, n);
  poll_event_ = ns3::Simulator::Schedule(ns3::NanoSeconds(poll_at_ - n), &ShuntHost::Poll, this);
}

void ShuntHost::Poll() {
  // Run from its own event, or directly on a completion while an event for later is pending
  // (which then stays, unless the stack's next deadline is earlier).
  if (poll_at_ <= now()) {
    ns3::Simulator::Cancel(poll_event_);  // it is this event, or one at this instant that is now moot
    poll_at_ = shunt::kNever;
  }
  const shunt::Nanos n = now();
  ++polls_;
  shunt::Nanos next = stack_->poll();
  for (auto& task : tasks_) next = std::min(next, task(*this));
  // What the tasks sent went to the NIC at once (sends outside poll do); the model's events
  // follow at their times.
  nic_->Kick();
  if (n == last_poll_) {
    if (++same_instant_ > kMaxPollsPerInstant && next <= n) {
      ++stalls_;
      same_instant_ = 0;
      next = n + shunt::kMicro;
    }
  } else {
    same_instant_ = 0;
    last_poll_ = n;
  }
  ScheduleAt(next);
}

ns3::Ptr<ShuntHost> InstallShuntHost(ns3::Ptr<ns3::Node> node, ns3::Ptr<ns3::NetDevice> phy, uint64_t rate_bps,
                                     const shunt::Config& config, ns3::Mac48Address mac, std::string& error) {
  auto nic = ns3::CreateObject<Mlx5NetDevice>();
  nic->SetAddress(mac);
  if (phy->GetMtu() != nic->GetMtu() && !nic->SetMtu(phy->GetMtu())) {
    error = "PHY MTU " + std::to_string(phy->GetMtu()) + " is outside the NIC's range [576, 9000]";
    return nullptr;
  }
  node->AddDevice(nic);
  nic->AttachPhy(phy, rate_bps);
  auto host = ns3::CreateObject<ShuntHost>();
  node->AddApplication(host);
  if (!host->Configure(nic, config, error)) return nullptr;
  host->SetStartTime(ns3::Seconds(0));
  return host;
}

}  // namespace nicmodel
