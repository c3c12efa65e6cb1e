#pragma once

// Client-side rate limit: a token bucket of `burst` tokens refilled at `qps` per second
// (client-go's flowcontrol.NewTokenBucketRateLimiter). Reservation style (like Go's
// rate.Limiter.Reserve): reserve() always grants the token and says how long the caller must
// wait before using it, so concurrent callers queue fairly in reservation order. Thread-safe;
// pure arithmetic on the time passed in (tests drive it with their own time points).

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <mutex>

namespace carina::k8s {

class TokenBucket {
public:
  using Clock = std::chrono::steady_clock;

  /** @p qps <= 0 disables limiting. @p burst < 1 is treated as 1. */
  TokenBucket(double qps, int burst, Clock::time_point now = Clock::now())
      : qps_(qps), burst_(std::max(1, burst)), tokens_(static_cast<double>(burst_)), last_(now) {}

  /** Takes one token at @p now; returns how long to wait before acting (zero when a token was
   *  available). */
  std::chrono::nanoseconds reserve(Clock::time_point now) {
    std::lock_guard lock(mu_);
    ++reservations_;
    if (qps_ <= 0) {
      return std::chrono::nanoseconds(0);
    }
    if (now > last_) {
      double elapsed = std::chrono::duration<double>(now - last_).count();
      tokens_ = std::min(static_cast<double>(burst_), tokens_ + elapsed * qps_);
      last_ = now;
    }
    tokens_ -= 1.0;
    if (tokens_ >= 0) {
      return std::chrono::nanoseconds(0);
    }
    ++delayed_;
    auto wait = std::chrono::duration<double>(-tokens_ / qps_);
    total_wait_ += std::chrono::duration_cast<std::chrono::nanoseconds>(wait);
    return std::chrono::duration_cast<std::chrono::nanoseconds>(wait);
  }

  /** Reservations granted so far, and how many of them had to wait. */
  uint64_t reservations() const {
    std::lock_guard lock(mu_);
    return reservations_;
  }
  uint64_t delayed() const {
    std::lock_guard lock(mu_);
    return delayed_;
  }
  /** The longest wait handed out equals the total time the reservations span; the sum of all
   *  waits is reported for diagnostics. */
  std::chrono::nanoseconds totalWait() const {
    std::lock_guard lock(mu_);
    return total_wait_;
  }

private:
  mutable std::mutex mu_;
  double qps_;
  int burst_;
  double tokens_;
  Clock::time_point last_;
  uint64_t reservations_ = 0;
  uint64_t delayed_ = 0;
  std::chrono::nanoseconds total_wait_{0};
};

}  // namespace carina::k8s
