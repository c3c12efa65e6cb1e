#include "k8s-client/rate_limiter.h"

#include <chrono>

#include <catch2/catch.hpp>

namespace {

using carina::k8s::TokenBucket;
using namespace std::chrono_literals;

TEST_CASE("TokenBucket grants a burst, then one token per 1/qps", "[unit][k8s]") {
  auto t0 = TokenBucket::Clock::time_point{} + 1h;
  TokenBucket bucket(10.0, 3, t0);  // 10 qps, burst 3
  CHECK(bucket.reserve(t0) == 0ns);
  CHECK(bucket.reserve(t0) == 0ns);
  CHECK(bucket.reserve(t0) == 0ns);
  // Bucket empty: the next reservations queue up 100 ms apart.
  CHECK(bucket.reserve(t0) == 100ms);
  CHECK(bucket.reserve(t0) == 200ms);
  CHECK(bucket.delayed() == 2);
  // After 1 s the debt (2 tokens) is repaid and 8 tokens were refilled, capped at the burst.
  auto t1 = t0 + 1s;
  CHECK(bucket.reserve(t1) == 0ns);
  CHECK(bucket.reserve(t1) == 0ns);
  CHECK(bucket.reserve(t1) == 0ns);
  CHECK(bucket.reserve(t1) == 100ms);
  CHECK(bucket.reservations() == 9);
}

TEST_CASE("TokenBucket: N reservations at once span at least (N - burst) / qps", "[unit][k8s]") {
  auto t0 = TokenBucket::Clock::time_point{} + 1h;
  TokenBucket bucket(5.0, 2, t0);
  std::chrono::nanoseconds last{0};
  for (int i = 0; i < 12; ++i) {
    last = bucket.reserve(t0);
  }
  CHECK(last == 2s);  // (12 - 2) / 5
}

TEST_CASE("TokenBucket with qps <= 0 never waits", "[unit][k8s]") {
  TokenBucket bucket(0, 1);
  for (int i = 0; i < 100; ++i) {
    CHECK(bucket.reserve(TokenBucket::Clock::now()) == 0ns);
  }
}

}  // namespace
