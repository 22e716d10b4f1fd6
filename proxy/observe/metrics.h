// Process-wide counters, shared by every worker thread and rendered as
// Prometheus text by the admin server. Relaxed atomics: these are counts for
// people and dashboards, never used to make a decision.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "bson/wire.h"
#include "policy/budget.h"
#include "policy/command_info.h"
#include "policy/holds.h"

namespace mongoguard::proxy {

// A Prometheus histogram of durations in seconds with fixed bucket bounds.
class DurationHistogram {
 public:
  explicit DurationHistogram(std::vector<double> bounds);
  void observe(std::chrono::nanoseconds d);
  void render(std::string& out, const char* name, const char* help) const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;  // per bound, then +Inf
  std::atomic<std::uint64_t> sum_ns_{0};
};

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
  // Destructive commands refused because some part could not be judged.
  std::atomic<std::uint64_t> unjudged_commands{0};
  // Pre-flight counts sent, and those that failed.
  std::atomic<std::uint64_t> preflight_counts{0};
  std::atomic<std::uint64_t> preflight_failures{0};
  // Commands a rule with filter: unfiltered acted on because a count
  // showed the filter matches (nearly) the whole collection.
  std::atomic<std::uint64_t> measured_unfiltered{0};
  // Upstream replies that answered no request in flight (relayed, settling nothing).
  std::atomic<std::uint64_t> unmatched_replies{0};
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
  // Documents affected per namespace. Namespaces are chosen by clients, so
  // only those a rule matched are named (the caller passes "" otherwise) and
  // at most kNamedNamespaces of them; every other one counts as "other".
  static constexpr std::size_t kNamedNamespaces = 100;
  void count_namespace_documents(const std::string& ns, policy::Operation op, std::int64_t n);
  void count_opcode(std::int32_t opcode);
  // Commands in neither table of the command catalogue, by name. Names are
  // chosen by clients: the first kNamedUnknownCommands are named (printable
  // ASCII, at most 64 characters), every later one counts as "other". True
  // when this name (or, once, the first "other") was not counted before:
  // the caller logs it then, so each name is logged once.
  static constexpr std::size_t kNamedUnknownCommands = 64;
  bool count_unknown_command(std::string_view name);
  std::uint64_t rejected(wire::DecodeError reason) const;

  std::string render_prometheus() const;

  // How long holds waited for their outcome, and how long the server took to
  // answer inspected (destructive) operations mongoguard forwarded.
  DurationHistogram hold_wait{{1, 5, 15, 30, 60, 120, 300, 600, 1800}};
  DurationHistogram inspected_reply{
      {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10}};

 private:
  std::array<std::atomic<std::uint64_t>, kReasonSlots> rejected_{};
  std::array<std::atomic<std::uint64_t>, 6> hold_outcomes_{};
  std::array<std::atomic<std::uint64_t>, policy::kOperationCount> documents_{};
  // OP_REPLY, OP_UPDATE, OP_INSERT, OP_QUERY, OP_GET_MORE, OP_DELETE,
  // OP_KILL_CURSORS, OP_COMPRESSED, OP_MSG.
  std::array<std::atomic<std::uint64_t>, 9> opcodes_{};
  mutable std::mutex verdicts_mutex_;
  std::map<std::pair<std::string, std::string>, std::uint64_t> verdicts_;
  mutable std::mutex namespaces_mutex_;
  std::map<std::pair<std::string, policy::Operation>, std::uint64_t> namespace_documents_;
  std::set<std::string> named_namespaces_;
  mutable std::mutex unknown_mutex_;
  std::map<std::string, std::uint64_t, std::less<>> unknown_commands_;
};

// Per-breaker gauges for /metrics: mongoguard_breaker_used, _limit and
// _tripped, labelled breaker, rule and per, for the first kMetricBreakers
// breakers by name (`breakers` as BudgetBook::breakers() lists them, in
// name order); mongoguard_breakers counts them all, so a cut list shows.
// Breaker names carry what clients choose (appName, address) under
// group_by: the bound keeps a client from growing /metrics without end.
constexpr std::size_t kMetricBreakers = 200;
void render_breaker_gauges(std::string& out, const std::vector<policy::BreakerState>& breakers);

}  // namespace mongoguard::proxy
