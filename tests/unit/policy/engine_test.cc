#include <gtest/gtest.h>

#include "config/config.h"
#include "policy/policy.h"
#include "policy/rule.h"

namespace mongoguard::policy {
namespace {

NamespaceGlob glob(std::string_view text) {
  std::string error;
  auto g = NamespaceGlob::parse(text, error);
  EXPECT_TRUE(g) << error;
  return *g;
}

TEST(NamespaceGlobTest, MatchesDatabaseAndCollectionSeparately) {
  EXPECT_TRUE(glob("app.families").matches("app.families"));
  EXPECT_FALSE(glob("app.families").matches("app.family"));
  EXPECT_TRUE(glob("app.*").matches("app.families"));
  EXPECT_TRUE(glob("app.*").matches("app.system.views"));
  EXPECT_FALSE(glob("app.*").matches("apps.families"));
  EXPECT_FALSE(glob("app.*").matches("other.families"));
  EXPECT_TRUE(glob("*.*").matches("x.y"));
  EXPECT_TRUE(glob("app_?.log*").matches("app_1.logs"));
  EXPECT_FALSE(glob("app_?.log*").matches("app_12.logs"));
  EXPECT_TRUE(glob("*.families").matches("prod.families"));
}

TEST(NamespaceGlobTest, WholeDatabaseTargetsMatchAnyCollectionPattern) {
  // dropDatabase names its target "db.*": it destroys every collection.
  EXPECT_TRUE(glob("app.families").matches("app.*"));
  EXPECT_FALSE(glob("other.families").matches("app.*"));
}

TEST(NamespaceGlobTest, RejectsMalformedPatterns) {
  std::string error;
  for (auto bad : {"", "app", ".coll", "app.", "app.[ab]", "a b.c", "a$b.c"}) {
    EXPECT_FALSE(NamespaceGlob::parse(bad, error)) << bad;
    EXPECT_FALSE(error.empty());
  }
}

TEST(CidrTest, ContainsV4AndV6) {
  std::string error;
  auto net = Cidr::parse("10.1.0.0/16", error);
  ASSERT_TRUE(net) << error;
  EXPECT_TRUE(net->contains(*parse_ip("10.1.200.3")));
  EXPECT_FALSE(net->contains(*parse_ip("10.2.0.1")));
  auto host = Cidr::parse("127.0.0.1", error);
  ASSERT_TRUE(host);
  EXPECT_TRUE(host->contains(*parse_ip("127.0.0.1")));
  EXPECT_FALSE(host->contains(*parse_ip("127.0.0.2")));
  auto v6 = Cidr::parse("fd00::/8", error);
  ASSERT_TRUE(v6);
  EXPECT_TRUE(v6->contains(*parse_ip("fd12::1")));
  EXPECT_FALSE(v6->contains(*parse_ip("fe80::1")));
  auto all = Cidr::parse("0.0.0.0/0", error);
  ASSERT_TRUE(all);
  EXPECT_TRUE(all->contains(*parse_ip("8.8.8.8")));
  EXPECT_FALSE(all->contains(*parse_ip("::1")));
  for (auto bad : {"10.0.0.0/33", "::/129", "10.0.0/8", "host", "1.2.3.4/", "1.2.3.4/x"}) {
    EXPECT_FALSE(Cidr::parse(bad, error)) << bad;
  }
}

Target delete_target(std::string ns, FilterShape shape) {
  Target t;
  t.op = Operation::kDelete;
  t.matches.add(Operation::kDelete);
  t.ns = std::move(ns);
  t.filter = shape;
  t.statements = 1;
  t.multi_statements = 1;
  return t;
}

Rule rule(std::string name, Action action, std::vector<Operation> ops = {},
          std::vector<std::string> namespaces = {}) {
  Rule r;
  r.name = std::move(name);
  r.action = action;
  for (auto op : ops) r.operations.add(op);
  for (const auto& ns : namespaces) r.namespaces.push_back(glob(ns));
  return r;
}

CommandInfo info_with(std::vector<Target> targets) {
  CommandInfo info;
  info.command = "delete";
  info.database = "app";
  info.targets = std::move(targets);
  return info;
}

TEST(DecideTest, NoRuleMatchingAllows) {
  Policy p;
  p.rules.push_back(rule("drops", Action::kBlock, {Operation::kDrop}));
  auto v = decide(p, info_with({delete_target("app.a", FilterShape::kFiltered)}), {});
  EXPECT_EQ(v.action, Action::kAllow);
  EXPECT_TRUE(v.matched.empty());
  EXPECT_FALSE(v.dry_run);
}

TEST(DecideTest, StrictestWinsAndNamesFirstRuleWithThatAction) {
  Policy p;
  p.rules.push_back(rule("logit", Action::kLog));
  p.rules.push_back(rule("blockit", Action::kBlock, {Operation::kDelete}));
  p.rules.push_back(rule("blockit-too", Action::kBlock, {}, {"app.*"}));
  const auto info = info_with({delete_target("app.a", FilterShape::kFiltered)});
  auto v = decide(p, info, {});
  EXPECT_EQ(v.action, Action::kBlock);
  ASSERT_TRUE(v.rule);
  EXPECT_EQ(v.rule->name, "blockit");
  EXPECT_EQ(v.matched.size(), 3u);
  EXPECT_EQ(v.error_message(),
            "mongoguard: delete on app.a blocked by rule 'blockit': delete is not permitted here");
}

TEST(DecideTest, BlockBeatsHoldWhateverTheOrder) {
  // A blocked operation must never be approvable: block is the stricter.
  for (const bool hold_first : {false, true}) {
    Policy p;
    if (hold_first) p.rules.push_back(rule("h", Action::kHold));
    p.rules.push_back(rule("b", Action::kBlock));
    if (!hold_first) p.rules.push_back(rule("h", Action::kHold));
    auto v = decide(p, info_with({delete_target("app.a", FilterShape::kFiltered)}), {});
    EXPECT_EQ(v.action, Action::kBlock);
    EXPECT_EQ(v.rule->name, "b");
  }
}

TEST(DecideTest, AllowExemptsWhateverElseMatches) {
  Policy p;
  p.rules.push_back(rule("block-all", Action::kHold));
  Rule migrator = rule("migrations-may", Action::kAllow, {}, {"app.*"});
  migrator.apps = {"migrator"};
  migrator.users = {"admin"};
  p.rules.push_back(migrator);
  auto info = info_with({delete_target("app.a", FilterShape::kUnfiltered)});
  Identity who;
  who.app = "migrator";
  EXPECT_EQ(decide(p, info, who).action, Action::kHold) << "user must match too";
  who.user = "admin";
  auto v = decide(p, info, who);
  EXPECT_EQ(v.action, Action::kAllow);
  EXPECT_EQ(v.matched.size(), 2u);
}

TEST(DecideTest, ExemptionIsPerTargetAndCommandTakesStrictestTarget) {
  Policy p;
  p.rules.push_back(rule("block", Action::kBlock));
  p.rules.push_back(rule("free-scratch", Action::kAllow, {}, {"scratch.*"}));
  const auto info = info_with({delete_target("scratch.x", FilterShape::kFiltered),
                               delete_target("app.y", FilterShape::kFiltered)});
  auto v = decide(p, info, {});
  EXPECT_EQ(v.action, Action::kBlock);
  ASSERT_TRUE(v.target);
  EXPECT_EQ(v.target->ns, "app.y");
}

TEST(DecideTest, UnfilteredConditionNeedsAnUnfilteredTarget) {
  Policy p;
  Rule r = rule("no-unfiltered", Action::kBlock, {Operation::kDelete});
  r.filter = FilterMatch::kUnfiltered;
  p.rules.push_back(r);
  EXPECT_EQ(decide(p, info_with({delete_target("a.b", FilterShape::kFiltered)}), {}).action,
            Action::kAllow);
  const auto info = info_with({delete_target("a.b", FilterShape::kUnfiltered)});
  auto v = decide(p, info, {});
  EXPECT_EQ(v.action, Action::kBlock);
  EXPECT_NE(v.error_message().find("the filter matches every document"), std::string::npos);
}

TEST(DecideTest, ClientsConditionUsesTheClientAddress) {
  Policy p;
  Rule r = rule("office-only", Action::kBlock);
  std::string error;
  r.clients.push_back(*Cidr::parse("10.0.0.0/8", error));
  p.rules.push_back(r);
  auto info = info_with({delete_target("a.b", FilterShape::kFiltered)});
  Identity who;
  EXPECT_EQ(decide(p, info, who).action, Action::kAllow) << "unknown address matches no CIDR";
  who.client_ip = parse_ip("10.3.4.5");
  EXPECT_EQ(decide(p, info, who).action, Action::kBlock);
  who.client_ip = parse_ip("127.0.0.1");
  EXPECT_EQ(decide(p, info, who).action, Action::kAllow);
}

TEST(DecideTest, DryRunReportsButOnlyLogs) {
  Policy p;
  p.mode = Mode::kDryRun;
  p.rules.push_back(rule("would", Action::kBlock));
  auto v = decide(p, info_with({delete_target("a.b", FilterShape::kFiltered)}), {});
  EXPECT_EQ(v.action, Action::kLog);
  EXPECT_EQ(v.would, Action::kBlock);
  EXPECT_TRUE(v.dry_run);
  EXPECT_EQ(v.rule->name, "would");
}

TEST(DecideTest, PerRuleDryRunLeavesEnforcingRulesInForce) {
  Policy p;
  Rule trial = rule("trial-block", Action::kBlock);
  trial.mode = Mode::kDryRun;
  p.rules.push_back(trial);
  p.rules.push_back(rule("real-log", Action::kLog));
  auto v = decide(p, info_with({delete_target("a.b", FilterShape::kFiltered)}), {});
  EXPECT_EQ(v.action, Action::kLog);
  EXPECT_EQ(v.would, Action::kBlock);
  EXPECT_TRUE(v.dry_run);
  p.rules.push_back(rule("real-hold", Action::kHold));
  v = decide(p, info_with({delete_target("a.b", FilterShape::kFiltered)}), {});
  EXPECT_EQ(v.action, Action::kHold);
  EXPECT_EQ(v.rule->name, "trial-block") << "the verdict names what the rules asked for";
}

TEST(DecideTest, EnforcedRuleInDryRunPolicyStillEnforces) {
  Policy p;
  p.mode = Mode::kDryRun;
  Rule r = rule("always", Action::kBlock);
  r.mode = Mode::kEnforce;
  p.rules.push_back(r);
  auto v = decide(p, info_with({delete_target("a.b", FilterShape::kFiltered)}), {});
  EXPECT_EQ(v.action, Action::kBlock);
  EXPECT_FALSE(v.dry_run);
}

TEST(DecideTest, CustomMessageIsShown) {
  Policy p;
  Rule r = rule("protect-schema", Action::kBlock, {Operation::kDrop});
  r.message = "Ask the DBA team.";
  p.rules.push_back(r);
  Target drop;
  drop.op = Operation::kDrop;
  drop.matches.add(Operation::kDrop);
  drop.ns = "app.families";
  const auto info = info_with({drop});
  auto v = decide(p, info, {});
  EXPECT_EQ(v.error_message(),
            "mongoguard: drop on app.families blocked by rule 'protect-schema': Ask the DBA team.");
}

}  // namespace
}  // namespace mongoguard::policy

