#include "proxy/journal/store.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>

#include "proxy/journal/sqlite.h"

namespace mongoguard::journal {

namespace {

namespace fs = std::filesystem;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS documents (
  id INTEGER PRIMARY KEY,
  time_ms INTEGER NOT NULL,
  entry_id INTEGER NOT NULL,
  connection INTEGER NOT NULL,
  client TEXT NOT NULL,
  user TEXT NOT NULL,
  app TEXT NOT NULL,
  rule TEXT NOT NULL,
  operation TEXT NOT NULL,
  ns TEXT NOT NULL,
  filter BLOB NOT NULL,
  doc_id BLOB NOT NULL,
  before BLOB NOT NULL,
  after BLOB,
  hold_id INTEGER,
  restored_at INTEGER,
  restored_by TEXT);
CREATE INDEX IF NOT EXISTS documents_ns_time ON documents (ns, time_ms);
CREATE INDEX IF NOT EXISTS documents_time ON documents (time_ms);
CREATE INDEX IF NOT EXISTS documents_entry ON documents (entry_id);
CREATE INDEX IF NOT EXISTS documents_hold ON documents (hold_id) WHERE hold_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER);
)sql";

constexpr const char* kInsert =
    "INSERT INTO documents (time_ms, entry_id, connection, client, user, app, rule, operation, "
    "ns, filter, doc_id, before, after, hold_id) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";

constexpr std::size_t kMaxFailedRanges = 4096;

std::string utc_stamp() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y%m%dT%H%M%SZ", &tm);
  return text;
}

// The database and the two files SQLite keeps beside it in WAL mode.
std::vector<std::string> journal_files(const std::string& path) {
  return {path, path + "-wal", path + "-shm"};
}

// Creates the file owner-only before SQLite opens it (SQLite then gives its
// -wal and -shm files the same mode), and narrows an existing one. Done per
// file, not through umask, which is process-wide.
void make_private(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    throw sqlite::Error(SQLITE_CANTOPEN, path + ": " + std::strerror(errno));
  }
  const int rc = ::fchmod(fd, 0600);
  const int saved = errno;
  ::close(fd);
  if (rc != 0) throw sqlite::Error(SQLITE_CANTOPEN, path + ": " + std::strerror(saved));
}

void narrow_companions(const std::string& path) {
  for (const auto& file : journal_files(path)) {
    std::error_code ignored;
    if (fs::exists(file, ignored)) ::chmod(file.c_str(), 0600);
  }
}

// Renames the file and its companions to PATH.corrupt-<UTC time>[.N].
std::string move_aside(const std::string& path) {
  const std::string stem = path + ".corrupt-" + utc_stamp();
  std::string aside = stem;
  std::error_code ec;
  for (int n = 1; fs::exists(aside, ec); ++n) aside = stem + "." + std::to_string(n);
  const auto files = journal_files(path);
  const auto moved = journal_files(aside);
  for (std::size_t i = 0; i < files.size(); ++i) {
    if (!fs::exists(files[i], ec)) continue;
    fs::rename(files[i], moved[i], ec);
    if (ec) throw sqlite::Error(SQLITE_CANTOPEN, files[i] + ": " + ec.message());
  }
  return aside;
}

void check_integrity(sqlite::Db& db) {
  const std::string verdict = db.query_text("PRAGMA quick_check(1)");
  if (verdict != "ok") throw sqlite::Error(SQLITE_CORRUPT, "quick_check: " + verdict);
}

void prepare_schema(sqlite::Db& db) {
  const std::int64_t version = db.query_int("PRAGMA user_version");
  if (version > kSchemaVersion) {
    throw sqlite::Error(SQLITE_ERROR, "schema version " + std::to_string(version) +
                                          " is newer than this mongoguard's " +
                                          std::to_string(kSchemaVersion));
  }
  // auto_vacuum takes effect only before the first table: on a new file.
  if (version == 0) db.exec("PRAGMA auto_vacuum = INCREMENTAL");
  if (db.query_text("PRAGMA journal_mode = WAL") != "wal") {
    throw sqlite::Error(SQLITE_ERROR, "cannot switch the journal to WAL mode");
  }
  db.exec("PRAGMA synchronous = NORMAL");
  sqlite::Transaction transaction(db);
  db.exec(kSchema);
  db.exec("PRAGMA user_version = " + std::to_string(kSchemaVersion));
  transaction.commit();
}

