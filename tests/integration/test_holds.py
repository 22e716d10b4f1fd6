"""Held operations through a real driver: every way a hold can end.

A rule with `action: hold` parks the operation on its connection until an
operator approves or rejects it through the admin API, the hold times out,
the command's own maxTimeMS runs out, the client goes away, or mongoguard
shuts down. Whether the data changed is always judged over a direct
connection to the backend. Every wait is bounded.
"""

from __future__ import annotations

import concurrent.futures
import signal
import socket
import statistics
import struct
import time

import pymongo
import pytest
from pymongo.errors import OperationFailure

import wire
from hold_helpers import (MAX_TIME_MS_EXPIRED, UNAUTHORIZED, GuardedProxy, check_hold_error,
                          delete_msg, ping_msg, raw_hello, unique_db, wait_until)

RULE = "hold-deletes"


def hold_policy(database: str, timeout: str = "1m") -> str:
    return f"""
        holds:
          timeout: {timeout}
        rules:
          - name: {RULE}
            match: {{ namespace: "{database}.*", operations: [delete] }}
            action: hold
            message: "deletes here need a second pair of eyes"
    """


@pytest.fixture
def pool():
    ex = concurrent.futures.ThreadPoolExecutor(max_workers=4)
    try:
        yield ex
    finally:
        ex.shutdown(wait=False, cancel_futures=True)


@pytest.fixture
def seeded(backend):
    """A fresh database with documents _id 0..9 in collection `c`."""
    database = unique_db("holds")
    direct = pymongo.MongoClient(backend.uri, serverSelectionTimeoutMS=5000)
    direct[database].c.insert_many([{"_id": i, "x": i} for i in range(10)])
    try:
        yield database, direct
    finally:
        direct.drop_database(database)
        direct.close()


def exists(direct: pymongo.MongoClient, database: str, _id) -> bool:
    return direct[database].c.count_documents({"_id": _id}) == 1


def test_approved_hold_is_forwarded_and_counted(backend, seeded, pool):
    database, direct = seeded
    ns = f"{database}.c"
    policy = f"""
        holds:
          timeout: 1m
        rules:
          - name: budget
            match: {{ namespace: "{database}.*", operations: [delete] }}
            limit: {{ documents: 2, per: 1m }}
            action: hold
    """
    with GuardedProxy(backend.upstream, policy) as gp:
        coll = gp.client(appname="approver-test")[database].c
        assert coll.delete_one({"_id": 0}).deleted_count == 1
        assert coll.delete_one({"_id": 1}).deleted_count == 1
        breaker = gp.admin.breaker(f"budget:{ns}")
        assert breaker["used"] == 2 and breaker["tripped"], breaker

        started = time.monotonic()
        held = pool.submit(coll.delete_one, {"_id": 2})
        hold = gp.admin.wait_for_hold()
        assert hold["rule"] == "budget" and hold["ns"] == ns, hold
        assert hold["operation"] == "delete" and hold["app"] == "approver-test", hold
        assert hold["breaker"] == f"budget:{ns}", hold
        assert hold["documents_in_window"] == 2 and hold["limit"] == 2, hold
        assert not held.done(), "the held delete answered before anyone decided"
        assert exists(direct, database, 2), "a held delete reached the server"

        answer = gp.admin.approve(hold["id"], by="alice")
        assert {k: answer[k] for k in ("id", "outcome", "by")} == {
            "id": hold["id"], "outcome": "approved", "by": "alice"}, answer
        assert answer["breaker_tripped"] is True and "stays tripped" in answer["note"], answer
        result = held.result(timeout=10)
        assert result.deleted_count == 1
        assert time.monotonic() - started < 10
        assert not exists(direct, database, 2)
        assert gp.admin.holds() == []
        # The approved delete is counted like any other.
        wait_until(lambda: gp.admin.breaker(f"budget:{ns}")["used"] == 3, 5,
                   "the approved delete to be counted")
        gp.wait_for_log(f"hold {hold['id']} approved by alice")
        # Deciding twice is refused: the hold is gone.
        with pytest.raises(Exception) as again:
            gp.admin.approve(hold["id"], by="alice")
        assert getattr(again.value, "status", None) == 404, again.value


