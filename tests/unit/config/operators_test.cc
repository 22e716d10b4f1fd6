// admin.operators, admin.public_url, rules[].hold.approvals and
// limit.auto_resume: what is read, what is refused and where.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "config/config.h"
#include "config/token_file.h"

namespace mongoguard::config {
namespace {

constexpr const char* kOperators =
    "admin:\n"
    "  public_url: https://guard.example.com/\n"
    "  operators:\n"
    "    - {name: vera, token_file: /t/vera, role: viewer}\n"
    "    - {name: bob, token_file: /t/bob, role: approver}\n"
    "    - {name: carol, token_file: /t/carol, role: admin}\n";

TEST(ConfigOperators, NamesRolesAndTheirFiles) {
  auto r = parse_config(kOperators, "f.yaml");
  ASSERT_TRUE(r.ok()) << r.errors.front().to_string();
  const auto& ops = r.config->operators;
  ASSERT_EQ(ops.size(), 3u);
  EXPECT_EQ(ops[0].name, "vera");
  EXPECT_EQ(ops[0].role, OperatorRole::kViewer);
  EXPECT_EQ(ops[1].role, OperatorRole::kApprover);
  EXPECT_EQ(ops[2].role, OperatorRole::kAdmin);
  EXPECT_EQ(ops[2].token_file.path, "/t/carol");
  EXPECT_EQ(ops[2].token_file.line, 6);
  EXPECT_EQ(*r.config->admin_public_url, "https://guard.example.com");
  EXPECT_STREQ(operator_role_name(OperatorRole::kApprover), "approver");
}

TEST(ConfigOperators, MistakesAreReportedWhereTheyAre) {
  struct Case {
    const char* text;
    const char* message;
    int line;
  };
  for (const auto& c : {
           Case{"admin:\n  operators: {name: x}\n", "admin.operators must be a list", 2},
           Case{"admin:\n  operators:\n    - {name: 'a b', token_file: /t, role: admin}\n",
                "operator name must be 1 to 64 letters", 3},
           Case{"admin:\n  operators:\n    - {name: a, token_file: /t, role: admin}\n"
                "    - {name: a, token_file: /u, role: viewer}\n",
                "operator 'a' is already named on line 3", 4},
           Case{"admin:\n  operators:\n    - {name: a, role: admin}\n", "has no token_file", 3},
           Case{"admin:\n  operators:\n    - {name: a, token_file: /t, role: root}\n",
                "role must be viewer, approver or admin, not 'root'", 3},
           Case{"admin:\n  operators:\n    - {name: a, token_file: /t}\n", "has no role", 3},
           Case{"admin:\n  public_url: guard.example.com\n", "admin.public_url must be an http", 2},
           Case{"rules:\n  - name: r\n    match: {}\n    action: hold\n    hold: {approvals: 2}\n",
                "hold.approvals: 2 needs at least 2 named operators who may approve", 5},
           Case{"rules:\n  - name: r\n    match: {}\n    action: hold\n    hold: {approvals: 9}\n",
                "hold.approvals must be a whole number from 1 to 5", 5},
           Case{"rules:\n  - name: r\n    match: {}\n    action: hold\n"
                "    limit: {documents: 5, per: 1m, auto_resume: maybe}\n",
                "limit.auto_resume", 5},
       }) {
    auto r = parse_config(c.text, "f.yaml");
    ASSERT_FALSE(r.ok()) << c.text;
    const auto& e = r.errors.front();
    EXPECT_NE(e.message.find(c.message), std::string::npos) << e.to_string();
    EXPECT_EQ(e.line, c.line) << e.to_string();
  }
}

TEST(ConfigOperators, ApprovalsAndAutoResumeAreRead) {
  auto r = parse_config(std::string(kOperators) +
                            "    - {name: dave, token_file: /t/dave, role: approver}\n"
                            "rules:\n"
                            "  - name: drops\n"
                            "    match: {operations: [drop]}\n"
                            "    action: hold\n"
                            "    hold: {approvals: 2}\n"
                            "  - name: budget\n"
                            "    match: {operations: [delete]}\n"
                            "    action: hold\n"
                            "    limit: [{documents: 5, per: 1m, auto_resume: true}, "
                            "{documents: 50, per: 1h}]\n",
                        "f.yaml");
  ASSERT_TRUE(r.ok()) << r.errors.front().to_string();
  const auto& rules = r.config->policy->rules;
  EXPECT_EQ(rules[0].approvals, 2);
  EXPECT_EQ(rules[1].approvals, 1);
  EXPECT_TRUE(rules[1].limit->auto_resume);
  auto off = parse_config(
      "rules:\n  - name: b\n    match: {}\n    action: hold\n"
      "    limit: {documents: 5, per: 1m}\n",
      "f.yaml");
  ASSERT_TRUE(off.ok());
  EXPECT_FALSE(off.config->policy->rules[0].limit->auto_resume) << "off unless asked for";
}

TEST(ConfigOperators, TokenProblemsNameTheFileAndTheOperator) {
  const auto dir = std::filesystem::temp_directory_path() / "mg-operators-test";
  std::filesystem::create_directories(dir);
  const auto write = [&](const char* name, const char* text) {
    std::ofstream(dir / name) << text;
    return (dir / name).string();
  };
  Config config;
  config.admin_token_file = write("shared", "shared-token-0123456789\n");
  config.operators.push_back(
      {"bob", {write("bob", "bob-token-0123456789\n")}, OperatorRole::kAdmin});
  config.operators.push_back(
      {"eve", {write("eve", "bob-token-0123456789\n")}, OperatorRole::kAdmin});
  config.operators.push_back({"nobody", {write("nobody", "\n")}, OperatorRole::kViewer});
  config.operators.push_back({"gone", {(dir / "missing").string()}, OperatorRole::kViewer});
  const auto problems = admin_token_problems(config, std::nullopt);
  ASSERT_EQ(problems.size(), 3u);
  EXPECT_EQ(problems[0].rfind("operator eve has the same token as operator bob", 0), 0u)
      << problems[0];
  EXPECT_EQ(problems[1],
            "operator nobody: the token file " + (dir / "nobody").string() + " is empty");
  EXPECT_EQ(problems[2].rfind("operator gone: cannot read the token file", 0), 0u);
  config.operators.clear();
  EXPECT_TRUE(admin_token_problems(config, std::nullopt).empty());
  EXPECT_EQ(admin_token_problems(config, (dir / "missing").string()).size(), 1u)
      << "--admin-token-file replaces admin.token_file";
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace mongoguard::config
