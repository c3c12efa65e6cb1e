#include "extender/request_stats.h"

#include <algorithm>
#include <limits>

#include "agent/core/json_string.h"

namespace carina::extender {

RequestStats::RequestStats(std::size_t window, std::size_t max_paths)
    : window_(std::max<std::size_t>(window, 1)), max_paths_(std::max<std::size_t>(max_paths, 2)) {}

void RequestStats::record(const std::string& path, unsigned status,
                          std::chrono::microseconds elapsed) {
  const auto us = static_cast<uint64_t>(std::max<int64_t>(elapsed.count(), 0));
  const auto sample =
      static_cast<uint32_t>(std::min<uint64_t>(us, std::numeric_limits<uint32_t>::max()));
  std::lock_guard lock(mu_);
  auto it = paths_.find(path);
  if (it == paths_.end()) {
    const bool full = paths_.size() + 1 >= max_paths_;  // one slot stays for "(other)"
    it = paths_.try_emplace(full ? std::string(kOtherPath) : path).first;
  }
  Ring& r = it->second;
  ++r.count;
  if (status >= 400) {
    ++r.errors;
  }
  if (r.samples.size() < window_) {
    r.samples.push_back(sample);
  } else {
    r.samples[r.next] = sample;
    r.next = (r.next + 1) % window_;
  }
}

namespace {

/** The nearest-rank percentile @p p (0..1) of the sorted @p v. */
uint64_t percentile(const std::vector<uint32_t>& v, double p) {
  if (v.empty()) {
    return 0;
  }
  auto rank = static_cast<std::size_t>(p * static_cast<double>(v.size()) + 0.999999);
  rank = std::clamp<std::size_t>(rank, 1, v.size());
  return v[rank - 1];
}

}  // namespace

std::vector<RequestStats::PathStats> RequestStats::snapshot() const {
  std::vector<PathStats> out;
  std::vector<uint32_t> sorted;
  std::lock_guard lock(mu_);
  out.reserve(paths_.size());
  for (const auto& [path, ring] : paths_) {
    sorted = ring.samples;
    std::sort(sorted.begin(), sorted.end());
    PathStats s;
    s.path = path;
    s.count = ring.count;
    s.errors = ring.errors;
    s.window = sorted.size();
    s.p50_us = percentile(sorted, 0.50);
    s.p90_us = percentile(sorted, 0.90);
    s.p99_us = percentile(sorted, 0.99);
    s.max_us = sorted.empty() ? 0 : sorted.back();
    out.push_back(std::move(s));
  }
  return out;
}

std::string RequestStats::json() const {
  std::string out = "{\"windowSize\":" + std::to_string(window_) + ",\"paths\":[";
  bool first = true;
  for (const PathStats& s : snapshot()) {
    out += first ? "{\"path\":" : ",{\"path\":";
    first = false;
    core::appendJsonString(out, s.path);
    out += ",\"count\":" + std::to_string(s.count);
    out += ",\"errors\":" + std::to_string(s.errors);
    out += ",\"window\":" + std::to_string(s.window);
    out += ",\"p50Micros\":" + std::to_string(s.p50_us);
    out += ",\"p90Micros\":" + std::to_string(s.p90_us);
    out += ",\"p99Micros\":" + std::to_string(s.p99_us);
    out += ",\"maxMicros\":" + std::to_string(s.max_us);
    out += "}";
  }
  out += "]}\n";
  return out;
}

}  // namespace carina::extender