def test_rejected_hold_is_refused_and_never_forwarded(backend, seeded, pool):
    database, direct = seeded
    ns = f"{database}.c"
    with GuardedProxy(backend.upstream, hold_policy(database)) as gp:
        coll = gp.client()[database].c
        held = pool.submit(coll.delete_one, {"_id": 3})
        hold = gp.admin.wait_for_hold()
        assert hold["rule"] == RULE and hold["ns"] == ns and hold["breaker"] == "", hold
        assert hold["reason"] == "deletes here need a second pair of eyes", hold
        assert gp.admin.reject(hold["id"], by="bob")["outcome"] == "rejected"
        with pytest.raises(OperationFailure) as caught:
            held.result(timeout=10)
        errmsg = check_hold_error(caught.value, RULE, operation="delete", ns=ns)
        assert errmsg == f"mongoguard: delete on {ns} held by rule '{RULE}': rejected by bob"
        assert caught.value.details.get("codeName") == "Unauthorized"
        assert exists(direct, database, 3)
        assert gp.admin.holds() == []
        # The connection stays usable after a refusal.
        assert coll.find_one({"_id": 4}) == {"_id": 4, "x": 4}


def test_hold_times_out_as_a_rejection(backend, seeded):
    database, direct = seeded
    ns = f"{database}.c"
    with GuardedProxy(backend.upstream, hold_policy(database, timeout="2s")) as gp:
        coll = gp.client()[database].c
        started = time.monotonic()
        with pytest.raises(OperationFailure) as caught:
            coll.delete_one({"_id": 5})
        waited = time.monotonic() - started
        check_hold_error(caught.value, RULE, operation="delete", ns=ns,
                         contains="not approved within 2s; rejected")
        assert 1.8 <= waited < 8, waited
        assert exists(direct, database, 5)
        assert gp.admin.holds() == []
        gp.wait_for_log(" timed out after ")


def test_max_time_ms_ends_the_hold_with_code_50(backend, seeded):
    database, direct = seeded
    with GuardedProxy(backend.upstream, hold_policy(database)) as gp:
        db = gp.client()[database]
        started = time.monotonic()
        with pytest.raises(OperationFailure) as caught:
            db.command({"delete": "c", "deletes": [{"q": {"_id": 6}, "limit": 1}],
                        "maxTimeMS": 1500})
        waited = time.monotonic() - started
        err = caught.value
        assert err.code == MAX_TIME_MS_EXPIRED, err.details
        assert err.details.get("codeName") == "MaxTimeMSExpired", err.details
        assert f"held by rule '{RULE}'" in err.details.get("errmsg", ""), err.details
        assert 1.3 <= waited < 6, waited
        assert exists(direct, database, 6), "a delete whose maxTimeMS ran out was forwarded"
        assert gp.admin.holds() == []
        gp.wait_for_log(" maxTimeMS expired after ")


def send_held_delete(gp: GuardedProxy, database: str, _id: int, app: str):
    """A raw connection whose delete of `_id` is now held: (socket, hold, request id)."""
    sock = raw_hello(gp.port, app=app)
    msg, delete_id = delete_msg(database, "c", {"_id": _id})
    sock.sendall(msg)
    hold = gp.admin.wait_for_hold()
    assert hold["app"] == app, hold
    return sock, hold, delete_id


def test_client_gone_while_held_is_never_forwarded(backend, seeded):
    database, direct = seeded
    with GuardedProxy(backend.upstream, hold_policy(database)) as gp:
        sock, hold, _ = send_held_delete(gp, database, 7, "leaves-early")
        gp.wait_for_log("held by rule")
        sock.close()
        wait_until(lambda: gp.admin.holds() == [], 5, "the hold to be cancelled")
        text = gp.wait_for_log("client went away while its operation was held; never forwarded")
        assert f"hold {hold['id']} client gone" in text, text[-3000:]
        time.sleep(2)
        assert exists(direct, database, 7), "the abandoned delete ran"
        # Approving it now is impossible: it is no longer pending.
        with pytest.raises(Exception) as late:
            gp.admin.approve(hold["id"], by="alice")
        assert getattr(late.value, "status", None) == 404
        outcomes = [r.get("outcome") for r in gp.audit_records()]
        assert "cancelled: client gone" in outcomes, outcomes


def test_driver_socket_timeout_while_held_cancels_the_hold(backend, seeded):
    """A driver that gives up (socketTimeoutMS) closes its connection: the
    hold is cancelled and the delete never runs, even if approved later."""
    database, direct = seeded
    with GuardedProxy(backend.upstream, hold_policy(database)) as gp:
        coll = gp.client(socketTimeoutMS=1000)[database].c
        with pytest.raises(pymongo.errors.NetworkTimeout):
            coll.delete_one({"_id": 0})
        wait_until(lambda: gp.admin.holds() == [], 5, "the hold to be cancelled")
        gp.wait_for_log("client went away while its operation was held; never forwarded")
        time.sleep(1)
        assert exists(direct, database, 0)


