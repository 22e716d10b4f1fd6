#include "proxy/observe/rate_history.h"

#include <algorithm>

namespace mongoguard::proxy {

namespace {

std::int64_t minute_of(RateHistory::Time t) {
  // Floor, not truncation: times before the epoch stay in their minute.
  return std::chrono::floor<std::chrono::minutes>(t.time_since_epoch()).count();
}

std::size_t bucket_of(std::int64_t minute) {
  const auto n = static_cast<std::int64_t>(RateHistory::kMinutes);
  return static_cast<std::size_t>(((minute % n) + n) % n);
}

}  // namespace

std::int64_t RateHistory::Series::total() const {
  std::int64_t sum = 0;
  for (const auto n : per_minute) sum += n;
  return sum;
}

RateHistory::RateHistory(std::size_t max_namespaces)
    : max_namespaces_(std::max<std::size_t>(max_namespaces, 1)) {}

void RateHistory::add(const std::string& ns, std::int64_t documents, Time now) {
  if (documents <= 0) return;
  const std::int64_t minute = minute_of(now);
  std::lock_guard lock(mutex_);
  auto found = index_.find(ns);
  if (found == index_.end()) {
    if (order_.size() >= max_namespaces_) {
      index_.erase(order_.back().ns);
      order_.pop_back();
    }
    order_.push_front(Entry{ns, {}, {}});
    found = index_.emplace(ns, order_.begin()).first;
  } else if (found->second != order_.begin()) {
    order_.splice(order_.begin(), order_, found->second);
  }
  Entry& entry = *found->second;
  const std::size_t i = bucket_of(minute);
  if (entry.stamp[i] != minute) {
    // A later minute reuses the bucket; an earlier one (a clock stepped
    // back) is counted in it too, rather than lost.
    if (entry.stamp[i] < minute) entry.documents[i] = 0;
    entry.stamp[i] = std::max(entry.stamp[i], minute);
  }
  entry.documents[i] += documents;
}

std::vector<RateHistory::Series> RateHistory::last_hour(Time now) const {
  const std::int64_t current = minute_of(now);
  const auto first = current - static_cast<std::int64_t>(kMinutes) + 1;
  std::vector<Series> out;
  std::lock_guard lock(mutex_);
  for (const auto& entry : order_) {
    Series series{entry.ns, {}};
    for (std::size_t i = 0; i < kMinutes; ++i) {
      const std::int64_t stamp = entry.stamp[i];
      if (stamp < first || stamp > current || entry.documents[i] == 0) continue;
      series.per_minute[static_cast<std::size_t>(stamp - first)] = entry.documents[i];
    }
    if (series.total() > 0) out.push_back(std::move(series));
  }
  std::sort(out.begin(), out.end(), [](const Series& a, const Series& b) { return a.ns < b.ns; });
  return out;
}

std::size_t RateHistory::size() const {
  std::lock_guard lock(mutex_);
  return order_.size();
}

}  // namespace mongoguard::proxy
