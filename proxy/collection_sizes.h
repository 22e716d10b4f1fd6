// The document counts of collections, as last measured, for budgets whose
// windows are a percent of their collection. Shared by every worker thread;
// each call takes the lock briefly. Time is passed in.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace mongoguard::proxy {

class CollectionSizes {
 public:
  using Clock = std::chrono::steady_clock;
  // How long a count is believed.
  static constexpr std::chrono::seconds kFresh{60};
  // Collections remembered at most; past it, counts no longer fresh are
  // dropped first, then everything (the next commands count again).
  static constexpr std::size_t kMaxEntries = 10'000;

  // The count of `ns` ("db.coll") when it was put less than kFresh ago.
  std::optional<std::int64_t> get(const std::string& ns, Clock::time_point now) const;
  void put(const std::string& ns, std::int64_t count, Clock::time_point now);
  std::size_t size() const;  // collections remembered now

 private:
  struct Entry {
    std::int64_t count = 0;
    Clock::time_point at;
  };
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Entry> sizes_;
};

}  // namespace mongoguard::proxy
