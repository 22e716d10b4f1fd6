"""Soak: a hundred concurrent clients against one budget, on the real backend.

For SOAK_SECONDS (default 60; LOAD_SECONDS, which the sanitizer pass
exports, is honoured when SOAK_SECONDS is unset), 100 threads hammer one
collection through the proxy with a random mix of destructive commands:
delete_one by random _id, delete_many on small ranges, bulk_write mixes
(DeleteOne + DeleteMany; UpdateOne + UpdateMany on a second collection),
unacknowledged (w:0) deletes, and raw pipelined frames of several single
deletes sent in one sendall. 80 threads have a client of their own
(maxPoolSize=1); 20 share one pooled client.

The policy: deletes on `c` and updates on `u` each have a budget of 50
documents per minute, `action: hold`, `auto_resume: true` (each minute's
window closes its breaker by itself, so every window is exercised), holds
time out after 2 s (so every held operation is rejected and none is left
undecided).

What must hold:
- what the server really deleted (counted over a direct connection) is at
  most 50 for each 60 s window the run can span: the run's admissions all
  happen between its start and its end, L seconds apart, and floor(L/60) + 1
  half-open 60 s windows cover such a span;
- no 60 s sliding window holds more than 50 documents, reconstructed from the
  audit log (unredacted, so each unacknowledged record names the ids it
  targeted): acknowledged records carry the reply's `n`; an unacknowledged
  one has none, so w:0 deletes only ever target ids from a pool no other
  operation touches, handed out once each, and what such a record deleted
  is read off the final collection;
- the audit accounts for every deletion exactly: the sum over records equals
  the direct count, the acknowledged part equals what the clients were told,
  and no id targeted by a w:0 delete that was not forwarded is gone;
- the same ceilings for the update budget on `u`, counted from the replies'
  `n` (matched), which the clients' results must agree with; the direct sum
  of the $inc'd field can only be lower (FerretDB may lose a concurrent
  $inc, see below);
- no hold is pending at the end; the proxy log holds no sanitizer report
  (the harness checks that when the proxy stops).
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import pymongo
import pytest
from pymongo import DeleteMany, DeleteOne, UpdateMany, UpdateOne
from pymongo.errors import BulkWriteError, OperationFailure
from pymongo.write_concern import WriteConcern

import wire
from budget_helpers import UnredactedProxy, audit_time, soak_seconds, window_peak
from hold_helpers import UNAUTHORIZED, raw_hello, unique_db, wait_until

BUDGET = 50
WINDOW = 60.0
HOLD_TIMEOUT = 2.0
# Audit times are wall-clock milliseconds taken just after the reservation
# (the budget itself runs on the steady clock): windows are checked 100 ms
# short of a minute so that truncation and a worker thread preempted between
# reserving and stamping the record cannot make two admissions a minute
# apart look closer than they were.
WINDOW_CHECKED = WINDOW - 0.1

CLIENTS = 100
OWN_CLIENTS = 80        # the rest share one pooled client
SHARED_POOL = 10
SHARED_IDS = 3000       # _id 0..2999: every acknowledged delete picks from these
W0_FIRST = 100_000      # _id 100000..: handed out once each, to w:0 deletes only
W0_IDS = 6000
W0_RANGE = 3            # a w:0 delete_many takes this many ids
W0_GAP = HOLD_TIMEOUT + 1.0  # a thread's w:0 deletes are this far apart (see below)
U_DOCS = 500
PIPELINED = 3
MAX_OPS_PER_CLIENT = 20_000

KINDS = ["delete_one", "delete_many", "bulk_delete", "bulk_update", "w0_one", "w0_many",
         "pipelined"]
WEIGHTS = [25, 20, 15, 10, 10, 5, 15]


def soak_policy(database: str) -> str:
    return f"""
holds:
  timeout: {int(HOLD_TIMEOUT)}s
rules:
  - name: soak-del
    match: {{ namespace: "{database}.c", operations: [delete] }}
    limit: {{ documents: {BUDGET}, per: 1m, auto_resume: true }}
    action: hold
  - name: soak-upd
    match: {{ namespace: "{database}.u", operations: [update] }}
    limit: {{ documents: {BUDGET}, per: 1m, auto_resume: true }}
    action: hold
