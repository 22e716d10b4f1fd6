// Admission as two pure steps (plan, then reserve and judge) and the
// budget book's reservations: every rule of "a budget is a hard ceiling"
// tested without sockets.
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "policy/admission.h"
#include "policy/reply_facts.h"

namespace mongoguard::policy {
namespace {

using std::chrono::seconds;

Rule budget_rule(std::int64_t documents, bool preflight = true) {
  Rule r;
  r.name = "budget";
  r.action = Action::kHold;
  Limit limit;
  limit.documents = documents;
  limit.per = seconds(60);
  limit.preflight = preflight;
  r.limit = limit;
  return r;
}

ReserveRequest request(const Rule& rule, std::int64_t documents, std::string key = "k") {
  ReserveRequest r;
  r.rule = &rule;
  r.key = std::move(key);
  r.ns = "app.c";
  r.documents = documents;
  return r;
}

struct Json {
  explicit Json(const std::string& json) {
    bson_error_t error;
    doc = bson_new_from_json(reinterpret_cast<const std::uint8_t*>(json.data()),
                             static_cast<ssize_t>(json.size()), &error);
    EXPECT_NE(doc, nullptr) << error.message << " in " << json;
  }
  ~Json() { bson_destroy(doc); }
  Json(const Json&) = delete;
  Json& operator=(const Json&) = delete;
  bson_t* doc = nullptr;
};

CommandInfo command(const std::string& json) {
  Json body(json);
  auto info = classify_command(body.doc, "app");
  EXPECT_TRUE(info) << json;
  return info ? *info : CommandInfo{};
}

Policy policy_of(const Rule& rule) {
  Policy p;
  p.rules.push_back(rule);
  return p;
}

Headroom fixed_headroom(std::optional<std::int64_t> room) {
  return [room](const Rule&, const std::string&) { return room; };
}

TEST(BudgetReserve, ConcurrentReservationsNeverExceedTheBudget) {
  BudgetBook book;
  const auto rule = budget_rule(50);
  const TimePoint now{};
  std::atomic<int> passed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 25; ++i) {
        if (book.reserve({request(rule, 1)}, now).reserved) passed.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(passed.load(), 50) << "200 single deletes at once: exactly the budget passes";
  EXPECT_EQ(book.breaker("k", now)->used, 50);
  EXPECT_TRUE(book.breaker("k", now)->tripped) << "the 51st found nothing left and tripped it";
}

TEST(BudgetReserve, SettleLowersAReservationAndAnUnreadReplyLeavesItStanding) {
  BudgetBook book;
  const auto rule = budget_rule(50);
  const TimePoint now{};
  auto a = book.reserve({request(rule, 10)}, now);
  auto b = book.reserve({request(rule, 10)}, now);
  ASSERT_TRUE(a.reserved && b.reserved);
  EXPECT_EQ(book.breaker("k", now)->used, 20) << "reservations count before any reply";
  EXPECT_FALSE(book.settle(a.reservations[0], 3, now));
  EXPECT_EQ(book.breaker("k", now)->used, 13) << "settled at the real count";
  // b is never settled (w:0, no n, connection lost): it stands at 10.
  EXPECT_EQ(book.headroom(rule, "k", now), 37);
}

TEST(BudgetReserve, MoreThanTheBoundIsCountedAndTrips) {
  BudgetBook book;
  const auto rule = budget_rule(10);
  const TimePoint now{};
  auto a = book.reserve({request(rule, 8)}, now);
  ASSERT_TRUE(a.reserved);
  EXPECT_TRUE(book.settle(a.reservations[0], 12, now)) << "documents appeared after the count";
  EXPECT_EQ(book.breaker("k", now)->used, 12);
}

TEST(BudgetReserve, UnknownSizeIsChargedEverythingLeft) {
  BudgetBook book;
  const auto rule = budget_rule(50, /*preflight=*/false);
  const TimePoint now{};
  ASSERT_TRUE(book.reserve({request(rule, 20)}, now).reserved);
  auto r = request(rule, 0);
  r.everything_left = true;
  auto got = book.reserve({r}, now);
  ASSERT_TRUE(got.reserved);
  EXPECT_EQ(got.reservations[0].documents, 30);
  auto next = book.reserve({request(rule, 1)}, now);
  EXPECT_FALSE(next.reserved);
  EXPECT_EQ(next.admissions[0], Admission::kWouldTrip);
  EXPECT_EQ(book.headroom(rule, "k", now), -1) << "tripped: nothing to measure";
  // Settled at 5: the rest comes back.
  book.settle(got.reservations[0], 5, now);
  EXPECT_EQ(book.breaker("k", now)->used, 25);
}

TEST(BudgetReserve, UnboundedIsTooLargeOrTrips) {
  BudgetBook book;
  const auto rule = budget_rule(5);
  const TimePoint now{};
  auto r = request(rule, 0);
  r.unbounded = true;
  r.at_least = 6;
  auto got = book.reserve({r}, now);
  EXPECT_FALSE(got.reserved);
  EXPECT_EQ(got.admissions[0], Admission::kTooLarge);
  EXPECT_FALSE(book.breaker("k", now)->tripped) << "one oversized operation trips nothing";
  ASSERT_TRUE(book.reserve({request(rule, 5)}, now).reserved);
  got = book.reserve({r}, now);
  EXPECT_EQ(got.admissions[0], Admission::kWouldTrip);
  EXPECT_TRUE(got.tripped_now[0]);
}

TEST(BudgetReserve, AllOrNothingAcrossBudgets) {
  BudgetBook book;
  const auto small = budget_rule(5);
  const auto large = budget_rule(100);
  const TimePoint now{};
  auto got = book.reserve({request(large, 10, "large"), request(small, 10, "small")}, now);
  EXPECT_FALSE(got.reserved);
  EXPECT_EQ(got.admissions[0], Admission::kPass);
  EXPECT_EQ(got.admissions[1], Admission::kTooLarge);
  EXPECT_EQ(book.breaker("large", now)->used, 0) << "nothing reserved when one does not fit";
  // Forced (an approved hold): both are counted.
  got = book.reserve({request(large, 10, "large"), request(small, 10, "small")}, now, true);
  EXPECT_TRUE(got.reserved);
  EXPECT_EQ(book.breaker("large", now)->used, 10);
  EXPECT_EQ(book.breaker("small", now)->used, 10);
}

TEST(BudgetReserve, DryRunBudgetsAreCountedNotEnforced) {
  BudgetBook book;
  const auto rule = budget_rule(5);
  const TimePoint now{};
  auto r = request(rule, 8);
  r.enforced = false;
  auto got = book.reserve({r}, now);
  EXPECT_TRUE(got.reserved);
  EXPECT_EQ(got.admissions[0], Admission::kTooLarge);
  EXPECT_EQ(book.breaker("k", now)->used, 8);
}

TEST(BudgetReserve, AllowanceIsDrawnAndGivenBack) {
  BudgetBook book;
  const auto rule = budget_rule(5);
  const TimePoint now{};
  ASSERT_TRUE(book.reserve({request(rule, 5)}, now).reserved);
  ASSERT_TRUE(book.grant("k", 20, std::nullopt, now));
  auto got = book.reserve({request(rule, 15)}, now);
  ASSERT_TRUE(got.reserved);
  EXPECT_EQ(got.reservations[0].from_allowance, 15);
  EXPECT_EQ(book.breaker("k", now)->allowance_documents, 5);
  book.settle(got.reservations[0], 4, now);
  EXPECT_EQ(book.breaker("k", now)->allowance_documents, 16) << "the unused 11 come back";
  EXPECT_EQ(book.breaker("k", now)->used, 5);
}

TEST(AdmissionPlan, SinglesCountOneAndMultiStatementsAreMeasuredCapped) {
  const auto rule = budget_rule(50);
  const auto pol = policy_of(rule);
  const auto info = command(
      R"({"delete": "c", "deletes": [{"q": {"_id": 1}, "limit": 1},
          {"q": {"x": {"$gt": 1}}, "limit": 0, "collation": {"locale": "fr"}},
          {"q": {"y": 2}, "limit": 0}]})");
  const auto plan = plan_admission(pol, info, {}, fixed_headroom(12));
  ASSERT_EQ(plan.charges.size(), 1u);
  EXPECT_EQ(plan.charges[0].charge.known, 1);
  ASSERT_EQ(plan.measurements.size(), 2u) << "every multi statement, not only the first";
  EXPECT_EQ(plan.measurements[0].cap, 13) << "what is left plus one";
  ASSERT_NE(plan.measurements[0].statement, nullptr);
  EXPECT_FALSE(plan.measurements[0].statement->options.empty()) << "collation kept";
  EXPECT_TRUE(plan.measurements[1].statement->options.empty());

