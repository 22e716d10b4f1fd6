"""Every destructive form of issue 14, through pymongo (raw frames where a
driver cannot send it): each is refused by mongoguard (code 13, its own
errmsg) and a direct connection to the backend shows the data intact. Then
the look-alikes that must pass, unknown commands (case variants, typos),
whole-database exemptions, users as name@authdb, and a benign workload
under every example policy raising no refusal.

FerretDB lacks most of the admin commands judged here (shutdown aside, it
answers them with CommandNotFound or NotImplemented); refusing them needs no
backend support, and where the backend does support the command (shutdown,
dropUser with authentication on) the refusal is what keeps it alive."""

from __future__ import annotations

import pathlib
import re
import subprocess

import pymongo
import pytest
from bson.binary import Binary, UUID_SUBTYPE
from pymongo.errors import OperationFailure

import wire
from auth_backend import AuthBackend
from harness import PROXY_BIN, ROOT
from policy_helpers import (PolicyProxy, check_block_error, direct, expect_blocked,  # noqa: F401
                            policy_backend, seed, unique_db)

POLICY = """
mode: enforce
unknown_commands: block
rules:
  - name: no-unfiltered-delete
    match: {namespace: "f14_*.*", operations: [delete], filter: unfiltered}
    action: block
  - name: no-unfiltered-update
    match: {namespace: "f14_*.*", operations: [update], filter: unfiltered}
    action: block
  - name: erasing-replace-is-a-delete
    match: {namespace: "f14_*.e", operations: [delete]}
    action: block
  - name: keep-access
    match: {namespace: "*.*", operations: [dropUser, dropRole, userAdmin]}
    action: block
  - name: keep-the-server
    match: {namespace: "*.*", operations: [shutdown, clusterAdmin, sharding]}
    action: block
  - name: keep-the-schema
    match: {namespace: "f14_*.*", operations: [drop, dropDatabase, cappedResize, convertToCapped, ttlChange, applyOps, aggregateOut]}
    action: block
  - name: tmp-may
    match: {namespace: "f14_*.tmp_*"}
    action: allow
"""


@pytest.fixture(scope="module")
def guard(policy_backend):
    with PolicyProxy(policy_backend.upstream, POLICY) as p:
        yield p


@pytest.fixture(scope="module")
def client(guard):
    return guard.client()


@pytest.fixture
def db(direct):
    name = unique_db("f14")
    seed(direct, name, count=20)
    yield name
    direct.drop_database(name)


def intact(direct, db, count=20):
    assert direct[db].c.count_documents({}) == count, list(direct[db].c.find())


# --- 1. tautologies the shape check now sees --------------------------------

TAUTOLOGIES = [
    {"$nor": [{"_id": {"$exists": False}}]},
    {"_id": {"$exists": "true"}},
    {"_id": {"$exists": "false"}},  # a non-empty string: true to the server
    {"_id": {"$exists": 2}},
    {"_id": {"$not": {"$eq": None}}},
    {"_id": {"$not": {"$exists": False}}},
    {"_id": {"$not": {"$in": []}}},
    {"x": {"$not": {"$in": []}}},
    {"x": {"$not": {"$exists": False, "$in": []}}},
    {"_id": {"$type": ["double", "string", "object", "binData", "undefined", "objectId",
                       "bool", "date", "null", "regex", "dbPointer", "javascript", "symbol",
                       "javascriptWithScope", "int", "timestamp", "long", "decimal",
                       "minKey", "maxKey"]}},
    {"$expr": 1},
    {"$expr": {"$literal": True}},
    {"$expr": {"$eq": [1, 1]}},
    {"$or": [{"x": 1}, {"_id": {"$exists": "yes"}}]},
    {"$nor": [{"x": {"$in": []}}, {"$expr": False}]},
    {"$and": [{"_id": {"$nin": []}}, {"$nor": [{"_id": {"$exists": False}}]}]},
]


@pytest.mark.parametrize("flt", TAUTOLOGIES, ids=[repr(t)[:60] for t in TAUTOLOGIES])
def test_tautological_delete_is_refused(client, direct, db, flt):
    expect_blocked(lambda: client[db].c.delete_many(flt), "no-unfiltered-delete", "delete",
                   f"{db}.c")
    expect_blocked(lambda: client[db].c.update_many(flt, {"$set": {"gone": True}}),
                   "no-unfiltered-update", "update", f"{db}.c")
    intact(direct, db)
    assert direct[db].c.count_documents({"gone": True}) == 0


SELECTIVE = [
    ({"$nor": [{"x": {"$ne": 3}}]}, 1),
    ({"x": {"$not": {"$gte": 2}}}, 2),
    ({"x": {"$exists": True, "$lt": 1}}, 1),
    ({"$or": [{"x": 4}, {"_id": {"$exists": False}}]}, 1),
]


