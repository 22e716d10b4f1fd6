"""Fleet mode: the shared budget is a hard ceiling across proxies.

Three proxies share one budget of 50 deletes a minute through Redis
(`action: block`). Thirty threads, ten per proxy and each with its own
connection, delete single documents and small delete_many ranges as fast as
they can. Whatever the interleaving, the backend (counted over a direct
connection) loses at most 50 documents, and at least one (the test is not
vacuous); every proxy sees the shared breaker tripped, with the same `used`.

The Redis timeout is 2 s rather than test_fleet's 500 ms: a proxy that
cannot reach Redis in time enforces its own budget (by design), which would
let each proxy spend 50. The test checks that no proxy degraded, so a
failure of the ceiling is never blamed on the wrong cause.
"""

from __future__ import annotations

import os
import pathlib
import random
import threading
import time
from dataclasses import dataclass, field

import pymongo
import pytest
from pymongo.errors import OperationFailure

from hold_helpers import UNAUTHORIZED, GuardedProxy, unique_db
from test_fleet import REDIS_SERVER, RedisServer

pytestmark = pytest.mark.skipif(not pathlib.Path(REDIS_SERVER).exists(),
                                reason="redis-server is not installed (scripts/deps.sh test)")

BUDGET = 50
DOCS = 3000
PROXIES = 3
PER_PROXY = 10
SECONDS = float(os.environ.get("FLEET_CEILING_SECONDS", "10"))
MAX_OPS_PER_THREAD = 3000
RULE = "fleet-cap"


def policy(redis: RedisServer, name: str, database: str) -> str:
    return f"""
        fleet:
          redis: "{redis.url}"
          name: {name}
          timeout: 2s
{redis.fleet_yaml()}        rules:
          - name: {RULE}
            match: {{ namespace: "{database}.c", operations: [delete] }}
            limit: {{ documents: {BUDGET}, per: 1m }}
            action: block
    """


@pytest.fixture(params=["plain", "tls"])
def redis(request):
    """Plain TCP, then TLS with a client certificate and an ACL user."""
    server = RedisServer(tls=request.param == "tls")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def seeded(backend):
    client = pymongo.MongoClient(backend.uri, serverSelectionTimeoutMS=10_000)
    database = unique_db("fleet_ceiling")
    client[database].c.insert_many([{"_id": i, "x": i} for i in range(DOCS)])
    try:
        yield client, database
    finally:
        client.drop_database(database)
        client.close()


@dataclass
class Tally:
    proxy: int
    ops: int = 0
    deleted: int = 0
    refused: int = 0
    first_refusal: float | None = None
    latency: dict = field(default_factory=lambda: {"one": [], "many": []})
    errors: list = field(default_factory=list)


def test_thirty_clients_on_three_proxies_share_one_ceiling(backend, redis, seeded):
    direct, database = seeded
    proxies: list[GuardedProxy] = []
    clients: list[pymongo.MongoClient] = []
    try:
        for i in range(PROXIES):
            proxies.append(GuardedProxy(backend.upstream, policy(redis, f"fleet-{i}", database)))
        for p in proxies:
            p.wait_for_log("fleet: connected to redis", timeout=15)

        tallies = [Tally(proxy=i // PER_PROXY) for i in range(PROXIES * PER_PROXY)]
        for t in tallies:
            clients.append(pymongo.MongoClient(proxies[t.proxy].uri, maxPoolSize=1,
                                               retryWrites=False, serverSelectionTimeoutMS=10_000,
                                               socketTimeoutMS=60_000))
        # Everyone starts at once.
        gate = threading.Barrier(len(tallies) + 1, timeout=60)
        start = [0.0]

        def worker(i: int) -> None:
            tally = tallies[i]
            rng = random.Random(i)
            coll = clients[i][database].c
            try:
                coll.database.command("ping")  # connected before the gate opens
                gate.wait()
                deadline = start[0] + SECONDS
                while time.monotonic() < deadline and tally.ops < MAX_OPS_PER_THREAD:
                    tally.ops += 1
                    kind = "one" if rng.random() < 0.6 else "many"
                    began = time.monotonic()
                    try:
                        if kind == "one":
                            r = coll.delete_one({"_id": rng.randrange(DOCS)})
                        else:
                            a = rng.randrange(DOCS - 5)
                            r = coll.delete_many({"x": {"$gte": a, "$lt": a + rng.randint(2, 5)}})
                        tally.deleted += r.deleted_count
                    except OperationFailure as err:
                        errmsg = (err.details or {}).get("errmsg", "")
                        assert err.code == UNAUTHORIZED, err.details
                        assert f"blocked by rule '{RULE}'" in errmsg, err.details
                        assert not (err.details or {}).get("errorLabels"), err.details
                        tally.refused += 1
                        tally.latency[kind].append(time.monotonic() - began)
                        if tally.first_refusal is None:
                            tally.first_refusal = time.monotonic() - start[0]
            except Exception as err:  # noqa: BLE001 - reported below
                tally.errors.append(f"thread {i} (proxy {tally.proxy}): {err!r}")

        threads = [threading.Thread(target=worker, args=(i,), daemon=True)
                   for i in range(len(tallies))]
        for t in threads:
            t.start()
        start[0] = time.monotonic()
        gate.wait()
        for t in threads:
            t.join(timeout=SECONDS + 60)
        elapsed = time.monotonic() - start[0]
        assert not [t for t in threads if t.is_alive()], "threads still running past the deadline"
        errors = [e for t in tallies for e in t.errors]
        assert not errors, errors[:10]

        deleted = DOCS - direct[database].c.count_documents({})
        logs = [p.log_text() for p in proxies]
        degraded = [i for i, text in enumerate(logs)
                    if "enforcing local budgets" in text or "lost redis" in text]
        key = f"{RULE}:{database}.c"
        states = [p.admin.breaker(key) for p in proxies]
        per_proxy = [sum(t.deleted for t in tallies if t.proxy == i) for i in range(PROXIES)]
        lat = {k: sorted(x for t in tallies for x in t.latency[k]) for k in ("one", "many")}
        lat_text = ", ".join(f"{k}: median {v[len(v) // 2] * 1000:.0f} ms, max {v[-1] * 1000:.0f} ms"
                             for k, v in lat.items() if v)
        print(f"\nfleet ceiling: {elapsed:.1f}s, {sum(t.ops for t in tallies)} deletes tried, "
              f"{sum(t.refused for t in tallies)} refused, {deleted} documents deleted "
              f"(per proxy {per_proxy}); first refusal after "
              f"{min((t.first_refusal for t in tallies if t.first_refusal is not None), default=None)}s; "
              f"breakers {[(s or {}).get('used') for s in states]} "
              f"tripped {[(s or {}).get('tripped') for s in states]}; degraded proxies {degraded}; "
              f"refusal latency {lat_text}")

        assert deleted <= BUDGET, (f"{deleted} documents deleted through the fleet, budget "
                                   f"{BUDGET}; per proxy {per_proxy}; degraded proxies {degraded}")
        assert deleted >= 1
        assert sum(t.deleted for t in tallies) == deleted, "the clients were told what happened"
        assert not degraded, f"proxies {degraded} lost Redis during the test"
        assert all(t.refused >= 1 for t in tallies), "every client met the spent budget"
        for i, s in enumerate(states):
            assert s is not None, f"proxy {i} has no breaker {key}: {proxies[i].admin.breakers()}"
            assert s["tripped"], (i, s)
            assert s["limit"] == BUDGET, (i, s)
            assert s["used"] == deleted, (i, s, deleted)
    finally:
        for c in clients:
            c.close()
        for p in proxies:
            p.stop()
