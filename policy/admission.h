// The budget stage of a decision, as two pure steps with the session's I/O
// between them (the sans-I/O pattern):
//
//   0. sizes_needed(policy, info, who) names the collections whose
//      document count a relative window (percent) is a share of.
//   -- the session looks those sizes up --
//   1. plan_admission(policy, info, who, headroom, sizes) says which
//      budgets the command draws on (one per window of each rule's limit)
//      and which statements must be measured (a count of each multi
//      statement's filter, capped at what is left plus one).
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

// One budget the command draws on: one window of a rule's limit.
struct PlannedCharge {
  Charge charge;           // rule, target, key (window_key()); `known` = single statements
  std::size_t window = 0;  // index into the rule's limit.windows
  std::vector<std::size_t> measured;  // indices into AdmissionPlan::measurements
  std::int64_t unmeasured = 0;        // multi statements the rule does not measure
  bool unbounded = false;             // a size no count can bound (a whole database)
  // The window's documents, resolved: a relative window's share of the
  // collection; nullopt when that collection's size is not known.
  std::optional<std::int64_t> limit;
  // The window's ceiling: this charge is the namespace-wide budget all of
  // the rule's groups share (`limit` is the ceiling).
  bool ceiling = false;
};

struct AdmissionPlan {
  std::vector<PlannedCharge> charges;
  std::vector<Measurement> measurements;
  bool empty() const { return charges.empty(); }
};

// What the ledger has left under a budget key whose window allows `limit`
// documents: nullopt = no limit now (an operator's free passage); negative
// = tripped, refused whatever the size, so nothing is measured. Read before
// measuring, only to size the caps.
using Headroom =
    std::function<std::optional<std::int64_t>(const std::string& key, std::int64_t limit)>;

// The document count of a collection ("db.coll"), as last measured;
// nullopt when not known.
using CollectionSizes = std::function<std::optional<std::int64_t>(const std::string& ns)>;

// Step 0: the namespaces of the command's charges whose rule has a
// relative (percent) window, each once; whole databases are never listed
// (no count can size them). Empty for most commands.
std::vector<std::string> sizes_needed(const Policy& policy, const CommandInfo& info,
                                      const Identity& who);
// The same from the command's budget_charges(), worked out once by a caller
// that also plans with them.
std::vector<std::string> sizes_needed(const std::vector<Charge>& charges);

// Step 1. A relative window whose collection size `sizes` does not know
// (or no `sizes` at all) is treated as a failed measurement: its rule's
// on_preflight_error decides, and the window is not counted.
AdmissionPlan plan_admission(const Policy& policy, const CommandInfo& info, const Identity& who,
                             const Headroom& headroom, const CollectionSizes& sizes = {});
// The same from the command's budget_charges().
AdmissionPlan plan_admission(const std::vector<Charge>& charges, const Headroom& headroom,
                             const CollectionSizes& sizes = {});

// What one count found.
struct Measured {
  std::optional<std::int64_t> count;  // nullopt: the count failed
  std::string error;                  // why it failed
};

// Step 2a: one request per budget key (charges on one key are summed), in
// the order of the plan's charges. `charge_request[i]` is the request of
// plan.charges[i] (kNoRequest for a window of unknown size: not counted).
struct RequestSet {
  static constexpr std::size_t kNoRequest = static_cast<std::size_t>(-1);
  std::vector<ReserveRequest> requests;
  std::vector<std::size_t> charge_request;
  // Charges whose size (or whose window's size) could not be known and
  // whose rule says not to guess: plan charge index -> the reason, for
  // judge_budgets().
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
// stands). Each becomes min(reserved, count); a count above what the
// command reserved (documents that appeared between the count and the
// write) is added to each, so no budget is ever charged less than what
// happened. What the command reserved is, per namespace, its largest
// reservation there (windows and ceilings count the same documents again),
// summed over namespaces.
std::vector<std::int64_t> settlement(const std::vector<Reservation>& reservations,
                                     std::optional<std::int64_t> affected);

// The reply counts of a write, as one number of documents affected: `n`
// (delete, update, findAndModify's lastErrorObject.n), or bulkWrite's
// nDeleted + nMatched + nUpserted. nullopt when the reply carries none of
// them (w:0, an error, a shape not known).
struct ReplyFacts;
std::optional<std::int64_t> documents_affected(const ReplyFacts& facts);

}  // namespace mongoguard::policy
