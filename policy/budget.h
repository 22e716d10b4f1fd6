// Damage budgets: how many documents a rule lets destructive operations
// affect per time window, and the breaker that trips when a budget is spent.
// A budget is a hard ceiling: each operation reserves its upper bound before
// it is forwarded, and the reply settles the reservation with what the
// server reported (a reply without a count leaves it standing).
//
// Shared by every worker thread (one BudgetBook per process); each call
// takes the book's lock briefly. Time is always passed in, never read.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "policy/duration.h"  // how a window's length is printed
#include "policy/rule.h"

namespace mongoguard::policy {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;
using std::chrono::milliseconds;

// Documents counted over the last `per`, exactly: one entry per counted
// operation (or reservation), dropped once older than the window.
class SlidingWindow {
 public:
  // Returns the entry's id (increasing), by which settle() finds it.
  std::uint64_t add(TimePoint now, std::int64_t documents);
  // Changes an entry still in the window to `documents`; false when it has
  // left the window already (or was never there).
  bool adjust(std::uint64_t id, std::int64_t documents);
  std::int64_t total(TimePoint now, milliseconds per);
  // When the oldest counted entry leaves the window; nullopt when empty.
  std::optional<TimePoint> next_expiry(milliseconds per) const;
  // When the window will be empty; nullopt when it is.
  std::optional<TimePoint> drained_at(milliseconds per) const;
  // When the oldest entry still counted was added; nullopt when empty.
  std::optional<TimePoint> oldest() const;
  void clear();

 private:
  struct Entry {
    TimePoint at;
    std::int64_t documents;
    std::uint64_t id;
  };
  void expire(TimePoint now, milliseconds per);
  std::deque<Entry> entries_;
  std::int64_t sum_ = 0;
  std::uint64_t next_id_ = 1;
};

// The key a rule's budget is kept under: the rule, the namespace, and the
// identity fields the rule groups by. Also the breaker's name in the API.
// e.g. "families-delete-budget:app.families" or "...:app.families:app=shell".
std::string budget_key(const Rule& rule, const Target& target, const Identity& who);

// The breaker of one window of a budget: `key` itself for a limit of one
// window (so a single window keeps the name it always had), else `key`
// and the window, e.g. "families-delete-budget:app.families@1h".
std::string window_key(const std::string& key, const Limit& limit, std::size_t window);

// One breaker as operators see it.
struct BreakerState {
  std::string name;  // budget_key
  std::string rule;
  std::string ns;
  std::int64_t used = 0;   // documents in the window now
  std::int64_t limit = 0;  // the window's documents (a relative one's, as last resolved)
  milliseconds per{0};
  bool tripped = false;
  bool auto_resume = false;  // closes by itself once the window drains
  std::optional<TimePoint> tripped_at;
  std::optional<TimePoint> drains_at;        // when the window will be empty
  std::optional<TimePoint> counting_since;   // the oldest entry counted now (local book only)
  std::int64_t allowance_documents = 0;      // granted, not yet used
  std::optional<TimePoint> allowance_until;  // granted free passage until
};

// What the ledger says about one budget a command draws on.
enum class Admission : std::uint8_t {
  kPass,       // within budget (or covered by an operator's allowance)
  kTripped,    // the breaker was already tripped
  kWouldTrip,  // nothing is left and this operation would take more: trips it now
  kTooLarge,   // this operation alone exceeds what is left; the breaker stays closed
};

// One budget key's share of a command, as an upper bound on the documents
// it may affect.
struct ReserveRequest {
  const Rule* rule = nullptr;
  std::string key;  // window_key(): one window of the rule's limit
  std::string ns;
  // The window's size and length, resolved (a relative window's percent
  // of the collection, or the window's ceiling across groups). The ledger
  // keeps the breaker at these numbers, whatever the rule says.
  std::int64_t limit = 0;
  milliseconds per{0};
  std::size_t window = 0;        // index into rule->limit->windows, for reasons
  bool ceiling = false;          // the window's namespace-wide ceiling across groups
  std::int64_t documents = 0;    // the bound known (single statements, measured counts)
  bool everything_left = false;  // plus statements of unknown size: charged all that is left
  bool unbounded = false;        // no count bounds it: more than any budget has
  std::int64_t at_least = 0;     // unbounded because a capped count reached this many
  bool enforced = true;          // false for a dry-run rule: counted, never refused
  bool auto_resume = false;      // the rule's limit.auto_resume
};

// What a reservation holds until the reply settles it.
struct Reservation {
  std::string key;
  std::string ns;                   // the namespace the reserved documents are in
  std::uint64_t entry = 0;          // the window entry (0: nothing was counted)
  std::int64_t documents = 0;       // reserved in all
  std::int64_t from_allowance = 0;  // of those, drawn from an operator's allowance
  bool shared = false;              // fleet mode: kept in Redis
  std::int64_t shared_score = 0;    // fleet mode: the entry's time in Redis (ms)
};

struct ReserveResult {
  bool reserved = false;                            // every request was reserved
  std::vector<Admission> admissions;                // per request
  std::vector<std::optional<BreakerState>> states;  // per request that did not pass
  std::vector<bool> tripped_now;                    // per request: this call tripped it
  std::vector<Reservation> reservations;            // per request, when reserved
  bool shared = false;                              // decided by the fleet's shared ledger
};

// The most one grant may add (the admin API refuses more), and the most a
// breaker's allowance can hold however many grants add to it: far beyond any
// real collection, far below where sums of counts could overflow.
inline constexpr std::int64_t kMaxGrantDocuments = 1'000'000'000;
inline constexpr std::int64_t kMaxAllowanceDocuments = 1'000'000'000'000;

class BudgetBook {
 public:
  // Before forwarding, atomically for all of `requests`: when every
  // enforced request fits what is left, each is reserved (counted in its
  // window now, concurrent callers see it) and `reserved` is true; when one
  // does not, nothing is reserved. `force` reserves all regardless (an
  // approved hold). kWouldTrip trips the breaker. A tripped breaker stays
  // tripped until an operator resumes, resets or grants it, or (with
  // limit.auto_resume) until its window is empty.
  ReserveResult reserve(const std::vector<ReserveRequest>& requests, TimePoint now,
                        bool force = false);

