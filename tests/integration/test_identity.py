"""Who is asking: users from SCRAM authentication, the app and driver from the
first hello's client metadata, and the client's address, as rules, budgets,
the audit log and the admin API see them. And what must never be written
down: passwords and SCRAM proofs.

The backend is FerretDB started with `--test-enable-new-auth` (auth_backend.py),
so logins are real SCRAM-SHA-256 conversations. FerretDB ignores
`speculativeAuthenticate`, so through it pymongo's speculative first step
goes unanswered and the login completes with saslStart/saslContinue; the
speculative path as mongod answers it runs against the fake upstream with a
SCRAM server (scram.py)."""

from __future__ import annotations

import re
import time
import uuid

import pymongo

import pytest
from pymongo.errors import OperationFailure

import wire
from admin_helpers import Background
from auth_backend import AuthBackend
from fake_upstream import FakeUpstream
from harness import read_audit_text
from hold_helpers import GuardedProxy, check_hold_error
from policy_helpers import PolicyProxy, expect_blocked
from scram import raw_hello, raw_login, speculative_hello_handlers

PASSWORDS = {"alice": "alice-Pw-" + uuid.uuid4().hex[:12], "bob": "bob-Pw-" + uuid.uuid4().hex[:12]}


@pytest.fixture(scope="module")
def auth_backend():
    b = AuthBackend()
    try:
        for user, pw in PASSWORDS.items():
            b.create_user(user, pw)
        yield b
    finally:
        b.stop()


@pytest.fixture(scope="module")
def root(auth_backend):
    c = auth_backend.root_client()
    yield c
    c.close()


