// limit as a list of windows (documents or percent, each its own per and
// ceiling) beside the single-window form: values, and errors and warnings
// with their positions.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/config.h"

namespace mongoguard::config {
namespace {

using namespace std::chrono_literals;

// A policy of one hold rule whose limit is `limit` (written on line 4).
LoadResult parse_limit(const std::string& limit) {
  return parse_config(
      "rules:\n  - name: budget\n    match: { namespace: \"app.*\" }\n"
      "    limit: " +
          limit + "\n    action: hold\n",
      "p.yaml");
}

std::vector<std::string> texts(const std::vector<ConfigError>& errors) {
  std::vector<std::string> out;
  for (const auto& e : errors) out.push_back(e.to_string());
  return out;
}

TEST(ConfigWindows, TheSingleMappingIsOneWindow) {
  auto r = parse_limit("{ documents: 50, per: 1m, preflight: true, on_preflight_error: block }");
  ASSERT_TRUE(r.ok()) << texts(r.errors).front();
  const auto& limit = *r.config->policy->rules[0].limit;
  ASSERT_EQ(limit.windows.size(), 1u);
  EXPECT_EQ(limit.windows[0].documents, 50);
  EXPECT_EQ(limit.windows[0].per, 1min);
  EXPECT_FALSE(limit.windows[0].ceiling);
  EXPECT_EQ(limit.on_preflight_error, policy::Action::kBlock);
  EXPECT_FALSE(limit.relative());
}

TEST(ConfigWindows, AListGivesEveryWindowAndTheLimitWideOptions) {
  auto r = parse_limit(
      "[{documents: 50, per: 1m, ceiling: 150, group_by: [app]}, {documents: 300, per: 1h, "
      "ceiling: 900, group_by: [app], on_preflight_error: block}, {percent: 2.5, per: 1d, "
      "ceiling: 2000}]");
  ASSERT_TRUE(r.ok()) << texts(r.errors).front();
  EXPECT_TRUE(r.warnings.empty()) << texts(r.warnings).front();
  const auto& limit = *r.config->policy->rules[0].limit;
  ASSERT_EQ(limit.windows.size(), 3u);
  EXPECT_EQ(limit.windows[0].documents, 50);
  EXPECT_EQ(limit.windows[0].ceiling, 150);
  EXPECT_EQ(limit.windows[1].documents, 300);
  EXPECT_EQ(limit.windows[1].per, 1h);
  EXPECT_EQ(limit.windows[1].ceiling, 900);
  EXPECT_EQ(limit.windows[2].documents, 0);
  EXPECT_DOUBLE_EQ(limit.windows[2].percent, 2.5);
  EXPECT_EQ(limit.windows[2].per, 24h);
  EXPECT_TRUE(limit.relative());
  EXPECT_TRUE(limit.group_by_app) << "written in two windows alike: the whole limit's";
  EXPECT_FALSE(limit.group_by_user);
  EXPECT_EQ(limit.on_preflight_error, policy::Action::kBlock) << "written in one window";
  EXPECT_TRUE(limit.preflight);
}

TEST(ConfigWindows, PercentAlsoFitsTheSingleMapping) {
  auto r = parse_limit("{ percent: 0.5, per: 1h }");
  ASSERT_TRUE(r.ok()) << texts(r.errors).front();
  EXPECT_DOUBLE_EQ(r.config->policy->rules[0].limit->windows[0].percent, 0.5);
}

TEST(ConfigWindows, BadListsAreRefusedWithPositions) {
  auto errors = [](const std::string& limit) { return texts(parse_limit(limit).errors); };
  EXPECT_EQ(errors("[]"),
            std::vector<std::string>{
                "p.yaml:4:12: limit lists no windows (write e.g. [{ documents: 50, per: 1m }])"});
  EXPECT_EQ(errors("[{documents: 5, per: 1m}, 7]"),
            std::vector<std::string>{"p.yaml:4:38: each limit window must be a mapping like { "
                                     "documents: 50, per: 1m }"});
  EXPECT_EQ(errors("[{documents: 5, per: 1m}, {documents: 9, per: 60s}]"),
            std::vector<std::string>{"p.yaml:4:58: another window of this limit (line 4) is also "
                                     "per 1m: each window needs its own per"});
  EXPECT_EQ(errors("[{documents: 5, percent: 2, per: 1m}]"),
            std::vector<std::string>{
                "p.yaml:4:37: a limit window takes documents or percent (of the collection), not "
                "both"});
  EXPECT_EQ(errors("[{per: 1m}]"),
            std::vector<std::string>{
                "p.yaml:4:13: a limit window needs documents (how many may be affected per "
                "window) or percent (a share of the collection's documents)"});
  EXPECT_EQ(
      errors("[{documents: 5}]"),
      std::vector<std::string>{"p.yaml:4:13: a limit window needs per (the window, e.g. 1m)"});
  EXPECT_EQ(errors("[{documents: 50, per: 1m, ceiling: 10}]"),
            std::vector<std::string>{"p.yaml:4:47: limit.ceiling (all groups together) must be at "
                                     "least limit.documents"});
  EXPECT_EQ(errors("[{documents: 5, per: 1m, colour: red}]"),
            std::vector<std::string>{"p.yaml:4:37: unknown key 'colour' in a limit window (known: "
                                     "auto_resume, ceiling, documents, "
                                     "group_by, on_preflight_error, per, percent, preflight)"});
  EXPECT_EQ(errors("7"), std::vector<std::string>{"p.yaml:4:12: limit must be a mapping like { "
                                                  "documents: 50, per: 1m } or a list of such "
                                                  "windows"});
}

TEST(ConfigWindows, PercentIsAboveZeroAndAtMostAHundred) {
  const std::string want =
      "limit.percent must be a number above 0 and at most 100 (a share of the collection's "
      "documents)";
  for (const char* bad : {"0", "-1", "100.5", "2%", "[2]"}) {
    const auto r = parse_limit(std::string("[{percent: ") + bad + ", per: 1h}]");
    ASSERT_EQ(r.errors.size(), 1u) << bad;
    EXPECT_EQ(r.errors[0].message, want) << bad;
    EXPECT_EQ(r.errors[0].line, 4);
    EXPECT_EQ(r.errors[0].column, 23) << bad;
  }
  EXPECT_TRUE(parse_limit("[{percent: 100, per: 1h}]").ok());
}

TEST(ConfigWindows, TheLimitWideOptionsMustAgreeAcrossWindows) {
  auto r = parse_limit(
      "[{documents: 5, per: 1m, group_by: [user]}, {documents: 50, per: 1h, group_by: [app]}]");
  EXPECT_EQ(texts(r.errors),
            std::vector<std::string>{
                "p.yaml:4:91: limit.group_by differs from line 4: it applies to the whole limit, "
                "so every window that writes it must agree"});
  r = parse_limit(
      "[{documents: 5, per: 1m, on_preflight_error: hold}, {documents: 50, per: 1h, "
      "on_preflight_error: allow}]");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].column, 109);
  EXPECT_NE(r.errors[0].message.find("limit.on_preflight_error differs"), std::string::npos);
  r = parse_limit(
      "[{documents: 5, per: 1m, preflight: false}, {documents: 50, per: 1h, preflight: true}]");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_NE(r.errors[0].message.find("limit.preflight differs"), std::string::npos);
  EXPECT_TRUE(parse_limit("[{documents: 5, per: 1m, group_by: [app, user], ceiling: 9}, "
                          "{documents: 50, per: 1h, group_by: [user, app], ceiling: 90}]")
                  .ok())
      << "the same groups in another order agree";
}

TEST(ConfigWindows, EveryWindowWithoutACeilingIsWarnedAbout) {
  auto r = parse_limit(
      "[{documents: 5, per: 1m, group_by: [app], ceiling: 20}, {documents: 50, per: 1h}, "
      "{percent: 1, per: 1d}]");
  ASSERT_TRUE(r.ok()) << texts(r.errors).front();
  const auto w = texts(r.warnings);
  ASSERT_EQ(w.size(), 2u) << ::testing::PrintToString(w);
  EXPECT_TRUE(w[0].starts_with("p.yaml:4:68: group_by app lets a client split this budget"))
      << w[0];
  EXPECT_NE(w[0].find("add a ceiling to the 1h window"), std::string::npos) << w[0];
  EXPECT_TRUE(w[1].starts_with("p.yaml:4:94: group_by app")) << w[1];
  EXPECT_NE(w[1].find("the 1d window"), std::string::npos) << w[1];
}

}  // namespace
}  // namespace mongoguard::config
