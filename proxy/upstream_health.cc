#include "proxy/upstream_health.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>

#include "proxy/net/async.h"

namespace mongoguard::proxy {

namespace {

bool same(const HostPort& a, const HostPort& b) { return a.port == b.port && a.host == b.host; }

}  // namespace

UpstreamHealth::UpstreamHealth(std::vector<HostPort> upstreams, Metrics& metrics)
    : metrics_(metrics) {
  for (const auto& upstream : upstreams) state_of(upstream);  // each once
  // Nothing has failed yet: reachable until a connect says otherwise.
  metrics_.upstream_reachable.store(1, std::memory_order_relaxed);
}

void UpstreamHealth::set_unready_after(std::uint64_t failures) {
  unready_after_.store(failures, std::memory_order_relaxed);
}

UpstreamHealth::State& UpstreamHealth::state_of(const HostPort& upstream) {
  auto it = std::find_if(states_.begin(), states_.end(),
                         [&](const State& s) { return same(s.upstream, upstream); });
  if (it != states_.end()) return *it;
  states_.push_back({upstream});
  return states_.back();
}

void UpstreamHealth::connected(const HostPort& upstream) {
  if (failing_.load(std::memory_order_relaxed) == 0) return;
  std::lock_guard lock(mutex_);
  recovered(state_of(upstream));
}

void UpstreamHealth::connect_failed(const HostPort& upstream, const std::string& error, bool tls) {
  std::lock_guard lock(mutex_);
  failed(state_of(upstream), error, tls);
  ++unlogged_;
  unlogged_upstream_ = upstream.to_string();
  unlogged_error_ = error;
  log_failures(Clock::now());
}

void UpstreamHealth::probed(const HostPort& upstream, const std::optional<std::string>& error) {
  std::lock_guard lock(mutex_);
  auto& state = state_of(upstream);
  if (error) {
    failed(state, *error, false);
  } else if (!state.tls) {
    recovered(state);
  }
}

void UpstreamHealth::failed(State& state, const std::string& error, bool tls) {
  if (state.consecutive++ == 0) failing_.fetch_add(1, std::memory_order_relaxed);
  state.error = error;
  state.tls = tls;
  update_gauge();
}

void UpstreamHealth::recovered(State& state) {
  if (state.consecutive == 0) return;
  // What the rate limit held back belongs before the recovery.
  logged_at_.reset();
  log_failures(Clock::now());
  spdlog::info("upstream {} reachable again (after {} failed connect(s))",
               state.upstream.to_string(), state.consecutive);
  state.consecutive = 0;
  state.tls = false;
  failing_.fetch_sub(1, std::memory_order_relaxed);
  update_gauge();
}

void UpstreamHealth::update_gauge() {
  metrics_.upstream_reachable.store(failing_.load(std::memory_order_relaxed) == 0 ? 1 : 0,
                                    std::memory_order_relaxed);
}

void UpstreamHealth::log_failures(Clock::time_point now) {
  if (unlogged_ == 0 || (logged_at_ && now - *logged_at_ < kLogEvery)) return;
  spdlog::warn(
      "upstream {} unreachable: {} client connect(s) failed since the last such line (at most one "
      "every {} s); last error: {}",
      unlogged_upstream_, unlogged_, kLogEvery.count(), unlogged_error_);
  unlogged_ = 0;
  logged_at_ = now;
}

void UpstreamHealth::flush_log(Clock::time_point now) {
  std::lock_guard lock(mutex_);
  log_failures(now);
}

std::vector<HostPort> UpstreamHealth::probe_targets() const {
  std::vector<HostPort> out;
  if (failing_.load(std::memory_order_relaxed) == 0) return out;
  std::lock_guard lock(mutex_);
  for (const auto& s : states_) {
    if (s.consecutive > 0 && !s.tls) out.push_back(s.upstream);
  }
  return out;
}

std::optional<std::string> UpstreamHealth::unready_reason() const {
  const auto after = unready_after_.load(std::memory_order_relaxed);
  if (after == 0 || failing_.load(std::memory_order_relaxed) == 0) return std::nullopt;
  std::lock_guard lock(mutex_);
  for (const auto& s : states_) {
    if (s.consecutive < after) continue;
    return "upstream " + s.upstream.to_string() + " unreachable (" + std::to_string(s.consecutive) +
           " consecutive failed connects): " + s.error;
  }
  return std::nullopt;
}

namespace {

// One TCP connect, bounded by `timeout`: nullopt when it worked.
awaitable<std::optional<std::string>> probe(asio::io_context& io, const HostPort& upstream,
                                            std::chrono::milliseconds timeout) {
  error_code ec;
  tcp::resolver resolver(io);
  auto endpoints = co_await resolver.async_resolve(upstream.host, std::to_string(upstream.port),
                                                   asio::redirect_error(use_awaitable, ec));
  if (ec) co_return ec.message();
  auto socket = std::make_shared<tcp::socket>(io);
  Deadline deadline(io.get_executor(), timeout, [socket] {
    error_code ignored;
    socket->close(ignored);
  });
  co_await asio::async_connect(*socket, endpoints, asio::redirect_error(use_awaitable, ec));
  deadline.cancel();
  if (deadline.expired()) co_return std::string("no connection within the connect timeout");
  if (ec) co_return ec.message();
  error_code ignored;
  socket->shutdown(tcp::socket::shutdown_both, ignored);
  socket->close(ignored);
  co_return std::nullopt;
}

}  // namespace

awaitable<void> probe_upstreams(asio::io_context& io, UpstreamHealth& health,
                                std::chrono::milliseconds every,
                                std::chrono::milliseconds timeout) {
  asio::steady_timer timer(io);
  for (;;) {
    timer.expires_after(every);
    error_code ec;
    co_await timer.async_wait(asio::redirect_error(use_awaitable, ec));
    if (ec) co_return;
    health.flush_log();
    for (const auto& upstream : health.probe_targets()) {
      health.probed(upstream, co_await probe(io, upstream, timeout));
    }
  }
}

}  // namespace mongoguard::proxy
