// The admin HTTP endpoint: /metrics (Prometheus text) and /healthz. Runs on
// the main thread's io_context, away from the data path.
#pragma once

#include "proxy/asio.h"
#include "proxy/metrics.h"

namespace mongoguard::proxy {

class AdminHttp {
 public:
  AdminHttp(asio::io_context& io, const tcp::endpoint& endpoint, Metrics& metrics);
  void start();
  void stop();
  tcp::endpoint local_endpoint() const;

 private:
  asio::awaitable<void> accept_loop();
  asio::awaitable<void> serve(tcp::socket socket);

  tcp::acceptor acceptor_;
  Metrics& metrics_;
};

}  // namespace mongoguard::proxy
