// Recognising filters that match every document.
//
// A shape check that only looks for `{}` is defeated by a filter that says
// "everything" in other words. Each clause is judged to match every
// document, no document, or "some" (anything not provably one of the two);
// negations ($not, $nor) turn a provably impossible condition into a
// tautology. Only what is proven counts: anything unrecognised is "some",
// so a selective filter is never called unfiltered. Counting what a write
// actually did (`n` in the reply) is the reliable half; this is the cheap
// half.
#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <string>

#include "policy/classify_internal.h"

namespace mongoguard::policy {
namespace {

// Filters nest; a crafted one must not exhaust the stack. Beyond this depth a
// clause is treated as selective (the server itself refuses deeper nesting).
constexpr int kMaxDepth = 100;

// What a clause matches, as far as can be proven without data.
enum class Truth : std::uint8_t { kSome, kAll, kNone };

Truth negate(Truth t) {
  if (t == Truth::kAll) return Truth::kNone;
  if (t == Truth::kNone) return Truth::kAll;
  return Truth::kSome;
}

Truth of(bool all) { return all ? Truth::kAll : Truth::kNone; }

// Accumulates a conjunction: none if any part matches none, all if every
// part matches all (and, vacuously, when there are no parts).
struct Conjunction {
  bool all = true;
  bool none = false;
  void add(Truth t) {
    all = all && t == Truth::kAll;
    none = none || t == Truth::kNone;
  }
  Truth result() const { return none ? Truth::kNone : all ? Truth::kAll : Truth::kSome; }
};

Truth judge_filter(const bson_t* filter, int depth);

// BSONElement::trueValue(), how the server reads $exists: false only for
// false, a zero number, null, undefined (and a missing value). Every other
// value, an empty string or a document included, is true.
bool server_true_value(const bson_iter_t* it) {
  switch (bson_iter_type(it)) {
    case BSON_TYPE_BOOL:
      return bson_iter_bool(it);
    case BSON_TYPE_INT32:
      return bson_iter_int32(it) != 0;
    case BSON_TYPE_INT64:
      return bson_iter_int64(it) != 0;
    case BSON_TYPE_DOUBLE:
      return bson_iter_double(it) != 0.0;  // NaN is true, as for the server
    case BSON_TYPE_DECIMAL128: {
      bson_decimal128_t d;
      bson_iter_decimal128(it, &d);
      // Combination bits 11: infinity/NaN (true) or a non-canonical
      // coefficient, which reads as zero. Otherwise zero has an all-zero
      // 113-bit coefficient, whatever its sign and exponent.
      if (((d.high >> 61) & 3) == 3) return ((d.high >> 59) & 0xf) == 0xf;
      return d.low != 0 || (d.high & 0x0001ffffffffffffULL) != 0;
    }
    case BSON_TYPE_NULL:
    case BSON_TYPE_UNDEFINED:
    case BSON_TYPE_EOD:
      return false;
    default:
      return true;
  }
}

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

// ---- $expr: constant aggregation expressions ---------------------------------

// A constant an aggregation expression evaluates to, when it provably does
// not depend on the document: null, a boolean, a number or a string.
struct Constant {
  enum class Kind : std::uint8_t { kNull, kNumber, kString, kBool } kind = Kind::kNull;
  double number = 0;
  std::string_view text;
  bool boolean = false;

