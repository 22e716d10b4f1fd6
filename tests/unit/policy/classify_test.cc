// classify(): every operation of the vocabulary, in every framing a client
// may use (inline arrays, kind-1 sequences, OP_COMPRESSED, OP_QUERY $cmd,
// legacy OP_DELETE/OP_UPDATE), and the tautological filters.
#include <gtest/gtest.h>

#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bson/wire.h"
#include "policy/command_info.h"

namespace mongoguard::policy {
namespace {

using Buf = std::vector<std::uint8_t>;

// ---- message builders -------------------------------------------------------

Buf doc(std::string_view json) {
  bson_error_t error;
  bson_t* b = bson_new_from_json(reinterpret_cast<const std::uint8_t*>(json.data()),
                                 static_cast<ssize_t>(json.size()), &error);
  if (b == nullptr) throw std::runtime_error(std::string("bad test JSON: ") + error.message);
  Buf out(bson_get_data(b), bson_get_data(b) + b->len);
  bson_destroy(b);
  return out;
}

void put_i32(Buf& b, std::int32_t v) {
  for (int i = 0; i < 4; ++i)
    b.push_back(static_cast<std::uint8_t>(static_cast<std::uint32_t>(v) >> (8 * i)));
}
void put_cstr(Buf& b, std::string_view s) {
  b.insert(b.end(), s.begin(), s.end());
  b.push_back(0);
}
void put(Buf& b, const Buf& more) { b.insert(b.end(), more.begin(), more.end()); }

Buf frame(wire::OpCode op, const Buf& payload) {
  Buf out;
  put_i32(out, static_cast<std::int32_t>(16 + payload.size()));
  put_i32(out, 42);
  put_i32(out, 0);
  put_i32(out, static_cast<std::int32_t>(op));
  put(out, payload);
  return out;
}

struct Sequence {
  std::string_view id;
  std::vector<std::string_view> docs;
};

// OP_MSG: flags, a kind-0 body, then kind-1 sequences.
Buf op_msg(std::string_view body, std::initializer_list<Sequence> sequences = {},
           std::uint32_t flags = 0) {
  Buf p;
  put_i32(p, static_cast<std::int32_t>(flags));
  p.push_back(0);
  put(p, doc(body));
  for (const Sequence& s : sequences) {
    Buf section;
    put_cstr(section, s.id);
    for (auto d : s.docs) put(section, doc(d));
    p.push_back(1);
    put_i32(p, static_cast<std::int32_t>(4 + section.size()));
    put(p, section);
  }
  return frame(wire::OpCode::kMsg, p);
}

Buf op_query(std::string_view ns, std::string_view query) {
  Buf p;
  put_i32(p, 0);
  put_cstr(p, ns);
  put_i32(p, 0);
  put_i32(p, -1);
  put(p, doc(query));
  return frame(wire::OpCode::kQuery, p);
}

Buf op_delete(std::string_view ns, std::int32_t flags, std::string_view selector) {
  Buf p;
  put_i32(p, 0);
  put_cstr(p, ns);
  put_i32(p, flags);
  put(p, doc(selector));
  return frame(wire::OpCode::kDelete, p);
}

Buf op_update(std::string_view ns, std::int32_t flags, std::string_view selector,
              std::string_view update) {
  Buf p;
  put_i32(p, 0);
  put_cstr(p, ns);
  put_i32(p, flags);
  put(p, doc(selector));
  put(p, doc(update));
  return frame(wire::OpCode::kUpdate, p);
}

Buf op_insert(std::string_view ns, std::string_view document) {
  Buf p;
  put_i32(p, 0);
  put_cstr(p, ns);
  put(p, doc(document));
  return frame(wire::OpCode::kInsert, p);
}

Buf compressed(const Buf& plain, wire::CompressorId c = wire::CompressorId::kSnappy) {
  return wire::compress(wire::Bytes(plain.data(), plain.size()), c);
}

std::optional<CommandInfo> classify_message(const Buf& message) {
  std::vector<std::uint8_t> scratch;
  const wire::Bytes bytes(message.data(), message.size());
  auto d = wire::decode_request(bytes, scratch);
  if (!d.ok()) throw std::runtime_error(std::string("decode: ") + wire::error_name(d.error));
  return classify(d.view, bytes, scratch);
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

const Target* find_target(const CommandInfo& info, Operation op, std::string_view ns,
                          std::optional<Operation> also = std::nullopt) {
  for (const Target& t : info.targets) {
    if (t.op == op && t.ns == ns && (!also || t.matches.has(*also))) return &t;
  }
  return nullptr;
}

// ---- vocabulary and the hot-path check ---------------------------------------

TEST(OperationNames, RoundTrip) {
  for (int i = 0; i < kOperationCount; ++i) {
    const auto op = static_cast<Operation>(i);
    const auto parsed = parse_operation(operation_name(op));
    ASSERT_TRUE(parsed.has_value()) << operation_name(op);
    EXPECT_EQ(*parsed, op);
  }
  EXPECT_STREQ(operation_name(Operation::kAggregateOut), "aggregateOut");
  EXPECT_STREQ(operation_name(Operation::kTtlChange), "ttlChange");
  EXPECT_FALSE(parse_operation("Delete").has_value());
  EXPECT_FALSE(parse_operation("").has_value());
}

TEST(IsInspectedCommand, DestructiveNames) {
  for (const char* name :
       {"delete", "update", "findAndModify", "findandmodify", "bulkWrite", "drop", "dropDatabase",
        "dropIndexes", "deleteIndexes", "renameCollection", "aggregate", "mapReduce", "mapreduce",
        "convertToCapped", "emptycapped", "collMod", "createIndexes", "applyOps",
        "dropSearchIndex"}) {
    EXPECT_TRUE(is_inspected_command(name)) << name;
  }
}

TEST(IsInspectedCommand, OtherNames) {
  for (const char* name : {"find", "insert", "hello", "isMaster", "ismaster", "getMore", "count",
                           "Delete", "DROP", "dropdatabase", "findAndmodify", "saslStart", "",
                           "deletes", "updat", "createIndex", "listIndexes", "killCursors"}) {
    EXPECT_FALSE(is_inspected_command(name)) << name;
  }
}

// ---- delete -----------------------------------------------------------------

TEST(ClassifyDelete, InlineSingleStatement) {
  auto info = classify_message(op_msg(
      R"({"delete": "families", "deletes": [{"q": {"_id": 7}, "limit": 1}], "$db": "app"})"));
  ASSERT_TRUE(info);
  EXPECT_EQ(info->command, "delete");
  EXPECT_EQ(info->database, "app");
  EXPECT_FALSE(info->legacy);
  EXPECT_FALSE(info->more_to_come);
  ASSERT_EQ(info->targets.size(), 1u);
  const Target& t = info->targets[0];
  EXPECT_EQ(t.op, Operation::kDelete);
  EXPECT_TRUE(t.matches.has(Operation::kDelete));
  EXPECT_FALSE(t.matches.has(Operation::kUpdate));
  EXPECT_EQ(t.ns, "app.families");
  EXPECT_EQ(t.filter, FilterShape::kFiltered);
  EXPECT_EQ(t.statements, 1);
  EXPECT_EQ(t.single_statements, 1);
  EXPECT_EQ(t.multi_statements, 0);
  EXPECT_EQ(t.filter_json(), R"({ "_id" : 7 })");
  EXPECT_EQ(t.filter_redacted(), R"({ "_id" : "<int32>" })");
}

TEST(ClassifyDelete, KindOneSequence) {
  auto info = classify_message(
      op_msg(R"({"delete": "c", "ordered": true, "$db": "app"})",
             {{"deletes",
               {R"({"q": {"a": 1}, "limit": 1})", R"({"q": {"b": {"$gt": 2}}, "limit": 0})",
                R"({"q": {}, "limit": 0})"}}}));
  ASSERT_TRUE(info);
  ASSERT_EQ(info->targets.size(), 1u);
  const Target& t = info->targets[0];
  EXPECT_EQ(t.ns, "app.c");
  EXPECT_EQ(t.statements, 3);
  EXPECT_EQ(t.single_statements, 1);
  EXPECT_EQ(t.multi_statements, 2);
  EXPECT_EQ(t.filter, FilterShape::kUnfiltered);  // one statement is {}
  EXPECT_EQ(t.filter_json(), R"({ "a" : 1 })");   // the first statement's
}

TEST(ClassifyDelete, InlineAndSequenceBothCounted) {
  // The server refuses a field in both places, but the classifier never
  // looks in only one.
  auto info = classify_json(R"({"delete": "c", "deletes": [{"q": {"a": 1}, "limit": 1},
                                                            {"q": {"a": 2}, "limit": 1}]})");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->targets[0].statements, 2);
  EXPECT_EQ(info->targets[0].single_statements, 2);
}

TEST(ClassifyDelete, LimitOnlyNumericOneIsSingle) {
  const std::pair<const char*, bool> cases[] = {
      {R"("limit": 1)", true},
      {R"("limit": 1.0)", true},
      {R"("limit": {"$numberLong": "1"})", true},
      {R"("limit": {"$numberDouble": "1.0"})", true},
      {R"("limit": 0)", false},
      {R"("limit": false)", false},
      {R"("limit": true)", false},
      {R"("limit": null)", false},
      {R"("limit": "1")", false},
      {R"("limit": {"$numberLong": "0"})", false},
      {R"("hint": "x_1")", false},  // limit missing
  };
  for (const auto& [limit, single] : cases) {
    const std::string json =
        std::string(R"({"delete": "c", "deletes": [{"q": {"a": 1}, )") + limit + "}]}";
    auto info = classify_json(json);
    ASSERT_TRUE(info) << limit;
    EXPECT_EQ(info->targets[0].single_statements, single ? 1 : 0) << limit;
    EXPECT_EQ(info->targets[0].multi_statements, single ? 0 : 1) << limit;
  }
}

TEST(ClassifyDelete, MissingFilterIsUnfiltered) {
  auto info = classify_json(R"({"delete": "c", "deletes": [{"limit": 0}]})");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->targets[0].filter, FilterShape::kUnfiltered);
  EXPECT_EQ(info->targets[0].filter_json(), "");
}

