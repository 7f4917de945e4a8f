// Net over an ns-3 topology (ns3_net.h).
//
// The workload's pump runs as a ShuntHost task: every Shunt host has one task, added when the
// network is built, that calls the pump of the run() in progress (if any) after each of its
// polls and stops the simulator once the pump says done. ShuntHost has no way to remove a task,
// so the tasks stay and look at a shared state instead.
#include "nicmodel/ns3/ns3_net.h"

#include <atomic>
#include <cmath>
#include <exception>
#include <stdexcept>
#include <utility>

#include <ns3/net-device.h>
#include <ns3/nstime.h>
#include <ns3/queue-disc.h>
#include <ns3/simulator.h>

#include "nicmodel/ns3/topology.h"
#include "stack/driver/mlx5/mlx5_driver.h"
#include "stack/net/stack.h"

namespace nicmodel {

using namespace shunt;  // the stack's types throughout

namespace {

// ns-3 has one simulator per process (its state is global), so one Ns3Net at a time.
std::atomic<bool> g_ns3_net_exists{false};

std::string check_link(const char* what, const Ns3LinkOptions& l) {
  const std::string w = what;
  if (l.rate_bps == 0) return w + " rate_bps must be > 0";
  if (l.delay < 0) return w + " delay must be >= 0 ns";
  if (l.mtu < 576 || l.mtu > 9000) return w + " mtu " + std::to_string(l.mtu) + " is outside 576 .. 9000";
  if (l.queue_packets == 0) return w + " queue must hold at least 1 packet";
  if (!(l.loss >= 0 && l.loss <= 1)) return w + " loss must be a probability in [0, 1]";
  return "";
}

LinkSpec to_link(const Ns3LinkOptions& l) {
  LinkSpec s;
  s.rate_bps = l.rate_bps;
  s.delay = l.delay;
  s.mtu = l.mtu;
  s.queue_packets = l.queue_packets;
  if (l.loss > 0) s.error = ErrorSpec::Rate(l.loss);
  return s;
}

class Ns3NetImpl final : public Ns3Net {
 public:
  Ns3NetImpl() = default;
  ~Ns3NetImpl() override {
    // The topology's destructor runs ns3::Simulator::Destroy(), which disposes the hosts and
    // their tasks; only then may another Ns3Net be built.
    topo_.reset();
    g_ns3_net_exists = false;
  }

  void build(const Ns3NetOptions& o) {
    TopologyOptions to;
    to.ns3_seed = o.ns3_seed;
    to.ns3_run = o.ns3_run;
    to.config = o.config;
    switch (o.shape) {
      case Ns3NetOptions::Shape::kTwoHosts:
        topo_ = Topology::TwoHosts(
            HostKind::kShunt, HostKind::kShunt, to_link(o.link), to,
            o.medium == "csma" ? Medium::kCsma : Medium::kEthLink);
        break;
      case Ns3NetOptions::Shape::kDumbbell: {
        QueueDiscSpec q;
        q.kind = o.queue_disc == "red"     ? QueueDiscSpec::Kind::kRed
                 : o.queue_disc == "codel" ? QueueDiscSpec::Kind::kCoDel
                                           : QueueDiscSpec::Kind::kDropTail;
        q.max_packets = o.queue_disc_packets;
        topo_ = Topology::Dumbbell(o.left, o.right, {HostKind::kShunt}, to_link(o.link),
                                             to_link(o.bottleneck), q, to);
        break;
      }
      case Ns3NetOptions::Shape::kStar:
        topo_ = Topology::Star(o.hosts, {HostKind::kShunt}, to_link(o.link), to);
        break;
    }
    if (!o.pcap.empty()) topo_->EnablePcap(o.pcap);
    pump_ = std::make_shared<PumpState>();
    wake_at_.assign(topo_->size(), kNever);
    for (size_t i = 0; i < topo_->size(); ++i) {
      if (!is_shunt(i)) continue;
      topo_->shunt(i).AddTask([this, st = pump_](ShuntHost&) {
        if (st->pump && !st->done) {
          call_pump(*st);
          after_pump();
        }
        return kNever;
      });
    }
  }

  size_t size() const override { return topo_->size(); }
  bool is_shunt(size_t host) const override {
    return host < topo_->size() && topo_->host(host).kind == HostKind::kShunt;
  }
  SocketApi& api(size_t host) override { return shunt_host(host).api(); }
  Stack& stack(size_t host) override { return shunt_host(host).stack(); }
  IpAddr addr(size_t host, bool ipv6) const override {
    check_host(host);
    return topo_->host(host).addr(ipv6);
  }

  Nanos now() const override { return Topology::Now(); }

  bool run(const std::function<bool()>& pump, Nanos timeout) override {
    PumpState& st = *pump_;
    st.pump = &pump;
    st.done = false;
    st.error = nullptr;
    call_pump(st);
    after_pump();
    if (!st.done && !st.error && timeout > 0) run_events(timeout);
    st.pump = nullptr;
    if (st.error) std::rethrow_exception(std::exchange(st.error, nullptr));
    return st.done;
  }

  void run_for(Nanos d) override {
    if (d > 0) run_events(d);
  }

  void kick() override {
    after_pump();
    for (size_t i = 0; i < topo_->size(); ++i) {
      if (is_shunt(i)) topo_->shunt(i).Wake();
    }
  }

  std::vector<PacketTimeline> timelines(size_t host) override {
    return shunt_host(host).nic()->model().timelines();
  }

