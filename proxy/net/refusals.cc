#include "proxy/net/refusals.h"

namespace mongoguard::proxy {

void OverLimitRefusals::refuse(tcp::socket& socket, const Say& say) {
  ++unlogged_;
  error_code ec;
  const auto now = std::chrono::steady_clock::now();
  if (now - logged_ >= std::chrono::seconds(1)) {
    const auto peer = socket.remote_endpoint(ec);
    say(unlogged_, ec ? std::string("?") : peer.address().to_string());
    unlogged_ = 0;
    logged_ = now;
  }
  socket.set_option(asio::socket_base::linger(true, 0), ec);
  socket.close(ec);
}

}  // namespace mongoguard::proxy
