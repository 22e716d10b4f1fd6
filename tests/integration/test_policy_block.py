"""Policy enforcement through real clients against the real backend.

For every destructive operation: with a matching `block` rule the client
(pymongo, and mongosh) gets mongoguard's refusal (code 13 Unauthorized, errmsg
naming the rule), nothing reaches the server, and a direct connection shows
the data untouched; with no matching rule the same operation goes through.

FerretDB 1.24 (SQLite) does not implement renameCollection with
dropTarget: true, aggregate $out / $merge, createIndexes with
expireAfterSeconds, collMod, mapReduce, convertToCapped, emptycapped,
applyOps, the admin bulkWrite command or dropSearchIndex. Blocking needs no
backend support, so those are still tested blocked; without a matching rule
they are shown forwarded by the backend's own answer (NotImplemented /
CommandNotFound, never mongoguard's code 13).

Then the rule conditions (namespace globs, users, apps, clients), the allow
exemption, the log action, dry-run (global and per rule), unacknowledged
writes, and the audit file."""

from __future__ import annotations

import dataclasses
import json
from typing import Callable

import pymongo
import pytest
from pymongo import DeleteMany, DeleteOne, InsertOne
from pymongo.errors import OperationFailure
from pymongo.write_concern import WriteConcern

from policy_helpers import (PolicyProxy, check_block_error, direct, expect_blocked,  # noqa: F401
                            policy_backend, run_mongosh, seed, snapshot, unique_db)

# Every rule is confined to databases named blk_*; free_* databases match none.
BLOCK_POLICY = """
mode: enforce
rules:
  - name: no-unfiltered-delete
    match: {namespace: "blk_*.*", operations: [delete], filter: unfiltered}
    action: block
    message: unfiltered deletes are refused here
  - name: no-unfiltered-update
    match: {namespace: "blk_*.*", operations: [update], filter: unfiltered}
    action: block
  - name: no-replace
    match: {namespace: "blk_*.*", operations: [replace]}
    action: block
  - name: no-find-and-modify
    match: {namespace: "blk_*.*", operations: findAndModify}
    action: block
  - name: no-drop
    match: {namespace: ["blk_*.*"], operations: [drop, dropDatabase, dropIndexes]}
    action: block
  - name: no-overwrite
    match: {namespace: "blk_*.*", operations: [aggregateOut, mapReduceOut]}
    action: block
  - name: no-ttl
    match: {namespace: "blk_*.*", operations: [ttlChange]}
    action: block
  - name: no-capped-or-replay
    match:
      namespace: "blk_*.*"
      operations: [convertToCapped, emptycapped, applyOps, dropSearchIndex, bulkWrite]
    action: block
"""


@pytest.fixture(scope="module")
def guard(policy_backend):
    with PolicyProxy(policy_backend.upstream, BLOCK_POLICY) as p:
        yield p


@pytest.fixture(scope="module")
def client(guard):
    return guard.client()


# --- the operation table -------------------------------------------------------


def _gone(name):
    def check(direct, db):
        assert name not in direct[db].list_collection_names()
    return check


def _count(n):
    def check(direct, db):
        assert direct[db].c.count_documents({}) == n
    return check


def _all_have_y(direct, db):
    assert direct[db].c.count_documents({"y": 1}) == 5


def _replaced(direct, db):
    assert direct[db].c.find_one({"_id": 1}) == {"_id": 1, "z": 1}


def _db_gone(direct, db):
    assert db not in direct.list_database_names()


def _index_gone(direct, db):
    assert "x_1" not in direct[db].c.index_information()


def _only_id_index(direct, db):
    assert sorted(direct[db].c.index_information()) == ["_id_"]


def _aggregate(stage):
    return lambda client, db: list(client[db].c.aggregate([{"$match": {}}, stage]))


def _rename_drop_target(client, db):
    client[db].d.insert_one({"_id": "target"})
    client[db].c.rename("d", dropTarget=True)


@dataclasses.dataclass
class Op:
    name: str
    call: Callable  # (client, db) -> anything
    rule: str
    operation: str  # the operation named in the errmsg
    target: str  # the namespace named in the errmsg, "{db}" substituted
    effect: Callable | None  # (direct, db) -> asserts the change; None: FerretDB lacks it


