#include "proxy/observe/audit.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "proxy/observe/stalled_pipe.h"

namespace mongoguard::proxy {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

std::string temp_file(const std::string& name) {
  auto path =
      std::filesystem::temp_directory_path() / (name + "-" + std::to_string(::getpid()) + ".jsonl");
  std::filesystem::remove(path);
  return path.string();
}

std::vector<json> records_in(const std::string& text) {
  std::vector<json> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(json::parse(line));
  return out;
}

std::vector<json> records_of(const std::string& path) {
  std::ifstream in(path);
  return records_in(std::string(std::istreambuf_iterator<char>(in), {}));
}

// A blocked delete on shop.orders from connection `connection`.
AuditRecord blocked_delete(std::uint64_t connection) {
  policy::Identity who;
  who.client_address = "127.0.0.1:5000";
  who.app = "shell";
  policy::CommandInfo info;
  info.command = "delete";
  info.database = "shop";
  policy::Target target;
  target.op = policy::Operation::kDelete;
  target.ns = "shop.orders";
  target.statements = 1;
  info.targets.push_back(target);
  policy::Verdict verdict;
  verdict.action = verdict.would = policy::Action::kBlock;
  AuditRecord record(connection, who, info, verdict, true);
  record.set_outcome("blocked");
  return record;
}

TEST(AuditLog, RecordsFromManyThreadsArriveWholeInTheFile) {
  const auto path = temp_file("audit-threads");
  constexpr int kThreads = 6;
  constexpr int kRecords = 300;
  {
    AuditLog audit;
    std::string error;
    ASSERT_TRUE(audit.open(path, error)) << error;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&audit, t] {
        for (int i = 0; i < kRecords; ++i) {
          if (i % 2) {
            audit.write(blocked_delete(static_cast<std::uint64_t>(t)));
          } else {
            audit.write_operator_action("reset", "op" + std::to_string(t), "b", "");
          }
        }
      });
    }
    for (auto& thread : threads) thread.join();
  }  // shutdown writes everything queued
  const auto records = records_of(path);
  ASSERT_EQ(records.size(), std::size_t{kThreads * kRecords});
  std::size_t blocked = 0;
  for (const auto& r : records) {
    if (r.contains("outcome")) {
      EXPECT_EQ(r["outcome"], "blocked");
      EXPECT_EQ(r["targets"][0]["ns"], "shop.orders");
      ++blocked;
    } else {
      EXPECT_EQ(r["operator_action"], "reset");
    }
  }
  EXPECT_EQ(blocked, std::size_t{kThreads * kRecords / 2});
  std::filesystem::remove(path);
}

TEST(AuditLog, TheDecisionLogHasARecordAtOnceAndTheFileAfterFlush) {
  const auto path = temp_file("audit-decisions");
  DecisionLog decisions;
  AuditLog audit;
  audit.set_decisions(&decisions);
  std::string error;
  ASSERT_TRUE(audit.open(path, error)) << error;
  audit.write(blocked_delete(7));
  const auto recent = decisions.recent(10);
  ASSERT_EQ(recent.size(), 1u);
  EXPECT_EQ(json::parse(recent[0])["connection"], 7);
  audit.flush();
  const auto records = records_of(path);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0]["connection"], 7);
  std::filesystem::remove(path);
}

TEST(AuditLog, TimeIsAnIsoUtcStringWithMilliseconds) {
  DecisionLog decisions;
  AuditLog audit;
  audit.set_decisions(&decisions);
  audit.write(blocked_delete(1));
  audit.write_operator_action("reset", "alice", "b", "");
  const auto recent = decisions.recent(10);
  ASSERT_EQ(recent.size(), 2u);
  const std::regex iso(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)");
  for (const auto& line : recent) {
    const auto time = json::parse(line)["time"];
    ASSERT_TRUE(time.is_string()) << line;
    EXPECT_TRUE(std::regex_match(time.get<std::string>(), iso)) << line;
  }
}

