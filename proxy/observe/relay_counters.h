// What the relay counts for every message it carries, kept per thread. Each
// thread adds into a slot of its own (its own cache lines, one writer), and
// /metrics sums the slots: worker threads share no written memory on the
// read path, so these counts cost the same on 1 core as on 64.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace mongoguard::proxy {

class RelayCounters {
 public:
  // The OP_MSG, OP_QUERY, ... counts of mongoguard_messages_total take
  // kOpcodeSlots slots from kOpcodeFirst.
  static constexpr std::size_t kOpcodeSlots = 9;
  enum Counter : std::size_t {
    kClientMessages,
    kClientBytes,
    kUpstreamMessages,
    kUpstreamBytes,
    kCompressedMessages,
    kOpcodeFirst,
    kCounters = kOpcodeFirst + kOpcodeSlots,
  };

  RelayCounters();
  RelayCounters(const RelayCounters&) = delete;
  RelayCounters& operator=(const RelayCounters&) = delete;

  // Adds `n` to this thread's slot: a plain load and store, no lock prefix,
  // since no other thread writes this slot.
  void add(std::size_t counter, std::uint64_t n) {
    auto& value = slot().values[counter];
    value.store(value.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  // The sum over every thread's slot.
  std::uint64_t sum(std::size_t counter) const;
  // How many threads have counted here (one slot each).
  std::size_t slots() const;

 private:
  struct alignas(64) Slot {
    std::array<std::atomic<std::uint64_t>, kCounters> values{};
  };
  Slot& slot() {
    // The slot this thread used last, and whose: ids are never reused, so a
    // RelayCounters made where a destroyed one was is not taken for it.
    thread_local std::uint64_t cached_owner = 0;
    thread_local Slot* cached = nullptr;
    if (cached_owner != id_) {
      cached = &slot_of_this_thread();
      cached_owner = id_;
    }
    return *cached;
  }
  Slot& slot_of_this_thread();

  const std::uint64_t id_;
  mutable std::mutex mutex_;
  std::vector<std::pair<std::thread::id, std::unique_ptr<Slot>>> slots_;
};

}  // namespace mongoguard::proxy
