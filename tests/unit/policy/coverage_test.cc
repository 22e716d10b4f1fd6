// What a policy protects (the start-up line) and the rules that can never
// act (validate's warnings), from policies written as in a file.
#include "policy/coverage.h"

#include <gtest/gtest.h>

#include "config/config.h"

namespace mongoguard::policy {
namespace {

Policy parse(const std::string& rules) {
  auto loaded = config::parse_config("rules:\n" + rules, "p.yaml");
  EXPECT_TRUE(loaded.ok()) << (loaded.errors.empty() ? "" : loaded.errors.front().to_string());
  return loaded.ok() ? *loaded.config->policy : Policy{};
}

std::vector<std::string> findings(const std::string& rules) {
  const auto policy = parse(rules);
  std::vector<std::string> out;
  for (const auto& f : unreachable_rules(policy)) out.push_back(f.message);
  return out;
}

TEST(DescribeProtection, NamesWhatIsProtectedAndWhatIsLeft) {
  EXPECT_EQ(describe_protection(parse(R"(
  - { name: b, match: { namespace: "app.*", operations: [delete] }, limit: { documents: 5, per: 1m }, action: hold }
  - { name: s, match: { namespace: ["app.*", "billing.invoices"] }, action: block }
  - { name: l, match: { namespace: "*.*" }, action: log }
)")),
            "policy: protects app.* (2 rules), billing.invoices (1 rule); 1 log or dry-run rule "
            "only log; unprotected: every other namespace");
}

TEST(DescribeProtection, EveryNamespaceAndExemptions) {
  EXPECT_EQ(describe_protection(parse(R"(
  - { name: u, match: { namespace: "*.*", filter: unfiltered }, action: block }
  - { name: sys, match: { namespace: ["admin.*", "local.*"] }, action: block }
  - { name: m, match: { namespace: "app.*", users: ["admin@admin"] }, action: allow }
)")),
            "policy: protects *.* (1 rule), admin.* (1 rule), local.* (1 rule); exempts app.* (1 "
            "rule) for some clients; unprotected: nothing, a rule covers every namespace");
}

TEST(DescribeProtection, DryRunAndEmptyPoliciesProtectNothing) {
  EXPECT_EQ(describe_protection(Policy{}),
            "policy: protects nothing (no enforced rule blocks, holds or has a budget); "
            "unprotected: every namespace");
  EXPECT_EQ(describe_protection(parse(R"(
  - { name: d, match: { namespace: "*.*" }, action: block, mode: dry-run }
)")),
            "policy: protects nothing (no enforced rule blocks, holds or has a budget); 1 log or "
            "dry-run rule only log; unprotected: every namespace");
}

TEST(UnreachableRules, ABroaderAllowShadowsWhereverItStands) {
  EXPECT_EQ(
      findings(R"(
  - { name: tmp-ok, match: { namespace: "app.tmp*" }, action: allow }
  - { name: no-delete-tmp, match: { namespace: "app.tmp_cache", operations: [delete] }, action: block }
)"),
      std::vector<std::string>{
          "rule 'no-delete-tmp' never acts: allow rule 'tmp-ok' (line 3) matches everything it "
          "matches, and a matching allow rule wins"});
  // A later allow shadows as well: allow wins whatever the order.
  EXPECT_EQ(findings(R"(
  - { name: b, match: { namespace: "app.c", operations: [delete] }, action: block }
  - { name: a, match: { namespace: "app.*", operations: [delete, update] }, action: allow }
)")
                .size(),
            1u);
}

TEST(UnreachableRules, NarrowerAllowsShadowNothing) {
  for (const char* rules : {
           // The allow asks who sends it; the rule applies to everyone.
           R"(
  - { name: a, match: { namespace: "app.*", users: ["ops@admin"] }, action: allow }
  - { name: b, match: { namespace: "app.*" }, action: block }
)",
           // Fewer operations.
           R"(
  - { name: a, match: { namespace: "app.*", operations: [delete] }, action: allow }
  - { name: b, match: { namespace: "app.*", operations: [delete, drop] }, action: block }
)",
           // Only unfiltered filters.
           R"(
  - { name: a, match: { namespace: "app.*", filter: unfiltered }, action: allow }
  - { name: b, match: { namespace: "app.*" }, action: block }
)",
           // Some collections: a dropDatabase of app still meets the block.
           R"(
  - { name: a, match: { namespace: "app.tmp*" }, action: allow }
  - { name: b, match: { namespace: "app.tmp_x" }, action: block }
)",
           // A wildcard this check does not work out.
           R"(
  - { name: a, match: { namespace: "app.t?p" }, action: allow }
  - { name: b, match: { namespace: "app.tmp", operations: [delete] }, action: block }
)",
       }) {
    EXPECT_TRUE(findings(rules).empty()) << rules;
  }
}

TEST(UnreachableRules, AnAllowNoRuleCoversExemptsNothing) {
  EXPECT_EQ(findings(R"(
  - { name: b, match: { namespace: "app.*" }, action: block }
  - { name: a, match: { namespace: "billing.*", apps: [x], users: [y@admin] }, action: allow }
)"),
            std::vector<std::string>{"allow rule 'a' exempts nothing: no block, hold, log or "
                                     "budget rule covers its namespaces"});
  EXPECT_TRUE(findings(R"(
  - { name: b, match: { namespace: "*.*" }, action: log }
  - { name: a, match: { namespace: "billing.*", users: [y@admin] }, action: allow }
)")
                  .empty());
}

}  // namespace
}  // namespace mongoguard::policy
