"""Budgets of several windows (`limit: [{documents: 10, per: 1m}, {documents:
4, per: 1h}]`) and relative windows (`percent`) through a real driver.

Each window is its own breaker, named `rule:ns@per`; a command must fit
every window, and the one that says no is named in the refusal. What the
server really kept is always counted over a direct connection.

The collection sizes percent windows are a share of are counted by the
proxy (on the client's connection, at most once a minute per namespace);
a size that cannot be counted leaves the rule's on_preflight_error to
decide.
"""

from __future__ import annotations

import subprocess
import textwrap

import pytest

from fake_upstream import FakeUpstream
from harness import PROXY_BIN
from hold_helpers import GuardedProxy
from test_budgets import direct, expect_budget_block, seed  # noqa: F401  (direct: a fixture)
from test_fleet import Fleet, redis  # noqa: F401  (redis: a fixture)


def windows_policy(database: str, windows: str, *, name: str = "windows",
                   action: str = "block") -> str:
    return f"""rules:
  - name: {name}
    match: {{ namespace: "{database}.*", operations: [delete] }}
    limit: {windows}
    action: {action}
"""


def gauge(metrics: dict[str, float], name: str, breaker: str, rule: str, per: str) -> float:
    return metrics[f'{name}{{breaker="{breaker}",rule="{rule}",per="{per}"}}']


def test_an_hour_spent_refuses_while_the_minute_has_room(backend, direct):
    database = direct.fresh("windows")
    seed(direct, database, 20)
    rules = windows_policy(database, "[{documents: 10, per: 1m}, {documents: 4, per: 1h}]")
    with GuardedProxy(backend.upstream, rules) as gp:
        coll = gp.client()[database].c
        minute, hour = f"windows:{database}.c@1m", f"windows:{database}.c@1h"
        for i in range(4):
            assert coll.delete_one({"_id": i}).deleted_count == 1
        errmsg = expect_budget_block(lambda: coll.delete_one({"_id": 4}), "windows")
        assert "budget of 4 documents per 1h spent (4 in the window)" in errmsg, errmsg
        # Nothing was forwarded: the data is intact beyond the 4 let through.
        assert direct[database].c.count_documents({}) == 16
        assert direct[database].c.find_one({"_id": 4}) == {"_id": 4, "x": 4}

        # Both windows are breakers of their own, in the API ...
        by_name = {b["name"]: b for b in gp.admin.breakers()}
        assert set(by_name) == {minute, hour}, by_name
        assert (by_name[minute]["used"], by_name[minute]["limit"],
                by_name[minute]["tripped"]) == (4, 10, False)
        assert (by_name[hour]["used"], by_name[hour]["limit"], by_name[hour]["tripped"]) == (
            4, 4, True)
        assert by_name[hour]["per_seconds"] == 3600

        # ... in `ctl breakers`, one row per window ...
        table = gp.admin.ctl("breakers")
        assert table.returncode == 0, table.stderr
        rows = {line.split()[0]: line.split() for line in table.stdout.splitlines()[1:]}
        assert rows[minute][1:4] == ["4/10", "1m", "ok"], table.stdout
        assert rows[hour][1:4] == ["4/4", "1h", "TRIPPED"], table.stdout

        # ... and on /metrics.
        metrics = gp.admin.metrics()
        assert gauge(metrics, "mongoguard_breaker_used", hour, "windows", "1h") == 4
        assert gauge(metrics, "mongoguard_breaker_limit", hour, "windows", "1h") == 4
        assert gauge(metrics, "mongoguard_breaker_tripped", hour, "windows", "1h") == 1
        assert gauge(metrics, "mongoguard_breaker_used", minute, "windows", "1m") == 4
        assert gauge(metrics, "mongoguard_breaker_tripped", minute, "windows", "1m") == 0
        assert metrics["mongoguard_breakers"] == 2
        assert metrics["mongoguard_breakers_tripped"] == 1

        # A reset of the hour window alone: it opens, the minute's count stays.
        reset = gp.admin.ctl("--as", "oncall", "reset", hour)
        assert reset.returncode == 0, reset.stderr
        after = {b["name"]: b for b in gp.admin.breakers()}
        assert (after[hour]["used"], after[hour]["tripped"]) == (0, False), after
        assert after[minute]["used"] == 4, after
        for i in range(4, 8):
            assert coll.delete_one({"_id": i}).deleted_count == 1
        expect_budget_block(lambda: coll.delete_one({"_id": 8}), "windows", "per 1h spent")
        assert direct[database].c.count_documents({}) == 12


