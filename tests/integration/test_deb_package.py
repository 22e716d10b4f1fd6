"""The Debian package, installed on this machine and removed again.

scripts/package.sh builds the .deb (CPack) from build/; the test checks what
is inside, installs it with dpkg, verifies the installed systemd unit with
systemd-analyze (no systemd runs as PID 1 here, so the service itself is not
started through systemctl), runs the installed /usr/bin/mongoguard with the
installed /etc/mongoguard/policy.yaml and admin token in front of the test
backend, proves a block through pymongo, rotates the audit log with the
installed logrotate rule, and then removes (conffiles stay) and purges
(everything goes) the package.

Needs root (dpkg). A lock file keeps two runs on one machine from installing
at the same time; the package is purged whatever happens.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pathlib
import re
import subprocess
import tempfile
import time
import urllib.request

import pymongo
import pytest
from pymongo.errors import OperationFailure

from harness import ROOT, free_port, wait_for_port

PACKAGE = "mongoguard"
LOCK = pathlib.Path("/var/lock/mongoguard-deb-test.lock")
PACKAGE_TIMEOUT = 1800  # package.sh may have to build


def run(*cmd: str, check: bool = True, timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {r.returncode}:\n{r.stdout}\n{r.stderr}")
    return r


def installed() -> bool:
    r = run("dpkg-query", "-W", "-f=${Status}", PACKAGE, check=False)
    return r.returncode == 0 and "installed" in r.stdout and "not-installed" not in r.stdout


def status() -> str:
    return run("dpkg-query", "-W", "-f=${Status}", PACKAGE, check=False).stdout


@contextlib.contextmanager
def machine_lock():
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(LOCK, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


@pytest.fixture(scope="module")
def deb() -> pathlib.Path:
    # The same two steps deploy/Dockerfile's build stage runs.
    run("bash", str(ROOT / "scripts" / "deps.sh"), "package", timeout=PACKAGE_TIMEOUT)
    r = run("bash", str(ROOT / "scripts" / "package.sh"), timeout=PACKAGE_TIMEOUT)
    path = pathlib.Path(r.stdout.strip().splitlines()[-1])
    assert path.is_file() and path.suffix == ".deb", r.stdout
    return path


def test_package_contents(deb):
    files = run("dpkg-deb", "--contents", str(deb)).stdout
    # README.md and the pages under docs/ it links, in the same layout.
    docs = [f"./usr/share/doc/mongoguard/docs/{p.name}" for p in sorted((ROOT / "docs").iterdir())]
    assert "./usr/share/doc/mongoguard/docs/configuration.md" in docs
    for path in ["./usr/bin/mongoguard", "./usr/lib/systemd/system/mongoguard.service",
                 "./etc/mongoguard/policy.yaml", "./etc/logrotate.d/mongoguard",
                 "./usr/share/doc/mongoguard/README.md", *docs]:
        assert path in files, f"{path} not in the package:\n{files}"
    conffiles = run("dpkg-deb", "--info", str(deb), "conffiles").stdout.split()
    assert conffiles == ["/etc/mongoguard/policy.yaml", "/etc/logrotate.d/mongoguard"]
    depends = run("dpkg-deb", "--field", str(deb), "Depends").stdout
    # dpkg-shlibdeps found the runtime libraries (and nothing for building).
    for lib in ["libbson-1.0-0", "libyaml-cpp0.7", "libssl3", "libc6"]:
        assert lib in depends, depends
    assert "-dev" not in depends, depends


def test_install_run_remove_purge(deb, backend, tmp_path):
    if os.geteuid() != 0:
        raise AssertionError("installing a .deb needs root (the CI runs as root)")
    with machine_lock():
        assert not installed(), (f"{PACKAGE} is already installed on this machine ({status()}); "
                                 "refusing to touch it")
        try:
            install_and_check(deb, backend, tmp_path)
        finally:
            run("dpkg", "--purge", PACKAGE, check=False)
        assert status() == "", f"{PACKAGE} still known to dpkg after purge: {status()}"


def install_and_check(deb: pathlib.Path, backend, tmp_path: pathlib.Path) -> None:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    out = run("dpkg", "-i", str(deb), env=env)
    assert installed(), out.stdout + out.stderr
    assert "set upstream in /etc/mongoguard/policy.yaml" in out.stdout + out.stderr

    token_file = pathlib.Path("/etc/mongoguard/admin.token")
    assert token_file.stat().st_mode & 0o777 == 0o600
    token = token_file.read_text().strip()
    assert len(token) >= 24

    # The unit as installed: systemd's own parser and checks (directives,
    # specifiers, the executable's presence).
    unit = pathlib.Path("/usr/lib/systemd/system/mongoguard.service")
    verify = run("systemd-analyze", "verify", str(unit), check=False)
    problems = [line for line in (verify.stdout + verify.stderr).splitlines()
                if "mongoguard" in line]
    assert verify.returncode == 0 and not problems, verify.stdout + verify.stderr
    # systemd's own exposure score of the sandbox (0 = fully locked down,
    # 10 = none); under 2 is what systemd calls "OK" and better.
    security = run("systemd-analyze", "security", "--offline=yes", str(unit)).stdout
    score = re.search(r"Overall exposure level for mongoguard.service: ([0-9.]+)", security)
    assert score and float(score.group(1)) < 2.0, security[-2000:]
    text = unit.read_text()
    for directive in ["DynamicUser=yes", "NoNewPrivileges=yes", "ProtectSystem=strict",
                      "CapabilityBoundingSet=\n", "LoadCredential=admin.token:/etc/mongoguard/admin.token"]:
        assert directive in text, directive

    # The installed binary, the installed policy and token, like the unit runs it
    # (flags only for the addresses: this machine has other things on 27017).
    logs = pathlib.Path("/var/log/mongoguard")
    logs.mkdir(mode=0o750, exist_ok=True)  # systemd's LogsDirectory= would make it
    port, admin = free_port(), free_port()
    proxy_log = open(tmp_path / "proxy.log", "wb")
    proc = subprocess.Popen(
        ["/usr/bin/mongoguard", "--config", "/etc/mongoguard/policy.yaml",
         "--listen", f"127.0.0.1:{port}", "--admin-listen", f"127.0.0.1:{admin}",
         "--upstream", backend.upstream],
        stdout=proxy_log, stderr=subprocess.STDOUT,
        env={k: v for k, v in os.environ.items() if not k.startswith("MONGOGUARD_")})
    try:
        wait_for_port(port, proc)
        run_block_and_rotate(port, admin, token, backend, logs)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        proxy_log.close()
    assert proc.returncode == 0, (tmp_path / "proxy.log").read_text(errors="replace")

    # Remove: the program goes, the edited conffile stays.
    policy = pathlib.Path("/etc/mongoguard/policy.yaml")
    policy.write_text(policy.read_text() + "# edited by the operator\n")
    run("dpkg", "--remove", PACKAGE, env=env)
    assert not pathlib.Path("/usr/bin/mongoguard").exists()
    assert not unit.exists()
    assert "config-files" in status(), status()
    assert policy.read_text().endswith("# edited by the operator\n")
    # Purge: conffiles, the generated token and the logs go.
    run("dpkg", "--purge", PACKAGE, env=env)
    for gone in [policy, token_file, pathlib.Path("/etc/mongoguard"),
                 pathlib.Path("/etc/logrotate.d/mongoguard"), logs]:
        assert not gone.exists(), f"{gone} left after purge"


def run_block_and_rotate(port: int, admin: int, token: str, backend, logs: pathlib.Path) -> None:
    db_name = f"debtest_{os.getpid()}"
    client = pymongo.MongoClient(f"mongodb://127.0.0.1:{port}/?directConnection=true",
                                 serverSelectionTimeoutMS=15000)
    direct = pymongo.MongoClient(backend.uri, serverSelectionTimeoutMS=15000)
    try:
        coll = client[db_name]["families"]
        coll.insert_many([{"i": i} for i in range(5)])
        # The installed cautious default blocks a delete whose filter matches everything.
        with pytest.raises(OperationFailure) as caught:
            coll.delete_many({})
        assert caught.value.code == 13
        assert "no-unfiltered-writes" in str(caught.value)
        assert direct[db_name]["families"].count_documents({}) == 5

        # /metrics answers with the token the package generated.
        request = urllib.request.Request(f"http://127.0.0.1:{admin}/metrics",
                                         headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=5) as r:
            metrics = r.read().decode()
        assert 'mongoguard_verdicts_total{rule="no-unfiltered-writes",verdict="block"} 1' in metrics

        # The audit log went where the installed policy says, and the installed
        # logrotate rule rotates it while the proxy keeps writing.
        audit = logs / "audit.jsonl"
        wait_for(lambda: audit.exists() and "no-unfiltered-writes" in audit.read_text())
        with tempfile.TemporaryDirectory() as state:
            run("logrotate", "--force", "--state", f"{state}/status", "/etc/logrotate.d/mongoguard")
        rotated = logs / "audit.jsonl.1"
        assert rotated.exists(), sorted(p.name for p in logs.iterdir())
        assert "no-unfiltered-writes" in rotated.read_text()
        with pytest.raises(OperationFailure):
            coll.update_many({}, {"$set": {"x": 1}})
        wait_for(lambda: audit.exists() and '"update"' in audit.read_text())
        for line in audit.read_text().splitlines():
            json.loads(line.lstrip("\0"))  # copytruncate may leave a sparse start
    finally:
        direct.drop_database(db_name)
        client.close()
        direct.close()


def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met within the time limit")
