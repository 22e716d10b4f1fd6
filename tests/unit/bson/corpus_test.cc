// The frame decoder's fuzz seed corpus: generated here, checked here.
//
// MG_WRITE_FUZZ_CORPUS=1 ./unit_tests --gtest_filter='WireFuzzCorpus.*'
// rewrites tests/fuzz/corpus/frame_decoder/. Files named valid_* must
// decode as client requests, reply_* as server replies, invalid_* must not.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>

#include "bson/wire.h"
#include "wire_test_util.h"

namespace mongoguard::wire {
namespace {

using namespace testing;
namespace fs = std::filesystem;

const fs::path kDir = fs::path(MG_FUZZ_CORPUS_DIR) / "frame_decoder";

std::map<std::string, Buf> seeds() {
  std::map<std::string, Buf> s;
  const Buf find =
      MsgBuilder().body(R"({"find": "users", "filter": {"a": 1}, "$db": "app"})").build();
  s["valid_op_msg_find"] = find;
  s["valid_op_msg_insert_sequence"] =
      MsgBuilder()
          .body(R"({"insert": "users", "ordered": true, "$db": "app"})")
          .sequence("documents", {R"({"_id": 1, "n": "a"})", R"({"_id": 2, "n": "b"})"})
          .build();
  s["valid_op_msg_bulkwrite_two_sequences"] =
      MsgBuilder()
          .body(R"({"bulkWrite": 1, "$db": "admin"})")
          .sequence("ops", {R"({"delete": 0, "filter": {}, "multi": true})"})
          .sequence("nsInfo", {R"({"ns": "app.users"})"})
          .build();
  s["valid_op_msg_delete_checksum"] =
      MsgBuilder(kChecksumPresent)
          .body(R"({"delete": "users", "deletes": [{"q": {}, "limit": 0}], "$db": "app"})")
          .build();
  s["valid_op_msg_more_to_come"] =
      MsgBuilder(kMoreToCome)
          .body(R"({"update": "users", "$db": "app", "writeConcern": {"w": 0}})")
          .sequence("updates", {R"({"q": {}, "u": {"$set": {"x": 1}}, "multi": true})"})
          .build();
  const Buf hello = op_query(
      "admin.$cmd", doc(R"({"isMaster": 1, "helloOk": true, "client": {"driver": {"name": "x"}},
              "compression": ["snappy", "zlib", "zstd"]})"));
  s["valid_op_query_hello"] = hello;
  s["valid_op_query_wrapped"] = op_query(
      "admin.$cmd", doc(R"({"$query": {"hello": 1}, "$readPreference": {"mode": "primary"}})"));
  Buf p;
  put_i32(p, 0);
  put_cstr(p, "app.users");
  put(p, doc(R"({"_id": 1})"));
  s["valid_op_insert"] = frame(OpCode::kInsert, p);
  p.clear();
  put_i32(p, 0);
  put_cstr(p, "app.users");
  put_i32(p, 2);
  put(p, doc("{}"));
  put(p, doc(R"({"$set": {"a": 1}})"));
  s["valid_op_update"] = frame(OpCode::kUpdate, p);
  p.clear();
  put_i32(p, 0);
  put_cstr(p, "app.users");
  put_i32(p, 0);
  put(p, doc(R"({"x": {"$gt": 1}})"));
  s["valid_op_delete"] = frame(OpCode::kDelete, p);
  p.clear();
  put_i32(p, 0);
  put_cstr(p, "app.users");
  put_i32(p, 10);
  put_i64(p, 12345);
  s["valid_op_get_more"] = frame(OpCode::kGetMore, p);
  p.clear();
  put_i32(p, 0);
  put_i32(p, 2);
  put_i64(p, 1);
  put_i64(p, 2);
  s["valid_op_kill_cursors"] = frame(OpCode::kKillCursors, p);
  for (auto [name, c] : {std::pair{"noop", CompressorId::kNoop},
                         {"snappy", CompressorId::kSnappy},
                         {"zlib", CompressorId::kZlib},
                         {"zstd", CompressorId::kZstd}}) {
    s[std::string("valid_op_compressed_") + name] = compress(bytes(find), c);
  }
  s["valid_op_compressed_query_zlib"] = compress(bytes(hello), CompressorId::kZlib);

  bson_t* reply_doc = BCON_NEW("ismaster", BCON_BOOL(true), "maxWireVersion", BCON_INT32(17), "ok",
                               BCON_DOUBLE(1.0));
  s["reply_op_reply"] = build_op_reply(reply_doc, 100, 1);
  bson_destroy(reply_doc);

  s["invalid_http_get"] =
      Buf{'G', 'E', 'T', ' ', '/', ' ', 'H', 'T', 'T', 'P', '/', '1', '.', '1', '\r', '\n'};
  s["invalid_too_short"] = Buf(find.begin(), find.begin() + 10);
  s["invalid_truncated"] = Buf(find.begin(), find.end() - 3);
  Buf unknown = find;
  unknown[12] = 0xDA;
  s["invalid_unknown_opcode"] = unknown;
  s["invalid_flag_bits"] = MsgBuilder(1u << 5).body(R"({"ping": 1, "$db": "a"})").build();
  s["invalid_section_kind"] = MsgBuilder().body(R"({"ping": 1, "$db": "a"})").raw({2}).build();
  s["invalid_bad_checksum"] =
      MsgBuilder(kChecksumPresent).body(R"({"ping": 1, "$db": "a"})").build(7, 0xFF);
  s["invalid_duplicate_sequence"] = MsgBuilder()
                                        .body(R"({"insert": "c", "$db": "a"})")
                                        .sequence("documents", {"{}"})
                                        .sequence("documents", {"{}"})
                                        .build();
  s["invalid_body_and_sequence"] = MsgBuilder()
                                       .body(R"({"insert": "c", "documents": [], "$db": "a"})")
                                       .sequence("documents", {"{}"})
                                       .build();
  Buf bad_bson = doc(R"({"ping": 1, "$db": "a"})");
  bad_bson[4] = 0x42;
  s["invalid_bson"] = MsgBuilder().body_bytes(bad_bson).build();
  s["invalid_missing_db"] = MsgBuilder().body(R"({"ping": 1})").build();
  s["invalid_nested_compression"] =
      compress(bytes(compress(bytes(find), CompressorId::kSnappy)), CompressorId::kNoop);
  s["invalid_compressed_too_large"] = op_compressed_raw(2013, 0x7FFFFFF0, 3, {0x28, 0xB5, 0x2F});
  return s;
}

TEST(WireFuzzCorpus, WriteWhenAsked) {
  if (std::getenv("MG_WRITE_FUZZ_CORPUS") == nullptr) GTEST_SKIP() << "MG_WRITE_FUZZ_CORPUS unset";
  fs::create_directories(kDir);
  for (const auto& [name, data] : seeds()) {
    std::ofstream out(kDir / name, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data.data()),
              static_cast<std::streamsize>(data.size()));
    ASSERT_TRUE(out.good()) << name;
  }
}

TEST(WireFuzzCorpus, SeedsDecodeAsNamed) {
  // Both the generated seeds and whatever is committed on disk.
  std::map<std::string, Buf> all = seeds();
  if (fs::is_directory(kDir)) {
    for (const auto& entry : fs::directory_iterator(kDir)) {
      std::ifstream in(entry.path(), std::ios::binary);
      all["file:" + entry.path().filename().string()] =
          Buf(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
  }
  int checked = 0;
  for (const auto& [key, data] : all) {
    const std::string name = key.rfind("file:", 0) == 0 ? key.substr(5) : key;
    std::vector<std::uint8_t> scratch;
    const auto d = decode_request(bytes(data), scratch);
    if (name.rfind("valid_", 0) == 0) {
      EXPECT_TRUE(d.ok()) << key << ": " << error_name(d.error);
    } else if (name.rfind("invalid_", 0) == 0) {
      EXPECT_FALSE(d.ok()) << key;
    } else if (name.rfind("reply_", 0) == 0) {
      EXPECT_TRUE(decode_op_reply(bytes(data)).ok()) << key;
      EXPECT_EQ(d.error, DecodeError::kUnknownOpcode) << key;
    } else {
      continue;
    }
    ++checked;
  }
  EXPECT_GE(checked, 30);
}

}  // namespace
}  // namespace mongoguard::wire
