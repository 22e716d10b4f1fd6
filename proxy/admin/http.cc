#include "proxy/admin/http.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <charconv>
#include <chrono>
#include <cmath>
#include <map>
#include <sstream>

#include "bson/text.h"
#include "policy/duration.h"
#include "proxy/admin/fleet_admin.h"
#include "proxy/admin/page.h"
#include "proxy/admin/router.h"
#include "proxy/journal/store.h"
#include "proxy/observe/json.h"
#include "proxy/observe/metric_registry.h"

namespace mongoguard::proxy {

namespace beast = boost::beast;
namespace http = beast::http;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

constexpr std::size_t kMaxBody = 64 * 1024;
constexpr auto kIdleTimeout = 30s;
// A request's header and body must have arrived this long after the
// connection went quiet (a slow sender holds an admin slot for no longer).
constexpr auto kRequestTimeout = 10s;
constexpr auto kHandshakeTimeout = 10s;
constexpr std::size_t kMaxHeader = 16 * 1024;

using Parser = http::request_parser<http::string_body>;
using Response = http::response<http::string_body>;

void limit(Parser& parser) {
  parser.header_limit(kMaxHeader);
  parser.body_limit(kMaxBody);
}

}  // namespace

std::optional<json> admin_body_object(const AdminRequest& request, std::string& problem) {
  const auto first = request.body.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return json::object();
  json parsed = json::parse(request.body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    problem = "request body is not valid JSON";
    return std::nullopt;
  }
  if (!parsed.is_object()) {
    problem = "request body must be a JSON object";
    return std::nullopt;
  }
  return parsed;
}

std::string admin_operator_name(const AdminRequest& request, const json& body) {
  if (auto it = body.find("by"); it != body.end() && it->is_string()) {
    auto name = it->get<std::string>();
    if (name.find_first_not_of(" \t") != std::string::npos) return name;
  }
  const auto& header = request.operator_header;
  if (header.find_first_not_of(" \t") != std::string::npos) return header;
  return "";
}

namespace {

constexpr std::size_t kMaxOperatorName = 100;

// A self-declared operator name ("by", X-Mongoguard-Operator): it goes to
// the audit log, the process log and clients' errors, so one line of
// printable UTF-8, not too long.
std::string operator_name_problem(const std::string& by) {
  if (by.size() > kMaxOperatorName) {
    return "the operator name (\"by\" or X-Mongoguard-Operator) is longer than " +
           std::to_string(kMaxOperatorName) + " bytes";
  }
  if (!wire::printable(by)) {
    return "the operator name (\"by\" or X-Mongoguard-Operator) must be one line of printable "
           "UTF-8 text";
  }
  return "";
}

// The body's "reason": a string of at most kMaxReason characters, without
// control characters (it is shown to clients and written to logs).
std::optional<std::string> admin_reason(const json& body, std::string& problem) {
  auto it = body.find("reason");
  if (it == body.end() || it->is_null()) return std::string();
  if (!it->is_string()) {
    problem = "\"reason\" must be a string";
    return std::nullopt;
  }
  auto text = it->get<std::string>();
  if (text.size() > kMaxReason) {
    problem = "\"reason\" is longer than " + std::to_string(kMaxReason) + " characters";
    return std::nullopt;
  }
  for (const unsigned char c : text) {
    if (c < 0x20 || c == 0x7f) {
      problem = "\"reason\" must be one line of printable text";
      return std::nullopt;
    }
  }
  const auto first = text.find_first_not_of(' ');
  return first == std::string::npos ? std::string() : text.substr(first);
}

}  // namespace

std::optional<AdminOperatorAction> admin_operator_action(const AdminRequest& request,
                                                         const AdminOperator* who,
                                                         AdminResponse& refusal) {
  std::string problem;
  auto body = admin_body_object(request, problem);
  auto reason = body ? admin_reason(*body, problem) : std::nullopt;
  if (!body || !reason) {
    refusal = admin_error(400, problem);
    return std::nullopt;
  }
  if (who && !who->shared) {
    // A named operator's token says who it is: a "by" name is ignored.
    return AdminOperatorAction{std::move(*body), who->name, std::move(*reason), true};
  }
  std::string by = admin_operator_name(request, *body);
  if (by.empty()) {
    refusal =
        admin_error(400, "say who you are: {\"by\": \"NAME\"} or an X-Mongoguard-Operator header");
    return std::nullopt;
  }
  if (auto problem_with_name = operator_name_problem(by); !problem_with_name.empty()) {
    refusal = admin_error(400, problem_with_name);
    return std::nullopt;
  }
  return AdminOperatorAction{std::move(*body), std::move(by), std::move(*reason), false};
}

