#include "agent/core/log.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <map>
#include <memory>
#include <mutex>

#include "agent/core/json_string.h"

namespace carina::log {
namespace {

using core::appendJsonString;

struct Registry {
  std::mutex mu;
  std::map<std::string, std::unique_ptr<Logger>, std::less<>> loggers;
  std::function<void(std::string_view)> sink;
};

Registry& registry() {
  static Registry* r = new Registry();  // never destroyed: loggers outlive static destructors
  return *r;
}

std::atomic<int> g_level{static_cast<int>(Level::Info)};
std::atomic<int> g_format{static_cast<int>(Format::Json)};

std::string_view levelName(Level level) {
  switch (level) {
    case Level::Trace:
      return "trace";
    case Level::Debug:
      return "debug";
    case Level::Info:
      return "info";
    case Level::Warn:
      return "warn";
    case Level::Error:
      return "error";
    case Level::Off:
      return "off";
  }
  return "info";
}

void appendTextValue(std::string& out, std::string_view s) {
  bool needs_quotes = s.empty() || s.find_first_of(" \"=\t\n") != std::string_view::npos;
  if (needs_quotes) {
    appendJsonString(out, s);
  } else {
    out += s;
  }
}

std::string timestamp() {
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()) % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms.count()));
  return buf;
}

}  // namespace

Field::Field(std::string_view k, double v) : key(k), raw(true) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.6g", v);
  value = buf;
}

bool Logger::enabled(Level level) const {
  int own = level_.load(std::memory_order_relaxed);
  int threshold = own >= 0 ? own : g_level.load(std::memory_order_relaxed);
  return static_cast<int>(level) >= threshold && level != Level::Off;
}

void Logger::setLevel(Level level) { level_ = static_cast<int>(level); }

void Logger::log(Level level, std::string_view msg, std::initializer_list<Field> fields) const {
  std::string line;
  line.reserve(128);
  if (static_cast<Format>(g_format.load(std::memory_order_relaxed)) == Format::Json) {
    line += "{\"ts\":\"";
    line += timestamp();
    line += "\",\"level\":\"";
    line += levelName(level);
    line += "\",\"component\":";
    appendJsonString(line, component_);
    line += ",\"msg\":";
    appendJsonString(line, msg);
    for (const Field& f : fields) {
      line.push_back(',');
      appendJsonString(line, f.key);
      line.push_back(':');
      if (f.raw) {
        line += f.value;
      } else {
        appendJsonString(line, f.value);
      }
    }
    line.push_back('}');
  } else {
    line += "ts=" + timestamp() + " level=" + std::string(levelName(level)) +
            " component=" + component_ + " msg=";
    appendTextValue(line, msg);
    for (const Field& f : fields) {
      line += ' ';
      line += f.key;
      line += '=';
      appendTextValue(line, f.value);
    }
  }
  line.push_back('\n');
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  if (r.sink) {
    r.sink(line);
  } else {
    std::fwrite(line.data(), 1, line.size(), stderr);
  }
}

Logger& get(std::string_view component) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  auto it = r.loggers.find(component);
  if (it == r.loggers.end()) {
    it = r.loggers.emplace(std::string(component), std::make_unique<Logger>(std::string(component)))
             .first;
  }
  return *it->second;
}

void setGlobalLevel(Level level) { g_level.store(static_cast<int>(level)); }

void setComponentLevel(std::string_view component, Level level) { get(component).setLevel(level); }

void setFormat(Format format) { g_format.store(static_cast<int>(format)); }

void setSink(std::function<void(std::string_view)> sink) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.sink = std::move(sink);
}

absl::StatusOr<Level> parseLevel(std::string_view name) {
  for (Level l : {Level::Trace, Level::Debug, Level::Info, Level::Warn, Level::Error, Level::Off}) {
    if (name == levelName(l)) {
      return l;
    }
  }
  return absl::InvalidArgumentError("unknown log level \"" + std::string(name) +
                                    "\" (trace|debug|info|warn|error|off)");
}

}  // namespace carina::log
