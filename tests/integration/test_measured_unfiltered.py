"""Measured "unfiltered": a filter no syntactic list knows can still match
every document. Under a rule with `filter: unfiltered`, a multi-document
statement is counted against its collection first; at least
unfiltered_fraction of it (default 0.9), and more than
unfiltered_min_documents (default 10), and the rule acts. Every refusal is
checked against a direct connection to the backend (the data is intact),
and the client's error says what was measured."""

from __future__ import annotations

import datetime

import pymongo
import pytest
from pymongo.errors import OperationFailure

import wire
from legacy_wire import op_delete, op_update
from policy_helpers import PolicyProxy, direct, expect_blocked, policy_backend, unique_db  # noqa: F401

POLICY = """
mode: enforce
rules:
  - name: no-unfiltered-delete
    match: {namespace: "mu_*.*", operations: [delete], filter: unfiltered}
    action: block
  - name: no-unfiltered-update
    match: {namespace: "mu_*.*", operations: [update], filter: unfiltered}
    action: block
  - name: half-is-too-much
    match: {namespace: "mu_*.strict", operations: [delete], filter: unfiltered,
            unfiltered_fraction: 0.5, unfiltered_min_documents: 2}
    action: block
  - name: scratch-may
    match: {namespace: "mu_*.scratch"}
    action: allow
  - name: delete-budget
    match: {namespace: "mu_*.budget", operations: [delete]}
    action: block
    limit: {documents: 400, per: 1m}
"""

SIZE = 500

# Every one matches all 500 documents, and none is on the syntactic list.
MATCH_ALL = [
    {"n": {"$gte": -1e308}},
    {"n": {"$lt": 1e308}},
    {"n": {"$type": "number"}},
    {"name": {"$regex": "^doc-"}},
    {"$and": [{"n": {"$gte": 0}}, {"name": {"$exists": True}}]},
    {"_id": {"$gte": 0}},
    {"$or": [{"n": {"$lt": 250}}, {"n": {"$gte": 250}}]},
    {"n": {"$nin": [-1, -2, -3]}},
    {"n": {"$not": {"$gt": 1e308}}},
]


@pytest.fixture(scope="module")
def guard(policy_backend):
    with PolicyProxy(policy_backend.upstream, POLICY) as p:
        yield p


@pytest.fixture(scope="module")
def client(guard):
    return guard.client()


def fill(direct, db, collection="c", count=SIZE):
    direct[db][collection].insert_many(
        [{"_id": i, "n": i, "name": f"doc-{i}"} for i in range(count)])


@pytest.fixture
def db(direct):
    name = unique_db("mu")
    fill(direct, name)
    yield name
    direct.drop_database(name)


def intact(direct, db, collection="c", count=SIZE):
    coll = direct[db][collection]
    assert coll.count_documents({}) == count
    assert coll.count_documents({"touched": True}) == 0


def counts(guard) -> float:
    return guard.proxy.metrics().get("mongoguard_preflight_counts_total", 0.0)


@pytest.mark.parametrize("flt", MATCH_ALL, ids=[repr(f)[:50] for f in MATCH_ALL])
def test_match_all_filter_is_measured_and_refused(client, direct, db, flt):
    coll = client[db].c
    message = expect_blocked(lambda: coll.delete_many(flt), "no-unfiltered-delete", "delete",
                             f"{db}.c")
    assert "the filter would affect 500 of 500 documents (100.0%)" in message, message
    message = expect_blocked(lambda: coll.update_many(flt, {"$set": {"touched": True}}),
                             "no-unfiltered-update", "update", f"{db}.c")
    assert "500 of 500 documents (100.0%)" in message, message
    intact(direct, db)


def test_the_fraction_is_the_boundary(client, direct, db):
    coll = client[db].c
    # 450 of 500 is 90%: refused; 449 is not, and goes through.
    message = expect_blocked(lambda: coll.delete_many({"n": {"$lt": 450}}),
                             "no-unfiltered-delete")
    assert "would affect 450 of 500 documents (90.0%)" in message, message
    intact(direct, db)
    assert coll.delete_many({"n": {"$lt": 449}}).deleted_count == 449
    assert direct[db].c.count_documents({}) == 51


