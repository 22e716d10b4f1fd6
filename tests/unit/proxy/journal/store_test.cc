#include "proxy/journal/store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <set>
#include <thread>

#include "proxy/journal/journal_test_util.h"

namespace mongoguard::journal {
namespace {

using namespace std::chrono_literals;
using testing::bson_of;
using testing::TempFolder;

std::int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

Document doc(int id, const std::string& extra = "") {
  const std::string value = "{\"$numberInt\": \"" + std::to_string(id) + "\"}";
  Document d;
  d.id = bson_of("{\"_id\": " + value + "}");
  d.before = bson_of("{\"_id\": " + value + ", \"name\": \"before\"" + extra + "}");
  return d;
}

Entry entry(const std::string& ns, std::vector<Document> documents, std::int64_t time_ms = 0) {
  Entry e;
  e.time_ms = time_ms != 0 ? time_ms : now_ms();
  e.connection = 7;
  e.client = "10.0.0.1:50000";
  e.user = "alice";
  e.app = "shell";
  e.rule = "budget";
  e.op = Operation::kDelete;
  e.ns = ns;
  e.filter = bson_of(R"({"family": "x"})");
  e.documents = std::move(documents);
  return e;
}

StoreOptions options_for(const TempFolder& folder) {
  StoreOptions options;
  options.path = folder.file("journal.db");
  options.commit_interval = 20ms;
  return options;
}

// Appends and waits until the entry is on disk.
void append_durably(Store& store, Entry e) {
  const Appended appended = store.append(std::move(e));
  ASSERT_TRUE(appended.accepted()) << append_status_name(appended.status);
  ASSERT_EQ(store.wait_durable(appended.ticket, 10s), Durability::kDurable) << store.last_error();
}

mode_t mode_of(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 0777;
}

TEST(JournalStoreTest, AnAppendedEntryIsReadBackWithEveryField) {
  TempFolder folder;
  Store store(options_for(folder));
  const std::int64_t time = now_ms() - 1000;
  Entry e = entry("app.family", {doc(1), doc(2)}, time);
  e.op = Operation::kUpdate;
  e.hold_id = 42;
  e.documents[0].after = bson_of(R"({"_id": 1, "name": "after"})");
  append_durably(store, e);

  Reader reader(store.path());
  const auto rows = reader.list({});
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].doc_id, e.documents[1].id);  // newest first: same time, higher row id
  const Row& row = rows[1];
  EXPECT_EQ(row.entry_id, rows[0].entry_id);
  EXPECT_EQ(row.time_ms, time);
  EXPECT_EQ(row.connection, 7u);
  EXPECT_EQ(row.client, "10.0.0.1:50000");
  EXPECT_EQ(row.user, "alice");
  EXPECT_EQ(row.app, "shell");
  EXPECT_EQ(row.rule, "budget");
  EXPECT_EQ(row.op, Operation::kUpdate);
  EXPECT_EQ(row.ns, "app.family");
  EXPECT_EQ(row.filter, e.filter);
  EXPECT_EQ(row.doc_id, e.documents[0].id);
  EXPECT_EQ(row.before, e.documents[0].before);
  EXPECT_EQ(row.after, e.documents[0].after);
  EXPECT_FALSE(rows[0].after.has_value());
  EXPECT_EQ(row.hold_id, 42u);
  EXPECT_FALSE(row.restored_at_ms.has_value());
  EXPECT_EQ(store.counters().documents_written.load(), 2u);
}

