#include "proxy/server.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

namespace mongoguard::proxy {

namespace {

tcp::endpoint resolve_listen(asio::io_context& io, const HostPort& where) {
  tcp::resolver resolver(io);
  auto results = resolver.resolve(where.host, std::to_string(where.port),
                                  tcp::resolver::passive | tcp::resolver::numeric_service);
  return results.begin()->endpoint();
}

// Changes when the file is rewritten, replaced (editors, ConfigMap symlink
// swaps) or touched.
std::string fingerprint(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "missing";
  return std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" +
         std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
}

}  // namespace

Server::Server(ServerSettings settings)
    : settings_(std::move(settings)), policies_(settings_.config) {
  for (unsigned i = 0; i < settings_.threads; ++i) {
    workers_.push_back(std::make_unique<asio::io_context>(1));
    work_guards_.push_back(asio::make_work_guard(*workers_.back()));
  }
}

Server::~Server() { stop(); }

void Server::bind() {
  // Signals first: once the port listens, supervisors and tests may signal
  // at any moment, and a SIGHUP before its handler exists would kill us.
  hangup_.emplace(main_io_, SIGHUP);
  wait_for_hangup();
  terminate_.emplace(main_io_, SIGINT, SIGTERM);
  std::string error;
  if (settings_.config->audit_path && !audit_.open(*settings_.config->audit_path, error)) {
    throw std::runtime_error(error);
  }
  auto endpoint = resolve_listen(main_io_, settings_.listen);
  acceptor_.open(endpoint.protocol());
  acceptor_.set_option(tcp::acceptor::reuse_address(true));
  acceptor_.bind(endpoint);
  acceptor_.listen(asio::socket_base::max_listen_connections);
  if (settings_.admin_listen) {
    admin_ = std::make_unique<AdminHttp>(
        main_io_, resolve_listen(main_io_, *settings_.admin_listen), metrics_);
  }
}

int Server::run() {
  for (auto& worker : workers_) {
    threads_.emplace_back([io = worker.get()] { io->run(); });
  }
  terminate_->async_wait([this](error_code ec, int signal) {
    if (ec) return;
    spdlog::info("signal {} received, shutting down", signal);
    error_code ignored;
    acceptor_.close(ignored);
    if (admin_) admin_->stop();
    main_io_.stop();
  });
  asio::co_spawn(main_io_, accept_loop(), asio::detached);
  if (settings_.config_path) {
    config_fingerprint_ = fingerprint(*settings_.config_path);
    asio::co_spawn(main_io_, watch_config(), asio::detached);
  }
  if (admin_) {
    admin_->start();
    spdlog::info("admin endpoint on http://{}/ (/metrics, /healthz)",
                 settings_.admin_listen->to_string());
  }
  spdlog::info("mongoguard {} listening on {}, upstream {}, {} worker thread(s)",
               MONGOGUARD_VERSION, settings_.listen.to_string(),
               settings_.session.upstream.to_string(), settings_.threads);
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
    tcp::socket socket =
        co_await acceptor_.async_accept(worker, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
      // Out of descriptors or similar: keep serving the connections we have.
      spdlog::error("accept failed: {}", ec.message());
      asio::steady_timer pause(main_io_, std::chrono::milliseconds(50));
      co_await pause.async_wait(asio::use_awaitable);
      continue;
    }
    auto session = std::make_shared<Session>(std::move(socket), next_session_id_++,
                                             settings_.session, metrics_, policies_, audit_);
    // Start on the worker: the session's coroutines live on its io_context.
    asio::post(worker, [session] { session->start(); });
  }
}

}  // namespace mongoguard::proxy

namespace mongoguard::proxy {

void Server::wait_for_hangup() {
  hangup_->async_wait([this](error_code ec, int) {
    if (ec) return;
    if (settings_.config_path) {
      reload("SIGHUP");
    } else {
      spdlog::info("SIGHUP: no configuration file to reload");
    }
    wait_for_hangup();
  });
}

asio::awaitable<void> Server::watch_config() {
  asio::steady_timer timer(main_io_);
  for (;;) {
    timer.expires_after(settings_.watch_interval);
    error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    auto now = fingerprint(*settings_.config_path);
    if (now != config_fingerprint_) reload("file changed");
  }
}

void Server::reload(const char* why) {
  const auto& path = *settings_.config_path;
  config_fingerprint_ = fingerprint(path);
  auto loaded = config::load_config_file(path);
  if (!loaded.ok()) {
    metrics_.policy_reload_failures.fetch_add(1, std::memory_order_relaxed);
    spdlog::error("reload ({}) refused, the running policy stays in place: {} error(s)", why,
                  loaded.errors.size());
    for (const auto& e : loaded.errors) spdlog::error("  {}", e.to_string());
    return;
  }
  auto next = std::make_shared<const config::Config>(std::move(*loaded.config));
  const auto& current = *policies_.current();
  if (next->listen != current.listen || next->upstream != current.upstream ||
      next->threads != current.threads || next->admin_listen != current.admin_listen) {
    spdlog::warn("reload ({}): listen, upstream, threads and admin changes take effect on restart",
                 why);
  }
  std::string error;
  if (!audit_.open(next->audit_path.value_or(""), error)) {
    spdlog::error("reload ({}): {}; keeping the previous audit file", why, error);
  }
  policies_.replace(next);
  metrics_.policy_reloads.fetch_add(1, std::memory_order_relaxed);
  spdlog::info("policy reloaded ({}): {} rule(s), mode {}", why, next->policy->rules.size(),
               policy::mode_name(next->policy->mode));
}

}  // namespace mongoguard::proxy