def test_small_collections_are_below_the_floor(client, direct):
    name = unique_db("mu")
    try:
        fill(direct, name, "ten", 10)
        fill(direct, name, "eleven", 11)
        flt = {"n": {"$gte": -1e308}}
        # 10 documents is not more than the floor of 10: a small table may be cleared.
        assert client[name].ten.delete_many(flt).deleted_count == 10
        message = expect_blocked(lambda: client[name].eleven.delete_many(flt),
                                 "no-unfiltered-delete")
        assert "11 of 11 documents (100.0%)" in message, message
        intact(direct, name, "eleven", 11)
    finally:
        direct.drop_database(name)


def test_per_rule_fraction_and_floor(client, direct, db):
    fill(direct, db, "strict", 10)
    coll = client[db].strict
    message = expect_blocked(lambda: coll.delete_many({"n": {"$lt": 5}}), "half-is-too-much")
    assert "5 of 10 documents (50.0%)" in message, message
    intact(direct, db, "strict", 10)
    assert coll.delete_many({"n": {"$lt": 4}}).deleted_count == 4


def test_statements_that_split_the_collection_are_counted_together(client, direct, db):
    """Two statements of one command, each a half: together the whole."""
    with pytest.raises(OperationFailure) as caught:
        client[db].command({"delete": "c", "deletes": [
            {"q": {"n": {"$lt": 250}}, "limit": 0},
            {"q": {"n": {"$gte": 250}}, "limit": 0},
        ]})
    assert caught.value.code == 13
    assert "500 of 500 documents (100.0%)" in str(caught.value), caught.value
    with pytest.raises(OperationFailure) as bulk:  # the whole command is refused
        client[db].c.bulk_write([pymongo.DeleteMany({"n": {"$lt": 250}}),
                                 pymongo.DeleteMany({"n": {"$gte": 250}})])
    assert bulk.value.code == 13
    assert "500 of 500" in str(bulk.value), bulk.value
    intact(direct, db)


def test_many_one_document_statements_are_counted_together(client, direct, db):
    """500 statements of limit 1 whose filter matches everything: one command
    that empties the collection one document at a time."""
    flt = {"n": {"$gte": -1e308}}
    with pytest.raises(OperationFailure) as caught:
        client[db].command({"delete": "c", "deletes": [{"q": flt, "limit": 1}] * SIZE})
    assert caught.value.code == 13
    assert "500 of 500 documents (100.0%)" in str(caught.value), caught.value
    with pytest.raises(OperationFailure) as caught:
        client[db].c.bulk_write([pymongo.DeleteOne(flt)] * SIZE)
    assert "500 of 500 documents" in str(caught.value), caught.value
    intact(direct, db)


def test_one_document_statements_by_id_pass(client, direct, db):
    """A bulk of deletes by _id, the ordinary shape of many statements: 100 of 500."""
    result = client[db].c.bulk_write([pymongo.DeleteOne({"_id": i}) for i in range(100)])
    assert result.deleted_count == 100
    assert direct[db].c.count_documents({}) == SIZE - 100


def test_a_small_table_of_one_document_updates_is_refused(client, direct):
    name = unique_db("mu")
    try:
        fill(direct, name, "small", 50)
        flt = {"touched": {"$ne": True}}
        message = expect_blocked(lambda: client[name].command(
            {"update": "small", "updates": [{"q": flt, "u": {"$set": {"touched": True}}}] * 50}),
            "no-unfiltered-update")
        assert "50 of 50 documents (100.0%)" in message, message
        assert direct[name].small.count_documents({"touched": True}) == 0
    finally:
        direct.drop_database(name)


