#pragma once

// Helpers for the k8s client tests: run coroutines to completion on an io_context and wait for
// conditions while the io_context runs (informers, watches).

#include <chrono>
#include <exception>
#include <functional>
#include <optional>
#include <thread>
#include <utility>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include "agent/core/async.h"

namespace carina::test {

/** Runs @p task on @p ioc until it completes (rethrows its exception). */
template <class T>
T runTask(boost::asio::io_context& ioc, Task<T> task) {
  std::optional<T> result;
  std::exception_ptr error;
  bool done = false;
  boost::asio::co_spawn(ioc, std::move(task), [&](std::exception_ptr e, T value) {
    error = e;
    if (!e) {
      result.emplace(std::move(value));
    }
    done = true;
  });
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!done && std::chrono::steady_clock::now() < deadline) {
    ioc.restart();
    if (ioc.run_one_for(std::chrono::milliseconds(100)) == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  if (error) {
    std::rethrow_exception(error);
  }
  if (!done) {
    throw std::runtime_error("runTask: timed out");
  }
  return std::move(*result);
}

/** Runs @p ioc until @p pred holds (true) or @p timeout passes (false). */
inline bool runUntil(boost::asio::io_context& ioc, const std::function<bool()>& pred,
                     std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline) {
      return false;
    }
    ioc.restart();
    if (ioc.run_for(std::chrono::milliseconds(5)) == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  return true;
}

/** Runs @p ioc for @p d (lets in-flight work settle). */
inline void runFor(boost::asio::io_context& ioc, std::chrono::milliseconds d) {
  auto deadline = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < deadline) {
    ioc.restart();
    if (ioc.run_for(std::chrono::milliseconds(5)) == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
}

}  // namespace carina::test