std::unique_ptr<sqlite::Db> open_checked(const std::string& path, std::int64_t max_page_count) {
  make_private(path);
  auto db = std::make_unique<sqlite::Db>(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  db->exec("PRAGMA busy_timeout = 5000");
  db->set_checkpoint_on_close(false);
  check_integrity(*db);
  db->set_checkpoint_on_close(true);
  prepare_schema(*db);
  if (max_page_count > 0) db->exec("PRAGMA max_page_count = " + std::to_string(max_page_count));
  narrow_companions(path);
  return db;
}

// Opens the journal; a damaged file is set aside and a new one started.
std::unique_ptr<sqlite::Db> open_journal(const std::string& path, std::int64_t max_page_count,
                                         StoreCounters& counters) {
  try {
    return open_checked(path, max_page_count);
  } catch (const sqlite::Error& e) {
    if (!e.corrupt()) throw;
    const std::string aside = move_aside(path);
    counters.corrupt_files.fetch_add(1, std::memory_order_relaxed);
    spdlog::error("journal: {} is damaged ({}); moved it aside to {} and started a new journal",
                  path, e.what(), aside);
  }
  return open_checked(path, max_page_count);
}

std::size_t entry_bytes(const Entry& entry) {
  std::size_t bytes = sizeof(Entry) + entry.filter.size();
  for (const auto& doc : entry.documents) {
    bytes += sizeof(Document) + doc.id.size() + doc.before.size();
    if (doc.after) bytes += doc.after->size();
  }
  return bytes;
}

std::uint64_t used_bytes(sqlite::Db& db) {
  const std::int64_t pages =
      db.query_int("PRAGMA page_count") - db.query_int("PRAGMA freelist_count");
  return static_cast<std::uint64_t>(pages * db.query_int("PRAGMA page_size"));
}

}  // namespace

const char* append_status_name(AppendStatus status) {
  switch (status) {
    case AppendStatus::kAccepted:
      return "accepted";
    case AppendStatus::kQueueFull:
      return "queue_full";
    case AppendStatus::kUnhealthy:
      return "unhealthy";
    case AppendStatus::kStopped:
      return "stopped";
  }
  return "unknown";
}

Store::Store(StoreOptions options) : options_(std::move(options)) {
  writer_ = std::thread([this] { run(); });
}

Store::~Store() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    urgent_ = true;
  }
  wake_writer_.notify_one();
  writer_.join();
}

Appended Store::append(Entry entry) {
  const std::size_t bytes = entry_bytes(entry);
  std::lock_guard lock(mutex_);
  if (stopping_) return {AppendStatus::kStopped, 0};
  if (!healthy()) {
    counters_.refused_unhealthy.fetch_add(1, std::memory_order_relaxed);
    return {AppendStatus::kUnhealthy, 0};
  }
  if (queued_bytes_ + bytes > options_.max_queue_bytes) {
    counters_.refused_queue_full.fetch_add(1, std::memory_order_relaxed);
    return {AppendStatus::kQueueFull, 0};
  }
  const std::uint64_t ticket = next_ticket_++;
  queue_.push_back(Queued{ticket, std::move(entry)});
  queued_bytes_ += bytes;
  counters_.entries_accepted.fetch_add(1, std::memory_order_relaxed);
  // Half full: write now rather than at the next tick.
  if (queued_bytes_ * 2 >= options_.max_queue_bytes) wake_writer_.notify_one();
  return {AppendStatus::kAccepted, ticket};
}

std::optional<Durability> Store::poll_durable(std::uint64_t ticket) {
  {
    std::lock_guard lock(mutex_);
    if (resolved_through_ >= ticket) {
      return ticket_failed(ticket) ? Durability::kFailed : Durability::kDurable;
    }
    urgent_ = true;
  }
  wake_writer_.notify_one();
  return std::nullopt;
}

