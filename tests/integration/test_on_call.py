"""The on-call decision, through pymongo, FerretDB and the admin API: an
approval releases exactly one operation and the breaker stays tripped
until someone resumes it; a grant releases the holds it covers, oldest
first; named operators are who their token says, with roles; a hold can
need two different operators; a reason reaches the client and the audit
log; a token file that is missing or empty stops the proxy from starting."""

from __future__ import annotations

import os
import pathlib
import subprocess
import tempfile
import textwrap
import time

import pytest
from pymongo.errors import OperationFailure

from admin_helpers import AdminProxy, Background
from harness import PROXY_BIN, free_port
from policy_helpers import policy_backend, direct, seed, unique_db  # noqa: F401

ROLES = {"vera": "viewer", "bob": "approver", "dave": "approver", "carol": "admin"}


def operators(roles: dict[str, str]) -> tuple[str, dict[str, str]]:
    """An admin.operators section and each operator's token."""
    folder = pathlib.Path(tempfile.mkdtemp(prefix="mg-operators-"))
    lines, tokens = ["admin:", "  operators:"], {}
    for name, role in roles.items():
        tokens[name] = f"token-of-{name}-" + os.urandom(8).hex()
        (folder / f"{name}.token").write_text(tokens[name] + "\n")
        lines.append(f"    - {{name: {name}, token_file: {folder / (name + '.token')}, role: {role}}}")
    return "\n".join(lines) + "\n", tokens


def budget_policy(db: str, per: str = "1s", extra_limit: str = "", hold: str = "") -> str:
    return f"""
    holds:
      timeout: 30s
    rules:
      - name: families-delete-budget
        match: {{namespace: "{db}.families", operations: [delete]}}
        action: hold
        limit: {{documents: 2, per: {per}{extra_limit}}}
      - name: park
        match: {{namespace: "{db}.parked", operations: [delete]}}
        action: hold
        {hold}
    """


def start(backend, db: str, policy: str, roles: dict[str, str] | None = None) -> AdminProxy:
    """A proxy on `policy`; with `roles`, named operators and no shared token."""
    if roles is None:
        p = AdminProxy(backend.upstream, policy)
        p.tokens = {}
    else:
        section, tokens = operators(roles)
        p = AdminProxy(backend.upstream, policy, token=None, extra_yaml=section)
        p.tokens = tokens
        # Looking is open to every operator: the helpers look as the first one.
        p.token = tokens[next(iter(roles))]
    p.db = db
    return p


def trip(p: AdminProxy, c) -> dict:
    """Two deletes within the budget, then one held: returns its hold."""
    for i in (0, 1):
        assert c[p.db].families.delete_one({"_id": i}).deleted_count == 1
    return p


def held(p: AdminProxy, call, count: int = 1) -> tuple[Background, dict]:
    before = {h["id"] for h in p.ok("GET", "/api/holds")["holds"]}
    op = Background(call)
    deadline = time.monotonic() + 15
    while True:
        new = [h for h in p.ok("GET", "/api/holds")["holds"] if h["id"] not in before]
        if new:
            return op, new[0]
        assert time.monotonic() < deadline, p.log_text()[-3000:]
        time.sleep(0.05)


def breaker(p: AdminProxy, name: str) -> dict:
    [b] = [b for b in p.ok("GET", "/api/breakers")["breakers"] if b["name"] == name]
    return b


def ctl(p: AdminProxy, *args: str, token: str | None = None) -> subprocess.CompletedProcess:
    token_file = p.token_file
    if token is not None:
        token_file = p.dir / "ctl.token"
        token_file.write_text(token + "\n")
    return subprocess.run([str(PROXY_BIN), "ctl", "--admin", p.admin_url, "--token-file",
                           str(token_file), "--as", "alice", *args],
                          capture_output=True, text=True, timeout=20)


@pytest.fixture
def budget(policy_backend, direct):  # noqa: F811
    db = unique_db("oncall")
    seed(direct, db, "families", count=20)
    p = start(policy_backend, db, budget_policy(db))
    yield p
    p.stop()


