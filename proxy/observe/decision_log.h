// The most recent audit records, kept in memory for the admin API
// (GET /api/decisions) and the operator's page.
#pragma once

#include <cstddef>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

namespace mongoguard::proxy {

class DecisionLog {
 public:
  explicit DecisionLog(std::size_t capacity = 500) : capacity_(capacity) {}

  // `json` is one complete audit record (a JSON object).
  void add(std::string json) {
    std::lock_guard lock(mutex_);
    records_.push_back(std::move(json));
    while (records_.size() > capacity_) records_.pop_front();
  }

  // Newest first, at most `limit`.
  std::vector<std::string> recent(std::size_t limit) const {
    std::lock_guard lock(mutex_);
    std::vector<std::string> out;
    for (auto it = records_.rbegin(); it != records_.rend() && out.size() < limit; ++it) {
      out.push_back(*it);
    }
    return out;
  }

 private:
  mutable std::mutex mutex_;
  std::deque<std::string> records_;
  std::size_t capacity_;
};

}  // namespace mongoguard::proxy
