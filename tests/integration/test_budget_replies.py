"""How a reply settles a budget reservation, against a scripted upstream that
answers as mongod 8.0 does.

A budget rule (`limit: {documents: 50, per: 1m}`, pre-flight on) makes the
proxy reserve an upper bound for each destructive command before forwarding
it: 1 per single statement, and for each multi statement the `n` of its own
`count` ({count, query, limit: left + 1, collation?, hint?, $db}) sent on the
client's upstream connection. The reply then settles the reservation at what
it reports: `n`, `lastErrorObject.n`, or a bulkWrite's nDeleted + nMatched +
nUpserted; a reply without a readable count leaves the reservation standing.

The fake upstream here answers every count and every write from a script, so
each test knows exactly what the breaker's `used` must be; it also records
what each upstream connection received, in order, so "the count came first"
and "the refused write never arrived" are checked, not assumed.
"""

from __future__ import annotations

import pymongo
import pytest
from pymongo import DeleteMany, DeleteOne
from pymongo.errors import ClientBulkWriteException

import wire
from budget_helpers import Delayed, RawClient, ScriptedUpstream, budget_policy
from fake_upstream import Delay
from hold_helpers import UNAUTHORIZED, GuardedProxy
from legacy_wire import op_delete, op_update

DB = "replies"
NS = f"{DB}.c"
BUDGET = 50


def breaker(gp: GuardedProxy, rule: str = "cap") -> dict:
    b = gp.admin.breaker(f"{rule}:{NS}")
    assert b is not None, gp.admin.breakers()
    assert b["limit"] == BUDGET, b
    return b


def used(gp: GuardedProxy, rule: str = "cap") -> int:
    return breaker(gp, rule)["used"]


def bulk_write_reply(*, deleted: int | None = 0, matched: int | None = 0,
                     upserted: int | None = 0, modified: int = 0, batch: list | None = None) -> dict:
    """A mongod 8.0 bulkWrite reply; a count given as None is left out."""
    doc: dict = {"ok": 1.0, "nErrors": 0, "nInserted": 0}
    for key, value in (("nMatched", matched), ("nModified", modified),
                       ("nUpserted", upserted), ("nDeleted", deleted)):
        if value is not None:
            doc[key] = value
    doc["cursor"] = {"id": 0, "firstBatch": batch if batch is not None else [],
                     "ns": "admin.$cmd.bulkWrite"}
    return doc


def count_body(query: dict, limit: int, **options) -> dict:
    """The count the proxy must send for a multi statement on NS."""
    return {"count": "c", "query": query, "limit": limit, **options, "$db": DB}


def check_refusal(reply: dict, rule: str = "cap", contains: str | None = None) -> str:
    assert reply.get("ok") == 0, reply
    assert reply.get("code") == UNAUTHORIZED, reply
    errmsg = reply.get("errmsg", "")
    assert errmsg.startswith("mongoguard: "), errmsg
    assert f"blocked by rule '{rule}'" in errmsg, errmsg
    if contains is not None:
        assert contains in errmsg, errmsg
    assert not reply.get("errorLabels"), reply
    return errmsg


# --- (a) bulkWrite --------------------------------------------------------------------------------

