#include "proxy/observe/relay_counters.h"

namespace mongoguard::proxy {

namespace {
std::atomic<std::uint64_t> next_id{1};
}  // namespace

RelayCounters::RelayCounters() : id_(next_id.fetch_add(1, std::memory_order_relaxed)) {}

RelayCounters::Slot& RelayCounters::slot_of_this_thread() {
  const auto me = std::this_thread::get_id();
  std::lock_guard lock(mutex_);
  // A thread that counted here before (and then into another instance) gets
  // its slot back, so slots stay one per thread.
  for (auto& [thread, slot] : slots_) {
    if (thread == me) return *slot;
  }
  slots_.emplace_back(me, std::make_unique<Slot>());
  return *slots_.back().second;
}

std::uint64_t RelayCounters::sum(std::size_t counter) const {
  std::lock_guard lock(mutex_);
  std::uint64_t total = 0;
  for (const auto& entry : slots_) {
    total += entry.second->values[counter].load(std::memory_order_relaxed);
  }
  return total;
}

std::size_t RelayCounters::slots() const {
  std::lock_guard lock(mutex_);
  return slots_.size();
}

}  // namespace mongoguard::proxy
