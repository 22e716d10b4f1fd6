"""The page's picture of what is going on, through the admin API against
FerretDB with pymongo: GET /api/rates (destructive documents per minute per
namespace, with the budgets the policy sets there), GET /api/status (the
policy file, when it was loaded, how the last reload went), the decision
filters of GET /api/decisions, and the decision log surviving a restart
(read back from the audit file)."""

from __future__ import annotations

import json
import textwrap
import time

import pytest
from pymongo.errors import OperationFailure

from admin_helpers import AdminProxy, Background
from policy_helpers import policy_backend, direct, seed, unique_db  # noqa: F401


def wait_for(check, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} not met within {timeout}s"
        time.sleep(0.05)


def rates_of(p: AdminProxy, ns: str) -> dict | None:
    return next((n for n in p.ok("GET", "/api/rates")["namespaces"] if n["ns"] == ns), None)


def test_rates_count_what_the_server_reported_and_show_the_budgets(policy_backend, direct):  # noqa: F811
    db = unique_db("rates")
    seed(direct, db, "families", count=20)
    policy = f"""
    rules:
      - name: families-budget
        match: {{namespace: "{db}.families", operations: [delete, update]}}
        action: hold
        limit: {{documents: 50, per: 1m}}
      - name: families-hourly
        match: {{namespace: "{db}.*", operations: [delete]}}
        action: hold
        limit: {{documents: 600, per: 1h, group_by: [app]}}
    """
    p = AdminProxy(policy_backend.upstream, policy)
    try:
        c = p.client()
        assert c[db].families.delete_many({"x": {"$lt": 7}}).deleted_count == 7
        assert c[db].families.delete_one({"_id": 10}).deleted_count == 1
        assert c[db].families.update_many({"x": {"$gte": 15}}, {"$set": {"y": 1}}).modified_count == 5
        assert c[db].families.delete_one({"_id": 999}).deleted_count == 0  # nothing: not counted
        unprotected = f"{db}x.loose"
        direct[f"{db}x"].loose.insert_many([{"_id": i} for i in range(3)])
        assert c[f"{db}x"].loose.delete_many({}).deleted_count == 3

        families = wait_for(lambda: (r := rates_of(p, f"{db}.families")) and
                            sum(r["per_minute"]) == 13 and r, what="13 documents counted")
        assert len(families["per_minute"]) == 60
        # All within the last minute or two (a minute may turn meanwhile).
        assert sum(families["per_minute"][-2:]) == 13
        budgets = {(b["rule"], b["per"]): b for b in families["budgets"]}
        assert budgets[("families-budget", "1m")]["documents"] == 50
        assert budgets[("families-budget", "1m")]["per_seconds"] == 60
        assert budgets[("families-budget", "1m")]["per_minute"] == 50
        assert budgets[("families-budget", "1m")]["operations"] == ["delete", "update"]
        hourly = budgets[("families-hourly", "1h")]
        assert hourly["documents"] == 600 and hourly["per_minute"] == 10
        assert hourly["group_by"] == ["app"]
        body = p.ok("GET", "/api/rates")
        assert body["minutes"] == 60 and body["now"].endswith("Z")
        names = [n["ns"] for n in body["namespaces"]]
        assert unprotected not in names  # no rule matched it
        assert names == sorted(names)
        status, _ = p.api("GET", "/api/rates", token=None)
        assert status == 401
        status, _ = p.api("GET", "/api/rates", token="wrong")
        assert status == 401
    finally:
        p.stop()
        direct.drop_database(db)
        direct.drop_database(f"{db}x")


def test_status_says_which_file_is_loaded_and_how_the_last_reload_went(policy_backend):  # noqa: F811
    db = unique_db("status")
    good = textwrap.dedent(f"""\
    rules:
      - name: block-all-deletes
        match: {{namespace: "{db}.*", operations: [delete]}}
        action: block
    """)
    p = AdminProxy(policy_backend.upstream, good)
    try:
        admin = f"admin:\n  token_file: {p.token_file}\n"
        status = p.ok("GET", "/api/status")
        assert status["policy_file"] == str(p.config_path)
        assert status["last_reload"] is None
        assert status["started_at"].endswith("Z") and status["loaded_at"].endswith("Z")
        assert status["version"]
        loaded = status["loaded_at"]

        # A broken file, noticed on disk: refused, the running policy stays.
        p.write_policy(admin + good + "    bogus_key: 1\n")
        status = wait_for(lambda: (s := p.ok("GET", "/api/status"))["last_reload"] and s,
                          what="the broken file's reload")
        reload = status["last_reload"]
        assert reload["ok"] is False and reload["why"] == "file changed", reload
        assert reload["errors"] and any("bogus_key" in e for e in reload["errors"]), reload
        assert all(e.startswith(str(p.config_path)) for e in reload["errors"]), reload
        assert status["loaded_at"] == loaded

        # Through the API: the same refusal, its errors in the answer.
        code, body = p.api("POST", "/api/reload", {"by": "alice"})
        assert code == 422 and body["errors"] == reload["errors"]
        assert p.ok("GET", "/api/status")["last_reload"]["why"] == "admin API"

        # Fixed: applied, and the load time moves.
        p.write_policy(admin + good)
        status = wait_for(lambda: (s := p.ok("GET", "/api/status"))["last_reload"]["ok"] and s,
                          what="the fixed file's reload")
        assert status["last_reload"]["errors"] == []
        assert status["loaded_at"] == status["last_reload"]["at"] and status["loaded_at"] > loaded
        assert p.api("GET", "/api/status", token=None)[0] == 401
    finally:
        p.stop()