def test_bulk_write_settles_at_n_deleted_and_a_countless_reply_leaves_the_reservation():
    multi = {"x": {"$gte": 10}}
    with ScriptedUpstream(counts=[20, 12, 5],
                          answers={"bulkWrite": [
                              bulk_write_reply(deleted=7, batch=[{"ok": 1.0, "idx": 0, "n": 7}]),
                              {"ok": 1.0, "nErrors": 0,
                               "cursor": {"id": 0, "firstBatch": [], "ns": "admin.$cmd.bulkWrite"}},
                              bulk_write_reply(deleted=3),
                          ]}) as fake, \
            GuardedProxy(f"mongodb://{fake.address}", budget_policy(DB, BUDGET)) as gp, \
            RawClient(gp.port) as client:
        # 1. ops and nsInfo in the body. Reserved: the count's 20; settled: nDeleted 7.
        reply = client.command({"bulkWrite": 1, "ops": [{"delete": 0, "filter": multi, "multi": True}],
                                "nsInfo": [{"ns": NS}], "$db": "admin"})
        assert reply.get("ok") == 1 and reply.get("nDeleted") == 7, reply
        assert used(gp) == 7

        # 2. ops and nsInfo as document sequences; the reply has no count at
        # all: the 12 reserved stand.
        reply = client.command({"bulkWrite": 1, "$db": "admin"},
                               sequences={"ops": [{"delete": 0, "filter": {"y": 1}, "multi": True}],
                                          "nsInfo": [{"ns": NS}]})
        assert reply.get("ok") == 1 and "nDeleted" not in reply, reply
        assert used(gp) == 7 + 12

        # 3. A single delete op (1) beside a multi one (counted 5): 6 reserved,
        # nDeleted 3 settles it at 3.
        reply = client.command({"bulkWrite": 1, "ops": [
            {"delete": 0, "filter": {"_id": 1}, "multi": False},
            {"delete": 0.0, "filter": {"z": {"$lt": 4}}, "multi": True}],  # nsInfo index as a double
            "nsInfo": [{"ns": NS}], "$db": "admin"})
        assert reply.get("nDeleted") == 3, reply
        b = breaker(gp)
        assert b["used"] == 7 + 12 + 3 and not b["tripped"], b

        # Each count: the statement's filter, capped at what was left plus one,
        # on the client's own upstream connection, before the bulkWrite.
        assert fake.counts_received() == [
            count_body(multi, 51),
            count_body({"y": 1}, 50 - 7 + 1),
            count_body({"z": {"$lt": 4}}, 50 - 19 + 1),
        ]
        conn = fake.connection_with(lambda m: m.command == "bulkWrite")
        assert fake.order(conn) == ["count", "bulkWrite"] * 3


def test_bulk_write_update_settles_at_matched_plus_upserted_plus_deleted():
    with ScriptedUpstream(counts=[9, 6],
                          answers={"bulkWrite": [bulk_write_reply(deleted=2, matched=4,
                                                                  modified=4, upserted=1)]}) as fake, \
            GuardedProxy(f"mongodb://{fake.address}",
                         budget_policy(DB, BUDGET, operations="[delete, update]")) as gp, \
            RawClient(gp.port) as client:
        reply = client.command({"bulkWrite": 1, "ops": [
            {"update": 0, "filter": {"v": 0}, "updateMods": {"$set": {"v": 1}}, "multi": True,
             "upsert": True},
            {"delete": 0, "filter": {"v": 2}, "multi": True}],
            "nsInfo": [{"ns": NS}], "$db": "admin"})
        assert reply.get("ok") == 1, reply
        # Reserved 9 + 6 = 15; settled at 4 matched + 1 upserted + 2 deleted.
        assert used(gp) == 7
        counts = fake.counts_received()
        assert [c["query"] for c in counts] == [{"v": 0}, {"v": 2}], counts
        assert all(c["limit"] == 51 for c in counts), counts


def test_reply_reporting_more_than_the_count_is_charged_in_full():
    """Documents that appeared between the count and the write: the reply's
    larger number is charged, never the smaller bound."""
    with ScriptedUpstream(counts=[2], answers={"bulkWrite": [bulk_write_reply(deleted=5)]}) as fake, \
            GuardedProxy(f"mongodb://{fake.address}", budget_policy(DB, BUDGET)) as gp, \
            RawClient(gp.port) as client:
        reply = client.command({"bulkWrite": 1, "ops": [{"delete": 0, "filter": {"a": 1}, "multi": True}],
                                "nsInfo": [{"ns": NS}], "$db": "admin"})
        assert reply.get("nDeleted") == 5, reply
        assert used(gp) == 5


