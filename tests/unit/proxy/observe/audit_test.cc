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

#include "bson/redact.h"
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
  audit.write_operator_action("grant", "ghost\xc3", "cap:shop.orders", "1 document(s)");
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

// The record is written as JSON directly; it must be the bytes libbson's
// relaxed extended JSON writer gives for the same fields as a document, so
// that every reader of the audit log sees what it always saw.
namespace reference {

bson_t* filter_doc(const char* json) {
  bson_error_t error;
  bson_t* doc = bson_new_from_json(reinterpret_cast<const std::uint8_t*>(json), -1, &error);
  EXPECT_NE(doc, nullptr) << error.message;
  return doc;
}

std::vector<std::uint8_t> bytes_of(const bson_t* doc) {
  return {bson_get_data(doc), bson_get_data(doc) + doc->len};
}

}  // namespace reference

TEST(AuditRecord, IsTheTextLibbsonWritesForTheSameDocument) {
  using reference::bytes_of;
  using reference::filter_doc;
  const char* filters[] = {
      R"({"_id": {"$oid": "65a1b2c3d4e5f60718293a4b"}, "n": 1.5, "s": "q\"\\\n\t\u0001\u007f",
          "a": [1, {"b": {}}, []], "d": {"$date": "2024-01-02T03:04:05.678Z"}, "z": null})",
      R"({})",
      R"({"x": {"$in": [1, 2, 3]}, "y": {"$regex": "^a", "$options": "i"}, "big": {"$numberLong": "9007199254740993"}})",
  };
  for (const bool redact : {false, true}) {
    policy::Identity who;
    who.client_address = "[::1]:5000";
    who.app = "sh\"ell\\\x01\x7f\n";
    who.user = "al\xc3\xa9ice@admin";
    who.driver = "pymongo 4.6 \xff";
    policy::CommandInfo info;
    info.command = "delete";
    info.database = "shop";
    info.more_to_come = true;
    for (const char* text_of : filters) {
      bson_t* doc = filter_doc(text_of);
      policy::Target target;
      target.op = policy::Operation::kDelete;
      target.ns = "shop.orders";
      target.statements = 3;
      target.multi_statements = 2;
      target.filter = policy::FilterShape::kFiltered;
      target.filter_bson = bytes_of(doc);
      bson_destroy(doc);
      info.targets.push_back(target);
    }
    policy::Target drop;  // no filter at all
    drop.op = policy::Operation::kDrop;
    drop.ns = "shop.tmp";
    drop.statements = 1;
    info.targets.push_back(drop);
    policy::Rule a, b;
    a.name = "cap \"deletes\"";
    b.name = "log";
    policy::Verdict verdict;
    verdict.action = policy::Action::kAllow;
    verdict.would = policy::Action::kBlock;
    verdict.dry_run = true;
    verdict.rule = &a;
    verdict.matched = {&a, &b};
    AuditRecord record(42, who, info, verdict, redact);
    record.set_outcome("forwarded");
    policy::ReplyFacts facts;
    facts.ok = false;
    facts.n = 2;
    facts.n_modified = 0;
    facts.write_errors = 1;
    facts.errmsg = "E11000 \"dup\"\tkey";
    record.set_reply(facts);
    const std::string text = record.to_json();
    const auto time = json::parse(text)["time"].get<std::string>();

    bson_t expected = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&expected, "time", time.c_str());
    BSON_APPEND_INT64(&expected, "connection", 42);
    BSON_APPEND_UTF8(&expected, "client", "[::1]:5000");
    BSON_APPEND_UTF8(&expected, "app", "sh\"ell\\\x01\x7f\n");
    BSON_APPEND_UTF8(&expected, "user", "al\xc3\xa9ice@admin");
    BSON_APPEND_UTF8(&expected, "driver", "pymongo 4.6 \xef\xbf\xbd");
    BSON_APPEND_UTF8(&expected, "command", "delete");
    BSON_APPEND_UTF8(&expected, "database", "shop");
    bson_t targets;
    BSON_APPEND_ARRAY_BEGIN(&expected, "targets", &targets);
    int index = 0;
    for (const char* text_of : filters) {
      bson_t t;
      const std::string key = std::to_string(index++);
      bson_append_document_begin(&targets, key.c_str(), -1, &t);
      BSON_APPEND_UTF8(&t, "operation", "delete");
      BSON_APPEND_UTF8(&t, "ns", "shop.orders");
      BSON_APPEND_INT64(&t, "statements", 3);
      BSON_APPEND_INT64(&t, "multi", 2);
      BSON_APPEND_BOOL(&t, "unfiltered", false);
      bson_t* doc = filter_doc(text_of);
      bson_t redacted = BSON_INITIALIZER;
      ASSERT_TRUE(wire::redact_document(doc, &redacted));
      BSON_APPEND_DOCUMENT(&t, "filter", redact ? &redacted : doc);
      bson_destroy(&redacted);
      bson_destroy(doc);
      bson_append_document_end(&targets, &t);
    }
    bson_t t;
    bson_append_document_begin(&targets, "3", -1, &t);
    BSON_APPEND_UTF8(&t, "operation", "drop");
    BSON_APPEND_UTF8(&t, "ns", "shop.tmp");
    BSON_APPEND_INT64(&t, "statements", 1);
    bson_append_document_end(&targets, &t);
    bson_append_array_end(&expected, &targets);
    BSON_APPEND_INT64(&expected, "statements", 10);
    BSON_APPEND_UTF8(&expected, "verdict", "would block");
    BSON_APPEND_BOOL(&expected, "dry_run", true);
    BSON_APPEND_UTF8(&expected, "rule", "cap \"deletes\"");
    bson_t rules;
    BSON_APPEND_ARRAY_BEGIN(&expected, "matched_rules", &rules);
    BSON_APPEND_UTF8(&rules, "0", "cap \"deletes\"");
    BSON_APPEND_UTF8(&rules, "1", "log");
    bson_append_array_end(&expected, &rules);
    BSON_APPEND_BOOL(&expected, "unacknowledged", true);
    BSON_APPEND_UTF8(&expected, "outcome", "forwarded");
    BSON_APPEND_BOOL(&expected, "ok", false);
    BSON_APPEND_INT64(&expected, "n", 2);
    BSON_APPEND_INT64(&expected, "n_modified", 0);
    BSON_APPEND_INT64(&expected, "write_errors", 1);
    BSON_APPEND_UTF8(&expected, "errmsg", "E11000 \"dup\"\tkey");
    char* rendered = bson_as_relaxed_extended_json(&expected, nullptr);
    ASSERT_NE(rendered, nullptr);
    EXPECT_EQ(text, std::string(rendered)) << (redact ? "redacted" : "as sent");
    bson_free(rendered);
    bson_destroy(&expected);
  }
}