def test_client_gone_after_pipelining_another_request_is_never_forwarded(backend, seeded):
    """A client that sent one more request behind the held delete and then
    disconnected has gone just the same: the hold must be cancelled, and an
    approval must not run the delete for nobody."""
    database, direct = seeded
    with GuardedProxy(backend.upstream, hold_policy(database)) as gp:
        sock = raw_hello(gp.port)
        msg, _ = delete_msg(database, "c", {"_id": 8})
        sock.sendall(msg)
        hold = gp.admin.wait_for_hold()
        ping, _ = ping_msg()
        sock.sendall(ping)
        time.sleep(0.3)
        sock.close()
        try:
            wait_until(lambda: gp.admin.holds() == [], 5, "the hold to be cancelled")
        except AssertionError:
            # Still pending: an operator approving it must not run it now.
            try:
                gp.admin.approve(hold["id"], by="alice")
            except Exception:
                pass
            time.sleep(1)
            assert exists(direct, database, 8), (
                "a held delete whose client had disconnected was forwarded on approval; log:\n"
                + gp.log_text()[-4000:])
            raise AssertionError("the hold of a disconnected client (which had pipelined one "
                                 "more request) stayed pending for 5 s; log:\n"
                                 + gp.log_text()[-4000:])
        assert exists(direct, database, 8)


@pytest.mark.parametrize("then", ["stays", "resets"])
def test_a_hold_whose_client_fills_the_read_ahead_is_refused(backend, seeded, then):
    """Behind a held write mongoguard reads ahead at most 1 MiB of what the
    client pipelines, to see it go. A client that sends more can no longer
    be watched (its FIN would wait behind the bytes not read), so its held
    write is refused then and there, never forwarded, and what it pipelined
    is served after it, in order."""
    database, direct = seeded
    with GuardedProxy(backend.upstream, hold_policy(database)) as gp:
        sock, hold, delete_id = send_held_delete(gp, database, 6, "pipelines-a-lot")
        pad = "x" * (600 * 1024)
        insert_ids = [wire.next_request_id() for _ in range(2)]
        sock.settimeout(10)
        sock.sendall(b"".join(
            wire.op_msg({"insert": "other", "documents": [{"pad": pad}], "$db": database},
                        request_id=rid) for rid in insert_ids))
        if then == "resets":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
        else:
            refused = wire.parse_message(wire.read_message(sock, timeout=5))
            assert refused.response_to == delete_id
            assert refused.body["ok"] == 0 and refused.body["code"] == UNAUTHORIZED, refused.body
            assert "more than 1 MiB behind it while it was held" in refused.body["errmsg"]
            assert refused.body["errmsg"].endswith("refused, not forwarded"), refused.body
            for rid in insert_ids:
                reply = wire.parse_message(wire.read_message(sock, timeout=5))
                assert reply.response_to == rid and reply.body["ok"] == 1, reply.body
            sock.close()
        wait_until(lambda: gp.admin.holds() == [], 5, "the hold to be refused")
        with pytest.raises(Exception) as late:
            gp.admin.approve(hold["id"], by="alice")
        assert getattr(late.value, "status", None) == 404
        time.sleep(0.5)
        assert exists(direct, database, 6), "the refused delete ran"
        outcomes = [r.get("outcome") for r in gp.audit_records()]
        if then == "resets":
            # The reset may be seen before the read-ahead fills: either way
            # the delete is never forwarded.
            assert {"refused: read-ahead full", "cancelled: client gone"} & set(outcomes), outcomes
            return
        assert "refused: read-ahead full" in outcomes, outcomes
        assert direct[database].other.count_documents({}) == 2
        assert gp.admin.metrics().get(
            'mongoguard_holds_resolved_total{outcome="read-ahead full"}') == 1


def test_shutdown_with_holds_pending_rejects_and_exits_cleanly(backend, seeded, pool):
    database, direct = seeded
    ns = f"{database}.c"
    with GuardedProxy(backend.upstream, hold_policy(database)) as gp:
        coll = gp.client()[database].c
        held = pool.submit(coll.delete_one, {"_id": 9})
        other = gp.client()[database].c
        held2 = pool.submit(other.delete_many, {"x": {"$gte": 7}})
        wait_until(lambda: len(gp.admin.holds()) == 2, 10, "two pending holds")
        gp.proc.send_signal(signal.SIGTERM)
        for future in (held, held2):
            with pytest.raises(OperationFailure) as caught:
                future.result(timeout=10)
            check_hold_error(caught.value, RULE, operation="delete", ns=ns,
                             contains="mongoguard is shutting down; not forwarded")
        assert gp.proc.wait(timeout=10) == 0, gp.log_text()[-3000:]
        text = gp.log_text()
        assert "rejected 2 held operation(s) at shutdown" in text, text[-3000:]
        assert "mongoguard stopped" in text
        assert direct[database].c.count_documents({}) == 10, "a held delete ran at shutdown"