@pytest.mark.parametrize("flt,n", SELECTIVE, ids=[repr(s[0])[:60] for s in SELECTIVE])
def test_selective_look_alike_goes_through(client, direct, db, flt, n):
    result = client[db].c.delete_many(flt)
    assert result.deleted_count == n
    intact(direct, db, 20 - n)


# --- 6. a replacement that erases is a delete too ----------------------------

def test_erasing_replacement_matches_delete_rules(client, direct, db):
    direct[db].e.insert_many([{"_id": 1, "keep": "me"}, {"_id": 2, "keep": "me"}])
    ops = [{"op": "u", "ns": f"{db}.e", "o2": {"_id": 1}, "o": {"_id": 1}}]
    with pytest.raises(OperationFailure) as caught:
        client.admin.command({"applyOps": ops})
    check_block_error(caught.value, "erasing-replace-is-a-delete")
    assert direct[db].e.count_documents({"keep": "me"}) == 2


def test_erasing_update_statement_matches_delete_rules(client, direct, db):
    direct[db].e.insert_one({"_id": 1, "keep": "me"})
    expect_blocked(lambda: client[db].e.replace_one({"_id": 1}, {}),
                   "erasing-replace-is-a-delete")
    assert direct[db].e.find_one({"_id": 1}) == {"_id": 1, "keep": "me"}


# --- 2. the catalogue's destructive commands ---------------------------------

FORMS = [
    ("dropUser", lambda db: {"dropUser": "someone"}, "app", "keep-access"),
    ("dropAllUsersFromDatabase", lambda db: {"dropAllUsersFromDatabase": 1}, "app", "keep-access"),
    ("dropRole", lambda db: {"dropRole": "r"}, "app", "keep-access"),
    ("dropAllRolesFromDatabase", lambda db: {"dropAllRolesFromDatabase": 1}, "admin",
     "keep-access"),
    ("revokeRolesFromUser", lambda db: {"revokeRolesFromUser": "u", "roles": ["read"]}, "app",
     "keep-access"),
    ("revokePrivilegesFromRole",
     lambda db: {"revokePrivilegesFromRole": "r", "privileges": []}, "app", "keep-access"),
    ("updateUser roles", lambda db: {"updateUser": "u", "roles": []}, "app", "keep-access"),
    ("updateRole privileges", lambda db: {"updateRole": "r", "privileges": []}, "app",
     "keep-access"),
    ("shutdown", lambda db: {"shutdown": 1, "force": True}, "admin", "keep-the-server"),
    ("replSetReconfig", lambda db: {"replSetReconfig": {"_id": "rs", "version": 2,
                                                        "members": []}, "force": True},
     "admin", "keep-the-server"),
    ("setFeatureCompatibilityVersion",
     lambda db: {"setFeatureCompatibilityVersion": "5.0", "confirm": True}, "admin",
     "keep-the-server"),
    ("reshardCollection", lambda db: {"reshardCollection": f"{db}.c", "key": {"x": 1}}, "admin",
     "keep-the-server"),
    ("refineCollectionShardKey",
     lambda db: {"refineCollectionShardKey": f"{db}.c", "key": {"x": 1, "y": 1}}, "admin",
     "keep-the-server"),
    ("cleanupOrphaned", lambda db: {"cleanupOrphaned": f"{db}.c"}, "admin", "keep-the-server"),
    ("moveChunk", lambda db: {"moveChunk": f"{db}.c", "find": {"x": 1}, "to": "s2"}, "admin",
     "keep-the-server"),
    ("moveRange", lambda db: {"moveRange": f"{db}.c", "min": {"x": 1}, "toShard": "s2"},
     "admin", "keep-the-server"),
    ("collMod cappedSize", lambda db: {"collMod": "c", "cappedSize": 4096}, None,
     "keep-the-schema"),
    ("collMod cappedMax", lambda db: {"collMod": "c", "cappedMax": 1}, None, "keep-the-schema"),
    ("collMod TTL", lambda db: {"collMod": "c", "index": {"keyPattern": {"x": 1},
                                                         "expireAfterSeconds": 1}}, None,
     "keep-the-schema"),
    ("cloneCollectionAsCapped",
     lambda db: {"cloneCollectionAsCapped": "c", "toCollection": "d", "size": 4096}, None,
     "keep-the-schema"),
    ("explain delete", lambda db: {"explain": {"delete": "c", "deletes": [{"q": {}, "limit": 0}]},
                                   "verbosity": "executionStats"}, None, "no-unfiltered-delete"),
    ("explain drop", lambda db: {"explain": {"drop": "c"}}, None, "keep-the-schema"),
    ("explain findAndModify",
     lambda db: {"explain": {"findAndModify": "c", "query": {}, "remove": True}}, None,
     "no-unfiltered-delete"),
]


