#include "proxy/journal/export.h"

#include <bson/bson.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "bson/wire.h"
#include "proxy/journal/journal_test_util.h"

namespace mongoguard::journal {
namespace {

using testing::bson_of;
using testing::TempFolder;

Row row(std::int64_t id, const std::string& ns, int doc_id, const std::string& name,
        std::int64_t time_ms) {
  Row r;
  r.id = id;
  r.time_ms = time_ms;
  r.ns = ns;
  r.doc_id = bson_of("{\"_id\": " + std::to_string(doc_id) + "}");
  r.before = bson_of("{\"_id\": " + std::to_string(doc_id) + ", \"name\": \"" + name + "\"}");
  return r;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Every document of a .bson file, read with libbson's own reader and, the
// same file, walked with the project's validating parser.
std::vector<Bson> read_bson_file(const std::string& path) {
  bson_error_t error;
  bson_reader_t* reader = bson_reader_new_from_file(path.c_str(), &error);
  EXPECT_NE(reader, nullptr) << error.message;
  std::vector<Bson> docs;
  if (reader == nullptr) return docs;
  bool eof = false;
  while (const bson_t* doc = bson_reader_read(reader, &eof)) {
    const std::uint8_t* data = bson_get_data(doc);
    docs.emplace_back(data, data + doc->len);
  }
  EXPECT_TRUE(eof) << "trailing bytes in " << path;
  bson_reader_destroy(reader);

  const std::string bytes = read_text(path);
  std::vector<Bson> walked;
  for (std::size_t at = 0; at < bytes.size();) {
    const auto view = wire::parse_document(
        wire::Bytes(reinterpret_cast<const std::uint8_t*>(bytes.data()) + at, bytes.size() - at));
    if (!view) {
      ADD_FAILURE() << "not a BSON document at byte " << at << " of " << path;
      break;
    }
    walked.emplace_back(view->data, view->data + view->size);
    at += view->size;
  }
  EXPECT_EQ(walked, docs);
  return docs;
}

TEST(JournalExportTest, WritesMongodumpsLayoutReadableAsBson) {
  TempFolder folder;
  // Newest first, as the store lists them; document 1 twice (updated, then deleted).
  const std::vector<Row> rows{
      row(4, "app.family", 1, "second", 300), row(3, "app.orders", 9, "order", 250),
      row(2, "app.family", 2, "two", 200), row(1, "app.family", 1, "first", 100)};
  const auto result = export_dump(rows, folder.path().string());
  ASSERT_TRUE(result.ok) << result.error;
  EXPECT_EQ(result.documents, 3u);
  EXPECT_EQ(result.files.size(), 4u);

  // Oldest first, the oldest before-image of each _id.
  EXPECT_EQ(read_bson_file(folder.file("app/family.bson")),
            (std::vector<Bson>{rows[3].before, rows[2].before}));
  EXPECT_EQ(read_bson_file(folder.file("app/orders.bson")), std::vector<Bson>{rows[1].before});

  const auto metadata = nlohmann::json::parse(read_text(folder.file("app/family.metadata.json")));
  EXPECT_EQ(metadata.at("collectionName"), "family");
  EXPECT_EQ(metadata.at("type"), "collection");
  EXPECT_TRUE(metadata.at("indexes").is_array());
  EXPECT_TRUE(metadata.at("indexes").empty());

  struct stat st {};
  ASSERT_EQ(::stat(folder.file("app/family.bson").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(JournalExportTest, CollectionNamesAreEscapedAsMongodumpDoes) {
  EXPECT_EQ(escape_collection_name("family"), "family");
  EXPECT_EQ(escape_collection_name("a.b-c_d~e"), "a.b-c_d~e");
  EXPECT_EQ(escape_collection_name("a/b c?d;e,f%"), "a%2Fb%20c%3Fd%3Be%2Cf%25");
  EXPECT_EQ(escape_collection_name("$&+:=@"), "$&+:=@");
  EXPECT_EQ(escape_collection_name("\xc3\xa9"), "%C3%A9");

  TempFolder folder;
  const auto result = export_dump({row(1, "app.odd/name", 1, "x", 1)}, folder.path().string());
  ASSERT_TRUE(result.ok) << result.error;
  EXPECT_EQ(read_bson_file(folder.file("app/odd%2Fname.bson")).size(), 1u);
  const auto metadata =
      nlohmann::json::parse(read_text(folder.file("app/odd%2Fname.metadata.json")));
  EXPECT_EQ(metadata.at("collectionName"), "odd/name");
}

TEST(JournalExportTest, MetadataHasMongodumpsFieldOrder) {
  EXPECT_EQ(collection_metadata_json("fa\"mily"),
            R"({"indexes":[],"collectionName":"fa\"mily","type":"collection"})");
}

TEST(JournalExportTest, AnUnwritableFolderIsReported) {
  TempFolder folder;
  std::ofstream(folder.file("a-file")) << "x";
  const auto result = export_dump({row(1, "app.family", 1, "x", 1)}, folder.file("a-file"));
  EXPECT_FALSE(result.ok);
  EXPECT_FALSE(result.error.empty());
}

}  // namespace
}  // namespace mongoguard::journal
