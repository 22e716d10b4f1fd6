#include <gtest/gtest.h>

#include <set>
#include <string>

#include "bson/wire.h"
#include "wire_test_util.h"

namespace mongoguard::wire {
namespace {

using namespace testing;

TEST(WireHeader, ReadWriteRoundTrip) {
  std::uint8_t buf[16];
  const Header h{1234, -5, 0x7FFFFFFF, 2013};
  write_header(buf, h);
  const Header back = read_header(Bytes(buf, 16));
  EXPECT_EQ(back.message_length, 1234);
  EXPECT_EQ(back.request_id, -5);
  EXPECT_EQ(back.response_to, 0x7FFFFFFF);
  EXPECT_EQ(back.op_code, 2013);
  // Little endian on the wire.
  EXPECT_EQ(buf[0], 0xD2);
  EXPECT_EQ(buf[1], 0x04);
  EXPECT_EQ(buf[12], 0xDD);
  EXPECT_EQ(buf[13], 0x07);
}

TEST(WireHeader, KnownOpcodes) {
  for (int op : {1, 2001, 2002, 2004, 2005, 2006, 2007, 2012, 2013}) {
    EXPECT_TRUE(is_known_opcode(op)) << op;
    EXPECT_STRNE(opcode_name(op), "unknown") << op;
  }
  for (int op : {0, 2, 1000, 2003, 2008, 2010, 2011, 2014, -1}) {
    EXPECT_FALSE(is_known_opcode(op)) << op;
    EXPECT_STREQ(opcode_name(op), "unknown") << op;
  }
  EXPECT_STREQ(opcode_name(2013), "OP_MSG");
  EXPECT_STREQ(opcode_name(2012), "OP_COMPRESSED");
  EXPECT_STREQ(opcode_name(1), "OP_REPLY");
}

TEST(WireHeader, ErrorNamesAreDistinctSnakeCase) {
  std::set<std::string> names;
  for (int i = 0; i <= static_cast<int>(DecodeError::kReusedRequestId); ++i) {
    const std::string name = error_name(static_cast<DecodeError>(i));
    EXPECT_NE(name, "unknown");
    for (char c : name) EXPECT_TRUE((c >= 'a' && c <= 'z') || c == '_') << name;
    names.insert(name);
  }
  EXPECT_EQ(names.size(), static_cast<std::size_t>(DecodeError::kReusedRequestId) + 1);
  EXPECT_STREQ(error_name(DecodeError::kBadChecksum), "bad_checksum");
  EXPECT_STREQ(error_name(DecodeError::kHttpRequest), "http_request");
}

TEST(WireHeader, CheckHeaderAcceptsPlainFrames) {
  EXPECT_EQ(check_header(Header{16, 1, 0, 2013}), DecodeError::kNone);
  EXPECT_EQ(check_header(Header{kMaxMessageSize, 1, 0, 2012}), DecodeError::kNone);
  EXPECT_EQ(check_header(Header{100, 1, 0, 1}), DecodeError::kNone);
}

TEST(WireHeader, CheckHeaderBounds) {
  EXPECT_EQ(check_header(Header{15, 1, 0, 2013}), DecodeError::kTooShort);
  EXPECT_EQ(check_header(Header{0, 1, 0, 2013}), DecodeError::kTooShort);
  EXPECT_EQ(check_header(Header{-1, 1, 0, 2013}), DecodeError::kTooShort);
  EXPECT_EQ(check_header(Header{kMaxMessageSize + 1, 1, 0, 2013}), DecodeError::kTooLarge);
  EXPECT_EQ(check_header(Header{1001, 1, 0, 2013}, 1000), DecodeError::kTooLarge);
  EXPECT_EQ(check_header(Header{1000, 1, 0, 2013}, 1000), DecodeError::kNone);
  EXPECT_EQ(check_header(Header{100, 1, 0, 2010}), DecodeError::kUnknownOpcode);
  EXPECT_EQ(check_header(Header{100, 1, 0, 0}), DecodeError::kUnknownOpcode);
}

TEST(WireHeader, HttpRequestsAreRecognized) {
  EXPECT_EQ(0x20544547,
            read_header(Bytes(reinterpret_cast<const std::uint8_t*>("GET / HTTP/1.1\r\n"), 16))
                .message_length);
  for (const char* req :
       {"GET / HTTP/1.1\r\n", "POST /x HTTP/1.1", "PUT /x HTTP/1.1\r", "HEAD / HTTP/1.1\r",
        "DELETE / HTTP/1.", "OPTIONS * HTTP/1", "PATCH /a HTTP/1.", "CONNECT a:1 HTTP"}) {
    const Header h = read_header(Bytes(reinterpret_cast<const std::uint8_t*>(req), 16));
    EXPECT_EQ(check_header(h), DecodeError::kHttpRequest) << req;
  }
  // Lower case or other words are simply too large.
  const Header h =
      read_header(Bytes(reinterpret_cast<const std::uint8_t*>("get / HTTP/1.1\r\n"), 16));
  EXPECT_EQ(check_header(h), DecodeError::kTooLarge);
}

}  // namespace
}  // namespace mongoguard::wire
