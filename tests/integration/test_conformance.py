"""Conformance: the proxy must be invisible to a driver.

Each scenario below runs twice with pymongo, once straight against the
backend and once through the proxy, each time in a fresh database, and
every step's outcome (a result or an error) is recorded. The two records
must be identical, compared structurally with BSON types and key order
kept (Int64 is not int, {a, b} is not {b, a}).

Only what legitimately differs between two runs is normalised: the
database name (each run has its own), collection UUIDs, cursor ids (only
"open" or "exhausted" is kept), server clock fields, and Go pointer values
that FerretDB prints in some error messages. ObjectIds are made
by the scenarios themselves so both runs insert the same ones.

Scenarios avoid shapes a default policy may refuse (unfiltered deletes,
drops of whole collections or databases through the proxy); those have
their own tests. Clean-up goes through the direct connection.

FerretDB is slow at multi-document updates (each matched document costs a
pass over the collection), so update scenarios use small collections.
"""

from __future__ import annotations

import datetime
import hashlib
import re
from typing import Any, Callable

import bson
import pymongo
import pytest
from bson import Binary, Decimal128, Int64, ObjectId, Regex
from bson.codec_options import CodecOptions
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import PyMongoError

GO_POINTER = re.compile(r"0x[0-9a-f]{8,}")
VOLATILE_KEYS = {"localTime", "operationTime", "$clusterTime", "uuid", "connectionId"}


def oid(i: int) -> ObjectId:
    """A deterministic ObjectId, the same in both runs."""
    return ObjectId(i.to_bytes(12, "big"))


def canon(value: Any, db_name: str) -> Any:
    """A comparable tree: types kept, dict order kept, run-specific bits neutralised."""
    if isinstance(value, dict):
        out = []
        for k, v in value.items():
            if k in VOLATILE_KEYS:
                out.append((k, "<volatile>"))
            elif k == "id" and isinstance(v, int) and "firstBatch" in value or (
                    k == "id" and "nextBatch" in value):
                out.append((k, "<open cursor>" if v else 0))
            else:
                out.append((k, canon(v, db_name)))
        return ("dict", out)
    if isinstance(value, (list, tuple)):
        return ("list", [canon(v, db_name) for v in value])
    if isinstance(value, str):
        # FerretDB prints Go pointers in some "not implemented" messages.
        return ("str", GO_POINTER.sub("0x<ptr>", value.replace(db_name, "<db>")))
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, Int64):
        return ("int64", int(value))
    if isinstance(value, int):
        return ("int", value)
    if isinstance(value, float):
        return ("double", "nan" if value != value else value)
    if isinstance(value, (bytes, Binary)):
        sub = value.subtype if isinstance(value, Binary) else 0
        if len(value) > 1024:
            return ("binary", sub, len(value), hashlib.sha256(bytes(value)).hexdigest())
        return ("binary", sub, bytes(value))
    if isinstance(value, (ObjectId, Decimal128, datetime.datetime, Regex, re.Pattern)) or (
            value is None):
        return (type(value).__name__, str(value))
    return (type(value).__name__, repr(value))


def error_record(e: PyMongoError) -> dict:
    rec: dict[str, Any] = {"error": type(e).__name__}
    details = getattr(e, "details", None)
    if details:
        rec["details"] = dict(details)
    else:
        rec["message"] = str(e)
    code = getattr(e, "code", None)
    if code is not None:
        rec["code"] = code
    return rec


EXPECT_ERROR = " (error)"
UNSUPPORTED = " (unsupported by FerretDB)"
NOT_ENFORCED = " (not enforced by FerretDB)"
EITHER_WAY = (UNSUPPORTED.strip(), NOT_ENFORCED.strip())


class Recorder:
    """Runs steps, records each outcome, and hands the result back.

    A step's label says what it must do, so that two runs failing the same
    way cannot pass unnoticed: a label ending in "(error)" must fail, one
    ending in "(unsupported by FerretDB)" may go either way (it fails on the
    test backend and is compared as an error), as may one ending in "(not
    enforced by FerretDB)"; every other step must succeed.
    """

    def __init__(self, db: Database):
        self.db = db
        self.steps: list[tuple[str, Any]] = []

    def __call__(self, label: str, fn: Callable[[], Any], code_only: bool = False) -> Any:
        """code_only: compare only an error's code, for messages naming internals."""
        try:
            result = fn()
        except PyMongoError as e:
            if not (label.endswith(EXPECT_ERROR.strip()) or label.endswith(EITHER_WAY)):
                raise AssertionError(f"step {label!r} failed on {self.db.name}: {e!r}") from e
            record = error_record(e)
            if code_only:
                record = {"error": record["error"], "code": record.get("code"),
                          "codeName": (getattr(e, "details", None) or {}).get("codeName")}
            self.steps.append((label, record))
            return e
        if label.endswith(EXPECT_ERROR.strip()):
            raise AssertionError(f"step {label!r} should have failed on {self.db.name}, "
                                 f"returned {str(result)[:500]}")
        self.steps.append((label, result))
        return result

    def canonical(self) -> list:
        return [(label, canon(value, self.db.name)) for label, value in self.steps]


