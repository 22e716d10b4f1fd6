// The journal's reads: one find per statement aimed at a journaled
// namespace, faithful to the statement (filter, limit, sort, collation,
// hint, let, lsid), and refusals for what cannot be read faithfully.
#include "proxy/journal/capture.h"

#include <gtest/gtest.h>

#include "proxy/journal/journal_test_util.h"
#include "wire_test_util.h"

namespace mongoguard::journal {
namespace {

using wire::testing::MsgBuilder;

struct Decoded {
  std::vector<std::uint8_t> frame;
  std::vector<std::uint8_t> scratch;
  wire::Request request;
};

std::unique_ptr<Decoded> decode(const MsgBuilder& builder) {
  auto d = std::make_unique<Decoded>();
  d->frame = builder.build();
  auto decoded = wire::decode_request(wire::Bytes(d->frame.data(), d->frame.size()), d->scratch);
  EXPECT_TRUE(decoded.ok());
  d->request = decoded.view;
  return d;
}

std::string json(const Bson& bytes) {
  bson_t doc;
  EXPECT_TRUE(bson_init_static(&doc, bytes.data(), bytes.size()));
  char* text = bson_as_relaxed_extended_json(&doc, nullptr);
  std::string out(text);
  bson_free(text);
  return out;
}

CapturePlan plan(const MsgBuilder& builder, std::set<std::string> namespaces = {"app.family"},
                 std::int64_t max = 100) {
  auto d = decode(builder);
  return plan_capture(d->request, namespaces, max);
}

TEST(Capture, DeleteOneReadsOneDocumentWithItsFilter) {
  auto p = plan(MsgBuilder().body(
      R"({"delete": "family", "deletes": [{"q": {"_id": 7}, "limit": 1}], "$db": "app"})"));
  ASSERT_TRUE(p.ok()) << p.error;
  ASSERT_EQ(p.reads.size(), 1u);
  const auto& r = p.reads[0];
  EXPECT_EQ(r.ns, "app.family");
  EXPECT_EQ(r.op, Operation::kDelete);
  EXPECT_TRUE(r.single);
  EXPECT_TRUE(r.removes);
  EXPECT_EQ(json(r.filter), R"({ "_id" : 7 })");
  EXPECT_EQ(json(r.find),
            R"({ "find" : "family", "filter" : { "_id" : 7 }, "limit" : 1, "batchSize" : 1, "singleBatch" : true, )"
            R"("$db" : "app" })");
}

TEST(Capture, DeleteManyAsksForOneMoreThanTheCap) {
  auto p = plan(MsgBuilder()
                    .body(R"({"delete": "family", "$db": "app"})")
                    .sequence("deletes", {R"({"q": {"age": {"$gt": 3}}, "limit": 0})",
                                          R"({"q": {}, "limit": 0, "collation": {"locale": "fr"},
                                              "hint": "age_1"})"}),
                {"app.family"}, 50);
  ASSERT_TRUE(p.ok()) << p.error;
  ASSERT_EQ(p.reads.size(), 2u);
  EXPECT_FALSE(p.reads[0].single);
  EXPECT_EQ(json(p.reads[1].find),
            R"({ "find" : "family", "filter" : {  }, "limit" : 51, "batchSize" : 51, )"
            R"("collation" : { "locale" : "fr" }, "hint" : "age_1", "$db" : "app" })");
}

TEST(Capture, UpdatesKeepTheirKindAndTheSessionAndLet) {
  auto p = plan(MsgBuilder().body(
      R"({"update": "family", "updates": [
            {"q": {"a": 1}, "u": {"$set": {"b": 2}}, "multi": true},
            {"q": {"a": 2}, "u": {"name": "new"}},
            {"q": {"a": 3}, "u": [{"$set": {"c": "$$x"}}]}],
          "let": {"x": 1}, "lsid": {"id": "s1"}, "txnNumber": 4, "$db": "app"})"));
  ASSERT_TRUE(p.ok()) << p.error;
  ASSERT_EQ(p.reads.size(), 3u);
  EXPECT_EQ(p.reads[0].op, Operation::kUpdate);
  EXPECT_FALSE(p.reads[0].single);
  EXPECT_EQ(p.reads[1].op, Operation::kReplace);
  EXPECT_TRUE(p.reads[1].single);
  EXPECT_EQ(p.reads[2].op, Operation::kUpdate);
  for (const auto& r : p.reads) EXPECT_FALSE(r.removes);
  // A retryable write's txnNumber is not a transaction; the read joins the
  // session, not the write's retry.
  const auto text = json(p.reads[0].find);
  EXPECT_NE(text.find(R"("let" : { "x" : 1 }, "lsid" : { "id" : "s1" })"), std::string::npos)
      << text;
  EXPECT_EQ(text.find("txnNumber"), std::string::npos);
}

TEST(Capture, FindAndModifyKeepsItsSort) {
  auto p = plan(MsgBuilder().body(
      R"({"findAndModify": "family", "query": {"a": 1}, "sort": {"age": -1}, "remove": true,
          "$db": "app"})"));
  ASSERT_TRUE(p.ok()) << p.error;
  ASSERT_EQ(p.reads.size(), 1u);
  EXPECT_EQ(p.reads[0].op, Operation::kFindAndModify);
  EXPECT_TRUE(p.reads[0].single);
  EXPECT_TRUE(p.reads[0].removes);
  EXPECT_NE(json(p.reads[0].find).find(R"("sort" : { "age" : -1 })"), std::string::npos);
  auto update = plan(MsgBuilder().body(
      R"({"findandmodify": "family", "query": {"a": 1}, "update": {"$inc": {"n": 1}},
          "$db": "app"})"));
  ASSERT_EQ(update.reads.size(), 1u);
  EXPECT_FALSE(update.reads[0].removes);
}

TEST(Capture, BulkWriteReadsEachOpOnItsNamespace) {
  auto p =
      plan(MsgBuilder()
               .body(R"({"bulkWrite": 1, "$db": "admin"})")
               .sequence("nsInfo", {R"({"ns": "app.family"})", R"({"ns": "app.other"})"})
               .sequence("ops",
                         {R"({"insert": 0, "document": {"_id": 1}})",
                          R"({"delete": 0, "filter": {"a": 1}, "multi": true})",
                          R"({"update": 1, "filter": {"a": 2}, "updateMods": {"$set": {"b": 1}}})",
                          R"({"update": 0, "filter": {"a": 3}, "updateMods": {"x": 1}})"}));
  ASSERT_TRUE(p.ok()) << p.error;
  ASSERT_EQ(p.reads.size(), 2u);  // app.other is not journaled; the insert reads nothing
  EXPECT_EQ(p.reads[0].op, Operation::kBulkWrite);
  EXPECT_TRUE(p.reads[0].removes);
  EXPECT_FALSE(p.reads[0].single);
  EXPECT_FALSE(p.reads[1].removes);
  EXPECT_TRUE(p.reads[1].single);
  EXPECT_NE(json(p.reads[1].find).find(R"("$db" : "app")"), std::string::npos);
}

TEST(Capture, OtherNamespacesAreNotRead) {
  auto p = plan(
      MsgBuilder().body(R"({"delete": "logs", "deletes": [{"q": {}, "limit": 0}], "$db": "app"})"));
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p.reads.empty());
}

