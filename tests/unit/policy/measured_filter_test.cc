// Measured "unfiltered" (policy/measured_filter.h): which targets are
// counted, the thresholds, and how rules judge what a count found.
#include <gtest/gtest.h>

#include <string>

#include "config/config.h"
#include "policy/measured_filter.h"
#include "wire_test_util.h"

namespace mongoguard::policy {
namespace {

using wire::testing::doc;

CommandInfo command(std::string_view json) {
  const auto body = doc(json);
  bson_t b;
  EXPECT_TRUE(bson_init_static(&b, body.data(), body.size()));
  auto info = classify_command(&b, "app");
  EXPECT_TRUE(info) << json;
  return info ? *info : CommandInfo{};
}

Rule unfiltered_rule(std::string name, Action action = Action::kBlock) {
  Rule r;
  r.name = std::move(name);
  r.filter = FilterMatch::kUnfiltered;
  r.action = action;
  std::string why;
  r.namespaces.push_back(*NamespaceGlob::parse("app.*", why));
  return r;
}

TEST(MeasuredFilter, ThresholdIsTheFractionRoundedUpAndMoreThanTheFloor) {
  const UnfilteredMeasure rule;  // 0.9, 10
  EXPECT_EQ(unfiltered_threshold(rule, 500), 450);
  EXPECT_EQ(unfiltered_threshold(rule, 501), 451);  // 450.9 rounds up
  EXPECT_EQ(unfiltered_threshold(rule, 10), 11);    // the floor: more than 10
  EXPECT_EQ(unfiltered_threshold(rule, 0), 11);
  const UnfilteredMeasure half{0.5, 2};
  EXPECT_EQ(unfiltered_threshold(half, 10), 5);
  EXPECT_EQ(unfiltered_threshold(half, 4), 3);
}

TEST(MeasuredFilter, RulesJudgeByTheirOwnThreshold) {
  MeasuredShare share{449, 500, false, ""};
  EXPECT_FALSE(measured_unfiltered({}, share));
  share.affected = 450;
  EXPECT_TRUE(measured_unfiltered({}, share));
  EXPECT_FALSE(measured_unfiltered({0.95, 10}, share));
  MeasuredShare failed;
  failed.error = "timeout";
  EXPECT_TRUE(measured_unfiltered({}, failed)) << "what cannot be measured is refused";
}

TEST(MeasuredFilter, DescribesWhatWasMeasured) {
  EXPECT_EQ(describe_share({498, 500, false, ""}),
            "the filter would affect 498 of 500 documents (99.6%)");
  EXPECT_EQ(describe_share({501, 500, true, ""}),
            "the filter would affect at least 501 of 500 documents (100.2%)");
  MeasuredShare failed;
  failed.error = "the count did not answer in time";
  EXPECT_NE(describe_share(failed).find("could not be measured (the count did not answer"),
            std::string::npos);
}

TEST(MeasuredFilter, OnlySelectiveMultiStatementsUnderAskingRulesAreCounted) {
  Policy p;
  p.rules.push_back(unfiltered_rule("no-unfiltered"));
  const Identity who;
  // A selective multi delete: counted, one statement shared with budgets.
  auto info =
      command(R"({"delete": "c", "deletes": [{"q": {"n": {"$gte": -1e308}}, "limit": 0}]})");
  auto counts = plan_filter_counts(p, info, who, Action::kAllow, Action::kAllow);
  ASSERT_EQ(counts.size(), 1u);
  EXPECT_EQ(counts[0].target, 0u);
  EXPECT_EQ(counts[0].single, &info.targets[0].multi[0]);
  EXPECT_EQ(counts[0].statement.filter, info.targets[0].multi[0].filter);
  EXPECT_EQ(filter_count_cap(counts[0], 500), 501) << "the whole collection, and one more";
  // A single-document delete, and an empty filter (syntax decides): not counted.
  EXPECT_TRUE(
      plan_filter_counts(p, command(R"({"delete": "c", "deletes": [{"q": {"n": 1}, "limit": 1}]})"),
                         who, Action::kAllow, Action::kAllow)
          .empty());
  EXPECT_TRUE(plan_filter_counts(p,
                                 command(R"({"delete": "c", "deletes": [{"q": {}, "limit": 0}]})"),
                                 who, Action::kAllow, Action::kAllow)
                  .empty());
  // Already blocked by another rule: nothing a block rule could add.
  EXPECT_TRUE(plan_filter_counts(p, info, who, Action::kBlock, Action::kBlock).empty());
  // Another namespace: no rule asks.
  auto elsewhere =
      command(R"({"delete": "c", "deletes": [{"q": {"n": 1}, "limit": 0}], "$db": "x"})");
  elsewhere.targets[0].ns = "other.c";
  EXPECT_TRUE(plan_filter_counts(p, elsewhere, who, Action::kAllow, Action::kAllow).empty());
}

TEST(MeasuredFilter, AnExemptTargetIsNotCounted) {
  Policy p;
  p.rules.push_back(unfiltered_rule("no-unfiltered"));
  Rule allow;
  allow.name = "scratch";
  allow.action = Action::kAllow;
  std::string why;
  allow.namespaces.push_back(*NamespaceGlob::parse("app.c", why));
  p.rules.push_back(allow);
  auto info = command(R"({"delete": "c", "deletes": [{"q": {"n": 1}, "limit": 0}]})");
  EXPECT_TRUE(plan_filter_counts(p, info, Identity{}, Action::kAllow, Action::kAllow).empty());
}

TEST(MeasuredFilter, StatementsMatchedAlikeAreCountedAsTheirUnion) {
  Policy p;
  p.rules.push_back(unfiltered_rule("no-unfiltered"));
  auto info = command(R"({"delete": "c", "deletes": [
      {"q": {"n": {"$lt": 250}}, "limit": 0}, {"q": {"n": {"$gte": 250}}, "limit": 0},
      {"q": {"s": "A"}, "limit": 0, "collation": {"locale": "en", "strength": 2}}]})");
  auto counts = plan_filter_counts(p, info, Identity{}, Action::kAllow, Action::kAllow);
  ASSERT_EQ(counts.size(), 2u) << "one per collation/hint";
  const FilterCount* together = nullptr;
  for (const auto& c : counts) {
    if (c.statement.options.empty()) together = &c;
  }
  ASSERT_NE(together, nullptr);
  EXPECT_EQ(together->single, nullptr);
  bson_t filter;
  ASSERT_TRUE(bson_init_static(&filter, together->statement.filter.data(),
                               together->statement.filter.size()));
  char* json = bson_as_relaxed_extended_json(&filter, nullptr);
  EXPECT_STREQ(json, R"({ "$or" : [ { "n" : { "$lt" : 250 } }, { "n" : { "$gte" : 250 } } ] })");
  bson_free(json);
}

