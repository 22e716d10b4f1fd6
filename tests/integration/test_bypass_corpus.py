"""The bypass corpus: every known way around the policy, each tried against
a rule that says block.

Each case is one frame sent over a bare connection (after a hello, as
drivers do) and the outcome the proxy must give it:

- "blocked": an error reply (code 13, naming the rule; an OP_REPLY for
  OP_QUERY), and the connection goes on;
- "closed": the frame cannot be decoded safely (bad checksum, ambiguous
  layout): the connection is closed, nothing forwarded;
- "dropped": an unacknowledged write (moreToCome, legacy opcodes): no
  reply, nothing forwarded, the connection goes on;
- "backend-refuses": not a command on the server at all (command names
  are case-sensitive there): forwarded, and the server's own error comes
  back.

Where FerretDB can execute the command, the case runs against it and the
data (documents, collections, indexes of the protected database) is
compared over a direct connection before and after. Where it cannot
(compression, OP_QUERY commands, legacy opcodes, transactions, bulkWrite,
$out/$merge, applyOps, ...), the case runs against the scripted fake
upstream and asserts that not one byte of the frame reached it: after the
case a ping goes through, and the bytes the upstream received are exactly
the ping's.

docs/reliability.md lists the cases with the outcome asserted.
"""

from __future__ import annotations

import struct
import time
import uuid
from dataclasses import dataclass
from typing import Callable

import bson
import pymongo
import pytest
from bson import Int64, MinKey
from bson.raw_bson import RawBSONDocument

import legacy_wire
import wire
from fake_upstream import FakeUpstream
from policy_helpers import PolicyProxy

SUFFIX = uuid.uuid4().hex[:8]
DB = f"bypass_{SUFFIX}"            # everything destructive here is blocked
TAUT = f"bypasstaut_{SUFFIX}"      # unfiltered deletes/updates blocked
LIM = f"bypasslim_{SUFFIX}"        # a delete budget of 2 documents, counted up front
OTHER = f"bypassfree_{SUFFIX}"     # no rule at all
BLOCK = "corpus-block"
UNFILTERED = "corpus-unfiltered"
BUDGET = "corpus-budget"
ALL_OPERATIONS = ("delete, update, replace, findAndModify, bulkWrite, drop, dropDatabase, "
                  "dropIndexes, renameCollection, aggregateOut, mapReduceOut, convertToCapped, "
                  "emptycapped, ttlChange, applyOps, dropSearchIndex")
POLICY = f"""
rules:
  - name: {BLOCK}
    match: {{ namespace: "{DB}.*", operations: [{ALL_OPERATIONS}] }}
    action: block
  - name: {UNFILTERED}
    match: {{ namespace: "{TAUT}.*", operations: [delete, update, replace, findAndModify, bulkWrite],
             filter: unfiltered }}
    action: block
  - name: {BUDGET}
    match: {{ namespace: "{LIM}.*", operations: [delete] }}
    limit: {{ documents: 2, per: 1h, preflight: true }}
    action: block
"""
RULES = (BLOCK, UNFILTERED, BUDGET)


# --- frames -----------------------------------------------------------------

def msg(body, *, sequences=None, flags: int = 0, checksum: bool | int = False) -> bytes:
    return wire.op_msg(body, sequences=sequences, flags=flags, checksum=checksum)


def raw_doc(*pairs: tuple[str, object]) -> bytes:
    """A BSON document with the fields in this order, duplicates allowed."""
    elements = b"".join(bson.encode({k: v})[4:-1] for k, v in pairs)
    return struct.pack("<i", len(elements) + 5) + elements + b"\x00"


def delete_all(coll: str = "c", db: str = DB, **extra) -> dict:
    return {"delete": coll, "deletes": [{"q": {}, "limit": 0}], **extra, "$db": db}


def delete_filtered(q: dict, coll: str = "c", db: str = TAUT, limit=0) -> dict:
    return {"delete": coll, "deletes": [{"q": q, "limit": limit}], "$db": db}


def update_all(coll: str = "c", db: str = DB) -> dict:
    return {"update": coll, "updates": [{"q": {}, "u": {"$set": {"x": 0}}, "multi": True}], "$db": db}


