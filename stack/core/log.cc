#include "stack/core/log.h"

#include <cstdio>

namespace shunt {

namespace log_detail {
LogLevel g_level = LogLevel::kWarn;
}

namespace {
constexpr const char* kNames[] = {"error", "warn", "info", "debug", "trace"};
}

void set_log_level(LogLevel l) { log_detail::g_level = l; }
LogLevel log_level() { return log_detail::g_level; }

const char* log_level_name(LogLevel l) { return kNames[int(l)]; }

std::optional<LogLevel> parse_log_level(std::string_view s) {
  for (int i = 0; i < 5; ++i) {
    if (s == kNames[i]) return LogLevel(i);
  }
  return std::nullopt;
}

void log_write(LogLevel l, const char* fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  // One write per line so lines from threads do not interleave.
  fprintf(stderr, "shunt %s: %s\n", kNames[int(l)], line);
}

}  // namespace shunt