@pytest.mark.parametrize("name,command,on,rule", FORMS, ids=[f[0] for f in FORMS])
def test_destructive_command_is_refused(client, direct, policy_backend, db, name, command, on,
                                        rule):
    target = on or db
    with pytest.raises(OperationFailure) as caught:
        client[target].command(command(db))
    check_block_error(caught.value, rule)
    intact(direct, db)
    assert direct.admin.command("ping")["ok"] == 1  # the server is still there


def test_apply_ops_by_uuid_is_refused_unjudged(client, direct, db):
    """An entry naming its collection by `ui` is refused whatever `ns` says:
    the rule allowing f14_*.tmp_* must not let it reach the real collection."""
    ops = [{"op": "d", "ns": f"{db}.tmp_x", "ui": Binary(b"\x01" * 16, UUID_SUBTYPE),
            "o": {"_id": 1}}]
    with pytest.raises(OperationFailure) as caught:
        client.admin.command({"applyOps": ops})
    assert caught.value.code == 13, caught.value.details
    assert "UUID" in caught.value.details["errmsg"], caught.value.details
    intact(direct, db)


def test_destructive_command_over_op_query_is_refused(guard, direct, db):
    sock = wire.connect(guard.proxy.port)
    try:
        reply = wire.roundtrip(sock, wire.op_query("admin.$cmd", {"shutdown": 1, "force": True}),
                               timeout=10)
        assert reply.op_code == 1, reply  # OP_REPLY
        assert reply.body["ok"] == 0 and reply.body["code"] == 13, reply.body
        assert "keep-the-server" in reply.body["errmsg"], reply.body
        reply = wire.roundtrip(sock, wire.op_query(
            f"{db}.$cmd", {"$query": {"collMod": "c", "cappedSize": 1}, "$readPreference": {}}),
            timeout=10)
        assert reply.body["ok"] == 0 and "keep-the-schema" in reply.body["errmsg"], reply.body
    finally:
        sock.close()
    intact(direct, db)
    assert direct.admin.command("ping")["ok"] == 1


# --- 3. unknown commands -------------------------------------------------------

@pytest.mark.parametrize("command", [{"Drop": "c"}, {"DROP": "c"}, {"dropdatabase": 1},
                                     {"Delete": "c", "deletes": [{"q": {}, "limit": 0}]},
                                     {"deleteMany": "c"}, {"_shardsvrDropCollection": "c"}])
def test_unknown_command_is_refused_in_block_mode(guard, client, direct, db, command):
    name = next(iter(command))
    with pytest.raises(OperationFailure) as caught:
        client[db].command(command)
    err = caught.value
    assert err.code == 13 and f"command '{name}'" in err.details["errmsg"], err.details
    assert not err.details.get("errorLabels"), err.details
    intact(direct, db)
    guard.proxy.wait_for_log(f"unknown command '{name}'")


def test_unknown_command_is_logged_once_per_name(guard, client, db):
    for _ in range(3):
        with pytest.raises(OperationFailure):
            client[db].command({"CountMe": 1})
    assert guard.log_text().count("unknown command 'CountMe'") == 1


def test_known_commands_pass_in_block_mode(client, direct, db):
    assert client[db].command("ping")["ok"] == 1
    assert client[db].c.count_documents({}) == 20
    assert client[db].command({"listCollections": 1})["ok"] == 1
    assert client.admin.command("buildInfo")["ok"] == 1
    assert len(list(client[db].c.find({"x": {"$lt": 3}}))) == 3


def test_unknown_command_default_is_log(policy_backend, direct):
    db = unique_db("f14")
    seed(direct, db)
    try:
        with PolicyProxy(policy_backend.upstream, "rules: []\n") as p:
            with pytest.raises(OperationFailure) as caught:
                p.client()[db].command({"Drop": "c"})
            assert caught.value.code != 13, caught.value.details  # the server's own answer
            p.proxy.wait_for_log("unknown command 'Drop'")
        assert direct[db].c.count_documents({}) == 5
    finally:
        direct.drop_database(db)


# --- 4. exemptions that cannot be widened --------------------------------------

def test_collection_allow_does_not_exempt_drop_database(client, direct, db):
    direct[db].tmp_1.insert_one({"_id": 1})
    client[db].tmp_1.drop()  # exempted: f14_*.tmp_* covers it
    assert "tmp_1" not in direct[db].list_collection_names()
    expect_blocked(lambda: client.drop_database(db), "keep-the-schema", "dropDatabase", f"{db}.*")
    intact(direct, db)


# --- 5. users are who authenticated, where --------------------------------------

@pytest.fixture(scope="module")
def auth_backend():
    b = AuthBackend()
    try:
        yield b
    finally:
        b.stop()


