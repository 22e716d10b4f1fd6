"""Shared pieces of the policy integration tests.

- `policy_backend`: the session's FerretDB backend (conftest.py's `backend`
  fixture when it exists, else one started for the module).
- `PolicyProxy`: build/mongoguard started with `--config` on a policy file
  written to a temporary folder, with an audit log beside it.
- `expect_blocked` / `check_block_error`: what a client must see when a rule
  blocks its command: code 13 Unauthorized, an errmsg naming the rule, no
  error labels (drivers must not retry a refusal).
- `mongosh_binary` / `run_mongosh`: the Node shell from tests/node.

Every wait here is bounded."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import tempfile
import textwrap
import time
import uuid

import pymongo
import pytest
from pymongo.errors import OperationFailure

from backend import Backend
from harness import ROOT, ProxyProcess, read_audit_text

UNAUTHORIZED = 13
SERVER_SELECTION_MS = 5000


def unique_db(prefix: str) -> str:
    """A database name no other test uses (policy rules key on the prefix)."""
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def policy_backend(request):
    """conftest.py's session-wide backend when there is one; else a module-wide one."""
    try:
        shared = request.getfixturevalue("backend")
    except pytest.FixtureLookupError:
        shared = None
    if shared is not None:
        yield shared
        return
    own = Backend()
    try:
        yield own
    finally:
        own.stop()


@pytest.fixture(scope="module")
def direct(policy_backend):
    """A client connected straight to the backend, bypassing the proxy: the judge of
    whether data really changed."""
    client = pymongo.MongoClient(policy_backend.uri, serverSelectionTimeoutMS=SERVER_SELECTION_MS)
    yield client
    client.close()


