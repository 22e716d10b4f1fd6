"""Process helpers shared by the integration tests: free ports, the proxy
under test, the embedded FerretDB backend. Every loop here is bounded."""

from __future__ import annotations

import os
import pathlib
import shutil
import socket
import subprocess
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("MONGOGUARD_BUILD_DIR", ROOT / "build"))
PROXY_BIN = BUILD / "mongoguard"


# A sanitizer build (cmake -DMONGOGUARD_SANITIZE=..., see scripts/test.sh)
# reports to stderr, which is the proxy's log here, or into files under
# MONGOGUARD_SANITIZER_LOG_DIR when ASAN_OPTIONS/UBSAN_OPTIONS/TSAN_OPTIONS
# carry log_path=<that dir>/...; with exitcode=SANITIZER_EXIT_CODE a report
# also shows in the exit status. Any of these fails the test.
SANITIZER_EXIT_CODE = 23
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "WARNING: ThreadSanitizer", "ERROR: ThreadSanitizer",
                     "SUMMARY: UndefinedBehaviorSanitizer")


def sanitizer_report(text: str) -> str | None:
    """The sanitizer report in a process's output, from its first line on."""
    hits = [text.find(m) for m in SANITIZER_MARKERS if m in text]
    if not hits:
        return None
    start = text.rfind("\n", 0, min(hits)) + 1
    return text[start:start + 20000]


def sanitizer_log_files() -> list[pathlib.Path]:
    """Reports written under MONGOGUARD_SANITIZER_LOG_DIR (empty when unset)."""
    folder = os.environ.get("MONGOGUARD_SANITIZER_LOG_DIR")
    if not folder or not os.path.isdir(folder):
        return []
    return sorted(p for p in pathlib.Path(folder).iterdir() if p.is_file() and p.stat().st_size)


# The audit file's writer waits up to 2 ms after each batch for more lines
# (proxy/observe/line_writer.h, Limits::gather), so the last line of a burst
# may reach the file that long after the client had its reply.
AUDIT_GATHER_SECONDS = 0.002


def read_audit_text(path: pathlib.Path) -> str:
    """The audit file's text, once lines queued by now have had time to reach
    it (ten times the writer's gathering window); "" when there is none."""
    time.sleep(10 * AUDIT_GATHER_SECONDS)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen | None = None, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def _file_size_limit(limit: int | None, open_files: int | None = None):
    """A preexec hook that caps every file the child writes at `limit` bytes
    (RLIMIT_FSIZE): how a test fills the disk for one process only; and,
    with `open_files`, its descriptors (RLIMIT_NOFILE)."""
    if limit is None and open_files is None:
        return None

    def apply() -> None:
        import resource
        if limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        if open_files is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))
    return apply


class ProxyProcess:
    """build/mongoguard in front of `upstream` (a mongodb:// URI)."""

    def __init__(self, upstream: str, *extra_args: str, threads: int = 2, admin: bool = True,
                 file_size_limit: int | None = None, open_files: int | None = None):
        self.port = free_port()
        self.admin_port = free_port() if admin else None
        self.workdir = pathlib.Path(tempfile.mkdtemp(prefix="mg-proxy-"))
        self.log_path = self.workdir / "proxy.log"
        args = [str(PROXY_BIN), "--listen", f"127.0.0.1:{self.port}", "--upstream", upstream,
                "--threads", str(threads), "--log-level", "debug"]
        self.token = "test-token-" + os.urandom(8).hex()
        if self.admin_port:
            self.token_file = self.workdir / "admin.token"
            self.token_file.write_text(self.token + "\n")
            args += ["--admin-listen", f"127.0.0.1:{self.admin_port}",
                     "--admin-token-file", str(self.token_file)]
        args += list(extra_args)
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT,
                                     preexec_fn=_file_size_limit(file_size_limit, open_files))
        try:
            wait_for_port(self.port, self.proc)
        except Exception:
            self.stop()
            raise RuntimeError(f"proxy did not start:\n{self.log_text()}")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    def log_text(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, needle: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log_text()
            if needle in text:
                return text
            time.sleep(0.05)
        raise AssertionError(f"{needle!r} not in proxy log:\n{self.log_text()}")

    def metrics(self) -> dict[str, float]:
        """Parses the admin /metrics page (Prometheus text) into {series: value}."""
        import urllib.request

        request = urllib.request.Request(f"http://127.0.0.1:{self.admin_port}/metrics",
                                         headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(request, timeout=5) as r:
            text = r.read().decode()
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                out[name] = float(value)
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                # A sanitizer build checks for leaks on the way out: give it time.
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self._log.closed:
            return
        self._log.close()
        self.check_sanitizers()

    def check_sanitizers(self) -> None:
        """Fails when the proxy's log holds a sanitizer report or it exited
        with the sanitizers' exit code."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        report = sanitizer_report(text)
        if report is not None or self.proc.returncode == SANITIZER_EXIT_CODE:
            raise AssertionError(f"sanitizer report from the proxy (exit {self.proc.returncode}):\n"
                                 f"{report or text[-20000:]}")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)