// A filter that is not UTF-8 is left out, and the record says so.
// The line is closed in place when written; a field added later (the
// reply's facts after a write at refusal time) still lands inside it.
TEST(AuditRecord, AFieldAddedAfterTheTextWasTakenIsInsideTheRecord) {
  AuditRecord record = blocked_delete(3);
  const std::string first = record.text();
  ASSERT_TRUE(first.ends_with("\"outcome\" : \"blocked\" }")) << first;
  EXPECT_EQ(record.to_json(), first);
  policy::ReplyFacts facts;
  facts.ok = true;
  facts.n = 1;
  record.set_reply(facts);
  const std::string second = record.text();
  EXPECT_EQ(second, first.substr(0, first.size() - 2) + ", \"ok\" : true, \"n\" : 1 }");
  const auto parsed = json::parse(second);
  EXPECT_EQ(parsed["n"], 1);
  EXPECT_EQ(parsed["outcome"], "blocked");
}

TEST(AuditRecord, ASecondOutcomeReplacesTheFirst) {
  AuditRecord record = blocked_delete(4);
  const std::string first = record.text();
  record.set_outcome("forwarded; no reply (reservation stands)");
  const std::string second = record.text();
  EXPECT_EQ(second, first.substr(0, first.size() - std::string_view("\"blocked\" }").size()) +
                        "\"forwarded; no reply (reservation stands)\" }");
  // Also after other fields: still one outcome, now the last field.
  policy::ReplyFacts facts;
  facts.ok = true;
  record.set_reply(facts);
  record.set_outcome("settled");
  const std::string third = record.text();
  std::size_t outcomes = 0;
  for (auto at = third.find("\"outcome\""); at != std::string::npos;
       at = third.find("\"outcome\"", at + 1)) {
    ++outcomes;
  }
  EXPECT_EQ(outcomes, 1u) << third;
  EXPECT_TRUE(third.ends_with(", \"ok\" : true, \"outcome\" : \"settled\" }")) << third;
  EXPECT_EQ(json::parse(third)["outcome"], "settled");
}

TEST(AuditRecord, AFilterThatIsNotUtf8IsLeftOutAndSaid) {
  bson_t doc = BSON_INITIALIZER;
  bson_append_utf8(&doc, "k", 1, "\xff\xfe", 2);
  policy::CommandInfo info;
  info.command = "delete";
  policy::Target target;
  target.filter = policy::FilterShape::kFiltered;
  target.filter_bson = reference::bytes_of(&doc);
  bson_destroy(&doc);
  info.targets.push_back(target);
  const AuditRecord record(1, {}, info, {}, false);
  const auto parsed = json::parse(record.to_json());
  EXPECT_FALSE(parsed["targets"][0].contains("filter"));
  EXPECT_EQ(parsed["targets"][0]["filter_not_shown"], "not valid BSON or not UTF-8");
}

}  // namespace
}  // namespace mongoguard::proxy