class Mongod80(ScriptedUpstream):
    """Says maxWireVersion 25 (8.0), so that pymongo's MongoClient.bulk_write
    sends a real bulkWrite command."""

    def hello_document(self, msg, conn):
        doc = super().hello_document(msg, conn)
        doc["maxWireVersion"] = 25
        return doc


def test_pymongo_client_bulk_write_is_measured_and_settled():
    assert tuple(int(p) for p in pymongo.version.split(".")[:2]) >= (4, 9), pymongo.version
    with Mongod80(counts=[20, 43], answers={"bulkWrite": [bulk_write_reply(deleted=8)]}) as fake, \
            GuardedProxy(f"mongodb://{fake.address}", budget_policy(DB, BUDGET)) as gp:
        client = gp.client(serverSelectionTimeoutMS=5000)
        result = client.bulk_write([DeleteOne({"_id": 1}, namespace=NS),
                                    DeleteMany({"x": {"$gte": 1}}, namespace=NS)])
        assert result.deleted_count == 8
        assert used(gp) == 8  # reserved 1 + 20, settled at nDeleted
        sent = fake.messages_for("bulkWrite")
        assert len(sent) == 1 and sent[0].sequences.get("nsInfo") == [{"ns": NS}], sent
        # 42 left: the count (cap 43) reaches its cap; refused, never forwarded.
        with pytest.raises(ClientBulkWriteException) as caught:
            client.bulk_write([DeleteMany({"y": 1}, namespace=NS)])
        top = caught.value.error
        assert getattr(top, "code", None) == UNAUTHORIZED, top
        check_refusal(top.details, contains="would affect at least 43 documents, more than the 42 left")
        assert len(fake.messages_for("bulkWrite")) == 1
        assert fake.counts_received() == [count_body({"x": {"$gte": 1}}, 51),
                                          count_body({"y": 1}, 43)]
        b = breaker(gp)
        assert b["used"] == 8 and not b["tripped"], b


# --- (b) writeConcern w:0 without moreToCome ------------------------------------------------------

def test_w0_write_concern_answered_ok_alone_leaves_the_measured_bound():
    with ScriptedUpstream(counts=[12], answers={"delete": [{"ok": 1.0}]}) as fake, \
            GuardedProxy(f"mongodb://{fake.address}", budget_policy(DB, BUDGET)) as gp, \
            RawClient(gp.port) as client:
        reply = client.command({"delete": "c", "deletes": [{"q": {"x": {"$lt": 30}}, "limit": 0}],
                                "writeConcern": {"w": 0}, "$db": DB})
        assert reply == {"ok": 1.0}, reply
        assert used(gp) == 12
        assert fake.counts_received() == [count_body({"x": {"$lt": 30}}, 51)]
        conn = fake.connection_with(lambda m: m.command == "delete")
        assert fake.order(conn) == ["count", "delete"]
        record = [r for r in gp.audit_records() if r.get("command") == "delete"]
        assert len(record) == 1 and record[0]["outcome"] == "forwarded", record
        assert record[0].get("ok") is True and "n" not in record[0], record


# --- (c) moreToCome -------------------------------------------------------------------------------

