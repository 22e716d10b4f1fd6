#include "proxy/observe/audit_tail.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace mongoguard::proxy {
namespace {

using nlohmann::json;

struct AuditTailTest : ::testing::Test {
  std::string path = (std::filesystem::temp_directory_path() /
                      ("mg-audit-tail-" + std::to_string(::getpid()) + ".jsonl"))
                         .string();
  void SetUp() override { std::filesystem::remove(path); }
  void TearDown() override { std::filesystem::remove(path); }
  void write(const std::string& text) {
    std::ofstream out(path, std::ios::binary | std::ios::app);
    out << text;
  }
  static std::string record(int n) {
    return R"({"time":{"$date":"2026-12-03T12:51:21.123Z"},"n":)" + std::to_string(n) + "}\n";
  }
};

TEST_F(AuditTailTest, AMissingFileIsNoError) {
  auto tail = read_audit_tail(path);
  EXPECT_TRUE(tail.missing);
  EXPECT_TRUE(tail.error.empty());
  EXPECT_TRUE(tail.records.empty());
}

TEST_F(AuditTailTest, ReadsEveryRecordOldestFirst) {
  for (int i = 0; i < 3; ++i) write(record(i));
  auto tail = read_audit_tail(path);
  ASSERT_EQ(tail.records.size(), 3u);
  EXPECT_EQ(json::parse(tail.records[0])["n"], 0);
  EXPECT_EQ(json::parse(tail.records[2])["n"], 2);
  EXPECT_EQ(tail.skipped, 0u);
  EXPECT_TRUE(tail.whole_file);
}

TEST_F(AuditTailTest, KeepsTheLastRecordsOfALargeFile) {
  for (int i = 0; i < 20000; ++i) write(record(i));  // about 1.3 MB: many chunks
  auto tail = read_audit_tail(path, 500);
  ASSERT_EQ(tail.records.size(), 500u);
  EXPECT_EQ(json::parse(tail.records.front())["n"], 19500);
  EXPECT_EQ(json::parse(tail.records.back())["n"], 19999);
  EXPECT_FALSE(tail.whole_file);
}

TEST_F(AuditTailTest, ReadsNoMoreThanItsBound) {
  for (int i = 0; i < 20000; ++i) write(record(i));
  const auto size = record(19999).size();  // the last ones are this long
  auto tail = read_audit_tail(path, 500, 100 * size + size / 2);
  // The line cut by the bound is not taken, and not counted as skipped.
  EXPECT_EQ(tail.records.size(), 100u);
  EXPECT_EQ(tail.skipped, 0u);
  EXPECT_EQ(json::parse(tail.records.back())["n"], 19999);
}

TEST_F(AuditTailTest, SkipsAndCountsWhatIsNotARecord) {
  write(record(1));
  write("not json at all\n");
  write("\n");
  write("[1,2,3]\n");
  write(R"({"no":"time"})"
        "\n");
  write(R"({"time":"yesterday"})"
        "\n");
  write(record(2));
  write(R"({"time":{"$date":"2026-12-)");  // a torn last line
  auto tail = read_audit_tail(path);
  ASSERT_EQ(tail.records.size(), 2u);
  EXPECT_EQ(tail.skipped, 5u);
}

TEST_F(AuditTailTest, TakesALastLineWithoutItsNewline) {
  write(record(1));
  write(R"({"time":1764766281,"n":2})");
  auto tail = read_audit_tail(path);
  ASSERT_EQ(tail.records.size(), 2u);
  EXPECT_EQ(json::parse(tail.records[1])["n"], 2);
}

TEST_F(AuditTailTest, ALineLongerThanAChunk) {
  write(record(1));
  write(R"({"time":1764766281,"pad":")" + std::string(200'000, 'x') + "\"}\n");
  write(record(3));
  auto tail = read_audit_tail(path);
  ASSERT_EQ(tail.records.size(), 3u);
  EXPECT_EQ(json::parse(tail.records[1])["pad"].get<std::string>().size(), 200'000u);
}

TEST(AuditTime, ReadsEveryFormRecordsHaveHad) {
  constexpr std::int64_t kMs = 1796302281123;  // 2026-12-03T12:51:21.123Z
  EXPECT_EQ(audit_time_ms(json("2026-12-03T12:51:21.123Z")), kMs);
  EXPECT_EQ(audit_time_ms(json("2026-12-03T12:51:21Z")), kMs - 123);
  EXPECT_EQ(audit_time_ms(json("2026-12-03T13:51:21.123+01:00")), kMs);
  EXPECT_EQ(audit_time_ms(json("2026-12-03T12:51:21.1234567Z")), kMs);
  EXPECT_EQ(audit_time_ms(json::parse(R"({"$date":"2026-12-03T12:51:21.123Z"})")), kMs);
  EXPECT_EQ(audit_time_ms(json::parse(R"({"$date":1796302281123})")), kMs);
  EXPECT_EQ(audit_time_ms(json::parse(R"({"$date":{"$numberLong":"1796302281123"}})")), kMs);
  EXPECT_EQ(audit_time_ms(json(1796302281123)), kMs);     // milliseconds
  EXPECT_EQ(audit_time_ms(json(1796302281)), kMs - 123);  // seconds
  EXPECT_EQ(audit_time_ms(json(1796302281.123)), kMs);
}

TEST(AuditTime, RefusesWhatIsNoTime) {
  for (const char* text :
       {R"("yesterday")", R"("2026-13-03T12:51:21Z")", R"("2026-02-30T12:51:21Z")",
        R"("2026-12-03T12:51:21")", R"("2026-12-03T25:51:21Z")", R"("2026-12-03T12:51:21.Z")",
        R"(null)", R"(true)", R"([])", R"({})", R"({"$date":"x"})",
        R"({"$date":{"$numberLong":"1x"}})", R"({"$date":1,"other":2})"}) {
    EXPECT_FALSE(audit_time_ms(json::parse(text))) << text;
  }
}

}  // namespace
}  // namespace mongoguard::proxy
