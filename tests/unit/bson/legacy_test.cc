#include <gtest/gtest.h>

#include "bson/wire.h"
#include "wire_test_util.h"

namespace mongoguard::wire {
namespace {

using namespace testing;

Buf reply(std::int32_t number_returned, std::initializer_list<const char*> docs) {
  Buf p;
  put_i32(p, 8);
  put_i64(p, 0x0102030405060708);
  put_i32(p, 3);
  put_i32(p, number_returned);
  for (auto* json : docs) put(p, doc(json));
  return frame(OpCode::kReply, p, 9, 7);
}

TEST(WireOpQuery, Command) {
  const Buf m = op_query("admin.$cmd", doc(R"({"isMaster": 1, "client": {}})"));
  const auto d = decode_op_query(bytes(m));
  ASSERT_TRUE(d.ok()) << error_name(d.error);
  EXPECT_EQ(d.view.full_collection_name, "admin.$cmd");
  EXPECT_TRUE(d.view.is_command());
  EXPECT_EQ(d.view.database(), "admin");
  EXPECT_EQ(d.view.collection(), "$cmd");
  EXPECT_EQ(d.view.number_to_return, -1);
  EXPECT_EQ(d.view.query.first_key(), "isMaster");
  EXPECT_FALSE(d.view.return_fields_selector);
}

TEST(WireOpQuery, FindWithProjectionAndDottedCollection) {
  const Buf fields = doc(R"({"a": 1})");
  const Buf m = op_query("app.users.archive", doc(R"({"x": 1})"), &fields, 4);
  const auto d = decode_op_query(bytes(m));
  ASSERT_TRUE(d.ok()) << error_name(d.error);
  EXPECT_FALSE(d.view.is_command());
  EXPECT_EQ(d.view.database(), "app");
  EXPECT_EQ(d.view.collection(), "users.archive");
  EXPECT_EQ(d.view.flags, 4);
  ASSERT_TRUE(d.view.return_fields_selector);
  EXPECT_EQ(d.view.return_fields_selector->first_key(), "a");
  OpQueryView no_dot;
  no_dot.full_collection_name = "admin";
  EXPECT_EQ(no_dot.database(), "admin");
  EXPECT_EQ(no_dot.collection(), "");
  EXPECT_FALSE(no_dot.is_command());
}

TEST(WireOpQuery, Errors) {
  const Buf q = doc(R"({"isMaster": 1})");
  Buf m = op_query("admin.$cmd", q);
  // Everything after a cut is missing.
  for (std::size_t cut = 16; cut < m.size(); ++cut) {
    Buf part(m.begin(), m.begin() + static_cast<long>(cut));
    part[0] = static_cast<std::uint8_t>(cut);
    const auto e = decode_op_query(bytes(part)).error;
    EXPECT_TRUE(e == DecodeError::kTruncated || e == DecodeError::kInvalidBson) << cut;
  }
  // Query, then a cut or an extra tail.
  Buf p;
  put_i32(p, 0);
  put_cstr(p, "admin.$cmd");
  put_i32(p, 0);
  put_i32(p, -1);
  put(p, q);
  put(p, {1, 2, 3});  // a projection cut short
  EXPECT_EQ(decode_op_query(bytes(frame(OpCode::kQuery, p))).error, DecodeError::kTruncated);
  p.resize(p.size() - 3);
  put(p, q);
  put(p, {1, 2, 3});  // bytes after the projection
  EXPECT_EQ(decode_op_query(bytes(frame(OpCode::kQuery, p))).error, DecodeError::kTrailingBytes);
  Buf bad = q;
  bad[4] = 0x42;
  EXPECT_EQ(decode_op_query(bytes(op_query("admin.$cmd", bad))).error, DecodeError::kInvalidBson);
}

TEST(WireOpReply, Decodes) {
  const Buf m = reply(2, {R"({"ok": 1})", R"({"n": 2})"});
  const auto d = decode_op_reply(bytes(m));
  ASSERT_TRUE(d.ok()) << error_name(d.error);
  EXPECT_EQ(d.view.response_flags, 8);
  EXPECT_EQ(d.view.cursor_id, 0x0102030405060708);
  EXPECT_EQ(d.view.starting_from, 3);
  EXPECT_EQ(d.view.number_returned, 2);
  const auto docs = d.view.docs();
  ASSERT_EQ(docs.size(), 2u);
  EXPECT_EQ(docs[1].first_key(), "n");
  EXPECT_TRUE(decode_op_reply(bytes(reply(0, {}))).ok());
}

TEST(WireOpReply, Errors) {
  EXPECT_EQ(decode_op_reply(bytes(reply(3, {"{}", "{}"}))).error, DecodeError::kTruncated);
  EXPECT_EQ(decode_op_reply(bytes(reply(1, {"{}", "{}"}))).error, DecodeError::kTrailingBytes);
  EXPECT_EQ(decode_op_reply(bytes(reply(-1, {}))).error, DecodeError::kTruncated);
  EXPECT_EQ(decode_op_reply(bytes(frame(OpCode::kReply, {1, 2, 3}))).error,
            DecodeError::kTruncated);
  Buf m = reply(1, {R"({"a": 1})"});
  m[m.size() - 8] = 0x42;
  EXPECT_EQ(decode_op_reply(bytes(m)).error, DecodeError::kInvalidBson);
}

TEST(WireLegacyOps, Insert) {
  Buf p;
  put_i32(p, 1);
  put_cstr(p, "app.users");
  put(p, doc(R"({"_id": 1})"));
  put(p, doc(R"({"_id": 2})"));
  const Buf msg = frame(OpCode::kInsert, p);
  const auto d = decode_op_insert(bytes(msg));
  ASSERT_TRUE(d.ok()) << error_name(d.error);
  EXPECT_EQ(d.view.flags, 1);
  EXPECT_EQ(d.view.full_collection_name, "app.users");
  EXPECT_EQ(d.view.docs().size(), 2u);

  Buf none;
  put_i32(none, 0);
  put_cstr(none, "app.users");
  EXPECT_EQ(decode_op_insert(bytes(frame(OpCode::kInsert, none))).error, DecodeError::kTruncated);
  EXPECT_EQ(decode_op_insert(bytes(frame(OpCode::kInsert, {0, 0, 0, 0, 'a'}))).error,
            DecodeError::kTruncated);
  put(none, {9, 0, 0, 0, 0});
  EXPECT_EQ(decode_op_insert(bytes(frame(OpCode::kInsert, none))).error, DecodeError::kTruncated);
}

TEST(WireLegacyOps, Update) {
  Buf p;
  put_i32(p, 0);
  put_cstr(p, "app.users");
  put_i32(p, 3);
  put(p, doc("{}"));
  put(p, doc(R"({"$set": {"a": 1}})"));
  const Buf m = frame(OpCode::kUpdate, p);
  const auto d = decode_op_update(bytes(m));
  ASSERT_TRUE(d.ok()) << error_name(d.error);
  EXPECT_TRUE(d.view.multi());
  EXPECT_TRUE(d.view.upsert());
  EXPECT_EQ(d.view.selector.size, 5u);
  EXPECT_EQ(d.view.update.first_key(), "$set");
  Buf extra = p;
  extra.push_back(0);
  EXPECT_EQ(decode_op_update(bytes(frame(OpCode::kUpdate, extra))).error,
            DecodeError::kTrailingBytes);
  Buf missing(p.begin(), p.end() - static_cast<long>(doc(R"({"$set": {"a": 1}})").size()));
  EXPECT_EQ(decode_op_update(bytes(frame(OpCode::kUpdate, missing))).error,
            DecodeError::kTruncated);
}

TEST(WireLegacyOps, Delete) {
  Buf p;
  put_i32(p, 0);
  put_cstr(p, "app.users");
  put_i32(p, 1);
  put(p, doc(R"({"_id": 5})"));
  const Buf msg = frame(OpCode::kDelete, p);
  const auto d = decode_op_delete(bytes(msg));
  ASSERT_TRUE(d.ok()) << error_name(d.error);
  EXPECT_TRUE(d.view.single_remove());
  EXPECT_EQ(d.view.selector.first_key(), "_id");
  Buf extra = p;
  put(extra, doc("{}"));
  EXPECT_EQ(decode_op_delete(bytes(frame(OpCode::kDelete, extra))).error,
            DecodeError::kTrailingBytes);
  EXPECT_EQ(decode_op_delete(bytes(frame(OpCode::kDelete, {0, 0, 0, 0, 'a', 0, 1}))).error,
            DecodeError::kTruncated);
}

TEST(WireLegacyOps, GetMore) {
  Buf p;
  put_i32(p, 0);
  put_cstr(p, "app.users");
  put_i32(p, 10);
  put_i64(p, 77);
  const Buf msg = frame(OpCode::kGetMore, p);
  const auto d = decode_op_get_more(bytes(msg));
  ASSERT_TRUE(d.ok()) << error_name(d.error);
  EXPECT_EQ(d.view.full_collection_name, "app.users");
  EXPECT_EQ(d.view.number_to_return, 10);
  EXPECT_EQ(d.view.cursor_id, 77);
  Buf extra = p;
  extra.push_back(1);
  EXPECT_EQ(decode_op_get_more(bytes(frame(OpCode::kGetMore, extra))).error,
            DecodeError::kTrailingBytes);
  p.pop_back();
  EXPECT_EQ(decode_op_get_more(bytes(frame(OpCode::kGetMore, p))).error, DecodeError::kTruncated);
}

TEST(WireLegacyOps, KillCursors) {
  Buf p;
  put_i32(p, 0);
  put_i32(p, 2);
  put_i64(p, 1);
  put_i64(p, 2);
  const Buf msg = frame(OpCode::kKillCursors, p);
  const auto d = decode_op_kill_cursors(bytes(msg));
  ASSERT_TRUE(d.ok()) << error_name(d.error);
  EXPECT_EQ(d.view.number_of_cursor_ids, 2);
  EXPECT_EQ(d.view.cursor_ids.size(), 16u);
  Buf extra = p;
  extra.push_back(1);
  EXPECT_EQ(decode_op_kill_cursors(bytes(frame(OpCode::kKillCursors, extra))).error,
            DecodeError::kTrailingBytes);
  p.pop_back();
  EXPECT_EQ(decode_op_kill_cursors(bytes(frame(OpCode::kKillCursors, p))).error,
            DecodeError::kTruncated);
  Buf negative;
  put_i32(negative, 0);
  put_i32(negative, -1);
  EXPECT_EQ(decode_op_kill_cursors(bytes(frame(OpCode::kKillCursors, negative))).error,
            DecodeError::kTruncated);
}

TEST(WireLegacyOps, WrongOpcodeForDecoder) {
  const Buf m = frame(OpCode::kMsg, {0, 0, 0, 0});
  EXPECT_EQ(decode_op_query(bytes(m)).error, DecodeError::kUnknownOpcode);
  EXPECT_EQ(decode_op_reply(bytes(m)).error, DecodeError::kUnknownOpcode);
  EXPECT_EQ(decode_op_insert(bytes(m)).error, DecodeError::kUnknownOpcode);
  EXPECT_EQ(decode_op_update(bytes(m)).error, DecodeError::kUnknownOpcode);
  EXPECT_EQ(decode_op_delete(bytes(m)).error, DecodeError::kUnknownOpcode);
  EXPECT_EQ(decode_op_get_more(bytes(m)).error, DecodeError::kUnknownOpcode);
  EXPECT_EQ(decode_op_kill_cursors(bytes(m)).error, DecodeError::kUnknownOpcode);
  EXPECT_EQ(decode_op_compressed(bytes(m)).error, DecodeError::kUnknownOpcode);
}

}  // namespace
}  // namespace mongoguard::wire
