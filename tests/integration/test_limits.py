"""limits: max_connections, max_pending_holds and max_message_size, through
build/mongoguard against FerretDB: beyond each a clear refusal, a log line
naming the limit, a metric, and nothing forwarded that should not be."""

from __future__ import annotations

import concurrent.futures
import signal
import socket
import subprocess
import textwrap

import pymongo
import pytest
from pymongo.errors import AutoReconnect, OperationFailure

import wire
from harness import PROXY_BIN
from hold_helpers import GuardedProxy, raw_hello, unique_db, wait_until

pytestmark = pytest.mark.skipif(not PROXY_BIN.exists(), reason=f"{PROXY_BIN} not built")


@pytest.fixture
def seeded(backend):
    database = unique_db("limits")
    direct = pymongo.MongoClient(backend.uri, serverSelectionTimeoutMS=5000)
    direct[database].c.insert_many([{"_id": i} for i in range(10)])
    yield database, direct
    direct.drop_database(database)
    direct.close()


def test_connections_beyond_max_connections_are_closed_at_once(backend):
    with GuardedProxy(backend.upstream, "limits:\n  max_connections: 3\nrules: []") as gp:
        served = [raw_hello(gp.port, f"app-{i}") for i in range(3)]
        try:  # the reset may come before connect() returns
            extra = socket.create_connection(("127.0.0.1", gp.port), timeout=5)
        except ConnectionResetError:
            pass
        else:
            how, data = wire.wait_closed(extra, timeout=5)
            assert how in ("eof", "reset") and data == b"", (how, data)
            extra.close()
        gp.wait_for_log("limits.max_connections is 3")
        assert gp.admin.metrics()["mongoguard_connections_refused_total"] == 1
        # The three served ones still work.
        for s in served:
            assert wire.roundtrip(s, wire.op_msg({"ping": 1, "$db": "admin"})).body["ok"] == 1
        served.pop().close()
        # A slot freed is a slot to take.
        wait_until(lambda: gp.admin.metrics()["mongoguard_connections_open"] == 2, 10,
                   "the closed connection to be gone")
        again = raw_hello(gp.port, "after")
        again.close()
        for s in served:
            s.close()


def test_holds_beyond_max_pending_holds_are_refused_not_held(backend, seeded):
    database, direct = seeded
    policy = f"""
        limits:
          max_pending_holds: 1
        rules:
          - name: hold-deletes
            match: {{ namespace: "{database}.*", operations: [delete] }}
            action: hold
    """
    with GuardedProxy(backend.upstream, policy) as gp, \
            concurrent.futures.ThreadPoolExecutor(2) as pool:
        first = pool.submit(gp.client()[database].c.delete_one, {"_id": 1})
        wait_until(lambda: len(gp.admin.holds()) == 1, 10, "the first delete to be held")
        with pytest.raises(OperationFailure) as caught:
            gp.client()[database].c.delete_one({"_id": 2})
        assert caught.value.code == 13
        assert "limits.max_pending_holds" in str(caught.value)
        assert len(gp.admin.holds()) == 1, "the second delete was held after all"
        gp.wait_for_log("(limits.max_pending_holds); refused, not forwarded")
        assert gp.admin.metrics()["mongoguard_holds_refused_total"] == 1
        records = [r for r in gp.audit_records() if r.get("outcome", "").startswith("refused")]
        assert len(records) == 1, gp.audit_records()
        hold_id = gp.admin.holds()[0]["id"]
        gp.admin.reject(hold_id)
        with pytest.raises(OperationFailure):
            first.result(timeout=10)
        # Reloadable: raise the limit and the next one is held.
        gp.config_path.write_text(gp.config_path.read_text().replace(
            "max_pending_holds: 1", "max_pending_holds: 5"))
        gp.proc.send_signal(signal.SIGHUP)
        gp.wait_for_log("policy reloaded (SIGHUP)")
    assert direct[database].c.count_documents({}) == 10, "a refused or rejected delete ran"


def test_messages_beyond_max_message_size_close_the_connection_with_a_clear_log(backend, seeded):
    database, direct = seeded
    with GuardedProxy(backend.upstream, "limits:\n  max_message_size: 100000\nrules: []") as gp:
        client = gp.client()
        client[database].small.insert_one({"_id": 1, "blob": "x" * 50_000})
        with pytest.raises(AutoReconnect):
            client[database].big.insert_one({"_id": 1, "blob": "x" * 200_000})
        gp.wait_for_log("exceeds limits.max_message_size 100000")
        assert gp.proc.poll() is None
    assert direct[database].small.count_documents({}) == 1
    assert direct[database].big.count_documents({}) == 0, "an oversized frame was forwarded"


@pytest.mark.parametrize("yaml_text, message", [
    ("limits:\n  max_message_size: 100\n", "limits.max_message_size must be a whole number"),
    ("limits:\n  max_connections: -1\n", "limits.max_connections must be a whole number"),
    ("limits:\n  max_pending: 3\n", "unknown key 'max_pending' in limits"),
    ("shutdown_grace: soon\n", "bad duration 'soon' for shutdown_grace"),
])
def test_bad_limits_are_refused_with_file_line_col(tmp_path, yaml_text, message):
    path = tmp_path / "mongoguard.yaml"
    path.write_text(textwrap.dedent(yaml_text))
    result = subprocess.run([str(PROXY_BIN), "validate", str(path)], capture_output=True,
                            text=True, timeout=30)
    assert result.returncode != 0
    out = result.stdout + result.stderr
    assert message in out, out
    assert f"{path}:2:" in out or f"{path}:1:" in out, out
