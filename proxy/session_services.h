// What every session shares: its listener's settings and the process-wide
// state owned by the Server.
#pragma once

#include <chrono>
#include <functional>
#include <memory>

#include "policy/holds.h"
#include "proxy/budget_ledger.h"
#include "proxy/collection_sizes.h"
#include "proxy/journal/store.h"
#include "proxy/net/endpoint.h"
#include "proxy/observe/audit.h"
#include "proxy/observe/metrics.h"
#include "proxy/observe/notifier.h"
#include "proxy/observe/rate_history.h"
#include "proxy/policy_store.h"
#include "proxy/topology.h"
#include "proxy/upstream_health.h"

namespace mongoguard::proxy {

// Shared by every session; immutable while the server runs.
struct SessionSettings {
  HostPort upstream;
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds preflight_timeout{10'000};
  // Set for replica-set members: hello replies are rewritten with it.
  std::shared_ptr<const TopologyMap> topology;
};

// The process-wide state sessions share; owned by the Server.
struct SessionServices {
  Metrics& metrics;
  const PolicyStore& policies;
  AuditLog& audit;
  policy::HoldRegistry& holds;
  // This proxy's own windows, or in fleet mode the shared ones.
  BudgetLedger& budgets;
  Notifier& notifier;
  // Collection counts for budgets whose windows are a percent of them.
  CollectionSizes& collection_sizes;
  // Called (on the session's thread) once a session is gone; shutdown
  // waits on it. Set before any session starts.
  std::function<void()> session_ended;
  // The journal (journal.path set), or null.
  journal::Store* journal = nullptr;
  // Documents per minute per namespace a rule matched (the page's chart), or null.
  RateHistory* rates = nullptr;
  // Told of every upstream connect (for /readyz and the rate-limited
  // warning); null in tests that do not care.
  UpstreamHealth* upstream_health = nullptr;
};

}  // namespace mongoguard::proxy
