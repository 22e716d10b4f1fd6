// classify(): from a decoded request to the CommandInfo policy judges.
#include <initializer_list>
#include <string>

#include "bson/redact.h"
#include "policy/classify_internal.h"

namespace mongoguard::policy {
namespace detail {

namespace {

// Bounds explain-in-explain (and applyOps nesting, which shares the depth).
constexpr int kMaxNesting = 8;

bool one_of(std::string_view c, std::initializer_list<std::string_view> names) {
  for (std::string_view n : names) {
    if (c == n) return true;
  }
  return false;
}

// {explain: {<command>}, verbosity}: judged as the command it wraps. The
// server only plans a wrapped write, but nothing destructive is let through
// on the strength of a server version behaving so.
std::optional<CommandInfo> classify_explain(const CommandInput& in) {
  bson_iter_t it;
  bson_t inner;
  if (!find(in.body, "explain", &it) || !as_document(&it, &inner)) return std::nullopt;
  bson_iter_t first;
  if (!bson_iter_init(&first, &inner) || !bson_iter_next(&first)) return std::nullopt;
  CommandInput nested;
  nested.body = &inner;
  nested.command = bson_iter_key(&first);
  nested.database = in.database;
  nested.depth = in.depth + 1;
  if (nested.depth > kMaxNesting) {
    Classification out(in.command, in.database);
    out.whole(Operation::kApplyOps, make_ns(in.database, "*"));
    out.info.unjudged = "explain nested more than " + std::to_string(kMaxNesting) + " deep";
    return std::move(out).finish();
  }
  auto info = classify_input(nested);
  if (info) info->command = std::string(in.command) + " " + info->command;
  return info;
}

}  // namespace

std::optional<CommandInfo> classify_input(const CommandInput& in) {
  if (in.body == nullptr || !is_inspected_command(in.command)) return std::nullopt;
  const std::string_view c = in.command;
  if (c == "explain") return classify_explain(in);
  Classification out(in.command, in.database);
  if (c == "delete") {
    classify_delete(in, out);
  } else if (c == "update") {
    classify_update(in, out);
  } else if (c == "findAndModify" || c == "findandmodify") {
    classify_find_and_modify(in, out);
  } else if (c == "bulkWrite") {
    classify_bulk_write(in, out);
  } else if (c == "dropDatabase") {
    classify_drop_database(in, out);
  } else if (c == "renameCollection") {
    classify_rename(in, out);
  } else if (c == "collMod" || c == "createIndexes") {
    classify_ttl(in, out);
  } else if (c == "aggregate") {
    classify_aggregate(in, out);
  } else if (c == "mapReduce" || c == "mapreduce") {
    classify_map_reduce(in, out);
  } else if (c == "applyOps" || c == "doTxn") {
    classify_apply_ops(in, out);
  } else if (one_of(c, {"dropUser", "dropAllUsersFromDatabase", "dropRole",
                        "dropAllRolesFromDatabase", "revokeRolesFromUser", "revokeRolesFromRole",
                        "revokePrivilegesFromRole", "updateUser", "updateRole"})) {
    classify_user_admin(in, out);
  } else if (one_of(c, {"reshardCollection", "refineCollectionShardKey", "cleanupOrphaned",
                        "moveChunk", "moveRange", "movePrimary", "moveCollection",
                        "unshardCollection"})) {
    classify_sharding(in, out);
  } else if (one_of(c, {"shutdown", "replSetReconfig", "setFeatureCompatibilityVersion",
                        "setUserWriteBlockMode", "replSetResizeOplog", "removeShard",
                        "transitionToDedicatedConfigServer", "fsync", "resync", "repairDatabase",
                        "eval"})) {
    classify_cluster_admin(in, out);
  } else {
    classify_collection_ddl(in, out);
  }
  bson_iter_t it;
  if (find(in.body, "maxTimeMS", &it) && BSON_ITER_HOLDS_NUMBER(&it)) {
    out.info.max_time_ms = bson_iter_as_int64(&it);
  }
  return std::move(out).finish();
}

}  // namespace detail

namespace {

// Commands sent as OP_QUERY on "<db>.$cmd" may be wrapped to carry a read
// preference: {$query: {<command>}, $readPreference: ...}. The server
// unwraps a first key of "$query" or "query".
bool unwrap_query_command(const bson_t* query, bson_t* command) {
  bson_iter_t it;
  if (!bson_iter_init(&it, query) || !bson_iter_next(&it)) return false;
  const std::string_view first = bson_iter_key(&it);
  if (first != "$query" && first != "query") return false;
  return detail::as_document(&it, command);
}

std::string_view first_key(const bson_t* doc) {
  bson_iter_t it;
  if (!bson_iter_init(&it, doc) || !bson_iter_next(&it)) return {};
  return bson_iter_key(&it);
}

std::string_view ns_database(std::string_view ns) { return ns.substr(0, ns.find('.')); }

// A legacy write whose view the caller could not give: judged as the worst
// case, one statement that may touch every document of the namespace.
CommandInfo legacy_unknown(const wire::Request& request, Operation op, std::string_view command) {
  detail::Classification out(command, request.database);
  const std::size_t t = out.target(op, op, detail::make_ns(request.database, request.collection));
  detail::Statement s;
  s.multi = true;
  out.add_statement(t, s);
  out.info.legacy = true;
  out.info.more_to_come = true;
  return std::move(out.info);
}

}  // namespace

CommandInfo classify_op_delete(const wire::OpDeleteView& op) {
  const std::string_view ns = op.full_collection_name;
  detail::Classification out("OP_DELETE", ns_database(ns));
  const std::size_t t = out.target(Operation::kDelete, Operation::kDelete, ns);
  bson_t selector;
  detail::Statement s;
  if (op.selector.as_bson(&selector)) {
    s.filter = &selector;
    s.filter_present = true;
  }
  s.multi = !op.single_remove();
  out.add_statement(t, s);
  out.info.legacy = true;
  out.info.more_to_come = true;  // legacy writes are never answered
  return std::move(out.info);
}

CommandInfo classify_op_update(const wire::OpUpdateView& op) {
  const std::string_view ns = op.full_collection_name;
  detail::Classification out("OP_UPDATE", ns_database(ns));
  bson_t update;
  Operation kind = Operation::kUpdate;
  if (op.update.as_bson(&update)) {
    const std::string_view first = first_key(&update);
    if (first.empty() || first.front() != '$') kind = Operation::kReplace;
  }
  const std::size_t t = out.target(kind, kind, ns);
  bson_t selector;
  detail::Statement s;
  if (op.selector.as_bson(&selector)) {
    s.filter = &selector;
    s.filter_present = true;
  }
  s.multi = op.multi();
  s.upsert = op.upsert();
  out.add_statement(t, s);
  out.info.legacy = true;
  out.info.more_to_come = true;
  return std::move(out.info);
}

std::optional<CommandInfo> classify(const wire::Request& request) {
  if (request.msg) {
    if (!is_inspected_command(request.command)) return std::nullopt;
    bson_t body;
    if (!request.msg->body.as_bson(&body)) return std::nullopt;
    detail::CommandInput in;
    in.body = &body;
    in.command = request.command;
    in.database = request.database;
    in.msg = &*request.msg;
    auto info = detail::classify_input(in);
    if (info) info->more_to_come = request.more_to_come;
    return info;
  }
  if (request.query) {
    if (!request.query->is_command() || !is_inspected_command(request.command)) {
      return std::nullopt;
    }
    bson_t body;
    if (!request.body || !request.body->as_bson(&body)) return std::nullopt;
    detail::CommandInput in;
    in.body = &body;
    in.command = request.command;
    in.database = request.query->database();
    auto info = detail::classify_input(in);
    if (info) info->legacy = true;
    return info;
  }
  switch (static_cast<wire::OpCode>(request.effective_opcode)) {
    case wire::OpCode::kDelete:
      return legacy_unknown(request, Operation::kDelete, "OP_DELETE");
    case wire::OpCode::kUpdate:
      return legacy_unknown(request, Operation::kUpdate, "OP_UPDATE");
    default:
      return std::nullopt;
  }
}

std::optional<CommandInfo> classify(const wire::Request& request, wire::Bytes message,
                                    const std::vector<std::uint8_t>& scratch) {
  const auto op = static_cast<wire::OpCode>(request.effective_opcode);
  if (op != wire::OpCode::kDelete && op != wire::OpCode::kUpdate) return classify(request);
  const wire::Bytes plain =
      request.compressed ? wire::Bytes(scratch.data(), scratch.size()) : message;
  if (op == wire::OpCode::kDelete) {
    auto d = wire::decode_op_delete(plain);
    if (d.ok()) return classify_op_delete(d.view);
  } else {
    auto d = wire::decode_op_update(plain);
    if (d.ok()) return classify_op_update(d.view);
  }
  return classify(request);
}

std::optional<CommandInfo> classify_command(const bson_t* body, std::string_view database) {
  if (body == nullptr) return std::nullopt;
  bson_t command;
  if (unwrap_query_command(body, &command)) body = &command;
  detail::CommandInput in;
  in.body = body;
  in.command = first_key(body);
  in.database = database;
  return detail::classify_input(in);
}

}  // namespace mongoguard::policy