"""


@dataclass
class Tally:
    ops: Counter = field(default_factory=Counter)       # kind -> attempts
    refused: Counter = field(default_factory=Counter)   # kind -> held and rejected
    commands: int = 0          # commands sent (each audited once)
    w0_commands: int = 0
    acked_deleted: int = 0     # what replies told the clients
    acked_updated: int = 0     # matched, as replies told the clients
    errors: list = field(default_factory=list)


class Soak:
    def __init__(self, gp, database: str, seconds: float, seed: int):
        self.gp = gp
        self.database = database
        self.seconds = seconds
        self.seed = seed
        self._lock = threading.Lock()
        self._next_w0 = W0_FIRST
        self.tallies = [Tally() for _ in range(CLIENTS)]
        self.clients: list[pymongo.MongoClient] = []
        self.shared = self._client(maxPoolSize=SHARED_POOL)

    def _client(self, **kw) -> pymongo.MongoClient:
        kw.setdefault("maxPoolSize", 1)
        c = pymongo.MongoClient(self.gp.uri, serverSelectionTimeoutMS=10_000, retryWrites=False,
                                socketTimeoutMS=60_000, **kw)
        with self._lock:
            self.clients.append(c)
        return c

    def w0_ids(self, k: int) -> int | None:
        """The first of k fresh ids from the w:0 pool; None once it is spent."""
        with self._lock:
            if self._next_w0 + k > W0_FIRST + W0_IDS:
                return None
            first = self._next_w0
            self._next_w0 += k
            return first

    def run(self) -> tuple[float, float]:
        start = time.monotonic()
        deadline = start + self.seconds
        threads = [threading.Thread(target=self.worker, args=(i, deadline), daemon=True,
                                    name=f"soak-{i}") for i in range(CLIENTS)]
        for t in threads:
            t.start()
        # Each thread stops starting operations at the deadline; one already
        # started may be held (2 s per command, three for a pipelined batch).
        join_by = deadline + PIPELINED * HOLD_TIMEOUT + 60
        for t in threads:
            t.join(timeout=max(0.1, join_by - time.monotonic()))
        stuck = [t.name for t in threads if t.is_alive()]
        assert not stuck, f"soak threads still running long after the deadline: {stuck}"
        return start, time.monotonic()

    def worker(self, i: int, deadline: float) -> None:
        rng = random.Random(self.seed * 1000 + i)
        tally = self.tallies[i]
        client = self._client() if i < OWN_CLIENTS else self.shared
        c = client[self.database].c
        u = client[self.database].u
        # w:0 writes go on a connection of their own: FerretDB answers even
        # moreToCome requests, and a stale answer would confuse the next
        # acknowledged command's read on a shared connection.
        w0 = None
        raw = None
        last_w0 = -math.inf
        try:
            while time.monotonic() < deadline and sum(tally.ops.values()) < MAX_OPS_PER_CLIENT:
                kind = rng.choices(KINDS, WEIGHTS)[0]
                if kind.startswith("w0"):
                    # A w:0 send returns at once while the proxy may hold the
                    # request for 2 s; spaced out, no backlog builds up.
                    if time.monotonic() - last_w0 < W0_GAP:
                        kind = "delete_one"
                tally.ops[kind] += 1
                try:
                    if kind == "delete_one":
                        tally.commands += 1
                        tally.acked_deleted += c.delete_one(
                            {"_id": rng.randrange(SHARED_IDS)}).deleted_count
                    elif kind == "delete_many":
                        a = rng.randrange(SHARED_IDS - 5)
                        tally.commands += 1
                        tally.acked_deleted += c.delete_many(
                            {"x": {"$gte": a, "$lt": a + rng.randint(2, 5)}}).deleted_count
                    elif kind == "bulk_delete":
                        a = rng.randrange(SHARED_IDS - 5)
                        tally.commands += 1
                        r = c.bulk_write([DeleteOne({"_id": rng.randrange(SHARED_IDS)}),
                                          DeleteMany({"x": {"$gte": a, "$lt": a + rng.randint(2, 4)}})])
                        tally.acked_deleted += r.deleted_count
                    elif kind == "bulk_update":
                        a = rng.randrange(U_DOCS - 5)
                        tally.commands += 1
                        r = u.bulk_write([UpdateOne({"_id": rng.randrange(U_DOCS)}, {"$inc": {"v": 1}}),
                                          UpdateMany({"_id": {"$gte": a, "$lt": a + rng.randint(2, 4)}},
                                                     {"$inc": {"v": 1}})])
                        tally.acked_updated += r.matched_count
                    elif kind in ("w0_one", "w0_many"):
                        k = 1 if kind == "w0_one" else W0_RANGE
                        first = self.w0_ids(k)
                        if first is None:
                            tally.ops[kind] -= 1
                            continue
                        if w0 is None:
                            w0 = self._client()[self.database].get_collection(
                                "c", write_concern=WriteConcern(w=0))
                        tally.commands += 1
                        tally.w0_commands += 1
                        last_w0 = time.monotonic()
                        if k == 1:
                            w0.delete_one({"_id": first})
                        else:
                            w0.delete_many({"_id": {"$gte": first, "$lt": first + k}})
                    elif kind == "pipelined":
                        if raw is None:
                            raw = raw_hello(self.gp.port, app=f"soak-raw-{i}")
                        self.pipelined(raw, rng, tally)
                except (OperationFailure, BulkWriteError) as err:
                    self.check_refusal(err)
                    tally.refused[kind] += 1
                time.sleep(rng.uniform(0, 0.02))
        except Exception as err:  # noqa: BLE001 - reported by the test thread
            tally.errors.append(f"thread {i}: {err!r}")
        finally:
            if raw is not None:
                raw.close()

    def pipelined(self, sock, rng: random.Random, tally: Tally) -> None:
        ids, frames = [], []
        for _ in range(PIPELINED):
            rid = wire.next_request_id()
            ids.append(rid)
            frames.append(wire.op_msg({"delete": "c", "deletes": [
                {"q": {"_id": rng.randrange(SHARED_IDS)}, "limit": 1}],
                "ordered": True, "$db": self.database}, request_id=rid))
        tally.commands += PIPELINED
        sock.sendall(b"".join(frames))
        refused = 0
        for rid in ids:
            # Each may be held for up to 2 s before the next is judged.
            reply = wire.parse_message(wire.read_message(sock, timeout=HOLD_TIMEOUT + 20))
            assert reply.response_to == rid, (reply.response_to, rid, reply.body)
            body = reply.body
            if body.get("ok") == 1:
                tally.acked_deleted += body.get("n", 0)
            else:
                assert body.get("code") == UNAUTHORIZED, body
                assert "held by rule 'soak-del'" in body.get("errmsg", ""), body
                refused += 1
        if refused:
            tally.refused["pipelined"] += 1

    @staticmethod
    def check_refusal(err: Exception) -> None:
        details = err.details or {}
        if isinstance(err, BulkWriteError):
            errors = details.get("writeErrors") or []
            assert errors and all(e.get("code") == UNAUTHORIZED for e in errors), details
            text = " ".join(e.get("errmsg", "") for e in errors)
        else:
            assert err.code == UNAUTHORIZED, details
            text = details.get("errmsg", str(err))
        assert "held by rule 'soak-" in text and "not approved within 2s" in text, details
        assert not details.get("errorLabels"), details

    def close(self) -> None:
        for c in self.clients:
            c.close()


@pytest.fixture
def soak_db(backend):
    client = pymongo.MongoClient(backend.uri, serverSelectionTimeoutMS=10_000)
    database = unique_db("soak")
    docs = [{"_id": i, "x": i} for i in range(SHARED_IDS)]
    docs += [{"_id": W0_FIRST + i, "x": -1} for i in range(W0_IDS)]
    client[database].c.insert_many(docs)
    client[database].u.insert_many([{"_id": i, "v": 0} for i in range(U_DOCS)])
    try:
        yield client, database
    finally:
        client.drop_database(database)
        client.close()


def w0_targets(record: dict) -> list[int]:
    """The pool ids an unacknowledged delete's (unredacted) filter names."""
    f = record["targets"][0]["filter"]["_id"]
    if isinstance(f, dict):
        return list(range(int(f["$gte"]), int(f["$lt"])))
    return [int(f)]


