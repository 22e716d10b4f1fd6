"""Hardening, each finding reproduced against a running proxy (FerretDB
behind it, pymongo or the raw wire in front): operator names and client
strings that are not valid UTF-8 or carry control characters never cost
an audit record and never reach a terminal or the log raw; an audit log
that cannot be written refuses operator actions; grants are capped; token
files are read one way and short ones refused; refused tokens are counted
and slowed; a flood of admin connections leaves the data path served;
every admin answer carries the page's security headers; /readyz says why
only with a token; no Redis password reaches the log."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import textwrap
import time

import bson
import pymongo
import pytest
from pymongo.errors import OperationFailure

import wire
from admin_helpers import AdminProxy, Background, http
from harness import PROXY_BIN, ProxyProcess, free_port, read_audit_text
from hold_helpers import delete_msg, wait_until
from policy_helpers import policy_backend, direct, seed, unique_db  # noqa: F401


def budget(db: str, documents: int = 100, audit: str = "") -> str:
    return audit + textwrap.dedent(f"""
    rules:
      - name: cap
        match: {{namespace: "{db}.c", operations: [delete]}}
        action: hold
        limit: {{documents: {documents}, per: 1m}}
      - name: no-drops
        match: {{namespace: "{db}.*", operations: [drop, delete], filter: unfiltered}}
        action: block
    """)


def audit_lines(p: AdminProxy) -> list[dict]:
    """Every line of the audit file, each parsed (a line that is not JSON fails)."""
    text = read_audit_text(p.audit_path)
    return [json.loads(line) for line in text.splitlines()]


def allowance(p: AdminProxy, name: str) -> int:
    [b] = [b for b in p.ok("GET", "/api/breakers")["breakers"] if b["name"] == name]
    return b["allowance"]["documents"]


def test_an_operator_name_that_is_not_utf8_is_refused_and_nothing_goes_unaudited(
        policy_backend, direct):  # noqa: F811
    """The reported attack: a grant of 1,000,000 signed `ghost\\xc3` was
    performed and left no audit line. Now the name is refused (400, nothing
    done), every audit line parses, and a good name's grant is audited once."""
    db = unique_db("ghost")
    seed(direct, db, "c", count=3)
    p = AdminProxy(policy_backend.upstream, budget(db))
    try:
        assert p.client()[db].c.delete_one({"_id": 0}).deleted_count == 1
        name = f"cap:{db}.c"
        status, data = p.api("POST", f"/api/breakers/{name}/grant", {"documents": 1_000_000},
                             headers={"X-Mongoguard-Operator": "ghost\xc3"})
        assert status == 400, data
        assert "must be one line of printable UTF-8 text" in data["error"], data
        for bad in ("a\nb", "x" * 101, "esc\x1b[2K"):
            assert p.api("POST", f"/api/breakers/{name}/grant", {"documents": 5, "by": bad})[0] == 400
        assert allowance(p, name) == 0
        p.ok("POST", f"/api/breakers/{name}/grant", {"documents": 7, "by": "alice"})
        assert allowance(p, name) == 7
        wait_until(lambda: any(r.get("operator_action") == "grant" for r in audit_lines(p)), 5,
                   "the grant's audit line")
        grants = [r for r in audit_lines(p) if r.get("operator_action") == "grant"]
        assert [(g["by"], g["target"]) for g in grants] == [("alice", name)], grants
    finally:
        p.stop()


def test_an_app_name_with_a_quote_and_a_bad_byte_still_gets_its_record(
        policy_backend, direct):  # noqa: F811
    """appName `a"b\\xc3` plus an escape sequence, sent on the raw wire (no
    driver sends invalid UTF-8): the blocked delete's record is one JSON
    line, the bad byte as U+FFFD, and the decisions API shows it parsed."""
    db = unique_db("badapp")
    seed(direct, db, "c", count=3)
    p = AdminProxy(policy_backend.upstream, budget(db))
    try:
        placeholder = "Q" * 8
        hello = bson.encode({"hello": 1, "$db": "admin",
                             "client": {"application": {"name": placeholder}}})
        hello = hello.replace(placeholder.encode(), b'a"b\xc3\x1b[2K')
        sock = wire.connect(p.proxy.port)
        try:
            wire.roundtrip(sock, wire.op_msg(hello))
            msg, _ = delete_msg(db, "c", {}, limit=0)
            reply = wire.roundtrip(sock, msg)
            assert reply.body.get("ok") == 0 and "no-drops" in reply.body.get("errmsg", ""), \
                reply.body
        finally:
            sock.close()
        wait_until(lambda: any(r.get("verdict") == "block" for r in audit_lines(p)), 5,
                   "the block's audit line")
        [record] = [r for r in audit_lines(p) if r.get("verdict") == "block"]
        assert record["app"] == 'a"b\ufffd\x1b[2K', record
        decisions = p.ok("GET", "/api/decisions")["decisions"]
        blocked = [d for d in decisions if d.get("verdict") == "block"]
        assert blocked and blocked[0]["app"] == 'a"b\ufffd\x1b[2K', blocked
    finally:
        p.stop()