SCENARIOS: dict[str, Callable[[Recorder], None]] = {}


def scenario(fn: Callable[[Recorder], None]) -> Callable[[Recorder], None]:
    SCENARIOS[fn.__name__] = fn
    return fn


def result_of(r: Any) -> Any:
    """pymongo result objects → the server's own answer where pymongo keeps it."""
    if hasattr(r, "raw_result"):
        return {"raw": r.raw_result, "acknowledged": r.acknowledged}
    if hasattr(r, "bulk_api_result"):
        return r.bulk_api_result
    if hasattr(r, "inserted_ids"):
        return {"inserted_ids": r.inserted_ids, "acknowledged": r.acknowledged}
    if hasattr(r, "inserted_id"):
        return {"inserted_id": r.inserted_id, "acknowledged": r.acknowledged}
    return r


def sample_docs(n: int, start: int = 0) -> list[dict]:
    colours = ["red", "green", "blue", "black", "white"]
    return [{
        "_id": oid(i),
        "i": i,
        "i64": Int64(i * 1_000_000_007),
        "f": i / 7,
        "code": f"c{i:03d}",
        "colour": colours[i % len(colours)],
        "tags": [f"t{i % 3}", f"t{i % 4}"],
        "nested": {"a": i % 6, "b": {"c": f"c{i % 2}"}},
        "when": datetime.datetime(2024, 1, 1) + datetime.timedelta(hours=i),
        "maybe": None if i % 5 == 0 else i % 5,
        **({"sparse": True} if i % 10 == 0 else {}),
    } for i in range(start, start + n)]


def find_all(coll: Collection, flt: dict | None = None, **kw) -> list:
    return list(coll.find(flt or {}, **kw).sort("_id", 1))


# --- scenarios ---------------------------------------------------------------


@scenario
def insert_one_and_find_one(rec: Recorder) -> None:
    c = rec.db.people
    r = rec("insert_one", lambda: result_of(c.insert_one({"_id": oid(1), "name": "Ada", "n": 1})))
    assert r["inserted_id"] == oid(1)
    rec("insert_one int id", lambda: result_of(c.insert_one({"_id": 7, "name": "int id"})))
    rec("insert_one string id", lambda: result_of(c.insert_one({"_id": "s", "v": [1, 2.5]})))
    rec("find_one", lambda: c.find_one({"_id": oid(1)}))
    rec("find_one missing", lambda: c.find_one({"_id": oid(2)}))
    rec("duplicate key (error)", lambda: c.insert_one({"_id": oid(1), "name": "again"}))
    rec("raw insert command with a duplicate", lambda: rec.db.command(
        "insert", "people", documents=[{"_id": oid(3), "x": 1}, {"_id": oid(1)}], ordered=False))
    rec("all", lambda: find_all(c))


