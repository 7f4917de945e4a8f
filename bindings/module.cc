// The Python module shunt._shunt (docs/python.md; its contract is bindings/python/shunt/_shunt.pyi).
// Networks of Shunt hosts in virtual time (the harness: SimNetwork; ns-3 topologies:
// Ns3Network), the workloads of workloads.h on them with the GIL released, their results as
// Python objects (latency distributions, NIC timelines, counters), and stack/NIC configuration.
// Every error reaches Python as ShuntError with a message.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cctype>
#include <cstdio>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "nicmodel/net.h"
#include "nicmodel/ns3/ns3_net.h"
#include "bindings/sim_net.h"
#include "bindings/workloads.h"
#include "stack/core/config.h"

namespace py = pybind11;
using namespace shunt;
using namespace shunt::bindings;
using nicmodel::make_ns3_net;
using nicmodel::Ns3LinkOptions;
using nicmodel::Ns3Net;
using nicmodel::Ns3NetOptions;

namespace {

// The one exception type Python sees (as shunt.ShuntError, a RuntimeError).
struct ShuntError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] void fail(const std::string& message) { throw ShuntError(message); }

std::optional<int64_t> opt_time(Nanos t) {
  if (t == kNever || t < 0) return std::nullopt;
  return t;
}

// ---------------------------------------------------------------------------------------------
// Configuration.

// SHUNT_MLX5_INLINE, mlx5_inline, Mlx5_Inline, shunt_mlx5_inline: one variable.
const ConfigVar* find_config_var(const std::string& name) {
  std::string n;
  for (char c : name) n += char(std::toupper(static_cast<unsigned char>(c)));
  if (n.rfind("SHUNT_", 0) != 0) n = "SHUNT_" + n;
  for (const auto& v : config_vars()) {
    if (n == v.name) return &v;
  }
  return nullptr;
}

const ConfigVar& config_var(const std::string& name) {
  if (const ConfigVar* v = find_config_var(name)) return *v;
  fail("no configuration variable called '" + name +
       "' (names are SHUNT_* variables, with or without the prefix; shunt.config_vars() lists them)");
}

// A Python value as the text a SHUNT_* variable takes.
std::string config_text(const std::string& name, const py::handle& value) {
  if (py::isinstance<py::bool_>(value)) return value.cast<bool>() ? "1" : "0";
  if (py::isinstance<py::int_>(value)) return py::str(value).cast<std::string>();
  if (py::isinstance<py::float_>(value)) {
    const double d = value.cast<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.2e18) return std::to_string(int64_t(d));
    return py::str(value).cast<std::string>();
  }
  if (py::isinstance<py::str>(value)) return value.cast<std::string>();
  fail("configuration variable '" + name + "': a value must be a str, int or float, not " +
       std::string(py::str(py::type::handle_of(value).attr("__name__"))));
}

class ConfigObject {
 public:
  explicit ConfigObject(const std::optional<std::string>& profile) {
    if (profile) set_profile(*profile);
  }

  void set(const std::string& name, const std::string& value) {
    const ConfigVar& v = config_var(name);
    if (v.str_field == &Config::profile) {
      set_profile(value);
      return;
    }
    if (auto err = config_set(config_, v.name, value)) fail(*err);
    std::erase_if(explicit_, [&](const auto& e) { return e.first == &v; });
    explicit_.emplace_back(&v, value);
  }

  std::string get(const std::string& name) const { return config_get(config_, config_var(name)); }

  py::dict as_dict() const {
    py::dict d;
    for (const auto& v : config_vars()) d[py::str(v.name)] = config_get(config_, v);
    return d;
  }

  // Variables that differ from the defaults.
  std::string repr() const {
    const Config defaults;
    std::string out = "Config(";
    bool first = true;
    for (const auto& v : config_vars()) {
      const std::string value = config_get(config_, v);
      if (value == config_get(defaults, v)) continue;
      std::string key = std::string(v.name).substr(6);
      for (auto& c : key) c = char(std::tolower(static_cast<unsigned char>(c)));
      out += std::string(first ? "" : ", ") + key + "=" + py::repr(py::str(value)).cast<std::string>();
      first = false;
    }
    return out + ")";
  }

  const Config& config() const { return config_; }

 private:
  // Defaults, then the profile's, then every explicit value in the order it was set.
  void set_profile(const std::string& profile) {
    Config check;
    if (auto err = config_set(check, "SHUNT_PROFILE", profile)) fail(*err);
    profile_ = profile;
    config_ = Config{};
    for (const auto& d : profile_defaults()) {
      if (profile_ == d.profile) config_set(config_, d.name, d.value);
    }
    config_set(config_, "SHUNT_PROFILE", profile_);
    for (const auto& [v, value] : explicit_) config_set(config_, v->name, value);
  }

  Config config_;
  std::string profile_ = "default";
  std::vector<std::pair<const ConfigVar*, std::string>> explicit_;
};

