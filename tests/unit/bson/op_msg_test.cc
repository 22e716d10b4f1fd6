#include <gtest/gtest.h>

#include "bson/wire.h"
#include "wire_test_util.h"

namespace mongoguard::wire {
namespace {

using namespace testing;

DecodeError err(const Buf& m, bool verify = true) { return decode_op_msg(bytes(m), verify).error; }

TEST(WireOpMsg, BodyOnly) {
  const Buf m = MsgBuilder().body(R"({"find": "c", "filter": {}, "$db": "app"})").build();
  const auto d = decode_op_msg(bytes(m));
  ASSERT_TRUE(d.ok()) << error_name(d.error);
  EXPECT_EQ(d.view.flags, 0u);
  EXPECT_EQ(d.view.body.first_key(), "find");
  EXPECT_EQ(d.view.body.data, m.data() + 21);  // points into the message
  EXPECT_EQ(d.view.sequence_count, 0);
  EXPECT_FALSE(d.view.checksum);
  EXPECT_FALSE(d.view.more_to_come());
  EXPECT_FALSE(d.view.exhaust_allowed());
  EXPECT_EQ(d.view.sequence("documents"), nullptr);
}

TEST(WireOpMsg, SequencesBeforeAndAfterBody) {
  const Buf m = MsgBuilder()
                    .sequence("documents", {R"({"_id": 1})", R"({"_id": 2})"})
                    .body(R"({"insert": "c", "$db": "app"})")
                    .sequence("other", {})
                    .build();
  const auto d = decode_op_msg(bytes(m));
  ASSERT_TRUE(d.ok()) << error_name(d.error);
  EXPECT_EQ(d.view.body.first_key(), "insert");
  ASSERT_EQ(d.view.sequence_count, 2);
  const DocumentSequence* docs = d.view.sequence("documents");
  ASSERT_NE(docs, nullptr);
  EXPECT_EQ(docs->count(), 2u);
  EXPECT_EQ(docs->docs()[1].to_json(), R"({ "_id" : 2 })");
  ASSERT_NE(d.view.sequence("other"), nullptr);
  EXPECT_EQ(d.view.sequence("other")->count(), 0u);
}

TEST(WireOpMsg, Flags) {
  const char* body = R"({"insert": "c", "$db": "app"})";
  auto d = decode_op_msg(bytes(MsgBuilder(kMoreToCome).body(body).build()));
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d.view.more_to_come());
  d = decode_op_msg(bytes(MsgBuilder(kExhaustAllowed).body(body).build()));
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d.view.exhaust_allowed());
  // High bits are optional: ignored.
  EXPECT_EQ(err(MsgBuilder(1u << 31 | 1u << 20).body(body).build()), DecodeError::kNone);
  // Unknown low bits are required ones: refused.
  for (std::uint32_t bit = 2; bit < 16; ++bit) {
    EXPECT_EQ(err(MsgBuilder(1u << bit).body(body).build()), DecodeError::kUnknownFlagBits) << bit;
  }
}

TEST(WireOpMsg, Checksum) {
  const char* body = R"({"ping": 1, "$db": "admin"})";
  const Buf good = MsgBuilder(kChecksumPresent).body(body).build();
  const auto d = decode_op_msg(bytes(good));
  ASSERT_TRUE(d.ok()) << error_name(d.error);
  ASSERT_TRUE(d.view.checksum);
  EXPECT_EQ(*d.view.checksum, crc32c(Bytes(good.data(), good.size() - 4)));
  EXPECT_EQ(d.view.body.first_key(), "ping");

  const Buf bad = MsgBuilder(kChecksumPresent).body(body).build(7, 0x10);
  EXPECT_EQ(err(bad), DecodeError::kBadChecksum);
  EXPECT_EQ(err(bad, /*verify=*/false), DecodeError::kNone);
  // A flipped bit in the body is caught by the checksum.
  Buf flipped = good;
  flipped[30] ^= 0x01;
  EXPECT_EQ(err(flipped), DecodeError::kBadChecksum);
  // Flag set but no room for the checksum.
  Buf p;
  put_u32(p, kChecksumPresent);
  put_u8(p, 0);
  EXPECT_EQ(err(frame(OpCode::kMsg, p)), DecodeError::kTruncated);
}

