// Fleet mode's pure pieces: the fleet section of the configuration and the
// Redis URL, key names, the RESP encoding and decoding hiredis does for us,
// and reading the budget scripts' answers. The scripts themselves run
// against a real redis-server in tests/integration/test_fleet.py.
#include "proxy/fleet/fleet.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "config/config.h"
#include "proxy/fleet/redis.h"

namespace mongoguard {
namespace {

using proxy::RedisReply;

std::string errors_of(const config::LoadResult& r) {
  std::string out;
  for (const auto& e : r.errors) out += e.to_string() + "\n";
  return out;
}

TEST(RedisUrl, ParsesHostPortPasswordAndDatabase) {
  std::string why;
  auto plain = config::parse_redis_url("redis://127.0.0.1:6380", why);
  ASSERT_TRUE(plain) << why;
  EXPECT_EQ(plain->host, "127.0.0.1");
  EXPECT_EQ(plain->port, 6380);
  EXPECT_EQ(plain->password, "");
  EXPECT_EQ(plain->db, 0);

  auto full = config::parse_redis_url("redis://guard:s3cret@redis.internal/4", why);
  ASSERT_TRUE(full) << why;
  EXPECT_EQ(full->host, "redis.internal");
  EXPECT_EQ(full->port, 6379);
  EXPECT_EQ(full->user, "guard");
  EXPECT_EQ(full->password, "s3cret");
  EXPECT_EQ(full->db, 4);

  auto password_only = config::parse_redis_url("redis://:pw@[::1]:7000", why);
  ASSERT_TRUE(password_only) << why;
  EXPECT_EQ(password_only->host, "::1");
  EXPECT_EQ(password_only->port, 7000);
  EXPECT_EQ(password_only->user, "");
  EXPECT_EQ(password_only->password, "pw");
}

TEST(RedisUrl, RefusesWhatItCannotUse) {
  for (const char* bad :
       {"http://127.0.0.1:6379", "redis://", "rediss://", "redis://host:0", "redis://host:99999",
        "redis://host:port", "redis://host/x", "redis://[::1"}) {
    std::string why;
    EXPECT_FALSE(config::parse_redis_url(bad, why)) << bad;
    EXPECT_FALSE(why.empty()) << bad;
  }
  std::string why;
  config::parse_redis_url("http://h", why);
  EXPECT_NE(why.find("must start with redis:// or rediss://"), std::string::npos) << why;
}

TEST(RedisUrl, RedissSpeaksTls) {
  std::string why;
  auto tls = config::parse_redis_url("rediss://mongoguard@redis.internal:6380/1", why);
  ASSERT_TRUE(tls) << why;
  EXPECT_TRUE(tls->tls);
  EXPECT_EQ(tls->host, "redis.internal");
  EXPECT_EQ(tls->port, 6380);
  EXPECT_EQ(tls->db, 1);
  auto plain = config::parse_redis_url("redis://h", why);
  ASSERT_TRUE(plain) << why;
  EXPECT_FALSE(plain->tls);
}

TEST(FleetConfig, TlsAndPasswordFile) {
  // The files must exist to be named: made here.
  const auto dir = std::filesystem::temp_directory_path() / "mg_fleet_tls_config";
  std::filesystem::create_directories(dir);
  for (const char* name : {"redis.password", "redis-ca.pem", "c.pem", "c.key"}) {
    std::ofstream(dir / name) << "x\n";
  }
  const auto d = dir.string();
  auto r = config::parse_config(
      "fleet:\n  redis: \"rediss://mongoguard@10.0.0.5:6380\"\n  name: a\n"
      "  password_file: " +
          d +
          "/redis.password\n"
          "  tls: { ca: " +
          d +
          "/redis-ca.pem, server_name: redis.internal,\n"
          "         cert: " +
          d + "/c.pem, key: " + d + "/c.key }\n",
      "p.yaml");
  ASSERT_TRUE(r.ok()) << errors_of(r);
  const auto& f = *r.config->fleet;
  ASSERT_TRUE(f.tls);
  EXPECT_EQ(f.tls->ca->path, d + "/redis-ca.pem");
  EXPECT_EQ(f.tls->server_name.value_or(""), "redis.internal");
  EXPECT_EQ(f.server.user, "mongoguard");  // the one word is the user, with a password file
  EXPECT_EQ(f.server.password, "");
  ASSERT_TRUE(f.password_file);
  EXPECT_EQ(f.password_file->line, 4);
  const auto files = r.config->secret_files();
  for (const char* name : {"/redis-ca.pem", "/c.pem", "/c.key", "/redis.password"}) {
    EXPECT_NE(std::find(files.begin(), files.end(), d + name), files.end()) << name;
  }

  // rediss:// alone: TLS with the system's roots and the URL's host checked.
  auto bare = config::parse_config("fleet:\n  redis: \"rediss://h\"\n  name: a\n", "p.yaml");
  ASSERT_TRUE(bare.ok()) << errors_of(bare);
  ASSERT_TRUE(bare.config->fleet->tls);
  EXPECT_FALSE(bare.config->fleet->tls->ca);
  // And no TLS settings for plain redis://.
  auto plain = config::parse_config("fleet:\n  redis: \"redis://h\"\n  name: a\n", "p.yaml");
  EXPECT_FALSE(plain.config->fleet->tls);
}

TEST(FleetConfig, TlsAndPasswordMistakes) {
  auto plain = config::parse_config(
      "fleet:\n  redis: \"redis://h\"\n  name: a\n  tls: { server_name: x }\n", "p.yaml");
  EXPECT_NE(errors_of(plain).find("p.yaml:4:8: fleet.tls needs a rediss:// URL"), std::string::npos)
      << errors_of(plain);
  const auto password = std::filesystem::temp_directory_path() / "mg_fleet_password";
  std::ofstream(password) << "x\n";
  auto twice = config::parse_config(
      "fleet:\n  redis: \"rediss://u:pw@h\"\n  name: a\n  password_file: " + password.string() +
          "\n",
      "p.yaml");
  EXPECT_NE(errors_of(twice).find("p.yaml:4:18: fleet.password_file and a password in "
                                  "fleet.redis: give it once"),
            std::string::npos)
      << errors_of(twice);
  auto half = config::parse_config("fleet:\n  redis: \"rediss://h\"\n  name: a\n  tls: { cert: " +
                                       password.string() + ", colour: x }\n",
                                   "p.yaml");
  const auto h = errors_of(half);
  EXPECT_NE(h.find("fleet.tls.cert needs fleet.tls.key as well"), std::string::npos) << h;
  EXPECT_NE(h.find("unknown key 'colour' in fleet.tls"), std::string::npos) << h;
}

TEST(FleetConfig, ReadsTheSection) {
  auto r = config::parse_config(
      "fleet:\n  redis: \"redis://10.0.0.5:6379/2\"\n  name: app-host-3\n  timeout: 250ms\n"
      "  key_prefix: shop\n",
      "p.yaml");
  ASSERT_TRUE(r.ok()) << errors_of(r);
  ASSERT_TRUE(r.config->fleet);
  const auto& f = *r.config->fleet;
  EXPECT_EQ(f.name, "app-host-3");
  EXPECT_EQ(f.server.host, "10.0.0.5");
  EXPECT_EQ(f.server.db, 2);
  EXPECT_EQ(f.timeout.count(), 250);
  EXPECT_EQ(f.key_prefix, "shop");
  EXPECT_FALSE(config::parse_config("rules: []\n", "p.yaml").config->fleet);
}

TEST(FleetConfig, ErrorsPointAtTheLine) {
  auto r = config::parse_config(
      "fleet:\n  redis: \"tcp://x\"\n  name: \"app host\"\n  timeout: soon\n  color: red\n",
      "p.yaml");
  ASSERT_FALSE(r.ok());
  const auto text = errors_of(r);
  EXPECT_NE(text.find("p.yaml:2:10: fleet.redis: the URL must start with redis://"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("p.yaml:3:9: fleet.name must be"), std::string::npos) << text;
  EXPECT_NE(text.find("p.yaml:4:12: bad duration 'soon' for fleet.timeout"), std::string::npos)
      << text;
  EXPECT_NE(text.find("p.yaml:5:3: unknown key 'color' in fleet"), std::string::npos) << text;

  auto missing = config::parse_config("fleet:\n  timeout: 1s\n", "p.yaml");
  const auto m = errors_of(missing);
  EXPECT_NE(m.find("fleet has no redis URL"), std::string::npos) << m;
  EXPECT_NE(m.find("fleet has no name"), std::string::npos) << m;
  auto scalar = config::parse_config("fleet: redis://x\n", "p.yaml");
  EXPECT_NE(errors_of(scalar).find("p.yaml:1:8: fleet must be a mapping"), std::string::npos)
      << errors_of(scalar);
}

TEST(FleetKeys, ArePrefixedAndDistinct) {
  EXPECT_EQ(proxy::fleet::window_key("mg", "r:app.c"), "mg:budget:r:app.c:w");
  EXPECT_EQ(proxy::fleet::state_key("mg", "r:app.c"), "mg:budget:r:app.c:s");
  EXPECT_EQ(proxy::fleet::breakers_key("mg"), "mg:breakers");
  EXPECT_EQ(proxy::fleet::hold_key("mg", 42), "mg:hold:42");
  EXPECT_EQ(proxy::fleet::holds_key("mg"), "mg:holds");
  EXPECT_EQ(proxy::fleet::channel("mg", "host-1"), "mg:proxy:host-1");
}

TEST(FleetHoldIds, StartAtRandomPointsExactInJson) {
  std::set<std::uint64_t> seen;
  for (int i = 0; i < 50; ++i) {
    const auto id = proxy::fleet::random_first_hold_id();
    EXPECT_GT(id, 0u);
    EXPECT_LT(id, std::uint64_t{1} << 53);
    EXPECT_EQ(id % (1u << 20), 0u);
    seen.insert(id);
  }
  EXPECT_GT(seen.size(), 45u);
}

TEST(RedisCodec, FormatsCommandsAsResp) {
  EXPECT_EQ(proxy::format_redis_command({"SET", "k", "a b"}),
            "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\na b\r\n");
  // Binary-safe: the length counts, not a terminator.
  EXPECT_EQ(proxy::format_redis_command({"ECHO", std::string("a\0b", 3)}),
            std::string("*2\r\n$4\r\nECHO\r\n$3\r\na") + '\0' + "b\r\n");
}

TEST(RedisCodec, DecodesRepliesFedInPieces) {
  proxy::RedisDecoder decoder;
  const std::string stream =
      "+OK\r\n:42\r\n$5\r\nhello\r\n$-1\r\n-NOSCRIPT No matching script\r\n"
      "*3\r\n$7\r\nmessage\r\n$4\r\nchan\r\n*1\r\n:7\r\n";
  std::vector<RedisReply> got;
  for (char c : stream) {  // one byte at a time
    decoder.feed(&c, 1);
    std::string error;
    while (auto r = decoder.next(error)) got.push_back(*r);
    ASSERT_TRUE(error.empty()) << error;
  }
  ASSERT_EQ(got.size(), 6u);
  EXPECT_EQ(got[0].type, RedisReply::Type::kStatus);
  EXPECT_EQ(got[0].str, "OK");
  EXPECT_EQ(got[1].as_integer(), 42);
  EXPECT_EQ(got[2].str, "hello");
  EXPECT_FALSE(got[2].as_integer());
  EXPECT_EQ(got[3].type, RedisReply::Type::kNil);
  EXPECT_TRUE(got[4].is_error());
  EXPECT_EQ(got[4].str.rfind("NOSCRIPT", 0), 0u);
  ASSERT_EQ(got[5].elements.size(), 3u);
  EXPECT_EQ(got[5].elements[1].str, "chan");
  EXPECT_EQ(got[5].elements[2].elements[0].integer, 7);
}

TEST(RedisCodec, ReportsAStreamThatIsNotResp) {
  proxy::RedisDecoder decoder;
  decoder.feed("?what\r\n", 7);
  std::string error;
  EXPECT_FALSE(decoder.next(error));
  EXPECT_FALSE(error.empty());
}

RedisReply integer(long long v) {
  RedisReply r;
  r.type = RedisReply::Type::kInteger;
  r.integer = v;
  return r;
}
RedisReply string(std::string s) {
  RedisReply r;
  r.type = RedisReply::Type::kString;
  r.str = std::move(s);
  return r;
}

TEST(FleetScripts, StateIsReadRelativeToTheScriptsClock) {
  // {code, used, limit, per, tripped_at, drains_at, allowance, allowance_until, now, rule, ns,
  // name, auto_resume}, with Redis's clock at 1'000'000 ms.
  RedisReply reply;
  reply.type = RedisReply::Type::kArray;
  for (long long v : {2LL, 12LL, 12LL, 60'000LL, 999'000LL, 1'050'000LL, 3LL, -1LL, 1'000'000LL}) {
    reply.elements.push_back(integer(v));
  }
  reply.elements.push_back(string("budget"));
  reply.elements.push_back(string("app.c"));
  reply.elements.push_back(string("budget:app.c"));
  reply.elements.push_back(integer(1));  // auto_resume
  const auto now = policy::Clock::now();
  auto decoded = proxy::fleet::decode_state(reply, now);
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->code, 2);
  const auto& s = decoded->state;
  EXPECT_EQ(s.name, "budget:app.c");
  EXPECT_EQ(s.rule, "budget");
  EXPECT_EQ(s.ns, "app.c");
  EXPECT_TRUE(s.auto_resume);
  EXPECT_EQ(s.used, 12);
  EXPECT_EQ(s.limit, 12);
  EXPECT_EQ(s.per.count(), 60'000);
  EXPECT_TRUE(s.tripped);
  EXPECT_EQ(*s.tripped_at, now - std::chrono::seconds(1));
  EXPECT_EQ(*s.drains_at, now + std::chrono::seconds(50));
  EXPECT_EQ(s.allowance_documents, 3);
  EXPECT_FALSE(s.allowance_until);

  EXPECT_EQ(proxy::fleet::admission_from_code(0), policy::Admission::kPass);
  EXPECT_EQ(proxy::fleet::admission_from_code(1), policy::Admission::kTripped);
  EXPECT_EQ(proxy::fleet::admission_from_code(2), policy::Admission::kWouldTrip);
  EXPECT_EQ(proxy::fleet::admission_from_code(3), policy::Admission::kTooLarge);
  EXPECT_FALSE(proxy::fleet::admission_from_code(4));

  reply.elements.pop_back();
  EXPECT_FALSE(proxy::fleet::decode_state(reply, now));
  EXPECT_FALSE(proxy::fleet::decode_state(string("ERR"), now));
}

}  // namespace
}  // namespace mongoguard
