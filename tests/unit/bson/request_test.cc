#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "bson/wire.h"
#include "wire_test_util.h"

namespace mongoguard::wire {
namespace {

using namespace testing;

// Views in the result point into the message (or the scratch buffer): both
// are kept until the next call.
Decoded<Request> decode(const Buf& m, std::int32_t max_size = kMaxMessageSize) {
  static Buf message;
  static std::vector<std::uint8_t> scratch;
  message = m;
  return decode_request(bytes(message), scratch, max_size);
}

DecodeError err(const Buf& m) { return decode(m).error; }

TEST(WireRequest, OpMsg) {
  const Buf m = MsgBuilder(kExhaustAllowed).body(R"({"find": "users", "$db": "app"})").build(11);
  std::vector<std::uint8_t> scratch;
  const auto d = decode_request(bytes(m), scratch);
  ASSERT_TRUE(d.ok()) << error_name(d.error);
  const Request& r = d.view;
  EXPECT_EQ(r.header.request_id, 11);
  EXPECT_EQ(r.effective_opcode, 2013);
  EXPECT_FALSE(r.compressed);
  EXPECT_EQ(r.command, "find");
  EXPECT_EQ(r.database, "app");
  EXPECT_EQ(r.collection, "");
  EXPECT_FALSE(r.more_to_come);
  EXPECT_TRUE(r.exhaust_allowed);
  ASSERT_TRUE(r.msg);
  EXPECT_FALSE(r.query);
  // Views point into the message, not into copies.
  EXPECT_GE(r.command.data(), reinterpret_cast<const char*>(m.data()));
  EXPECT_LT(r.database.data(), reinterpret_cast<const char*>(m.data() + m.size()));
}

TEST(WireRequest, OpMsgMoreToComeAndSequences) {
  const Buf m = MsgBuilder(kMoreToCome | kChecksumPresent)
                    .body(R"({"delete": "users", "$db": "app", "ordered": true})")
                    .sequence("deletes", {R"({"q": {}, "limit": 0})"})
                    .build();
  const auto d = decode(m);
  ASSERT_TRUE(d.ok()) << error_name(d.error);
  EXPECT_TRUE(d.view.more_to_come);
  EXPECT_EQ(d.view.command, "delete");
  ASSERT_TRUE(d.view.msg);
  ASSERT_NE(d.view.msg->sequence("deletes"), nullptr);
  EXPECT_EQ(d.view.msg->sequence("deletes")->count(), 1u);
}

TEST(WireRequest, OpMsgDbAndCommandErrors) {
  EXPECT_EQ(err(MsgBuilder().body(R"({"find": "users"})").build()), DecodeError::kMissingDb);
  EXPECT_EQ(err(MsgBuilder().body(R"({"find": "users", "$db": 1})").build()),
            DecodeError::kMissingDb);
  EXPECT_EQ(err(MsgBuilder().body(R"({"find": "users", "$DB": "app"})").build()),
            DecodeError::kMissingDb);
  EXPECT_EQ(err(MsgBuilder().body("{}").build()), DecodeError::kEmptyCommand);
  // $db as the first key is a command named "$db" with a database: decodes.
  const auto d = decode(MsgBuilder().body(R"({"$db": "x"})").build());
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d.view.command, "$db");
  EXPECT_EQ(d.view.database, "x");
  EXPECT_EQ(err(MsgBuilder(kChecksumPresent).body(R"({"ping": 1, "$db": "a"})").build(7, 1)),
            DecodeError::kBadChecksum);
}

// The body's repeated fields and its $db are found in one walk, which keeps
// the first 16 keys in place and the rest aside: both halves are checked.
TEST(WireRequest, ManyFieldsDecodeAndTheirRepeatsAreFound) {
  auto body = [](int fields, int repeat_at, bool db_last) {
    std::string s = R"({"find": "c")";
    if (!db_last) s += R"(, "$db": "app")";
    for (int i = 1; i < fields; ++i) {
      s += ", \"f" + std::to_string(i == repeat_at ? repeat_at - 1 : i) + "\": 1";
    }
    if (db_last) s += R"(, "$db": "app")";
    return s + "}";
  };
  for (const bool db_last : {false, true}) {
    const auto ok = decode(MsgBuilder().body(body(30, 0, db_last)).build());
    ASSERT_TRUE(ok.ok()) << error_name(ok.error);
    EXPECT_EQ(ok.view.database, "app");
    for (const int at : {3, 16, 17, 18, 29}) {
      EXPECT_EQ(err(MsgBuilder().body(body(30, at, db_last)).build()), DecodeError::kDuplicateField)
          << "repeat at " << at;
    }
  }
  EXPECT_EQ(err(MsgBuilder()
                    .body(R"({"find": "c", "f1": 1, "f2": 2, "f3": 3, "f4": 4, "f5": 5,
      "f6": 6, "f7": 7, "f8": 8, "f9": 9, "f10": 10, "f11": 11, "f12": 12, "f13": 13, "f14": 14,
      "f15": 15, "f16": 16, "f17": 17, "$db": 1})")
                    .build()),
            DecodeError::kMissingDb);
}

