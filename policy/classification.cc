// The target accumulator and small BSON helpers the classifiers share.
#include <cstring>

#include "bson/redact.h"
#include "policy/classify_internal.h"

namespace mongoguard::policy::detail {

Classification::Classification(std::string_view command, std::string_view database) {
  info.command = std::string(command);
  info.database = std::string(database);
}

std::size_t Classification::target(Operation op, Operation kind, std::string_view ns) {
  for (std::size_t i = 0; i < keys_.size(); ++i) {
    if (keys_[i].op == op && keys_[i].kind == kind && info.targets[i].ns == ns) return i;
  }
  Target t;
  t.op = op;
  t.matches.add(op);
  t.matches.add(kind);
  t.ns = std::string(ns);
  info.targets.push_back(std::move(t));
  keys_.push_back({op, kind});
  return info.targets.size() - 1;
}

namespace {

// What a capped count needs to measure one statement: its filter, collation
// and hint, copied (the request's bytes do not outlive classification).
MultiStatement multi_statement(const Statement& s) {
  MultiStatement m;
  m.upsert = s.upsert;
  if (s.filter != nullptr && s.filter_present) {
    const std::uint8_t* data = bson_get_data(s.filter);
    m.filter.assign(data, data + s.filter->len);
  }
  if (s.collation != nullptr || s.hint != nullptr) {
    bson_t options = BSON_INITIALIZER;
    if (s.collation != nullptr) bson_append_iter(&options, "collation", -1, s.collation);
    if (s.hint != nullptr) bson_append_iter(&options, "hint", -1, s.hint);
    const std::uint8_t* data = bson_get_data(&options);
    m.options.assign(data, data + options.len);
    bson_destroy(&options);
  }
  return m;
}

}  // namespace

void Classification::add_statement(std::size_t index, const Statement& s) {
  Target& t = info.targets[index];
  const bool unfiltered = !s.filter_present || s.filter == nullptr || is_unfiltered(s.filter);
  if (t.statements == 0) {
    if (s.filter != nullptr) {
      const std::uint8_t* data = bson_get_data(s.filter);
      t.filter_bson.assign(data, data + s.filter->len);
    }
    t.filter = FilterShape::kFiltered;
  }
  if (unfiltered) t.filter = FilterShape::kUnfiltered;
  ++t.statements;
  ++(s.multi ? t.multi_statements : t.single_statements);
  auto& statements = s.multi ? t.multi : t.singles;
  statements.push_back(multi_statement(s));
  t.upsert = t.upsert || s.upsert;
  if (!have_first_statement_) {
    have_first_statement_ = true;
    info.first_options = statements.back().options;
  }
}

void Classification::add_whole(std::size_t index) {
  Target& t = info.targets[index];
  ++t.statements;
  ++t.multi_statements;
}

std::size_t Classification::whole(Operation op, std::string_view ns) {
  const std::size_t i = target(op, op, ns);
  add_whole(i);
  return i;
}

void Classification::absorb(const CommandInfo& nested, Operation op) {
  for (const Target& n : nested.targets) {
    const std::size_t i = target(op, n.op, n.ns);
    Target& t = info.targets[i];
    t.matches.bits |= n.matches.bits;
    if (t.statements == 0) {
      t.filter = n.filter;
      t.filter_bson = n.filter_bson;
    } else if (n.filter == FilterShape::kUnfiltered) {
      t.filter = FilterShape::kUnfiltered;
    }
    t.statements += n.statements;
    t.multi.insert(t.multi.end(), n.multi.begin(), n.multi.end());
    t.singles.insert(t.singles.end(), n.singles.begin(), n.singles.end());
    t.single_statements += n.single_statements;
    t.multi_statements += n.multi_statements;
    t.upsert = t.upsert || n.upsert;
  }
}

std::optional<CommandInfo> Classification::finish() && {
  if (info.targets.empty() && !info.unjudged.empty()) {
    // Nothing could be read, so nothing is known to be harmless: refused
    // all the same, judged against the whole database.
    const Operation op = parse_operation(info.command).value_or(Operation::kApplyOps);
    whole(op, make_ns(info.database, "*"));
  }
  if (info.targets.empty()) return std::nullopt;
  return std::move(info);
}

std::string make_ns(std::string_view db, std::string_view coll) {
  std::string ns;
  ns.reserve(db.size() + 1 + coll.size());
  ns.append(db).append(".").append(coll);
  return ns;
}

namespace {

std::uint32_t read_u32(const std::uint8_t* p) {
  return static_cast<std::uint32_t>(p[0]) | static_cast<std::uint32_t>(p[1]) << 8 |
         static_cast<std::uint32_t>(p[2]) << 16 | static_cast<std::uint32_t>(p[3]) << 24;
}

// The size of the value of `type` at `p`, with `room` bytes before the
// document's last; false for a value libbson might refuse, and for the
// types this walk leaves to libbson (regex, DBPointer, code with scope,
// old binary, unknown types).
bool value_size(std::uint8_t type, const std::uint8_t* p, std::uint32_t room, std::uint32_t& size) {
  switch (type) {
    case BSON_TYPE_DOUBLE:
    case BSON_TYPE_DATE_TIME:
    case BSON_TYPE_TIMESTAMP:
    case BSON_TYPE_INT64:
      size = 8;
      break;
    case BSON_TYPE_INT32:
      size = 4;
      break;
    case BSON_TYPE_DECIMAL128:
      size = 16;
      break;
    case BSON_TYPE_OID:
      size = 12;
      break;
    case BSON_TYPE_BOOL:
      if (room < 1 || p[0] > 1) return false;
      size = 1;
      break;
    case BSON_TYPE_UNDEFINED:
    case BSON_TYPE_NULL:
    case BSON_TYPE_MAXKEY:
    case BSON_TYPE_MINKEY:
      size = 0;
      break;
    case BSON_TYPE_UTF8:
    case BSON_TYPE_CODE:
    case BSON_TYPE_SYMBOL: {
      if (room < 4) return false;
      const std::uint32_t l = read_u32(p);
      if (l < 1 || l > room - 4 || p[4 + l - 1] != 0) return false;
      size = 4 + l;
      break;
    }
    case BSON_TYPE_DOCUMENT:
    case BSON_TYPE_ARRAY: {
      if (room < 4) return false;
      const std::uint32_t l = read_u32(p);
      if (l < 5 || l > room) return false;
      size = l;
      break;
    }
    case BSON_TYPE_BINARY: {
      if (room < 5) return false;
      const std::uint32_t l = read_u32(p);
      if (p[4] == BSON_SUBTYPE_BINARY_DEPRECATED || l > room - 5) return false;
      size = 5 + l;
      break;
    }
    default:
      return false;
  }
  return size <= room;
}

// Walks the top-level elements of `doc`, calling `fn(offset, key)` for
// each until it returns false. libbson's own iterator costs about a
// hundred instructions an element; this a fraction, with every length
// checked against the document's. Returns false when an element it does
// not size (see value_size) stops the walk: the caller then asks libbson.
template <class Fn>
bool walk(const bson_t* doc, Fn&& fn) {
  const std::uint8_t* data = bson_get_data(doc);
  const std::uint32_t end = doc->len - 1;  // the document's last byte, its NUL
  if (doc->len < 5 || data[end] != 0) return false;
  std::uint32_t at = 4;
  while (at < end) {
    const auto* key = data + at + 1;
    const auto* nul = static_cast<const std::uint8_t*>(std::memchr(key, 0, end - at - 1));
    if (nul == nullptr) return false;
    const auto key_len = static_cast<std::uint32_t>(nul - key);
    if (!fn(at, std::string_view(reinterpret_cast<const char*>(key), key_len))) return true;
    const std::uint32_t value = at + 1 + key_len + 1;
    std::uint32_t size = 0;
    if (!value_size(data[at], data + value, end - value, size)) return false;
    at = value + size;
  }
  return true;
}

// An iterator on the element at `offset` (its key `key_len` long), as
// libbson's own iteration would have it there.
bool iter_at(const bson_t* doc, std::uint32_t offset, std::size_t key_len, bson_iter_t* out) {
  return bson_iter_init_from_data_at_offset(out, bson_get_data(doc), doc->len, offset,
                                            static_cast<std::uint32_t>(key_len));
}

// The index of the first key named `name` not found yet, or keys.size().
std::size_t unfound(std::initializer_list<std::string_view> keys, const bson_iter_t* const* out,
                    std::string_view name) {
  std::size_t i = 0;
  for (const std::string_view key : keys) {
    if (out[i] == nullptr && name == key) return i;
    ++i;
  }
  return i;
}

void find_all_with_libbson(const bson_t* doc, std::initializer_list<std::string_view> keys,
                           FoundField* storage, const bson_iter_t** out) {
  std::size_t missing = keys.size();
  for (std::size_t i = 0; i < keys.size(); ++i) out[i] = nullptr;
  bson_iter_t it;
  if (!bson_iter_init(&it, doc)) return;
  while (missing > 0 && bson_iter_next(&it)) {
    const std::size_t i = unfound(keys, out, {bson_iter_key(&it), bson_iter_key_len(&it)});
    if (i == keys.size()) continue;
    storage[i].it = it;
    out[i] = &storage[i].it;
    --missing;
  }
}

}  // namespace

bool find(const bson_t* doc, const char* key, bson_iter_t* out) {
  if (doc == nullptr) return false;
  const std::string_view wanted(key);
  bool found = false;
  bool refused = false;
  const bool walked = walk(doc, [&](std::uint32_t offset, std::string_view name) {
    if (name != wanted) return true;
    found = iter_at(doc, offset, name.size(), out);
    refused = !found;
    return false;
  });
  if (walked && !refused) return found;
  return bson_iter_init_find(out, doc, key);
}

void find_all(const bson_t* doc, std::initializer_list<std::string_view> keys, FoundField* storage,
              const bson_iter_t** out) {
  for (std::size_t i = 0; i < keys.size(); ++i) out[i] = nullptr;
  if (doc == nullptr) return;
  std::size_t missing = keys.size();
  bool refused = false;
  const bool walked = walk(doc, [&](std::uint32_t offset, std::string_view name) {
    const std::size_t i = unfound(keys, out, name);
    if (i == keys.size()) return true;
    if (!iter_at(doc, offset, name.size(), &storage[i].it)) {
      refused = true;
      return false;
    }
    out[i] = &storage[i].it;
    return --missing > 0;
  });
  if (!walked || refused) find_all_with_libbson(doc, keys, storage, out);
}

std::string_view first_string(const bson_t* body) {
  bson_iter_t it;
  if (body == nullptr || !bson_iter_init(&it, body) || !bson_iter_next(&it)) return {};
  return as_string(&it).value_or(std::string_view{});
}

bool as_document(const bson_iter_t* it, bson_t* out) {
  if (!BSON_ITER_HOLDS_DOCUMENT(it)) return false;
  std::uint32_t len = 0;
  const std::uint8_t* data = nullptr;
  bson_iter_document(it, &len, &data);
  return data != nullptr && bson_init_static(out, data, len);
}

std::optional<std::string_view> as_string(const bson_iter_t* it) {
  if (!BSON_ITER_HOLDS_UTF8(it)) return std::nullopt;
  std::uint32_t len = 0;
  const char* s = bson_iter_utf8(it, &len);
  return std::string_view(s, len);
}

bool truthy(const bson_iter_t* it) {
  switch (bson_iter_type(it)) {
    case BSON_TYPE_BOOL:
      return bson_iter_bool(it);
    case BSON_TYPE_INT32:
      return bson_iter_int32(it) != 0;
    case BSON_TYPE_INT64:
      return bson_iter_int64(it) != 0;
    case BSON_TYPE_DOUBLE:
      return bson_iter_double(it) != 0.0;
    default:
      return false;
  }
}

bool is_numeric_one(const bson_iter_t* it) {
  switch (bson_iter_type(it)) {
    case BSON_TYPE_INT32:
      return bson_iter_int32(it) == 1;
    case BSON_TYPE_INT64:
      return bson_iter_int64(it) == 1;
    case BSON_TYPE_DOUBLE:
      return bson_iter_double(it) == 1.0;
    default:
      return false;
  }
}

bool is_replacement(const bson_iter_t* u) {
  bson_t doc;
  if (!as_document(u, &doc)) return false;  // a pipeline (array) or malformed
  bson_iter_t it;
  if (!bson_iter_init(&it, &doc) || !bson_iter_next(&it)) return true;  // {} replaces
  return bson_iter_key(&it)[0] != '$';
}

std::string value_json(const bson_iter_t* it) {
  // Wrap the value in {"v": ...} and cut the wrapper off the rendering, so
  // every type gets libbson's escaping and extended-JSON form.
  bson_t wrapper = BSON_INITIALIZER;
  const bson_value_t* value = bson_iter_value(const_cast<bson_iter_t*>(it));
  bson_append_value(&wrapper, "v", 1, value);
  std::string json = wire::relaxed_json(&wrapper);
  bson_destroy(&wrapper);
  // Rendered as { "v" : <value> }.
  constexpr std::string_view kPrefix = "{ \"v\" : ";
  constexpr std::string_view kSuffix = " }";
  if (json.size() >= kPrefix.size() + kSuffix.size() && json.starts_with(kPrefix) &&
      json.ends_with(kSuffix)) {
    return json.substr(kPrefix.size(), json.size() - kPrefix.size() - kSuffix.size());
  }
  return json;
}

}  // namespace mongoguard::policy::detail