bool Store::set_after(std::uint64_t ticket, std::vector<std::pair<Bson, Bson>> after) {
  Entry entry;
  for (auto& [id, doc] : after) {
    Document d;
    d.id = std::move(id);
    d.after = std::move(doc);
    entry.documents.push_back(std::move(d));
  }
  const std::size_t bytes = entry_bytes(entry);
  std::lock_guard lock(mutex_);
  if (stopping_ || queued_bytes_ + bytes > options_.max_queue_bytes) return false;
  queue_.push_back(Queued{next_ticket_++, std::move(entry), ticket});
  queued_bytes_ += bytes;
  return true;
}

bool Store::discard(std::uint64_t ticket) {
  std::lock_guard lock(mutex_);
  if (stopping_) return false;
  queue_.push_back(Queued{next_ticket_++, Entry{}, ticket, true});
  return true;
}

bool Store::wait_resolved(std::uint64_t ticket, std::chrono::milliseconds bound) {
  std::unique_lock lock(mutex_);
  if (resolved_through_ >= ticket) return true;
  // Someone waits: commit now instead of at the next tick.
  urgent_ = true;
  wake_writer_.notify_one();
  return resolved_.wait_for(lock, bound, [&] { return resolved_through_ >= ticket; });
}

Durability Store::wait_durable(std::uint64_t ticket, std::chrono::milliseconds bound) {
  if (!wait_resolved(ticket, bound)) return Durability::kTimedOut;
  std::lock_guard lock(mutex_);
  return ticket_failed(ticket) ? Durability::kFailed : Durability::kDurable;
}

bool Store::flush(std::chrono::milliseconds bound) {
  std::uint64_t last = 0;
  {
    std::lock_guard lock(mutex_);
    last = next_ticket_ - 1;
  }
  return wait_resolved(last, bound);
}

bool Store::wait_opened(std::chrono::milliseconds bound) {
  std::unique_lock lock(mutex_);
  return resolved_.wait_for(lock, bound, [&] { return opened_; });
}

bool Store::run_maintenance(std::chrono::milliseconds bound) {
  std::unique_lock lock(mutex_);
  const std::uint64_t request = ++maintenance_requested_;
  urgent_ = true;
  wake_writer_.notify_one();
  return resolved_.wait_for(lock, bound, [&] { return maintenance_done_ >= request; });
}

std::string Store::last_error() const {
  std::lock_guard lock(mutex_);
  return last_error_;
}

bool Store::ticket_failed(std::uint64_t ticket) const {
  for (const auto& [first, last] : failed_tickets_) {
    if (ticket >= first && ticket <= last) return true;
  }
  return false;
}

void Store::set_error(const std::string& error) {
  const bool was_healthy = healthy_.exchange(false, std::memory_order_acq_rel);
  {
    std::lock_guard lock(mutex_);
    last_error_ = error;
  }
  if (was_healthy) spdlog::error("journal: {}; appends are refused until it recovers", error);
}

void Store::set_healthy() {
  if (healthy_.exchange(true, std::memory_order_acq_rel)) return;
  spdlog::info("journal: {} is writable again", options_.path);
}

// ---- the writer thread ----

void Store::run() {
  ensure_open();
  {
    std::lock_guard lock(mutex_);
    opened_ = true;
  }
  resolved_.notify_all();
  next_maintenance_ = Clock::now();
  for (;;) {
    Work work = wait_for_work();
    if (!work.batch.empty()) write_batch(work.batch);
    if (work.maintenance_request != 0 || Clock::now() >= next_maintenance_) maintain();
    if (!healthy()) probe();
    finish_round(work.maintenance_request);
    if (work.stop) return;
  }
}

Store::Work Store::wait_for_work() {
  std::unique_lock lock(mutex_);
  wake_writer_.wait_for(lock, options_.commit_interval,
                        [&] { return urgent_ || queued_bytes_ * 2 >= options_.max_queue_bytes; });
  Work work;
  work.batch.reserve(queue_.size());
  for (auto& queued : queue_) work.batch.push_back(std::move(queued));
  queue_.clear();
  queued_bytes_ = 0;
  urgent_ = false;
  work.stop = stopping_;
  if (maintenance_requested_ != maintenance_done_)
    work.maintenance_request = maintenance_requested_;
  return work;
}