// Which copy of a duplicated field a server reads differs between servers:
// a command with one cannot be judged, so it is refused.
TEST(WireRequest, DuplicateTopLevelFieldsRefused) {
  EXPECT_EQ(err(MsgBuilder().body(R"({"delete": "c", "$db": "free", "$db": "app"})").build()),
            DecodeError::kDuplicateField);
  EXPECT_EQ(err(MsgBuilder()
                    .body(R"({"delete": "c", "deletes": [{"q": {"_id": 1}, "limit": 1}],
                              "deletes": [{"q": {}, "limit": 0}], "$db": "app"})")
                    .build()),
            DecodeError::kDuplicateField);
  EXPECT_EQ(err(MsgBuilder().body(R"({"delete": "a", "delete": "b", "$db": "app"})").build()),
            DecodeError::kDuplicateField);
  EXPECT_EQ(err(op_query("app.$cmd", doc(R"({"$query": {"drop": "a", "drop": "b"}})"))),
            DecodeError::kDuplicateField);
  EXPECT_STREQ(error_name(DecodeError::kDuplicateField), "duplicate_field");
  // Nested duplicates decode; has_duplicate_fields() finds them, in the body
  // and in sequences alike.
  const auto nested =
      decode(MsgBuilder()
                 .body(R"({"delete": "c", "$db": "app"})")
                 .sequence("deletes", {R"({"q": {"a": 1}, "limit": 1, "limit": 0})"})
                 .build());
  ASSERT_TRUE(nested.ok()) << error_name(nested.error);
  EXPECT_TRUE(has_duplicate_fields(nested.view));
  const auto in_body = decode(
      MsgBuilder()
          .body(R"({"delete": "c", "deletes": [{"q": {"a": 1, "a": {"$ne": 0}}}], "$db": "app"})")
          .build());
  ASSERT_TRUE(in_body.ok());
  EXPECT_TRUE(has_duplicate_fields(in_body.view));
  const auto clean =
      decode(MsgBuilder()
                 .body(R"({"delete": "c", "deletes": [{"q": {"a": [1, 1]}}], "$db": "app"})")
                 .build());
  ASSERT_TRUE(clean.ok());
  EXPECT_FALSE(has_duplicate_fields(clean.view));
}

TEST(WireRequest, OpQueryCommand) {
  const auto d = decode(op_query("admin.$cmd", doc(R"({"isMaster": 1, "helloOk": true})")));
  ASSERT_TRUE(d.ok()) << error_name(d.error);
  EXPECT_EQ(d.view.command, "isMaster");
  EXPECT_EQ(d.view.database, "admin");
  EXPECT_EQ(d.view.collection, "");
  ASSERT_TRUE(d.view.query);
  EXPECT_FALSE(d.view.msg);
  EXPECT_FALSE(d.view.more_to_come);
}

