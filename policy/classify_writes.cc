// Statement-level writes: delete, update, findAndModify, bulkWrite.
//
// Judge or refuse: every statement of these commands is read whole. A part
// whose type or shape the classifier does not expect (a statement that is
// not a document, a filter that is a string, an unknown bulkWrite verb, an
// option of an odd type) sets CommandInfo::unjudged, and the command is
// refused naming it. A guess would be a statement forwarded unjudged.
#include <string>

#include "policy/classify_internal.h"

namespace mongoguard::policy::detail {
namespace {

const char* type_name(bson_type_t type) {
  switch (type) {
    case BSON_TYPE_DOUBLE:
      return "double";
    case BSON_TYPE_UTF8:
      return "string";
    case BSON_TYPE_DOCUMENT:
      return "document";
    case BSON_TYPE_ARRAY:
      return "array";
    case BSON_TYPE_BINARY:
      return "binary";
    case BSON_TYPE_BOOL:
      return "bool";
    case BSON_TYPE_NULL:
      return "null";
    case BSON_TYPE_INT32:
      return "int";
    case BSON_TYPE_INT64:
      return "long";
    case BSON_TYPE_DECIMAL128:
      return "decimal";
    default:
      return "value of another type";
  }
}

void refuse(Classification& out, std::string what) {
  if (out.info.unjudged.empty()) out.info.unjudged = std::move(what);
}

// The statements of `field`, inline or as a kind-1 sequence, each checked to
// be a document; anything else leaves the command unjudged.
template <class Fn>
void each_statement(const CommandInput& in, const char* field, Classification& out, Fn&& fn) {
  bson_iter_t it;
  const bool inline_present = find(in.body, field, &it);
  const bool sequence = in.msg != nullptr && in.msg->sequence(field) != nullptr;
  if (!inline_present && !sequence) {
    refuse(out, std::string(in.command) + " without '" + field + "'");
    return;
  }
  if (inline_present && !BSON_ITER_HOLDS_ARRAY(&it)) {
    refuse(out, std::string("'") + field + "' is a " + type_name(bson_iter_type(&it)) +
                    ", not an array");
    return;
  }
  std::size_t index = 0;
  bson_iter_t child;
  if (inline_present && bson_iter_recurse(&it, &child)) {
    while (bson_iter_next(&child)) {
      bson_t doc;
      if (!as_document(&child, &doc)) {
        refuse(out, std::string("'") + field + "." + std::to_string(index) + "' is a " +
                        type_name(bson_iter_type(&child)) + ", not a document");
        return;
      }
      fn(static_cast<const bson_t&>(doc), index++);
    }
  }
  if (!sequence) return;
  for (const wire::DocView& view : in.msg->sequence(field)->docs()) {
    bson_t doc;
    if (!view.as_bson(&doc)) {
      refuse(out, std::string("document ") + std::to_string(index) + " of sequence '" + field +
                      "' cannot be read");
      return;
    }
    fn(static_cast<const bson_t&>(doc), index++);
  }
}

// Reads a statement's filter field. An absent filter is unfiltered (and is
// measured as every document); one that is not a document is not judged.
void read_filter(const bson_iter_t* it, const char* field, bson_t* storage, Statement& s,
                 const std::string& where, Classification& out) {
  if (it == nullptr) return;
  if (!as_document(it, storage)) {
    refuse(out, "'" + where + "." + field + "' is a " + type_name(bson_iter_type(it)) +
                    ", not a document");
    return;
  }
  s.filter = storage;
  s.filter_present = true;
}

void read_filter(const bson_t& stmt, const char* field, bson_t* storage, Statement& s,
                 const std::string& where, Classification& out) {
  bson_iter_t it;
  if (find(&stmt, field, &it)) read_filter(&it, field, storage, s, where, out);
}

// A bool option as the server reads it (bool or number). Another type is
// not judged: reading it as false could take a multi statement for a single.
bool option(const bson_iter_t* it, const char* field, const std::string& where,
            Classification& out) {
  if (it == nullptr) return false;
  if (!BSON_ITER_HOLDS_BOOL(it) && !BSON_ITER_HOLDS_NUMBER(it) && !BSON_ITER_HOLDS_NULL(it)) {
    refuse(out,
           "'" + where + "." + field + "' is a " + type_name(bson_iter_type(it)) + ", not a bool");
    return false;
  }
  return truthy(it);
}

bool option(const bson_t& stmt, const char* field, const std::string& where, Classification& out) {
  bson_iter_t it;
  return find(&stmt, field, &it) && option(&it, field, where, out);
}

// Update modifications at `field` decide between update and replace; an
// absent field (refused by the server) counts as an update.
Operation update_kind(const bson_t& stmt, const char* field) {
  bson_iter_t it;
  return find(&stmt, field, &it) && is_replacement(&it) ? Operation::kReplace : Operation::kUpdate;
}

void read_collation_hint(const bson_t& stmt, bson_iter_t* collation, bson_iter_t* hint,
                         Statement& s) {
  if (find(&stmt, "collation", collation)) s.collation = collation;
  if (find(&stmt, "hint", hint)) s.hint = hint;
}

// bulkWrite's nsInfo index: any numeric type with an integral value.
std::optional<std::int64_t> ns_index(const bson_iter_t* it) {
  if (BSON_ITER_HOLDS_INT32(it) || BSON_ITER_HOLDS_INT64(it)) return bson_iter_as_int64(it);
  if (BSON_ITER_HOLDS_DOUBLE(it)) {
    const double d = bson_iter_double(it);
    if (d >= 0 && d < 1e15 && static_cast<double>(static_cast<std::int64_t>(d)) == d) {
      return static_cast<std::int64_t>(d);
    }
  }
  return std::nullopt;
}

}  // namespace

void classify_delete(const CommandInput& in, Classification& out) {
  const std::string ns = make_ns(in.database, first_string(in.body));
  const std::size_t t = out.target(Operation::kDelete, Operation::kDelete, ns);
  each_statement(in, "deletes", out, [&](const bson_t& stmt, std::size_t i) {
    const std::string where = "deletes." + std::to_string(i);
    enum { kQ, kLimit, kCollation, kHint };
    FoundField storage[4];
    const bson_iter_t* field[4];
    find_all(&stmt, {"q", "limit", "collation", "hint"}, storage, field);
    Statement s;
    bson_t filter;
    read_filter(field[kQ], "q", &filter, s, where, out);
    // The server reads limit as a number that must be 0 or 1; anything that
    // is not numerically 1 (false, null, "1", missing) is judged as 0 = many.
    s.multi = !(field[kLimit] && is_numeric_one(field[kLimit]));
    s.collation = field[kCollation];
    s.hint = field[kHint];
    out.add_statement(t, s);
  });
}

void classify_update(const CommandInput& in, Classification& out) {
  const std::string ns = make_ns(in.database, first_string(in.body));
  bool any = false;
  each_statement(in, "updates", out, [&](const bson_t& stmt, std::size_t i) {
    const std::string where = "updates." + std::to_string(i);
    any = true;
    enum { kQ, kU, kMulti, kUpsert, kCollation, kHint };
    FoundField storage[6];
    const bson_iter_t* field[6];
    find_all(&stmt, {"q", "u", "multi", "upsert", "collation", "hint"}, storage, field);
    // An absent "u" (refused by the server) counts as an update.
    const Operation kind =
        field[kU] && is_replacement(field[kU]) ? Operation::kReplace : Operation::kUpdate;
    const std::size_t t = out.target(kind, kind, ns);
    // A replacement that keeps nothing but _id erases the document: it
    // answers to delete rules too.
    if (field[kU] && is_erasing_replacement(field[kU])) {
      out.info.targets[t].matches.add(Operation::kDelete);
    }
    Statement s;
    bson_t filter;
    read_filter(field[kQ], "q", &filter, s, where, out);
    s.multi = option(field[kMulti], "multi", where, out);
    s.upsert = option(field[kUpsert], "upsert", where, out);
    s.collation = field[kCollation];
    s.hint = field[kHint];
    out.add_statement(t, s);
  });
  // An update without statements is refused by the server; still report
  // the namespace so that the command is visible to policy.
  if (!any) out.target(Operation::kUpdate, Operation::kUpdate, ns);
}

void classify_find_and_modify(const CommandInput& in, Classification& out) {
  const std::string ns = make_ns(in.database, first_string(in.body));
  const bson_t& body = *in.body;
  // Besides findAndModify itself, the target answers to what the statement
  // does (delete, update or replace), so a loop of findOneAndDelete calls is
  // counted by delete-rate rules like the seed incident's deleteOne loop.
  Operation kind = Operation::kFindAndModify;
  bson_iter_t update;
  if (option(body, "remove", std::string(in.command), out)) {
    kind = Operation::kDelete;
  } else if (find(&body, "update", &update)) {
    kind = is_replacement(&update) ? Operation::kReplace : Operation::kUpdate;
  }
  const std::size_t t = out.target(Operation::kFindAndModify, kind, ns);
  if (kind == Operation::kReplace && is_erasing_replacement(&update)) {
    out.info.targets[t].matches.add(Operation::kDelete);
  }
  Statement s;
  bson_t filter;
  read_filter(body, "query", &filter, s, std::string(in.command), out);
  s.multi = false;  // one document at most
  s.upsert = option(body, "upsert", std::string(in.command), out);
  bson_iter_t collation;
  bson_iter_t hint;
  read_collation_hint(body, &collation, &hint, s);
  out.add_statement(t, s);
}

void classify_bulk_write(const CommandInput& in, Classification& out) {
  // nsInfo first: ops refer to it by index.
  std::vector<std::string> namespaces;
  each_statement(in, "nsInfo", out, [&](const bson_t& entry, std::size_t i) {
    bson_iter_t it;
    std::optional<std::string_view> ns;
    if (find(&entry, "ns", &it)) ns = as_string(&it);
    if (!ns) refuse(out, "'nsInfo." + std::to_string(i) + ".ns' is not a string");
    namespaces.emplace_back(ns.value_or(std::string_view{}));
  });
  each_statement(in, "ops", out, [&](const bson_t& op, std::size_t i) {
    const std::string where = "ops." + std::to_string(i);
    bson_iter_t it;
    if (!bson_iter_init(&it, &op) || !bson_iter_next(&it)) {
      refuse(out, "'" + where + "' is empty");
      return;
    }
    const std::string_view verb = bson_iter_key(&it);
    Operation kind;
    if (verb == "delete") {
      kind = Operation::kDelete;
    } else if (verb == "update") {
      kind = update_kind(op, "updateMods");
    } else if (verb == "insert") {
      return;  // inserts add data
    } else {
      refuse(out, "'" + where + "' is an unknown bulkWrite op '" + std::string(verb) + "'");
      return;
    }
    const auto index = ns_index(&it);
    if (!index || static_cast<std::uint64_t>(*index) >= namespaces.size()) {
      refuse(out, "'" + where + "." + std::string(verb) + "' names no nsInfo entry");
      return;
    }
    const std::size_t t = out.target(Operation::kBulkWrite, kind, namespaces[*index]);
    bson_iter_t mods;
    if (kind == Operation::kReplace && find(&op, "updateMods", &mods) &&
        is_erasing_replacement(&mods)) {
      out.info.targets[t].matches.add(Operation::kDelete);
    }
    Statement s;
    bson_t filter;
    read_filter(op, "filter", &filter, s, where, out);
    s.multi = option(op, "multi", where, out);
    s.upsert = kind != Operation::kDelete && option(op, "upsert", where, out);
    bson_iter_t collation;
    bson_iter_t hint;
    read_collation_hint(op, &collation, &hint, s);
    out.add_statement(t, s);
  });
}

}  // namespace mongoguard::policy::detail
