// The one URL reader: its parts for each scheme mongoguard takes, and the
// structural errors it alone reports.
#include "config/url.h"

#include <gtest/gtest.h>

#include "config/config.h"

namespace mongoguard::config {
namespace {

Url parsed(std::string_view text, UrlSyntax syntax = {}) {
  std::string error;
  auto url = parse_url(text, error, syntax);
  EXPECT_TRUE(url) << text << ": " << error;
  return url.value_or(Url{});
}

TEST(ParseUrl, SplitsEveryPart) {
  const Url u = parsed("http://user:pw@hooks.example:8080/services/T0?x=1&y=2#top");
  EXPECT_EQ(u.scheme, "http");
  EXPECT_EQ(u.userinfo, "user:pw");
  EXPECT_EQ(u.user(), "user");
  EXPECT_EQ(u.password(), "pw");
  EXPECT_EQ(u.hostport, "hooks.example:8080");
  EXPECT_EQ(u.host, "hooks.example");
  EXPECT_FALSE(u.bracketed);
  EXPECT_EQ(u.port, "8080");
  EXPECT_EQ(u.path, "/services/T0");
  EXPECT_EQ(u.query, "x=1&y=2");
  EXPECT_EQ(u.fragment, "top");
}

TEST(ParseUrl, AbsentPartsStayAbsent) {
  const Url u = parsed("mongodb://db1");
  EXPECT_EQ(u.scheme, "mongodb");
  EXPECT_FALSE(u.userinfo);
  EXPECT_EQ(u.host, "db1");
  EXPECT_FALSE(u.port);
  EXPECT_EQ(u.path, "");
  EXPECT_FALSE(u.query);
  EXPECT_FALSE(u.fragment);
  EXPECT_EQ(parsed("h:").port, "");  // written but empty: the reader decides
}

TEST(ParseUrl, BracketedIpv6AndBareAuthorities) {
  const Url v6 = parsed("redis://[::1]:7000/4");
  EXPECT_EQ(v6.host, "::1");
  EXPECT_TRUE(v6.bracketed);
  EXPECT_EQ(v6.port, "7000");
  EXPECT_EQ(v6.path, "/4");

  const Url bare = parsed("db1:27018/app?directConnection=true");
  EXPECT_EQ(bare.scheme, "");
  EXPECT_EQ(bare.host, "db1");
  EXPECT_EQ(bare.port, "27018");
  EXPECT_EQ(bare.query, "directConnection=true");

  // Unbracketed colons: split at the last one, left to the reader to refuse.
  const Url colons = parsed("http://::1:80/");
  EXPECT_EQ(colons.host, "::1");
  EXPECT_EQ(colons.port, "80");
}

TEST(ParseUrl, FragmentBeforeQueryAndQueryBeforePath) {
  const Url f = parsed("http://h/a#b?c");
  EXPECT_EQ(f.path, "/a");
  EXPECT_FALSE(f.query);
  EXPECT_EQ(f.fragment, "b?c");
  const Url q = parsed("http://h?only=query");
  EXPECT_EQ(q.path, "");
  EXPECT_EQ(q.query, "only=query");
}

TEST(ParseUrl, UserinfoEndsAtTheAuthorityUnlessAskedOtherwise) {
  const Url path_at = parsed("http://h/notify?to=a@b.c");
  EXPECT_FALSE(path_at.userinfo);
  EXPECT_EQ(path_at.host, "h");
  EXPECT_EQ(path_at.query, "to=a@b.c");

  const Url secret = parsed("redis://:pa/ss?#@redis.internal:6380", {.userinfo_to_last_at = true});
  EXPECT_EQ(secret.user(), "");
  EXPECT_EQ(secret.password(), "pa/ss?#");
  EXPECT_EQ(secret.host, "redis.internal");
  EXPECT_EQ(secret.port, "6380");
  EXPECT_EQ(parsed("redis://secret@h").password(), "secret");
}

TEST(ParseUrl, RefusesBrokenBrackets) {
  std::string error;
  EXPECT_FALSE(parse_url("http://[::1/x", error));
  EXPECT_EQ(error, "unterminated '[' in address '[::1'");
  EXPECT_FALSE(parse_url("mongodb://[::1]x", error));
  EXPECT_EQ(error, "expected ':' after ']' in address '[::1]x'");
}

TEST(UrlScheme, IsWhatComesBeforeTheFirstSeparator) {
  EXPECT_EQ(url_scheme("http://h"), "http");
  EXPECT_EQ(url_scheme("mongodb+srv://x"), "mongodb+srv");
  EXPECT_EQ(url_scheme("h:80/x"), "");
  EXPECT_EQ(url_scheme("://h"), "");
}

TEST(ParsePort, DigitsInRange) {
  EXPECT_EQ(parse_port("8080"), 8080);
  EXPECT_EQ(parse_port("0080"), 80);
  EXPECT_FALSE(parse_port("0"));
  EXPECT_EQ(parse_port("0", 0), 0);
  EXPECT_FALSE(parse_port("65536"));
  EXPECT_FALSE(parse_port(""));
  EXPECT_FALSE(parse_port("8x"));
  EXPECT_FALSE(parse_port("+80"));
  EXPECT_FALSE(parse_port("000080"));
  EXPECT_EQ(parse_port("000080", 1, 6), 80);
}

TEST(RedisUrlOverParseUrl, PasswordsMayHoldDelimiters) {
  std::string why;
  auto url = parse_redis_url("redis://guard:pa/ss?#@redis.internal:6380/2", why);
  ASSERT_TRUE(url) << why;
  EXPECT_EQ(url->user, "guard");
  EXPECT_EQ(url->password, "pa/ss?#");
  EXPECT_EQ(url->host, "redis.internal");
  EXPECT_EQ(url->port, 6380);
  EXPECT_EQ(url->db, 2);
}

TEST(RedisUrlOverParseUrl, RefusesWithItsOwnWords) {
  std::string why;
  EXPECT_FALSE(parse_redis_url("redis://host:a:b", why));
  EXPECT_EQ(why, "bad port 'a:b'");
  EXPECT_FALSE(parse_redis_url("redis://:6379", why));
  EXPECT_EQ(why, "the URL has no host");
  EXPECT_FALSE(parse_redis_url("redis://h/1234567", why));
  EXPECT_EQ(why, "bad database number '1234567' (redis://host:port/N)");
  EXPECT_FALSE(parse_redis_url("redis://h:1?x", why));
  EXPECT_FALSE(parse_redis_url("REDIS://h", why));
  EXPECT_EQ(why, "the URL must start with redis:// or rediss:// (got 'REDIS://h')");
}

TEST(RedactedUrl, HidesPasswordsAndOptionallyPaths) {
  EXPECT_EQ(redacted_url("redis://mg:Sup3r/s3cret@10.0.0.5:6379/0"),
            "redis://mg:***@10.0.0.5:6379/0");
  EXPECT_EQ(redacted_url("redis://s3cret@h:6379"), "redis://***@h:6379");
  EXPECT_EQ(redacted_url("redis://h:6379"), "redis://h:6379");
  EXPECT_EQ(redacted_url("https://hooks.example/services/T0/B0/XyZ", true),
            "https://hooks.example/***");
  EXPECT_EQ(redacted_url("not a url"), "not a url");
}

}  // namespace
}  // namespace mongoguard::config
