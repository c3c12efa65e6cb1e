#pragma once

// Structured logging: one line per event, a message plus key/value fields, as JSON lines
// (default) or logfmt ("text"). Each component has its own logger with its own level:
//
//   carina::log::Logger& logger = carina::log::get("storage");
//   CARINA_LOG_INFO(logger, "partition created", {{"disk", "/dev/sdb"}, {"bytes", n}});
//
// Never log secrets: CSI secrets and tokens are logged as counts only.

#include <atomic>
#include <concepts>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>

#include <absl/status/statusor.h>

namespace carina::log {

enum class Level { Trace = 0, Debug, Info, Warn, Error, Off };
enum class Format { Json, Text };

/** One key/value field. Numbers and booleans are written unquoted in JSON. */
struct Field {
  Field(std::string_view k, std::string_view v) : key(k), value(v) {}
  Field(std::string_view k, const char* v) : key(k), value(v == nullptr ? "" : v) {}
  Field(std::string_view k, const std::string& v) : key(k), value(v) {}
  Field(std::string_view k, bool v) : key(k), value(v ? "true" : "false"), raw(true) {}
  template <std::integral T>
  Field(std::string_view k, T v) : key(k), value(std::to_string(v)), raw(true) {}
  Field(std::string_view k, double v);

  std::string_view key;
  std::string value;
  bool raw = false;  // written without quotes in JSON
};

class Logger {
public:
  explicit Logger(std::string component) : component_(std::move(component)) {}
  const std::string& component() const { return component_; }
  bool enabled(Level level) const;
  void setLevel(Level level);
  /** Formats and writes one line. Thread-safe. */
  void log(Level level, std::string_view msg, std::initializer_list<Field> fields = {}) const;

private:
  std::string component_;
  std::atomic<int> level_{-1};  // -1: follow the global level
};

/** The logger of @p component; created on first use, lives for the whole process. */
Logger& get(std::string_view component);
void setGlobalLevel(Level level);
void setComponentLevel(std::string_view component, Level level);
void setFormat(Format format);
/** Replaces the sink (default: stderr). For tests and for carinactl. Thread-safe. */
void setSink(std::function<void(std::string_view line)> sink);
absl::StatusOr<Level> parseLevel(std::string_view name);

}  // namespace carina::log

#define CARINA_LOG(logger, level, msg, ...)                \
  do {                                                     \
    if ((logger).enabled(level)) {                         \
      (logger).log(level, msg __VA_OPT__(, ) __VA_ARGS__); \
    }                                                      \
  } while (0)
#define CARINA_LOG_TRACE(logger, msg, ...) \
  CARINA_LOG(logger, ::carina::log::Level::Trace, msg __VA_OPT__(, ) __VA_ARGS__)
#define CARINA_LOG_DEBUG(logger, msg, ...) \
  CARINA_LOG(logger, ::carina::log::Level::Debug, msg __VA_OPT__(, ) __VA_ARGS__)
#define CARINA_LOG_INFO(logger, msg, ...) \
  CARINA_LOG(logger, ::carina::log::Level::Info, msg __VA_OPT__(, ) __VA_ARGS__)
#define CARINA_LOG_WARN(logger, msg, ...) \
  CARINA_LOG(logger, ::carina::log::Level::Warn, msg __VA_OPT__(, ) __VA_ARGS__)
#define CARINA_LOG_ERROR(logger, msg, ...) \
  CARINA_LOG(logger, ::carina::log::Level::Error, msg __VA_OPT__(, ) __VA_ARGS__)
