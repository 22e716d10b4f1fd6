// Everything the admin surfaces (HTTP API, web page) act on. Owned by the
// Server; the admin code holds references only.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "config/config.h"
#include "policy/budget.h"
#include "policy/holds.h"
#include "policy/policy.h"
#include "proxy/admin/status.h"
#include "proxy/net/asio.h"
#include "proxy/observe/decision_log.h"
#include "proxy/observe/metrics.h"
#include "proxy/observe/notifier.h"
#include "proxy/observe/rate_history.h"

namespace mongoguard::journal {
class Store;
}

namespace mongoguard::proxy {

class AuthFailures;
class Fleet;

// Who a request's bearer token belongs to.
struct AdminOperator {
  std::string name;  // "" for the shared admin.token_file: the request names itself ("by")
  config::OperatorRole role = config::OperatorRole::kViewer;
  std::string token;
  bool shared = false;  // the one admin.token_file, not a named operator's own
};

struct AdminState {
  Metrics& metrics;
  policy::HoldRegistry& holds;
  policy::BudgetBook& budgets;
  DecisionLog& decisions;
  Notifier& notifier;
  // Reloads the configuration file; returns false with the errors (one per
  // line, FILE:LINE:COL: message) when the new file was refused.
  std::function<bool(std::string& errors)> reload;
  // Records an operator action in the audit log and the decision log:
  // action ("approve", "reject", "grant", "reset", "approve-all", ...), the
  // operator's name, the target (hold id or breaker name) and details.
  std::function<void(const std::string& action, const std::string& by, const std::string& target,
                     const std::string& details)>
      audit_operator_action;
  // The shared bearer token (admin.token_file), an admin whose requests
  // name themselves; when it is empty and no operator has a token, the API
  // refuses every request but /healthz and /readyz (no remote control).
  std::function<std::string()> token;
  // True once the listener is accepting (for /readyz).
  std::function<bool()> ready;
  // Why the upstream makes the proxy not ready (too many failed connects in
  // a row), or nullopt; unset = never (for /readyz).
  std::function<std::optional<std::string>()> upstream_unready;
  // Set in fleet mode: holds and breakers are listed and acted on fleet-wide.
  Fleet* fleet = nullptr;
  // Set when journal.path is: the before-images of what budgets let through.
  mongoguard::journal::Store* journal = nullptr;
  // The proxy's own client address (the first listener), host:port: where
  // `ctl restore` writes unless told --to.
  std::string listen;
  // Set with journal.restore_uri: POST /api/journal/restore writes there, on
  // its own worker thread (a restore blocks; the admin thread never does).
  std::string restore_uri;
  asio::thread_pool* restore_worker = nullptr;
  bool restoring = false;  // one restore at a time; touched on the admin thread only
  // The named operators (admin.operators) with their tokens, read fresh.
  std::function<std::vector<AdminOperator>()> operators;
  // For GET /api/rates and /api/status (status_api.cc): the running policy
  // (its budgets), documents per minute per namespace, and the
  // configuration's file, load and last reload.
  std::function<std::shared_ptr<const policy::Policy>()> policy;
  RateHistory* rates = nullptr;
  const AdminStatus* status = nullptr;
  // Refused tokens, counted and slowed per address; unset = neither.
  AuthFailures* auth_failures = nullptr;
  // Why the audit log is not being written now, or "" when it is. While it
  // is not, every operator action is refused (never performed unaudited).
  std::function<std::string()> audit_problem;
};

}  // namespace mongoguard::proxy
