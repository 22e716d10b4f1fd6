// Documents destructive operations affected, per namespace and minute, over
// the last hour: what the operators' page draws next to each budget. Fed
// once per reply to a write a rule matched, with the count the server
// reported.
//
// Thread-safe (one short lock per call; only replies to inspected writes
// reach it). Time is passed in, so it is tested without clocks. The number
// of namespaces is bounded: past the bound, the one touched longest ago
// makes room.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace mongoguard::proxy {

class RateHistory {
 public:
  using Time = std::chrono::system_clock::time_point;
  static constexpr std::size_t kMinutes = 60;
  static constexpr std::size_t kDefaultNamespaces = 1000;

  // One namespace's last hour: per_minute[59] is the minute `now` is in,
  // per_minute[0] the one 59 minutes before it.
  struct Series {
    std::string ns;
    std::array<std::int64_t, kMinutes> per_minute{};
    std::int64_t total() const;
  };

  explicit RateHistory(std::size_t max_namespaces = kDefaultNamespaces);

  // Counts `documents` (ignored unless > 0) in the minute `now` is in.
  void add(const std::string& ns, std::int64_t documents, Time now);
  // Every namespace with something counted in the last hour, by name.
  std::vector<Series> last_hour(Time now) const;
  // Namespaces kept (some may have nothing left in the last hour).
  std::size_t size() const;

 private:
  struct Entry {
    std::string ns;
    // Bucket i holds minute stamp[i] (minutes since the epoch) when
    // stamp[i] % 60 == i; an older stamp means the bucket is stale.
    std::array<std::int64_t, kMinutes> documents{};
    std::array<std::int64_t, kMinutes> stamp{};
  };
  using Order = std::list<Entry>;  // most recently touched first

  std::size_t max_namespaces_;
  mutable std::mutex mutex_;
  Order order_;
  std::unordered_map<std::string, Order::iterator> index_;
};

}  // namespace mongoguard::proxy
