"""The admin HTTP API and `mongoguard ctl` against a running proxy: the
bearer token on every protected path, each endpoint's answers and errors,
and holds decided over the API while a real client waits."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request

import pytest
from pymongo.errors import OperationFailure

from admin_helpers import AdminProxy, Background
import wire
from harness import PROXY_BIN, ProxyProcess
from policy_helpers import UNAUTHORIZED, policy_backend, direct, seed, unique_db  # noqa: F401

PROTECTED = [
    ("GET", "/metrics"),
    ("GET", "/api/holds"),
    ("POST", "/api/holds/1/approve"),
    ("POST", "/api/holds/1/reject"),
    ("GET", "/api/breakers"),
    ("POST", "/api/breakers/r%3Adb.c/reset"),
    ("POST", "/api/breakers/r%3Adb.c/grant"),
    ("POST", "/api/breakers/r%3Adb.c/approve-all"),
    ("POST", "/api/breakers/r%3Adb.c/reject-all"),
    ("GET", "/api/decisions"),
    ("POST", "/api/reload"),
    ("GET", "/api/unknown"),
]

LOG_ALL = """
rules:
  - name: watch-deletes
    match: {operations: [delete]}
    action: log
"""


def hold_policy(db: str) -> str:
    return f"""
    rules:
      - name: park
        match: {{namespace: "{db}.held", operations: [delete]}}
        action: hold
      - name: budget
        match: {{namespace: "{db}.budget", operations: [delete]}}
        action: hold
        limit: {{documents: 2, per: 1m}}
    """


@pytest.fixture
def admin(policy_backend):  # noqa: F811
    p = AdminProxy(policy_backend.upstream, LOG_ALL)
    yield p
    p.stop()


def test_every_protected_path_refuses_without_or_with_a_wrong_token(admin):
    for method, path in PROTECTED:
        for token in (None, "wrong", admin.token[:-1], admin.token + "x"):
            status, data = admin.api(method, path, {"by": "x"}, token=token)
            assert status == 401, (method, path, token, status, data)
            assert isinstance(data, dict) and data["error"], data
    # A Basic header with the right secret is still not a bearer token.
    status, _ = admin.api("GET", "/api/holds", token=None,
                          headers={"Authorization": f"Basic {admin.token}"})
    assert status == 401


def test_health_and_readiness_need_no_token(admin):
    assert admin.api("GET", "/healthz", token=None) == (200, "ok\n")
    assert admin.api("GET", "/readyz", token=None) == (200, "ready\n")


def test_the_page_is_served_without_a_token(admin):
    status, text = admin.api("GET", "/", token=None)
    assert status == 200
    assert "<title>mongoguard</title>" in text and "/api/holds" in text


def test_without_a_token_file_the_api_is_off(policy_backend):  # noqa: F811
    p = AdminProxy(policy_backend.upstream, LOG_ALL, token=None)
    try:
        for token in (None, "", "anything"):
            status, data = p.api("GET", "/api/holds", token=token)
            assert status == 401, data
        assert p.api("GET", "/healthz", token=None)[0] == 200
    finally:
        p.stop()


def test_empty_lists_and_metrics_gauges(admin):
    assert admin.ok("GET", "/api/holds") == {"holds": []}
    assert admin.ok("GET", "/api/breakers") == {"breakers": []}
    assert isinstance(admin.ok("GET", "/api/decisions")["decisions"], list)
    status, text = admin.api("GET", "/metrics")
    assert status == 200
    assert "\nmongoguard_holds_pending 0\n" in text
    assert "\nmongoguard_breakers_tripped 0\n" in text
    assert "mongoguard_connections_accepted_total" in text


def test_message_counts_are_exact_across_worker_threads(policy_backend):  # noqa: F811
    """The relay counts messages and bytes per worker thread and /metrics sums
    them: raw connections spread over four workers, each sending a known
    number of frames, must add up exactly, in both directions."""
    proxy = ProxyProcess(policy_backend.upstream, threads=4)
    try:
        before = proxy.metrics()
        sent_bytes = received_bytes = 0
        connections, per_connection = 12, 25
        for c in range(connections):
            sock = wire.connect(proxy.port)
            try:
                for i in range(per_connection):
                    msg = wire.op_msg({"ping": 1, "$db": "admin", "comment": "x" * (c * 7 + i)})
                    sock.sendall(msg)
                    reply = wire.read_message(sock)
                    sent_bytes += len(msg)
                    received_bytes += len(reply)
                    assert wire.parse_message(reply).body["ok"] == 1
            finally:
                sock.close()
        after = proxy.metrics()

        def grew(name: str) -> float:
            return after.get(name, 0) - before.get(name, 0)

        total = connections * per_connection
        assert grew("mongoguard_client_messages_total") == total
        assert grew('mongoguard_messages_total{opcode="OP_MSG"}') == total
        assert grew("mongoguard_upstream_messages_total") == total
        assert grew("mongoguard_client_bytes_total") == sent_bytes
        assert grew("mongoguard_upstream_bytes_total") == received_bytes
    finally:
        proxy.stop()


def test_errors(admin):
    assert admin.api("GET", "/api/nope")[0] == 404
    assert admin.api("GET", "/nope")[0] == 404
    assert admin.api("POST", "/api/holds")[0] == 405
    # Operator missing, bad JSON, unknown hold.
    assert admin.api("POST", "/api/holds/1/approve")[0] == 400
    assert admin.api("POST", "/api/holds/1/approve", {"by": ""})[0] == 400
    assert admin.api("POST", "/api/holds/1/approve", raw=b"{not json")[0] == 400
    assert admin.api("POST", "/api/holds/1/approve", raw=b"[]")[0] == 400
    status, data = admin.api("POST", "/api/holds/12345/approve", {"by": "alice"})
    assert status == 404 and "12345" in data["error"]
    status, data = admin.api("POST", "/api/holds/12345/reject", None,
                             headers={"X-Mongoguard-Operator": "alice"})
    assert status == 404
    # Breakers.
    assert admin.api("POST", "/api/breakers/no%3Asuch/reset", {"by": "a"})[0] == 404
    assert admin.api("POST", "/api/breakers/no%3Asuch/grant", {"by": "a", "documents": 5})[0] == 404
    assert admin.api("POST", "/api/breakers/no%3Asuch/grant", {"by": "a"})[0] == 400
    assert admin.api("POST", "/api/breakers/no%3Asuch/approve-all", {"by": "a"})[0] == 404
    assert admin.api("POST", "/api/breakers/bad%zzescape/reset", {"by": "a"})[0] == 400
    # Decisions limit.
    assert admin.api("GET", "/api/decisions?limit=0")[0] == 400
    assert admin.api("GET", "/api/decisions?limit=abc")[0] == 400
    # Bodies are bounded.
    status, _ = admin.api("POST", "/api/reload", raw=b"{" + b" " * (70 * 1024) + b"}")
    assert status == 413
    assert admin.api("GET", "/healthz", token=None)[0] == 200  # still serving


def test_reload_accepts_and_refuses(admin):
    assert admin.ok("POST", "/api/reload", {"by": "alice"}) == {"ok": True}
    admin.write_policy(f"admin:\n  token_file: {admin.token_file}\nrules:\n  - name: x\n"
                       "    match: {operations: [delete]}\n    action: explode\n")
    status, data = admin.api("POST", "/api/reload", {"by": "alice"})
    assert status == 422, data
    assert data["errors"] and str(admin.config_path) in data["errors"][0]
    # The token (from the running config) still works.
    assert admin.api("GET", "/api/holds")[0] == 200


def test_decisions_are_audit_records_newest_first(admin, direct):  # noqa: F811
    db = unique_db("adm_dec")
    seed(direct, db)
    c = admin.client()
    for i in range(3):
        c[db].c.delete_one({"_id": i})
    deadline = time.monotonic() + 5
    while True:
        records = admin.ok("GET", "/api/decisions?limit=500")["decisions"]
        mine = [r for r in records if r.get("database") == db]
        if len(mine) >= 3 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(mine) >= 3, records
    assert all(r["rule"] == "watch-deletes" for r in mine)
    assert admin.ok("GET", "/api/decisions?limit=2")["decisions"] == records[:2]
    assert len(admin.ok("GET", "/api/decisions")["decisions"]) <= 50


# --- holds, decided over the API ---------------------------------------------

@pytest.fixture
def held(policy_backend, direct):  # noqa: F811
    db = unique_db("adm_hold")
    seed(direct, db, "held")
    seed(direct, db, "budget", count=10)
    p = AdminProxy(policy_backend.upstream, hold_policy(db))
    p.db = db
    yield p
    p.stop()


def test_approve_forwards_the_held_delete(held, direct):  # noqa: F811
    c = held.client()
    op = Background(lambda: c[held.db].held.delete_one({"_id": 1}))
    [hold] = held.wait_for_holds()
    assert not op.done()
    assert hold["ns"] == f"{held.db}.held" and hold["operation"] == "delete"
    assert hold["rule"] == "park"
    assert hold["client"].startswith("127.0.0.1")
    assert hold["waiting_seconds"] >= 0 and hold["created"].endswith("Z")
    for key in ("id", "breaker", "command", "connection", "user", "app", "filter", "statements",
                "documents_in_window", "limit", "reason"):
        assert key in hold, key
    assert "\nmongoguard_holds_pending 1\n" in held.api("GET", "/metrics")[1]
    data = held.ok("POST", f"/api/holds/{hold['id']}/approve", {"by": "alice"})
    assert {k: data[k] for k in ("id", "outcome", "by")} == {
        "id": hold["id"], "outcome": "approved", "by": "alice"}
    assert data["approvals"] == [{"by": "alice", "reason": ""}] and data["approvals_needed"] == 1
    assert "breaker_tripped" not in data, "a plain hold has no breaker to stay tripped"
    assert op.result().deleted_count == 1
    assert direct[held.db].held.count_documents({"_id": 1}) == 0
    assert held.ok("GET", "/api/holds") == {"holds": []}
    # Deciding twice: it is gone.
    assert held.api("POST", f"/api/holds/{hold['id']}/reject", {"by": "bob"})[0] == 404
    actions = [r for r in held.ok("GET", "/api/decisions")["decisions"]
               if r.get("operator_action") == "approve"]
    assert actions and actions[0]["by"] == "alice" and actions[0]["target"] == str(hold["id"])


def test_reject_refuses_the_held_delete(held, direct):  # noqa: F811
    c = held.client()
    op = Background(lambda: c[held.db].held.delete_one({"_id": 2}))
    [hold] = held.wait_for_holds()
    status, data = held.api("POST", f"/api/holds/{hold['id']}/reject", None,
                            headers={"X-Mongoguard-Operator": "carol"})
    assert status == 200 and data["outcome"] == "rejected" and data["by"] == "carol"
    with pytest.raises(OperationFailure) as caught:
        op.result()
    err = caught.value
    assert err.code == UNAUTHORIZED and err.details["codeName"] == "Unauthorized"
    assert err.details["errmsg"] == (f"mongoguard: delete on {held.db}.held held by rule 'park': "
                                     "rejected by carol")
    assert direct[held.db].held.count_documents({"_id": 2}) == 1


def trip_budget(p: AdminProxy):
    """Deletes one document at a time until the budget holds one; returns
    (the waiting operation, the hold)."""
    c = p.client()
    coll = c[p.db].budget
    for i in range(10):
        op = Background(lambda i=i: coll.delete_one({"_id": i}))
        deadline = time.monotonic() + 3
        while not op.done() and time.monotonic() < deadline:
            time.sleep(0.02)
        if not op.done():
            return op, p.wait_for_holds()[0]
        op.result()
    raise AssertionError("the budget never held an operation")


def test_breakers_list_approve_all_reset_and_grant(held, direct):  # noqa: F811
    op, hold = trip_budget(held)
    name = hold["breaker"]
    assert name.startswith("budget:") and f"{held.db}.budget" in name
    assert hold["limit"] == 2 and hold["documents_in_window"] >= 2
    [breaker] = [b for b in held.ok("GET", "/api/breakers")["breakers"] if b["name"] == name]
    assert breaker["tripped"] is True and breaker["limit"] == 2 and breaker["per"] == "1m"
    assert breaker["used"] >= 2 and breaker["pending_holds"] == 1
    assert 0 < breaker["drains_in_seconds"] <= 60
    metrics = held.api("GET", "/metrics")[1]
    assert "\nmongoguard_breakers_tripped 1\n" in metrics

    quoted = urllib.request.quote(name, safe="")
    assert held.api("POST", f"/api/breakers/{quoted}/approve-all")[0] == 400
    data = held.ok("POST", f"/api/breakers/{quoted}/approve-all", {"by": "alice"})
    assert data["resolved"] == 1 and data["outcome"] == "approved"
    assert op.result().deleted_count == 1

    data = held.ok("POST", f"/api/breakers/{quoted}/reset", {"by": "alice"})
    assert data["breaker"]["used"] == 0 and data["breaker"]["tripped"] is False

    assert held.api("POST", f"/api/breakers/{quoted}/grant", {"by": "alice"})[0] == 400
    assert held.api("POST", f"/api/breakers/{quoted}/grant",
                    {"by": "alice", "documents": "many"})[0] == 400
    data = held.ok("POST", f"/api/breakers/{quoted}/grant",
                   {"by": "alice", "documents": 100, "minutes": 5})
    assert data["breaker"]["allowance"]["documents"] == 100
    assert 290 < data["breaker"]["allowance"]["expires_in_seconds"] <= 300
    # With the allowance the rest go through without holding.
    c = held.client()
    remaining = direct[held.db].budget.count_documents({})
    result = c[held.db].budget.delete_many({})
    assert result.deleted_count == remaining
    actions = {r.get("operator_action") for r in held.ok("GET", "/api/decisions")["decisions"]}
    assert {"approve-all", "reset", "grant"} <= actions


def test_reject_all_refuses_every_hold_of_a_breaker(held, direct):  # noqa: F811
    op, hold = trip_budget(held)
    quoted = urllib.request.quote(hold["breaker"], safe="")
    data = held.ok("POST", f"/api/breakers/{quoted}/reject-all", {"by": "dave"})
    assert data["resolved"] == 1
    with pytest.raises(OperationFailure) as caught:
        op.result()
    assert caught.value.code == UNAUTHORIZED
    assert caught.value.details["errmsg"].endswith("rejected by dave")


# --- mongoguard ctl -----------------------------------------------------------

def ctl(p: AdminProxy, *args: str, token_file: str | None = None, env: dict | None = None):
    full_env = {k: v for k, v in os.environ.items() if k != "MONGOGUARD_ADMIN_TOKEN_FILE"}
    full_env["USER"] = "ctl-user"
    full_env.update(env or {})
    cmd = [str(PROXY_BIN), "ctl", "--admin", p.admin_url,
           "--token-file", token_file or str(p.token_file), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30, env=full_env)


def test_ctl_lists_and_decides(held, direct):  # noqa: F811
    r = ctl(held, "holds")
    assert r.returncode == 0 and r.stdout == "no pending holds\n", r
    c = held.client()
    op = Background(lambda: c[held.db].held.delete_one({"_id": 3}))
    [hold] = held.wait_for_holds()
    r = ctl(held, "holds")
    assert r.returncode == 0, r
    header, row = r.stdout.splitlines()[:2]
    assert header.split()[:3] == ["ID", "NAMESPACE", "OP"]
    assert row.split()[:3] == [str(hold["id"]), f"{held.db}.held", "delete"]
    assert header.index("NAMESPACE") == row.index(f"{held.db}.held")  # aligned
    r = ctl(held, "--json", "holds")
    assert r.returncode == 0 and json.loads(r.stdout)["holds"][0]["id"] == hold["id"]
    # One hold in full, one field per line; no --as needed to look.
    r = ctl(held, "show", str(hold["id"]), env={"USER": ""})
    assert r.returncode == 0, r
    shown = dict(line.split(None, 1) for line in r.stdout.splitlines()
                 if not line.startswith(" ") and not line.startswith("held since"))
    assert shown["hold"] == str(hold["id"])
    assert shown["namespace"] == f"{held.db}.held"
    assert shown["operation"].startswith("delete (delete, 1 statement(s))"), shown
    assert shown["rule"] == hold["rule"] and shown["client"].startswith("127.0.0.1:")
    assert f"held since  {hold['created']}" in r.stdout, r.stdout
    r = ctl(held, "--json", "show", str(hold["id"]))
    assert r.returncode == 0 and json.loads(r.stdout)["ns"] == f"{held.db}.held", r
    r = ctl(held, "show", "987654")
    assert r.returncode == 1 and "no pending hold 987654" in r.stderr, r
    r = ctl(held, "approve", str(hold["id"]))  # --as defaults to $USER
    assert r.returncode == 0, r
    assert r.stdout.strip() == f"hold {hold['id']} approved by ctl-user"
    assert op.result().deleted_count == 1
    r = ctl(held, "--as", "erin", "reject", str(hold["id"]))
    assert r.returncode == 1 and f"no pending hold {hold['id']}" in r.stderr, r


def test_ctl_breakers_grant_reset_and_decisions(held):
    op, hold = trip_budget(held)
    name = hold["breaker"]
    r = ctl(held, "breakers")
    assert r.returncode == 0, r
    assert r.stdout.splitlines()[0].split() == ["BREAKER", "USED", "PER", "STATE", "DRAINS",
                                                "ALLOWANCE", "HELD"]
    assert any(line.startswith(name) and "TRIPPED" in line for line in r.stdout.splitlines())
    r = ctl(held, "--as", "frank", "reject-all", name)
    assert r.returncode == 0 and r.stdout.strip() == f"1 hold(s) on {name} rejected by frank", r
    with pytest.raises(OperationFailure):
        op.result()
    r = ctl(held, "grant", name, "--documents", "5", "--minutes", "2")
    assert r.returncode == 0 and "allowance 5 document(s), free passage for" in r.stdout, r
    r = ctl(held, "reset", name)
    assert r.returncode == 0 and r.stdout.strip() == f"breaker {name} reset", r
    r = ctl(held, "decisions", "--limit", "3")
    assert r.returncode == 0, r
    lines = r.stdout.splitlines()
    assert lines[0].split()[:2] == ["TIME", "VERDICT"] and len(lines) == 4
    assert "reset" in lines[1] and "by ctl-user" in lines[1]
    r = ctl(held, "--json", "decisions", "--limit", "1")
    assert r.returncode == 0 and json.loads(r.stdout)["decisions"][0]["operator_action"] == "reset"
    r = ctl(held, "reload")
    assert r.returncode == 0 and r.stdout.strip() == "configuration reloaded", r


def test_ctl_errors_and_usage(admin, tmp_path):
    assert ctl(admin, "reset", "no:such").returncode == 1
    r = ctl(admin, "grant", "no:such", "--documents", "3")
    assert r.returncode == 1 and "no breaker named no:such" in r.stderr, r
    wrong = tmp_path / "wrong.token"
    wrong.write_text("a-wrong-token-0123456789\n")
    r = ctl(admin, "holds", token_file=str(wrong))
    assert r.returncode == 1 and "bearer token" in r.stderr, r
    # The token file from the environment when --token-file is not given.
    r = subprocess.run([str(PROXY_BIN), "ctl", "--admin", admin.admin_url, "holds"],
                       capture_output=True, text=True, timeout=30,
                       env={**os.environ, "MONGOGUARD_ADMIN_TOKEN_FILE": str(admin.token_file)})
    assert r.returncode == 0, r
    for args in (["frobnicate"], [], ["approve"], ["grant", "x"], ["grant", "x", "--documents",
                 "-3"], ["holds", "extra"], ["--bogus", "holds"], ["decisions", "--limit", "x"],
                 ["reset", "x", "--documents", "1"]):
        r = ctl(admin, *args)
        assert r.returncode == 2, (args, r)
        # The problem and a pointer to the help, not the whole help.
        problem, pointer = r.stderr.splitlines()
        assert problem.startswith("mongoguard ctl: "), r.stderr
        assert pointer.startswith("Try '") and pointer.endswith(
            " ctl --help' for more information."), r.stderr
    r = ctl(admin, "holds", token_file=str(tmp_path / "missing"))
    assert r.returncode == 2 and "token file" in r.stderr
    # Nothing listening: an error, not a usage problem.
    r = subprocess.run([str(PROXY_BIN), "ctl", "--admin", "http://127.0.0.1:1",
                        "--token-file", str(admin.token_file), "holds"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "cannot reach" in r.stderr, r
