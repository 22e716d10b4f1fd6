// The collection-size cache percent windows read: fresh for 60 s, bounded.
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "proxy/collection_sizes.h"

namespace mongoguard::proxy {
namespace {

using namespace std::chrono_literals;

TEST(CollectionSizes, ACountIsBelievedForSixtySeconds) {
  CollectionSizes sizes;
  const CollectionSizes::Clock::time_point t0{};
  EXPECT_EQ(sizes.get("app.c", t0), std::nullopt) << "never counted";
  sizes.put("app.c", 150, t0);
  EXPECT_EQ(sizes.get("app.c", t0), 150);
  EXPECT_EQ(sizes.get("app.c", t0 + 59s), 150);
  EXPECT_EQ(sizes.get("app.c", t0 + 60s), std::nullopt) << "stale: counted again";
  EXPECT_EQ(sizes.get("app.d", t0), std::nullopt);
  sizes.put("app.c", 90, t0 + 70s);
  EXPECT_EQ(sizes.get("app.c", t0 + 70s), 90) << "a new count replaces the old";
  sizes.put("app.e", -3, t0);
  EXPECT_EQ(sizes.get("app.e", t0), 0);
}

TEST(CollectionSizes, StaysBoundedAndIsSafeAcrossThreads) {
  CollectionSizes sizes;
  const CollectionSizes::Clock::time_point t0{};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 4000; ++i) {
        const auto ns = "db" + std::to_string(t) + ".c" + std::to_string(i);
        sizes.put(ns, i, t0 + std::chrono::seconds(i / 100));
        (void)sizes.get(ns, t0);
      }
    });
  }
  for (auto& th : threads) th.join();
  // 16,000 names put, at most kMaxEntries kept.
  EXPECT_LE(sizes.size(), CollectionSizes::kMaxEntries);
  EXPECT_GT(sizes.size(), 0u);
  sizes.put("app.last", 7, t0 + 40s);
  EXPECT_EQ(sizes.get("app.last", t0 + 40s), 7) << "a full cache still takes new counts";
  EXPECT_LE(sizes.size(), CollectionSizes::kMaxEntries);
}

}  // namespace
}  // namespace mongoguard::proxy
