"""Legacy clients: commands over OP_QUERY on `<db>.$cmd` (plain and wrapped in
{$query: ...} / {query: ...}), and the pre-3.6 write opcodes OP_DELETE and
OP_UPDATE, are judged like OP_MSG commands.

- A refused OP_QUERY command gets an OP_REPLY whose document is the usual
  refusal (ok 0, code 13, errmsg naming the rule), answering the request id.
- OP_DELETE / OP_UPDATE have no reply at all; a refused one is dropped, the
  log says so, and the connection goes on.

FerretDB 1.24 answers only hello/isMaster over OP_QUERY (anything else gets
352 UnsupportedOpQueryCommand) and does not take OP_DELETE/OP_UPDATE, so:
refusals are checked against FerretDB (the data must be untouched), and
forwarding is shown twice over: FerretDB's own 352 answer coming back, and
the fake upstream recording the forwarded bytes, which must be identical."""

from __future__ import annotations

import struct
import uuid

import pymongo
import pytest

import wire
from fake_upstream import FakeUpstream
from legacy_wire import op_delete, op_query_command, op_update
from policy_helpers import PolicyProxy, seed

RULE = "no-unfiltered-writes"


def policy_for(db: str) -> str:
    return f"""
    rules:
      - name: {RULE}
        match: {{namespace: "{db}.*", filter: unfiltered}}
        action: block
    """


