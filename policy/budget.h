// Damage budgets: how many documents a rule lets destructive operations
// affect per time window, counted from what the server reported, and the
// breaker that trips when a budget is spent.
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

#include "policy/rule.h"

namespace mongoguard::policy {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;
using std::chrono::milliseconds;

// Documents counted over the last `per`, exactly: one entry per counted
// operation, dropped once older than the window.
class SlidingWindow {
 public:
  void add(TimePoint now, std::int64_t documents);
  std::int64_t total(TimePoint now, milliseconds per);
  // When the oldest counted entry leaves the window; nullopt when empty.
  std::optional<TimePoint> next_expiry(milliseconds per) const;
  // When the window will be empty; nullopt when it is.
  std::optional<TimePoint> drained_at(milliseconds per) const;
  void clear();

 private:
  void expire(TimePoint now, milliseconds per);
  std::deque<std::pair<TimePoint, std::int64_t>> entries_;
  std::int64_t sum_ = 0;
};

// The key a rule's budget is kept under: the rule, the namespace, and the
// identity fields the rule groups by. Also the breaker's name in the API.
// e.g. "families-delete-budget:app.families" or "...:app.families:app=shell".
std::string budget_key(const Rule& rule, const Target& target, const Identity& who);

// One breaker as operators see it.
struct BreakerState {
  std::string name;  // budget_key
  std::string rule;
  std::string ns;
  std::int64_t used = 0;   // documents in the window now
  std::int64_t limit = 0;  // Limit::documents
  milliseconds per{0};
  bool tripped = false;
  std::optional<TimePoint> tripped_at;
  std::optional<TimePoint> drains_at;        // when the window will be empty
  std::int64_t allowance_documents = 0;      // granted, not yet used
  std::optional<TimePoint> allowance_until;  // granted free passage until
};

// What admit() says about one charge.
enum class Admission : std::uint8_t {
  kPass,       // within budget (or covered by an operator's allowance)
  kTripped,    // the breaker was already tripped
  kWouldTrip,  // nothing is left and this operation would take more: trips it now
  kTooLarge,   // this operation alone exceeds what is left; the breaker stays closed
};

class BudgetBook {
 public:
  // Before forwarding: may `documents` (the part of the size known before
  // forwarding; 0 when unknown) go under this budget? kWouldTrip trips the
  // breaker. A tripped breaker resets itself once its window is empty.
  Admission admit(const Rule& rule, const std::string& key, const std::string& ns,
                  std::int64_t documents, TimePoint now);

  // After the reply (or an approved forward): count what happened. Returns
  // true when this count tripped the breaker.
  bool record(const Rule& rule, const std::string& key, const std::string& ns,
              std::int64_t documents, TimePoint now);

  // Operator actions; false when no breaker has that name.
  bool reset(const std::string& key);
  // Lets `documents` more through, and/or everything until now + `duration`,
  // without holding. A grant also closes a tripped breaker.
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
    SlidingWindow window;
    std::optional<TimePoint> tripped_at;
    std::int64_t allowance_documents = 0;
    std::optional<TimePoint> allowance_until;
  };
  Breaker& get(const Rule& rule, const std::string& key, const std::string& ns);
  void refresh(Breaker& b, TimePoint now);
  BreakerState describe(const std::string& key, Breaker& b, TimePoint now);

  std::mutex mutex_;
  std::map<std::string, Breaker> breakers_;
};

}  // namespace mongoguard::policy
