// What a client command would do to data, as far as policy cares.
//
// classify() turns a decoded request into a CommandInfo: which destructive
// operations it performs, on which namespaces, with what filter shapes and
// how many statements. Commands that cannot destroy or mass-modify data give
// nullopt and are forwarded untouched. Pure logic: no I/O, no clocks.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bson/wire.h"

namespace mongoguard::policy {

// The operations vocabulary of the policy file. Names are what YAML uses.
enum class Operation : std::uint8_t {
  kDelete,            // "delete"
  kUpdate,            // "update"         update with operators or a pipeline
  kReplace,           // "replace"        update whose `u` is a replacement document
  kFindAndModify,     // "findAndModify"  findAndModify / findandmodify
  kBulkWrite,         // "bulkWrite"      admin bulkWrite, one Target per namespace touched
  kDrop,              // "drop"
  kDropDatabase,      // "dropDatabase"   namespace is "<db>.*"
  kDropIndexes,       // "dropIndexes"    also deleteIndexes
  kRenameCollection,  // "renameCollection" every rename, both namespaces (dropTarget adds "drop")
  kAggregateOut,      // "aggregateOut"   $out / $merge, judged on the target namespace
  kMapReduceOut,      // "mapReduceOut"   mapReduce with a non-inline out
  kConvertToCapped,   // "convertToCapped"
  kEmptycapped,       // "emptycapped"
  kTtlChange,         // "ttlChange"      collMod/createIndexes setting expireAfterSeconds
  kApplyOps,          // "applyOps"
  kDropSearchIndex,   // "dropSearchIndex"
  kCappedResize,  // "cappedResize"   collMod setting cappedSize/cappedMax (also "convertToCapped")
  kDropUser,   // "dropUser"       dropUser, dropAllUsersFromDatabase (also "userAdmin"); "<db>.*"
  kDropRole,   // "dropRole"       dropRole, dropAllRolesFromDatabase (also "userAdmin"); "<db>.*"
  kUserAdmin,  // "userAdmin"      revoking roles/privileges, updateUser/updateRole replacing them
  kShutdown,   // "shutdown"       "<db>.*" of the request (admin)
  kClusterAdmin,  // "clusterAdmin"   replSetReconfig, setFeatureCompatibilityVersion, removeShard,
                  // ...
  kSharding,      // "sharding"       commands that move or delete chunks/collections (reshard,
                  // moveChunk, ...)
};
inline constexpr int kOperationCount = 23;

const char* operation_name(Operation op);
std::optional<Operation> parse_operation(std::string_view name);

// A set of operations (bit i = Operation i).
struct OperationSet {
  std::uint32_t bits = 0;
  void add(Operation op) { bits |= 1u << static_cast<unsigned>(op); }
  bool has(Operation op) const { return bits & (1u << static_cast<unsigned>(op)); }
  bool intersects(OperationSet other) const { return bits & other.bits; }
  bool empty() const { return bits == 0; }
};

enum class FilterShape : std::uint8_t {
  kNotApplicable,  // the operation has no filter (drop, rename, ...)
  kFiltered,       // every statement has a selective filter
  kUnfiltered,     // at least one statement's filter is empty or a tautology
};

// One statement that may touch more than one document, kept as sent so
// that a capped count can measure it before it is forwarded.
struct MultiStatement {
  std::vector<std::uint8_t> filter;  // BSON; empty: no filter (every document)
  // BSON document holding the statement's "collation" and "hint" fields,
  // when it has them; empty when it has neither.
  std::vector<std::uint8_t> options;
  // An upsert: when nothing matches, it inserts one document (n = 1).
  bool upsert = false;
};

// What a count found about a target's filters, before it was forwarded:
// `affected` of the collection's `total` documents match (at least that
// many when `capped`: the count stopped at its cap). Set by the session
// for rules with filter: unfiltered (policy/measured_filter.h).
struct MeasuredShare {
  std::int64_t affected = 0;
  std::int64_t total = 0;
  bool capped = false;
  std::string error;  // non-empty: the count failed, so nothing is known
};

// One namespace one command touches, with one kind of operation.
struct Target {
  Operation op = Operation::kDelete;
  // Every vocabulary name this target answers to. Always contains `op`; a
  // bulkWrite delete also answers to "delete", an applyOps entry to the
  // operation it replays, and so on.
  OperationSet matches;
  std::string ns;  // "db.collection"; "db.*" for dropDatabase
  FilterShape filter = FilterShape::kNotApplicable;
  // Statements aimed at this namespace. A whole-namespace operation (drop,
  // $out, a TTL change, ...) counts as one multi statement.
  std::int64_t statements = 0;
  std::int64_t single_statements = 0;  // of those, limited to one document
  std::int64_t multi_statements = 0;   // of those, may touch many documents
  bool upsert = false;
  // The first statement's filter, as BSON bytes (empty when it has none).
  // Kept raw and rendered only when something prints it: classification runs
  // for every destructive command, rendering only where it is read.
  std::vector<std::uint8_t> filter_bson;
  // Every statement counted in multi_statements that has a filter to
  // measure, in command order. A whole-namespace operation has none.
  std::vector<MultiStatement> multi;
  // The statements limited to one document, likewise: many of them in one
  // command can still touch every document (measured "unfiltered").
  std::vector<MultiStatement> singles;
  std::optional<MeasuredShare> measured;
  // Relaxed extended JSON of that filter, with every value replaced by its
  // type ("redacted") or as sent; "" when there is no filter.
  std::string filter_redacted() const;
  std::string filter_json() const;
};

struct CommandInfo {
  std::string command;  // as sent, e.g. "delete", "findandmodify", "OP_DELETE"
  std::string database;
  std::vector<Target> targets;  // never empty when classify() returns a value
  // Non-empty when some part of a destructive command could not be judged
  // (an unexpected type, an unknown op kind, a missing field): what it was.
  // Such a command is refused with this text, never forwarded unjudged.
  std::string unjudged;
  bool more_to_come = false;                // unacknowledged (w:0 or a legacy write op)
  bool legacy = false;                      // OP_DELETE / OP_UPDATE, or a command over OP_QUERY
  std::optional<std::int64_t> max_time_ms;  // the command's maxTimeMS, if given
  // The first statement's "collation" and "hint" fields, as a BSON document
  // holding those it has (MultiStatement::options' form); empty when it has
  // neither. Kept as sent and rendered only where something prints them.
  std::vector<std::uint8_t> first_options;
  // Relaxed extended JSON of that collation or hint ("" when absent).
  std::string collation_json() const;
  std::string hint_json() const;
};

// Cheap check on the hot path: could a command with this name (first key of
// the body) be destructive? True exactly for policy::destructive_commands()
// (policy/command_catalogue.h). Case-sensitive, like the server; its own
// aliases (findandmodify, mapreduce, deleteIndexes) are listed.
bool is_inspected_command(std::string_view command_name);

// Full classification. `request` must be a successfully decoded client
// request (wire::decode_request). Returns nullopt when nothing in it can
// destroy or mass-modify data.
std::optional<CommandInfo> classify(const wire::Request& request);

// Same, with the message bytes decode_request() was given (`message`, and
// `scratch` holding the inflated message when it arrived compressed).
// wire::Request keeps no view of legacy OP_DELETE/OP_UPDATE messages; with
// the bytes they are judged from their selector and flags. classify(request)
// alone judges them as the worst case: one statement, multi, unfiltered.
std::optional<CommandInfo> classify(const wire::Request& request, wire::Bytes message,
                                    const std::vector<std::uint8_t>& scratch);

// Legacy write opcodes, judged like their OP_MSG forms: command "OP_DELETE"
// / "OP_UPDATE", legacy and more_to_come set (they are never answered).
CommandInfo classify_op_delete(const wire::OpDeleteView& op);
CommandInfo classify_op_update(const wire::OpUpdateView& op);

// Same, from a command body alone (used by `mongoguard explain`).
std::optional<CommandInfo> classify_command(const bson_t* body, std::string_view database);

// A filter that provably matches every document: {}, {$expr: <constant
// truthy expression>}, {_id: {$exists: <truthy>}}, {$where: "true"}, {_id:
// {$ne: null}}, {_id: {$gte: MinKey}}, {_id: {$type: [every type]}}, {f:
// {$nin: []}}, negations of impossible conditions ({f: {$not: {$in: []}}},
// {$nor: [{_id: {$exists: false}}]}), and $and/$or/$nor combinations (see
// filter_shape.cc). A null filter (absent) is unfiltered too.
bool is_unfiltered(const bson_t* filter);

}  // namespace mongoguard::policy