TEST(WireRequest, OpQueryWrappedCommand) {
  for (const char* wrapper : {"$query", "query"}) {
    const std::string json = std::string(R"({")") + wrapper +
                             R"(": {"hello": 1}, "$readPreference": {"mode": "primary"}})";
    const auto d = decode(op_query("admin.$cmd", doc(json)));
    ASSERT_TRUE(d.ok()) << error_name(d.error);
    EXPECT_EQ(d.view.command, "hello") << wrapper;
  }
  EXPECT_EQ(err(op_query("admin.$cmd", doc(R"({"$query": 1})"))), DecodeError::kEmptyCommand);
  EXPECT_EQ(err(op_query("admin.$cmd", doc(R"({"$query": {}})"))), DecodeError::kEmptyCommand);
  EXPECT_EQ(err(op_query("admin.$cmd", doc("{}"))), DecodeError::kEmptyCommand);
  // Only the first key unwraps.
  const auto d = decode(op_query("admin.$cmd", doc(R"({"ping": 1, "$query": {"x": 1}})")));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d.view.command, "ping");
}

TEST(WireRequest, OpQueryFind) {
  const auto d = decode(op_query("app.users", doc(R"({"name": "x"})")));
  ASSERT_TRUE(d.ok()) << error_name(d.error);
  EXPECT_EQ(d.view.command, "");
  EXPECT_EQ(d.view.database, "app");
  EXPECT_EQ(d.view.collection, "users");
}

TEST(WireRequest, LegacyWritesAreFireAndForget) {
  Buf ins;
  put_i32(ins, 0);
  put_cstr(ins, "app.users");
  put(ins, doc(R"({"_id": 1})"));
  Buf upd;
  put_i32(upd, 0);
  put_cstr(upd, "app.users");
  put_i32(upd, 2);
  put(upd, doc("{}"));
  put(upd, doc(R"({"$set": {"a": 1}})"));
  Buf del;
  put_i32(del, 0);
  put_cstr(del, "app.users");
  put_i32(del, 0);
  put(del, doc("{}"));
  for (const auto& [op, payload] :
       {std::pair{OpCode::kInsert, ins}, std::pair{OpCode::kUpdate, upd},
        std::pair{OpCode::kDelete, del}}) {
    const auto d = decode(frame(op, payload));
    ASSERT_TRUE(d.ok()) << opcode_name(static_cast<std::int32_t>(op)) << error_name(d.error);
    EXPECT_TRUE(d.view.more_to_come);
    EXPECT_EQ(d.view.command, "");
    EXPECT_EQ(d.view.database, "app");
    EXPECT_EQ(d.view.collection, "users");
    EXPECT_EQ(d.view.effective_opcode, static_cast<std::int32_t>(op));
  }
  Buf bad = del;
  bad.back() = 1;
  EXPECT_EQ(err(frame(OpCode::kDelete, bad)), DecodeError::kInvalidBson);
}

TEST(WireRequest, GetMoreKillCursorsAndReply) {
  Buf gm;
  put_i32(gm, 0);
  put_cstr(gm, "app.users");
  put_i32(gm, 0);
  put_i64(gm, 5);
  const auto d = decode(frame(OpCode::kGetMore, gm));
  ASSERT_TRUE(d.ok()) << error_name(d.error);
  EXPECT_FALSE(d.view.more_to_come);
  EXPECT_EQ(d.view.collection, "users");
  Buf kc;
  put_i32(kc, 0);
  put_i32(kc, 1);
  put_i64(kc, 5);
  EXPECT_EQ(err(frame(OpCode::kKillCursors, kc)), DecodeError::kNone);
  kc.pop_back();
  EXPECT_EQ(err(frame(OpCode::kKillCursors, kc)), DecodeError::kTruncated);
  // Clients never send OP_REPLY.
  Buf rp;
  put_i32(rp, 0);
  put_i64(rp, 0);
  put_i32(rp, 0);
  put_i32(rp, 0);
  EXPECT_TRUE(decode_op_reply(bytes(frame(OpCode::kReply, rp))).ok());
  EXPECT_EQ(err(frame(OpCode::kReply, rp)), DecodeError::kUnknownOpcode);
}

