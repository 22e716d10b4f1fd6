#include "proxy/cli/tools.h"

#include <gtest/gtest.h>

#include <vector>

namespace mongoguard::tools {
namespace {

using proxy::CommandLine;

CommandLine validate(std::vector<const char*> args, std::string& path, std::string& error) {
  args.insert(args.begin(), "validate");
  return parse_validate(static_cast<int>(args.size()), args.data(), path, error);
}

CommandLine explain(std::vector<const char*> args, ExplainArgs& out, std::string& error) {
  args.insert(args.begin(), "explain");
  return parse_explain(static_cast<int>(args.size()), args.data(), out, error);
}

TEST(ValidateLineTest, TakesOneFile) {
  std::string path, error;
  ASSERT_EQ(validate({"policy.yaml"}, path, error), CommandLine::kRun) << error;
  EXPECT_EQ(path, "policy.yaml");
}

TEST(ValidateLineTest, AnythingElseIsTheUsageLine) {
  for (const auto& args : std::vector<std::vector<const char*>>{
           {}, {"a.yaml", "b.yaml"}, {"--help"}, {"--strict", "a.yaml"}, {"--"}}) {
    std::string path, error;
    EXPECT_EQ(validate(args, path, error), CommandLine::kError);
    EXPECT_EQ(error, "usage: mongoguard validate FILE");
  }
}

TEST(ExplainLineTest, ReadsEveryOptionInBothForms) {
  ExplainArgs a;
  std::string error;
  ASSERT_EQ(explain({"--config", "p.yaml", "--db=app", "--command", R"({"drop": "users"})",
                     "--user", "alice@admin", "--app", "shell", "--client", "10.0.0.1"},
                    a, error),
            CommandLine::kRun)
      << error;
  EXPECT_EQ(a.config_path, "p.yaml");
  EXPECT_EQ(a.db, "app");
  EXPECT_EQ(a.command, R"({"drop": "users"})");
  EXPECT_EQ(a.user, "alice@admin");
  EXPECT_EQ(a.app, "shell");
  EXPECT_EQ(a.client, "10.0.0.1");
}

TEST(ExplainLineTest, ErrorsNameTheProblem) {
  struct Case {
    std::vector<const char*> args;
    const char* error;
  };
  for (const auto& c : std::vector<Case>{
           {{"--config", "p.yaml", "--db", "app", "--bogus", "1"},
            "explain: unknown argument '--bogus'"},
           {{"--config", "p.yaml", "stray"}, "explain: unknown argument 'stray'"},
           {{"--config", "p.yaml", "--db"}, "explain: --db needs a value"},
           {{"--config", "p.yaml", "--db", "app"},
            "usage: mongoguard explain --config FILE --db DB --command '<extended JSON>'"},
           {{}, "usage: mongoguard explain --config FILE --db DB --command '<extended JSON>'"}}) {
    ExplainArgs a;
    std::string error;
    EXPECT_EQ(explain(c.args, a, error), CommandLine::kError);
    EXPECT_EQ(error, c.error);
  }
}

}  // namespace
}  // namespace mongoguard::tools
