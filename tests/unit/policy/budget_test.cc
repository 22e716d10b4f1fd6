#include "policy/budget.h"

#include <gtest/gtest.h>

#include <atomic>
#include <limits>
#include <thread>

#include "policy/holds.h"
#include "policy/policy.h"

namespace mongoguard::policy {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

Rule budget_rule(std::int64_t documents, milliseconds per, bool auto_resume = false) {
  Rule r;
  r.name = "families-delete-budget";
  r.action = Action::kHold;
  r.operations.add(Operation::kDelete);
  Limit limit;
  limit.windows.push_back({.documents = documents, .per = per});
  limit.auto_resume = auto_resume;
  r.limit = limit;
  return r;
}

// One request checked against the book and nothing kept: the old
// "may this go" question, for the tests of the book's window rules. The
// reservation itself is tested below.
Admission admit(BudgetBook& book, const Rule& rule, const std::string& key, const std::string& ns,
                std::int64_t documents, TimePoint now) {
  ReserveRequest r;
  r.rule = &rule;
  r.key = key;
  r.ns = ns;
  r.limit = rule.limit->windows[0].documents;
  r.per = rule.limit->windows[0].per;
  r.documents = documents;
  r.auto_resume = rule.limit->auto_resume;
  auto got = book.reserve({r}, now);
  if (got.reserved) book.settle(got.reservations.front(), 0, now);
  return got.admissions.front();
}

TEST(SlidingWindowTest, CountsOnlyTheLastPeriod) {
  SlidingWindow w;
  const TimePoint t0{};
  w.add(t0, 3);
  w.add(t0 + seconds(30), 4);
  EXPECT_EQ(w.total(t0 + seconds(59), seconds(60)), 7);
  EXPECT_EQ(w.total(t0 + seconds(60), seconds(60)), 4);
  EXPECT_EQ(*w.drained_at(seconds(60)), t0 + seconds(90));
  EXPECT_EQ(w.total(t0 + seconds(90), seconds(60)), 0);
  EXPECT_FALSE(w.drained_at(seconds(60)));
  w.add(t0, 0);
  w.add(t0, -5);
  EXPECT_EQ(w.total(t0, seconds(60)), 0) << "nothing affected, nothing counted";
}

TEST(BudgetBookTest, LoopOfSingleDeletesTripsAtTheBudget) {
  BudgetBook book;
  const auto rule = budget_rule(50, seconds(60));
  const TimePoint t0{};
  for (int i = 0; i < 50; ++i) {
    auto now = t0 + milliseconds(i * 10);
    ASSERT_EQ(admit(book, rule, "k", "app.families", 1, now), Admission::kPass) << i;
    EXPECT_EQ(book.record(rule, "k", "app.families", 1, now), i == 49)
        << "the 50th document spends the budget and trips the breaker";
  }
  EXPECT_EQ(admit(book, rule, "k", "app.families", 1, t0 + seconds(1)), Admission::kTripped);
  auto state = book.breaker("k", t0 + seconds(1));
  ASSERT_TRUE(state);
  EXPECT_TRUE(state->tripped);
  EXPECT_EQ(state->used, 50);
  // Everything after is held too, even a delete of unknown size.
  EXPECT_EQ(admit(book, rule, "k", "app.families", 0, t0 + seconds(2)), Admission::kTripped);
}

TEST(BudgetBookTest, RecordTripsWhenAReplyShowsTheBudgetSpent) {
  BudgetBook book;
  const auto rule = budget_rule(10, seconds(60));
  const TimePoint t0{};
  EXPECT_EQ(admit(book, rule, "k", "a.b", 0, t0), Admission::kPass) << "unknown size passes";
  EXPECT_TRUE(book.record(rule, "k", "a.b", 25, t0)) << "the reply said 25: tripped";
  EXPECT_EQ(admit(book, rule, "k", "a.b", 1, t0), Admission::kTripped);
}

TEST(BudgetBookTest, OversizedOperationIsStoppedWithoutTrippingTheBreaker) {
  BudgetBook book;
  const auto rule = budget_rule(10, seconds(60));
  const TimePoint t0{};
  book.record(rule, "k", "a.b", 4, t0);
  EXPECT_EQ(admit(book, rule, "k", "a.b", 30, t0), Admission::kTooLarge);
  EXPECT_FALSE(book.breaker("k", t0)->tripped);
  EXPECT_EQ(admit(book, rule, "k", "a.b", 6, t0), Admission::kPass) << "6 fit in what is left";
}

TEST(BudgetBookTest, WithAutoResumeATrippedBreakerClosesOnceTheWindowIsEmpty) {
  BudgetBook book;
  const auto rule = budget_rule(5, seconds(10), /*auto_resume=*/true);
  const TimePoint t0{};
  book.record(rule, "k", "a.b", 5, t0);
  EXPECT_EQ(admit(book, rule, "k", "a.b", 1, t0 + seconds(5)), Admission::kTripped);
  EXPECT_EQ(admit(book, rule, "k", "a.b", 1, t0 + seconds(9)), Admission::kTripped);
  EXPECT_EQ(admit(book, rule, "k", "a.b", 1, t0 + seconds(10)), Admission::kPass);
  EXPECT_FALSE(book.breaker("k", t0 + seconds(10))->tripped);
  EXPECT_TRUE(book.breaker("k", t0 + seconds(10))->auto_resume);
}

TEST(BudgetBookTest, ATrippedBreakerStaysTrippedUntilAnOperatorResumesIt) {
  BudgetBook book;
  const auto rule = budget_rule(5, seconds(10));
  const TimePoint t0{};
  book.record(rule, "k", "a.b", 5, t0);
  EXPECT_TRUE(book.breaker("k", t0)->tripped);
  // Long after the window drained: still tripped, whatever size comes.
  for (auto at : {seconds(10), seconds(60), seconds(3600)}) {
    EXPECT_EQ(admit(book, rule, "k", "a.b", 1, t0 + at), Admission::kTripped) << at.count();
    EXPECT_TRUE(book.breaker("k", t0 + at)->tripped);
  }
  // A forced reservation (an approved hold) counts and leaves it tripped.
  ReserveRequest r;
  r.rule = &rule;
  r.key = "k";
  r.ns = "a.b";
  r.limit = 5;
  r.per = seconds(10);
  r.documents = 1;
  EXPECT_TRUE(book.reserve({r}, t0 + seconds(3600), /*force=*/true).reserved);
  EXPECT_TRUE(book.breaker("k", t0 + seconds(3600))->tripped);
  bool was = false;
  EXPECT_FALSE(book.resume("nope", &was));
  EXPECT_TRUE(book.resume("k", &was));
  EXPECT_TRUE(was);
  EXPECT_FALSE(book.breaker("k", t0 + seconds(3600))->tripped);
  EXPECT_EQ(book.breaker("k", t0 + seconds(3600))->used, 1) << "resume keeps the window's count";
  EXPECT_EQ(admit(book, rule, "k", "a.b", 4, t0 + seconds(3600)), Admission::kPass);
  EXPECT_TRUE(book.resume("k", &was));
  EXPECT_FALSE(was) << "resuming a closed breaker says so";
}

TEST(BudgetBookTest, GrantAndResetAreOperatorOverrides) {
  BudgetBook book;
  const auto rule = budget_rule(5, seconds(120));
  const TimePoint t0{};
  book.record(rule, "k", "a.b", 5, t0);
  ASSERT_EQ(admit(book, rule, "k", "a.b", 1, t0), Admission::kTripped);
  EXPECT_FALSE(book.grant("unknown", 3, std::nullopt, t0));
  ASSERT_TRUE(book.grant("k", 3, std::nullopt, t0));
  EXPECT_EQ(book.breaker("k", t0)->allowance_documents, 3);
  EXPECT_EQ(admit(book, rule, "k", "a.b", 1, t0), Admission::kPass);
  book.record(rule, "k", "a.b", 1, t0);
  book.record(rule, "k", "a.b", 2, t0);
  EXPECT_EQ(book.breaker("k", t0)->allowance_documents, 0);
  EXPECT_NE(admit(book, rule, "k", "a.b", 1, t0), Admission::kPass) << "allowance used up";

  ASSERT_TRUE(book.grant("k", 0, milliseconds(60'000), t0));
  EXPECT_EQ(admit(book, rule, "k", "a.b", 1000, t0 + seconds(30)), Admission::kPass);
  book.record(rule, "k", "a.b", 1000, t0 + seconds(30));
  EXPECT_EQ(book.breaker("k", t0 + seconds(30))->used, 5) << "break-glass is not counted";
  EXPECT_NE(admit(book, rule, "k", "a.b", 1, t0 + seconds(61)), Admission::kPass)
      << "the time allowance expired";

  ASSERT_TRUE(book.reset("k"));
  auto state = book.breaker("k", t0 + seconds(61));
  EXPECT_FALSE(state->tripped);
  EXPECT_EQ(state->used, 0);
  EXPECT_EQ(admit(book, rule, "k", "a.b", 5, t0 + seconds(61)), Admission::kPass);
}

TEST(BudgetBookTest, KeysKeepGroupsApart) {
  auto rule = budget_rule(5, seconds(60));
  rule.limit->group_by_app = true;
  Target t;
  t.ns = "app.families";
  Identity shell, batch;
  shell.app = "shell";
  batch.app = "batch";
  EXPECT_NE(budget_key(rule, t, shell), budget_key(rule, t, batch));
  EXPECT_EQ(budget_key(rule, t, shell), "families-delete-budget:app.families:app=shell");
  rule.limit->group_by_app = false;
  EXPECT_EQ(budget_key(rule, t, shell), budget_key(rule, t, batch));
  rule.limit->group_by_client = true;
  Identity a, b;
  a.client_address = "10.0.0.1:5000";
  b.client_address = "10.0.0.1:5001";
  EXPECT_EQ(budget_key(rule, t, a), budget_key(rule, t, b)) << "one host, any port";
}

TEST(BudgetChargesTest, LimitRulesChargeInsteadOfActingAndAllowExempts) {
  Policy p;
  p.rules.push_back(budget_rule(50, seconds(60)));
  CommandInfo info;
  Target t;
  t.op = Operation::kDelete;
  t.matches.add(Operation::kDelete);
  t.ns = "app.families";
  t.statements = 3;
  t.single_statements = 3;
  info.targets.push_back(t);
  Identity who;
  EXPECT_EQ(decide(p, info, who).action, Action::kAllow) << "a budget rule acts only when spent";
  auto charges = budget_charges(p, info, who);
  ASSERT_EQ(charges.size(), 1u);
  EXPECT_EQ(charges[0].known, 3);
  EXPECT_EQ(charges[0].key, "families-delete-budget:app.families");
  Rule allow;
  allow.name = "migrator";
  allow.action = Action::kAllow;
  allow.apps = {"migrator"};
  p.rules.push_back(allow);
  who.app = "migrator";
  EXPECT_TRUE(budget_charges(p, info, who).empty());
}

TEST(HoldRegistryTest, ResolvesExactlyOnce) {
  HoldRegistry holds;
  int calls = 0;
  HoldDecision seen;
  HoldInfo info;
  info.breaker = "b1";
  auto id = holds.add(info, [&](const HoldDecision& d) {
    ++calls;
    seen = d;
  });
  EXPECT_EQ(holds.size(), 1u);
  ASSERT_TRUE(holds.find(id));
  EXPECT_TRUE(holds.resolve(id, {HoldOutcome::kApproved, "alice"}));
  EXPECT_FALSE(holds.resolve(id, {HoldOutcome::kRejected, "bob"}));
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(seen.outcome, HoldOutcome::kApproved);
  EXPECT_EQ(seen.by, "alice");
  EXPECT_EQ(holds.size(), 0u);
}

TEST(HoldRegistryTest, ByBreakerAndAll) {
  HoldRegistry holds;
  std::vector<std::string> outcomes;
  auto record = [&](const HoldDecision& d) { outcomes.push_back(hold_outcome_name(d.outcome)); };
  HoldInfo a, b;
  a.breaker = "one";
  b.breaker = "two";
  holds.add(a, record);
  holds.add(a, record);
  holds.add(b, record);
  EXPECT_EQ(holds.pending().size(), 3u);
  EXPECT_EQ(holds.resolve_breaker("one", {HoldOutcome::kRejected, "op"}), 2u);
  EXPECT_EQ(holds.resolve_all({HoldOutcome::kShutdown, ""}), 1u);
  EXPECT_EQ(outcomes, (std::vector<std::string>{"rejected", "rejected", "shutdown"}));
}

// A request as admission builds it for one window of a limit.
ReserveRequest window_request(const Rule& rule, const std::string& key, std::int64_t limit,
                              milliseconds per, std::int64_t documents) {
  ReserveRequest r;
  r.rule = &rule;
  r.key = key;
  r.ns = "app.family";
  r.limit = limit;
  r.per = per;
  r.documents = documents;
  r.auto_resume = rule.limit->auto_resume;
  return r;
}

TEST(BudgetWindows, TheBookKeepsEachRequestsOwnLimitAndPer) {
  BudgetBook book;
  const auto rule = budget_rule(50, seconds(60), true);  // numbers the book must not use
  const TimePoint t0{};
  const auto r = window_request(rule, "k@10s", 3, seconds(10), 1);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(book.reserve({r}, t0).reserved) << i;
  EXPECT_EQ(book.reserve({r}, t0).admissions[0], Admission::kWouldTrip) << "3 per 10s, not 50";
  EXPECT_EQ(book.breaker("k@10s", t0)->limit, 3);
  EXPECT_EQ(book.breaker("k@10s", t0)->per, seconds(10));
  EXPECT_TRUE(book.reserve({r}, t0 + seconds(10)).reserved) << "a 10 s window, not a minute";
  EXPECT_EQ(book.headroom("unseen", 7, t0), 7) << "a window not seen yet has all of its limit";
}

TEST(BudgetWindows, ALongWindowStaysTrippedUntilItDrainsOrAnOperatorActs) {
  using std::chrono::hours;
  using std::chrono::minutes;
  BudgetBook book;
  const auto rule = budget_rule(50, seconds(60), /*auto_resume=*/true);
  const TimePoint t0{};
  auto both = [&](std::int64_t documents) {
    return std::vector<ReserveRequest>{
        window_request(rule, "deletes:app.family@1m", 50, minutes(1), documents),
        window_request(rule, "deletes:app.family@1h", 10, hours(1), documents)};
  };
  ASSERT_TRUE(book.reserve(both(10), t0).reserved);
  auto got = book.reserve(both(1), t0 + minutes(5));
  EXPECT_FALSE(got.reserved);
  EXPECT_EQ(got.admissions[0], Admission::kPass) << "the minute window has room";
  EXPECT_EQ(got.admissions[1], Admission::kWouldTrip) << "the hour window is spent";
  EXPECT_TRUE(book.breaker("deletes:app.family@1h", t0 + minutes(5))->tripped);
  EXPECT_EQ(book.breaker("deletes:app.family@1m", t0 + minutes(5))->used, 0)
      << "all or none: the minute window was not charged";
  // Long after the minute window would have forgotten it, the hour's
  // breaker is still tripped: nothing has left its window yet.
  for (auto at : {minutes(30), minutes(59), minutes(64)}) {
    got = book.reserve(both(1), t0 + at);
    EXPECT_EQ(got.admissions[1], Admission::kTripped) << at.count();
    EXPECT_TRUE(book.breaker("deletes:app.family@1h", t0 + at)->tripped) << at.count();
  }
  // The 10 documents leave at 1h; the breaker tripped at 5m closes once a
  // whole window has passed since it tripped and the window is empty.
  EXPECT_FALSE(book.breaker("deletes:app.family@1h", t0 + minutes(65))->tripped);
  EXPECT_TRUE(book.reserve(both(1), t0 + minutes(65)).reserved);

  // Spent again; a reset of the hour window closes it and leaves the
  // minute window's count alone.
  BudgetBook other;
  ASSERT_TRUE(other.reserve(both(10), t0).reserved);
  EXPECT_FALSE(other.reserve(both(1), t0 + minutes(2)).reserved);
  EXPECT_EQ(other.reserve(both(3), t0 + minutes(2) + seconds(30)).admissions[1],
            Admission::kTripped);
  EXPECT_TRUE(other.reset("deletes:app.family@1h"));
  EXPECT_FALSE(other.breaker("deletes:app.family@1h", t0 + minutes(3))->tripped);
  EXPECT_EQ(other.breaker("deletes:app.family@1h", t0 + minutes(3))->used, 0);
  ASSERT_TRUE(other.reserve(both(4), t0 + minutes(3)).reserved);
  EXPECT_EQ(other.breaker("deletes:app.family@1m", t0 + minutes(3))->used, 4)
      << "the minute window drained on its own; only the hour's was reset";
  // A grant closes a tripped long window too.
  ASSERT_TRUE(other.reserve(both(6), t0 + minutes(4)).reserved);
  EXPECT_EQ(other.reserve(both(1), t0 + minutes(4)).admissions[1], Admission::kWouldTrip);
  EXPECT_TRUE(other.breaker("deletes:app.family@1h", t0 + minutes(4))->tripped);
  EXPECT_TRUE(other.grant("deletes:app.family@1h", 7, std::nullopt, t0 + minutes(4)));
  EXPECT_TRUE(other.reserve(both(7), t0 + minutes(4)).reserved);
}

TEST(BudgetWindows, WindowKeysNameTheWindowOnlyWhenThereAreSeveral) {
  Limit one;
  one.windows.push_back({.documents = 5, .per = seconds(60)});
  EXPECT_EQ(window_key("deletes:app.family", one, 0), "deletes:app.family");
  Limit three = one;
  three.windows.push_back({.documents = 50, .per = std::chrono::hours(1)});
  three.windows.push_back({.percent = 1, .per = std::chrono::hours(24)});
  EXPECT_EQ(window_key("deletes:app.family", three, 0), "deletes:app.family@1m");
  EXPECT_EQ(window_key("deletes:app.family:app=shell", three, 1),
            "deletes:app.family:app=shell@1h");
  EXPECT_EQ(window_key("deletes:app.family", three, 2), "deletes:app.family@1d");
  EXPECT_EQ(format_duration(std::chrono::hours(48)), "2d");
  EXPECT_EQ(format_duration(std::chrono::hours(36)), "36h");
}

TEST(HoldRegistryTest, ApprovalsFromDifferentOperatorsRelease) {
  HoldRegistry holds;
  HoldInfo info;
  info.approvals_needed = 2;
  std::vector<HoldDecision> decided;
  const auto id = holds.add(info, [&](const HoldDecision& d) { decided.push_back(d); });
  const auto at = std::chrono::system_clock::now();
  using A = HoldRegistry::Approval;
  HoldInfo after;
  EXPECT_EQ(holds.approve(id, {HoldOutcome::kApproved, "bob", "first", {}}, at, &after),
            A::kRecorded);
  EXPECT_EQ(after.approvals.size(), 1u);
  EXPECT_EQ(holds.approve(id, {HoldOutcome::kApproved, "bob", "again", {}}, at), A::kAlready);
  EXPECT_TRUE(decided.empty());
  EXPECT_EQ(holds.find(id)->approvals.front().reason, "first");
  EXPECT_EQ(holds.approve(id, {HoldOutcome::kApproved, "dave", "", {}}, at), A::kReleased);
  ASSERT_EQ(decided.size(), 1u);
  EXPECT_EQ(decided[0].by, "dave");
  ASSERT_EQ(decided[0].approvals.size(), 2u);
  EXPECT_EQ(decided[0].approvals[0].by, "bob");
  EXPECT_EQ(holds.approve(id, {HoldOutcome::kApproved, "erin", "", {}}, at), A::kUnknown);
  // One approval is enough by default.
  const auto single = holds.add(HoldInfo{}, [&](const HoldDecision& d) { decided.push_back(d); });
  EXPECT_EQ(holds.approve(single, {HoldOutcome::kApproved, "bob", "", {}}, at), A::kReleased);
  EXPECT_EQ(decided.size(), 2u);
}

TEST(HoldRegistryTest, ConcurrentResolversDecideOnce) {
  for (int round = 0; round < 50; ++round) {
    HoldRegistry holds;
    std::atomic<int> calls{0};
    auto id = holds.add({}, [&](const HoldDecision&) { ++calls; });
    std::atomic<int> wins{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i) {
      threads.emplace_back([&, i] {
        if (holds.resolve(id, {i % 2 ? HoldOutcome::kApproved : HoldOutcome::kClientGone, ""})) {
          ++wins;
        }
      });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(wins.load(), 1);
    EXPECT_EQ(calls.load(), 1);
  }
}

// Grants add up but never wrap: the allowance saturates.
TEST(BudgetBookTest, GrantsSaturateInsteadOfOverflowing) {
  BudgetBook book;
  const auto rule = budget_rule(5, seconds(120));
  const TimePoint t0{};
  book.record(rule, "k", "a.b", 1, t0);
  for (int i = 0; i < 1001; ++i) ASSERT_TRUE(book.grant("k", kMaxGrantDocuments, std::nullopt, t0));
  EXPECT_EQ(book.breaker("k", t0)->allowance_documents, kMaxAllowanceDocuments);
  ASSERT_TRUE(book.grant("k", std::numeric_limits<std::int64_t>::max(), std::nullopt, t0));
  EXPECT_EQ(book.breaker("k", t0)->allowance_documents, kMaxAllowanceDocuments);
}

}  // namespace
}  // namespace mongoguard::policy