TEST(WireRequest, FramingErrors) {
  const Buf good = MsgBuilder().body(R"({"ping": 1, "$db": "admin"})").build();
  EXPECT_EQ(err(Buf{}), DecodeError::kTooShort);
  EXPECT_EQ(err(Buf(good.begin(), good.begin() + 15)), DecodeError::kTooShort);
  EXPECT_EQ(err(Buf(good.begin(), good.end() - 1)), DecodeError::kTruncated);
  Buf longer = good;
  longer.push_back(0);
  EXPECT_EQ(err(longer), DecodeError::kTrailingBytes);
  EXPECT_EQ(decode(good, static_cast<std::int32_t>(good.size()) - 1).error, DecodeError::kTooLarge);
  EXPECT_EQ(decode(good, static_cast<std::int32_t>(good.size())).error, DecodeError::kNone);
  Buf unknown = good;
  unknown[12] = 0xDA;  // 2010, OP_COMMAND, removed
  EXPECT_EQ(err(unknown), DecodeError::kUnknownOpcode);
  for (const char* http : {"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "POST", "HEAD /"}) {
    const Buf h(http, http + std::strlen(http));
    EXPECT_EQ(err(h), DecodeError::kHttpRequest) << http;
  }
  EXPECT_EQ(err(Buf{'G', 'E', 'T'}), DecodeError::kTooShort);
}

TEST(WireRequest, Compressed) {
  const Buf plain = MsgBuilder(kMoreToCome).body(R"({"insert": "users", "$db": "app"})").build(3);
  for (auto c :
       {CompressorId::kNoop, CompressorId::kSnappy, CompressorId::kZlib, CompressorId::kZstd}) {
    const Buf packed = compress(bytes(plain), c);
    std::vector<std::uint8_t> scratch;
    const auto d = decode_request(bytes(packed), scratch);
    ASSERT_TRUE(d.ok()) << error_name(d.error);
    const Request& r = d.view;
    EXPECT_TRUE(r.compressed);
    EXPECT_EQ(r.header.op_code, 2012);  // as received
    EXPECT_EQ(r.header.message_length, static_cast<std::int32_t>(packed.size()));
    EXPECT_EQ(r.header.request_id, 3);
    EXPECT_EQ(r.effective_opcode, 2013);
    EXPECT_EQ(r.command, "insert");
    EXPECT_EQ(r.database, "app");
    EXPECT_TRUE(r.more_to_come);
    EXPECT_EQ(scratch, plain);
    // The views point into the scratch buffer.
    EXPECT_GE(r.command.data(), reinterpret_cast<const char*>(scratch.data()));
    EXPECT_LT(r.command.data(), reinterpret_cast<const char*>(scratch.data() + scratch.size()));
  }
  // A compressed OP_QUERY hello.
  const Buf hello = op_query("admin.$cmd", doc(R"({"hello": 1})"));
  const auto d = decode(compress(bytes(hello), CompressorId::kZlib));
  ASSERT_TRUE(d.ok()) << error_name(d.error);
  EXPECT_EQ(d.view.effective_opcode, 2004);
  EXPECT_EQ(d.view.command, "hello");
  // Errors inside the inflated message surface as themselves.
  const Buf no_db = MsgBuilder().body(R"({"insert": "users"})").build();
  EXPECT_EQ(err(compress(bytes(no_db), CompressorId::kSnappy)), DecodeError::kMissingDb);
  // An inflated message over the limit is refused before inflating.
  const Buf big =
      MsgBuilder()
          .body(R"({"insert": "users", "$db": "app", "pad": ")" + std::string(4000, 'p') + R"("})")
          .build();
  const Buf packed = compress(bytes(big), CompressorId::kZstd);
  ASSERT_LT(packed.size() + 100, big.size());
  EXPECT_EQ(decode(packed, static_cast<std::int32_t>(packed.size() + 100)).error,
            DecodeError::kTooLarge);
  EXPECT_EQ(decode(packed, static_cast<std::int32_t>(big.size())).error, DecodeError::kNone);
  EXPECT_EQ(err(op_compressed_raw(2013, 5, 1, {1, 2})), DecodeError::kBadCompression);
  // Compressed OP_REPLY from a client.
  Buf rp;
  put_i32(rp, 0);
  put_i64(rp, 0);
  put_i32(rp, 0);
  put_i32(rp, 0);
  EXPECT_EQ(err(compress(bytes(frame(OpCode::kReply, rp)), CompressorId::kNoop)),
            DecodeError::kUnknownOpcode);
}

TEST(WireReplyBuilder, ErrorReply) {
  const Buf m = build_error_reply(99, 11, 13, "Unauthorized",
                                  "mongoguard: blocked deleteMany({}) on app.users by rule x");
  const Header h = read_header(bytes(m));
  EXPECT_EQ(h.message_length, static_cast<std::int32_t>(m.size()));
  EXPECT_EQ(h.request_id, 99);
  EXPECT_EQ(h.response_to, 11);
  EXPECT_EQ(h.op_code, 2013);
  const auto d = decode_op_msg(bytes(m));
  ASSERT_TRUE(d.ok()) << error_name(d.error);
  EXPECT_EQ(d.view.flags, 0u);
  EXPECT_EQ(d.view.sequence_count, 0);
  bson_t body;
  ASSERT_TRUE(d.view.body.as_bson(&body));
  bson_iter_t it;
  ASSERT_TRUE(bson_iter_init_find(&it, &body, "ok"));
  EXPECT_EQ(bson_iter_type(&it), BSON_TYPE_DOUBLE);
  EXPECT_EQ(bson_iter_double(&it), 0.0);
  ASSERT_TRUE(bson_iter_init_find(&it, &body, "errmsg"));
  EXPECT_STREQ(bson_iter_utf8(&it, nullptr),
               "mongoguard: blocked deleteMany({}) on app.users by rule x");
  ASSERT_TRUE(bson_iter_init_find(&it, &body, "code"));
  EXPECT_EQ(bson_iter_type(&it), BSON_TYPE_INT32);
  EXPECT_EQ(bson_iter_int32(&it), 13);
  ASSERT_TRUE(bson_iter_init_find(&it, &body, "codeName"));
  EXPECT_STREQ(bson_iter_utf8(&it, nullptr), "Unauthorized");
  EXPECT_FALSE(bson_iter_init_find(&it, &body, "errorLabels"));
  EXPECT_EQ(bson_count_keys(&body), 4u);
  EXPECT_EQ(d.view.body.first_key(), "ok");
}

TEST(WireReplyBuilder, ErrorReplyKeepsEmbeddedBytes) {
  const std::string msg("a\0b", 3);
  const Buf m = build_error_reply(1, 2, 3, "X", msg);
  const auto d = decode_op_msg(bytes(m));
  ASSERT_TRUE(d.ok());
  bson_t body;
  ASSERT_TRUE(d.view.body.as_bson(&body));
  bson_iter_t it;
  ASSERT_TRUE(bson_iter_init_find(&it, &body, "errmsg"));
  std::uint32_t len = 0;
  const char* s = bson_iter_utf8(&it, &len);
  EXPECT_EQ(std::string(s, len), msg);
}

TEST(WireReplyBuilder, OpMsgWithChecksum) {
  bson_t* body = BCON_NEW("ok", BCON_DOUBLE(1.0));
  const Buf m = build_op_msg(body, 5, 6, kChecksumPresent | kMoreToCome);
  bson_destroy(body);
  const auto d = decode_op_msg(bytes(m));
  ASSERT_TRUE(d.ok()) << error_name(d.error);
  EXPECT_TRUE(d.view.checksum);
  EXPECT_TRUE(d.view.more_to_come());
  EXPECT_EQ(read_header(bytes(m)).response_to, 6);
}

TEST(WireReplyBuilder, OpReply) {
  bson_t* doc_ = BCON_NEW("ismaster", BCON_BOOL(true), "ok", BCON_DOUBLE(1.0));
  const Buf m = build_op_reply(doc_, 8, 4);
  bson_destroy(doc_);
  const auto d = decode_op_reply(bytes(m));
  ASSERT_TRUE(d.ok()) << error_name(d.error);
  EXPECT_EQ(d.view.number_returned, 1);
  EXPECT_EQ(d.view.cursor_id, 0);
  ASSERT_EQ(d.view.docs().size(), 1u);
  EXPECT_EQ(d.view.docs()[0].first_key(), "ismaster");
  EXPECT_EQ(read_header(bytes(m)).response_to, 4);
  EXPECT_EQ(read_header(bytes(m)).request_id, 8);
}

}  // namespace
}  // namespace mongoguard::wire
