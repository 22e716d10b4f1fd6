#include <gtest/gtest.h>

#include "proxy/handshake.h"

namespace mongoguard::proxy {
namespace {

std::vector<std::string> compressors_in(const std::vector<std::uint8_t>& message) {
  std::vector<std::uint8_t> scratch;
  auto decoded = wire::decode_request(message, scratch);
  EXPECT_TRUE(decoded.ok());
  bson_t body;
  if (decoded.view.msg) {
    EXPECT_TRUE(decoded.view.msg->body.as_bson(&body));
  } else {
    EXPECT_TRUE(decoded.view.query->query.as_bson(&body));
  }
  std::vector<std::string> out;
  bson_iter_t it, child;
  if (bson_iter_init_find(&it, &body, "compression") && bson_iter_recurse(&it, &child)) {
    while (bson_iter_next(&child)) out.emplace_back(bson_iter_utf8(&child, nullptr));
  }
  return out;
}

TEST(HandshakeTest, TrimsUnknownCompressorsFromOpMsgHello) {
  bson_t* hello =
      BCON_NEW("hello", BCON_INT32(1), "compression", "[", BCON_UTF8("lz4"), BCON_UTF8("zlib"),
               BCON_UTF8("bogus"), BCON_UTF8("zstd"), "]", "$db", BCON_UTF8("admin"));
  auto message = wire::build_op_msg(hello, 9, 0, wire::kChecksumPresent);
  bson_destroy(hello);
  std::vector<std::uint8_t> scratch;
  auto decoded = wire::decode_request(message, scratch);
  ASSERT_TRUE(decoded.ok());
  std::vector<std::string> removed;
  auto trimmed = trim_hello_compressors(decoded.view, removed);
  ASSERT_TRUE(trimmed);
  EXPECT_EQ(removed, (std::vector<std::string>{"lz4", "bogus"}));
  EXPECT_EQ(compressors_in(*trimmed), (std::vector<std::string>{"zlib", "zstd"}));
  EXPECT_EQ(wire::read_header(*trimmed).request_id, 9);
}

TEST(HandshakeTest, TrimsLegacyIsMasterAndLeavesKnownListsAlone) {
  bson_t* query = BCON_NEW("isMaster", BCON_INT32(1), "compression", "[", BCON_UTF8("snappy"),
                           BCON_UTF8("lz4"), "]");
  // OP_QUERY admin.$cmd, built by hand: flags, name, skip, numberToReturn, query.
  std::vector<std::uint8_t> message(16, 0);
  auto put32 = [&](std::int32_t v) {
    for (int i = 0; i < 4; ++i) message.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  };
  put32(0);
  for (char c : std::string("admin.$cmd")) message.push_back(static_cast<std::uint8_t>(c));
  message.push_back(0);
  put32(0);
  put32(-1);
  message.insert(message.end(), bson_get_data(query), bson_get_data(query) + query->len);
  bson_destroy(query);
  wire::Header header{static_cast<std::int32_t>(message.size()), 5, 0,
                      static_cast<std::int32_t>(wire::OpCode::kQuery)};
  wire::write_header(message.data(), header);
  std::vector<std::uint8_t> scratch;
  auto decoded = wire::decode_request(message, scratch);
  ASSERT_TRUE(decoded.ok());
  std::vector<std::string> removed;
  auto trimmed = trim_hello_compressors(decoded.view, removed);
  ASSERT_TRUE(trimmed);
  EXPECT_EQ(compressors_in(*trimmed), (std::vector<std::string>{"snappy"}));

  bson_t* known = BCON_NEW("hello", BCON_INT32(1), "compression", "[", BCON_UTF8("zstd"), "]",
                           "$db", BCON_UTF8("admin"));
  auto plain = wire::build_op_msg(known, 1, 0);
  bson_destroy(known);
  auto again = wire::decode_request(plain, scratch);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(trim_hello_compressors(again.view, removed));
}

}  // namespace
}  // namespace mongoguard::proxy