TEST(ClassifyDelete, MaxTimeCollationHintAndMoreToCome) {
  auto info = classify_message(op_msg(
      R"({"delete": "c", "maxTimeMS": 500, "writeConcern": {"w": 0}, "$db": "app",
          "deletes": [{"q": {"a": 1}, "limit": 0, "collation": {"locale": "fr"}, "hint": "a_1"}]})",
      {}, wire::kMoreToCome));
  ASSERT_TRUE(info);
  EXPECT_TRUE(info->more_to_come);
  ASSERT_TRUE(info->max_time_ms);
  EXPECT_EQ(*info->max_time_ms, 500);
  EXPECT_EQ(info->collation_json(), R"({ "locale" : "fr" })");
  EXPECT_EQ(info->hint_json(), R"("a_1")");
}

TEST(ClassifyDelete, RedactsEveryValue) {
  auto info = classify_json(
      R"({"delete": "users", "deletes": [{"q": {"email": "a@b.c", "age": {"$gt": 30},
          "tags": {"$in": ["x", 2]}}, "limit": 0}]})");
  ASSERT_TRUE(info);
  const Target& t = info->targets[0];
  EXPECT_EQ(
      t.filter_redacted(),
      R"({ "email" : "<string>", "age" : { "$gt" : "<int32>" }, "tags" : { "$in" : [ "<string>", "<int32>" ] } })");
  EXPECT_NE(t.filter_json().find("a@b.c"), std::string::npos);
  EXPECT_EQ(t.filter_redacted().find("a@b.c"), std::string::npos);
}

