#include "proxy/observe/relay_counters.h"

#include <gtest/gtest.h>

#include <memory>
#include <thread>
#include <vector>

namespace mongoguard::proxy {
namespace {

TEST(RelayCounters, EachThreadCountsInItsOwnSlotAndTheSumIsExact) {
  RelayCounters counters;
  constexpr int kThreads = 4;
  constexpr std::uint64_t kAdds = 200000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&counters, t] {
      for (std::uint64_t i = 0; i < kAdds; ++i) {
        counters.add(RelayCounters::kClientMessages, 1);
        counters.add(RelayCounters::kClientBytes, static_cast<std::uint64_t>(t + 1));
      }
    });
  }
  // Read while they count: a sum never runs ahead of what was added.
  for (int i = 0; i < 100; ++i) {
    EXPECT_LE(counters.sum(RelayCounters::kClientMessages), kThreads * kAdds);
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(counters.sum(RelayCounters::kClientMessages), kThreads * kAdds);
  EXPECT_EQ(counters.sum(RelayCounters::kClientBytes), (1 + 2 + 3 + 4) * kAdds);
  EXPECT_EQ(counters.sum(RelayCounters::kUpstreamMessages), 0u);
  EXPECT_EQ(counters.slots(), static_cast<std::size_t>(kThreads));
}

TEST(RelayCounters, InstancesDoNotShareCounts) {
  RelayCounters a;
  RelayCounters b;
  for (int i = 0; i < 10; ++i) {
    a.add(RelayCounters::kUpstreamBytes, 2);
    b.add(RelayCounters::kUpstreamBytes, 3);
  }
  EXPECT_EQ(a.sum(RelayCounters::kUpstreamBytes), 20u);
  EXPECT_EQ(b.sum(RelayCounters::kUpstreamBytes), 30u);
  // Going back and forth, this thread keeps one slot in each.
  EXPECT_EQ(a.slots(), 1u);
  EXPECT_EQ(b.slots(), 1u);
}

TEST(RelayCounters, AnInstanceMadeWhereAnotherWasStartsFromZero) {
  for (int round = 0; round < 5; ++round) {
    auto first = std::make_unique<RelayCounters>();
    first->add(RelayCounters::kClientMessages, 7);
    first.reset();
    // Often at the same address as the one just freed.
    auto second = std::make_unique<RelayCounters>();
    EXPECT_EQ(second->sum(RelayCounters::kClientMessages), 0u);
    second->add(RelayCounters::kClientMessages, 1);
    EXPECT_EQ(second->sum(RelayCounters::kClientMessages), 1u);
  }
}

}  // namespace
}  // namespace mongoguard::proxy
