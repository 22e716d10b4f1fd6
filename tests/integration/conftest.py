"""Fixtures for the integration tests: one FerretDB backend per session, a
fresh proxy per test in front of it, and pymongo clients for both paths.

Nothing here skips. If the backend cannot be built or started, or the proxy
binary is missing or does not start, the fixture raises and every test that
needs it fails with the reason and the process log.

MONGOGUARD_TEST_WITHOUT_PROXY=1 points the `proxy` fixture straight at the
backend. It exists only to check the tests themselves against the backend
(for example while the proxy does not build); results obtained that way say
nothing about the proxy, and the run prints so.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import uuid
from typing import Iterator

import pymongo
import pytest

import harness
from backend import Backend

WITHOUT_PROXY = os.environ.get("MONGOGUARD_TEST_WITHOUT_PROXY") == "1"

# libmongoc, loaded by mongoguard, keeps its counters in /dev/shm/mongoc-PID
# and removes the file at exit. A process the tests kill leaves its file
# behind; a later process given the same PID then finds it and prints
# "Falling back to malloc for counters" on stderr, which the tests that read
# a refusal's exact stderr would take for part of it. The counters are not
# used: every process the tests start keeps them in memory.
os.environ["MONGOC_DISABLE_SHM"] = "1"
NODE_DIR = harness.ROOT / "tests" / "node"
LINT_SRC = harness.ROOT / "scripts" / "deploylint"
GO_TIMEOUT = 900  # first build downloads the modules

CLIENT_OPTIONS = dict(
    directConnection=True,
    serverSelectionTimeoutMS=15_000,
    connectTimeoutMS=10_000,
    socketTimeoutMS=600_000,  # FerretDB is slow on large updates; never hang forever
)


class _BackendAsProxy:
    """Stand-in with ProxyProcess's interface, used only WITHOUT_PROXY."""

    def __init__(self, backend: Backend):
        self.port = backend.port
        self.admin_port = None
        self._backend = backend

    @property
    def address(self) -> str:
        return self._backend.address

    @property
    def uri(self) -> str:
        return self._backend.uri

    def log_text(self) -> str:
        return ""

    def stop(self) -> None:
        pass


def pytest_report_header(config):
    lines = [f"mongoguard binary: {harness.PROXY_BIN}"]
    if WITHOUT_PROXY:
        lines.append("MONGOGUARD_TEST_WITHOUT_PROXY=1: the proxy fixture is the backend itself; "
                     "these results do not test the proxy")
    return lines


@pytest.fixture(autouse=True)
def no_sanitizer_reports():
    """In a sanitizer run, a report written by any process a test started
    (the proxy, `mongoguard ctl`, the libmongoc client, ...) fails that test."""
    before = set(harness.sanitizer_log_files())
    yield
    new = [p for p in harness.sanitizer_log_files() if p not in before]
    if new:
        text = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[:20000]}" for p in new)
        pytest.fail(f"sanitizer reports during this test:\n{text}", pytrace=False)


@pytest.fixture(scope="session")
def backend() -> Iterator[Backend]:
    b = Backend()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture
def proxy(backend: Backend):
    if WITHOUT_PROXY:
        yield _BackendAsProxy(backend)
        return
    if not harness.PROXY_BIN.exists():
        raise RuntimeError(f"{harness.PROXY_BIN} does not exist: build it first "
                           "(cmake --build build)")
    p = harness.ProxyProcess(backend.upstream)
    try:
        yield p
    finally:
        died = p.proc.poll()  # it should still be running: only we stop it
        log = p.log_text() if died is not None else ""
        p.__exit__(None, None, None)  # stops it and removes its folder
        if died is not None:
            raise RuntimeError(f"the proxy exited with {died} during the test; log:\n"
                               f"{log[-20000:]}")


@pytest.fixture
def direct_client(backend: Backend) -> Iterator[pymongo.MongoClient]:
    client = pymongo.MongoClient(backend.uri, **CLIENT_OPTIONS)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def proxy_client(proxy) -> Iterator[pymongo.MongoClient]:
    client = pymongo.MongoClient(proxy.uri, **CLIENT_OPTIONS)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def db_name(request) -> str:
    """A database name no other test uses (the backend lives for the session)."""
    base = "".join(ch if ch.isalnum() else "_" for ch in request.node.name)[:40]
    return f"{base}_{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def deploylint() -> pathlib.Path:
    """scripts/deploylint built into the build folder: the deployment files'
    checks, and (-json-out) what the files say, read with the real tools'
    parsers (test_deploy.py, test_deploy_start.py)."""
    out = harness.BUILD / "deploylint"
    env = dict(os.environ, GOFLAGS="-buildvcs=false")
    go = shutil.which("go") or "/usr/local/go/bin/go"
    result = subprocess.run([go, "build", "-o", str(out), "."], cwd=LINT_SRC, env=env,
                            capture_output=True, text=True, timeout=GO_TIMEOUT)
    assert result.returncode == 0, f"go build of scripts/deploylint failed:\n{result.stderr}"
    return out


@pytest.fixture(scope="session")
def node_modules() -> "os.PathLike[str]":
    """tests/node/node_modules, installed from the lock file when missing."""
    modules = NODE_DIR / "node_modules"
    wanted = [modules / "mongodb" / "package.json", modules / ".bin" / "mongosh"]
    if not all(p.exists() for p in wanted):
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("npm not found: install Node.js 20 and npm")
        result = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--prefix", str(NODE_DIR)],
                                capture_output=True, text=True, timeout=900)
        if result.returncode != 0:
            raise RuntimeError(f"npm ci failed:\n{result.stdout}\n{result.stderr}")
    missing = [str(p) for p in wanted if not p.exists()]
    if missing:
        raise RuntimeError(f"after npm ci these are still missing: {missing}")
    return modules
