"""What a budget costs one destructive operation: pymongo against the real
backend (FerretDB), directly and through mongoguard with a budget rule that
never trips (so every operation is reserved, measured where it has to be,
forwarded and settled), interleaved in rounds.

    python tests/bench/budget_latency.py [--rounds 5] [--ops 200] [--unfiltered] [--journal]
                                         [--batch 1] [--out build/bench/budget.json]

Per round and contender: `--ops` delete_one by _id (one reservation, no
measurement) and `--ops` delete_many of one document by a range filter (a
multi statement: one capped count first, then the delete). Each deleted
document is put back with an insert that is not timed. Prints medians of
the per-operation latency and the difference through the proxy.
`--unfiltered` adds a `filter: unfiltered` rule: delete_many then also
counts the collection, and its filter count serves both rules.
`--journal` journals the budget rule (journal.path in a temporary folder):
each delete is then preceded by the read of what it will delete, stored
before it is forwarded (on_error: hold). `--batch N` makes each delete_many
take N documents (one group of N, put back untimed).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from pymongo import MongoClient  # noqa: E402

from backend import Backend  # noqa: E402
from harness import ProxyProcess  # noqa: E402

POLICY = """
rules:
  - name: bench-budget
    match: { namespace: "bench.*", operations: [delete] }
    limit: { documents: 100000000, per: 1m }
    action: hold
"""

UNFILTERED_RULE = """
  - name: bench-unfiltered
    match: { namespace: "bench.*", operations: [delete], filter: unfiltered }
    action: block
"""


def documents(ops: int, batch: int) -> list[dict]:
    """`ops` groups (x) of `batch` documents each."""
    return [{"_id": i * batch + k, "x": i} for i in range(ops) for k in range(batch)]


def timed(client: MongoClient, ops: int, batch: int) -> dict[str, list[float]]:
    coll = client.bench.c
    out: dict[str, list[float]] = {"delete_one": [], "delete_many": []}
    for i in range(ops):
        first = i * batch
        t = time.perf_counter_ns()
        assert coll.delete_one({"_id": first}).deleted_count == 1
        out["delete_one"].append((time.perf_counter_ns() - t) / 1000)
        coll.insert_one({"_id": first, "x": i})
        t = time.perf_counter_ns()
        assert coll.delete_many({"x": {"$gte": i, "$lt": i + 1}}).deleted_count == batch
        out["delete_many"].append((time.perf_counter_ns() - t) / 1000)
        coll.insert_many([{"_id": first + k, "x": i} for k in range(batch)])
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--ops", type=int, default=200)
    ap.add_argument("--unfiltered", action="store_true",
                    help="add a filter: unfiltered rule (measured delete_many)")
    ap.add_argument("--journal", action="store_true",
                    help="journal the budget rule's deletes (their before-images)")
    ap.add_argument("--batch", type=int, default=1, help="documents per delete_many")
    ap.add_argument("--out", default=str(ROOT / "build/bench/budget.json"))
    args = ap.parse_args()
    backend = Backend()
    try:
        seed = MongoClient(backend.uri)
        seed.bench.c.drop()
        seed.bench.c.insert_many(documents(args.ops, args.batch))
        with tempfile.TemporaryDirectory() as tmp:
            policy = pathlib.Path(tmp) / "policy.yaml"
            journal = f"journal:\n  path: {pathlib.Path(tmp) / 'journal.db'}\n"
            policy.write_text((journal if args.journal else "") + POLICY +
                              (UNFILTERED_RULE if args.unfiltered else ""))
            with ProxyProcess(backend.upstream, "--config", str(policy)) as proxy:
                clients = {"direct": MongoClient(backend.uri, maxPoolSize=1),
                           "mongoguard": MongoClient(proxy.uri, maxPoolSize=1)}
                samples = {name: {"delete_one": [], "delete_many": []} for name in clients}
                for r in range(args.rounds):
                    order = list(clients) if r % 2 == 0 else list(reversed(list(clients)))
                    for name in order:
                        got = timed(clients[name], args.ops, args.batch)
                        for kind, values in got.items():
                            samples[name][kind].append(statistics.median(values))
                result = {name: {kind: statistics.median(v) for kind, v in kinds.items()}
                          for name, kinds in samples.items()}
                result["added_us"] = {kind: result["mongoguard"][kind] - result["direct"][kind]
                                      for kind in ("delete_one", "delete_many")}
                for c in clients.values():
                    c.close()
        seed.bench.c.drop()
    finally:
        backend.stop()
    text = json.dumps(result, indent=2)
    print(text)
    pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
