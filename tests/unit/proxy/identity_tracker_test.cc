#include "proxy/identity_tracker.h"

#include <gtest/gtest.h>

#include "wire_test_util.h"

namespace mongoguard::proxy {
namespace {

using wire::testing::Buf;
using wire::testing::MsgBuilder;

// Holds a frame and the request decoded over it.
struct Frame {
  explicit Frame(std::string_view body, std::int32_t id = 7)
      : bytes(MsgBuilder().body(body).build(id)) {
    auto decoded = wire::decode_request(bytes, scratch, 48 * 1024 * 1024);
    EXPECT_TRUE(decoded.ok());
    request = decoded.view;
  }
  Buf bytes;
  std::vector<std::uint8_t> scratch;
  wire::Request request;
};

struct Doc {
  explicit Doc(std::string_view json) : bytes(wire::testing::doc(json)) {
    bson_init_static(&b, bytes.data(), bytes.size());
  }
  Buf bytes;
  bson_t b;
};

TEST(IdentityTracker, TheFirstHelloNamesTheApplicationAndDriver) {
  IdentityTracker tracker(1, "10.0.0.1:5000", std::nullopt);
  Frame hello(R"({"hello": 1, "client": {"application": {"name": "billing"},
                  "driver": {"name": "pymongo", "version": "4.6"}}, "$db": "admin"})");
  EXPECT_FALSE(tracker.observe_request(hello.request));
  EXPECT_EQ(tracker.identity().app, "billing");
  EXPECT_EQ(tracker.identity().driver, "pymongo 4.6");
  EXPECT_EQ(tracker.identity().client_address, "10.0.0.1:5000");
  Frame later(R"({"isMaster": 1, "client": {"application": {"name": "other"}}, "$db": "admin"})");
  tracker.observe_request(later.request);
  EXPECT_EQ(tracker.identity().app, "billing");
}

TEST(IdentityTracker, SaslStartThenContinueAdoptsTheUserWhenTheServerSaysDone) {
  IdentityTracker tracker(1, "peer", std::nullopt);
  Frame start(
      R"({"saslStart": 1, "mechanism": "SCRAM-SHA-256", "payload": "n,,n=erin,r=x", "$db": "db1"})");
  auto step = tracker.observe_request(start.request);
  ASSERT_TRUE(step);
  EXPECT_EQ(step->user, "erin@db1");
  EXPECT_FALSE(step->speculative);
  Doc not_done(R"({"conversationId": 1, "done": false, "ok": 1})");
  tracker.observe_reply(*step, &not_done.b, true);
  EXPECT_EQ(tracker.identity().user, "");

  Frame next(R"({"saslContinue": 1, "conversationId": 1, "payload": "x", "$db": "db1"})");
  auto more = tracker.observe_request(next.request);
  ASSERT_TRUE(more);
  EXPECT_EQ(more->user, "erin@db1");
  Doc failed(R"({"done": true, "ok": 0, "errmsg": "Authentication failed."})");
  tracker.observe_reply(*more, &failed.b, false);
  EXPECT_EQ(tracker.identity().user, "");
  Doc done(R"({"conversationId": 1, "done": true, "ok": 1})");
  tracker.observe_reply(*more, &done.b, true);
  EXPECT_EQ(tracker.identity().user, "erin@db1");
  // The conversation is over: a stray saslContinue names nobody.
  EXPECT_FALSE(tracker.observe_request(next.request));
}

TEST(IdentityTracker, SpeculativeAuthenticationCountsOnlyWhenTheServerAnswersIt) {
  const std::string hello_body =
      R"({"hello": 1, "speculativeAuthenticate": {"saslStart": 1, "mechanism": "SCRAM-SHA-256",
          "payload": {"$binary": {"base64": "biwsbj1mcmFuayxyPW5vbmNl", "subType": "00"}},
          "db": "sales"}, "$db": "admin"})";
  IdentityTracker ignored(1, "peer", std::nullopt);
  Frame hello(hello_body);
  auto step = ignored.observe_request(hello.request);
  ASSERT_TRUE(step);
  EXPECT_TRUE(step->speculative);
  EXPECT_EQ(step->user, "frank@sales");
  Doc plain_reply(R"({"isWritablePrimary": true, "ok": 1})");
  ignored.observe_reply(*step, &plain_reply.b, true);
  Frame next(R"({"saslContinue": 1, "conversationId": 1, "payload": "x", "$db": "sales"})");
  EXPECT_FALSE(ignored.observe_request(next.request));  // the server ignored it

  IdentityTracker answered(2, "peer", std::nullopt);
  Frame again(hello_body);
  step = answered.observe_request(again.request);
  ASSERT_TRUE(step);
  Doc reply(R"({"isWritablePrimary": true, "speculativeAuthenticate": {"conversationId": 1,
                "done": false}, "ok": 1})");
  answered.observe_reply(*step, &reply.b, true);
  EXPECT_EQ(answered.identity().user, "");
  auto more = answered.observe_request(next.request);
  ASSERT_TRUE(more);
  EXPECT_EQ(more->user, "frank@sales");
}

TEST(IdentityTracker, OtherCommandsAreIgnored) {
  IdentityTracker tracker(1, "peer", std::nullopt);
  Frame find(R"({"find": "c", "$db": "app"})");
  EXPECT_FALSE(tracker.observe_request(find.request));
  EXPECT_EQ(tracker.identity().app, "");
  EXPECT_TRUE(is_hello("ismaster"));
  EXPECT_FALSE(is_hello("find"));
}

}  // namespace
}  // namespace mongoguard::proxy
