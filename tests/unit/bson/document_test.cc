#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "bson/wire.h"
#include "bson/wire_internal.h"
#include "wire_test_util.h"

namespace mongoguard::wire {
namespace {

using namespace testing;

bool valid(const Buf& b) { return parse_document(bytes(b)).has_value(); }

// {"": {"": ... {} }} nested `depth` levels below the top document.
Buf nested(int depth) {
  Buf out(5 + static_cast<std::size_t>(depth) * 7);
  std::vector<std::size_t> starts;
  std::size_t pos = 0;
  for (int i = 0; i <= depth; ++i) {
    starts.push_back(pos);
    pos += 4;
    if (i < depth) {
      out[pos++] = 0x03;
      out[pos++] = 0;
    }
  }
  for (int i = depth; i >= 0; --i) {
    out[pos++] = 0;
    const auto len = static_cast<std::uint32_t>(pos - starts[static_cast<std::size_t>(i)]);
    for (int k = 0; k < 4; ++k) {
      out[starts[static_cast<std::size_t>(i)] + static_cast<std::size_t>(k)] =
          static_cast<std::uint8_t>(len >> (8 * k));
    }
  }
  return out;
}

// A hand-made document from raw element bytes.
Buf raw_doc(const Buf& elements) {
  Buf out;
  put_i32(out, static_cast<std::int32_t>(4 + elements.size() + 1));
  put(out, elements);
  out.push_back(0);
  return out;
}

TEST(WireDocument, AcceptsEveryBsonType) {
  const Buf d =
      doc(R"({"d": 1.5, "s": "str", "o": {"a": [1, {"b": null}]}, "a": [],)"
          R"("bin": {"$binary": {"base64": "AAEC", "subType": "00"}},)"
          R"("old": {"$binary": {"base64": "AAEC", "subType": "02"}},)"
          R"("u": {"$undefined": true}, "oid": {"$oid": "0123456789abcdef01234567"},)"
          R"("t": true, "f": false, "dt": {"$date": {"$numberLong": "1"}}, "n": null,)"
          R"("re": {"$regularExpression": {"pattern": "^a", "options": "i"}},)"
          R"("dbp": {"$dbPointer": {"$ref": "c", "$id": {"$oid": "0123456789abcdef01234567"}}},)"
          R"("code": {"$code": "f(1) "}, "sym": {"$symbol": "x"},)"
          R"("cws": {"$code": "g(1) ", "$scope": {"x": 1}},)"
          R"("i": 7, "ts": {"$timestamp": {"t": 1, "i": 2}}, "l": {"$numberLong": "9"},)"
          R"("dec": {"$numberDecimal": "1.5"}, "min": {"$minKey": 1}, "max": {"$maxKey": 1}})");
  ASSERT_TRUE(valid(d));
  const auto v = parse_document(bytes(d));
  EXPECT_EQ(v->size, d.size());
  EXPECT_EQ(v->data, d.data());  // a view, not a copy
  EXPECT_EQ(v->first_key(), "d");
  // Walks every top-level element.
  detail::ElementCursor cursor(*v);
  detail::Element e;
  int n = 0;
  while (cursor.next(e)) ++n;
  EXPECT_EQ(n, 23);
  ASSERT_TRUE(detail::find_element(*v, "max", e));
  EXPECT_EQ(e.type, 0x7F);
  ASSERT_TRUE(detail::find_element(*v, "s", e));
  EXPECT_EQ(e.value_size, 8u);
  EXPECT_FALSE(detail::find_element(*v, "S", e));
}

TEST(WireDocument, EmptyAndTrailing) {
  const Buf empty = doc("{}");
  ASSERT_TRUE(valid(empty));
  EXPECT_EQ(parse_document(bytes(empty))->first_key(), "");
  Buf longer = doc(R"({"x": 1})");
  longer.push_back(0xAB);  // bytes beyond the document are not part of it
  const auto v = parse_document(bytes(longer));
  ASSERT_TRUE(v);
  EXPECT_EQ(v->size, longer.size() - 1);
}

TEST(WireDocument, RejectsStructuralDamage) {
  const Buf good = doc(R"({"a": "xy", "b": {"c": 1}})");
  ASSERT_TRUE(valid(good));
  for (std::size_t cut = 0; cut < good.size(); ++cut) {
    EXPECT_FALSE(valid(Buf(good.begin(), good.begin() + static_cast<long>(cut)))) << cut;
  }
  Buf bad = good;
  bad.back() = 1;  // no terminator
  EXPECT_FALSE(valid(bad));
  bad = good;
  bad[0] = 4;  // length below the minimum
  EXPECT_FALSE(valid(bad));
  EXPECT_FALSE(valid(Buf{5, 0, 0, 0, 1}));
  EXPECT_TRUE(valid(Buf{5, 0, 0, 0, 0}));
  // Unknown element type.
  EXPECT_FALSE(valid(raw_doc({0x14, 'a', 0})));
  EXPECT_FALSE(valid(raw_doc({0x42, 'a', 0})));
  // Key without NUL before the end.
  EXPECT_FALSE(valid(raw_doc({0x0A, 'a'})));
  // Bool other than 0/1.
  EXPECT_TRUE(valid(raw_doc({0x08, 'a', 0, 1})));
  EXPECT_FALSE(valid(raw_doc({0x08, 'a', 0, 2})));
  // String: zero length, missing NUL, length past the end.
  EXPECT_TRUE(valid(raw_doc({0x02, 'a', 0, 1, 0, 0, 0, 0})));
  EXPECT_FALSE(valid(raw_doc({0x02, 'a', 0, 0, 0, 0, 0})));
  EXPECT_FALSE(valid(raw_doc({0x02, 'a', 0, 1, 0, 0, 0, 'x'})));
  EXPECT_FALSE(valid(raw_doc({0x02, 'a', 0, 9, 0, 0, 0, 'x', 0})));
  EXPECT_FALSE(valid(raw_doc({0x02, 'a', 0, 0xFF, 0xFF, 0xFF, 0xFF, 'x', 0})));
  // Fixed-size value running into the terminator.
  EXPECT_FALSE(valid(raw_doc({0x10, 'a', 0, 1, 0, 0})));
  EXPECT_FALSE(valid(raw_doc({0x01, 'a', 0, 1, 0, 0, 0, 0, 0, 0})));
  // Binary: negative length, old subtype with inconsistent inner length.
  EXPECT_FALSE(valid(raw_doc({0x05, 'a', 0, 0xFF, 0xFF, 0xFF, 0xFF, 0})));
  EXPECT_TRUE(valid(raw_doc({0x05, 'a', 0, 4, 0, 0, 0, 2, 0, 0, 0, 0})));
  EXPECT_FALSE(valid(raw_doc({0x05, 'a', 0, 4, 0, 0, 0, 2, 1, 0, 0, 0})));
  // Regex with one cstring only.
  EXPECT_FALSE(valid(raw_doc({0x0B, 'a', 0, 'x', 0})));
  // Nested document whose length overruns its parent or lacks a terminator.
  EXPECT_FALSE(valid(raw_doc({0x03, 'a', 0, 6, 0, 0, 0, 0})));
  EXPECT_FALSE(valid(raw_doc({0x03, 'a', 0, 5, 0, 0, 0, 1})));
  EXPECT_FALSE(valid(raw_doc({0x03, 'a', 0, 4, 0, 0, 0, 0})));
  EXPECT_TRUE(valid(raw_doc({0x03, 'a', 0, 5, 0, 0, 0, 0})));
  // Nested document ending early: its terminator before its declared end.
  EXPECT_FALSE(valid(raw_doc({0x04, 'a', 0, 7, 0, 0, 0, 0, 0x0A, 0})));
}

TEST(WireDocument, CodeWithScope) {
  const Buf good = doc(R"({"c": {"$code": "g(1) ", "$scope": {"x": 1}}})");
  ASSERT_TRUE(valid(good));
  // Corrupt the scope's inner element type.
  Buf bad = good;
  bad[bad.size() - 2 - 4 - 2 - 1] = 0x42;
  EXPECT_FALSE(valid(bad));
  // Total length that disagrees with code + scope.
  bad = good;
  bad[7] = static_cast<std::uint8_t>(bad[7] + 1);
  EXPECT_FALSE(valid(bad));
}

TEST(WireDocument, DepthIsBoundedWithoutRecursion) {
  EXPECT_TRUE(valid(nested(150)));
  EXPECT_TRUE(valid(nested(detail::kMaxBsonDepth - 1)));
  EXPECT_FALSE(valid(nested(detail::kMaxBsonDepth)));
  // libbson's recursive validator overflows the stack on this one.
  EXPECT_FALSE(valid(nested(200000)));
}

TEST(WireDocument, CorruptionAfterInvalidUtf8IsStillFound) {
  // bson_validate() in libbson 1.23 stops at the bad string and says "valid".
  const Buf d = raw_doc({0x02, 'a', 0, 2, 0, 0, 0, 0xFF, 0, 0x42, 'b', 0, 1, 2, 3});
  EXPECT_FALSE(valid(d));
  // Invalid UTF-8 alone is accepted: the server, not the proxy, judges text.
  EXPECT_TRUE(valid(raw_doc({0x02, 'a', 0, 2, 0, 0, 0, 0xFF, 0})));
}

TEST(WireDocument, SizeLimit) {
  Buf big;
  // length, type, "b\0", binary length, subtype, payload, terminator
  const std::size_t payload = static_cast<std::size_t>(kMaxBsonObjectSize) + 1 - 13;
  put_i32(big, 0);
  put_u8(big, 0x05);
  put_cstr(big, "b");
  put_i32(big, static_cast<std::int32_t>(payload));
  put_u8(big, 0);
  big.resize(big.size() + payload);
  big.push_back(0);
  const auto set_len = [](Buf& b) {
    const auto n = static_cast<std::uint32_t>(b.size());
    for (int i = 0; i < 4; ++i)
      b[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(n >> (8 * i));
  };
  set_len(big);
  EXPECT_EQ(big.size(), static_cast<std::size_t>(kMaxBsonObjectSize) + 1);
  EXPECT_FALSE(valid(big));
  big.erase(big.end() - 2);
  big[7] = static_cast<std::uint8_t>(big[7] - 1);  // binary length low byte
  set_len(big);
  ASSERT_EQ(big.size(), static_cast<std::size_t>(kMaxBsonObjectSize));
  EXPECT_TRUE(valid(big));
}

TEST(WireDocument, AsBsonAndJson) {
  const Buf d = doc(R"({"hello": 1, "s": "x"})");
  const DocView v = *parse_document(bytes(d));
  bson_t b = v.as_bson();
  EXPECT_EQ(bson_get_data(&b), d.data());
  EXPECT_EQ(b.len, d.size());
  bson_iter_t it;
  ASSERT_TRUE(bson_iter_init_find(&it, &b, "s"));
  EXPECT_STREQ(bson_iter_utf8(&it, nullptr), "x");
  bson_t c;
  EXPECT_TRUE(v.as_bson(&c));
  EXPECT_EQ(bson_get_data(&c), d.data());
  EXPECT_FALSE(DocView{}.as_bson(&c));
  EXPECT_EQ(v.to_json(), R"({ "hello" : 1, "s" : "x" })");
  EXPECT_EQ(DocView{}.to_json(), "");
  EXPECT_EQ(DocView{}.first_key(), "");
}

TEST(WireDocument, SequencesSplitDocuments) {
  Buf cat = doc(R"({"a": 1})");
  put(cat, doc(R"({"b": 2})"));
  put(cat, doc("{}"));
  DocumentSequence seq{"documents", bytes(cat)};
  EXPECT_EQ(seq.count(), 3u);
  const auto docs = seq.docs();
  ASSERT_EQ(docs.size(), 3u);
  EXPECT_EQ(docs[0].first_key(), "a");
  EXPECT_EQ(docs[1].first_key(), "b");
  EXPECT_EQ(docs[2].size, 5u);
  EXPECT_EQ(DocumentSequence{}.count(), 0u);
  EXPECT_TRUE(DocumentSequence{}.docs().empty());
}

// {"k0": 0, ..., "k<n-1>": n-1}, with key `dup_of`'s name repeated at
// position `at` when both are given.
Buf keyed(int n, int dup_of = -1, int at = -1) {
  std::string json = "{";
  for (int i = 0; i < n; ++i) {
    const int name = i == at ? dup_of : i;
    json +=
        (i ? ", " : "") + std::string("\"k") + std::to_string(name) + "\": " + std::to_string(i);
  }
  return doc(json + "}");
}

TEST(WireDocument, DuplicateKeysFoundAtEveryPositionAndSize) {
  // Small documents are checked in place, large ones by sorting: every pair
  // of positions, on both sides of the switch and across it.
  for (int n = 1; n <= 40; ++n) {
    const Buf distinct = keyed(n);
    EXPECT_FALSE(has_duplicate_keys(*parse_document(bytes(distinct)))) << n;
    for (int at = 1; at < n; ++at) {
      for (int of = 0; of < at; ++of) {
        const Buf twice = keyed(n, of, at);
        EXPECT_TRUE(has_duplicate_keys(*parse_document(bytes(twice))))
            << n << " " << of << " " << at;
      }
    }
  }
  // Keys that differ only past a shared prefix, or in length, are distinct.
  const Buf prefixes = doc(R"({"a": 1, "ab": 2, "abc": 3, "b": 4})");
  EXPECT_FALSE(has_duplicate_keys(*parse_document(bytes(prefixes))));
  // Deep: a nested duplicate in a document of many keys, inside an array.
  const Buf deep = doc(R"({"q": [{"x": 1}, {"a": 1, "b": 2, "a": 3}], "k1": 1, "k2": 2})");
  EXPECT_FALSE(has_duplicate_keys(*parse_document(bytes(deep))));
  EXPECT_TRUE(has_duplicate_keys(*parse_document(bytes(deep)), /*deep=*/true));
}

// The word-at-a-time NUL scan must find what memchr finds: the first NUL
// at every offset of ranges of every length, from every alignment, with
// later NULs and high bytes (0x80, 0x01) around it, and none when absent
// even with a NUL right after the range.
TEST(WireDocument, FindNulAgreesWithMemchr) {
  std::vector<std::uint8_t> buf(64);
  for (std::size_t start = 0; start < 8; ++start) {
    for (std::size_t len = 0; len + start <= 48; ++len) {
      for (std::size_t nul = 0; nul <= len; ++nul) {  // nul == len: none in range
        for (std::size_t i = 0; i < buf.size(); ++i) buf[i] = (i % 3 == 0) ? 0x80 : 0x01;
        if (nul < len) buf[start + nul] = 0;
        if (nul + 1 < len) buf[start + nul + 1] = 0;
        buf[start + len] = 0;  // just past the range: must never be reported
        const auto* p = buf.data() + start;
        const auto* expect = static_cast<const std::uint8_t*>(std::memchr(p, 0, len));
        EXPECT_EQ(detail::find_nul(p, p + len), expect) << start << " " << len << " " << nul;
      }
    }
  }
}

// Keys of one length with the same first and last bytes share both their
// bits in the set's mask: they must still be compared whole, before and after the
// switch to sorting.
TEST(WireDocument, KeysSharingAMaskBitAreComparedWhole) {
  const Buf same_ends = doc(R"({"axb": 1, "ayb": 2, "azb": 3, "": 4, "b": 5})");
  EXPECT_FALSE(has_duplicate_keys(*parse_document(bytes(same_ends))));
  const Buf repeated = doc(R"({"axb": 1, "ayb": 2, "azb": 3, "ayb": 4})");
  EXPECT_TRUE(has_duplicate_keys(*parse_document(bytes(repeated))));
  const Buf empty_twice = doc(R"({"": 1, "a": 2, "": 3})");
  EXPECT_TRUE(has_duplicate_keys(*parse_document(bytes(empty_twice))));
  // 64 keys of one length and the same ends: every bit is shared.
  std::string json = "{";
  for (int i = 0; i < 64; ++i) {
    json += (i ? ", " : "") + std::string("\"a") + static_cast<char>('0' + i % 10) +
            static_cast<char>('0' + i / 10) + "z\": " + std::to_string(i);
  }
  EXPECT_FALSE(has_duplicate_keys(*parse_document(bytes(doc(json + "}")))));
  EXPECT_TRUE(has_duplicate_keys(*parse_document(bytes(doc(json + R"(, "a00z": 0})")))));
  const Buf early = doc(R"({"a00z": 0, "a10z": 1, "a00z": 2})");
  EXPECT_TRUE(has_duplicate_keys(*parse_document(bytes(early))));
}

// The one walk decode uses (repeats and one key together) must say what
// the two separate checks say, for every document of the test above and for
// the looked-for key at every position, absent, and itself repeated.
TEST(WireDocument, OneWalkAgreesWithTheSeparateChecks) {
  auto agree = [](const Buf& b, std::string_view key) {
    const auto v = parse_document(bytes(b));
    ASSERT_TRUE(v);
    detail::Element one;
    bool have = false;
    const bool repeated = detail::duplicate_keys_finding(*v, key, one, have);
    EXPECT_EQ(repeated, has_duplicate_keys(*v)) << key;
    if (repeated) return;
    detail::Element two;
    EXPECT_EQ(have, detail::find_element(*v, key, two)) << key;
    if (have) {
      EXPECT_EQ(one.value, two.value) << key;
    }
  };
  for (int n = 1; n <= 40; ++n) {
    const std::vector<std::string> keys{"k0", "k" + std::to_string(n / 2),
                                        "k" + std::to_string(n - 1), "absent"};
    for (const std::string& key : keys) {
      agree(keyed(n), key);
      for (int at = 1; at < n; ++at) {
        for (int of = 0; of < at; ++of) agree(keyed(n, of, at), key);
      }
    }
  }
}

}  // namespace
}  // namespace mongoguard::wire