@scenario
def insert_many_100k(rec: Recorder) -> None:
    c = rec.db.big
    n = 100_000
    docs = [{"_id": oid(i), "i": i, "g": i % 10, "s": f"doc-{i:06d}"} for i in range(n)]
    r = rec("insert_many 100k", lambda: c.insert_many(docs))  # the driver splits the batches
    assert len(r.inserted_ids) == n
    rec("inserted ids", lambda: hashlib.sha256(
        b"".join(x.binary for x in r.inserted_ids)).hexdigest())
    assert rec("count_documents", lambda: c.count_documents({})) == n
    rec("estimated_document_count", lambda: c.estimated_document_count())
    rec("count g=3", lambda: c.count_documents({"g": 3}))
    rec("count i<1234", lambda: c.count_documents({"i": {"$lt": 1234}}))

    def digest():
        h = hashlib.sha256()
        count = 0
        for d in c.find({}, batch_size=5000).sort("_id", 1):
            h.update(bson.encode(d))
            count += 1
        return {"count": count, "sha256": h.hexdigest()}

    assert rec("all documents", digest)["count"] == n
    rec("insert_many unordered with duplicates (error)", lambda: c.insert_many(
        [{"_id": oid(n + 1)}, {"_id": oid(5)}, {"_id": oid(n + 2)}, {"_id": oid(6)}],
        ordered=False))
    rec("insert_many ordered with duplicate (error)", lambda: c.insert_many(
        [{"_id": oid(n + 3)}, {"_id": oid(7)}, {"_id": oid(n + 4)}]))
    # Several explicitly batched insert_many calls into a second collection.
    for b in range(4):
        part = [{"_id": oid(b * 2500 + i), "b": b} for i in range(2500)]
        rec(f"batch {b}", lambda part=part: len(rec.db.batched.insert_many(part).inserted_ids))
    rec("batched count", lambda: rec.db.batched.count_documents({}))
    rec("delete_many g=4", lambda: result_of(c.delete_many({"g": 4})))
    rec("count after delete", lambda: c.count_documents({}))


@scenario
def find_filters_sort_projection(rec: Recorder) -> None:
    c = rec.db.things
    rec("insert", lambda: len(c.insert_many(sample_docs(200)).inserted_ids))
    filters = {
        "eq": {"colour": "red"},
        "gt_lt": {"i": {"$gt": 20, "$lte": 40}},
        "in": {"colour": {"$in": ["blue", "white"]}},
        "nin": {"colour": {"$nin": ["blue", "white"]}, "i": {"$lt": 30}},
        "and_or": {"$or": [{"i": {"$lt": 5}}, {"$and": [{"colour": "green"}, {"i": {"$gt": 190}}]}]},
        "nested": {"nested.b.c": "c1", "nested.a": 3},
        "array_contains": {"tags": "t2"},
        "all": {"tags": {"$all": ["t0", "t1"]}},
        "elemMatch": {"tags": {"$elemMatch": {"$eq": "t3"}}},
        "size": {"tags": {"$size": 2}, "i": {"$lt": 3}},
        "exists": {"sparse": {"$exists": True}},
        "not_exists": {"sparse": {"$exists": False}, "i": {"$lt": 15}},
        "null": {"maybe": None},
        "regex": {"colour": {"$regex": "^bl"}},
        "regex_options": {"colour": {"$regex": "^B", "$options": "i"}},
        "type": {"f": {"$type": "double"}, "i": {"$lt": 3}},
        "mod": {"i": {"$mod": [17, 3]}},
        "ne": {"nested.a": {"$ne": 0}, "i": {"$lt": 12}},
        "not": {"i": {"$not": {"$gt": 5}}},
        "nor": {"$nor": [{"colour": "red"}, {"i": {"$gt": 10}}]},
        "date": {"when": {"$gte": datetime.datetime(2024, 1, 5)}, "i": {"$lt": 100}},
        "int64": {"i64": {"$gt": Int64(150 * 1_000_000_007)}},
        "expr": {"$expr": {"$gt": ["$i", 195]}},
        "id": {"_id": oid(42)},
        "no match": {"colour": "purple"},
    }
    for name, flt in filters.items():
        label = f"filter {name}" + (UNSUPPORTED if name == "expr" else "")
        rec(label, lambda flt=flt: find_all(c, flt))
    rec("sort desc", lambda: list(c.find({"i": {"$lt": 50}}).sort("i", -1)))
    rec("sort compound", lambda: list(
        c.find({}, {"colour": 1, "i": 1}).sort([("colour", 1), ("i", -1)])))
    rec("sort nested", lambda: list(c.find({}, {"nested": 1}).sort([("nested.a", 1), ("_id", 1)])))
    rec("skip limit", lambda: list(c.find().sort("i", 1).skip(17).limit(9)))
    rec("negative limit", lambda: list(c.find().sort("i", 1).limit(-3)))
    rec("projection include", lambda: find_all(c, {"i": {"$lt": 10}}, projection={"colour": 1}))
    rec("projection no id", lambda: find_all(
        c, {"i": {"$lt": 10}}, projection={"_id": 0, "i": 1, "nested.b": 1}))
    rec("projection exclude", lambda: find_all(
        c, {"i": {"$lt": 10}}, projection={"tags": 0, "nested": 0}))
    rec("projection mixed (error)", lambda: find_all(c, {}, projection={"tags": 0, "i": 1}))
    rec("projection slice (unsupported by FerretDB)", lambda: find_all(c, {"i": {"$lt": 4}}, projection={"tags": {"$slice": 1}}))
    rec("projection elemMatch (unsupported by FerretDB)", lambda: find_all(
        c, {"i": {"$lt": 4}}, projection={"tags": {"$elemMatch": {"$eq": "t1"}}}))
    rec("bad operator (error)", lambda: find_all(c, {"i": {"$bogus": 1}}))
    rec("raw find command", lambda: rec.db.command(
        "find", "things", filter={"colour": "black"}, sort={"i": -1}, projection={"i": 1},
        limit=5))