void Store::finish_round(std::uint64_t maintenance_request) {
  {
    std::lock_guard lock(mutex_);
    if (maintenance_request != 0) maintenance_done_ = maintenance_request;
  }
  resolved_.notify_all();
}

bool Store::ensure_open() {
  if (db_) return true;
  if (Clock::now() < next_retry_) return false;
  next_retry_ = Clock::now() + options_.retry_interval;
  try {
    db_ = open_journal(options_.path, options_.max_page_count, counters_);
    next_entry_id_ = db_->query_int("SELECT COALESCE(MAX(entry_id), 0) FROM documents") + 1;
    set_healthy();
    return true;
  } catch (const std::exception& e) {
    db_.reset();
    set_error(std::string("cannot open ") + e.what());
    return false;
  }
}

void Store::write_batch(std::vector<Queued>& batch) {
  bool committed = false;
  if (ensure_open()) {
    try {
      insert_batch(batch);
      committed = true;
      set_healthy();
    } catch (const sqlite::Error& e) {
      counters_.failed_writes.fetch_add(1, std::memory_order_relaxed);
      set_error(std::string("write to ") + options_.path + " failed: " + e.what());
      // A damaged file is checked, and set aside, by the next open.
      if (e.corrupt()) db_.reset();
    }
  }
  finish_batch(batch, committed);
  if (committed) sync_if_due();
  // A burst must not outgrow max_size until the next maintenance round.
  if (committed) enforce_max_size_now();
}

void Store::enforce_max_size_now() {
  try {
    if (used_bytes(*db_) > options_.max_size) enforce_max_size();
  } catch (const sqlite::Error& e) {
    spdlog::warn("journal: keeping {} within max_size failed: {}", options_.path, e.what());
  }
}

void Store::insert_batch(const std::vector<Queued>& batch) {
  sqlite::Transaction transaction(*db_);
  sqlite::Statement insert(*db_, kInsert);
  for (const auto& queued : batch) {
    if (queued.after_of != 0) {
      update_after(queued);
      continue;
    }
    const auto& entry = queued.entry;
    const std::int64_t entry_id = next_entry_id_++;
    entry_ids_.emplace_back(queued.ticket, entry_id);
    if (entry_ids_.size() > kMaxFailedRanges) entry_ids_.pop_front();
    for (const auto& doc : entry.documents) {
      insert.bind(1, entry.time_ms).bind(2, entry_id);
      insert.bind(3, static_cast<std::int64_t>(entry.connection));
      insert.bind(4, entry.client).bind(5, entry.user).bind(6, entry.app).bind(7, entry.rule);
      insert.bind(8, std::string_view(operation_name(entry.op))).bind(9, entry.ns);
      insert.bind(10, entry.filter).bind(11, doc.id).bind(12, doc.before).bind(13, doc.after);
      if (entry.hold_id) insert.bind(14, static_cast<std::int64_t>(*entry.hold_id));
      insert.run();
    }
  }
  transaction.commit();
}

void Store::update_after(const Queued& queued) {
  const auto found = std::find_if(entry_ids_.begin(), entry_ids_.end(),
                                  [&](const auto& e) { return e.first == queued.after_of; });
  if (found == entry_ids_.end()) return;  // failed, or long gone: nothing to complete
  if (queued.discard) {
    sqlite::Statement drop(*db_, "DELETE FROM documents WHERE entry_id = ?1");
    drop.bind(1, found->second);
    drop.run();
    return;
  }
  sqlite::Statement update(*db_,
                           "UPDATE documents SET after = ?1 WHERE entry_id = ?2 AND doc_id = ?3");
  for (const auto& doc : queued.entry.documents) {
    update.bind(1, *doc.after).bind(2, found->second).bind(3, doc.id);
    update.run();
  }
}

