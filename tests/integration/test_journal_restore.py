"""`mongoguard ctl restore`, `ctl journal` and `ctl journal export`, through
real pymongo against FerretDB: every operation kind a journaled budget lets
through is undone by one command, byte for byte (documents compared as raw
BSON over a direct connection); what changed after the journaled write is a
conflict, listed and left alone; a second restore does nothing and says so.

What the operator controls, each used here: --ns, --since, --hold, --to
(default: the proxy itself), --dry-run, --force, --as; and what can go
wrong: a document re-inserted or changed since, a restore run twice."""

from __future__ import annotations

import json

import bson
import pymongo
import pytest
from bson.raw_bson import RawBSONDocument
from pymongo import DeleteMany, DeleteOne, ReplaceOne, UpdateMany, UpdateOne

from hold_helpers import GuardedProxy, unique_db, wait_until
from journal_helpers import journal_policy

def policy(database: str, journal_path: str) -> str:
    return journal_policy(database, journal_path)


@pytest.fixture
def setup(backend, tmp_path):
    database = unique_db("restore")
    g = GuardedProxy(backend.upstream, policy(database, str(tmp_path / "journal.db")))
    direct = pymongo.MongoClient(backend.uri, serverSelectionTimeoutMS=5000,
                                 document_class=RawBSONDocument)
    try:
        yield g, direct, database
    finally:
        direct.drop_database(database)
        direct.close()
        g.stop()


def seed(direct, database: str, n: int = 12) -> None:
    docs = [{"_id": i, "n": i, "kind": "even" if i % 2 == 0 else "odd",
             "nested": {"a": [1, 2.5, "x"], "when": bson.datetime.datetime(2024, 1, i)},
             "bin": bson.Binary(bytes([i]) * 3)} for i in range(1, n + 1)]
    # Raw insert: what the journal must give back is exactly these bytes.
    direct[database].family.insert_many([RawBSONDocument(bson.encode(d)) for d in docs])


def snapshot(direct, database: str) -> dict:
    """_id -> the document's raw BSON bytes, as the server holds it."""
    return {bson.decode(d.raw)["_id"]: d.raw for d in direct[database].family.find()}


def ctl(g, *args):
    return g.admin.ctl(*args, timeout=60)


def restore(g, database, *extra):
    return ctl(g, "--as", "alice", "restore", "--ns", f"{database}.family", "--since", "10m",
               *extra)


def wait_journaled(g, database, rows: int):
    def enough():
        got = ctl(g, "--json", "journal", "--ns", f"{database}.family")
        assert got.returncode == 0, got.stderr
        data = json.loads(got.stdout)
        # Updates' after-images are read behind the write: wait for them too.
        pending = [r for r in data["rows"] if r["operation"] != "delete" and r["after_bson"] == ""]
        return data if len(data["rows"]) >= rows and not pending else None
    return wait_until(enough, 10, f"{rows} journal rows")


OPERATIONS = {
    "delete_one": lambda c: c.delete_one({"_id": 3}),
    "delete_many": lambda c: c.delete_many({"kind": "odd"}),
    "update_one": lambda c: c.update_one({"_id": 4}, {"$set": {"n": 40}, "$unset": {"bin": ""}}),
    "update_many": lambda c: c.update_many({"kind": "even"}, {"$inc": {"n": 100}}),
    "replace_one": lambda c: c.replace_one({"_id": 5}, {"replaced": True}),
    "find_one_and_delete": lambda c: c.find_one_and_delete({"kind": "even"},
                                                           sort=[("n", -1)]),
    "find_one_and_update": lambda c: c.find_one_and_update({"_id": 6}, {"$set": {"n": 0}}),
    "bulk_write": lambda c: c.bulk_write([DeleteOne({"_id": 1}), UpdateOne({"_id": 2},
                                          {"$set": {"n": -2}}), ReplaceOne({"_id": 7}, {"r": 7}),
                                          DeleteMany({"n": {"$gt": 10}}),
                                          UpdateMany({"kind": "odd"}, {"$set": {"k": 1}})]),
}
AFFECTED = {"delete_one": 1, "delete_many": 6, "update_one": 1, "update_many": 6,
            "replace_one": 1, "find_one_and_delete": 1, "find_one_and_update": 1,
            "bulk_write": None}


