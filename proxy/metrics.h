// Process-wide counters, shared by every worker thread and rendered as
// Prometheus text by the admin server. Relaxed atomics: these are counts for
// people and dashboards, never used to make a decision.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

#include "bson/wire.h"

namespace mongoguard::proxy {

class Metrics {
 public:
  // One slot per wire::DecodeError value (kNone unused), plus reasons that are
  // not decode errors.
  static constexpr std::size_t kReasonSlots = 32;

  std::atomic<std::uint64_t> connections_accepted{0};
  std::atomic<std::int64_t> connections_open{0};
  std::atomic<std::uint64_t> upstream_connect_failures{0};
  std::atomic<std::uint64_t> upstream_errors{0};
  std::atomic<std::uint64_t> client_messages{0};
  std::atomic<std::uint64_t> client_bytes{0};
  std::atomic<std::uint64_t> upstream_messages{0};
  std::atomic<std::uint64_t> upstream_bytes{0};
  std::atomic<std::uint64_t> compressed_messages{0};
  std::atomic<std::uint64_t> blocked_operations{0};
  std::atomic<std::uint64_t> policy_reloads{0};
  std::atomic<std::uint64_t> policy_reload_failures{0};

  void count_rejected(wire::DecodeError reason);
  std::uint64_t rejected(wire::DecodeError reason) const;

  std::string render_prometheus() const;

 private:
  std::array<std::atomic<std::uint64_t>, kReasonSlots> rejected_{};
};

}  // namespace mongoguard::proxy
