"""TLS on both sides of mongoguard, with certificates made by the openssl CLI
for each run: a CA, a server certificate for 127.0.0.1/localhost, a client
certificate, and a second CA that trusts none of them.

- client side (tls.client): pymongo with tls=True through the proxy to the
  plain backend; the policy still applies; mutual TLS needs a client
  certificate;
- upstream side (tls.upstream): mongoguard to FerretDB's own TLS listener,
  verifying the server's certificate and name; a wrong CA or name closes the
  client connection with the reason logged while the proxy keeps serving;
- certificates reload with the policy (SIGHUP): new connections get the new
  certificate, open ones keep working, a broken file is refused;
- a held operation over TLS whose client leaves is never forwarded."""

from __future__ import annotations

import os
import pathlib
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time

import pymongo
import pytest
from pymongo.errors import OperationFailure, ServerSelectionTimeoutError

import wire
from backend import ferretdb_binary
from harness import free_port, wait_for_port
from hold_helpers import GuardedProxy, delete_msg, unique_db, wait_until

UNAUTHORIZED = 13


def openssl(*args: str, cwd: pathlib.Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca(d: pathlib.Path, name: str) -> None:
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2", "-subj",
            f"/CN=mongoguard test {name}", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)


def make_cert(d: pathlib.Path, name: str, cn: str, ca: str = "ca", *, client: bool = False) -> None:
    usage = "clientAuth" if client else "serverAuth"
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2", "-subj", f"/CN={cn}",
            "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-addext", "basicConstraints=critical,CA:FALSE",
            "-addext", f"extendedKeyUsage={usage}", cwd=d)
    # pymongo's tlsCertificateKeyFile wants both in one file.
    (d / f"{name}-combined.pem").write_text((d / f"{name}.pem").read_text() +
                                            (d / f"{name}.key").read_text())


@pytest.fixture(scope="module")
def certs():
    d = pathlib.Path(tempfile.mkdtemp(prefix="mg-tls-"))
    make_ca(d, "ca")
    make_ca(d, "other-ca")
    make_cert(d, "server", "localhost")
    make_cert(d, "server2", "localhost-renewed")
    make_cert(d, "client", "app-client", client=True)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def tls_backend(certs):
    """FerretDB listening with TLS only (its plain port is unused here)."""
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="mg-ferretdb-tls-"))
    (workdir / "data").mkdir()
    (workdir / "state").mkdir()
    log_path = workdir / "ferretdb.log"
    proc = None
    last = None
    for _ in range(3):
        port = free_port()
        args = [str(ferretdb_binary()), "--handler=sqlite", f"--sqlite-url=file:{workdir}/data/",
                f"--state-dir={workdir}/state", f"--listen-addr=127.0.0.1:{free_port()}",
                f"--listen-tls=127.0.0.1:{port}",
                f"--listen-tls-cert-file={certs / 'server.pem'}",
                f"--listen-tls-key-file={certs / 'server.key'}",
                "--debug-addr=-", "--telemetry=disable", "--log-level=info", "--log-format=text"]
        log = open(log_path, "ab")
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=workdir,
                                env=dict(os.environ, FERRETDB_TELEMETRY="disable", DO_NOT_TRACK="1"))
        log.close()
        try:
            wait_for_port(port, proc, timeout=30)
            break
        except Exception as e:  # noqa: BLE001 - retried, then reported
            last = e
            proc.kill()
            proc.wait(timeout=10)
            proc = None
    if proc is None:
        raise RuntimeError(f"TLS FerretDB did not start: {last}\n{log_path.read_text()}")
    try:
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(workdir, ignore_errors=True)


def client_tls(certs, ca: str | None = None) -> str:
    lines = ["tls:", "  client:", f"    cert: {certs / 'server.pem'}",
             f"    key: {certs / 'server.key'}"]
    if ca:
        lines.append(f"    ca: {certs / ca}")
    return "\n".join(lines) + "\n"