TEST(JournalStoreTest, TheFileIsWalWithAVersionedSchema) {
  TempFolder folder;
  {
    Store store(options_for(folder));
    append_durably(store, entry("app.family", {doc(1)}));
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(folder.file("journal.db").c_str(), &db), SQLITE_OK);
  auto text_of = [&](const char* sql) {
    sqlite3_stmt* stmt = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr), SQLITE_OK);
    EXPECT_EQ(sqlite3_step(stmt), SQLITE_ROW);
    std::string value = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    sqlite3_finalize(stmt);
    return value;
  };
  EXPECT_EQ(text_of("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(text_of("PRAGMA user_version"), std::to_string(kSchemaVersion));
  sqlite3_close(db);
}

TEST(JournalStoreTest, TheFileAndItsWalAndShmAreOwnerOnly) {
  TempFolder folder;
  const std::string path = folder.file("journal.db");
  std::ofstream(path).close();
  ::chmod(path.c_str(), 0644);  // an existing, wider file is narrowed
  Store store(options_for(folder));
  append_durably(store, entry("app.family", {doc(1)}));
  EXPECT_EQ(mode_of(path), 0600u);
  EXPECT_EQ(mode_of(path + "-wal"), 0600u);
  EXPECT_EQ(mode_of(path + "-shm"), 0600u);
}

TEST(JournalStoreTest, EightThreadsAppendingLoseAndRepeatNothing) {
  TempFolder folder;
  Store store(options_for(folder));
  constexpr int kThreads = 8;
  constexpr int kEntries = 150;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&store, t] {
      for (int i = 0; i < kEntries; ++i) {
        const int base = (t * kEntries + i) * 2;
        while (!store.append(entry("app.family", {doc(base), doc(base + 1)})).accepted()) {
          std::this_thread::sleep_for(1ms);  // queue full: the writer catches up
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  ASSERT_TRUE(store.flush(30s));

  Reader reader(store.path());
  const auto rows = reader.list({});
  std::set<Bson> ids;
  for (const auto& row : rows) ids.insert(row.doc_id);
  EXPECT_EQ(rows.size(), std::size_t{kThreads * kEntries * 2});
  EXPECT_EQ(ids.size(), rows.size());
  EXPECT_EQ(reader.summary({}).at(0).entries, kThreads * kEntries);
}

TEST(JournalStoreTest, EntryIdsKeepGrowingAcrossRestarts) {
  TempFolder folder;
  {
    Store store(options_for(folder));
    append_durably(store, entry("app.family", {doc(1)}));
  }
  Store store(options_for(folder));
  append_durably(store, entry("app.family", {doc(2)}));
  const auto rows = Reader(store.path()).list({});
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_GT(rows[0].entry_id, rows[1].entry_id);
}

TEST(JournalStoreTest, RetentionRemovesOlderDocumentsInTheBackground) {
  TempFolder folder;
  StoreOptions options = options_for(folder);
  options.retention = 24h * 7;
  Store store(options);
  append_durably(store, entry("app.family", {doc(1), doc(2)}, now_ms() - 8 * 24 * 3600 * 1000LL));
  append_durably(store, entry("app.family", {doc(3)}));
  ASSERT_TRUE(store.run_maintenance(10s));
  const auto rows = Reader(store.path()).list({});
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].doc_id, doc(3).id);
  EXPECT_EQ(store.counters().expired_documents.load(), 2u);
}

TEST(JournalStoreTest, MaxSizeDropsTheOldestEntriesFirst) {
  TempFolder folder;
  StoreOptions options = options_for(folder);
  options.max_size = 96 * 1024;
  Store store(options);
  const std::string padding = ", \"pad\": \"" + std::string(3000, 'x') + "\"";
  for (int i = 0; i < 60; ++i) append_durably(store, entry("app.family", {doc(i, padding)}));
  ASSERT_TRUE(store.run_maintenance(10s));

  const auto rows = Reader(store.path()).list({});
  ASSERT_FALSE(rows.empty());
  ASSERT_LT(rows.size(), 60u);
  // What is left is the newest entries, without a gap.
  for (std::size_t i = 0; i < rows.size(); ++i) EXPECT_EQ(rows[i].doc_id, doc(59 - int(i)).id);
  EXPECT_EQ(store.counters().dropped_documents.load(), 60u - rows.size());
  EXPECT_LE(std::filesystem::file_size(store.path()), options.max_size);
}

TEST(JournalStoreTest, ACorruptFileIsMovedAsideAndANewOneStarted) {
  TempFolder folder;
  const std::string path = folder.file("journal.db");
  const std::string garbage(8192, 'G');
  std::ofstream(path) << garbage;
  std::ofstream(path + "-wal") << "not a wal either";
  Store store(options_for(folder));
  ASSERT_TRUE(store.wait_opened(10s));
  EXPECT_TRUE(store.healthy()) << store.last_error();
  EXPECT_EQ(store.counters().corrupt_files.load(), 1u);
  append_durably(store, entry("app.family", {doc(1)}));

  // Set aside under one name, the -wal as found (and the -shm SQLite made).
  std::string aside;
  for (const auto& file : std::filesystem::directory_iterator(folder.path())) {
    const std::string name = file.path().string();
    if (name.size() > 4 && name.find(".corrupt-") != std::string::npos &&
        name.rfind("-wal") != name.size() - 4 && name.rfind("-shm") != name.size() - 4) {
      EXPECT_TRUE(aside.empty()) << "two files set aside: " << aside << ", " << name;
      aside = name;
    }
  }
  ASSERT_NE(aside, "");
  EXPECT_EQ(aside.rfind(path + ".corrupt-", 0), 0u) << aside;
  auto text_of = [](const std::string& file) {
    std::ifstream in(file);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  EXPECT_EQ(text_of(aside), garbage);
  EXPECT_EQ(text_of(aside + "-wal"), "not a wal either");
  EXPECT_EQ(Reader(path).list({}).size(), 1u);
}

TEST(JournalStoreTest, AnUnwritablePlaceMakesItUnhealthyAndAppendsAreRefused) {
  TempFolder folder;
  StoreOptions options = options_for(folder);
  options.path = folder.file("missing/journal.db");
  if (::geteuid() != 0) {
    // Not root: a folder without write permission shows it too.
    std::filesystem::create_directory(folder.file("missing"));
    ::chmod(folder.file("missing").c_str(), 0500);
  }
  Store store(options);
  ASSERT_TRUE(store.wait_opened(10s));
  EXPECT_FALSE(store.healthy());
  EXPECT_NE(store.last_error().find("missing/journal.db"), std::string::npos) << store.last_error();
  EXPECT_EQ(store.append(entry("app.family", {doc(1)})).status, AppendStatus::kUnhealthy);
  EXPECT_EQ(store.counters().refused_unhealthy.load(), 1u);
}

TEST(JournalStoreTest, ItRecoversWhenThePlaceBecomesWritable) {
  TempFolder folder;
  StoreOptions options = options_for(folder);
  options.path = folder.file("later/journal.db");
  options.retry_interval = 50ms;
  Store store(options);
  ASSERT_TRUE(store.wait_opened(10s));
  ASSERT_FALSE(store.healthy());
  std::filesystem::create_directory(folder.file("later"));
  for (int i = 0; i < 400 && !store.healthy(); ++i) std::this_thread::sleep_for(25ms);
  ASSERT_TRUE(store.healthy()) << store.last_error();
  append_durably(store, entry("app.family", {doc(1)}));
  EXPECT_EQ(Reader(options.path).list({}).size(), 1u);
}

TEST(JournalStoreTest, AFullFileFailsTheWriteAndLaterAppendsAreRefused) {
  TempFolder folder;
  StoreOptions options = options_for(folder);
  options.max_page_count = 16;  // about 64 KiB: as a full disk would
  options.retry_interval = 1h;
  Store store(options);
  const std::string padding = ", \"pad\": \"" + std::string(200'000, 'x') + "\"";
  const Appended appended = store.append(entry("app.family", {doc(1, padding)}));
  ASSERT_TRUE(appended.accepted());
  EXPECT_EQ(store.wait_durable(appended.ticket, 10s), Durability::kFailed);
  EXPECT_FALSE(store.healthy());
  EXPECT_NE(store.last_error().find("full"), std::string::npos) << store.last_error();
  EXPECT_EQ(store.append(entry("app.family", {doc(2)})).status, AppendStatus::kUnhealthy);
  EXPECT_EQ(store.counters().failed_documents.load(), 1u);
  EXPECT_EQ(store.counters().failed_writes.load(), 1u);
  EXPECT_TRUE(Reader(store.path()).list({}).empty());
}

TEST(JournalStoreTest, AFullQueueRefusesAndTheWriterDrainsItLater) {
  TempFolder folder;
  StoreOptions options = options_for(folder);
  options.max_queue_bytes = 100'000;
  options.commit_interval = 1h;  // the writer wakes only when the queue is half full
  Store store(options);
  auto padded = [](int id, std::size_t size) {
    return entry("app.family", {doc(id, ", \"pad\": \"" + std::string(size, 'x') + "\"")});
  };
  const Appended first = store.append(padded(1, 40'000));
  ASSERT_TRUE(first.accepted());
  EXPECT_EQ(store.append(padded(2, 60'000)).status, AppendStatus::kQueueFull);
  EXPECT_EQ(store.counters().refused_queue_full.load(), 1u);
  EXPECT_TRUE(store.append(padded(3, 100)).accepted());
  EXPECT_EQ(store.wait_durable(first.ticket, 10s), Durability::kDurable);
  EXPECT_EQ(Reader(store.path()).list({}).size(), 2u);
}

TEST(JournalStoreTest, AnEntryLargerThanTheQueueIsRefused) {
  TempFolder folder;
  StoreOptions options = options_for(folder);
  options.max_queue_bytes = 4096;
  Store store(options);
  const std::string padding = ", \"pad\": \"" + std::string(5000, 'x') + "\"";
  EXPECT_EQ(store.append(entry("app.family", {doc(1, padding)})).status, AppendStatus::kQueueFull);
  EXPECT_EQ(store.counters().refused_queue_full.load(), 1u);
  EXPECT_TRUE(store.append(entry("app.family", {doc(2)})).accepted());
}

TEST(JournalStoreTest, QueriesFilterAndSummarise) {
  TempFolder folder;
  Store store(options_for(folder));
  const std::int64_t t = now_ms() - 10'000;  // recent: retention keeps them
  Entry update = entry("app.family", {doc(1), doc(2)}, t + 1000);
  update.op = Operation::kUpdate;
  update.rule = "updates";
  append_durably(store, update);
  Entry held = entry("app.family", {doc(3)}, t + 2000);
  held.hold_id = 9;
  append_durably(store, held);
  append_durably(store, entry("app.orders", {doc(4)}, t + 3000));
  Reader reader(store.path());

  auto ids = [&](const Query& query) {
    std::vector<Bson> out;
    for (const auto& row : reader.list(query)) out.push_back(row.doc_id);
    return out;
  };
  using Ids = std::vector<Bson>;
  EXPECT_EQ(ids({.ns = "app.orders"}), (Ids{doc(4).id}));
  EXPECT_EQ(ids({.since_ms = t + 2000}), (Ids{doc(4).id, doc(3).id}));
  EXPECT_EQ(ids({.since_ms = t + 1500, .until_ms = t + 2500}), (Ids{doc(3).id}));
  EXPECT_EQ(ids({.rule = "updates"}), (Ids{doc(2).id, doc(1).id}));
  EXPECT_EQ(ids({.hold_id = 9}), (Ids{doc(3).id}));
  EXPECT_EQ(ids({.limit = 1}), (Ids{doc(4).id}));

  const auto summary = reader.summary({});
  ASSERT_EQ(summary.size(), 2u);
  EXPECT_EQ(summary[0].ns, "app.family");
  EXPECT_EQ(summary[0].entries, 2);
  EXPECT_EQ(summary[0].documents, 3);
  EXPECT_EQ(summary[0].documents_by_operation.at("update"), 2);
  EXPECT_EQ(summary[0].documents_by_operation.at("delete"), 1);
  EXPECT_EQ(summary[1].ns, "app.orders");
  EXPECT_EQ(summary[1].documents, 1);
}

TEST(JournalStoreTest, MarkRestoredIsIdempotent) {
  TempFolder folder;
  Store store(options_for(folder));
  append_durably(store, entry("app.family", {doc(1), doc(2), doc(3)}));
  Reader reader(store.path());
  const auto rows = reader.list({});
  const std::vector<std::int64_t> first{rows[0].id, rows[1].id};
  EXPECT_EQ(reader.mark_restored(first, "alice", 5000), 2u);
  EXPECT_EQ(reader.mark_restored(first, "bob", 6000), 0u);
  const std::vector<std::int64_t> all{rows[0].id, rows[1].id, rows[2].id};
  EXPECT_EQ(reader.mark_restored(all, "bob", 7000), 1u);

  const auto after = reader.list({});
  EXPECT_EQ(after[0].restored_at_ms, 5000);
  EXPECT_EQ(after[0].restored_by, "alice");
  EXPECT_EQ(after[2].restored_by, "bob");
  EXPECT_TRUE(reader.list({.not_restored = true}).empty());
}

}  // namespace
}  // namespace mongoguard::journal