OPS = [
    Op("delete_many_empty", lambda c, db: c[db].c.delete_many({}),
       "no-unfiltered-delete", "delete", "{db}.c", _count(0)),
    Op("delete_many_expr_true", lambda c, db: c[db].c.delete_many({"$expr": True}),
       "no-unfiltered-delete", "delete", "{db}.c", _count(0)),
    Op("delete_many_id_exists", lambda c, db: c[db].c.delete_many({"_id": {"$exists": True}}),
       "no-unfiltered-delete", "delete", "{db}.c", _count(0)),
    Op("update_many_empty", lambda c, db: c[db].c.update_many({}, {"$set": {"y": 1}}),
       "no-unfiltered-update", "update", "{db}.c", _all_have_y),
    Op("replace_one", lambda c, db: c[db].c.replace_one({"_id": 1}, {"z": 1}),
       "no-replace", "replace", "{db}.c", _replaced),
    Op("find_one_and_delete", lambda c, db: c[db].c.find_one_and_delete({"_id": 1}),
       "no-find-and-modify", "findAndModify", "{db}.c", _count(4)),
    Op("bulk_write_deletes",
       lambda c, db: c[db].c.bulk_write([DeleteOne({"_id": 1}), DeleteMany({})]),
       "no-unfiltered-delete", "delete", "{db}.c", _count(0)),
    Op("drop", lambda c, db: c[db].c.drop(), "no-drop", "drop", "{db}.c", _gone("c")),
    Op("drop_database", lambda c, db: c.drop_database(db),
       "no-drop", "dropDatabase", "{db}.*", _db_gone),
    Op("drop_index", lambda c, db: c[db].c.drop_index("x_1"),
       "no-drop", "dropIndexes", "{db}.c", _index_gone),
    Op("drop_indexes", lambda c, db: c[db].c.drop_indexes(),
       "no-drop", "dropIndexes", "{db}.c", _only_id_index),
    # The rename's target answers to "drop" because dropTarget drops it.
    Op("rename_drop_target", _rename_drop_target,
       "no-drop", "renameCollection", "{db}.d", None),
    Op("aggregate_out", _aggregate({"$out": "c"}),
       "no-overwrite", "aggregateOut", "{db}.c", None),
    Op("aggregate_merge", _aggregate({"$merge": {"into": "c"}}),
       "no-overwrite", "aggregateOut", "{db}.c", None),
    Op("create_ttl_index", lambda c, db: c[db].c.create_index("t", expireAfterSeconds=60),
       "no-ttl", "ttlChange", "{db}.c", None),
    Op("coll_mod_ttl", lambda c, db: c[db].command(
        "collMod", "c", index={"keyPattern": {"x": 1}, "expireAfterSeconds": 10}),
       "no-ttl", "ttlChange", "{db}.c", None),
    Op("map_reduce_out", lambda c, db: c[db].command(
        "mapReduce", "c", map="function() { emit(this._id, 1); }",
        reduce="function(k, v) { return 1; }", out="c"),
       "no-overwrite", "mapReduceOut", "{db}.c", None),
    Op("convert_to_capped", lambda c, db: c[db].command("convertToCapped", "c", size=4096),
       "no-capped-or-replay", "convertToCapped", "{db}.c", None),
    Op("emptycapped", lambda c, db: c[db].command("emptycapped", "c"),
       "no-capped-or-replay", "emptycapped", "{db}.c", None),
    Op("apply_ops_delete", lambda c, db: c.admin.command(
        "applyOps", [{"op": "d", "ns": f"{db}.c", "o": {"_id": 1}}]),
       "no-capped-or-replay", "applyOps", "{db}.c", None),
    # pymongo's client.bulk_write needs an 8.0 server, so the command is sent raw.
    Op("admin_bulk_write_delete", lambda c, db: c.admin.command({
        "bulkWrite": 1, "ops": [{"delete": 0, "filter": {"_id": 1}, "multi": False}],
        "nsInfo": [{"ns": f"{db}.c"}]}),
       "no-capped-or-replay", "bulkWrite", "{db}.c", None),
    Op("drop_search_index", lambda c, db: c[db].command("dropSearchIndex", "c", name="s"),
       "no-capped-or-replay", "dropSearchIndex", "{db}.c", None),
]


@pytest.mark.parametrize("op", OPS, ids=[o.name for o in OPS])
def test_blocked_through_pymongo(op, guard, client, direct):
    db = unique_db("blk")
    seed(direct, db)
    before = snapshot(direct, db)
    expect_blocked(lambda: op.call(client, db), op.rule, op.operation, op.target.format(db=db))
    if op.name == "rename_drop_target":
        # The insert into the rename target was legitimately forwarded.
        before["d"] = ([{"_id": "target"}], ["_id_"])
    assert snapshot(direct, db) == before, "a blocked operation changed data"
    record = guard.wait_for_audit(
        lambda r: r.get("outcome") == "blocked" and r.get("rule") == op.rule
        and any(t["ns"] == op.target.format(db=db) for t in r["targets"]))
    assert record["verdict"] == "block"
    # The connection survives a refusal.
    assert client[db].c.count_documents({}) == 5


