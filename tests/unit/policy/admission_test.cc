// Admission as two pure steps (plan, then reserve and judge) and the
// budget book's reservations: every rule of "a budget is a hard ceiling"
// tested without sockets.
#include "policy/admission.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "policy/reply_facts.h"

namespace mongoguard::policy {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

Rule budget_rule(std::int64_t documents, bool preflight = true) {
  Rule r;
  r.name = "budget";
  r.action = Action::kHold;
  Limit limit;
  limit.windows.push_back({.documents = documents, .per = seconds(60)});
  limit.preflight = preflight;
  r.limit = limit;
  return r;
}

ReserveRequest request(const Rule& rule, std::int64_t documents, std::string key = "k") {
  ReserveRequest r;
  r.rule = &rule;
  r.key = std::move(key);
  r.ns = "app.c";
  r.limit = rule.limit->windows[0].documents;
  r.per = rule.limit->windows[0].per;
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
  return [room](const std::string&, std::int64_t) { return room; };
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
  EXPECT_EQ(book.headroom("k", 50, now), 37);
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
  EXPECT_EQ(book.headroom("k", 50, now), -1) << "tripped: nothing to measure";
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
  auto room = [&](const std::string& key, std::int64_t limit) {
    return book.headroom(key, limit, now);
  };
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
  rule.limit->windows[0].ceiling = 60;
  const auto pol = policy_of(rule);
  const TimePoint now{};
  auto room = [&](const std::string& key, std::int64_t limit) {
    return book.headroom(key, limit, now);
  };
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
  rs[0].ns = "app.a";
  rs[0].documents = 5;
  rs[1].ns = "app.b";
  rs[1].documents = 3;
  EXPECT_EQ(settlement(rs, std::nullopt), (std::vector<std::int64_t>{5, 3})) << "stands";
  EXPECT_EQ(settlement(rs, 4), (std::vector<std::int64_t>{4, 3}));
  EXPECT_EQ(settlement(rs, 10), (std::vector<std::int64_t>{7, 5}));
  EXPECT_EQ(settlement(rs, 0), (std::vector<std::int64_t>{0, 0}));
}

TEST(AdmissionSettle, KeysOnTheSameDocumentsAreEachChargedTheReply) {
  // Two windows (or a ceiling beside a group's budget) reserve the same 5
  // documents; the reply says 8 (documents appeared after the count). The
  // command reserved 5, not 10: each key is charged all 8.
  std::vector<Reservation> rs(3);
  rs[0].ns = rs[1].ns = "app.a";
  rs[0].documents = rs[1].documents = 5;
  rs[2].ns = "app.b";
  rs[2].documents = 2;
  EXPECT_EQ(settlement(rs, 8), (std::vector<std::int64_t>{6, 6, 3}))
      << "7 reserved (5 on app.a, 2 on app.b): the 1 beyond goes to every key";
  EXPECT_EQ(settlement(rs, 4), (std::vector<std::int64_t>{4, 4, 2}));
  rs.pop_back();
  EXPECT_EQ(settlement(rs, 8), (std::vector<std::int64_t>{8, 8}));
  // A window that reserved less than another on the same namespace (all
  // that was left of it, for a statement of unknown size) is charged what
  // the reply says happened there, not its own smaller reservation.
  rs[0].documents = 10;
  rs[1].documents = 30;
  EXPECT_EQ(settlement(rs, 20), (std::vector<std::int64_t>{20, 20}));
}

Rule windowed_rule(std::vector<LimitWindow> windows) {
  Rule r;
  r.name = "deletes";
  r.action = Action::kBlock;
  r.operations.add(Operation::kDelete);
  Limit limit;
  limit.windows = std::move(windows);
  r.limit = limit;
  return r;
}

TEST(AdmissionWindows, EachWindowIsABreakerAndTheHourSaysNo) {
  using std::chrono::hours;
  BudgetBook book;
  const auto rule = windowed_rule({{.documents = 5, .per = seconds(60)},
                                   {.documents = 8, .per = hours(1)},
                                   {.documents = 1000, .per = hours(24)}});
  const auto pol = policy_of(rule);
  TimePoint now{};
  auto room = [&](const std::string& key, std::int64_t limit) {
    return book.headroom(key, limit, now);
  };
  const auto four = command(
      R"({"delete": "c", "deletes": [{"q": {"_id": 1}, "limit": 1}, {"q": {"_id": 2}, "limit": 1},
          {"q": {"_id": 3}, "limit": 1}, {"q": {"_id": 4}, "limit": 1}]})");
  auto admit = [&](const CommandInfo& info) {
    const auto plan = plan_admission(pol, info, {}, room);
    auto set = reservation_requests(pol, plan, {});
    auto got = book.reserve(set.requests, now);
    auto verdict = judge_budgets(pol, plan, set, got);
    if (got.reserved) {
      const auto amounts = settlement(got.reservations, 4);
      for (std::size_t i = 0; i < amounts.size(); ++i)
        book.settle(got.reservations[i], amounts[i], now);
    }
    return std::pair{plan, verdict};
  };
  auto [plan, first] = admit(four);
  ASSERT_EQ(plan.charges.size(), 3u);
  EXPECT_EQ(plan.charges[0].charge.key, "deletes:app.c@1m");
  EXPECT_EQ(plan.charges[1].charge.key, "deletes:app.c@1h");
  EXPECT_EQ(plan.charges[2].charge.key, "deletes:app.c@1d");
  EXPECT_EQ(first.action, Action::kAllow);
  now += seconds(61);  // the minute window is empty again
  EXPECT_EQ(admit(four).second.action, Action::kAllow);
  EXPECT_EQ(book.breaker("deletes:app.c@1h", now)->used, 8);
  now += seconds(61);
  const auto [_, refused] = admit(four);
  EXPECT_EQ(refused.action, Action::kBlock);
  EXPECT_EQ(refused.reason, "budget of 8 documents per 1h spent (8 in the window)");
  ASSERT_TRUE(refused.state);
  EXPECT_EQ(refused.state->name, "deletes:app.c@1h");
  EXPECT_EQ(book.breaker("deletes:app.c@1m", now)->used, 0) << "all or none: nothing reserved";
  EXPECT_FALSE(book.breaker("deletes:app.c@1m", now)->tripped);
  EXPECT_EQ(book.breaker("deletes:app.c@1d", now)->used, 8);
}

