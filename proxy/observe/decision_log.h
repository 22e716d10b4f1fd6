// The most recent audit records, kept in memory for the admin API
// (GET /api/decisions) and the operator's page.
#pragma once

#include <cstddef>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace mongoguard::proxy {

class DecisionLog {
 public:
  explicit DecisionLog(std::size_t capacity = 500) : capacity_(capacity) {}

  // `json` is one complete audit record (a JSON object). Once full, the
  // oldest record's slot takes the new one: its buffer is reused, so a
  // record added on the data path usually allocates nothing.
  void add(std::string_view json) {
    std::lock_guard lock(mutex_);
    if (capacity_ == 0) return;
    if (records_.size() < capacity_) {
      records_.emplace_back(json);
    } else {
      records_[oldest_].assign(json);
      oldest_ = (oldest_ + 1) % capacity_;
    }
  }

  // Newest first, at most `limit`.
  std::vector<std::string> recent(std::size_t limit) const {
    std::lock_guard lock(mutex_);
    std::vector<std::string> out;
    const std::size_t n = records_.size();
    for (std::size_t i = 0; i < n && out.size() < limit; ++i) {
      // The newest is the slot before the oldest (or the last while filling).
      out.push_back(records_[(oldest_ + n - 1 - i) % n]);
    }
    return out;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> records_;  // a ring once it holds capacity_ records
  std::size_t oldest_ = 0;            // the oldest record's slot, once full
  std::size_t capacity_;
};

}  // namespace mongoguard::proxy