// ---- update -----------------------------------------------------------------

TEST(ClassifyUpdate, OperatorsReplacementAndPipeline) {
  auto info =
      classify_message(op_msg(R"({"update": "c", "$db": "app"})",
                              {{"updates",
                                {R"({"q": {"a": 1}, "u": {"$set": {"b": 2}}, "multi": true})",
                                 R"({"q": {"a": 2}, "u": {"b": 3}, "upsert": true})",
                                 R"({"q": {}, "u": [{"$set": {"c": 1}}], "multi": false})"}}}));
  ASSERT_TRUE(info);
  ASSERT_EQ(info->targets.size(), 2u);
  const Target* upd = find_target(*info, Operation::kUpdate, "app.c");
  const Target* rep = find_target(*info, Operation::kReplace, "app.c");
  ASSERT_TRUE(upd && rep);
  EXPECT_EQ(upd->statements, 2);
  EXPECT_EQ(upd->multi_statements, 1);
  EXPECT_EQ(upd->single_statements, 1);
  EXPECT_EQ(upd->filter, FilterShape::kUnfiltered);
  EXPECT_FALSE(upd->upsert);
  EXPECT_EQ(rep->statements, 1);
  EXPECT_EQ(rep->single_statements, 1);
  EXPECT_EQ(rep->filter, FilterShape::kFiltered);
  EXPECT_TRUE(rep->upsert);
  EXPECT_TRUE(rep->matches.has(Operation::kReplace));
  EXPECT_FALSE(rep->matches.has(Operation::kUpdate));
}

TEST(ClassifyUpdate, InlineEmptyReplacementIsReplace) {
  auto info = classify_json(R"({"update": "c", "updates": [{"q": {"_id": 1}, "u": {}}]})");
  ASSERT_TRUE(info);
  ASSERT_EQ(info->targets.size(), 1u);
  EXPECT_EQ(info->targets[0].op, Operation::kReplace);
}

TEST(ClassifyUpdate, MultiTautology) {
  auto info = classify_json(
      R"({"update": "c", "updates": [{"q": {"_id": {"$exists": true}}, "u": {"$inc": {"n": 1}}, "multi": true}]})");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->targets[0].op, Operation::kUpdate);
  EXPECT_EQ(info->targets[0].filter, FilterShape::kUnfiltered);
  EXPECT_EQ(info->targets[0].multi_statements, 1);
}

// ---- findAndModify ----------------------------------------------------------

TEST(ClassifyFindAndModify, RemoveAnswersToDelete) {
  auto info = classify_message(
      op_msg(R"({"findAndModify": "c", "query": {"_id": 1}, "remove": true, "$db": "app"})"));
  ASSERT_TRUE(info);
  ASSERT_EQ(info->targets.size(), 1u);
  const Target& t = info->targets[0];
  EXPECT_EQ(t.op, Operation::kFindAndModify);
  EXPECT_TRUE(t.matches.has(Operation::kFindAndModify));
  EXPECT_TRUE(t.matches.has(Operation::kDelete));
  EXPECT_EQ(t.single_statements, 1);
  EXPECT_EQ(t.multi_statements, 0);
  EXPECT_EQ(t.filter, FilterShape::kFiltered);
}

