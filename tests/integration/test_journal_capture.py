"""The journal's capture, through real pymongo against FerretDB: what a
journaled rule lets through is read on the client's connection before it is
forwarded, and the SQLite file then holds exactly the documents the write
affected (compared with what a direct connection saw before and after).

What the client controls, each used against the capture here: the
statement's filter, limit (one or all), sort (findAndModify picks by it),
several statements in one command, unacknowledged writes (w: 0), updates
whose after-image must be kept. And what the operator controls: an
unwritable journal with `on_error: hold` holds the write and nothing reaches
the database; `journal: false` keeps a rule out of the journal."""

from __future__ import annotations

import os
import stat
import time

import bson
import pymongo
import pytest
from pymongo import DeleteOne, ReplaceOne, UpdateOne
from pymongo.errors import OperationFailure

from hold_helpers import GuardedProxy, find_operation_failure, unique_db, wait_until
from journal_helpers import RULE, journal_policy, rows, wait_rows

def policy(database: str, journal_path: str, rule_extra: str = "") -> str:
    return journal_policy(database, journal_path, rule_extra=rule_extra)


@pytest.fixture
def guarded(backend, tmp_path):
    database = unique_db("journal")
    journal_path = tmp_path / "journal.db"
    g = GuardedProxy(backend.upstream, policy(database, str(journal_path)))
    direct = pymongo.MongoClient(backend.uri, serverSelectionTimeoutMS=5000)
    try:
        yield g, direct, database, journal_path
    finally:
        direct.drop_database(database)
        direct.close()
        g.stop()


def seed(direct, database: str, n: int = 6) -> list[dict]:
    docs = [{"_id": i, "n": i, "kind": "even" if i % 2 == 0 else "odd"} for i in range(1, n + 1)]
    direct[database].family.insert_many(docs)
    return docs


def test_deletes_keep_exactly_the_documents_they_removed(guarded):
    g, direct, database, journal_path = guarded
    docs = seed(direct, database)
    family = g.client(appName="cleanup")[database].family
    assert family.delete_one({"_id": 1}).deleted_count == 1
    assert family.delete_many({"kind": "even"}).deleted_count == 3
    ns = f"{database}.family"
    got = wait_rows(journal_path, ns, 4)
    assert [r["before"] for r in got] == [docs[0], docs[1], docs[3], docs[5]]
    assert all(r["op"] == "delete" and r["rule"] == RULE and r["after"] is None for r in got)
    assert all(r["app"] == "cleanup" for r in got)
    assert got[0]["filter"] == {"_id": 1}
    assert got[1]["filter"] == {"kind": "even"}
    assert [r["id"] for r in got] == [{"_id": d["_id"]} for d in (docs[0], docs[1], docs[3], docs[5])]
    # What is left is what the journal does not hold.
    assert sorted(d["_id"] for d in direct[database].family.find()) == [3, 5]
    assert stat.S_IMODE(os.stat(journal_path).st_mode) == 0o600


def test_updates_keep_the_before_and_the_after_image(guarded):
    g, direct, database, journal_path = guarded
    seed(direct, database, 4)
    family = g.client()[database].family
    assert family.update_one({"_id": 2}, {"$set": {"n": 20}}).modified_count == 1
    assert family.replace_one({"_id": 3}, {"name": "replaced"}).modified_count == 1
    ns = f"{database}.family"
    def with_after_images():
        got = rows(journal_path, ns)
        return got if len(got) == 2 and all(r["after"] for r in got) else None
    got = wait_until(with_after_images, 10, "two rows with after-images")
    assert got[0]["before"] == {"_id": 2, "n": 2, "kind": "even"}
    assert got[0]["after"] == {"_id": 2, "n": 20, "kind": "even"}
    assert got[0]["op"] == "update"
    assert got[1]["before"] == {"_id": 3, "n": 3, "kind": "odd"}
    assert got[1]["after"] == {"_id": 3, "name": "replaced"}
    assert got[1]["op"] == "replace"
    # The after-images are what the database holds now.
    assert direct[database].family.find_one({"_id": 2}) == got[0]["after"]


