#pragma once

// Runs blocking work (libfdisk writes, mkfs, mount(2), fsync) on a thread pool and resumes the
// awaiting coroutine on its own executor afterwards, so that nothing blocking runs on the io
// threads:
//
//   auto result = co_await runBlocking(pool, [&] { return engine.createVolume(req); });

#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "agent/core/async.h"

namespace carina {

template <class F>
auto runBlocking(boost::asio::thread_pool& pool, F&& fn) -> Task<std::invoke_result_t<F&>> {
  auto home = co_await boost::asio::this_coro::executor;
  co_await boost::asio::post(pool.get_executor(), boost::asio::use_awaitable);
  // Run on the pool; hop back to the caller's executor even if fn throws.
  if constexpr (std::is_void_v<std::invoke_result_t<F&>>) {
    std::exception_ptr error;
    try {
      fn();
    } catch (...) {
      error = std::current_exception();
    }
    co_await boost::asio::post(home, boost::asio::use_awaitable);
    if (error) {
      std::rethrow_exception(error);
    }
  } else {
    std::exception_ptr error;
    std::optional<std::invoke_result_t<F&>> result;
    try {
      result.emplace(fn());
    } catch (...) {
      error = std::current_exception();
    }
    co_await boost::asio::post(home, boost::asio::use_awaitable);
    if (error) {
      std::rethrow_exception(error);
    }
    co_return std::move(*result);
  }
}

}  // namespace carina