TEST(AdmissionWindows, RequestsCarryTheirWindowsLimitAndPer) {
  using std::chrono::hours;
  auto rule = windowed_rule({{.documents = 5, .per = seconds(60), .ceiling = 20},
                             {.documents = 50, .per = hours(1), .ceiling = 100}});
  rule.limit->group_by_app = true;
  const auto pol = policy_of(rule);
  Identity who;
  who.app = "shell";
  const auto info = command(R"({"delete": "c", "deletes": [{"q": {"_id": 1}, "limit": 1}]})");
  const auto plan = plan_admission(pol, info, who, fixed_headroom(5));
  const auto set = reservation_requests(pol, plan, {});
  ASSERT_EQ(set.requests.size(), 4u);
  const std::vector<std::tuple<std::string, std::int64_t, milliseconds, bool>> want{
      {"deletes:app.c:app=shell@1m", 5, seconds(60), false},
      {"deletes:app.c:app=shell@1h", 50, hours(1), false},
      {"deletes:app.c@1m", 20, seconds(60), true},
      {"deletes:app.c@1h", 100, hours(1), true}};
  for (std::size_t i = 0; i < want.size(); ++i) {
    const auto& r = set.requests[i];
    EXPECT_EQ(std::tuple(r.key, r.limit, r.per, r.ceiling), want[i]) << i;
    EXPECT_EQ(r.documents, 1);
  }
}

TEST(AdmissionWindows, APercentWindowIsAShareOfTheCollection) {
  using std::chrono::hours;
  const auto rule =
      windowed_rule({{.documents = 50, .per = seconds(60)}, {.percent = 2, .per = hours(1)}});
  const auto pol = policy_of(rule);
  const auto info = command(R"({"delete": "c", "deletes": [{"q": {"x": 1}, "limit": 0}]})");
  EXPECT_EQ(sizes_needed(pol, info, {}), std::vector<std::string>{"app.c"});
  EXPECT_TRUE(sizes_needed(policy_of(budget_rule(50)), info, {}).empty()) << "no percent window";
  EXPECT_TRUE(sizes_needed(pol, command(R"({"dropDatabase": 1})"), {}).empty())
      << "no count sizes a whole database";

  BudgetBook book;
  const TimePoint now{};
  auto room = [&](const std::string& key, std::int64_t limit) {
    return book.headroom(key, limit, now);
  };
  auto sizes = [](const std::string& ns) -> std::optional<std::int64_t> {
    if (ns == "app.c") return 150;
    return std::nullopt;
  };
  const auto plan = plan_admission(pol, info, {}, room, sizes);
  ASSERT_EQ(plan.charges.size(), 2u);
  EXPECT_EQ(plan.charges[1].limit, 3) << "2% of 150";
  ASSERT_EQ(plan.measurements.size(), 1u);
  EXPECT_EQ(plan.measurements[0].cap, 51) << "the largest room of any window, plus one";
  const auto set = reservation_requests(pol, plan, {{4, ""}});
  ASSERT_EQ(set.requests.size(), 2u);
  EXPECT_EQ(set.requests[1].limit, 3);
  const auto got = book.reserve(set.requests, now);
  EXPECT_FALSE(got.reserved);
  const auto verdict = judge_budgets(pol, plan, set, got);
  EXPECT_EQ(verdict.action, Action::kBlock);
  EXPECT_EQ(verdict.reason,
            "this operation would affect 4 documents, more than the 3 left of the budget of 3 "
            "(2% of app.c) per 1h");
}

