// Shared machinery of the command classifiers (policy/classify*.cc). Not part
// of the contract in command_info.h.
#pragma once

#include <bson/bson.h>

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bson/wire.h"
#include "policy/command_info.h"

namespace mongoguard::policy::detail {

// A command as the classifiers see it: the body, its database and, for
// OP_MSG, the kind-1 sequences that may carry its statement arrays.
struct CommandInput {
  const bson_t* body = nullptr;
  std::string_view command;   // first key of the body
  std::string_view database;  // $db, or from the namespace for OP_QUERY
  const wire::OpMsgView* msg = nullptr;
  int depth = 0;  // applyOps nesting
};

// One statement's facts, as a classifier found them.
struct Statement {
  const bson_t* filter = nullptr;  // null: the statement has no filter at all
  bool filter_present = false;     // false: unfiltered by absence
  bool multi = false;
  bool upsert = false;
  const bson_iter_t* collation = nullptr;
  const bson_iter_t* hint = nullptr;
};

// Accumulates targets. Targets are keyed by (op, kind, namespace), where
// `kind` is the vocabulary operation the statement performs (equal to `op`
// for plain commands; delete/update/replace for bulkWrite and applyOps).
class Classification {
 public:
  Classification(std::string_view command, std::string_view database);

  // Index of the target for this key in info.targets, created on first use
  // with `matches` = {op, kind}.
  std::size_t target(Operation op, Operation kind, std::string_view ns);

  // Adds one filtered statement to target `index`.
  void add_statement(std::size_t index, const Statement& s);
  // Marks target `index` as one whole-namespace operation (drop, $out, ...):
  // one statement that may touch every document, no filter.
  void add_whole(std::size_t index);
  // A target for an operation on a whole namespace: target() + add_whole().
  std::size_t whole(Operation op, std::string_view ns);
  // Folds the targets of a nested classification (an applyOps "c" entry)
  // into this one under operation `op`, keeping what they match.
  void absorb(const CommandInfo& nested, Operation op);

  std::optional<CommandInfo> finish() &&;

  CommandInfo info;

 private:
  struct Key {
    Operation op;
    Operation kind;
  };
  std::vector<Key> keys_;
  bool have_first_statement_ = false;
};

// "db.coll".
std::string make_ns(std::string_view db, std::string_view coll);
// The string value of the body's first element ("" if it is not a string).
std::string_view first_string(const bson_t* body);
// Looks up a top-level field.
bool find(const bson_t* doc, const char* key, bson_iter_t* out);
// Room for one element found by find_all() (bson_iter_t is over-aligned
// for an array of its own).
struct FoundField {
  bson_iter_t it;
};
// Looks up several top-level fields in one walk of `doc`: out[i] is the
// first element named keys[i] (kept in storage[i]), or null when there is
// none.
void find_all(const bson_t* doc, std::initializer_list<std::string_view> keys, FoundField* storage,
              const bson_iter_t** out);
// A sub-document at `it` as a static bson_t (false if `it` is not one).
bool as_document(const bson_iter_t* it, bson_t* out);
// String value of `it`, or nullopt.
std::optional<std::string_view> as_string(const bson_iter_t* it);
// Truthiness as the server reads a bool option: bool, or a non-zero number.
bool truthy(const bson_iter_t* it);
// Numeric 1 (int32, int64 or double 1.0): the only `limit` meaning one.
bool is_numeric_one(const bson_iter_t* it);
// An update modification that replaces the document: a document whose
// first key does not start with '$'. Operators and pipelines are updates.
bool is_replacement(const bson_iter_t* u);
// An update modification that leaves a document with nothing but _id: a
// replacement `{}` or `{_id: ...}`, or a pipeline with a stage that replaces
// the root by such a document or projects only _id. Such an "update" erases
// the document's content, so it answers to delete rules too.
// (policy/filter_shape.cc)
bool is_erasing_replacement(const bson_iter_t* u);
// JSON of one value: strings quoted, documents/arrays as relaxed JSON.
std::string value_json(const bson_iter_t* it);

// Calls fn(const bson_t&) for each document of the array `field` inline in
// the body and for each document of the kind-1 sequence `field`.
template <class Fn>
void for_each_in_array(const CommandInput& in, const char* field, Fn&& fn) {
  bson_iter_t it;
  bson_iter_t child;
  if (find(in.body, field, &it) && BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &child)) {
    while (bson_iter_next(&child)) {
      bson_t doc;
      if (as_document(&child, &doc)) fn(static_cast<const bson_t&>(doc));
    }
  }
  if (in.msg == nullptr) return;
  if (const wire::DocumentSequence* seq = in.msg->sequence(field)) {
    for (const wire::DocView& view : seq->docs()) {
      bson_t doc;
      if (view.as_bson(&doc)) fn(static_cast<const bson_t&>(doc));
    }
  }
}

// Per-command classifiers. Each adds what it finds to `out`.
void classify_delete(const CommandInput& in, Classification& out);
void classify_update(const CommandInput& in, Classification& out);
void classify_find_and_modify(const CommandInput& in, Classification& out);
void classify_bulk_write(const CommandInput& in, Classification& out);
void classify_collection_ddl(const CommandInput& in, Classification& out);  // drop, capped, ...
void classify_drop_database(const CommandInput& in, Classification& out);
void classify_rename(const CommandInput& in, Classification& out);
void classify_ttl(const CommandInput& in, Classification& out);  // collMod, createIndexes
void classify_aggregate(const CommandInput& in, Classification& out);
void classify_map_reduce(const CommandInput& in, Classification& out);
void classify_apply_ops(const CommandInput& in, Classification& out);
void classify_user_admin(const CommandInput& in, Classification& out);     // classify_admin.cc
void classify_cluster_admin(const CommandInput& in, Classification& out);  // shutdown, ...
void classify_sharding(const CommandInput& in, Classification& out);       // moveChunk, ...

// Dispatches on the command name; nullopt when nothing is destructive.
std::optional<CommandInfo> classify_input(const CommandInput& in);

}  // namespace mongoguard::policy::detail
