"""The embedded test backend: FerretDB v1.24 with SQLite storage.

Every Backend instance is a separate ferretdb process on a free port of
127.0.0.1 with its own temporary data and state folders, so several may
run at once (parallel test sessions, a test that needs a second
upstream). Telemetry and the debug HTTP endpoint are off; the server's log
goes to a file in the instance's folder and is shown when start-up fails.

The binary comes from $MONGOGUARD_FERRETDB, else from scripts/ferretdb.sh
(which builds it once per machine and prints its path).

What FerretDB 1.24 + SQLite cannot do, as far as the conformance suite is
concerned (checked against the binary scripts/ferretdb.sh builds):
  - Decimal128 values: inserting a document that holds one makes FerretDB
    close the connection (no error reply). The conformance data has none.
  - update: arrayFilters, the positional `$` operator and pipeline updates
    (u as an array) answer NotImplemented (238) / 28 / TypeMismatch (14).
  - findAndModify with `fields` (a projection): NotImplemented (238).
  - find projections with $slice or $elemMatch: NotImplemented (238).
  - $expr in a filter ("operator $gt is not implemented yet", 238).
  - aggregate: $group accumulators $avg and $push, the $multiply operator,
    the $lookup and $facet stages: NotImplemented (238).
  - Wrong results: in a $group with two $sum accumulators, every one after
    the first comes back as 0. Tests use one accumulator per stage where
    they check values.
  - A $project stage on documents without `_id` (after $collStats) panics
    the connection handler: the connection is closed, no reply. Left out.
  - The 16 MiB document limit is not enforced on update: a $set that grows a
    15.9 MB document past 16 MiB succeeds.
  - A failed unique index build answers with an internal message naming the
    SQLite index (it differs per database), so only its code is compared.
  - Multi-document updates get slow as collection size times matched
    documents grows (measured: all 1,000 documents 4 s, all 5,000 over a
    minute, 10,000 of 100,000 more than five minutes). Update scenarios
    therefore use collections of at most a few hundred documents. Inserts,
    finds, counts and deletes are fast (100,000 inserts in about 2 s).
  - endSessions is not a command it knows (drivers only log a warning
    when they close).
  - Per DESIGN.md, and not exercised here: no OP_COMPRESSED, no $out/$merge,
    no transactions, no replica sets, and moreToCome requests are answered.
The suite sends each of the unsupported operations both ways and requires
the same error; anything FerretDB cannot answer at all is left out.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import tempfile
import time

from harness import ROOT, free_port, wait_for_port

FERRETDB_SCRIPT = ROOT / "scripts" / "ferretdb.sh"
START_TIMEOUT = 30.0  # seconds until the port accepts connections
BUILD_TIMEOUT = 1200  # a first build on a slow machine


def ferretdb_binary() -> pathlib.Path:
    """Path of the ferretdb binary; builds it (once per machine) if needed."""
    env = os.environ.get("MONGOGUARD_FERRETDB")
    if env:
        path = pathlib.Path(env)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise RuntimeError(f"MONGOGUARD_FERRETDB={env} is not an executable file")
        return path
    result = subprocess.run(["bash", str(FERRETDB_SCRIPT)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, timeout=BUILD_TIMEOUT)
    if result.returncode != 0:
        raise RuntimeError(f"{FERRETDB_SCRIPT} failed ({result.returncode}):\n{result.stderr}")
    lines = result.stdout.strip().splitlines()
    if not lines:
        raise RuntimeError(f"{FERRETDB_SCRIPT} printed no path:\n{result.stderr}")
    return pathlib.Path(lines[-1])


def _die_with_parent() -> None:
    """Runs in the child: a test run that is killed must not leave servers behind."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except Exception:  # noqa: BLE001 - best effort, Linux only
        pass


class Backend:
    """A FerretDB process with SQLite storage in a fresh temporary folder."""

    def __init__(self, binary: pathlib.Path | None = None, attempts: int = 3):
        self.binary = binary or ferretdb_binary()
        self.workdir = pathlib.Path(tempfile.mkdtemp(prefix="mg-ferretdb-"))
        self.log_path = self.workdir / "ferretdb.log"
        self.proc: subprocess.Popen | None = None
        self._log = None
        last_error: Exception | None = None
        # free_port() releases the port before ferretdb binds it, so another
        # process can take it in between; pick a new one and retry.
        for _ in range(attempts):
            try:
                self._start()
                return
            except Exception as e:  # noqa: BLE001 - reported below
                last_error = e
                self._kill()
        log = self.log_text()
        shutil.rmtree(self.workdir, ignore_errors=True)
        raise RuntimeError(f"FerretDB did not start: {last_error}\n--- ferretdb log ---\n{log}")

    def _start(self) -> None:
        self.port = free_port()
        data = self.workdir / "data"
        state = self.workdir / "state"
        data.mkdir(exist_ok=True)
        state.mkdir(exist_ok=True)
        args = [
            str(self.binary),
            "--handler=sqlite",
            f"--sqlite-url=file:{data}/",
            f"--state-dir={state}",
            f"--listen-addr=127.0.0.1:{self.port}",
            "--debug-addr=-",  # no metrics/pprof HTTP listener
            "--telemetry=disable",
            "--log-level=info",
            "--log-format=text",
            *self.extra_args(),
        ]
        env = dict(os.environ, FERRETDB_TELEMETRY="disable", DO_NOT_TRACK="1")
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env, cwd=self.workdir,
                                     preexec_fn=_die_with_parent)
        wait_for_port(self.port, self.proc, timeout=START_TIMEOUT)
        self._wait_ready()

    def extra_args(self) -> list[str]:
        """Flags a variant of the backend adds (see auth_backend.py)."""
        return []

    def _wait_ready(self) -> None:
        """The port opens before the handler is ready on some versions; ping it."""
        import pymongo

        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                with pymongo.MongoClient(self.uri, serverSelectionTimeoutMS=2000) as c:
                    c.admin.command("ping")
                return
            except Exception:
                if time.monotonic() > deadline or (self.proc and self.proc.poll() is not None):
                    raise
                time.sleep(0.1)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def upstream(self) -> str:
        """The form the proxy's --upstream takes: no query string."""
        return f"mongodb://{self.address}"

    @property
    def uri(self) -> str:
        return f"mongodb://{self.address}/?directConnection=true"

    def log_text(self) -> str:
        if self._log and not self._log.closed:
            self._log.flush()
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def _kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self._log is not None and not self._log.closed:
            self._log.close()

    def stop(self) -> None:
        self._kill()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "Backend":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
