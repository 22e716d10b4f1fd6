"""The driver-matrix scenario for pymongo.

    python scenario.py URI DATABASE

Prints one JSON line per step and exits non-zero on the first mismatch.
tests/integration/test_driver_matrix.py runs it through mongoguard and
approves the held delete of the last step."""

from __future__ import annotations

import json
import sys
import time

import pymongo
from pymongo.errors import OperationFailure

# Longer than the test takes to approve the hold: the held delete must come
# back with the server's answer, not a client-side timeout.
SOCKET_TIMEOUT_MS = 60_000


def emit(**fields) -> None:
    print(json.dumps(fields), flush=True)


def check(ok: bool, what: str) -> None:
    if not ok:
        print(f"pymongo scenario: {what}", file=sys.stderr, flush=True)
        sys.exit(1)


def main() -> None:
    if len(sys.argv) != 3:
        print("usage: scenario.py URI DATABASE", file=sys.stderr)
        sys.exit(2)
    uri, db_name = sys.argv[1], sys.argv[2]
    emit(step="version", driver="pymongo", version=pymongo.version)

    client = pymongo.MongoClient(uri, appname="matrix-pymongo", retryWrites=False,
                                 socketTimeoutMS=SOCKET_TIMEOUT_MS,
                                 serverSelectionTimeoutMS=15_000)
    db = client[db_name]

    # (1) CRUD
    people = db.people
    ins = people.insert_many([{"_id": i, "name": f"p{i}", "age": 10 * i} for i in range(1, 6)])
    check(len(ins.inserted_ids) == 5, f"insert_many: {ins.inserted_ids}")
    ids = [d["_id"] for d in people.find({"age": {"$gte": 30}}).sort("_id", 1)]
    check(ids == [3, 4, 5], f"find age >= 30: {ids}")
    upd = people.update_one({"_id": 2}, {"$set": {"age": 99}})
    check(upd.matched_count == 1 and upd.modified_count == 1, f"update_one: {upd.raw_result}")
    dele = people.delete_one({"_id": 1})
    check(dele.deleted_count == 1, f"delete_one: {dele.raw_result}")
    check(people.find_one({"_id": 2})["age"] == 99, "update_one did not stick")
    remaining = people.count_documents({})
    check(remaining == 4, f"count after CRUD: {remaining}")
    emit(step="crud", inserted=len(ins.inserted_ids), found=ids, matched=upd.matched_count,
         modified=upd.modified_count, deleted=dele.deleted_count, remaining=remaining)

    # (2) deleteMany({}) is refused by mongoguard
    prefix = f"mongoguard: delete on {db_name}.people blocked by rule 'no-unfiltered-writes'"
    try:
        people.delete_many({})
    except OperationFailure as e:
        errmsg = (e.details or {}).get("errmsg", str(e))
        check(e.code == 13, f"delete_many({{}}): code {e.code}: {e.details}")
        check(errmsg.startswith(prefix), f"delete_many({{}}): errmsg {errmsg!r}")
        code = e.code
    else:
        check(False, "delete_many({}) succeeded; it must be blocked")
    after = people.count_documents({})
    check(after == 4, f"count after the blocked delete_many: {after}")
    emit(step="blocked", code=code, errmsg=errmsg, remaining=after)

    # (3) a held delete, approved by the test through the admin API
    held = db.held
    held.insert_many([{"_id": 1}, {"_id": 2}])
    emit(step="hold-start", ns=f"{db_name}.held")
    started = time.monotonic()
    hd = held.delete_one({"_id": 1})
    check(hd.deleted_count == 1, f"held delete_one: {hd.raw_result}")
    emit(step="held-delete", deletedCount=hd.deleted_count,
         waitedMs=int((time.monotonic() - started) * 1000))
    client.close()
    emit(step="done")


if __name__ == "__main__":
    main()
