"""The driver matrix: one scenario, seven clients, through mongoguard.

Each client runs a small program from tests/drivers/ (pymongo, mongoengine,
the Node driver, mongosh, the Go driver, the Java driver, libmongoc) that
takes the proxy URI and a database name, prints one JSON line per step and
exits non-zero on the first mismatch:

  version      the driver and its version (collected into
               build/driver-matrix.json)
  crud         insert 5 people, find age >= 30, update one, delete one
  blocked      deleteMany({}) on `people` is refused by the rule
               'no-unfiltered-writes' (code 13, mongoguard's errmsg)
  hold-start   about to delete one document of `held`, which the rule
               'hold-matrix-deletes' parks
  held-delete  the delete came back, deletedCount 1, after this test
               approved the hold through POST /api/holds/{id}/approve
  done

This test starts the program, waits for the hold in GET /api/holds, checks
over a direct connection that nothing was deleted meanwhile, approves it
and then waits for the program. The programs are built here when needed:
`go build` into the build folder, `mvn package` (the jar goes to the build
folder; ~/.m2 keeps the downloads), `cc` against libmongoc into a temporary
folder. Maven, a JDK and libmongoc-dev are installed with apt-get when they
are missing (as root). Every wait is bounded.
"""

from __future__ import annotations

import fcntl
import json
import os
import pathlib
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import pymongo
import pytest

import harness
from hold_helpers import GuardedProxy, unique_db

DRIVERS_DIR = harness.ROOT / "tests" / "drivers"
NODE_DIR = harness.ROOT / "tests" / "node"
BUILD_OUT = harness.BUILD / "drivers"
MATRIX_JSON = harness.BUILD / "driver-matrix.json"

BLOCK_RULE = "no-unfiltered-writes"
HOLD_RULE = "hold-matrix-deletes"
POLICY = f"""
    holds:
      timeout: 2m
    rules:
      - name: {BLOCK_RULE}
        match: {{ namespace: "*.*", operations: [delete, update], filter: unfiltered }}
        action: block
      - name: {HOLD_RULE}
        match: {{ namespace: "*.held", operations: [delete] }}
        action: hold
"""

DRIVERS = ["pymongo", "mongoengine", "node", "mongosh", "go", "java", "c"]
# The name each program reports in its version line.
REPORTED_NAME = {"c": "libmongoc"}

START_TIMEOUT = 120.0   # program start (JVM, mongosh) up to the held delete
HOLD_TIMEOUT = 30.0     # the hold shows up in GET /api/holds
FINISH_TIMEOUT = 60.0   # after approval, the program finishes
PARKED_FOR = 1.0        # the hold is left pending this long before approval
BUILD_TIMEOUT = 900     # a first build that downloads modules / artifacts
APT_TIMEOUT = 900


# --- prerequisites and builds ------------------------------------------------

def _run(argv: list[str], what: str, timeout: float, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kwargs)
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed ({result.returncode}): {' '.join(argv)}\n"
                           f"--- stdout ---\n{result.stdout[-5000:]}\n"
                           f"--- stderr ---\n{result.stderr[-5000:]}")
    return result


_apt_updated = False


def apt_install(*packages: str) -> None:
    """Debian packages, installed as root (the tests run on a fresh machine)."""
    global _apt_updated
    if os.geteuid() != 0:
        raise RuntimeError(f"missing {' '.join(packages)}: install them (apt-get install -y "
                           f"{' '.join(packages)}) or run the tests as root")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if not _apt_updated:
        _run(["apt-get", "update"], "apt-get update", APT_TIMEOUT, env=env)
        _apt_updated = True
    _run(["apt-get", "install", "-y", "--no-install-recommends", *packages],
         "apt-get install", APT_TIMEOUT, env=env)


def _newest_mtime(paths) -> float:
    return max(p.stat().st_mtime for p in paths)