  // 3 + 4 measured: 1 + 7 = 8 reserved.
  const auto set = reservation_requests(pol, plan, {{3, ""}, {4, ""}});
  ASSERT_EQ(set.requests.size(), 1u);
  EXPECT_EQ(set.requests[0].documents, 8);
  EXPECT_FALSE(set.requests[0].unbounded);
  // A count that reached its cap: more than is left.
  const auto capped = reservation_requests(pol, plan, {{3, ""}, {13, ""}});
  EXPECT_TRUE(capped.requests[0].unbounded);
  EXPECT_EQ(capped.requests[0].at_least, 13);
}

TEST(AdmissionPlan, FreePassageMeasuresNothingAndPreflightOffChargesAllThatIsLeft) {
  const auto info = command(R"({"delete": "c", "deletes": [{"q": {"x": 1}, "limit": 0}]})");
  const auto on = policy_of(budget_rule(50));
  EXPECT_TRUE(plan_admission(on, info, {}, fixed_headroom(std::nullopt)).measurements.empty());
  const auto off = policy_of(budget_rule(50, /*preflight=*/false));
  const auto plan = plan_admission(off, info, {}, fixed_headroom(50));
  EXPECT_TRUE(plan.measurements.empty());
  EXPECT_EQ(plan.charges[0].unmeasured, 1);
  const auto set = reservation_requests(off, plan, {});
  EXPECT_TRUE(set.requests[0].everything_left);
}