def test_an_update_then_a_delete_on_one_namespace_are_counted_together(client, direct, db):
    """bulkWrite (8.0): an update marks 88%, a delete takes the marked and the
    rest. Counted before either runs, the union of their filters is what the
    command touches: the whole collection."""
    with pytest.raises(OperationFailure) as caught:
        client.admin.command({"bulkWrite": 1, "nsInfo": [{"ns": f"{db}.c"}], "ops": [
            {"update": 0, "filter": {"n": {"$lt": 440}}, "updateMods": {"$set": {"doomed": True}},
             "multi": True},
            {"delete": 0, "filter": {"$or": [{"doomed": True}, {"n": {"$gte": 440}}]},
             "multi": True}]})
    assert caught.value.code == 13
    assert "500 of 500 documents" in str(caught.value), caught.value
    intact(direct, db)
    assert direct[db].c.count_documents({"doomed": True}) == 0


def test_unacknowledged_write_is_dropped(guard, direct, db):
    c = guard.client(w=0)
    c[db].c.delete_many({"n": {"$gte": -1e308}})
    c[db].c.update_many({"n": {"$gte": -1e308}}, {"$set": {"touched": True}})
    # A request behind them on the same connection is answered after both were judged.
    assert c[db].command("ping")["ok"] == 1
    guard.wait_for_audit(lambda r: r.get("outcome") == "dropped" and r.get("database") == db)
    intact(direct, db)


def test_admin_bulk_write_op_is_measured(client, direct, db):
    """The 8.0 bulkWrite command (FerretDB lacks it; the refusal comes first)."""
    with pytest.raises(OperationFailure) as caught:
        client.admin.command({"bulkWrite": 1, "ops": [
            {"delete": 0, "filter": {"n": {"$gte": -1e308}}, "multi": True}],
            "nsInfo": [{"ns": f"{db}.c"}]})
    assert caught.value.code == 13
    assert "500 of 500 documents" in str(caught.value), caught.value
    intact(direct, db)


@pytest.mark.parametrize("legacy", ["OP_DELETE", "OP_UPDATE"])
def test_legacy_write_is_measured_and_dropped(guard, direct, db, legacy):
    flt = {"n": {"$gte": -1e308}}
    msg = (op_delete(f"{db}.c", flt) if legacy == "OP_DELETE"
           else op_update(f"{db}.c", flt, {"$set": {"touched": True}}, multi=True))
    before = counts(guard)
    sock = wire.connect(guard.proxy.port)
    try:
        sock.sendall(msg)
        reply = wire.roundtrip(sock, wire.op_msg({"ping": 1, "$db": "admin"}), timeout=10)
        assert reply.body.get("ok") == 1, reply.body
    finally:
        sock.close()
    record = guard.wait_for_audit(lambda r: r.get("outcome") == "dropped"
                                  and r.get("command") == legacy
                                  and r["targets"][0]["ns"] == f"{db}.c")
    assert record["rule"].startswith("no-unfiltered-"), record
    assert counts(guard) >= before + 2  # the collection, then the filter
    intact(direct, db)


def test_selective_work_raises_no_refusal(guard, client, direct, db):
    coll = client[db].c
    before = counts(guard)
    assert coll.delete_many({"n": {"$lt": 25}}).deleted_count == 25  # 5%
    assert coll.update_many({"n": {"$lt": 100}}, {"$set": {"v": 1}}).modified_count == 75
    assert coll.delete_one({"_id": 300}).deleted_count == 1
    assert counts(guard) == before + 4  # each multi statement: the collection, the filter
    assert direct[db].c.count_documents({}) == SIZE - 26


def test_exempt_namespace_is_not_measured(guard, client, direct, db):
    fill(direct, db, "scratch", 50)
    before = counts(guard)
    assert client[db].scratch.delete_many({"n": {"$gte": -1e308}}).deleted_count == 50
    assert counts(guard) == before