def test_approve_releases_one_and_the_breaker_stays_tripped_until_resumed(budget, direct):  # noqa: F811
    p, c = budget, budget.client()
    trip(p, c)
    op, hold = held(p, lambda: c[p.db].families.delete_one({"_id": 2}))
    name = hold["breaker"]
    assert hold["documents"] == 1 and hold["size"] == "1 document(s)"
    assert hold["rate"]["documents"] == 2 and "documents in" in hold["rate"]["text"]
    assert "stays tripped" in hold["releases"]
    data = p.ok("POST", f"/api/holds/{hold['id']}/approve", {"by": "alice", "reason": "one-off"})
    assert data["outcome"] == "approved" and data["breaker_tripped"] is True
    assert f"ctl resume {name}" in data["note"]
    assert op.result().deleted_count == 1
    # The window drains (1s), the breaker does not close by itself.
    time.sleep(1.5)
    assert breaker(p, name)["tripped"] is True and breaker(p, name)["auto_resume"] is False
    op, hold = held(p, lambda: c[p.db].families.delete_one({"_id": 3}))
    p.ok("POST", f"/api/holds/{hold['id']}/reject", {"by": "alice", "reason": "a loop, not a fix"})
    with pytest.raises(OperationFailure) as caught:
        op.result()
    assert caught.value.details["errmsg"].endswith("rejected by alice: a loop, not a fix")
    # Resumed by a unique prefix of its name: the next delete passes.
    r = ctl(p, "resume", name[:len("families-delete")], "--reason", "fixed the script")
    assert r.returncode == 0, r.stderr
    assert f"breaker {name} resumed" in r.stdout
    assert breaker(p, name)["tripped"] is False
    assert c[p.db].families.delete_one({"_id": 4}).deleted_count == 1
    assert direct[p.db].families.count_documents({"_id": {"$in": [0, 1, 2, 4]}}) == 0
    assert direct[p.db].families.count_documents({"_id": 3}) == 1, "the rejected one stays"
    actions = [r for r in p.ok("GET", "/api/decisions?limit=100")["decisions"]
               if r.get("operator_action") in ("approve", "reject", "resume")]
    assert {a["operator_action"] for a in actions} == {"approve", "reject", "resume"}
    resume = [a for a in actions if a["operator_action"] == "resume"][0]
    assert resume["target"] == name and "fixed the script" in resume["details"]
    assert [a for a in actions if a["operator_action"] == "reject"][0]["details"].endswith(
        "reason: a loop, not a fix")


def test_auto_resume_closes_the_breaker_once_the_window_drains(policy_backend, direct):  # noqa: F811
    db = unique_db("autoresume")
    seed(direct, db, "families", count=10)
    p = start(policy_backend, db, budget_policy(db, extra_limit=", auto_resume: true"))
    try:
        c = p.client()
        trip(p, c)
        op, hold = held(p, lambda: c[db].families.delete_one({"_id": 2}))
        p.ok("POST", f"/api/holds/{hold['id']}/reject", {"by": "alice"})
        with pytest.raises(OperationFailure):
            op.result()
        assert breaker(p, hold["breaker"])["auto_resume"] is True
        time.sleep(1.5)
        assert c[db].families.delete_one({"_id": 3}).deleted_count == 1
    finally:
        p.stop()


def test_ctl_names_the_closest_breakers_for_an_unknown_name(budget):
    c = budget.client()
    trip(budget, c)
    op, hold = held(budget, lambda: c[budget.db].families.delete_one({"_id": 2}))
    r = ctl(budget, "resume", "families-delete-budgte")
    assert r.returncode == 1
    assert r.stderr.strip() == (f"mongoguard ctl: no breaker named families-delete-budgte; "
                                f"closest: {hold['breaker']}")
    table = ctl(budget, "holds")
    assert table.returncode == 0, table.stderr
    header = table.stdout.splitlines()[0].split()
    assert header[:6] == ["ID", "NAMESPACE", "OP", "AFFECTS", "RECENT", "WHO"]
    assert "BREAKER" in header and "REASON" in header
    assert hold["breaker"] in table.stdout and "1 document(s)" in table.stdout
    assert "0/2" not in table.stdout
    shown = ctl(budget, "show", str(hold["id"]))
    assert "approving   releases this one delete" in shown.stdout, shown.stdout
    assert "recent      2 documents in" in shown.stdout
    budget.ok("POST", f"/api/holds/{hold['id']}/reject", {"by": "alice"})
    with pytest.raises(OperationFailure):
        op.result()