TEST(Capture, RefusesWhatItCannotReadFaithfully) {
  auto in_txn = plan(MsgBuilder().body(
      R"({"delete": "family", "deletes": [{"q": {}, "limit": 0}], "lsid": {"id": 1},
          "txnNumber": 1, "autocommit": false, "$db": "app"})"));
  EXPECT_NE(in_txn.error.find("transaction"), std::string::npos) << in_txn.error;
  EXPECT_TRUE(in_txn.reads.empty());
  auto bad_filter = plan(MsgBuilder().body(
      R"({"delete": "family", "deletes": [{"q": 5, "limit": 0}], "$db": "app"})"));
  EXPECT_FALSE(bad_filter.ok());
  auto bad_index = plan(MsgBuilder()
                            .body(R"({"bulkWrite": 1, "$db": "admin"})")
                            .sequence("nsInfo", {R"({"ns": "app.family"})"})
                            .sequence("ops", {R"({"delete": 3, "filter": {}})"}));
  EXPECT_FALSE(bad_index.ok());
  // A legacy OP_QUERY command.
  auto query = wire::testing::op_query(
      "app.$cmd",
      wire::testing::doc(R"({"delete": "family", "deletes": [{"q": {}, "limit": 0}]})"));
  std::vector<std::uint8_t> scratch;
  auto decoded = wire::decode_request(wire::Bytes(query.data(), query.size()), scratch);
  ASSERT_TRUE(decoded.ok());
  EXPECT_NE(plan_capture(decoded.view, {"app.family"}, 10).error.find("legacy"), std::string::npos);
}