def test_a_hold_names_the_window_that_tripped(backend, direct):
    database = direct.fresh("windows_hold")
    seed(direct, database, 10)
    rules = "holds:\n  timeout: 30s\n" + windows_policy(
        database, "[{documents: 10, per: 1m}, {documents: 2, per: 1h}]", action="hold")
    with GuardedProxy(backend.upstream, rules) as gp:
        import concurrent.futures
        coll = gp.client()[database].c
        hour = f"windows:{database}.c@1h"
        coll.delete_one({"_id": 0})
        coll.delete_one({"_id": 1})
        with concurrent.futures.ThreadPoolExecutor(1) as ex:
            held = ex.submit(coll.delete_one, {"_id": 2})
            hold = gp.admin.wait_for_hold()
            assert hold["breaker"] == hour, hold
            assert "per 1h spent" in hold["reason"], hold
            assert gp.admin.breaker(hour)["pending_holds"] == 1
            assert gp.admin.breaker(hour)["tripped"]
            assert direct[database].c.count_documents({}) == 8, "parked, not forwarded"
            out = gp.admin.breaker_action(hour, "approve-all", by="oncall")
            assert out["resolved"] == 1, out
            assert held.result(timeout=10).deleted_count == 1
        assert direct[database].c.count_documents({}) == 7


def test_the_minute_window_refuses_first_when_it_is_the_smaller(backend, direct):
    database = direct.fresh("windows_minute")
    seed(direct, database, 20)
    rules = windows_policy(database, "[{documents: 3, per: 1m}, {documents: 300, per: 1h}, "
                                     "{documents: 1000, per: 1d}]")
    with GuardedProxy(backend.upstream, rules) as gp:
        coll = gp.client()[database].c
        assert coll.delete_many({"_id": {"$lt": 3}}).deleted_count == 3
        expect_budget_block(lambda: coll.delete_one({"_id": 3}), "windows",
                            "budget of 3 documents per 1m spent")
        assert direct[database].c.count_documents({}) == 17
        used = {b["name"]: b["used"] for b in gp.admin.breakers()}
        assert used == {f"windows:{database}.c@1m": 3, f"windows:{database}.c@1h": 3,
                        f"windows:{database}.c@1d": 3}, used