def _go_binary() -> str:
    go = shutil.which("go") or ("/usr/local/go/bin/go"
                                if os.access("/usr/local/go/bin/go", os.X_OK) else None)
    if go is None:
        raise RuntimeError("go not found: install Go 1.25 or newer (the Go driver scenario "
                           "needs go.mongodb.org/mongo-driver/v2)")
    # go.mongodb.org/mongo-driver/v2 v2.10.0 says `go 1.25.0`. Go 1.21 and
    # later fetch that toolchain from the module proxy by themselves; older
    # ones (Debian 12's golang-go is 1.19) cannot build it at all.
    goversion = _run([go, "env", "GOVERSION"], "go env GOVERSION", 60).stdout.strip()
    try:
        major, minor = (int(x) for x in goversion.removeprefix("go").split(".")[:2])
    except ValueError:
        major, minor = 1, 99  # a development build: let go decide
    if (major, minor) < (1, 21):
        raise RuntimeError(f"{go} is {goversion}; the Go driver scenario needs Go 1.25 or newer")
    return go


def build_go() -> list[str]:
    out = BUILD_OUT / "go-scenario"
    BUILD_OUT.mkdir(parents=True, exist_ok=True)
    # The go build cache makes this a second or two when nothing changed.
    _run([_go_binary(), "build", "-o", str(out), "."], "go build", BUILD_TIMEOUT,
         cwd=DRIVERS_DIR / "go")
    return [str(out)]


def build_java() -> list[str]:
    if shutil.which("mvn") is None or shutil.which("java") is None or \
            subprocess.run(["mvn", "-v"], capture_output=True, timeout=60).returncode != 0:
        apt_install("maven", "default-jdk-headless")
    java_dir = DRIVERS_DIR / "java"
    out_dir = BUILD_OUT / "java"
    jar = out_dir / "mongoguard-matrix-java.jar"
    sources = [java_dir / "pom.xml", *(java_dir / "src").rglob("*.java")]
    if not jar.exists() or jar.stat().st_mtime < _newest_mtime(sources):
        base = ["mvn", "-B", "-q", f"-Dmatrix.build.dir={out_dir}", "package"]
        # Offline first: after the first download ~/.m2 has everything.
        offline = subprocess.run([base[0], "-o", *base[1:]], capture_output=True, text=True,
                                 timeout=BUILD_TIMEOUT, cwd=java_dir)
        if offline.returncode != 0:
            _run(base, "mvn package", BUILD_TIMEOUT, cwd=java_dir)
    java = shutil.which("java")
    assert java and jar.exists(), f"{jar} was not built"
    return [java, "-jar", str(jar)]


def build_c(tmp_dir: pathlib.Path) -> list[str]:
    def have_libmongoc() -> bool:
        return shutil.which("pkg-config") is not None and subprocess.run(
            ["pkg-config", "--exists", "libmongoc-1.0"], timeout=30).returncode == 0
    if not have_libmongoc() or shutil.which("cc") is None:
        apt_install("libmongoc-dev", "pkg-config", "gcc", "libc6-dev")
    flags = _run(["pkg-config", "--cflags", "--libs", "libmongoc-1.0"], "pkg-config", 30)
    out = tmp_dir / "c-scenario"
    _run(["cc", "-Wall", "-Wextra", "-o", str(out),
          str(DRIVERS_DIR / "c" / "scenario.c"), *flags.stdout.split()], "cc scenario.c", 300)
    return [str(out)]


@pytest.fixture(scope="module")
def programs(tmp_path_factory):
    """Builds (once per module, on first use) and returns a driver's command
    prefix; the URI and database name are appended."""
    cache: dict[str, list[str]] = {}

    def get(driver: str, node_modules_fixture) -> list[str]:
        if driver in cache:
            return cache[driver]
        if driver == "pymongo":
            argv = [sys.executable, str(DRIVERS_DIR / "python" / "scenario.py")]
        elif driver == "mongoengine":
            argv = [sys.executable, str(DRIVERS_DIR / "python" / "scenario_mongoengine.py")]
        elif driver == "node":
            node_modules_fixture()
            node = shutil.which("node")
            assert node, "node not found: install Node.js 20"
            argv = [node, str(DRIVERS_DIR / "node" / "scenario.js")]
        elif driver == "mongosh":
            modules = node_modules_fixture()
            argv = [str(modules / ".bin" / "mongosh"), "--nodb", "--quiet", "--norc"]
        elif driver == "go":
            argv = build_go()
        elif driver == "java":
            argv = build_java()
        elif driver == "c":
            argv = build_c(tmp_path_factory.mktemp("c-scenario"))
        else:
            raise AssertionError(driver)
        cache[driver] = argv
        return argv

    return get


