"""The journal's limits and faults, through real pymongo against FerretDB:
a full disk (a file-size limit on the proxy's process, RLIMIT_FSIZE) with
`on_error: hold` holds the write and nothing reaches the database; with
`on_error: forward` the write goes through, logged and counted; `max_size`
drops the oldest documents first, counted and logged, keeping the newest;
`retention` removes what is older, at start-up too.

What the operator controls, each used here: on_error, max_size (1 MiB, the
smallest allowed), retention; what the client controls: how much one
command deletes (one small document, then megabytes at once)."""

from __future__ import annotations

import sqlite3
import threading
import time

import pymongo
import pytest
from pymongo.errors import OperationFailure

from hold_helpers import GuardedProxy, find_operation_failure, unique_db, wait_until
from journal_helpers import RULE, journal_policy, rows, wait_rows

BIG = 100 * 1024  # bytes of payload per big document
LIMIT = 2 * 1024 * 1024  # the proxy's file-size limit in the disk-full tests


def seed_big(direct, database: str, n: int, size: int = BIG) -> None:
    direct[database].family.insert_many(
        [{"_id": i, "big": True, "payload": f"{i:08d}" * (size // 8)} for i in range(1, n + 1)])


def used_bytes(journal_path) -> int:
    con = sqlite3.connect(f"file:{journal_path}?mode=ro", uri=True, timeout=5)
    try:
        pages = con.execute("PRAGMA page_count").fetchone()[0]
        free = con.execute("PRAGMA freelist_count").fetchone()[0]
        size = con.execute("PRAGMA page_size").fetchone()[0]
        return (pages - free) * size
    finally:
        con.close()


@pytest.fixture
def disk_full(backend, tmp_path):
    """start(on_error) -> (proxy, direct, database, journal_path): 30 documents
    of 100 KiB (3 MiB) and one small one, behind a proxy that may write no
    file past 2 MiB."""
    database = unique_db("journal_full")
    direct = pymongo.MongoClient(backend.uri, serverSelectionTimeoutMS=5000)
    direct[database].family.insert_one({"_id": 0, "small": True})
    seed_big(direct, database, 30)
    started: list[GuardedProxy] = []

    def start(on_error: str):
        journal_path = tmp_path / "journal.db"
        g = GuardedProxy(backend.upstream,
                         journal_policy(database, str(journal_path), {"on_error": on_error}),
                         file_size_limit=LIMIT)
        started.append(g)
        # Healthy first: a small delete is journaled under the limit.
        assert g.client()[database].family.delete_one({"_id": 0}).deleted_count == 1
        wait_rows(journal_path, f"{database}.family", 1)
        return g, direct, database, journal_path

    try:
        yield start
    finally:
        for g in started:
            g.stop()
        direct.drop_database(database)
        direct.close()


def test_a_full_disk_with_on_error_hold_holds_the_write_and_nothing_reaches_the_database(
        disk_full):
    g, direct, database, journal_path = disk_full("hold")
    family = g.client(socketTimeoutMS=30_000)[database].family
    outcome: dict = {}

    def run():
        try:
            family.delete_many({"big": True})
            outcome["ok"] = True
        except Exception as e:  # noqa: BLE001  (checked below)
            outcome["error"] = e

    t = threading.Thread(target=run)
    t.start()
    try:
        hold = g.admin.wait_for_hold(timeout=20)
        assert hold["rule"] == RULE
        assert "could not be journaled: writing the journal failed" in hold["reason"], hold
        # Held, not forwarded: every big document is still there.
        assert direct[database].family.count_documents({"big": True}) == 30
        g.wait_for_log("appends are refused until it recovers")
        g.wait_for_log("cannot be journaled, so it is held (journal.on_error: hold)")
        metrics = g.admin.metrics()
        assert metrics["mongoguard_journal_write_failures_total"] >= 1
        assert metrics["mongoguard_journal_failures_total"] >= 1
        g.admin.reject(hold["id"])
    finally:
        t.join(30)
    assert not t.is_alive()
    failure = find_operation_failure(outcome.get("error"))
    assert isinstance(failure, OperationFailure), outcome
    assert direct[database].family.count_documents({"big": True}) == 30
    # Nothing of the failed batch is in the journal: only the small delete.
    assert [r["id"]["_id"] for r in rows(journal_path, f"{database}.family")] == [0]


def test_a_full_disk_with_on_error_forward_forwards_logs_and_counts(disk_full):
    g, direct, database, journal_path = disk_full("forward")
    family = g.client()[database].family
    # The write goes through; its batch then fails to commit.
    assert family.delete_many({"_id": {"$lte": 25}, "big": True}).deleted_count == 25
    g.wait_for_log("appends are refused until it recovers", timeout=20)
    wait_until(lambda: g.admin.metrics()["mongoguard_journal_write_failures_total"] >= 1, 10,
               "the failed journal write counted")
    # While the journal is unhealthy the next write is forwarded unjournaled,
    # and says so.
    assert family.delete_many({"big": True}).deleted_count == 5
    g.wait_for_log("forwarded without its before-images (journal.on_error: forward)")
    assert g.admin.metrics()["mongoguard_journal_failures_total"] >= 1
    assert direct[database].family.count_documents({"big": True}) == 0
    # The log says why, and nothing of a document's values.
    assert "00000007" not in g.log_text()


def test_max_size_drops_the_oldest_documents_first_and_keeps_the_newest(backend, tmp_path):
    database = unique_db("journal_size")
    journal_path = tmp_path / "journal.db"
    direct = pymongo.MongoClient(backend.uri, serverSelectionTimeoutMS=5000)
    seed_big(direct, database, 60, size=30 * 1024)
    g = GuardedProxy(backend.upstream,
                     journal_policy(database, str(journal_path), {"max_size": "1MiB"}))
    try:
        family = g.client()[database].family
        # 1.8 MiB of before-images, ten documents (300 KiB) per command, in order.
        for first in range(1, 61, 10):
            got = family.delete_many({"_id": {"$gte": first, "$lt": first + 10}})
            assert got.deleted_count == 10
        g.wait_for_log("oldest documents to keep")
        ns = f"{database}.family"

        def settled():
            kept = sorted(r["id"]["_id"] for r in rows(journal_path, ns))
            return kept if kept and kept[-1] == 60 and used_bytes(journal_path) <= 1 << 20 \
                else None
        kept = wait_until(settled, 10, "the journal within 1 MiB, holding the newest")
        # Whole commands go, oldest first: what is left is an unbroken run of
        # whole commands ending with the last one.
        assert kept == list(range(61 - len(kept), 61)), kept
        assert len(kept) % 10 == 0 and 0 < len(kept) < 60, kept
        dropped = g.admin.metrics()["mongoguard_journal_dropped_documents_total"]
        assert dropped == 60 - len(kept)
    finally:
        g.stop()
        direct.drop_database(database)
        direct.close()


def test_retention_removes_older_documents_at_start_up(backend, tmp_path):
    database = unique_db("journal_retention")
    journal_path = tmp_path / "journal.db"
    ns = f"{database}.family"
    direct = pymongo.MongoClient(backend.uri, serverSelectionTimeoutMS=5000)
    direct[database].family.insert_many([{"_id": i} for i in range(1, 6)])
    try:
        with GuardedProxy(backend.upstream, journal_policy(database, str(journal_path))) as g:
            g.client()[database].family.delete_many({"_id": {"$lte": 3}})
            wait_rows(journal_path, ns, 3)
        time.sleep(2.5)  # the three rows are now older than the retention below
        with GuardedProxy(backend.upstream, journal_policy(database, str(journal_path),
                                                           {"retention": "2s"})) as g:
            # A new row, younger than the retention, stays.
            g.client()[database].family.delete_one({"_id": 4})
            g.wait_for_log("removed 3 documents older than the retention of 2 s")
            assert [r["id"]["_id"] for r in wait_rows(journal_path, ns, 1)] == [4]
            assert g.admin.metrics()["mongoguard_journal_expired_documents_total"] == 3
    finally:
        direct.drop_database(database)
        direct.close()