@scenario
def cursor_with_many_getmores(rec: Recorder) -> None:
    c = rec.db.cursor
    rec("insert", lambda: len(c.insert_many(
        [{"_id": oid(i), "i": i, "pad": "p" * (i % 50)} for i in range(1000)]).inserted_ids))
    docs = rec("find batch_size=7", lambda: list(c.find({}, batch_size=7).sort("i", 1)))
    assert [d["i"] for d in docs] == list(range(1000))
    rec("find filter batch_size=3 limit=50", lambda: list(
        c.find({"i": {"$gte": 500}}, batch_size=3, limit=50).sort("i", 1)))

    def raw_batches():
        """find + getMore by hand: every batch's size and whether the cursor is still open."""
        reply = rec.db.command("find", "cursor", filter={}, sort={"i": 1}, batchSize=10)
        cursor = reply["cursor"]
        ns = cursor["ns"]
        batches = [[d["i"] for d in cursor["firstBatch"]]]
        replies = [reply]
        cursor_id = cursor["id"]
        while cursor_id:
            more = rec.db.command("getMore", cursor_id, collection=ns.split(".", 1)[1],
                                  batchSize=37)
            replies.append(more)
            batches.append([d["i"] for d in more["cursor"]["nextBatch"]])
            cursor_id = more["cursor"]["id"]
        return {"batch_sizes": [len(b) for b in batches],
                "ids": [i for b in batches for i in b], "replies": replies[:3] + replies[-1:]}

    r = rec("find+getMore by hand", raw_batches)
    assert len(r["batch_sizes"]) > 10 and r["ids"] == list(range(1000))

    def kill_cursor():
        reply = rec.db.command("find", "cursor", filter={}, batchSize=2)
        cid = reply["cursor"]["id"]
        killed = rec.db.command("killCursors", "cursor", cursors=[cid])
        return {k: ([bool(x) for x in v] if isinstance(v, list) else v) for k, v in killed.items()}

    rec("killCursors", kill_cursor)

    def get_more_after_kill():
        reply = rec.db.command("find", "cursor", filter={}, batchSize=2)
        cid = reply["cursor"]["id"]
        rec.db.command("killCursors", "cursor", cursors=[cid])
        return rec.db.command("getMore", cid, collection="cursor")

    # The error names the cursor id, which differs between runs: keep the code.
    def code_only():
        try:
            return get_more_after_kill()
        except pymongo.errors.OperationFailure as e:
            return {"code": e.code, "codeName": (e.details or {}).get("codeName")}

    rec("getMore on a killed cursor", code_only)