BLOCK_UNFILTERED = """
rules:
  - name: no-unfiltered-writes
    match: { namespace: "*.*", operations: [delete, update], filter: unfiltered }
    action: block
"""


def tls_client(gp: GuardedProxy, certs, **kwargs) -> pymongo.MongoClient:
    kwargs.setdefault("serverSelectionTimeoutMS", 5000)
    return gp.client(tls=True, tlsCAFile=str(certs / "ca.pem"), **kwargs)


def peer_cert(port: int, certs) -> dict:
    ctx = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            return s.getpeercert()


def common_name(cert: dict) -> str:
    return dict(x[0] for x in cert["subject"])["commonName"]


def test_client_tls_crud_and_policy(backend, certs):
    database = unique_db("tls")
    with GuardedProxy(backend.upstream, client_tls(certs) + BLOCK_UNFILTERED) as gp:
        coll = tls_client(gp, certs)[database].c
        coll.insert_many([{"_id": i, "x": i} for i in range(5)])
        assert coll.find_one({"_id": 3})["x"] == 3
        assert coll.update_one({"_id": 3}, {"$set": {"x": 30}}).modified_count == 1
        assert coll.delete_one({"_id": 4}).deleted_count == 1
        with pytest.raises(OperationFailure) as err:
            coll.delete_many({})
        assert err.value.code == UNAUTHORIZED
        assert "no-unfiltered-writes" in str(err.value)
        assert coll.count_documents({}) == 4
        gp.wait_for_log("opened (TLS)")
        # Plain TCP to a TLS listener gets nowhere.
        plain = gp.client(serverSelectionTimeoutMS=1500)
        with pytest.raises(ServerSelectionTimeoutError):
            plain.admin.command("ping")
        gp.wait_for_log("client TLS handshake failed")
        assert gp.proc.poll() is None
        coll.drop()


def test_mutual_tls_needs_a_client_certificate(backend, certs):
    with GuardedProxy(backend.upstream, client_tls(certs, ca="ca.pem")) as gp:
        without = tls_client(gp, certs, serverSelectionTimeoutMS=1500)
        with pytest.raises(ServerSelectionTimeoutError):
            without.admin.command("ping")
        gp.wait_for_log("client TLS handshake failed")
        with_cert = tls_client(gp, certs,
                               tlsCertificateKeyFile=str(certs / "client-combined.pem"))
        assert with_cert.admin.command("ping")["ok"] == 1
        # A certificate from a CA mongoguard does not trust is refused too.
        scratch = pathlib.Path(tempfile.mkdtemp(prefix="mg-tls-foreign-"))
        try:
            shutil.copy(certs / "other-ca.pem", scratch)
            shutil.copy(certs / "other-ca.key", scratch)
            make_cert(scratch, "foreign", "foreign-client", ca="other-ca", client=True)
            foreign = tls_client(gp, certs, serverSelectionTimeoutMS=1500,
                                 tlsCertificateKeyFile=str(scratch / "foreign-combined.pem"))
            with pytest.raises(ServerSelectionTimeoutError):
                foreign.admin.command("ping")
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


def upstream_tls(certs, ca: str = "ca.pem", server_name: str | None = None) -> str:
    text = f"tls:\n  upstream:\n    ca: {certs / ca}\n    verify_hostname: true\n"
    if server_name:
        text += f"    server_name: {server_name}\n"
    return text


def test_upstream_tls_verified(certs, tls_backend):
    database = unique_db("tls_up")
    upstream = f"mongodb://127.0.0.1:{tls_backend}"
    with GuardedProxy(upstream, upstream_tls(certs) + BLOCK_UNFILTERED) as gp:
        coll = gp.client()[database].c
        coll.insert_many([{"_id": i} for i in range(3)])
        assert coll.count_documents({}) == 3
        with pytest.raises(OperationFailure) as err:
            coll.delete_many({})
        assert err.value.code == UNAUTHORIZED
        assert coll.delete_one({"_id": 0}).deleted_count == 1
        coll.database.client.drop_database(database)


