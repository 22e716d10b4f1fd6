"""Shared pieces of the hold and budget integration tests.

- `GuardedProxy`: build/mongoguard started with `--config` on a policy
  written to a temporary folder, with the admin API enabled from that file
  (`admin: {listen, token_file}`) and a bearer token beside it.
- `AdminClient`: the admin HTTP API over urllib (holds, breakers, decisions,
  metrics), plus `mongoguard ctl` against the same endpoint.
- `check_hold_error`: what a client must see when its held operation is
  refused: code 13 Unauthorized, an errmsg naming the rule, no error labels.
- `raw_delete`: an OP_MSG delete sent over a bare socket after a hello, for
  tests that must control the connection itself (client gone, pipelining).

Every wait here is bounded."""

from __future__ import annotations

import json
import os
import pathlib
import secrets
import shutil
import socket
import subprocess
import tempfile
import textwrap
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Any, Callable

import pymongo
from pymongo.errors import OperationFailure

import wire
from harness import PROXY_BIN, ProxyProcess, free_port, read_audit_text

UNAUTHORIZED = 13
MAX_TIME_MS_EXPIRED = 50
SERVER_SELECTION_MS = 5000


def unique_db(prefix: str) -> str:
    """A database name no other test uses (rules key on it)."""
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def wait_until(predicate: Callable[[], Any], timeout: float, what: str,
               interval: float = 0.05) -> Any:
    """Polls `predicate` until it returns something truthy; fails after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class ApiError(Exception):
    def __init__(self, status: int, body: Any):
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body


class AdminClient:
    """The admin HTTP API, authenticated with the bearer token."""

    def __init__(self, base_url: str, token: str, token_file: str | None = None):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.token_file = token_file

    def request(self, method: str, path: str, body: dict | None = None,
                timeout: float = 5.0) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                raw = r.read().decode()
                ctype = r.headers.get("Content-Type", "")
        except urllib.error.HTTPError as e:
            raw = e.read().decode(errors="replace")
            try:
                parsed: Any = json.loads(raw)
            except ValueError:
                parsed = raw
            raise ApiError(e.code, parsed) from None
        return json.loads(raw) if ctype.startswith("application/json") else raw

    # holds
    def holds(self) -> list[dict]:
        return self.request("GET", "/api/holds")["holds"]

    def wait_for_hold(self, predicate: Callable[[dict], bool] = lambda h: True,
                      timeout: float = 10.0) -> dict:
        def find():
            for h in self.holds():
                if predicate(h):
                    return h
            return None
        return wait_until(find, timeout, "a pending hold in GET /api/holds")

    def approve(self, hold_id: int, by: str = "alice") -> dict:
        return self.request("POST", f"/api/holds/{hold_id}/approve", {"by": by})

    def reject(self, hold_id: int, by: str = "alice") -> dict:
        return self.request("POST", f"/api/holds/{hold_id}/reject", {"by": by})

    # breakers
    def breakers(self) -> list[dict]:
        return self.request("GET", "/api/breakers")["breakers"]

    def breaker(self, name: str) -> dict | None:
        for b in self.breakers():
            if b["name"] == name:
                return b
        return None

    def breaker_action(self, name: str, action: str, by: str = "alice", **extra) -> dict:
        quoted = urllib.parse.quote(name, safe="")
        return self.request("POST", f"/api/breakers/{quoted}/{action}", {"by": by, **extra})

    def decisions(self, limit: int = 50) -> list[dict]:
        return self.request("GET", f"/api/decisions?limit={limit}")["decisions"]

    def metrics(self) -> dict[str, float]:
        text = self.request("GET", "/metrics")
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                out[name] = float(value)
        return out

    def ctl(self, *args: str, timeout: float = 15.0) -> subprocess.CompletedProcess:
        """`mongoguard ctl --admin URL --token-file FILE ARGS...`"""
        assert self.token_file, "ctl needs the token file"
        return subprocess.run([str(PROXY_BIN), "ctl", "--admin", self.base_url,
                               "--token-file", self.token_file, *args],
                              capture_output=True, text=True, timeout=timeout)


class GuardedProxy:
    """The proxy under test, configured by a YAML policy that also enables the
    admin API (`admin: {listen, token_file}`) with a fresh bearer token.

    `policy_yaml` holds the rules (and `holds:` if wanted); the admin and audit
    sections are added here."""

    def __init__(self, upstream: str, policy_yaml: str, *extra_args: str, threads: int = 2,
                 file_size_limit: int | None = None):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="mg-holds-"))
        self.config_path = self.dir / "mongoguard.yaml"
        self.audit_path = self.dir / "audit.jsonl"
        self.token_path = self.dir / "admin.token"
        self.token = secrets.token_hex(16)
        self.token_path.write_text(self.token + "\n")
        os.chmod(self.token_path, 0o600)
        self.admin_port = free_port()
        self.config_path.write_text(self.render(policy_yaml))
        self._clients: list[pymongo.MongoClient] = []
        self.proxy: ProxyProcess | None = None
        try:
            self.proxy = ProxyProcess(upstream, "--config", str(self.config_path), *extra_args,
                                      threads=threads, admin=False,
                                      file_size_limit=file_size_limit)
            self.proxy.wait_for_log(" listening on ", timeout=10)
        except Exception:
            if self.proxy is not None:
                self.proxy.stop()
            shutil.rmtree(self.dir, ignore_errors=True)
            raise
        self.admin = AdminClient(f"http://127.0.0.1:{self.admin_port}", self.token,
                                 str(self.token_path))

    def render(self, policy_yaml: str) -> str:
        text = textwrap.dedent(policy_yaml).strip() + "\n"
        head = (f"admin:\n  listen: 127.0.0.1:{self.admin_port}\n"
                f"  token_file: {self.token_path}\n"
                f"audit:\n  path: {self.audit_path}\n  redact: true\n")
        return head + text

    @property
    def port(self) -> int:
        return self.proxy.port

    @property
    def uri(self) -> str:
        return self.proxy.uri

    @property
    def proc(self) -> subprocess.Popen:
        return self.proxy.proc

    def client(self, **kwargs) -> pymongo.MongoClient:
        kwargs.setdefault("serverSelectionTimeoutMS", SERVER_SELECTION_MS)
        # One connection per client: "this connection is held" stays meaningful.
        kwargs.setdefault("maxPoolSize", 1)
        kwargs.setdefault("retryWrites", False)
        c = pymongo.MongoClient(self.proxy.uri, **kwargs)
        self._clients.append(c)
        return c

    def log_text(self) -> str:
        return self.proxy.log_text()

    def wait_for_log(self, needle: str, timeout: float = 10.0) -> str:
        return self.proxy.wait_for_log(needle, timeout)

    def audit_records(self) -> list[dict]:
        text = read_audit_text(self.audit_path)
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def stop(self) -> None:
        for c in self._clients:
            c.close()
        if self.proxy is not None:
            self.proxy.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "GuardedProxy":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def held_prefix(operation: str, ns: str, rule: str) -> str:
    return f"mongoguard: {operation} on {ns} held by rule '{rule}': "


def check_hold_error(err: OperationFailure, rule: str, *, operation: str | None = None,
                     ns: str | None = None, code: int = UNAUTHORIZED,
                     contains: str | None = None) -> str:
    """Asserts `err` is mongoguard's answer to a held operation; returns the errmsg."""
    details = err.details or {}
    errmsg = details.get("errmsg", str(err))
    assert err.code == code, f"expected code {code}, got {err.code}: {details}"
    assert details.get("ok") == 0, details
    assert f"held by rule '{rule}'" in errmsg, errmsg
    if operation is not None and ns is not None:
        assert held_prefix(operation, ns, rule) in errmsg, errmsg
    if contains is not None:
        assert contains in errmsg, errmsg
    assert not details.get("errorLabels"), f"a refusal must carry no error labels: {details}"
    return errmsg


def find_operation_failure(exc: BaseException | None) -> OperationFailure | None:
    """The OperationFailure in an exception chain (mongoengine wraps it in
    OperationError from inside its except block)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, OperationFailure):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


# --- raw wire ---------------------------------------------------------------

def raw_hello(port: int, app: str = "raw-client") -> socket.socket:
    """A bare connection that has said hello (as drivers do before anything else)."""
    sock = wire.connect(port)
    reply = wire.roundtrip(sock, wire.op_msg({"hello": 1, "$db": "admin",
                                              "client": {"application": {"name": app}}}))
    assert reply.body.get("ok") == 1, reply.body
    return sock


def delete_msg(database: str, collection: str, q: dict, limit: int = 1,
               **extra) -> tuple[bytes, int]:
    """An OP_MSG delete and its request id."""
    rid = wire.next_request_id()
    body = {"delete": collection, "deletes": [{"q": q, "limit": limit}], "ordered": True,
            "$db": database, **extra}
    return wire.op_msg(body, request_id=rid), rid


def ping_msg() -> tuple[bytes, int]:
    rid = wire.next_request_id()
    return wire.op_msg({"ping": 1, "$db": "admin"}, request_id=rid), rid
