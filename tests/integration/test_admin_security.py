"""Admin endpoint security: loopback unless HTTPS and a token are
configured (refused at start-up with exit 2, refused on reload), HTTPS with
`mongoguard ctl --ca-file`, the token required everywhere but /healthz and
/readyz, the token never in the log or the audit file, and audit
redaction on by default."""

from __future__ import annotations

import json
import pathlib
import shutil
import signal
import ssl
import subprocess
import tempfile
import textwrap
import time
import urllib.error
import urllib.request

import pymongo
import pytest

from harness import PROXY_BIN, ProxyProcess, free_port, read_audit_text, wait_for_port
from hold_helpers import unique_db
from test_tls import make_ca, make_cert

pytestmark = pytest.mark.skipif(not PROXY_BIN.exists(), reason=f"{PROXY_BIN} not built")

TOKEN = "adm1n-T0ken-" + "7f3a9c" * 4


@pytest.fixture(scope="module")
def certs():
    d = pathlib.Path(tempfile.mkdtemp(prefix="mg-admin-tls-"))
    make_ca(d, "ca")
    make_ca(d, "other-ca")
    make_cert(d, "server", "localhost")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def start(args: list[str], timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([str(PROXY_BIN), *args], capture_output=True, text=True,
                          timeout=timeout)


class Setup:
    """A config file with an admin section, and the proxy it starts."""

    def __init__(self, upstream: str, certs: pathlib.Path, admin_yaml: str, rest: str = ""):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="mg-admin-sec-"))
        self.token_file = self.dir / "admin.token"
        self.token_file.write_text(TOKEN + "\n")
        self.audit = self.dir / "audit.jsonl"
        self.admin_port = free_port()
        self.config = self.dir / "mongoguard.yaml"
        self.certs = certs
        self.admin_yaml = admin_yaml
        self.rest = rest
        self.write(admin_yaml)
        self.upstream = upstream
        self.proxy: ProxyProcess | None = None

    def write(self, admin_yaml: str) -> None:
        text = textwrap.dedent(admin_yaml).format(port=self.admin_port, token=self.token_file,
                                                  certs=self.certs)
        self.config.write_text(text + f"audit:\n  path: {self.audit}\n" +
                               textwrap.dedent(self.rest))

    def __enter__(self) -> "Setup":
        self.proxy = ProxyProcess(self.upstream, "--config", str(self.config), admin=False)
        wait_for_port(self.admin_port, self.proxy.proc)
        return self

    def __exit__(self, *exc) -> None:
        if self.proxy:
            self.proxy.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def https(self, path: str, token: str | None = TOKEN, method: str = "GET",
              body: dict | None = None) -> tuple[int, str]:
        ctx = ssl.create_default_context(cafile=str(self.certs / "ca.pem"))
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"https://127.0.0.1:{self.admin_port}{path}", data=data,
                                     method=method)
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=10, context=ctx) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def ctl(self, *args: str) -> subprocess.CompletedProcess:
        return start(["ctl", "--admin", f"https://127.0.0.1:{self.admin_port}",
                      "--token-file", str(self.token_file), *args])


TLS_ADMIN = """\
    admin:
      listen: 0.0.0.0:{port}
      token_file: {token}
      tls:
        cert: {certs}/server.pem
        key: {certs}/server.key
    """


@pytest.mark.parametrize("admin_yaml, missing", [
    ("admin:\n  listen: 0.0.0.0:{port}\n  token_file: {token}\n", "admin.tls (cert and key)"),
    ("admin:\n  listen: 0.0.0.0:{port}\n  tls:\n    cert: {certs}/server.pem\n"
     "    key: {certs}/server.key\n", "a token file"),
    ("admin:\n  listen: 0.0.0.0:{port}\n", "admin.tls (cert and key) and a token file"),
])
def test_non_loopback_admin_without_tls_and_token_refuses_to_start(certs, admin_yaml, missing):
    s = Setup("mongodb://127.0.0.1:1", certs, admin_yaml)
    try:
        result = start(["--config", str(s.config), "--upstream", "mongodb://127.0.0.1:1",
                        "--listen", f"127.0.0.1:{free_port()}"])
        assert result.returncode == 2, result
        assert "is not a loopback address" in result.stderr, result.stderr
        assert f"only with {missing} configured" in result.stderr, result.stderr
    finally:
        shutil.rmtree(s.dir, ignore_errors=True)


def test_the_admin_flag_is_checked_like_the_file(certs):
    token = certs / "flag.token"
    token.write_text(TOKEN)
    result = start(["--upstream", "mongodb://127.0.0.1:1", "--listen",
                    f"127.0.0.1:{free_port()}", "--admin-listen", f"0.0.0.0:{free_port()}",
                    "--admin-token-file", str(token)])
    assert result.returncode == 2 and "is not a loopback address" in result.stderr, result


