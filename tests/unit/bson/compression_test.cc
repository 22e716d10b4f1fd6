#include <gtest/gtest.h>

#include <string>

#include "bson/wire.h"
#include "wire_test_util.h"

namespace mongoguard::wire {
namespace {

using namespace testing;

Buf sample_msg() {
  std::string long_value(5000, 'x');  // something worth compressing
  return MsgBuilder()
      .body(R"({"insert": "c", "$db": "app", "pad": ")" + long_value + R"("})")
      .sequence("documents", {R"({"_id": 1})", R"({"_id": 2})"})
      .build(42);
}

class WireCompressionRoundTrip : public ::testing::TestWithParam<CompressorId> {};

TEST_P(WireCompressionRoundTrip, CompressThenInflate) {
  const Buf plain = sample_msg();
  const Buf packed = compress(bytes(plain), GetParam());
  ASSERT_FALSE(packed.empty());
  const Header h = read_header(bytes(packed));
  EXPECT_EQ(h.op_code, static_cast<std::int32_t>(OpCode::kCompressed));
  EXPECT_EQ(h.request_id, 42);
  EXPECT_EQ(static_cast<std::size_t>(h.message_length), packed.size());
  if (GetParam() != CompressorId::kNoop) {
    EXPECT_LT(packed.size(), plain.size());
  }

  const auto d = decode_op_compressed(bytes(packed));
  ASSERT_TRUE(d.ok()) << error_name(d.error);
  EXPECT_EQ(d.view.original_opcode, static_cast<std::int32_t>(OpCode::kMsg));
  EXPECT_EQ(d.view.uncompressed_size, static_cast<std::int32_t>(plain.size() - 16));
  EXPECT_EQ(d.view.compressor, GetParam());

  Buf out;
  ASSERT_EQ(inflate(bytes(packed), out), DecodeError::kNone);
  EXPECT_EQ(out, plain);

  // One byte too small a limit refuses; the exact size passes.
  EXPECT_EQ(inflate(bytes(packed), out, static_cast<std::int32_t>(plain.size()) - 1),
            DecodeError::kTooLarge);
  EXPECT_EQ(inflate(bytes(packed), out, static_cast<std::int32_t>(plain.size())),
            DecodeError::kNone);
}

TEST_P(WireCompressionRoundTrip, CorruptDataAndWrongSizeAreRefused) {
  const Buf plain = sample_msg();
  const Buf packed = compress(bytes(plain), GetParam());
  Buf out;
  // Claims one byte more, then one byte less, than the data inflates to.
  for (int delta : {1, -1}) {
    Buf lie = packed;
    const auto size = static_cast<std::int32_t>(plain.size() - 16) + delta;
    for (int i = 0; i < 4; ++i)
      lie[20 + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(size >> (8 * i));
    EXPECT_EQ(inflate(bytes(lie), out), DecodeError::kBadCompression) << delta;
  }
  // Compressed stream cut short.
  Buf cut(packed.begin(), packed.end() - 5);
  const auto len = static_cast<std::int32_t>(cut.size());
  for (int i = 0; i < 4; ++i)
    cut[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(len >> (8 * i));
  EXPECT_EQ(inflate(bytes(cut), out), DecodeError::kBadCompression);
}

std::string compressor_name(const ::testing::TestParamInfo<CompressorId>& p) {
  switch (p.param) {
    case CompressorId::kNoop:
      return "noop";
    case CompressorId::kSnappy:
      return "snappy";
    case CompressorId::kZlib:
      return "zlib";
    case CompressorId::kZstd:
      return "zstd";
  }
  return "other";
}

INSTANTIATE_TEST_SUITE_P(AllCompressors, WireCompressionRoundTrip,
                         ::testing::Values(CompressorId::kNoop, CompressorId::kSnappy,
                                           CompressorId::kZlib, CompressorId::kZstd),
                         compressor_name);

TEST(WireCompression, GarbageIsRefused) {
  Buf out;
  const Buf junk{0xDE, 0xAD, 0xBE, 0xEF, 0x01, 0x02};
  for (std::uint8_t c : {1, 2, 3}) {
    EXPECT_EQ(inflate(bytes(op_compressed_raw(2013, 100, c, junk)), out),
              DecodeError::kBadCompression)
        << int{c};
  }
}

TEST(WireCompression, SizeLimitCheckedBeforeInflating) {
  // A few bytes claiming 47 MB more than allowed: refused without touching
  // `out` (no allocation, no inflate).
  Buf out;
  const Buf m = op_compressed_raw(2013, kMaxMessageSize, 3, {1, 2, 3});
  EXPECT_EQ(inflate(bytes(m), out), DecodeError::kTooLarge);
  EXPECT_EQ(out.capacity(), 0u);
  EXPECT_EQ(inflate(bytes(op_compressed_raw(2013, 0x7FFFFFFF, 1, {})), out),
            DecodeError::kTooLarge);
  EXPECT_EQ(inflate(bytes(op_compressed_raw(2013, 1000, 0, Buf(1000))), out, 1000),
            DecodeError::kTooLarge);
  EXPECT_EQ(out.capacity(), 0u);
}

TEST(WireCompression, HeaderErrors) {
  Buf out;
  EXPECT_EQ(inflate(bytes(op_compressed_raw(2012, 10, 0, Buf(10))), out),
            DecodeError::kNestedCompression);
  EXPECT_EQ(decode_op_compressed(bytes(op_compressed_raw(2012, 10, 0, Buf(10)))).error,
            DecodeError::kNestedCompression);
  EXPECT_EQ(inflate(bytes(op_compressed_raw(9999, 10, 0, Buf(10))), out),
            DecodeError::kUnknownOpcode);
  EXPECT_EQ(inflate(bytes(op_compressed_raw(2013, 10, 4, Buf(10))), out),
            DecodeError::kBadCompression);
  EXPECT_EQ(inflate(bytes(op_compressed_raw(2013, -1, 0, {})), out), DecodeError::kBadCompression);
  EXPECT_EQ(inflate(bytes(frame(OpCode::kCompressed, {0xDD, 7, 0, 0, 10, 0, 0, 0})), out),
            DecodeError::kTruncated);
  // Noop with the right size is fine, with a wrong one is not.
  EXPECT_EQ(inflate(bytes(op_compressed_raw(2013, 3, 0, {1, 2, 3})), out), DecodeError::kNone);
  EXPECT_EQ(out.size(), 19u);
  EXPECT_EQ(inflate(bytes(op_compressed_raw(2013, 4, 0, {1, 2, 3})), out),
            DecodeError::kBadCompression);
  EXPECT_TRUE(compress(Bytes(), CompressorId::kZlib).empty());
}

TEST(WireCompression, NestedCompressionFromCompress) {
  const Buf once = compress(bytes(sample_msg()), CompressorId::kSnappy);
  const Buf twice = compress(bytes(once), CompressorId::kZstd);
  Buf out;
  EXPECT_EQ(inflate(bytes(twice), out), DecodeError::kNestedCompression);
  std::vector<std::uint8_t> scratch;
  EXPECT_EQ(decode_request(bytes(twice), scratch).error, DecodeError::kNestedCompression);
}

}  // namespace
}  // namespace mongoguard::wire
