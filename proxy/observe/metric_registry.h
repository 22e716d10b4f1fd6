// Every metric mongoguard exports, declared once: name, type, help, labels.
// PrometheusWriter (prometheus.h) writes them; the table in docs/metrics.md
// describes them for operators.
#pragma once

#include "proxy/observe/prometheus.h"

// The families Metrics keeps, in the order /metrics lists them.
//
//   COUNTER(member, name, help)  a std::atomic<std::uint64_t> member of Metrics
//   GAUGE(member, name, help)    a std::atomic<std::int64_t> member of Metrics
//   FAMILY(id, type, name, help, labels...)
//                                labelled or a histogram: kept by Metrics in a
//                                form of its own, rendered by
//                                Metrics::render_family's case for `id`
//
// COUNTER and GAUGE members are what the data path counts into, with
// `metrics.member.fetch_add(1, std::memory_order_relaxed)`: no lookup. What
// the relay counts for every message is a FAMILY kept in Metrics::relay
// (relay_counters.h), per thread, so that threads share no counter.
// clang-format off
#define MONGOGUARD_METRICS(COUNTER, GAUGE, FAMILY)                                                \
  COUNTER(connections_accepted, "mongoguard_connections_accepted_total",                          \
          "Client connections accepted.")                                                         \
  GAUGE(connections_open, "mongoguard_connections_open", "Client connections open now.")          \
  COUNTER(connections_refused, "mongoguard_connections_refused_total",                            \
          "Client connections closed at once because limits.max_connections were open.")          \
  COUNTER(upstream_connect_failures, "mongoguard_upstream_connect_failures_total",                \
          "Client connections closed because the upstream could not be reached.")                 \
  GAUGE(upstream_reachable, "mongoguard_upstream_reachable",                                      \
        "1 after a successful upstream connect (and at start-up), 0 after a failed one.")         \
  FAMILY(tls_handshake_failures, kCounter, "mongoguard_tls_handshake_failures_total",             \
         "TLS handshakes that failed, by side.", "side")                                          \
  COUNTER(upstream_errors, "mongoguard_upstream_errors_total",                                    \
          "Connections closed because the upstream failed or sent an undecodable frame.")         \
  FAMILY(client_messages, kCounter, "mongoguard_client_messages_total",                           \
         "Messages read from clients.")                                                           \
  FAMILY(client_bytes, kCounter, "mongoguard_client_bytes_total", "Bytes read from clients.")     \
  FAMILY(upstream_messages, kCounter, "mongoguard_upstream_messages_total",                       \
         "Messages relayed from upstream servers.")                                               \
  FAMILY(upstream_bytes, kCounter, "mongoguard_upstream_bytes_total",                             \
         "Bytes relayed from upstream servers.")                                                  \
  FAMILY(compressed_messages, kCounter, "mongoguard_compressed_messages_total",                   \
         "OP_COMPRESSED messages inflated for inspection.")                                       \
  COUNTER(blocked_operations, "mongoguard_blocked_operations_total",                              \
          "Operations refused by policy (answered with an error, or dropped when "                \
          "unacknowledged).")                                                                     \
  COUNTER(policy_reloads, "mongoguard_policy_reloads_total", "Successful policy reloads.")        \
  COUNTER(unjudged_commands, "mongoguard_unjudged_commands_total",                                \
          "Destructive commands refused because some part of them could not be judged.")          \
  COUNTER(preflight_counts, "mongoguard_preflight_counts_total",                                  \
          "Capped counts sent to measure a statement before forwarding it.")                      \
  COUNTER(preflight_failures, "mongoguard_preflight_failures_total",                              \
          "Pre-flight counts that failed (on_preflight_error decided).")                          \
  COUNTER(journal_entries, "mongoguard_journal_entries_total",                                   \
          "Journal entries stored: statements whose before-images were kept.")                    \
  COUNTER(journal_documents, "mongoguard_journal_documents_total",                                \
          "Before-images stored in the journal.")                                                 \
  COUNTER(journal_failures, "mongoguard_journal_failures_total",                                  \
          "Operations a journaled rule let through whose before-images could not be taken or "    \
          "stored (held under journal.on_error: hold, forwarded under forward).")                 \
  COUNTER(journal_divergent, "mongoguard_journal_divergent_total",                                \
          "Journaled writes whose reply counted other documents than the journal read before "    \
          "them (documents changed in between).")                                                 \
  COUNTER(measured_unfiltered, "mongoguard_measured_unfiltered_total",                            \
          "Commands judged unfiltered by a count (the filter matched at least "                   \
          "unfiltered_fraction of the collection).")                                              \
  COUNTER(unmatched_replies, "mongoguard_unmatched_replies_total",                                \
          "Upstream replies that answered no request in flight (relayed, settling nothing).")     \
  COUNTER(policy_reload_failures, "mongoguard_policy_reload_failures_total",                      \
          "Reloads refused because the new file was invalid; the old policy stayed.")             \
  FAMILY(rejected_frames, kCounter, "mongoguard_rejected_frames_total",                           \
         "Client frames refused (connection closed, nothing forwarded), by reason.", "reason")    \
  FAMILY(messages, kCounter, "mongoguard_messages_total",                                         \
         "Client messages by opcode (compressed ones by their original opcode and also as "       \
         "OP_COMPRESSED).", "opcode")                                                             \
  COUNTER(holds_created, "mongoguard_holds_created_total",                                        \
          "Operations parked for an operator's decision.")                                        \
  COUNTER(holds_refused, "mongoguard_holds_refused_total",                                        \
          "Would-be holds refused because limits.max_pending_holds were pending.")                \
  COUNTER(breakers_tripped, "mongoguard_breakers_tripped_total", "Budgets spent (breaker trips).") \
  FAMILY(holds_resolved, kCounter, "mongoguard_holds_resolved_total", "Holds by outcome.",        \
         "outcome")                                                                               \
  FAMILY(documents_affected, kCounter, "mongoguard_documents_affected_total",                     \
         "Documents the server reported as affected by inspected operations.", "operation")       \
  FAMILY(verdicts, kCounter, "mongoguard_verdicts_total",                                         \
         "Inspected operations by deciding rule and verdict.", "rule", "verdict")                 \
  FAMILY(namespace_documents, kCounter, "mongoguard_namespace_documents_affected_total",          \
         "Documents the server reported as affected, by namespace (those a rule matched, at "     \
         "most 100; the rest as \"other\") and operation.", "namespace", "operation")             \
  FAMILY(unknown_commands, kCounter, "mongoguard_unknown_commands_total",                         \
         "Commands in neither table of the command catalogue (docs/commands.md), by name (the "   \
         "first 64 names; the rest as \"other\").", "command")                                    \
  COUNTER(audit_dropped, "mongoguard_audit_dropped_total",                                        \
          "Audit records not written to the audit file because its queue stayed full (the "       \
          "file did not keep up); the process log has each notable one.")                         \
  COUNTER(audit_failures, "mongoguard_audit_failures_total",                                      \
          "Audit records that did not reach the audit file for any reason (queue full, a write "  \
          "the file refused, a record that would not render); each cause logged at error.")       \
  COUNTER(admin_auth_failures, "mongoguard_admin_auth_failures_total",                            \
          "Admin requests refused for a missing or wrong bearer token.")                          \
  COUNTER(admin_connections_refused, "mongoguard_admin_connections_refused_total",                \
          "Admin connections closed on accept because admin.max_connections were open.")          \
  FAMILY(hold_wait, kHistogram, "mongoguard_hold_wait_seconds",                                   \
         "Time from a hold's creation to its outcome (any outcome).")                             \
  FAMILY(inspected_reply, kHistogram, "mongoguard_inspected_reply_seconds",                       \
         "Time from forwarding an inspected operation to the server's reply.")