TEST(AdmissionPlan, ATrippedBreakerMeasuresNothing) {
  BudgetBook book;
  const auto rule = budget_rule(2);
  const auto pol = policy_of(rule);
  const TimePoint now{};
  const auto info = command(R"({"delete": "c", "deletes": [{"q": {"x": 1}, "limit": 0}]})");
  auto room = [&](const Rule& r, const std::string& key) { return book.headroom(r, key, now); };
  const auto key = plan_admission(pol, info, {}, room).charges[0].charge.key;
  EXPECT_TRUE(book.record(rule, key, "app.c", 2, now));
  const auto plan = plan_admission(pol, info, {}, room);
  EXPECT_TRUE(plan.measurements.empty()) << "refused whatever its size";
  const auto set = reservation_requests(pol, plan, {});
  EXPECT_EQ(book.reserve(set.requests, now).admissions[0], Admission::kTripped);
}

TEST(AdmissionPlan, AMultiUpsertThatMatchesNothingCountsOne) {
  const auto pol = policy_of(budget_rule(50));
  const auto info = command(
      R"({"update": "c", "updates": [{"q": {"_id": "a"}, "u": {"$set": {"v": 1}}, "multi": true,
          "upsert": true}, {"q": {"_id": "b"}, "u": {"$set": {"v": 1}}, "multi": true}]})");
  const auto plan = plan_admission(pol, info, {}, fixed_headroom(50));
  ASSERT_EQ(plan.measurements.size(), 2u);
  const auto set = reservation_requests(pol, plan, {{0, ""}, {0, ""}});
  EXPECT_EQ(set.requests[0].documents, 1) << "the upsert inserts one; the other matches none";
}

