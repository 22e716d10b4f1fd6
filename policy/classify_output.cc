// Commands that write their results over a collection: aggregate with $out
// or $merge, mapReduce with a non-inline out. Judged on the namespace they
// write to, which may be in another database.
#include "policy/classify_internal.h"

namespace mongoguard::policy::detail {
namespace {

// {db: "d", coll: "c"} (db defaulting to `database`) → "d.c".
std::optional<std::string> db_coll(const bson_t& spec, std::string_view database,
                                   const char* coll_key) {
  bson_iter_t it;
  std::string_view db = database;
  if (find(&spec, "db", &it)) {
    if (auto s = as_string(&it)) db = *s;
  }
  if (!find(&spec, coll_key, &it)) return std::nullopt;
  const auto coll = as_string(&it);
  if (!coll) return std::nullopt;
  return make_ns(db, *coll);
}

// The namespace a $out or $merge stage writes to.
std::optional<std::string> stage_target(const bson_iter_t* stage_value, std::string_view op,
                                        std::string_view database) {
  if (auto s = as_string(stage_value)) return make_ns(database, *s);
  bson_t spec;
  if (!as_document(stage_value, &spec)) return std::nullopt;
  if (op == "$out") return db_coll(spec, database, "coll");
  // $merge: {into: "coll"} or {into: {db, coll}}.
  bson_iter_t into;
  if (!find(&spec, "into", &into)) return std::nullopt;
  if (auto s = as_string(&into)) return make_ns(database, *s);
  bson_t into_doc;
  if (!as_document(&into, &into_doc)) return std::nullopt;
  return db_coll(into_doc, database, "coll");
}

}  // namespace

void classify_aggregate(const CommandInput& in, Classification& out) {
  bson_iter_t it;
  bson_iter_t stages;
  if (!find(in.body, "pipeline", &it) || !BSON_ITER_HOLDS_ARRAY(&it) ||
      !bson_iter_recurse(&it, &stages)) {
    return;
  }
  // The server only accepts $out/$merge as the last stage.
  bson_iter_t last;
  bool have_last = false;
  while (bson_iter_next(&stages)) {
    last = stages;
    have_last = true;
  }
  bson_iter_t stage;
  if (!have_last || !BSON_ITER_HOLDS_DOCUMENT(&last) || !bson_iter_recurse(&last, &stage) ||
      !bson_iter_next(&stage)) {
    return;
  }
  const std::string_view op = bson_iter_key(&stage);
  if (op != "$out" && op != "$merge") return;
  // A stage whose target cannot be read is refused by the server; it is
  // still reported, on the command's own database, rather than ignored.
  const auto ns = stage_target(&stage, op, in.database);
  out.whole(Operation::kAggregateOut, ns.value_or(make_ns(in.database, "*")));
}

// out: "coll" | {inline: 1} | {replace|merge|reduce: "coll", db?: "d"}.
void classify_map_reduce(const CommandInput& in, Classification& out) {
  bson_iter_t it;
  if (!find(in.body, "out", &it)) return;
  if (auto s = as_string(&it)) {
    out.whole(Operation::kMapReduceOut, make_ns(in.database, *s));
    return;
  }
  bson_t spec;
  if (!as_document(&it, &spec)) return;
  bson_iter_t inline_it;
  if (find(&spec, "inline", &inline_it)) return;
  for (const char* mode : {"replace", "merge", "reduce"}) {
    if (auto ns = db_coll(spec, in.database, mode)) {
      out.whole(Operation::kMapReduceOut, *ns);
      return;
    }
  }
}

}  // namespace mongoguard::policy::detail
