// The journal's storage: an SQLite file (WAL mode, synchronous=NORMAL, mode
// 0600) with one row per journaled document.
//
// Store is the writing side, owned by the server. Appends never touch the
// disk on the caller's thread: append() puts the entry in a bounded queue and
// says at once whether it was accepted; the store's own writer thread commits
// what is queued in one transaction at least every `commit_interval` (so a
// crash of the process loses at most that much), and runs retention and the
// size limit between commits. With synchronous=NORMAL a commit reaches the
// -wal unsynced; the writer checkpoints (which syncs) at most every
// `sync_interval` after a commit, so a power loss too takes back at most
// about that much, without a sync per append.
//
// What "accepted" promises: an accepted entry is written unless the write
// itself then fails. A caller that must never let an operation through
// unjournaled (on_error: hold) therefore checks append()'s answer and then
// waits, with a bound, for wait_durable(): the entry is committed, or it
// failed (it is then never written later, so the journal never holds an
// operation the caller decided not to forward), or the bound passed. A
// caller that may forward anyway (on_error: forward) only checks append().
//
// When the queue is full, or the store is unhealthy (the file cannot be
// opened or the last write failed: disk full, unwritable, I/O error),
// append() refuses and counts it. The writer retries opening and probes a
// failed file every `retry_interval`; health returns with the first write
// that succeeds.
//
// Reader is the querying side: its own connection, usable from any one
// thread (WAL lets it read while the writer writes). mark_restored() writes,
// waiting up to a few seconds for the writer's lock.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "proxy/journal/entry.h"