def test_upstream_tls_named_by_server_name(certs, tls_backend):
    upstream = f"mongodb://127.0.0.1:{tls_backend}"
    with GuardedProxy(upstream, upstream_tls(certs, server_name="localhost")) as gp:
        assert gp.client().admin.command("ping")["ok"] == 1


@pytest.mark.parametrize("case", ["wrong-ca", "wrong-name"])
def test_upstream_tls_refused(certs, tls_backend, case):
    upstream = f"mongodb://127.0.0.1:{tls_backend}"
    tls = (upstream_tls(certs, ca="other-ca.pem") if case == "wrong-ca"
           else upstream_tls(certs, server_name="db.internal"))
    with GuardedProxy(upstream, tls) as gp:
        with pytest.raises(ServerSelectionTimeoutError):
            gp.client(serverSelectionTimeoutMS=1500).admin.command("ping")
        text = gp.wait_for_log("TLS handshake failed")
        line = next(x for x in text.splitlines() if "TLS handshake failed" in x)
        assert "certificate verify failed" in line, line
        if case == "wrong-name":
            assert "does not name 'db.internal'" in line, line
        else:
            assert "unable to get local issuer certificate" in line, line
        # Still serving: the admin API answers and counts the failures.
        metrics = gp.admin.metrics()
        assert metrics['mongoguard_tls_handshake_failures_total{side="upstream"}'] >= 1
        assert gp.proc.poll() is None
        assert gp.admin.holds() == []


def test_certificates_reload_with_the_policy(backend, certs):
    live = pathlib.Path(tempfile.mkdtemp(prefix="mg-tls-live-"))
    try:
        shutil.copy(certs / "server.pem", live / "server.pem")
        shutil.copy(certs / "server.key", live / "server.key")
        tls = f"tls:\n  client:\n    cert: {live / 'server.pem'}\n    key: {live / 'server.key'}\n"
        with GuardedProxy(backend.upstream, tls) as gp:
            old = tls_client(gp, certs, maxPoolSize=1)
            assert old.admin.command("ping")["ok"] == 1
            before = peer_cert(gp.port, certs)
            assert common_name(before) == "localhost"

            # Renewed certificate: written beside, then moved in place.
            for name in ("server.pem", "server.key"):
                shutil.copy(certs / name.replace("server", "server2"), live / (name + ".new"))
            os.replace(live / "server.key.new", live / "server.key")
            os.replace(live / "server.pem.new", live / "server.pem")
            gp.proc.send_signal(signal.SIGHUP)
            renewed = wait_until(
                lambda: (c := peer_cert(gp.port, certs)) and common_name(c) == "localhost-renewed"
                and c, 10, "new connections to get the renewed certificate", interval=0.2)
            assert renewed["serialNumber"] != before["serialNumber"]
            # The connection opened before the reload goes on with its session.
            assert old.admin.command("ping")["ok"] == 1
            assert tls_client(gp, certs).admin.command("ping")["ok"] == 1

            # A broken certificate file is refused; the renewed one stays in use.
            time.sleep(1.5)  # let the file watcher settle on the renewed files
            refused_before = gp.log_text().count("refused")
            (live / "server.pem").write_text("-----BEGIN CERTIFICATE-----\nnot base64\n")
            gp.proc.send_signal(signal.SIGHUP)
            wait_until(lambda: gp.log_text().count("refused") > refused_before, 10,
                       "the reload to be refused")
            assert "tls.client.cert" in gp.log_text()
            assert common_name(peer_cert(gp.port, certs)) == "localhost-renewed"
            assert tls_client(gp, certs).admin.command("ping")["ok"] == 1
            assert old.admin.command("ping")["ok"] == 1
    finally:
        shutil.rmtree(live, ignore_errors=True)