@pytest.mark.parametrize("op", OPS, ids=[o.name for o in OPS])
def test_passes_without_matching_rule(op, guard, client, direct):
    db = unique_db("free")
    seed(direct, db)
    if op.effect is not None:
        op.call(client, db)
        op.effect(direct, db)
    else:
        # FerretDB lacks it: its own error comes back, so it was forwarded.
        with pytest.raises(OperationFailure) as caught:
            op.call(client, db)
        assert caught.value.code != 13, caught.value.details
        assert "mongoguard" not in str(caught.value)
        assert caught.value.code in (59, 238), caught.value.details  # CommandNotFound, NotImplemented


def test_selective_writes_pass_under_unfiltered_rules(client, direct):
    """filter: unfiltered rules leave selective deletes and updates alone, and
    rules on other operations leave plain renames and plain indexes alone."""
    db = unique_db("blk")
    seed(direct, db)
    assert client[db].c.delete_many({"x": {"$gte": 3}}).deleted_count == 2
    assert client[db].c.update_many({"x": {"$lt": 2}}, {"$set": {"y": 1}}).modified_count == 2
    assert client[db].c.delete_one({"_id": 2}).deleted_count == 1
    client[db].c.rename("renamed")  # no dropTarget: nothing dropped, no rule on renames
    client[db].renamed.create_index("name")  # not a TTL index
    assert direct[db].renamed.count_documents({}) == 2
    assert "name_1" in direct[db].renamed.index_information()


def test_bulk_write_mixed_inserts_then_blocked_delete(client, direct):
    """pymongo splits a bulk into one command per kind: the inserts go through,
    the unfiltered delete command is refused as a whole."""
    db = unique_db("blk")
    seed(direct, db)
    with pytest.raises(OperationFailure) as caught:
        client[db].c.bulk_write([InsertOne({"_id": 100}), DeleteMany({"x": {"$gte": 0}}),
                                 DeleteMany({})])
    # pymongo reports a command error inside a bulk as BulkWriteError or as
    # OperationFailure depending on where it stopped; both carry the refusal.
    err = caught.value
    if isinstance(err, pymongo.errors.BulkWriteError):
        pytest.fail(f"refusal reported as a write error, not a command error: {err.details}")
    check_block_error(err, "no-unfiltered-delete", "delete", f"{db}.c")
    assert direct[db].c.count_documents({}) == 6


# --- mongosh -----------------------------------------------------------------

MONGOSH_OPS = """
const d = db.getSiblingDB(DBNAME);
attempt("delete_many_empty", () => d.c.deleteMany({}));
attempt("delete_many_expr_true", () => d.c.deleteMany({$expr: true}));
attempt("delete_many_id_exists", () => d.c.deleteMany({_id: {$exists: true}}));
attempt("update_many_empty", () => d.c.updateMany({}, {$set: {y: 1}}));
attempt("replace_one", () => d.c.replaceOne({_id: 1}, {z: 1}));
attempt("find_one_and_delete", () => d.c.findOneAndDelete({_id: 1}));
attempt("bulk_write_deletes", () => d.c.bulkWrite([{deleteOne: {filter: {_id: 1}}},
                                                  {deleteMany: {filter: {}}}]));
attempt("drop_index", () => d.c.dropIndex("x_1"));
attempt("drop_indexes", () => d.c.dropIndexes());
attempt("rename_drop_target", () => { d.d.insertOne({_id: "target"});
                                      return d.c.renameCollection("d", true); });
attempt("aggregate_out", () => d.c.aggregate([{$match: {}}, {$out: "c"}]).toArray());
attempt("aggregate_merge", () => d.c.aggregate([{$match: {}}, {$merge: {into: "c"}}]).toArray());
attempt("create_ttl_index", () => d.c.createIndex({t: 1}, {expireAfterSeconds: 60}));
attempt("coll_mod_ttl", () => d.runCommand({collMod: "c",
                                           index: {keyPattern: {x: 1}, expireAfterSeconds: 10}}));
attempt("map_reduce_out", () => d.runCommand({mapReduce: "c",
  map: "function() { emit(this._id, 1); }", reduce: "function(k, v) { return 1; }", out: "c"}));
attempt("convert_to_capped", () => d.runCommand({convertToCapped: "c", size: 4096}));
attempt("apply_ops_delete", () => db.getSiblingDB("admin").runCommand(
  {applyOps: [{op: "d", ns: DBNAME + ".c", o: {_id: 1}}]}));
attempt("drop", () => d.c.drop());
attempt("drop_database", () => d.dropDatabase());
"""