def command_for(driver: str, prefix: list[str], uri: str, database: str) -> list[str]:
    if driver == "mongosh":
        # mongosh scripts get no argv: the arguments come in an --eval prelude.
        prelude = f"const MATRIX_ARGS = {json.dumps([uri, database])};"
        return [*prefix, "--eval", prelude, "--file", str(DRIVERS_DIR / "mongosh" / "scenario.js")]
    return [*prefix, uri, database]


# --- running one program -----------------------------------------------------

class Program:
    """A scenario program with its output read on threads (never blocks)."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: pathlib.Path):
        self.argv = argv
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, text=True, env=env, cwd=cwd)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._threads = [threading.Thread(target=self._read_stdout, daemon=True),
                         threading.Thread(target=self._read_stderr, daemon=True)]
        for t in self._threads:
            t.start()

    def _read_stdout(self) -> None:
        for line in self.proc.stdout:
            self.stdout.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def _read_stderr(self) -> None:
        for line in self.proc.stderr:
            self.stderr.append(line)

    def wait_for_step(self, step: str, timeout: float) -> dict:
        """The next JSON line whose step is `step` (other lines are kept)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {step!r} line within {timeout}s\n{self.output()}")
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                self.proc.wait(timeout=10)
                raise AssertionError(f"the program exited ({self.proc.returncode}) before "
                                     f"the {step!r} line\n{self.output()}")
            record = parse_line(line)
            if record is not None and record.get("step") == step:
                return record

    def finish(self, timeout: float) -> int:
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"the program did not finish within {timeout}s\n"
                                 f"{self.output()}") from None
        for t in self._threads:
            t.join(timeout=10)
        return rc

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def records(self) -> dict[str, dict]:
        out: dict[str, dict] = {}
        for line in self.stdout:
            record = parse_line(line)
            if record is not None and "step" in record:
                out[record["step"]] = record
        return out

    def output(self) -> str:
        return (f"--- command ---\n{' '.join(self.argv)}\n"
                f"--- stdout ---\n{''.join(self.stdout)[-8000:]}\n"
                f"--- stderr ---\n{''.join(self.stderr)[-8000:]}")


def parse_line(line: str) -> dict | None:
    line = line.strip()
    if not line.startswith("{"):
        return None  # mongosh/JVM chatter, never a step
    try:
        return json.loads(line)
    except ValueError:
        return None


