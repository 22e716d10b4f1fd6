// The command catalogue (its tables against docs/commands.md, the lookup,
// unknown commands), the destructive forms added to classify(), the
// extended tautology check, erasing replacements, whole-database
// exemptions, users as name@authdb, and the policy-file keys and warnings
// that go with them.
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "policy/classify_internal.h"
#include "policy/command_catalogue.h"
#include "policy/command_info.h"
#include "policy/identity.h"
#include "policy/policy.h"
#include "proxy/observe/metrics.h"

namespace mongoguard::policy {
namespace {

using Buf = std::vector<std::uint8_t>;

Buf doc(std::string_view json) {
  bson_error_t error;
  bson_t* b = bson_new_from_json(reinterpret_cast<const std::uint8_t*>(json.data()),
                                 static_cast<ssize_t>(json.size()), &error);
  if (b == nullptr) throw std::runtime_error(std::string("bad test JSON: ") + error.message);
  Buf out(bson_get_data(b), bson_get_data(b) + b->len);
  bson_destroy(b);
  return out;
}

std::optional<CommandInfo> classify_json(std::string_view json, std::string_view db = "app") {
  const Buf b = doc(json);
  bson_t body;
  if (!bson_init_static(&body, b.data(), b.size())) throw std::runtime_error("bad doc");
  return classify_command(&body, db);
}

bool unfiltered(std::string_view json) {
  const Buf b = doc(json);
  bson_t filter;
  if (!bson_init_static(&filter, b.data(), b.size())) throw std::runtime_error("bad doc");
  return is_unfiltered(&filter);
}

// is_erasing_replacement() of the value of {"u": ...}.
bool erasing(std::string_view json) {
  const Buf b = doc(json);
  bson_t d;
  bson_init_static(&d, b.data(), b.size());
  bson_iter_t it;
  if (!bson_iter_init_find(&it, &d, "u")) throw std::runtime_error("no u");
  return detail::is_erasing_replacement(&it);
}

const Target* only_target(const std::optional<CommandInfo>& info) {
  if (!info || info->targets.size() != 1) return nullptr;
  return &info->targets[0];
}

// ---- the catalogue and its documentation --------------------------------------

// The backticked first cell of each table row under `heading`.
std::set<std::string> doc_table(const std::string& text, std::string_view heading) {
  std::set<std::string> names;
  std::istringstream in(text);
  std::string line;
  bool inside = false;
  while (std::getline(in, line)) {
    if (line.starts_with("## ")) {
      inside = line.substr(3) == heading;
      continue;
    }
    if (!inside || !line.starts_with("| `")) continue;
    const auto end = line.find('`', 3);
    if (end != std::string::npos) names.insert(line.substr(3, end - 3));
  }
  return names;
}

TEST(CommandCatalogue, DocMatchesCode) {
  std::ifstream in(std::string(MG_SOURCE_DIR) + "/docs/commands.md");
  ASSERT_TRUE(in) << "docs/commands.md not readable";
  std::stringstream text;
  text << in.rdbuf();
  const auto documented_destructive = doc_table(text.str(), "Destructive commands (judged)");
  const auto documented_harmless = doc_table(text.str(), "Known non-destructive commands");
  ASSERT_FALSE(documented_destructive.empty());
  ASSERT_FALSE(documented_harmless.empty());
  const std::set<std::string> destructive(destructive_commands().begin(),
                                          destructive_commands().end());
  const std::set<std::string> harmless(harmless_commands().begin(), harmless_commands().end());
  for (const auto& n : destructive) {
    EXPECT_TRUE(documented_destructive.count(n)) << n << " is judged but not in docs/commands.md";
  }
  for (const auto& n : documented_destructive) {
    EXPECT_TRUE(destructive.count(n)) << n << " is documented as judged but not in the code";
  }
  for (const auto& n : harmless) {
    EXPECT_TRUE(documented_harmless.count(n)) << n << " is known but not in docs/commands.md";
  }
  for (const auto& n : documented_harmless) {
    EXPECT_TRUE(harmless.count(n)) << n << " is documented as known but not in the code";
  }
}

TEST(CommandCatalogue, LookupIsExactAndCaseSensitive) {
  for (auto n : destructive_commands()) {
    EXPECT_EQ(command_kind(n), CommandKind::kDestructive) << n;
    EXPECT_TRUE(is_inspected_command(n)) << n;
  }
  for (auto n : harmless_commands()) {
    EXPECT_EQ(command_kind(n), CommandKind::kHarmless) << n;
    EXPECT_FALSE(is_inspected_command(n)) << n;
  }
  for (auto n : {"Delete", "DROP", "dropuser", "Shutdown", "findAndmodify", "drop ", "",
                 "_shardsvrDropCollection", "dropDatabase\x01", "fin", "findx"}) {
    EXPECT_EQ(command_kind(n), CommandKind::kUnknown) << n;
    EXPECT_FALSE(is_inspected_command(n)) << n;
  }
  // The server's own aliases are the only other spellings.
  EXPECT_TRUE(is_inspected_command("findandmodify"));
  EXPECT_TRUE(is_inspected_command("mapreduce"));
  EXPECT_TRUE(is_inspected_command("deleteIndexes"));
}

TEST(CommandCatalogue, UnknownCommandAction) {
  EXPECT_EQ(unknown_command_action("find", UnknownCommands::kBlock), UnknownCommands::kForward);
  EXPECT_EQ(unknown_command_action("delete", UnknownCommands::kBlock), UnknownCommands::kForward);
  EXPECT_EQ(unknown_command_action("Find", UnknownCommands::kBlock), UnknownCommands::kBlock);
  EXPECT_EQ(unknown_command_action("Find", UnknownCommands::kLog), UnknownCommands::kLog);
  EXPECT_EQ(unknown_command_action("Find", UnknownCommands::kForward), UnknownCommands::kForward);
  EXPECT_EQ(parse_unknown_commands("block"), UnknownCommands::kBlock);
  EXPECT_FALSE(parse_unknown_commands("Block"));
  EXPECT_STREQ(unknown_commands_name(UnknownCommands::kLog), "log");
  EXPECT_NE(unknown_command_message("xyz").find("'xyz'"), std::string::npos);
}

TEST(CommandCatalogue, UnknownCommandMetricIsBounded) {
  proxy::Metrics m;
  EXPECT_TRUE(m.count_unknown_command("Drop"));
  EXPECT_FALSE(m.count_unknown_command("Drop"));
  for (std::size_t i = 1; i < proxy::Metrics::kNamedUnknownCommands; ++i) {
    EXPECT_TRUE(m.count_unknown_command("c" + std::to_string(i)));
  }
  EXPECT_TRUE(m.count_unknown_command("one-too-many"));  // the first "other": logged once
  EXPECT_FALSE(m.count_unknown_command("and-another"));
  EXPECT_FALSE(m.count_unknown_command("Drop"));
  EXPECT_TRUE(m.count_unknown_command(std::string("bad\x01\n") + std::string(100, 'x')) == false);
  const std::string text = m.render_prometheus();
  EXPECT_NE(text.find("mongoguard_unknown_commands_total{command=\"Drop\"} 3"), std::string::npos);
  EXPECT_NE(text.find("mongoguard_unknown_commands_total{command=\"other\"} 3"), std::string::npos);
  EXPECT_EQ(text.find("one-too-many"), std::string::npos);
}

// ---- tautologies -----------------------------------------------------------------

TEST(IsUnfilteredExtended, Tautologies) {
  for (const char* f : {
           R"({"$nor": [{"_id": {"$exists": false}}]})",
           R"({"_id": {"$exists": "true"}})",
           R"({"_id": {"$exists": ""}})",
           R"({"_id": {"$exists": "false"}})",  // a non-empty string is true, whatever it says
           R"({"_id": {"$exists": {}}})",
           R"({"_id": {"$exists": 2.5}})",
           R"({"_id": {"$exists": {"$numberLong": "-1"}}})",
           R"({"_id": {"$exists": {"$numberDecimal": "1"}}})",
           R"({"_id": {"$not": {"$eq": null}}})",
           R"({"_id": {"$not": {"$exists": false}}})",
           R"({"_id": {"$not": {"$exists": 0}}})",
           R"({"x": {"$not": {"$in": []}}})",
           R"({"_id": {"$not": {"$in": []}}})",
           R"({"x": {"$not": {"$all": []}}})",
           R"({"x": {"$not": {"$exists": false, "$in": []}}})",
           R"({"x": {"$not": {"$not": {"$nin": []}}}})",

           R"({"$expr": {"$eq": [1, 1]}})",
           R"({"$expr": {"$eq": [1, 1.0]}})",
           R"({"$expr": {"$ne": [1, "1"]}})",
           R"({"$expr": {"$gt": [2, 1]}})",
           R"({"$expr": {"$lte": ["a", "b"]}})",
           R"({"$expr": {"$not": [false]}})",
           R"({"$expr": {"$not": [0]}})",
           R"({"$expr": {"$literal": 1}})",
           R"({"$expr": {"$literal": "$notAPath"}})",
           R"({"$expr": {"$or": ["$a", true]}})",
           R"({"$expr": {"$and": []}})",
           R"({"$expr": ""})",
           R"({"$or": [{"a": 1}, {"_id": {"$exists": "yes"}}]})",
           R"({"$nor": [{"$expr": false}, {"x": {"$in": []}}, {"$alwaysFalse": 1}]})",
           R"({"$nor": [{"$nor": [{"_id": {"$exists": true}}]}]})",
           R"({"$nor": [{"$and": [{"a": 1}, {"_id": {"$exists": false}}]}]})",
           R"({"$nor": [{"$or": [{"_id": null}, {"_id": {"$in": []}}]}]})",
           R"({"$and": [{"_id": {"$nin": []}}, {"$nor": [{"_id": {"$exists": false}}]}]})",
           R"({"_id": {"$exists": true, "$not": {"$in": []}}})",
       }) {
    EXPECT_TRUE(unfiltered(f)) << f;
  }
}

TEST(IsUnfilteredExtended, SelectiveLookAlikes) {
  for (const char* f : {
           R"({"$nor": [{"a": {"$exists": false}}]})",  // only documents that have a
           R"({"$nor": [{"_id": {"$exists": true}}]})",
           R"({"$nor": [{"_id": 5}]})",
           R"({"$nor": []})",
           R"({"$or": []})",
           R"({"_id": {"$exists": false}})",
           R"({"_id": {"$exists": 0}})",
           R"({"_id": {"$exists": null}})",
           R"({"_id": {"$exists": {"$numberDecimal": "0"}}})",
           R"({"_id": {"$exists": {"$numberDecimal": "-0E+3"}}})",
           R"({"a": {"$exists": "true"}})",
           R"({"a": {"$not": {"$exists": false}}})",
           R"({"a": {"$not": {"$eq": null}}})",
           R"({"_id": {"$not": {"$eq": 5}}})",
           R"({"_id": {"$not": {"$exists": true}}})",
           R"({"_id": {"$not": {"$nin": []}}})",
           R"({"_id": {"$not": {"$regex": "x"}}})",
           R"({"_id": {"$not": {}}})",
           R"({"x": {"$in": []}})",
           R"({"x": {"$not": {"$in": [1]}}})",

           R"({"$expr": {"$eq": [1, 2]}})",
           R"({"$expr": {"$eq": ["$a", "$a"]}})",
           R"({"$expr": {"$gt": ["$a", 1]}})",
           R"({"$expr": {"$gt": [1, "a"]}})",
           R"({"$expr": {"$not": ["$a"]}})",
           R"({"$expr": {"$not": [true]}})",
           R"({"$expr": {"$and": [true, "$flag"]}})",
           R"({"$expr": {"$or": []}})",
           R"({"$expr": {"$literal": false}})",
           R"({"$expr": {"$literal": null}})",
           R"({"$expr": "$$ROOT"})",
           R"({"$expr": {"$eq": [1, 1], "$ne": [1, 2]}})",
           R"({"$expr": {"$eq": [{"$literal": 1}, "$a"]}})",
           R"({"$or": [{"a": 1}, {"_id": {"$exists": false}}]})",
           R"({"$and": [{"_id": {"$nin": []}}, {"a": 1}]})",
           R"({"_id": {"$exists": true, "$in": []}})",
           R"({"_id": null})",
       }) {
    EXPECT_FALSE(unfiltered(f)) << f;
  }
}

// {<field>: {$type: <value of "t" in `json`>}}, built by hand: libbson's
// JSON reader takes a "$type" key for legacy extended JSON.
bool type_unfiltered(std::string_view field, std::string_view json) {
  const Buf b = doc(json);
  bson_t src;
  bson_init_static(&src, b.data(), b.size());
  bson_iter_t it;
  if (!bson_iter_init_find(&it, &src, "t")) throw std::runtime_error("no t");
  bson_t filter = BSON_INITIALIZER;
  bson_t ops;
  bson_append_document_begin(&filter, field.data(), static_cast<int>(field.size()), &ops);
  bson_append_iter(&ops, "$type", 5, &it);
  bson_append_document_end(&filter, &ops);
  const bool out = is_unfiltered(&filter);
  bson_destroy(&filter);
  return out;
}

TEST(IsUnfilteredExtended, TypeNamingEveryType) {
  EXPECT_TRUE(type_unfiltered("_id", R"({"t": ["double", "string", "object", "binData",
      "undefined", "objectId", "bool", "date", "null", "regex", "dbPointer", "javascript",
      "symbol", "javascriptWithScope", "int", "timestamp", "long", "decimal", "minKey",
      "maxKey"]})"));
  EXPECT_TRUE(type_unfiltered(
      "_id", R"({"t": [1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, "number", 17, -1, 127]})"));
  EXPECT_FALSE(type_unfiltered("_id", R"({"t": ["double", "string", "objectId"]})"));
  EXPECT_FALSE(type_unfiltered("_id", R"({"t": "number"})"));
  EXPECT_FALSE(type_unfiltered("_id", R"({"t": [1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
      16, 17, 18, 19, -1]})"));       // no maxKey
  EXPECT_FALSE(type_unfiltered("a", R"({"t": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
      16, 17, 18, 19, -1, 127]})"));  // a missing field has no type
}

