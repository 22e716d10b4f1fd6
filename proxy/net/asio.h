// The one place that includes Boost.Asio for the proxy. Boost 1.74's
// awaitable.hpp uses std::exchange without including <utility>, which GCC 12
// no longer pulls in transitively.
#pragma once

// clang-format off
#include <utility>  // must precede boost/asio/awaitable.hpp
// clang-format on

#include <boost/asio.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <stdexcept>

namespace mongoguard::proxy {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

// The executor every coroutine of the proxy runs on: an io_context's own
// type, not the type-erased any_io_executor. In Boost 1.74 an operation's
// completion is dispatched through its handler's executor; through a
// type-erased one the handler is first moved into a type-erased function
// (an allocation and an indirect call), while the io_context's own executor
// calls it in place when already on its thread. About 550 instructions per
// operation.
using Executor = asio::io_context::executor_type;
template <class T = void>
using awaitable = asio::awaitable<T, Executor>;
inline constexpr asio::use_awaitable_t<Executor> use_awaitable{};

// The io_context executor inside an any_io_executor made from one (every
// socket and timer of the proxy is made from an io_context).
inline Executor native_executor(const asio::any_io_executor& executor) {
  if (const auto* native = executor.target<Executor>()) return *native;
  throw std::logic_error("an executor not made from an io_context");
}
}  // namespace mongoguard::proxy