HOLD_RULE = """
holds:
  timeout: 1m
rules:
  - name: second-pair-of-eyes
    match: {{ namespace: "{database}.*", operations: [delete] }}
    action: hold
"""


@pytest.mark.parametrize("goodbye", ["close_notify", "fin"])
def test_held_operation_over_tls_whose_client_leaves_is_never_forwarded(backend, certs, goodbye):
    database = unique_db("tls_hold")
    direct = pymongo.MongoClient(backend.uri, serverSelectionTimeoutMS=5000)
    direct[database].c.insert_many([{"_id": i} for i in range(3)])
    try:
        policy = client_tls(certs) + HOLD_RULE.format(database=database)
        with GuardedProxy(backend.upstream, policy) as gp:
            ctx = ssl.create_default_context(cafile=str(certs / "ca.pem"))
            raw = socket.create_connection(("127.0.0.1", gp.port), timeout=5)
            sock = ctx.wrap_socket(raw, server_hostname="localhost")
            reply = wire.roundtrip(sock, wire.op_msg({"hello": 1, "$db": "admin"}))
            assert reply.body.get("ok") == 1
            msg, _ = delete_msg(database, "c", {"_id": 1})
            sock.sendall(msg)
            hold = gp.admin.wait_for_hold()
            if goodbye == "close_notify":
                try:
                    sock.unwrap().close()  # TLS close_notify, then FIN
                except (ssl.SSLError, OSError):
                    sock.close()
            else:
                sock.close()
            wait_until(lambda: gp.admin.holds() == [], 5, "the hold to be cancelled")
            text = gp.wait_for_log("client went away while its operation was held")
            assert f"hold {hold['id']} client gone" in text
            time.sleep(1)
            assert direct[database].c.count_documents({"_id": 1}) == 1, "the abandoned delete ran"
    finally:
        direct.drop_database(database)
        direct.close()


def test_pipelined_second_hold_over_tls_whose_client_leaves_is_never_forwarded(backend, certs):
    """Two deletes pipelined: the first is held and approved while the
    second already waits in mongoguard's read-ahead (with a read still
    outstanding on the connection). The second is held in turn; when the
    client then leaves, that hold must notice it."""
    database = unique_db("tls_hold2")
    direct = pymongo.MongoClient(backend.uri, serverSelectionTimeoutMS=5000)
    direct[database].c.insert_many([{"_id": i} for i in range(3)])
    try:
        policy = client_tls(certs) + HOLD_RULE.format(database=database)
        with GuardedProxy(backend.upstream, policy) as gp:
            ctx = ssl.create_default_context(cafile=str(certs / "ca.pem"))
            raw = socket.create_connection(("127.0.0.1", gp.port), timeout=5)
            sock = ctx.wrap_socket(raw, server_hostname="localhost")
            assert wire.roundtrip(sock, wire.op_msg({"hello": 1, "$db": "admin"})).body["ok"] == 1
            first, first_id = delete_msg(database, "c", {"_id": 1})
            second, _ = delete_msg(database, "c", {"_id": 2})
            sock.sendall(first)
            hold = gp.admin.wait_for_hold()
            sock.sendall(second)
            time.sleep(0.3)
            gp.admin.approve(hold["id"], by="alice")
            reply = wire.parse_message(wire.read_message(sock, timeout=10))
            assert reply.header.response_to == first_id
            assert reply.body.get("n") == 1, reply.body
            second_hold = gp.admin.wait_for_hold(lambda h: h["id"] != hold["id"])
            sock.close()
            wait_until(lambda: gp.admin.holds() == [], 5, "the second hold to be cancelled")
            text = gp.wait_for_log("client went away while its operation was held")
            assert f"hold {second_hold['id']} client gone" in text
            time.sleep(1)
            assert direct[database].c.count_documents({"_id": 2}) == 1, "the abandoned delete ran"
            assert direct[database].c.count_documents({"_id": 1}) == 0
    finally:
        direct.drop_database(database)
        direct.close()
