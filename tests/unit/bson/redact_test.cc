#include "bson/redact.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

namespace mongoguard::wire {
namespace {

struct Doc {
  explicit Doc(const char* json) {
    bson_error_t error;
    b = bson_new_from_json(reinterpret_cast<const std::uint8_t*>(json), -1, &error);
    if (b == nullptr) throw std::runtime_error(error.message);
  }
  ~Doc() { bson_destroy(b); }
  Doc(const Doc&) = delete;
  Doc& operator=(const Doc&) = delete;
  bson_t* b;
};

TEST(RedactedJson, KeepsKeysAndOperators) {
  Doc d(R"({"name": "alice", "age": {"$gt": 30}})");
  EXPECT_EQ(redacted_json(d.b), R"({ "name" : "<string>", "age" : { "$gt" : "<int32>" } })");
}

TEST(RedactedJson, EveryType) {
  Doc d(R"({"d": 1.5, "l": {"$numberLong": "5"}, "b": true, "n": null,
            "o": {"$oid": "0123456789abcdef01234567"}, "t": {"$date": "2024-01-01T00:00:00Z"},
            "r": {"$regularExpression": {"pattern": "a", "options": ""}},
            "bin": {"$binary": {"base64": "AA==", "subType": "00"}},
            "dec": {"$numberDecimal": "1.1"}, "min": {"$minKey": 1}, "max": {"$maxKey": 1},
            "ts": {"$timestamp": {"t": 1, "i": 1}}, "code": {"$code": "x"}})");
  EXPECT_EQ(redacted_json(d.b),
            R"({ "d" : "<double>", "l" : "<int64>", "b" : "<bool>", "n" : "<null>", )"
            R"("o" : "<objectId>", "t" : "<date>", "r" : "<regex>", "bin" : "<binary>", )"
            R"("dec" : "<decimal128>", "min" : "<minKey>", "max" : "<maxKey>", )"
            R"("ts" : "<timestamp>", "code" : "<javascript>" })");
}

TEST(RedactedJson, ArraysAndNesting) {
  Doc d(R"({"$or": [{"a": "x"}, {"b": {"$in": [1, "y", [2]]}}], "e": {}, "f": []})");
  EXPECT_EQ(redacted_json(d.b),
            R"({ "$or" : [ { "a" : "<string>" }, { "b" : { "$in" : [ "<int32>", "<string>", )"
            R"([ "<int32>" ] ] } } ], "e" : {  }, "f" : [  ] })");
}

TEST(RedactedJson, NoValueSurvives) {
  Doc d(R"({"email": "secret@example.com", "deep": {"x": {"y": ["token-123"]}}})");
  const std::string out = redacted_json(d.b);
  EXPECT_EQ(out.find("secret"), std::string::npos);
  EXPECT_EQ(out.find("token"), std::string::npos);
}

TEST(RedactedJson, NullAndEmpty) {
  EXPECT_EQ(redacted_json(nullptr), "");
  EXPECT_EQ(relaxed_json(nullptr), "");
  bson_t empty = BSON_INITIALIZER;
  EXPECT_EQ(redacted_json(&empty), "{ }");
  EXPECT_EQ(relaxed_json(&empty), "{ }");
}

TEST(RelaxedJson, Unredacted) {
  Doc d(R"({"a": 1, "b": "x", "c": {"$numberLong": "5"}})");
  EXPECT_EQ(relaxed_json(d.b), R"({ "a" : 1, "b" : "x", "c" : 5 })");
}

TEST(RedactDocument, SameShapeAsTheJson) {
  Doc d(R"({"email": "a@b.c", "$or": [{"n": 1}, {"t": {"$in": ["x", 2]}}]})");
  bson_t out = BSON_INITIALIZER;
  ASSERT_TRUE(redact_document(d.b, &out));
  EXPECT_EQ(relaxed_json(&out), redacted_json(d.b));
  EXPECT_EQ(relaxed_json(&out), R"({ "email" : "<string>", "$or" : [ { "n" : "<int32>" }, )"
                                R"({ "t" : { "$in" : [ "<string>", "<int32>" ] } } ] })");
  bson_destroy(&out);
  bson_t untouched = BSON_INITIALIZER;
  EXPECT_FALSE(redact_document(nullptr, &untouched));
  EXPECT_TRUE(bson_empty(&untouched));
  bson_destroy(&untouched);
}

// The fast writer must give libbson's bytes exactly, or decline.
void expect_same_as_libbson(const bson_t* doc) {
  const auto plain = relaxed_json_plain(doc);
  ASSERT_TRUE(plain.has_value()) << relaxed_json(doc);
  EXPECT_EQ(*plain, relaxed_json(doc));
}

TEST(RelaxedJsonPlain, SameBytesAsLibbson) {
  Doc d(R"({"s": "a b/c:d", "i": -7, "l": {"$numberLong": "-9000000000"}, "t": true,
            "f": false, "n": null, "e": {}, "a": [], "nested": {"x": [1, "y", {"z": null}]},
            "unicode": "\u00e9t\u00e9 \u6771"})");
  expect_same_as_libbson(d.b);
  bson_t empty = BSON_INITIALIZER;
  expect_same_as_libbson(&empty);
  for (std::int64_t ms :
       {0LL, 1LL, 999LL, 1000LL, 1764105202626LL, 1764105202000LL, 253402300799999LL}) {
    bson_t dated = BSON_INITIALIZER;
    bson_append_date_time(&dated, "time", -1, ms);
    expect_same_as_libbson(&dated);
    bson_destroy(&dated);
  }
}

