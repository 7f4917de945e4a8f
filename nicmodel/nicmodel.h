// The simulated NIC as devices a stack can drive: the mlx5 driver on the ConnectX model, with
// the model's wire on the virtual-time harness or on a shared-memory cable.
//
// register_devices() makes the kinds known by name (SHUNT_DEVICE):
//   mlx5sim              in the virtual-time harness (HarnessOptions::nic or SHUNT_DEVICE)
//   mlx5sim:cable=NAME   in real time, joined to another process by the cable NAME
// Programs that offer these (the tests, `shunt`, the preload library) call it once at start.
#pragma once
#include <memory>
#include <string>

#include "nicmodel/mlx5/mlx5_model.h"
#include "nicmodel/port/harness_port.h"
#include "nicmodel/port/shm_cable.h"
#include "stack/driver/device_registry.h"
#include "stack/driver/mlx5/mlx5_driver.h"
#include "stack/harness/harness.h"

namespace nicmodel {

void register_devices();

// What stands behind a device opened as mlx5sim:cable=NAME (held in OpenedDevice::keep): the
// cable, for its status() line ("cable feed: peer (pid 1234) exited") and counters, and the model.
struct CableNic {
  std::unique_ptr<ShmCable> cable;
  std::unique_ptr<Mlx5Model> model;
};
// The cable NIC of `opened`, or null if it was not opened as mlx5sim:cable=NAME.
CableNic* cable_nic(const shunt::OpenedDevice& opened);

// A stack's NIC in the harness: the mlx5 driver (what the stack drives), the model behind its
// rings, and the model's wire on the stack's SimLink port.
class ModelHarnessNic final : public shunt::HarnessNic {
 public:
  // Null with `error` set if the driver could not open the model's queues.
  static std::unique_ptr<ModelHarnessNic> create(shunt::SimPort& port, shunt::VirtualClock& clock,
                                                 const shunt::Config& config, std::string& error);
  shunt::Device& device() override { return driver_; }
  Nanos next_event() const override;
  bool run_due(Nanos now) override;
  uint64_t activity() const override { return model_.activity() + delivered_; }

  Mlx5Model& model() { return model_; }
  shunt::Mlx5Driver& driver() { return driver_; }

 private:
  ModelHarnessNic(shunt::SimPort& port, shunt::VirtualClock& clock, const shunt::Config& config);
  HarnessPort port_;
  Mlx5Model model_;
  shunt::Mlx5Driver driver_;
  uint64_t delivered_ = 0;
};

}  // namespace nicmodel