def test_more_to_come_delete_is_measured_first_and_its_bound_stands():
    with ScriptedUpstream(counts=[15, 36]) as fake, \
            GuardedProxy(f"mongodb://{fake.address}", budget_policy(DB, BUDGET)) as gp, \
            RawClient(gp.port) as client:
        client.send({"delete": "c", "deletes": [{"q": {"x": {"$gte": 100}}, "limit": 0}],
                     "writeConcern": {"w": 0}, "$db": DB}, flags=wire.MORE_TO_COME)
        delete = fake.wait_for_message(lambda m: m.command == "delete")
        assert delete.more_to_come, "forwarded with its moreToCome flag"
        assert wire.expect_silence(client.sock, 0.3) == b"", "no reply to a moreToCome request"
        assert used(gp) == 15

        # The next one is measured against the 35 left (cap 36) and the count
        # reaches its cap: more than is left, dropped without a reply.
        client.send({"delete": "c", "deletes": [{"q": {"x": {"$lt": 100}}, "limit": 0}],
                     "writeConcern": {"w": 0}, "$db": DB}, flags=wire.MORE_TO_COME)
        assert wire.expect_silence(client.sock, 0.5) == b""
        assert client.ping().get("ok") == 1  # the connection goes on, in order
        gp.wait_for_log("unacknowledged write dropped")
        b = breaker(gp)
        assert b["used"] == 15 and not b["tripped"], b  # one oversized request trips nothing

        assert fake.counts_received() == [count_body({"x": {"$gte": 100}}, 51),
                                          count_body({"x": {"$lt": 100}}, 36)]
        conn = fake.connection_with(lambda m: m.command == "delete")
        assert fake.order(conn) == ["count", "delete", "count", "ping"]
        assert len(fake.messages_for("delete")) == 1
        outcomes = [r["outcome"] for r in gp.audit_records() if r.get("command") == "delete"]
        assert outcomes == ["forwarded", "dropped"], outcomes


# --- (d) replies the proxy cannot read ------------------------------------------------------------

@pytest.mark.parametrize("answer", [
    {"ok": 1.0, "deleted": 3},             # a shape it does not know
    {"ok": 1.0, "n": "3"},                 # n that is not a number
    {"ok": 0.0, "errmsg": "interrupted", "code": 11601, "codeName": "Interrupted"},
], ids=["unknown-shape", "n-as-string", "ok-0"])
def test_unreadable_reply_leaves_the_reservation_standing(answer):
    with ScriptedUpstream(counts=[9], answers={"delete": [answer]}) as fake, \
            GuardedProxy(f"mongodb://{fake.address}", budget_policy(DB, BUDGET)) as gp, \
            RawClient(gp.port) as client:
        reply = client.command({"delete": "c", "deletes": [{"q": {"x": 1}, "limit": 0}], "$db": DB})
        assert reply == answer, "the upstream's reply is relayed as it is"
        assert used(gp) == 9
        assert fake.counts_received() == [count_body({"x": 1}, 51)]


# --- (e) findAndModify ----------------------------------------------------------------------------

def test_find_and_modify_settles_at_last_error_object_n():
    answers = [
        {"lastErrorObject": {"n": 1}, "value": {"_id": 1}, "ok": 1.0},
        {"lastErrorObject": {"n": 0}, "value": None, "ok": 1.0},
        {"value": None, "ok": 1.0},  # no lastErrorObject: the 1 reserved stands
        {"lastErrorObject": {"n": 1}, "value": {"_id": 4}, "ok": 1.0},
    ]
    with ScriptedUpstream(answers={"findAndModify": answers}) as fake, \
            GuardedProxy(f"mongodb://{fake.address}", budget_policy(DB, BUDGET)) as gp, \
            RawClient(gp.port) as client:
        seen = []
        for i in range(4):
            reply = client.command({"findAndModify": "c", "query": {"_id": i + 1}, "remove": True,
                                    "$db": DB})
            assert reply == answers[i], reply
            seen.append(used(gp))
        assert seen == [1, 1, 2, 3]
        # One document at most: never measured.
        assert fake.counts_received() == []
        assert len(fake.messages_for("findAndModify")) == 4


# --- (f) a count that fails -----------------------------------------------------------------------

FAILED_COUNTS = {
    "ok-0": {"ok": 0.0, "errmsg": "count exploded", "code": 2, "codeName": "BadValue"},
    "no-n": {"ok": 1.0},
}


