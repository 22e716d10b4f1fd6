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

TEST(ValidateLineTest, AnythingElseNamesTheProblemOnOneLine) {
  struct Case {
    std::vector<const char*> args;
    const char* error;
  };
  for (const auto& c : std::vector<Case>{{{}, "no FILE to check"},
                                         {{"a.yaml", "b.yaml"}, "one FILE only, not also 'b.yaml'"},
                                         {{"--strict", "a.yaml"}, "unknown option '--strict'"},
                                         {{"--"}, "unknown option '--'"}}) {
    std::string path, error;
    EXPECT_EQ(validate(c.args, path, error), CommandLine::kError);
    EXPECT_EQ(error, c.error);
  }
}

TEST(ToolLinesTest, HelpInEitherFormWhateverElseIsGiven) {
  for (const char* flag : {"-h", "--help"}) {
    std::string path, error;
    EXPECT_EQ(validate({flag}, path, error), CommandLine::kHelp);
    EXPECT_EQ(validate({"a.yaml", "b.yaml", flag}, path, error), CommandLine::kHelp);
    ExplainArgs a;
    EXPECT_EQ(explain({"--db", "app", flag}, a, error), CommandLine::kHelp);
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
           {{"--config", "p.yaml", "--db", "app", "--bogus", "1"}, "unknown argument '--bogus'"},
           {{"--config", "p.yaml", "stray"}, "unknown argument 'stray'"},
           {{"--config", "p.yaml", "--db"}, "--db needs a value"},
           {{"--config", "p.yaml", "--db", "app"},
            "needs --config FILE, --db DB and --command JSON"},
           {{}, "needs --config FILE, --db DB and --command JSON"}}) {
    ExplainArgs a;
    std::string error;
    EXPECT_EQ(explain(c.args, a, error), CommandLine::kError);
    EXPECT_EQ(error, c.error);
  }
}

}  // namespace
}  // namespace mongoguard::tools