TEST(ClassifyFindAndModify, LowercaseAliasAndMissingQuery) {
  auto info = classify_message(
      op_msg(R"({"findandmodify": "c", "update": {"name": "x"}, "upsert": true, "$db": "app"})"));
  ASSERT_TRUE(info);
  EXPECT_EQ(info->command, "findandmodify");
  const Target& t = info->targets[0];
  EXPECT_EQ(t.op, Operation::kFindAndModify);
  EXPECT_TRUE(t.matches.has(Operation::kReplace));
  EXPECT_EQ(t.filter, FilterShape::kUnfiltered);
  EXPECT_TRUE(t.upsert);
}

TEST(ClassifyFindAndModify, OperatorUpdateWithTautology) {
  auto info = classify_json(
      R"({"findAndModify": "c", "query": {"$expr": true}, "update": {"$set": {"a": 1}}})");
  ASSERT_TRUE(info);
  EXPECT_TRUE(info->targets[0].matches.has(Operation::kUpdate));
  EXPECT_EQ(info->targets[0].filter, FilterShape::kUnfiltered);
}

// ---- bulkWrite --------------------------------------------------------------

TEST(ClassifyBulkWrite, SeveralNamespacesInline) {
  auto info = classify_message(op_msg(R"({"bulkWrite": 1, "$db": "admin",
      "ops": [{"insert": 0, "document": {"a": 1}},
              {"delete": 0, "filter": {"a": 1}, "multi": false},
              {"delete": 1, "filter": {}, "multi": true},
              {"update": 1, "filter": {"b": 1}, "updateMods": {"$set": {"c": 1}}, "multi": true},
              {"update": 2, "filter": {"b": 2}, "updateMods": {"c": 2}, "upsert": true}],
      "nsInfo": [{"ns": "shop.orders"}, {"ns": "crm.people"}, {"ns": "crm.accounts"}]})"));
  ASSERT_TRUE(info);
  EXPECT_EQ(info->database, "admin");
  ASSERT_EQ(info->targets.size(), 4u);
  const Target* d0 = find_target(*info, Operation::kBulkWrite, "shop.orders", Operation::kDelete);
  const Target* d1 = find_target(*info, Operation::kBulkWrite, "crm.people", Operation::kDelete);
  const Target* u1 = find_target(*info, Operation::kBulkWrite, "crm.people", Operation::kUpdate);
  const Target* r2 = find_target(*info, Operation::kBulkWrite, "crm.accounts", Operation::kReplace);
  ASSERT_TRUE(d0 && d1 && u1 && r2);
  EXPECT_TRUE(d0->matches.has(Operation::kBulkWrite));
  EXPECT_EQ(d0->single_statements, 1);
  EXPECT_EQ(d0->filter, FilterShape::kFiltered);
  EXPECT_EQ(d1->multi_statements, 1);
  EXPECT_EQ(d1->filter, FilterShape::kUnfiltered);
  EXPECT_FALSE(d1->matches.has(Operation::kUpdate));
  EXPECT_EQ(u1->multi_statements, 1);
  EXPECT_TRUE(r2->upsert);
  EXPECT_FALSE(r2->matches.has(Operation::kUpdate));
}

TEST(ClassifyBulkWrite, KindOneSequences) {
  auto info = classify_message(op_msg(R"({"bulkWrite": 1, "ordered": false, "$db": "admin"})",
                                      {{"ops",
                                        {R"({"delete": 1, "filter": {"x": 1}, "multi": true})",
                                         R"({"delete": 0, "filter": {"x": 2}})"}},
                                       {"nsInfo", {R"({"ns": "a.one"})", R"({"ns": "b.two"})"}}}));
  ASSERT_TRUE(info);
  ASSERT_EQ(info->targets.size(), 2u);
  ASSERT_TRUE(find_target(*info, Operation::kBulkWrite, "b.two", Operation::kDelete));
  ASSERT_TRUE(find_target(*info, Operation::kBulkWrite, "a.one", Operation::kDelete));
  EXPECT_EQ(find_target(*info, Operation::kBulkWrite, "b.two")->multi_statements, 1);
  EXPECT_EQ(find_target(*info, Operation::kBulkWrite, "a.one")->single_statements, 1);
}

TEST(ClassifyBulkWrite, OnlyInsertsIsNotDestructive) {
  EXPECT_FALSE(classify_json(R"({"bulkWrite": 1, "ops": [{"insert": 0, "document": {}}],
                                 "nsInfo": [{"ns": "a.b"}]})",
                             "admin"));
}

// ---- drops and other whole-collection commands -------------------------------

TEST(ClassifyDdl, Drop) {
  auto info = classify_message(op_msg(R"({"drop": "families", "$db": "app"})"));
  ASSERT_TRUE(info);
  ASSERT_EQ(info->targets.size(), 1u);
  const Target& t = info->targets[0];
  EXPECT_EQ(t.op, Operation::kDrop);
  EXPECT_EQ(t.ns, "app.families");
  EXPECT_EQ(t.filter, FilterShape::kNotApplicable);
  EXPECT_EQ(t.statements, 1);
  EXPECT_EQ(t.multi_statements, 1);
}

