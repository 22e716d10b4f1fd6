"""POST /api/journal/restore, the restore the page's button and automation
use: enabled only by journal.restore_uri, through real pymongo against
FerretDB. A dry run writes nothing; a restore brings the documents back
byte for byte (raw BSON over a direct connection), marks the rows and is
audited under the operator's name; a second one has nothing to do.

What the caller controls, each used here: the body (ns, since, until, hold,
dry_run, force, by, and fields mongoguard does not know), the token, and
the timing (a second restore while one runs). What can go wrong: no
restore_uri, an unreachable restore_uri (with a password in it, which must
show nowhere), a document changed since."""

from __future__ import annotations

import socket
import threading
import time

import bson
import pymongo
import pytest
from bson.raw_bson import RawBSONDocument

from hold_helpers import ApiError, GuardedProxy, unique_db, wait_until
from journal_helpers import journal_policy

def policy(database: str, journal_path: str, restore_uri: str | None) -> str:
    extra = {"restore_uri": f'"{restore_uri}"'} if restore_uri else None
    return journal_policy(database, journal_path, extra, operations="delete, update, replace")


@pytest.fixture
def direct(backend):
    c = pymongo.MongoClient(backend.uri, serverSelectionTimeoutMS=5000,
                            document_class=RawBSONDocument)
    yield c
    c.close()


@pytest.fixture
def start(backend, tmp_path, direct):
    """start(restore_uri) -> (proxy, database); both are cleaned up after the test."""
    started = []

    def start_proxy(restore_uri):
        database = unique_db("restoreapi")
        g = GuardedProxy(backend.upstream, policy(database, str(tmp_path / "journal.db"),
                                                  restore_uri))
        started.append((g, database))
        return g, database
    yield start_proxy
    for g, database in started:
        direct.drop_database(database)
        g.stop()


def seed(direct, database: str, n: int) -> dict:
    docs = [{"_id": i, "n": i, "kind": "odd" if i % 2 else "even",
             "bin": bson.Binary(bytes([i]) * 4)} for i in range(1, n + 1)]
    direct[database].family.insert_many([RawBSONDocument(bson.encode(d)) for d in docs])
    return snapshot(direct, database)


def snapshot(direct, database: str) -> dict:
    return {bson.decode(d.raw)["_id"]: d.raw for d in direct[database].family.find()}


def journaled(g, database: str, rows: int) -> None:
    def enough():
        data = g.admin.request("GET", f"/api/journal?ns={database}.family")
        pending = [r for r in data["rows"] if r["operation"] != "delete" and r["after_bson"] == ""]
        return len(data["rows"]) >= rows and not pending
    wait_until(enough, 10, f"{rows} journal rows")


def restore(g, body: dict, timeout: float = 30.0):
    return g.admin.request("POST", "/api/journal/restore", body, timeout=timeout)


def test_dry_run_then_restore_brings_every_document_back(backend, start, direct):
    g, database = start(backend.uri)
    ns = f"{database}.family"
    assert g.admin.request("GET", "/api/journal?since=1h")["proxy"]["restore"] is True
    before = seed(direct, database, 10)
    family = g.client(appName="loop")[database].family
    family.delete_many({"kind": "odd"})
    family.update_one({"_id": 2}, {"$set": {"n": 20}})
    journaled(g, database, 6)
    dry = restore(g, {"by": "alice", "ns": ns, "since": "10m", "dry_run": True})
    assert dry["dry_run"] is True and dry["would_insert"] == 5 and dry["would_replace"] == 1
    assert {s["action"] for s in dry["steps"]} == {"insert", "replace"}
    assert len(snapshot(direct, database)) == 5  # a dry run writes nothing
    done = restore(g, {"by": "alice", "ns": ns, "since": "10m"})
    assert done["complete"] is True, done
    assert (done["inserted"], done["replaced"], done["conflicts"]) == (5, 1, 0)
    assert done["marked"] >= 6
    assert snapshot(direct, database) == before  # byte for byte
    # The restore is audited with the operator's name and counts.
    def audited():
        return [r for r in g.audit_records() if r.get("operator_action") == "restore"]
    records = wait_until(audited, 10, "the restore's audit record")
    assert records[0]["by"] == "alice" and records[0]["target"] == ns
    assert "inserted 5" in records[0]["details"] and "admin API" in records[0]["details"]
    # A second restore has nothing to do, and says so.
    again = restore(g, {"by": "bob", "ns": ns, "since": "10m"})
    assert again["already_restored"] == 6 and again["inserted"] == 0, again
    assert snapshot(direct, database) == before


