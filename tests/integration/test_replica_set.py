"""A replica set behind mongoguard: one listener per member, every hello
reply rewritten to name mongoguard's listeners, so a driver given the set
discovers, monitors and fails over entirely through mongoguard. The set is
scripted in front of the real backend (see rs_script.py)."""

from __future__ import annotations

import pathlib
import tempfile
import time

import pymongo
import pytest

import wire
from harness import free_port
from rs_script import ScriptedReplicaSet


def _config(rs: ScriptedReplicaSet, listens: list[int], extra: str = "") -> pathlib.Path:
    members = "\n".join(
        f'    - {{ server: "{m.address}", listen: "127.0.0.1:{port}" }}'
        for m, port in zip(rs.members, listens))
    text = f"""upstream:
  replica_set: {rs.name}
  members:
{members}
rules:
  - name: no-unfiltered-deletes
    match: {{ namespace: "*.*", operations: [delete], filter: unfiltered }}
    action: block
{extra}"""
    path = pathlib.Path(tempfile.mkdtemp(prefix="mg-rs-")) / "mongoguard.yaml"
    path.write_text(text)
    return path


@pytest.fixture
def rs_proxy(backend):
    rs = ScriptedReplicaSet(backend.port, extra_hosts=("127.0.0.1:1",))
    listens = [free_port() for _ in rs.members]
    config = _config(rs, listens)
    import subprocess
    from harness import PROXY_BIN, wait_for_port
    log = pathlib.Path(tempfile.mkdtemp(prefix="mg-rs-log-")) / "proxy.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(PROXY_BIN), "--config", str(config), "--log-level", "debug"],
                                stdout=out, stderr=subprocess.STDOUT)
        try:
            for port in listens:
                wait_for_port(port, proc)
            yield rs, listens, log
        finally:
            proc.terminate()
            proc.wait(timeout=10)
            rs.close()


def test_hello_through_each_listener_names_only_mongoguard(rs_proxy):
    rs, listens, log = rs_proxy
    expected_hosts = [f"127.0.0.1:{p}" for p in listens]
    for index, port in enumerate(listens):
        with wire.connect(port) as sock:
            # Both handshakes: OP_MSG hello and the legacy OP_QUERY isMaster.
            reply = wire.roundtrip(sock, wire.op_msg({"hello": 1, "$db": "admin"}))
            body = reply.body
            assert body["hosts"] == expected_hosts, body
            assert body["me"] == f"127.0.0.1:{port}"
            assert body["primary"] == expected_hosts[rs.primary]
            assert body["setName"] == "rs0" and body["electionId"] == rs.hello(0)["electionId"]
            legacy = wire.roundtrip(sock, wire.op_query("admin.$cmd", {"isMaster": 1},
                                                        number_to_return=-1))
            assert legacy.op_code == wire.OP_REPLY
            assert legacy.body["hosts"] == expected_hosts
            assert legacy.body["me"] == f"127.0.0.1:{port}"
    text = log.read_text()
    assert "127.0.0.1:1, which is not a configured member; left out" in text


def test_driver_discovers_the_set_and_follows_a_primary_move(rs_proxy, backend):
    rs, listens, _ = rs_proxy
    seeds = ",".join(f"127.0.0.1:{p}" for p in listens[:2])
    client = pymongo.MongoClient(f"mongodb://{seeds}/?replicaSet=rs0&heartbeatFrequencyMS=500",
                                 serverSelectionTimeoutMS=10_000)
    try:
        coll = client.rsdb.families
        coll.insert_one({"n": 1})
        assert client.primary == ("127.0.0.1", listens[0])
        assert set(client.nodes) == {("127.0.0.1", p) for p in listens}, client.nodes
        before = [m.writes for m in rs.members]
        assert before[0] >= 1 and before[1] == before[2] == 0

        rs.move_primary(2)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                coll.insert_one({"n": 2})
                if rs.members[2].writes > 0:
                    break
            except pymongo.errors.PyMongoError:
                time.sleep(0.2)
        assert rs.members[2].writes > 0, [m.writes for m in rs.members]
        assert client.primary == ("127.0.0.1", listens[2])
        # The policy still applies on the new primary's listener.
        with pytest.raises(pymongo.errors.OperationFailure) as caught:
            coll.delete_many({})
        assert caught.value.code == 13
        assert "no-unfiltered-deletes" in caught.value.details["errmsg"]
        assert pymongo.MongoClient(backend.uri).rsdb.families.count_documents({}) >= 2
    finally:
        client.close()


def test_direct_connection_to_one_member_still_works(rs_proxy):
    rs, listens, _ = rs_proxy
    client = pymongo.MongoClient(f"mongodb://127.0.0.1:{listens[0]}/?directConnection=true",
                                 serverSelectionTimeoutMS=5000)
    try:
        client.rsdb.direct.insert_one({"x": 1})
        assert client.rsdb.direct.count_documents({"x": 1}) >= 1
    finally:
        client.close()
