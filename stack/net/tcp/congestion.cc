#include "stack/net/tcp/congestion.h"

#include <algorithm>

#include "stack/net/tcp/cubic.h"
#include "stack/net/tcp/newreno.h"

namespace shunt {

uint64_t CongestionControl::initial_window(uint32_t mss) {
  return std::min<uint64_t>(10ull * mss, std::max<uint64_t>(2ull * mss, 14600));
}

std::unique_ptr<CongestionControl> make_congestion_control(std::string_view name) {
  if (name == "newreno" || name == "reno") return std::make_unique<NewReno>();
  if (name == "cubic") return std::make_unique<Cubic>();
  return nullptr;
}

}  // namespace shunt