TEST(IsUnfilteredExtended, DeepNestingIsSelectiveNotACrash) {
  // {$nor: [{$nor: [ ... {_id: {$exists: false}} ... ]}]}, 300 deep.
  bson_t* inner = BCON_NEW("_id", "{", "$exists", BCON_BOOL(false), "}");
  for (int i = 0; i < 300; ++i) {
    bson_t* outer = bson_new();
    bson_t arr;
    bson_append_array_begin(outer, "$nor", 4, &arr);
    bson_append_document(&arr, "0", 1, inner);
    bson_append_array_end(outer, &arr);
    bson_destroy(inner);
    inner = outer;
  }
  EXPECT_FALSE(is_unfiltered(inner));
  bson_destroy(inner);
}

TEST(IsUnfilteredExtended, JudgedStatementsUseIt) {
  auto info = classify_json(
      R"({"delete": "c", "deletes": [{"q": {"$nor": [{"_id": {"$exists": false}}]}, "limit": 0}]})");
  ASSERT_TRUE(only_target(info));
  EXPECT_EQ(only_target(info)->filter, FilterShape::kUnfiltered);
}

// ---- erasing replacements ------------------------------------------------------

TEST(ErasingReplacement, OnlyIdLeft) {
  EXPECT_TRUE(erasing(R"({"u": {}})"));
  EXPECT_TRUE(erasing(R"({"u": {"_id": 1}})"));
  EXPECT_TRUE(erasing(R"({"u": [{"$replaceWith": {}}]})"));
  EXPECT_TRUE(erasing(R"({"u": [{"$set": {"a": 1}}, {"$replaceRoot": {"newRoot": {"_id": 1}}}]})"));
  EXPECT_TRUE(erasing(R"({"u": [{"$project": {"_id": 1}}]})"));
  EXPECT_TRUE(erasing(R"({"u": [{"$replaceWith": {"$literal": {}}}]})"));
  EXPECT_TRUE(erasing(R"({"u": [{"$replaceRoot": {"newRoot": {"$literal": {"_id": 7}}}}]})"));
  EXPECT_FALSE(erasing(R"({"u": [{"$replaceWith": {"$literal": {"a": 1}}}]})"));
  EXPECT_FALSE(erasing(R"({"u": {"_id": 1, "a": 2}})"));
  EXPECT_FALSE(erasing(R"({"u": {"a": 2}})"));
  EXPECT_FALSE(erasing(R"({"u": {"$set": {"a": 1}}})"));
  EXPECT_FALSE(erasing(R"({"u": {"$unset": {"a": 1}}})"));
  EXPECT_FALSE(erasing(R"({"u": []})"));
  EXPECT_FALSE(erasing(R"({"u": [{"$replaceWith": "$sub"}]})"));
  EXPECT_FALSE(erasing(R"({"u": [{"$project": {"_id": 0}}]})"));
  EXPECT_FALSE(erasing(R"({"u": [{"$project": {"a": 1}}]})"));
  EXPECT_FALSE(erasing(R"({"u": "x"})"));
  EXPECT_FALSE(detail::is_erasing_replacement(nullptr));
}

