#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "policy/identity.h"

namespace mongoguard::policy {
namespace {

struct Doc {
  explicit Doc(const std::string& json) {
    bson_error_t error;
    b = bson_new_from_json(reinterpret_cast<const std::uint8_t*>(json.data()),
                           static_cast<ssize_t>(json.size()), &error);
    if (b == nullptr) throw std::runtime_error(error.message);
  }
  Doc() : b(bson_new()) {}
  ~Doc() { bson_destroy(b); }
  Doc(const Doc&) = delete;
  Doc& operator=(const Doc&) = delete;
  bson_t* b;
};

// {saslStart: 1, mechanism, payload: BinData(payload), $db}.
void sasl_start(Doc& d, const char* mechanism, std::string_view payload, const char* db) {
  BSON_APPEND_INT32(d.b, "saslStart", 1);
  BSON_APPEND_UTF8(d.b, "mechanism", mechanism);
  bson_append_binary(d.b, "payload", -1, BSON_SUBTYPE_BINARY,
                     reinterpret_cast<const std::uint8_t*>(payload.data()),
                     static_cast<std::uint32_t>(payload.size()));
  BSON_APPEND_BOOL(d.b, "autoAuthorize", true);
  BSON_APPEND_UTF8(d.b, "$db", db);
}

TEST(ClientMetadata, FromHello) {
  Doc d(R"({"hello": 1, "client": {"application": {"name": "billing"},
            "driver": {"name": "PyMongo|MongoEngine", "version": "4.6.1"},
            "os": {"type": "Linux"}}, "$db": "admin"})");
  const ClientMetadata m = parse_client_metadata(d.b);
  EXPECT_EQ(m.application_name, "billing");
  EXPECT_EQ(m.driver_name, "PyMongo|MongoEngine");
  EXPECT_EQ(m.driver_version, "4.6.1");
}

TEST(ClientMetadata, MissingFields) {
  Doc d(R"({"isMaster": 1, "client": {"driver": {"name": 5}}})");
  const ClientMetadata m = parse_client_metadata(d.b);
  EXPECT_EQ(m.application_name, "");
  EXPECT_EQ(m.driver_name, "");
  EXPECT_EQ(m.driver_version, "");
  EXPECT_EQ(parse_client_metadata(nullptr).application_name, "");
}

TEST(SaslStart, ScramSha256) {
  Doc d;
  sasl_start(d, "SCRAM-SHA-256", "n,,n=alice,r=rOprNGfwEbeRWgbNEkqO", "admin");
  EXPECT_EQ(sasl_start_user(d.b), "alice");
  const auto start = parse_auth_start(d.b);
  ASSERT_TRUE(start);
  EXPECT_EQ(start->mechanism, "SCRAM-SHA-256");
  EXPECT_EQ(start->database, "admin");
}

TEST(SaslStart, ScramUnescapesAndSkipsAuthzid) {
  Doc d;
  sasl_start(d, "SCRAM-SHA-1", "n,a=other,n=a=2Cb=3Dc,r=nonce", "app");
  EXPECT_EQ(sasl_start_user(d.b), "a,b=c");
  EXPECT_EQ(parse_auth_start(d.b, "given")->database, "given");
}

TEST(SaslStart, ScramMalformed) {
  EXPECT_FALSE(scram_client_first_user("n,,r=nonce"));
  EXPECT_FALSE(scram_client_first_user("n=alice"));
  EXPECT_FALSE(scram_client_first_user("n,,n=bad=escape,r=x"));
  EXPECT_FALSE(scram_client_first_user("n,,n=,r=x"));
  EXPECT_EQ(scram_client_first_user("y,,n=bob"), "bob");
}

TEST(SaslStart, PlainNeverReturnsPassword) {
  using namespace std::string_literals;
  Doc d;
  sasl_start(d, "PLAIN", "\0carol\0hunter2"s, "$external");
  const auto start = parse_auth_start(d.b);
  ASSERT_TRUE(start);
  EXPECT_EQ(start->user, "carol");
  EXPECT_EQ(start->database, "$external");
  EXPECT_EQ(start->user.find("hunter2"), std::string::npos);
  EXPECT_EQ(plain_user("authz\0dave\0pw"s), "dave");
  EXPECT_FALSE(plain_user("\0only-one-field"s));
  EXPECT_FALSE(plain_user("no separators"));
}