def test_one_count_serves_the_filter_and_the_budget(guard, client, direct, db):
    """A rule with a budget and one with filter: unfiltered measure the same
    statement: the filter is counted once (plus the collection once)."""
    fill(direct, db, "budget", SIZE)
    before = counts(guard)
    assert client[db].budget.delete_many({"n": {"$lt": 100}}).deleted_count == 100
    assert counts(guard) == before + 2
    # The whole collection by a filter no list knows: the filter rule says no
    # (the budget of 400 would too), and nothing is reserved or deleted.
    message = expect_blocked(lambda: client[db].budget.delete_many({"n": {"$gte": -1e308}}),
                             "no-unfiltered-delete")
    assert "400 of 400 documents" in message, message
    assert direct[db].budget.count_documents({}) == 400
    # The budget still has 300 of its 400 left.
    assert client[db].budget.delete_many({"n": {"$lt": 400}}).deleted_count == 300


def test_failed_measurement_refuses(client, direct, db):
    """A count the server rejects (an unknown operator in the filter) cannot
    judge the filter: refused, saying why, and never forwarded."""
    with pytest.raises(OperationFailure) as caught:
        client[db].c.delete_many({"n": {"$noSuchOperator": 1}})
    assert caught.value.code == 13, caught.value
    assert "could not be measured" in str(caught.value), caught.value
    intact(direct, db)


UNSTABLE = [
    ({"$where": "Date.now() > 0"}, "$where"),
    ({"$expr": {"$gt": ["$$NOW", datetime.datetime(2000, 1, 1)]}}, "$$NOW"),
    ({"$expr": {"$lt": [{"$rand": {}}, 2]}}, "$rand"),
    ({"$sampleRate": 1.0}, "$sampleRate"),
    ({"n": {"$gte": 0}, "$and": [{"$expr": {"$gt": ["$$CLUSTER_TIME", 0]}}]}, "$$CLUSTER_TIME"),
]


@pytest.mark.parametrize("flt,what", UNSTABLE, ids=[u[1] for u in UNSTABLE])
def test_filter_reading_the_clock_or_chance_is_refused(guard, client, direct, db, flt, what):
    """Counted at 0 now, it could match everything a moment later: no count
    can judge it, so it is refused under the filter rule, and under a budget
    rule too (on_preflight_error), never counted and forwarded."""
    message = expect_blocked(lambda: client[db].c.delete_many(flt), "no-unfiltered-delete")
    assert f"the filter uses {what}" in message, message
    fill(direct, db, "budget", 20)
    message = expect_blocked(lambda: client[db].budget.delete_many(flt), "no-unfiltered-delete")
    intact(direct, db)
    assert direct[db].budget.count_documents({}) == 20


def test_unstable_filter_under_a_budget_alone_is_refused(guard, policy_backend, direct):
    name = unique_db("mu")
    fill(direct, name, "c", 20)
    policy = """
rules:
  - name: budget
    match: {namespace: "mu_*.*", operations: [delete]}
    action: block
    limit: {documents: 100, per: 1m, on_preflight_error: block}
"""
    try:
        with PolicyProxy(policy_backend.upstream, policy) as p:
            c = p.client()
            at = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=1)
            message = expect_blocked(
                lambda: c[name].c.delete_many({"$expr": {"$gt": ["$$NOW", at]}}), "budget")
            assert "its size could not be measured (the filter uses $$NOW" in message, message
            assert direct[name].c.count_documents({}) == 20
    finally:
        direct.drop_database(name)


def test_measured_refusal_is_audited_with_its_rule(guard, client, direct, db):
    expect_blocked(lambda: client[db].c.delete_many({"name": {"$regex": "doc"}}),
                   "no-unfiltered-delete")
    record = guard.wait_for_audit(lambda r: r.get("outcome") == "blocked"
                                  and r.get("database") == db)
    assert record["rule"] == "no-unfiltered-delete", record
    assert guard.proxy.metrics().get("mongoguard_measured_unfiltered_total", 0) >= 1
    intact(direct, db)
