#!/usr/bin/env python3
"""Measures mongoguard's resident memory, the figure the Kubernetes sidecar's
memory request is sized from (docs/deploying.md, Kubernetes sidecar).

Starts the test backend and build/mongoguard (2 threads, the cautious default
policy) and prints VmRSS idle, with 100 pymongo clients connected (each opens
two connections: monitor and pool), and after 20,000 1 KB inserts and 1,000
finds of 200 documents over those connections.

    .venv/bin/python scripts/sidecar-rss.py
"""

import os
import pathlib
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))

import pymongo  # noqa: E402

from backend import Backend  # noqa: E402
from harness import ProxyProcess  # noqa: E402


def rss(pid: int) -> str:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"):
            return f"{int(line.split()[1]) / 1000:.1f} MB"
    return "?"


def main() -> None:
    os.environ["MONGOGUARD_AUDIT_PATH"] = str(pathlib.Path(tempfile.mkdtemp()) / "audit.jsonl")
    backend = Backend()
    try:
        with ProxyProcess(backend.upstream, "--config",
                          str(ROOT / "deploy" / "examples" / "policy.yaml")) as proxy:
            time.sleep(1)
            print("idle:", rss(proxy.proc.pid))
            clients = []
            for _ in range(100):
                c = pymongo.MongoClient(proxy.uri, maxPoolSize=1)
                c.admin.command("ping")
                clients.append(c)
            time.sleep(1)
            print(f"{proxy.metrics()['mongoguard_connections_open']:.0f} connections open:",
                  rss(proxy.proc.pid))
            coll = clients[0].sidecar_rss.c
            for _ in range(20):
                coll.insert_many([{"i": i, "pad": "x" * 1000} for i in range(1000)])
                for c in clients[:50]:
                    list(c.sidecar_rss.c.find({}).limit(200))
            print("after 20,000 inserts and 1,000 finds:", rss(proxy.proc.pid))
            clients[0].drop_database("sidecar_rss")
            for c in clients:
                c.close()
    finally:
        backend.stop()


if __name__ == "__main__":
    main()