TEST(MeasuredFilter, AMeasuredTargetMatchesTheRuleAndSaysWhy) {
  Policy p;
  p.rules.push_back(unfiltered_rule("no-unfiltered"));
  auto info =
      command(R"({"delete": "c", "deletes": [{"q": {"n": {"$gte": -1e308}}, "limit": 0}]})");
  EXPECT_EQ(decide(p, info, Identity{}).action, Action::kAllow);
  info.targets[0].measured = MeasuredShare{498, 500, false, ""};
  const auto verdict = decide(p, info, Identity{});
  EXPECT_EQ(verdict.action, Action::kBlock);
  EXPECT_EQ(verdict.error_message(),
            "mongoguard: delete on app.c blocked by rule 'no-unfiltered': the filter would affect "
            "498 of 500 documents (99.6%)");
  info.targets[0].measured = MeasuredShare{300, 500, false, ""};
  EXPECT_EQ(decide(p, info, Identity{}).action, Action::kAllow);
}

TEST(MeasuredFilter, FiltersOnTheClockOrChanceAreUnstable) {
  EXPECT_EQ(unstable_filter(doc(R"({"n": {"$gte": 1}, "$expr": {"$lt": ["$t", "$$NOW"]}})")),
            "the filter uses $$NOW, so what a count finds now says nothing about what the write "
            "will match");
  EXPECT_EQ(unstable_filter(doc(R"({"n": {"$gte": 1}})")), "");
  EXPECT_EQ(unstable_filter({}), "");
  for (const char* json :
       {R"({"$where": "Date.now() > 0"})", R"({"$expr": {"$lt": [{"$rand": {}}, 0.5]}})",
        R"({"$and": [{"n": 1}, {"$expr": {"$gt": ["$$CLUSTER_TIME", 0]}}]})",
        R"({"$sampleRate": 0.5})",
        R"({"$expr": {"$function": {"body": "x", "args": [], "lang": "js"}}})",
        R"({"n": {"$in": [1, {"$code": "function() { return true; }"}]}})"}) {
    EXPECT_NE(unstable_filter(doc(json)), "") << json;
  }
}

