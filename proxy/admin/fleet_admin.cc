#include "proxy/admin/fleet_admin.h"

#include <spdlog/spdlog.h>

#include <map>

#include "proxy/admin/router.h"
#include "proxy/observe/json.h"
#include "proxy/observe/metric_registry.h"

namespace mongoguard::proxy {

using nlohmann::json;

namespace {

AdminResponse deferred(std::function<awaitable<AdminResponse>()> work) {
  AdminResponse out;
  out.deferred = std::move(work);
  return out;
}

// The same request answered by this proxy alone (its own holds and book).
AdminResponse answer_locally(AdminState& state, const AdminRequest& request,
                             policy::TimePoint now) {
  AdminState local = state;
  local.fleet = nullptr;
  return handle_admin_request(local, request, now);
}

awaitable<AdminResponse> list_holds(AdminState& state, policy::TimePoint now) {
  Fleet& fleet = *state.fleet;
  json holds = json::array();
  for (const auto& hold : state.holds.pending()) {
    json entry = hold_json(hold, now);
    entry["owner"] = fleet.name();
    holds.push_back(std::move(entry));
  }
  auto remote = co_await fleet.remote_holds();
  if (remote) {
    for (auto& entry : *remote) holds.push_back(std::move(entry));
  }
  co_return admin_json(200, json{{"holds", std::move(holds)},
                                 {"fleet",
                                  {{"name", fleet.name()},
                                   {"connected", remote.has_value()},
                                   {"problem", fleet.problem()}}}});
}

awaitable<AdminResponse> list_breakers(AdminState& state, AdminRequest request,
                                       policy::TimePoint now) {
  Fleet& fleet = *state.fleet;
  auto shared = co_await fleet.breakers();
  if (!shared) {
    // Redis is away: what this proxy enforces now is its own book.
    auto local = answer_locally(state, request, now);
    json body = json::parse(local.body, nullptr, false);
    if (body.is_object()) {
      body["fleet"] = {{"name", fleet.name()}, {"connected", false}, {"problem", fleet.problem()}};
      local.body = dump_json(body) + "\n";
    }
    co_return local;
  }
  std::map<std::string, std::size_t> pending;
  for (const auto& hold : state.holds.pending()) ++pending[hold.breaker];
  if (auto remote = co_await fleet.remote_holds()) {
    for (const auto& hold : *remote) ++pending[hold.value("breaker", std::string())];
  }
  json breakers = json::array();
  for (const auto& b : *shared) {
    json entry = breaker_json(b, now);
    auto it = pending.find(b.name);
    entry["pending_holds"] = it == pending.end() ? 0 : it->second;
    breakers.push_back(std::move(entry));
  }
  co_return admin_json(200, json{{"breakers", std::move(breakers)},
                                 {"fleet", {{"name", fleet.name()}, {"connected", true}}}});
}

// Applies a reset, resume or grant to the shared state in Redis: nullopt when Redis
// is unreachable, false when it has no such breaker. `details` describes a
// grant for the audit log.
awaitable<std::optional<bool>> apply_fleet_wide(Fleet& fleet, const std::string& name,
                                                const std::string& action, const json& body,
                                                std::string& details) {
  if (action == "reset") co_return co_await fleet.reset(name);
  if (action == "resume") co_return co_await fleet.resume(name);
  std::string problem;
  auto grant = admin_grant(body, problem);
  if (!grant) co_return std::nullopt;
  details = grant->details();
  co_return co_await fleet.grant(name, grant->documents, grant->duration);
}

// The local answer, told that the fleet's store did not take the action.
AdminResponse not_applied(Fleet& fleet, AdminResponse local, const std::string& name) {
  if (local.status == 404) {
    return admin_json(
        503, json{{"error", "no breaker named " + name +
                                " here, and the fleet store is unreachable: " + fleet.problem()}});
  }
  json out = json::parse(local.body, nullptr, false);
  if (out.is_object()) {
    out["fleet"] = {{"applied", false}, {"problem", fleet.problem()}};
    local.body = dump_json(out) + "\n";
  }
  return local;
}

// Reset and grant: applied to this proxy's book (which validates the request
// and audits it) and to the shared state in Redis.
awaitable<AdminResponse> breaker_action(AdminState& state, AdminRequest request, AdminOperator who,
                                        std::string name, std::string action,
                                        policy::TimePoint now) {
  Fleet& fleet = *state.fleet;
  auto local = answer_locally(state, request, now);
  if (local.status != 200 && local.status != 404) co_return local;
  AdminResponse refusal;
  auto action_of = admin_operator_action(request, &who, refusal);
  if (!action_of) co_return local;
  const auto& by = action_of->by;
  std::string details;
  const auto found = co_await apply_fleet_wide(fleet, name, action, action_of->body, details);
  if (!found) co_return not_applied(fleet, std::move(local), name);
  if (!*found && local.status == 404) co_return local;
  if (local.status == 404 && state.audit_operator_action) {
    state.audit_operator_action(action, by, name, details);
  }
  spdlog::info("admin: breaker {} {} fleet-wide by {}", name, action, by);
  json breaker = nullptr;
  if (auto all = co_await fleet.breakers()) {
    for (const auto& b : *all) {
      if (b.name == name) breaker = breaker_json(b, now);
    }
  }
  co_return admin_json(200, json{{"breaker", breaker}, {"by", by}, {"fleet", {{"applied", true}}}});
}

awaitable<AdminResponse> resolve_remote(AdminState& state, AdminRequest request, AdminOperator who,
                                        std::uint64_t id, bool approve) {
  AdminResponse refusal;
  auto action_of = admin_operator_action(request, &who, refusal);
  if (!action_of) co_return refusal;
  const auto& by = action_of->by;
  auto result =
      co_await state.fleet->resolve_remote(id, approve, by, action_of->reason, action_of->named);
  if (result.status == 200) {
    spdlog::info("admin: hold {} of proxy {} {} by {}", id, result.body.value("owner", ""),
                 result.body.value("outcome", ""), by);
  }
  co_return admin_json(result.status, result.body);
}

}  // namespace

void add_fleet_admin_routes(AdminRouter& router) {
  constexpr auto kToken = AdminAuth::kToken;
  router.add({"GET", "/api/holds", kToken, [](const AdminCall& c) {
                return deferred([&state = c.state, now = c.now] { return list_holds(state, now); });
              }});
  router.add({"POST", "/api/holds/*/approve|reject", kToken,
              [](const AdminCall& c) -> std::optional<AdminResponse> {
                auto id = admin_hold_id(c.segments[2]);
                // This proxy's own holds are resolved here as always.
                if (!id || c.state.holds.find(*id)) return std::nullopt;
                return deferred([&state = c.state, request = c.request, who = *c.who, id = *id,
                                 approve = c.segments[3] == "approve"] {
                  return resolve_remote(state, request, who, id, approve);
                });
              },
              config::OperatorRole::kApprover});
  router.add({"GET", "/api/breakers", kToken, [](const AdminCall& c) {
                return deferred([&state = c.state, request = c.request, now = c.now] {
                  return list_breakers(state, request, now);
                });
              }});
  router.add({"POST", "/api/breakers/*/reset|grant|resume", kToken, [](const AdminCall& c) {
                return deferred([&state = c.state, request = c.request, who = *c.who,
                                 name = c.segments[2], action = c.segments[3], now = c.now] {
                  return breaker_action(state, request, who, name, action, now);
                });
              }});
}

AdminResponse fleet_readiness(const Fleet& fleet) {
  if (fleet.connected()) return AdminResponse{200, "text/plain; charset=utf-8", "ready\n", {}};
  return AdminResponse{
      200,
      "text/plain; charset=utf-8",
      "ready, degraded: " + fleet.problem() + "; enforcing this proxy's own budgets\n",
      {}};
}

std::string fleet_metrics(const Fleet& fleet) {
  std::string out;
  PrometheusWriter writer(out);
  writer.single(metric::kFleetConnected, fleet.connected() ? 1 : 0);
  writer.single(metric::kFleetLocalAdmits, fleet.fallbacks());
  return out;
}

}  // namespace mongoguard::proxy