@pytest.mark.parametrize("failure", list(FAILED_COUNTS))
def test_failed_count_holds_by_default(failure):
    policy = budget_policy(DB, BUDGET, hold_timeout="30s")
    with ScriptedUpstream(counts=[FAILED_COUNTS[failure]]) as fake, \
            GuardedProxy(f"mongodb://{fake.address}", policy) as gp, \
            RawClient(gp.port) as client:
        rid = client.send({"delete": "c", "deletes": [{"q": {"x": {"$gt": 1}}, "limit": 0}], "$db": DB})
        hold = gp.admin.wait_for_hold(timeout=10)
        assert hold["rule"] == "cap" and hold["ns"] == NS, hold
        assert "could not be measured" in hold.get("reason", ""), hold
        assert fake.messages_for("delete") == [], "a held delete was forwarded"
        gp.admin.reject(hold["id"], by="carol")
        reply = client.read(rid)
        assert reply.get("code") == UNAUTHORIZED, reply
        assert "held by rule 'cap'" in reply["errmsg"] and "rejected by carol" in reply["errmsg"], reply
        assert client.ping().get("ok") == 1
        assert fake.messages_for("delete") == []
        assert len(fake.counts_received()) == 1
        b = gp.admin.breaker(f"cap:{NS}")
        assert b is None or b["used"] == 0, b
        gp.wait_for_log("pre-flight count for replies.c failed")


@pytest.mark.parametrize("failure", list(FAILED_COUNTS))
def test_failed_count_with_on_preflight_error_block_is_refused_unforwarded(failure):
    policy = budget_policy(DB, BUDGET, extra_limit="on_preflight_error: block")
    with ScriptedUpstream(counts=[FAILED_COUNTS[failure]]) as fake, \
            GuardedProxy(f"mongodb://{fake.address}", policy) as gp, \
            RawClient(gp.port) as client:
        reply = client.command({"delete": "c", "deletes": [{"q": {"x": {"$gt": 1}}, "limit": 0}],
                                "$db": DB})
        errmsg = check_refusal(reply, contains="could not be measured")
        assert errmsg.startswith(f"mongoguard: delete on {NS} blocked by rule 'cap': "), errmsg
        if failure == "ok-0":
            assert "count exploded" in errmsg, errmsg
        assert client.ping().get("ok") == 1
        assert fake.messages_for("delete") == [], "the refused delete reached the upstream"
        assert len(fake.counts_received()) == 1
        b = gp.admin.breaker(f"cap:{NS}")
        assert b is None or b["used"] == 0, b
        assert gp.admin.holds() == []


# --- (g) legacy OP_DELETE / OP_UPDATE -------------------------------------------------------------

def test_legacy_multi_writes_are_measured_charged_and_dropped_over_budget():
    writes = [
        op_delete(NS, {"x": {"$gte": 5}}),                                  # counted 20: passes
        op_update(NS, {"x": {"$lt": 5}}, {"$set": {"y": 1}}, multi=True),  # counted 25: passes
        op_delete(NS, {"x": {"$gte": 100}}),                                # reaches cap 6: dropped
        op_update(NS, {"y": 2}, {"$set": {"y": 3}}, multi=True),            # reaches cap 6: dropped
        op_delete(NS, {"_id": 1}, single=True),                             # single: 1, no count
    ]
    with ScriptedUpstream(counts=[20, 25, 6, 6]) as fake, \
            GuardedProxy(f"mongodb://{fake.address}",
                         budget_policy(DB, BUDGET, operations="[delete, update]")) as gp, \
            RawClient(gp.port) as client:
        steps = []
        for frame in writes:
            client.send_raw(frame)
            assert wire.expect_silence(client.sock, 0.2) == b"", "legacy writes have no reply"
            assert client.ping().get("ok") == 1  # everything before it was judged
            steps.append(used(gp))
        assert steps == [20, 45, 45, 45, 46], steps
        assert not breaker(gp)["tripped"]

        assert fake.counts_received() == [
            count_body({"x": {"$gte": 5}}, 51),
            count_body({"x": {"$lt": 5}}, 31),
            count_body({"x": {"$gte": 100}}, 6),
            count_body({"y": 2}, 6),
        ]
        conn = fake.connection_with(lambda m: m.op_code == wire.OP_DELETE)
        assert fake.order(conn) == ["count", "OP_DELETE", "ping", "count", "OP_UPDATE", "ping",
                                    "count", "ping", "count", "ping", "OP_DELETE", "ping"]
        forwarded = [m.raw for m in conn.messages if m.op_code in (wire.OP_DELETE, wire.OP_UPDATE)]
        assert forwarded == [writes[0], writes[1], writes[4]], "forwarded byte for byte"
        gp.wait_for_log("unacknowledged write dropped")
        outcomes = [(r["command"], r["outcome"]) for r in gp.audit_records()
                    if r.get("command") in ("OP_DELETE", "OP_UPDATE")]
        assert outcomes == [("OP_DELETE", "forwarded"), ("OP_UPDATE", "forwarded"),
                            ("OP_DELETE", "dropped"), ("OP_UPDATE", "dropped"),
                            ("OP_DELETE", "forwarded")], outcomes