class PolicyProxy:
    """The proxy under test, configured by a YAML policy written to a file.

    Unless the text has its own `audit:` section, an audit section pointing
    at `audit_path` (redacted) is prepended."""

    def __init__(self, upstream: str, policy_yaml: str, *extra_args: str, threads: int = 2):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="mg-policy-"))
        self.config_path = self.dir / "mongoguard.yaml"
        self.audit_path = self.dir / "audit.jsonl"
        self.write_policy(policy_yaml)
        self._clients: list[pymongo.MongoClient] = []
        try:
            self.proxy = ProxyProcess(upstream, "--config", str(self.config_path), *extra_args,
                                      threads=threads)
            # The port opens before SIGHUP is handled; "listening on" comes after.
            self.proxy.wait_for_log(" listening on ", timeout=10)
        except Exception:
            if hasattr(self, "proxy"):
                self.proxy.stop()
            shutil.rmtree(self.dir, ignore_errors=True)
            raise

    def render(self, policy_yaml: str) -> str:
        text = textwrap.dedent(policy_yaml).strip() + "\n"
        if not any(line.startswith("audit:") for line in text.splitlines()):
            text = f"audit:\n  path: {self.audit_path}\n  redact: true\n" + text
        return text

    def write_policy(self, policy_yaml: str) -> None:
        """Replaces the policy file in one step (write a sibling, rename over)."""
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(self.render(policy_yaml))
        os.replace(tmp, self.config_path)

    @property
    def uri(self) -> str:
        return self.proxy.uri

    def client(self, **kwargs) -> pymongo.MongoClient:
        kwargs.setdefault("serverSelectionTimeoutMS", SERVER_SELECTION_MS)
        # One connection per client keeps "the same connection" meaningful.
        kwargs.setdefault("maxPoolSize", 1)
        c = pymongo.MongoClient(self.proxy.uri, **kwargs)
        self._clients.append(c)
        return c

    def audit_records(self) -> list[dict]:
        text = read_audit_text(self.audit_path)
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def audit_for(self, database: str) -> list[dict]:
        return [r for r in self.audit_records() if r.get("database") == database
                or any(t.get("ns", "").startswith(database + ".") for t in r.get("targets", []))]

    def wait_for_audit(self, predicate, timeout: float = 5.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for record in self.audit_records():
                if predicate(record):
                    return record
            if time.monotonic() > deadline:
                raise AssertionError(f"no matching audit record in {timeout}s:\n"
                                     + "\n".join(map(json.dumps, self.audit_records())))
            time.sleep(0.05)

    def log_text(self) -> str:
        return self.proxy.log_text()

    def stop(self) -> None:
        for c in self._clients:
            c.close()
        self.proxy.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "PolicyProxy":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def check_block_error(err: OperationFailure, rule: str, operation: str | None = None,
                      ns: str | None = None) -> str:
    """Asserts `err` is mongoguard's refusal by `rule`; returns the errmsg."""
    details = err.details or {}
    errmsg = details.get("errmsg", str(err))
    assert err.code == UNAUTHORIZED, f"expected code 13, got {err.code}: {details}"
    assert details.get("codeName") == "Unauthorized", details
    assert details.get("ok") == 0, details
    assert errmsg.startswith("mongoguard: "), errmsg
    assert f"blocked by rule '{rule}'" in errmsg, errmsg
    if operation is not None and ns is not None:
        assert errmsg.startswith(f"mongoguard: {operation} on {ns} blocked"), errmsg
    assert not details.get("errorLabels"), f"a refusal must carry no error labels: {details}"
    return errmsg


def expect_blocked(call, rule: str, operation: str | None = None, ns: str | None = None) -> str:
    with pytest.raises(OperationFailure) as caught:
        call()
    return check_block_error(caught.value, rule, operation, ns)


def seed(direct: pymongo.MongoClient, database: str, collection: str = "c", count: int = 5) -> None:
    coll = direct[database][collection]
    coll.insert_many([{"_id": i, "x": i, "name": f"doc-{i}"} for i in range(count)])
    coll.create_index("x")


def snapshot(direct: pymongo.MongoClient, database: str) -> dict:
    """Every collection of `database` with its documents and index names."""
    db = direct[database]
    out = {}
    for name in sorted(db.list_collection_names()):
        docs = sorted(db[name].find(), key=lambda d: repr(d.get("_id")))
        out[name] = (docs, sorted(db[name].index_information()))
    return out


# --- mongosh -----------------------------------------------------------------

NODE_DIR = ROOT / "tests" / "node"
MONGOSH_TIMEOUT = 60.0


def mongosh_binary() -> pathlib.Path:
    """tests/node's mongosh ($MONGOGUARD_MONGOSH overrides); installs tests/node's
    packages once when its node_modules is missing."""
    env = os.environ.get("MONGOGUARD_MONGOSH")
    if env:
        return pathlib.Path(env)
    binary = NODE_DIR / "node_modules" / ".bin" / "mongosh"
    if not binary.exists() and (NODE_DIR / "package.json").exists():
        subprocess.run(["npm", "install", "--prefix", str(NODE_DIR), "--no-audit", "--no-fund"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600, check=False)
    on_path = shutil.which("mongosh")
    if not binary.exists() and on_path:
        return pathlib.Path(on_path)
    assert binary.exists(), (f"mongosh not found at {binary}: run "
                             f"`npm install --prefix tests/node` (needs tests/node/package.json)")
    return binary


# Prepended to every script: `attempt(name, fn)` runs fn and prints one JSON
# line saying whether it threw, and with what code and message. A result with
# ok: 0 that did not throw counts as an error too.
MONGOSH_PRELUDE = r"""
function attempt(name, fn) {
  const out = { marker: "MGTEST", name: name };
  try {
    const ret = fn();
    if (ret && typeof ret === "object" && ret.ok === 0) {
      out.threw = true;
      out.code = ret.code; out.codeName = ret.codeName; out.errmsg = ret.errmsg;
    } else {
      out.threw = false;
    }
  } catch (e) {
    out.threw = true;
    out.code = e.code; out.codeName = e.codeName;
    out.errmsg = e.errmsg || e.message;
    out.errorLabels = e.errorLabels || (e.errorLabelSet ? Array.from(e.errorLabelSet) : []);
  }
  print(JSON.stringify(out));
}
"""


def run_mongosh(uri: str, script: str, timeout: float = MONGOSH_TIMEOUT) -> dict[str, dict]:
    """Runs `script` (with the attempt() prelude) in mongosh; returns {name: result}."""
    binary = mongosh_binary()
    result = subprocess.run(
        [str(binary), uri, "--quiet", "--norc", "--eval", MONGOSH_PRELUDE + script],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout,
        stdin=subprocess.DEVNULL,
        env=dict(os.environ, MONGOSH_NO_UPDATE_CHECK="1", DO_NOT_TRACK="1",
                 MONGOSH_DISABLE_TELEMETRY="1", HOME=os.environ.get("HOME", "/tmp")))
    assert result.returncode == 0, (f"mongosh exited {result.returncode}\n"
                                    f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}")
    out: dict[str, dict] = {}
    for line in result.stdout.splitlines():
        line = line.strip()
        if line.startswith("{") and '"MGTEST"' in line:
            record = json.loads(line)
            out[record["name"]] = record
    return out