TEST(ErasingReplacement, ApplyOpsUpdateThatErasesMatchesDelete) {
  auto info = classify_json(
      R"({"applyOps": [{"op": "u", "ns": "app.c", "o2": {"_id": 1}, "o": {"_id": 1}}]})", "admin");
  ASSERT_TRUE(only_target(info));
  EXPECT_TRUE(only_target(info)->matches.has(Operation::kDelete));
  EXPECT_TRUE(only_target(info)->matches.has(Operation::kReplace));
}

// ---- the destructive forms -------------------------------------------------------

struct Form {
  const char* json;
  const char* db;
  Operation op;
  const char* ns;
  std::optional<Operation> also = std::nullopt;
};

TEST(ClassifyCatalogue, EveryDestructiveFormIsJudged) {
  const Form forms[] = {
      {R"({"dropUser": "bob"})", "app", Operation::kDropUser, "app.*", Operation::kUserAdmin},
      {R"({"dropAllUsersFromDatabase": 1})", "app", Operation::kDropUser, "app.*"},
      {R"({"dropRole": "r"})", "app", Operation::kDropRole, "app.*", Operation::kUserAdmin},
      {R"({"dropAllRolesFromDatabase": 1})", "admin", Operation::kDropRole, "admin.*"},
      {R"({"revokeRolesFromUser": "bob", "roles": ["read"]})", "app", Operation::kUserAdmin,
       "app.*"},
      {R"({"revokeRolesFromRole": "r", "roles": ["read"]})", "app", Operation::kUserAdmin, "app.*"},
      {R"({"revokePrivilegesFromRole": "r", "privileges": []})", "app", Operation::kUserAdmin,
       "app.*"},
      {R"({"updateUser": "bob", "roles": []})", "app", Operation::kUserAdmin, "app.*"},
      {R"({"updateUser": "bob", "pwd": "x"})", "app", Operation::kUserAdmin, "app.*"},
      {R"({"updateRole": "r", "privileges": []})", "app", Operation::kUserAdmin, "app.*"},
      {R"({"shutdown": 1, "force": true})", "admin", Operation::kShutdown, "admin.*"},
      {R"({"replSetReconfig": {"_id": "rs", "members": []}})", "admin", Operation::kClusterAdmin,
       "admin.*"},
      {R"({"setFeatureCompatibilityVersion": "6.0"})", "admin", Operation::kClusterAdmin,
       "admin.*"},
      {R"({"removeShard": "s1"})", "admin", Operation::kClusterAdmin, "admin.*"},
      {R"({"fsync": 1, "lock": true})", "admin", Operation::kClusterAdmin, "admin.*"},
      {R"({"collMod": "c", "cappedSize": 1024})", "app", Operation::kCappedResize, "app.c",
       Operation::kConvertToCapped},
      {R"({"collMod": "c", "cappedMax": 10})", "app", Operation::kCappedResize, "app.c"},
      {R"({"collMod": "c", "expireAfterSeconds": 10})", "app", Operation::kTtlChange, "app.c"},
      {R"({"cloneCollectionAsCapped": "a", "toCollection": "b", "size": 10})", "app",
       Operation::kConvertToCapped, "app.b"},
      {R"({"captrunc": "c", "n": 5})", "app", Operation::kEmptycapped, "app.c"},
      {R"({"reshardCollection": "app.c", "key": {"a": 1}})", "admin", Operation::kSharding,
       "app.c"},
      {R"({"refineCollectionShardKey": "app.c", "key": {"a": 1, "b": 1}})", "admin",
       Operation::kSharding, "app.c"},
      {R"({"cleanupOrphaned": "app.c"})", "admin", Operation::kSharding, "app.c"},
      {R"({"moveChunk": "app.c", "find": {"a": 1}, "to": "s2"})", "admin", Operation::kSharding,
       "app.c"},
      {R"({"moveRange": "app.c", "min": {"a": 1}, "toShard": "s2"})", "admin", Operation::kSharding,
       "app.c"},
      {R"({"movePrimary": "app", "to": "s2"})", "admin", Operation::kSharding, "app.*"},
      {R"({"unshardCollection": "app.c"})", "admin", Operation::kSharding, "app.c"},
      {R"({"explain": {"delete": "c", "deletes": [{"q": {}, "limit": 0}]}})", "app",
       Operation::kDelete, "app.c"},
      {R"({"explain": {"explain": {"drop": "c"}}})", "app", Operation::kDrop, "app.c"},
      {R"({"explain": {"aggregate": "c", "pipeline": [{"$out": "d"}]}})", "app",
       Operation::kAggregateOut, "app.d"},
  };
  for (const Form& f : forms) {
    auto info = classify_json(f.json, f.db);
    const Target* t = only_target(info);
    ASSERT_TRUE(t) << f.json;
    EXPECT_EQ(t->op, f.op) << f.json;
    EXPECT_EQ(t->ns, f.ns) << f.json;
    if (f.also) {
      EXPECT_TRUE(t->matches.has(*f.also)) << f.json;
    }
    EXPECT_TRUE(info->unjudged.empty()) << f.json << ": " << info->unjudged;
  }
}