# --- replies matched in order ---------------------------------------------------------------------

def test_pipelined_replies_settle_their_own_requests():
    """Two pipelined deletes of single statements (3 and 2 reserved): the
    first answer has no count (its 3 stand), the second says n: 0 (its 2 go
    back). Matched in order: 3. Swapped, it would be 0 + 2."""
    with ScriptedUpstream(answers={"delete": [{"ok": 1.0}, {"ok": 1.0, "n": 0}]}) as fake, \
            GuardedProxy(f"mongodb://{fake.address}", budget_policy(DB, BUDGET)) as gp, \
            RawClient(gp.port) as client:
        a = wire.next_request_id()
        b = wire.next_request_id()
        client.send_raw(
            wire.op_msg({"delete": "c", "deletes": [{"q": {"_id": i}, "limit": 1} for i in range(3)],
                         "$db": DB}, request_id=a)
            + wire.op_msg({"delete": "c", "deletes": [{"q": {"_id": i}, "limit": 1} for i in (7, 8)],
                           "$db": DB}, request_id=b))
        assert client.read(a) == {"ok": 1.0}
        assert client.read(b) == {"ok": 1.0, "n": 0}
        assert used(gp) == 3
        assert fake.counts_received() == []


# --- reservations are visible before the reply; sums; other reply paths ---------------------------

def test_a_reservation_in_flight_shrinks_the_next_commands_cap():
    """A's 30 are reserved before A is forwarded: while A's reply is delayed,
    B (another connection) is measured against the 20 left (cap 21). A then
    settles at its n."""
    with ScriptedUpstream(counts=[30, 15],
                          answers={"delete": [Delayed(1.5, {"ok": 1.0, "n": 30}),
                                              {"ok": 1.0, "n": 15}]}) as fake, \
            GuardedProxy(f"mongodb://{fake.address}", budget_policy(DB, BUDGET)) as gp, \
            RawClient(gp.port, app="a") as a, RawClient(gp.port, app="b") as b:
        rid_a = a.send({"delete": "c", "deletes": [{"q": {"k": "a"}, "limit": 0}], "$db": DB})
        fake.wait_for_message(lambda m: m.command == "delete")
        assert used(gp) == 30, "the reservation counts before any reply"
        reply_b = b.command({"delete": "c", "deletes": [{"q": {"k": "b"}, "limit": 0}], "$db": DB})
        assert reply_b == {"ok": 1.0, "n": 15}, reply_b
        assert a.read(rid_a) == {"ok": 1.0, "n": 30}
        assert fake.counts_received() == [count_body({"k": "a"}, 51), count_body({"k": "b"}, 21)]
        b_state = breaker(gp)
        assert b_state["used"] == 45 and not b_state["tripped"], b_state