TEST(RelaxedJsonPlain, DeclinesWhatNeedsLibbson) {
  for (const char* json :
       {R"({"q": "say \"hi\""})", R"({"b": "back\\slash"})", R"({"nl": "a\nb"})", R"({"d": 1.5})",
        R"({"k\"ey": 1})", R"({"o": {"$oid": "0123456789abcdef01234567"}})",
        R"({"old": {"$date": {"$numberLong": "-1"}}})"}) {
    Doc d(json);
    EXPECT_FALSE(relaxed_json_plain(d.b).has_value()) << json;
  }
  EXPECT_FALSE(relaxed_json_plain(nullptr).has_value());
  // Not UTF-8, in a value or in a key: libbson refuses it, so must this.
  bson_t bad = BSON_INITIALIZER;
  bson_append_utf8(&bad, "k", 1, "\xff\xfe", 2);
  EXPECT_EQ(relaxed_json(&bad), "");
  EXPECT_FALSE(relaxed_json_plain(&bad).has_value());
  bson_destroy(&bad);
  bson_t bad_key = BSON_INITIALIZER;
  bson_append_int32(&bad_key, "k\xc3", 2, 1);
  EXPECT_FALSE(relaxed_json_plain(&bad_key).has_value());
  bson_destroy(&bad_key);
  Doc accented(R"({"caf\u00e9": "na\u00efve"})");
  EXPECT_TRUE(relaxed_json_plain(accented.b).has_value());
}

// The redacted fast writer: redacted_json()'s bytes appended, or nothing.
TEST(RedactedJsonPlain, SameBytesAsTheRedactedDocument) {
  for (const char* json :
       {R"({"name": "alice", "age": {"$gt": 30}})",
        R"({"$or": [{"a": "x"}, {"b": {"$in": [1, "y", [2]]}}], "e": {}, "f": []})",
        R"({"q": "say \"hi\"", "d": 1.5, "o": {"$oid": "0123456789abcdef01234567"}})",
        R"({"t": {"$date": {"$numberLong": "-1"}}, "r": {"$regex": "^a", "$options": "i"}})",
        R"({"caf\u00e9": {"$exists": true}})", R"({})"}) {
    Doc d(json);
    std::string out = "before:";
    ASSERT_TRUE(append_redacted_json_plain(d.b, out)) << json;
    EXPECT_EQ(out, "before:" + redacted_json(d.b)) << json;
  }
  bson_t empty = BSON_INITIALIZER;
  std::string out;
  ASSERT_TRUE(append_redacted_json_plain(&empty, out));
  EXPECT_EQ(out, "{ }");
}

TEST(RedactedJsonPlain, DeclinesKeysToEscapeAndLeavesTheTextAsItWas) {
  for (const char* json : {R"({"k\"ey": 1})", R"({"a": {"back\\slash": 1}})"}) {
    Doc d(json);
    std::string out = "kept";
    EXPECT_FALSE(append_redacted_json_plain(d.b, out)) << json;
    EXPECT_EQ(out, "kept");
  }
  bson_t bad_key = BSON_INITIALIZER;
  bson_append_int32(&bad_key, "k\xc3", 2, 1);
  std::string out = "kept";
  EXPECT_FALSE(append_redacted_json_plain(&bad_key, out));
  EXPECT_EQ(out, "kept");
  EXPECT_FALSE(append_redacted_json_plain(nullptr, out));
  bson_destroy(&bad_key);
}

TEST(TypePlaceholder, Names) {
  EXPECT_EQ(type_placeholder(BSON_TYPE_UTF8), "<string>");
  EXPECT_EQ(type_placeholder(BSON_TYPE_INT32), "<int32>");
  EXPECT_EQ(type_placeholder(static_cast<bson_type_t>(0x42)), "<unknown>");
}

}  // namespace
}  // namespace mongoguard::wire