TEST(ClassifyCatalogue, HarmlessFormsOfJudgedCommandsPass) {
  EXPECT_FALSE(classify_json(R"({"updateUser": "bob", "customData": {"a": 1}})"));
  EXPECT_FALSE(classify_json(R"({"updateRole": "r", "comment": "x"})"));
  EXPECT_FALSE(classify_json(R"({"fsync": 1})", "admin"));
  EXPECT_FALSE(classify_json(R"({"fsync": 1, "lock": false})", "admin"));
  EXPECT_FALSE(classify_json(R"({"collMod": "c", "validator": {}})"));
  EXPECT_FALSE(classify_json(R"({"explain": {"find": "c", "filter": {}}})"));
  EXPECT_FALSE(classify_json(R"({"explain": 1})"));
  EXPECT_FALSE(classify_json(R"({"createUser": "bob", "pwd": "x", "roles": []})"));
  EXPECT_FALSE(classify_json(R"({"grantRolesToUser": "bob", "roles": ["read"]})"));
}

TEST(ClassifyCatalogue, ExplainKeepsWhatItWraps) {
  auto info = classify_json(
      R"({"explain": {"update": "c", "updates": [{"q": {"a": 1}, "u": {"$set": {"b": 1}}, "multi": true}]}, "verbosity": "queryPlanner"})");
  ASSERT_TRUE(only_target(info));
  EXPECT_EQ(info->command, "explain update");
  EXPECT_EQ(only_target(info)->filter, FilterShape::kFiltered);
  EXPECT_EQ(only_target(info)->multi_statements, 1);
}

