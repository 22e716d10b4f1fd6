// The budget stage of a decision, as two pure steps with the session's I/O
// between them (the sans-I/O pattern):
//
//   1. plan_admission(policy, info, who, headroom) says which budgets the
//      command draws on and which statements must be measured (a count of
//      each multi statement's filter, capped at what is left plus one).
//   -- the session runs those counts on the client's own connection --
//   2. reservation_requests(plan, measured) turns the measurements into an
//      upper bound per budget; the ledger (BudgetBook, or Redis in fleet
//      mode) reserves them atomically, all or none; judge_budgets() names
//      the verdict from what the ledger answered.
//   -- the session forwards, or refuses, or holds --
//   3. settlement() says what each reservation becomes once the reply's
//      count is known; a reply without a readable count leaves it standing.
//
// Nothing here does I/O or reads a clock.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "policy/budget.h"
#include "policy/policy.h"

namespace mongoguard::policy {

// One count the session must run before the command may be judged.
struct Measurement {
  const Target* target = nullptr;
  // The statement to count; null counts the whole collection (drop, $out,
  // a TTL change and other whole-namespace operations).
  const MultiStatement* statement = nullptr;
  // Count at most this many documents: the most any budget measuring it
  // has left, plus one. A count that reaches it means "more than is left".
  std::int64_t cap = 1;
};

// One budget the command draws on.
struct PlannedCharge {
  Charge charge;                      // rule, target, key; `known` = single statements
  std::vector<std::size_t> measured;  // indices into AdmissionPlan::measurements
  std::int64_t unmeasured = 0;        // multi statements the rule does not measure
  bool unbounded = false;             // a size no count can bound (a whole database)
  // The rule's limit.ceiling: this charge is the namespace-wide budget all
  // of the rule's groups share (0: the rule's own budget).
  std::int64_t ceiling = 0;
};

struct AdmissionPlan {
  std::vector<PlannedCharge> charges;
  std::vector<Measurement> measurements;
  bool empty() const { return charges.empty(); }
};

// What the ledger has left under a budget key: nullopt = no limit now (an
// operator's free passage); negative = tripped, refused whatever the size,
// so nothing is measured. Read before measuring, only to size the caps.
using Headroom = std::function<std::optional<std::int64_t>(const Rule&, const std::string& key)>;

// Step 1.
AdmissionPlan plan_admission(const Policy& policy, const CommandInfo& info, const Identity& who,
                             const Headroom& headroom);

// What one count found.
struct Measured {
  std::optional<std::int64_t> count;  // nullopt: the count failed
  std::string error;                  // why it failed
};

// Step 2a: one request per budget key (charges on one key are summed), in
// the order of the plan's charges. `charge_request[i]` is the request of
// plan.charges[i].
struct RequestSet {
  std::vector<ReserveRequest> requests;
  std::vector<std::size_t> charge_request;
  // Charges whose measurement failed and whose rule says not to guess:
  // plan charge index -> the failure, for judge_budgets().
  std::vector<std::pair<std::size_t, std::string>> failed;
};
RequestSet reservation_requests(const Policy& policy, const AdmissionPlan& plan,
                                const std::vector<Measured>& measured);

// Step 2b: the strictest action the spent budgets (and failed measurements)
// call for, with the reason the client is told.
struct BudgetVerdict {
  Action action = Action::kAllow;  // what is done (dry-run rules only log)
  Action would = Action::kAllow;   // what the rules ask for
  const PlannedCharge* charge = nullptr;
  std::string reason;
  std::optional<BreakerState> state;  // the deciding breaker, as the ledger saw it
};
BudgetVerdict judge_budgets(const Policy& policy, const AdmissionPlan& plan, const RequestSet& set,
                            const ReserveResult& result);

// Step 3: the documents each reservation is settled at, given the reply's
// count for the whole command (nullopt: unreadable, so every reservation
// stands). Each becomes min(reserved, count); a count above everything
// reserved (documents that appeared between the count and the write) is
// added to each, so no budget is ever charged less than what happened.
std::vector<std::int64_t> settlement(const std::vector<Reservation>& reservations,
                                     std::optional<std::int64_t> affected);

// The reply counts of a write, as one number of documents affected: `n`
// (delete, update, findAndModify's lastErrorObject.n), or bulkWrite's
// nDeleted + nMatched + nUpserted. nullopt when the reply carries none of
// them (w:0, an error, a shape not known).
struct ReplyFacts;
std::optional<std::int64_t> documents_affected(const ReplyFacts& facts);

}  // namespace mongoguard::policy