MONGOSH_NAMES = ["delete_many_empty", "delete_many_expr_true", "delete_many_id_exists",
                 "update_many_empty", "replace_one", "find_one_and_delete", "bulk_write_deletes",
                 "drop_index", "drop_indexes", "rename_drop_target", "aggregate_out",
                 "aggregate_merge", "create_ttl_index", "coll_mod_ttl", "map_reduce_out",
                 "convert_to_capped", "apply_ops_delete", "drop", "drop_database"]
OPS_BY_NAME = {o.name: o for o in OPS}


def test_blocked_through_mongosh(guard, direct):
    db = unique_db("blk")
    seed(direct, db)
    before = snapshot(direct, db)
    results = run_mongosh(guard.uri, f"const DBNAME = {json.dumps(db)};\n" + MONGOSH_OPS)
    assert sorted(results) == sorted(MONGOSH_NAMES), results
    problems = []
    for name in MONGOSH_NAMES:
        r, op = results[name], OPS_BY_NAME[name]
        expected = f"mongoguard: {op.operation} on {op.target.format(db=db)} blocked by rule '{op.rule}'"
        if not (r["threw"] and r.get("code") == 13 and r.get("codeName") == "Unauthorized"
                and (r.get("errmsg") or "").startswith(expected) and not r.get("errorLabels")):
            problems.append(f"{name}: expected {expected!r}, got {r}")
    assert not problems, "\n".join(problems)
    before["d"] = ([{"_id": "target"}], ["_id_"])  # the rename target's insert was allowed
    assert snapshot(direct, db) == before, "a blocked operation changed data"


def test_passes_through_mongosh_without_matching_rule(guard, direct):
    db = unique_db("free")
    seed(direct, db)
    # Each supported operation on a fresh copy of the collection, so the
    # effect of each one is visible on its own.
    script = f"const DBNAME = {json.dumps(db)};\n" + r"""
const d = db.getSiblingDB(DBNAME);
function fresh(name) {
  d[name].drop();
  d[name].insertMany([0, 1, 2, 3, 4].map(i => ({_id: i, x: i})));
  d[name].createIndex({x: 1});
  return d[name];
}
attempt("delete_many_empty", () => fresh("a1").deleteMany({}));
attempt("delete_many_expr_true", () => fresh("a2").deleteMany({$expr: true}));
attempt("delete_many_id_exists", () => fresh("a3").deleteMany({_id: {$exists: true}}));
attempt("update_many_empty", () => fresh("a4").updateMany({}, {$set: {y: 1}}));
attempt("replace_one", () => fresh("a5").replaceOne({_id: 1}, {z: 1}));
attempt("find_one_and_delete", () => fresh("a6").findOneAndDelete({_id: 1}));
attempt("bulk_write_deletes", () => fresh("a7").bulkWrite([{deleteMany: {filter: {}}}]));
attempt("drop_index", () => fresh("a8").dropIndex("x_1"));
attempt("drop_indexes", () => fresh("a9").dropIndexes());
attempt("drop", () => fresh("a10").drop());
attempt("aggregate_out", () => fresh("a11").aggregate([{$match: {}}, {$out: "o"}]).toArray());
attempt("create_ttl_index", () => fresh("a12").createIndex({t: 1}, {expireAfterSeconds: 60}));
attempt("rename_drop_target", () => { d.tgt.insertOne({_id: 1});
                                      return fresh("a13").renameCollection("tgt", true); });
"""
    results = run_mongosh(guard.uri, script)
    supported = ["delete_many_empty", "delete_many_expr_true", "delete_many_id_exists",
                 "update_many_empty", "replace_one", "find_one_and_delete", "bulk_write_deletes",
                 "drop_index", "drop_indexes", "drop"]
    problems = [f"{n}: {results.get(n)}" for n in supported
                if not results.get(n) or results[n]["threw"]]
    for n in ["aggregate_out", "create_ttl_index", "rename_drop_target"]:
        r = results.get(n)
        if not r or not r["threw"] or r.get("code") == 13 or "mongoguard" in (r.get("errmsg") or ""):
            problems.append(f"{n}: expected the backend's own refusal, got {r}")
    assert not problems, "\n".join(problems)
    d = direct[db]
    for name in ["a1", "a2", "a3", "a7"]:
        assert d[name].count_documents({}) == 0, name
    assert d.a4.count_documents({"y": 1}) == 5
    assert d.a5.find_one({"_id": 1}) == {"_id": 1, "z": 1}
    assert d.a6.count_documents({}) == 4
    assert "x_1" not in d.a8.index_information()
    assert sorted(d.a9.index_information()) == ["_id_"]
    assert "a10" not in d.list_collection_names()

    out = run_mongosh(guard.uri, f"attempt('drop_database', () => "
                                 f"db.getSiblingDB({json.dumps(db)}).dropDatabase());")
    assert not out["drop_database"]["threw"], out
    assert db not in direct.list_database_names()