void Store::finish_batch(const std::vector<Queued>& batch, bool committed) {
  std::uint64_t documents = 0;
  for (const auto& queued : batch) {
    if (queued.after_of == 0) documents += queued.entry.documents.size();
  }
  auto& counter = committed ? counters_.documents_written : counters_.failed_documents;
  counter.fetch_add(documents, std::memory_order_relaxed);
  {
    std::lock_guard lock(mutex_);
    if (!committed) {
      failed_tickets_.emplace_back(batch.front().ticket, batch.back().ticket);
      if (failed_tickets_.size() > kMaxFailedRanges) failed_tickets_.pop_front();
    }
    resolved_through_ = batch.back().ticket;
  }
  resolved_.notify_all();
}

// A PASSIVE checkpoint syncs the -wal and copies it into the file without
// waiting for readers; a reader in the way only delays the copy.
void Store::sync_if_due() {
  if (Clock::now() < next_sync_) return;
  next_sync_ = Clock::now() + options_.sync_interval;
  try {
    db_->exec("PRAGMA wal_checkpoint(PASSIVE)");
  } catch (const sqlite::Error& e) {
    // The batch is committed; the file is not well.
    set_error(std::string("sync of ") + options_.path + " failed: " + e.what());
  }
}

// A failed file is tried again every retry_interval: reopened when it could
// not be opened, or written to (one small row) when a write failed.
void Store::probe() {
  if (!db_) {
    ensure_open();
    return;
  }
  if (Clock::now() < next_retry_) return;
  next_retry_ = Clock::now() + options_.retry_interval;
  try {
    db_->prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('probe', ?1)")
        .bind(1, now_ms())
        .run();
    set_healthy();
  } catch (const sqlite::Error& e) {
    set_error(std::string("write to ") + options_.path + " failed: " + e.what());
  }
}

// ---- retention and size, on the writer thread ----

void Store::maintain() {
  next_maintenance_ = Clock::now() + options_.maintenance_interval;
  if (!db_) return;
  try {
    expire();
    enforce_max_size();
  } catch (const sqlite::Error& e) {
    spdlog::warn("journal: maintenance of {} failed: {}", options_.path, e.what());
  }
}

void Store::expire() {
  const std::int64_t cutoff = now_ms() - options_.retention.count();
  db_->prepare("DELETE FROM documents WHERE time_ms < ?1").bind(1, cutoff).run();
  const std::int64_t expired = db_->changes();
  if (expired == 0) return;
  counters_.expired_documents.fetch_add(static_cast<std::uint64_t>(expired),
                                        std::memory_order_relaxed);
  spdlog::info("journal: removed {} documents older than the retention of {} s", expired,
               options_.retention.count() / 1000);
}

// Drops whole entries, oldest first, until the used pages fit in nine tenths
// of max_size (so a journal at its limit does not drop and vacuum on every
// commit), then gives the freed pages back to the file system.
void Store::enforce_max_size() {
  std::int64_t dropped = 0;
  const std::uint64_t target = options_.max_size - options_.max_size / 10;
  for (std::uint64_t used = used_bytes(*db_); used > target; used = used_bytes(*db_)) {
    const std::int64_t rows = db_->query_int("SELECT COUNT(*) FROM documents");
    if (rows == 0) break;
    // The share of rows over the limit, at least one, as the row to cut at.
    const double excess = static_cast<double>(used - target) / static_cast<double>(used);
    const auto cut = std::max<std::int64_t>(1, static_cast<std::int64_t>(excess * rows + 0.5));
    db_->prepare(
           "DELETE FROM documents WHERE entry_id <= (SELECT entry_id FROM documents "
           "ORDER BY id LIMIT 1 OFFSET ?1)")
        .bind(1, cut - 1)
        .run();
    dropped += db_->changes();
  }
  if (dropped == 0) return;
  counters_.dropped_documents.fetch_add(static_cast<std::uint64_t>(dropped),
                                        std::memory_order_relaxed);
  spdlog::warn("journal: dropped the {} oldest documents to keep {} within {} bytes", dropped,
               options_.path, options_.max_size);
  db_->exec("PRAGMA incremental_vacuum");
  db_->exec("PRAGMA wal_checkpoint(TRUNCATE)");
}

}  // namespace mongoguard::journal
