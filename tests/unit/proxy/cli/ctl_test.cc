#include "proxy/cli/ctl.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <optional>
#include <vector>

namespace mongoguard::tools {
namespace {

using proxy::CommandLine;

// Sets (or, with nullptr, unsets) an environment variable for one test.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    value ? ::setenv(name, value, 1) : ::unsetenv(name);
  }
  ~ScopedEnv() { old_ ? ::setenv(name_, old_->c_str(), 1) : ::unsetenv(name_); }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

struct CtlEnv {
  ScopedEnv token{"MONGOGUARD_ADMIN_TOKEN_FILE", nullptr};
  ScopedEnv ca{"MONGOGUARD_ADMIN_CA_FILE", nullptr};
  ScopedEnv user{"USER", "tess"};
};

CommandLine ctl(std::vector<const char*> args, CtlArgs& out, std::string& error) {
  args.insert(args.begin(), "ctl");
  return parse_ctl(static_cast<int>(args.size()), args.data(), out, error);
}

TEST(CtlLineTest, DefaultsComeFromTheEnvironment) {
  CtlEnv env;
  CtlArgs a;
  std::string error;
  ASSERT_EQ(ctl({"holds"}, a, error), CommandLine::kRun) << error;
  EXPECT_EQ(a.command, "holds");
  EXPECT_EQ(a.admin, "http://127.0.0.1:9901");
  EXPECT_EQ(a.token_file, "/etc/mongoguard/admin.token");
  EXPECT_EQ(a.as, "tess");
  EXPECT_FALSE(a.json);

  ScopedEnv token("MONGOGUARD_ADMIN_TOKEN_FILE", "/run/secrets/t");
  ScopedEnv ca("MONGOGUARD_ADMIN_CA_FILE", "/etc/ca.pem");
  CtlArgs b;
  ASSERT_EQ(ctl({"holds"}, b, error), CommandLine::kRun) << error;
  EXPECT_EQ(b.token_file, "/run/secrets/t");
  EXPECT_EQ(b.ca_file, "/etc/ca.pem");
  CtlArgs c;  // a flag beats the environment
  ASSERT_EQ(ctl({"--token-file", "mine", "holds"}, c, error), CommandLine::kRun) << error;
  EXPECT_EQ(c.token_file, "mine");
}

TEST(CtlLineTest, OptionsGoBeforeOrAfterTheCommand) {
  CtlEnv env;
  CtlArgs a;
  std::string error;
  ASSERT_EQ(ctl({"--admin=https://mg:9901", "approve", "7", "--as", "alice", "--json"}, a, error),
            CommandLine::kRun)
      << error;
  EXPECT_EQ(a.admin, "https://mg:9901");
  EXPECT_EQ(a.command, "approve");
  EXPECT_EQ(a.name, "7");
  EXPECT_EQ(a.as, "alice");
  EXPECT_TRUE(a.json);
  CtlArgs g;
  ASSERT_EQ(ctl({"grant", "b:app.x", "--documents", "5", "--minutes=2.5"}, g, error),
            CommandLine::kRun)
      << error;
  EXPECT_EQ(*g.documents, "5");
  EXPECT_EQ(*g.minutes, "2.5");
  CtlArgs d;
  ASSERT_EQ(ctl({"decisions", "--limit", "3"}, d, error), CommandLine::kRun) << error;
  EXPECT_EQ(*d.limit, "3");
}

TEST(CtlLineTest, HelpAnywhere) {
  CtlEnv env;
  for (const auto& args : std::vector<std::vector<const char*>>{
           {"--help"}, {"-h"}, {"holds", "--help"}, {"frobnicate", "--help"}}) {
    CtlArgs a;
    std::string error;
    EXPECT_EQ(ctl(args, a, error), CommandLine::kHelp);
  }
}

TEST(CtlLineTest, ErrorsNameTheProblem) {
  CtlEnv env;
  struct Case {
    std::vector<const char*> args;
    const char* error;
  };
  for (const auto& c :
       std::vector<Case>{{{}, "no command given"},
                         {{"frobnicate"}, "unknown command frobnicate"},
                         {{"--bogus", "holds"}, "unknown option --bogus"},
                         {{"holds", "--bogus=1"}, "unknown option --bogus"},
                         {{"approve"}, "approve needs exactly one argument"},
                         {{"reject", "1", "2"}, "reject needs exactly one argument"},
                         {{"holds", "extra"}, "holds takes no argument"},
                         {{"holds", "breakers"}, "holds takes no argument"},
                         {{"reset", "x", "--documents", "1"}, "--documents goes with grant"},
                         {{"holds", "--limit", "1"}, "--limit goes with decisions"},
                         {{"--admin"}, "--admin needs a value"},
                         {{"grant", "x", "--documents"}, "--documents needs a value"}}) {
    CtlArgs a;
    std::string error;
    EXPECT_EQ(ctl(c.args, a, error), CommandLine::kError) << c.error;
    EXPECT_EQ(error, c.error);
  }
}

CtlArgs parsed(std::vector<const char*> args) {
  CtlArgs a;
  std::string error;
  EXPECT_EQ(ctl(std::move(args), a, error), CommandLine::kRun) << error;
  return a;
}

TEST(CtlRequestTest, EachCommandsCall) {
  CtlEnv env;
  struct Case {
    std::vector<const char*> args;
    bool post;
    const char* path;
    const char* body;
  };
  for (const auto& c : std::vector<Case>{
           {{"holds"}, false, "/api/holds", ""},
           {{"breakers"}, false, "/api/breakers", ""},
           {{"decisions"}, false, "/api/decisions", ""},
           {{"decisions", "--limit", "20"}, false, "/api/decisions?limit=20", ""},
           {{"reload"}, true, "/api/reload", R"({"by":"tess"})"},
           {{"approve", "7"}, true, "/api/holds/7/approve", R"({"by":"tess"})"},
           {{"reject", "7", "--as", "al"}, true, "/api/holds/7/reject", R"({"by":"al"})"},
           {{"reset", "b:app.x"}, true, "/api/breakers/b%3Aapp.x/reset", R"({"by":"tess"})"},
           {{"approve-all", "b"}, true, "/api/breakers/b/approve-all", R"({"by":"tess"})"},
           {{"grant", "b", "--documents", "5", "--minutes", "1.5"},
            true,
            "/api/breakers/b/grant",
            R"({"by":"tess","documents":5,"minutes":1.5})"}}) {
    std::string error;
    const auto request = build_request(parsed(c.args), error);
    ASSERT_TRUE(request) << error;
    EXPECT_EQ(request->post, c.post) << c.path;
    EXPECT_EQ(request->path, c.path);
    EXPECT_EQ(request->body, c.body) << c.path;
  }
}

TEST(CtlRequestTest, RefusesBadValues) {
  CtlEnv env;
  struct Case {
    std::vector<const char*> args;
    const char* error;
  };
  for (const auto& c :
       std::vector<Case>{{{"grant", "b"}, "grant needs --documents N and/or --minutes T"},
                         {{"grant", "b", "--documents", "-3"},
                          "--documents needs a positive integer, --minutes a positive number"},
                         {{"grant", "b", "--minutes", "soon"},
                          "--documents needs a positive integer, --minutes a positive number"},
                         {{"decisions", "--limit", "x"}, "--limit needs a positive integer"},
                         {{"decisions", "--limit", "0"}, "--limit needs a positive integer"}}) {
    std::string error;
    EXPECT_FALSE(build_request(parsed(c.args), error));
    EXPECT_EQ(error, c.error);
  }
  ScopedEnv nobody("USER", nullptr);
  std::string error;
  EXPECT_FALSE(build_request(parsed({"approve", "1"}), error));
  EXPECT_EQ(error, "say who you are with --as NAME ($USER is unset)");
  EXPECT_TRUE(build_request(parsed({"holds"}), error)) << "reading needs no name";
}

TEST(CtlBreakerNames, PrefixesAndTheClosestNames) {
  const std::vector<std::string> names{"families-delete-budget:app.families",
                                       "families-delete-budget:app.kids", "drops:app.*"};
  std::string name = "drops";
  EXPECT_EQ(match_breaker(names, name), "");
  EXPECT_EQ(name, "drops:app.*") << "a unique prefix names the breaker";
  name = "families-delete-budget:app.kids";
  EXPECT_EQ(match_breaker(names, name), "") << "an exact name is itself";
  name = "families";
  EXPECT_EQ(match_breaker(names, name),
            "families matches several breakers: families-delete-budget:app.families, "
            "families-delete-budget:app.kids");
  name = "famlies-delete-budget:app.kids";
  EXPECT_EQ(match_breaker(names, name),
            "no breaker named famlies-delete-budget:app.kids; closest: "
            "families-delete-budget:app.kids, families-delete-budget:app.families, drops:app.*");
  name = "x";
  EXPECT_EQ(match_breaker({}, name), "no breaker named x (no breakers yet)");
  name = "\x1b[2J";
  EXPECT_EQ(match_breaker({}, name), "no breaker named \\x1b[2J (no breakers yet)")
      << "what the operator typed is printed safely";
}

TEST(CtlRequestTest, ReasonAndResume) {
  CtlEnv env;
  std::string error;
  auto request = build_request(parsed({"resume", "b", "--reason", "fixed"}), error);
  ASSERT_TRUE(request) << error;
  EXPECT_EQ(request->path, "/api/breakers/b/resume");
  EXPECT_EQ(request->body, R"({"by":"tess","reason":"fixed"})");
  request = build_request(parsed({"holds", "--reason", "x"}), error);
  ASSERT_TRUE(request);
  EXPECT_FALSE(request->post) << "a reason is only sent with a decision";
}

}  // namespace
}  // namespace mongoguard::tools