def test_changed_documents_are_conflicts_left_alone_unless_forced(backend, start, direct):
    g, database = start(backend.uri)
    ns = f"{database}.family"
    seed(direct, database, 3)
    g.client()[database].family.delete_one({"_id": 1})
    g.client()[database].family.delete_one({"_id": 2})
    journaled(g, database, 2)
    direct[database].family.insert_one({"_id": 1, "recreated": True})
    done = restore(g, {"by": "alice", "ns": ns, "since": "10m"})
    assert done["complete"] is False and done["conflicts"] == 1 and done["inserted"] == 1
    assert [s["action"] for s in done["steps"]] == ["conflict"]
    assert bson.decode(direct[database].family.find_one({"_id": 1}).raw)["recreated"] is True
    forced = restore(g, {"by": "alice", "ns": ns, "since": "10m", "force": True})
    assert forced["forced"] == 1 and forced["replaced"] == 1, forced
    assert bson.decode(direct[database].family.find_one({"_id": 1}).raw)["n"] == 1


def test_requests_that_do_not_read_change_nothing(backend, start, direct):
    g, database = start(backend.uri)
    ns = f"{database}.family"
    seed(direct, database, 2)
    g.client()[database].family.delete_one({"_id": 1})
    journaled(g, database, 1)
    bad_bodies = [
        {"ns": ns},                                   # nobody named
        {"by": "alice"},                              # no namespace
        {"by": "alice", "ns": ns, "since": "a while"},
        {"by": "alice", "ns": ns, "sinse": "10m"},    # a typo restores nothing
        {"by": "alice", "ns": ns, "dry_run": "yes"},
        {"by": "alice", "ns": 7},
    ]
    for body in bad_bodies:
        with pytest.raises(ApiError) as refused:
            restore(g, body)
        assert refused.value.status == 400, (body, refused.value.body)
    # Without the token: 401, and nothing written.
    stranger = type(g.admin)(g.admin.base_url, "not-the-token")
    with pytest.raises(ApiError) as refused:
        stranger.request("POST", "/api/journal/restore", {"by": "x", "ns": ns})
    assert refused.value.status == 401
    assert len(snapshot(direct, database)) == 1
    # Nothing matching is no error.
    none = restore(g, {"by": "alice", "ns": f"{database}.other", "since": "10m"})
    assert none["rows"] == 0 and "nothing to restore" in none["message"]


def test_without_restore_uri_the_api_says_how(backend, start, direct):
    g, database = start(None)
    assert g.admin.request("GET", "/api/journal?since=1h")["proxy"]["restore"] is False
    with pytest.raises(ApiError) as refused:
        restore(g, {"by": "alice", "ns": f"{database}.family"})
    assert refused.value.status == 409
    assert "restore_uri" in str(refused.value.body) and "ctl restore" in str(refused.value.body)


def test_unreachable_restore_uri_writes_nothing_and_shows_no_password(backend, start, direct):
    # A server that takes the connection and never answers: the driver gives
    # up after its connect timeout.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    port = silent.getsockname()[1]
    uri = (f"mongodb://restorer:s3cr3t-pw@127.0.0.1:{port}/"
           "?connectTimeoutMS=2000&serverSelectionTimeoutMS=2000")
    g, database = start(uri)
    ns = f"{database}.family"
    seed(direct, database, 2)
    g.client()[database].family.delete_one({"_id": 1})
    journaled(g, database, 1)
    answers: dict = {}

    def slow_restore():
        try:
            restore(g, {"by": "alice", "ns": ns, "since": "10m"})
        except ApiError as e:
            answers["first"] = e
    worker = threading.Thread(target=slow_restore)
    worker.start()
    time.sleep(0.3)
    # The admin thread does not wait for the restore: holds, health and a
    # second restore (refused: one at a time) are answered meanwhile.
    started = time.monotonic()
    assert g.admin.request("GET", "/api/holds")["holds"] == []
    with pytest.raises(ApiError) as busy:
        restore(g, {"by": "bob", "ns": ns, "since": "10m"})
    assert time.monotonic() - started < 1.5
    assert busy.value.status == 409 and "running" in str(busy.value.body)
    worker.join(timeout=30)
    assert not worker.is_alive()
    first = answers["first"]
    assert first.status == 502 and "nothing written" in str(first.body), first.body
    assert "s3cr3t-pw" not in str(first.body)
    assert f"***@127.0.0.1:{port}" in str(first.body)
    assert "s3cr3t-pw" not in g.log_text()
    assert len(snapshot(direct, database)) == 1
    assert not [r for r in g.audit_records() if r.get("operator_action") == "restore"]
    silent.close()