def test_an_audit_log_that_cannot_be_written_refuses_operator_actions(
        policy_backend, direct):  # noqa: F811
    """audit.path /dev/full: every write fails. The records are counted in
    mongoguard_audit_failures_total and said at error level, and an
    operator's grant is refused with 503 and not performed."""
    db = unique_db("fullaudit")
    seed(direct, db, "c", count=3)
    p = AdminProxy(policy_backend.upstream, budget(db, audit="audit:\n  path: /dev/full\n"))
    try:
        assert p.client()[db].c.delete_one({"_id": 0}).deleted_count == 1
        wait_until(lambda: p.proxy.metrics().get("mongoguard_audit_failures_total", 0) >= 1, 5,
                   "an audit failure counted")
        assert "writing to the audit log /dev/full failed: No space left on device" in p.log_text()
        name = f"cap:{db}.c"
        status, data = p.api("POST", f"/api/breakers/{name}/grant",
                             {"documents": 1000, "by": "alice"})
        assert status == 503, data
        assert data["error"] == ("operator actions are refused while the audit log cannot be "
                                 "written (writing to /dev/full failed: No space left on device); "
                                 "nothing was done"), data
        assert allowance(p, name) == 0
    finally:
        p.stop()


def test_grants_are_capped(policy_backend, direct):  # noqa: F811
    """The reported overflow: a second grant of 2^63-1 gave a negative
    allowance. One grant may add at most 1,000,000,000; more is refused."""
    db = unique_db("grantcap")
    seed(direct, db, "c", count=3)
    p = AdminProxy(policy_backend.upstream, budget(db))
    try:
        assert p.client()[db].c.delete_one({"_id": 0}).deleted_count == 1
        name = f"cap:{db}.c"
        for huge in (2**63 - 1, 2**64, 1_000_000_001):
            status, data = p.api("POST", f"/api/breakers/{name}/grant",
                                 {"documents": huge, "by": "alice"})
            assert status == 400, (huge, data)
        assert "may be at most 1000000000 in one grant" in data["error"], data
        for _ in range(2):
            p.ok("POST", f"/api/breakers/{name}/grant", {"documents": 1_000_000_000, "by": "alice"})
        assert allowance(p, name) == 2_000_000_000
    finally:
        p.stop()


def test_refused_tokens_are_counted_logged_and_slowed(policy_backend):  # noqa: F811
    """Five wrong tokens are answered at once; from the sixth on, each waits
    two seconds. All are counted and said (one line); the right token is
    answered at once and clears the address's count."""
    proxy = ProxyProcess(policy_backend.upstream)
    try:
        base = f"http://127.0.0.1:{proxy.admin_port}"
        for _ in range(5):
            started = time.monotonic()
            assert http(base, "GET", "/api/holds", token="wrong-token-0123456789")[0] == 401
            assert time.monotonic() - started < 1.5
        started = time.monotonic()
        assert http(base, "GET", "/api/holds", token="wrong-token-0123456789")[0] == 401
        assert time.monotonic() - started >= 1.9
        started = time.monotonic()
        assert http(base, "GET", "/api/holds", token=proxy.token)[0] == 200
        assert time.monotonic() - started < 1.5
        assert proxy.metrics()["mongoguard_admin_auth_failures_total"] == 6
        assert re.search(r"warning admin: 1 request\(s\) refused for a missing or wrong bearer token "
                         r"since the last such line \(at most one every 10 s\); latest from "
                         r"127\.0\.0\.1", proxy.log_text()), proxy.log_text()[-2000:]
    finally:
        proxy.stop()