TEST(WireOpMsg, SectionErrors) {
  const char* body = R"({"insert": "c", "$db": "app"})";
  EXPECT_EQ(err(MsgBuilder().build()), DecodeError::kMissingBody);
  EXPECT_EQ(err(MsgBuilder().sequence("documents", {"{}"}).build()), DecodeError::kMissingBody);
  EXPECT_EQ(err(MsgBuilder().body(body).body(body).build()), DecodeError::kDuplicateBody);
  EXPECT_EQ(err(MsgBuilder().body(body).raw({2, 5, 0, 0, 0, 0}).build()),
            DecodeError::kBadSectionKind);
  EXPECT_EQ(err(MsgBuilder().raw({0xFF}).body(body).build()), DecodeError::kBadSectionKind);
  EXPECT_EQ(
      err(MsgBuilder().body(body).sequence("a", {}).sequence("b", {}).sequence("c", {}).build()),
      DecodeError::kTooManySequences);
  EXPECT_EQ(err(MsgBuilder().body(body).sequence("a", {"{}"}).sequence("a", {"{}"}).build()),
            DecodeError::kDuplicateSequence);
  EXPECT_EQ(err(MsgBuilder()
                    .body(R"({"insert": "c", "documents": [], "$db": "app"})")
                    .sequence("documents", {"{}"})
                    .build()),
            DecodeError::kBodyAndSequence);
  // Same name with different case is a different field.
  EXPECT_EQ(err(MsgBuilder()
                    .body(R"({"insert": "c", "Documents": [], "$db": "app"})")
                    .sequence("documents", {"{}"})
                    .build()),
            DecodeError::kNone);
}

TEST(WireOpMsg, LengthErrors) {
  const Buf m = MsgBuilder().body(R"({"ping": 1, "$db": "admin"})").build();
  // Shorter than the header; declared length beyond the bytes; extra bytes.
  EXPECT_EQ(err(Buf(m.begin(), m.begin() + 10)), DecodeError::kTooShort);
  EXPECT_EQ(err(Buf(m.begin(), m.end() - 1)), DecodeError::kTruncated);
  Buf longer = m;
  longer.push_back(0);
  EXPECT_EQ(err(longer), DecodeError::kTrailingBytes);
  Buf short_len = m;
  short_len[0] = 12;
  short_len[1] = short_len[2] = short_len[3] = 0;
  EXPECT_EQ(err(short_len), DecodeError::kTooShort);
  // No flags.
  EXPECT_EQ(err(frame(OpCode::kMsg, {0, 0})), DecodeError::kTruncated);
  // A body whose length prefix points past the end of the message.
  Buf body = doc(R"({"ping": 1})");
  body[0] = static_cast<std::uint8_t>(body[0] + 1);
  EXPECT_EQ(err(MsgBuilder().body_bytes(body).build()), DecodeError::kTruncated);
  // Sequence size beyond the message, below its minimum, identifier unterminated.
  Buf seq;
  put_u8(seq, 1);
  put_i32(seq, 100);
  put_cstr(seq, "a");
  EXPECT_EQ(err(MsgBuilder().body(R"({"ping": 1})").raw(seq).build()), DecodeError::kTruncated);
  seq.clear();
  put_u8(seq, 1);
  put_i32(seq, 4);
  EXPECT_EQ(err(MsgBuilder().body(R"({"ping": 1})").raw(seq).build()), DecodeError::kTruncated);
  EXPECT_EQ(err(MsgBuilder().body(R"({"ping": 1})").sequence_bytes({'a', 'b'}).build()),
            DecodeError::kTruncated);
  // A document running past the end of its sequence (but not the message).
  Buf payload;
  put_cstr(payload, "documents");
  Buf d = doc(R"({"x": 1})");
  put(payload, Buf(d.begin(), d.end() - 1));
  EXPECT_EQ(err(MsgBuilder().sequence_bytes(payload).raw({0}).raw(doc(R"({"ping": 1})")).build()),
            DecodeError::kTruncated);
  // Wrong opcode for this decoder.
  Buf other = m;
  other[12] = 0xD4;  // 2004
  EXPECT_EQ(err(other), DecodeError::kUnknownOpcode);
}

TEST(WireOpMsg, InvalidBson) {
  Buf body = doc(R"({"ping": 1, "$db": "admin"})");
  body[4] = 0x42;  // unknown element type
  EXPECT_EQ(err(MsgBuilder().body_bytes(body).build()), DecodeError::kInvalidBson);
  Buf payload;
  put_cstr(payload, "documents");
  put(payload, body);
  EXPECT_EQ(err(MsgBuilder().body(R"({"insert": "c"})").sequence_bytes(payload).build()),
            DecodeError::kInvalidBson);
}

}  // namespace
}  // namespace mongoguard::wire
