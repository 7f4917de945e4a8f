// Net over the virtual-time harness (sim_net.h): one Harness, a SocketApi per stack made at
// construction, and the NIC model's timelines and counters read through nicmodel's
// ModelHarnessNic when the stacks sit behind "mlx5sim".
#include "bindings/sim_net.h"

#include <cmath>
#include <stdexcept>

#include "nicmodel/nicmodel.h"
#include "stack/harness/harness.h"
#include "stack/net/stack.h"
#include "stack/socket/socket_api.h"

namespace shunt::bindings {

namespace {

// The harness numbers hosts 10.0.0.N/24 with N = index + 1, so at most 254 on one segment.
constexpr size_t kMaxHosts = 254;
// The simulated NIC's MTU range (the mlx5 model and the cable accept 576 .. 9000).
constexpr uint32_t kMinMtu = 576, kMaxMtu = 9000;
// As an ns-3 queue's limit (the link holds at most LinkConfig::max_in_flight frames anyway).
constexpr size_t kMaxQueue = 1'000'000;

class SimNet final : public Net {
 public:
  explicit SimNet(const HarnessOptions& o) : h_(o) {
    apis_.reserve(h_.size());
    for (size_t i = 0; i < h_.size(); ++i) {
      apis_.push_back(std::make_unique<SocketApi>(h_.stack(i)));
      // A blocking call (from Python, say) moves the simulation on until its deadline, in slices
      // so that it sees its socket become ready; a call with no deadline gives up after a
      // virtual minute rather than running forever.
      apis_.back()->set_waiter([this](Nanos deadline) {
        const Nanos limit = deadline == kNever ? h_.now() + kSecond : deadline;
        if (h_.now() >= limit) return false;
        if (++waits_ > 60'000) return false;  // 60 s of 1 ms slices with no success
        h_.run_until(std::min(limit, h_.now() + kMilli));
        return true;
      });
    }
  }
  ~SimNet() override {
    apis_.clear();  // sockets go before their stacks
    if (h_.pcap().is_open()) h_.pcap().flush();
  }

  bool open_pcap(const std::string& path, std::string& error) {
    if (h_.open_pcap(path)) return true;
    error = "pcap " + path + ": " + h_.pcap().error();
    return false;
  }

  size_t size() const override { return h_.size(); }
  bool is_shunt(size_t host) const override { return host < h_.size(); }
  SocketApi& api(size_t host) override {
    check(host);
    waits_ = 0;
    return *apis_[host];
  }
  Stack& stack(size_t host) override {
    check(host);
    return h_.stack(host);
  }
  IpAddr addr(size_t host, bool ipv6) const override {
    check(host);
    return ipv6 ? IpAddr(Harness::ipv6_of(host)) : IpAddr(Harness::ipv4_of(host));
  }

  Nanos now() const override { return h_.now(); }

  bool run(const std::function<bool()>& pump, Nanos timeout) override {
    waits_ = 0;
    const bool done = h_.run_until(pump, timeout < 0 ? 0 : timeout);
    flush_pcap();
    return done;
  }
  void run_for(Nanos d) override {
    if (d > 0) h_.run_for(d);
    flush_pcap();
  }
  void kick() override { h_.poll_all(); }

  std::vector<nicmodel::PacketTimeline> timelines(size_t host) override {
    check(host);
    if (auto* nic = model_nic(host)) return nic->model().timelines();
    return {};
  }

  std::map<std::string, uint64_t> counters(size_t host) override {
    check(host);
    std::map<std::string, uint64_t> out;
    auto take = [&out](const Counters& c) {
      for (const auto& e : c.entries()) out[e.name] += e.counter.value;
    };
    take(h_.stack(host).counters());
    if (auto* nic = model_nic(host)) {
      take(nic->driver().counters());  // mlx5.*
      take(nic->model().counters());   // nic.*
    }
    return out;
  }

  uint64_t network_drops() const override { return h_.link().counters().sum("link.drop."); }

 private:
  void check(size_t host) const {
    if (host >= h_.size()) {
      throw std::out_of_range("host " + std::to_string(host) + " out of range (the network has " +
                              std::to_string(h_.size()) + " hosts)");
    }
  }
  nicmodel::ModelHarnessNic* model_nic(size_t host) {
    return dynamic_cast<nicmodel::ModelHarnessNic*>(h_.nic(host));
  }
  void flush_pcap() {
    if (h_.pcap().is_open()) h_.pcap().flush();
  }

  mutable Harness h_;  // link() is not const; reading its counters changes nothing
  std::vector<std::unique_ptr<SocketApi>> apis_;
  uint64_t waits_ = 0;
};

}  // namespace

std::unique_ptr<Net> make_sim_net(const SimNetOptions& options, std::string& error) {
  error.clear();
  // The mlx5 model's harness NIC kind, whatever this program linked (idempotent).
  nicmodel::register_devices();
  if (options.hosts == 0 || options.hosts > kMaxHosts) {
    error = "sim net: hosts must be 1 .. " + std::to_string(kMaxHosts) + ", not " +
            std::to_string(options.hosts);
    return nullptr;
  }
  if (options.nic != "mlx5sim" && options.nic != "sim") {
    error = "sim net: unknown nic '" + options.nic +
            "' (mlx5sim: the simulated ConnectX; sim: the link's port)";
    return nullptr;
  }
  if (!(options.loss >= 0 && options.loss <= 1)) {  // also refuses NaN
    error = "sim net: loss must be a probability in 0 .. 1, not " + std::to_string(options.loss);
    return nullptr;
  }
  if (options.mtu < kMinMtu || options.mtu > kMaxMtu) {
    error = "sim net: mtu must be " + std::to_string(kMinMtu) + " .. " + std::to_string(kMaxMtu) +
            ", not " + std::to_string(options.mtu);
    return nullptr;
  }
  if (options.delay < 0) {
    error = "sim net: delay must not be negative (" + std::to_string(options.delay) + " ns)";
    return nullptr;
  }
  if (options.queue > kMaxQueue) {
    error = "sim net: queue must be 0 .. " + std::to_string(kMaxQueue) + " frames, not " +
            std::to_string(options.queue);
    return nullptr;
  }
  HarnessOptions ho;
  ho.stacks = options.hosts;
  ho.nic = options.nic;
  ho.link.rate_bps = options.rate_bps;
  ho.link.delay = options.delay;
  ho.link.mtu = options.mtu;
  ho.link.loss = options.loss;
  ho.link.seed = options.seed;
  ho.link.egress_queue_frames = options.queue;
  ho.config = options.config;
  ho.config.seed = int64_t(options.seed);
  // The pcap is opened here, so that a file that cannot be written is an error, not a warning.
  const std::string pcap = options.pcap.empty() ? options.config.pcap : options.pcap;
  ho.config.pcap.clear();
  std::unique_ptr<SimNet> net;
  try {
    net = std::make_unique<SimNet>(ho);
  } catch (const std::exception& e) {
    error = std::string("sim net: ") + e.what();
    return nullptr;
  }
  if (!pcap.empty() && !net->open_pcap(pcap, error)) return nullptr;
  return net;
}

}  // namespace shunt::bindings
