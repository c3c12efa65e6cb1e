#pragma once

// Runs blocking work (libfdisk writes, mkfs, mount(2), fsync) on a thread pool and resumes the
// awaiting coroutine on its own executor afterwards, so that nothing blocking runs on the io
// threads:
//
//   auto work = [&] { return engine.createVolume(req); };
//   auto result = co_await runBlocking(pool, work);
//
// ALWAYS pass a NAMED callable. GCC 12 can destroy a temporary that lives inside a co_await
// expression twice (seen with a lambda capturing a shared_ptr, inside a loop: the shared_ptr
// was released twice, valgrind showed a use-after-free). Taking fn by value does not help; a
// named local does.

#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "agent/core/async.h"

namespace carina {

template <class F>
auto runBlocking(boost::asio::thread_pool& pool, F&& fn) -> Task<std::invoke_result_t<F&>> {
  auto home = co_await boost::asio::this_coro::executor;
  // post(bind_executor(pool, use_awaitable)) resumes this coroutine ON the pool. (The form
  // post(pool_executor, use_awaitable) runs an empty function on the pool and resumes the
  // coroutine back on its own executor, so fn would run on the io thread.)
  co_await boost::asio::post(
      boost::asio::bind_executor(pool.get_executor(), boost::asio::use_awaitable));
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
