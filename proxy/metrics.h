// Process-wide counters, shared by every worker thread and rendered as
// Prometheus text by the admin server. Relaxed atomics: these are counts for
// people and dashboards, never used to make a decision.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "bson/wire.h"
#include "policy/command_info.h"
#include "policy/holds.h"

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
  std::atomic<std::uint64_t> tls_handshake_failures_client{0};
  std::atomic<std::uint64_t> tls_handshake_failures_upstream{0};
  std::atomic<std::uint64_t> client_messages{0};
  std::atomic<std::uint64_t> client_bytes{0};
  std::atomic<std::uint64_t> upstream_messages{0};
  std::atomic<std::uint64_t> upstream_bytes{0};
  std::atomic<std::uint64_t> compressed_messages{0};
  std::atomic<std::uint64_t> blocked_operations{0};
  std::atomic<std::uint64_t> policy_reloads{0};
  std::atomic<std::uint64_t> policy_reload_failures{0};

  std::atomic<std::uint64_t> holds_created{0};
  // Would-be holds refused because limits.max_pending_holds were pending.
  std::atomic<std::uint64_t> holds_refused{0};
  // Clients closed at once because limits.max_connections were open.
  std::atomic<std::uint64_t> connections_refused{0};
  std::atomic<std::uint64_t> breakers_tripped{0};

  void count_rejected(wire::DecodeError reason);
  // Inspected operations only (not the hot path): a short lock is fine.
  void count_verdict(const std::string& rule, const std::string& verdict);
  void count_hold_outcome(policy::HoldOutcome outcome);
  void count_documents(policy::Operation op, std::int64_t n);
  void count_opcode(std::int32_t opcode);
  std::uint64_t rejected(wire::DecodeError reason) const;

  std::string render_prometheus() const;

 private:
  std::array<std::atomic<std::uint64_t>, kReasonSlots> rejected_{};
  std::array<std::atomic<std::uint64_t>, 6> hold_outcomes_{};
  std::array<std::atomic<std::uint64_t>, policy::kOperationCount> documents_{};
  // OP_REPLY, OP_UPDATE, OP_INSERT, OP_QUERY, OP_GET_MORE, OP_DELETE,
  // OP_KILL_CURSORS, OP_COMPRESSED, OP_MSG.
  std::array<std::atomic<std::uint64_t>, 9> opcodes_{};
  mutable std::mutex verdicts_mutex_;
  std::map<std::pair<std::string, std::string>, std::uint64_t> verdicts_;
};

}  // namespace mongoguard::proxy