TEST(MeasuredFilter, ManyOneDocumentStatementsAreCountedUpToTheirNumber) {
  Policy p;
  p.rules.push_back(unfiltered_rule("no-unfiltered"));
  auto deletes = [](int n) {
    std::string out;
    for (int i = 0; i < n; ++i) out += std::string(i ? "," : "") + R"({"q": {"n": 1}, "limit": 1})";
    return command(R"({"delete": "c", "deletes": [)" + out + "]}");
  };
  auto info = deletes(11);
  auto counts = plan_filter_counts(p, info, Identity{}, Action::kAllow, Action::kAllow);
  ASSERT_EQ(counts.size(), 1u) << "11 one-document statements can pass the floor of 10";
  EXPECT_EQ(counts[0].most, 11);
  EXPECT_EQ(counts[0].single, nullptr);
  // Ten cannot: not counted at all.
  EXPECT_TRUE(
      plan_filter_counts(p, deletes(10), Identity{}, Action::kAllow, Action::kAllow).empty());
}

TEST(MeasuredFilter, EveryStatementOnANamespaceIsOneUnionAcrossOperations) {
  Policy p;
  Rule deletes = unfiltered_rule("no-unfiltered-delete");
  deletes.operations.add(Operation::kDelete);
  p.rules.push_back(deletes);
  auto info = command(R"({"bulkWrite": 1, "nsInfo": [{"ns": "app.c"}], "ops": [
      {"update": 0, "filter": {"n": {"$lt": 440}}, "updateMods": {"$set": {"d": true}}, "multi": true},
      {"delete": 0, "filter": {"d": true}, "multi": true}]})");
  auto counts = plan_filter_counts(p, info, Identity{}, Action::kAllow, Action::kAllow);
  ASSERT_EQ(counts.size(), 1u);
  bson_t filter;
  ASSERT_TRUE(bson_init_static(&filter, counts[0].statement.filter.data(),
                               counts[0].statement.filter.size()));
  char* json = bson_as_relaxed_extended_json(&filter, nullptr);
  EXPECT_NE(std::string(json).find(R"({ "n" : { "$lt" : 440 } })"), std::string::npos) << json;
  EXPECT_NE(std::string(json).find(R"({ "d" : true })"), std::string::npos) << json;
  bson_free(json);
}

TEST(MeasuredFilter, SharesOfOneTargetAddUp) {
  MeasuredShare into{200, 500, false, ""};
  add_share(into, {260, 500, false, ""});
  EXPECT_EQ(into.affected, 460);
  EXPECT_TRUE(measured_unfiltered({}, into));
}

TEST(MeasuredFilterConfig, DefaultsTopLevelAndPerRule) {
  auto r = config::parse_config(R"(unfiltered_fraction: 0.8
unfiltered_min_documents: 50
rules:
  - name: default
    match: { filter: unfiltered }
    action: block
  - name: own
    match: { filter: unfiltered, unfiltered_fraction: 0.5, unfiltered_min_documents: 0 }
    action: block
  - name: pointless
    match: { namespace: "app.*", unfiltered_fraction: 0.5 }
    action: block
)",
                                "p.yaml");
  ASSERT_TRUE(r.ok()) << (r.errors.empty() ? "" : r.errors[0].to_string());
  const auto& rules = r.config->policy->rules;
  EXPECT_DOUBLE_EQ(rules[0].unfiltered.fraction, 0.8);
  EXPECT_EQ(rules[0].unfiltered.min_documents, 50);
  EXPECT_DOUBLE_EQ(rules[1].unfiltered.fraction, 0.5);
  EXPECT_EQ(rules[1].unfiltered.min_documents, 0);
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_TRUE(r.warnings[0].to_string().starts_with(
      "p.yaml:11:55: unfiltered_fraction and unfiltered_min_documents apply only with filter: "
      "unfiltered"))
      << r.warnings[0].to_string();

  auto plain = config::parse_config(
      "rules: [{name: a, match: {filter: unfiltered}, action: block}]\n", "p.yaml");
  ASSERT_TRUE(plain.ok());
  EXPECT_DOUBLE_EQ(plain.config->policy->rules[0].unfiltered.fraction, 0.9);
  EXPECT_EQ(plain.config->policy->rules[0].unfiltered.min_documents, 10);

  auto bad = config::parse_config(R"(unfiltered_fraction: 1.5
rules:
  - name: a
    match: { filter: unfiltered, unfiltered_min_documents: -1 }
    action: block
)",
                                  "p.yaml");
  ASSERT_EQ(bad.errors.size(), 2u);
  EXPECT_EQ(bad.errors[0].to_string(),
            "p.yaml:1:22: unfiltered_fraction must be a number above 0 and at most 1 (e.g. 0.9)");
  EXPECT_EQ(bad.errors[1].line, 4);
}

}  // namespace
}  // namespace mongoguard::policy