def txn(**extra) -> dict:
    return {"lsid": {"id": bson.Binary(uuid.uuid4().bytes, 4)}, "txnNumber": Int64(1),
            "autocommit": False, **extra}


def op_query_cmd(body: dict, wrap: str | None) -> bytes:
    body = dict(body)
    db = body.pop("$db")
    return legacy_wire.op_query_command(db, body, wrap=wrap)


TAUTOLOGIES = {
    "empty": {},
    "expr-true": {"$expr": True},
    "id-exists": {"_id": {"$exists": True}},
    "where-true": {"$where": "true"},
    "id-ne-null": {"_id": {"$ne": None}},
    "id-gte-minkey": {"_id": {"$gte": MinKey()}},
    "and-of-tautologies": {"$and": [{}, {"_id": {"$exists": True}}]},
    "or-with-tautology": {"$or": [{"a": 1}, {"$expr": True}]},
}


@dataclass(frozen=True)
class Case:
    frame: Callable[[], bytes]
    expect: str   # "blocked" | "closed" | "dropped" | "backend-refuses"
    where: str    # "ferretdb" | "fake"
    rule: str = BLOCK


CASES: dict[str, Case] = {
    # Plain forms, the baseline every other case varies.
    "delete-inline": Case(lambda: msg(delete_all()), "blocked", "ferretdb"),
    "delete-sequence": Case(lambda: msg({"delete": "c", "$db": DB},
                                        sequences={"deletes": [{"q": {}, "limit": 0}]}),
                            "blocked", "ferretdb"),
    "delete-sequence-second-statement-unfiltered": Case(
        lambda: msg({"delete": "c", "ordered": False, "$db": TAUT},
                    sequences={"deletes": [{"q": {"_id": 1}, "limit": 1}, {"q": {}, "limit": 0}]}),
        "blocked", "ferretdb", UNFILTERED),
    "update-inline-multi": Case(lambda: msg(update_all()), "blocked", "ferretdb"),
    "update-sequence": Case(lambda: msg({"update": "c", "$db": DB},
                                        sequences={"updates": [{"q": {}, "u": {"$set": {"x": 0}},
                                                                "multi": True}]}),
                            "blocked", "ferretdb"),
    "update-pipeline": Case(lambda: msg({"update": "c", "updates": [{"q": {"_id": 1},
                                                                     "u": [{"$set": {"x": 0}}]}],
                                         "$db": DB}), "blocked", "ferretdb"),
    "update-replacement-upsert": Case(lambda: msg({"update": "c", "updates": [
        {"q": {"_id": 1}, "u": {"x": 0}, "upsert": True}], "$db": DB}), "blocked", "ferretdb"),
    # Inline array and a sequence of the same name: ambiguous, refused.
    "delete-inline-and-sequence": Case(
        lambda: msg({"delete": "c", "deletes": [{"q": {"_id": -1}, "limit": 1}], "$db": DB},
                    sequences={"deletes": [{"q": {}, "limit": 0}]}), "closed", "ferretdb"),
    # Aliases and case.
    "findAndModify-remove": Case(lambda: msg({"findAndModify": "c", "query": {}, "remove": True,
                                              "$db": DB}), "blocked", "ferretdb"),
    "findandmodify-alias-remove": Case(lambda: msg({"findandmodify": "c", "query": {}, "remove": True,
                                                    "$db": DB}), "blocked", "ferretdb"),
    "findandmodify-alias-update": Case(lambda: msg({"findandmodify": "c", "query": {},
                                                    "update": {"$set": {"x": 0}}, "$db": DB}),
                                       "blocked", "ferretdb"),
    # Command names are case-sensitive on the server: these are no commands
    # at all there, so they are forwarded and refused by the server itself.
    **{f"case-{name}": Case(lambda name=name: msg({name: "c", "deletes": [{"q": {}, "limit": 0}],
                                                  "$db": DB}), "backend-refuses", "ferretdb")
       for name in ("Delete", "DELETE", "dElEtE")},
    "case-DROP": Case(lambda: msg({"DROP": "c", "$db": DB}), "backend-refuses", "ferretdb"),
    "deleteIndexes-alias": Case(lambda: msg({"deleteIndexes": "c", "index": "*", "$db": DB}),
                                "blocked", "ferretdb"),
    "dropIndexes-star": Case(lambda: msg({"dropIndexes": "c", "index": "*", "$db": DB}),
                             "blocked", "ferretdb"),
    "drop": Case(lambda: msg({"drop": "c", "$db": DB}), "blocked", "ferretdb"),
    "dropDatabase": Case(lambda: msg({"dropDatabase": 1, "$db": DB}), "blocked", "ferretdb"),
    "renameCollection-dropTarget-same-db": Case(
        lambda: msg({"renameCollection": f"{DB}.other", "to": f"{DB}.c", "dropTarget": True,
                     "$db": "admin"}), "blocked", "ferretdb"),
    # Limit variants: only a numeric 1 limits a delete to one document;
    # anything else the server reads as 0 (many), so the budget must count
    # the whole match (5 documents, more than the budget of 2).
    **{f"delete-limit-{name}": Case(
        lambda limit=limit: msg(delete_filtered({"a": {"$gte": 0}}, db=LIM, limit=limit)),
        "blocked", "ferretdb", BUDGET)
       for name, limit in [("zero", 0), ("false", False), ("null", None), ("string-1", "1"),
                           ("double-0.5", 0.5), ("int64-zero", Int64(0)), ("two", 2)]},
    # Duplicate keys: whichever copy the server reads, the proxy must not
    # judge a harmless one.
    "duplicate-deletes-array": Case(
        lambda: wire.op_msg(raw_doc(("delete", "c"), ("deletes", [{"q": {"_id": -1}, "limit": 1}]),
                                    ("deletes", [{"q": {}, "limit": 0}]), ("$db", DB))),
        "closed", "ferretdb"),
    "duplicate-db-field": Case(
        lambda: wire.op_msg(raw_doc(("delete", "c"), ("deletes", [{"q": {}, "limit": 0}]),
                                    ("$db", OTHER), ("$db", DB))), "closed", "ferretdb"),
    "duplicate-command-name": Case(
        lambda: wire.op_msg(raw_doc(("delete", "harmless"), ("delete", "c"),
                                    ("deletes", [{"q": {}, "limit": 0}]), ("$db", DB))),
        "closed", "ferretdb"),
    # FerretDB reads the last copy of a duplicated field: a statement whose
    # first `q` is selective and whose second is {} deletes everything there.
    "duplicate-q-in-sequence-statement": Case(
        lambda: wire.op_msg_from_sections(
            wire.kind0({"delete": "c", "$db": TAUT})
            + wire.kind1("deletes", [raw_doc(("q", {"_id": -1}), ("q", {}), ("limit", 0))])),
        "closed", "ferretdb", UNFILTERED),
    "duplicate-limit-in-inline-statement": Case(
        lambda: wire.op_msg(raw_doc(("delete", "c"), ("deletes", [RawBSONDocument(raw_doc(
                                        ("q", {"a": {"$gte": 0}}), ("limit", 1), ("limit", 0)))]),
                                    ("$db", LIM))),
        "closed", "ferretdb", BUDGET),
    # A checksum that lies: the frame is refused before anything is judged.
    "checksum-wrong": Case(lambda: msg(delete_all(), checksum=0x12345678), "closed", "ferretdb"),
    "checksum-right": Case(lambda: msg(delete_all(), checksum=True), "blocked", "ferretdb"),
    "exhaust-allowed-flag": Case(lambda: msg(delete_all(), flags=wire.EXHAUST_ALLOWED),
                                 "blocked", "ferretdb"),
    # w:0: fire and forget; the refusal is silent but nothing is forwarded.
    "delete-w0-more-to-come": Case(lambda: msg(delete_all(writeConcern={"w": 0}),
                                               flags=wire.MORE_TO_COME), "dropped", "ferretdb"),
    "delete-w0-sequence-more-to-come": Case(
        lambda: msg({"delete": "c", "writeConcern": {"w": 0}, "$db": DB},
                    sequences={"deletes": [{"q": {}, "limit": 0}]}, flags=wire.MORE_TO_COME),
        "dropped", "ferretdb"),
    **{f"tautology-{name}": Case(lambda q=q: msg(delete_filtered(q)), "blocked", "ferretdb", UNFILTERED)
       for name, q in TAUTOLOGIES.items()},
    "tautology-update-expr-true": Case(
        lambda: msg({"update": "c", "updates": [{"q": {"$expr": True}, "u": {"$set": {"x": 0}},
                                                 "multi": True}], "$db": TAUT}),
        "blocked", "ferretdb", UNFILTERED),
    "tautology-findAndModify-missing-query": Case(
        lambda: msg({"findAndModify": "c", "remove": True, "$db": TAUT}), "blocked", "ferretdb",
        UNFILTERED),

    # --- against the fake upstream: FerretDB cannot run these ---
    **{f"compressed-{c}-{name}": Case(lambda c=c, f=f: wire.compress(f(), c), expect, "fake")
       for c in ("snappy", "zlib", "zstd")
       for name, f, expect in [
           ("delete-inline", lambda: msg(delete_all()), "blocked"),
           ("delete-sequence", lambda: msg({"delete": "c", "$db": DB},
                                           sequences={"deletes": [{"q": {}, "limit": 0}]}), "blocked"),
           ("op-query-wrapped-delete", lambda: op_query_cmd(delete_all(), "$query"), "blocked"),
           ("w0-delete", lambda: msg(delete_all(writeConcern={"w": 0}), flags=wire.MORE_TO_COME),
            "dropped"),
           ("op-delete", lambda: legacy_wire.op_delete(f"{DB}.c", {}), "dropped"),
           ("checksum-wrong", lambda: msg(delete_all(), checksum=0x1), "closed")]},
    "compressed-noop-delete": Case(lambda: wire.compress(msg(delete_all()), "noop"), "blocked", "fake"),
    "op-query-cmd-delete": Case(lambda: op_query_cmd(delete_all(), None), "blocked", "fake"),
    "op-query-cmd-$query-delete": Case(lambda: op_query_cmd(delete_all(), "$query"), "blocked", "fake"),
    "op-query-cmd-query-delete": Case(lambda: op_query_cmd(delete_all(), "query"), "blocked", "fake"),
    "op-query-cmd-drop": Case(lambda: op_query_cmd({"drop": "c", "$db": DB}, "$query"), "blocked", "fake"),
    "op-delete": Case(lambda: legacy_wire.op_delete(f"{DB}.c", {}), "dropped", "fake"),
    "op-delete-single-remove": Case(lambda: legacy_wire.op_delete(f"{DB}.c", {"_id": 1}, single=True),
                                    "dropped", "fake"),
    "op-update-multi": Case(lambda: legacy_wire.op_update(f"{DB}.c", {}, {"$set": {"x": 0}}, multi=True),
                            "dropped", "fake"),
    "bulkWrite-across-namespaces-inline": Case(
        lambda: msg({"bulkWrite": 1, "ops": [{"insert": 0, "document": {"x": 1}},
                                             {"delete": 1, "filter": {}, "multi": True}],
                     "nsInfo": [{"ns": f"{OTHER}.c"}, {"ns": f"{DB}.c"}], "$db": "admin"}),
        "blocked", "fake"),
    "bulkWrite-across-namespaces-sequences": Case(
        lambda: msg({"bulkWrite": 1, "$db": "admin"},
                    sequences={"ops": [{"update": 1, "filter": {}, "updateMods": {"$set": {"x": 0}},
                                        "multi": True}],
                               "nsInfo": [{"ns": f"{OTHER}.c"}, {"ns": f"{DB}.c"}]}),
        "blocked", "fake"),
    "aggregate-out-other-db": Case(
        lambda: msg({"aggregate": "src", "pipeline": [{"$out": {"db": DB, "coll": "c"}}], "cursor": {},
                     "$db": OTHER}), "blocked", "fake"),
    "aggregate-out-same-db": Case(
        lambda: msg({"aggregate": "src", "pipeline": [{"$match": {}}, {"$out": "c"}], "cursor": {},
                     "$db": DB}), "blocked", "fake"),
    "aggregate-merge-other-db": Case(
        lambda: msg({"aggregate": "src", "pipeline": [{"$merge": {"into": {"db": DB, "coll": "c"},
                                                                  "whenMatched": "replace"}}],
                     "cursor": {}, "$db": OTHER}), "blocked", "fake"),
    "aggregate-merge-string-into": Case(
        lambda: msg({"aggregate": "src", "pipeline": [{"$merge": "c"}], "cursor": {}, "$db": DB}),
        "blocked", "fake"),
    "mapReduce-out-other-db": Case(
        lambda: msg({"mapReduce": "src", "map": "function(){}", "reduce": "function(){}",
                     "out": {"replace": "c", "db": DB}, "$db": OTHER}), "blocked", "fake"),
    "renameCollection-dropTarget-cross-db": Case(
        lambda: msg({"renameCollection": f"{OTHER}.x", "to": f"{DB}.c", "dropTarget": True,
                     "$db": "admin"}), "blocked", "fake"),
    "applyOps-delete": Case(
        lambda: msg({"applyOps": [{"op": "d", "ns": f"{DB}.c", "o": {"_id": 1}}], "$db": "admin"}),
        "blocked", "fake"),
    "applyOps-nested-drop": Case(
        lambda: msg({"applyOps": [{"op": "c", "ns": "admin.$cmd", "o": {"applyOps": [
            {"op": "c", "ns": f"{DB}.$cmd", "o": {"drop": "c"}}]}}], "$db": "admin"}),
        "blocked", "fake"),
    "convertToCapped": Case(lambda: msg({"convertToCapped": "c", "size": 4096, "$db": DB}),
                            "blocked", "fake"),
    "emptycapped": Case(lambda: msg({"emptycapped": "c", "$db": DB}), "blocked", "fake"),
    "collMod-ttl": Case(lambda: msg({"collMod": "c", "index": {"keyPattern": {"t": 1},
                                                                "expireAfterSeconds": 0}, "$db": DB}),
                        "blocked", "fake"),
    "createIndexes-ttl": Case(lambda: msg({"createIndexes": "c", "indexes": [
        {"key": {"t": 1}, "name": "t_1", "expireAfterSeconds": 0}], "$db": DB}), "blocked", "fake"),
    "dropSearchIndex": Case(lambda: msg({"dropSearchIndex": "c", "name": "default", "$db": DB}),
                            "blocked", "fake"),
    "transaction-start-delete": Case(lambda: msg(delete_all(**txn(startTransaction=True))),
                                     "blocked", "fake"),
    "transaction-second-statement-update": Case(lambda: msg({**update_all(), **txn()}), "blocked", "fake"),
    "transaction-findAndModify": Case(
        lambda: msg({"findAndModify": "c", "query": {}, "remove": True, **txn(startTransaction=True),
                     "$db": DB}), "blocked", "fake"),
}


