// The budget cases of tests/budget_cases.json through policy::BudgetBook, the
// ledger a proxy keeps on its own. tests/integration/test_budget_cases.py runs
// the same table through the fleet's Lua scripts in a real redis-server, so
// the two ledgers are held to one set of answers.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "policy/budget.h"

namespace mongoguard::policy {
namespace {

using nlohmann::json;

const char* admission_name(Admission a) {
  switch (a) {
    case Admission::kPass:
      return "pass";
    case Admission::kTripped:
      return "tripped";
    case Admission::kWouldTrip:
      return "would_trip";
    case Admission::kTooLarge:
      return "too_large";
  }
  return "?";
}

json load_cases() {
  std::ifstream in(std::string(MG_SOURCE_DIR) + "/tests/budget_cases.json");
  return json::parse(in);
}

// One case's breaker, driven step by step as the table says.
class CaseRun {
 public:
  explicit CaseRun(const json& c) {
    rule_.name = "case-rule";
    request_.rule = &rule_;
    request_.key = "case";
    request_.ns = "db.c";
    request_.limit = c.at("limit").get<std::int64_t>();
    request_.per = milliseconds(c.at("per_ms").get<std::int64_t>());
    request_.auto_resume = c.value("auto_resume", false);
  }

  // What the step did, for the step's "expect" (besides the breaker's state).
  json step(const json& s) {
    const auto at = std::chrono::duration_cast<milliseconds>(now_ - TimePoint{});
    now_ = TimePoint{} + milliseconds(s.value("at_ms", at.count()));
    if (s.contains("reserve")) return reserve(s.at("reserve").get<std::int64_t>());
    if (s.contains("resume")) return {{"found", book_.resume(request_.key)}};
    if (s.contains("settle")) {
      return {{"tripped_now", book_.settle(*last_, s.at("settle").get<std::int64_t>(), now_)}};
    }
    const json& g = s.at("grant");
    std::optional<milliseconds> duration;
    if (g.contains("minutes"))
      duration = milliseconds(g.at("minutes").get<std::int64_t>() * 60'000);
    return {{"found", book_.grant(request_.key, g.value("documents", 0), duration, now_)}};
  }

  json state() {
    auto b = book_.breaker(request_.key, now_);
    if (!b) return json::object();
    return {{"used", b->used}, {"tripped", b->tripped}, {"allowance", b->allowance_documents}};
  }

 private:
  json reserve(std::int64_t documents) {
    ReserveRequest r = request_;
    r.documents = documents;
    auto got = book_.reserve({r}, now_);
    if (got.reserved) last_ = got.reservations.front();
    return {{"reserved", got.reserved}, {"admission", admission_name(got.admissions.front())}};
  }

  Rule rule_;
  ReserveRequest request_;
  BudgetBook book_;
  TimePoint now_{};
  std::optional<Reservation> last_;
};

TEST(BudgetCases, TheBookGivesTheTablesAnswers) {
  const json cases = load_cases().at("cases");
  ASSERT_FALSE(cases.empty());
  for (const auto& c : cases) {
    CaseRun run(c);
    std::size_t n = 0;
    for (const auto& s : c.at("steps")) {
      json got = run.step(s);
      got.update(run.state());
      for (const auto& [field, want] : s.at("expect").items()) {
        EXPECT_EQ(got.value(field, json()), want)
            << c.at("name").get<std::string>() << ", step " << n << ": " << field;
      }
      ++n;
    }
  }
}

}  // namespace
}  // namespace mongoguard::policy