def test_a_percent_window_validates(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(textwrap.dedent("""\
        rules:
          - name: windows
            match: { namespace: "app.families", operations: [delete] }
            limit:
              - { documents: 50, per: 1m, group_by: [app], ceiling: 150 }
              - { percent: 2, per: 1h, ceiling: 400, on_preflight_error: hold }
            action: hold
        """))
    result = subprocess.run([str(PROXY_BIN), "validate", str(path)], capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "warning" not in result.stdout + result.stderr

    path.write_text(textwrap.dedent("""\
        rules:
          - name: windows
            match: { namespace: "app.families", operations: [delete] }
            limit:
              - { documents: 50, per: 1m, group_by: [app] }
              - { percent: 250, per: 1h, group_by: [user] }
            action: hold
        """))
    result = subprocess.run([str(PROXY_BIN), "validate", str(path)], capture_output=True,
                            text=True, timeout=30)
    assert result.returncode != 0
    out = result.stdout + result.stderr
    assert f"{path}:6:20: limit.percent must be a number above 0 and at most 100" in out, out
    assert f"{path}:6:44: limit.group_by differs from line 5" in out, out


def test_a_percent_window_is_a_share_of_the_collection(backend, direct):
    """50% per hour of a 20-document collection is 10 documents; the size is
    counted by the proxy once and then believed for a minute."""
    database = direct.fresh("windows_pct")
    seed(direct, database, 20)
    rules = windows_policy(database, "[{documents: 100, per: 1m}, {percent: 50, per: 1h}]")
    with GuardedProxy(backend.upstream, rules) as gp:
        coll = gp.client()[database].c
        before = gp.admin.metrics().get("mongoguard_preflight_counts_total", 0)
        for i in range(10):
            assert coll.delete_one({"_id": i}).deleted_count == 1
        # The collection was counted once, not once per delete.
        assert gp.admin.metrics().get("mongoguard_preflight_counts_total", 0) == before + 1
        expect_budget_block(lambda: coll.delete_one({"_id": 10}), "windows",
                            f"budget of 10 documents (50% of {database}.c) per 1h spent")
        assert direct[database].c.count_documents({}) == 10
        hour = gp.admin.breaker(f"windows:{database}.c@1h")
        assert hour and hour["limit"] == 10 and hour["tripped"], hour


@pytest.mark.parametrize("on_error", ["block", "allow"])
def test_a_percent_window_whose_size_cannot_be_counted_follows_on_preflight_error(on_error):
    """A backend whose count fails (a scripted one: no real server refuses a
    plain count): the rule's on_preflight_error decides, and a refused delete
    never reaches the server."""
    deletes = []

    def count(msg, conn):
        return [conn.server.reply(msg, {"ok": 0.0, "errmsg": "count is broken here", "code": 1})]

    def delete(msg, conn):
        deletes.append(msg)
        n = len(msg.body.get("deletes") or msg.sequences.get("deletes") or [])
        return [conn.server.reply(msg, {"n": n, "ok": 1.0})]

    rules = windows_policy("pctfake", "[{documents: 10, per: 1m}, {percent: 50, per: 1h, "
                                      f"on_preflight_error: {on_error}}}]")
    with FakeUpstream({"count": count, "delete": delete}) as fake, \
            GuardedProxy(fake.uri, rules) as gp:
        coll = gp.client()["pctfake"].c
        if on_error == "block":
            expect_budget_block(lambda: coll.delete_one({"_id": 0}), "windows",
                                "the size of pctfake.c is unknown")
            assert deletes == [], "a refused delete reached the server"
            assert gp.admin.breakers() == [], "nothing was counted"
        else:
            # Allowed: the percent window is not counted, the minute window is.
            for i in range(10):
                assert coll.delete_one({"_id": i}).deleted_count == 1
            expect_budget_block(lambda: coll.delete_one({"_id": 10}), "windows",
                                "budget of 10 documents per 1m spent")
            assert len(deletes) == 10
            assert [b["name"] for b in gp.admin.breakers()] == ["windows:pctfake.c@1m"]


def test_two_proxies_share_an_hour_window(backend, redis, direct):  # noqa: F811
    database = direct.fresh("fleet_windows")
    direct[database].c.insert_many([{"_id": i} for i in range(30)])
    fleet = Fleet(backend, redis, database, 0, "block",
                  limit="[{documents: 100, per: 1m}, {documents: 6, per: 1h}]", proxies=2)
    try:
        a, b = (client[database].c for client in fleet.clients)
        for i in range(6):
            assert (a if i % 2 == 0 else b).delete_one({"_id": i}).deleted_count == 1
        # Each proxy passed 3; the shared hour has seen 6, at either proxy.
        for coll in (a, b):
            expect_budget_block(lambda: coll.delete_one({"_id": 6}), "fleet-budget",
                                "budget of 6 documents per 1h spent")
        assert direct[database].c.count_documents({}) == 24
        hour = f"fleet-budget:{database}.c@1h"
        minute = f"fleet-budget:{database}.c@1m"
        for p in fleet.proxies:
            shown = {x["name"]: x for x in p.admin.breakers()}
            assert shown[hour]["used"] == 6 and shown[hour]["tripped"], shown
            assert shown[hour]["limit"] == 6 and shown[hour]["per_seconds"] == 3600, shown
            assert shown[minute]["used"] == 6 and not shown[minute]["tripped"], shown
        # A reset of the hour at one proxy opens it at both.
        fleet.proxies[1].admin.breaker_action(hour, "reset")
        assert b.delete_one({"_id": 6}).deleted_count == 1
        assert a.delete_one({"_id": 7}).deleted_count == 1
        assert direct[database].c.count_documents({}) == 22
    finally:
        fleet.stop()


def test_two_proxies_share_a_day_and_a_percent_window(backend, redis, direct):  # noqa: F811
    """Every window kind is one shared window in fleet mode: a day window and
    a percent window (20% of 30 documents = 6), each proxy sizing it from its
    own count of the same collection."""
    database = direct.fresh("fleet_pct")
    direct[database].c.insert_many([{"_id": i} for i in range(30)])
    fleet = Fleet(backend, redis, database, 0, "block",
                  limit="[{documents: 100, per: 1d}, {percent: 20, per: 1h}]", proxies=2)
    try:
        a, b = (client[database].c for client in fleet.clients)
        # Each proxy counts the collection once (30 documents) and believes
        # that for a minute; a delete of nothing settles at 0.
        for coll in (a, b):
            assert coll.delete_one({"_id": -1}).deleted_count == 0
        for i in range(6):
            assert (a if i % 2 == 0 else b).delete_one({"_id": i}).deleted_count == 1
        for coll in (a, b):
            expect_budget_block(lambda: coll.delete_one({"_id": 6}), "fleet-budget",
                                f"budget of 6 documents (20% of {database}.c) per 1h spent")
        assert direct[database].c.count_documents({}) == 24
        day = f"fleet-budget:{database}.c@1d"
        hour = f"fleet-budget:{database}.c@1h"
        for p in fleet.proxies:
            shown = {x["name"]: x for x in p.admin.breakers()}
            assert shown[hour]["used"] == 6 and shown[hour]["limit"] == 6, shown
            assert shown[hour]["tripped"], shown
            assert shown[day]["used"] == 6 and not shown[day]["tripped"], shown
    finally:
        fleet.stop()