TEST(Capture, RepliesAndFollowUps) {
  const auto reply = testing::bson_of(
      R"({"cursor": {"firstBatch": [{"_id": 1, "a": 1}, {"_id": 2}], "id": {"$numberLong": "9"},
          "ns": "app.family"}, "ok": 1.0})");
  bson_t doc;
  ASSERT_TRUE(bson_init_static(&doc, reply.data(), reply.size()));
  auto batch = read_capture_reply(&doc);
  EXPECT_TRUE(batch.error.empty());
  ASSERT_EQ(batch.documents.size(), 2u);
  EXPECT_EQ(batch.cursor, 9);
  EXPECT_EQ(json(*document_id(batch.documents[0])), R"({ "_id" : 1 })");

  const auto failed = testing::bson_of(R"({"ok": 0.0, "errmsg": "bad hint"})");
  ASSERT_TRUE(bson_init_static(&doc, failed.data(), failed.size()));
  EXPECT_EQ(read_capture_reply(&doc).error, "bad hint");

  auto p = plan(MsgBuilder().body(
      R"({"update": "family", "updates": [{"q": {}, "u": {"$set": {"b": 2}}, "multi": true}],
          "lsid": {"id": "s1"}, "$db": "app"})"));
  ASSERT_EQ(p.reads.size(), 1u);
  EXPECT_EQ(json(capture_get_more(p.reads[0], 9)),
            R"({ "getMore" : 9, "collection" : "family", "lsid" : { "id" : "s1" }, )"
            R"("$db" : "app" })");
  EXPECT_EQ(json(capture_after_find(p.reads[0], {testing::bson_of(R"({"_id": 1})"),
                                                 testing::bson_of(R"({"_id": "x"})")})),
            R"({ "find" : "family", "filter" : { "_id" : { "$in" : [ 1, "x" ] } }, )"
            R"("limit" : 2, "batchSize" : 2, "lsid" : { "id" : "s1" }, "$db" : "app" })");
  EXPECT_FALSE(document_id(testing::bson_of(R"({"a": 1})")));
}

TEST(Capture, ALaterStatementDoesNotReadWhatAnEarlierDeleteRemoves) {
  auto p = plan(MsgBuilder().body(
      R"({"delete": "family", "deletes": [{"q": {"_id": 1}, "limit": 1},
          {"q": {"odd": true}, "limit": 1}], "$db": "app"})"));
  ASSERT_TRUE(p.ok()) << p.error;
  ASSERT_EQ(p.reads.size(), 2u);
  EXPECT_EQ(json(capture_excluding(p.reads[1], {testing::bson_of(R"({"_id": 1})")})),
            R"({ "find" : "family", "filter" : { "$and" : [ { "odd" : true }, )"
            R"({ "_id" : { "$nin" : [ 1 ] } } ] }, "limit" : 1, "batchSize" : 1, "singleBatch" : true, )"
            R"("$db" : "app" })");
  // Nothing removed before: the read stays as planned.
  EXPECT_EQ(capture_excluding(p.reads[1], {}), p.reads[1].find);
}

}  // namespace
}  // namespace mongoguard::journal
