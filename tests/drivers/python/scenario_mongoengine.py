"""The driver-matrix scenario for mongoengine (over pymongo).

    python scenario_mongoengine.py URI DATABASE

Prints one JSON line per step and exits non-zero on the first mismatch.
tests/integration/test_driver_matrix.py runs it through mongoguard and
approves the held delete of the last step."""

from __future__ import annotations

import json
import sys
import time

import mongoengine
import pymongo
from mongoengine import Document, IntField, StringField
from pymongo.errors import OperationFailure

# Longer than the test takes to approve the hold: the held delete must come
# back with the server's answer, not a client-side timeout.
SOCKET_TIMEOUT_MS = 60_000


class Person(Document):
    id = IntField(primary_key=True)
    name = StringField()
    age = IntField()
    meta = {"collection": "people"}


class Held(Document):
    id = IntField(primary_key=True)
    meta = {"collection": "held"}


def emit(**fields) -> None:
    print(json.dumps(fields), flush=True)


def check(ok: bool, what: str) -> None:
    if not ok:
        print(f"mongoengine scenario: {what}", file=sys.stderr, flush=True)
        sys.exit(1)


def operation_failure(exc: BaseException | None) -> OperationFailure | None:
    """mongoengine may wrap pymongo's error; find it in the chain."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, OperationFailure):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def main() -> None:
    if len(sys.argv) != 3:
        print("usage: scenario_mongoengine.py URI DATABASE", file=sys.stderr)
        sys.exit(2)
    uri, db_name = sys.argv[1], sys.argv[2]
    emit(step="version", driver="mongoengine", version=mongoengine.__version__,
         pymongo=pymongo.version)

    mongoengine.connect(db=db_name, host=uri, appname="matrix-mongoengine", retryWrites=False,
                        socketTimeoutMS=SOCKET_TIMEOUT_MS, serverSelectionTimeoutMS=15_000)

    # (1) CRUD
    people = Person.objects.insert([Person(id=i, name=f"p{i}", age=10 * i) for i in range(1, 6)])
    check(len(people) == 5, f"insert: {people}")
    ids = [p.id for p in Person.objects(age__gte=30).order_by("id")]
    check(ids == [3, 4, 5], f"find age >= 30: {ids}")
    updated = Person.objects(id=2).update_one(set__age=99)
    check(updated == 1, f"update_one: {updated}")
    deleted = Person.objects(id=1).delete()
    check(deleted == 1, f"delete: {deleted}")
    check(Person.objects.get(id=2).age == 99, "update_one did not stick")
    remaining = Person.objects.count()
    check(remaining == 4, f"count after CRUD: {remaining}")
    emit(step="crud", inserted=len(people), found=ids, matched=updated, modified=updated,
         deleted=deleted, remaining=remaining)

    # (2) Person.objects.delete() is deleteMany({}), refused by mongoguard
    prefix = f"mongoguard: delete on {db_name}.people blocked by rule 'no-unfiltered-writes'"
    try:
        Person.objects.delete()
    except Exception as e:  # noqa: BLE001 - mongoengine may wrap it
        failure = operation_failure(e)
        check(failure is not None, f"Person.objects.delete(): {type(e).__name__}: {e}")
        errmsg = (failure.details or {}).get("errmsg", str(failure))
        check(failure.code == 13, f"Person.objects.delete(): code {failure.code}")
        check(errmsg.startswith(prefix), f"Person.objects.delete(): errmsg {errmsg!r}")
        code = failure.code
    else:
        check(False, "Person.objects.delete() succeeded; it must be blocked")
    after = Person.objects.count()
    check(after == 4, f"count after the blocked delete: {after}")
    emit(step="blocked", code=code, errmsg=errmsg, remaining=after)

    # (3) a held delete, approved by the test through the admin API
    Held.objects.insert([Held(id=1), Held(id=2)])
    emit(step="hold-start", ns=f"{db_name}.held")
    started = time.monotonic()
    held_deleted = Held.objects(id=1).delete()
    check(held_deleted == 1, f"held delete: {held_deleted}")
    emit(step="held-delete", deletedCount=held_deleted,
         waitedMs=int((time.monotonic() - started) * 1000))
    mongoengine.disconnect()
    emit(step="done")


if __name__ == "__main__":
    main()
