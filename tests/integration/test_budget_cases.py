"""The budget cases of tests/budget_cases.json through the fleet's Lua
scripts (proxy/fleet/*.lua, the very files the build compiles in), run with
redis-cli EVAL against Debian's redis-server. The unit test
tests/unit/proxy/fleet/budget_cases_test.cc runs the same table through
policy::BudgetBook, so the shared ledger and a proxy's own are held to one
set of answers.

The scripts read the Redis server's clock, so a step's at_ms is waited for
in real time here; the table's windows leave a few hundred ms of slack.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time

import pytest

from harness import ROOT
from test_fleet import REDIS_SERVER, RedisServer

REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"
pytestmark = pytest.mark.skipif(not (shutil.which(REDIS_SERVER) and shutil.which(REDIS_CLI)),
                                reason="redis-server is not installed (scripts/deps.sh test)")

FLEET = ROOT / "proxy" / "fleet"
CASES = json.loads((ROOT / "tests" / "budget_cases.json").read_text())["cases"]
# As proxy/fleet/CMakeLists.txt joins them: the budget scripts begin with the prelude.
PRELUDE = (FLEET / "prelude.lua").read_text()
SCRIPTS = {name: PRELUDE + (FLEET / f"{name}.lua").read_text()
           for name in ("reserve", "settle", "grant", "list", "resume")}
ADMISSIONS = {0: "pass", 1: "tripped", 2: "would_trip", 3: "too_large"}
KEY = "case"


@pytest.fixture(scope="module")
def redis_port():
    server = RedisServer()
    try:
        yield server.port
    finally:
        server.stop()


# policy::kMaxAllowanceDocuments, the grant script's third argument.
MAX_ALLOWANCE = 1_000_000_000_000


class ScriptLedger:
    """One case's breaker in Redis, driven the way proxy/fleet/fleet.cc
    calls the scripts (its keys, argument order and settle arithmetic)."""

    def __init__(self, port: int, prefix: str, case: dict):
        self.port = port
        self.prefix = prefix
        self.limit = case["limit"]
        self.per_ms = case["per_ms"]
        self.auto_resume = 1 if case.get("auto_resume") else 0
        self.window = f"{prefix}:budget:{KEY}:w"
        self.state_key = f"{prefix}:budget:{KEY}:s"
        self.last: dict | None = None

    def eval(self, script: str, keys: list[str], args: list) -> object:
        out = subprocess.run([REDIS_CLI, "-p", str(self.port), "--json", "EVAL", SCRIPTS[script],
                              str(len(keys)), *keys, *[str(a) for a in args]],
                             capture_output=True, text=True, timeout=10, check=True)
        return json.loads(out.stdout)

    def step(self, step: dict) -> dict:
        if "reserve" in step:
            return self.reserve(step["reserve"])
        if "settle" in step:
            return self.settle(step["settle"])
        if "resume" in step:
            return {"found": self.eval("resume", [self.window, self.state_key], []) != 0}
        grant = step["grant"]
        found = self.eval("grant", [self.window, self.state_key],
                          [grant.get("documents", 0), grant.get("minutes", 0) * 60_000,
                           MAX_ALLOWANCE])
        return {"found": found == 1}

    def reserve(self, documents: int) -> dict:
        out = self.eval("reserve", [f"{self.prefix}:breakers", self.window, self.state_key],
                        [0, 1, KEY, "case-rule", "db.c", self.limit, self.per_ms, documents,
                         0, 0, 1, 0, self.auto_resume])
        reserved = out[0] == 1
        state, (seq, amount, from_allowance, score) = out[1]
        if reserved:
            self.last = {"seq": seq, "documents": amount, "from_allowance": from_allowance,
                         "score": score}
        return {"reserved": reserved, "admission": ADMISSIONS[state[0]]}

    def settle(self, documents: int) -> dict:
        r = self.last
        documents = max(documents, 0)
        in_window = r["documents"] - r["from_allowance"]
        new_counted, refund, extra = in_window, 0, 0
        if documents < r["documents"]:
            unused = r["documents"] - documents
            from_window = min(unused, in_window)
            new_counted, refund = in_window - from_window, unused - from_window
        else:
            extra = documents - r["documents"]
        out = self.eval("settle", [self.window, self.state_key],
                        [KEY, r["seq"], in_window, r["score"], new_counted, refund, extra,
                         documents])
        return {"tripped_now": out[0] == 1}

    def state(self) -> dict:
        for described in self.eval("list", [f"{self.prefix}:breakers"], [self.prefix]):
            if described[11] == KEY:
                return {"used": described[1], "tripped": described[4] != -1,
                        "allowance": described[6]}
        return {}


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_the_scripts_give_the_tables_answers(redis_port, case):
    ledger = ScriptLedger(redis_port, f"mg-case-{CASES.index(case)}", case)
    start = time.monotonic()
    for n, step in enumerate(case["steps"]):
        if "at_ms" in step:
            time.sleep(max(0.0, start + step["at_ms"] / 1000 - time.monotonic()))
        got = ledger.step(step)
        got.update(ledger.state())
        for field, want in step["expect"].items():
            assert got.get(field) == want, f"step {n}: {field}: got {got}"