  // Aggregation truthiness: false, null and zero are false; strings (even
  // empty ones) are true.
  bool truthy() const {
    switch (kind) {
      case Kind::kNull:
        return false;
      case Kind::kNumber:
        return number != 0;
      case Kind::kBool:
        return boolean;
      case Kind::kString:
        return true;
    }
    return false;
  }
};

std::optional<Constant> evaluate(const bson_iter_t* it, int depth);

std::optional<Constant> boolean_constant(bool b) {
  Constant c;
  c.kind = Constant::Kind::kBool;
  c.boolean = b;
  return c;
}

// A literal value (no field paths or operators inside it).
std::optional<Constant> literal(const bson_iter_t* it) {
  Constant c;
  switch (bson_iter_type(it)) {
    case BSON_TYPE_NULL:
    case BSON_TYPE_UNDEFINED:
      return c;
    case BSON_TYPE_BOOL:
      return boolean_constant(bson_iter_bool(it));
    case BSON_TYPE_INT32:
    case BSON_TYPE_INT64:
    case BSON_TYPE_DOUBLE:
      c.kind = Constant::Kind::kNumber;
      c.number = bson_iter_as_double(it);
      if (std::isnan(c.number)) return std::nullopt;  // comparisons with NaN: not modelled
      return c;
    case BSON_TYPE_UTF8: {
      std::uint32_t len = 0;
      const char* s = bson_iter_utf8(it, &len);
      c.kind = Constant::Kind::kString;
      c.text = std::string_view(s, len);
      return c;
    }
    default:
      return std::nullopt;
  }
}

// Order of two constants of comparable kinds (-1, 0, 1); nullopt when their
// kinds differ (only equality is decided then: different kinds are never
// equal, as BSON orders types before values).
std::optional<int> compare(const Constant& a, const Constant& b) {
  if (a.kind != b.kind) return std::nullopt;
  switch (a.kind) {
    case Constant::Kind::kNull:
      return 0;
    case Constant::Kind::kNumber:
      return a.number < b.number ? -1 : a.number > b.number ? 1 : 0;
    case Constant::Kind::kBool:
      return static_cast<int>(a.boolean) - static_cast<int>(b.boolean);
    case Constant::Kind::kString:
      return a.text < b.text ? -1 : a.text > b.text ? 1 : 0;
  }
  return std::nullopt;
}

// The arguments of an expression operator: an array, or one bare value.
std::vector<std::optional<Constant>> arguments(const bson_iter_t* arg, int depth) {
  std::vector<std::optional<Constant>> out;
  if (!BSON_ITER_HOLDS_ARRAY(arg)) {
    out.push_back(evaluate(arg, depth + 1));
    return out;
  }
  bson_iter_t elems;
  if (!bson_iter_recurse(arg, &elems)) return out;
  while (bson_iter_next(&elems) && out.size() <= 64) out.push_back(evaluate(&elems, depth + 1));
  return out;
}

std::optional<Constant> evaluate_operator(std::string_view op, const bson_iter_t* arg, int depth) {
  if (op == "$literal") return literal(arg);
  const auto args = arguments(arg, depth);
  if (op == "$and" || op == "$or") {
    // Short-circuits like the server: one false decides $and, one true $or,
    // whatever the other arguments are.
    const bool is_and = op == "$and";
    bool unknown = false;
    for (const auto& a : args) {
      if (!a) {
        unknown = true;
      } else if (a->truthy() != is_and) {
        return boolean_constant(!is_and);
      }
    }
    if (unknown) return std::nullopt;
    return boolean_constant(is_and);
  }
  if (op == "$not") {
    if (args.size() != 1 || !args[0]) return std::nullopt;
    return boolean_constant(!args[0]->truthy());
  }
  static constexpr std::array<std::string_view, 6> kComparisons = {"$eq",  "$ne", "$gt",
                                                                   "$gte", "$lt", "$lte"};
  if (std::find(kComparisons.begin(), kComparisons.end(), op) == kComparisons.end()) {
    return std::nullopt;
  }
  if (args.size() != 2 || !args[0] || !args[1]) return std::nullopt;
  const auto order = compare(*args[0], *args[1]);
  if (op == "$eq" || op == "$ne") {
    const bool equal = order && *order == 0;
    return boolean_constant(op == "$eq" ? equal : !equal);
  }
  if (!order) return std::nullopt;
  if (op == "$gt") return boolean_constant(*order > 0);
  if (op == "$gte") return boolean_constant(*order >= 0);
  if (op == "$lt") return boolean_constant(*order < 0);
  return boolean_constant(*order <= 0);
}

// The constant an expression evaluates to, or nullopt when it may depend on
// the document (field paths "$a", variables "$$x", unknown operators).
std::optional<Constant> evaluate(const bson_iter_t* it, int depth) {
  if (depth > kMaxDepth) return std::nullopt;
  if (BSON_ITER_HOLDS_UTF8(it)) {
    auto c = literal(it);
    if (c && c->text.starts_with("$")) return std::nullopt;  // a field path or variable
    return c;
  }
  if (!BSON_ITER_HOLDS_DOCUMENT(it)) return literal(it);
  bson_iter_t child;
  if (!bson_iter_recurse(it, &child) || !bson_iter_next(&child)) return std::nullopt;
  const std::string_view op = bson_iter_key(&child);
  bson_iter_t probe = child;
  if (bson_iter_next(&probe)) return std::nullopt;  // several keys: not an operator form
  return evaluate_operator(op, &child, depth);
}

Truth judge_expression(const bson_iter_t* it, int depth) {
  const auto c = evaluate(it, depth);
  if (!c) return Truth::kSome;
  return of(c->truthy());
}

// ---- field conditions ----------------------------------------------------------

bool is_type(const bson_iter_t* it, bson_type_t t) { return bson_iter_type(it) == t; }
bool is_nullish(const bson_iter_t* it) {
  return is_type(it, BSON_TYPE_NULL) || is_type(it, BSON_TYPE_UNDEFINED);
}

bool is_empty_array(const bson_iter_t* it) {
  bson_iter_t elems;
  return BSON_ITER_HOLDS_ARRAY(it) && bson_iter_recurse(it, &elems) && !bson_iter_next(&elems);
}

// The BSON type codes $type accepts, and its aliases. An _id can hold any
// type but an array; a $type list naming every one of those matches every
// document.
constexpr std::array<int, 20> kIdTypes = {1,  2,  3,  5,  6,  7,  8,  9,  10, 11,
                                          12, 13, 14, 15, 16, 17, 18, 19, -1, 127};

void add_type(const bson_iter_t* it, std::vector<int>& types) {
  if (BSON_ITER_HOLDS_NUMBER(it)) {
    const double d = bson_iter_as_double(it);
    if (d == std::floor(d) && d >= -1 && d <= 127) types.push_back(static_cast<int>(d));
    return;
  }
  const auto name = detail::as_string(it);
  if (!name) return;
  static constexpr std::array<std::pair<std::string_view, int>, 21> kNames = {{
      {"double", 1},      {"string", 2},     {"object", 3},
      {"array", 4},       {"binData", 5},    {"undefined", 6},
      {"objectId", 7},    {"bool", 8},       {"date", 9},
      {"null", 10},       {"regex", 11},     {"dbPointer", 12},
      {"javascript", 13}, {"symbol", 14},    {"javascriptWithScope", 15},
      {"int", 16},        {"timestamp", 17}, {"long", 18},
      {"decimal", 19},    {"minKey", -1},    {"maxKey", 127},
  }};
  if (*name == "number") {
    types.insert(types.end(), {1, 16, 18, 19});
    return;
  }
  for (const auto& [text, code] : kNames) {
    if (*name == text) types.push_back(code);
  }
}

bool names_every_id_type(const bson_iter_t* it) {
  std::vector<int> types;
  if (BSON_ITER_HOLDS_ARRAY(it)) {
    bson_iter_t elems;
    if (!bson_iter_recurse(it, &elems)) return false;
    while (bson_iter_next(&elems)) add_type(&elems, types);
  } else {
    add_type(it, types);
  }
  return std::all_of(kIdTypes.begin(), kIdTypes.end(), [&](int t) {
    return std::find(types.begin(), types.end(), t) != types.end();
  });
}

Truth judge_operators(const bson_iter_t* ops_it, bool is_id, int depth);

// One operator of {<field>: {<op>: <value>, ...}}. `is_id`: the field is
// _id, which every document has (and which, like the existing `$ne: null`
// rule assumes, is never null).
Truth judge_operator(const bson_iter_t* op, bool is_id, int depth) {
  const std::string_view name = bson_iter_key(op);
  // True or false of any field, present or not.
  if (name == "$nin" && is_empty_array(op)) return Truth::kAll;
  if ((name == "$in" || name == "$all") && is_empty_array(op)) return Truth::kNone;
  if (name == "$not") {
    // A regex (or anything but an operator document) is selective.
    if (!BSON_ITER_HOLDS_DOCUMENT(op)) return Truth::kSome;
    bson_iter_t first;
    if (!bson_iter_recurse(op, &first) || !bson_iter_next(&first) ||
        bson_iter_key(&first)[0] != '$') {
      return Truth::kSome;
    }
    return negate(judge_operators(op, is_id, depth + 1));
  }
  // The rest are decided only for a field every document has.
  if (!is_id) return Truth::kSome;
  if (name == "$exists") return of(server_true_value(op));
  if (name == "$ne" && is_nullish(op)) return Truth::kAll;
  if (name == "$eq" && is_nullish(op)) return Truth::kNone;
  if ((name == "$gte" || name == "$gt") && is_type(op, BSON_TYPE_MINKEY)) return Truth::kAll;
  if ((name == "$lte" || name == "$lt") && is_type(op, BSON_TYPE_MAXKEY)) return Truth::kAll;
  if (name == "$type" && names_every_id_type(op)) return Truth::kAll;
  return Truth::kSome;
}

// Every operator of an operator document must hold (a conjunction).
Truth judge_operators(const bson_iter_t* ops_it, bool is_id, int depth) {
  if (depth > kMaxDepth) return Truth::kSome;
  bson_iter_t op;
  if (!bson_iter_recurse(ops_it, &op)) return Truth::kSome;
  Conjunction all;
  bool any = false;
  while (bson_iter_next(&op)) {
    any = true;
    all.add(judge_operator(&op, is_id, depth));
  }
  return any ? all.result() : Truth::kSome;
}

// $and / $or / $nor over an array of filters.
Truth judge_logical(std::string_view key, const bson_iter_t* it, int depth) {
  bson_iter_t elems;
  if (!BSON_ITER_HOLDS_ARRAY(it) || !bson_iter_recurse(it, &elems)) return Truth::kSome;
  Conjunction every;       // every branch
  bool any_all = false;    // some branch matches everything
  bool every_none = true;  // every branch matches nothing
  bool empty = true;
  while (bson_iter_next(&elems)) {
    empty = false;
    bson_t sub;
    const Truth t =
        detail::as_document(&elems, &sub) ? judge_filter(&sub, depth + 1) : Truth::kSome;
    every.add(t);
    any_all = any_all || t == Truth::kAll;
    every_none = every_none && t == Truth::kNone;
  }
  if (key == "$and") return every.result();  // (an empty $and is refused by the server)
  if (empty) return Truth::kSome;            // refused by the server; nothing runs
  const Truth disjunction = any_all ? Truth::kAll : every_none ? Truth::kNone : Truth::kSome;
  return key == "$or" ? disjunction : negate(disjunction);
}

Truth judge_where(const bson_iter_t* it) {
  std::uint32_t len = 0;
  const char* code = nullptr;
  if (BSON_ITER_HOLDS_UTF8(it)) {
    code = bson_iter_utf8(it, &len);
  } else if (BSON_ITER_HOLDS_CODE(it)) {
    code = bson_iter_code(it, &len);
  } else if (BSON_ITER_HOLDS_CODEWSCOPE(it)) {
    std::uint32_t scope_len = 0;
    const std::uint8_t* scope = nullptr;
    code = bson_iter_codewscope(it, &len, &scope_len, &scope);
  } else {
    return Truth::kSome;
  }
  return is_true_javascript(std::string_view(code, len)) ? Truth::kAll : Truth::kSome;
}

// One top-level clause of a filter.
Truth judge_clause(const bson_iter_t* it, int depth) {
  const std::string_view key = bson_iter_key(it);
  if (key == "$and" || key == "$or" || key == "$nor") return judge_logical(key, it, depth);
  if (key == "$expr") return judge_expression(it, depth + 1);
  if (key == "$where") return judge_where(it);
  // Clauses that do not select anything, or select nothing.
  if (key == "$comment" || key == "$alwaysTrue") return Truth::kAll;
  if (key == "$alwaysFalse") return Truth::kNone;
  if (key == "$jsonSchema") {
    bson_t schema;
    return detail::as_document(it, &schema) && bson_empty(&schema) ? Truth::kAll : Truth::kSome;
  }
  if (key.starts_with("$")) return Truth::kSome;
  const bool is_id = key == "_id";
  bson_iter_t first;
  if (BSON_ITER_HOLDS_DOCUMENT(it) && bson_iter_recurse(it, &first) && bson_iter_next(&first) &&
      bson_iter_key(&first)[0] == '$') {
    return judge_operators(it, is_id, depth);
  }
  // Equality: {_id: null} selects nothing under the same assumption as
  // {_id: {$ne: null}} selecting everything; other equalities are selective.
  return is_id && is_nullish(it) ? Truth::kNone : Truth::kSome;
}

Truth judge_filter(const bson_t* filter, int depth) {
  if (depth > kMaxDepth) return Truth::kSome;
  bson_iter_t it;
  if (!bson_iter_init(&it, filter)) return Truth::kSome;
  // Top-level clauses are an implicit $and.
  Conjunction all;
  while (bson_iter_next(&it)) all.add(judge_clause(&it, depth));
  return all.result();
}

// A document that keeps nothing but (at most) _id.
bool only_id(const bson_t* doc) {
  bson_iter_t it;
  if (!bson_iter_init(&it, doc)) return false;
  while (bson_iter_next(&it)) {
    if (std::string_view(bson_iter_key(&it)) != "_id") return false;
  }
  return true;
}

bool iter_only_id(const bson_iter_t* it) {
  bson_t doc;
  return detail::as_document(it, &doc) && only_id(&doc);
}

// The new document of $replaceWith/$replaceRoot erases when it keeps
// nothing but _id, written as is ({_id: "$_id"}, {}) or as a constant
// ({$literal: {}}).
bool new_root_erases(const bson_iter_t* root) {
  if (iter_only_id(root)) return true;
  bson_t doc;
  bson_iter_t literal;
  if (!detail::as_document(root, &doc) || !detail::find(&doc, "$literal", &literal)) return false;
  bson_iter_t it;
  std::size_t keys = 0;
  if (bson_iter_init(&it, &doc)) {
    while (bson_iter_next(&it)) ++keys;
  }
  return keys == 1 && iter_only_id(&literal);
}

// One pipeline stage that leaves only _id: {$replaceWith: {}} /
// {$replaceRoot: {newRoot: {_id: ...}}}, a new root of constants, or
// {$project: {_id: 1}}.
bool stage_erases(const bson_t& stage) {
  bson_iter_t it;
  if (!bson_iter_init(&it, &stage) || !bson_iter_next(&it)) return false;
  const std::string_view name = bson_iter_key(&it);
  if (name == "$replaceWith") return new_root_erases(&it);
  if (name == "$replaceRoot") {
    bson_t spec;
    bson_iter_t root;
    return detail::as_document(&it, &spec) && detail::find(&spec, "newRoot", &root) &&
           new_root_erases(&root);
  }
  if (name == "$project") {
    bson_t spec;
    bson_iter_t id;
    return detail::as_document(&it, &spec) && only_id(&spec) && detail::find(&spec, "_id", &id) &&
           server_true_value(&id);
  }
  return false;
}

}  // namespace

bool is_unfiltered(const bson_t* filter) {
  if (filter == nullptr) return true;
  return judge_filter(filter, 0) == Truth::kAll;
}

namespace detail {

bool is_erasing_replacement(const bson_iter_t* u) {
  if (u == nullptr) return false;
  if (BSON_ITER_HOLDS_DOCUMENT(u)) {
    bson_t doc;
    if (!as_document(u, &doc)) return false;
    // An operator update ({$set: ...}) keeps the fields it does not name.
    bson_iter_t first;
    if (bson_iter_init(&first, &doc) && bson_iter_next(&first) && bson_iter_key(&first)[0] == '$') {
      return false;
    }
    return only_id(&doc);
  }
  if (BSON_ITER_HOLDS_ARRAY(u)) {
    // A pipeline erases when one of its stages leaves only _id: later
    // stages could add fields back, but only from constants or the
    // (already erased) document, so the original content is gone.
    bson_iter_t stages;
    if (!bson_iter_recurse(u, &stages)) return false;
    while (bson_iter_next(&stages)) {
      bson_t stage;
      if (as_document(&stages, &stage) && stage_erases(stage)) return true;
    }
  }
  return false;
}

}  // namespace detail
}  // namespace mongoguard::policy
