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
import time
from typing import Callable

import pymongo
import pytest
from pymongo import DeleteMany, DeleteOne, InsertOne
from pymongo.errors import OperationFailure
from pymongo.write_concern import WriteConcern

from harness import read_audit_text
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


# --- rule conditions -----------------------------------------------------------


def _proxy(backend, text: str) -> PolicyProxy:
    return PolicyProxy(backend.upstream, text)


def test_namespace_glob_confines_the_rule(policy_backend, direct):
    base = unique_db("glob")
    app, other = f"{base}_app", f"{base}_other"
    policy = f"""
    rules:
      - name: protect-app
        match: {{namespace: "{app}.*", operations: [delete, drop]}}
        action: block
      - name: protect-one-collection
        match: {{namespace: ["{other}.keep", "nowhere_*.x?z"], operations: [drop]}}
        action: block
    """
    for db in (app, other):
        seed(direct, db)
        seed(direct, db, "keep")
    with _proxy(policy_backend, policy) as p:
        c = p.client()
        expect_blocked(lambda: c[app].c.delete_one({"_id": 1}), "protect-app", "delete", f"{app}.c")
        expect_blocked(lambda: c[app].keep.drop(), "protect-app", "drop", f"{app}.keep")
        assert c[other].c.delete_many({}).deleted_count == 5
        expect_blocked(lambda: c[other].keep.drop(), "protect-one-collection", "drop",
                       f"{other}.keep")
        c[other].c.drop()
    assert direct[app].c.count_documents({}) == 5
    assert direct[app].keep.count_documents({}) == 5
    assert direct[other].list_collection_names() == ["keep"]


def test_users_condition(policy_backend, direct):
    db = unique_db("usr")
    seed(direct, db)
    policy = f"""
    rules:
      - name: alice-may-not-delete
        match: {{namespace: "{db}.*", operations: [delete], users: ["alice@$external", "carol@$external"]}}
        action: block
    """
    with _proxy(policy_backend, policy) as p:
        # FerretDB accepts any PLAIN credentials; the proxy reads the user name
        # from saslStart and takes it once the server says done.
        alice = p.client(username="alice", password="pw", authMechanism="PLAIN")
        bob = p.client(username="bob", password="pw", authMechanism="PLAIN")
        anonymous = p.client()
        expect_blocked(lambda: alice[db].c.delete_one({"_id": 0}), "alice-may-not-delete")
        assert bob[db].c.delete_one({"_id": 1}).deleted_count == 1
        assert anonymous[db].c.delete_one({"_id": 2}).deleted_count == 1
        p.proxy.wait_for_log("authenticated as alice")
        record = p.wait_for_audit(lambda r: r.get("outcome") == "blocked")
        assert record["user"] == "alice@$external"  # PLAIN authenticates on $external
    assert sorted(d["_id"] for d in direct[db].c.find()) == [0, 3, 4]


def test_apps_condition_and_allow_exemption(policy_backend, direct):
    """Deletes are blocked for everyone, but the migrator app is exempted by an
    allow rule, even one listed after the block rule."""
    db = unique_db("app")
    seed(direct, db)
    policy = f"""
    rules:
      - name: no-deletes
        match: {{namespace: "{db}.*", operations: [delete, drop]}}
        action: block
      - name: webapp-no-update
        match: {{namespace: "{db}.*", operations: [update], apps: [webapp]}}
        action: block
      - name: migrator-exempt
        match: {{namespace: "{db}.*", apps: [migrator]}}
        action: allow
    """
    with _proxy(policy_backend, policy) as p:
        web = p.client(appname="webapp")
        other = p.client(appname="reporting")
        migrator = p.client(appname="migrator")
        expect_blocked(lambda: web[db].c.delete_one({"_id": 0}), "no-deletes")
        expect_blocked(lambda: other[db].c.delete_one({"_id": 0}), "no-deletes")
        expect_blocked(lambda: web[db].c.update_one({"_id": 0}, {"$set": {"y": 1}}),
                       "webapp-no-update")
        assert other[db].c.update_one({"_id": 0}, {"$set": {"y": 1}}).modified_count == 1
        assert migrator[db].c.delete_many({"x": {"$gte": 3}}).deleted_count == 2
        migrator[db].scratch.insert_one({})
        migrator[db].scratch.drop()
        record = p.wait_for_audit(lambda r: r.get("app") == "migrator"
                                  and r.get("command") == "delete")
        assert record["verdict"] == "allow"
        assert "migrator-exempt" in record["matched_rules"]
        assert "no-deletes" in record["matched_rules"]
    assert direct[db].c.count_documents({}) == 3
    assert "scratch" not in direct[db].list_collection_names()