py::list py_config_vars() {
  const Config defaults;
  py::list out;
  for (const auto& v : config_vars()) {
    py::dict d;
    d["name"] = v.name;
    d["default"] = config_get(defaults, v);
    std::string range, kind;
    switch (v.kind) {
      case ConfigVar::Kind::kInt:
        kind = "int";
        range = std::to_string(v.min) + " .. " + std::to_string(v.max);
        break;
      case ConfigVar::Kind::kChoice:
        kind = "choice";
        range = v.choices;
        break;
      case ConfigVar::Kind::kString:
        kind = "string";
        break;
    }
    d["kind"] = kind;
    d["range"] = range;
    d["help"] = v.help;
    out.append(d);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Latency distributions.

class LatencyStats {
 public:
  explicit LatencyStats(std::vector<Nanos> samples) : samples_(std::move(samples)), sorted_(samples_) {
    for (Nanos s : samples_) {
      if (s < 0) fail("LatencyStats: a latency cannot be negative (" + std::to_string(s) + ")");
    }
    std::sort(sorted_.begin(), sorted_.end());
    long double sum = 0;
    for (Nanos s : sorted_) sum += s;
    mean_ = sorted_.empty() ? 0.0 : double(sum / sorted_.size());
  }

  size_t count() const { return sorted_.size(); }
  Nanos min() const { return sorted_.empty() ? 0 : sorted_.front(); }
  Nanos max() const { return sorted_.empty() ? 0 : sorted_.back(); }
  double mean() const { return mean_; }
  const std::vector<Nanos>& samples() const { return samples_; }

  // Nearest rank: the smallest sample with at least p% of the samples at or below it.
  Nanos percentile(double p) const {
    if (!(p > 0 && p <= 100)) fail("percentile: p must be in (0, 100], not " + py::repr(py::float_(p)).cast<std::string>());
    if (sorted_.empty()) return 0;
    const double exact = p / 100.0 * double(sorted_.size());
    // p / 100 * n is not exact in binary (99.9% of 1000 is 999.0000000000001): a rank within
    // rounding error of an integer is that integer.
    size_t rank = size_t(std::ceil(exact - 1e-9 * std::max(1.0, exact)));
    rank = std::clamp<size_t>(rank, 1, sorted_.size());
    return sorted_[rank - 1];
  }

  // Log-spaced bins from min to max: (lo, hi, count) with lo <= sample < hi; the last hi is
  // max + 1. Bins narrower than 1 ns are merged, so there may be fewer than asked.
  std::vector<std::tuple<int64_t, int64_t, uint64_t>> histogram(int64_t bins) const {
    if (bins < 1) fail("histogram: bins must be >= 1, not " + std::to_string(bins));
    std::vector<std::tuple<int64_t, int64_t, uint64_t>> out;
    if (sorted_.empty()) return out;
    const Nanos lo = sorted_.front(), hi = sorted_.back();
    std::vector<int64_t> edges{lo};
    const double a = double(std::max<Nanos>(lo, 1)), b = double(hi);
    for (int64_t k = 1; k < bins; ++k) {
      int64_t e = int64_t(std::ceil(a * std::pow(b / a, double(k) / double(bins))));
      if (e > edges.back() && e <= hi) edges.push_back(e);
    }
    edges.push_back(hi + 1);
    for (size_t k = 0; k + 1 < edges.size(); ++k) {
      auto from = std::lower_bound(sorted_.begin(), sorted_.end(), edges[k]);
      auto to = std::lower_bound(sorted_.begin(), sorted_.end(), edges[k + 1]);
      out.emplace_back(edges[k], edges[k + 1], uint64_t(to - from));
    }
    return out;
  }

  py::dict as_dict() const {
    py::dict d;
    d["count"] = count();
    d["min"] = min();
    d["max"] = max();
    d["mean"] = mean();
    d["p50"] = percentile(50);
    d["p90"] = percentile(90);
    d["p99"] = percentile(99);
    d["p999"] = percentile(99.9);
    return d;
  }

  std::string repr() const {
    if (sorted_.empty()) return "LatencyStats(count=0)";
    char buf[200];
    std::snprintf(buf, sizeof buf, "LatencyStats(count=%zu, min=%lld, p50=%lld, p99=%lld, max=%lld, mean=%.1f)",
                  count(), (long long)min(), (long long)percentile(50), (long long)percentile(99),
                  (long long)max(), mean_);
    return buf;
  }

 private:
  std::vector<Nanos> samples_;  // as given
  std::vector<Nanos> sorted_;
  double mean_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Results.

struct PingPongResult {
  explicit PingPongResult(LatencyResult r)
      : latency(std::move(r.samples)), sent(r.sent), completed(r.completed), lost(r.lost),
        started(r.started), finished(r.finished), error(std::move(r.error)) {}
  LatencyStats latency;
  uint64_t sent, completed, lost;
  Nanos started, finished;
  std::string error;
  bool ok() const { return error.empty(); }
};

struct PyChurnResult {
  explicit PyChurnResult(ChurnResult r)
      : connect_times(std::move(r.connect_times)), raw(std::move(r)) {}
  LatencyStats connect_times;
  ChurnResult raw;  // without its connect_times
};

struct PyMulticastResult {
  explicit PyMulticastResult(MulticastResult r) : raw(std::move(r)) {
    for (auto& l : raw.latency) latency.emplace_back(std::move(l));
    raw.latency.clear();
  }
  std::vector<LatencyStats> latency;
  MulticastResult raw;
};

std::string result_repr(const char* kind, const std::string& error, const std::string& body) {
  return std::string(kind) + "(" + (error.empty() ? body : "error=" + py::repr(py::str(error)).cast<std::string>()) + ")";
}

// ---------------------------------------------------------------------------------------------
// Networks.

class PyNetwork {
 public:
  virtual ~PyNetwork() = default;

  // The network for one call: refuses a closed network and one that another thread is running
  // (the simulation is single-threaded; the GIL is released while it runs).
  class Use {
   public:
    explicit Use(PyNetwork& n) : n_(n) {
      if (!n_.net_) fail("the network is closed");
      if (n_.busy_.exchange(true)) fail("the network is busy: another thread is running a workload on it");
    }
    ~Use() { n_.busy_ = false; }
    Use(const Use&) = delete;
    Use& operator=(const Use&) = delete;
    Net& net() { return *n_.net_; }

    size_t host(int64_t h, const char* role = "host") {
      const size_t n = n_.net_->size();
      if (h < 0 || size_t(h) >= n)
        fail(std::string(role) + " " + std::to_string(h) + " does not exist: the network has " + std::to_string(n) +
             " hosts (0 .. " + std::to_string(n - 1) + ")");
      return size_t(h);
    }
    size_t shunt_host(int64_t h, const char* role = "host") {
      const size_t i = host(h, role);
      if (!n_.net_->is_shunt(i)) fail(std::string(role) + " " + std::to_string(h) + " is not a Shunt host");
      return i;
    }

   private:
    PyNetwork& n_;
  };

  virtual void close() {
    if (!net_) return;
    Use u(*this);  // not while a workload runs
    net_.reset();
  }
  bool closed() const { return !net_; }

 protected:
  std::unique_ptr<Net> net_;
  std::atomic<bool> busy_{false};
};

class PySimNetwork final : public PyNetwork {
 public:
  explicit PySimNetwork(const SimNetOptions& o) {
    std::string error;
    net_ = make_sim_net(o, error);
    if (!net_) fail("SimNetwork: " + (error.empty() ? std::string("cannot be built") : error));
  }
};

class PyNs3Network final : public PyNetwork {
 public:
  explicit PyNs3Network(const Ns3NetOptions& o) {
    std::string error;
    auto net = make_ns3_net(o, error);
    if (!net) fail("Ns3Network: " + (error.empty() ? std::string("cannot be built") : error));
    ns3_ = net.get();
    net_ = std::move(net);
  }
  void close() override {
    if (closed()) return;
    pcap_files_ = ns3_->pcap_files();
    PyNetwork::close();
    ns3_ = nullptr;
  }
  std::vector<std::string> pcap_files() const { return ns3_ ? ns3_->pcap_files() : pcap_files_; }

 private:
  Ns3Net* ns3_ = nullptr;
  std::vector<std::string> pcap_files_;  // after close()
};

uint16_t port_arg(int64_t port, const char* name = "port") {
  if (port < 1 || port > 65535) fail(std::string(name) + " must be 1 .. 65535, not " + std::to_string(port));
  return uint16_t(port);
}

Nanos nonneg(int64_t v, const char* name) {
  if (v < 0) fail(std::string(name) + " must be >= 0, not " + std::to_string(v));
  return v;
}

uint64_t positive(int64_t v, const char* name) {
  if (v < 1) fail(std::string(name) + " must be >= 1, not " + std::to_string(v));
  return uint64_t(v);
}

PingPongSpec pingpong_spec(PyNetwork::Use& u, int64_t client, int64_t server, int64_t payload, int64_t count,
                           int64_t warmup, bool ipv6, int64_t port, int64_t timeout_ns, size_t min_payload) {
  PingPongSpec s;
  s.client = u.shunt_host(client, "client");
  s.server = u.shunt_host(server, "server");
  if (s.client == s.server) fail("client and server must be different hosts");
  if (payload < int64_t(min_payload) || payload > 65507)
    fail("payload must be " + std::to_string(min_payload) + " .. 65507 bytes, not " + std::to_string(payload));
  s.payload = size_t(payload);
  s.count = positive(count, "count");
  s.warmup = uint64_t(nonneg(warmup, "warmup"));
  s.ipv6 = ipv6;
  s.port = port_arg(port);
  s.timeout = nonneg(timeout_ns, "timeout_ns");
  return s;
}

// Network.udp_pingpong / tcp_pingpong: the arguments checked, the workload run without the GIL.
auto pingpong_method(LatencyResult (*workload)(Net&, const PingPongSpec&), size_t min_payload) {
  return [workload, min_payload](PyNetwork& n, int64_t client, int64_t server, int64_t payload, int64_t count,
                                 int64_t warmup, bool ipv6, int64_t port, int64_t timeout_ns) {
    PyNetwork::Use u(n);
    const PingPongSpec spec =
        pingpong_spec(u, client, server, payload, count, warmup, ipv6, port, timeout_ns, min_payload);
    LatencyResult r;
    {
      py::gil_scoped_release nogil;
      r = workload(u.net(), spec);
    }
    return PingPongResult(std::move(r));
  };
}

SimNetOptions sim_options(int64_t hosts, const std::string& nic, int64_t rate_bps, int64_t delay_ns, int64_t mtu,
                          double loss, int64_t seed, const std::optional<ConfigObject>& config,
                          const std::optional<std::string>& pcap, int64_t queue) {
  SimNetOptions o;
  if (hosts < 1 || hosts > 250) fail("hosts must be 1 .. 250, not " + std::to_string(hosts));
  o.hosts = size_t(hosts);
  if (nic != "mlx5sim" && nic != "sim") fail("nic must be \"mlx5sim\" or \"sim\", not \"" + nic + "\"");
  o.nic = nic;
  o.rate_bps = positive(rate_bps, "rate_bps");
  o.delay = nonneg(delay_ns, "delay_ns");
  if (mtu < 576 || mtu > 9000) fail("mtu must be 576 .. 9000, not " + std::to_string(mtu));
  o.mtu = uint32_t(mtu);
  if (!(loss >= 0 && loss <= 1)) fail("loss must be a probability in [0, 1]");
  o.loss = loss;
  o.seed = positive(seed, "seed");
  if (config) o.config = config->config();
  if (pcap) o.pcap = *pcap;
  if (queue < 0 || queue > 1'000'000) fail("queue must be 0 .. 1000000 frames, not " + std::to_string(queue));
  o.queue = size_t(queue);
  return o;
}

Ns3LinkOptions ns3_link(const char* what, int64_t rate_bps, int64_t delay_ns, int64_t mtu, int64_t queue,
                        double loss) {
  const std::string w = what;
  Ns3LinkOptions l;
  l.rate_bps = positive(rate_bps, (w + "rate_bps").c_str());
  l.delay = nonneg(delay_ns, (w + "delay_ns").c_str());
  if (mtu < 576 || mtu > 9000) fail("mtu must be 576 .. 9000, not " + std::to_string(mtu));
  l.mtu = uint32_t(mtu);
  if (queue < 1 || queue > 1'000'000) fail("queue must be 1 .. 1000000 packets, not " + std::to_string(queue));
  l.queue_packets = uint32_t(queue);
  if (!(loss >= 0 && loss <= 1)) fail("loss must be a probability in [0, 1]");
  l.loss = loss;
  return l;
}

void ns3_common(Ns3NetOptions& o, int64_t seed, int64_t run, const std::optional<ConfigObject>& config,
                const std::optional<std::string>& pcap) {
  if (seed < 1 || seed > int64_t(UINT32_MAX)) fail("seed must be 1 .. 2^32-1, not " + std::to_string(seed));
  o.ns3_seed = uint32_t(seed);
  o.ns3_run = uint64_t(nonneg(run, "run"));
  if (config) o.config = config->config();
  o.config.seed = seed;  // as in SimNetwork: the seed argument wins over config.seed
  if (pcap) o.pcap = *pcap;
}

}  // namespace

PYBIND11_MODULE(_shunt, m) {
  m.doc() =
      "Shunt's compiled bindings: networks of Shunt hosts in virtual time (SimNetwork on the "
      "harness, Ns3Network on ns-3 topologies), workloads with latency distributions, NIC "
      "timelines and counters, and the stack/NIC configuration. docs/python.md has the guide.";
  m.attr("__version__") = SHUNT_VERSION;

  static py::exception<ShuntError> shunt_error(m, "ShuntError", PyExc_RuntimeError);
  shunt_error.doc() = "Every error of the Shunt bindings: bad arguments, bad configuration, a network that "
                      "cannot be built or is closed or busy. The message says what and why.";
  // Anything else C++ throws becomes a ShuntError too (pybind11's own errors pass through).
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const ShuntError& e) {
      shunt_error(e.what());
    } catch (const py::error_already_set&) {
      throw;
    } catch (const py::builtin_exception&) {
      throw;
    } catch (const std::exception& e) {
      shunt_error(e.what());
    }
  });

  m.def("config_vars", &py_config_vars,
        "Every SHUNT_* variable as a dict: name, default, kind (int, choice, string), range (int: "
        "'MIN .. MAX'; choice: 'a|b|c'), help. The same table as docs/config.md.");

  // --- Config.
  py::class_<ConfigObject>(m, "Config",
                       "A stack and NIC-model configuration (shunt::Config): the defaults, then those of "
                       "`profile` (default, latency, throughput), then `vars`. Names are SHUNT_* variables, "
                       "with or without the prefix, in any case: Config(mlx5_inline=256), "
                       "Config('latency', SHUNT_NIC_CQ_MOD_COUNT=1). Values are str, int or float (bool: 1/0) "
                       "and are checked against the variable's range; a bad name or value raises ShuntError.")
      .def(py::init([](const std::optional<std::string>& profile, const py::kwargs& vars) {
             auto c = std::make_unique<ConfigObject>(profile);
             for (const auto& [k, v] : vars) {
               const std::string name = py::str(k);
               c->set(name, config_text(name, v));
             }
             return c;
           }),
           py::arg("profile") = py::none(),
           "Builds a configuration: defaults, then the profile's, then each keyword argument.")
      .def(
          "set", [](ConfigObject& c, const std::string& name, const py::object& value) { c.set(name, config_text(name, value)); },
          py::arg("name"), py::arg("value"),
          "Sets one variable (SHUNT_ prefix optional, any case). Raises ShuntError for an unknown name or a "
          "value outside the variable's range. Setting 'profile' applies that profile's defaults under the "
          "values set explicitly.")
      .def("get", &ConfigObject::get, py::arg("name"), "The variable's value as text (ShuntError for an unknown name).")
      .def("as_dict", &ConfigObject::as_dict, "Every variable, SHUNT_NAME -> value as text.")
      .def("__repr__", &ConfigObject::repr);

  // --- LatencyStats.
  py::class_<LatencyStats>(m, "LatencyStats",
                           "A distribution of latencies in ns. Percentiles are nearest-rank; every figure is 0 "
                           "when there are no samples.")
      .def(py::init<std::vector<Nanos>>(), py::arg("samples"),
           "From latency samples in ns (a sequence of ints >= 0).")
      .def_property_readonly("count", &LatencyStats::count, "Number of samples.")
      .def_property_readonly("min", &LatencyStats::min, "Smallest sample (ns).")
      .def_property_readonly("max", &LatencyStats::max, "Largest sample (ns).")
      .def_property_readonly("mean", &LatencyStats::mean, "Arithmetic mean (ns).")
      .def_property_readonly("p50", [](const LatencyStats& s) { return s.percentile(50); }, "Median (nearest rank).")
      .def_property_readonly("p90", [](const LatencyStats& s) { return s.percentile(90); }, "90th percentile.")
      .def_property_readonly("p99", [](const LatencyStats& s) { return s.percentile(99); }, "99th percentile.")
      .def_property_readonly("p999", [](const LatencyStats& s) { return s.percentile(99.9); }, "99.9th percentile.")
      .def("percentile", &LatencyStats::percentile, py::arg("p"),
           "The p-th percentile by nearest rank: the smallest sample with at least p% of the samples at or "
           "below it. 0 < p <= 100, else ShuntError.")
      .def("histogram", &LatencyStats::histogram, py::arg("bins") = 50,
           "Log-spaced histogram from min to max as (lo, hi, count) tuples, lo <= sample < hi (the last hi is "
           "max + 1). Bins narrower than 1 ns are merged, so there may be fewer than `bins`.")
      .def_property_readonly("samples", &LatencyStats::samples, "The samples in the order given (ns).")
      .def("as_dict", &LatencyStats::as_dict, "count, min, max, mean, p50, p90, p99, p999 as a dict.")
      .def("__len__", &LatencyStats::count)
      .def("__repr__", &LatencyStats::repr)
      .def(py::pickle([](const LatencyStats& s) { return py::make_tuple(s.samples()); },
                      [](const py::tuple& t) { return LatencyStats(t[0].cast<std::vector<Nanos>>()); }));

  // --- PacketTimeline.
  using nicmodel::PacketTimeline;
  auto timeline = py::class_<PacketTimeline>(
      m, "PacketTimeline",
      "One frame's path through a simulated mlx5 NIC, in virtual ns (None: the step never happened). "
      "tx: doorbell (host wrote it), doorbell_seen, wqe_fetched, dma_done, wire_start, wire_end, cqe "
      "(None if unsignalled). rx: wire_end (last bit in), dma_done (frame in host memory), cqe.");
  timeline.def_readonly("seq", &PacketTimeline::seq, "Frames of both directions, numbered in the order the NIC took them.")
      .def_readonly("tx", &PacketTimeline::tx, "True for a transmitted frame, False for a received one.")
      .def_readonly("bytes", &PacketTimeline::bytes, "Frame length in bytes.")
      .def_readonly("wqe_index", &PacketTimeline::wqe_index, "Index of the frame's WQE in its queue.");
  auto field = [&](const char* name, Nanos PacketTimeline::*f, const char* doc) {
    timeline.def_property_readonly(name, [f](const PacketTimeline& t) { return opt_time(t.*f); }, doc);
  };
  field("doorbell", &PacketTimeline::doorbell, "tx: when the host rang the doorbell.");
  field("doorbell_seen", &PacketTimeline::doorbell_seen, "tx: when the NIC saw the doorbell.");
  field("wqe_fetched", &PacketTimeline::wqe_fetched, "tx: when the WQE arrived from host memory.");
  field("dma_done", &PacketTimeline::dma_done, "tx: payload read; rx: frame written to host memory.");
  field("wire_start", &PacketTimeline::wire_start, "tx: first bit on the wire.");
  field("wire_end", &PacketTimeline::wire_end, "Last bit on (tx) or in from (rx) the wire.");
  field("cqe", &PacketTimeline::cqe, "When the completion became visible to the host.");
  timeline.def("__repr__", [](const PacketTimeline& t) {
    auto s = [](Nanos v) { return v == kNever ? std::string("None") : std::to_string(v); };
    return "PacketTimeline(seq=" + std::to_string(t.seq) + ", " + (t.tx ? "tx" : "rx") + ", bytes=" +
           std::to_string(t.bytes) + ", doorbell=" + s(t.doorbell) + ", wire_start=" + s(t.wire_start) +
           ", wire_end=" + s(t.wire_end) + ", cqe=" + s(t.cqe) + ")";
  });

  // --- Results.
  py::class_<PingPongResult>(m, "PingPongResult", "A ping-pong's round trips (virtual ns).")
      .def_readonly("latency", &PingPongResult::latency, "Round-trip times of the measured round trips.")
      .def_readonly("sent", &PingPongResult::sent, "Pings sent (measured part).")
      .def_readonly("completed", &PingPongResult::completed, "Round trips that completed.")
      .def_readonly("lost", &PingPongResult::lost, "UDP pings with no pong within the timeout (TCP: 0).")
      .def_readonly("started", &PingPongResult::started, "Virtual time the measured part started.")
      .def_readonly("finished", &PingPongResult::finished, "Virtual time the measured part finished.")
      .def_readonly("error", &PingPongResult::error, "Why the workload failed ('' if it did not).")
      .def("ok", &PingPongResult::ok, "True when the workload ran without error.")
      .def("__repr__", [](const PingPongResult& r) {
        return result_repr("PingPongResult", r.error,
                           "completed=" + std::to_string(r.completed) + ", lost=" + std::to_string(r.lost) +
                               ", latency=" + r.latency.repr());
      });

  py::class_<FlowResult>(m, "FlowResult", "One TCP flow of tcp_bulk.")
      .def_readonly("sent", &FlowResult::sent, "Bytes the sender wrote.")
      .def_readonly("received", &FlowResult::received, "Bytes the receiver read.")
      .def_readonly("completed", &FlowResult::completed, "Every byte arrived intact, then EOF.")
      .def_property_readonly(
          "mismatch",
          [](const FlowResult& f) -> std::optional<uint64_t> {
            if (f.mismatch == UINT64_MAX) return std::nullopt;
            return f.mismatch;
          },
          "Offset of the first byte that differed from the pattern (None: none did).")
      .def_readonly("started", &FlowResult::started, "When the flow started (virtual ns).")
      .def_property_readonly("connected", [](const FlowResult& f) { return opt_time(f.connected); },
                             "When the connection was established (None: never).")
      .def_property_readonly("finished", [](const FlowResult& f) { return opt_time(f.finished); },
                             "When the last byte was received (None: never).")
      .def_property_readonly("goodput_bps", &FlowResult::goodput_bps, "received * 8 / (finished - started).")
      .def("__repr__", [](const FlowResult& f) {
        return "FlowResult(received=" + std::to_string(f.received) + ", completed=" + (f.completed ? "True" : "False") +
               ", goodput_bps=" + std::to_string(f.goodput_bps()) + ")";
      });

  py::class_<BulkResult>(m, "BulkResult", "TCP bulk flows (one, or several to one receiver: incast).")
      .def_readonly("flows", &BulkResult::flows, "Per flow, in the order given.")
      .def_readonly("bytes", &BulkResult::bytes, "Bytes received over all flows.")
      .def_readonly("started", &BulkResult::started, "The first flow's start (virtual ns).")
      .def_property_readonly("finished", [](const BulkResult& b) { return opt_time(b.finished); },
                             "The last flow's last byte (None: not every flow finished).")
      .def_readonly("retransmits", &BulkResult::retransmits, "TCP segments retransmitted, all senders.")
      .def_readonly("completed", &BulkResult::completed, "Every flow completed.")
      .def_property_readonly("goodput_bps", &BulkResult::goodput_bps, "bytes * 8 / (finished - started).")
      .def_readonly("error", &BulkResult::error, "Why the workload failed ('' if it did not).")
      .def("ok", &BulkResult::ok, "True when every flow completed without error.")
      .def("__repr__", [](const BulkResult& b) {
        return result_repr("BulkResult", b.error,
                           "flows=" + std::to_string(b.flows.size()) + ", bytes=" + std::to_string(b.bytes) +
                               ", completed=" + (b.completed ? "True" : "False") +
                               ", goodput_bps=" + std::to_string(b.goodput_bps()));
      });

  py::class_<PyChurnResult>(m, "ChurnResult", "Connections opened and closed one after another.")
      .def_property_readonly("opened", [](const PyChurnResult& r) { return r.raw.opened; }, "Connections opened.")
      .def_property_readonly("closed", [](const PyChurnResult& r) { return r.raw.closed; }, "Connections closed.")
      .def_property_readonly("failed", [](const PyChurnResult& r) { return r.raw.failed; }, "Connections that failed.")
      .def_readonly("connect_times", &PyChurnResult::connect_times, "connect() to established, per connection.")
      .def_property_readonly("started", [](const PyChurnResult& r) { return r.raw.started; }, "Virtual start (ns).")
      .def_property_readonly("finished", [](const PyChurnResult& r) { return r.raw.finished; }, "Virtual end (ns).")
      .def_property_readonly("wall_seconds", [](const PyChurnResult& r) { return r.raw.wall_seconds; },
                             "Real time the run took (the simulator's own speed).")
      .def_property_readonly("per_virtual_second", [](const PyChurnResult& r) { return r.raw.per_virtual_second(); },
                             "Connections closed per second of virtual time.")
      .def_property_readonly("error", [](const PyChurnResult& r) { return r.raw.error; },
                             "Why the workload failed ('' if it did not).")
      .def("ok", [](const PyChurnResult& r) { return r.raw.ok(); },
           "True when every connection opened was closed, none failed, and no error.")
      .def("__repr__", [](const PyChurnResult& r) {
        return result_repr("ChurnResult", r.raw.error,
                           "opened=" + std::to_string(r.raw.opened) + ", closed=" + std::to_string(r.raw.closed) +
                               ", failed=" + std::to_string(r.raw.failed));
      });

  py::class_<PyMulticastResult>(m, "MulticastResult", "UDP multicast fan-out from one sender to its receivers.")
      .def_property_readonly("sent", [](const PyMulticastResult& r) { return r.raw.sent; }, "Datagrams sent.")
      .def_property_readonly("received", [](const PyMulticastResult& r) { return r.raw.received; },
                             "Datagrams received, per receiver (in the order given).")
      .def_readonly("latency", &PyMulticastResult::latency, "One-way latency (send to receive), per receiver.")
      .def_property_readonly("duplicates", [](const PyMulticastResult& r) { return r.raw.duplicates; },
                             "Datagrams received twice, over all receivers.")
      .def_property_readonly("corrupt", [](const PyMulticastResult& r) { return r.raw.corrupt; },
                             "Datagrams whose bytes were wrong, over all receivers.")
      .def_property_readonly("error", [](const PyMulticastResult& r) { return r.raw.error; },
                             "Why the workload failed ('' if it did not).")
      .def("ok", [](const PyMulticastResult& r) { return r.raw.ok(); }, "True when the workload ran without error.")
      .def("__repr__", [](const PyMulticastResult& r) {
        std::string rx;
        for (auto n : r.raw.received) rx += (rx.empty() ? "" : ", ") + std::to_string(n);
        return result_repr("MulticastResult", r.raw.error, "sent=" + std::to_string(r.raw.sent) + ", received=[" + rx + "]");
      });

  // --- Network.
  py::class_<PyNetwork>(m, "Network",
                        "Shunt hosts in virtual time. Workload methods release the GIL while the simulation runs "
                        "and raise ShuntError only for bad arguments (a failed workload returns a result whose "
                        "error says why). One thread at a time may use a network: a second gets ShuntError.")
      .def_property_readonly("size", [](PyNetwork& n) { return PyNetwork::Use(n).net().size(); }, "Number of hosts.")
      .def_property_readonly("now", [](PyNetwork& n) { return PyNetwork::Use(n).net().now(); },
                             "Virtual time, ns since the network was built.")
      .def(
          "address",
          [](PyNetwork& n, int64_t host, bool ipv6) {
            PyNetwork::Use u(n);
            return u.net().addr(u.host(host), ipv6).str();
          },
          py::arg("host"), py::arg("ipv6") = false, "The host's unicast address (IPv4 or IPv6) as text.")
      .def(
          "is_shunt",
          [](PyNetwork& n, int64_t host) {
            PyNetwork::Use u(n);
            return u.net().is_shunt(u.host(host));
          },
          py::arg("host"), "Whether the host runs the Shunt stack.")
      .def(
          "run_for",
          [](PyNetwork& n, int64_t ns) {
            PyNetwork::Use u(n);
            const Nanos d = nonneg(ns, "ns");
            py::gil_scoped_release nogil;
            u.net().run_for(d);
          },
          py::arg("ns"), "Runs the network for `ns` of virtual time with no workload (GIL released).")
      .def(
          "counters",
          [](PyNetwork& n, int64_t host) {
            PyNetwork::Use u(n);
            return u.net().counters(u.shunt_host(host));
          },
          py::arg("host"),
          "Every counter of the host's stack, and of its mlx5 driver and NIC model when it has them "
          "(mlx5.*, nic.*), by name.")
      .def(
          "timelines",
          [](PyNetwork& n, int64_t host) {
            PyNetwork::Use u(n);
            return u.net().timelines(u.shunt_host(host));
          },
          py::arg("host"),
          "The most recent per-packet timelines of the host's simulated mlx5 NIC, in the order each frame's path ended (SHUNT_NIC_TIMELINES "
          "of them); empty when the host has no NIC model.")
      .def_property_readonly("network_drops", [](PyNetwork& n) { return PyNetwork::Use(n).net().network_drops(); },
                             "Frames lost or dropped by the network itself (link loss, queue drops), all links.")
      .def("close", &PyNetwork::close,
           "Destroys the simulation (pcap files are complete afterwards). Every later call raises ShuntError; "
           "closing twice is harmless.")
      .def_property_readonly("closed", &PyNetwork::closed, "Whether close() was called.")
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__", [](PyNetwork& n, const py::args&) { n.close(); })
      .def("udp_pingpong", pingpong_method(&udp_pingpong, 8), py::arg("client") = 0, py::arg("server") = 1,
           py::arg("payload") = 64, py::arg("count") = 1000, py::arg("warmup") = 10, py::arg("ipv6") = false,
           py::arg("port") = 7000, py::arg("timeout_ns") = 0,
           "UDP ping-pong: the client sends `payload` bytes (>= 8) to the server, which echoes them; `count` "
           "round trips are measured after `warmup`. A ping with no pong within timeout_ns (0: 10 ms) is lost. "
           "GIL released while it runs.")
      .def("tcp_pingpong", pingpong_method(&tcp_pingpong, 1), py::arg("client") = 0, py::arg("server") = 1,
           py::arg("payload") = 64, py::arg("count") = 1000, py::arg("warmup") = 10, py::arg("ipv6") = false,
           py::arg("port") = 7000, py::arg("timeout_ns") = 0,
           "TCP ping-pong on one connection (TCP_NODELAY both sides): a request of `payload` bytes, a response of "
           "the same size; `count` round trips measured after `warmup`. GIL released while it runs.")
      .def(
          "tcp_bulk",
          [](PyNetwork& n, const py::iterable& flows, int64_t port, bool ipv6, int64_t chunk, int64_t sndbuf,
             int64_t rcvbuf, int64_t start_spread_ns, int64_t timeout_ns) {
            PyNetwork::Use u(n);
            BulkSpec s;
            s.flows.clear();
            for (const auto& f : flows) {
              std::tuple<int64_t, int64_t, int64_t> t;
              try {
                t = f.cast<std::tuple<int64_t, int64_t, int64_t>>();
              } catch (const py::cast_error&) {
                fail("tcp_bulk: each flow is a tuple (from, to, bytes) of ints, not " + py::repr(f).cast<std::string>());
              }
              Flow fl;
              fl.from = u.shunt_host(std::get<0>(t), "flow sender");
              fl.to = u.shunt_host(std::get<1>(t), "flow receiver");
              if (fl.from == fl.to) fail("tcp_bulk: a flow's sender and receiver must be different hosts");
              fl.bytes = uint64_t(nonneg(std::get<2>(t), "flow bytes"));
              s.flows.push_back(fl);
            }
            if (s.flows.empty()) fail("tcp_bulk: no flows");
            s.port = port_arg(port);
            s.ipv6 = ipv6;
            s.chunk = size_t(positive(chunk, "chunk"));
            if (sndbuf < 0 || rcvbuf < 0 || sndbuf > INT32_MAX || rcvbuf > INT32_MAX)
              fail("sndbuf and rcvbuf must be 0 .. 2^31-1 bytes");
            s.sndbuf = int(sndbuf);
            s.rcvbuf = int(rcvbuf);
            s.start_spread = nonneg(start_spread_ns, "start_spread_ns");
            s.timeout = Nanos(positive(timeout_ns, "timeout_ns"));
            BulkResult r;
            {
              py::gil_scoped_release nogil;
              r = tcp_bulk(u.net(), s);
            }
            return r;
          },
          py::arg("flows") = py::make_tuple(py::make_tuple(0, 1, 1 << 20)), py::arg("port") = 5001,
          py::arg("ipv6") = false, py::arg("chunk") = 65536, py::arg("sndbuf") = 0, py::arg("rcvbuf") = 0,
          py::arg("start_spread_ns") = 0, py::arg("timeout_ns") = 60'000'000'000ll,
          "TCP bulk transfer: each flow (from, to, bytes) is one connection sending a byte pattern that the "
          "receiver checks byte for byte; several flows to one host make incast. Flow i starts i * "
          "start_spread_ns after the first. GIL released while it runs.")
      .def(
          "churn",
          [](PyNetwork& n, int64_t client, int64_t server, int64_t count, int64_t parallel, int64_t request, bool ipv6,
             int64_t port, int64_t timeout_ns) {
            PyNetwork::Use u(n);
            ChurnSpec s;
            s.client = u.shunt_host(client, "client");
            s.server = u.shunt_host(server, "server");
            if (s.client == s.server) fail("client and server must be different hosts");
            s.count = positive(count, "count");
            if (parallel < 1 || parallel > 65535) fail("parallel must be 1 .. 65535, not " + std::to_string(parallel));
            s.parallel = uint32_t(parallel);
            s.request = size_t(nonneg(request, "request"));
            s.ipv6 = ipv6;
            s.port = port_arg(port);
            s.timeout = Nanos(positive(timeout_ns, "timeout_ns"));
            ChurnResult r;
            {
              py::gil_scoped_release nogil;
              r = churn(u.net(), s);
            }
            return PyChurnResult(std::move(r));
          },
          py::arg("client") = 0, py::arg("server") = 1, py::arg("count") = 10000, py::arg("parallel") = 1,
          py::arg("request") = 0, py::arg("ipv6") = false, py::arg("port") = 6000,
          py::arg("timeout_ns") = 600'000'000'000ll,
          "Connection churn: the client opens `count` connections, `parallel` at a time; each exchanges "
          "`request` bytes (echoed) and the client closes it. GIL released while it runs.")
      .def(
          "multicast_fanout",
          [](PyNetwork& n, int64_t sender, const std::vector<int64_t>& receivers, const std::string& group,
             int64_t port, int64_t payload, int64_t count, int64_t interval_ns, int64_t timeout_ns) {
            PyNetwork::Use u(n);
            MulticastSpec s;
            s.sender = u.shunt_host(sender, "sender");
            s.receivers.clear();
            for (int64_t r : receivers) {
              const size_t h = u.shunt_host(r, "receiver");
              if (h == s.sender) fail("multicast_fanout: the sender cannot be a receiver");
              if (std::find(s.receivers.begin(), s.receivers.end(), h) != s.receivers.end())
                fail("multicast_fanout: receiver " + std::to_string(h) + " is given twice");
              s.receivers.push_back(h);
            }
            if (s.receivers.empty()) fail("multicast_fanout: no receivers");
            auto g = IpAddr::parse(group);
            if (!g || !g->is_multicast()) fail("multicast_fanout: '" + group + "' is not a multicast group address");
            s.group = group;
            s.port = port_arg(port);
            if (payload < 16 || payload > 65507) fail("payload must be 16 .. 65507 bytes, not " + std::to_string(payload));
            s.payload = size_t(payload);
            s.count = positive(count, "count");
            s.interval = nonneg(interval_ns, "interval_ns");
            s.timeout = Nanos(positive(timeout_ns, "timeout_ns"));
            MulticastResult r;
            {
              py::gil_scoped_release nogil;
              r = multicast_fanout(u.net(), s);
            }
            return PyMulticastResult(std::move(r));
          },
          py::arg("sender") = 0, py::arg("receivers") = std::vector<int64_t>{1}, py::arg("group") = "239.1.2.3",
          py::arg("port") = 9000, py::arg("payload") = 64, py::arg("count") = 1000, py::arg("interval_ns") = 10'000,
          py::arg("timeout_ns") = 10'000'000'000ll,
          "UDP multicast fan-out: the receivers join `group` (IGMP/MLD), the sender sends `count` datagrams of "
          "`payload` bytes (>= 16), one every interval_ns; one-way latency per receiver. GIL released while it "
          "runs.");

  // --- SimNetwork.
  py::class_<PySimNetwork, PyNetwork>(
      m, "SimNetwork",
      "The virtual-time harness: `hosts` stacks on one shared SimLink (a broadcast segment, or with queue > 0 "
      "a switch), each behind the simulated mlx5 NIC (nic='mlx5sim') or straight on its port (nic='sim'). Host "
      "i is 10.0.0.(i+1)/24 and fd00::(i+1)/64. Deterministic: the same arguments give the same results and "
      "frames.")
      .def(py::init([](int64_t hosts, const std::string& nic, int64_t rate_bps, int64_t delay_ns, int64_t mtu,
                       double loss, int64_t seed, const std::optional<ConfigObject>& config,
                       const std::optional<std::string>& pcap, int64_t queue) {
             auto o = sim_options(hosts, nic, rate_bps, delay_ns, mtu, loss, seed, config, pcap, queue);
             return std::make_unique<PySimNetwork>(o);
           }),
           py::arg("hosts") = 2, py::arg("nic") = "mlx5sim", py::arg("rate_bps") = 10'000'000'000ll,
           py::arg("delay_ns") = 1000, py::arg("mtu") = 1500, py::arg("loss") = 0.0, py::arg("seed") = 1,
           py::arg("config") = py::none(), py::arg("pcap") = py::none(), py::arg("queue") = 0,
           "Builds the network: link rate and one-way delay, MTU, loss probability per frame (seeded), seed "
           "(overrides config's), every stack's configuration, a pcap file of the link, and the switch queue: "
           "0 (default) is a shared segment where nothing limits what arrives at a host (n senders to one "
           "host deliver n times the link rate); queue > 0 (0 .. 1000000 frames) makes the link a switch whose "
           "port to each host serializes the frames to it at rate_bps behind a drop-tail queue of that many "
           "frames (drops count in network_drops).");

  // --- Ns3Network.
  py::class_<PyNs3Network, PyNetwork>(
      m, "Ns3Network",
      "An ns-3 topology of Shunt hosts (nicmodel/ns3), deterministic for a seed and run. One at a time per "
      "process (ns-3 has one simulator): building a second while one exists raises ShuntError; close() (or "
      "garbage collection) frees the slot.")
      .def_static(
          "two_hosts",
          [](int64_t rate_bps, int64_t delay_ns, int64_t mtu, int64_t queue, double loss, const std::string& medium,
             int64_t seed, int64_t run, const std::optional<ConfigObject>& config, const std::optional<std::string>& pcap) {
            Ns3NetOptions o;
            o.shape = Ns3NetOptions::Shape::kTwoHosts;
            o.link = ns3_link("", rate_bps, delay_ns, mtu, queue, loss);
            if (medium != "ethlink" && medium != "csma") fail("medium must be \"ethlink\" or \"csma\", not \"" + medium + "\"");
            o.medium = medium;
            ns3_common(o, seed, run, config, pcap);
            return std::make_unique<PyNs3Network>(o);
          },
          py::arg("rate_bps") = 10'000'000'000ll, py::arg("delay_ns") = 1000, py::arg("mtu") = 1500,
          py::arg("queue") = 1000, py::arg("loss") = 0.0, py::arg("medium") = "ethlink", py::arg("seed") = 1,
          py::arg("run") = 1, py::arg("config") = py::none(), py::arg("pcap") = py::none(),
          "Two Shunt hosts back to back on one cable ('ethlink': full duplex; 'csma': a CSMA segment): "
          "10.0.0.1/24 and 10.0.0.2/24, fd00::1 and fd00::2. queue: each device's transmit queue in packets; "
          "loss: probability a frame is corrupt at each receiver; pcap: a file name prefix.")
      .def_static(
          "dumbbell",
          [](int64_t left, int64_t right, int64_t edge_rate_bps, int64_t edge_delay_ns, int64_t bottleneck_rate_bps,
             int64_t bottleneck_delay_ns, const std::string& queue_disc, int64_t queue_packets, double loss,
             int64_t seed, int64_t run, const std::optional<ConfigObject>& config, const std::optional<std::string>& pcap) {
            Ns3NetOptions o;
            o.shape = Ns3NetOptions::Shape::kDumbbell;
            if (left < 1 || left > 250 || right < 1 || right > 250) fail("left and right must be 1 .. 250 hosts each");
            o.left = size_t(left);
            o.right = size_t(right);
            o.link = ns3_link("edge_", edge_rate_bps, edge_delay_ns, 1500, 1000, 0);
            o.bottleneck = ns3_link("bottleneck_", bottleneck_rate_bps, bottleneck_delay_ns, 1500, 1000, loss);
            if (queue_disc != "droptail" && queue_disc != "red" && queue_disc != "codel")
              fail("queue_disc must be \"droptail\", \"red\" or \"codel\", not \"" + queue_disc + "\"");
            o.queue_disc = queue_disc;
            if (queue_packets < 1 || queue_packets > 1'000'000)
              fail("queue_packets must be 1 .. 1000000, not " + std::to_string(queue_packets));
            o.queue_disc_packets = uint32_t(queue_packets);
            ns3_common(o, seed, run, config, pcap);
            return std::make_unique<PyNs3Network>(o);
          },
          py::arg("left") = 1, py::arg("right") = 1, py::arg("edge_rate_bps") = 10'000'000'000ll,
          py::arg("edge_delay_ns") = 1000, py::arg("bottleneck_rate_bps") = 1'000'000'000ll,
          py::arg("bottleneck_delay_ns") = 10'000, py::arg("queue_disc") = "droptail", py::arg("queue_packets") = 100,
          py::arg("loss") = 0.0, py::arg("seed") = 1, py::arg("run") = 1, py::arg("config") = py::none(),
          py::arg("pcap") = py::none(),
          "Left hosts -> router -> bottleneck -> router -> right hosts. Hosts 0 .. left-1 are on the left "
          "(10.1.(i+1).2), then the right ones (10.2.(j+1).2). The bottleneck's queue discipline is 'droptail', "
          "'red' or 'codel' holding queue_packets; loss applies on the bottleneck.")
      .def_static(
          "star",
          [](int64_t hosts, int64_t rate_bps, int64_t delay_ns, int64_t mtu, int64_t queue, double loss, int64_t seed,
             int64_t run, const std::optional<ConfigObject>& config, const std::optional<std::string>& pcap) {
            Ns3NetOptions o;
            o.shape = Ns3NetOptions::Shape::kStar;
            if (hosts < 1 || hosts > 250) fail("hosts must be 1 .. 250, not " + std::to_string(hosts));
            o.hosts = size_t(hosts);
            o.link = ns3_link("", rate_bps, delay_ns, mtu, queue, loss);
            ns3_common(o, seed, run, config, pcap);
            return std::make_unique<PyNs3Network>(o);
          },
          py::arg("hosts") = 4, py::arg("rate_bps") = 10'000'000'000ll, py::arg("delay_ns") = 1000,
          py::arg("mtu") = 1500, py::arg("queue") = 1000, py::arg("loss") = 0.0, py::arg("seed") = 1,
          py::arg("run") = 1, py::arg("config") = py::none(), py::arg("pcap") = py::none(),
          "`hosts` Shunt hosts, each on its own cable to a layer-2 switch (ns-3's bridge): host i is "
          "10.0.0.(i+1)/24, fd00::(i+1)/64.")
      .def("close", &PyNs3Network::close,
           "Destroys the simulation (ns3::Simulator::Destroy): pcap files are complete afterwards and another "
           "Ns3Network may be built. Also done on garbage collection. Closing twice is harmless.")
      .def_property_readonly("pcap_files", &PyNs3Network::pcap_files,
                             "The pcap files written (one per link device), complete after close().");
}