def test_grant_releases_the_holds_it_covers_oldest_first(budget, direct):  # noqa: F811
    p, c = budget, budget.client()
    trip(p, c)
    # A client each: a held operation keeps its connection.
    c1, c2, c3 = p.client(), p.client(), p.client()
    first, h1 = held(p, lambda: c1[p.db].families.delete_one({"_id": 2}))
    second, h2 = held(p, lambda: c2[p.db].families.delete_many({"_id": {"$in": [3, 4, 5]}}))
    third, h3 = held(p, lambda: c3[p.db].families.delete_one({"_id": 6}))
    assert (h1["documents"], h2["documents"], h3["documents"]) == (1, 3, 1)
    name = h1["breaker"]
    # 2 documents cover the oldest (1) but not the next (3): the third waits its turn.
    data = p.ok("POST", f"/api/breakers/{name}/grant", {"by": "alice", "documents": 2})
    assert data["released"] == 1 and data["still_pending"] == 2
    assert "released 1 hold(s), 2 still pending" in data["message"]
    assert first.result().deleted_count == 1
    assert {h["id"] for h in p.ok("GET", "/api/holds")["holds"]} == {h2["id"], h3["id"]}
    r = ctl(p, "grant", name, "--documents", "10")
    assert r.returncode == 0, r.stderr
    assert "released 2 held operation(s)" in r.stdout
    assert second.result().deleted_count == 3 and third.result().deleted_count == 1
    assert direct[p.db].families.count_documents({"_id": {"$lte": 6}}) == 0
    assert direct[p.db].families.count_documents({}) == 13


def test_named_operators_and_their_roles(policy_backend, direct):  # noqa: F811
    db = unique_db("roles")
    seed(direct, db, "families", count=10)
    p = start(policy_backend, db, budget_policy(db), ROLES)
    try:
        t = p.tokens
        for name, role in ROLES.items():
            assert p.ok("GET", "/api/whoami", token=t[name]) == {
                "name": name, "role": role, "named": True}
        c = p.client()
        trip(p, c)
        op, hold = held(p, lambda: c[db].families.delete_one({"_id": 2}))
        name = hold["breaker"]
        assert p.ok("GET", "/api/holds", token=t["vera"])["holds"][0]["id"] == hold["id"]
        status, data = p.api("POST", f"/api/holds/{hold['id']}/approve", {}, token=t["vera"])
        assert status == 403
        assert data["error"] == "operator vera (viewer) may not do this: it needs the approver role"
        status, data = p.api("POST", f"/api/breakers/{name}/grant", {"documents": 5},
                             token=t["bob"])
        assert status == 403 and "needs the admin role" in data["error"]
        assert p.api("POST", f"/api/breakers/{name}/resume", {}, token=t["bob"])[0] == 403
        assert p.api("POST", "/api/reload", {}, token=t["dave"])[0] == 403
        # The token names the operator; a "by" claiming someone else is ignored.
        data = p.ok("POST", f"/api/holds/{hold['id']}/reject",
                    {"by": "mallory", "reason": "not during business hours"}, token=t["bob"])
        assert data["by"] == "bob"
        with pytest.raises(OperationFailure) as caught:
            op.result()
        assert caught.value.details["errmsg"].endswith(
            "rejected by bob: not during business hours")
        assert p.ok("POST", f"/api/breakers/{name}/resume", {}, token=t["carol"])["by"] == "carol"
        record = p.wait_for_audit(lambda r: r.get("operator_action") == "reject")
        assert record["by"] == "bob" and "mallory" not in str(record)
        # With operators configured and the shared token emptied, no one else gets in.
        assert p.api("GET", "/api/holds", token="anything")[0] == 401
    finally:
        p.stop()


