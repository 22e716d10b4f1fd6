"""Damage budgets through a real driver: what is counted, when a budget
stops an operation, and how it opens again.

Rules here use `action: block` (an immediate refusal) unless the hold itself
is the point; the budget accounting is the same either way. What the server
really deleted is always checked over a direct connection.
"""

from __future__ import annotations

import time

import pymongo
import pytest
from pymongo import DeleteOne
from pymongo.errors import OperationFailure

from hold_helpers import UNAUTHORIZED, ApiError, GuardedProxy, unique_db, wait_until


def budget_rule(name: str, database: str, documents: int, per: str = "1m", *,
                action: str = "block", preflight: bool = False, group_by: str = "",
                operations: str = "[delete]", auto_resume: bool = False) -> str:
    extra = f", group_by: {group_by}" if group_by else ""
    if auto_resume:
        extra += ", auto_resume: true"
    return f"""
          - name: {name}
            match: {{ namespace: "{database}.*", operations: {operations} }}
            limit: {{ documents: {documents}, per: {per}, preflight: {str(preflight).lower()}{extra} }}
            action: {action}
    """


def policy(*rules: str) -> str:
    return "rules:\n" + "".join(rules)


@pytest.fixture
def direct(backend):
    client = pymongo.MongoClient(backend.uri, serverSelectionTimeoutMS=5000)
    made: list[str] = []
    client.fresh = lambda prefix: made.append(unique_db(prefix)) or made[-1]
    try:
        yield client
    finally:
        for name in made:
            client.drop_database(name)
        client.close()


def seed(direct, database: str, count: int, collection: str = "c") -> None:
    direct[database][collection].insert_many([{"_id": i, "x": i} for i in range(count)])


def expect_budget_block(call, rule: str, contains: str | None = None) -> str:
    with pytest.raises(OperationFailure) as caught:
        call()
    err = caught.value
    errmsg = (err.details or {}).get("errmsg", str(err))
    assert err.code == UNAUTHORIZED, err.details
    assert f"blocked by rule '{rule}'" in errmsg, errmsg
    if contains:
        assert contains in errmsg, errmsg
    assert not (err.details or {}).get("errorLabels"), err.details
    return errmsg


def test_reported_n_is_counted(backend, direct):
    database = direct.fresh("budget_n")
    seed(direct, database, 12)
    with GuardedProxy(backend.upstream, policy(budget_rule("b10", database, 10))) as gp:
        coll = gp.client()[database].c
        assert coll.delete_many({"x": {"$lt": 7}}).deleted_count == 7
        name = f"b10:{database}.c"
        b = gp.admin.breaker(name)
        assert b["used"] == 7 and b["limit"] == 10 and not b["tripped"], b
        # Matching nothing costs nothing.
        assert coll.delete_many({"x": {"$gt": 100}}).deleted_count == 0
        assert gp.admin.breaker(name)["used"] == 7
        # Three more fit exactly; the budget is then spent and the breaker trips.
        assert coll.delete_many({"x": {"$in": [7, 8, 9]}}).deleted_count == 3
        b = gp.admin.breaker(name)
        assert b["used"] == 10 and b["tripped"], b
        expect_budget_block(lambda: coll.delete_one({"_id": 10}), "b10",
                            contains="budget of 10 documents per 1m spent")
        assert direct[database].c.count_documents({}) == 2
        gp.wait_for_log(f"breaker {name} tripped")


def test_preflight_count_refuses_before_forwarding(backend, direct):
    with_pf = direct.fresh("budget_pf")
    without_pf = direct.fresh("budget_nopf")
    for database in (with_pf, without_pf):
        seed(direct, database, 60)
    rules = policy(budget_rule("pf", with_pf, 40, preflight=True),
                   budget_rule("nopf", without_pf, 40, preflight=False))
    with GuardedProxy(backend.upstream, rules) as gp:
        client = gp.client()
        for database in (with_pf, without_pf):
            assert client[database].c.delete_many({"x": {"$lt": 30}}).deleted_count == 30

        # Pre-flight: the count, capped at what is left plus one, finds more than
        # the 10 left: refused, nothing deleted.
        errmsg = expect_budget_block(
            lambda: client[with_pf].c.delete_many({"x": {"$gte": 30}}), "pf",
            contains="would affect at least 11 documents, more than the 10 left of the budget of 40")
        assert direct[with_pf].c.count_documents({}) == 30, errmsg
        b = gp.admin.breaker(f"pf:{with_pf}.c")
        assert b["used"] == 30 and not b["tripped"], b  # one oversized request trips nothing
        # A smaller one still fits.
        assert client[with_pf].c.delete_many({"x": {"$lt": 35}}).deleted_count == 5
        gp.wait_for_log(f"pre-flight count for {with_pf}.c: 30")

        # Without pre-flight the size is unknown: it is charged all that is left
        # (10), passes, and the reply's 30 is counted in full.
        assert client[without_pf].c.delete_many({"x": {"$gte": 30}}).deleted_count == 30
        assert direct[without_pf].c.count_documents({}) == 0
        b = gp.admin.breaker(f"nopf:{without_pf}.c")
        assert b["used"] == 60 and b["tripped"], b