TEST(ClassifyDdl, DropDatabase) {
  auto info = classify_message(op_msg(R"({"dropDatabase": 1, "$db": "app"})"));
  ASSERT_TRUE(info);
  EXPECT_EQ(info->targets[0].op, Operation::kDropDatabase);
  EXPECT_EQ(info->targets[0].ns, "app.*");
}

TEST(ClassifyDdl, DropIndexesAnySpec) {
  for (const char* spec : {R"("*")", R"("a_1")", R"({"a": 1})", R"(["a_1", "b_1"])"}) {
    for (const char* name : {"dropIndexes", "deleteIndexes"}) {
      const std::string json = std::string(R"({")") + name + R"(": "c", "index": )" + spec + "}";
      auto info = classify_json(json);
      ASSERT_TRUE(info) << json;
      EXPECT_EQ(info->targets[0].op, Operation::kDropIndexes) << json;
      EXPECT_EQ(info->targets[0].ns, "app.c");
    }
  }
}

TEST(ClassifyDdl, CappedAndSearchIndex) {
  const std::pair<const char*, Operation> cases[] = {
      {R"({"convertToCapped": "c", "size": 1000})", Operation::kConvertToCapped},
      {R"({"emptycapped": "c"})", Operation::kEmptycapped},
      {R"({"dropSearchIndex": "c", "name": "default"})", Operation::kDropSearchIndex},
  };
  for (const auto& [json, op] : cases) {
    auto info = classify_json(json);
    ASSERT_TRUE(info) << json;
    EXPECT_EQ(info->targets[0].op, op) << json;
    EXPECT_EQ(info->targets[0].ns, "app.c");
  }
}

// ---- renameCollection --------------------------------------------------------

TEST(ClassifyRename, PlainRenameHasBothNamespaces) {
  auto info =
      classify_message(op_msg(R"({"renameCollection": "app.a", "to": "app.b", "$db": "admin"})"));
  ASSERT_TRUE(info);
  ASSERT_EQ(info->targets.size(), 2u);
  EXPECT_EQ(info->targets[0].ns, "app.a");
  EXPECT_EQ(info->targets[1].ns, "app.b");
  for (const Target& t : info->targets) {
    EXPECT_EQ(t.op, Operation::kRenameCollection);
    EXPECT_FALSE(t.matches.has(Operation::kDrop));
  }
}

TEST(ClassifyRename, DropTargetDropsTheTarget) {
  auto info =
      classify_json(R"({"renameCollection": "app.a", "to": "app.b", "dropTarget": true})", "admin");
  ASSERT_TRUE(info);
  const Target* src = find_target(*info, Operation::kRenameCollection, "app.a");
  const Target* dst = find_target(*info, Operation::kRenameCollection, "app.b");
  ASSERT_TRUE(src && dst);
  EXPECT_FALSE(src->matches.has(Operation::kDrop));
  EXPECT_TRUE(dst->matches.has(Operation::kDrop));
}

TEST(ClassifyRename, AcrossDatabases) {
  auto info = classify_json(R"({"renameCollection": "app.a", "to": "archive.a"})", "admin");
  ASSERT_TRUE(info);
  const Target* src = find_target(*info, Operation::kRenameCollection, "app.a");
  const Target* dst = find_target(*info, Operation::kRenameCollection, "archive.a");
  ASSERT_TRUE(src && dst);
  EXPECT_TRUE(src->matches.has(Operation::kDrop));
  EXPECT_FALSE(dst->matches.has(Operation::kDrop));
}

// ---- aggregate $out / $merge ------------------------------------------------

TEST(ClassifyAggregate, OutAndMergeTargets) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"$out": "report"})", "app.report"},
      {R"({"$out": {"db": "other", "coll": "report"}})", "other.report"},
      {R"({"$merge": "report"})", "app.report"},
      {R"({"$merge": {"into": "report", "whenMatched": "replace"}})", "app.report"},
      {R"({"$merge": {"into": {"db": "other", "coll": "report"}}})", "other.report"},
      {R"({"$merge": {"into": {"coll": "report"}}})", "app.report"},
  };
  for (const auto& [stage, ns] : cases) {
    const std::string json = std::string(R"({"aggregate": "src", "pipeline": [{"$match": {}}, )") +
                             stage + R"(], "cursor": {}, "$db": "app"})";
    auto info = classify_message(op_msg(json));
    ASSERT_TRUE(info) << stage;
    ASSERT_EQ(info->targets.size(), 1u);
    EXPECT_EQ(info->targets[0].op, Operation::kAggregateOut) << stage;
    EXPECT_EQ(info->targets[0].ns, ns) << stage;
  }
}

TEST(ClassifyAggregate, ReadOnlyPipelinesAreNotDestructive) {
  EXPECT_FALSE(classify_json(R"({"aggregate": "c", "pipeline": [{"$match": {}}], "cursor": {}})"));
  EXPECT_FALSE(classify_json(R"({"aggregate": 1, "pipeline": [], "cursor": {}})"));
  EXPECT_FALSE(classify_json(R"({"aggregate": "c", "cursor": {}})"));
}