def fresh_db(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def seed(root, db: str, count: int = 10) -> None:
    root[db].c.insert_many([{"_id": i, "x": i} for i in range(count)])


def login(p, user: str, app: str | None = None, **kw) -> pymongo.MongoClient:
    opts = dict(username=user, password=PASSWORDS[user], authSource="admin",
                authMechanism="SCRAM-SHA-256", retryWrites=False, **kw)
    if app:
        opts["appname"] = app
    return p.client(**opts)


# --- users in rules ---------------------------------------------------------

def test_users_rule_blocks_alice_and_lets_bob_through(auth_backend, root):
    db = fresh_db("idusr")
    seed(root, db)
    policy = f"""
    rules:
      - name: alice-no-mass-delete
        match: {{namespace: "{db}.*", operations: [delete], users: [alice]}}
        action: block
    """
    with PolicyProxy(auth_backend.upstream, policy) as p:
        alice = login(p, "alice", app="alice-app")
        bob = login(p, "bob", app="bob-app")
        expect_blocked(lambda: alice[db].c.delete_many({}), "alice-no-mass-delete", "delete",
                       f"{db}.c")
        assert root[db].c.count_documents({}) == 10, "alice's refused delete reached the server"
        # Reads and inserts are not judged: alice is authenticated and works.
        assert alice[db].c.count_documents({}) == 10
        assert bob[db].c.delete_many({"x": {"$lt": 4}}).deleted_count == 4
        assert bob[db].c.delete_many({}).deleted_count == 6
        log = p.log_text()
        assert re.search(r"authenticated as alice\b", log), log[-3000:]
        assert re.search(r"authenticated as bob\b", log), log[-3000:]
        blocked = p.wait_for_audit(lambda r: r.get("outcome") == "blocked")
        assert blocked["user"] == "alice@admin" and blocked["app"] == "alice-app", blocked
        passed = p.wait_for_audit(lambda r: r.get("user") == "bob@admin" and r.get("n") == 6)
        assert passed["outcome"] == "forwarded" and passed["app"] == "bob-app", passed
    assert root[db].c.count_documents({}) == 0


def test_failed_login_names_nobody_and_a_later_login_counts(auth_backend, root):
    """A SCRAM start as alice that fails must not make the connection alice's:
    the user is taken only from a done: true, ok: 1 reply. Then the same
    connection logs in as bob (explicit saslStart, no speculation): bob's
    unfiltered delete passes a rule that names alice, and is audited as bob's."""
    db = fresh_db("idfail")
    seed(root, db, 3)
    policy = f"""
    rules:
      - name: alice-no-delete
        match: {{namespace: "{db}.*", operations: [delete], users: [alice]}}
        action: block
    """
    with PolicyProxy(auth_backend.upstream, policy) as p:
        sock = raw_hello(p.proxy.port, "raw-app")
        try:
            reply, _ = raw_login(sock, "alice", "wrong-password")
            assert reply.get("ok") == 0, reply
            reply, _ = raw_login(sock, "bob", PASSWORDS["bob"])
            assert reply.get("ok") == 1 and reply.get("done") is True, reply
            reply = wire.roundtrip(sock, wire.op_msg({"delete": "c", "deletes": [{"q": {}, "limit": 0}],
                                                      "$db": db}), timeout=10).body
            assert reply.get("ok") == 1 and reply.get("n") == 3, reply
        finally:
            sock.close()
        log = p.log_text()
        assert "authenticated as alice" not in log, log[-3000:]
        assert "authenticated as bob" in log, log[-3000:]
        record = p.wait_for_audit(lambda r: r.get("command") == "delete")
        assert record["user"] == "bob@admin" and record["app"] == "raw-app", record
        assert record["driver"].startswith("raw-scram"), record


def test_users_rule_after_speculative_authentication():
    """mongod answers the first SCRAM step inside hello (speculativeAuthenticate)
    and the login ends with one saslContinue. The fake upstream does exactly
    that (FerretDB cannot): alice's delete_many({}) is blocked and never
    reaches the server, bob's is forwarded."""
    handlers = speculative_hello_handlers(PASSWORDS)
    with FakeUpstream(handlers) as fake:
        policy = """
        rules:
          - name: alice-no-mass-delete
            match: {namespace: "spec.*", operations: [delete], users: [alice]}
            action: block
        """
        with PolicyProxy(f"mongodb://{fake.address}", policy) as p:
            alice = login(p, "alice", app="spec-alice")
            bob = login(p, "bob", app="spec-bob")
            expect_blocked(lambda: alice.spec.c.delete_many({}), "alice-no-mass-delete")
            bob.spec.c.delete_many({})  # the fake answers {ok: 1}
            hellos = [m for m in fake.messages() if m.command in ("hello", "isMaster", "ismaster")
                      and "speculativeAuthenticate" in m.body]
            assert hellos, "pymongo should have sent speculativeAuthenticate"
            assert not fake.messages_for("saslStart"), "login should have needed no saslStart"
            deletes = fake.messages_for("delete")
            assert len(deletes) == 1, [m.body for m in deletes]
            log = p.log_text()
            assert "authenticated as alice" in log and "authenticated as bob" in log, log[-3000:]
            blocked = p.wait_for_audit(lambda r: r.get("outcome") == "blocked")
            assert blocked["user"] == "alice@admin" and blocked["app"] == "spec-alice", blocked
            forwarded = p.wait_for_audit(lambda r: r.get("outcome") == "forwarded")
            assert forwarded["user"] == "bob@admin", forwarded


def test_budgets_grouped_by_user_are_separate(auth_backend, root):
    db = fresh_db("idbud")
    seed(root, db, 10)
    rule = "per-user-delete-budget"
    policy = f"""
    rules:
      - name: {rule}
        match: {{namespace: "{db}.*", operations: [delete]}}
        limit: {{documents: 3, per: 1m, group_by: [user]}}
        action: block
    """
    with PolicyProxy(auth_backend.upstream, policy) as p:
        alice = login(p, "alice")
        bob = login(p, "bob")
        for i in range(3):
            assert alice[db].c.delete_one({"_id": i}).deleted_count == 1
        with pytest.raises(OperationFailure) as caught:
            alice[db].c.delete_one({"_id": 3})
        assert caught.value.code == 13, caught.value.details
        assert f"rule '{rule}'" in caught.value.details["errmsg"], caught.value.details
        # alice's spent budget is not bob's: he still has all three.
        for i in range(3, 6):
            assert bob[db].c.delete_one({"_id": i}).deleted_count == 1
        with pytest.raises(OperationFailure) as caught:
            bob[db].c.delete_one({"_id": 6})
        assert caught.value.code == 13, caught.value.details
        # The audit file is written by a thread of its own: give bob's line a moment.
        deadline = time.monotonic() + 5
        while True:
            blocked = [r for r in p.audit_records() if r.get("outcome") == "blocked"]
            if len(blocked) >= 2 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert sorted(r["user"] for r in blocked) == ["alice@admin", "bob@admin"], blocked
    assert sorted(d["_id"] for d in root[db].c.find()) == [6, 7, 8, 9]


def test_audit_records_user_app_and_driver(auth_backend, root):
    db = fresh_db("idaud")
    seed(root, db, 4)
    policy = f"""
    rules:
      - name: log-deletes
        match: {{namespace: "{db}.*", operations: [delete]}}
        action: log
    """
    with PolicyProxy(auth_backend.upstream, policy) as p:
        alice = login(p, "alice", app="billing-worker")
        assert alice[db].c.delete_one({"_id": 0}).deleted_count == 1
        record = p.wait_for_audit(lambda r: r.get("database") == db)
        assert record["user"] == "alice@admin", record
        assert record["app"] == "billing-worker", record
        assert record["driver"].startswith("PyMongo"), record
        assert pymongo.version in record["driver"], record
        assert record["client"].startswith("127.0.0.1:"), record
        assert record["verdict"] == "log" and record["n"] == 1, record


def test_clients_rule_matches_the_client_address(auth_backend, root):
    db = fresh_db("idcli")
    seed(root, db, 4)
    policy = f"""
    rules:
      - name: not-from-elsewhere
        match: {{namespace: "{db}.*", operations: [delete], clients: ["10.0.0.0/8"]}}
        action: block
      - name: not-from-loopback
        match: {{namespace: "{db}.a", operations: [delete], clients: ["127.0.0.0/8"]}}
        action: block
    """
    root[db].a.insert_one({"_id": 1})
    with PolicyProxy(auth_backend.upstream, policy) as p:
        alice = login(p, "alice")
        assert alice[db].c.delete_one({"_id": 0}).deleted_count == 1
        expect_blocked(lambda: alice[db].a.delete_one({"_id": 1}), "not-from-loopback")
    assert root[db].a.count_documents({}) == 1


def test_admin_api_hold_names_user_and_app(auth_backend, root):
    db = fresh_db("idhold")
    seed(root, db, 5)
    rule = "bob-deletes-need-approval"
    policy = f"""
    holds:
      timeout: 30s
    rules:
      - name: {rule}
        match: {{namespace: "{db}.*", operations: [delete], users: [bob]}}
        action: hold
    """
    with GuardedProxy(auth_backend.upstream, policy) as gp:
        bob = gp.client(username="bob", password=PASSWORDS["bob"], authSource="admin",
                        authMechanism="SCRAM-SHA-256", appname="cleanup-job")
        alice = gp.client(username="alice", password=PASSWORDS["alice"], authSource="admin",
                          authMechanism="SCRAM-SHA-256", appname="other-job")
        assert alice[db].c.delete_one({"_id": 0}).deleted_count == 1  # not held: not bob
        op = Background(lambda: bob[db].c.delete_many({}))
        hold = gp.admin.wait_for_hold(lambda h: h["ns"] == f"{db}.c", timeout=15)
        assert hold["user"] == "bob@admin", hold
        assert hold["app"] == "cleanup-job", hold
        assert hold["rule"] == rule, hold
        assert root[db].c.count_documents({}) == 4
        gp.admin.reject(hold["id"], by="oncall")
        with pytest.raises(OperationFailure) as caught:
            op.result(timeout=15)
        check_hold_error(caught.value, rule, operation="delete", ns=f"{db}.c",
                         contains="rejected by oncall")
    assert root[db].c.count_documents({}) == 4


# --- what must never be logged ------------------------------------------------

def _assert_no_secrets(text: str, where: str, secrets: list[str]) -> None:
    for s in secrets:
        assert s not in text, f"{where} contains a secret ({s[:6]}...)"
    found = [m.group(0) for m in re.finditer(r".{0,40}p=.{0,40}", text)]
    assert not found, f"{where} contains 'p=': {found[:5]}"


def test_scram_password_and_proof_never_logged(auth_backend, root):
    """At debug level (ProxyProcess's default), log in with pymongo and with a
    raw SCRAM conversation whose proof we know: neither the passwords nor the
    client-final proof appear in the proxy log or the audit file."""
    db = fresh_db("idsec")
    seed(root, db, 3)
    policy = f"""
    rules:
      - name: log-everything
        match: {{namespace: "{db}.*"}}
        action: log
    """
    with PolicyProxy(auth_backend.upstream, policy) as p:
        alice = login(p, "alice", app="secret-test")
        assert alice[db].c.delete_one({"_id": 0}).deleted_count == 1
        sock = raw_hello(p.proxy.port, "raw-secret-test")
        try:
            reply, scram_client = raw_login(sock, "bob", PASSWORDS["bob"])
            assert reply.get("ok") == 1, reply
            reply = wire.roundtrip(sock, wire.op_msg({"delete": "c", "deletes": [{"q": {"_id": 1},
                                                      "limit": 1}], "$db": db}), timeout=10).body
            assert reply.get("n") == 1, reply
        finally:
            sock.close()
        p.proxy.wait_for_log("authenticated as bob")
        p.wait_for_audit(lambda r: r.get("user") == "bob@admin")
        secrets = list(PASSWORDS.values()) + [scram_client.proof]
        _assert_no_secrets(p.log_text(), "proxy log", secrets)
        _assert_no_secrets(read_audit_text(p.audit_path), "audit file", secrets)


def test_plain_password_never_logged(backend):
    """PLAIN carries the password itself in saslStart's payload. FerretDB without
    new auth accepts any PLAIN credentials (SQLite ignores them)."""
    db = fresh_db("idplain")
    password = "plain-Secret-" + uuid.uuid4().hex[:12]
    policy = f"""
    rules:
      - name: carol-no-delete
        match: {{namespace: "{db}.*", operations: [delete], users: ["carol@$external"]}}
        action: block
    """
    with PolicyProxy(backend.upstream, policy) as p:
        carol = p.client(username="carol", password=password, authMechanism="PLAIN",
                         appname="plain-app")
        carol[db].c.insert_one({"_id": 1})
        expect_blocked(lambda: carol[db].c.delete_many({}), "carol-no-delete")
        p.proxy.wait_for_log("authenticated as carol")
        _assert_no_secrets(p.log_text(), "proxy log", [password])
        _assert_no_secrets(read_audit_text(p.audit_path), "audit file", [password])


# --- what a client cannot change about itself mid-connection ------------------

def test_later_hello_does_not_change_the_app(auth_backend, root):
    """The app comes from the connection's first hello only: a client cannot
    claim an exempted app name in a second hello (drivers send metadata once)."""
    db = fresh_db("idapp")
    seed(root, db, 3)
    policy = f"""
    rules:
      - name: no-mass-delete
        match: {{namespace: "{db}.*", operations: [delete], filter: unfiltered}}
        action: block
      - name: migrator-may
        match: {{namespace: "{db}.*", apps: [migrator]}}
        action: allow
    """
    with PolicyProxy(auth_backend.upstream, policy) as p:
        sock = raw_hello(p.proxy.port, "web")
        try:
            reply = wire.roundtrip(sock, wire.op_msg({
                "hello": 1, "$db": "admin",
                "client": {"application": {"name": "migrator"},
                           "driver": {"name": "raw", "version": "0"}}})).body
            # mongod and FerretDB refuse it (186 ClientMetadataCannotBeMutated);
            # a server that did not must still not change what the proxy believes.
            assert reply.get("ok") == 1 or reply.get("code") == 186, reply
            reply, _ = raw_login(sock, "alice", PASSWORDS["alice"])
            assert reply.get("ok") == 1, reply
            reply = wire.roundtrip(sock, wire.op_msg({"delete": "c", "deletes": [{"q": {}, "limit": 0}],
                                                      "$db": db}), timeout=10).body
        finally:
            sock.close()
        assert reply.get("code") == 13 and "no-mass-delete" in reply.get("errmsg", ""), reply
        record = p.wait_for_audit(lambda r: r.get("outcome") == "blocked")
        assert record["app"] == "web", record
    assert root[db].c.count_documents({}) == 3


def test_speculative_name_the_server_ignored_does_not_replace_the_user(auth_backend, root):
    """alice starts SCRAM with saslStart, then sends a hello whose
    speculativeAuthenticate names bob, then finishes her own conversation
    with her own proof. FerretDB ignores the speculative step (its hello reply
    has no speculativeAuthenticate), so the server's session is alice's; the
    proxy must not call the connection bob's, or a rule naming alice is
    evaded by anyone who can log in as alice."""
    db = fresh_db("idspoof")
    seed(root, db, 3)
    policy = f"""
    rules:
      - name: alice-no-delete
        match: {{namespace: "{db}.*", operations: [delete], users: [alice]}}
        action: block
    """
    import bson
    from scram import ScramClient, command

    with PolicyProxy(auth_backend.upstream, policy) as p:
        sock = raw_hello(p.proxy.port, "spoofer")
        try:
            alice = ScramClient("alice", PASSWORDS["alice"])
            start = command(sock, {"saslStart": 1, "mechanism": "SCRAM-SHA-256",
                                   "payload": bson.Binary(alice.first()),
                                   "options": {"skipEmptyExchange": True}, "$db": "admin"})
            assert start.get("ok") == 1, start
            bob_first = ScramClient("bob", "not-needed").first()
            hello = command(sock, {"hello": 1, "$db": "admin", "speculativeAuthenticate": {
                "saslStart": 1, "mechanism": "SCRAM-SHA-256", "payload": bson.Binary(bob_first),
                "db": "admin"}})
            assert hello.get("ok") == 1 and "speculativeAuthenticate" not in hello, hello
            conv = start["conversationId"]
            reply = command(sock, {"saslContinue": 1, "conversationId": conv,
                                   "payload": bson.Binary(alice.final(bytes(start["payload"]))),
                                   "$db": "admin"})
            if reply.get("ok") == 1 and not reply.get("done"):
                reply = command(sock, {"saslContinue": 1, "conversationId": conv,
                                       "payload": bson.Binary(b""), "$db": "admin"})
            assert reply.get("ok") == 1 and reply.get("done") is True, reply
            # The server now treats the connection as alice's.
            status = command(sock, {"connectionStatus": 1, "$db": "admin"})
            reply = wire.roundtrip(sock, wire.op_msg({"delete": "c", "deletes": [{"q": {}, "limit": 0}],
                                                      "$db": db}), timeout=10).body
        finally:
            sock.close()
        log = p.log_text()
        names = re.findall(r"authenticated as (\w+)", log)
        assert names == ["alice"], (f"proxy named the connection {names}; server session: "
                                    f"{status.get('authInfo')}; alice's delete_many({{}}) got {reply}")
        assert reply.get("code") == 13 and "alice-no-delete" in reply.get("errmsg", ""), reply
    assert root[db].c.count_documents({}) == 3
