// CRUD through libmongoc (the C driver), asserting every result.
//
// The integration suite runs this against a live proxy:
//   MONGOGUARD_TEST_URI=mongodb://127.0.0.1:PORT/?directConnection=true
//   MONGOGUARD_TEST_DB=<database to use>   (optional; the suite drops it afterwards)
// Each test works in its own collection of that database.

#include <bson/bson.h>
#include <gtest/gtest.h>
#include <mongoc/mongoc.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace {

// libmongoc wants mongoc_init() once before use and mongoc_cleanup() at exit.
class MongocEnvironment : public ::testing::Environment {
 public:
  void SetUp() override { mongoc_init(); }
  void TearDown() override { mongoc_cleanup(); }
};
[[maybe_unused]] ::testing::Environment* const kMongocEnvironment =
    ::testing::AddGlobalTestEnvironment(new MongocEnvironment);

// bson_t is declared with an alignment attribute, which GCC drops (and warns
// about) when bson_t is a template argument; so it gets a small owner of its
// own instead of std::unique_ptr, and arrays of pointers to it come from
// bson_malloc.
class Bson {
 public:
  explicit Bson(bson_t* doc) : doc_(doc) {}
  Bson(Bson&& other) noexcept : doc_(other.doc_) { other.doc_ = nullptr; }
  Bson& operator=(Bson&&) = delete;
  Bson(const Bson&) = delete;
  Bson& operator=(const Bson&) = delete;
  ~Bson() {
    if (doc_ != nullptr) bson_destroy(doc_);
  }
  bson_t* get() const { return doc_; }

 private:
  bson_t* doc_;
};

struct UriDeleter {
  void operator()(mongoc_uri_t* u) const { mongoc_uri_destroy(u); }
};
struct ClientDeleter {
  void operator()(mongoc_client_t* c) const { mongoc_client_destroy(c); }
};
struct CollectionDeleter {
  void operator()(mongoc_collection_t* c) const { mongoc_collection_destroy(c); }
};
struct CursorDeleter {
  void operator()(mongoc_cursor_t* c) const { mongoc_cursor_destroy(c); }
};
struct CharDeleter {
  void operator()(void* s) const { bson_free(s); }
};

using Uri = std::unique_ptr<mongoc_uri_t, UriDeleter>;
using Client = std::unique_ptr<mongoc_client_t, ClientDeleter>;
using Collection = std::unique_ptr<mongoc_collection_t, CollectionDeleter>;
using Cursor = std::unique_ptr<mongoc_cursor_t, CursorDeleter>;

// Parses relaxed extended JSON; aborts the test on a typo in the test itself.
Bson Json(std::string_view json) {
  bson_error_t error;
  bson_t* doc = bson_new_from_json(reinterpret_cast<const uint8_t*>(json.data()),
                                   static_cast<ssize_t>(json.size()), &error);
  if (doc == nullptr) {
    ADD_FAILURE() << "bad JSON in test: " << error.message << ": " << json;
    return Bson(bson_new());
  }
  return Bson(doc);
}

// Canonical extended JSON keeps the BSON types (int32 vs int64 vs double).
std::string Canonical(const bson_t* doc) {
  std::unique_ptr<char, CharDeleter> s(bson_as_canonical_extended_json(doc, nullptr));
  return s ? std::string(s.get()) : std::string("<unprintable>");
}

std::string Canonical(std::string_view json) {
  Bson doc = Json(json);
  return Canonical(doc.get());
}

int64_t IntField(const bson_t* doc, const char* dotted) {
  bson_iter_t iter;
  bson_iter_t found;
  if (!bson_iter_init(&iter, doc) || !bson_iter_find_descendant(&iter, dotted, &found)) {
    ADD_FAILURE() << "no field " << dotted << " in " << Canonical(doc);
    return -1;
  }
  return bson_iter_as_int64(&found);
}

std::string EnvOr(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? std::string(value) : fallback;
}