// ---- mapReduce ---------------------------------------------------------------

TEST(ClassifyMapReduce, OutForms) {
  const std::pair<const char*, const char*> cases[] = {
      {R"("out": "res")", "app.res"},
      {R"("out": {"replace": "res"})", "app.res"},
      {R"("out": {"merge": "res", "db": "other"})", "other.res"},
      {R"("out": {"reduce": "res", "db": "other"})", "other.res"},
  };
  for (const char* name : {"mapReduce", "mapreduce"}) {
    for (const auto& [out, ns] : cases) {
      const std::string json = std::string(R"({")") + name +
                               R"(": "src", "map": {"$code": "function(){}"}, )" + out + "}";
      auto info = classify_json(json);
      ASSERT_TRUE(info) << json;
      EXPECT_EQ(info->targets[0].op, Operation::kMapReduceOut);
      EXPECT_EQ(info->targets[0].ns, ns) << json;
    }
  }
  EXPECT_FALSE(classify_json(R"({"mapReduce": "src", "out": {"inline": 1}})"));
}

// ---- TTL changes --------------------------------------------------------------

TEST(ClassifyTtl, CollModAndCreateIndexes) {
  auto info = classify_json(
      R"({"collMod": "sessions", "index": {"keyPattern": {"at": 1}, "expireAfterSeconds": 60}})");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->targets[0].op, Operation::kTtlChange);
  EXPECT_EQ(info->targets[0].ns, "app.sessions");

  info = classify_json(R"({"collMod": "series", "expireAfterSeconds": 3600})");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->targets[0].op, Operation::kTtlChange);

  info = classify_message(op_msg(
      R"({"createIndexes": "sessions", "$db": "app", "indexes": [{"key": {"a": 1}, "name": "a_1"},
          {"key": {"at": 1}, "name": "at_1", "expireAfterSeconds": 0}]})"));
  ASSERT_TRUE(info);
  EXPECT_EQ(info->targets[0].op, Operation::kTtlChange);
  EXPECT_EQ(info->targets[0].ns, "app.sessions");
}

TEST(ClassifyTtl, WithoutExpiryIsNotDestructive) {
  EXPECT_FALSE(classify_json(R"({"collMod": "c", "validator": {}})"));
  EXPECT_FALSE(classify_json(R"({"collMod": "c", "index": {"name": "a_1", "hidden": true}})"));
  EXPECT_FALSE(
      classify_json(R"({"createIndexes": "c", "indexes": [{"key": {"a": 1}, "name": "a"}]})"));
}

// ---- applyOps -------------------------------------------------------------------

TEST(ClassifyApplyOps, EachEntryKind) {
  auto info = classify_message(op_msg(R"({"applyOps": [
      {"op": "d", "ns": "app.c", "o": {"_id": 1}},
      {"op": "d", "ns": "app.c", "o": {}},
      {"op": "u", "ns": "app.c", "o": {"$set": {"a": 1}}, "o2": {"_id": 2}},
      {"op": "u", "ns": "app.d", "o": {"a": 1}, "o2": {"_id": 3}},
      {"op": "i", "ns": "app.e", "o": {"_id": 4}},
      {"op": "n", "ns": "", "o": {"msg": "noop"}},
      {"op": "c", "ns": "app.$cmd", "o": {"drop": "f"}}], "$db": "admin"})"));
  ASSERT_TRUE(info);
  const Target* del = find_target(*info, Operation::kApplyOps, "app.c", Operation::kDelete);
  const Target* upd = find_target(*info, Operation::kApplyOps, "app.c", Operation::kUpdate);
  const Target* rep = find_target(*info, Operation::kApplyOps, "app.d", Operation::kReplace);
  const Target* ins = find_target(*info, Operation::kApplyOps, "app.e");
  const Target* drop = find_target(*info, Operation::kApplyOps, "app.f", Operation::kDrop);
  ASSERT_TRUE(del && upd && rep && ins && drop);
  EXPECT_EQ(info->targets.size(), 5u);
  EXPECT_EQ(del->statements, 2);
  EXPECT_EQ(del->single_statements, 2);
  EXPECT_EQ(del->filter, FilterShape::kUnfiltered);
  EXPECT_EQ(upd->filter_json(), R"({ "_id" : 2 })");
  EXPECT_FALSE(upd->matches.has(Operation::kDelete));
  EXPECT_EQ(ins->matches.bits,
            OperationSet{1u << static_cast<unsigned>(Operation::kApplyOps)}.bits);
  EXPECT_TRUE(drop->matches.has(Operation::kApplyOps));
}

TEST(ClassifyApplyOps, NestedAndEmpty) {
  auto info = classify_json(R"({"applyOps": [{"op": "c", "ns": "x.$cmd", "o": {"applyOps": [
      {"op": "c", "ns": "y.$cmd", "o": {"dropDatabase": 1}}]}}]})",
                            "admin");
  ASSERT_TRUE(info);
  ASSERT_TRUE(find_target(*info, Operation::kApplyOps, "y.*", Operation::kDropDatabase));

  info = classify_json(R"({"applyOps": []})", "admin");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->targets[0].op, Operation::kApplyOps);
  EXPECT_EQ(info->targets[0].ns, "admin.*");
}

