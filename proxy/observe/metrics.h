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
#include "proxy/observe/metric_registry.h"
#include "proxy/observe/prometheus.h"
#include "proxy/observe/relay_counters.h"

namespace mongoguard::proxy {

// A Prometheus histogram of durations in seconds with fixed bucket bounds.
class DurationHistogram {
 public:
  explicit DurationHistogram(std::vector<double> bounds);
  void observe(std::chrono::nanoseconds d);
  // The samples of `family` (a histogram in seconds).
  void render(PrometheusWriter& writer, const MetricFamily& family) const;
  // As a family of its own, header included.
  void render(std::string& out, std::string_view name, std::string_view help) const;

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

  // The plain counters and gauges of metric_registry.h, one member each.
#define MG_COUNTER_MEMBER(member, name, help) std::atomic<std::uint64_t> member{0};
#define MG_GAUGE_MEMBER(member, name, help) std::atomic<std::int64_t> member{0};
#define MG_NO_MEMBER(...)
  MONGOGUARD_METRICS(MG_COUNTER_MEMBER, MG_GAUGE_MEMBER, MG_NO_MEMBER)
#undef MG_COUNTER_MEMBER
#undef MG_GAUGE_MEMBER
#undef MG_NO_MEMBER
  // mongoguard_tls_handshake_failures_total{side="client"|"upstream"}.
  std::atomic<std::uint64_t> tls_handshake_failures_client{0};
  std::atomic<std::uint64_t> tls_handshake_failures_upstream{0};
  // Messages and bytes in each direction, and messages by opcode: counted
  // for every message, per thread (relay.add(RelayCounters::kClientBytes, n)).
  RelayCounters relay;

  void count_rejected(wire::DecodeError reason);
  // Inspected operations only (not the hot path): a short lock is fine.
  void count_verdict(std::string_view rule, std::string_view verdict);
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

  // Every family of MONGOGUARD_METRICS, in its order.
  std::string render_prometheus() const;

  // How long holds waited for their outcome, and how long the server took to
  // answer inspected (destructive) operations mongoguard forwarded.
  DurationHistogram hold_wait{{1, 5, 15, 30, 60, 120, 300, 600, 1800}};
  DurationHistogram inspected_reply{
      {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10}};

 private:
  std::array<std::atomic<std::uint64_t>, kReasonSlots> rejected_{};
  std::array<std::atomic<std::uint64_t>, 7> hold_outcomes_{};
  std::array<std::atomic<std::uint64_t>, policy::kOperationCount> documents_{};
  mutable std::mutex verdicts_mutex_;
  // (rule, verdict) -> count, found without building the key's strings.
  struct VerdictOrder {
    using is_transparent = void;
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      return std::pair<std::string_view, std::string_view>(a.first, a.second) <
             std::pair<std::string_view, std::string_view>(b.first, b.second);
    }
  };
  std::map<std::pair<std::string, std::string>, std::uint64_t, VerdictOrder> verdicts_;
  mutable std::mutex namespaces_mutex_;
  std::map<std::pair<std::string, policy::Operation>, std::uint64_t> namespace_documents_;
  std::set<std::string> named_namespaces_;
  mutable std::mutex unknown_mutex_;
  std::map<std::string, std::uint64_t, std::less<>> unknown_commands_;

#define MG_NO_ID(...)
#define MG_FAMILY_ID(id, ...) id,
  enum class Family { MONGOGUARD_METRICS(MG_NO_ID, MG_NO_ID, MG_FAMILY_ID) };
#undef MG_NO_ID
#undef MG_FAMILY_ID
  // The samples of a FAMILY row of MONGOGUARD_METRICS.
  void render_family(PrometheusWriter& writer, Family id, const MetricFamily& family) const;
  void render_verdicts(PrometheusWriter& writer, const MetricFamily& family) const;
  void render_namespace_documents(PrometheusWriter& writer, const MetricFamily& family) const;
  void render_unknown_commands(PrometheusWriter& writer, const MetricFamily& family) const;
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