TEST(AdmissionWindows, AnUnknownCollectionSizeIsAFailedMeasurement) {
  using std::chrono::hours;
  auto rule =
      windowed_rule({{.documents = 50, .per = seconds(60)}, {.percent = 0.5, .per = hours(1)}});
  rule.limit->on_preflight_error = Action::kBlock;
  const auto pol = policy_of(rule);
  const auto info = command(R"({"delete": "c", "deletes": [{"q": {"_id": 1}, "limit": 1}]})");
  auto unknown = [](const std::string&) -> std::optional<std::int64_t> { return std::nullopt; };
  const auto plan = plan_admission(pol, info, {}, fixed_headroom(50), unknown);
  ASSERT_EQ(plan.charges.size(), 2u);
  EXPECT_FALSE(plan.charges[1].limit);
  const auto set = reservation_requests(pol, plan, {});
  ASSERT_EQ(set.failed.size(), 1u);
  EXPECT_EQ(set.requests.size(), 1u) << "a window of unknown size is not counted";
  EXPECT_EQ(set.charge_request[1], RequestSet::kNoRequest);
  const auto verdict = judge_budgets(pol, plan, set, ReserveResult{});
  EXPECT_EQ(verdict.action, Action::kBlock);
  EXPECT_EQ(verdict.reason,
            "the size of app.c is unknown (the collection size a 0.5% window is a share of)");
  const auto blind = plan_admission(pol, info, {}, fixed_headroom(50));
  EXPECT_EQ(judge_budgets(pol, blind, reservation_requests(pol, blind, {}), ReserveResult{}).action,
            Action::kBlock)
      << "no size lookup at all: unknown too";

  auto lenient = rule;
  lenient.limit->on_preflight_error = Action::kAllow;
  const auto lpol = policy_of(lenient);
  const auto lplan = plan_admission(lpol, info, {}, fixed_headroom(50), unknown);
  const auto lset = reservation_requests(lpol, lplan, {});
  EXPECT_TRUE(lset.failed.empty());
  ASSERT_EQ(lset.requests.size(), 1u);
  EXPECT_EQ(lset.requests[0].key, "deletes:app.c@1m") << "the other windows still count";
}

TEST(LimitWindowResolve, PercentRoundsDownAndIsAtLeastOne) {
  auto share = [](double percent, std::int64_t size) {
    LimitWindow w;
    w.percent = percent;
    return w.resolve(size);
  };
  EXPECT_EQ(share(2, 150), 3);
  EXPECT_EQ(share(2, 149), 2) << "2.98 rounds down";
  EXPECT_EQ(share(0.29, 10'000), 29) << "exact, though 0.29 is not in binary";
  EXPECT_EQ(share(0.29, 100), 1) << "0.29 documents: at least 1";
  EXPECT_EQ(share(1, 0), 1) << "an empty collection still lets one through";
  EXPECT_EQ(share(100, 7), 7);
  EXPECT_EQ(share(50, 9'000'000'000'000'000'001), 4'500'000'000'000'000'000) << "no overflow";
  EXPECT_EQ(share(0.000001, 1'000'000'000'000), 10'000);
  LimitWindow relative;
  relative.percent = 2;
  EXPECT_EQ(relative.resolve(std::nullopt), std::nullopt);
  LimitWindow absolute;
  absolute.documents = 50;
  EXPECT_EQ(absolute.resolve(std::nullopt), 50) << "an absolute window needs no size";
}

// Every field read_reply_facts() knows, each read from its own name only
// (names of the same length, or sharing a prefix, are not taken for it).
TEST(ReplyFacts, EachFieldIsReadFromItsNameAlone) {
  Json reply(R"({"ok": 0, "n": 3, "nn": 9, "code": 11000, "done": true, "errmsg": "E11000 dup",
                 "nDeleted": 4, "nMatched": 5, "nModified": 6, "nUpserted": 7,
                 "writeErrors": [{"index": 0}, {"index": 1}], "nInserted": 8, "cod": 1,
                 "errmsgs": "no"})");
  const auto f = read_reply_facts(reply.doc);
  EXPECT_FALSE(f.ok);
  EXPECT_EQ(f.n, 3);
  EXPECT_EQ(f.code, 11000);
  EXPECT_TRUE(f.done);
  EXPECT_EQ(f.errmsg, "E11000 dup");
  EXPECT_EQ(f.n_deleted, 4);
  EXPECT_EQ(f.n_matched, 5);
  EXPECT_EQ(f.n_modified, 6);
  EXPECT_EQ(f.n_upserted, 7);
  EXPECT_EQ(f.write_errors, 2);
  Json nested(R"({"ok": 1.0, "lastErrorObject": {"updatedExisting": true, "n": 1}})");
  const auto g = read_reply_facts(nested.doc);
  EXPECT_TRUE(g.ok);
  EXPECT_EQ(g.n, 1);
  EXPECT_FALSE(g.n_deleted.has_value());
  EXPECT_EQ(g.write_errors, 0);
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