# --- the two upstreams --------------------------------------------------------

@pytest.fixture(scope="module")
def ferret_proxy(backend):
    with PolicyProxy(backend.upstream, POLICY) as p:
        yield p


@pytest.fixture(scope="module")
def fake_proxy():
    with FakeUpstream() as fake:
        with PolicyProxy(f"mongodb://{fake.address}", POLICY) as p:
            yield p, fake


@pytest.fixture(scope="module")
def direct_client(backend):
    client = pymongo.MongoClient(backend.uri, serverSelectionTimeoutMS=10_000)
    yield client
    for db in (DB, TAUT, LIM, OTHER):
        client.drop_database(db)
    client.close()


def state(direct: pymongo.MongoClient) -> dict:
    """Everything a bypass could change: documents, collections, indexes."""
    out = {}
    for db in (DB, TAUT, LIM):
        for name in sorted(direct[db].list_collection_names()):
            coll = direct[db][name]
            out[f"{db}.{name}"] = (sorted(coll.find(), key=lambda d: str(d["_id"])),
                                   sorted(ix["name"] for ix in coll.list_indexes()))
    return out


def seed_all(direct: pymongo.MongoClient) -> None:
    for db in (DB, TAUT, LIM):
        for name in ("c", "other"):
            coll = direct[db][name]
            if coll.count_documents({}) != 5:
                coll.delete_many({})
                coll.insert_many([{"_id": i, "a": i, "t": i} for i in range(5)])
        direct[db].c.create_index("a")