@scenario
def updates_and_replace(rec: Recorder) -> None:
    c = rec.db.upd
    rec("insert", lambda: len(c.insert_many(sample_docs(60)).inserted_ids))
    rec("update_one $set", lambda: result_of(c.update_one({"i": 3}, {"$set": {"colour": "pink"}})))
    rec("update_one no match", lambda: result_of(c.update_one({"i": 999}, {"$set": {"x": 1}})))
    rec("update_one upsert", lambda: result_of(
        c.update_one({"_id": oid(500)}, {"$set": {"i": 500}}, upsert=True)))
    rec("update_one no change", lambda: result_of(c.update_one({"i": 3}, {"$set": {"colour": "pink"}})))
    rec("update_many $inc", lambda: result_of(c.update_many({"colour": "red"}, {"$inc": {"i": 1000}})))
    rec("update_many $unset $push", lambda: result_of(c.update_many(
        {"nested.a": 2}, {"$unset": {"maybe": ""}, "$push": {"tags": "pushed"}})))
    rec("update_many $mul $min $max $rename", lambda: result_of(c.update_many(
        {"i": {"$lt": 10}}, {"$mul": {"f": 2}, "$min": {"nested.a": 1}, "$rename": {"code": "code2"}})))
    rec("update_many $addToSet $pull on one path (error)", lambda: result_of(c.update_many(
        {"i": {"$lt": 20}}, {"$addToSet": {"tags": "t9"}, "$pull": {"tags": "t0"}})))
    rec("update_many $currentDate-free $setOnInsert upsert", lambda: result_of(c.update_many(
        {"_id": oid(600)}, {"$setOnInsert": {"new": True}, "$set": {"i": 600}}, upsert=True)))
    rec("update arrayFilters (unsupported by FerretDB)", lambda: result_of(c.update_many(
        {"i": {"$lt": 6}}, {"$set": {"tags.$[t]": "T"}}, array_filters=[{"t": "t1"}])))
    rec("update positional (unsupported by FerretDB)", lambda: result_of(c.update_one({"tags": "t2"}, {"$set": {"tags.$": "P"}})))
    rec("update pipeline (unsupported by FerretDB)", lambda: result_of(c.update_many(
        {"i": {"$lt": 3}}, [{"$set": {"sum": {"$add": ["$i", 1]}}}])))
    rec("update bad operator (error)", lambda: c.update_one({"i": 4}, {"$frob": {"a": 1}}))
    rec("update _id (error)", lambda: c.update_one({"i": 4}, {"$set": {"_id": 5}}))
    rec("replace_one", lambda: result_of(c.replace_one({"i": 5}, {"replaced": True, "i": 5})))
    rec("replace_one upsert", lambda: result_of(
        c.replace_one({"_id": oid(700)}, {"replaced": "new"}, upsert=True)))
    rec("replacement with a nested $ key (error)", lambda: c.replace_one(
        {"i": 6}, {"a": {"$set": 1}}))
    rec("raw update command", lambda: rec.db.command("update", "upd", updates=[
        {"q": {"i": 7}, "u": {"$set": {"raw": 1}}},
        {"q": {"i": {"$in": [8, 9]}}, "u": {"$set": {"raw": 2}}, "multi": True},
        {"q": {"_id": oid(800)}, "u": {"$set": {"raw": 3}}, "upsert": True},
    ]))
    rec("bulk_write", lambda: result_of(c.bulk_write([
        pymongo.InsertOne({"_id": oid(900), "bulk": 1}),
        pymongo.UpdateOne({"i": 10}, {"$set": {"bulk": 2}}),
        pymongo.UpdateMany({"i": {"$in": [11, 12]}}, {"$set": {"bulk": 3}}),
        pymongo.ReplaceOne({"i": 13}, {"bulk": 4}),
        pymongo.DeleteOne({"i": 14}),
        pymongo.DeleteMany({"i": {"$in": [15, 16]}}),
    ])))
    rec("final state", lambda: find_all(c))


@scenario
def deletes(rec: Recorder) -> None:
    c = rec.db.dels
    rec("insert", lambda: len(c.insert_many(sample_docs(300)).inserted_ids))
    rec("delete_one", lambda: result_of(c.delete_one({"i": 3})))
    rec("delete_one no match", lambda: result_of(c.delete_one({"i": 3})))
    rec("delete_one by _id", lambda: result_of(c.delete_one({"_id": oid(4)})))
    rec("delete_many colour", lambda: result_of(c.delete_many({"colour": "green"})))
    rec("delete_many range", lambda: result_of(c.delete_many({"i": {"$gte": 250}})))
    rec("delete_many no match", lambda: result_of(c.delete_many({"colour": "purple"})))
    for i in range(20, 40):  # a loop of single deletes, kept short
        rec(f"delete_one loop {i}", lambda i=i: result_of(c.delete_one({"_id": oid(i)})))
    rec("raw delete command", lambda: rec.db.command("delete", "dels", deletes=[
        {"q": {"i": 50}, "limit": 1}, {"q": {"colour": "blue", "i": {"$lt": 100}}, "limit": 0}]))
    rec("delete bad filter (error)", lambda: c.delete_many({"i": {"$bogus": 1}}))
    rec("remaining", lambda: find_all(c))
    rec("count", lambda: c.count_documents({}))


