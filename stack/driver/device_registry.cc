#include "stack/driver/device_registry.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <map>
#include <mutex>

#include "stack/driver/afxdp/afxdp.h"
#include "stack/driver/mlx5/mlx5_driver.h"
#include "stack/driver/mlx5/verbs_binding.h"
#include "stack/driver/tap/tap.h"
#include "stack/driver/unixsock/unix_device.h"
#include "stack/driver/verbs/verbs_device.h"

namespace shunt {
namespace {

struct Kind {
  std::string usage;
  DeviceFactory factory;
};

std::mutex& registry_mutex() {
  static std::mutex m;
  return m;
}

std::map<std::string, Kind>& registry() {
  static std::map<std::string, Kind> r;
  return r;
}

// Names and keys: letters, digits, '_', '-', '.', '/'; values may also hold ':' (MAC and IPv6
// addresses).
bool valid_token(std::string_view s, bool value = false) {
  if (s.empty() || s.size() > 128) return false;
  return std::all_of(s.begin(), s.end(), [value](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.' || c == '/' || (value && c == ':');
  });
}

OpenedDevice open_tap(const DeviceSpec& spec, Clock&, const Config&) {
  OpenedDevice out;
  if (auto e = spec.check_options("mac"); !e.empty()) {
    out.error = e;
    return out;
  }
  TapOptions o;
  o.ifname = spec.name;
  o.mac = MacAddr{{0x02, 0x53, 0x48, 0x00, 0x00, 0x01}};
  if (!spec.mac_option("mac", o.mac, out.error)) return out;
  auto r = TapDevice::open(o);
  if (!r.device) {
    out.error = r.error;
    return out;
  }
  out.device = std::move(r.device);
  return out;
}

// Any Linux interface through an AF_XDP socket and the driver's own XDP program (docs/afxdp.md).
OpenedDevice open_afxdp(const DeviceSpec& spec, Clock&, const Config&) {
  OpenedDevice out;
  if (auto e = spec.check_options("queue|mode|mac|frames"); !e.empty()) {
    out.error = e;
    return out;
  }
  AfxdpOptions o;
  o.ifname = spec.name;
  if (o.ifname.empty()) {
    out.error = "needs an interface: afxdp:IFNAME[,queue=N][,mode=native|generic|auto][,mac=MAC][,frames=N]";
    return out;
  }
  if (uint64_t q = o.queue; spec.uint_option("queue", 0, 1023, q, out.error)) {
    o.queue = uint32_t(q);
  } else {
    return out;
  }
  if (auto m = spec.option("mode")) {
    if (*m == "native") {
      o.mode = AfxdpMode::kNative;
    } else if (*m == "generic") {
      o.mode = AfxdpMode::kGeneric;
    } else if (*m == "auto") {
      o.mode = AfxdpMode::kAuto;
    } else {
      out.error = "mode=" + *m + ": expected native, generic or auto";
      return out;
    }
  }
  if (spec.option("mac")) {
    MacAddr mac;
    if (!spec.mac_option("mac", mac, out.error)) return out;
    o.mac = mac;
  }
  if (uint64_t f = o.frames; spec.uint_option("frames", 64, 65536, f, out.error)) {
    if ((f & (f - 1)) != 0) {
      out.error = "frames=" + std::to_string(f) + ": expected a power of two in [64, 65536]";
      return out;
    }
    o.frames = uint32_t(f);
  } else {
    return out;
  }
  auto r = AfxdpDevice::open(o);
  if (!r.device) {
    out.error = r.error;
    return out;
  }
  out.device = std::move(r.device);
  return out;
}

// A real ConnectX: the mlx5 driver on a raw-packet QP (docs/hardware.md). The binding lives in
// `keep` and so outlives the driver.
OpenedDevice open_mlx5(const DeviceSpec& spec, Clock&, const Config& config) {
  OpenedDevice out;
  if (auto e = spec.check_options("port|mac|ipv4|ipv6|mtu"); !e.empty()) {
    out.error = e;
    return out;
  }
  VerbsBindingOptions o;
  o.device = spec.name;
  if (uint64_t port = o.port; spec.uint_option("port", 1, 255, port, out.error)) {
    o.port = uint8_t(port);
  } else {
    return out;
  }
  if (uint64_t mtu = o.mtu; spec.uint_option("mtu", 576, 9000, mtu, out.error)) {
    o.mtu = uint32_t(mtu);
  } else {
    return out;
  }
  if (!spec.mac_option("mac", o.mac, out.error)) return out;
  if (auto v = spec.option("ipv4")) {
    auto a = Ipv4Addr::parse(*v);
    if (!a) {
      out.error = "ipv4=" + *v + ": not an IPv4 address";
      return out;
    }
    o.ipv4.push_back(*a);
  }
  if (auto v = spec.option("ipv6")) {
    auto a = Ipv6Addr::parse(*v);
    if (!a) {
      out.error = "ipv6=" + *v + ": not an IPv6 address";
      return out;
    }
    o.ipv6.push_back(*a);
  }
  auto binding = std::make_shared<VerbsBinding>(o);
  auto driver = std::make_unique<Mlx5Driver>(*binding, Mlx5DriverOptions::from(config));
  if (!driver->ok()) {
    out.error = driver->error();
    return out;
  }
  out.device = std::move(driver);
  out.keep = std::move(binding);
  return out;
}

// A host port of `shunt netsim`: a connected SOCK_SEQPACKET socket (docs/netsim.md).
OpenedDevice open_unix(const DeviceSpec& spec, Clock&, const Config&) {
  OpenedDevice out;
  if (auto e = spec.check_options("path|mac|mtu"); !e.empty()) {
    out.error = e;
    return out;
  }
  UnixDeviceOptions o;
  if (auto v = spec.option("path")) {
    o.path = *v;
  } else if (!spec.name.empty()) {
    o.path = spec.name;
  } else {
    out.error = "needs a socket: unix:path=DIR/hostN.sock";
    return out;
  }
  if (!spec.mac_option("mac", o.mac, out.error)) return out;
  if (uint64_t mtu = o.mtu; spec.uint_option("mtu", 68, 2030, mtu, out.error)) {
    o.mtu = uint32_t(mtu);
  } else {
    return out;
  }
  auto r = UnixDevice::open(o);
  if (!r.device) {
    out.error = r.error;
    return out;
  }
  out.device = std::move(r.device);
  return out;
}

// Any rdma-core device through a UD QP, IP carried as IPoIB does (soft-RoCE; docs/hardware.md).
OpenedDevice open_verbs(const DeviceSpec& spec, Clock&, const Config&) {
  OpenedDevice out;
  if (auto e = spec.check_options("port|gid|mtu|qkey|group|peers|rx|tx|allow_mlx5"); !e.empty()) {
    out.error = e;
    return out;
  }
  VerbsOptions o;
  o.device = spec.name;
  uint64_t v = o.port;
  if (!spec.uint_option("port", 1, 255, v, out.error)) return out;
  o.port = uint8_t(v);
  v = 0;
  if (spec.option("gid")) {
    if (!spec.uint_option("gid", 0, 255, v, out.error)) return out;
    o.gid_index = int(v);
  }
  v = o.mtu;
  if (!spec.uint_option("mtu", 68, 4092, v, out.error)) return out;
  o.mtu = uint32_t(v);
  v = o.qkey;
  if (!spec.uint_option("qkey", 1, 0x7fffffff, v, out.error)) return out;  // high bit: privileged Q_Keys
  o.qkey = uint32_t(v);
  if (auto g = spec.option("group")) {
    auto a = Ipv4Addr::parse(*g);
    if (!a || !a->is_multicast()) {
      out.error = "group=" + *g + ": expected an IPv4 multicast address (224.0.0.0/4)";
      return out;
    }
    o.group = *a;
  }
  v = o.peers;
  if (!spec.uint_option("peers", 1, 65536, v, out.error)) return out;
  o.peers = uint32_t(v);
  v = o.rx_depth;
  if (!spec.uint_option("rx", 16, 16384, v, out.error)) return out;
  o.rx_depth = uint32_t(v);
  v = o.tx_depth;
  if (!spec.uint_option("tx", 16, 16384, v, out.error)) return out;
  o.tx_depth = uint32_t(v);
  v = 0;
  if (!spec.uint_option("allow_mlx5", 0, 1, v, out.error)) return out;
  o.allow_mlx5 = v == 1;
  auto r = VerbsDevice::open(o);
  if (!r.device) {
    out.error = r.error;
    return out;
  }
  out.device = std::move(r.device);
  return out;
}

void register_builtin_kinds() {
  static std::once_flag once;
  std::call_once(once, [] {
    registry().emplace("afxdp", Kind{"afxdp:IFNAME[,queue=N][,mode=native|generic|auto][,mac=MAC][,frames=N]  any Linux interface through AF_XDP (libxdp; needs root or CAP_NET_ADMIN/NET_RAW/BPF; docs/afxdp.md)", open_afxdp});
    registry().emplace("mlx5", Kind{"mlx5:[DEVICE][,port=N][,mac=MAC][,ipv4=ADDR][,ipv6=ADDR][,mtu=N]  a ConnectX through rdma-core (raw-packet QP, flow steering; docs/hardware.md)", open_mlx5});
    registry().emplace("tap", Kind{"tap:IFNAME[,mac=MAC]  a Linux TAP interface (created if missing; needs CAP_NET_ADMIN)", open_tap});
    registry().emplace("verbs", Kind{"verbs:[DEVICE][,port=N][,gid=INDEX][,mtu=N][,qkey=N][,group=MCAST][,peers=N][,rx=N][,tx=N][,allow_mlx5=1]  any rdma-core device (soft-RoCE rxe0) through a UD QP, IP carried as IPoIB does; a ConnectX takes mlx5: (docs/hardware.md)", open_verbs});
    registry().emplace("unix", Kind{"unix:path=SOCKET[,mac=MAC][,mtu=N]  a host port of `shunt netsim` (a SOCK_SEQPACKET socket; docs/netsim.md)", open_unix});
  });
}

}  // namespace

std::optional<DeviceSpec> DeviceSpec::parse(std::string_view text, std::string& error) {
  DeviceSpec spec;
  spec.text = std::string(text);
  if (text.empty()) {
    error = "empty device; expected KIND[:NAME][,KEY=VALUE...], e.g. mlx5sim:cable=feed";
    return std::nullopt;
  }
  size_t colon = text.find(':');
  spec.kind = std::string(text.substr(0, colon));
  if (!valid_token(spec.kind) || spec.kind.find('/') != std::string::npos) {
    error = "bad device kind '" + spec.kind + "'; expected KIND[:NAME][,KEY=VALUE...]";
    return std::nullopt;
  }
  if (colon == std::string_view::npos) return spec;
  std::string_view rest = text.substr(colon + 1);
  if (rest.empty()) {
    error = "nothing after ':'; expected KIND[:NAME][,KEY=VALUE...]";
    return std::nullopt;
  }
  while (true) {
    size_t comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    size_t eq = item.find('=');
    if (eq == std::string_view::npos) {
      if (!valid_token(item)) {
        error = "bad name '" + std::string(item) + "' (letters, digits, '_', '-', '.', '/')";
        return std::nullopt;
      }
      if (!spec.name.empty()) {
        error = "two names ('" + spec.name + "' and '" + std::string(item) + "'); options are KEY=VALUE";
        return std::nullopt;
      }
      spec.name = std::string(item);
    } else {
      std::string_view key = item.substr(0, eq), value = item.substr(eq + 1);
      if (!valid_token(key) || !valid_token(value, true)) {
        error = "bad option '" + std::string(item) + "'; expected KEY=VALUE";
        return std::nullopt;
      }
      if (spec.option(key)) {
        error = "option '" + std::string(key) + "' given twice";
        return std::nullopt;
      }
      spec.options.emplace_back(std::string(key), std::string(value));
    }
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  return spec;
}

std::optional<std::string> DeviceSpec::option(std::string_view key) const {
  for (const auto& [k, v] : options) {
    if (k == key) return v;
  }
  return std::nullopt;
}

bool DeviceSpec::uint_option(std::string_view key, uint64_t lo, uint64_t hi, uint64_t& out, std::string& error) const {
  auto v = option(key);
  if (!v) return true;
  char* end = nullptr;
  errno = 0;
  const unsigned long long n = std::strtoull(v->c_str(), &end, 10);
  if (v->empty() || *end || errno || (*v)[0] == '-' || n < lo || n > hi) {
    error = std::string(key) + "=" + *v + ": expected an integer in [" + std::to_string(lo) + ", " +
            std::to_string(hi) + "]";
    return false;
  }
  out = n;
  return true;
}

bool DeviceSpec::mac_option(std::string_view key, MacAddr& out, std::string& error) const {
  auto v = option(key);
  if (!v) return true;
  auto mac = MacAddr::parse(*v);
  if (!mac) {
    error = std::string(key) + "=" + *v + ": not a MAC address";
    return false;
  }
  out = *mac;
  return true;
}

std::string DeviceSpec::check_options(std::string_view known) const {
  for (const auto& [k, v] : options) {
    bool found = false;
    std::string_view rest = known;
    while (!found) {
      size_t bar = rest.find('|');
      if (rest.substr(0, bar) == k) found = true;
      if (bar == std::string_view::npos) break;
      rest = rest.substr(bar + 1);
    }
    if (!found) {
      return "unknown option '" + k + "' for " + kind + (known.empty() ? " (it takes none)" : " (known: " + std::string(known) + ")");
    }
  }
  return {};
}

void register_device_kind(const std::string& kind, const std::string& usage, DeviceFactory factory) {
  std::lock_guard lock(registry_mutex());
  register_builtin_kinds();
  registry()[kind] = Kind{usage, std::move(factory)};
}

std::vector<std::pair<std::string, std::string>> device_kinds() {
  std::lock_guard lock(registry_mutex());
  register_builtin_kinds();
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [k, v] : registry()) out.emplace_back(k, v.usage);
  return out;
}

OpenedDevice open_device(std::string_view spec_text, Clock& clock, const Config& config) {
  OpenedDevice out;
  const std::string prefix = "SHUNT_DEVICE=" + std::string(spec_text) + ": ";
  std::string error;
  auto spec = DeviceSpec::parse(spec_text, error);
  if (!spec) {
    out.error = prefix + error;
    return out;
  }
  DeviceFactory factory;
  {
    std::lock_guard lock(registry_mutex());
    register_builtin_kinds();
    auto it = registry().find(spec->kind);
    if (it == registry().end()) {
      std::string kinds;
      for (const auto& [k, v] : registry()) kinds += (kinds.empty() ? "" : ", ") + k;
      out.error = prefix + "unknown device kind '" + spec->kind + "' (known: " + (kinds.empty() ? "none" : kinds) + ")";
      return out;
    }
    factory = it->second.factory;
  }
  out = factory(*spec, clock, config);
  if (!out.device && out.error.empty()) out.error = "could not open the device";
  if (!out.device) out.error = prefix + out.error;
  return out;
}

}  // namespace shunt
