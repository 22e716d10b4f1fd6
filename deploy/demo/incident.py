#!/usr/bin/env python3
"""The incident mongoguard exists for, replayed against a running proxy.

A developer, checking production from a Python shell, typed

    for family in Family.objects:
        family.delete()

This script seeds a `family` collection with 2,000 documents over a direct
connection, runs exactly that loop through mongoguard, and shows the loop
stall when the delete budget is spent and the next delete is held. With
--admin it shows the pending hold from the admin API and the `mongoguard
ctl` command to decide it; it then waits for an operator (or rejects the
hold itself with --auto-reject) and prints how many families survived.

    python deploy/demo/incident.py --proxy mongodb://127.0.0.1:27017 \\
        --direct mongodb://127.0.0.1:27018 \\
        [--admin http://127.0.0.1:9901 --token-file admin.token] [--auto-reject]

An https:// --admin is checked against the system's trusted roots, or
against --admin-ca FILE (a self-signed certificate, as compose makes one).

Needs pymongo and mongoengine. The proxy's policy must give deletes on the
chosen namespace a budget with `action: hold` (see deploy/demo/README.md).
"""

from __future__ import annotations

import argparse
import datetime
import json
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import bson
import mongoengine as me
import pymongo
from bson.raw_bson import RawBSONDocument
from pymongo.errors import OperationFailure

ALIAS = "incident"
COLLECTION = "family"


class Member(me.EmbeddedDocument):
    name = me.StringField(required=True)
    born = me.IntField()


class Family(me.Document):
    surname = me.StringField(required=True)
    city = me.StringField()
    members = me.EmbeddedDocumentListField(Member)
    created = me.DateTimeField()
    meta = {"db_alias": ALIAS, "collection": COLLECTION}


def family_documents(count: int) -> list[dict]:
    """Raw documents in the shape mongoengine stores a Family."""
    cities = ["Oslo", "Lima", "Pune", "Accra", "Quito"]
    created = datetime.datetime(2024, 5, 1, 12, 0)
    return [{"surname": f"Family{i:05d}", "city": cities[i % len(cities)],
             "members": [{"name": f"member-{i}-{j}", "born": 1960 + 7 * j}
                         for j in range(i % 4 + 1)],
             "created": created} for i in range(count)]


def seed(direct: pymongo.MongoClient, database: str, count: int) -> None:
    """Replaces the collection with `count` families, inserted directly (fast)."""
    coll = direct[database][COLLECTION]
    coll.drop()
    coll.insert_many(family_documents(count), ordered=False)


class DeadlyLoop(threading.Thread):
    """`for family in Family.objects: family.delete()` through the proxy.

    `deleted` counts deletes that returned; `error` is what ended the loop
    (mongoengine wraps the server's OperationFailure in OperationError)."""

    def __init__(self, proxy_uri: str, database: str, progress_every: int = 0,
                 out=sys.stdout):
        super().__init__(name="deadly-loop", daemon=True)
        self.proxy_uri = proxy_uri
        self.database = database
        self.progress_every = progress_every
        self.out = out
        self.deleted = 0
        self.error: BaseException | None = None
        self.last_delete = time.monotonic()

    def run(self) -> None:
        me.connect(db=self.database, host=self.proxy_uri, alias=ALIAS,
                   serverSelectionTimeoutMS=10_000, appname="python-shell",
                   uuidRepresentation="standard")
        try:
            for family in Family.objects:
                family.delete()
                self.deleted += 1
                self.last_delete = time.monotonic()
                if self.progress_every and self.deleted % self.progress_every == 0:
                    print(f"  deleted {self.deleted} families...", file=self.out, flush=True)
        except BaseException as e:  # the point of the demo: how the loop ends
            self.error = e
        finally:
            me.disconnect(alias=ALIAS)
            Family._collection = None  # mongoengine caches it on the class

    def stalled_for(self) -> float:
        return time.monotonic() - self.last_delete


