#include "nicmodel/nicmodel.h"

#include <mutex>

#include "nicmodel/port/shm_cable.h"
#include "stack/driver/device_registry.h"

namespace nicmodel {

namespace {

NicModelOptions model_options(const shunt::DeviceInfo& wire, const shunt::Config& config) {
  NicModelOptions o;
  o.mac = wire.mac;
  o.mtu = wire.mtu;
  o.timing = NicTiming::from(config);
  return o;
}

NicModelOptions harness_model_options(const shunt::DeviceInfo& wire, const shunt::Config& config) {
  NicModelOptions o = model_options(wire, config);
  o.simulator_driven = true;
  return o;
}

// Real time: the driver, the model, and the cable, kept together. OpenedDevice::keep holds the
// CableNic with this deleter, which is how cable_nic() knows the type behind the void pointer.
struct CableNicDeleter {
  void operator()(CableNic* nic) const { delete nic; }
};

shunt::OpenedDevice open_cable_nic(const shunt::DeviceSpec& spec, shunt::Clock& clock,
                                   const shunt::Config& config) {
  shunt::OpenedDevice out;
  if (auto e = spec.check_options("cable|mac|mtu|slots"); !e.empty()) {
    out.error = e;
    return out;
  }
  auto cable_name = spec.option("cable");
  if (!cable_name) {
    out.error = "mlx5sim outside the virtual-time harness needs a wire: mlx5sim:cable=NAME";
    return out;
  }
  CableOptions co;
  co.name = *cable_name;
  if (uint64_t slots = co.slots; spec.uint_option("slots", 2, 1u << 20, slots, out.error)) {
    co.slots = uint32_t(slots);
  } else {
    return out;
  }
  shunt::DeviceInfo wire;
  wire.mtu = 1500;
  wire.mac = shunt::MacAddr{{0x02, 0x53, 0x48, 0x00, 0x00, 0x01}};
  if (!spec.mac_option("mac", wire.mac, out.error)) return out;
  if (uint64_t mtu = wire.mtu; spec.uint_option("mtu", 576, 9000, mtu, out.error)) {
    wire.mtu = uint32_t(mtu);
  } else {
    return out;
  }
  std::shared_ptr<CableNic> keep(new CableNic, CableNicDeleter{});
  std::string error;
  keep->cable = ShmCable::open(co, error);
  if (!keep->cable) {
    out.error = error;
    return out;
  }
  keep->model = std::make_unique<Mlx5Model>(clock, *keep->cable, model_options(wire, config));
  keep->cable->set_receiver(keep->model.get());
  auto driver = std::make_unique<shunt::Mlx5Driver>(*keep->model, shunt::Mlx5DriverOptions::from(config));
  if (!driver->ok()) {
    out.error = driver->error();
    return out;
  }
  out.device = std::move(driver);
  out.keep = std::move(keep);
  return out;
}

}  // namespace

CableNic* cable_nic(const shunt::OpenedDevice& opened) {
  if (!std::get_deleter<CableNicDeleter>(opened.keep)) return nullptr;
  return static_cast<CableNic*>(opened.keep.get());
}

ModelHarnessNic::ModelHarnessNic(shunt::SimPort& port, shunt::VirtualClock& clock, const shunt::Config& config)
    : port_(port),
      model_(clock, port_, harness_model_options(port.info(), config)),
      driver_(model_, shunt::Mlx5DriverOptions::from(config)) {
  port_.set_receiver(&model_);
}

std::unique_ptr<ModelHarnessNic> ModelHarnessNic::create(shunt::SimPort& port, shunt::VirtualClock& clock,
                                                         const shunt::Config& config, std::string& error) {
  std::unique_ptr<ModelHarnessNic> nic(new ModelHarnessNic(port, clock, config));
  if (!nic->driver_.ok()) {
    error = nic->driver_.error();
    return nullptr;
  }
  return nic;
}

Nanos ModelHarnessNic::next_event() const {
  // Frames the link delivered arrived now; the model's own events come at their times.
  return port_.pending() ? Nanos(0) : model_.next_event();
}

bool ModelHarnessNic::run_due(Nanos now) {
  const uint64_t cqes = model_.cqes_written();
  delivered_ += port_.deliver(now);
  model_.run_due(now);
  return model_.cqes_written() != cqes;
}

void register_devices() {
  static std::once_flag once;
  std::call_once(once, [] {
    shunt::register_harness_nic(
        "mlx5sim", [](shunt::SimPort& port, shunt::VirtualClock& clock, const shunt::Config& config,
                      std::string& error) -> std::unique_ptr<shunt::HarnessNic> {
          return ModelHarnessNic::create(port, clock, config, error);
        });
    shunt::register_device_kind(
        "mlx5sim", "mlx5sim:cable=NAME[,mac=MAC][,mtu=N][,slots=N]  the mlx5 driver on the simulated ConnectX, wired to another process by a shared-memory cable",
        open_cable_nic);
  });
}

}  // namespace nicmodel
