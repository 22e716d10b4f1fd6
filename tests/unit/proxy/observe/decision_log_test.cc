#include "proxy/observe/decision_log.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace mongoguard::proxy {
namespace {

std::vector<std::string> numbers(std::initializer_list<int> values) {
  std::vector<std::string> out;
  for (int v : values) out.push_back(std::to_string(v));
  return out;
}

TEST(DecisionLog, KeepsTheNewestNewestFirst) {
  DecisionLog log(3);
  EXPECT_TRUE(log.recent(10).empty());
  log.add("0");
  log.add("1");
  EXPECT_EQ(log.recent(10), numbers({1, 0}));
  log.add("2");
  EXPECT_EQ(log.recent(10), numbers({2, 1, 0}));
  // Full: each record takes the oldest one's place.
  for (int i = 3; i < 8; ++i) {
    log.add(std::to_string(i));
    EXPECT_EQ(log.recent(10), numbers({i, i - 1, i - 2})) << i;
  }
  EXPECT_EQ(log.recent(2), numbers({7, 6}));
  EXPECT_EQ(log.recent(0), numbers({}));
}

TEST(DecisionLog, AReusedSlotHoldsOnlyTheNewRecord) {
  DecisionLog log(2);
  log.add(std::string(300, 'a'));
  log.add("b");
  log.add("c");  // in the long record's slot
  EXPECT_EQ(log.recent(5), (std::vector<std::string>{"c", "b"}));
}

TEST(DecisionLog, NoCapacityKeepsNothing) {
  DecisionLog log(0);
  log.add("x");
  EXPECT_TRUE(log.recent(5).empty());
}

}  // namespace
}  // namespace mongoguard::proxy