TEST(ClassifyCatalogue, WhatCannotBeJudgedIsSaid) {
  auto ui = classify_json(
      R"({"applyOps": [{"op": "d", "ns": "app.c", "ui": {"$binary": {"base64": "AAAAAAAAAAAAAAAAAAAAAA==", "subType": "04"}}, "o": {"_id": 1}}]})",
      "admin");
  ASSERT_TRUE(ui);
  EXPECT_NE(ui->unjudged.find("UUID"), std::string::npos);
  auto nested = classify_json(
      R"({"applyOps": [{"op": "c", "ns": "admin.$cmd", "o": {"applyOps": [{"op": "i", "ns": "app.c", "ui": {"$binary": {"base64": "AAAAAAAAAAAAAAAAAAAAAA==", "subType": "04"}}, "o": {"_id": 1}}]}}]})",
      "admin");
  ASSERT_TRUE(nested);
  EXPECT_FALSE(nested->unjudged.empty());
  auto no_op = classify_json(R"({"applyOps": [{"ns": "app.c", "o": {"_id": 1}}]})", "admin");
  ASSERT_TRUE(no_op);
  EXPECT_FALSE(no_op->unjudged.empty());
  auto not_doc = classify_json(R"({"applyOps": [1]})", "admin");
  ASSERT_TRUE(not_doc);
  EXPECT_FALSE(not_doc->unjudged.empty());
  auto eval = classify_json(R"js({"eval": "db.c.remove({})"})js");
  ASSERT_TRUE(eval);
  EXPECT_FALSE(eval->unjudged.empty());
  auto shard = classify_json(R"({"moveChunk": 5})", "admin");
  ASSERT_TRUE(shard);
  EXPECT_FALSE(shard->unjudged.empty());
  auto plain = classify_json(R"({"applyOps": [{"op": "d", "ns": "app.c", "o": {"_id": 1}}]})");
  ASSERT_TRUE(plain);
  EXPECT_TRUE(plain->unjudged.empty());
}

