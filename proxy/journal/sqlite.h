// Small RAII wrappers over SQLite's C API: one connection, one prepared
// statement. Failures carry SQLite's own code and message, so the store can
// tell a corrupt file (set it aside) from a full disk (report, retry).
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mongoguard::journal::sqlite {

// A failed SQLite call: `code` is the primary result code (SQLITE_FULL,
// SQLITE_NOTADB, ...).
class Error : public std::runtime_error {
 public:
  Error(int code, const std::string& message) : std::runtime_error(message), code_(code) {}
  int code() const { return code_; }
  // The file is not a database or its pages are damaged.
  bool corrupt() const { return code_ == SQLITE_CORRUPT || code_ == SQLITE_NOTADB; }

 private:
  int code_;
};

class Statement;

class Db {
 public:
  // Opens (flags as sqlite3_open_v2) or throws Error.
  Db(const std::string& path, int flags);
  Db(Db&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}
  Db& operator=(Db&&) = delete;
  Db(const Db&) = delete;
  ~Db();

  // Runs statements without results (several may be separated by ';').
  void exec(const std::string& sql);
  Statement prepare(std::string_view sql);
  // The first column of the first row of a one-value query.
  std::int64_t query_int(std::string_view sql);
  std::string query_text(std::string_view sql);
  std::int64_t changes() const { return sqlite3_changes64(db_); }
  std::int64_t last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }
  // Whether closing the last connection checkpoints the -wal into the file
  // and deletes it (SQLite's default). Off while a file is being checked, so
  // that a damaged one is set aside with its -wal as found.
  void set_checkpoint_on_close(bool on);
  [[noreturn]] void fail(int code) const;
  sqlite3* get() const { return db_; }

 private:
  sqlite3* db_ = nullptr;
};

class Statement {
 public:
  Statement(const Db& db, std::string_view sql);
  Statement(Statement&& other) noexcept
      : db_(other.db_), stmt_(std::exchange(other.stmt_, nullptr)) {}
  Statement& operator=(Statement&&) = delete;
  Statement(const Statement&) = delete;
  ~Statement();

  // Parameters are numbered from 1, as in SQLite.
  Statement& bind(int index, std::int64_t value);
  Statement& bind(int index, std::string_view text);
  Statement& bind(int index, std::span<const std::uint8_t> blob);
  Statement& bind_null(int index);
  template <class T>
  Statement& bind(int index, const std::optional<T>& value) {
    return value ? bind(index, *value) : bind_null(index);
  }

  // True while there is a row to read; false when done. Throws on error.
  bool step();
  // Runs a statement without results to completion, then resets it.
  void run();
  void reset();

  bool is_null(int column) const;
  std::int64_t column_int(int column) const;
  std::string column_text(int column) const;
  std::vector<std::uint8_t> column_blob(int column) const;

 private:
  const Db* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

// BEGIN IMMEDIATE on construction; ROLLBACK unless commit() was called.
class Transaction {
 public:
  explicit Transaction(Db& db);
  Transaction(const Transaction&) = delete;
  ~Transaction();
  void commit();

 private:
  Db& db_;
  bool done_ = false;
};

}  // namespace mongoguard::journal::sqlite
