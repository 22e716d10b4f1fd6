#include "proxy/budget_ledger.h"

#include "proxy/fleet/fleet.h"

namespace mongoguard::proxy {

std::optional<std::int64_t> LocalLedger::headroom(const std::string& key, std::int64_t limit,
                                                  policy::TimePoint now) {
  return book_.headroom(key, limit, now);
}

awaitable<policy::ReserveResult> LocalLedger::reserve(
    const std::vector<policy::ReserveRequest>& requests, bool force) {
  co_return book_.reserve(requests, policy::Clock::now(), force);
}

awaitable<bool> LocalLedger::settle(const policy::ReserveRequest&,
                                    const policy::Reservation& reservation, std::int64_t documents,
                                    policy::TimePoint now) {
  co_return book_.settle(reservation, documents, now);
}

std::optional<policy::BreakerState> LocalLedger::breaker(const std::string& key,
                                                         policy::TimePoint now) {
  return book_.breaker(key, now);
}

std::optional<std::int64_t> FleetLedger::headroom(const std::string&, std::int64_t limit,
                                                  policy::TimePoint) {
  return limit;
}

awaitable<policy::ReserveResult> FleetLedger::reserve(
    const std::vector<policy::ReserveRequest>& requests, bool force) {
  auto result = co_await fleet_.reserve(requests, force);
  co_return result;
}

awaitable<bool> FleetLedger::settle(const policy::ReserveRequest& request,
                                    const policy::Reservation& reservation, std::int64_t documents,
                                    policy::TimePoint now) {
  if (!reservation.shared) co_return book_.settle(reservation, documents, now);
  const bool tripped = co_await fleet_.settle(request, reservation, documents);
  co_return tripped;
}

void FleetLedger::hold_added(const policy::HoldInfo& hold, std::chrono::milliseconds timeout) {
  fleet_.hold_added(hold, timeout);
}

void FleetLedger::hold_removed(std::uint64_t id) { fleet_.hold_removed(id); }

}  // namespace mongoguard::proxy
