#include "policy/budget.h"

namespace mongoguard::policy {

void SlidingWindow::expire(TimePoint now, milliseconds per) {
  while (!entries_.empty() && entries_.front().first + per <= now) {
    sum_ -= entries_.front().second;
    entries_.pop_front();
  }
}

void SlidingWindow::add(TimePoint now, std::int64_t documents) {
  if (documents <= 0) return;
  entries_.emplace_back(now, documents);
  sum_ += documents;
}

std::int64_t SlidingWindow::total(TimePoint now, milliseconds per) {
  expire(now, per);
  return sum_;
}

std::optional<TimePoint> SlidingWindow::next_expiry(milliseconds per) const {
  if (entries_.empty()) return std::nullopt;
  return entries_.front().first + per;
}

std::optional<TimePoint> SlidingWindow::drained_at(milliseconds per) const {
  if (entries_.empty()) return std::nullopt;
  return entries_.back().first + per;
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

BudgetBook::Breaker& BudgetBook::get(const Rule& rule, const std::string& key,
                                     const std::string& ns) {
  auto [it, inserted] = breakers_.try_emplace(key);
  Breaker& b = it->second;
  // A reload may change the numbers; the window (what already happened) stays.
  b.rule = rule.name;
  b.ns = ns;
  b.limit = rule.limit ? rule.limit->documents : 0;
  b.per = rule.limit ? rule.limit->per : milliseconds(0);
  return b;
}

void BudgetBook::refresh(Breaker& b, TimePoint now) {
  // A tripped breaker closes by itself once nothing is left in its window.
  if (b.tripped_at && b.window.total(now, b.per) == 0 && now >= *b.tripped_at + b.per) {
    b.tripped_at.reset();
  }
  if (b.allowance_until && now >= *b.allowance_until) b.allowance_until.reset();
}

Admission BudgetBook::admit(const Rule& rule, const std::string& key, const std::string& ns,
                            std::int64_t documents, TimePoint now) {
  std::lock_guard lock(mutex_);
  Breaker& b = get(rule, key, ns);
  refresh(b, now);
  if (b.allowance_until) return Admission::kPass;
  if (b.allowance_documents > 0) {
    // The allowance covers what is known now; record() draws it down.
    if (documents <= b.allowance_documents) return Admission::kPass;
  }
  if (b.tripped_at) return Admission::kTripped;
  const std::int64_t used = b.window.total(now, b.per);
  const std::int64_t left = b.limit - used + b.allowance_documents;
  if (documents > 0 && documents > left) {
    // Stop it either way; trip only when the budget itself is spent, so one
    // oversized deleteMany does not hold everyone else's small writes.
    if (left > 0) return Admission::kTooLarge;
    b.tripped_at = now;
    return Admission::kWouldTrip;
  }
  if (used >= b.limit + b.allowance_documents && documents == 0) {
    // Unknown size and nothing left: it would cross the budget.
    b.tripped_at = now;
    return Admission::kWouldTrip;
  }
  return Admission::kPass;
}

bool BudgetBook::record(const Rule& rule, const std::string& key, const std::string& ns,
                        std::int64_t documents, TimePoint now) {
  if (documents <= 0) return false;
  std::lock_guard lock(mutex_);
  Breaker& b = get(rule, key, ns);
  refresh(b, now);
  if (b.allowance_until) return false;  // break-glass: not counted against the budget
  std::int64_t counted = documents;
  if (b.allowance_documents > 0) {
    const std::int64_t covered = std::min(b.allowance_documents, counted);
    b.allowance_documents -= covered;
    counted -= covered;
  }
  b.window.add(now, counted);
  if (!b.tripped_at && b.window.total(now, b.per) >= b.limit && counted > 0) {
    b.tripped_at = now;
    return true;
  }
  return false;
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

bool BudgetBook::grant(const std::string& key, std::int64_t documents,
                       std::optional<milliseconds> duration, TimePoint now) {
  std::lock_guard lock(mutex_);
  auto it = breakers_.find(key);
  if (it == breakers_.end()) return false;
  Breaker& b = it->second;
  if (documents > 0) b.allowance_documents += documents;
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
  s.tripped_at = b.tripped_at;
  s.drains_at = b.window.drained_at(b.per);
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
