// libFuzzer target: hostile frames into a whole stack with sockets, both families, fragments and
// timers (the input format is in stack_rx_harness.h). A crash, a sanitizer report, a leaked
// buffer, a reassembly or a timer that outlives the input aborts.
//
//   cmake -S . -B build-fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang \
//         -DSHUNT_SANITIZE=ON -DSHUNT_FUZZ=ON
//   ninja -C build-fuzz fuzz_stack_rx
//   build-fuzz/tests/fuzz_stack_rx -max_len=4096 tests/fuzz/corpus   (or a scratch copy of it)
#include <cstdio>
#include <cstdlib>

#include "stack/core/log.h"
#include "tests/fuzz/stack_rx_harness.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  shunt::set_log_level(shunt::LogLevel::kError);  // address conflicts and such are expected here
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const shunt::fuzz::Result r = shunt::fuzz::run_stack_rx(data, size);
  if (!r.ok) {
    std::fprintf(stderr, "fuzz_stack_rx: %s (pool %zu/%zu, timers %zu, reassembly v4 %zu v6 %zu)\n", r.why.c_str(),
                 r.pool_available, r.pool_capacity, r.timers_armed, r.ipv4_reassembly, r.ipv6_reassembly);
    std::abort();
  }
  return 0;
}
