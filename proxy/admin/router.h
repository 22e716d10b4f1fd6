// The admin endpoint's one route table: each route is a method, a path
// pattern, whether it needs the bearer token, and its handler. The local
// plane's routes (http.cc) and, in fleet mode, the fleet's (fleet_admin.cc)
// register into it; handle_admin_request looks the request up here.
//
// A pattern is the path's segments after decoding: a literal ("holds"),
// "*" (any one segment) or alternatives ("approve|reject"). Routes added
// later come first, so the fleet's take over the local ones they share a
// pattern with; a handler may decline (nullopt) to let the next one answer.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/admin/http.h"

namespace mongoguard::proxy {

// What a handler is given: the request, its decoded path and its query.
struct AdminCall {
  AdminState& state;
  const AdminRequest& request;
  const std::vector<std::string>& segments;
  std::string_view query;
  policy::TimePoint now;
  const AdminOperator* who = nullptr;  // set on every route that needs a token
};

enum class AdminAuth : bool { kOpen, kToken };

struct AdminRoute {
  std::string method;   // "GET" (also answers HEAD) or "POST"
  std::string pattern;  // "/api/holds/*/approve|reject"
  AdminAuth auth = AdminAuth::kToken;
  std::function<std::optional<AdminResponse>(const AdminCall&)> handler;
  // The least role that may call it; unset: viewer for GET, admin for POST.
  std::optional<config::OperatorRole> role = std::nullopt;
};

class AdminRouter {
 public:
  void add(AdminRoute route);
  // Routes, authenticates and answers: 400 on a bad path, 401 without the
  // token where one is needed (also for paths no route knows), 405 when the
  // path is known but not the method, 404 when no route answers.
  AdminResponse route(AdminState& state, const AdminRequest& request, policy::TimePoint now) const;

 private:
  struct Entry {
    AdminRoute route;
    std::vector<std::string> pattern;  // the pattern's segments
  };
  std::vector<const Entry*> matching(const std::vector<std::string>& segments) const;

  std::vector<Entry> entries_;  // newest first
};

// The answers every route shares.
AdminResponse admin_json(unsigned status, const nlohmann::json& body);
AdminResponse admin_error(unsigned status, const std::string& message);
AdminResponse admin_text(unsigned status, std::string body);
// The operator whose token the request carries; nullopt with the 401 in
// `refusal` when it carries none that is configured. A wrong or missing
// token is counted as a failed login and, from an address that keeps
// failing, `refusal.delay` says how late to answer.
std::optional<AdminOperator> authenticate(AdminState& state, const AdminRequest& request,
                                          policy::TimePoint now, AdminResponse& refusal);

// The local plane's routes (http.cc) and the fleet's (fleet_admin.cc).
void add_local_admin_routes(AdminRouter& router);
void add_fleet_admin_routes(AdminRouter& router);
// The journal's (journal_api.cc): listing, and recording a restore.
void add_journal_admin_routes(AdminRouter& router);
// POST /api/journal/restore (journal_restore_api.cc), with journal.restore_uri.
void add_journal_restore_route(AdminRouter& router);
// The page's status (status_api.cc): rates, status, decisions.
void add_status_admin_routes(AdminRouter& router);

}  // namespace mongoguard::proxy