TEST(SaslStart, StringPayload) {
  Doc d(
      R"({"saslStart": 1, "mechanism": "SCRAM-SHA-256", "payload": "n,,n=erin,r=x", "$db": "db1"})");
  EXPECT_EQ(sasl_start_user(d.b), "erin");
  EXPECT_EQ(parse_auth_start(d.b)->database, "db1");
}

TEST(SaslStart, OtherMechanismsNameNoUser) {
  Doc d;
  sasl_start(d, "GSSAPI", "opaque", "$external");
  EXPECT_FALSE(sasl_start_user(d.b));
  Doc find(R"({"find": "c"})");
  EXPECT_FALSE(sasl_start_user(find.b));
  EXPECT_FALSE(sasl_start_user(nullptr));
}

TEST(SpeculativeAuthenticate, ScramInHello) {
  Doc d(R"({"hello": 1, "speculativeAuthenticate": {"saslStart": 1, "mechanism": "SCRAM-SHA-256",
            "payload": {"$binary": {"base64": "biwsbj1mcmFuayxyPW5vbmNl", "subType": "00"}},
            "db": "sales"}, "$db": "admin"})");
  // base64 of "n,,n=frank,r=nonce"
  const auto start = parse_auth_start(d.b, "admin");
  ASSERT_TRUE(start);
  EXPECT_EQ(start->user, "frank");
  EXPECT_EQ(start->database, "sales");
  EXPECT_EQ(sasl_start_user(d.b), "frank");
}

TEST(SpeculativeAuthenticate, X509InHelloAndAuthenticate) {
  Doc hello(R"({"isMaster": 1, "speculativeAuthenticate": {"authenticate": 1,
                "mechanism": "MONGODB-X509", "user": "CN=client,O=Org", "db": "$external"}})");
  const auto start = parse_auth_start(hello.b);
  ASSERT_TRUE(start);
  EXPECT_EQ(start->user, "CN=client,O=Org");
  EXPECT_EQ(start->mechanism, "MONGODB-X509");
  EXPECT_EQ(start->database, "$external");

  Doc auth(
      R"({"authenticate": 1, "mechanism": "MONGODB-X509", "user": "CN=x", "$db": "$external"})");
  EXPECT_EQ(sasl_start_user(auth.b), "CN=x");
  Doc anonymous(R"({"authenticate": 1, "mechanism": "MONGODB-X509", "$db": "$external"})");
  EXPECT_FALSE(sasl_start_user(anonymous.b));
}

TEST(SaslReply, DoneAndOk) {
  Doc done(
      R"({"conversationId": 1, "done": true, "payload": {"$binary": {"base64": "", "subType": "00"}}, "ok": 1.0})");
  EXPECT_TRUE(sasl_reply_done_ok(done.b));
  Doc not_done(R"({"conversationId": 1, "done": false, "ok": 1})");
  EXPECT_FALSE(sasl_reply_done_ok(not_done.b));
  Doc failed(R"({"done": true, "ok": 0, "errmsg": "Authentication failed."})");
  EXPECT_FALSE(sasl_reply_done_ok(failed.b));
  Doc no_done(R"({"ok": 1})");
  EXPECT_FALSE(sasl_reply_done_ok(no_done.b));
  Doc hello_reply(R"({"isWritablePrimary": true, "speculativeAuthenticate": {"conversationId": 1,
                      "done": true}, "ok": 1})");
  EXPECT_TRUE(sasl_reply_done_ok(hello_reply.b));
  EXPECT_FALSE(sasl_reply_done_ok(nullptr));
}

TEST(X509Reply, NamesSubject) {
  Doc ok(R"({"dbname": "$external", "user": "CN=client", "ok": 1})");
  EXPECT_EQ(x509_reply_user(ok.b), "CN=client");
  Doc failed(R"({"user": "CN=client", "ok": 0})");
  EXPECT_FALSE(x509_reply_user(failed.b));
}

}  // namespace
}  // namespace mongoguard::policy
