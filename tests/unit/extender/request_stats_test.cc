#include "extender/request_stats.h"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

namespace carina::extender {
namespace {

using std::chrono::microseconds;

TEST_CASE("RequestStats: counts, errors and nearest-rank percentiles per path",
          "[unit][extender]") {
  RequestStats stats(1000);
  for (int i = 1; i <= 100; ++i) {
    stats.record("/scheduler/filter", i == 100 ? 500 : 200, microseconds(i * 10));
  }
  stats.record("/healthz", 200, microseconds(3));
  auto snap = stats.snapshot();
  REQUIRE(snap.size() == 2);
  CHECK(snap[0].path == "/healthz");
  const RequestStats::PathStats& f = snap[1];
  CHECK(f.path == "/scheduler/filter");
  CHECK(f.count == 100);
  CHECK(f.errors == 1);
  CHECK(f.window == 100);
  CHECK(f.p50_us == 500);
  CHECK(f.p90_us == 900);
  CHECK(f.p99_us == 990);
  CHECK(f.max_us == 1000);
  CHECK(snap[0].p99_us == 3);

  boost::json::value v = boost::json::parse(stats.json());
  const auto& paths = v.at("paths").as_array();
  REQUIRE(paths.size() == 2);
  CHECK(paths[1].at("path").as_string() == "/scheduler/filter");
  CHECK(paths[1].at("count").as_int64() == 100);
  CHECK(paths[1].at("errors").as_int64() == 1);
  CHECK(paths[1].at("p99Micros").as_int64() == 990);
  CHECK(v.at("windowSize").as_int64() == 1000);
}

TEST_CASE("RequestStats: the window keeps the latest samples, counts keep everything",
          "[unit][extender]") {
  RequestStats stats(10);
  for (int i = 0; i < 1000; ++i) {
    stats.record("/p", 200, microseconds(5000));
  }
  for (int i = 0; i < 10; ++i) {
    stats.record("/p", 200, microseconds(7));
  }
  auto snap = stats.snapshot();
  REQUIRE(snap.size() == 1);
  CHECK(snap[0].count == 1010);
  CHECK(snap[0].window == 10);
  CHECK(snap[0].max_us == 7);
  CHECK(snap[0].p99_us == 7);
}

TEST_CASE("RequestStats: unknown paths cannot grow it without bound", "[unit][extender]") {
  RequestStats stats(16, 4);
  for (int i = 0; i < 1000; ++i) {
    stats.record("/probe/" + std::to_string(i), 404, microseconds(1));
  }
  auto snap = stats.snapshot();
  REQUIRE(snap.size() == 4);
  uint64_t total = 0;
  for (const auto& p : snap) {
    total += p.count;
    CHECK(p.errors == p.count);
  }
  CHECK(total == 1000);
  bool other = false;
  for (const auto& p : snap) {
    if (p.path == RequestStats::kOtherPath) {
      other = true;
      CHECK(p.count == 997);
    }
  }
  CHECK(other);
  // Empty stats and negative durations are harmless.
  RequestStats empty;
  CHECK(empty.snapshot().empty());
  empty.record("/x", 200, microseconds(-5));
  CHECK(empty.snapshot()[0].max_us == 0);
}

}  // namespace
}  // namespace carina::extender