def test_hundred_clients_never_exceed_the_budget(backend, soak_db):
    direct, database = soak_db
    seconds = soak_seconds()
    with UnredactedProxy(backend.upstream, soak_policy(database)) as gp:
        soak = Soak(gp, database, seconds, seed=int(time.time()))
        try:
            started_wall = time.time()
            start, end = soak.run()
            errors = [e for t in soak.tallies for e in t.errors]
            assert not errors, errors[:10]

            # Every command sent was judged and audited exactly once; w:0 ones
            # still held when the threads stopped are decided within 2 s.
            sent = sum(t.commands for t in soak.tallies)
            sent_w0 = sum(t.w0_commands for t in soak.tallies)

            def ours():
                return [r for r in gp.audit_records()
                        if r.get("database") == database and r.get("command") in ("delete", "update")]
            wait_until(lambda: gp.admin.holds() == [], HOLD_TIMEOUT + 10, "no pending hold")
            wait_until(lambda: len(ours()) >= sent, 15, f"{sent} audit records")
            records = ours()
            assert len(records) == sent, (len(records), sent)
            assert len([r for r in records if r.get("unacknowledged")]) == sent_w0
            assert gp.admin.holds() == []
            breakers = {b["name"]: b for b in gp.admin.breakers()}
            log = gp.log_text()
        finally:
            soak.close()

    duration = end - start
    windows = math.floor(duration / WINDOW) + 1
    ceiling = BUDGET * windows

    remaining = {d["_id"] for d in direct[database].c.find({}, {"_id": 1})}
    shared_deleted = SHARED_IDS - sum(1 for x in remaining if x < SHARED_IDS)
    w0_gone = {W0_FIRST + i for i in range(W0_IDS)} - remaining
    deleted = shared_deleted + len(w0_gone)
    updated = sum(d["v"] for d in direct[database].u.find({}, {"v": 1}))

    outcomes = Counter(r["outcome"] for r in records)
    allowed = {"forwarded", "timed out", "cancelled: client gone"}
    assert set(outcomes) <= allowed, outcomes

    # What each record did, exactly.
    del_events, upd_events = [], []
    acked_n_del = acked_n_upd = 0
    w0_forwarded_ids: set[int] = set()
    w0_refused_ids: set[int] = set()
    for r in records:
        t = audit_time(r)
        forwarded = r["outcome"] == "forwarded"
        if r.get("unacknowledged"):
            ids = w0_targets(r)
            assert all(W0_FIRST <= x < W0_FIRST + W0_IDS for x in ids), r
            (w0_forwarded_ids if forwarded else w0_refused_ids).update(ids)
            if forwarded:
                del_events.append((t, sum(1 for x in ids if x in w0_gone)))
            continue
        if not forwarded:
            assert "n" not in r, r
            continue
        assert r.get("ok") is True and "n" in r, f"an acknowledged forwarded write without n: {r}"
        if r["command"] == "delete":
            del_events.append((t, r["n"]))
            acked_n_del += r["n"]
        else:
            upd_events.append((t, r["n"]))
            acked_n_upd += r["n"]

    # The audit accounts for every document, and agrees with the clients.
    assert w0_gone <= w0_forwarded_ids, sorted(w0_gone - w0_forwarded_ids)[:20]
    assert not (w0_refused_ids & w0_gone), "a w:0 delete that was never forwarded deleted something"
    assert acked_n_del == shared_deleted == sum(t.acked_deleted for t in soak.tallies), \
        (acked_n_del, shared_deleted)
    assert sum(w for _, w in del_events) == deleted
    # Updates: the replies' n (matched) is what the budget counts. FerretDB
    # applies an update as read, modify, write back, so two concurrent $inc
    # of one document can lose one: the direct sum of v may fall short of n,
    # never exceed it.
    assert acked_n_upd == sum(t.acked_updated for t in soak.tallies), acked_n_upd
    assert updated <= acked_n_upd, (updated, acked_n_upd)

    peak_del, peak_del_at = window_peak(del_events, WINDOW_CHECKED)
    peak_upd, peak_upd_at = window_peak(upd_events, WINDOW_CHECKED)
    exact_del, _ = window_peak(del_events, WINDOW)
    exact_upd, _ = window_peak(upd_events, WINDOW)
    refused = sum(sum(t.refused.values()) for t in soak.tallies)
    kinds = sum((t.ops for t in soak.tallies), Counter())
    print(f"\nsoak: {duration:.1f}s ({windows} window(s), ceiling {ceiling}), {sent} commands "
          f"({sent_w0} w:0), kinds {dict(kinds)}, {refused} refused after holds; "
          f"deleted {deleted} ({len(w0_gone)} by w:0), updated {acked_n_upd} (replies' n; "
          f"direct sum of v {updated}); audit outcomes "
          f"{dict(outcomes)}; busiest {WINDOW_CHECKED:g}s window: {peak_del} deleted "
          f"(+{peak_del_at - started_wall:.1f}s), {peak_upd} updated "
          f"(+{peak_upd_at - started_wall:.1f}s); busiest 60s window: {exact_del} / {exact_upd}; "
          f"breakers {[(b['name'], b['used'], b['tripped']) for b in breakers.values()]}")

    # The ceilings.
    assert deleted <= ceiling, f"{deleted} deleted in {duration:.1f}s, ceiling {ceiling}"
    assert acked_n_upd <= ceiling, f"{acked_n_upd} updated in {duration:.1f}s, ceiling {ceiling}"
    assert peak_del <= BUDGET, \
        f"{peak_del} deleted within {WINDOW_CHECKED}s from +{peak_del_at - started_wall:.1f}s"
    assert peak_upd <= BUDGET, \
        f"{peak_upd} updated within {WINDOW_CHECKED}s from +{peak_upd_at - started_wall:.1f}s"

    # Not vacuous: the budget was reached and refused something, things passed.
    assert deleted >= 1 and acked_n_upd >= 1, (deleted, acked_n_upd)
    assert outcomes["timed out"] >= 1, outcomes
    assert f"breaker soak-del:{database}.c tripped" in log
    assert sent_w0 >= 1 and kinds["pipelined"] >= 1