def test_two_person_rule(policy_backend, direct):  # noqa: F811
    db = unique_db("twoperson")
    seed(direct, db, "parked", count=5)
    p = start(policy_backend, db, budget_policy(db, hold="hold: {approvals: 2}"), ROLES)
    try:
        t = p.tokens
        c = p.client()
        op, hold = held(p, lambda: c[db].parked.delete_one({"_id": 1}))
        assert hold["approvals_needed"] == 2 and hold["approvals"] == []
        status, data = p.api("POST", f"/api/holds/{hold['id']}/approve",
                             {"reason": "planned cleanup"}, token=t["bob"])
        assert status == 202 and data["outcome"] == "waiting"
        assert [a["by"] for a in data["approvals"]] == ["bob"]
        time.sleep(0.3)
        assert not op.done(), "one approval of two releases nothing"
        assert [a["by"] for a in p.ok("GET", "/api/holds")["holds"][0]["approvals"]] == ["bob"]
        status, data = p.api("POST", f"/api/holds/{hold['id']}/approve", {}, token=t["bob"])
        assert status == 409 and "another operator must approve" in data["error"]
        assert p.api("POST", f"/api/holds/{hold['id']}/approve", {}, token=t["vera"])[0] == 403
        shown = ctl(p, "show", str(hold["id"]), token=t["vera"])
        assert "approvals   1 of 2 (bob)" in shown.stdout, shown.stdout
        r = ctl(p, "approve", str(hold["id"]), "--reason", "agreed", token=t["dave"])
        assert r.returncode == 0, r.stderr
        assert op.result().deleted_count == 1
        assert direct[db].parked.count_documents({"_id": 1}) == 0
        record = p.wait_for_audit(lambda r: r.get("database") == db and "outcome" in r
                                  and r["outcome"].startswith("approved"))
        assert record["outcome"] == "approved by bob and dave: agreed", record
    finally:
        p.stop()


def test_two_person_rule_needs_named_operators(policy_backend, direct):  # noqa: F811
    db = unique_db("twoshared")
    seed(direct, db, "parked", count=3)
    # Refused at load: two approvals need two operators who may approve.
    config = pathlib.Path(tempfile.mkdtemp(prefix="mg-two-")) / "mongoguard.yaml"
    section, _ = operators({"bob": "approver", "vera": "viewer"})
    config.write_text(section + textwrap.dedent(budget_policy(db, hold="hold: {approvals: 2}")))
    r = subprocess.run([str(PROXY_BIN), "validate", str(config)],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode != 0
    assert "hold.approvals: 2 needs at least 2 named operators who may approve" in r.stdout + r.stderr


def run_proxy(config: pathlib.Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(PROXY_BIN), "--config", str(config), "--listen",
                           f"127.0.0.1:{free_port()}", "--upstream", "mongodb://127.0.0.1:1",
                           "--admin-listen", f"127.0.0.1:{free_port()}", *extra],
                          capture_output=True, text=True, timeout=20)


def test_a_missing_or_empty_token_file_refuses_to_start(tmp_path):
    missing = tmp_path / "nope.token"
    empty = tmp_path / "empty.token"
    empty.write_text("\n")
    for path in (missing, empty):
        config = tmp_path / "mongoguard.yaml"
        config.write_text(f"admin:\n  token_file: {path}\n")
        r = run_proxy(config)
        assert r.returncode == 2, r.stderr
        line = r.stderr.strip().splitlines()[0]
        assert line.startswith("mongoguard: cannot start the admin endpoint: admin.token_file: ")
        assert str(path) in line
    config.write_text(f"admin:\n  operators:\n    - {{name: bob, token_file: {missing}, "
                      "role: approver}\n")
    r = run_proxy(config)
    assert r.returncode == 2 and f"operator bob: cannot read the token file {missing}" in r.stderr


def test_reload_with_a_missing_token_file_keeps_the_running_configuration(budget, direct):  # noqa: F811
    p = budget
    section, _ = operators({"bob": "approver"})
    broken = section.replace("bob.token", "gone.token")
    p.write_policy(broken + textwrap.dedent(budget_policy(p.db)))
    status, data = p.api("POST", "/api/reload", {"by": "alice"})
    assert status == 422, data
    assert any("operator bob: cannot read the token file" in e for e in data["errors"]), data
    # The running configuration, shared token included, is still in force.
    assert p.api("GET", "/api/holds")[0] == 200
    c = p.client()
    trip(p, c)
    op, hold = held(p, lambda: c[p.db].families.delete_one({"_id": 2}))
    p.ok("POST", f"/api/holds/{hold['id']}/reject", {"by": "alice"})
    with pytest.raises(OperationFailure):
        op.result()