TEST(AuditLog, RecordsAFullQueueLeavesOutAreCountedAndStillInTheDecisionLog) {
  testing::StalledPipe pipe("audit-stalled");
  ASSERT_TRUE(pipe.ok());
  Metrics metrics;
  DecisionLog decisions(100000);
  LineWriter::Limits limits;
  limits.max_queued_bytes = 4096;
  limits.wait_for_room = 20ms;
  AuditLog audit(limits);
  audit.set_metrics(&metrics);
  audit.set_decisions(&decisions);
  std::string error;
  ASSERT_TRUE(audit.open(pipe.path(), error)) << error;
  int written = 0;
  while (metrics.audit_dropped.load() < 3 && written < 100000) {
    audit.write(blocked_delete(static_cast<std::uint64_t>(written++)));
  }
  const auto dropped = metrics.audit_dropped.load();
  ASSERT_EQ(dropped, 3u) << "the stalled file never filled the queue";
  EXPECT_NE(metrics.render_prometheus().find("\nmongoguard_audit_dropped_total 3\n"),
            std::string::npos);
  EXPECT_EQ(decisions.recent(100000).size(), static_cast<std::size_t>(written));

  pipe.drain();
  audit.open("", error);  // writes what is queued, then closes the pipe
  pipe.join();
  EXPECT_EQ(records_in(pipe.received()).size(), static_cast<std::size_t>(written) - dropped);
}

// Whatever bytes a client or an operator chose, the record is one line of
// JSON: what is not UTF-8 becomes U+FFFD.
TEST(AuditLog, TextThatIsNotUtf8StillMakesARecord) {
  Metrics metrics;
  DecisionLog decisions(10);
  AuditLog audit;
  audit.set_metrics(&metrics);
  audit.set_decisions(&decisions);
  policy::Identity who;
  who.client_address = "127.0.0.1:5000";
  who.app = "a\"b\xc3\x1b[2K";
  who.user = "u\xff";
  policy::CommandInfo info;
  info.command = "delete";
  info.database = "shop\xc3";
  policy::Target target;
  target.op = policy::Operation::kDelete;
  target.ns = "shop\xc3.orders";
  target.statements = 1;
  info.targets.push_back(target);
  policy::Verdict verdict;
  verdict.action = verdict.would = policy::Action::kBlock;
  AuditRecord record(1, who, info, verdict, true);
  record.set_outcome("blocked");
  audit.write(record);
  ASSERT_TRUE(
      audit.write_operator_action("grant", "ghost\xc3", "cap:shop.orders", "1 document(s)"));
  const auto lines = decisions.recent(10);
  ASSERT_EQ(lines.size(), 2u);
  const auto op = json::parse(lines[1]);
  EXPECT_EQ(op["app"], "a\"b\xef\xbf\xbd\x1b[2K");
  EXPECT_EQ(op["user"], "u\xef\xbf\xbd");
  EXPECT_EQ(op["targets"][0]["ns"], "shop\xef\xbf\xbd.orders");
  EXPECT_EQ(json::parse(lines[0])["by"], "ghost\xef\xbf\xbd");
  EXPECT_EQ(metrics.audit_failures.load(), 0u);
}

// A file that refuses writes (/dev/full): lost lines counted, the problem said.
TEST(AuditLog, AFileThatRefusesWritesIsCountedAndSaid) {
  if (!std::filesystem::exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
  Metrics metrics;
  AuditLog audit;
  audit.set_metrics(&metrics);
  std::string error;
  ASSERT_TRUE(audit.open("/dev/full", error)) << error;
  EXPECT_EQ(audit.problem(), "");
  audit.write(blocked_delete(1));
  audit.write(blocked_delete(2));
  audit.flush();
  EXPECT_EQ(metrics.audit_failures.load(), 2u);
  EXPECT_EQ(audit.problem(), "writing to /dev/full failed: No space left on device");
}

}  // namespace
}  // namespace mongoguard::proxy
