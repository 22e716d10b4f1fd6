// Redacted and plain relaxed extended JSON rendering.
#include "bson/redact.h"

namespace mongoguard::wire {
namespace {

// Documents reaching the proxy are validated to a bounded depth, but this
// renderer also serves documents built elsewhere (explain, tests): past this
// depth a sub-document is summarised by its type instead of recursing.
constexpr int kMaxDepth = 200;

std::string to_json(const bson_t* doc) {
  std::size_t len = 0;
  char* json = bson_as_relaxed_extended_json(doc, &len);
  if (json == nullptr) return {};
  std::string out(json, len);
  bson_free(json);
  return out;
}

void append_placeholder(bson_t* out, const char* key, std::uint32_t key_len, bson_type_t type) {
  const std::string_view p = type_placeholder(type);
  bson_append_utf8(out, key, static_cast<int>(key_len), p.data(), static_cast<int>(p.size()));
}

// Copies `in` into `out`, keeping keys and containers, replacing leaves.
void redact_into(bson_iter_t* in, bson_t* out, int depth) {
  while (bson_iter_next(in)) {
    const char* key = bson_iter_key(in);
    const std::uint32_t key_len = bson_iter_key_len(in);
    const bson_type_t type = bson_iter_type(in);
    const bool container = type == BSON_TYPE_DOCUMENT || type == BSON_TYPE_ARRAY;
    bson_iter_t child;
    if (!container || depth >= kMaxDepth || !bson_iter_recurse(in, &child)) {
      append_placeholder(out, key, key_len, type);
      continue;
    }
    bson_t sub;
    if (type == BSON_TYPE_DOCUMENT) {
      bson_append_document_begin(out, key, static_cast<int>(key_len), &sub);
      redact_into(&child, &sub, depth + 1);
      bson_append_document_end(out, &sub);
    } else {
      bson_append_array_begin(out, key, static_cast<int>(key_len), &sub);
      redact_into(&child, &sub, depth + 1);
      bson_append_array_end(out, &sub);
    }
  }
}

}  // namespace

std::string_view type_placeholder(bson_type_t type) {
  switch (type) {
    case BSON_TYPE_DOUBLE:
      return "<double>";
    case BSON_TYPE_UTF8:
      return "<string>";
    case BSON_TYPE_DOCUMENT:
      return "<document>";
    case BSON_TYPE_ARRAY:
      return "<array>";
    case BSON_TYPE_BINARY:
      return "<binary>";
    case BSON_TYPE_UNDEFINED:
      return "<undefined>";
    case BSON_TYPE_OID:
      return "<objectId>";
    case BSON_TYPE_BOOL:
      return "<bool>";
    case BSON_TYPE_DATE_TIME:
      return "<date>";
    case BSON_TYPE_NULL:
      return "<null>";
    case BSON_TYPE_REGEX:
      return "<regex>";
    case BSON_TYPE_DBPOINTER:
      return "<dbPointer>";
    case BSON_TYPE_CODE:
      return "<javascript>";
    case BSON_TYPE_SYMBOL:
      return "<symbol>";
    case BSON_TYPE_CODEWSCOPE:
      return "<javascriptWithScope>";
    case BSON_TYPE_INT32:
      return "<int32>";
    case BSON_TYPE_TIMESTAMP:
      return "<timestamp>";
    case BSON_TYPE_INT64:
      return "<int64>";
    case BSON_TYPE_DECIMAL128:
      return "<decimal128>";
    case BSON_TYPE_MAXKEY:
      return "<maxKey>";
    case BSON_TYPE_MINKEY:
      return "<minKey>";
    case BSON_TYPE_EOD:
      break;
  }
  return "<unknown>";
}

bool redact_document(const bson_t* doc, bson_t* out) {
  bson_iter_t it;
  if (doc == nullptr || !bson_iter_init(&it, doc)) return false;
  redact_into(&it, out, 0);
  return true;
}

std::string redacted_json(const bson_t* doc) {
  bson_t out = BSON_INITIALIZER;
  std::string json = redact_document(doc, &out) ? to_json(&out) : std::string();
  bson_destroy(&out);
  return json;
}

std::string relaxed_json(const bson_t* doc) {
  if (doc == nullptr) return {};
  return to_json(doc);
}

}  // namespace mongoguard::wire