def test_token_files_are_read_one_way_and_short_ones_refused(policy_backend, tmp_path):  # noqa: F811
    """The proxy refuses to start on a short token or a two-line file (exit
    2, the file named), and ctl refuses the same files before it sends
    anything; a BOM and CRLF around a good token are the same token."""
    cases = {
        "short.token": ("s3cret\n", "is 6 characters long; a token must have at least 16"),
        "two-lines.token": ("first-token-0123456789\nX-Injected: 1\n",
                            "has more than one non-empty line"),
        "spaces.token": ("two words-0123456789\n", "a token is one word of printable ASCII"),
    }
    for file, (text, words) in cases.items():
        path = tmp_path / file
        path.write_text(text)
        run = subprocess.run([str(PROXY_BIN), "--listen", f"127.0.0.1:{free_port()}",
                              "--upstream", policy_backend.upstream,
                              "--admin-listen", f"127.0.0.1:{free_port()}",
                              "--admin-token-file", str(path)],
                             capture_output=True, text=True, timeout=30)
        assert run.returncode == 2, (file, run.stderr)
        assert str(path) in run.stderr and words in run.stderr, (file, run.stderr)
        ctl = subprocess.run([str(PROXY_BIN), "ctl", "--admin", "http://127.0.0.1:9",
                              "--token-file", str(path), "holds"],
                             capture_output=True, text=True, timeout=30)
        assert ctl.returncode == 2 and words in ctl.stderr, (file, ctl.stderr)
    proxy = ProxyProcess(policy_backend.upstream)
    try:
        good = tmp_path / "bom.token"
        good.write_bytes(b"\xef\xbb\xbf" + proxy.token.encode() + b"\r\n")
        ctl = subprocess.run([str(PROXY_BIN), "ctl", "--admin",
                              f"http://127.0.0.1:{proxy.admin_port}", "--token-file", str(good),
                              "holds"], capture_output=True, text=True, timeout=30)
        assert ctl.returncode == 0 and ctl.stdout == "no pending holds\n", ctl
    finally:
        proxy.stop()


def test_an_admin_flood_leaves_the_data_path_served(policy_backend):  # noqa: F811
    """The reported starvation: 200 admin connections each sending half a
    request made the proxy fail to accept database clients (EMFILE). With
    256 descriptors, admin.max_connections (16) are served and the rest
    closed on accept; clients still get answers; the half requests are
    closed after 10 s and the admin endpoint answers again."""
    proxy = ProxyProcess(policy_backend.upstream, open_files=256)
    flood: list[socket.socket] = []
    try:
        for _ in range(200):
            try:
                s = socket.create_connection(("127.0.0.1", proxy.admin_port), timeout=5)
                flood.append(s)
                s.sendall(b"GET /api/holds HTTP/1.1\r\nHost: x\r\n")
            except ConnectionError:
                pass  # beyond admin.max_connections: reset on accept
        clients = [pymongo.MongoClient(proxy.uri, serverSelectionTimeoutMS=5000, maxPoolSize=1)
                   for _ in range(5)]
        try:
            for c in clients:
                assert c.admin.command("ping")["ok"] == 1
        finally:
            for c in clients:
                c.close()
        assert "Too many open files" not in proxy.log_text()
        assert "admin: refused " in proxy.log_text()
        def admin_answers() -> bool:
            try:
                return http(f"http://127.0.0.1:{proxy.admin_port}", "GET", "/api/holds",
                            token=proxy.token, timeout=2)[0] == 200
            except OSError:  # still full: reset on accept
                return False
        assert not admin_answers(), "16 half requests hold every admin slot"
        wait_until(admin_answers, 20, "the admin endpoint to answer once the half requests "
                   "time out")
        refused = proxy.metrics()["mongoguard_admin_connections_refused_total"]
        assert refused >= 200 - 16, refused
    finally:
        for s in flood:
            s.close()
        proxy.stop()


def test_every_admin_answer_carries_the_security_headers(policy_backend):  # noqa: F811
    """The page, the API, a refusal and a 404 alike."""
    import urllib.error
    import urllib.request

    proxy = ProxyProcess(policy_backend.upstream)
    try:
        base = f"http://127.0.0.1:{proxy.admin_port}"
        for path, token in (("/", None), ("/api/holds", proxy.token), ("/api/holds", None),
                            ("/nowhere", proxy.token)):
            req = urllib.request.Request(base + path)
            if token:
                req.add_header("Authorization", f"Bearer {token}")
            try:
                with urllib.request.urlopen(req, timeout=5) as r:
                    headers = r.headers
            except urllib.error.HTTPError as e:
                headers = e.headers
            assert headers["X-Frame-Options"] == "DENY", path
            assert headers["X-Content-Type-Options"] == "nosniff", path
            assert headers["Referrer-Policy"] == "no-referrer", path
            csp = headers["Content-Security-Policy"]
            assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp, csp
            assert re.search(r"script-src 'sha256-[A-Za-z0-9+/]{43}='", csp), csp
            assert "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0], csp
    finally:
        proxy.stop()


