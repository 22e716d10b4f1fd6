// find_all(): several top-level fields in one walk, each as find() finds it.
#include <gtest/gtest.h>

#include "policy/classify_internal.h"
#include "wire_test_util.h"

namespace mongoguard::policy::detail {
namespace {

// A document from relaxed extended JSON, kept alive with its bytes.
struct Doc {
  explicit Doc(const char* json) : bytes(wire::testing::doc(json)) {
    bson_init_static(&view, bytes.data(), bytes.size());
  }
  wire::testing::Buf bytes;
  bson_t view;
  bson_t* b = &view;
};

TEST(FindAll, FindsWhatFindFindsAndNullForWhatIsMissing) {
  Doc d(R"({"hint": "x_1", "q": {"a": 1}, "limit": 1, "other": true})");
  FoundField storage[4];
  const bson_iter_t* field[4];
  find_all(d.b, {"q", "limit", "collation", "hint"}, storage, field);
  const char* keys[] = {"q", "limit", "collation", "hint"};
  for (int i = 0; i < 4; ++i) {
    bson_iter_t it;
    const bool found = find(d.b, keys[i], &it);
    ASSERT_EQ(field[i] != nullptr, found) << keys[i];
    if (found) {
      EXPECT_STREQ(bson_iter_key(field[i]), keys[i]);
      EXPECT_EQ(bson_iter_type(field[i]), bson_iter_type(&it)) << keys[i];
      bson_iter_t copy = *field[i];
      EXPECT_EQ(bson_iter_offset(&copy), bson_iter_offset(&it)) << keys[i];
    }
  }
}

TEST(FindAll, TheFirstOfARepeatedKeyAsFindHasIt) {
  bson_t d = BSON_INITIALIZER;
  bson_append_int32(&d, "limit", -1, 0);
  bson_append_int32(&d, "limit", -1, 1);
  FoundField storage[1];
  const bson_iter_t* field[1];
  find_all(&d, {"limit"}, storage, field);
  ASSERT_NE(field[0], nullptr);
  EXPECT_EQ(bson_iter_int32(field[0]), 0);
  bson_destroy(&d);
}

TEST(FindAll, NothingInANullOrEmptyDocumentAndNoPrefixMatches) {
  FoundField storage[2];
  const bson_iter_t* field[2] = {&storage[0].it, &storage[1].it};
  find_all(nullptr, {"q", "u"}, storage, field);
  EXPECT_EQ(field[0], nullptr);
  EXPECT_EQ(field[1], nullptr);
  Doc d(R"({"qq": 1, "": 2, "U": 3})");
  find_all(d.b, {"q", "u"}, storage, field);
  EXPECT_EQ(field[0], nullptr);
  EXPECT_EQ(field[1], nullptr);
}

// find() and find_all() walk documents themselves and hand libbson only the
// element found: for any bytes at all, good or broken, they must answer
// exactly as libbson's own search does. Documents of every type, then
// thousands of copies with bytes changed at random (a fixed seed).
const char* const kKeys[] = {"q", "limit", "collation", "hint", "u", "zzz", ""};

void expect_as_libbson(const std::uint8_t* data, std::size_t size, const std::string& what) {
  bson_t d;
  if (!bson_init_static(&d, data, size)) return;
  FoundField storage[7];
  const bson_iter_t* field[7];
  find_all(&d, {"q", "limit", "collation", "hint", "u", "zzz", ""}, storage, field);
  for (std::size_t i = 0; i < 7; ++i) {
    bson_iter_t ours;
    bson_iter_t theirs;
    const bool found = find(&d, kKeys[i], &ours);
    ASSERT_EQ(found, bson_iter_init_find(&theirs, &d, kKeys[i])) << what << " " << kKeys[i];
    ASSERT_EQ(field[i] != nullptr, found) << what << " " << kKeys[i];
    if (!found) continue;
    bson_iter_t all = *field[i];
    EXPECT_EQ(bson_iter_offset(&ours), bson_iter_offset(&theirs)) << what;
    EXPECT_EQ(bson_iter_offset(&all), bson_iter_offset(&theirs)) << what;
    EXPECT_EQ(bson_iter_type(&ours), bson_iter_type(&theirs)) << what;
    // The iterators go on the same way too.
    while (bson_iter_next(&theirs)) {
      ASSERT_TRUE(bson_iter_next(&ours)) << what;
      EXPECT_EQ(bson_iter_offset(&ours), bson_iter_offset(&theirs)) << what;
    }
    EXPECT_FALSE(bson_iter_next(&ours)) << what;
  }
}

TEST(FindAll, AnswersAsLibbsonForEveryTypeAndForBrokenBytes) {
  const char* const docs[] = {
      R"({"q": {"_id": 1}, "limit": 1, "hint": "x", "collation": {"locale": "fr"}})",
      R"({"d": 1.5, "s": "str", "o": {"$oid": "0123456789abcdef01234567"}, "b": true,
          "t": {"$date": "2024-01-01T00:00:00Z"}, "n": null, "i": 7,
          "ts": {"$timestamp": {"t": 1, "i": 2}}, "l": {"$numberLong": "9"},
          "dec": {"$numberDecimal": "1.1"}, "min": {"$minKey": 1}, "max": {"$maxKey": 1},
          "bin": {"$binary": {"base64": "AAEC", "subType": "00"}}, "a": [1, 2], "u": {"$set": {}},
          "limit": 0})",
      R"({"r": {"$regularExpression": {"pattern": "a", "options": "i"}}, "q": {},
          "c": {"$code": "x"}, "hint": 1})",
      R"({"old": {"$binary": {"base64": "AAAAAA==", "subType": "02"}}, "q": 1})",
      R"({"": 1, "zzz": "last"})"};
  std::uint32_t seed = 12345;
  const auto next = [&] {
    seed = seed * 1664525u + 1013904223u;
    return seed >> 8;
  };
  for (const char* json : docs) {
    const Doc d(json);
    expect_as_libbson(d.bytes.data(), d.bytes.size(), json);
    for (int round = 0; round < 3000; ++round) {
      auto bytes = d.bytes;
      const int changes = 1 + static_cast<int>(next() % 3);
      for (int c = 0; c < changes; ++c) {
        // Past the length prefix: bson_init_static checks that one itself.
        bytes[4 + next() % (bytes.size() - 4)] = static_cast<std::uint8_t>(next());
      }
      expect_as_libbson(bytes.data(), bytes.size(),
                        std::string(json) + " #" + std::to_string(round));
      if (testing::Test::HasFatalFailure()) return;
    }
  }
}

}  // namespace
}  // namespace mongoguard::policy::detail