def test_find_and_modify_journals_the_document_its_sort_picks(guarded):
    g, direct, database, journal_path = guarded
    seed(direct, database)
    family = g.client()[database].family
    removed = family.find_one_and_delete({"kind": "odd"}, sort=[("n", pymongo.DESCENDING)])
    assert removed["_id"] == 5
    ns = f"{database}.family"
    got = wait_rows(journal_path, ns, 1)
    assert len(got) == 1
    assert got[0]["before"] == removed
    assert got[0]["op"] == "findAndModify"


def test_several_statements_in_one_command_each_journal_their_own(guarded):
    g, direct, database, journal_path = guarded
    docs = seed(direct, database)
    family = g.client()[database].family
    result = family.bulk_write([DeleteOne({"_id": 1}), DeleteOne({"_id": 2}),
                                DeleteOne({"kind": "odd"})], ordered=True)
    assert result.deleted_count == 3
    ns = f"{database}.family"
    got = wait_rows(journal_path, ns, 3)
    # All reads come before the command runs, yet the third statement's read
    # does not take _id 1 (the first odd document, which the first statement
    # removes): it journals _id 3, the one the server deletes.
    assert [r["before"] for r in got] == [docs[0], docs[1], docs[2]]
    remaining = sorted(d["_id"] for d in direct[database].family.find())
    assert remaining == [4, 5, 6]


def test_unacknowledged_writes_are_journaled_too(guarded):
    g, direct, database, journal_path = guarded
    docs = seed(direct, database)
    family = g.client(w=0)[database].family.with_options(
        write_concern=pymongo.WriteConcern(w=0))
    family.delete_one({"_id": 4})
    ns = f"{database}.family"
    got = wait_rows(journal_path, ns, 1)
    assert got[0]["before"] == docs[3]
    wait_until(lambda: direct[database].family.find_one({"_id": 4}) is None, 10,
               "the unacknowledged delete to land")


def test_an_unwritable_journal_holds_the_write_and_nothing_reaches_the_database(backend):
    database = unique_db("journal_fail")
    direct = pymongo.MongoClient(backend.uri, serverSelectionTimeoutMS=5000)
    seed(direct, database, 3)
    # No process can create a file under /proc: the journal never opens.
    g = GuardedProxy(backend.upstream,
                     policy(database, "/proc/mongoguard-journal-test/journal.db"))
    try:
        family = g.client(socketTimeoutMS=30_000)[database].family
        import threading
        outcome: dict = {}

        def run():
            try:
                family.delete_one({"_id": 1})
                outcome["ok"] = True
            except Exception as e:  # noqa: BLE001  (checked below)
                outcome["error"] = e

        t = threading.Thread(target=run)
        t.start()
        hold = g.admin.wait_for_hold(timeout=15)
        assert hold["rule"] == RULE
        assert "could not be journaled" in hold.get("reason", "") or \
            "could not be journaled" in str(hold)
        # Held: the document is still there, and the hold shows it.
        assert direct[database].family.count_documents({"_id": 1}) == 1
        assert hold["preview"]["documents"] == [{"_id": 1, "n": 1, "kind": "odd"}]
        shown = g.admin.ctl("holds")
        assert f"hold {hold['id']} would affect 1 document(s):" in shown.stdout, shown.stdout
        assert '"kind":"odd"' in shown.stdout, shown.stdout
        shown = g.admin.ctl("show", str(hold["id"]))
        assert shown.returncode == 0, shown
        assert "reason      its before-images could not be journaled" in shown.stdout
        assert "affects     1 document(s)\n" in shown.stdout, shown.stdout
        assert 'sample      1 document(s):\n  {"_id":1,"kind":"odd","n":1}' in shown.stdout, \
            shown.stdout
        g.admin.reject(hold["id"])
        t.join(20)
        assert not t.is_alive()
        failure = find_operation_failure(outcome.get("error"))
        assert isinstance(failure, OperationFailure), outcome
        assert failure.code == 13
        assert direct[database].family.count_documents({}) == 3
        metrics = g.admin.metrics()
        assert metrics.get("mongoguard_journal_failures_total", 0) >= 1
    finally:
        direct.drop_database(database)
        direct.close()
        g.stop()