std::optional<std::uint64_t> admin_hold_id(std::string_view text) {
  std::uint64_t id = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return id;
}

std::optional<AdminGrant> admin_grant(const json& body, std::string& problem) {
  AdminGrant grant;
  if (auto it = body.find("documents"); it != body.end()) {
    if (!it->is_number_integer() || it->get<std::int64_t>() <= 0) {
      problem = "\"documents\" must be a positive integer";
      return std::nullopt;
    }
    if (it->is_number_unsigned()
            ? it->get<std::uint64_t>() > static_cast<std::uint64_t>(policy::kMaxGrantDocuments)
            : it->get<std::int64_t>() > policy::kMaxGrantDocuments) {
      problem = "\"documents\" may be at most " + std::to_string(policy::kMaxGrantDocuments) +
                " in one grant";
      return std::nullopt;
    }
    grant.documents = it->get<std::int64_t>();
  }
  if (auto it = body.find("minutes"); it != body.end()) {
    if (!it->is_number() || !(it->get<double>() > 0) || it->get<double>() > 7 * 24 * 60) {
      problem = "\"minutes\" must be a positive number of minutes, at most a week";
      return std::nullopt;
    }
    grant.duration = std::chrono::milliseconds(std::llround(it->get<double>() * 60'000.0));
  }
  if (grant.documents == 0 && !grant.duration) {
    problem = "grant needs \"documents\": N and/or \"minutes\": T";
    return std::nullopt;
  }
  return grant;
}

std::string AdminGrant::details() const {
  std::string out;
  if (documents > 0) out += std::to_string(documents) + " document(s)";
  if (duration) {
    if (!out.empty()) out += " and ";
    out += "free passage for " + policy::format_duration(*duration);
  }
  return out;
}

namespace {

std::string render_metrics(AdminState& state, policy::TimePoint now) {
  std::string out = state.metrics.render_prometheus();
  const auto breakers = state.budgets.breakers(now);
  const auto tripped = std::count_if(breakers.begin(), breakers.end(),
                                     [](const policy::BreakerState& b) { return b.tripped; });
  // The alert "a hold has waited too long" needs the oldest one's age.
  double oldest_hold_seconds = 0;
  const auto steady_now = std::chrono::steady_clock::now();
  for (const auto& hold : state.holds.pending()) {
    oldest_hold_seconds = std::max(
        oldest_hold_seconds, std::chrono::duration<double>(steady_now - hold.created).count());
  }
  PrometheusWriter writer(out);
  writer.single(metric::kHoldsPending, state.holds.size());
  writer.single(metric::kBreakersTrippedNow, tripped);
  writer.single(metric::kHoldOldestAge, fmt::format("{:.3f}", oldest_hold_seconds));
  render_breaker_gauges(out, breakers);
  if (state.journal) {
    const auto& counters = state.journal->counters();
    writer.single(metric::kJournalDropped, counters.dropped_documents.load());
    writer.single(metric::kJournalExpired, counters.expired_documents.load());
    writer.single(metric::kJournalWriteFailures, counters.failed_writes.load());
    writer.single(metric::kJournalCorruptFiles, counters.corrupt_files.load());
    writer.single(metric::kJournalHealthy, state.journal->healthy() ? 1 : 0);
  }
  if (state.fleet) out += fleet_metrics(*state.fleet);
  return out;
}

void audit(AdminState& state, const std::string& action, const std::string& by,
           const std::string& target, const std::string& details) {
  if (state.audit_operator_action) state.audit_operator_action(action, by, target, details);
}

AdminResponse list_holds(AdminState& state, policy::TimePoint now) {
  json holds = json::array();
  for (const auto& hold : state.holds.pending()) holds.push_back(hold_json(hold, now));
  return admin_json(200, json{{"holds", std::move(holds)}});
}

std::string with_reason(std::string details, const std::string& reason) {
  if (!reason.empty()) details += (details.empty() ? "reason: " : "; reason: ") + reason;
  return details;
}

json approvals_json(const std::vector<policy::HoldApproval>& approvals) {
  json out = json::array();
  for (const auto& a : approvals) out.push_back({{"by", a.by}, {"reason", a.reason}});
  return out;
}

// What the person approving is told about the breaker behind the hold.
void breaker_note(AdminState& state, const std::string& breaker, json& out) {
  if (breaker.empty()) return;
  auto b = state.budgets.breaker(breaker, policy::Clock::now());
  if (!b || !b->tripped) return;
  out["breaker"] = breaker;
  out["breaker_tripped"] = true;
  out["note"] = "released this one operation; breaker " + breaker +
                " stays tripped until it is resumed (ctl resume " + breaker + ") or reset";
}

AdminResponse reject_hold(AdminState& state, const policy::HoldInfo& hold,
                          const AdminOperatorAction& action) {
  const policy::HoldDecision decision{policy::HoldOutcome::kRejected, action.by, action.reason, {}};
  if (!state.holds.resolve(hold.id, decision)) {
    return admin_error(404, "hold " + std::to_string(hold.id) + " is no longer pending");
  }
  audit(
      state, "reject", action.by, std::to_string(hold.id),
      with_reason(hold.operation + " on " + hold.ns + " (rule " + hold.rule + ")", action.reason));
  spdlog::info("admin: hold {} ({} on {}) rejected by {}", hold.id, hold.operation, hold.ns,
               action.by);
  return admin_json(200, json{{"id", hold.id}, {"outcome", "rejected"}, {"by", action.by}});
}

// One approval: releases the hold, or (hold.approvals) records it until
// enough different operators have approved.
AdminResponse approve_hold(AdminState& state, const policy::HoldInfo& hold,
                           const AdminOperatorAction& action) {
  const auto id = std::to_string(hold.id);
  if (hold.approvals_needed > 1 && !action.named) {
    return admin_error(403, "hold " + id + " needs " + std::to_string(hold.approvals_needed) +
                                " approvals from named operators (admin.operators); the shared "
                                "admin token cannot give one");
  }
  const policy::HoldDecision decision{policy::HoldOutcome::kApproved, action.by, action.reason, {}};
  policy::HoldInfo after;
  const auto result =
      state.holds.approve(hold.id, decision, std::chrono::system_clock::now(), &after);
  using A = policy::HoldRegistry::Approval;
  if (result == A::kUnknown) return admin_error(404, "hold " + id + " is no longer pending");
  const std::string of = std::to_string(after.approvals.size()) + " of " +
                         std::to_string(hold.approvals_needed) + " approvals";
  if (result == A::kAlready) {
    return admin_error(409, action.by + " approved hold " + id + " already (" + of +
                                "); another operator must approve it");
  }
  std::string details = hold.operation + " on " + hold.ns + " (rule " + hold.rule + ")";
  if (hold.approvals_needed > 1) details += ", " + of;
  audit(state, "approve", action.by, id, with_reason(details, action.reason));
  json out{{"id", hold.id},
           {"by", action.by},
           {"approvals", approvals_json(after.approvals)},
           {"approvals_needed", hold.approvals_needed}};
  if (result == A::kRecorded) {
    spdlog::info("admin: hold {} ({} on {}) approved by {}: {}, waiting for another operator", id,
                 hold.operation, hold.ns, action.by, of);
    out["outcome"] = "waiting";
    return admin_json(202, out);
  }
  spdlog::info("admin: hold {} ({} on {}) approved by {}", id, hold.operation, hold.ns, action.by);
  out["outcome"] = "approved";
  breaker_note(state, hold.breaker, out);
  return admin_json(200, out);
}

AdminResponse resolve_hold(AdminState& state, const AdminCall& call, const std::string& id,
                           bool approve) {
  AdminResponse refusal;
  auto action_of = admin_operator_action(call.request, call.who, refusal);
  if (!action_of) return refusal;
  auto number = admin_hold_id(id);
  std::optional<policy::HoldInfo> hold;
  if (number) hold = state.holds.find(*number);
  if (!hold) return admin_error(404, "no pending hold " + id);
  return approve ? approve_hold(state, *hold, *action_of) : reject_hold(state, *hold, *action_of);
}

AdminResponse list_breakers(AdminState& state, policy::TimePoint now) {
  std::map<std::string, std::size_t> pending;
  for (const auto& hold : state.holds.pending()) ++pending[hold.breaker];
  json breakers = json::array();
  for (const auto& b : state.budgets.breakers(now)) {
    json entry = breaker_json(b, now);
    auto it = pending.find(b.name);
    entry["pending_holds"] = it == pending.end() ? 0 : it->second;
    breakers.push_back(std::move(entry));
  }
  return admin_json(200, json{{"breakers", std::move(breakers)}});
}

AdminResponse breaker_reply(AdminState& state, const std::string& name, const std::string& by,
                            policy::TimePoint now, json extra = json::object()) {
  auto after = state.budgets.breaker(name, now);
  extra["breaker"] = after ? breaker_json(*after, now) : json(nullptr);
  extra["by"] = by;
  return admin_json(200, extra);
}

std::vector<policy::HoldInfo> holds_of(AdminState& state, const std::string& breaker) {
  std::vector<policy::HoldInfo> out;
  for (auto& hold : state.holds.pending()) {  // in id order: oldest first
    if (hold.breaker == breaker) out.push_back(std::move(hold));
  }
  return out;
}

// approve-all, reject-all: every pending hold of the breaker (an approval
// each, for holds that need more than one).
AdminResponse resolve_breaker_holds(AdminState& state, const std::string& name,
                                    const std::string& action, const AdminOperatorAction& by,
                                    policy::TimePoint now) {
  const bool approve = action == "approve-all";
  const bool known = state.budgets.breaker(name, now).has_value();
  std::size_t released = 0, waiting = 0;
  for (const auto& hold : holds_of(state, name)) {
    if (!approve) {
      released +=
          state.holds.resolve(hold.id, {policy::HoldOutcome::kRejected, by.by, by.reason, {}});
      continue;
    }
    if (hold.approvals_needed > 1 && !by.named) {
      ++waiting;
      continue;
    }
    const auto got =
        state.holds.approve(hold.id, {policy::HoldOutcome::kApproved, by.by, by.reason, {}},
                            std::chrono::system_clock::now());
    released += got == policy::HoldRegistry::Approval::kReleased;
    waiting += got == policy::HoldRegistry::Approval::kRecorded ||
               got == policy::HoldRegistry::Approval::kAlready;
  }
  if (!known && released + waiting == 0) {
    return admin_error(404, "no breaker or pending holds named " + name);
  }
  std::string details = std::to_string(released) + " hold(s)";
  if (waiting > 0) details += ", " + std::to_string(waiting) + " waiting for another approval";
  audit(state, action, by.by, name, with_reason(details, by.reason));
  spdlog::info("admin: {} on {} by {}: {}", action, name, by.by, details);
  json out{{"breaker", name},
           {"outcome", approve ? "approved" : "rejected"},
           {"resolved", released},
           {"waiting", waiting},
           {"by", by.by}};
  if (approve) breaker_note(state, name, out);
  return admin_json(200, out);
}

AdminResponse reset_breaker(AdminState& state, const std::string& name,
                            const AdminOperatorAction& by, policy::TimePoint now) {
  if (!state.budgets.reset(name)) return admin_error(404, "no breaker named " + name);
  audit(state, "reset", by.by, name, with_reason("", by.reason));
  spdlog::info("admin: breaker {} reset by {}", name, by.by);
  return breaker_reply(state, name, by.by, now);
}

AdminResponse resume_breaker(AdminState& state, const std::string& name,
                             const AdminOperatorAction& by, policy::TimePoint now) {
  bool was_tripped = false;
  if (!state.budgets.resume(name, &was_tripped))
    return admin_error(404, "no breaker named " + name);
  audit(state, "resume", by.by, name,
        with_reason(was_tripped ? "" : "it was not tripped", by.reason));
  spdlog::info("admin: breaker {} resumed by {}", name, by.by);
  return breaker_reply(state, name, by.by, now, json{{"was_tripped", was_tripped}});
}

// The holds a grant covers, oldest first, while its documents last (all of
// them for free passage); one that needs several approvals stays.
std::pair<std::size_t, std::size_t> release_granted(AdminState& state, const std::string& name,
                                                    const AdminGrant& grant,
                                                    const AdminOperatorAction& by) {
  std::int64_t left = grant.documents;
  std::size_t released = 0, pending = 0;
  bool stopped = false;
  for (const auto& hold : holds_of(state, name)) {
    const bool covered = grant.duration || (hold.documents && *hold.documents <= left);
    if (stopped || hold.approvals_needed > 1 || !covered) {
      stopped = stopped || hold.approvals_needed <= 1;  // first come, first released
      ++pending;
      continue;
    }
    const auto got = state.holds.approve(
        hold.id, {policy::HoldOutcome::kApproved, by.by, "released by a grant", {}},
        std::chrono::system_clock::now());
    if (got != policy::HoldRegistry::Approval::kReleased) continue;
    ++released;
    if (!grant.duration) left -= *hold.documents;
  }
  return {released, pending};
}

AdminResponse grant_breaker(AdminState& state, const std::string& name,
                            const AdminOperatorAction& by, policy::TimePoint now) {
  std::string problem;
  auto grant = admin_grant(by.body, problem);
  if (!grant) return admin_error(400, problem);
  if (!state.budgets.grant(name, grant->documents, grant->duration, now)) {
    return admin_error(404, "no breaker named " + name);
  }
  const auto [released, pending] = release_granted(state, name, *grant, by);
  std::string details = grant->details() + "; released " + std::to_string(released) + " hold(s)";
  if (pending > 0) details += ", " + std::to_string(pending) + " still pending";
  audit(state, "grant", by.by, name, with_reason(details, by.reason));
  spdlog::info("admin: breaker {} granted {} by {}", name, details, by.by);
  return breaker_reply(
      state, name, by.by, now,
      json{{"released", released}, {"still_pending", pending}, {"message", "granted " + details}});
}

AdminResponse breaker_action(AdminState& state, const AdminCall& call, const std::string& name,
                             const std::string& action, policy::TimePoint now) {
  AdminResponse refusal;
  auto action_of = admin_operator_action(call.request, call.who, refusal);
  if (!action_of) return refusal;
  if (action == "approve-all" || action == "reject-all") {
    return resolve_breaker_holds(state, name, action, *action_of, now);
  }
  if (action == "reset") return reset_breaker(state, name, *action_of, now);
  if (action == "resume") return resume_breaker(state, name, *action_of, now);
  return grant_breaker(state, name, *action_of, now);
}

// Ready or not; why, and fleet mode's degraded state, only when `detailed`.
AdminResponse readiness_answer(AdminState& state, bool detailed) {
  const bool ready = !state.ready || state.ready();
  if (!ready) return admin_text(503, "not ready\n");
  if (state.upstream_unready) {
    if (auto why = state.upstream_unready()) {
      return admin_text(503, detailed ? "not ready: " + *why + "\n" : "not ready\n");
    }
  }
  // Fleet mode without Redis still enforces (local budgets): ready, degraded.
  if (state.fleet && detailed) return fleet_readiness(*state.fleet);
  return admin_text(200, "ready\n");
}

// The detail goes only to a request with a good token (a probe needs no
// more, and the detail names hosts). A wrong token is a failed login like
// anywhere else, and answered as late.
AdminResponse readiness(const AdminCall& c) {
  if (c.request.authorization.empty()) return readiness_answer(c.state, false);
  AdminResponse refusal;
  const bool detailed = authenticate(c.state, c.request, c.now, refusal).has_value();
  auto answer = readiness_answer(c.state, detailed);
  answer.delay = refusal.delay;
  return answer;
}

AdminResponse reload(AdminState& state, const AdminRequest& request, const AdminOperator* who) {
  std::string problem;
  auto body = admin_body_object(request, problem);
  if (!body) return admin_error(400, problem);
  const std::string by = who && !who->shared ? who->name : admin_operator_name(request, *body);
  if (auto name_problem = operator_name_problem(by); !name_problem.empty()) {
    return admin_error(400, name_problem);
  }
  if (!state.reload) return admin_error(503, "reload is not available");
  std::string errors;
  if (!state.reload(errors)) {
    return admin_json(422, json{{"error", "configuration refused; the running one stays"},
                                {"errors", error_lines(errors)}});
  }
  audit(state, "reload", by.empty() ? "api" : by, "config", "");
  return admin_json(200, json{{"ok", true}});
}

}  // namespace

std::optional<std::string> url_decode(std::string_view in, bool plus_is_space) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return std::nullopt;
      const int hi = hex(in[i + 1]);
      const int lo = hex(in[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

std::optional<std::vector<std::string>> split_path(std::string_view path) {
  std::vector<std::string> segments;
  if (path.empty() || path[0] != '/') return std::nullopt;
  path.remove_prefix(1);
  while (!path.empty()) {
    const auto slash = path.find('/');
    auto decoded = url_decode(path.substr(0, slash));
    if (!decoded) return std::nullopt;
    segments.push_back(std::move(*decoded));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  if (!segments.empty() && segments.back().empty()) segments.pop_back();
  return segments;
}

std::optional<std::string> query_param(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const auto amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    const auto eq = pair.find('=');
    auto key = url_decode(pair.substr(0, eq), true);
    if (key && *key == name) {
      return url_decode(eq == std::string_view::npos ? "" : pair.substr(eq + 1), true);
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  // Walk the longer string in full; any length difference fails at the end.
  const std::size_t n = std::max(a.size(), b.size());
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < n; ++i) {
    const auto x = static_cast<unsigned char>(i < a.size() ? a[i] : 0);
    const auto y = static_cast<unsigned char>(i < b.size() ? b[i] : 0);
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

bool bearer_matches(std::string_view authorization, std::string_view token) {
  if (token.empty()) return false;
  constexpr std::string_view kScheme = "bearer ";
  if (authorization.size() < kScheme.size()) return false;
  for (std::size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(authorization[i])) != kScheme[i]) return false;
  }
  authorization.remove_prefix(kScheme.size());
  while (!authorization.empty() && authorization.front() == ' ') authorization.remove_prefix(1);
  while (!authorization.empty() && authorization.back() == ' ') authorization.remove_suffix(1);
  return constant_time_equal(authorization, token);
}

void add_local_admin_routes(AdminRouter& router) {
  constexpr auto kOpen = AdminAuth::kOpen;
  constexpr auto kToken = AdminAuth::kToken;
  // Open to anyone: liveness, readiness, and the page (which holds no data).
  router.add({"GET", "/healthz", kOpen, [](const AdminCall&) { return admin_text(200, "ok\n"); }});
  router.add({"GET", "/readyz", kOpen, [](const AdminCall& c) { return readiness(c); }});
  router.add(
      {"GET", "/", kOpen, [](const AdminCall&) {
         return AdminResponse{200, "text/html; charset=utf-8", std::string(admin_page_html()), {}};
       }});
  router.add(
      {"GET", "/metrics", kToken, [](const AdminCall& c) {
         return AdminResponse{200, "text/plain; version=0.0.4", render_metrics(c.state, c.now), {}};
       }});
  router.add(
      {"GET", "/api/holds", kToken, [](const AdminCall& c) { return list_holds(c.state, c.now); }});
  constexpr auto kApprover = config::OperatorRole::kApprover;
  router.add({"POST", "/api/holds/*/approve|reject", kToken,
              [](const AdminCall& c) {
                return resolve_hold(c.state, c, c.segments[2], c.segments[3] == "approve");
              },
              kApprover});
  router.add({"GET", "/api/breakers", kToken,
              [](const AdminCall& c) { return list_breakers(c.state, c.now); }});
  const auto breaker = [](const AdminCall& c) {
    return breaker_action(c.state, c, c.segments[2], c.segments[3], c.now);
  };
  router.add({"POST", "/api/breakers/*/approve-all|reject-all", kToken, breaker, kApprover});
  router.add({"POST", "/api/breakers/*/reset|grant|resume", kToken, breaker});
  router.add({"GET", "/api/whoami", kToken, [](const AdminCall& c) {
                return admin_json(200, json{{"name", c.who->name},
                                            {"role", config::operator_role_name(c.who->role)},
                                            {"named", !c.who->shared}});
              }});
  router.add({"POST", "/api/reload", kToken,
              [](const AdminCall& c) { return reload(c.state, c.request, c.who); }});
  add_journal_admin_routes(router);
  add_status_admin_routes(router);
}

namespace {

// What one read attempt asks for: `ec` is how reading the request ended.
// Sets `keep_alive`, `version` and `head`; nullopt when the connection should
// just close. The answer may carry a deferred part (fleet mode) for the
// listener to await.
std::optional<AdminResponse> answer(AdminState& state, Parser& parser, error_code ec,
                                    bool& keep_alive, unsigned& version, bool& head,
                                    policy::TimePoint now, const std::string& peer = "") {
  keep_alive = false;
  head = false;
  version = 11;
  if (ec == http::error::body_limit) return admin_error(413, "request body larger than 64 KiB");
  if (ec) return std::nullopt;
  const auto& request = parser.get();
  keep_alive = request.keep_alive();
  version = request.version();
  head = request.method() == http::verb::head;
  AdminRequest admin{std::string(request.method_string()),
                     std::string(request.target()),
                     request.body(),
                     std::string(request[http::field::authorization]),
                     std::string(request["X-Mongoguard-Operator"]),
                     peer};
  try {
    return handle_admin_request(state, admin, now);
  } catch (const std::exception& e) {
    spdlog::error("admin: {} {} failed: {}", admin.method, admin.target, e.what());
    return admin_error(500, "internal error");
  }
}

Response render(AdminResponse result, unsigned version, bool keep_alive, bool head) {
  if (head) result.body.clear();
  Response response{static_cast<http::status>(result.status), version};
  response.set(http::field::server, "mongoguard");
  response.set(http::field::content_type, result.content_type);
  response.set(http::field::cache_control, "no-store");
  // Every answer, the page's and the API's: no framing, no sniffing, no
  // referrer, and the page's script the only one that may run.
  response.set("Content-Security-Policy", admin_content_security_policy());
  response.set("X-Frame-Options", "DENY");
  response.set("X-Content-Type-Options", "nosniff");
  response.set("Referrer-Policy", "no-referrer");
  if (result.status == 401) response.set(http::field::www_authenticate, "Bearer");
  response.keep_alive(keep_alive);
  response.body() = std::move(result.body);
  response.prepare_payload();
  return response;
}

}  // namespace

std::string answer_raw_admin_request(AdminState& state, std::string_view raw,
                                     policy::TimePoint now) {
  Parser parser;
  limit(parser);
  parser.eager(true);
  error_code ec;
  std::size_t used = 0;
  while (!ec && used < raw.size() && !parser.is_done()) {
    used += parser.put(asio::buffer(raw.data() + used, raw.size() - used), ec);
    if (ec == http::error::need_more) break;
  }
  // The listener closes quietly on a connection that ends before a whole
  // header (end_of_stream, partial_message).
  if (!parser.is_header_done() && ec != http::error::body_limit) return "";
  if (!ec && !parser.is_done()) {
    // The peer closed after what it sent: a request without a length ends here.
    parser.put_eof(ec);
  }
  if (ec == http::error::need_more || (!parser.is_done() && !ec)) return "";
  bool keep_alive = false;
  bool head = false;
  unsigned version = 11;
  auto result = answer(state, parser, ec, keep_alive, version, head, now);
  if (!result) return "";
  // Deferred answers exist only in fleet mode, which needs the listener's
  // event loop; here the immediate part is the answer.
  std::ostringstream out;
  out << render(std::move(*result), version, keep_alive, head);
  return out.str();
}

std::optional<std::string> admin_exposure_problem(const HostPort& listen, bool tls,
                                                  bool token_configured) {
  bool loopback = listen.host == "localhost";
  error_code ec;
  const auto address = asio::ip::make_address(listen.host, ec);
  if (!ec) loopback = address.is_loopback();
  if (loopback || (tls && token_configured)) return std::nullopt;
  std::string missing;
  if (!tls) missing = "admin.tls (cert and key)";
  if (!token_configured) missing += std::string(missing.empty() ? "" : " and ") + "a token file";
  return "the admin endpoint " + listen.to_string() +
         " is not a loopback address; it may listen there only with " + missing +
         " configured (the API can approve held deletes)";
}

AdminHttp::AdminHttp(asio::io_context& io, const tcp::endpoint& endpoint, AdminState& state,
                     std::shared_ptr<ssl::context> tls)
    : acceptor_(io, endpoint), state_(state), is_tls_(tls != nullptr), tls_(std::move(tls)) {}

void AdminHttp::start() {
  asio::co_spawn(
      native_executor(acceptor_.get_executor()), [this] { return accept_loop(); }, asio::detached);
}

void AdminHttp::stop() {
  error_code ignored;
  acceptor_.close(ignored);
}

tcp::endpoint AdminHttp::local_endpoint() const { return acceptor_.local_endpoint(); }

awaitable<void> AdminHttp::accept_loop() {
  while (acceptor_.is_open()) {
    error_code ec;
    tcp::socket socket = co_await acceptor_.async_accept(asio::redirect_error(use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
      spdlog::warn("admin: accept failed: {}", ec.message());
      asio::steady_timer pause(acceptor_.get_executor(), 50ms);
      co_await pause.async_wait(asio::redirect_error(use_awaitable, ec));
      continue;
    }
    if (refuse_over_limit(socket)) continue;
    ++open_;
    asio::co_spawn(
        native_executor(acceptor_.get_executor()),
        [this, s = std::move(socket)]() mutable { return serve(std::move(s)); }, asio::detached);
  }
}

// Beyond admin.max_connections: closed at once (reset, nothing read), so
// that no flood of admin connections takes the descriptors the data path
// needs; counted, and said at most once a second.
bool AdminHttp::refuse_over_limit(tcp::socket& socket) {
  if (open_ < max_connections_) return false;
  state_.metrics.admin_connections_refused.fetch_add(1, std::memory_order_relaxed);
  refusals_.refuse(socket, [&](std::uint64_t refused, const std::string& peer) {
    spdlog::warn(
        "admin: refused {} connection(s) (latest from {}): {} open, "
        "admin.max_connections is {}",
        refused, peer, open_, max_connections_);
  });
  return true;
}

awaitable<void> AdminHttp::serve(tcp::socket socket) {
  struct Closed {  // counted in accept_loop, uncounted however this ends
    std::size_t& open;
    ~Closed() { --open; }
  } closed{open_};
  error_code peer_ec;
  const auto remote = socket.remote_endpoint(peer_ec);
  const std::string peer = peer_ec ? std::string() : remote.address().to_string();
  if (!is_tls_) {
    beast::tcp_stream stream(std::move(socket));
    co_await serve_requests(stream, peer);
    error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    co_return;
  }
  const auto tls = tls_.load(std::memory_order_acquire);  // kept for the connection's life
  beast::ssl_stream<beast::tcp_stream> stream(beast::tcp_stream(std::move(socket)), *tls);
  error_code ec;
  beast::get_lowest_layer(stream).expires_after(kHandshakeTimeout);
  co_await stream.async_handshake(ssl::stream_base::server,
                                  asio::redirect_error(use_awaitable, ec));
  if (ec) {
    spdlog::debug("admin: TLS handshake failed: {}", ec.message());
    co_return;
  }
  co_await serve_requests(stream, peer);
  beast::get_lowest_layer(stream).expires_after(kHandshakeTimeout);
  co_await stream.async_shutdown(asio::redirect_error(use_awaitable, ec));
}

template <typename Stream>
awaitable<void> AdminHttp::serve_requests(Stream& stream, const std::string& peer) {
  beast::flat_buffer buffer;
  for (;;) {
    Parser parser;
    limit(parser);
    error_code ec;
    beast::get_lowest_layer(stream).expires_after(kRequestTimeout);
    co_await http::async_read(stream, buffer, parser, asio::redirect_error(use_awaitable, ec));
    bool keep_alive = false;
    bool head = false;
    unsigned version = 11;
    auto result = answer(state_, parser, ec, keep_alive, version, head, policy::Clock::now(), peer);
    if (!result) break;
    if (result->deferred) {
      try {
        result = co_await result->deferred();
      } catch (const std::exception& e) {
        spdlog::error("admin: fleet request failed: {}", e.what());
        result = admin_error(500, "internal error");
      }
    }
    if (result->delay.count() > 0) {
      asio::steady_timer wait(stream.get_executor(), result->delay);
      co_await wait.async_wait(asio::redirect_error(use_awaitable, ec));
    }
    auto response = render(std::move(*result), version, keep_alive, head);
    beast::get_lowest_layer(stream).expires_after(kIdleTimeout);
    co_await http::async_write(stream, response, asio::redirect_error(use_awaitable, ec));
    if (ec || !keep_alive) break;
  }
}

}  // namespace mongoguard::proxy
