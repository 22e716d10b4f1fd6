#include "proxy/reply_tracker.h"

#include <gtest/gtest.h>

#include "wire_test_util.h"

namespace mongoguard::proxy {
namespace {

using wire::testing::Buf;
using wire::testing::MsgBuilder;

// A decoded request over `frame` (kept alive by the caller).
wire::Request request_of(const Buf& frame) {
  static std::vector<std::uint8_t> scratch;
  auto decoded = wire::decode_request(frame, scratch, 48 * 1024 * 1024);
  EXPECT_TRUE(decoded.ok());
  return decoded.view;
}

// An OP_MSG reply with id `id` answering `response_to`.
Buf reply(std::int32_t id, std::int32_t response_to, std::uint32_t flags = 0) {
  Buf payload;
  wire::testing::put_u32(payload, flags);
  wire::testing::put_u8(payload, 0);
  wire::testing::put(payload, wire::testing::doc(R"({"ok": 1, "n": 3})"));
  return wire::testing::frame(wire::OpCode::kMsg, payload, id, response_to);
}

struct Fixture : ::testing::Test {
  asio::io_context io;
  Metrics metrics;
  AuditLog audit;
  Event idle{io};
  ReplyTracker tracker{1, 48 * 1024 * 1024, metrics, audit, idle};
};

using ReplyTrackerTest = Fixture;

TEST_F(ReplyTrackerTest, RepliesAnswerRequestsInOrderAndCarryWhatTheyWaitFor) {
  const auto first = MsgBuilder().body(R"({"find": "a", "$db": "app"})").build(10);
  const auto second = MsgBuilder().body(R"({"delete": "a", "$db": "app"})").build(11);
  tracker.track(request_of(first), nullptr);
  auto pending = std::make_unique<PendingReply>();
  pending->ns = "app.a";
  tracker.track(request_of(second), std::move(pending));
  EXPECT_EQ(tracker.outstanding(), 2u);
  EXPECT_TRUE(tracker.in_flight(10));
  EXPECT_TRUE(tracker.in_flight(11));

  auto one = tracker.match_reply(reply(100, 10));
  ASSERT_TRUE(one);
  EXPECT_EQ(one->id, 10);
  EXPECT_FALSE(one->pending);
  auto two = tracker.match_reply(reply(101, 11));
  ASSERT_TRUE(two);
  ASSERT_TRUE(two->pending);
  EXPECT_EQ(two->pending->ns, "app.a");
  EXPECT_TRUE(tracker.idle());
  EXPECT_FALSE(tracker.in_flight(10));
}

TEST_F(ReplyTrackerTest, AReplyToALaterRequestAbandonsTheEarlierOnes) {
  tracker.track(request_of(MsgBuilder().body(R"({"ping": 1, "$db": "a"})").build(1)), nullptr);
  tracker.track(request_of(MsgBuilder().body(R"({"ping": 1, "$db": "a"})").build(2)), nullptr);
  auto got = tracker.match_reply(reply(50, 2));
  ASSERT_TRUE(got);
  EXPECT_EQ(got->id, 2);
  EXPECT_FALSE(tracker.in_flight(1));
  EXPECT_TRUE(tracker.idle());
  EXPECT_FALSE(tracker.match_reply(reply(51, 1)));  // too late: answers nothing
  EXPECT_EQ(metrics.unmatched_replies.load(), 1u);
}

TEST_F(ReplyTrackerTest, AnAbandonedWriteIsAuditedWithOneOutcome) {
  DecisionLog decisions;
  audit.set_decisions(&decisions);
  const auto first = MsgBuilder()
                         .body(R"({"delete": "a", "deletes": [{"q": {"_id": 1}, "limit": 1}],
                                   "$db": "app"})")
                         .build(1);
  auto info = policy::classify(request_of(first));
  ASSERT_TRUE(info);
  policy::Identity who;
  auto pending = std::make_unique<PendingReply>();
  pending->audit.emplace(1, who, *info, policy::Verdict{}, true);
  pending->audit->set_outcome("forwarded");
  tracker.track(request_of(first), std::move(pending));
  tracker.track(request_of(MsgBuilder().body(R"({"ping": 1, "$db": "a"})").build(2)), nullptr);

  ASSERT_TRUE(tracker.match_reply(reply(50, 2)));  // the delete will not be answered
  const auto written = decisions.recent(10);
  ASSERT_EQ(written.size(), 1u);
  EXPECT_TRUE(written[0].ends_with(R"x("outcome" : "forwarded; no reply (reservation stands)" })x"))
      << written[0];
  EXPECT_EQ(written[0].find(R"("outcome" : "forwarded",)"), std::string::npos) << written[0];
}

TEST_F(ReplyTrackerTest, AnExhaustStreamAnswersOneRequestManyTimes) {
  const auto frame = MsgBuilder(wire::kExhaustAllowed)
                         .body(R"({"getMore": 1, "collection": "a", "$db": "app"})")
                         .build(5);
  tracker.track(request_of(frame), nullptr);
  auto part = tracker.match_reply(reply(200, 5, wire::kMoreToCome));
  ASSERT_TRUE(part);
  EXPECT_EQ(part->id, 5);
  EXPECT_TRUE(tracker.idle());  // counted as answered at its first reply
  EXPECT_TRUE(tracker.in_flight(5));
  part = tracker.match_reply(reply(201, 200, wire::kMoreToCome));  // answers the previous reply
  ASSERT_TRUE(part);
  auto last = tracker.match_reply(reply(202, 201));
  ASSERT_TRUE(last);
  EXPECT_EQ(last->id, 5);
  EXPECT_FALSE(tracker.in_flight(5));
}

TEST_F(ReplyTrackerTest, MoreToComeRequestsExpectNoReplyAndAreBounded) {
  for (int i = 0; i < static_cast<int>(ReplyTracker::kMaxUnanswered) + 1; ++i) {
    const auto frame =
        MsgBuilder(wire::kMoreToCome).body(R"({"insert": "a", "$db": "app"})").build(1000 + i);
    tracker.track(request_of(frame), nullptr);
  }
  EXPECT_TRUE(tracker.idle());
  EXPECT_TRUE(tracker.lost_track());
  EXPECT_FALSE(tracker.in_flight(1000));  // the oldest was forgotten
  EXPECT_TRUE(tracker.in_flight(1001));
  // A server that answers them anyway (FerretDB): relayed, settles nothing.
  auto got = tracker.match_reply(reply(9, 1001));
  ASSERT_TRUE(got);
  EXPECT_FALSE(got->expects_reply);
}

TEST_F(ReplyTrackerTest, OwnRequestsAreNotClientRequests) {
  tracker.track_own(-42);
  EXPECT_TRUE(tracker.idle());
  EXPECT_TRUE(tracker.in_flight(-42));
  auto got = tracker.match_reply(reply(1, -42));
  ASSERT_TRUE(got);
  EXPECT_TRUE(got->own);
}

}  // namespace
}  // namespace mongoguard::proxy