@scenario
def find_and_modify(rec: Recorder) -> None:
    c = rec.db.fam
    rec("insert", lambda: len(c.insert_many(sample_docs(50)).inserted_ids))
    after = pymongo.ReturnDocument.AFTER
    rec("find_one_and_update before", lambda: c.find_one_and_update(
        {"i": 1}, {"$set": {"x": 1}}))
    rec("find_one_and_update after", lambda: c.find_one_and_update(
        {"i": 2}, {"$inc": {"i": 100}}, return_document=after))
    rec("find_one_and_update sort projection (unsupported by FerretDB)", lambda: c.find_one_and_update(
        {"colour": "red"}, {"$set": {"first_red": True}}, sort=[("i", -1)],
        projection={"i": 1, "first_red": 1}, return_document=after))
    rec("find_one_and_update no match", lambda: c.find_one_and_update(
        {"i": 999}, {"$set": {"x": 1}}))
    rec("find_one_and_update upsert", lambda: c.find_one_and_update(
        {"_id": oid(777)}, {"$set": {"i": 777}}, upsert=True, return_document=after))
    rec("find_one_and_replace", lambda: c.find_one_and_replace(
        {"i": 3}, {"replaced": True}, return_document=after))
    rec("find_one_and_delete", lambda: c.find_one_and_delete({"i": 4}))
    rec("find_one_and_delete sort projection (unsupported by FerretDB)", lambda: c.find_one_and_delete(
        {"colour": "blue"}, sort=[("i", 1)], projection={"colour": 1}))
    rec("find_one_and_delete no match", lambda: c.find_one_and_delete({"i": 4}))
    for i in range(10, 20):  # the seed incident's shape, kept short
        rec(f"find_one_and_delete loop {i}", lambda i=i: c.find_one_and_delete({"_id": oid(i)}))
    rec("raw findAndModify", lambda: rec.db.command(
        "findAndModify", "fam", query={"i": 5}, update={"$set": {"raw": True}}, new=True))
    rec("raw findAndModify remove", lambda: rec.db.command(
        "findAndModify", "fam", query={"i": 6}, remove=True))
    rec("raw findAndModify bad (error)", lambda: rec.db.command(
        "findAndModify", "fam", query={"i": 7}, remove=True, update={"$set": {"a": 1}}))
    rec("final state", lambda: find_all(c))


@scenario
def aggregate(rec: Recorder) -> None:
    c = rec.db.agg
    rec("insert", lambda: len(c.insert_many(sample_docs(120)).inserted_ids))
    rec.db.other.insert_many([{"_id": col, "hex": h} for col, h in
                              [("red", "#f00"), ("green", "#0f0"), ("blue", "#00f")]])
    pipelines = {
        "match sort limit": [{"$match": {"i": {"$gte": 100}}}, {"$sort": {"i": -1}}, {"$limit": 5}],
        "group" + UNSUPPORTED: [{"$group": {"_id": "$colour", "n": {"$sum": 1}, "total": {"$sum": "$i"},
                              "avg": {"$avg": "$i"}, "max": {"$max": "$i"}}},
                  {"$sort": {"_id": 1}}],
        # FerretDB 1.24 answers 0 for the second $sum: wrong, but the same both ways.
        "group count and sum": [{"$group": {"_id": "$colour", "n": {"$sum": 1},
                                            "total": {"$sum": "$i"}}}, {"$sort": {"_id": 1}}],
        "group sum": [{"$group": {"_id": "$colour", "total": {"$sum": "$i"}}}, {"$sort": {"_id": 1}}],
        "project addFields" + UNSUPPORTED: [{"$match": {"i": {"$lt": 5}}},
                              {"$project": {"i": 1, "double": {"$multiply": ["$i", 2]}}},
                              {"$addFields": {"s": {"$concat": ["n", "-", "x"]}}},
                              {"$sort": {"i": 1}}],
        "unwind": [{"$match": {"i": {"$lt": 4}}}, {"$unwind": "$tags"}, {"$sort": {"i": 1, "tags": 1}}],
        "count": [{"$match": {"colour": "red"}}, {"$count": "reds"}],
        "skip": [{"$sort": {"i": 1}}, {"$skip": 115}, {"$project": {"i": 1}}],
        "unset": [{"$match": {"i": 1}}, {"$unset": ["tags", "nested"]}],
        "group by nested" + UNSUPPORTED: [{"$group": {"_id": "$nested.a", "ids": {"$push": "$i"}}},
                            {"$sort": {"_id": 1}}],
        "lookup" + UNSUPPORTED: [{"$match": {"i": {"$lt": 3}}},
                   {"$lookup": {"from": "other", "localField": "colour", "foreignField": "_id",
                                "as": "colour_info"}}, {"$sort": {"i": 1}}],
        "facet" + UNSUPPORTED: [{"$facet": {"a": [{"$count": "n"}], "b": [{"$limit": 1}, {"$project": {"i": 1}}]}}],
        # (a $project after $collStats makes FerretDB drop the connection)
        "collStats count": [{"$collStats": {"count": {}}}],
        "bad stage" + EXPECT_ERROR: [{"$bogusStage": {}}],
    }
    for name, pipeline in pipelines.items():
        rec(f"aggregate {name}", lambda p=pipeline: list(c.aggregate(p)))
    rec("aggregate batchSize 4", lambda: list(c.aggregate(
        [{"$sort": {"i": 1}}, {"$project": {"i": 1}}], batchSize=4)))
    rec("raw aggregate", lambda: rec.db.command(
        "aggregate", "agg", pipeline=[{"$match": {"i": {"$lt": 3}}}, {"$sort": {"i": 1}}],
        cursor={}))


