// Commands that destroy access or availability rather than documents: user
// and role management, shutdown and cluster reconfiguration, and the
// sharding commands that move or delete chunks and collections. Each is one
// whole-namespace target; rules decide, not the command's details.
#include "policy/classify_internal.h"

namespace mongoguard::policy::detail {
namespace {

// Has any of `fields` at the top level (any value: a malformed one is for
// the server to refuse, not for mongoguard to wave through).
bool has_any(const bson_t* body, std::initializer_list<const char*> fields) {
  bson_iter_t it;
  for (const char* f : fields) {
    if (find(body, f, &it)) return true;
  }
  return false;
}

}  // namespace

// Users and roles live in the database they were created in, so their
// target is that whole database: "<db>.*". Only the forms that take access
// away are judged: drops, revokes, and updates that replace a user's roles
// or credentials (or a role's privileges); granting and creating are not.
void classify_user_admin(const CommandInput& in, Classification& out) {
  const std::string_view c = in.command;
  const std::string ns = make_ns(in.database, "*");
  if (c == "dropUser" || c == "dropAllUsersFromDatabase") {
    const std::size_t t = out.whole(Operation::kDropUser, ns);
    out.info.targets[t].matches.add(Operation::kUserAdmin);
  } else if (c == "dropRole" || c == "dropAllRolesFromDatabase") {
    const std::size_t t = out.whole(Operation::kDropRole, ns);
    out.info.targets[t].matches.add(Operation::kUserAdmin);
  } else if (c == "updateUser") {
    if (has_any(in.body, {"roles", "pwd", "mechanisms", "authenticationRestrictions"})) {
      out.whole(Operation::kUserAdmin, ns);
    }
  } else if (c == "updateRole") {
    if (has_any(in.body, {"roles", "privileges", "authenticationRestrictions"})) {
      out.whole(Operation::kUserAdmin, ns);
    }
  } else {
    // revokeRolesFromUser, revokeRolesFromRole, revokePrivilegesFromRole.
    out.whole(Operation::kUserAdmin, ns);
  }
}

// shutdown, replica set and cluster reconfiguration: the whole deployment
// is at stake, judged on "<db>.*" of the request (the server accepts them
// only on admin).
void classify_cluster_admin(const CommandInput& in, Classification& out) {
  const std::string ns = make_ns(in.database, "*");
  const std::string_view c = in.command;
  if (c == "shutdown") {
    out.whole(Operation::kShutdown, ns);
    return;
  }
  if (c == "fsync") {
    // Only a lock takes the database away (every write waits for fsyncUnlock).
    bson_iter_t it;
    if (!find(in.body, "lock", &it) || !truthy(&it)) return;
  }
  out.whole(Operation::kClusterAdmin, ns);
  if (c == "eval") {
    out.info.unjudged =
        "eval runs arbitrary JavaScript on the server; what it does cannot be judged";
  }
}

// Sharding commands that move or delete data: {<command>: "db.coll", ...},
// movePrimary: "db" (every unsharded collection of it).
void classify_sharding(const CommandInput& in, Classification& out) {
  bson_iter_t it;
  bson_iter_init(&it, in.body);
  bson_iter_next(&it);
  const auto named = as_string(&it);
  if (!named || named->empty()) {
    // The server refuses a command without its namespace; say so rather
    // than guess which collection was meant.
    out.whole(Operation::kSharding, make_ns(in.database, "*"));
    out.info.unjudged = std::string(in.command) + " does not name its namespace as a string";
    return;
  }
  // movePrimary names a database; so may a mistyped namespace.
  if (in.command == "movePrimary" || named->find('.') == std::string_view::npos) {
    out.whole(Operation::kSharding, make_ns(*named, "*"));
  } else {
    out.whole(Operation::kSharding, *named);
  }
}

}  // namespace mongoguard::policy::detail
