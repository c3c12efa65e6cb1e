#pragma once

// Per-path request counts and server-side latency percentiles of the agent's HTTP endpoint, fed
// by HttpServerOptions::on_request and served as GET /debug/extender, so that an operator can see
// what kube-scheduler waits for. No Beast here.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace carina::extender {

class RequestStats {
public:
  /** Latency percentiles are computed over the last @p window requests of each path; at most
   *  @p max_paths distinct paths are tracked, further ones are counted under "(other)" (unknown
   *  paths probed by a client must not grow memory). */
  explicit RequestStats(std::size_t window = 4096, std::size_t max_paths = 32);

  /** Thread-safe, cheap (one short lock): called on the io threads after every response. */
  void record(const std::string& path, unsigned status, std::chrono::microseconds elapsed);

  struct PathStats {
    std::string path;
    uint64_t count = 0;      // every request since start
    uint64_t errors = 0;     // status >= 400
    std::size_t window = 0;  // samples the percentiles below are computed over
    uint64_t p50_us = 0;
    uint64_t p90_us = 0;
    uint64_t p99_us = 0;
    uint64_t max_us = 0;  // over the window
  };
  /** One entry per path, sorted by path. */
  std::vector<PathStats> snapshot() const;
  /** snapshot() as JSON: {"windowSize":N,"paths":[{"path":..,"count":..,"errors":..,
   *  "window":..,"p50Micros":..,"p90Micros":..,"p99Micros":..,"maxMicros":..}]} */
  std::string json() const;

  static constexpr std::string_view kOtherPath = "(other)";

private:
  struct Ring {
    uint64_t count = 0;
    uint64_t errors = 0;
    std::vector<uint32_t> samples;  // micros, saturated at UINT32_MAX
    std::size_t next = 0;
  };

  std::size_t window_;
  std::size_t max_paths_;
  mutable std::mutex mu_;
  std::map<std::string, Ring, std::less<>> paths_;
};

}  // namespace carina::extender
