#include "proxy/admin/fleet_admin.h"

#include <spdlog/spdlog.h>

#include <charconv>
#include <cmath>
#include <map>

#include "proxy/observe/json.h"

namespace mongoguard::proxy {

using nlohmann::json;

namespace {

AdminResponse json_reply(unsigned status, const json& body) {
  return AdminResponse{status, "application/json", dump_json(body) + "\n", {}};
}

AdminResponse deferred(std::function<asio::awaitable<AdminResponse>()> work) {
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

asio::awaitable<AdminResponse> list_holds(AdminState& state, policy::TimePoint now) {
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
  co_return json_reply(200, json{{"holds", std::move(holds)},
                                 {"fleet",
                                  {{"name", fleet.name()},
                                   {"connected", remote.has_value()},
                                   {"problem", fleet.problem()}}}});
}

asio::awaitable<AdminResponse> list_breakers(AdminState& state, AdminRequest request,
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
  co_return json_reply(200, json{{"breakers", std::move(breakers)},
                                 {"fleet", {{"name", fleet.name()}, {"connected", true}}}});
}

// Reset and grant: applied to this proxy's book (which validates the request
// and audits it) and to the shared state in Redis.
asio::awaitable<AdminResponse> breaker_action(AdminState& state, AdminRequest request,
                                              std::string name, std::string action,
                                              policy::TimePoint now) {
  Fleet& fleet = *state.fleet;
  auto local = answer_locally(state, request, now);
  if (local.status != 200 && local.status != 404) co_return local;
  std::string problem;
  auto body = admin_body_object(request, problem);
  if (!body) co_return local;
  const auto by = admin_operator_name(request, *body);
  std::optional<bool> found;
  std::string details;
  if (action == "reset") {
    found = co_await fleet.reset(name);
  } else {
    std::int64_t documents = 0;
    std::optional<std::chrono::milliseconds> duration;
    if (auto it = body->find("documents"); it != body->end() && it->is_number_integer()) {
      documents = it->get<std::int64_t>();
      details = std::to_string(documents) + " document(s)";
    }
    if (auto it = body->find("minutes"); it != body->end() && it->is_number()) {
      duration = std::chrono::milliseconds(std::llround(it->get<double>() * 60'000.0));
      details += (details.empty() ? "" : " and ") + std::string("free passage for ") +
                 human_duration(*duration);
    }
    found = co_await fleet.grant(name, documents, duration);
  }
  if (!found) {
    if (local.status == 404) {
      co_return json_reply(
          503,
          json{{"error", "no breaker named " + name +
                             " here, and the fleet store is unreachable: " + fleet.problem()}});
    }
    json out = json::parse(local.body, nullptr, false);
    if (out.is_object()) {
      out["fleet"] = {{"applied", false}, {"problem", fleet.problem()}};
      local.body = dump_json(out) + "\n";
    }
    co_return local;
  }
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
  co_return json_reply(200, json{{"breaker", breaker}, {"by", by}, {"fleet", {{"applied", true}}}});
}

asio::awaitable<AdminResponse> resolve_remote(AdminState& state, AdminRequest request,
                                              std::uint64_t id, bool approve) {
  std::string problem;
  auto body = admin_body_object(request, problem);
  if (!body) co_return json_reply(400, json{{"error", problem}});
  const auto by = admin_operator_name(request, *body);
  if (by.empty()) {
    co_return json_reply(
        400,
        json{{"error", "say who you are: {\"by\": \"NAME\"} or an X-Mongoguard-Operator header"}});
  }
  auto result = co_await state.fleet->resolve_remote(id, approve, by);
  if (result.status == 200) {
    spdlog::info("admin: hold {} of proxy {} {} by {}", id, result.body.value("owner", ""),
                 result.body.value("outcome", ""), by);
  }
  co_return json_reply(result.status, result.body);
}

std::optional<std::uint64_t> parse_id(const std::string& text) {
  std::uint64_t id = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return id;
}

}  // namespace

std::optional<AdminResponse> fleet_admin_route(AdminState& state, const AdminRequest& request,
                                               const std::vector<std::string>& s,
                                               policy::TimePoint now) {
  const bool get = request.method == "GET" || request.method == "HEAD";
  const bool post = request.method == "POST";
  if (s.size() == 2 && s[1] == "holds" && get) {
    return deferred([&state, now] { return list_holds(state, now); });
  }
  if (s.size() == 4 && s[1] == "holds" && (s[3] == "approve" || s[3] == "reject") && post) {
    auto id = parse_id(s[2]);
    // This proxy's own holds are resolved here as always.
    if (!id || state.holds.find(*id)) return std::nullopt;
    return deferred([&state, request, id = *id, approve = s[3] == "approve"] {
      return resolve_remote(state, request, id, approve);
    });
  }
  if (s.size() == 2 && s[1] == "breakers" && get) {
    return deferred([&state, request, now] { return list_breakers(state, request, now); });
  }
  if (s.size() == 4 && s[1] == "breakers" && (s[3] == "reset" || s[3] == "grant") && post) {
    return deferred([&state, request, name = s[2], action = s[3], now] {
      return breaker_action(state, request, name, action, now);
    });
  }
  return std::nullopt;
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
  return "# HELP mongoguard_fleet_connected 1 when budgets are shared through Redis, 0 when this "
         "proxy enforces its own (degraded).\n"
         "# TYPE mongoguard_fleet_connected gauge\n"
         "mongoguard_fleet_connected " +
         std::string(fleet.connected() ? "1" : "0") +
         "\n"
         "# HELP mongoguard_fleet_local_admits_total Budget checks decided by this proxy's own "
         "windows because Redis was unreachable.\n"
         "# TYPE mongoguard_fleet_local_admits_total counter\n"
         "mongoguard_fleet_local_admits_total " +
         std::to_string(fleet.fallbacks()) + "\n";
}

}  // namespace mongoguard::proxy
