#include "proxy/observe/metrics.h"

#include <fmt/format.h>

#include <algorithm>

namespace mongoguard::proxy {

void Metrics::count_rejected(wire::DecodeError reason) {
  auto slot = static_cast<std::size_t>(reason);
  if (slot < rejected_.size()) rejected_[slot].fetch_add(1, std::memory_order_relaxed);
}

std::uint64_t Metrics::rejected(wire::DecodeError reason) const {
  auto slot = static_cast<std::size_t>(reason);
  return slot < rejected_.size() ? rejected_[slot].load(std::memory_order_relaxed) : 0;
}

namespace {

constexpr std::int32_t kOpcodes[] = {1, 2001, 2002, 2004, 2005, 2006, 2007, 2012, 2013};

std::string escape_label(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

}  // namespace

DurationHistogram::DurationHistogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      counts_(std::make_unique<std::atomic<std::uint64_t>[]>(bounds_.size() + 1)) {}

void DurationHistogram::observe(std::chrono::nanoseconds d) {
  const double seconds = std::chrono::duration<double>(d).count();
  std::size_t slot = 0;
  while (slot < bounds_.size() && seconds > bounds_[slot]) ++slot;
  counts_[slot].fetch_add(1, std::memory_order_relaxed);
  sum_ns_.fetch_add(static_cast<std::uint64_t>(std::max<std::int64_t>(d.count(), 0)),
                    std::memory_order_relaxed);
}

void DurationHistogram::render(std::string& out, const char* name, const char* help) const {
  auto it = std::back_inserter(out);
  fmt::format_to(it, "# HELP {0} {1}\n# TYPE {0} histogram\n", name, help);
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += counts_[i].load(std::memory_order_relaxed);
    if (i < bounds_.size()) {
      fmt::format_to(it, "{}_bucket{{le=\"{}\"}} {}\n", name, bounds_[i], cumulative);
    } else {
      fmt::format_to(it, "{}_bucket{{le=\"+Inf\"}} {}\n", name, cumulative);
    }
  }
  fmt::format_to(it, "{}_sum {}\n{}_count {}\n", name,
                 static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9, name,
                 cumulative);
}

void Metrics::count_namespace_documents(const std::string& ns, policy::Operation op,
                                        std::int64_t n) {
  if (n <= 0) return;
  std::lock_guard lock(namespaces_mutex_);
  std::string label = ns.empty() ? "other" : ns;
  if (!named_namespaces_.contains(label)) {
    if (label == "other" || named_namespaces_.size() >= kNamedNamespaces) {
      label = "other";
    } else {
      named_namespaces_.insert(label);
    }
  }
  namespace_documents_[{label, op}] += static_cast<std::uint64_t>(n);
}

bool Metrics::count_unknown_command(std::string_view name) {
  std::string label;
  for (char c : name.substr(0, 64)) label += (c >= 0x20 && c < 0x7f) ? c : '?';
  std::lock_guard lock(unknown_mutex_);
  auto it = unknown_commands_.find(label);
  if (it != unknown_commands_.end()) {
    ++it->second;
    return false;
  }
  // Room for kNamedUnknownCommands names besides "other".
  if (unknown_commands_.size() - unknown_commands_.count("other") >= kNamedUnknownCommands) {
    auto [other, first] = unknown_commands_.try_emplace("other", 0);
    ++other->second;
    return first;
  }
  unknown_commands_.emplace(std::move(label), 1);
  return true;
}

void Metrics::count_verdict(const std::string& rule, const std::string& verdict) {
  std::lock_guard lock(verdicts_mutex_);
  ++verdicts_[{rule, verdict}];
}

void Metrics::count_hold_outcome(policy::HoldOutcome outcome) {
  auto slot = static_cast<std::size_t>(outcome);
  if (slot < hold_outcomes_.size()) hold_outcomes_[slot].fetch_add(1, std::memory_order_relaxed);
}

void Metrics::count_documents(policy::Operation op, std::int64_t n) {
  auto slot = static_cast<std::size_t>(op);
  if (slot < documents_.size() && n > 0) {
    documents_[slot].fetch_add(static_cast<std::uint64_t>(n), std::memory_order_relaxed);
  }
}

void Metrics::count_opcode(std::int32_t opcode) {
  for (std::size_t i = 0; i < std::size(kOpcodes); ++i) {
    if (kOpcodes[i] == opcode) {
      opcodes_[i].fetch_add(1, std::memory_order_relaxed);
      return;
    }
  }
}

std::string Metrics::render_prometheus() const {
  std::string out;
  auto counter = [&out](const char* name, const char* help, auto value) {
    fmt::format_to(std::back_inserter(out), "# HELP {0} {1}\n# TYPE {0} counter\n{0} {2}\n", name,
                   help, value);
  };
  auto gauge = [&out](const char* name, const char* help, auto value) {
    fmt::format_to(std::back_inserter(out), "# HELP {0} {1}\n# TYPE {0} gauge\n{0} {2}\n", name,
                   help, value);
  };
  auto load = [](const auto& a) { return a.load(std::memory_order_relaxed); };
  counter("mongoguard_connections_accepted_total", "Client connections accepted.",
          load(connections_accepted));
  gauge("mongoguard_connections_open", "Client connections open now.", load(connections_open));
  counter("mongoguard_connections_refused_total",
          "Client connections closed at once because limits.max_connections were open.",
          load(connections_refused));
  counter("mongoguard_upstream_connect_failures_total",
          "Client connections closed because the upstream could not be reached.",
          load(upstream_connect_failures));
  out +=
      "# HELP mongoguard_tls_handshake_failures_total TLS handshakes that failed, by side.\n"
      "# TYPE mongoguard_tls_handshake_failures_total counter\n";
  out += fmt::format("mongoguard_tls_handshake_failures_total{{side=\"client\"}} {}\n",
                     load(tls_handshake_failures_client));
  out += fmt::format("mongoguard_tls_handshake_failures_total{{side=\"upstream\"}} {}\n",
                     load(tls_handshake_failures_upstream));
  counter("mongoguard_upstream_errors_total",
          "Connections closed because the upstream failed or sent an undecodable frame.",
          load(upstream_errors));
  counter("mongoguard_client_messages_total", "Messages read from clients.", load(client_messages));
  counter("mongoguard_client_bytes_total", "Bytes read from clients.", load(client_bytes));
  counter("mongoguard_upstream_messages_total", "Messages relayed from upstream servers.",
          load(upstream_messages));
  counter("mongoguard_upstream_bytes_total", "Bytes relayed from upstream servers.",
          load(upstream_bytes));
  counter("mongoguard_compressed_messages_total", "OP_COMPRESSED messages inflated for inspection.",
          load(compressed_messages));
  counter("mongoguard_blocked_operations_total",
          "Operations refused by policy (answered with an error, or dropped when unacknowledged).",
          load(blocked_operations));
  counter("mongoguard_policy_reloads_total", "Successful policy reloads.", load(policy_reloads));
  counter("mongoguard_unjudged_commands_total",
          "Destructive commands refused because some part of them could not be judged.",
          load(unjudged_commands));
  counter("mongoguard_preflight_counts_total",
          "Capped counts sent to measure a statement before forwarding it.",
          load(preflight_counts));
  counter("mongoguard_preflight_failures_total",
          "Pre-flight counts that failed (on_preflight_error decided).", load(preflight_failures));
  counter("mongoguard_measured_unfiltered_total",
          "Commands judged unfiltered by a count (the filter matched at least unfiltered_fraction "
          "of the collection).",
          load(measured_unfiltered));
  counter("mongoguard_unmatched_replies_total",
          "Upstream replies that answered no request in flight (relayed, settling nothing).",
          load(unmatched_replies));
  counter("mongoguard_policy_reload_failures_total",
          "Reloads refused because the new file was invalid; the old policy stayed.",
          load(policy_reload_failures));
  out +=
      "# HELP mongoguard_rejected_frames_total Client frames refused (connection closed, nothing "
      "forwarded), by reason.\n# TYPE mongoguard_rejected_frames_total counter\n";
  for (std::size_t i = 1; i < rejected_.size(); ++i) {
    auto reason = static_cast<wire::DecodeError>(i);
    const char* name = wire::error_name(reason);
    if (name == nullptr || std::string_view(name) == "unknown") continue;
    fmt::format_to(std::back_inserter(out),
                   "mongoguard_rejected_frames_total{{reason=\"{}\"}} {}\n", name,
                   load(rejected_[i]));
  }
  out +=
      "# HELP mongoguard_messages_total Client messages by opcode (compressed ones by their "
      "original opcode and also as OP_COMPRESSED).\n# TYPE mongoguard_messages_total counter\n";
  for (std::size_t i = 0; i < std::size(kOpcodes); ++i) {
    fmt::format_to(std::back_inserter(out), "mongoguard_messages_total{{opcode=\"{}\"}} {}\n",
                   wire::opcode_name(kOpcodes[i]), load(opcodes_[i]));
  }
  counter("mongoguard_holds_created_total", "Operations parked for an operator's decision.",
          load(holds_created));
  counter("mongoguard_holds_refused_total",
          "Would-be holds refused because limits.max_pending_holds were pending.",
          load(holds_refused));
  counter("mongoguard_breakers_tripped_total", "Budgets spent (breaker trips).",
          load(breakers_tripped));
  out +=
      "# HELP mongoguard_holds_resolved_total Holds by outcome.\n"
      "# TYPE mongoguard_holds_resolved_total counter\n";
  for (std::size_t i = 0; i < hold_outcomes_.size(); ++i) {
    fmt::format_to(
        std::back_inserter(out), "mongoguard_holds_resolved_total{{outcome=\"{}\"}} {}\n",
        policy::hold_outcome_name(static_cast<policy::HoldOutcome>(i)), load(hold_outcomes_[i]));
  }
  out +=
      "# HELP mongoguard_documents_affected_total Documents the server reported as affected by "
      "inspected operations.\n# TYPE mongoguard_documents_affected_total counter\n";
  for (std::size_t i = 0; i < documents_.size(); ++i) {
    fmt::format_to(std::back_inserter(out),
                   "mongoguard_documents_affected_total{{operation=\"{}\"}} {}\n",
                   policy::operation_name(static_cast<policy::Operation>(i)), load(documents_[i]));
  }
  out +=
      "# HELP mongoguard_verdicts_total Inspected operations by deciding rule and verdict.\n"
      "# TYPE mongoguard_verdicts_total counter\n";
  {
    std::lock_guard lock(verdicts_mutex_);
    for (const auto& [key, count] : verdicts_) {
      fmt::format_to(std::back_inserter(out),
                     "mongoguard_verdicts_total{{rule=\"{}\",verdict=\"{}\"}} {}\n",
                     escape_label(key.first), escape_label(key.second), count);
    }
  }
  out +=
      "# HELP mongoguard_namespace_documents_affected_total Documents the server reported as "
      "affected, by namespace (those a rule matched, at most 100; the rest as \"other\") and "
      "operation.\n# TYPE mongoguard_namespace_documents_affected_total counter\n";
  {
    std::lock_guard lock(namespaces_mutex_);
    for (const auto& [key, count] : namespace_documents_) {
      fmt::format_to(
          std::back_inserter(out),
          "mongoguard_namespace_documents_affected_total{{namespace=\"{}\",operation=\"{}\"}} "
          "{}\n",
          escape_label(key.first), policy::operation_name(key.second), count);
    }
  }
  out +=
      "# HELP mongoguard_unknown_commands_total Commands in neither table of the command "
      "catalogue (docs/commands.md), by name (the first 64 names; the rest as \"other\").\n"
      "# TYPE mongoguard_unknown_commands_total counter\n";
  {
    std::lock_guard lock(unknown_mutex_);
    for (const auto& [name, count] : unknown_commands_) {
      fmt::format_to(std::back_inserter(out),
                     "mongoguard_unknown_commands_total{{command=\"{}\"}} {}\n", escape_label(name),
                     count);
    }
  }
  hold_wait.render(out, "mongoguard_hold_wait_seconds",
                   "Time from a hold's creation to its outcome (any outcome).");
  inspected_reply.render(out, "mongoguard_inspected_reply_seconds",
                         "Time from forwarding an inspected operation to the server's reply.");
  return out;
}

void render_breaker_gauges(std::string& out, const std::vector<policy::BreakerState>& breakers) {
  auto it = std::back_inserter(out);
  fmt::format_to(it,
                 "# HELP mongoguard_breakers Damage-budget breakers (one per window, key and "
                 "group), listed or not below.\n"
                 "# TYPE mongoguard_breakers gauge\nmongoguard_breakers {}\n",
                 breakers.size());
  const std::size_t shown = std::min(breakers.size(), kMetricBreakers);
  struct Gauge {
    const char* name;
    const char* help;
    std::int64_t (*value)(const policy::BreakerState&);
  };
  const Gauge gauges[] = {
      {"mongoguard_breaker_used", "Documents in the breaker's window now.",
       [](const policy::BreakerState& b) { return b.used; }},
      {"mongoguard_breaker_limit", "Documents the breaker's window allows.",
       [](const policy::BreakerState& b) { return b.limit; }},
      {"mongoguard_breaker_tripped", "1 while the breaker is tripped.",
       [](const policy::BreakerState& b) { return static_cast<std::int64_t>(b.tripped); }},
  };
  for (const auto& g : gauges) {
    fmt::format_to(it, "# HELP {0} {1} First {2} breakers by name.\n# TYPE {0} gauge\n", g.name,
                   g.help, kMetricBreakers);
    for (std::size_t i = 0; i < shown; ++i) {
      const auto& b = breakers[i];
      fmt::format_to(it, "{}{{breaker=\"{}\",rule=\"{}\",per=\"{}\"}} {}\n", g.name,
                     escape_label(b.name), escape_label(b.rule), policy::format_window(b.per),
                     g.value(b));
    }
  }
}

}  // namespace mongoguard::proxy