def test_several_multi_statements_are_summed_against_what_is_left():
    """Each multi statement's count is capped at what is left plus one, and
    the bounds add up: 30 + 25 + 1 single > 50, refused though each count
    alone fits."""
    with ScriptedUpstream(counts=[30, 25, 30, 19]) as fake, \
            GuardedProxy(f"mongodb://{fake.address}", budget_policy(DB, BUDGET)) as gp, \
            RawClient(gp.port) as client:
        deletes = [{"q": {"a": 1}, "limit": 0}, {"q": {"b": 1}, "limit": 0},
                   {"q": {"_id": 3}, "limit": 1}]
        reply = client.command({"delete": "c", "deletes": deletes, "$db": DB})
        check_refusal(reply, contains="would affect 56 documents, more than the 50 left")
        assert fake.messages_for("delete") == []
        b = gp.admin.breaker(f"cap:{NS}")
        assert b["used"] == 0 and not b["tripped"], b
        # 30 + 19 + 1 = 50 fits exactly, and the reply's n settles it.
        reply = client.command({"delete": "c", "deletes": deletes, "$db": DB})
        assert reply == {"ok": 1.0}, reply  # the fake's default answer: no n, all 50 stand
        b = breaker(gp)
        assert b["used"] == 50 and b["tripped"], b
        assert [(c["query"], c["limit"]) for c in fake.counts_received()] == [
            ({"a": 1}, 51), ({"b": 1}, 51), ({"a": 1}, 51), ({"b": 1}, 51)]
        # Spent: the next single delete is refused without a count.
        reply = client.command({"delete": "c", "deletes": [{"q": {"_id": 9}, "limit": 1}], "$db": DB})
        check_refusal(reply, contains="budget of 50 documents per 1m spent")
        assert len(fake.counts_received()) == 4


def test_compressed_reply_is_inflated_and_settles():
    with ScriptedUpstream(counts=[10], answers={"delete": [{"ok": 1.0, "n": 4}]}) as fake, \
            GuardedProxy(f"mongodb://{fake.address}", budget_policy(DB, BUDGET)) as gp:
        sock = wire.connect(gp.port)
        try:
            hello = wire.roundtrip(sock, wire.op_msg({"hello": 1, "$db": "admin",
                                                      "compression": ["zlib"]}))
            assert hello.body.get("compression") == ["zlib"], hello.body
            rid = wire.next_request_id()
            sock.sendall(wire.compress(wire.op_msg(
                {"delete": "c", "deletes": [{"q": {"x": {"$gt": 0}}, "limit": 0}], "$db": DB},
                request_id=rid), "zlib"))
            reply = wire.parse_message(wire.read_message(sock, timeout=10))
            assert reply.compressor == "zlib" and reply.response_to == rid, reply
            assert reply.body == {"ok": 1.0, "n": 4}, reply.body
        finally:
            sock.close()
        assert used(gp) == 4
        assert fake.counts_received() == [count_body({"x": {"$gt": 0}}, 51)]


def test_op_query_delete_is_measured_and_settled_from_its_op_reply():
    with ScriptedUpstream(counts=[10], answers={"delete": [{"ok": 1.0, "n": 3}]}) as fake, \
            GuardedProxy(f"mongodb://{fake.address}", budget_policy(DB, BUDGET)) as gp, \
            RawClient(gp.port) as client:
        from legacy_wire import op_query_command
        rid = wire.next_request_id()
        client.send_raw(op_query_command(DB, {"delete": "c", "deletes": [{"q": {"x": 5}, "limit": 0}]},
                                         request_id=rid))
        raw = wire.read_message(client.sock, timeout=10)
        assert wire.parse_header(raw).op_code == wire.OP_REPLY
        assert wire.parse_header(raw).response_to == rid
        assert wire.parse_op_reply(raw).docs == [{"ok": 1.0, "n": 3}]
        assert used(gp) == 3
        assert fake.counts_received() == [count_body({"x": 5}, 51)]


