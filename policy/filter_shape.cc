// Recognising filters that match every document.
//
// A shape check that only looks for `{}` is defeated by a filter that says
// "everything" in other words. This recognises the common tautologies (and
// their $and/$or combinations); anything it does not recognise counts as
// selective. Counting what a write actually did (`n` in the reply) is the
// reliable half; this is the cheap half.
#include <algorithm>
#include <cctype>
#include <string>

#include "policy/classify_internal.h"

namespace mongoguard::policy {
namespace {

// Filters nest; a crafted one must not exhaust the stack. Beyond this depth a
// clause is treated as selective (the server itself refuses deeper nesting).
constexpr int kMaxDepth = 100;

bool filter_matches_all(const bson_t* filter, int depth);

// A $where body that returns true: "true", "return true;",
// "function() { return true }", ... (whitespace and semicolons ignored).
bool is_true_javascript(std::string_view code) {
  std::string s;
  s.reserve(code.size());
  for (char c : code) {
    if (!std::isspace(static_cast<unsigned char>(c)) && c != ';') s.push_back(c);
  }
  std::string_view v = s;
  for (std::string_view prefix : {"function(){", "()=>{"}) {
    if (v.starts_with(prefix) && v.ends_with("}")) {
      v = v.substr(prefix.size(), v.size() - prefix.size() - 1);
      break;
    }
  }
  if (v.starts_with("()=>")) v.remove_prefix(4);
  if (v.starts_with("return")) v.remove_prefix(6);
  while (v.size() >= 2 && v.front() == '(' && v.back() == ')') v = v.substr(1, v.size() - 2);
  return v == "true" || v == "1" || v == "!0" || v == "!false" || v == "!!1";
}

// An aggregation expression that is a truthy constant: true, a non-zero
// number, a string that is not a field path, {$literal: <truthy>}, and
// $and/$or of those.
bool expression_is_true(const bson_iter_t* it, int depth) {
  if (depth > kMaxDepth) return false;
  switch (bson_iter_type(it)) {
    case BSON_TYPE_BOOL:
    case BSON_TYPE_INT32:
    case BSON_TYPE_INT64:
    case BSON_TYPE_DOUBLE:
      return detail::truthy(it);
    case BSON_TYPE_UTF8: {
      const auto s = detail::as_string(it);
      return s && !s->starts_with("$");
    }
    case BSON_TYPE_DOCUMENT: {
      bson_iter_t child;
      if (!bson_iter_recurse(it, &child) || !bson_iter_next(&child)) return false;
      const std::string_view op = bson_iter_key(&child);
      bson_iter_t probe = child;
      if (bson_iter_next(&probe)) return false;  // several keys: not an operator form
      if (op == "$literal") {
        if (BSON_ITER_HOLDS_UTF8(&child)) return true;  // a literal string is truthy
        return expression_is_true(&child, depth + 1);
      }
      if ((op == "$and" || op == "$or") && BSON_ITER_HOLDS_ARRAY(&child)) {
        bson_iter_t arg;
        if (!bson_iter_recurse(&child, &arg)) return false;
        bool all = true;
        bool any = false;
        while (bson_iter_next(&arg)) {
          const bool t = expression_is_true(&arg, depth + 1);
          all = all && t;
          any = any || t;
        }
        return op == "$and" ? all : any;
      }
      return false;
    }
    default:
      return false;
  }
}

bool is_type(const bson_iter_t* it, bson_type_t t) { return bson_iter_type(it) == t; }

// {<field>: {<op>: <value>, ...}}: every operator must hold for every
// document. `is_id`: the field is _id, which every document has.
bool operators_match_all(const bson_iter_t* ops_it, bool is_id) {
  bson_iter_t op;
  if (!bson_iter_recurse(ops_it, &op)) return false;
  bool any = false;
  while (bson_iter_next(&op)) {
    any = true;
    const std::string_view name = bson_iter_key(&op);
    if (name == "$nin") {
      // Not in the empty set: true of any field, present or not.
      bson_iter_t elems;
      if (!BSON_ITER_HOLDS_ARRAY(&op) || !bson_iter_recurse(&op, &elems)) return false;
      if (bson_iter_next(&elems)) return false;
      continue;
    }
    // The rest only hold for a field every document has.
    if (!is_id) return false;
    if (name == "$exists") {
      if (!detail::truthy(&op)) return false;
    } else if (name == "$ne") {
      if (!is_type(&op, BSON_TYPE_NULL) && !is_type(&op, BSON_TYPE_UNDEFINED)) return false;
    } else if (name == "$gte" || name == "$gt") {
      if (!is_type(&op, BSON_TYPE_MINKEY)) return false;
    } else if (name == "$lte" || name == "$lt") {
      if (!is_type(&op, BSON_TYPE_MAXKEY)) return false;
    } else {
      return false;
    }
  }
  return any;
}

// One top-level clause of a filter.
bool clause_matches_all(const bson_iter_t* it, int depth) {
  const std::string_view key = bson_iter_key(it);
  if (key == "$and" || key == "$or") {
    bson_iter_t elems;
    if (!BSON_ITER_HOLDS_ARRAY(it) || !bson_iter_recurse(it, &elems)) return false;
    bool all = true;
    bool any = false;
    while (bson_iter_next(&elems)) {
      bson_t sub;
      const bool t = detail::as_document(&elems, &sub) && filter_matches_all(&sub, depth + 1);
      all = all && t;
      any = any || t;
    }
    // An empty $and/$or is refused by the server; nothing runs.
    return key == "$and" ? all : any;
  }
  if (key == "$expr") return expression_is_true(it, depth + 1);
  if (key == "$where") {
    if (BSON_ITER_HOLDS_UTF8(it) || BSON_ITER_HOLDS_CODE(it)) {
      std::uint32_t len = 0;
      const char* code =
          BSON_ITER_HOLDS_UTF8(it) ? bson_iter_utf8(it, &len) : bson_iter_code(it, &len);
      return is_true_javascript(std::string_view(code, len));
    }
    if (BSON_ITER_HOLDS_CODEWSCOPE(it)) {
      std::uint32_t len = 0;
      std::uint32_t scope_len = 0;
      const std::uint8_t* scope = nullptr;
      const char* code = bson_iter_codewscope(it, &len, &scope_len, &scope);
      return is_true_javascript(std::string_view(code, len));
    }
    return false;
  }
  // Clauses that do not select anything.
  if (key == "$comment" || key == "$alwaysTrue") return true;
  if (key == "$jsonSchema") {
    bson_t schema;
    return detail::as_document(it, &schema) && bson_empty(&schema);
  }
  if (key.starts_with("$")) return false;
  // A field: only an operator document can match every value.
  if (!BSON_ITER_HOLDS_DOCUMENT(it)) return false;
  bson_iter_t first;
  if (!bson_iter_recurse(it, &first) || !bson_iter_next(&first)) return false;  // {f: {}}
  if (bson_iter_key(&first)[0] != '$') return false;  // equality with a document
  return operators_match_all(it, key == "_id");
}

bool filter_matches_all(const bson_t* filter, int depth) {
  if (depth > kMaxDepth) return false;
  bson_iter_t it;
  if (!bson_iter_init(&it, filter)) return false;
  // Top-level clauses are an implicit $and: every one must match all.
  while (bson_iter_next(&it)) {
    if (!clause_matches_all(&it, depth)) return false;
  }
  return true;
}

}  // namespace

bool is_unfiltered(const bson_t* filter) {
  if (filter == nullptr) return true;
  return filter_matches_all(filter, 0);
}

}  // namespace mongoguard::policy
