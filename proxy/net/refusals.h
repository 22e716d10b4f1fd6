// A connection accepted beyond a limit: closed at once with a reset (nothing
// read, nothing lingers), and said at most once a second with how many were
// refused since it was last said. The data listener and the admin listener
// each keep one.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "proxy/net/asio.h"

namespace mongoguard::proxy {

class OverLimitRefusals {
 public:
  // `say(refused, peer)` logs the refusals since the last time, `peer`
  // being the latest one's address ("?" when it has gone).
  using Say = std::function<void(std::uint64_t refused, const std::string& peer)>;

  void refuse(tcp::socket& socket, const Say& say);

 private:
  std::uint64_t unlogged_ = 0;
  std::chrono::steady_clock::time_point logged_{};
};

}  // namespace mongoguard::proxy