namespace mongoguard::config {
namespace {

TEST(PolicyFileTest, ParsesTheDocumentedShape) {
  auto r = parse_config(R"(
listen: 127.0.0.1:27017
upstream: mongodb://127.0.0.1:27018
mode: dry-run
connect_timeout: 2s
audit:
  path: /var/log/mongoguard/audit.jsonl
  redact: false
rules:
  - name: no-unfiltered-writes
    match: { namespace: "*.*", operations: [delete, update], filter: unfiltered }
    action: block
  - name: protect-schema
    match: { namespace: ["app.*", "billing.*"], operations: [drop, dropDatabase] }
    action: hold
    mode: enforce
    message: "Ask the DBA team."
  - name: migrations-may
    match: { namespace: "app.*", apps: ["migrator"], users: ["admin"], clients: [10.0.0.0/8] }
    action: allow
)",
                        "p.yaml");
  ASSERT_TRUE(r.ok()) << (r.errors.empty() ? "" : r.errors[0].to_string());
  const auto& c = *r.config;
  EXPECT_EQ(c.policy->mode, policy::Mode::kDryRun);
  EXPECT_EQ(c.connect_timeout->count(), 2000);
  EXPECT_EQ(*c.audit_path, "/var/log/mongoguard/audit.jsonl");
  EXPECT_FALSE(c.audit_redact);
  ASSERT_EQ(c.policy->rules.size(), 3u);
  const auto& schema = c.policy->rules[1];
  EXPECT_EQ(schema.namespaces.size(), 2u);
  EXPECT_TRUE(schema.operations.has(policy::Operation::kDropDatabase));
  EXPECT_EQ(schema.action, policy::Action::kHold);
  EXPECT_EQ(*schema.mode, policy::Mode::kEnforce);
  EXPECT_EQ(schema.message, "Ask the DBA team.");
  EXPECT_EQ(schema.line, 13);
  EXPECT_EQ(c.policy->rules[0].filter, policy::FilterMatch::kUnfiltered);
  EXPECT_EQ(c.policy->rules[2].clients.size(), 1u);
}

TEST(PolicyFileTest, EveryKindOfMistakeIsReportedWithItsPosition) {
  auto r = parse_config(R"(mode: maybe
connect_timeout: 5 parsecs
rules:
  - name: a
    match: { namespace: "nodot", operations: [delete, nuke], filter: some, clients: ["10.0.0.0/40"] }
    action: explode
    colour: red
  - name: a
    match: {}
    action: log
  - match: {}
    action: block
)",
                        "p.yaml");
  ASSERT_FALSE(r.ok());
  std::vector<std::string> lines;
  for (const auto& e : r.errors) lines.push_back(e.to_string());
  auto has = [&](std::string_view needle) {
    return std::any_of(lines.begin(), lines.end(),
                       [&](const std::string& l) { return l.find(needle) != std::string::npos; });
  };
  EXPECT_TRUE(has("p.yaml:1:7: mode must be enforce or dry-run"));
  EXPECT_TRUE(has("p.yaml:2:18: bad duration '5 parsecs'"));
  EXPECT_TRUE(has("p.yaml:5:25: bad namespace glob"));
  EXPECT_TRUE(has("p.yaml:5:55: unknown operation 'nuke'"));
  EXPECT_TRUE(has("filter must be unfiltered or any"));
  EXPECT_TRUE(has("bad CIDR"));
  EXPECT_TRUE(has("p.yaml:6:13: action must be allow, log, block or hold"));
  EXPECT_TRUE(has("p.yaml:7:5: unknown key 'colour' in a rule"));
  EXPECT_TRUE(has("p.yaml:8:11: duplicate rule name 'a'"));
  EXPECT_TRUE(has("rule has no name"));
  EXPECT_TRUE(std::is_sorted(r.errors.begin(), r.errors.end(),
                             [](const auto& a, const auto& b) { return a.line < b.line; }));
}

