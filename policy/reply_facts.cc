#include "policy/reply_facts.h"

#include <string_view>

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
    // By length first: a reply has a handful of fields, this few names.
    const std::string_view key(bson_iter_key(&it), bson_iter_key_len(&it));
    switch (key.size()) {
      case 1:
        if (key == "n") facts.n = as_integer(&it);
        break;
      case 2:
        if (key == "ok") facts.ok = bson_iter_as_bool(&it);
        break;
      case 4:
        if (key == "code") {
          if (auto c = as_integer(&it)) facts.code = static_cast<std::int32_t>(*c);
        } else if (key == "done") {
          facts.done = bson_iter_as_bool(&it);
        }
        break;
      case 6:
        if (key == "errmsg" && BSON_ITER_HOLDS_UTF8(&it))
          facts.errmsg = bson_iter_utf8(&it, nullptr);
        break;
      case 8:
        if (key == "nDeleted") {
          facts.n_deleted = as_integer(&it);
        } else if (key == "nMatched") {
          facts.n_matched = as_integer(&it);
        }
        break;
      case 9:
        if (key == "nModified") {
          facts.n_modified = as_integer(&it);
        } else if (key == "nUpserted") {
          facts.n_upserted = as_integer(&it);
        }
        break;
      case 11:
        if (key == "writeErrors" && BSON_ITER_HOLDS_ARRAY(&it)) {
          bson_iter_t child;
          if (bson_iter_recurse(&it, &child)) {
            while (bson_iter_next(&child)) ++facts.write_errors;
          }
        }
        break;
      case 15:
        if (key == "lastErrorObject" && BSON_ITER_HOLDS_DOCUMENT(&it)) {
          bson_iter_t child;
          if (bson_iter_recurse(&it, &child) && bson_iter_find(&child, "n")) {
            facts.n = as_integer(&child);
          }
        }
        break;
      default:
        break;
    }
  }
  return facts;
}

}  // namespace mongoguard::policy
