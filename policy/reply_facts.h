// What a server's reply says happened: the documents a write affected and
// whether it failed. Read only for replies to inspected commands.
#pragma once

#include <bson/bson.h>

#include <cstdint>
#include <optional>
#include <string>

namespace mongoguard::policy {

struct ReplyFacts {
  bool ok = false;
  std::optional<std::int64_t> n;  // n, or lastErrorObject.n for findAndModify
  std::optional<std::int64_t> n_modified;
  // mongod 8.0 bulkWrite totals (it has no top-level n).
  std::optional<std::int64_t> n_deleted;
  std::optional<std::int64_t> n_matched;
  std::optional<std::int64_t> n_upserted;
  std::int64_t write_errors = 0;
  std::optional<std::int32_t> code;
  std::string errmsg;
  bool done = false;  // SASL conversations: done: true
};

ReplyFacts read_reply_facts(const bson_t* reply);

}  // namespace mongoguard::policy