def test_partial_failure_settles_at_the_n_it_reports():
    answer = {"ok": 1.0, "n": 2, "writeErrors": [{"index": 2, "code": 11000, "errmsg": "dup"}]}
    with ScriptedUpstream(answers={"delete": [answer]}) as fake, \
            GuardedProxy(f"mongodb://{fake.address}", budget_policy(DB, BUDGET)) as gp, \
            RawClient(gp.port) as client:
        reply = client.command({"delete": "c", "deletes": [{"q": {"_id": i}, "limit": 1}
                                                          for i in range(4)], "$db": DB})
        assert reply == answer
        assert used(gp) == 2  # 4 reserved, 2 reported
        assert fake.counts_received() == []


def test_bulk_write_over_two_namespaces_settles_each_at_no_more_than_its_bound():
    """One nDeleted for the whole command cannot be split between budgets:
    each reservation becomes min(its bound, the total), so neither budget is
    ever charged less than it could have lost (10 and 5 reserved, 6 deleted
    in all: 6 and 5)."""
    with ScriptedUpstream(counts=[10, 5], answers={"bulkWrite": [bulk_write_reply(deleted=6)]}) as fake, \
            GuardedProxy(f"mongodb://{fake.address}", budget_policy(DB, BUDGET)) as gp, \
            RawClient(gp.port) as client:
        reply = client.command({"bulkWrite": 1, "ops": [
            {"delete": 0, "filter": {"v": 2}, "multi": True},
            {"delete": 1, "filter": {"v": 3}, "multi": True}],
            "nsInfo": [{"ns": NS}, {"ns": f"{DB}.d"}], "$db": "admin"})
        assert reply.get("nDeleted") == 6, reply
        states = {b["name"]: b["used"] for b in gp.admin.breakers()}
        assert states == {f"cap:{NS}": 6, f"cap:{DB}.d": 5}, states
        assert [(c["count"], c["query"], c["limit"]) for c in fake.counts_received()] == [
            ("c", {"v": 2}, 51), ("d", {"v": 3}, 51)]


def test_count_that_does_not_answer_in_time_cannot_be_taken_for_a_later_reply():
    """The count is answered after the proxy's 10 s pre-flight timeout: the
    delete is refused (on_preflight_error: block) and never forwarded, and
    the late count reply is consumed by the proxy, not relayed as the answer
    to the client's next command."""
    policy = budget_policy(DB, BUDGET, extra_limit="on_preflight_error: block")
    with ScriptedUpstream(counts=[]) as fake, \
            GuardedProxy(f"mongodb://{fake.address}", policy) as gp, \
            RawClient(gp.port) as client:
        late = {"ok": 1.0, "n": 0}
        fake.handlers["count"] = lambda msg, conn: [Delay(11.0), fake.reply(msg, late)]
        rid = client.send({"delete": "c", "deletes": [{"q": {"x": 1}, "limit": 0}], "$db": DB})
        reply = client.read(rid, timeout=20)
        check_refusal(reply, contains="could not be measured (the count did not answer in time)")
        pong = client.read(client.send({"ping": 1, "$db": "admin"}), timeout=20)
        assert pong == {"ok": 1.0}, pong
        assert wire.expect_silence(client.sock, 0.3) == b""
        assert fake.messages_for("delete") == []
        conn = fake.connection_with(lambda m: m.command == "count")
        assert fake.order(conn) == ["count", "ping"]


def test_count_carries_the_statements_collation_and_hint():
    statement = {"q": {"name": "ann"}, "limit": 0, "collation": {"locale": "en", "strength": 2},
                 "hint": {"name": 1}}
    with ScriptedUpstream(counts=[3], answers={"delete": [{"ok": 1.0, "n": 3}]}) as fake, \
            GuardedProxy(f"mongodb://{fake.address}", budget_policy(DB, BUDGET)) as gp, \
            RawClient(gp.port) as client:
        assert client.command({"delete": "c", "deletes": [statement], "$db": DB}) == {"ok": 1.0, "n": 3}
        [count] = fake.counts_received()
        assert list(count) == ["count", "query", "limit", "collation", "hint", "$db"], count
        assert count == count_body({"name": "ann"}, 51, collation=statement["collation"],
                                   hint=statement["hint"])
        assert used(gp) == 3