TEST(AdmissionPlan, ACeilingCapsEveryGroupTogether) {
  BudgetBook book;
  auto rule = budget_rule(50);
  rule.limit->group_by_app = true;
  rule.limit->ceiling = 60;
  const auto pol = policy_of(rule);
  const TimePoint now{};
  auto room = [&](const Rule& r, const std::string& key) { return book.headroom(r, key, now); };
  std::string deletes;
  for (int i = 0; i < 40; ++i)
    deletes +=
        std::string(i ? "," : "") + R"({"q": {"_id": )" + std::to_string(i) + R"(}, "limit": 1})";
  const auto info = command(R"({"delete": "c", "deletes": [)" + deletes + "]}");
  int passed = 0;
  for (const char* app : {"a", "b", "c"}) {
    Identity who;
    who.app = app;
    const auto plan = plan_admission(pol, info, who, room);
    ASSERT_EQ(plan.charges.size(), 2u) << "the group's budget and the ceiling";
    const auto set = reservation_requests(pol, plan, {});
    const auto got = book.reserve(set.requests, now);
    if (got.reserved) ++passed;
    if (!got.reserved) {
      const auto verdict = judge_budgets(pol, plan, set, got);
      EXPECT_NE(verdict.reason.find("ceiling of 60"), std::string::npos) << verdict.reason;
    }
  }
  EXPECT_EQ(passed, 1) << "40 + 40 > 60: a second app name does not buy a second budget";
  EXPECT_EQ(book.breaker("budget:app.c", now)->used, 40);
}

TEST(AdmissionPlan, UnacknowledgedWritesAreMeasuredLikeAnyOther) {
  const auto pol = policy_of(budget_rule(50));
  const auto info = command(
      R"({"delete": "c", "deletes": [{"q": {"x": 1}, "limit": 0}], "writeConcern": {"w": 0}})");
  EXPECT_EQ(plan_admission(pol, info, {}, fixed_headroom(50)).measurements.size(), 1u);
}

TEST(AdmissionPlan, BulkWriteOpsAndWholeNamespacesAreBounded) {
  auto rule = budget_rule(50);
  const auto pol = policy_of(rule);
  const auto bulk = command(
      R"({"bulkWrite": 1, "nsInfo": [{"ns": "app.a"}, {"ns": "app.b"}],
          "ops": [{"delete": 0, "filter": {"x": 1}, "multi": true},
                  {"update": 1, "filter": {}, "updateMods": {"$set": {"y": 1}}, "multi": true},
                  {"delete": 1.0, "filter": {"_id": 3}}]})");
  const auto plan = plan_admission(pol, bulk, {}, fixed_headroom(50));
  EXPECT_EQ(plan.measurements.size(), 2u);
  std::int64_t known = 0;
  for (const auto& c : plan.charges) known += c.charge.known;
  EXPECT_EQ(known, 1) << "the delete with a double nsInfo index is judged too";
  const auto drop_db = command(R"({"dropDatabase": 1})");
  const auto dplan = plan_admission(pol, drop_db, {}, fixed_headroom(50));
  ASSERT_EQ(dplan.charges.size(), 1u);
  EXPECT_TRUE(dplan.charges[0].unbounded) << "no count bounds a whole database";
  const auto drop = command(R"({"drop": "c"})");
  const auto cplan = plan_admission(pol, drop, {}, fixed_headroom(50));
  ASSERT_EQ(cplan.measurements.size(), 1u);
  EXPECT_EQ(cplan.measurements[0].statement, nullptr) << "the whole collection is counted";
}

TEST(AdmissionJudge, FailedMeasurementFollowsOnPreflightError) {
  auto rule = budget_rule(50);
  const auto pol = policy_of(rule);
  const auto info = command(R"({"delete": "c", "deletes": [{"q": {"x": 1}, "limit": 0}]})");
  const auto plan = plan_admission(pol, info, {}, fixed_headroom(50));
  const auto set = reservation_requests(pol, plan, {{std::nullopt, "timed out"}});
  ASSERT_EQ(set.failed.size(), 1u);
  const auto verdict = judge_budgets(pol, plan, set, ReserveResult{});
  EXPECT_EQ(verdict.action, Action::kHold);
  EXPECT_NE(verdict.reason.find("could not be measured (timed out)"), std::string::npos);

  auto lenient = rule;
  lenient.limit->on_preflight_error = Action::kAllow;
  const auto lpol = policy_of(lenient);
  const auto lplan = plan_admission(lpol, info, {}, fixed_headroom(50));
  const auto lset = reservation_requests(lpol, lplan, {{std::nullopt, "timed out"}});
  EXPECT_TRUE(lset.failed.empty());
  EXPECT_TRUE(lset.requests[0].everything_left) << "allowed, but charged all that is left";
}

