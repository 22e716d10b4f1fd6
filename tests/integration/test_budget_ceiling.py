"""A budget is a hard ceiling, whatever the client does.

Each test below is one way a client (careless or clever) used to spend more
than a budget of 50 documents a minute through the proxy: statements mixed
in one command, unacknowledged writes, pipelining, fifty pooled
connections, reused request ids, requests that pretend to be the proxy's
own pre-flight count, statements of types the classifier did not expect.
What the server really deleted is always counted over a direct connection,
and must be at most the budget: zero overshoot.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time

import mongoengine
import pymongo
import pytest
from pymongo import DeleteMany, DeleteOne, UpdateMany, UpdateOne
from pymongo.errors import BulkWriteError, OperationFailure
from pymongo.write_concern import WriteConcern

import wire
from hold_helpers import (UNAUTHORIZED, GuardedProxy, delete_msg, raw_hello, unique_db,
                          wait_until)

BUDGET = 50
DOCS = 500


def ceiling_policy(database: str, *, action: str = "block", operations: str = "[delete]") -> str:
    return f"""
        holds:
          timeout: 2s
        rules:
          - name: ceiling
            match: {{ namespace: "{database}.*", operations: {operations} }}
            limit: {{ documents: {BUDGET}, per: 1m }}
            action: {action}
    """


@pytest.fixture
def direct(backend):
    client = pymongo.MongoClient(backend.uri, serverSelectionTimeoutMS=5000)
    made: list[str] = []

    def fresh(prefix: str, docs: int = DOCS) -> str:
        name = unique_db(prefix)
        made.append(name)
        client[name].c.insert_many([{"_id": i, "x": i, "v": 0} for i in range(docs)])
        return name

    client.fresh = fresh
    try:
        yield client
    finally:
        for name in made:
            client.drop_database(name)
        client.close()


def judged(gp, database: str, count: int) -> None:
    """Waits until `count` operations on the collection have an audit record:
    unacknowledged writes get no reply to wait for. (FerretDB answers them
    anyway, and the proxy relays those answers untouched, so a driver cannot
    send an acknowledged command behind them on the same connection.)"""
    def done():
        return sum(1 for r in gp.audit_records()
                   if any(t.get("ns") == f"{database}.c" for t in r.get("targets", []))) >= count
    wait_until(done, 30, f"{count} audit records")


def deleted(direct, database: str) -> int:
    return DOCS - direct[database].c.count_documents({})


def settled_deletions(direct, database: str, expected: int) -> int:
    """Unacknowledged writes forwarded may still be running on the server:
    waits for `expected` deletions, then a moment more for any overshoot."""
    wait_until(lambda: deleted(direct, database) >= expected, 15, f"{expected} deletions")
    time.sleep(0.5)
    return deleted(direct, database)


def updated(direct, database: str) -> int:
    return direct[database].c.count_documents({"v": {"$ne": 0}})


def refused(call) -> OperationFailure:
    with pytest.raises((OperationFailure, BulkWriteError)) as caught:
        call()
    err = caught.value
    if isinstance(err, BulkWriteError):
        codes = {e["code"] for e in err.details.get("writeErrors", [])}
        assert UNAUTHORIZED in codes or err.code == UNAUTHORIZED, err.details
    else:
        assert err.code == UNAUTHORIZED, err.details
    return err


def test_bulk_write_single_then_multi_is_measured(backend, direct):
    database = direct.fresh("ceil_bulk")
    with GuardedProxy(backend.upstream, ceiling_policy(database)) as gp:
        coll = gp.client()[database].c
        # A selective mix within the budget passes, and is counted exactly.
        r = coll.bulk_write([DeleteOne({"_id": 0}), DeleteMany({"x": {"$lt": 10}})])
        assert r.deleted_count == 10
        assert gp.admin.breaker(f"ceiling:{database}.c")["used"] == 10
        # The statement that would empty the collection is measured, not trusted.
        err = refused(lambda: coll.bulk_write([DeleteOne({"_id": 10}),
                                               DeleteMany({"x": {"$gte": 0}})]))
        assert "would affect at least" in str(err), err
        # ordered=False and many statements change nothing.
        refused(lambda: coll.bulk_write([DeleteOne({"_id": i}) for i in range(11, 30)] +
                                        [DeleteMany({"x": {"$gte": 100}})], ordered=False))
    assert deleted(direct, database) == 10


def test_bulk_write_update_one_then_update_many(backend, direct):
    database = direct.fresh("ceil_upd")
    with GuardedProxy(backend.upstream,
                      ceiling_policy(database, operations="[update, replace]")) as gp:
        coll = gp.client()[database].c
        refused(lambda: coll.bulk_write([UpdateOne({"_id": 1}, {"$set": {"v": 1}}),
                                         UpdateMany({}, {"$set": {"v": 2}})]))
        assert coll.update_many({"x": {"$lt": 40}}, {"$set": {"v": 3}}).modified_count == 40
        refused(lambda: coll.update_many({"x": {"$gte": 40}}, {"$set": {"v": 4}}))
    assert updated(direct, database) <= BUDGET
    assert updated(direct, database) == 40


def test_unacknowledged_multi_deletes_are_measured(backend, direct):
    database = direct.fresh("ceil_w0")
    with GuardedProxy(backend.upstream, ceiling_policy(database)) as gp:
        client = gp.client(maxPoolSize=1)
        coll = client[database].get_collection("c", write_concern=WriteConcern(w=0))
        for start in range(0, DOCS, 20):
            coll.delete_many({"x": {"$gte": start, "$lt": start + 20}})  # no reply, no error
        judged(gp, database, DOCS // 20)
        assert gp.admin.breaker(f"ceiling:{database}.c")["used"] == 40
        assert settled_deletions(direct, database, 40) == 40, "two batches of 20 fit, no third"


def test_unacknowledged_single_delete_loop_is_charged(backend, direct):
    database = direct.fresh("ceil_w0_single")
    with GuardedProxy(backend.upstream, ceiling_policy(database)) as gp:
        client = gp.client(maxPoolSize=1)
        coll = client[database].get_collection("c", write_concern=WriteConcern(w=0))
        for i in range(DOCS):
            coll.delete_one({"_id": i})
        judged(gp, database, DOCS)
        b = gp.admin.breaker(f"ceiling:{database}.c")
        assert b["used"] == BUDGET and b["tripped"], b
        assert settled_deletions(direct, database, BUDGET) == BUDGET


def test_mongoengine_unacknowledged_deletes(backend, direct):
    database = direct.fresh("ceil_me")
    with GuardedProxy(backend.upstream, ceiling_policy(database)) as gp:
        alias = unique_db("me")
        mongoengine.connect(db=database, host=gp.uri, alias=alias, maxPoolSize=1)
        try:
            class Family(mongoengine.Document):
                id = mongoengine.IntField(primary_key=True)
                x = mongoengine.IntField()
                v = mongoengine.IntField()
                meta = {"collection": "c", "db_alias": alias}

            families = list(Family.objects.order_by("id").limit(200))
            for family in families:
                family.delete(w=0)
            judged(gp, database, len(families))
            assert settled_deletions(direct, database, BUDGET) == BUDGET
            # Acknowledged ones after the spike are refused too.
            with pytest.raises(OperationFailure):
                Family.objects(x__gte=300).delete()
        finally:
            mongoengine.disconnect(alias=alias)
    assert deleted(direct, database) == BUDGET


def test_pipelined_single_deletes_in_one_write(backend, direct):
    database = direct.fresh("ceil_pipe")
    with GuardedProxy(backend.upstream, ceiling_policy(database)) as gp:
        sock = raw_hello(gp.port)
        try:
            frames, ids = [], []
            for i in range(DOCS):
                msg, rid = delete_msg(database, "c", {"_id": i}, limit=1)
                frames.append(msg)
                ids.append(rid)
            sock.sendall(b"".join(frames))
            ok = refusals = 0
            deadline = time.monotonic() + 60
            for rid in ids:
                reply = wire.parse_message(wire.read_message(sock, timeout=max(1.0, deadline - time.monotonic())))
                assert reply.header.response_to == rid, "replies in request order"
                if reply.body.get("ok") == 1:
                    ok += reply.body.get("n", 0)
                else:
                    assert reply.body.get("code") == UNAUTHORIZED, reply.body
                    refusals += 1
            assert ok == BUDGET and refusals == DOCS - BUDGET
        finally:
            sock.close()
    assert deleted(direct, database) == BUDGET


def test_fifty_threads_on_fifty_connections(backend, direct):
    database = direct.fresh("ceil_threads")
    with GuardedProxy(backend.upstream, ceiling_policy(database)) as gp:
        client = gp.client(maxPoolSize=50)
        coll = client[database].c

        def one(i: int) -> int:
            try:
                return coll.delete_one({"_id": i}).deleted_count
            except OperationFailure as err:
                assert err.code == UNAUTHORIZED, err.details
                return 0

        with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
            total = sum(pool.map(one, range(DOCS)))
        assert total == BUDGET
    assert deleted(direct, database) == BUDGET


def test_asyncio_gather_over_fifty_connections(backend, direct):
    database = direct.fresh("ceil_async")
    from pymongo import AsyncMongoClient

    with GuardedProxy(backend.upstream, ceiling_policy(database)) as gp:
        async def run() -> list:
            client = AsyncMongoClient(gp.uri, maxPoolSize=50, serverSelectionTimeoutMS=5000)
            try:
                coll = client[database].c
                return await asyncio.gather(*(coll.delete_one({"_id": i}) for i in range(DOCS)),
                                            return_exceptions=True)
            finally:
                await client.close()

        results = asyncio.run(asyncio.wait_for(run(), 120))
        ok = [r for r in results if not isinstance(r, Exception)]
        errors = [r for r in results if isinstance(r, Exception)]
        assert all(isinstance(e, OperationFailure) and e.code == UNAUTHORIZED for e in errors), errors[:3]
        assert sum(r.deleted_count for r in ok) == BUDGET
    assert deleted(direct, database) == BUDGET


def test_reused_request_id_in_flight_is_refused(backend, direct):
    database = direct.fresh("ceil_reuse")
    with GuardedProxy(backend.upstream, ceiling_policy(database)) as gp:
        sock = raw_hello(gp.port)
        try:
            first, rid = delete_msg(database, "c", {"_id": 1}, limit=1)
            body = {"delete": "c", "deletes": [{"q": {"x": {"$gte": 0}}, "limit": 0}],
                    "$db": database}
            second = wire.op_msg(body, request_id=rid)
            sock.sendall(first + second)
            # The first may be answered; then the connection closes, and the
            # second never reaches the server.
            how, _ = wire.wait_closed(sock, timeout=10)
            assert how in ("eof", "reset"), how
        finally:
            sock.close()
        gp.wait_for_log("reused_request_id")
        metrics = gp.admin.metrics()
        assert metrics.get('mongoguard_rejected_frames_total{reason="reused_request_id"}') == 1
    assert deleted(direct, database) <= 1


def test_spoofed_preflight_reply_cannot_shrink_a_measurement(backend, direct):
    """A client pipelines counts matching nothing under every id a proxy
    might choose for its own count, around a delete that would empty the
    collection: the measurement is its own, and the delete is refused."""
    database = direct.fresh("ceil_spoof")
    with GuardedProxy(backend.upstream, ceiling_policy(database)) as gp:
        sock = raw_hello(gp.port)
        try:
            frames = []
            spoof_ids = list(range(-1, -40, -1))
            for rid in spoof_ids[:20]:
                frames.append(wire.op_msg({"count": "c", "query": {"_id": -1}, "$db": database},
                                          request_id=rid))
            msg, delete_id = delete_msg(database, "c", {"x": {"$gte": 0}}, limit=0)
            frames.append(msg)
            for rid in spoof_ids[20:]:
                frames.append(wire.op_msg({"count": "c", "query": {"_id": -1}, "$db": database},
                                          request_id=rid))
            sock.sendall(b"".join(frames))
            replies = {}
            for _ in range(len(frames)):
                reply = wire.parse_message(wire.read_message(sock, timeout=10))
                replies[reply.header.response_to] = reply.body
            assert replies[delete_id].get("code") == UNAUTHORIZED, replies[delete_id]
            assert all(replies[rid].get("n") == 0 for rid in spoof_ids), "the client's own counts answered"
        finally:
            sock.close()
    assert deleted(direct, database) == 0


def test_statement_of_an_unexpected_type_is_refused_not_forwarded(backend, direct):
    database = direct.fresh("ceil_types")
    with GuardedProxy(backend.upstream, ceiling_policy(database)) as gp:
        sock = raw_hello(gp.port)
        try:
            cases = [
                {"delete": "c", "deletes": [{"q": {"_id": 1}, "limit": 1}, "junk"]},
                {"delete": "c", "deletes": {"q": {}, "limit": 0}},
                {"delete": "c", "deletes": [{"q": "everything", "limit": 0}]},
                {"update": "c", "updates": [{"q": {}, "u": {"$set": {"v": 9}}, "multi": "true"}]},
            ]
            for body in cases:
                reply = wire.roundtrip(sock, wire.op_msg({**body, "$db": database}))
                assert reply.body.get("ok") == 0 and reply.body.get("code") == UNAUTHORIZED, reply.body
                assert "could not be judged" in reply.body.get("errmsg", ""), reply.body
        finally:
            sock.close()
        assert gp.admin.metrics().get("mongoguard_unjudged_commands_total") == len(cases)
    assert deleted(direct, database) == 0
    assert updated(direct, database) == 0


def test_hold_approved_is_counted_and_the_rest_still_held(backend, direct):
    database = direct.fresh("ceil_hold")
    policy = ceiling_policy(database, action="hold").replace("timeout: 2s", "timeout: 30s")
    with GuardedProxy(backend.upstream, policy) as gp:
        coll = gp.client()[database].c
        assert coll.delete_many({"x": {"$lt": 45}}).deleted_count == 45
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            held = pool.submit(lambda: coll.delete_many({"x": {"$lt": 60}}).deleted_count)
            hold = gp.admin.wait_for_hold(lambda h: h["ns"] == f"{database}.c")
            gp.admin.approve(hold["id"])
            assert held.result(timeout=15) == 15
        b = gp.admin.breaker(f"ceiling:{database}.c")
        assert b["used"] == 60, b
    assert deleted(direct, database) == 60


def test_forgotten_unanswered_request_cannot_settle_a_later_one():
    """A server that answers moreToCome requests (FerretDB does) answers a
    slow one late; meanwhile the client sends over a thousand more
    unanswered requests, so the proxy forgets the first one's id, and
    reuses that id for a delete. The late answer (n: 0) must not settle the
    delete's reservation at 0: once the connection lost track of a request,
    replies only ever add."""
    from fake_upstream import Delay, FakeUpstream

    def slow_count(msg, conn):
        if msg.more_to_come:
            return [Delay(1.0), conn.server.reply(msg, {"n": 0, "ok": 1.0})]
        return None

    def delete(msg, conn):
        n = len(msg.body.get("deletes") or msg.sequences.get("deletes") or [])
        return [conn.server.reply(msg, {"n": n, "ok": 1.0})]

    with FakeUpstream({"slowcount": slow_count, "delete": delete}) as fake:
        with GuardedProxy(fake.address, ceiling_policy("forget")) as gp:
            sock = raw_hello(gp.port)
            try:
                rid = wire.next_request_id()
                frames = [wire.op_msg({"slowcount": "big", "$db": "scratch"}, flags=wire.MORE_TO_COME,
                                      request_id=rid)]
                frames += [wire.op_msg({"ping": 1, "$db": "admin"}, flags=wire.MORE_TO_COME)
                           for _ in range(1100)]
                deletes = [{"q": {"_id": i}, "limit": 1} for i in range(BUDGET)]
                frames.append(wire.op_msg({"delete": "c", "deletes": deletes, "$db": "forget"},
                                          request_id=rid))
                sock.sendall(b"".join(frames))
                first = wire.parse_message(wire.read_message(sock, timeout=10))
                second = wire.parse_message(wire.read_message(sock, timeout=10))
                assert first.body.get("n") == 0 and second.body.get("n") == BUDGET
                b = gp.admin.breaker("ceiling:forget.c")
                assert b["used"] == BUDGET and b["tripped"], b
                # The next delete finds nothing left.
                reply = wire.roundtrip(sock, wire.op_msg(
                    {"delete": "c", "deletes": [{"q": {"_id": 99}, "limit": 1}], "$db": "forget"}))
                assert reply.body.get("code") == UNAUTHORIZED, reply.body
            finally:
                sock.close()
        assert not fake.messages_for("delete")[1:], "the refused delete never reached the server"