def test_https_admin_with_token_ctl_and_open_probes(backend, certs):
    with Setup(backend.upstream, certs, TLS_ADMIN) as s:
        s.proxy.wait_for_log(f"admin endpoint on https://0.0.0.0:{s.admin_port}/")
        assert s.https("/api/holds") == (200, '{"holds":[]}\n')
        status, body = s.https("/api/holds", token=None)
        assert status == 401, body
        assert s.https("/api/holds", token=TOKEN + "x")[0] == 401
        assert s.https("/metrics", token="wrong")[0] == 401
        assert s.https("/healthz", token=None) == (200, "ok\n")
        assert s.https("/readyz", token=None) == (200, "ready\n")
        # Plain HTTP on the HTTPS port gets no answer.
        with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
            urllib.request.urlopen(f"http://127.0.0.1:{s.admin_port}/healthz", timeout=10).read()
        ok = s.ctl("--ca-file", str(certs / "ca.pem"), "--json", "holds")
        assert ok.returncode == 0, ok
        assert json.loads(ok.stdout) == {"holds": []}
        # A certificate from a CA the client does not trust is refused.
        wrong = s.ctl("--ca-file", str(certs / "other-ca.pem"), "holds")
        assert wrong.returncode == 1, wrong
        assert "cannot reach" in wrong.stderr and "certificate" in wrong.stderr, wrong.stderr
        # The proxy still serves after a failed handshake.
        assert s.https("/api/holds")[0] == 200