class LibmongocCrud : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* uri_text = std::getenv("MONGOGUARD_TEST_URI");
    ASSERT_NE(uri_text, nullptr) << "set MONGOGUARD_TEST_URI";
    bson_error_t error;
    Uri uri(mongoc_uri_new_with_error(uri_text, &error));
    ASSERT_TRUE(uri) << "bad URI " << uri_text << ": " << error.message;
    mongoc_uri_set_option_as_int32(uri.get(), MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 15000);
    mongoc_uri_set_appname(uri.get(), "mongoguard-libmongoc-crud");
    client_.reset(mongoc_client_new_from_uri(uri.get()));
    ASSERT_TRUE(client_);
    ASSERT_TRUE(mongoc_client_set_error_api(client_.get(), MONGOC_ERROR_API_VERSION_2));

    db_ = EnvOr("MONGOGUARD_TEST_DB", "libmongoc_crud_" + std::to_string(getpid()));
    const std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    coll_.reset(mongoc_client_get_collection(client_.get(), db_.c_str(), name.c_str()));
    ASSERT_TRUE(coll_);

    Bson ping = Json(R"({"ping": 1})");
    bson_t reply;
    const bool ok =
        mongoc_client_command_simple(client_.get(), "admin", ping.get(), nullptr, &reply, &error);
    bson_destroy(&reply);
    ASSERT_TRUE(ok) << "ping failed: " << error.message;
  }

  // Inserts {_id: i, n: i, g: i % 5, s: "doc-i"} for i in [first, first + count).
  void InsertNumbered(int first, int count) {
    std::vector<Bson> docs;
    docs.reserve(static_cast<size_t>(count));
    const auto n = static_cast<size_t>(count);
    std::unique_ptr<void, CharDeleter> storage(bson_malloc0(sizeof(bson_t*) * n));
    auto** ptrs = static_cast<const bson_t**>(storage.get());
    for (size_t k = 0; k < n; ++k) {
      const int i = first + static_cast<int>(k);
      docs.push_back(Json("{\"_id\": " + std::to_string(i) + ", \"n\": " + std::to_string(i) +
                          ", \"g\": " + std::to_string(i % 5) + ", \"s\": \"doc-" +
                          std::to_string(i) + "\"}"));
      ptrs[k] = docs.back().get();
    }
    bson_t reply;
    bson_error_t error;
    const bool ok = mongoc_collection_insert_many(coll_.get(), ptrs, n, nullptr, &reply, &error);
    EXPECT_TRUE(ok) << error.message;
    EXPECT_EQ(IntField(&reply, "insertedCount"), count) << Canonical(&reply);
    bson_destroy(&reply);
  }

  std::vector<std::string> FindAll(std::string_view filter, std::string_view opts) {
    Bson f = Json(filter);
    Bson o = Json(opts);
    Cursor cursor(mongoc_collection_find_with_opts(coll_.get(), f.get(), o.get(), nullptr));
    std::vector<std::string> out;
    const bson_t* doc = nullptr;
    while (mongoc_cursor_next(cursor.get(), &doc)) {
      out.push_back(Canonical(doc));
    }
    bson_error_t error;
    EXPECT_FALSE(mongoc_cursor_error(cursor.get(), &error)) << error.message;
    return out;
  }

  int64_t Count(std::string_view filter) {
    Bson f = Json(filter);
    bson_error_t error;
    const int64_t n =
        mongoc_collection_count_documents(coll_.get(), f.get(), nullptr, nullptr, nullptr, &error);
    EXPECT_GE(n, 0) << error.message;
    return n;
  }

  Client client_;
  Collection coll_;
  std::string db_;
};

TEST_F(LibmongocCrud, InsertOneAndFindIt) {
  Bson doc = Json(R"({"_id": 1, "name": "Ada", "n": 1, "big": {"$numberLong": "4000000000"},
                      "f": 2.5, "tags": ["x", "y"], "sub": {"a": true}})");
  bson_t reply;
  bson_error_t error;
  ASSERT_TRUE(mongoc_collection_insert_one(coll_.get(), doc.get(), nullptr, &reply, &error))
      << error.message;
  EXPECT_EQ(IntField(&reply, "insertedCount"), 1);
  bson_destroy(&reply);

  const auto found = FindAll(R"({"_id": 1})", "{}");
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0], Canonical(doc.get()));
  EXPECT_TRUE(FindAll(R"({"_id": 2})", "{}").empty());
}

TEST_F(LibmongocCrud, DuplicateKeyIsAServerError) {
  InsertNumbered(0, 3);
  Bson dup = Json(R"({"_id": 1})");
  bson_t reply;
  bson_error_t error;
  EXPECT_FALSE(mongoc_collection_insert_one(coll_.get(), dup.get(), nullptr, &reply, &error));
  EXPECT_EQ(error.domain, static_cast<uint32_t>(MONGOC_ERROR_SERVER));
  EXPECT_EQ(error.code, 11000u) << error.message;
  bson_destroy(&reply);
  EXPECT_EQ(Count("{}"), 3);
}

