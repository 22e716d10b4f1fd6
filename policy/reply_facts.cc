#include "policy/reply_facts.h"

#include <cstring>

namespace mongoguard::policy {

namespace {

std::optional<std::int64_t> as_integer(const bson_iter_t* it) {
  switch (bson_iter_type(it)) {
    case BSON_TYPE_INT32:
      return bson_iter_int32(it);
    case BSON_TYPE_INT64:
      return bson_iter_int64(it);
    case BSON_TYPE_DOUBLE:
      return static_cast<std::int64_t>(bson_iter_double(it));
    default:
      return std::nullopt;
  }
}

}  // namespace

ReplyFacts read_reply_facts(const bson_t* reply) {
  ReplyFacts facts;
  bson_iter_t it;
  if (!reply || !bson_iter_init(&it, reply)) return facts;
  while (bson_iter_next(&it)) {
    const char* key = bson_iter_key(&it);
    if (std::strcmp(key, "ok") == 0) {
      facts.ok = bson_iter_as_bool(&it);
    } else if (std::strcmp(key, "n") == 0) {
      facts.n = as_integer(&it);
    } else if (std::strcmp(key, "nModified") == 0) {
      facts.n_modified = as_integer(&it);
    } else if (std::strcmp(key, "nDeleted") == 0) {
      facts.n_deleted = as_integer(&it);
    } else if (std::strcmp(key, "nMatched") == 0) {
      facts.n_matched = as_integer(&it);
    } else if (std::strcmp(key, "nUpserted") == 0) {
      facts.n_upserted = as_integer(&it);
    } else if (std::strcmp(key, "code") == 0) {
      if (auto c = as_integer(&it)) facts.code = static_cast<std::int32_t>(*c);
    } else if (std::strcmp(key, "errmsg") == 0 && BSON_ITER_HOLDS_UTF8(&it)) {
      facts.errmsg = bson_iter_utf8(&it, nullptr);
    } else if (std::strcmp(key, "done") == 0) {
      facts.done = bson_iter_as_bool(&it);
    } else if (std::strcmp(key, "writeErrors") == 0 && BSON_ITER_HOLDS_ARRAY(&it)) {
      bson_iter_t child;
      if (bson_iter_recurse(&it, &child)) {
        while (bson_iter_next(&child)) ++facts.write_errors;
      }
    } else if (std::strcmp(key, "lastErrorObject") == 0 && BSON_ITER_HOLDS_DOCUMENT(&it)) {
      bson_iter_t child;
      if (bson_iter_recurse(&it, &child) && bson_iter_find(&child, "n")) {
        facts.n = as_integer(&child);
      }
    }
  }
  return facts;
}

}  // namespace mongoguard::policy
