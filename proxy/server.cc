#include "proxy/server.h"

#include <spdlog/spdlog.h>

namespace mongoguard::proxy {

namespace {

tcp::endpoint resolve_listen(asio::io_context& io, const HostPort& where) {
  tcp::resolver resolver(io);
  auto results = resolver.resolve(where.host, std::to_string(where.port),
                                  tcp::resolver::passive | tcp::resolver::numeric_service);
  return results.begin()->endpoint();
}

}  // namespace

Server::Server(ServerSettings settings) : settings_(std::move(settings)) {
  for (unsigned i = 0; i < settings_.threads; ++i) {
    workers_.push_back(std::make_unique<asio::io_context>(1));
    work_guards_.push_back(asio::make_work_guard(*workers_.back()));
  }
}

Server::~Server() { stop(); }

void Server::bind() {
  auto endpoint = resolve_listen(main_io_, settings_.listen);
  acceptor_.open(endpoint.protocol());
  acceptor_.set_option(tcp::acceptor::reuse_address(true));
  acceptor_.bind(endpoint);
  acceptor_.listen(asio::socket_base::max_listen_connections);
  if (settings_.admin_listen) {
    admin_ = std::make_unique<AdminHttp>(main_io_, resolve_listen(main_io_, *settings_.admin_listen),
                                         metrics_);
  }
}

int Server::run() {
  for (auto& worker : workers_) {
    threads_.emplace_back([io = worker.get()] { io->run(); });
  }
  asio::signal_set signals(main_io_, SIGINT, SIGTERM);
  signals.async_wait([this](error_code ec, int signal) {
    if (ec) return;
    spdlog::info("signal {} received, shutting down", signal);
    error_code ignored;
    acceptor_.close(ignored);
    if (admin_) admin_->stop();
    main_io_.stop();
  });
  asio::co_spawn(main_io_, accept_loop(), asio::detached);
  if (admin_) {
    admin_->start();
    spdlog::info("admin endpoint on http://{}/ (/metrics, /healthz)", settings_.admin_listen->to_string());
  }
  spdlog::info("mongoguard {} listening on {}, upstream {}, {} worker thread(s)", MONGOGUARD_VERSION,
               settings_.listen.to_string(), settings_.session.upstream.to_string(),
               settings_.threads);
  main_io_.run();
  stop();
  spdlog::info("mongoguard stopped");
  return 0;
}

void Server::stop() {
  for (auto& guard : work_guards_) guard.reset();
  for (auto& worker : workers_) worker->stop();
  for (auto& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
  threads_.clear();
}

asio::awaitable<void> Server::accept_loop() {
  while (acceptor_.is_open()) {
    auto& worker = *workers_[next_worker_];
    next_worker_ = (next_worker_ + 1) % workers_.size();
    error_code ec;
    tcp::socket socket = co_await acceptor_.async_accept(
        worker, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
      // Out of descriptors or similar: keep serving the connections we have.
      spdlog::error("accept failed: {}", ec.message());
      asio::steady_timer pause(main_io_, std::chrono::milliseconds(50));
      co_await pause.async_wait(asio::use_awaitable);
      continue;
    }
    auto session = std::make_shared<Session>(std::move(socket), next_session_id_++,
                                             settings_.session, metrics_);
    // Start on the worker: the session's coroutines live on its io_context.
    asio::post(worker, [session] { session->start(); });
  }
}

}  // namespace mongoguard::proxy