def test_a_rule_with_journal_false_keeps_nothing(backend, tmp_path):
    database = unique_db("journal_off")
    journal_path = tmp_path / "journal.db"
    direct = pymongo.MongoClient(backend.uri, serverSelectionTimeoutMS=5000)
    seed(direct, database, 3)
    g = GuardedProxy(backend.upstream, policy(database, str(journal_path),
                                               rule_extra="journal: false"))
    try:
        family = g.client()[database].family
        assert family.delete_many({}).deleted_count == 3
        time.sleep(0.5)  # two writer ticks: anything queued would be committed
        wait_until(lambda: journal_path.exists(), 10, "the journal file")
        assert rows(journal_path, f"{database}.family") == []
    finally:
        direct.drop_database(database)
        direct.close()
        g.stop()


def test_a_corrupt_journal_is_set_aside_at_start_up_and_a_new_one_used(backend, tmp_path):
    database = unique_db("journal_corrupt")
    journal_path = tmp_path / "journal.db"
    journal_path.write_bytes(b"SQLite format 3\x00" + os.urandom(8192))  # a damaged file
    direct = pymongo.MongoClient(backend.uri, serverSelectionTimeoutMS=5000)
    seed(direct, database, 2)
    g = GuardedProxy(backend.upstream, policy(database, str(journal_path)))
    try:
        g.wait_for_log("is damaged", timeout=10)
        assert list(tmp_path.glob("journal.db.corrupt-*")), list(tmp_path.iterdir())
        g.client()[database].family.delete_one({"_id": 1})
        got = wait_rows(journal_path, f"{database}.family", 1)
        assert got[0]["before"]["_id"] == 1
    finally:
        direct.drop_database(database)
        direct.close()
        g.stop()


def test_document_values_never_reach_the_log_and_the_api_needs_the_token(guarded):
    g, direct, database, journal_path = guarded
    secret = "s3cr3t-" + os.urandom(6).hex()
    direct[database].family.insert_one({"_id": 1, "ssn": secret})
    family = g.client()[database].family
    family.update_one({"ssn": secret}, {"$set": {"ssn": secret + "-new"}})
    family.delete_one({"_id": 1})
    wait_rows(journal_path, f"{database}.family", 2)
    # The proxy runs at --log-level debug in these tests: still no values.
    assert secret not in g.log_text()
    import urllib.error
    import urllib.request
    try:
        urllib.request.urlopen(f"{g.admin.base_url}/api/journal", timeout=5)
        raise AssertionError("GET /api/journal answered without the token")
    except urllib.error.HTTPError as e:
        assert e.code == 401
    listed = g.admin.request("GET", f"/api/journal?ns={database}.family")
    assert [r["operation"] for r in listed["rows"]] == ["delete", "update"]
    assert listed["rows"][1]["before"]["ssn"] == secret  # the token holder sees values
    bad = g.admin.ctl("journal", "--until", "later")
    assert bad.returncode == 2 and "--until" in bad.stderr


def test_a_write_the_server_refuses_leaves_no_rows(guarded):
    """Rows for a command that did nothing would only take room: a client
    could fill the journal with refused commands until max_size pushes out
    what it really deleted."""
    g, direct, database, journal_path = guarded
    seed(direct, database, 4)
    db = g.client()[database]
    for _ in range(3):
        with pytest.raises(OperationFailure):
            db.command({"delete": "family", "deletes": [{"q": {}, "limit": 2}]})
    db.family.delete_one({"_id": 2})
    got = wait_rows(journal_path, f"{database}.family", 1)
    time.sleep(0.5)  # two writer ticks: the refused commands' rows are gone by now
    got = rows(journal_path, f"{database}.family")
    assert [r["before"]["_id"] for r in got] == [2], got
    assert direct[database].family.count_documents({}) == 3