TEST(AdmissionJudge, TooLargeNamesTheSizeAndWhatIsLeft) {
  BudgetBook book;
  const auto rule = budget_rule(40);
  const auto pol = policy_of(rule);
  const TimePoint now{};
  const auto info = command(R"({"delete": "c", "deletes": [{"q": {"x": 1}, "limit": 0}]})");
  const auto plan = plan_admission(pol, info, {}, fixed_headroom(40));
  ASSERT_TRUE(book.reserve({request(rule, 30, plan.charges[0].charge.key)}, now).reserved);
  const auto set = reservation_requests(pol, plan, {{20, ""}});
  const auto got = book.reserve(set.requests, now);
  const auto verdict = judge_budgets(pol, plan, set, got);
  EXPECT_EQ(verdict.action, Action::kHold);
  EXPECT_EQ(verdict.reason,
            "this operation would affect 20 documents, more than the 10 left of the budget of 40 "
            "per 1m");
}

TEST(AdmissionSettle, CountsSplitConservatively) {
  std::vector<Reservation> rs(2);
  rs[0].documents = 5;
  rs[1].documents = 3;
  EXPECT_EQ(settlement(rs, std::nullopt), (std::vector<std::int64_t>{5, 3})) << "stands";
  EXPECT_EQ(settlement(rs, 4), (std::vector<std::int64_t>{4, 3}));
  EXPECT_EQ(settlement(rs, 10), (std::vector<std::int64_t>{7, 5}));
  EXPECT_EQ(settlement(rs, 0), (std::vector<std::int64_t>{0, 0}));
}

TEST(AdmissionSettle, EveryReplyShapeIsRead) {
  auto affected = [](const std::string& json) {
    Json reply(json);
    return documents_affected(read_reply_facts(reply.doc));
  };
  EXPECT_EQ(affected(R"({"ok": 1, "n": 7})"), 7);
  EXPECT_EQ(affected(R"({"ok": 1, "n": 2, "nModified": 1})"), 2);
  EXPECT_EQ(affected(R"({"ok": 1, "lastErrorObject": {"n": 1}, "value": null})"), 1);
  EXPECT_EQ(affected(R"({"ok": 1, "nErrors": 0, "nInserted": 4, "nMatched": 3, "nModified": 2,
                         "nUpserted": 1, "nDeleted": 5, "cursor": {"id": 0, "firstBatch": []}})"),
            9);
  EXPECT_EQ(affected(R"({"ok": 1})"), std::nullopt) << "w:0 answered without n";
  EXPECT_EQ(affected(R"({"ok": 0, "errmsg": "x", "code": 2})"), std::nullopt);
  EXPECT_EQ(affected(R"({"ok": 1, "n": 2, "writeErrors": [{"index": 2, "code": 11000}]})"), 2);
}

TEST(ClassifyJudgeOrRefuse, PartsThatCannotBeJudgedAreNamed) {
  auto unjudged = [](const std::string& json) { return command(json).unjudged; };
  EXPECT_EQ(unjudged(R"({"delete": "c", "deletes": [{"q": {}, "limit": 0}]})"), "");
  EXPECT_NE(unjudged(R"({"delete": "c", "deletes": {"q": {}}})"), "");
  EXPECT_NE(unjudged(R"({"delete": "c", "deletes": [{"q": "x", "limit": 0}]})"), "");
  EXPECT_NE(unjudged(R"({"delete": "c", "deletes": [5]})"), "");
  EXPECT_NE(unjudged(R"({"delete": "c"})"), "");
  EXPECT_NE(unjudged(R"({"update": "c", "updates": [{"q": {}, "u": {"$set": {"a": 1}},
                         "multi": "yes"}]})"),
            "");
  EXPECT_NE(unjudged(R"({"bulkWrite": 1, "nsInfo": [{"ns": "app.c"}],
                         "ops": [{"remove": 0, "filter": {}}]})"),
            "")
      << "an unknown bulkWrite op";
  EXPECT_NE(unjudged(R"({"bulkWrite": 1, "nsInfo": [{"ns": "app.c"}],
                         "ops": [{"delete": 0.5, "filter": {}}]})"),
            "");
  EXPECT_EQ(unjudged(R"({"bulkWrite": 1, "nsInfo": [{"ns": "app.c"}],
                         "ops": [{"delete": 0.0, "filter": {}, "multi": true}]})"),
            "");
}

}  // namespace
}  // namespace mongoguard::policy