  // After the reply: the reservation becomes `documents`. Returns true when
  // this tripped the breaker (the window reached its limit).
  bool settle(const Reservation& reservation, std::int64_t documents, TimePoint now);

  // What is left under `key` now (limit - used + allowance); `limit` for a
  // breaker not seen yet; nullopt while an operator's free passage lasts,
  // -1 while the breaker is tripped. Sizes the measurement caps only.
  std::optional<std::int64_t> headroom(const std::string& key, std::int64_t limit, TimePoint now);

  // Counts `documents` at once under the request's key, limit and per,
  // outside any reservation (counts replayed from elsewhere, fleet mode's
  // mirror of the shared ledger). Returns true when this tripped it.
  bool record(const ReserveRequest& request, std::int64_t documents, TimePoint now);
  // The same for the first window of `rule`'s limit (operator tests).
  bool record(const Rule& rule, const std::string& key, const std::string& ns,
              std::int64_t documents, TimePoint now);

  // Operator actions; false when no breaker has that name.
  bool reset(const std::string& key);
  // Closes a tripped breaker, keeping what its window counted: the next
  // operation that does not fit trips it again. False when no breaker has
  // that name; `was_tripped` says whether it was tripped.
  bool resume(const std::string& key, bool* was_tripped = nullptr);
  // Lets `documents` more through, and/or everything until now + `duration`,
  // without holding. A grant also closes a tripped breaker. The allowance
  // saturates at kMaxAllowanceDocuments (it never wraps).
  bool grant(const std::string& key, std::int64_t documents, std::optional<milliseconds> duration,
             TimePoint now);

  std::vector<BreakerState> breakers(TimePoint now);
  std::optional<BreakerState> breaker(const std::string& key, TimePoint now);

 private:
  struct Breaker {
    std::string rule;
    std::string ns;
    std::int64_t limit = 0;
    milliseconds per{0};
    bool auto_resume = false;
    SlidingWindow window;
    std::optional<TimePoint> tripped_at;
    std::int64_t allowance_documents = 0;
    std::optional<TimePoint> allowance_until;
  };
  Breaker& get(const ReserveRequest& r);
  Admission judge(Breaker& b, const ReserveRequest& r, TimePoint now, std::int64_t& amount);
  Reservation commit(Breaker& b, const std::string& key, std::int64_t amount, TimePoint now);
  bool trip_if_spent(Breaker& b, TimePoint now);
  void refresh(Breaker& b, TimePoint now);
  BreakerState describe(const std::string& key, Breaker& b, TimePoint now);

  std::mutex mutex_;
  std::map<std::string, Breaker> breakers_;
};

}  // namespace mongoguard::policy