def test_other_connections_keep_working_while_one_is_held(backend, seeded, pool):
    database, direct = seeded
    with GuardedProxy(backend.upstream, hold_policy(database)) as gp:
        coll = gp.client()[database].c
        held = pool.submit(coll.delete_one, {"_id": 1})
        hold = gp.admin.wait_for_hold()
        reader = gp.client()[database].c
        for _ in range(5):
            started = time.monotonic()
            assert reader.find_one({"_id": 2}) == {"_id": 2, "x": 2}
            assert time.monotonic() - started < 1.0
        # Writes that no rule holds pass too, on other connections.
        other_db = gp.client()[database + "_free"]
        try:
            other_db.c.insert_one({"_id": 1})
            assert other_db.c.delete_one({"_id": 1}).deleted_count == 1
        finally:
            direct.drop_database(database + "_free")
        assert not held.done()
        gp.admin.reject(hold["id"], by="carol")
        with pytest.raises(OperationFailure):
            held.result(timeout=10)


def test_held_connection_reads_nothing_more_until_decided(backend, seeded):
    database, direct = seeded
    ns = f"{database}.c"
    with GuardedProxy(backend.upstream, hold_policy(database)) as gp:
        sock = raw_hello(gp.port)
        delete, delete_id = delete_msg(database, "c", {"_id": 4})
        sock.sendall(delete)
        hold = gp.admin.wait_for_hold()
        ping, ping_id = ping_msg()
        sock.sendall(ping)
        # Nothing comes back while held: not the delete's answer, not the ping's.
        assert wire.expect_silence(sock, 1.0) == b""
        assert len(gp.admin.holds()) == 1
        gp.admin.reject(hold["id"], by="dave")
        first = wire.parse_message(wire.read_message(sock, timeout=5))
        assert first.response_to == delete_id
        assert first.body["ok"] == 0 and first.body["code"] == UNAUTHORIZED, first.body
        assert first.body["errmsg"].endswith("rejected by dave"), first.body
        assert ns in first.body["errmsg"]
        second = wire.parse_message(wire.read_message(sock, timeout=5))
        assert second.response_to == ping_id and second.body["ok"] == 1, second.body
        sock.close()
        assert exists(direct, database, 4)


APPROVE_LATENCY_SAMPLES = 10


def test_approve_to_reply_latency(backend, seeded, pool, record_property):
    """How long a held-then-approved delete takes to answer once the approve
    POST has returned: the cost of the hold machinery beyond the wait itself
    (it includes the backend's own delete). Printed with -s; bounded loosely."""
    database, direct = seeded
    direct[database].lat.insert_many([{"_id": i} for i in range(APPROVE_LATENCY_SAMPLES)])
    with GuardedProxy(backend.upstream, hold_policy(database)) as gp:
        coll = gp.client()[database].lat
        unheld = gp.client()[database + "_free"].lat
        samples, baseline = [], []

        def timed_delete(c, i):
            result = c.delete_one({"_id": i})
            return time.perf_counter(), result.deleted_count

        try:
            for i in range(APPROVE_LATENCY_SAMPLES):
                unheld.insert_one({"_id": i})
                started = time.perf_counter()
                unheld.delete_one({"_id": i})
                baseline.append(time.perf_counter() - started)

                future = pool.submit(timed_delete, coll, i)
                hold = gp.admin.wait_for_hold(lambda h: True, timeout=5)
                gp.admin.approve(hold["id"], by="bench")
                approved = time.perf_counter()
                answered, deleted = future.result(timeout=5)
                assert deleted == 1
                samples.append(answered - approved)
        finally:
            direct.drop_database(database + "_free")
        median = statistics.median(samples)
        base = statistics.median(baseline)
        report = (f"approve-to-reply median {median * 1000:.2f} ms over {len(samples)} "
                  f"(min {min(samples) * 1000:.2f}, max {max(samples) * 1000:.2f}); "
                  f"an unheld delete through the proxy: median {base * 1000:.2f} ms")
        print("\n" + report)
        record_property("approve_to_reply", report)
        assert direct[database].lat.count_documents({}) == 0
        assert median < 0.5, report