def test_clients_condition(policy_backend, direct):
    db = unique_db("cidr")
    seed(direct, db)
    policy = f"""
    rules:
      - name: no-deletes-from-loopback
        match: {{namespace: "{db}.c", operations: [delete], clients: [127.0.0.1/32]}}
        action: block
      - name: no-drops-from-the-office
        match: {{namespace: "{db}.*", operations: [drop], clients: [10.0.0.0/8, "fd00::/8"]}}
        action: block
    """
    with _proxy(policy_backend, policy) as p:
        c = p.client()
        expect_blocked(lambda: c[db].c.delete_many({"x": 1}), "no-deletes-from-loopback")
        seed(direct, db, "other")
        c[db].other.drop()  # 127.0.0.1 is not in 10.0.0.0/8
        record = p.wait_for_audit(lambda r: r.get("outcome") == "blocked")
        assert record["client"].startswith("127.0.0.1:")
    assert direct[db].c.count_documents({}) == 5
    assert direct[db].list_collection_names() == ["c"]


# --- log and dry-run -------------------------------------------------------------


def test_log_action_forwards_and_audits(policy_backend, direct):
    db = unique_db("log")
    seed(direct, db)
    policy = f"""
    rules:
      - name: watch-deletes
        match: {{namespace: "{db}.*", operations: [delete]}}
        action: log
    """
    with _proxy(policy_backend, policy) as p:
        c = p.client()
        assert c[db].c.delete_many({"x": {"$lt": 3}}).deleted_count == 3
        record = p.wait_for_audit(lambda r: r.get("database") == db)
        assert record["verdict"] == "log"
        assert record["rule"] == "watch-deletes"
        assert record["outcome"] == "forwarded"
        assert record["dry_run"] is False
        assert record["n"] == 3
        p.proxy.wait_for_log('"verdict" : "log"')
    assert direct[db].c.count_documents({}) == 2


def test_global_dry_run_forwards_and_audits_would_block(policy_backend, direct):
    db = unique_db("dry")
    seed(direct, db)
    policy = f"""
    mode: dry-run
    rules:
      - name: no-unfiltered-delete
        match: {{namespace: "{db}.*", operations: [delete], filter: unfiltered}}
        action: block
    """
    with _proxy(policy_backend, policy) as p:
        c = p.client()
        assert c[db].c.delete_many({}).deleted_count == 5
        record = p.wait_for_audit(lambda r: r.get("database") == db)
        assert record["verdict"] == "would block"
        assert record["dry_run"] is True
        assert record["rule"] == "no-unfiltered-delete"
        assert record["outcome"] == "forwarded"
        assert record["n"] == 5
    assert direct[db].c.count_documents({}) == 0


def test_per_rule_dry_run_next_to_an_enforced_rule(policy_backend, direct):
    db = unique_db("dryrule")
    seed(direct, db)
    seed(direct, db, "d")
    policy = f"""
    mode: enforce
    rules:
      - name: trial-delete-rule
        match: {{namespace: "{db}.*", operations: [delete], filter: unfiltered}}
        action: block
        mode: dry-run
      - name: no-drop
        match: {{namespace: "{db}.*", operations: [drop]}}
        action: block
    """
    with _proxy(policy_backend, policy) as p:
        c = p.client()
        assert c[db].c.delete_many({"$expr": True}).deleted_count == 5
        expect_blocked(lambda: c[db].d.drop(), "no-drop", "drop", f"{db}.d")
        record = p.wait_for_audit(lambda r: r.get("command") == "delete")
        assert record["verdict"] == "would block"
        assert record["dry_run"] is True
        assert record["rule"] == "trial-delete-rule"
        assert record["outcome"] == "forwarded"
    assert direct[db].c.count_documents({}) == 0
    assert direct[db].d.count_documents({}) == 5


# --- unacknowledged writes ---------------------------------------------------------


def test_blocked_unacknowledged_write_is_dropped(policy_backend, direct):
    db = unique_db("wzero")
    seed(direct, db)
    policy = f"""
    rules:
      - name: no-unfiltered-delete
        match: {{namespace: "{db}.*", operations: [delete], filter: unfiltered}}
        action: block
    """
    with _proxy(policy_backend, policy) as p:
        c = p.client()
        coll = c[db].get_collection("c", write_concern=WriteConcern(w=0))
        result = coll.delete_many({})
        assert not result.acknowledged
        p.proxy.wait_for_log("unacknowledged write dropped")
        record = p.wait_for_audit(lambda r: r.get("outcome") == "dropped")
        assert record["unacknowledged"] is True
        assert record["rule"] == "no-unfiltered-delete"
        # The same connection still works, and nothing was deleted.
        assert c[db].c.count_documents({}) == 5
        # An allowed w:0 write on that connection is forwarded.
        coll.delete_one({"_id": 4})
        deadline = time.monotonic() + 5
        while direct[db].c.count_documents({}) != 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert direct[db].c.count_documents({}) == 4, "an allowed w:0 delete did not arrive"
        line = next(line for line in p.log_text().splitlines() if "dropped" in line)
        assert "blocked by rule 'no-unfiltered-delete'" in line
    assert sorted(d["_id"] for d in direct[db].c.find()) == [0, 1, 2, 3]


# --- the audit file ---------------------------------------------------------------


