"""End-to-end benchmark: real pymongo clients against the real backend
(FerretDB), directly and through mongoguard with the example policy.

    python tests/bench/e2e_pymongo.py [--rounds 3] [--duration 5] [--clients 4]
                                      [--out build/bench/e2e.json]

Each client is a thread with its own MongoClient (one pooled connection in
use at a time), looping over a fixed mix: nine find_one by _id, then one
update_one by _id (an inspected write that the example policy lets through).
Contenders alternate within each round, the first one rotating, so neither
always runs on a cooler or hotter machine. Every operation is timed; the
percentiles come from the full sorted sample. Prints one JSON object and
writes it to --out.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import statistics
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from pymongo import MongoClient  # noqa: E402

from backend import Backend  # noqa: E402
from harness import ProxyProcess  # noqa: E402

DOCUMENTS = 1000


def percentile_us(sorted_ns: list[int], q: float) -> float | None:
    if not sorted_ns:
        return None
    rank = min(max(math.ceil(q * len(sorted_ns)), 1), len(sorted_ns))
    return sorted_ns[rank - 1] / 1000.0


def client_loop(uri: str, worker: int, deadline: float, out: list, errors: list) -> None:
    latencies: list[int] = []
    try:
        with MongoClient(uri, maxPoolSize=1, appname="e2e-bench") as client:
            coll = client.bench.items
            coll.find_one({"_id": 0})  # connect and handshake before timing
            i = worker
            while time.monotonic() < deadline:
                key = (i * 7919) % DOCUMENTS
                start = time.perf_counter_ns()
                if i % 10 == 9:
                    result = coll.update_one({"_id": key}, {"$inc": {"n": 1}})
                    ok = result.matched_count == 1
                else:
                    ok = coll.find_one({"_id": key}) is not None
                latencies.append(time.perf_counter_ns() - start)
                if not ok:
                    errors.append(f"worker {worker}: operation {i} found no document {key}")
                    return
                i += 1
    except Exception as e:  # noqa: BLE001 - reported, and the run fails
        errors.append(f"worker {worker}: {e!r}")
    out.extend(latencies)


def run_once(uri: str, clients: int, duration: float) -> dict:
    latencies: list[int] = []
    errors: list[str] = []
    deadline = time.monotonic() + duration
    start = time.monotonic()
    threads = [threading.Thread(target=client_loop, args=(uri, w, deadline, latencies, errors))
               for w in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=duration + 60)
    elapsed = time.monotonic() - start
    latencies.sort()
    return {
        "operations": len(latencies),
        "errors": errors,
        "ops_per_s": len(latencies) / elapsed if elapsed > 0 else None,
        "p50_us": percentile_us(latencies, 0.50),
        "p99_us": percentile_us(latencies, 0.99),
        "p999_us": percentile_us(latencies, 0.999),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--out", default=str(ROOT / "build" / "bench" / "e2e.json"))
    args = parser.parse_args()

    workdir = pathlib.Path(tempfile.mkdtemp(prefix="mg-e2e-"))
    os.environ.setdefault("MONGOGUARD_AUDIT_PATH", str(workdir / "audit.jsonl"))
    # The example policy journals what its budgets let through: without a
    # writable journal every budgeted update would be held.
    os.environ.setdefault("MONGOGUARD_JOURNAL_PATH", str(workdir / "journal.db"))
    runs = []
    with Backend() as backend:
        with MongoClient(backend.uri) as seed:
            seed.bench.items.drop()
            seed.bench.items.insert_many([{"_id": k, "n": 0} for k in range(DOCUMENTS)])
        with ProxyProcess(backend.upstream, "--config", str(ROOT / "deploy/examples/policy.yaml"),
                          "--log-level", "warn", threads=1) as proxy:
            uris = {"direct": backend.uri, "mongoguard": proxy.uri}
            order = list(uris)
            for r in range(args.rounds):
                for k in range(len(order)):
                    who = order[(k + r) % len(order)]
                    result = run_once(uris[who], args.clients, args.duration)
                    result.update(contender=who, round=r)
                    runs.append(result)
                    print(f"  round {r + 1}, {who}: {result['ops_per_s'] or 0:.0f} ops/s, "
                          f"p50 {result['p50_us']} µs", file=sys.stderr)
    summary = []
    for who in ("direct", "mongoguard"):
        rs = [x for x in runs if x["contender"] == who]

        def med(key: str, rs=rs):
            values = [x[key] for x in rs if x[key] is not None]
            return statistics.median(values) if values else None

        summary.append({"contender": who, "rounds": len(rs),
                        "operations": sum(x["operations"] for x in rs),
                        "ops_per_s": med("ops_per_s"), "p50_us": med("p50_us"),
                        "p99_us": med("p99_us"), "p999_us": med("p999_us")})
    direct, guarded = summary
    if direct["ops_per_s"] and guarded["ops_per_s"]:
        guarded["ops_vs_direct"] = guarded["ops_per_s"] / direct["ops_per_s"]
        guarded["added_p50_us"] = guarded["p50_us"] - direct["p50_us"]
    problems = [e for x in runs for e in x["errors"]]
    problems += [f"{x['contender']} round {x['round']}: no operations" for x in runs
                 if not x["operations"]]
    result = {"clients": args.clients, "duration_s": args.duration, "rounds": args.rounds,
              "mix": "find_one:90,update_one:10", "summary": summary, "runs": runs,
              "problems": problems}
    pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps({"summary": summary, "problems": problems}, indent=2))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