TEST(ClassifyCatalogue, OverOpQueryToo) {
  // {$query: {...}} as legacy OP_QUERY commands wrap themselves.
  auto info = classify_json(R"({"$query": {"dropUser": "bob"}, "$readPreference": {}})", "app");
  ASSERT_TRUE(only_target(info));
  EXPECT_EQ(only_target(info)->op, Operation::kDropUser);
}

// ---- whole-database exemptions -------------------------------------------------

NamespaceGlob glob(std::string_view text) {
  std::string error;
  auto g = NamespaceGlob::parse(text, error);
  if (!g) throw std::runtime_error(error);
  return *g;
}

Rule make_rule(std::string name, Action action, std::string_view ns) {
  Rule r;
  r.name = std::move(name);
  r.action = action;
  r.namespaces.push_back(glob(ns));
  return r;
}

TEST(WholeDatabaseExemption, NeedsAPatternCoveringTheDatabase) {
  EXPECT_TRUE(glob("app.*").covers_database("app.*"));
  EXPECT_TRUE(glob("*.*").covers_database("app.*"));
  EXPECT_TRUE(glob("a?p.**").covers_database("app.*"));
  EXPECT_FALSE(glob("app.tmp_*").covers_database("app.*"));
  EXPECT_FALSE(glob("app.c").covers_database("app.*"));
  EXPECT_FALSE(glob("other.*").covers_database("app.*"));

  for (const char* json : {R"({"dropDatabase": 1})", R"({"dropUser": "bob"})",
                           R"({"revokeRolesFromUser": "bob", "roles": []})"}) {
    auto info = classify_json(json, "app");
    ASSERT_TRUE(info);
    Policy narrow;
    narrow.rules.push_back(make_rule("tmp-may", Action::kAllow, "app.tmp_*"));
    narrow.rules.push_back(make_rule("no", Action::kBlock, "app.*"));
    EXPECT_EQ(decide(narrow, *info, {}).action, Action::kBlock) << json;

    Policy wide;
    wide.rules.push_back(make_rule("app-may", Action::kAllow, "app.*"));
    wide.rules.push_back(make_rule("no", Action::kBlock, "*.*"));
    EXPECT_EQ(decide(wide, *info, {}).action, Action::kAllow) << json;
  }
  // A block rule on some collections still sees the whole database go.
  auto drop_db = classify_json(R"({"dropDatabase": 1})", "app");
  Policy protect;
  protect.rules.push_back(make_rule("keep-tmp", Action::kBlock, "app.tmp_*"));
  EXPECT_EQ(decide(protect, *drop_db, {}).action, Action::kBlock);
  // Collection targets are exempted by collection patterns as before.
  auto drop = classify_json(R"({"drop": "tmp_1"})", "app");
  Policy tmp;
  tmp.rules.push_back(make_rule("tmp-may", Action::kAllow, "app.tmp_*"));
  tmp.rules.push_back(make_rule("no", Action::kBlock, "app.*"));
  EXPECT_EQ(decide(tmp, *drop, {}).action, Action::kAllow);
  // The shutdown of the server is exempted only by a pattern covering admin.
  auto shutdown = classify_json(R"({"shutdown": 1})", "admin");
  Policy ops;
  ops.rules.push_back(make_rule("sys-may", Action::kAllow, "admin.system.*"));
  ops.rules.push_back(make_rule("no", Action::kBlock, "*.*"));
  EXPECT_EQ(decide(ops, *shutdown, {}).action, Action::kBlock);
}