// ---- framings: compressed, OP_QUERY, legacy ops ---------------------------------

TEST(ClassifyFraming, CompressedKindOneDelete) {
  const Buf plain =
      op_msg(R"({"delete": "c", "$db": "app"})", {{"deletes", {R"({"q": {}, "limit": 0})"}}});
  for (auto c : {wire::CompressorId::kNoop, wire::CompressorId::kSnappy, wire::CompressorId::kZlib,
                 wire::CompressorId::kZstd}) {
    auto info = classify_message(compressed(plain, c));
    ASSERT_TRUE(info) << static_cast<int>(c);
    EXPECT_EQ(info->targets[0].ns, "app.c");
    EXPECT_EQ(info->targets[0].multi_statements, 1);
    EXPECT_EQ(info->targets[0].filter, FilterShape::kUnfiltered);
  }
}

TEST(ClassifyFraming, CompressedBulkWriteAndDrop) {
  auto info = classify_message(compressed(
      op_msg(R"({"bulkWrite": 1, "$db": "admin"})",
             {{"ops",
               {R"({"update": 0, "filter": {}, "updateMods": {"$set": {"a": 1}}, "multi": true})"}},
              {"nsInfo", {R"({"ns": "app.c"})"}}}),
      wire::CompressorId::kZstd));
  ASSERT_TRUE(info);
  ASSERT_TRUE(find_target(*info, Operation::kBulkWrite, "app.c", Operation::kUpdate));

  info = classify_message(
      compressed(op_msg(R"({"drop": "c", "$db": "app"})"), wire::CompressorId::kZlib));
  ASSERT_TRUE(info);
  EXPECT_EQ(info->targets[0].op, Operation::kDrop);
}

TEST(ClassifyFraming, OpQueryCommand) {
  auto info = classify_message(op_query(
      "app.$cmd", R"({"delete": "c", "deletes": [{"q": {"_id": {"$ne": null}}, "limit": 0}]})"));
  ASSERT_TRUE(info);
  EXPECT_TRUE(info->legacy);
  EXPECT_EQ(info->database, "app");
  EXPECT_EQ(info->targets[0].ns, "app.c");
  EXPECT_EQ(info->targets[0].filter, FilterShape::kUnfiltered);
}

TEST(ClassifyFraming, OpQueryWrappedCommand) {
  auto info = classify_message(
      op_query("app.$cmd", R"({"$query": {"drop": "c"}, "$readPreference": {"mode": "primary"}})"));
  ASSERT_TRUE(info);
  EXPECT_TRUE(info->legacy);
  EXPECT_EQ(info->command, "drop");
  EXPECT_EQ(info->targets[0].op, Operation::kDrop);
  EXPECT_EQ(info->targets[0].ns, "app.c");

  info = classify_message(
      op_query("app.$cmd", R"({"query": {"findandmodify": "c", "remove": true}})"));
  ASSERT_TRUE(info);
  EXPECT_TRUE(info->targets[0].matches.has(Operation::kDelete));
}

TEST(ClassifyFraming, OpQueryNonCommandAndHello) {
  EXPECT_FALSE(classify_message(op_query("app.c", R"({"delete": "c"})")));
  EXPECT_FALSE(classify_message(op_query("admin.$cmd", R"({"isMaster": 1})")));
  EXPECT_FALSE(classify_message(op_msg(R"({"find": "c", "filter": {}, "$db": "app"})")));
  EXPECT_FALSE(classify_message(
      op_msg(R"({"insert": "c", "$db": "app"})", {{"documents", {R"({"a": 1})"}}})));
  EXPECT_FALSE(classify_message(op_insert("app.c", R"({"a": 1})")));
}

TEST(ClassifyFraming, LegacyOpDelete) {
  auto info = classify_message(op_delete("app.c", 1, R"({"_id": 5})"));
  ASSERT_TRUE(info);
  EXPECT_EQ(info->command, "OP_DELETE");
  EXPECT_EQ(info->database, "app");
  EXPECT_TRUE(info->legacy);
  EXPECT_TRUE(info->more_to_come);
  const Target& t = info->targets[0];
  EXPECT_EQ(t.op, Operation::kDelete);
  EXPECT_EQ(t.ns, "app.c");
  EXPECT_EQ(t.single_statements, 1);
  EXPECT_EQ(t.filter, FilterShape::kFiltered);

  info = classify_message(op_delete("app.c", 0, R"({})"));
  ASSERT_TRUE(info);
  EXPECT_EQ(info->targets[0].multi_statements, 1);
  EXPECT_EQ(info->targets[0].filter, FilterShape::kUnfiltered);
}