TEST_F(LibmongocCrud, InsertManyCountAndEstimate) {
  InsertNumbered(0, 1000);
  EXPECT_EQ(Count("{}"), 1000);
  EXPECT_EQ(Count(R"({"g": 3})"), 200);
  EXPECT_EQ(Count(R"({"n": {"$gte": 990}})"), 10);
  bson_error_t error;
  EXPECT_EQ(
      mongoc_collection_estimated_document_count(coll_.get(), nullptr, nullptr, nullptr, &error),
      1000)
      << error.message;
}

TEST_F(LibmongocCrud, FindWithSortProjectionLimitAndManyBatches) {
  InsertNumbered(0, 300);
  const auto top = FindAll(R"({"g": 2})", R"({"sort": {"n": -1}, "projection": {"_id": 0, "n": 1},
                                             "limit": 3})");
  ASSERT_EQ(top.size(), 3u);
  EXPECT_EQ(top[0], Canonical(R"({"n": 297})"));
  EXPECT_EQ(top[2], Canonical(R"({"n": 287})"));

  // batchSize 7 over 300 documents: dozens of getMore round trips.
  const auto all = FindAll("{}", R"({"sort": {"_id": 1}, "batchSize": 7})");
  ASSERT_EQ(all.size(), 300u);
  EXPECT_EQ(all[0], Canonical(R"({"_id": 0, "n": 0, "g": 0, "s": "doc-0"})"));
  EXPECT_EQ(all[299], Canonical(R"({"_id": 299, "n": 299, "g": 4, "s": "doc-299"})"));

  const auto page = FindAll("{}", R"({"sort": {"_id": 1}, "skip": 100, "limit": 2,
                                      "projection": {"s": 1}})");
  ASSERT_EQ(page.size(), 2u);
  EXPECT_EQ(page[1], Canonical(R"({"_id": 101, "s": "doc-101"})"));
}

TEST_F(LibmongocCrud, UpdateOneManyReplaceAndUpsert) {
  InsertNumbered(0, 50);
  bson_t reply;
  bson_error_t error;

  Bson q = Json(R"({"_id": 7})");
  Bson u = Json(R"({"$set": {"s": "seven"}, "$inc": {"n": 100}})");
  ASSERT_TRUE(mongoc_collection_update_one(coll_.get(), q.get(), u.get(), nullptr, &reply, &error))
      << error.message;
  EXPECT_EQ(IntField(&reply, "matchedCount"), 1);
  EXPECT_EQ(IntField(&reply, "modifiedCount"), 1);
  bson_destroy(&reply);
  EXPECT_EQ(FindAll(R"({"_id": 7})", "{}")[0],
            Canonical(R"({"_id": 7, "n": 107, "g": 2, "s": "seven"})"));

  Bson qm = Json(R"({"g": 1})");
  Bson um = Json(R"({"$set": {"flag": true}})");
  ASSERT_TRUE(
      mongoc_collection_update_many(coll_.get(), qm.get(), um.get(), nullptr, &reply, &error))
      << error.message;
  EXPECT_EQ(IntField(&reply, "matchedCount"), 10);
  EXPECT_EQ(IntField(&reply, "modifiedCount"), 10);
  bson_destroy(&reply);
  EXPECT_EQ(Count(R"({"flag": true})"), 10);

  Bson qr = Json(R"({"_id": 8})");
  Bson r = Json(R"({"replaced": true})");
  ASSERT_TRUE(
      mongoc_collection_replace_one(coll_.get(), qr.get(), r.get(), nullptr, &reply, &error))
      << error.message;
  EXPECT_EQ(IntField(&reply, "modifiedCount"), 1);
  bson_destroy(&reply);
  EXPECT_EQ(FindAll(R"({"_id": 8})", "{}")[0], Canonical(R"({"_id": 8, "replaced": true})"));

  Bson qu = Json(R"({"_id": 500})");
  Bson uu = Json(R"({"$set": {"n": 500}})");
  Bson upsert = Json(R"({"upsert": true})");
  ASSERT_TRUE(
      mongoc_collection_update_one(coll_.get(), qu.get(), uu.get(), upsert.get(), &reply, &error))
      << error.message;
  EXPECT_EQ(IntField(&reply, "upsertedCount"), 1);
  EXPECT_EQ(IntField(&reply, "upsertedId"), 500);
  bson_destroy(&reply);
  EXPECT_EQ(Count("{}"), 51);
}

