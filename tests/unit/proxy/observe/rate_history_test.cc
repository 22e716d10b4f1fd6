#include "proxy/observe/rate_history.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace mongoguard::proxy {
namespace {

using namespace std::chrono_literals;
using Time = RateHistory::Time;

// 10:00:30 on some day, a round number of minutes after the epoch plus 30 s.
const Time kNoon = Time(std::chrono::minutes(29'000'000)) + 30s;

TEST(RateHistory, CountsPerMinuteOldestFirst) {
  RateHistory rates;
  rates.add("app.families", 3, kNoon);
  rates.add("app.families", 2, kNoon + 20s);  // same minute
  rates.add("app.families", 5, kNoon - 1min);
  rates.add("app.families", 7, kNoon - 59min);
  auto hour = rates.last_hour(kNoon);
  ASSERT_EQ(hour.size(), 1u);
  EXPECT_EQ(hour[0].ns, "app.families");
  EXPECT_EQ(hour[0].per_minute[59], 5);
  EXPECT_EQ(hour[0].per_minute[58], 5);
  EXPECT_EQ(hour[0].per_minute[0], 7);
  EXPECT_EQ(hour[0].total(), 17);
}

TEST(RateHistory, OlderThanAnHourFallsOut) {
  RateHistory rates;
  rates.add("app.a", 4, kNoon);
  rates.add("app.a", 1, kNoon + 10min);
  auto later = rates.last_hour(kNoon + 59min);
  ASSERT_EQ(later.size(), 1u);
  EXPECT_EQ(later[0].per_minute[0], 4);  // 59 minutes before: still in
  EXPECT_EQ(later[0].per_minute[59 - 49], 1);
  later = rates.last_hour(kNoon + 60min);
  ASSERT_EQ(later.size(), 1u);
  EXPECT_EQ(later[0].total(), 1);
  EXPECT_TRUE(rates.last_hour(kNoon + 2h).empty());  // nothing in the last hour: not listed
  EXPECT_EQ(rates.size(), 1u);
}

TEST(RateHistory, ABucketReusedAnHourLaterStartsAtZero) {
  RateHistory rates;
  rates.add("app.a", 4, kNoon);
  rates.add("app.a", 1, kNoon + 60min);  // the same bucket, an hour on
  auto hour = rates.last_hour(kNoon + 60min);
  ASSERT_EQ(hour.size(), 1u);
  EXPECT_EQ(hour[0].per_minute[59], 1);
  EXPECT_EQ(hour[0].total(), 1);
}

TEST(RateHistory, IgnoresNothingAndNegatives) {
  RateHistory rates;
  rates.add("app.a", 0, kNoon);
  rates.add("app.a", -3, kNoon);
  EXPECT_EQ(rates.size(), 0u);
  EXPECT_TRUE(rates.last_hour(kNoon).empty());
}

TEST(RateHistory, ListsByNameAndOnlyWhatTheHourHolds) {
  RateHistory rates;
  rates.add("b.x", 1, kNoon);
  rates.add("a.x", 1, kNoon);
  rates.add("c.x", 1, kNoon + 1min);  // after `now`: not shown
  auto hour = rates.last_hour(kNoon);
  ASSERT_EQ(hour.size(), 2u);
  EXPECT_EQ(hour[0].ns, "a.x");
  EXPECT_EQ(hour[1].ns, "b.x");
}

TEST(RateHistory, EvictsTheNamespaceTouchedLongestAgo) {
  RateHistory rates(3);
  rates.add("app.1", 1, kNoon);
  rates.add("app.2", 1, kNoon);
  rates.add("app.3", 1, kNoon);
  rates.add("app.1", 1, kNoon);  // touched again: app.2 is now the oldest
  rates.add("app.4", 1, kNoon);
  EXPECT_EQ(rates.size(), 3u);
  std::vector<std::string> names;
  for (const auto& s : rates.last_hour(kNoon)) names.push_back(s.ns);
  EXPECT_EQ(names, (std::vector<std::string>{"app.1", "app.3", "app.4"}));
}

TEST(RateHistory, BoundedUnderManyNamespaces) {
  RateHistory rates;
  for (int i = 0; i < 5000; ++i) rates.add("db.c" + std::to_string(i), 1, kNoon);
  EXPECT_EQ(rates.size(), RateHistory::kDefaultNamespaces);
  EXPECT_EQ(rates.last_hour(kNoon).size(), RateHistory::kDefaultNamespaces);
}

TEST(RateHistory, ThreadSafe) {
  RateHistory rates(8);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&rates, t] {
      for (int i = 0; i < 5000; ++i) {
        rates.add("db.c" + std::to_string((t + i) % 10), 1, kNoon);
        if (i % 100 == 0) (void)rates.last_hour(kNoon);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_LE(rates.size(), 8u);
}

}  // namespace
}  // namespace mongoguard::proxy