def record_result(driver: str, entry: dict) -> None:
    """Adds this driver's outcome to build/driver-matrix.json (read-modify-write
    under a lock: parallel sessions may share the build folder)."""
    MATRIX_JSON.parent.mkdir(parents=True, exist_ok=True)
    with open(MATRIX_JSON.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            data = json.loads(MATRIX_JSON.read_text())
        except (FileNotFoundError, ValueError):
            data = {}
        data[driver] = entry
        tmp = MATRIX_JSON.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        tmp.replace(MATRIX_JSON)


# --- the test ----------------------------------------------------------------

@pytest.mark.parametrize("driver", DRIVERS)
def test_driver_scenario_through_mongoguard(driver, backend, programs, request):
    started = time.monotonic()
    entry: dict = {"driver": driver, "passed": False}
    try:
        prefix = programs(driver, lambda: request.getfixturevalue("node_modules"))
        entry["build_seconds"] = round(time.monotonic() - started, 1)
        run_scenario(driver, prefix, backend, entry)
        entry["passed"] = True
    finally:
        entry["seconds"] = round(time.monotonic() - started, 1)
        record_result(driver, entry)


def run_scenario(driver: str, prefix: list[str], backend, entry: dict) -> None:
    database = unique_db(f"matrix_{driver}")
    people_ns, held_ns = f"{database}.people", f"{database}.held"
    direct = pymongo.MongoClient(backend.uri, serverSelectionTimeoutMS=15_000)
    home = tempfile.mkdtemp(prefix="mg-matrix-home-")
    program = None
    try:
        with GuardedProxy(backend.upstream, POLICY) as gp:
            # A private HOME: mongosh keeps history and logs there; nothing
            # else needs one, and none of them should touch the real one.
            env = dict(os.environ, HOME=home, MONGOSH_NO_UPDATE_CHECK="1", DO_NOT_TRACK="1")
            uri = gp.uri
            program = Program(command_for(driver, prefix, uri, database), env, NODE_DIR)
            try:
                version = program.wait_for_step("version", START_TIMEOUT)
                crud = program.wait_for_step("crud", START_TIMEOUT)
                blocked = program.wait_for_step("blocked", START_TIMEOUT)
                hold_start = program.wait_for_step("hold-start", START_TIMEOUT)
                assert hold_start["ns"] == held_ns, hold_start

                hold = gp.admin.wait_for_hold(lambda h: h.get("ns") == held_ns,
                                              timeout=HOLD_TIMEOUT)
                assert hold["rule"] == HOLD_RULE, hold
                # While it is parked nothing has been deleted, and the blocked
                # deleteMany left every document in place.
                assert direct[database].held.count_documents({}) == 2
                assert direct[database].people.count_documents({}) == 4
                # The driver's call really waits: still parked a moment later.
                time.sleep(PARKED_FOR)
                assert program.proc.poll() is None, "the held delete returned before approval"
                assert program.lines.empty(), "the program went on before approval"
                assert [h["id"] for h in gp.admin.holds()] == [hold["id"]]

                decided = gp.admin.approve(hold["id"], by="matrix")
                assert decided.get("outcome") == "approved", decided
                rc = program.finish(FINISH_TIMEOUT)
            except BaseException as exc:
                program.kill()
                raise AssertionError(f"{driver}: {exc}\n{program.output()}\n"
                                     f"--- proxy log (tail) ---\n{gp.log_text()[-5000:]}") from exc
            assert rc == 0, (f"{driver} scenario exited {rc}\n{program.output()}\n"
                             f"--- proxy log (tail) ---\n{gp.log_text()[-5000:]}")
            gp.wait_for_log(f"hold {hold['id']} approved by matrix")

        records = program.records()
        entry["version"] = version.get("version")
        entry["details"] = {k: v for k, v in version.items()
                            if k not in ("step", "driver", "version")}
        assert version["driver"] == REPORTED_NAME.get(driver, driver), version
        assert version["version"], version

        assert crud["inserted"] == 5, crud
        assert list(crud["found"]) == [3, 4, 5], crud
        assert crud["matched"] == 1 and crud["modified"] == 1, crud
        assert crud["deleted"] == 1 and crud["remaining"] == 4, crud

        assert blocked["code"] == 13, blocked
        assert blocked["errmsg"].startswith(
            f"mongoguard: delete on {people_ns} blocked by rule '{BLOCK_RULE}'"), blocked
        assert blocked["remaining"] == 4, blocked

        held = records.get("held-delete")
        assert held is not None and held["deletedCount"] == 1, program.output()
        assert "done" in records, program.output()
        entry["held_ms"] = held.get("waitedMs")
        assert held["waitedMs"] >= PARKED_FOR * 1000 * 0.9, held

        # The outcome, seen without the proxy.
        people = direct[database].people
        assert sorted(people.distinct("_id")) == [2, 3, 4, 5]
        assert people.find_one({"_id": 2})["age"] == 99
        assert [d["_id"] for d in direct[database].held.find()] == [2]
    finally:
        if program is not None:
            program.kill()
        try:
            direct.drop_database(database)
        finally:
            direct.close()
            shutil.rmtree(home, ignore_errors=True)
