"""The incident that started mongoguard, replayed through the proxy.

2,000 mongoengine `Family` documents; then, through the proxy,

    for family in Family.objects:
        family.delete()

with a budget of 50 deleted documents per minute and `action: hold`. The
51st delete is held, the loop stalls, the on-call operator rejects the hold
over the admin API, the loop dies with mongoguard's refusal, and 1,950
families are still there. The loop, the model and the seeding are the demo's
(deploy/demo/incident.py), which is also run end to end unattended.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pymongo
import pytest
from pymongo.errors import OperationFailure

from harness import PROXY_BIN, ROOT
from hold_helpers import GuardedProxy, check_hold_error, find_operation_failure, unique_db

sys.path.insert(0, str(ROOT / "deploy" / "demo"))
import incident  # noqa: E402  (deploy/demo/incident.py)

FAMILIES = 2000
BUDGET = 50
RULE = "families-delete-budget"


def incident_policy(database: str, preflight: bool = False, journal: str = "") -> str:
    journal_section = f"journal:\n          path: {journal}\n" if journal else ""
    return f"""
        {journal_section}        holds:
          timeout: 10m
        rules:
          - name: {RULE}
            match: {{ namespace: "{database}.*", operations: [delete] }}
            limit: {{ documents: {BUDGET}, per: 1m, preflight: {str(preflight).lower()} }}
            action: hold
            message: "more than {BUDGET} documents deleted in a minute"
    """


@pytest.fixture
def families(backend):
    database = unique_db("incident")
    direct = pymongo.MongoClient(backend.uri, serverSelectionTimeoutMS=5000)
    incident.seed(direct, database, FAMILIES)
    assert direct[database].family.count_documents({}) == FAMILIES
    try:
        yield database, direct
    finally:
        direct.drop_database(database)
        direct.close()


# mongoengine's Document.delete() sends a multi-document delete filtered by
# _id: without pre-flight its size is learnt from the reply, with pre-flight
# a count measures it first. The loop must stop at 50 either way.
@pytest.mark.parametrize("preflight", [False, True], ids=["counted", "preflight"])
def test_family_delete_loop_is_held_and_rejected(backend, families, preflight):
    database, direct = families
    ns = f"{database}.family"
    count = lambda: direct[database].family.count_documents({})  # noqa: E731
    with GuardedProxy(backend.upstream, incident_policy(database, preflight)) as gp:
        loop = incident.DeadlyLoop(gp.uri, database)
        loop.start()
        try:
            hold = gp.admin.wait_for_hold(lambda h: h["ns"] == ns, timeout=30)
            assert hold["rule"] == RULE and hold["operation"] == "delete", hold
            assert hold["breaker"] == f"{RULE}:{ns}", hold
            assert hold["documents_in_window"] == BUDGET and hold["limit"] == BUDGET, hold
            assert hold["app"] == "python-shell", hold
            assert len(gp.admin.holds()) == 1

            # Stalled: nothing more is deleted while the hold waits.
            before = count()
            assert before >= FAMILIES - BUDGET, before
            end = time.monotonic() + 1.0
            while time.monotonic() < end:
                assert count() == before
                time.sleep(0.1)
            assert loop.is_alive() and loop.deleted == BUDGET, loop.deleted
            assert loop.stalled_for() >= 1.0

            ctl = gp.admin.ctl("holds")
            assert ctl.returncode == 0, ctl.stderr
            assert str(hold["id"]) in ctl.stdout and ns in ctl.stdout, ctl.stdout
            # What the held delete would affect and the budget behind it, by name.
            assert RULE in ctl.stdout and "1 document(s)" in ctl.stdout, ctl.stdout
            assert f"{RULE}:{ns}" in ctl.stdout and "app=python-shell" in ctl.stdout, ctl.stdout
            assert f"{BUDGET}/{BUDGET}" not in ctl.stdout, ctl.stdout

            answer = gp.admin.reject(hold["id"], by="oncall")
            assert answer["outcome"] == "rejected", answer
            loop.join(timeout=10)
            assert not loop.is_alive(), "the loop kept going after the rejection"
        finally:
            if loop.is_alive():
                for h in gp.admin.holds():
                    gp.admin.reject(h["id"], by="test-cleanup")
                loop.join(timeout=10)

        failure = find_operation_failure(loop.error)
        assert failure is not None, f"the loop ended with {loop.error!r}"
        assert isinstance(failure, OperationFailure)
        errmsg = check_hold_error(failure, RULE, operation="delete", ns=ns,
                                  contains="rejected by oncall")
        assert errmsg == f"mongoguard: delete on {ns} held by rule '{RULE}': rejected by oncall"
        assert loop.deleted == BUDGET
        assert count() == FAMILIES - BUDGET
        b = gp.admin.breaker(f"{RULE}:{ns}")
        assert b["used"] == BUDGET and b["tripped"], b
        log = gp.wait_for_log(f"hold {hold['id']} rejected by oncall")
        assert (f"pre-flight count for {ns}: 1" in log) == preflight
        decisions = gp.admin.decisions(100)
        assert any(d.get("outcome") == "rejected by oncall" for d in decisions), decisions[:3]
        assert any(d.get("operator_action") == "reject" and d.get("by") == "oncall"
                   for d in decisions), decisions[:3]


def test_incident_demo_runs_unattended(backend, families):
    database, direct = families
    with GuardedProxy(backend.upstream, incident_policy(database)) as gp:
        result = subprocess.run(
            [sys.executable, str(ROOT / "deploy" / "demo" / "incident.py"),
             "--proxy", gp.uri, "--direct", backend.uri, "--db", database,
             "--count", str(FAMILIES), "--admin", gp.admin.base_url,
             "--token-file", gp.admin.token_file, "--auto-reject", "--operator", "oncall",
             "--wait", "60"],
            capture_output=True, text=True, timeout=90)
        out = result.stdout
        assert result.returncode == 0, out + result.stderr
        assert "the loop has stalled after 50 deletes" in out, out
        assert f"held by rule '{RULE}'" in out and "ctl" in out, out
        assert "code 13" in out and "rejected by oncall" in out, out
        assert f"50 families deleted through the proxy; 1950 of {FAMILIES} survived." in out, out
        assert direct[database].family.count_documents({}) == FAMILIES - BUDGET


def test_incident_demo_ends_with_every_family_back(backend, families, tmp_path):
    """The replay with the journal on: 50 deleted, the hold rejected, one
    `ctl restore` and all 2,000 are back, each byte-identical to before."""
    database, direct = families
    policy = incident_policy(database, journal=str(tmp_path / "journal.db"))
    with GuardedProxy(backend.upstream, policy) as gp:
        result = subprocess.run(
            [sys.executable, str(ROOT / "deploy" / "demo" / "incident.py"),
             "--proxy", gp.uri, "--direct", backend.uri, "--db", database,
             "--count", str(FAMILIES), "--admin", gp.admin.base_url,
             "--token-file", gp.admin.token_file, "--auto-reject", "--operator", "oncall",
             "--wait", "60", "--restore", str(PROXY_BIN)],
            capture_output=True, text=True, timeout=150)
        out = result.stdout
        assert result.returncode == 0, out + result.stderr
        assert f"50 families deleted through the proxy; 1950 of {FAMILIES} survived." in out, out
        assert "restored 50 document(s)" in out, out
        assert (f"{FAMILIES} of {FAMILIES} families there after the restore; {FAMILIES} "
                "byte-identical") in out, out
        assert direct[database].family.count_documents({}) == FAMILIES
