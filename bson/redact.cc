// Redacted and plain relaxed extended JSON rendering.
#include "bson/redact.h"

#include <cstdio>
#include <ctime>

#include "bson/text.h"

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

// Text that relaxed extended JSON prints as is: no quote, backslash or
// control character (libbson escapes those, and 0x7f, its own way).
// Text that is not UTF-8 is declined too: libbson refuses to render it
// (bson_validate's UTF-8 flag does not look at string values).
bool plain_text(const char* s, std::size_t n) {
  bool high = false;
  for (std::size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == '"' || c == '\\' || c == 0x7f) return false;
    high |= c >= 0x80;
  }
  return !high || valid_utf8(std::string_view(s, n));
}

void append_quoted(std::string& out, const char* s, std::size_t n) {
  out += '"';
  out.append(s, n);
  out += '"';
}

// {"$date": "..."} as libbson writes a date in years 0-9999 (milliseconds
// only when there are some); false outside them.
bool append_date(std::string& out, std::int64_t ms) {
  constexpr std::int64_t kYear10000 = 253402300800000;  // first ms past 9999
  if (ms < 0 || ms >= kYear10000) return false;
  const time_t seconds = static_cast<time_t>(ms / 1000);
  struct tm t;
  if (gmtime_r(&seconds, &t) == nullptr) return false;
  char buf[128];
  const int millis = static_cast<int>(ms % 1000);
  if (millis) {
    std::snprintf(buf, sizeof buf, "{ \"$date\" : \"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\" }",
                  t.tm_year + 1900, t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, millis);
  } else {
    std::snprintf(buf, sizeof buf, "{ \"$date\" : \"%04d-%02d-%02dT%02d:%02d:%02dZ\" }",
                  t.tm_year + 1900, t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec);
  }
  out += buf;
  return true;
}

bool append_plain(bson_iter_t* it, std::string& out, bool array, int depth, bool redact);

// The value at `it`, or with `redact` its type's placeholder (a container's
// own contents redacted); false for a type this fast path does not render.
bool append_value(bson_iter_t* it, std::string& out, int depth, bool redact) {
  const bson_type_t type = bson_iter_type(it);
  if (redact) {
    bson_iter_t child;
    if ((type == BSON_TYPE_DOCUMENT || type == BSON_TYPE_ARRAY) && depth < kMaxDepth &&
        bson_iter_recurse(it, &child)) {
      return append_plain(&child, out, type == BSON_TYPE_ARRAY, depth + 1, true);
    }
    const std::string_view p = type_placeholder(type);
    append_quoted(out, p.data(), p.size());
    return true;
  }
  switch (type) {
    case BSON_TYPE_UTF8: {
      std::uint32_t len = 0;
      const char* value = bson_iter_utf8(it, &len);
      if (!plain_text(value, len)) return false;
      append_quoted(out, value, len);
      return true;
    }
    case BSON_TYPE_INT32:
      out += std::to_string(bson_iter_int32(it));
      return true;
    case BSON_TYPE_INT64:
      out += std::to_string(bson_iter_int64(it));
      return true;
    case BSON_TYPE_BOOL:
      out += bson_iter_bool(it) ? "true" : "false";
      return true;
    case BSON_TYPE_NULL:
      out += "null";
      return true;
    case BSON_TYPE_DATE_TIME:
      return append_date(out, bson_iter_date_time(it));
    case BSON_TYPE_DOCUMENT:
    case BSON_TYPE_ARRAY: {
      bson_iter_t child;
      if (depth >= kMaxDepth || !bson_iter_recurse(it, &child)) return false;
      return append_plain(&child, out, type == BSON_TYPE_ARRAY, depth + 1, false);
    }
    default:
      return false;
  }
}

// libbson's layout: "{ " key " : " value (", " key " : " value)* " }", an
// empty container as "{ }" at the top and "{  }" / "[  ]" inside.
bool append_plain(bson_iter_t* it, std::string& out, bool array, int depth, bool redact) {
  bool first = true;
  out += array ? "[ " : "{ ";
  while (bson_iter_next(it)) {
    if (!first) out += ", ";
    first = false;
    if (!array) {
      const char* key = bson_iter_key(it);
      const std::size_t key_len = bson_iter_key_len(it);
      if (!plain_text(key, key_len)) return false;
      append_quoted(out, key, key_len);
      out += " : ";
    }
    if (!append_value(it, out, depth, redact)) return false;
  }
  if (it->err_off != 0) return false;  // a corrupt element stopped the walk
  if (first && depth == 0) {
    out += '}';
  } else {
    out += array ? " ]" : " }";
  }
  return true;
}

}  // namespace

std::optional<std::string> relaxed_json_plain(const bson_t* doc) {
  bson_iter_t it;
  if (doc == nullptr || !bson_iter_init(&it, doc)) return std::nullopt;
  std::string out;
  out.reserve(doc->len + doc->len / 2 + 16);
  if (!append_plain(&it, out, false, 0, false)) return std::nullopt;
  return out;
}

bool append_redacted_json_plain(const bson_t* doc, std::string& out) {
  bson_iter_t it;
  if (doc == nullptr || !bson_iter_init(&it, doc)) return false;
  const std::size_t before = out.size();
  if (append_plain(&it, out, false, 0, true)) return true;
  out.resize(before);
  return false;
}

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
