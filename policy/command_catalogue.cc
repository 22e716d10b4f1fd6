// The command catalogue: two tables and a compile-time hash set over them.
#include "policy/command_catalogue.h"

#include <array>

namespace mongoguard::policy {
namespace {

// Kept in docs/commands.md as well (tests/unit/policy_catalogue_test.cc).
constexpr std::array<std::string_view, 51> kDestructive = {
    "delete",
    "update",
    "findAndModify",
    "findandmodify",
    "bulkWrite",
    "drop",
    "dropDatabase",
    "dropIndexes",
    "deleteIndexes",
    "renameCollection",
    "aggregate",
    "mapReduce",
    "mapreduce",
    "convertToCapped",
    "cloneCollectionAsCapped",
    "emptycapped",
    "captrunc",
    "collMod",
    "createIndexes",
    "applyOps",
    "doTxn",
    "dropSearchIndex",
    "explain",
    "eval",
    "dropUser",
    "dropAllUsersFromDatabase",
    "dropRole",
    "dropAllRolesFromDatabase",
    "revokeRolesFromUser",
    "revokeRolesFromRole",
    "revokePrivilegesFromRole",
    "updateUser",
    "updateRole",
    "shutdown",
    "replSetReconfig",
    "setFeatureCompatibilityVersion",
    "setUserWriteBlockMode",
    "replSetResizeOplog",
    "removeShard",
    "transitionToDedicatedConfigServer",
    "fsync",
    "resync",
    "repairDatabase",
    "reshardCollection",
    "refineCollectionShardKey",
    "cleanupOrphaned",
    "moveChunk",
    "moveRange",
    "movePrimary",
    "moveCollection",
    "unshardCollection",
};

constexpr std::array<std::string_view, 160> kHarmless = {
    "abortMoveCollection",
    "abortReshardCollection",
    "abortTransaction",
    "abortUnshardCollection",
    "addShard",
    "addShardToZone",
    "analyze",
    "analyzeShardKey",
    "appendOplogNote",
    "atlasVersion",
    "authSchemaUpgrade",
    "authenticate",
    "autoCompact",
    "availableQueryOptions",
    "balancerCollectionStatus",
    "balancerStart",
    "balancerStatus",
    "balancerStop",
    "buildInfo",
    "buildinfo",
    "checkMetadataConsistency",
    "checkShardingIndex",
    "cleanupReshardCollection",
    "cleanupStructuredEncryptionData",
    "clearJumboFlag",
    "clearLog",
    "clone",
    "cloneCollection",
    "collStats",
    "collstats",
    "commitReshardCollection",
    "commitTransaction",
    "compact",
    "compactStructuredEncryptionData",
    "configureCollectionBalancing",
    "configureFailPoint",
    "configureQueryAnalyzer",
    "connPoolStats",
    "connPoolSync",
    "connectionStatus",
    "copydb",
    "copydbgetnonce",
    "count",
    "create",
    "createRole",
    "createSearchIndexes",
    "createUser",
    "currentOp",
    "cursorInfo",
    "dataSize",
    "dbCheck",
    "dbHash",
    "dbStats",
    "dbstats",
    "distinct",
    "driverOIDTest",
    "dropConnections",
    "enableSharding",
    "endSessions",
    "features",
    "filemd5",
    "find",
    "flushRouterConfig",
    "fsyncUnlock",
    "geoNear",
    "geoSearch",
    "getAuditConfig",
    "getClusterParameter",
    "getCmdLineOpts",
    "getDefaultRWConcern",
    "getDiagnosticData",
    "getFreeMonitoringStatus",
    "getLastError",
    "getLog",
    "getMore",
    "getParameter",
    "getPrevError",
    "getShardMap",
    "getShardVersion",
    "getlasterror",
    "getnonce",
    "grantPrivilegesToRole",
    "grantRolesToRole",
    "grantRolesToUser",
    "group",
    "hello",
    "hostInfo",
    "insert",
    "invalidateUserCache",
    "isMaster",
    "isdbgrid",
    "ismaster",
    "killAllSessions",
    "killAllSessionsByPattern",
    "killCursors",
    "killOp",
    "killSessions",
    "listCollections",
    "listCommands",
    "listDatabases",
    "listIndexes",
    "listSearchIndexes",
    "listShards",
    "lockInfo",
    "logApplicationMessage",
    "logRotate",
    "logout",
    "mergeAllChunksOnShard",
    "mergeChunks",
    "netstat",
    "parallelCollectionScan",
    "ping",
    "planCacheClear",
    "planCacheClearFilters",
    "planCacheListFilters",
    "planCacheSetFilter",
    "profile",
    "reIndex",
    "refreshSessions",
    "releaseMemory",
    "removeQuerySettings",
    "removeShardFromZone",
    "replSetAbortPrimaryCatchUp",
    "replSetFreeze",
    "replSetGetConfig",
    "replSetGetStatus",
    "replSetInitiate",
    "replSetMaintenance",
    "replSetStepDown",
    "replSetSyncFrom",
    "resetError",
    "rolesInfo",
    "rotateCertificates",
    "saslContinue",
    "saslStart",
    "serverStatus",
    "setAuditConfig",
    "setClusterParameter",
    "setDefaultRWConcern",
    "setFreeMonitoring",
    "setIndexCommitQuorum",
    "setParameter",
    "setQuerySettings",
    "shardCollection",
    "shardConnPoolStats",
    "shardingState",
    "split",
    "splitChunk",
    "splitVector",
    "startRecordingTraffic",
    "startSession",
    "stopRecordingTraffic",
    "top",
    "transitionFromDedicatedConfigServer",
    "updateSearchIndex",
    "updateZoneKeyRange",
    "usersInfo",
    "validate",
    "validateDBMetadata",
    "whatsmyuri",
};

constexpr std::size_t kNames = kDestructive.size() + kHarmless.size();
// Open addressing at under a quarter full: a lookup almost always reads one
// slot, and a miss (an unknown name) stops at the first empty one.
constexpr std::size_t kSlots = 1024;
static_assert(kSlots >= 4 * kNames && (kSlots & (kSlots - 1)) == 0);

constexpr std::uint64_t fnv1a(std::string_view s) {
  std::uint64_t h = 14695981039346656037ULL;
  for (char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ULL;
  }
  return h;
}

constexpr std::string_view name_at(std::size_t i) {
  return i < kDestructive.size() ? kDestructive[i] : kHarmless[i - kDestructive.size()];
}

// Slot value: index + 1 into the concatenated tables, 0 for empty.
using Table = std::array<std::uint16_t, kSlots>;

constexpr Table build_table() {
  Table table{};
  for (std::size_t i = 0; i < kNames; ++i) {
    std::size_t slot = fnv1a(name_at(i)) & (kSlots - 1);
    while (table[slot] != 0) slot = (slot + 1) & (kSlots - 1);
    table[slot] = static_cast<std::uint16_t>(i + 1);
  }
  return table;
}

constexpr Table kTable = build_table();

// Both tables together must not name a command twice (a name in both would
// make its kind depend on the table order).
constexpr bool names_unique() {
  for (std::size_t i = 0; i < kNames; ++i) {
    for (std::size_t j = i + 1; j < kNames; ++j) {
      if (name_at(i) == name_at(j)) return false;
    }
  }
  return true;
}
static_assert(names_unique());

}  // namespace

std::span<const std::string_view> destructive_commands() { return kDestructive; }
std::span<const std::string_view> harmless_commands() { return kHarmless; }

CommandKind command_kind(std::string_view name) {
  std::size_t slot = fnv1a(name) & (kSlots - 1);
  while (const std::uint16_t entry = kTable[slot]) {
    const std::size_t i = entry - 1u;
    if (name_at(i) == name) {
      return i < kDestructive.size() ? CommandKind::kDestructive : CommandKind::kHarmless;
    }
    slot = (slot + 1) & (kSlots - 1);
  }
  return CommandKind::kUnknown;
}

const char* unknown_commands_name(UnknownCommands mode) {
  switch (mode) {
    case UnknownCommands::kForward:
      return "forward";
    case UnknownCommands::kLog:
      return "log";
    case UnknownCommands::kBlock:
      return "block";
  }
  return "log";
}

std::optional<UnknownCommands> parse_unknown_commands(std::string_view text) {
  if (text == "forward") return UnknownCommands::kForward;
  if (text == "log") return UnknownCommands::kLog;
  if (text == "block") return UnknownCommands::kBlock;
  return std::nullopt;
}

UnknownCommands unknown_command_action(std::string_view name, UnknownCommands mode) {
  if (mode == UnknownCommands::kForward || command_kind(name) != CommandKind::kUnknown) {
    return UnknownCommands::kForward;
  }
  return mode;
}

std::string unknown_command_message(std::string_view name) {
  return "mongoguard: command '" + std::string(name) +
         "' is not in mongoguard's command catalogue and unknown_commands is block; "
         "nothing was sent to the server";
}

}  // namespace mongoguard::policy
