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

}  // namespace
}  // namespace mongoguard::policy::detail
