#include "policy/budget.h"

#include <algorithm>

namespace mongoguard::policy {

void SlidingWindow::expire(TimePoint now, milliseconds per) {
  while (!entries_.empty() && entries_.front().at + per <= now) {
    sum_ -= entries_.front().documents;
    entries_.pop_front();
  }
}

std::uint64_t SlidingWindow::add(TimePoint now, std::int64_t documents) {
  if (documents <= 0) return 0;
  // Entries stay in time order (and so in id order) even if a caller's
  // clock reading is a little older than the newest entry's.
  if (!entries_.empty() && now < entries_.back().at) now = entries_.back().at;
  const std::uint64_t id = next_id_++;
  entries_.push_back({now, documents, id});
  sum_ += documents;
  return id;
}

bool SlidingWindow::adjust(std::uint64_t id, std::int64_t documents) {
  auto it = std::lower_bound(entries_.begin(), entries_.end(), id,
                             [](const Entry& e, std::uint64_t want) { return e.id < want; });
  if (it == entries_.end() || it->id != id) return false;
  sum_ += documents - it->documents;
  it->documents = documents;
  return true;
}

std::int64_t SlidingWindow::total(TimePoint now, milliseconds per) {
  expire(now, per);
  return sum_;
}

std::optional<TimePoint> SlidingWindow::next_expiry(milliseconds per) const {
  if (entries_.empty()) return std::nullopt;
  return entries_.front().at + per;
}

std::optional<TimePoint> SlidingWindow::drained_at(milliseconds per) const {
  if (entries_.empty()) return std::nullopt;
  return entries_.back().at + per;
}

std::optional<TimePoint> SlidingWindow::oldest() const {
  if (entries_.empty()) return std::nullopt;
  return entries_.front().at;
}

void SlidingWindow::clear() {
  entries_.clear();
  sum_ = 0;
}

std::string budget_key(const Rule& rule, const Target& target, const Identity& who) {
  std::string key = rule.name + ":" + target.ns;
  if (rule.limit) {
    if (rule.limit->group_by_user) key += ":user=" + who.user;
    if (rule.limit->group_by_app) key += ":app=" + who.app;
    if (rule.limit->group_by_client) {
      // The address without the port: one client host, many connections.
      auto address = who.client_address;
      if (auto colon = address.rfind(':'); colon != std::string::npos) address.resize(colon);
      key += ":client=" + address;
    }
  }
  return key;
}

std::string window_key(const std::string& key, const Limit& limit, std::size_t window) {
  if (limit.windows.size() <= 1 || window >= limit.windows.size()) return key;
  return key + "@" + format_duration(limit.windows[window].per);
}

BudgetBook::Breaker& BudgetBook::get(const ReserveRequest& r) {
  auto [it, inserted] = breakers_.try_emplace(r.key);
  Breaker& b = it->second;
  // A reload (or a relative window's collection) may change the numbers;
  // the window (what already happened) stays.
  b.rule = r.rule ? r.rule->name : "";
  b.ns = r.ns;
  b.limit = r.limit;
  b.per = r.per;
  b.auto_resume = r.auto_resume;
  return b;
}

void BudgetBook::refresh(Breaker& b, TimePoint now) {
  // With auto_resume, a tripped breaker closes by itself once nothing is
  // left in its window; otherwise only an operator closes it.
  if (b.auto_resume && b.tripped_at && b.window.total(now, b.per) == 0 &&
      now >= *b.tripped_at + b.per) {
    b.tripped_at.reset();
  }
  if (b.allowance_until && now >= *b.allowance_until) b.allowance_until.reset();
}

Admission BudgetBook::judge(Breaker& b, const ReserveRequest& r, TimePoint now,
                            std::int64_t& amount) {
  amount = r.documents;
  if (b.allowance_until) {
    amount = 0;  // free passage: nothing is counted
    return Admission::kPass;
  }
  // An allowance that covers a bounded operation lets it through a tripped
  // breaker too: that is what the operator granted it for.
  if (!r.unbounded && !r.everything_left && b.allowance_documents > 0 &&
      r.documents <= b.allowance_documents) {
    return Admission::kPass;
  }
  if (b.tripped_at) return Admission::kTripped;
  const std::int64_t left = b.limit - b.window.total(now, b.per) + b.allowance_documents;
  if (r.unbounded || r.documents > left || (r.everything_left && left <= 0)) {
    // Stop it either way; trip only when the budget itself is spent, so one
    // oversized deleteMany does not hold everyone else's small writes.
    if (left > 0) return Admission::kTooLarge;
    if (r.documents == 0 && !r.unbounded && !r.everything_left) return Admission::kPass;
    b.tripped_at = now;
    return Admission::kWouldTrip;
  }
  // A statement of unknown size may take all that is left.
  if (r.everything_left) amount = std::max(left, r.documents);
  return Admission::kPass;
}

Reservation BudgetBook::commit(Breaker& b, const std::string& key, std::int64_t amount,
                               TimePoint now) {
  Reservation res;
  res.key = key;
  res.ns = b.ns;
  if (b.allowance_until || amount <= 0) return res;
  res.documents = amount;
  res.from_allowance = std::min(b.allowance_documents, amount);
  b.allowance_documents -= res.from_allowance;
  res.entry = b.window.add(now, amount - res.from_allowance);
  return res;
}

bool BudgetBook::trip_if_spent(Breaker& b, TimePoint now) {
  if (b.tripped_at || b.allowance_until || b.window.total(now, b.per) < b.limit) return false;
  b.tripped_at = now;
  return true;
}

ReserveResult BudgetBook::reserve(const std::vector<ReserveRequest>& requests, TimePoint now,
                                  bool force) {
  std::lock_guard lock(mutex_);
  ReserveResult out;
  out.admissions.resize(requests.size(), Admission::kPass);
  out.states.resize(requests.size());
  out.tripped_now.resize(requests.size(), false);
  std::vector<std::int64_t> amounts(requests.size(), 0);
  std::vector<Breaker*> books(requests.size(), nullptr);
  bool fits = true;
  for (std::size_t i = 0; i < requests.size(); ++i) {
    const auto& r = requests[i];
    Breaker& b = get(r);
    books[i] = &b;
    refresh(b, now);
    const bool was_tripped = b.tripped_at.has_value();
    out.admissions[i] = judge(b, r, now, amounts[i]);
    out.tripped_now[i] = !was_tripped && b.tripped_at.has_value();
    if (out.admissions[i] != Admission::kPass) {
      out.states[i] = describe(r.key, b, now);
      if (r.enforced) fits = false;
    }
  }
  if (!fits && !force) return out;
  out.reserved = true;
  out.reservations.reserve(requests.size());
  for (std::size_t i = 0; i < requests.size(); ++i) {
    // What is counted for a request that did not fit (a dry-run rule's, or
    // a forced one): its bound, or all that was left when it had none.
    std::int64_t amount = amounts[i];
    if (out.admissions[i] != Admission::kPass) {
      amount = std::max<std::int64_t>(requests[i].documents, requests[i].at_least);
    }
    out.reservations.push_back(commit(*books[i], requests[i].key, amount, now));
  }
  return out;
}

bool BudgetBook::settle(const Reservation& res, std::int64_t documents, TimePoint now) {
  if (res.documents == 0 && documents <= 0) return false;
  std::lock_guard lock(mutex_);
  auto it = breakers_.find(res.key);
  if (it == breakers_.end()) return false;  // reset or gone: nothing to settle
  Breaker& b = it->second;
  refresh(b, now);
  documents = std::max<std::int64_t>(documents, 0);
  if (documents < res.documents) {
    // Give back what was not used: the window's part first, then the allowance.
    const std::int64_t in_window = res.documents - res.from_allowance;
    const std::int64_t unused = res.documents - documents;
    const std::int64_t from_window = std::min(unused, in_window);
    if (res.entry != 0) b.window.adjust(res.entry, in_window - from_window);
    b.allowance_documents += unused - from_window;
  } else if (documents > res.documents && !b.allowance_until) {
    // More than the bound (documents appeared between the count and the
    // write): counted too, now.
    std::int64_t extra = documents - res.documents;
    const std::int64_t covered = std::min(b.allowance_documents, extra);
    b.allowance_documents -= covered;
    b.window.add(now, extra - covered);
  }
  return documents > 0 && trip_if_spent(b, now);
}

std::optional<std::int64_t> BudgetBook::headroom(const std::string& key, std::int64_t limit,
                                                 TimePoint now) {
  std::lock_guard lock(mutex_);
  auto it = breakers_.find(key);
  if (it == breakers_.end()) return limit;
  Breaker& b = it->second;
  refresh(b, now);
  if (b.allowance_until) return std::nullopt;
  if (b.tripped_at) return -1;  // refused whatever its size: nothing to measure
  return std::max<std::int64_t>(0, b.limit - b.window.total(now, b.per) + b.allowance_documents);
}

bool BudgetBook::record(const Rule& rule, const std::string& key, const std::string& ns,
                        std::int64_t documents, TimePoint now) {
  ReserveRequest r;
  r.rule = &rule;
  r.key = key;
  r.ns = ns;
  if (rule.limit && !rule.limit->windows.empty()) {
    const auto& first = rule.limit->windows.front();
    r.limit = first.documents;
    r.per = first.per;
    r.auto_resume = rule.limit->auto_resume;
  }
  return record(r, documents, now);
}

bool BudgetBook::record(const ReserveRequest& request, std::int64_t documents, TimePoint now) {
  if (documents <= 0) return false;
  std::lock_guard lock(mutex_);
  Breaker& b = get(request);
  refresh(b, now);
  if (b.allowance_until) return false;  // break-glass: not counted against the budget
  std::int64_t counted = documents;
  if (b.allowance_documents > 0) {
    const std::int64_t covered = std::min(b.allowance_documents, counted);
    b.allowance_documents -= covered;
    counted -= covered;
  }
  b.window.add(now, counted);
  return counted > 0 && trip_if_spent(b, now);
}

bool BudgetBook::reset(const std::string& key) {
  std::lock_guard lock(mutex_);
  auto it = breakers_.find(key);
  if (it == breakers_.end()) return false;
  it->second.window.clear();
  it->second.tripped_at.reset();
  it->second.allowance_documents = 0;
  it->second.allowance_until.reset();
  return true;
}

bool BudgetBook::resume(const std::string& key, bool* was_tripped) {
  std::lock_guard lock(mutex_);
  auto it = breakers_.find(key);
  if (it == breakers_.end()) return false;
  if (was_tripped) *was_tripped = it->second.tripped_at.has_value();
  it->second.tripped_at.reset();
  return true;
}

bool BudgetBook::grant(const std::string& key, std::int64_t documents,
                       std::optional<milliseconds> duration, TimePoint now) {
  std::lock_guard lock(mutex_);
  auto it = breakers_.find(key);
  if (it == breakers_.end()) return false;
  Breaker& b = it->second;
  if (documents > 0) {
    b.allowance_documents = kMaxAllowanceDocuments - b.allowance_documents < documents
                                ? kMaxAllowanceDocuments
                                : b.allowance_documents + documents;
  }
  if (duration) b.allowance_until = now + *duration;
  b.tripped_at.reset();
  return true;
}

BreakerState BudgetBook::describe(const std::string& key, Breaker& b, TimePoint now) {
  refresh(b, now);
  BreakerState s;
  s.name = key;
  s.rule = b.rule;
  s.ns = b.ns;
  s.used = b.window.total(now, b.per);
  s.limit = b.limit;
  s.per = b.per;
  s.tripped = b.tripped_at.has_value();
  s.auto_resume = b.auto_resume;
  s.tripped_at = b.tripped_at;
  s.drains_at = b.window.drained_at(b.per);
  s.counting_since = b.window.oldest();
  s.allowance_documents = b.allowance_documents;
  s.allowance_until = b.allowance_until;
  return s;
}

std::vector<BreakerState> BudgetBook::breakers(TimePoint now) {
  std::lock_guard lock(mutex_);
  std::vector<BreakerState> out;
  out.reserve(breakers_.size());
  for (auto& [key, b] : breakers_) out.push_back(describe(key, b, now));
  return out;
}

std::optional<BreakerState> BudgetBook::breaker(const std::string& key, TimePoint now) {
  std::lock_guard lock(mutex_);
  auto it = breakers_.find(key);
  if (it == breakers_.end()) return std::nullopt;
  return describe(key, it->second, now);
}

}  // namespace mongoguard::policy
