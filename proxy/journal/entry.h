// What the journal keeps: one entry per destructive operation let through,
// holding the before-image of each document it affected. Plain values, shared
// by the store, the restore planner and the export.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mongoguard::journal {

// Wall-clock milliseconds since the epoch: the journal's time column.
inline std::int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

// One BSON document, as bytes (length prefix included).
using Bson = std::vector<std::uint8_t>;

enum class Operation { kDelete, kUpdate, kReplace, kFindAndModify, kBulkWrite };

// "delete", "update", "replace", "findAndModify", "bulkWrite".
const char* operation_name(Operation op);
std::optional<Operation> parse_operation(std::string_view name);

// One affected document.
struct Document {
  Bson id;                    // {_id: <value>}: the value wrapped in a one-field document
  Bson before;                // the document as it was before the write
  std::optional<Bson> after;  // as it was after it (updates, replaces); unset for deletes
};

// One destructive operation, as the data path hands it to the store.
struct Entry {
  std::int64_t time_ms = 0;  // ms since the epoch
  std::uint64_t connection = 0;
  std::string client;  // host:port of the client
  std::string user;
  std::string app;
  std::string rule;
  Operation op = Operation::kDelete;
  std::string ns;  // "db.collection"
  Bson filter;     // the request's own filter
  std::optional<std::uint64_t> hold_id;
  std::vector<Document> documents;
};

// One stored document, as queries return it.
struct Row {
  std::int64_t id = 0;        // the row's own id (what mark_restored takes)
  std::int64_t entry_id = 0;  // the operation it belongs to
  std::int64_t time_ms = 0;
  std::uint64_t connection = 0;
  std::string client;
  std::string user;
  std::string app;
  std::string rule;
  Operation op = Operation::kDelete;
  std::string ns;
  Bson filter;
  Bson doc_id;
  Bson before;
  std::optional<Bson> after;
  std::optional<std::uint64_t> hold_id;
  std::optional<std::int64_t> restored_at_ms;
  std::string restored_by;
};

// Journal order: by time, then by row id (the order rows were written).
bool written_before(const Row& a, const Row& b);

}  // namespace mongoguard::journal
