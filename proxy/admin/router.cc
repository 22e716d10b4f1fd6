#include "proxy/admin/router.h"

#include <algorithm>

#include "proxy/admin/auth_failures.h"
#include "proxy/observe/json.h"

namespace mongoguard::proxy {

namespace {

bool segment_matches(std::string_view pattern, std::string_view segment) {
  if (pattern == "*") return true;
  while (true) {
    const auto bar = pattern.find('|');
    if (pattern.substr(0, bar) == segment) return true;
    if (bar == std::string_view::npos) return false;
    pattern.remove_prefix(bar + 1);
  }
}

bool method_matches(const std::string& route_method, const std::string& method) {
  return method == route_method || (route_method == "GET" && method == "HEAD");
}

}  // namespace

namespace {

// The operator whose token the request carries. `disabled` when no token is
// configured at all: nothing a client sends could succeed, so that refusal
// is not a failed login.
std::optional<AdminOperator> match_token(const AdminState& state, const AdminRequest& request,
                                         AdminResponse& refusal, bool& disabled) {
  std::vector<AdminOperator> known =
      state.operators ? state.operators() : std::vector<AdminOperator>{};
  if (state.token) {
    known.push_back(AdminOperator{"", config::OperatorRole::kAdmin, state.token(), true});
  }
  const bool any = std::any_of(known.begin(), known.end(),
                               [](const AdminOperator& o) { return !o.token.empty(); });
  disabled = !any;
  if (!any) {
    refusal = admin_error(
        401, "the admin API is disabled: no admin.token_file or admin.operators is configured");
    return std::nullopt;
  }
  // Every token is compared, so the time taken does not say which matched.
  const AdminOperator* found = nullptr;
  for (const auto& o : known) {
    if (bearer_matches(request.authorization, o.token) && !found) found = &o;
  }
  if (!found) {
    refusal = admin_error(401, "missing or wrong bearer token");
    return std::nullopt;
  }
  return *found;
}

}  // namespace

std::optional<AdminOperator> authenticate(AdminState& state, const AdminRequest& request,
                                          policy::TimePoint now, AdminResponse& refusal) {
  bool disabled = false;
  auto who = match_token(state, request, refusal, disabled);
  if (state.auth_failures && !disabled) {
    if (!who) {
      refusal.delay = state.auth_failures->failed(request.peer, now);
    } else {
      state.auth_failures->succeeded(request.peer);
    }
  }
  return who;
}

namespace {

config::OperatorRole required_role(const AdminRoute& route) {
  if (route.role) return *route.role;
  return route.method == "GET" ? config::OperatorRole::kViewer : config::OperatorRole::kAdmin;
}

AdminResponse refuse_role(const AdminOperator& who, config::OperatorRole needed) {
  return admin_error(403, "operator " + who.name + " (" + config::operator_role_name(who.role) +
                              ") may not do this: it needs the " +
                              config::operator_role_name(needed) + " role");
}

// An operator action while the audit log cannot be written: refused, and
// the refusal itself offered to the log (a write that succeeds clears the
// problem, so the next attempt goes through once the disk is back).
std::optional<AdminResponse> refuse_unaudited(AdminState& state, const AdminRequest& request,
                                              const AdminOperator* who) {
  if (request.method == "GET" || request.method == "HEAD" || !state.audit_problem) {
    return std::nullopt;
  }
  const std::string problem = state.audit_problem();
  if (problem.empty()) return std::nullopt;
  if (state.audit_operator_action) {
    state.audit_operator_action("refused", who && !who->shared ? who->name : "",
                                request.method + " " + request.target,
                                "the audit log cannot be written: " + problem);
  }
  return admin_error(503, "operator actions are refused while the audit log cannot be written (" +
                              problem + "); nothing was done");
}

}  // namespace

AdminResponse admin_json(unsigned status, const nlohmann::json& body) {
  return AdminResponse{status, "application/json", dump_json(body) + "\n", {}};
}

AdminResponse admin_error(unsigned status, const std::string& message) {
  return admin_json(status, nlohmann::json{{"error", message}});
}

AdminResponse admin_text(unsigned status, std::string body) {
  return AdminResponse{status, "text/plain; charset=utf-8", std::move(body), {}};
}

void AdminRouter::add(AdminRoute route) {
  auto pattern = split_path(route.pattern);
  entries_.insert(entries_.begin(),
                  Entry{std::move(route), pattern.value_or(std::vector<std::string>{})});
}

std::vector<const AdminRouter::Entry*> AdminRouter::matching(
    const std::vector<std::string>& segments) const {
  std::vector<const Entry*> out;
  for (const auto& entry : entries_) {
    const auto& pattern = entry.pattern;
    if (pattern.size() == segments.size() &&
        std::equal(pattern.begin(), pattern.end(), segments.begin(), segment_matches)) {
      out.push_back(&entry);
    }
  }
  return out;
}

AdminResponse AdminRouter::route(AdminState& state, const AdminRequest& request,
                                 policy::TimePoint now) const {
  std::string_view path = request.target;
  std::string_view query;
  if (auto q = path.find('?'); q != std::string_view::npos) {
    query = path.substr(q + 1);
    path = path.substr(0, q);
  }
  auto segments = split_path(path);
  if (!segments) return admin_error(400, "bad percent-encoding in the path");
  const auto routes = matching(*segments);
  const bool open = !routes.empty() && routes.front()->route.auth == AdminAuth::kOpen;
  std::optional<AdminOperator> who;
  if (!open) {
    AdminResponse refusal;
    who = authenticate(state, request, now, refusal);
    if (!who) return refusal;
  }
  const AdminCall call{state, request, *segments, query, now, who ? &*who : nullptr};
  bool method_known = false;
  for (const Entry* entry : routes) {
    if (!method_matches(entry->route.method, request.method)) continue;
    method_known = true;
    const auto needed = required_role(entry->route);
    if (who && !open && who->role < needed) return refuse_role(*who, needed);
    if (!open) {
      if (auto refused = refuse_unaudited(state, request, who ? &*who : nullptr)) {
        return std::move(*refused);
      }
    }
    if (auto answer = entry->route.handler(call)) return std::move(*answer);
  }
  if (!routes.empty() && !method_known) {
    return admin_error(405, "method not allowed; use " + routes.front()->route.method);
  }
  return admin_error(404, "no such path");
}

AdminResponse handle_admin_request(AdminState& state, const AdminRequest& request,
                                   policy::TimePoint now) {
  static const AdminRouter local = [] {
    AdminRouter router;
    add_local_admin_routes(router);
    return router;
  }();
  // Fleet mode: the same routes, and the fleet's over those it answers.
  static const AdminRouter fleet = [] {
    AdminRouter router;
    add_local_admin_routes(router);
    add_fleet_admin_routes(router);
    return router;
  }();
  return (state.fleet ? fleet : local).route(state, request, now);
}

}  // namespace mongoguard::proxy