def test_find_one_and_delete_loop_is_stopped(backend, direct):
    database = direct.fresh("budget_fam")
    seed(direct, database, 20)
    with GuardedProxy(backend.upstream, policy(budget_rule("fam", database, 5))) as gp:
        coll = gp.client()[database].c
        deleted = 0
        with pytest.raises(OperationFailure) as caught:
            for _ in range(20):
                assert coll.find_one_and_delete({}) is not None
                deleted += 1
        assert deleted == 5
        assert caught.value.code == UNAUTHORIZED, caught.value.details
        assert "blocked by rule 'fam'" in caught.value.details["errmsg"]
        assert direct[database].c.count_documents({}) == 15
        assert gp.admin.breaker(f"fam:{database}.c")["used"] == 5


def test_bulk_write_deletes_are_counted_per_statement(backend, direct):
    database = direct.fresh("budget_bulk")
    seed(direct, database, 30)
    with GuardedProxy(backend.upstream, policy(budget_rule("bulk", database, 10))) as gp:
        coll = gp.client()[database].c
        assert coll.delete_many({"x": {"$lt": 5}}).deleted_count == 5  # 5 left
        # One delete command with 8 limit-1 statements: 8 known > 5 left.
        with pytest.raises(OperationFailure) as caught:
            coll.bulk_write([DeleteOne({"_id": i}) for i in range(5, 13)])
        err = caught.value
        assert err.code == UNAUTHORIZED, err.details
        assert "would affect 8 documents, more than the 5 left" in str(err.details), err.details
        assert direct[database].c.count_documents({}) == 25, "part of a refused bulk ran"
        # Exactly what is left passes, and spends the budget.
        result = coll.bulk_write([DeleteOne({"_id": i}) for i in range(5, 10)])
        assert result.deleted_count == 5
        b = gp.admin.breaker(f"bulk:{database}.c")
        assert b["used"] == 10 and b["tripped"], b
        with pytest.raises(OperationFailure):
            coll.bulk_write([DeleteOne({"_id": 10})])
        assert direct[database].c.count_documents({}) == 20


def test_group_by_app_keeps_apps_apart(backend, direct):
    database = direct.fresh("budget_apps")
    seed(direct, database, 20)
    rules = policy(budget_rule("per-app", database, 3, group_by="[app]"))
    with GuardedProxy(backend.upstream, rules) as gp:
        a = gp.client(appname="a")[database].c
        b = gp.client(appname="b")[database].c
        for i in range(3):
            assert a.delete_one({"_id": i}).deleted_count == 1
        expect_budget_block(lambda: a.delete_one({"_id": 3}), "per-app")
        # App b has its own budget.
        for i in range(10, 13):
            assert b.delete_one({"_id": i}).deleted_count == 1
        expect_budget_block(lambda: b.delete_one({"_id": 13}), "per-app")
        names = {x["name"]: x for x in gp.admin.breakers()}
        ns = f"{database}.c"
        assert names[f"per-app:{ns}:app=a"]["used"] == 3, names
        assert names[f"per-app:{ns}:app=b"]["used"] == 3, names
        assert direct[database].c.count_documents({}) == 14


def test_window_drains_and_deletes_pass_again(backend, direct):
    """With limit.auto_resume, a drained window closes the breaker by itself
    (test_on_call.py: without it, the breaker waits for an operator)."""
    database = direct.fresh("budget_drain")
    seed(direct, database, 10)
    rule = budget_rule("short", database, 3, "2s", auto_resume=True)
    with GuardedProxy(backend.upstream, policy(rule)) as gp:
        coll = gp.client()[database].c
        for i in range(3):
            coll.delete_one({"_id": i})
        expect_budget_block(lambda: coll.delete_one({"_id": 3}), "short",
                            contains="budget of 3 documents per 2s spent")
        tripped = time.monotonic()
        assert direct[database].c.count_documents({"_id": 3}) == 1
        time.sleep(2.3)
        assert coll.delete_one({"_id": 3}).deleted_count == 1
        assert time.monotonic() - tripped < 5
        b = gp.admin.breaker(f"short:{database}.c")
        assert b["used"] == 1 and not b["tripped"], b


