// Statement-level writes: delete, update, findAndModify, bulkWrite.
#include "policy/classify_internal.h"

namespace mongoguard::policy::detail {
namespace {

// Reads a statement's filter field. An absent filter is unfiltered; a
// filter that is not a document is refused by the server, but is counted as
// unfiltered rather than trusted.
void read_filter(const bson_t& stmt, const char* field, bson_t* storage, Statement& s) {
  bson_iter_t it;
  if (find(&stmt, field, &it) && as_document(&it, storage)) {
    s.filter = storage;
    s.filter_present = true;
  }
}

bool option(const bson_t& stmt, const char* field) {
  bson_iter_t it;
  return find(&stmt, field, &it) && truthy(&it);
}

// Update modifications at `field` decide between update and replace; an
// absent field (refused by the server) counts as an update.
Operation update_kind(const bson_t& stmt, const char* field) {
  bson_iter_t it;
  return find(&stmt, field, &it) && is_replacement(&it) ? Operation::kReplace : Operation::kUpdate;
}

}  // namespace

void classify_delete(const CommandInput& in, Classification& out) {
  const std::string ns = make_ns(in.database, first_string(in.body));
  const std::size_t t = out.target(Operation::kDelete, Operation::kDelete, ns);
  for_each_in_array(in, "deletes", [&](const bson_t& stmt) {
    Statement s;
    bson_t filter;
    read_filter(stmt, "q", &filter, s);
    // The server reads limit as a double that must be 0 or 1; anything that
    // is not numerically 1 (false, null, "1", missing) reads as 0 = many.
    bson_iter_t limit;
    s.multi = !(find(&stmt, "limit", &limit) && is_numeric_one(&limit));
    bson_iter_t collation;
    bson_iter_t hint;
    if (find(&stmt, "collation", &collation)) s.collation = &collation;
    if (find(&stmt, "hint", &hint)) s.hint = &hint;
    out.add_statement(t, s);
  });
}

void classify_update(const CommandInput& in, Classification& out) {
  const std::string ns = make_ns(in.database, first_string(in.body));
  bool any = false;
  for_each_in_array(in, "updates", [&](const bson_t& stmt) {
    any = true;
    const Operation kind = update_kind(stmt, "u");
    const std::size_t t = out.target(kind, kind, ns);
    Statement s;
    bson_t filter;
    read_filter(stmt, "q", &filter, s);
    s.multi = option(stmt, "multi");
    s.upsert = option(stmt, "upsert");
    bson_iter_t collation;
    bson_iter_t hint;
    if (find(&stmt, "collation", &collation)) s.collation = &collation;
    if (find(&stmt, "hint", &hint)) s.hint = &hint;
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
  if (option(body, "remove")) {
    kind = Operation::kDelete;
  } else if (find(&body, "update", &update)) {
    kind = is_replacement(&update) ? Operation::kReplace : Operation::kUpdate;
  }
  const std::size_t t = out.target(Operation::kFindAndModify, kind, ns);
  Statement s;
  bson_t filter;
  read_filter(body, "query", &filter, s);
  s.multi = false;
  s.upsert = option(body, "upsert");
  bson_iter_t collation;
  bson_iter_t hint;
  if (find(&body, "collation", &collation)) s.collation = &collation;
  if (find(&body, "hint", &hint)) s.hint = &hint;
  out.add_statement(t, s);
}

void classify_bulk_write(const CommandInput& in, Classification& out) {
  // nsInfo first: ops refer to it by index.
  std::vector<std::string> namespaces;
  for_each_in_array(in, "nsInfo", [&](const bson_t& entry) {
    bson_iter_t it;
    std::optional<std::string_view> ns;
    if (find(&entry, "ns", &it)) ns = as_string(&it);
    namespaces.emplace_back(ns.value_or(std::string_view{}));
  });
  for_each_in_array(in, "ops", [&](const bson_t& op) {
    bson_iter_t it;
    if (!bson_iter_init(&it, &op) || !bson_iter_next(&it)) return;
    const std::string_view verb = bson_iter_key(&it);
    Operation kind;
    if (verb == "delete") {
      kind = Operation::kDelete;
    } else if (verb == "update") {
      kind = update_kind(op, "updateMods");
    } else {
      return;  // inserts add data; unknown verbs are refused by the server
    }
    // The index into nsInfo; one the server cannot resolve fails that op.
    if (!BSON_ITER_HOLDS_INT32(&it) && !BSON_ITER_HOLDS_INT64(&it)) return;
    const std::int64_t index = bson_iter_as_int64(&it);
    if (index < 0 || static_cast<std::uint64_t>(index) >= namespaces.size()) return;
    const std::size_t t = out.target(Operation::kBulkWrite, kind, namespaces[index]);
    Statement s;
    bson_t filter;
    read_filter(op, "filter", &filter, s);
    s.multi = option(op, "multi");
    s.upsert = kind != Operation::kDelete && option(op, "upsert");
    bson_iter_t collation;
    bson_iter_t hint;
    if (find(&op, "collation", &collation)) s.collation = &collation;
    if (find(&op, "hint", &hint)) s.hint = &hint;
    out.add_statement(t, s);
  });
}

}  // namespace mongoguard::policy::detail