@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_restore_returns_the_collection_to_its_prior_state(setup, operation):
    g, direct, database = setup
    seed(direct, database)
    before = snapshot(direct, database)
    OPERATIONS[operation](g.client()[database].family)
    assert snapshot(direct, database) != before
    expected = AFFECTED[operation]
    wait_journaled(g, database, expected or 1)
    dry = restore(g, database, "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "dry run" in dry.stdout and "would " in dry.stdout
    assert snapshot(direct, database) != before  # a dry run writes nothing
    done = restore(g, database)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 conflict(s)" in done.stdout
    after = snapshot(direct, database)
    assert after.keys() == before.keys()
    for key in before:
        assert after[key] == before[key], f"_id {key} differs after the restore"
    # Twice: nothing to do, and it says so.
    again = restore(g, database)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "restored 0 document(s)" in again.stdout
    assert "restored before" in again.stdout
    assert snapshot(direct, database) == before
    # Audited under the operator's name.
    # (the audit file is written by its own thread: wait for the line)
    actions = wait_until(lambda: [r for r in g.audit_records()
                                  if r.get("operator_action") == "restore"], 5,
                         "the restore's audit record")
    assert actions[0]["by"] == "alice"


def test_changes_after_the_journaled_write_are_conflicts_left_alone(setup):
    g, direct, database = setup
    seed(direct, database, 4)
    family = g.client()[database].family
    family.delete_one({"_id": 1})
    family.update_one({"_id": 2}, {"$set": {"n": 20}})
    family.delete_one({"_id": 3})
    wait_journaled(g, database, 3)
    # Changed over the direct connection, after the journaled writes.
    direct[database].family.insert_one({"_id": 1, "recreated": True})
    direct[database].family.update_one({"_id": 2}, {"$set": {"n": 21}})
    done = restore(g, database)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.count("conflict ") == 2, done.stdout
    assert "2 conflict(s) left alone" in done.stdout
    now = {bson.decode(d.raw)["_id"]: bson.decode(d.raw) for d in direct[database].family.find()}
    assert now[1] == {"_id": 1, "recreated": True}  # left alone
    assert now[2]["n"] == 21                         # left alone
    assert now[3]["n"] == 3                          # restored
    # --force overwrites them with the before-images.
    forced = restore(g, database, "--force")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    now = {bson.decode(d.raw)["_id"]: bson.decode(d.raw) for d in direct[database].family.find()}
    assert now[1]["n"] == 1 and now[2]["n"] == 2


def test_journal_lists_entries_with_a_summary_and_names_the_proxy(setup):
    g, direct, database = setup
    seed(direct, database, 4)
    family = g.client(appName="loop")[database].family
    for i in (1, 2):
        family.delete_one({"_id": i})
    wait_journaled(g, database, 2)
    listed = ctl(g, "journal", "--ns", f"{database}.family")
    assert listed.returncode == 0, listed.stderr
    assert f"clients at 127.0.0.1:{g.port}" in listed.stdout
    assert "NAMESPACE" in listed.stdout and "BY OPERATION" in listed.stdout
    assert listed.stdout.count(f"{database}.family") >= 3  # summary + two entries
    assert "app=loop" in listed.stdout
    assert "delete 2" in listed.stdout
    # Bad usage is 2, with the reason.
    bad = ctl(g, "journal", "--since", "yesterday-ish")
    assert bad.returncode == 2 and "--since" in bad.stderr, bad.stderr
    assert ctl(g, "restore").returncode == 2


def test_export_is_read_by_a_real_bson_reader(setup, tmp_path):
    g, direct, database = setup
    seed(direct, database, 5)
    before = snapshot(direct, database)
    g.client()[database].family.delete_many({"kind": "odd"})
    wait_journaled(g, database, 3)
    out = tmp_path / "dump"
    exported = ctl(g, "journal", "export", "--ns", f"{database}.family", "--out", str(out))
    assert exported.returncode == 0, exported.stdout + exported.stderr
    with open(out / database / "family.bson", "rb") as f:
        docs = list(bson.decode_file_iter(f, codec_options=bson.CodecOptions(
            document_class=RawBSONDocument)))
    assert sorted(bson.decode(d.raw)["_id"] for d in docs) == [1, 3, 5]
    for d in docs:
        assert d.raw == before[bson.decode(d.raw)["_id"]]
    meta = json.loads((out / database / "family.metadata.json").read_text())
    assert meta["collectionName"] == "family"


def test_a_report_that_does_not_read_marks_nothing(setup):
    g, direct, database = setup
    seed(direct, database, 3)
    g.client()[database].family.delete_one({"_id": 1})
    data = wait_journaled(g, database, 1)
    row = data["rows"][0]["row"]
    from hold_helpers import ApiError
    with pytest.raises(ApiError) as refused:
        g.admin.request("POST", "/api/journal/restored", {"by": "mallory", "rows": [row], "app": 5})
    assert refused.value.status == 400
    done = restore(g, database)  # still restorable: nothing was marked
    assert done.returncode == 0 and "inserted 1" in done.stdout, done.stdout
