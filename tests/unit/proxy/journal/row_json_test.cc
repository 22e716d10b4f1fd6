// Rows as the admin API carries them: exact BSON through base64 and back,
// and an update whose after-image is not read yet (an empty document)
// rendered without touching libbson with a null pointer.
#include "proxy/journal/row_json.h"

#include <gtest/gtest.h>

#include "proxy/journal/journal_test_util.h"

namespace mongoguard::journal {
namespace {

using testing::bson_of;

TEST(RowJson, Base64RoundTripsEveryPaddingLength) {
  for (std::size_t n = 0; n < 8; ++n) {
    Bson bytes;
    for (std::size_t i = 0; i < n; ++i) bytes.push_back(static_cast<std::uint8_t>(0xf0 + i));
    const auto text = base64_encode(bytes);
    EXPECT_EQ(text.size() % 4, 0u);
    auto back = base64_decode(text);
    ASSERT_TRUE(back) << text;
    EXPECT_EQ(*back, bytes) << text;
  }
  EXPECT_FALSE(base64_decode("abc"));
  EXPECT_FALSE(base64_decode("a$c="));
}

Row sample() {
  Row row;
  row.id = 7;
  row.entry_id = 3;
  row.time_ms = 1'700'000'000'123;
  row.client = "127.0.0.1:5000";
  row.app = "<script>x</script>";
  row.rule = "budget";
  row.op = Operation::kUpdate;
  row.ns = "app.family";
  row.filter = bson_of(R"({"kind": "odd"})");
  row.doc_id = bson_of(R"({"_id": {"$numberLong": "9"}})");
  row.before = bson_of(R"({"_id": {"$numberLong": "9"}, "d": {"$numberDouble": "-0.0"}})");
  row.after = bson_of(R"({"_id": {"$numberLong": "9"}, "d": {"$numberDouble": "1.5"}})");
  row.hold_id = 12;
  row.restored_at_ms = 1'700'000'001'000;
  row.restored_by = "alice";
  return row;
}

TEST(RowJson, ARowComesBackByteForByte) {
  const auto row = sample();
  const auto json = row_json(row);
  EXPECT_EQ(json["before"]["d"], -0.0);
  EXPECT_EQ(json["app"], "<script>x</script>");  // data, escaped by whoever renders it
  std::string error;
  auto back = row_from_json(nlohmann::json::parse(json.dump()), error);
  ASSERT_TRUE(back) << error;
  EXPECT_EQ(back->before, row.before);
  EXPECT_EQ(back->after, row.after);
  EXPECT_EQ(back->doc_id, row.doc_id);
  EXPECT_EQ(back->filter, row.filter);
  EXPECT_EQ(back->op, Operation::kUpdate);
  EXPECT_EQ(back->id, 7);
  EXPECT_EQ(back->entry_id, 3);
  EXPECT_EQ(back->hold_id, 12u);
  EXPECT_EQ(back->restored_at_ms, row.restored_at_ms);
  EXPECT_EQ(back->restored_by, "alice");
}

TEST(RowJson, AnAfterImageNotReadYetStaysUnknown) {
  auto row = sample();
  row.after = Bson{};  // the placeholder until the after-read answers
  const auto json = row_json(row);
  EXPECT_EQ(json["after_bson"], "");
  std::string error;
  auto back = row_from_json(json, error);
  ASSERT_TRUE(back) << error;
  ASSERT_TRUE(back->after);
  EXPECT_TRUE(back->after->empty());
}

TEST(RowJson, ARowWithoutItsBsonIsRefused) {
  auto json = row_json(sample());
  json.erase("before_bson");
  std::string error;
  EXPECT_FALSE(row_from_json(json, error));
  EXPECT_NE(error.find("before_bson"), std::string::npos);
  json = row_json(sample());
  json["id_bson"] = base64_encode(Bson{1, 2, 3, 4, 5, 6});
  EXPECT_FALSE(row_from_json(json, error));
}

TEST(RowJson, TimeBoundsAreDurationsAgoOrIsoTimes) {
  EXPECT_EQ(parse_time_bound("10m", 1'000'000), 1'000'000 - 600'000);
  EXPECT_EQ(parse_time_bound("2026-12-01T10:00:00Z", 0), 1'796'119'200'000);
  EXPECT_EQ(parse_time_bound("2026-12-01T10:00:00.25Z", 0), 1'796'119'200'250);
  EXPECT_FALSE(parse_time_bound("yesterday", 0));
  EXPECT_FALSE(parse_time_bound("2026-12-01T10:00:00", 0));
  Query query;
  EXPECT_EQ(query_from_params({{"ns", "app.family"}, {"hold", "4"}, {"limit", "10"}}, 0, query),
            "");
  EXPECT_EQ(query.ns, "app.family");
  EXPECT_EQ(query.hold_id, 4u);
  EXPECT_EQ(query.limit, 10u);
  EXPECT_NE(query_from_params({{"since", "soon"}}, 0, query), "");
  EXPECT_NE(query_from_params({{"hold", "-1"}}, 0, query), "");
}

}  // namespace
}  // namespace mongoguard::journal
