#include "proxy/journal/restore_plan.h"

#include <gtest/gtest.h>

#include "proxy/journal/journal_test_util.h"

namespace mongoguard::journal {
namespace {

using testing::bson_of;

constexpr const char* kNs = "app.family";

Bson id_of(int id) { return bson_of("{\"_id\": " + std::to_string(id) + "}"); }

Bson version(int id, const std::string& name) {
  return bson_of("{\"_id\": " + std::to_string(id) + ", \"name\": \"" + name + "\"}");
}

Row deleted(std::int64_t row_id, int id, const std::string& before, std::int64_t time_ms = 1) {
  Row row;
  row.id = row_id;
  row.time_ms = time_ms;
  row.op = Operation::kDelete;
  row.ns = kNs;
  row.doc_id = id_of(id);
  row.before = version(id, before);
  return row;
}

Row updated(std::int64_t row_id, int id, const std::string& before, const std::string& after,
            std::int64_t time_ms = 1) {
  Row row = deleted(row_id, id, before, time_ms);
  row.op = Operation::kUpdate;
  row.after = version(id, after);
  return row;
}

CurrentDocuments now(std::initializer_list<std::pair<int, std::string>> docs) {
  CurrentDocuments current;
  for (const auto& [id, name] : docs) current[kNs][id_of(id)] = version(id, name);
  return current;
}

// A copy, so that it outlives a plan the caller did not keep.
RestoreStep only_step(const RestorePlan& plan) {
  EXPECT_EQ(plan.steps.size(), 1u);
  return plan.steps.at(0);
}

TEST(RestorePlanTest, ADeletedDocumentStillAbsentIsInsertedBack) {
  const auto plan = plan_restore({deleted(10, 1, "v1")}, {}, false);
  const auto& step = only_step(plan);
  EXPECT_EQ(step.action, RestoreAction::kInsert);
  EXPECT_EQ(step.ns, kNs);
  EXPECT_EQ(step.id, id_of(1));
  EXPECT_EQ(step.document, version(1, "v1"));
  EXPECT_EQ(step.row_ids, std::vector<std::int64_t>{10});
  EXPECT_FALSE(step.forced);
}

TEST(RestorePlanTest, AnUpdatedDocumentAsTheWriteLeftItIsReplaced) {
  const auto plan = plan_restore({updated(10, 1, "v1", "v2")}, now({{1, "v2"}}), false);
  const auto& step = only_step(plan);
  EXPECT_EQ(step.action, RestoreAction::kReplace);
  EXPECT_EQ(step.document, version(1, "v1"));
  EXPECT_EQ(step.row_ids, std::vector<std::int64_t>{10});
}

TEST(RestorePlanTest, AnUpdatedDocumentChangedSinceIsAConflict) {
  const auto plan = plan_restore({updated(10, 1, "v1", "v2")}, now({{1, "v3"}}), false);
  const auto& step = only_step(plan);
  EXPECT_EQ(step.action, RestoreAction::kConflict);
  EXPECT_EQ(step.conflict, "changed since");
  EXPECT_TRUE(step.row_ids.empty());
  EXPECT_TRUE(step.document.empty());
}

TEST(RestorePlanTest, TheComparisonIsByteForByte) {
  // Same field and value, but a double instead of an int32: not the same BSON.
  Row row = updated(10, 1, "v1", "v2");
  row.after = bson_of(R"({"_id": 1, "n": {"$numberInt": "1"}})");
  CurrentDocuments current;
  current[kNs][id_of(1)] = bson_of(R"({"_id": 1, "n": {"$numberDouble": "1.0"}})");
  EXPECT_EQ(only_step(plan_restore({row}, current, false)).action, RestoreAction::kConflict);
}

TEST(RestorePlanTest, AnUpdatedDocumentDeletedSinceIsAConflict) {
  const auto& step = only_step(plan_restore({updated(10, 1, "v1", "v2")}, {}, false));
  EXPECT_EQ(step.action, RestoreAction::kConflict);
  EXPECT_EQ(step.conflict, "deleted since it was changed");
}

TEST(RestorePlanTest, ADeletedDocumentReCreatedSinceIsAConflict) {
  const auto& step = only_step(plan_restore({deleted(10, 1, "v1")}, now({{1, "new"}}), false));
  EXPECT_EQ(step.action, RestoreAction::kConflict);
  EXPECT_EQ(step.conflict, "re-created since it was deleted");
}

TEST(RestorePlanTest, ForceOverwritesConflicts) {
  const std::vector<Row> rows{deleted(10, 1, "v1"), updated(11, 2, "a", "b"),
                              updated(12, 3, "x", "y")};
  const auto plan = plan_restore(rows, now({{1, "new"}, {2, "c"}}), true);
  ASSERT_EQ(plan.steps.size(), 3u);
  // Re-created: replaced with the before-image.
  EXPECT_EQ(plan.steps[0].action, RestoreAction::kReplace);
  EXPECT_TRUE(plan.steps[0].forced);
  EXPECT_EQ(plan.steps[0].document, version(1, "v1"));
  EXPECT_EQ(plan.steps[0].conflict, "re-created since it was deleted");
  // Changed since: replaced.
  EXPECT_EQ(plan.steps[1].action, RestoreAction::kReplace);
  EXPECT_TRUE(plan.steps[1].forced);
  EXPECT_EQ(plan.steps[1].row_ids, std::vector<std::int64_t>{11});
  // Deleted since: inserted.
  EXPECT_EQ(plan.steps[2].action, RestoreAction::kInsert);
  EXPECT_TRUE(plan.steps[2].forced);
  EXPECT_EQ(plan.forced(), 3u);
}

TEST(RestorePlanTest, ForceLeavesStepsWithoutConflictUnforced) {
  const auto& step = only_step(plan_restore({deleted(10, 1, "v1")}, {}, true));
  EXPECT_EQ(step.action, RestoreAction::kInsert);
  EXPECT_FALSE(step.forced);
  EXPECT_TRUE(step.conflict.empty());
}

TEST(RestorePlanTest, RestoredRowsAreSkipped) {
  Row row = deleted(10, 1, "v1");
  row.restored_at_ms = 5;
  row.restored_by = "alice";
  const auto& step = only_step(plan_restore({row}, now({{1, "v1"}}), true));
  EXPECT_EQ(step.action, RestoreAction::kAlreadyRestored);
  EXPECT_TRUE(step.row_ids.empty());
}

TEST(RestorePlanTest, AnUpdateThenADeleteGoesBackToTheOldestBeforeImage) {
  // Given newest first, as the store lists them.
  const std::vector<Row> rows{deleted(11, 1, "v2", 200), updated(10, 1, "v1", "v2", 100)};
  const auto& step = only_step(plan_restore(rows, {}, false));
  EXPECT_EQ(step.action, RestoreAction::kInsert);
  EXPECT_EQ(step.document, version(1, "v1"));
  EXPECT_EQ(step.row_ids, (std::vector<std::int64_t>{10, 11}));
}

TEST(RestorePlanTest, AnUpdateThenADeleteIsCheckedAgainstTheNewestState) {
  // After the delete the document must be absent; present means re-created.
  const std::vector<Row> rows{updated(10, 1, "v1", "v2", 100), deleted(11, 1, "v2", 200)};
  EXPECT_EQ(only_step(plan_restore(rows, now({{1, "v2"}}), false)).action,
            RestoreAction::kConflict);
}

TEST(RestorePlanTest, TwoUpdatesAreCheckedAgainstTheLastAfterImage) {
  const std::vector<Row> rows{updated(10, 1, "v1", "v2", 100), updated(11, 1, "v2", "v3", 200)};
  EXPECT_EQ(only_step(plan_restore(rows, now({{1, "v2"}}), false)).action,
            RestoreAction::kConflict);
  const auto& step = only_step(plan_restore(rows, now({{1, "v3"}}), false));
  EXPECT_EQ(step.action, RestoreAction::kReplace);
  EXPECT_EQ(step.document, version(1, "v1"));
}

TEST(RestorePlanTest, OnlyRowsNotYetRestoredCount) {
  // Deleted, restored, then deleted again: the second delete is what is undone.
  Row first = deleted(10, 1, "v1", 100);
  first.restored_at_ms = 150;
  const std::vector<Row> rows{first, deleted(11, 1, "v1-again", 200)};
  const auto& step = only_step(plan_restore(rows, {}, false));
  EXPECT_EQ(step.action, RestoreAction::kInsert);
  EXPECT_EQ(step.document, version(1, "v1-again"));
  EXPECT_EQ(step.row_ids, std::vector<std::int64_t>{11});
}

TEST(RestorePlanTest, TheSameIdInTwoNamespacesIsTwoDocuments) {
  Row other = deleted(11, 1, "other");
  other.ns = "app.orders";
  const auto plan = plan_restore({deleted(10, 1, "v1"), other}, now({{1, "v1"}}), false);
  ASSERT_EQ(plan.steps.size(), 2u);
  EXPECT_EQ(plan.steps[0].ns, "app.family");
  EXPECT_EQ(plan.steps[0].action, RestoreAction::kConflict);
  EXPECT_EQ(plan.steps[1].ns, "app.orders");
  EXPECT_EQ(plan.steps[1].action, RestoreAction::kInsert);
  EXPECT_EQ(plan.count(RestoreAction::kConflict), 1u);
  EXPECT_EQ(plan.count(RestoreAction::kInsert), 1u);
}

TEST(RestorePlanTest, ActionsHaveStableNames) {
  EXPECT_STREQ(restore_action_name(RestoreAction::kInsert), "insert");
  EXPECT_STREQ(restore_action_name(RestoreAction::kReplace), "replace");
  EXPECT_STREQ(restore_action_name(RestoreAction::kConflict), "conflict");
  EXPECT_STREQ(restore_action_name(RestoreAction::kAlreadyRestored), "already_restored");
}

}  // namespace
}  // namespace mongoguard::journal