def filtered(p: AdminProxy, **params) -> list[dict]:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return p.ok("GET", "/api/decisions?" + query)["decisions"]


def exercise(p: AdminProxy, direct, db: str) -> None:  # noqa: F811
    """Real decisions of every kind: forwarded within a budget, blocked,
    held and rejected."""
    c = p.client(appname="cleanup")
    assert c[db].families.delete_one({"_id": 1}).deleted_count == 1
    assert c[db].families.delete_one({"_id": 2}).deleted_count == 1
    with pytest.raises(OperationFailure):
        c[db].logs.delete_many({})
    held = Background(lambda: c[db].held.delete_one({"_id": 3}))
    [hold] = p.wait_for_holds(1)
    p.ok("POST", f"/api/holds/{hold['id']}/reject", {"by": "alice"})
    with pytest.raises(OperationFailure):
        held.result()


POLICY = """
rules:
  - name: families-budget
    match: {{namespace: "{db}.families", operations: [delete]}}
    action: hold
    limit: {{documents: 100, per: 1m}}
  - name: no-unfiltered
    match: {{namespace: "{db}.logs", operations: [delete], filter: unfiltered}}
    action: block
  - name: held-always
    match: {{namespace: "{db}.held", operations: [delete]}}
    action: hold
"""


def test_decisions_filter_by_rule_namespace_and_outcome(policy_backend, direct):  # noqa: F811
    db = unique_db("filters")
    for coll in ("families", "logs", "held"):
        seed(direct, db, coll, count=5)
    p = AdminProxy(policy_backend.upstream, POLICY.format(db=db))
    try:
        exercise(p, direct, db)
        wait_for(lambda: filtered(p, outcome="rejected"), what="the rejected decision")

        budget = filtered(p, rule="families-budget")
        assert len(budget) == 2 and all(d["targets"][0]["ns"] == f"{db}.families" for d in budget)
        assert [d["outcome"] for d in budget] == ["forwarded", "forwarded"]
        blocked = filtered(p, outcome="blocked")
        assert [d["rule"] for d in blocked] == ["no-unfiltered"]
        assert filtered(p, outcome="block") == blocked  # the verdict matches too
        [rejected] = filtered(p, outcome="rejected")
        assert rejected["outcome"] == "rejected by alice" and rejected["rule"] == "held-always"
        # The hold's rejection, as the operator's action, names the rule and namespace.
        held = filtered(p, ns=f"{db}.held")
        # (The two are written by different threads: in either order.)
        assert sorted(d.get("operator_action") or d["verdict"] for d in held) == ["hold", "reject"]
        assert filtered(p, rule="held-always", ns=f"{db}.held") == held
        assert filtered(p, rule="no-unfiltered", ns=f"{db}.families") == []
        assert len(filtered(p, ns=f"{db}.families", limit=1)) == 1
        assert filtered(p, rule="nothing-like-this") == []
    finally:
        p.stop()
        direct.drop_database(db)


def test_decisions_survive_a_restart(policy_backend, direct, tmp_path):  # noqa: F811
    """The decision log is read back from the audit file's tail at start-up:
    the page shows the same decisions after a restart. Lines that are not
    records are skipped and counted; a `time` written as an ISO-8601 string
    is read like today's {"$date": ...}."""
    db = unique_db("restart")
    for coll in ("families", "logs", "held"):
        seed(direct, db, coll, count=5)
    audit = tmp_path / "audit.jsonl"
    policy = f"audit:\n  path: {audit}\n" + POLICY.format(db=db)
    p = AdminProxy(policy_backend.upstream, policy)
    try:
        exercise(p, direct, db)
        before = wait_for(lambda: (d := filtered(p, limit=500)) and len(d) >= 5 and d,
                          what="five decisions")
    finally:
        p.stop()  # SIGTERM: everything queued is written first
    with audit.open("a") as f:
        f.write("this line is not a record\n")
        f.write(json.dumps({"time": "2026-12-03T12:51:21.123Z", "operator_action": "reset",
                            "by": "bob", "target": f"families-budget:{db}.families"}) + "\n")
    p = AdminProxy(policy_backend.upstream, policy)
    try:
        after = filtered(p, limit=500)
        assert after[0]["operator_action"] == "reset" and after[0]["by"] == "bob"
        assert after[1:len(before) + 1] == before
        status = p.ok("GET", "/api/status")["decisions_read_back"]
        assert status == {"records": len(before) + 1, "skipped_lines": 1}
        assert [d["outcome"] for d in filtered(p, outcome="rejected")] == ["rejected by alice"]
        assert len(filtered(p, rule="families-budget")) == 3  # two deletes and bob's reset
        # New decisions come on top of the read-back ones.
        assert p.client()[db].families.delete_one({"_id": 4}).deleted_count == 1
        newest = wait_for(lambda: (d := filtered(p, rule="families-budget")) and len(d) == 4 and d,
                          what="the new decision")
        assert newest[0]["targets"][0]["ns"] == f"{db}.families" and "time" in newest[0]
    finally:
        p.stop()
        direct.drop_database(db)