namespace mongoguard::journal {

namespace sqlite {
class Db;
}

inline constexpr int kSchemaVersion = 1;

struct StoreOptions {
  std::string path;
  std::chrono::milliseconds retention = std::chrono::hours(24 * 7);
  std::uint64_t max_size = 1ull << 30;        // bytes of the database file
  std::size_t max_queue_bytes = 64ull << 20;  // BSON bytes waiting for the writer
  std::chrono::milliseconds commit_interval{200};
  std::chrono::milliseconds sync_interval{1000};
  std::chrono::milliseconds maintenance_interval{60'000};
  std::chrono::milliseconds retry_interval{5'000};
  // A hard cap on the file, in pages (0 = SQLite's own): a write beyond it
  // fails as it would on a full disk.
  std::int64_t max_page_count = 0;
};

// Plain counters, for the metrics plane.
struct StoreCounters {
  std::atomic<std::uint64_t> entries_accepted{0};
  std::atomic<std::uint64_t> documents_written{0};
  std::atomic<std::uint64_t> refused_queue_full{0};  // entries
  std::atomic<std::uint64_t> refused_unhealthy{0};   // entries
  std::atomic<std::uint64_t> failed_documents{0};    // accepted, then the write failed
  std::atomic<std::uint64_t> failed_writes{0};       // transactions that failed
  std::atomic<std::uint64_t> expired_documents{0};   // past retention
  std::atomic<std::uint64_t> dropped_documents{0};   // oldest, for max_size
  std::atomic<std::uint64_t> corrupt_files{0};       // files set aside
};

enum class AppendStatus { kAccepted, kQueueFull, kUnhealthy, kStopped };
const char* append_status_name(AppendStatus status);

struct Appended {
  AppendStatus status = AppendStatus::kStopped;
  std::uint64_t ticket = 0;  // for wait_durable(); 0 unless accepted
  bool accepted() const { return status == AppendStatus::kAccepted; }
};

enum class Durability { kDurable, kFailed, kTimedOut };

class Store {
 public:
  // Starts the writer thread, which opens the file (start-up never waits for
  // it: a long integrity check or a corrupt file does not delay the caller).
  explicit Store(StoreOptions options);
  Store(const Store&) = delete;
  // Commits what is queued, then stops the writer.
  ~Store();

  // Thread-safe; never blocks on the disk.
  Appended append(Entry entry);
  // Waits until the entry behind `ticket` is committed or failed, or `bound`.
  Durability wait_durable(std::uint64_t ticket, std::chrono::milliseconds bound);
  // Without waiting: the entry's fate once known (committed or failed), and
  // nullopt while it is still queued (the writer is then asked to commit
  // now instead of at its next tick). For callers on an event loop.
  std::optional<Durability> poll_durable(std::uint64_t ticket);
  // The after-images of an entry's documents, once its write answered:
  // each {_id} of the entry gets `after` (a document the read no longer
  // found keeps its place holder). Queued like an append; false when refused.
  bool set_after(std::uint64_t ticket, std::vector<std::pair<Bson, Bson>> after);
  // Deletes the rows of the entry appended under `ticket`: its write was
  // refused or affected nothing, so they describe nothing that happened
  // (and a client cannot fill the journal, pushing out what it really did,
  // with commands the server rejects). Queued like an append.
  bool discard(std::uint64_t ticket);
  // Waits until the writer has opened (or failed to open) the file.
  bool wait_opened(std::chrono::milliseconds bound);
  // Waits until everything accepted so far is committed or failed.
  bool flush(std::chrono::milliseconds bound);
  // Runs retention and the size limit now (on the writer thread) and waits.
  bool run_maintenance(std::chrono::milliseconds bound);

  bool healthy() const { return healthy_.load(std::memory_order_acquire); }
  std::string last_error() const;
  const StoreCounters& counters() const { return counters_; }
  const std::string& path() const { return options_.path; }

 private:
  struct Queued {
    std::uint64_t ticket;
    Entry entry;
    // Non-zero: not a new entry but the after-images (in entry.documents,
    // id and after) of the entry appended under this ticket.
    std::uint64_t after_of = 0;
    bool discard = false;  // with after_of: delete that entry's rows instead
  };
  // What one round of the writer does.
  struct Work {
    std::vector<Queued> batch;
    std::uint64_t maintenance_request = 0;
    bool stop = false;
  };
  using Clock = std::chrono::steady_clock;

  void run();
  Work wait_for_work();
  void finish_round(std::uint64_t maintenance_request);
  bool ensure_open();
  void write_batch(std::vector<Queued>& batch);
  void insert_batch(const std::vector<Queued>& batch);
  void update_after(const Queued& queued);
  void finish_batch(const std::vector<Queued>& batch, bool committed);
  void sync_if_due();
  void probe();
  void maintain();
  void expire();
  void enforce_max_size();
  void enforce_max_size_now();  // after a commit, when the file is over max_size
  void set_error(const std::string& error);
  void set_healthy();
  bool ticket_failed(std::uint64_t ticket) const;
  bool wait_resolved(std::uint64_t ticket, std::chrono::milliseconds bound);

  const StoreOptions options_;
  StoreCounters counters_;
  std::atomic<bool> healthy_{true};
  std::unique_ptr<sqlite::Db> db_;  // writer thread only
  std::int64_t next_entry_id_ = 1;  // writer thread only
  // The entry id each recent ticket was written under, for set_after().
  std::deque<std::pair<std::uint64_t, std::int64_t>> entry_ids_;  // writer thread only
  Clock::time_point next_retry_{};
  Clock::time_point next_maintenance_{};
  Clock::time_point next_sync_{};

  mutable std::mutex mutex_;
  std::condition_variable wake_writer_;
  std::condition_variable resolved_;
  std::deque<Queued> queue_;
  std::size_t queued_bytes_ = 0;
  std::uint64_t next_ticket_ = 1;
  std::uint64_t resolved_through_ = 0;  // every ticket <= this is committed or failed
  std::deque<std::pair<std::uint64_t, std::uint64_t>> failed_tickets_;  // ranges
  std::string last_error_;
  bool opened_ = false;
  bool stopping_ = false;
  bool urgent_ = false;  // someone waits: write now, not at the next tick
  std::uint64_t maintenance_requested_ = 0;
  std::uint64_t maintenance_done_ = 0;
  std::thread writer_;
};

struct Query {
  std::string ns;  // "" = every namespace
  std::optional<std::int64_t> since_ms;
  std::optional<std::int64_t> until_ms;
  std::string rule;  // "" = any
  std::optional<std::uint64_t> hold_id;
  bool not_restored = false;
  std::size_t limit = 0;  // 0 = no limit
};

struct NamespaceSummary {
  std::string ns;
  std::int64_t entries = 0;
  std::int64_t documents = 0;
  std::map<std::string, std::int64_t> documents_by_operation;  // operation_name()
};

class Reader {
 public:
  // Opens an existing journal; throws sqlite::Error when it cannot.
  explicit Reader(const std::string& path);
  Reader(const Reader&) = delete;
  ~Reader();

  // Newest first (time, then row id).
  std::vector<Row> list(const Query& query);
  std::vector<NamespaceSummary> summary(const Query& query);
  // Marks rows restored by `by` at `at_ms`; rows already marked keep their
  // first mark. Returns how many were newly marked.
  std::size_t mark_restored(std::span<const std::int64_t> ids, const std::string& by,
                            std::int64_t at_ms);
  // Marks, as restored, the rows a restore's own writes left (its replaces
  // go through the proxy and are journaled like any update): those of the
  // app name the restore used (a random name of that restore alone, so no
  // clocks are compared). Without it a second restore would undo the first.
  std::size_t mark_written_by(const std::string& app, const std::string& by, std::int64_t at_ms);

 private:
  std::unique_ptr<sqlite::Db> db_;
};

}  // namespace mongoguard::journal
