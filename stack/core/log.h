// Levelled logging to stderr. A disabled level costs one comparison.
#pragma once
#include <cstdarg>
#include <optional>
#include <string_view>

namespace shunt {

enum class LogLevel : int { kError = 0, kWarn = 1, kInfo = 2, kDebug = 3, kTrace = 4 };

namespace log_detail {
extern LogLevel g_level;
}

inline bool log_enabled(LogLevel l) { return int(l) <= int(log_detail::g_level); }
void set_log_level(LogLevel l);
LogLevel log_level();
std::optional<LogLevel> parse_log_level(std::string_view s);
const char* log_level_name(LogLevel l);
void log_write(LogLevel l, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

}  // namespace shunt

#define SHUNT_LOG(level, ...)                                              \
  do {                                                                     \
    if (::shunt::log_enabled(::shunt::LogLevel::level)) ::shunt::log_write(::shunt::LogLevel::level, __VA_ARGS__); \
  } while (0)
#define SHUNT_ERROR(...) SHUNT_LOG(kError, __VA_ARGS__)
#define SHUNT_WARN(...) SHUNT_LOG(kWarn, __VA_ARGS__)
#define SHUNT_INFO(...) SHUNT_LOG(kInfo, __VA_ARGS__)
#define SHUNT_DEBUG(...) SHUNT_LOG(kDebug, __VA_ARGS__)
#define SHUNT_TRACE(...) SHUNT_LOG(kTrace, __VA_ARGS__)
