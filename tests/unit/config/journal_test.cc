// journal: and a rule's journal: defaults, sizes, and errors with positions.
#include <gtest/gtest.h>

#include "config/config.h"

namespace mongoguard::config {
namespace {

using namespace std::chrono_literals;

constexpr const char* kRules = R"(
rules:
  - name: budget
    match: { namespace: app.family, operations: [delete] }
    action: hold
    limit: { documents: 50, per: 1m }
  - name: plain
    match: { namespace: app.logs }
    action: log
  - name: opted-out
    match: { namespace: app.cache }
    action: hold
    limit: { documents: 5, per: 1m }
    journal: false
)";

TEST(ConfigJournal, AbsentMeansNoJournalAndNoJournaledRule) {
  auto r = parse_config(kRules, "f.yaml");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r.config->journal);
  for (const auto& rule : r.config->policy->rules) EXPECT_FALSE(rule.journal) << rule.name;
}

TEST(ConfigJournal, DefaultsAndRulesWithALimitJournal) {
  auto r = parse_config(std::string("journal:\n  path: /tmp/j.db\n") + kRules, "f.yaml");
  ASSERT_TRUE(r.ok()) << r.errors.front().to_string();
  const auto& j = *r.config->journal;
  EXPECT_EQ(j.path, "/tmp/j.db");
  EXPECT_EQ(j.retention, std::chrono::hours(24 * 7));
  EXPECT_EQ(j.max_size, 1ull << 30);
  EXPECT_EQ(j.on_error, JournalConfig::OnError::kHold);
  EXPECT_EQ(j.max_documents, 10'000);
  EXPECT_EQ(j.restore_uri, "");
  const auto& rules = r.config->policy->rules;
  EXPECT_TRUE(rules[0].journal);   // has a limit
  EXPECT_FALSE(rules[1].journal);  // no limit
  EXPECT_FALSE(rules[2].journal);  // journal: false
}

TEST(ConfigJournal, ValuesAreRead) {
  setenv("MG_TEST_RESTORE", "mongodb://127.0.0.1:27017", 1);
  auto r = parse_config(R"(
journal:
  path: /var/lib/mongoguard/journal.db
  retention: 2d
  max_size: 512MiB
  on_error: forward
  max_documents: 20
  restore_uri: ${MG_TEST_RESTORE:-}
rules:
  - name: logged
    match: {}
    action: log
    journal: true
)",
                        "f.yaml");
  ASSERT_TRUE(r.ok()) << r.errors.front().to_string();
  const auto& j = *r.config->journal;
  EXPECT_EQ(j.retention, std::chrono::hours(48));
  EXPECT_EQ(j.max_size, 512ull << 20);
  EXPECT_EQ(j.on_error, JournalConfig::OnError::kForward);
  EXPECT_EQ(j.max_documents, 20);
  EXPECT_EQ(j.restore_uri, "mongodb://127.0.0.1:27017");
  EXPECT_TRUE(r.config->policy->rules[0].journal);
  unsetenv("MG_TEST_RESTORE");
}

TEST(ConfigJournal, Sizes) {
  EXPECT_EQ(parse_size("1GiB"), 1ull << 30);
  EXPECT_EQ(parse_size("64KiB"), 64ull << 10);
  EXPECT_EQ(parse_size("2GB"), 2'000'000'000ull);
  EXPECT_EQ(parse_size("10MB"), 10'000'000ull);
  EXPECT_EQ(parse_size("500KB"), 500'000ull);
  EXPECT_EQ(parse_size("4096"), 4096ull);
  EXPECT_FALSE(parse_size("0"));
  EXPECT_FALSE(parse_size("1TB"));
  EXPECT_FALSE(parse_size("GiB"));
  EXPECT_FALSE(parse_size("-1MiB"));
  EXPECT_FALSE(parse_size("99999999999999999999GiB"));
  EXPECT_FALSE(parse_size("20000000000GiB"));  // overflows 64 bits
}

TEST(ConfigJournal, ErrorsNameTheKeyAndLine) {
  auto r = parse_config(R"(
journal:
  path: /tmp/j.db
  max_size: 10KiB
  on_error: drop
  retention: soon
  max_documents: 0
  colour: blue
)",
                        "f.yaml");
  ASSERT_FALSE(r.ok());
  std::string all;
  for (const auto& e : r.errors) all += e.to_string() + "\n";
  EXPECT_NE(all.find("f.yaml:4:13: journal.max_size must be a size of at least 1MiB"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("journal.on_error must be hold or forward, not 'drop'"), std::string::npos);
  EXPECT_NE(all.find("journal.retention"), std::string::npos);
  EXPECT_NE(all.find("journal.max_documents must be a whole number between 1"), std::string::npos);
  EXPECT_NE(all.find("unknown key 'colour' in journal"), std::string::npos);
  auto no_path = parse_config("journal: { retention: 1d }\n", "f.yaml");
  ASSERT_FALSE(no_path.ok());
  EXPECT_NE(no_path.errors[0].message.find("journal needs a path"), std::string::npos);
  EXPECT_FALSE(parse_config("journal: /tmp/j.db\n", "f.yaml").ok());
}

TEST(ConfigJournal, AskingForAJournalWithoutOneWarns) {
  auto r = parse_config(R"(
rules:
  - name: wants
    match: {}
    action: log
    journal: true
)",
                        "f.yaml");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_NE(r.warnings[0].message.find("journal.path is not set"), std::string::npos);
  EXPECT_FALSE(r.config->policy->rules[0].journal);
  EXPECT_FALSE(
      parse_config("rules:\n  - {name: x, match: {}, action: log, journal: maybe}\n", "f.yaml")
          .ok());
}

}  // namespace
}  // namespace mongoguard::config
