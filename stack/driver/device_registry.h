// SHUNT_DEVICE: which NIC a stack drives and how it is reached. The syntax is
//
//   KIND[:ITEM[,ITEM...]]     ITEM is NAME (at most one) or KEY=VALUE
//
// for example `sim`, `mlx5sim`, `mlx5sim:cable=feed`, `mlx5:mlx5_0,port=1`, `tap:shunt0`.
// Kinds register a factory here; those outside stack/ (the simulated NIC in nicmodel/) register
// theirs at start-up, so the stack never depends on them (DESIGN.md). docs/config.md lists
// every kind and its options.
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "stack/core/clock.h"
#include "stack/core/config.h"
#include "stack/driver/device.h"

namespace shunt {

struct DeviceSpec {
  std::string text;  // as given
  std::string kind;
  std::string name;  // the one ITEM without '=', or empty
  std::vector<std::pair<std::string, std::string>> options;

  // The spec, or one line saying what is wrong with `text`.
  static std::optional<DeviceSpec> parse(std::string_view text, std::string& error);
  // The value of KEY, or nullopt.
  std::optional<std::string> option(std::string_view key) const;
  // One error line if an option is not among `known` ('|'-separated), else empty.
  std::string check_options(std::string_view known) const;
  // KEY as an integer in [lo, hi] into `out`, which stays as it is when KEY is absent. False
  // with `error` ("KEY=V: expected an integer in [lo, hi]") when the value is not one.
  bool uint_option(std::string_view key, uint64_t lo, uint64_t hi, uint64_t& out, std::string& error) const;
  // KEY as a MAC address into `out` (untouched when absent); false with `error` when it is not one.
  bool mac_option(std::string_view key, MacAddr& out, std::string& error) const;
};

// A device opened by spec, with whatever it needs kept alive (a binding, a simulated NIC, a
// cable) owned by `device` or by `keep`.
struct OpenedDevice {
  std::shared_ptr<void> keep;  // destroyed after `device` (members go in reverse order)
  std::unique_ptr<Device> device;
  std::string error;           // one line when device is null
};

using DeviceFactory = std::function<OpenedDevice(const DeviceSpec& spec, Clock& clock, const Config& config)>;

// Makes KIND openable; `usage` is one line for errors and `shunt --help`. A second registration
// of a kind replaces the first.
void register_device_kind(const std::string& kind, const std::string& usage, DeviceFactory factory);
// The registered kinds with their usage lines, sorted by kind.
std::vector<std::pair<std::string, std::string>> device_kinds();
// Opens `spec_text` (SHUNT_DEVICE). Errors read "SHUNT_DEVICE=<text>: <why>".
OpenedDevice open_device(std::string_view spec_text, Clock& clock, const Config& config);

}  // namespace shunt
