// applyOps replays oplog entries: arbitrary writes and commands. Each entry
// becomes an applyOps target on its namespace that also answers to the
// operation it replays ("d" → delete, "u" → update/replace, "c" → whatever
// that command is), so rules written for the plain operations see them.
#include "policy/classify_internal.h"

namespace mongoguard::policy::detail {
namespace {

// applyOps may nest applyOps in "c" entries; bound the recursion.
constexpr int kMaxApplyOpsDepth = 8;

// The first reason an entry cannot be judged, if any, kept for the refusal.
void unjudged(Classification& out, std::string why) {
  if (out.info.unjudged.empty()) out.info.unjudged = std::move(why);
}

// A "d" or "u" entry: one oplog entry changes one document; "d" selects it
// by `o`, "u" by `o2` and applies `o` (`o_it`, when `have_o`).
void classify_document_entry(std::string_view op, std::string_view ns, const bson_t& entry,
                             const bson_iter_t* o_it, bool have_o, Classification& out) {
  Operation kind = Operation::kDelete;
  const char* filter_key = "o";
  if (op == "u") {
    kind = have_o && is_replacement(o_it) ? Operation::kReplace : Operation::kUpdate;
    filter_key = "o2";
  }
  const std::size_t t = out.target(Operation::kApplyOps, kind, ns);
  // A replacement keeping nothing but _id erases the document.
  if (op == "u" && have_o && is_erasing_replacement(o_it)) {
    out.info.targets[t].matches.add(Operation::kDelete);
  }
  Statement s;
  bson_t filter;
  bson_iter_t f;
  if (find(&entry, filter_key, &f) && as_document(&f, &filter)) {
    s.filter = &filter;
    s.filter_present = true;
  }
  bson_iter_t upsert;
  s.upsert = op == "u" && find(&entry, "b", &upsert) && truthy(&upsert);
  out.add_statement(t, s);
}

// A "c" entry: ns is "<db>.$cmd", `o` the command, judged as if sent on
// its own. False when `o` is empty.
bool classify_command_entry(const CommandInput& in, std::string_view ns, const bson_t& o,
                            Classification& out) {
  bson_iter_t first;
  if (!bson_iter_init(&first, &o) || !bson_iter_next(&first)) return false;
  CommandInput nested;
  nested.body = &o;
  nested.command = bson_iter_key(&first);
  nested.database = ns.substr(0, ns.find('.'));
  nested.depth = in.depth + 1;
  if (auto info = classify_input(nested)) {
    out.absorb(*info, Operation::kApplyOps);
    if (!info->unjudged.empty()) unjudged(out, info->unjudged);
    return true;
  }
  // A command that destroys nothing (create, ...) still replays through
  // applyOps: report it on the collection it names.
  const std::string_view coll = first_string(&o);
  out.whole(Operation::kApplyOps, coll.empty() ? std::string(ns) : make_ns(nested.database, coll));
  return true;
}

void classify_entry(const CommandInput& in, const bson_t& entry, Classification& out) {
  bson_iter_t it;
  std::string_view op;
  std::string_view ns;
  if (find(&entry, "op", &it)) op = as_string(&it).value_or(std::string_view{});
  if (find(&entry, "ns", &it)) ns = as_string(&it).value_or(std::string_view{});
  if (op == "n") return;  // a no-op entry
  if (find(&entry, "ui", &it)) {
    // The server applies an entry with `ui` to the collection with that
    // UUID, whatever `ns` says: a namespace glob cannot judge a UUID.
    unjudged(out, "applyOps entry names its collection by UUID (ui); rules judge namespaces");
  }
  if (op.empty()) unjudged(out, "applyOps entry without a string op");

  bson_iter_t o_it;
  bson_t o;
  const bool have_o = find(&entry, "o", &o_it) && as_document(&o_it, &o);
  if (op == "d" || op == "u") {
    classify_document_entry(op, ns, entry, &o_it, have_o, out);
    return;
  }
  if (op == "c" && have_o && in.depth < kMaxApplyOpsDepth &&
      classify_command_entry(in, ns, o, out)) {
    return;
  }
  if (op == "c" && in.depth >= kMaxApplyOpsDepth) {
    unjudged(out, "applyOps nested more than " + std::to_string(kMaxApplyOpsDepth) + " deep");
  }
  // "i" (an insert, which applyOps may turn into an upsert over an existing
  // _id), an over-deep "c", or an entry the server will refuse.
  out.whole(Operation::kApplyOps, ns.empty() ? make_ns(in.database, "*") : std::string(ns));
}

}  // namespace

void classify_apply_ops(const CommandInput& in, Classification& out) {
  bson_iter_t it;
  bson_iter_t entries;
  if (find(in.body, "applyOps", &it) && BSON_ITER_HOLDS_ARRAY(&it) &&
      bson_iter_recurse(&it, &entries)) {
    while (bson_iter_next(&entries)) {
      bson_t entry;
      if (as_document(&entries, &entry)) {
        classify_entry(in, entry, out);
      } else {
        unjudged(out, "applyOps entry that is not a document");
      }
    }
  }
  if (in.command == "doTxn") {
    // Removed with 4.2; its entries were applied in one transaction, with
    // semantics of their own. Never judged.
    unjudged(out, "doTxn replays oplog entries; it is not judged");
  }
  // applyOps can replay anything: it is always reported, if only on its
  // own database.
  if (out.info.targets.empty()) out.whole(Operation::kApplyOps, make_ns(in.database, "*"));
}

}  // namespace mongoguard::policy::detail