@scenario
def indexes(rec: Recorder) -> None:
    c = rec.db.idx
    rec("insert", lambda: len(c.insert_many(sample_docs(100)).inserted_ids))
    rec("create_index single", lambda: c.create_index("i"))
    rec("create_index compound named", lambda: c.create_index(
        [("colour", 1), ("i", -1)], name="colour_i"))
    rec("create_index unique", lambda: c.create_index("i64", unique=True))
    rec("create_index nested", lambda: c.create_index("nested.b.c"))
    rec("create_index again (no-op)", lambda: c.create_index("i"))
    # FerretDB's message names its SQLite index, which differs per database.
    rec("create_index unique on duplicates (error)", lambda: c.create_index("colour", unique=True),
        code_only=True)
    rec("create_index same name other key (error)", lambda: c.create_index("f", name="colour_i"))
    rec("raw createIndexes", lambda: rec.db.command(
        "createIndexes", "idx", indexes=[{"key": {"when": -1}, "name": "when_desc"}]))
    rec("list_indexes", lambda: list(c.list_indexes()))
    rec("index_information", lambda: c.index_information())
    rec("unique violation (error)", lambda: c.insert_one({"_id": oid(1000), "i64": Int64(1_000_000_007)}))
    rec("find with hint", lambda: find_all(c, {"i": {"$lt": 3}}, hint="i_1"))
    rec("drop_index by name", lambda: c.drop_index("colour_i"))
    rec("drop_index by key", lambda: c.drop_index([("nested.b.c", 1)]))
    rec("drop_index missing (error)", lambda: c.drop_index("nope_1"))
    rec("drop _id index (error)", lambda: c.drop_index("_id_"))
    rec("list_indexes after drop", lambda: list(c.list_indexes()))


@scenario
def collections(rec: Recorder) -> None:
    db = rec.db
    rec("create_collection", lambda: db.create_collection("alpha").name)
    rec("create_collection capped", lambda: db.create_collection(
        "capped", capped=True, size=1 << 20, max=100).name)
    rec("create existing (error)", lambda: db.create_collection("alpha"))
    rec("implicit create", lambda: result_of(db.beta.insert_one({"_id": 1})))
    rec("list_collection_names", lambda: sorted(db.list_collection_names()))
    rec("list_collections", lambda: sorted(db.list_collections(), key=lambda d: d["name"]))
    rec("list_collections filter", lambda: list(db.list_collections(filter={"name": "capped"})))
    rec("list_collections nameOnly", lambda: sorted(
        db.command("listCollections", nameOnly=True)["cursor"]["firstBatch"],
        key=lambda d: d["name"]))
    rec("options", lambda: db.capped.options())
    rec("collStats count", lambda: {k: v for k, v in db.command("collStats", "beta").items()
                                    if k in ("ns", "count", "capped", "nindexes", "ok")})
    rec("rename", lambda: db.beta.rename("gamma"))
    rec("names after rename", lambda: sorted(db.list_collection_names()))
    rec("list_databases has ours", lambda: db.name in db.client.list_database_names())