def test_audit_file_has_one_line_per_inspected_operation(policy_backend, direct):
    db = unique_db("aud")
    seed(direct, db)
    policy = f"""
    rules:
      - name: no-unfiltered-delete
        match: {{namespace: "{db}.*", operations: [delete], filter: unfiltered}}
        action: block
    """
    with _proxy(policy_backend, policy) as p:
        c = p.client(appname="audit-test")
        # Not inspected: reads, inserts, counts.
        c[db].c.find_one({"name": "doc-1"})
        c[db].c.insert_one({"_id": 10, "name": "secret-value"})
        c[db].c.count_documents({})
        # Inspected: a forwarded delete, a blocked delete, a forwarded update.
        assert c[db].c.delete_many({"name": "secret-value", "x": {"$gt": 100}}).deleted_count == 0
        assert c[db].c.delete_many({"x": {"$gte": 3}}).deleted_count == 2
        expect_blocked(lambda: c[db].c.delete_many({}), "no-unfiltered-delete")
        assert c[db].c.update_one({"name": "secret-value"}, {"$set": {"y": 1}}).modified_count == 1
        records = p.audit_for(db)
        assert [r["command"] for r in records] == ["delete", "delete", "delete", "update"], records
        raw = read_audit_text(p.audit_path)
        assert "secret-value" not in raw, "filter values must be redacted"
        first, second, blocked, update = records
        assert first["targets"][0]["filter"] == {"name": "<string>", "x": {"$gt": "<int32>"}}
        assert first["n"] == 0 and first["ok"] is True
        assert second["n"] == 2
        assert second["verdict"] == "allow" and second["outcome"] == "forwarded"
        assert blocked["outcome"] == "blocked" and blocked["verdict"] == "block"
        assert blocked["targets"][0]["unfiltered"] is True
        assert "n" not in blocked
        assert update["targets"][0]["operation"] == "update"
        for r in records:
            for key in ("time", "connection", "client", "app", "driver", "command", "database",
                        "targets", "statements", "verdict", "dry_run", "matched_rules", "outcome"):
                assert key in r, (key, r)
            assert r["app"] == "audit-test"
            assert r["database"] == db
            assert r["targets"][0]["ns"] == f"{db}.c"


def test_audit_file_unredacted_when_asked(policy_backend, direct, tmp_path):
    db = unique_db("audraw")
    seed(direct, db)
    audit = tmp_path / "audit.jsonl"
    policy = f"""
    audit:
      path: {audit}
      redact: false
    rules: []
    """
    with _proxy(policy_backend, policy) as p:
        c = p.client()
        assert c[db].c.delete_many({"name": "doc-3"}).deleted_count == 1
    record = json.loads(audit.read_text().splitlines()[-1])
    assert record["targets"][0]["filter"] == {"name": "doc-3"}
    assert record["verdict"] == "allow" and record["n"] == 1
    assert record["matched_rules"] == []


def test_dry_run_log_rule_is_named_in_the_audit(policy_backend, direct):
    """A dry-run `log` rule still leaves an audit mark that names it."""
    db = unique_db("drylog")
    seed(direct, db)
    policy = f"""
    rules:
      - name: trial-watch
        match: {{namespace: "{db}.*", operations: [delete]}}
        action: log
        mode: dry-run
    """
    with _proxy(policy_backend, policy) as p:
        c = p.client()
        assert c[db].c.delete_one({"_id": 0}).deleted_count == 1
        record = p.wait_for_audit(lambda r: r.get("database") == db)
        assert record["outcome"] == "forwarded"
        assert record["matched_rules"] == ["trial-watch"]
        assert record.get("rule") == "trial-watch", record
    assert direct[db].c.count_documents({}) == 4


def test_block_beats_hold_whatever_the_order(policy_backend, direct):
    """log, hold and block rules all match: block is the strictest, so the
    delete is refused at once and never parked where someone could approve
    it; a delete only the hold rule matches is parked (and times out)."""
    db = unique_db("strict")
    seed(direct, db)
    policy = f"""
    holds:
      timeout: 1s
    rules:
      - name: watch
        match: {{namespace: "{db}.*", operations: [delete]}}
        action: log
      - name: park
        match: {{namespace: "{db}.*", operations: [delete]}}
        action: hold
        message: waiting for a human
      - name: refuse
        match: {{namespace: "{db}.c", operations: [delete], filter: unfiltered}}
        action: block
    """
    with _proxy(policy_backend, policy) as p:
        c = p.client()
        started = time.monotonic()
        expect_blocked(lambda: c[db].c.delete_many({}), "refuse", "delete", f"{db}.c")
        assert time.monotonic() - started < 0.9, "a blocked delete must not wait as a hold"
        blocked = p.wait_for_audit(lambda r: r.get("rule") == "refuse")
        assert blocked["verdict"] == "block" and blocked["outcome"] != "timed out"
        assert blocked["matched_rules"] == ["watch", "park", "refuse"]
        with pytest.raises(OperationFailure) as caught:
            c[db].c.delete_one({"_id": 1})
        errmsg = caught.value.details["errmsg"]
        assert errmsg == (f"mongoguard: delete on {db}.c held by rule 'park': "
                          "not approved within 1s; rejected"), errmsg
        held = p.wait_for_audit(lambda r: r.get("rule") == "park")
        assert held["verdict"] == "hold" and held["outcome"] == "timed out"
    assert direct[db].c.count_documents({}) == 5