def test_operator_reset_and_grant_open_the_breaker(backend, direct):
    database = direct.fresh("budget_ops")
    seed(direct, database, 20)
    with GuardedProxy(backend.upstream, policy(budget_rule("ops", database, 2))) as gp:
        coll = gp.client()[database].c
        name = f"ops:{database}.c"
        coll.delete_one({"_id": 0})
        coll.delete_one({"_id": 1})
        expect_budget_block(lambda: coll.delete_one({"_id": 2}), "ops")

        # reset: the window is emptied and the breaker closed.
        reset = gp.admin.breaker_action(name, "reset", by="oncall")
        assert reset["breaker"]["used"] == 0 and not reset["breaker"]["tripped"], reset
        assert coll.delete_one({"_id": 2}).deleted_count == 1
        assert coll.delete_one({"_id": 3}).deleted_count == 1
        expect_budget_block(lambda: coll.delete_one({"_id": 4}), "ops")

        # grant: two more documents, not counted against the budget.
        granted = gp.admin.breaker_action(name, "grant", by="oncall", documents=2)
        assert granted["breaker"]["allowance"]["documents"] == 2, granted
        assert not granted["breaker"]["tripped"], granted
        assert coll.delete_one({"_id": 4}).deleted_count == 1
        assert coll.delete_one({"_id": 5}).deleted_count == 1
        expect_budget_block(lambda: coll.delete_one({"_id": 6}), "ops")
        assert direct[database].c.count_documents({}) == 14

        # Unknown breakers are 404s, and every action names its operator.
        with pytest.raises(ApiError) as missing:
            gp.admin.breaker_action("nope:x.y", "reset", by="oncall")
        assert missing.value.status == 404
        actions = [d for d in gp.admin.decisions(100) if d.get("operator_action")]
        assert {(d["operator_action"], d["by"]) for d in actions} >= {("reset", "oncall"),
                                                                       ("grant", "oncall")}


def test_spent_budget_with_hold_parks_until_approved(backend, direct):
    """With `action: hold`, the next delete after the budget is spent is
    parked; approve-all on the breaker lets every parked one through."""
    database = direct.fresh("budget_hold")
    seed(direct, database, 10)
    rules = "holds:\n  timeout: 30s\n" + policy(budget_rule("held", database, 2, action="hold"))
    with GuardedProxy(backend.upstream, rules) as gp:
        import concurrent.futures
        c1 = gp.client()[database].c
        c2 = gp.client()[database].c
        c1.delete_one({"_id": 0})
        c1.delete_one({"_id": 1})
        with concurrent.futures.ThreadPoolExecutor(2) as ex:
            f1 = ex.submit(c1.delete_one, {"_id": 2})
            f2 = ex.submit(c2.delete_one, {"_id": 3})
            wait_until(lambda: len(gp.admin.holds()) == 2, 10, "two holds")
            name = f"held:{database}.c"
            b = [x for x in gp.admin.breakers() if x["name"] == name][0]
            assert b["tripped"] and b["pending_holds"] == 2, b
            out = gp.admin.breaker_action(name, "approve-all", by="oncall")
            assert out["resolved"] == 2, out
            assert f1.result(timeout=10).deleted_count == 1
            assert f2.result(timeout=10).deleted_count == 1
        assert direct[database].c.count_documents({}) == 6
        wait_until(lambda: gp.admin.breaker(name)["used"] == 4, 5, "approved deletes counted")


def test_verdicts_metric_names_the_budget_that_let_an_operation_through(backend, direct):
    database = direct.fresh("budget_verdict")
    seed(direct, database, 5)
    with GuardedProxy(backend.upstream,
                      policy(budget_rule("families-delete-budget", database, 50))) as gp:
        assert gp.client()[database].c.delete_one({"_id": 1}).deleted_count == 1
        metrics = gp.admin.metrics()
        allowed = 'mongoguard_verdicts_total{rule="families-delete-budget",verdict="allow"}'
        assert metrics.get(allowed) == 1, {k: v for k, v in metrics.items() if "verdicts" in k}
        assert 'mongoguard_verdicts_total{rule="",verdict="allow"}' not in metrics
