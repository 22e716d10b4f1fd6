// The querying side of the journal (declared in store.h).
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "proxy/journal/sqlite.h"
#include "proxy/journal/store.h"

namespace mongoguard::journal {

namespace {

constexpr const char* kColumns =
    "id, entry_id, time_ms, connection, client, user, app, rule, operation, ns, filter, doc_id, "
    "before, after, hold_id, restored_at, restored_by";

// A WHERE clause over the query's conditions and its parameters, in order.
struct Where {
  std::string sql;
  std::vector<std::variant<std::string, std::int64_t>> values;

  void add(const std::string& condition) { sql += (sql.empty() ? " WHERE " : " AND ") + condition; }
  template <class T>
  void add(const std::string& condition, T value) {
    add(condition);
    values.emplace_back(std::move(value));
  }
  void bind(sqlite::Statement& statement) const {
    for (std::size_t i = 0; i < values.size(); ++i) {
      std::visit([&](const auto& value) { statement.bind(static_cast<int>(i + 1), value); },
                 values[i]);
    }
  }
};

Where where_of(const Query& query) {
  Where where;
  if (!query.ns.empty()) where.add("ns = ?", query.ns);
  if (query.since_ms) where.add("time_ms >= ?", *query.since_ms);
  if (query.until_ms) where.add("time_ms <= ?", *query.until_ms);
  if (!query.rule.empty()) where.add("rule = ?", query.rule);
  if (query.hold_id) where.add("hold_id = ?", static_cast<std::int64_t>(*query.hold_id));
  if (query.not_restored) where.add("restored_at IS NULL");
  return where;
}

template <class T>
std::optional<T> optional_int(const sqlite::Statement& statement, int column) {
  if (statement.is_null(column)) return std::nullopt;
  return static_cast<T>(statement.column_int(column));
}

Row read_row(const sqlite::Statement& s) {
  Row row;
  row.id = s.column_int(0);
  row.entry_id = s.column_int(1);
  row.time_ms = s.column_int(2);
  row.connection = static_cast<std::uint64_t>(s.column_int(3));
  row.client = s.column_text(4);
  row.user = s.column_text(5);
  row.app = s.column_text(6);
  row.rule = s.column_text(7);
  row.op = parse_operation(s.column_text(8)).value_or(Operation::kDelete);
  row.ns = s.column_text(9);
  row.filter = s.column_blob(10);
  row.doc_id = s.column_blob(11);
  row.before = s.column_blob(12);
  if (!s.is_null(13)) row.after = s.column_blob(13);
  row.hold_id = optional_int<std::uint64_t>(s, 14);
  row.restored_at_ms = optional_int<std::int64_t>(s, 15);
  row.restored_by = s.column_text(16);
  return row;
}

}  // namespace

Reader::Reader(const std::string& path)
    : db_(std::make_unique<sqlite::Db>(path, SQLITE_OPEN_READWRITE)) {
  db_->exec("PRAGMA busy_timeout = 5000");
}

Reader::~Reader() = default;

std::vector<Row> Reader::list(const Query& query) {
  const Where where = where_of(query);
  std::string sql = std::string("SELECT ") + kColumns + " FROM documents" + where.sql +
                    " ORDER BY time_ms DESC, id DESC";
  if (query.limit > 0) sql += " LIMIT " + std::to_string(query.limit);
  sqlite::Statement statement(*db_, sql);
  where.bind(statement);
  std::vector<Row> rows;
  while (statement.step()) rows.push_back(read_row(statement));
  return rows;
}

std::vector<NamespaceSummary> Reader::summary(const Query& query) {
  const Where where = where_of(query);
  const std::string sql =
      "SELECT ns, operation, COUNT(DISTINCT entry_id), COUNT(*) FROM documents" + where.sql +
      " GROUP BY ns, operation ORDER BY ns, operation";
  sqlite::Statement statement(*db_, sql);
  where.bind(statement);
  std::vector<NamespaceSummary> out;
  while (statement.step()) {
    const std::string ns = statement.column_text(0);
    if (out.empty() || out.back().ns != ns) out.push_back(NamespaceSummary{ns});
    auto& summary = out.back();
    // An entry holds one operation, so entries add up across operations.
    summary.entries += statement.column_int(2);
    summary.documents += statement.column_int(3);
    summary.documents_by_operation[statement.column_text(1)] += statement.column_int(3);
  }
  return out;
}

std::size_t Reader::mark_restored(std::span<const std::int64_t> ids, const std::string& by,
                                  std::int64_t at_ms) {
  sqlite::Transaction transaction(*db_);
  sqlite::Statement mark(*db_,
                         "UPDATE documents SET restored_at = ?1, restored_by = ?2 "
                         "WHERE id = ?3 AND restored_at IS NULL");
  std::size_t marked = 0;
  for (const std::int64_t id : ids) {
    mark.bind(1, at_ms).bind(2, std::string_view(by)).bind(3, id);
    mark.run();
    marked += static_cast<std::size_t>(db_->changes());
  }
  transaction.commit();
  return marked;
}

std::size_t Reader::mark_written_by(const std::string& app, const std::string& by,
                                    std::int64_t at_ms) {
  sqlite::Statement mark(*db_,
                         "UPDATE documents SET restored_at = ?1, restored_by = ?2 "
                         "WHERE app = ?3 AND restored_at IS NULL");
  mark.bind(1, at_ms).bind(2, std::string_view(by)).bind(3, std::string_view(app));
  mark.run();
  return static_cast<std::size_t>(db_->changes());
}

}  // namespace mongoguard::journal