  std::map<std::string, uint64_t> counters(size_t host) override {
    auto& h = shunt_host(host);
    std::map<std::string, uint64_t> out;
    for (const auto& e : h.stack().counters().entries()) out[e.name] = e.counter.value;
    if (auto* drv = dynamic_cast<Mlx5Driver*>(&h.nic()->driver())) {
      for (const auto& e : drv->counters().entries()) out[e.name] = e.counter.value;
    }
    for (const auto& e : h.nic()->model().counters().entries()) out[e.name] = e.counter.value;
    return out;
  }

  uint64_t network_drops() const override {
    uint64_t n = topo_->phy_rx_drops();
    auto& nodes = topo_->nodes();
    for (uint32_t i = 0; i < nodes.GetN(); ++i) {
      auto node = nodes.Get(i);
      for (uint32_t d = 0; d < node->GetNDevices(); ++d) n += Topology::TxQueueDrops(node->GetDevice(d));
    }
    for (bool left : {true, false}) {
      if (auto disc = topo_->bottleneck_queue_disc(left)) n += disc->GetStats().nTotalDroppedPackets;
    }
    return n;
  }

  std::vector<std::string> pcap_files() const override { return topo_->pcap_files(); }

 private:
  struct PumpState {
    const std::function<bool()>* pump = nullptr;  // the run() in progress, if any
    bool done = false;
    std::exception_ptr error;  // what the pump threw (carried out of ns-3's loop)
  };

  void call_pump(PumpState& st) {
    try {
      if ((*st.pump)()) st.done = true;
    } catch (...) {
      st.error = std::current_exception();
    }
    if (st.done || st.error) ns3::Simulator::Stop();  // after the current event
  }

  // The pump may have used any host's sockets: their NICs see the doorbells, and a host whose
  // stack now wants a poll earlier than planned (a timer armed, a frame looped back) gets one.
  void after_pump() {
    const Nanos t = now();
    for (size_t i = 0; i < topo_->size(); ++i) {
      if (!is_shunt(i)) continue;
      auto& h = topo_->shunt(i);
      h.nic()->Kick();
      Stack& s = h.stack();
      const Nanos due = s.loopback_pending() ? t : s.timers().next_deadline();
      if (due <= t) {
        h.Wake();
      } else if (due != kNever && (wake_at_[i] <= t || due < wake_at_[i])) {
        wake_at_[i] = due;
        ns3::Simulator::Schedule(ns3::NanoSeconds(due - t), [this, i] {
          wake_at_[i] = kNever;
          topo_->shunt(i).Wake();
        });
      }
    }
  }

  // Runs the simulation for `d` of virtual time, or less if a pump stops it first.
  void run_events(Nanos d) {
    ns3::EventId stop = ns3::Simulator::Schedule(ns3::NanoSeconds(d), [] { ns3::Simulator::Stop(); });
    ns3::Simulator::Run();
    ns3::Simulator::Cancel(stop);
  }

  void check_host(size_t host) const {
    if (host >= topo_->size())
      throw std::out_of_range("host " + std::to_string(host) + " does not exist (the network has " +
                              std::to_string(topo_->size()) + ")");
  }
  ShuntHost& shunt_host(size_t host) const {
    check_host(host);
    if (!is_shunt(host)) throw std::out_of_range("host " + std::to_string(host) + " is not a Shunt host");
    return topo_->shunt(host);
  }

  std::unique_ptr<Topology> topo_;
  std::shared_ptr<PumpState> pump_;
  std::vector<Nanos> wake_at_;  // per host: the wake-up we scheduled (kNever: none)
};

}  // namespace

std::unique_ptr<Ns3Net> make_ns3_net(const Ns3NetOptions& o, std::string& error) {
  using Shape = Ns3NetOptions::Shape;
  error = check_link("link", o.link);
  if (error.empty() && o.shape == Shape::kDumbbell) error = check_link("bottleneck", o.bottleneck);
  if (!error.empty()) return nullptr;
  if (o.shape == Shape::kStar && (o.hosts < 1 || o.hosts > 250)) {
    error = "star: hosts must be 1 .. 250, not " + std::to_string(o.hosts);
  } else if (o.shape == Shape::kDumbbell && (o.left < 1 || o.left > 250 || o.right < 1 || o.right > 250)) {
    error = "dumbbell: left and right must be 1 .. 250 hosts each";
  } else if (o.medium != "ethlink" && o.medium != "csma") {
    error = "medium must be \"ethlink\" or \"csma\", not \"" + o.medium + "\"";
  } else if (o.queue_disc != "droptail" && o.queue_disc != "red" && o.queue_disc != "codel") {
    error = "queue_disc must be \"droptail\", \"red\" or \"codel\", not \"" + o.queue_disc + "\"";
  } else if (o.shape == Shape::kDumbbell && o.queue_disc_packets < 1) {
    error = "queue_disc_packets must be >= 1";
  } else if (o.ns3_seed == 0) {
    error = "the ns-3 seed must be >= 1";
  }
  if (!error.empty()) return nullptr;
  bool expected = false;
  if (!g_ns3_net_exists.compare_exchange_strong(expected, true)) {
    error = "an ns-3 network already exists in this process (ns-3 has one simulator): close it first";
    return nullptr;
  }
  auto net = std::make_unique<Ns3NetImpl>();  // from here its destructor clears the flag
  try {
    net->build(o);
  } catch (const std::exception& e) {
    error = std::string("ns-3 topology: ") + e.what();
    return nullptr;
  }
  return net;
}

}  // namespace nicmodel
