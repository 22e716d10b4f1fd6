// Whether the proxy can reach its upstream servers, as the connects say.
//
// Sessions report every upstream connect; the admin endpoint's /readyz asks
// whether too many in a row failed; a prober keeps trying while some did, so
// an idle proxy (no client, no connect) still notices the server coming
// back. One object, owned by the Server, shared by every thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "proxy/net/asio.h"
#include "proxy/net/endpoint.h"
#include "proxy/observe/metrics.h"

namespace mongoguard::proxy {

class UpstreamHealth {
 public:
  using Clock = std::chrono::steady_clock;
  // At most one warn line per this, whatever the number of sessions failing.
  static constexpr std::chrono::seconds kLogEvery{10};

  // `upstreams`: every server a listener connects clients to.
  UpstreamHealth(std::vector<HostPort> upstreams, Metrics& metrics);

  // admin.unready_after_failures: consecutive failed connects after which
  // /readyz says not ready (0: never).
  void set_unready_after(std::uint64_t failures);

  // A session's connect (and TLS handshake) succeeded. One relaxed load
  // while nothing failed.
  void connected(const HostPort& upstream);
  // A session's connect failed; `tls` when the TCP connect worked and the
  // handshake did not (a TCP probe cannot tell that one has healed).
  void connect_failed(const HostPort& upstream, const std::string& error, bool tls = false);
  // A probe's TCP connect: nullopt when it worked.
  void probed(const HostPort& upstream, const std::optional<std::string>& error);

  // Writes the warn line held back by the rate limit once kLogEvery has
  // passed (the prober calls it, so the count of a burst is not lost).
  void flush_log(Clock::time_point now = Clock::now());

  // The upstreams whose last connect failed and the prober may retry.
  std::vector<HostPort> probe_targets() const;
  // Why /readyz says not ready: "upstream HOST:PORT unreachable (N
  // consecutive failed connects): ERROR", or nullopt.
  std::optional<std::string> unready_reason() const;

 private:
  struct State {
    HostPort upstream;
    std::uint64_t consecutive = 0;  // failed connects since the last good one
    std::string error;              // the last one's
    bool tls = false;               // it failed in the TLS handshake
  };
  State& state_of(const HostPort& upstream);
  void failed(State& state, const std::string& error, bool tls);
  void recovered(State& state);
  void update_gauge();
  void log_failures(Clock::time_point now);

  Metrics& metrics_;
  mutable std::mutex mutex_;
  std::vector<State> states_;
  std::atomic<std::size_t> failing_{0};  // upstreams with consecutive > 0
  std::atomic<std::uint64_t> unready_after_{3};
  // Client connects failed since the last warn line, and where the last one went.
  std::uint64_t unlogged_ = 0;
  std::string unlogged_upstream_, unlogged_error_;
  std::optional<Clock::time_point> logged_at_;
};

// Every `every`, a TCP connect to each upstream whose connects fail, until
// one works; runs on `io` until it stops.
awaitable<void> probe_upstreams(asio::io_context& io, UpstreamHealth& health,
                                std::chrono::milliseconds every, std::chrono::milliseconds timeout);

}  // namespace mongoguard::proxy