def operation_failure(exc: BaseException | None) -> OperationFailure | None:
    """The server's (here: mongoguard's) OperationFailure in an exception chain."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, OperationFailure):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


class Admin:
    """The few admin API calls the demo needs."""

    def __init__(self, url: str, token: str, ca_file: str | None = None):
        self.url = url.rstrip("/")
        self.token = token
        self.context = ssl.create_default_context(cafile=ca_file) if ca_file else None

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=5, context=self.context) as r:
            return json.loads(r.read().decode())

    def holds(self, ns: str) -> list[dict]:
        return [h for h in self.call("GET", "/api/holds")["holds"] if h["ns"] == ns]

    def reject(self, hold_id: int, by: str) -> dict:
        return self.call("POST", f"/api/holds/{hold_id}/reject", {"by": by})


def describe_hold(h: dict) -> str:
    docs = f"{h['documents_in_window']}/{h['limit']} documents in the window, " if h.get(
        "limit") else ""
    who = " ".join(f"{k}={h[k]}" for k in ("client", "app", "user") if h.get(k))
    return (f"hold #{h['id']}: {h['operation']} on {h['ns']} held by rule '{h['rule']}' "
            f"({docs}{who}); filter {h['filter']}; reason: {h['reason']}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--proxy", required=True, help="mongoguard's address (mongodb:// URI)")
    p.add_argument("--direct", required=True,
                   help="the database server itself, for seeding and for counting survivors")
    p.add_argument("--db", default="app", help="database (default app: the example policy's)")
    p.add_argument("--count", type=int, default=2000, help="families to seed (default 2000)")
    p.add_argument("--admin", help="mongoguard's admin endpoint, e.g. http://127.0.0.1:9901")
    p.add_argument("--token-file", help="the admin API's bearer token (first line)")
    p.add_argument("--admin-ca", metavar="FILE",
                   help="CA certificate(s) for an https:// --admin (default: the system's roots)")
    p.add_argument("--auto-reject", action="store_true",
                   help="reject the first hold through the admin API (unattended runs)")
    p.add_argument("--operator", default="incident-demo",
                   help="name recorded with --auto-reject (default incident-demo)")
    p.add_argument("--wait", type=float, default=900,
                   help="seconds to wait for the loop to end (default 900)")
    p.add_argument("--restore", metavar="MONGOGUARD",
                   help="afterwards, put the deleted families back with `MONGOGUARD ctl restore` "
                        "(the path of the mongoguard program) and check every one byte for byte")
    args = p.parse_args(argv)
    if (args.auto_reject or args.restore) and not (args.admin and args.token_file):
        p.error("--auto-reject and --restore need --admin and --token-file")

    admin = None
    if args.admin:
        token = ""
        if args.token_file:
            with open(args.token_file) as f:
                token = f.readline().strip()
        admin = Admin(args.admin, token, args.admin_ca)

    ns = f"{args.db}.{COLLECTION}"
    direct = pymongo.MongoClient(args.direct, directConnection=True,
                                 serverSelectionTimeoutMS=10_000)
    print(f"seeding {args.count} families into {ns} directly...", flush=True)
    seed(direct, args.db, args.count)
    print(f"{direct[args.db][COLLECTION].count_documents({})} families in {ns}\n")
    before = raw_documents(direct, args.db) if args.restore else {}

    print(">>> for family in Family.objects:\n...     family.delete()   # meant: family.save()\n",
          flush=True)
    loop = DeadlyLoop(args.proxy, args.db, progress_every=10)
    loop.start()

    seen: set[int] = set()
    announced_stall = False
    rejected = False
    deadline = time.monotonic() + args.wait
    while loop.is_alive() and time.monotonic() < deadline:
        loop.join(0.25)
        if not loop.is_alive():
            break
        holds: list[dict] = []
        if admin:
            try:
                holds = admin.holds(ns)
            except (urllib.error.URLError, OSError, ValueError) as e:
                print(f"admin API: {e}", flush=True)
                time.sleep(1)
        if (holds or loop.stalled_for() > 1.0) and not announced_stall:
            announced_stall = True
            print(f"\nthe loop has stalled after {loop.deleted} deletes: mongoguard is holding "
                  "the next one", flush=True)
            if not admin:
                print("decide it on the admin page or with `mongoguard ctl holds`", flush=True)
        for h in holds:
            if h["id"] in seen:
                continue
            seen.add(h["id"])
            print("\n" + describe_hold(h))
            ctl = f"mongoguard ctl --admin {args.admin}"
            if args.admin_ca:
                ctl += f" --ca-file {args.admin_ca}"
            if args.token_file:
                ctl += f" --token-file {args.token_file}"
            print(f"  see it:    {ctl} holds\n"
                  f"  reject it: {ctl} reject {h['id']}\n"
                  f"  approve:   {ctl} approve {h['id']}   (lets one more delete through)",
                  flush=True)
            if args.auto_reject and not rejected:
                time.sleep(1.0)  # let the stall show
                survivors = direct[args.db][COLLECTION].count_documents({})
                print(f"\n{survivors} families still there while held; rejecting as "
                      f"{args.operator}...", flush=True)
                admin.reject(h["id"], args.operator)
                rejected = True
            elif not args.auto_reject:
                print("waiting for an operator to decide...", flush=True)

    if loop.is_alive():
        print(f"\ngave up waiting after {args.wait:.0f}s; the loop is still held", flush=True)
        code = 1
    else:
        failure = operation_failure(loop.error)
        if failure is not None:
            print(f"\nthe loop died: code {failure.code}: "
                  f"{(failure.details or {}).get('errmsg', failure)}")
            code = 0
        elif loop.error is not None:
            print(f"\nthe loop died: {loop.error!r}")
            code = 1
        else:
            print(f"\nthe loop ran to completion: nothing stopped it. Does the proxy's policy "
                  f"give deletes on {ns} a budget with action: hold?")
            code = 1
    survivors = direct[args.db][COLLECTION].count_documents({})
    print(f"{loop.deleted} families deleted through the proxy; {survivors} of {args.count} "
          f"survived.")
    if args.restore and code == 0:
        code = restore(args, ns, direct, before)
    direct.close()
    return code


def raw_documents(direct: pymongo.MongoClient, database: str) -> dict:
    """_id -> the document's BSON bytes, as the server holds them."""
    coll = direct[database].get_collection(
        COLLECTION, codec_options=bson.CodecOptions(document_class=RawBSONDocument))
    return {bson.decode(d.raw)["_id"]: d.raw for d in coll.find()}


def restore(args, ns: str, direct: pymongo.MongoClient, before: dict) -> int:
    """The deleted families back from the journal; 0 when all are, byte for byte."""
    command = [args.restore, "ctl", "--admin", args.admin, "--token-file", args.token_file,
               *(["--ca-file", args.admin_ca] if args.admin_ca else []),
               "--as", args.operator, "restore", "--ns", ns, "--since", "10m"]
    print(f"\n>>> {' '.join(command[:2])} ... restore --ns {ns} --since 10m --as {args.operator}",
          flush=True)
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    print(done.stdout + done.stderr, end="", flush=True)
    after = raw_documents(direct, args.db)
    same = sum(1 for key, raw in before.items() if after.get(key) == raw)
    print(f"{len(after)} of {len(before)} families there after the restore; {same} byte-identical "
          "to before (compared as BSON)")
    return 0 if done.returncode == 0 and same == len(before) == len(after) else 1


if __name__ == "__main__":
    sys.exit(main())