// clang-format on

// Families computed when /metrics is read, from what the admin endpoint sees.
namespace mongoguard::proxy::metric {

// The admin state (proxy/admin/http.cc).
inline constexpr MetricFamily kHoldsPending{"mongoguard_holds_pending", MetricType::kGauge,
                                            "Operations held waiting for an operator."};
inline constexpr MetricFamily kBreakersTrippedNow{"mongoguard_breakers_tripped", MetricType::kGauge,
                                                  "Damage-budget breakers currently tripped."};
inline constexpr MetricFamily kHoldOldestAge{"mongoguard_hold_oldest_age_seconds",
                                             MetricType::kGauge,
                                             "Age of the oldest pending hold (0 when none)."};

// The budget book's breakers (render_breaker_gauges in metrics.h). The
// per-breaker help names the bound, kMetricBreakers (200).
inline constexpr MetricFamily kBreakers{
    "mongoguard_breakers", MetricType::kGauge,
    "Damage-budget breakers (one per window, key and group), listed or not below."};
inline constexpr MetricFamily kBreakerUsed{
    "mongoguard_breaker_used",
    MetricType::kGauge,
    "Documents in the breaker's window now. First 200 breakers by name.",
    {"breaker", "rule", "per"}};
inline constexpr MetricFamily kBreakerLimit{
    "mongoguard_breaker_limit",
    MetricType::kGauge,
    "Documents the breaker's window allows. First 200 breakers by name.",
    {"breaker", "rule", "per"}};
inline constexpr MetricFamily kBreakerTripped{
    "mongoguard_breaker_tripped",
    MetricType::kGauge,
    "1 while the breaker is tripped. First 200 breakers by name.",
    {"breaker", "rule", "per"}};

// The journal's file (journal::StoreCounters, rendered in proxy/admin/http.cc).
inline constexpr MetricFamily kJournalDropped{
    "mongoguard_journal_dropped_documents_total", MetricType::kCounter,
    "Journaled documents dropped, oldest first, to keep the file within journal.max_size."};
inline constexpr MetricFamily kJournalExpired{
    "mongoguard_journal_expired_documents_total", MetricType::kCounter,
    "Journaled documents removed for being older than journal.retention."};
inline constexpr MetricFamily kJournalWriteFailures{
    "mongoguard_journal_write_failures_total", MetricType::kCounter,
    "Journal transactions that failed (disk full, I/O error, file too large)."};
inline constexpr MetricFamily kJournalCorruptFiles{
    "mongoguard_journal_corrupt_files_total", MetricType::kCounter,
    "Damaged journal files moved aside (a new journal was started)."};
inline constexpr MetricFamily kJournalHealthy{
    "mongoguard_journal_healthy", MetricType::kGauge,
    "1 while the journal file can be written, 0 while it cannot (journal.on_error decides)."};

// Fleet mode (proxy/admin/fleet_admin.cc).
inline constexpr MetricFamily kFleetConnected{
    "mongoguard_fleet_connected", MetricType::kGauge,
    "1 when budgets are shared through Redis, 0 when this proxy enforces its own (degraded)."};
inline constexpr MetricFamily kFleetLocalAdmits{
    "mongoguard_fleet_local_admits_total", MetricType::kCounter,
    "Budget checks decided by this proxy's own windows because Redis was unreachable."};

}  // namespace mongoguard::proxy::metric