TEST(PolicyFileTest, DurationsParse) {
  EXPECT_EQ(parse_duration("250ms")->count(), 250);
  EXPECT_EQ(parse_duration("10s")->count(), 10'000);
  EXPECT_EQ(parse_duration("5m")->count(), 300'000);
  EXPECT_EQ(parse_duration("1h")->count(), 3'600'000);
  EXPECT_EQ(parse_duration("2d")->count(), 172'800'000);
  for (auto bad : {"", "10", "s", "1.5s", "-1s", "10 s", "10sec"}) {
    EXPECT_FALSE(parse_duration(bad)) << bad;
  }
}

}  // namespace
}  // namespace mongoguard::config

namespace mongoguard::config {
namespace {

TEST(PolicyFileTest, ExpandsEnvironmentVariables) {
  ::setenv("MG_TEST_AUDIT_DIR", "/srv/audit", 1);
  ::unsetenv("MG_TEST_UNSET");
  std::string error;
  EXPECT_EQ(*expand_env("${MG_TEST_AUDIT_DIR}/a.jsonl", error), "/srv/audit/a.jsonl");
  EXPECT_EQ(*expand_env("${MG_TEST_UNSET:-/var/log/x}", error), "/var/log/x");
  EXPECT_EQ(*expand_env("no variables $ here", error), "no variables $ here");
  EXPECT_FALSE(expand_env("${MG_TEST_UNSET}", error));
  EXPECT_NE(error.find("MG_TEST_UNSET is not set"), std::string::npos);
  EXPECT_FALSE(expand_env("${unterminated", error));
  auto r = parse_config("audit:\n  path: ${MG_TEST_AUDIT_DIR}/audit.jsonl\n", "p.yaml");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r.config->audit_path, "/srv/audit/audit.jsonl");
  auto bad = parse_config("audit:\n  path: ${MG_TEST_UNSET}\n", "p.yaml");
  ASSERT_EQ(bad.errors.size(), 1u);
  EXPECT_EQ(bad.errors[0].line, 2);
}

}  // namespace
}  // namespace mongoguard::config