// ---- users as name@authdb ------------------------------------------------------

TEST(UsersWithTheirDatabase, QualifiedAndMatched) {
  bool bare = false;
  EXPECT_EQ(rule_user("admin", &bare), "admin@admin");
  EXPECT_TRUE(bare);
  EXPECT_EQ(rule_user("admin@app", &bare), "admin@app");
  EXPECT_FALSE(bare);
  EXPECT_EQ(rule_user("CN=client,O=x@$external"), "CN=client,O=x@$external");

  AuthStart start;
  start.user = "admin";
  start.database = "app";
  EXPECT_EQ(start.qualified_user(), "admin@app");

  Policy p;
  Rule r = make_rule("admins-may", Action::kAllow, "*.*");
  r.users = {rule_user("admin")};
  p.rules.push_back(r);
  p.rules.push_back(make_rule("no", Action::kBlock, "*.*"));
  auto info = classify_json(R"({"drop": "c"})");
  Identity in_app;
  in_app.user = "admin@app";  // created in app, not the administrator
  EXPECT_EQ(decide(p, *info, in_app).action, Action::kBlock);
  Identity in_admin;
  in_admin.user = "admin@admin";
  EXPECT_EQ(decide(p, *info, in_admin).action, Action::kAllow);
}

}  // namespace
}  // namespace mongoguard::policy

