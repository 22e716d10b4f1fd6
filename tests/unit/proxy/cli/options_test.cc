#include <gtest/gtest.h>

#include "config/config.h"
#include "proxy/cli/options.h"
#include "proxy/net/endpoint.h"

namespace mongoguard::proxy {
namespace {

CommandLine parse(std::vector<const char*> args, Options& options, std::string& error) {
  args.insert(args.begin(), "mongoguard");
  return parse_command_line(static_cast<int>(args.size()), args.data(), options, error);
}

TEST(CommandLineTest, AcceptsSpaceAndEqualsForms) {
  Options o;
  std::string error;
  ASSERT_EQ(
      parse({"--listen", "0.0.0.0:1", "--upstream=mongodb://h:2", "--threads", "3"}, o, error),
      CommandLine::kRun)
      << error;
  EXPECT_EQ(*o.listen, "0.0.0.0:1");
  EXPECT_EQ(*o.upstream, "mongodb://h:2");
  EXPECT_EQ(*o.threads, 3u);
}

TEST(CommandLineTest, HelpAndVersion) {
  Options o;
  std::string error;
  EXPECT_EQ(parse({"--help"}, o, error), CommandLine::kHelp);
  EXPECT_EQ(parse({"--version"}, o, error), CommandLine::kVersion);
}

TEST(CommandLineTest, RejectsBadInputWithOneLine) {
  struct Case {
    std::vector<const char*> args;
    const char* needle;
  };
  for (const auto& c : std::vector<Case>{{{"--bogus"}, "unknown option '--bogus'"},
                                         {{"--threads", "0"}, "--threads"},
                                         {{"--threads", "two"}, "--threads"},
                                         {{"--listen"}, "needs a value"},
                                         {{"stray"}, "unexpected argument"},
                                         {{"--log-level", "loud"}, "--log-level"}}) {
    Options o;
    std::string error;
    EXPECT_EQ(parse(c.args, o, error), CommandLine::kError);
    EXPECT_NE(error.find(c.needle), std::string::npos) << error;
    EXPECT_EQ(error.find('\n'), std::string::npos);
  }
}

TEST(EndpointTest, ParsesHostPortForms) {
  std::string error;
  auto a = parse_host_port("127.0.0.1:27018", error);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 27018);
  auto b = parse_host_port("[::1]:9", error);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->host, "::1");
  EXPECT_EQ(b->to_string(), "[::1]:9");
  auto c = parse_host_port("db.internal", error);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->port, 27017);
  EXPECT_FALSE(parse_host_port("h:99999", error));
  EXPECT_FALSE(parse_host_port("h:", error));
  EXPECT_FALSE(parse_host_port("::1:5", error));
  EXPECT_FALSE(parse_host_port("", error));
}

TEST(EndpointTest, ParsesUpstreamUris) {
  std::string error;
  auto a = parse_upstream_uri("mongodb://127.0.0.1:27018/?directConnection=true", error);
  ASSERT_TRUE(a) << error;
  EXPECT_EQ(a->port, 27018);
  auto b = parse_upstream_uri("mongodb://db1/app", error);
  ASSERT_TRUE(b) << error;
  EXPECT_EQ(b->host, "db1");
  EXPECT_EQ(b->port, 27017);
  EXPECT_FALSE(parse_upstream_uri("mongodb://u:p@h:1", error));
  EXPECT_NE(error.find("credentials"), std::string::npos);
  EXPECT_FALSE(parse_upstream_uri("mongodb://a:1,b:2", error));
  EXPECT_FALSE(parse_upstream_uri("mongodb+srv://x", error));
  EXPECT_FALSE(parse_upstream_uri("http://x:1", error));
}

}  // namespace
}  // namespace mongoguard::proxy

namespace mongoguard::config {
namespace {

TEST(ConfigFileTest, ReadsKnownKeys) {
  auto r = parse_config(
      "listen: 0.0.0.0:27017\nupstream: mongodb://db:27017\nthreads: 4\n"
      "admin:\n  listen: 127.0.0.1:9901\n",
      "t.yaml");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r.config->listen, "0.0.0.0:27017");
  EXPECT_EQ(*r.config->threads, 4u);
  EXPECT_EQ(*r.config->admin_listen, "127.0.0.1:9901");
}

TEST(ConfigFileTest, ReportsFileLineColumn) {
  auto r = parse_config("listen: a:1\nbogus: 1\nthreads: -2\n", "t.yaml");
  ASSERT_FALSE(r.ok());
  ASSERT_EQ(r.errors.size(), 2u);
  EXPECT_EQ(r.errors[0].to_string().rfind("t.yaml:2:1: unknown key 'bogus'", 0), 0u)
      << r.errors[0].to_string();
  EXPECT_EQ(r.errors[1].line, 3);
}

TEST(ConfigFileTest, UnreadableFileIsOneError) {
  auto r = load_config_file("/nonexistent/mongoguard.yaml");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_NE(r.errors[0].message.find("cannot read"), std::string::npos);
}

TEST(ConfigFileTest, SyntaxErrorHasPosition) {
  auto r = parse_config("listen: [unclosed\n", "t.yaml");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_GT(r.errors[0].line, 0);
}

}  // namespace
}  // namespace mongoguard::config
