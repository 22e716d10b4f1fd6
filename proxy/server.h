// The listener and its worker threads. Each worker owns an io_context; an
// accepted connection is pinned to one worker for its whole life, so the
// data path takes no locks.
#pragma once

#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "proxy/admin_http.h"
#include "proxy/asio.h"
#include "proxy/endpoint.h"
#include "proxy/metrics.h"
#include "proxy/session.h"

namespace mongoguard::proxy {

struct ServerSettings {
  HostPort listen;
  std::optional<HostPort> admin_listen;
  unsigned threads = 1;
  SessionSettings session;
};

class Server {
 public:
  explicit Server(ServerSettings settings);
  ~Server();

  // Binds the listeners; throws boost::system::system_error when it cannot.
  void bind();
  // Serves until SIGINT/SIGTERM. Returns the process exit code.
  int run();

 private:
  asio::awaitable<void> accept_loop();
  void stop();

  ServerSettings settings_;
  Metrics metrics_;
  asio::io_context main_io_{1};
  std::vector<std::unique_ptr<asio::io_context>> workers_;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> work_guards_;
  std::vector<std::thread> threads_;
  tcp::acceptor acceptor_{main_io_};
  std::unique_ptr<AdminHttp> admin_;
  std::uint64_t next_session_id_ = 1;
  std::size_t next_worker_ = 0;
};

}  // namespace mongoguard::proxy