@scenario
def large_documents(rec: Recorder) -> None:
    c = rec.db.large
    size = int(15.9 * 1024 * 1024)
    text = "".join(chr(ord("a") + (i % 26)) for i in range(1024)) * (size // 1024)
    blob = Binary(bytes((i * 31) & 0xFF for i in range(256)) * (size // 256))
    rec("insert 15.9 MB string", lambda: result_of(c.insert_one({"_id": 1, "text": text})))
    rec("insert 15.9 MB binary", lambda: result_of(c.insert_one({"_id": 2, "blob": blob})))
    rec("bson size", lambda: [len(bson.encode(d)) for d in c.find().sort("_id", 1)])
    got = rec("read back string", lambda: c.find_one({"_id": 1}))
    assert got["text"] == text
    got = rec("read back binary", lambda: c.find_one({"_id": 2}))
    assert bytes(got["blob"]) == bytes(blob)
    rec("both in one cursor", lambda: list(c.find().sort("_id", 1)))
    rec("project away", lambda: list(c.find({}, {"text": 0, "blob": 0})))
    # A server-side document over 16 MiB: $set that grows the string past the limit.
    rec("grow past 16 MiB" + NOT_ENFORCED, lambda: c.update_one(
        {"_id": 1}, {"$set": {"more": "x" * (1024 * 1024)}}))
    rec("insert_many two big ones", lambda: result_of(c.insert_many(
        [{"_id": 3, "text": text[: size // 2]}, {"_id": 4, "text": text[: size // 2]}])))
    rec("count", lambda: c.count_documents({}))


@scenario
def counts_and_distinct(rec: Recorder) -> None:
    c = rec.db.cnt
    rec("insert", lambda: len(c.insert_many(sample_docs(250)).inserted_ids))
    rec("count_documents all", lambda: c.count_documents({}))
    rec("count_documents filter", lambda: c.count_documents({"colour": "blue"}))
    rec("count_documents skip limit", lambda: c.count_documents({}, skip=10, limit=100))
    rec("count_documents nested", lambda: c.count_documents({"nested.a": {"$in": [1, 2]}}))
    rec("estimated_document_count", lambda: c.estimated_document_count())
    rec("raw count", lambda: rec.db.command("count", "cnt", query={"maybe": None}))
    rec("count on missing collection", lambda: rec.db.nothing.count_documents({}))
    rec("distinct", lambda: sorted(c.distinct("colour")))
    rec("distinct filter", lambda: sorted(c.distinct("colour", {"i": {"$lt": 3}})))
    rec("distinct array", lambda: sorted(c.distinct("tags")))
    rec("distinct nested", lambda: sorted(c.distinct("nested.b.c")))
    rec("raw distinct", lambda: rec.db.command("distinct", "cnt", key="nested.a"))
    rec("distinct missing field", lambda: c.distinct("nope"))


@scenario
def commands_and_errors(rec: Recorder) -> None:
    db = rec.db
    db.seed.insert_one({"_id": 1})
    rec("ping", lambda: db.command("ping"))
    rec("buildInfo version", lambda: db.client.admin.command("buildInfo")["version"])
    rec("hello keys", lambda: sorted(db.client.admin.command("hello")))
    rec("unknown command (error)", lambda: db.command("definitelyNotACommand"))
    rec("dbStats keys", lambda: sorted(db.command("dbStats")))
    rec("listCommands has find", lambda: "find" in db.command("listCommands")["commands"])
    rec("whatsmyuri ok", lambda: db.client.admin.command("whatsmyuri")["ok"])
    rec("getParameter", lambda: db.client.admin.command("getParameter", 1, featureCompatibilityVersion=1))
    rec("explain find keys", lambda: sorted(db.command(
        "explain", {"find": "seed", "filter": {"_id": 1}})))


# --- the test ----------------------------------------------------------------


def run(fn: Callable[[Recorder], None], client: pymongo.MongoClient, name: str) -> list:
    db = client.get_database(name, codec_options=CodecOptions(tz_aware=False))
    rec = Recorder(db)
    fn(rec)
    return rec.canonical()


def first_difference(a: list, b: list) -> str:
    for (la, va), (lb, vb) in zip(a, b):
        if la != lb or va != vb:
            return f"step {la!r}:\n  direct: {str(va)[:2000]}\n  proxy:  {str(vb)[:2000]}"
    return f"different number of steps: {len(a)} vs {len(b)}"


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_same_outcome_direct_and_through_proxy(name, direct_client, proxy_client, proxy, db_name):
    assert proxy_client.address == ("127.0.0.1", proxy.port)
    fn = SCENARIOS[name]
    direct_db, proxy_db = f"{db_name}_d", f"{db_name}_p"
    try:
        direct = run(fn, direct_client, direct_db)
        proxied = run(fn, proxy_client, proxy_db)
        if direct != proxied:
            pytest.fail(first_difference(direct, proxied), pytrace=False)
    finally:
        for n in (direct_db, proxy_db):
            direct_client.drop_database(n)
