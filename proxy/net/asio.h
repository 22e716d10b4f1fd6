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

namespace mongoguard::proxy {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
}  // namespace mongoguard::proxy