def test_ctl_and_the_log_spell_out_a_clients_control_characters(
        policy_backend, direct, tmp_path):  # noqa: F811
    """The reported forgery: an appName that erases the line and prints
    "no pending holds", and a collection name with CR/LF that writes a log
    line of its own. Through pymongo: ctl shows the escape sequence as
    \\x1b, and no log line starts with the forged text."""
    db = unique_db("ctlesc")
    forged = "2026-01-01T00:00:00.000+0000 info forged"
    seed(direct, db, "c", count=3)
    p = AdminProxy(policy_backend.upstream, budget(db, documents=1))
    try:
        app = "\x1b[2K\x1b[1Gno pending holds"
        c = p.client(appname=app)
        assert c[db].c.delete_one({"_id": 0}).deleted_count == 1
        held = Background(lambda: c[db].c.delete_one({"_id": 1}))
        p.wait_for_holds(1)
        token = tmp_path / "t.token"
        token.write_text(p.token + "\n")
        ctl = subprocess.run([str(PROXY_BIN), "ctl", "--admin", p.admin_url, "--token-file",
                              str(token), "holds"], capture_output=True, text=True, timeout=30)
        assert ctl.returncode == 0, ctl.stderr
        assert "\x1b" not in ctl.stdout and "\\x1b[2K\\x1b[1Gno pending holds" in ctl.stdout, \
            ctl.stdout
        [hold] = p.ok("GET", "/api/holds")["holds"]
        p.ok("POST", f"/api/holds/{hold['id']}/reject", {"by": "alice"})
        with pytest.raises(OperationFailure):
            held.result()

        with pytest.raises(OperationFailure):
            p.client()[db][f"x\r\n{forged}"].delete_many({})
        log = p.log_text()
        assert not any(line.startswith(forged) for line in log.splitlines()), log[-3000:]
        assert "forged" in log
    finally:
        p.stop()


def test_readyz_without_a_token_says_only_ready_or_not(policy_backend):  # noqa: F811
    proxy = ProxyProcess(f"mongodb://127.0.0.1:{free_port()}")
    try:
        base = f"http://127.0.0.1:{proxy.admin_port}"
        for _ in range(3):
            with wire.connect(proxy.port) as s:  # closed: the upstream is down
                assert wire.wait_closed(s, timeout=10)[0] in ("eof", "reset")
        wait_until(lambda: http(base, "GET", "/readyz")[0] == 503, 10, "not ready")
        assert http(base, "GET", "/readyz") == (503, "not ready\n")
        status, text = http(base, "GET", "/readyz", token=proxy.token)
        assert status == 503 and text.startswith("not ready: upstream 127.0.0.1:"), text
        # A wrong token gets no detail, and is a failed login like anywhere
        # else: counted, and slowed from the sixth on, so /readyz is no
        # place to guess tokens at full speed.
        for attempt in range(6):
            started = time.monotonic()
            assert http(base, "GET", "/readyz", token="wrong-token-0123456789") == \
                (503, "not ready\n")
            assert (time.monotonic() - started >= 1.9) == (attempt == 5), attempt
        assert proxy.metrics()["mongoguard_admin_auth_failures_total"] == 6
    finally:
        proxy.stop()


def test_an_admin_api_without_tokens_is_not_a_failed_login(policy_backend):  # noqa: F811
    """With no token configured nothing a client sends can succeed: the 401
    says the API is disabled, is never slowed and never logged as a wrong
    token (a probe or a curious colleague is not an attacker)."""
    admin_port = free_port()
    proxy = ProxyProcess(policy_backend.upstream, "--admin-listen", f"127.0.0.1:{admin_port}",
                         admin=False)
    try:
        wait_until(lambda: http(f"http://127.0.0.1:{admin_port}", "GET", "/healthz")[0] == 200,
                   10, "the admin endpoint")
        for _ in range(8):
            started = time.monotonic()
            status, body = http(f"http://127.0.0.1:{admin_port}", "GET", "/api/holds",
                                token="any-token-0123456789")
            assert status == 401 and "the admin API is disabled" in body["error"], body
            assert time.monotonic() - started < 1.5
        time.sleep(0.2)
        assert "wrong bearer token" not in proxy.log_text(), proxy.log_text()[-2000:]
    finally:
        proxy.stop()


def test_no_redis_password_reaches_the_log(policy_backend, tmp_path):  # noqa: F811
    """fleet.redis with a password, Redis unreachable: the log names the
    server with the password as ***."""
    config = tmp_path / "fleet.yaml"
    config.write_text(f"fleet:\n  redis: redis://mg:Sup3r-s3cret@127.0.0.1:{free_port()}\n"
                      "  name: p1\n")
    proxy = ProxyProcess(policy_backend.upstream, "--config", str(config))
    try:
        proxy.wait_for_log("unreachable", timeout=15)
        log = proxy.log_text()
        assert "Sup3r-s3cret" not in log, log
        assert "redis://mg:***@127.0.0.1:" in log, log
    finally:
        proxy.stop()