def hello(port: int):
    sock = wire.connect(port)
    reply = wire.roundtrip(sock, wire.op_msg({"hello": 1, "$db": "admin"}), timeout=10)
    assert reply.body.get("ok") == 1, reply.body
    return sock


def ping(sock) -> bytes:
    frame = wire.op_msg({"ping": 1, "$db": "admin"})
    reply = wire.roundtrip(sock, frame, timeout=10)
    assert reply.body.get("ok") == 1, reply.body
    return frame


def check_outcome(case: Case, sock, frame: bytes, log_text: Callable[[], str]) -> None:
    request_id = wire.parse_header(frame).request_id
    sock.sendall(frame)
    if case.expect == "blocked":
        reply = wire.parse_message(wire.read_message(sock, timeout=10))
        assert reply.response_to == request_id
        doc = reply.body or {}
        assert doc.get("ok") == 0 and doc.get("code") == 13, doc
        assert f"blocked by rule '{case.rule}'" in doc.get("errmsg", ""), doc
        assert not doc.get("errorLabels"), doc
        if wire.parse_header(frame).op_code == wire.OP_QUERY:
            assert reply.op_code == wire.OP_REPLY, reply
    elif case.expect == "backend-refuses":
        reply = wire.parse_message(wire.read_message(sock, timeout=10))
        assert reply.response_to == request_id
        doc = reply.body or {}
        assert doc.get("ok") == 0, doc
        assert not doc.get("errmsg", "").startswith("mongoguard"), doc
    elif case.expect == "closed":
        how, data = wire.wait_closed(sock, timeout=10)
        assert how in ("eof", "reset"), f"connection not closed ({how}), got {data!r}"
        assert data == b"", f"a refused frame got an answer: {data!r}"
        assert "rejected frame" in log_text()
    else:  # dropped: no reply, and the connection goes on
        assert wire.expect_silence(sock, 0.5) == b""


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c.where == "ferretdb"])
def test_bypass_refused_and_data_intact(name, ferret_proxy, direct_client):
    case = CASES[name]
    seed_all(direct_client)
    before = state(direct_client)
    sock = hello(ferret_proxy.proxy.port)
    try:
        check_outcome(case, sock, case.frame(), ferret_proxy.log_text)
        if case.expect != "closed":
            ping(sock)  # the connection still works, and the case is behind us
    finally:
        sock.close()
    assert ferret_proxy.proxy.proc.poll() is None, "the proxy died"
    assert state(direct_client) == before, f"{name} changed the protected data"


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c.where == "fake"])
def test_bypass_refused_and_nothing_forwarded(name, fake_proxy):
    proxy, fake = fake_proxy
    case = CASES[name]
    sock = hello(proxy.proxy.port)
    try:
        # The handshake has reached the upstream; from here on count bytes.
        fake.wait_for(lambda: fake.messages_for("hello"), what="the hello")
        before = fake.total_bytes_received()
        check_outcome(case, sock, case.frame(), proxy.log_text)
        if case.expect == "closed":
            time.sleep(0.3)
            assert fake.total_bytes_received() == before
        else:
            frame = ping(sock)
            assert fake.total_bytes_received() - before == len(frame), \
                "bytes other than the ping's reached the upstream"
    finally:
        sock.close()
    assert proxy.proxy.proc.poll() is None, "the proxy died"


def test_selective_writes_still_pass(ferret_proxy, direct_client):
    """The corpus is not passing by refusing everything: a selective delete
    under the unfiltered rule, and one within the budget, do run."""
    seed_all(direct_client)
    sock = hello(ferret_proxy.proxy.port)
    try:
        for body in (delete_filtered({"_id": 1}, db=TAUT, limit=1),
                     delete_filtered({"_id": 1}, db=LIM, limit=1)):
            reply = wire.roundtrip(sock, msg(body), timeout=10)
            assert reply.body.get("ok") == 1 and reply.body.get("n") == 1, reply.body
    finally:
        sock.close()
    assert direct_client[TAUT].c.count_documents({}) == 4
    assert direct_client[LIM].c.count_documents({}) == 4