TEST(ClassifyFraming, LegacyOpUpdate) {
  auto info = classify_message(op_update("app.c", 2, R"({})", R"({"$set": {"a": 1}})"));
  ASSERT_TRUE(info);
  EXPECT_EQ(info->command, "OP_UPDATE");
  EXPECT_TRUE(info->legacy);
  EXPECT_TRUE(info->more_to_come);
  EXPECT_EQ(info->targets[0].op, Operation::kUpdate);
  EXPECT_EQ(info->targets[0].multi_statements, 1);
  EXPECT_EQ(info->targets[0].filter, FilterShape::kUnfiltered);

  info = classify_message(op_update("app.c", 1, R"({"_id": 1})", R"({"a": 2})"));
  ASSERT_TRUE(info);
  EXPECT_EQ(info->targets[0].op, Operation::kReplace);
  EXPECT_EQ(info->targets[0].single_statements, 1);
  EXPECT_TRUE(info->targets[0].upsert);
}

TEST(ClassifyFraming, CompressedLegacyOps) {
  auto info = classify_message(compressed(op_delete("app.c", 0, R"({"a": {"$gt": 1}})")));
  ASSERT_TRUE(info);
  EXPECT_EQ(info->command, "OP_DELETE");
  EXPECT_EQ(info->targets[0].multi_statements, 1);
  EXPECT_EQ(info->targets[0].filter, FilterShape::kFiltered);
}

TEST(ClassifyFraming, LegacyWithoutBytesIsWorstCase) {
  const Buf m = op_delete("app.c", 1, R"({"_id": 5})");
  std::vector<std::uint8_t> scratch;
  auto d = wire::decode_request(wire::Bytes(m.data(), m.size()), scratch);
  ASSERT_TRUE(d.ok());
  auto info = classify(d.view);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->targets[0].ns, "app.c");
  EXPECT_EQ(info->targets[0].multi_statements, 1);
  EXPECT_EQ(info->targets[0].filter, FilterShape::kUnfiltered);
}

// ---- tautologies ---------------------------------------------------------------

TEST(IsUnfiltered, Tautologies) {
  for (
      const char* f : {
          R"({})",
          R"({"$expr": true})",
          R"({"$expr": 1})",
          R"({"$expr": {"$literal": true}})",
          R"({"$expr": {"$and": [true, 1]}})",
          R"({"_id": {"$exists": true}})",
          R"({"_id": {"$exists": 1}})",
          R"({"$where": "true"})",
          R"({"$where": " return true; "})",
          R"({"$where": "function() { return true; }"})",
          R"({"$where": {"$code": "function(){return true}"}})",
          R"({"_id": {"$ne": null}})",
          R"({"_id": {"$gte": {"$minKey": 1}}})",
          R"({"_id": {"$gt": {"$minKey": 1}}})",
          R"({"_id": {"$lte": {"$maxKey": 1}}})",
          R"({"_id": {"$lt": {"$maxKey": 1}}})",
          R"({"_id": {"$nin": []}})",
          R"({"anything": {"$nin": []}})",
          R"({"_id": {"$exists": true, "$ne": null}})",
          R"({"$and": [{}, {"_id": {"$exists": true}}]})",
          R"({"$or": [{"a": 1}, {"$expr": true}]})",
          R"({"$and": [{"$or": [{"b": 2}, {"_id": {"$gte": {"$minKey": 1}}}]}, {"$where": "true"}]})",
          R"({"$comment": "cleanup"})",
          R"({"$jsonSchema": {}})",
          R"({"$alwaysTrue": 1})",
      }) {
    EXPECT_TRUE(unfiltered(f)) << f;
  }
  EXPECT_TRUE(is_unfiltered(nullptr));
}

TEST(IsUnfiltered, SelectiveFilters) {
  for (const char* f : {
           R"({"_id": 1})",
           R"({"a": {"$exists": true}})",
           R"({"a": {"$ne": null}})",
           R"({"a": {"$gte": {"$minKey": 1}}})",
           R"({"_id": {"$exists": false}})",
           R"({"_id": {"$ne": 5}})",
           R"({"_id": {"$gte": 0}})",
           R"({"_id": {"$nin": [1]}})",
           R"({"_id": {"$exists": true}, "a": 1})",
           R"({"_id": {}})",
           R"({"_id": {"x": 1}})",
           R"({"$expr": false})",
           R"({"$expr": 0})",
           R"({"$expr": "$flag"})",
           R"({"$expr": {"$eq": ["$a", 1]}})",
           R"({"$where": "this.a == 1"})",
           R"({"$where": "return false"})",
           R"({"$and": [{}, {"a": 1}]})",
           R"({"$or": [{"a": 1}, {"b": 2}]})",
           R"({"$nor": [{"a": 1}]})",
           R"({"$jsonSchema": {"required": ["a"]}})",
           R"({"$text": {"$search": "x"}})",
       }) {
    EXPECT_FALSE(unfiltered(f)) << f;
  }
}

TEST(ClassifyCommand, NotDestructive) {
  EXPECT_FALSE(classify_json(R"({"find": "c"})"));
  EXPECT_FALSE(classify_json(R"({})"));
  EXPECT_FALSE(classify_json(R"({"hello": 1})"));
  EXPECT_FALSE(classify_command(nullptr, "app"));
}

}  // namespace
}  // namespace mongoguard::policy