TEST_F(LibmongocCrud, DeleteOneAndMany) {
  InsertNumbered(0, 100);
  bson_t reply;
  bson_error_t error;

  Bson one = Json(R"({"_id": 42})");
  ASSERT_TRUE(mongoc_collection_delete_one(coll_.get(), one.get(), nullptr, &reply, &error))
      << error.message;
  EXPECT_EQ(IntField(&reply, "deletedCount"), 1);
  bson_destroy(&reply);
  ASSERT_TRUE(mongoc_collection_delete_one(coll_.get(), one.get(), nullptr, &reply, &error))
      << error.message;
  EXPECT_EQ(IntField(&reply, "deletedCount"), 0);
  bson_destroy(&reply);

  Bson many = Json(R"({"g": 4})");
  ASSERT_TRUE(mongoc_collection_delete_many(coll_.get(), many.get(), nullptr, &reply, &error))
      << error.message;
  EXPECT_EQ(IntField(&reply, "deletedCount"), 20);
  bson_destroy(&reply);
  EXPECT_EQ(Count("{}"), 79);
  EXPECT_EQ(Count(R"({"g": 4})"), 0);
}

TEST_F(LibmongocCrud, FindAndModify) {
  InsertNumbered(0, 10);
  bson_t reply;
  bson_error_t error;
  Bson query = Json(R"({"_id": 3})");
  Bson update = Json(R"({"$set": {"s": "three"}})");
  ASSERT_TRUE(mongoc_collection_find_and_modify(coll_.get(), query.get(), nullptr, update.get(),
                                                nullptr, false, false, true, &reply, &error))
      << error.message;
  EXPECT_EQ(IntField(&reply, "value.n"), 3) << Canonical(&reply);
  EXPECT_EQ(IntField(&reply, "lastErrorObject.n"), 1);
  bson_destroy(&reply);
  EXPECT_EQ(Count(R"({"s": "three"})"), 1);

  Bson remove_query = Json(R"({"_id": 4})");
  ASSERT_TRUE(mongoc_collection_find_and_modify(coll_.get(), remove_query.get(), nullptr, nullptr,
                                                nullptr, true, false, false, &reply, &error))
      << error.message;
  EXPECT_EQ(IntField(&reply, "value._id"), 4);
  bson_destroy(&reply);
  EXPECT_EQ(Count("{}"), 9);
}

TEST_F(LibmongocCrud, Aggregate) {
  InsertNumbered(0, 100);
  // One accumulator per $group: FerretDB 1.24 answers 0 for every $sum after
  // the first in the same stage.
  Bson pipeline = Json(R"({"pipeline": [
      {"$match": {"n": {"$lt": 50}}},
      {"$group": {"_id": "$g", "total": {"$sum": "$n"}}},
      {"$sort": {"_id": 1}}]})");
  Bson opts = Json(R"({"batchSize": 2})");
  Cursor cursor(mongoc_collection_aggregate(coll_.get(), MONGOC_QUERY_NONE, pipeline.get(),
                                            opts.get(), nullptr));
  std::vector<std::string> got;
  const bson_t* doc = nullptr;
  while (mongoc_cursor_next(cursor.get(), &doc)) {
    got.push_back(Canonical(doc));
  }
  bson_error_t error;
  ASSERT_FALSE(mongoc_cursor_error(cursor.get(), &error)) << error.message;
  ASSERT_EQ(got.size(), 5u);
  // g = 0: n in {0, 5, ..., 45}, sum 225.
  EXPECT_EQ(got[0], Canonical(R"({"_id": 0, "total": 225})"));
  EXPECT_EQ(got[4], Canonical(R"({"_id": 4, "total": 265})"));
}

TEST_F(LibmongocCrud, UnknownCommandIsAnError) {
  Bson cmd = Json(R"({"definitelyNotACommand": 1})");
  bson_t reply;
  bson_error_t error;
  EXPECT_FALSE(
      mongoc_client_command_simple(client_.get(), db_.c_str(), cmd.get(), nullptr, &reply, &error));
  EXPECT_EQ(error.code, 59u) << error.message;
  bson_destroy(&reply);
}

}  // namespace