def test_users_match_name_at_authdb(auth_backend):
    db = unique_db("f14")
    with auth_backend.root_client() as root:
        root[db].c.insert_many([{"_id": i} for i in range(4)])
        # The same name as the administrator, created in the application database.
        root[db].command({"createUser": auth_backend.root_user, "pwd": "app-pw", "roles": [],
                          "mechanisms": ["SCRAM-SHA-256"]})
        policy = f"""
        rules:
          - name: root-may
            match: {{namespace: "{db}.*", users: ["{auth_backend.root_user}@admin"]}}
            action: allow
          - name: no-drop
            match: {{namespace: "{db}.*", operations: [drop]}}
            action: block
        """
        try:
            with PolicyProxy(auth_backend.upstream, policy) as p:
                impostor = p.client(username=auth_backend.root_user, password="app-pw",
                                    authSource=db, authMechanism="SCRAM-SHA-256")
                expect_blocked(lambda: impostor[db].c.drop(), "no-drop", "drop", f"{db}.c")
                assert root[db].c.count_documents({}) == 4
                p.proxy.wait_for_log(f"authenticated as {auth_backend.root_user}@{db}")
                admin = p.client(username=auth_backend.root_user,
                                 password=auth_backend.root_password, authSource="admin",
                                 authMechanism="SCRAM-SHA-256")
                admin[db].c.drop()
                assert "c" not in root[db].list_collection_names()
        finally:
            root[db].command({"dropUser": auth_backend.root_user})
            root.drop_database(db)


# --- validate's warnings ------------------------------------------------------------

def test_validate_warns_with_positions(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text("""rules:
  - name: migrator-may
    match: { namespace: "app.*", apps: [migrator] }
    action: allow
  - name: admin-may
    match: { namespace: "app.*", users: [admin] }
    action: allow
  - name: per-app
    match: { namespace: "app.*", operations: [delete] }
    limit: { documents: 10, per: 1m, group_by: [app] }
    action: hold
""")
    out = subprocess.run([str(PROXY_BIN), "validate", str(path)], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, timeout=30)
    assert out.returncode == 0, out.stdout
    lines = out.stdout.splitlines()
    assert lines[0].startswith(f"{path}:3:40: warning: rule 'migrator-may' exempts by appName"), lines
    assert lines[1].startswith(f"{path}:6:42: warning: user 'admin' names no database"), lines
    assert lines[2].startswith(f"{path}:10:48: warning: group_by app"), lines
    assert lines[3].endswith("ok (3 rules, mode enforce)"), lines


# --- a benign workload raises no refusal under the example policies -----------------

EXAMPLES = sorted((ROOT / "deploy" / "examples").glob("*.yaml"))


def _example_policy(path: pathlib.Path) -> str:
    """The example's rules and settings, without its listen/admin/audit/fleet
    (the harness gives the proxy its own)."""
    text = path.read_text()
    keep = []
    skipping = False
    for line in text.splitlines():
        top = re.match(r"^([a-z_]+):", line)
        if top:
            skipping = top.group(1) in ("listen", "upstream", "admin", "audit", "notify", "fleet",
                                        "tls")
        if not skipping:
            keep.append(line)
    return "\n".join(keep) + "\n"


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_benign_workload_raises_no_refusal(policy_backend, direct, example, tmp_path,
                                          monkeypatch):
    # The examples journal into ${MONGOGUARD_JOURNAL_PATH:-/var/lib/...}.
    monkeypatch.setenv("MONGOGUARD_JOURNAL_PATH", str(tmp_path / "journal.db"))
    db = "app"  # the examples protect app.*
    coll = f"benign_{example.stem.replace('-', '_')}"
    direct[db][coll].drop()
    with PolicyProxy(policy_backend.upstream, _example_policy(example)) as p:
        c = p.client(appname="benign")[db][coll]
        c.insert_many([{"_id": i, "k": i % 20, "v": "x"} for i in range(100)])
        assert c.count_documents({}) == 100
        assert len(list(c.find({"k": 3}))) == 5
        c.update_one({"_id": 1}, {"$set": {"v": "y"}})
        c.update_many({"k": 4}, {"$set": {"v": "z"}})
        c.replace_one({"_id": 2}, {"k": 2, "v": "r"})
        assert c.delete_many({"k": 5}).deleted_count == 5  # 5% of the collection
        for i in (10, 30, 50):
            assert c.delete_one({"_id": i}).deleted_count == 1
        c.find_one_and_update({"_id": 3}, {"$set": {"v": "f"}})
        assert c.count_documents({}) == 92
        refusals = [r for r in p.audit_records() if r.get("outcome") not in ("forwarded", None)]
        assert not refusals, refusals
        assert "blocked by rule" not in p.log_text()
    assert direct[db][coll].count_documents({}) == 92
    direct[db][coll].drop()
