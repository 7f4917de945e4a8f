#include "stack/core/clock.h"

#include <time.h>

namespace shunt {

Nanos MonotonicClock::now() const {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return Nanos(ts.tv_sec) * kSecond + ts.tv_nsec;
}

}  // namespace shunt
