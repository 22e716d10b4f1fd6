// Where a session's budgets are reserved and settled: this proxy's own
// BudgetBook, or the windows a fleet shares through Redis. The data path
// sees one interface and so needs no branch on fleet mode.
//
// Declared in the data path, with both implementations: the fleet library
// sits below it (mg_proxy → mg_fleet) and never includes proxy/*.h, so the
// fleet's ledger here adapts `Fleet` rather than `Fleet` inheriting from an
// interface it cannot see. Only destructive commands reach a ledger: the
// hot path makes no virtual call.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "policy/budget.h"
#include "policy/holds.h"
#include "proxy/net/asio.h"

namespace mongoguard::proxy {

class Fleet;

class BudgetLedger {
 public:
  virtual ~BudgetLedger() = default;

  // What is left of `key`'s window (`limit` its size), to size measurement
  // caps only; see BudgetBook::headroom.
  virtual std::optional<std::int64_t> headroom(const std::string& key, std::int64_t limit,
                                               policy::TimePoint now) = 0;
  // Reserves every request or none (`force`: all regardless).
  virtual awaitable<policy::ReserveResult> reserve(
      const std::vector<policy::ReserveRequest>& requests, bool force) = 0;
  // The reservation becomes the reply's count; true when that tripped the
  // breaker (reported by the caller).
  virtual awaitable<bool> settle(const policy::ReserveRequest& request,
                                 const policy::Reservation& reservation, std::int64_t documents,
                                 policy::TimePoint now) = 0;
  // The breaker as this proxy knows it.
  virtual std::optional<policy::BreakerState> breaker(const std::string& key,
                                                      policy::TimePoint now) = 0;
  // A hold this proxy's session parks on, and its end.
  virtual void hold_added(const policy::HoldInfo& hold, std::chrono::milliseconds timeout) = 0;
  virtual void hold_removed(std::uint64_t id) = 0;
};

// This proxy's own windows.
class LocalLedger : public BudgetLedger {
 public:
  explicit LocalLedger(policy::BudgetBook& book) : book_(book) {}

  std::optional<std::int64_t> headroom(const std::string& key, std::int64_t limit,
                                       policy::TimePoint now) override;
  awaitable<policy::ReserveResult> reserve(const std::vector<policy::ReserveRequest>& requests,
                                           bool force) override;
  awaitable<bool> settle(const policy::ReserveRequest& request,
                         const policy::Reservation& reservation, std::int64_t documents,
                         policy::TimePoint now) override;
  std::optional<policy::BreakerState> breaker(const std::string& key,
                                              policy::TimePoint now) override;
  void hold_added(const policy::HoldInfo&, std::chrono::milliseconds) override {}
  void hold_removed(std::uint64_t) override {}

 protected:
  policy::BudgetBook& book_;
};

// Fleet mode: shared windows in Redis, or this proxy's own book (which the
// fleet keeps up, and which answers for breakers) while Redis is away.
class FleetLedger final : public LocalLedger {
 public:
  FleetLedger(Fleet& fleet, policy::BudgetBook& book) : LocalLedger(book), fleet_(fleet) {}

  // The shared window is read when reserving: caps are sized from the
  // window alone.
  std::optional<std::int64_t> headroom(const std::string& key, std::int64_t limit,
                                       policy::TimePoint now) override;
  awaitable<policy::ReserveResult> reserve(const std::vector<policy::ReserveRequest>& requests,
                                           bool force) override;
  // A reservation made in this proxy's book while Redis was away is
  // settled there.
  awaitable<bool> settle(const policy::ReserveRequest& request,
                         const policy::Reservation& reservation, std::int64_t documents,
                         policy::TimePoint now) override;
  void hold_added(const policy::HoldInfo& hold, std::chrono::milliseconds timeout) override;
  void hold_removed(std::uint64_t id) override;

 private:
  Fleet& fleet_;
};

}  // namespace mongoguard::proxy
