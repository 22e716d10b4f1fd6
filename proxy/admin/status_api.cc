// The page's picture of what is going on: GET /api/rates (destructive
// documents per minute per namespace over the last hour, with the budgets
// the running policy sets there), GET /api/status (the policy file, when it
// was loaded, the last reload) and GET /api/decisions (the decision log,
// newest first, filtered by rule, namespace and outcome).
#include <algorithm>
#include <cctype>
#include <charconv>
#include <map>
#include <set>

#include "proxy/admin/router.h"
#include "proxy/admin/state.h"
#include "proxy/observe/json.h"
#include "proxy/observe/rate_history.h"

namespace mongoguard::proxy {

using nlohmann::json;
using SystemTime = std::chrono::system_clock::time_point;

std::vector<std::string> error_lines(const std::string& errors) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start < errors.size()) {
    auto end = errors.find('\n', start);
    if (end == std::string::npos) end = errors.size();
    if (end > start) lines.push_back(errors.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

void AdminStatus::reloaded(bool ok, const std::string& errors, std::string why, SystemTime now) {
  last_reload =
      ReloadOutcome{now, ok, std::move(why), ok ? std::vector<std::string>{} : error_lines(errors)};
  if (ok) loaded_at = now;
}

namespace {

constexpr std::size_t kDefaultDecisions = 50;
constexpr std::size_t kMaxDecisions = 500;

json operations_json(const policy::OperationSet& operations) {
  json out = json::array();
  for (int i = 0; i < policy::kOperationCount; ++i) {
    const auto op = static_cast<policy::Operation>(i);
    if (operations.has(op)) out.push_back(policy::operation_name(op));
  }
  return out;
}

// One window of a rule's limit as the chart draws it. A relative window's
// documents are what its breaker on `ns` last resolved (null before that).
json budget_json(const policy::Rule& rule, const policy::LimitWindow& window,
                 std::optional<std::int64_t> resolved) {
  const double per_seconds = static_cast<double>(window.per.count()) / 1000.0;
  std::optional<std::int64_t> documents =
      window.relative() ? resolved : std::optional<std::int64_t>(window.documents);
  json out{{"rule", rule.name},
           {"documents", documents ? json(*documents) : json(nullptr)},
           {"per_seconds", per_seconds},
           {"per", policy::format_duration(window.per)}};
  if (documents && per_seconds > 0) {
    out["per_minute"] = static_cast<double>(*documents) * 60.0 / per_seconds;
  }
  if (window.relative()) out["percent"] = window.percent;
  if (window.ceiling) out["ceiling"] = *window.ceiling;
  json group_by = json::array();
  if (rule.limit->group_by_user) group_by.push_back("user");
  if (rule.limit->group_by_app) group_by.push_back("app");
  if (rule.limit->group_by_client) group_by.push_back("client");
  if (!group_by.empty()) out["group_by"] = std::move(group_by);
  if (!rule.operations.empty()) out["operations"] = operations_json(rule.operations);
  return out;
}

bool rule_covers(const policy::Rule& rule, const std::string& ns) {
  return rule.namespaces.empty() ||
         std::any_of(rule.namespaces.begin(), rule.namespaces.end(),
                     [&](const policy::NamespaceGlob& glob) { return glob.matches(ns); });
}

json budgets_for(const policy::Policy* policy, const std::string& ns,
                 const std::vector<policy::BreakerState>& breakers) {
  json out = json::array();
  if (!policy) return out;
  for (const auto& rule : policy->rules) {
    if (!rule.limit || !rule_covers(rule, ns)) continue;
    for (const auto& window : rule.limit->windows) {
      std::optional<std::int64_t> resolved;
      for (const auto& b : breakers) {
        if (b.rule == rule.name && b.ns == ns && b.per == window.per) resolved = b.limit;
      }
      out.push_back(budget_json(rule, window, resolved));
    }
  }
  return out;
}

AdminResponse list_rates(AdminState& state, policy::TimePoint now, SystemTime wall) {
  if (!state.rates) return admin_error(404, "no rate history is kept");
  const auto policy = state.policy ? state.policy() : nullptr;
  const auto breakers = state.budgets.breakers(now);
  std::map<std::string, std::array<std::int64_t, RateHistory::kMinutes>> series;
  for (auto& s : state.rates->last_hour(wall)) series[s.ns] = s.per_minute;
  // A namespace a budget counts is shown while quiet too.
  for (const auto& b : breakers) series.try_emplace(b.ns);
  json namespaces = json::array();
  for (const auto& [ns, per_minute] : series) {
    namespaces.push_back(json{{"ns", ns},
                              {"per_minute", per_minute},
                              {"budgets", budgets_for(policy.get(), ns, breakers)}});
  }
  return admin_json(200, json{{"namespaces", std::move(namespaces)},
                              {"minutes", RateHistory::kMinutes},
                              {"now", iso_time(wall)}});
}

AdminResponse show_status(const AdminState& state, SystemTime wall) {
  json out{{"now", iso_time(wall)}, {"version", MONGOGUARD_VERSION}};
  if (!state.status) return admin_json(200, out);
  const AdminStatus& s = *state.status;
  out["policy_file"] = s.policy_file.empty() ? json(nullptr) : json(s.policy_file);
  out["started_at"] = iso_time(s.started_at);
  out["loaded_at"] = iso_time(s.loaded_at);
  out["last_reload"] = nullptr;
  if (s.last_reload) {
    out["last_reload"] = json{{"at", iso_time(s.last_reload->at)},
                              {"ok", s.last_reload->ok},
                              {"why", s.last_reload->why},
                              {"errors", s.last_reload->errors}};
  }
  out["decisions_read_back"] =
      json{{"records", s.decisions_read_back}, {"skipped_lines", s.audit_lines_skipped}};
  return admin_json(200, out);
}

// What GET /api/decisions filters on; empty = any.
struct DecisionFilter {
  std::string rule;
  std::string ns;
  std::string outcome;  // lower case
  bool any() const { return !rule.empty() || !ns.empty() || !outcome.empty(); }
};

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

std::string text_of(const json& record, const char* key) {
  const auto it = record.find(key);
  return it != record.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// The rule and namespace an operator's action names: a hold's details
// ("delete on app.families (rule r)"), a breaker's name ("r:app.families",
// "r:app.families:app=x", "r:app.families@1h"), or a namespace (restore).
std::pair<std::string, std::string> action_names(const json& record) {
  const std::string details = text_of(record, "details");
  const std::string target = text_of(record, "target");
  const auto on = details.find(" on ");
  const auto rule_at = details.rfind(" (rule ");
  if (on != std::string::npos && rule_at != std::string::npos && rule_at > on &&
      details.back() == ')') {
    return {details.substr(rule_at + 7, details.size() - rule_at - 8),
            details.substr(on + 4, rule_at - on - 4)};
  }
  const auto colon = target.find(':');
  if (colon == std::string::npos) return {"", target};
  const auto ns_end = target.find_first_of(":@", colon + 1);
  return {target.substr(0, colon),
          target.substr(colon + 1,
                        ns_end == std::string::npos ? std::string::npos : ns_end - colon - 1)};
}

bool names_rule(const json& record, const std::string& rule) {
  if (text_of(record, "rule") == rule) return true;
  const auto matched = record.find("matched_rules");
  return matched != record.end() && matched->is_array() &&
         std::find(matched->begin(), matched->end(), json(rule)) != matched->end();
}

bool names_ns(const json& record, const std::string& ns) {
  const auto targets = record.find("targets");
  if (targets == record.end() || !targets->is_array()) return false;
  return std::any_of(targets->begin(), targets->end(), [&](const json& target) {
    return target.is_object() && text_of(target, "ns") == ns;
  });
}

// Outcome: the record's outcome begins with it ("rejected" matches
// "rejected by alice"), or its verdict or operator action is it.
bool has_outcome(const json& record, const std::string& outcome) {
  if (lower(text_of(record, "outcome")).rfind(outcome, 0) == 0) return true;
  return lower(text_of(record, "verdict")) == outcome ||
         lower(text_of(record, "operator_action")) == outcome;
}

bool decision_matches(const std::string& text, const DecisionFilter& filter) {
  const json record = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!record.is_object()) return false;
  if (!filter.outcome.empty() && !has_outcome(record, filter.outcome)) return false;
  if (record.contains("operator_action")) {
    const auto [rule, ns] = action_names(record);
    return (filter.rule.empty() || rule == filter.rule) && (filter.ns.empty() || ns == filter.ns);
  }
  return (filter.rule.empty() || names_rule(record, filter.rule)) &&
         (filter.ns.empty() || names_ns(record, filter.ns));
}

std::optional<std::size_t> decisions_limit(std::string_view query) {
  auto given = query_param(query, "limit");
  if (!given) return kDefaultDecisions;
  std::size_t n = 0;
  auto [end, ec] = std::from_chars(given->data(), given->data() + given->size(), n);
  if (ec != std::errc() || end != given->data() + given->size() || n == 0) return std::nullopt;
  return std::min(n, kMaxDecisions);
}

AdminResponse list_decisions(AdminState& state, std::string_view query) {
  const auto limit = decisions_limit(query);
  if (!limit) return admin_error(400, "limit must be a positive integer");
  const DecisionFilter filter{query_param(query, "rule").value_or(""),
                              query_param(query, "ns").value_or(""),
                              lower(query_param(query, "outcome").value_or(""))};
  // The records are JSON already: embed them as they are.
  std::string out = "{\"decisions\":[";
  std::size_t listed = 0;
  for (const auto& record : state.decisions.recent(filter.any() ? kMaxDecisions : *limit)) {
    if (listed == *limit) break;
    if (filter.any() && !decision_matches(record, filter)) continue;
    if (listed++ > 0) out += ',';
    out += json::accept(record) ? record : dump_json(json{{"unparsed", record}});
  }
  out += "]}\n";
  return AdminResponse{200, "application/json", std::move(out), {}};
}

}  // namespace

void add_status_admin_routes(AdminRouter& router) {
  router.add({"GET", "/api/rates", AdminAuth::kToken, [](const AdminCall& c) {
                return list_rates(c.state, c.now, std::chrono::system_clock::now());
              }});
  router.add({"GET", "/api/status", AdminAuth::kToken, [](const AdminCall& c) {
                return show_status(c.state, std::chrono::system_clock::now());
              }});
  router.add({"GET", "/api/decisions", AdminAuth::kToken,
              [](const AdminCall& c) { return list_decisions(c.state, c.query); }});
}

}  // namespace mongoguard::proxy