namespace mongoguard::config {
namespace {

std::vector<std::string> warnings_of(const LoadResult& r) {
  std::vector<std::string> out;
  for (const auto& w : r.warnings) out.push_back(w.to_string());
  return out;
}

bool has(const std::vector<std::string>& list, std::string_view needle) {
  for (const auto& s : list) {
    if (s.find(needle) != std::string::npos) return true;
  }
  return false;
}

TEST(PolicyFileCatalogue, UnknownCommandsAndCeiling) {
  auto r = parse_config(R"(unknown_commands: block
rules:
  - name: budget
    match: { namespace: "app.*", operations: [delete] }
    limit: { documents: 10, per: 1m, group_by: [app], ceiling: 40 }
    action: hold
)",
                        "p.yaml");
  ASSERT_TRUE(r.ok()) << (r.errors.empty() ? "" : r.errors[0].to_string());
  EXPECT_EQ(r.config->policy->unknown_commands, policy::UnknownCommands::kBlock);
  EXPECT_EQ(r.config->policy->rules[0].limit->windows[0].ceiling, 40);
  EXPECT_TRUE(r.warnings.empty());

  auto d = parse_config("rules: []\n", "p.yaml");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d.config->policy->unknown_commands, policy::UnknownCommands::kLog);

  auto bad = parse_config(R"(unknown_commands: deny
rules:
  - name: budget
    match: { operations: [delete] }
    limit: { documents: 10, per: 1m, ceiling: 5 }
    action: hold
  - name: budget2
    match: { operations: [delete] }
    limit: { documents: 10, per: 1m, ceiling: zero }
    action: hold
)",
                          "p.yaml");
  ASSERT_EQ(bad.errors.size(), 3u);
  EXPECT_EQ(bad.errors[0].to_string(),
            "p.yaml:1:19: unknown_commands must be forward, log or block, not 'deny'");
  EXPECT_EQ(bad.errors[1].line, 5);
  EXPECT_EQ(bad.errors[2].line, 9);
}

TEST(PolicyFileCatalogue, OperationsVocabularyHasTheNewNames) {
  auto r = parse_config(R"(rules:
  - name: people
    match: { operations: [dropUser, dropRole, userAdmin, shutdown, clusterAdmin, sharding, cappedResize] }
    action: block
)",
                        "p.yaml");
  ASSERT_TRUE(r.ok()) << (r.errors.empty() ? "" : r.errors[0].to_string());
  const auto& ops = r.config->policy->rules[0].operations;
  EXPECT_TRUE(ops.has(policy::Operation::kShutdown));
  EXPECT_TRUE(ops.has(policy::Operation::kUserAdmin));
  EXPECT_TRUE(ops.has(policy::Operation::kCappedResize));
}

TEST(PolicyFileCatalogue, WarningsNameTheirPosition) {
  auto r = parse_config(R"(rules:
  - name: migrator-may
    match: { namespace: "app.*", apps: [migrator] }
    action: allow
  - name: admin-may
    match: { namespace: "app.*", users: [admin, "ops@app"] }
    action: allow
  - name: per-app
    match: { namespace: "app.*", operations: [delete] }
    limit: { documents: 10, per: 1m, group_by: [app] }
    action: hold
  - name: per-client
    match: { namespace: "app.*", operations: [delete] }
    limit: { documents: 10, per: 1m, group_by: client }
    action: hold
  - name: per-user
    match: { namespace: "app.*", operations: [delete] }
    limit: { documents: 10, per: 1m, group_by: user }
    action: hold
  - name: app-and-user-may
    match: { namespace: "app.*", apps: [migrator], users: ["deploy@admin"] }
    action: allow
)",
                        "p.yaml");
  ASSERT_TRUE(r.ok()) << (r.errors.empty() ? "" : r.errors[0].to_string());
  const auto w = warnings_of(r);
  ASSERT_EQ(w.size(), 4u) << ::testing::PrintToString(w);
  EXPECT_TRUE(w[0].starts_with("p.yaml:3:40: rule 'migrator-may' exempts by appName alone"))
      << w[0];
  EXPECT_TRUE(
      w[1].starts_with("p.yaml:6:42: user 'admin' names no database: it matches "
                       "admin@admin"))
      << w[1];
  EXPECT_TRUE(w[2].starts_with("p.yaml:10:48: group_by app")) << w[2];
  EXPECT_TRUE(w[3].starts_with("p.yaml:14:48: group_by client")) << w[3];
  EXPECT_FALSE(has(w, "per-user"));
  EXPECT_EQ(r.config->policy->rules[1].users, (std::vector<std::string>{"admin@admin", "ops@app"}));
}

}  // namespace
}  // namespace mongoguard::config