def test_weak_tls_suites_are_refused(backend, certs):
    """TLS 1.2 with CBC suites, SHA-1 or SHA-2 (OpenSSL's defaults allow them)
    is refused; a forward-secret AEAD suite is served. (The test certificate
    is ECDSA, so RSA key exchange is out of reach either way; the suite list
    that refuses CBC names no RSA key exchange either.)"""
    import socket

    def handshake(ciphers: str) -> str:
        ctx = ssl.create_default_context(cafile=str(certs / "ca.pem"))
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers(ciphers)
        with socket.create_connection(("127.0.0.1", s.admin_port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                return tls.cipher()[0]

    with Setup(backend.upstream, certs, TLS_ADMIN) as s:
        for weak in ("@SECLEVEL=0:ECDHE-ECDSA-AES128-SHA", "@SECLEVEL=0:ECDHE-ECDSA-AES256-SHA384"):
            with pytest.raises(ssl.SSLError):
                handshake(weak)
        assert handshake("ECDHE-ECDSA-AES128-GCM-SHA256") == "ECDHE-ECDSA-AES128-GCM-SHA256"
        assert s.https("/healthz", token=None) == (200, "ok\n")


def test_reload_that_would_expose_the_admin_api_is_refused(backend, certs):
    with Setup(backend.upstream, certs, TLS_ADMIN, rest="rules: []\n") as s:
        s.write("admin:\n  listen: 0.0.0.0:{port}\n  tls:\n    cert: {certs}/server.pem\n"
                "    key: {certs}/server.key\n")  # no token file any more
        status, body = s.https("/api/reload", method="POST", body={"by": "alice"})
        assert status == 422, body
        assert "is not a loopback address" in body
        s.proxy.proc.send_signal(signal.SIGHUP)
        s.proxy.wait_for_log("reload (SIGHUP) refused, the running configuration stays in place")
        # The old configuration, token included, stays.
        assert s.https("/api/holds")[0] == 200


def test_token_and_filter_values_never_logged_and_audit_redacts_by_default(backend, certs):
    database = unique_db("adminsec")
    secret_value = "filter-Secret-" + TOKEN[-8:]
    rest = f"""\
        rules:
          - name: log-deletes
            match: {{ namespace: "{database}.*", operations: [delete] }}
            action: log
    """
    with Setup(backend.upstream, certs, TLS_ADMIN, rest=rest) as s:
        client = pymongo.MongoClient(s.proxy.uri, serverSelectionTimeoutMS=5000)
        client[database].c.insert_one({"_id": 1, "owner": secret_value})
        client[database].c.delete_many({"owner": secret_value})
        client.close()
        for token in (TOKEN, TOKEN + "-wrong", "Bearer " + TOKEN):
            s.https("/api/holds", token=token)
            s.https("/api/reload", token=token, method="POST", body={"by": "alice"})
        s.ctl("--ca-file", str(certs / "ca.pem"), "decisions")
        records = [json.loads(line) for line in read_audit_text(s.audit).splitlines() if line]
        assert any(r.get("rule") == "log-deletes" for r in records), records
        assert any(r.get("action") == "reload" or "reload" in json.dumps(r) for r in records)
        log = s.proxy.log_text()
        audit = s.audit.read_text()
    direct = pymongo.MongoClient(backend.uri, serverSelectionTimeoutMS=5000)
    direct.drop_database(database)
    direct.close()
    for where, text in (("proxy log", log), ("audit file", audit)):
        assert TOKEN not in text, f"the admin token is in the {where}"
        assert TOKEN[:16] not in text, f"part of the admin token is in the {where}"
        assert secret_value not in text, f"a filter value is in the {where} (redaction is off)"


def auth_failures(s: Setup) -> float:
    status, text = s.https("/metrics")
    assert status == 200, text
    [line] = [x for x in text.splitlines() if x.startswith("mongoguard_admin_auth_failures_total ")]
    return float(line.split()[1])


def test_ctl_ready_and_alive_are_probes_that_need_no_token(backend, certs):
    """`ctl ready` / `ctl alive` (the sidecar's exec probes): exit 0 on /readyz
    or /healthz answering 200, with the answer on stdout; no token needed and
    none sent, so probes never count as failed logins; an endpoint that is
    not there, or accepts and never answers, exits 1 with a reason."""
    import socket

    with Setup(backend.upstream, certs, TLS_ADMIN) as s:
        url = f"https://127.0.0.1:{s.admin_port}"
        ca = ["--ca-file", str(certs / "ca.pem")]
        no_token = ["--token-file", str(s.dir / "absent.token")]
        failures = auth_failures(s)
        for _ in range(3):
            ready = start(["ctl", "--admin", url, *ca, *no_token, "ready"])
            assert (ready.returncode, ready.stdout) == (0, "ready\n"), ready
            alive = start(["ctl", "--admin", url, *ca, *no_token, "alive"])
            assert (alive.returncode, alive.stdout) == (0, "ok\n"), alive
        assert auth_failures(s) == failures  # no Authorization header was sent
        # With the token, /readyz says why.
        detailed = start(["ctl", "--admin", url, *ca, "--token-file", str(s.token_file), "ready"])
        assert detailed.returncode == 0 and detailed.stdout.startswith("ready"), detailed
        # The certificate still counts: a probe trusts no other CA.
        other = start(["ctl", "--admin", url, "--ca-file", str(certs / "other-ca.pem"), "ready"])
        assert other.returncode == 1 and "certificate" in other.stderr, other

    # Nothing listening: refused at once.
    gone = start(["ctl", "--admin", f"http://127.0.0.1:{free_port()}", "ready"])
    assert gone.returncode == 1 and "cannot reach" in gone.stderr, gone
    # A listener that accepts and never answers: the probe's own limit ends it.
    with socket.socket() as mute:
        mute.bind(("127.0.0.1", 0))
        mute.listen(4)
        hung = start(["ctl", "--admin", f"http://127.0.0.1:{mute.getsockname()[1]}", "alive"],
                     timeout=20)
    assert hung.returncode == 1, hung
    assert hung.stderr == "mongoguard ctl: no answer within 2 s\n", hung.stderr


def test_admin_certificate_reloads_with_the_policy(backend, certs):
    """A renewed admin certificate, moved in place, serves new connections
    after SIGHUP; a broken one refuses the reload and the renewed one stays."""
    from hold_helpers import wait_until
    from test_tls import common_name, peer_cert

    live = certs / "live"
    live.mkdir(exist_ok=True)
    make_cert(certs, "renewed", "localhost-renewed")
    for name in ("pem", "key"):
        shutil.copy(certs / f"server.{name}", live / f"server.{name}")
    admin_yaml = TLS_ADMIN.replace("{certs}/server", "{certs}/live/server")
    with Setup(backend.upstream, certs, admin_yaml, rest="rules: []\n") as s:
        assert common_name(peer_cert(s.admin_port, certs)) == "localhost"
        for name in ("key", "pem"):  # written beside, then moved in place
            shutil.copy(certs / f"renewed.{name}", live / f"server.{name}.new")
            (live / f"server.{name}.new").replace(live / f"server.{name}")
        s.proxy.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: common_name(peer_cert(s.admin_port, certs)) == "localhost-renewed", 10,
                   "new admin connections to get the renewed certificate", interval=0.2)
        assert s.https("/api/holds") == (200, '{"holds":[]}\n')

        time.sleep(1.5)  # let the file watcher settle on the renewed files
        (live / "server.pem").write_text("-----BEGIN CERTIFICATE-----\nnot base64\n")
        s.proxy.proc.send_signal(signal.SIGHUP)
        s.proxy.wait_for_log("reload (SIGHUP) refused, the running policy stays in place")
        assert "admin.tls.cert: cannot load" in s.proxy.log_text()
        assert common_name(peer_cert(s.admin_port, certs)) == "localhost-renewed"
        assert s.https("/api/holds")[0] == 200
