// The set-up every command line shares (args.h), seen through the serve line.
#include "proxy/cli/args.h"

#include <gtest/gtest.h>

#include <vector>

#include "proxy/cli/options.h"

namespace mongoguard::proxy {
namespace {

CommandLine serve(std::vector<const char*> args, Options& options, std::string& error) {
  args.insert(args.begin(), "mongoguard");
  return parse_command_line(static_cast<int>(args.size()), args.data(), options, error);
}

TEST(ServeLineTest, EveryOption) {
  Options o;
  std::string error;
  ASSERT_EQ(serve({"--config", "c.yaml", "--admin-listen=127.0.0.1:9901", "--admin-token-file", "t",
                   "--log-level", "debug", "--upstream", "mongodb://h:1"},
                  o, error),
            CommandLine::kRun)
      << error;
  EXPECT_EQ(*o.config_path, "c.yaml");
  EXPECT_EQ(*o.admin_listen, "127.0.0.1:9901");
  EXPECT_EQ(*o.admin_token_file, "t");
  EXPECT_EQ(*o.log_level, "debug");
  EXPECT_FALSE(o.listen);
  EXPECT_FALSE(o.threads);
}

TEST(ServeLineTest, TheLastOfARepeatedOptionWins) {
  Options o;
  std::string error;
  ASSERT_EQ(serve({"--listen", "a:1", "--listen=b:2"}, o, error), CommandLine::kRun) << error;
  EXPECT_EQ(*o.listen, "b:2");
}

TEST(ServeLineTest, HelpAndVersionWinTheFirstGiven) {
  Options o;
  std::string error;
  EXPECT_EQ(serve({"-h"}, o, error), CommandLine::kHelp);
  EXPECT_EQ(serve({"--version", "--help"}, o, error), CommandLine::kVersion);
  EXPECT_EQ(serve({"--help", "--listen"}, o, error), CommandLine::kHelp);
}

TEST(ServeLineTest, ErrorsInTheirOwnWords) {
  struct Case {
    std::vector<const char*> args;
    const char* error;
  };
  for (const auto& c : std::vector<Case>{
           {{"--bogus=1"}, "unknown option '--bogus'"},
           {{"-x"}, "unexpected argument '-x'"},
           {{"--upstream"}, "option --upstream needs a value"},
           {{"--listen", ""}, "option --listen needs a non-empty value"},
           {{"--threads", "1025"}, "--threads needs a whole number between 1 and 1024, got '1025'"},
           {{"--log-level", "loud"},
            "--log-level must be one of trace, debug, info, warn, error, off; got 'loud'"}}) {
    Options o;
    std::string error;
    EXPECT_EQ(serve(c.args, o, error), CommandLine::kError) << c.error;
    EXPECT_EQ(error, c.error);
  }
}

}  // namespace
}  // namespace mongoguard::proxy

namespace mongoguard::tools {
namespace {

TEST(ArgsTest, FirstUnrecognisedInOrder) {
  CLI::App app;
  configure(app);
  std::string known;
  app.add_option("--known", known);
  std::vector<const char*> argv{"t", "word", "--known", "k", "--other=1"};
  EXPECT_FALSE(parse(app, static_cast<int>(argv.size()), argv.data()));
  EXPECT_EQ(known, "k");
  EXPECT_EQ(*first_unrecognised(app), "word");
  EXPECT_EQ(*first_unrecognised(app, true), "--other");
}

TEST(ArgsTest, AMissingValueNamesItsOption) {
  CLI::App app;
  configure(app);
  std::string known;
  app.add_option("--known", known);
  std::vector<const char*> argv{"t", "--known"};
  const auto failure = parse(app, static_cast<int>(argv.size()), argv.data());
  ASSERT_TRUE(failure);
  EXPECT_EQ(failure->option, "--known");
}

}  // namespace
}  // namespace mongoguard::tools
