// The one duration formatter, in both of its styles.
#include "policy/duration.h"

#include <gtest/gtest.h>

namespace mongoguard::policy {
namespace {

using namespace std::chrono_literals;

TEST(FormatDuration, ConfigStyleIsExactInTheLargestUnit) {
  EXPECT_EQ(format_duration(48h), "2d");
  EXPECT_EQ(format_duration(36h), "36h");
  EXPECT_EQ(format_duration(60s), "1m");
  EXPECT_EQ(format_duration(90s), "90s");
  EXPECT_EQ(format_duration(1500ms), "1500ms");
  EXPECT_EQ(format_duration(0ms), "0ms");
}

TEST(FormatDuration, ElapsedStyleRoundsToSecondsInTwoUnits) {
  constexpr auto kElapsed = DurationStyle::kElapsed;
  EXPECT_EQ(format_duration(0ms, kElapsed), "0s");
  EXPECT_EQ(format_duration(499ms, kElapsed), "0s");
  EXPECT_EQ(format_duration(500ms, kElapsed), "1s");
  EXPECT_EQ(format_duration(59'499ms, kElapsed), "59s");
  EXPECT_EQ(format_duration(90s, kElapsed), "1m30s");
  EXPECT_EQ(format_duration(3600s, kElapsed), "1h0m");
  EXPECT_EQ(format_duration(2h + 5min + 20s, kElapsed), "2h5m");
}

}  // namespace
}  // namespace mongoguard::policy