def fresh_db(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def direct(backend):
    c = pymongo.MongoClient(backend.uri, serverSelectionTimeoutMS=5000)
    yield c
    c.close()


def documents(direct, db: str) -> list:
    return sorted(direct[db].c.find(), key=lambda d: d["_id"])


def check_op_reply_refusal(raw: bytes, request_id: int, rule: str = RULE) -> dict:
    header = wire.parse_header(raw)
    assert header.op_code == wire.OP_REPLY, f"expected an OP_REPLY, got opcode {header.op_code}"
    assert header.response_to == request_id, (header, request_id)
    reply = wire.parse_op_reply(raw)
    assert len(reply.docs) == 1, reply.docs
    doc = reply.docs[0]
    assert doc.get("ok") == 0, doc
    assert doc.get("code") == 13 and doc.get("codeName") == "Unauthorized", doc
    assert doc.get("errmsg", "").startswith("mongoguard: "), doc
    assert f"blocked by rule '{rule}'" in doc["errmsg"], doc
    assert "errorLabels" not in doc, doc
    return doc


OP_QUERY_REFUSED = {
    "delete": ({"delete": "c", "deletes": [{"q": {}, "limit": 0}]}, None),
    "delete-$query": ({"delete": "c", "deletes": [{"q": {}, "limit": 0}]}, "$query"),
    "delete-query": ({"delete": "c", "deletes": [{"q": {}, "limit": 0}]}, "query"),
    "update-multi": ({"update": "c", "updates": [{"q": {}, "u": {"$set": {"x": 0}},
                                                  "multi": True}]}, None),
    "update-$query": ({"update": "c", "updates": [{"q": {}, "u": {"$set": {"x": 0}},
                                                   "multi": True}]}, "$query"),
    "findAndModify-remove": ({"findAndModify": "c", "query": {}, "remove": True}, None),
    "findAndModify-$query": ({"findAndModify": "c", "query": {}, "remove": True}, "$query"),
    "findandmodify-update": ({"findandmodify": "c", "query": {},
                              "update": {"$set": {"x": 0}}}, None),
}


@pytest.mark.parametrize("form", list(OP_QUERY_REFUSED))
def test_op_query_command_refused_with_op_reply(backend, direct, form):
    db = fresh_db("lq")
    seed(direct, db)
    before = documents(direct, db)
    command, wrap = OP_QUERY_REFUSED[form]
    with PolicyProxy(backend.upstream, policy_for(db)) as p:
        sock = wire.connect(p.proxy.port)
        try:
            rid = wire.next_request_id()
            sock.sendall(op_query_command(db, command, wrap=wrap, request_id=rid))
            check_op_reply_refusal(wire.read_message(sock, timeout=10), rid)
            # The connection goes on: a hello over OP_QUERY still works.
            reply = wire.roundtrip(sock, op_query_command("admin", {"isMaster": 1}), timeout=10)
            assert reply.op_code == wire.OP_REPLY and reply.body.get("ok") == 1, reply.body
        finally:
            sock.close()
        record = p.wait_for_audit(lambda r: r.get("outcome") == "blocked")
        assert record["rule"] == RULE, record
    assert documents(direct, db) == before


def test_op_query_command_without_matching_rule_reaches_ferretdb(backend, direct):
    """A filtered delete over OP_QUERY matches no rule and is forwarded: the
    answer is FerretDB's own (352, it takes no OP_QUERY commands but hello),
    not a refusal by the proxy."""
    db = fresh_db("lqpass")
    seed(direct, db)
    with PolicyProxy(backend.upstream, policy_for(db)) as p:
        sock = wire.connect(p.proxy.port)
        try:
            for wrap in (None, "$query"):
                rid = wire.next_request_id()
                sock.sendall(op_query_command(db, {"delete": "c", "deletes": [{"q": {"_id": 1},
                                                                             "limit": 1}]},
                                              wrap=wrap, request_id=rid))
                raw = wire.read_message(sock, timeout=10)
                assert wire.parse_header(raw).response_to == rid
                doc = wire.parse_op_reply(raw).docs[0]
                assert not doc.get("errmsg", "").startswith("mongoguard"), doc
                assert doc.get("code") == 352, doc  # UnsupportedOpQueryCommand, from FerretDB
        finally:
            sock.close()
        assert not [r for r in p.audit_records() if r.get("outcome") == "blocked"]


@pytest.mark.parametrize("wrap", [None, "$query", "query"])
def test_op_query_command_without_matching_rule_forwarded_byte_identical(wrap):
    db = "lqfake"
    with FakeUpstream() as fake, PolicyProxy(f"mongodb://{fake.address}", policy_for(db)) as p:
        sock = wire.connect(p.proxy.port)
        try:
            sent = []
            for command in ({"delete": "c", "deletes": [{"q": {"_id": 1}, "limit": 1}]},
                            {"update": "c", "updates": [{"q": {"x": 2}, "u": {"$set": {"y": 1}}}]},
                            {"findAndModify": "c", "query": {"_id": 3}, "remove": True}):
                rid = wire.next_request_id()
                msg = op_query_command(db, command, wrap=wrap, request_id=rid)
                sent.append(msg)
                reply = wire.roundtrip(sock, msg, timeout=10)
                assert reply.op_code == wire.OP_REPLY and reply.response_to == rid
                assert reply.body == {"ok": 1.0}, reply.body  # the fake's answer, relayed
            # And a refused one, for contrast: answered by the proxy, never sent on.
            rid = wire.next_request_id()
            sock.sendall(op_query_command(db, {"delete": "c", "deletes": [{"q": {}, "limit": 0}]},
                                          wrap=wrap, request_id=rid))
            check_op_reply_refusal(wire.read_message(sock, timeout=10), rid)
        finally:
            sock.close()
        fake.wait_for(lambda: fake.total_bytes_received() >= sum(map(len, sent)), 5,
                      "forwarded OP_QUERY commands")
        received = b"".join(bytes(c.received) for c in fake.connections)
        assert received == b"".join(sent), "forwarded bytes differ from what the client sent"


# --- OP_DELETE / OP_UPDATE -----------------------------------------------------

LEGACY_REFUSED = {
    "OP_DELETE multi {}": lambda db: op_delete(f"{db}.c", {}),
    "OP_DELETE single {}": lambda db: op_delete(f"{db}.c", {}, single=True),
    "OP_UPDATE multi {}": lambda db: op_update(f"{db}.c", {}, {"$set": {"x": 0}}, multi=True),
    "OP_UPDATE single {}": lambda db: op_update(f"{db}.c", {}, {"$set": {"x": 0}}),
    "OP_UPDATE replace {}": lambda db: op_update(f"{db}.c", {}, {"x": 0}),
    "OP_DELETE {$expr: true}": lambda db: op_delete(f"{db}.c", {"$expr": True}),
}


@pytest.mark.parametrize("form", list(LEGACY_REFUSED))
def test_legacy_write_refused_is_dropped(backend, direct, form):
    """Against FerretDB: the refused write is dropped (no reply: the opcode has
    none), logged, audited as dropped, the connection stays usable, and the
    data is untouched."""
    db = fresh_db("lw")
    seed(direct, db)
    before = documents(direct, db)
    with PolicyProxy(backend.upstream, policy_for(db)) as p:
        sock = wire.connect(p.proxy.port)
        try:
            sock.sendall(LEGACY_REFUSED[form](db))
            assert wire.expect_silence(sock, 0.5) == b""
            reply = wire.roundtrip(sock, wire.op_msg({"ping": 1, "$db": "admin"}), timeout=10)
            assert reply.body.get("ok") == 1, reply.body
        finally:
            sock.close()
        log = p.proxy.wait_for_log("unacknowledged write dropped")
        assert f"rule '{RULE}'" in log, log[-3000:]
        record = p.wait_for_audit(lambda r: r.get("outcome") == "dropped")
        assert record["command"] in ("OP_DELETE", "OP_UPDATE"), record
        assert record["targets"][0]["ns"] == f"{db}.c", record
    assert documents(direct, db) == before


def test_legacy_writes_allowed_are_forwarded_byte_identical_and_refused_never_arrive():
    db = "lwfake"
    allowed = [
        op_delete(f"{db}.c", {"_id": 1}, single=True),
        op_delete(f"{db}.c", {"x": {"$gt": 3}}),
        op_update(f"{db}.c", {"_id": 2}, {"$set": {"y": 1}}),
        op_update(f"{db}.c", {"x": 5}, {"$inc": {"y": 1}}, multi=True, upsert=True),
        op_update(f"{db}.c", {"_id": 4}, {"y": 2}),
        op_delete("otherdb.c", {}),  # no rule for this namespace
    ]
    refused = [f(db) for f in LEGACY_REFUSED.values()]

    def count(msg, conn):
        # The proxy measures a multi statement's filter under filter: unfiltered
        # (the collection, then the filter): a selective one, 2 of 100.
        return [conn.server.reply(msg, {"n": 2 if msg.body.get("query") else 100, "ok": 1.0})]

    with FakeUpstream({"count": count}) as fake, \
            PolicyProxy(f"mongodb://{fake.address}", policy_for(db)) as p:
        sock = wire.connect(p.proxy.port)
        try:
            expected = b""
            for i, msg in enumerate(allowed):
                sock.sendall(msg)
                expected += msg
                sock.sendall(refused[i % len(refused)])
            ping = wire.op_msg({"ping": 1, "$db": "admin"})
            reply = wire.roundtrip(sock, ping, timeout=10)
            assert reply.body.get("ok") == 1, reply.body
            expected += ping
        finally:
            sock.close()
        # The client's own bytes, in order, byte for byte: everything but
        # the proxy's counts (OP_MSG under negative request ids).
        received = b"".join(m.raw for c in fake.connections for m in c.messages
                            if not (m.header.request_id < 0 and "count" in (m.body or {})))
        assert received == expected, (
            f"upstream got {len(received)} bytes, expected {len(expected)}; opcodes received: "
            f"{[m.op_code for c in fake.connections for m in c.messages]}")
        dropped = [r for r in p.audit_records() if r.get("outcome") == "dropped"]
        assert len(dropped) == len(allowed), dropped
        forwarded = [r for r in p.audit_records() if r.get("outcome") == "forwarded"]
        assert len(forwarded) == len(allowed), forwarded  # every inspected write is audited
        assert p.log_text().count("unacknowledged write dropped") == len(allowed)


def test_legacy_writes_forwarded_when_no_rule_matches():
    with FakeUpstream() as fake, PolicyProxy(f"mongodb://{fake.address}", "rules: []") as p:
        sock = wire.connect(p.proxy.port)
        try:
            msgs = [op_delete("free.c", {}), op_update("free.c", {}, {"$set": {"a": 1}}, multi=True)]
            for m in msgs:
                sock.sendall(m)
            ping = wire.op_msg({"ping": 1, "$db": "admin"})
            assert wire.roundtrip(sock, ping, timeout=10).body.get("ok") == 1
        finally:
            sock.close()
        received = b"".join(bytes(c.received) for c in fake.connections)
        assert received == b"".join(msgs) + ping


def test_truncated_op_delete_is_rejected_not_forwarded():
    """An OP_DELETE whose selector runs past the frame cannot be judged: the
    connection is closed and nothing reaches the upstream."""
    with FakeUpstream() as fake, PolicyProxy(f"mongodb://{fake.address}", policy_for("lwbad")) as p:
        sock = wire.connect(p.proxy.port)
        try:
            good = op_delete("lwbad.c", {"_id": 1})
            body = bytearray(good[wire.HEADER_SIZE:])
            sel_at = 4 + len(b"lwbad.c\x00") + 4
            struct.pack_into("<i", body, sel_at, 1000)  # selector claims 1000 bytes
            sock.sendall(wire.frame(wire.OP_DELETE, bytes(body)))
            outcome, _ = wire.wait_closed(sock, 5)
            assert outcome in ("eof", "reset"), outcome
        finally:
            sock.close()
        assert fake.total_bytes_received() == 0
        p.proxy.wait_for_log("rejected frame")
