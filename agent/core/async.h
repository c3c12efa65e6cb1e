#pragma once

// The async vocabulary of carina: coroutines on Boost.Asio executors. Interfaces that may wait
// on I/O return Task<absl::StatusOr<T>>. Only this small header is included widely; the heavy
// Asio headers stay in .cc files (see blocking.h for off-loading blocking work).

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

namespace carina {

template <class T>
using Task = boost::asio::awaitable<T>;

using Executor = boost::asio::any_io_executor;

}  // namespace carina
