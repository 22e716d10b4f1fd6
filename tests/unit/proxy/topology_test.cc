#include <gtest/gtest.h>

#include "proxy/topology.h"

namespace mongoguard::proxy {
namespace {

TopologyMap three_members() {
  TopologyMap map;
  map.set_name = "rs0";
  map.add("DB1.internal:27017", "127.0.0.1:27017");
  map.add("db2.internal:27017", "127.0.0.1:27018");
  map.add("db3.internal:27017", "127.0.0.1:27019");
  return map;
}

bson_t* hello_reply() {
  return BCON_NEW("isWritablePrimary", BCON_BOOL(true), "setName", BCON_UTF8("rs0"), "setVersion",
                  BCON_INT32(4), "hosts", "[", BCON_UTF8("db1.internal:27017"),
                  BCON_UTF8("db2.internal:27017"), BCON_UTF8("rogue.internal:27017"), "]",
                  "passives", "[", BCON_UTF8("db3.internal:27017"), "]", "primary",
                  BCON_UTF8("db1.internal:27017"), "me", BCON_UTF8("db2.internal:27017"), "ok",
                  BCON_DOUBLE(1.0));
}

std::string field(const bson_t* doc, const char* path) {
  bson_iter_t it, found;
  if (!bson_iter_init(&it, doc) || !bson_iter_find_descendant(&it, path, &found)) return "";
  return BSON_ITER_HOLDS_UTF8(&found) ? bson_iter_utf8(&found, nullptr) : "";
}

TEST(TopologyTest, MapsMembersCaseInsensitively) {
  auto map = three_members();
  EXPECT_EQ(*map.map("db1.INTERNAL:27017"), "127.0.0.1:27017");
  EXPECT_FALSE(map.map("db4.internal:27017"));
}

TEST(TopologyTest, RewritesOpMsgHelloAndDropsUnknownMembers) {
  auto map = three_members();
  bson_t* reply = hello_reply();
  auto message = wire::build_op_msg(reply, 40, 7, wire::kChecksumPresent | wire::kMoreToCome);
  bson_destroy(reply);
  std::vector<std::string> dropped;
  auto rewritten = rewrite_hello_reply(message, map, dropped);
  ASSERT_TRUE(rewritten);
  EXPECT_EQ(dropped, std::vector<std::string>{"rogue.internal:27017"});
  auto msg = wire::decode_op_msg(*rewritten);
  ASSERT_TRUE(msg.ok());
  EXPECT_EQ(msg.view.flags & wire::kChecksumPresent, 0u) << "checksum dropped after an edit";
  EXPECT_TRUE(msg.view.flags & wire::kMoreToCome) << "a streamed hello stays streamed";
  auto header = wire::read_header(*rewritten);
  EXPECT_EQ(header.request_id, 40);
  EXPECT_EQ(header.response_to, 7);
  bson_t body;
  ASSERT_TRUE(msg.view.body.as_bson(&body));
  EXPECT_EQ(field(&body, "hosts.0"), "127.0.0.1:27017");
  EXPECT_EQ(field(&body, "hosts.1"), "127.0.0.1:27018");
  EXPECT_EQ(field(&body, "hosts.2"), "");
  EXPECT_EQ(field(&body, "passives.0"), "127.0.0.1:27019");
  EXPECT_EQ(field(&body, "primary"), "127.0.0.1:27017");
  EXPECT_EQ(field(&body, "me"), "127.0.0.1:27018");
  EXPECT_EQ(field(&body, "setName"), "rs0");
}

TEST(TopologyTest, RewritesCompressedAndLegacyReplies) {
  auto map = three_members();
  bson_t* reply = hello_reply();
  auto plain = wire::build_op_msg(reply, 1, 2);
  auto compressed = wire::compress(plain, wire::CompressorId::kZlib);
  auto legacy = wire::build_op_reply(reply, 3, 4);
  bson_destroy(reply);
  std::vector<std::string> dropped;
  auto a = rewrite_hello_reply(compressed, map, dropped);
  ASSERT_TRUE(a);
  EXPECT_EQ(wire::read_header(*a).op_code, static_cast<std::int32_t>(wire::OpCode::kMsg));
  auto b = rewrite_hello_reply(legacy, map, dropped);
  ASSERT_TRUE(b);
  auto decoded = wire::decode_op_reply(*b);
  ASSERT_TRUE(decoded.ok());
  bson_t body;
  ASSERT_TRUE(decoded.view.docs().front().as_bson(&body));
  EXPECT_EQ(field(&body, "me"), "127.0.0.1:27018");
}

TEST(TopologyTest, LeavesRepliesWithoutMembersAlone) {
  auto map = three_members();
  bson_t* mongos = BCON_NEW("isWritablePrimary", BCON_BOOL(true), "msg", BCON_UTF8("isdbgrid"),
                            "ok", BCON_DOUBLE(1.0));
  auto message = wire::build_op_msg(mongos, 1, 2);
  bson_destroy(mongos);
  std::vector<std::string> dropped;
  EXPECT_FALSE(rewrite_hello_reply(message, map, dropped));
}

}  // namespace
}  // namespace mongoguard::proxy
