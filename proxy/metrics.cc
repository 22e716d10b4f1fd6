#include "proxy/metrics.h"

#include <fmt/format.h>

namespace mongoguard::proxy {

void Metrics::count_rejected(wire::DecodeError reason) {
  auto slot = static_cast<std::size_t>(reason);
  if (slot < rejected_.size()) rejected_[slot].fetch_add(1, std::memory_order_relaxed);
}

std::uint64_t Metrics::rejected(wire::DecodeError reason) const {
  auto slot = static_cast<std::size_t>(reason);
  return slot < rejected_.size() ? rejected_[slot].load(std::memory_order_relaxed) : 0;
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
  counter("mongoguard_upstream_connect_failures_total",
          "Client connections closed because the upstream could not be reached.",
          load(upstream_connect_failures));
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
  return out;
}

}  // namespace mongoguard::proxy
