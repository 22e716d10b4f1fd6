"""Writes the seed corpora of the classifier and policy loader fuzz targets
(tests/fuzz/corpus/classifier/, tests/fuzz/corpus/policy_loader/). The frame
decoder's seeds come from tests/unit/wire_corpus_test.cc. Run with the
integration tests' venv:  .venv/bin/python tests/fuzz/make_seeds.py"""

from __future__ import annotations

import pathlib
import sys

import bson
from bson import MinKey

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))

import legacy_wire  # noqa: E402
import wire  # noqa: E402

# One command of every destructive family, with the variants the classifier
# has to see through.
COMMANDS = {
    "delete_unfiltered": {"delete": "c", "deletes": [{"q": {}, "limit": 0}], "$db": "app"},
    "delete_one": {"delete": "c", "deletes": [{"q": {"_id": 1}, "limit": 1}], "$db": "app"},
    "delete_limit_false": {"delete": "c", "deletes": [{"q": {"a": 1}, "limit": False}], "$db": "app"},
    "delete_limit_string": {"delete": "c", "deletes": [{"q": {"a": 1}, "limit": "1"}], "$db": "app"},
    "delete_tautology": {"delete": "c", "deletes": [{"q": {"_id": {"$gte": MinKey()}}, "limit": 0}],
                         "$db": "app"},
    "delete_where": {"delete": "c", "deletes": [{"q": {"$or": [{"$where": "true"}, {"a": 1}]}, "limit": 0}],
                     "$db": "app"},
    "update_multi": {"update": "c", "updates": [{"q": {"a": 1}, "u": {"$set": {"b": 1}}, "multi": True}],
                     "$db": "app"},
    "update_replace_upsert": {"update": "c", "updates": [{"q": {}, "u": {"b": 1}, "upsert": True}],
                              "$db": "app"},
    "update_pipeline": {"update": "c", "updates": [{"q": {"$expr": True}, "u": [{"$set": {"b": 1}}]}],
                        "$db": "app"},
    "find_and_modify_remove": {"findAndModify": "c", "query": {}, "remove": True, "$db": "app"},
    "findandmodify_update": {"findandmodify": "c", "query": {"a": 1}, "update": {"$inc": {"n": 1}},
                             "$db": "app"},
    "bulk_write": {"bulkWrite": 1, "ops": [{"delete": 0, "filter": {}, "multi": True},
                                            {"update": 1, "filter": {"a": 1}, "updateMods": {"$set": {"b": 1}}},
                                            {"insert": 0, "document": {"x": 1}}],
                   "nsInfo": [{"ns": "app.c"}, {"ns": "other.d"}], "$db": "admin"},
    "drop": {"drop": "c", "$db": "app"},
    "drop_database": {"dropDatabase": 1, "$db": "app"},
    "drop_indexes_all": {"dropIndexes": "c", "index": "*", "$db": "app"},
    "delete_indexes": {"deleteIndexes": "c", "index": ["a_1"], "$db": "app"},
    "rename_drop_target": {"renameCollection": "app.a", "to": "other.b", "dropTarget": True, "$db": "admin"},
    "aggregate_out": {"aggregate": "c", "pipeline": [{"$match": {}}, {"$out": "d"}], "cursor": {}, "$db": "app"},
    "aggregate_out_db": {"aggregate": "c", "pipeline": [{"$out": {"db": "other", "coll": "d"}}], "cursor": {},
                         "$db": "app"},
    "aggregate_merge": {"aggregate": "c", "pipeline": [{"$merge": {"into": {"db": "other", "coll": "d"},
                                                                  "whenMatched": "replace"}}],
                        "cursor": {}, "$db": "app"},
    "map_reduce": {"mapReduce": "c", "map": "function(){}", "reduce": "function(){}",
                   "out": {"replace": "d", "db": "other"}, "$db": "app"},
    "convert_to_capped": {"convertToCapped": "c", "size": 4096, "$db": "app"},
    "emptycapped": {"emptycapped": "c", "$db": "app"},
    "coll_mod_ttl": {"collMod": "c", "index": {"keyPattern": {"t": 1}, "expireAfterSeconds": 0}, "$db": "app"},
    "create_indexes_ttl": {"createIndexes": "c", "indexes": [{"key": {"t": 1}, "name": "t_1",
                                                             "expireAfterSeconds": 1}], "$db": "app"},
    "apply_ops": {"applyOps": [{"op": "d", "ns": "app.c", "o": {"_id": 1}},
                               {"op": "c", "ns": "app.$cmd", "o": {"drop": "c"}},
                               {"op": "c", "ns": "admin.$cmd", "o": {"applyOps": [
                                   {"op": "u", "ns": "app.c", "o": {"$set": {"a": 1}}, "o2": {"_id": 2}}]}}],
                  "$db": "admin"},
    "drop_search_index": {"dropSearchIndex": "c", "name": "default", "$db": "app"},
    "transaction_delete": {"delete": "c", "deletes": [{"q": {}, "limit": 0}], "lsid": {"id": bson.Binary(b"0" * 16, 4)},
                           "txnNumber": bson.Int64(1), "startTransaction": True, "autocommit": False,
                           "$db": "app"},
    "find": {"find": "c", "filter": {"a": 1}, "$db": "app"},
}


def classifier_seeds() -> dict[str, bytes]:
    seeds: dict[str, bytes] = {}
    for name, cmd in COMMANDS.items():
        seeds[f"msg_{name}"] = wire.op_msg(cmd, request_id=1)
        seeds[f"body_{name}"] = bson.encode(cmd)
    seeds["msg_delete_sequence"] = wire.op_msg(
        {"delete": "c", "$db": "app"}, sequences={"deletes": [{"q": {}, "limit": 0}, {"q": {"a": 1}, "limit": 1}]},
        request_id=2)
    seeds["msg_update_sequence_w0"] = wire.op_msg(
        {"update": "c", "$db": "app", "writeConcern": {"w": 0}},
        sequences={"updates": [{"q": {}, "u": {"$set": {"a": 1}}, "multi": True}]},
        flags=wire.MORE_TO_COME, request_id=3)
    seeds["msg_bulk_write_sequences"] = wire.op_msg(
        {"bulkWrite": 1, "$db": "admin"},
        sequences={"ops": [{"delete": 0, "filter": {}, "multi": True}], "nsInfo": [{"ns": "app.c"}]},
        request_id=4)
    seeds["msg_delete_checksum"] = wire.op_msg(COMMANDS["delete_unfiltered"], checksum=True, request_id=5)
    for compressor in ("snappy", "zlib", "zstd"):
        seeds[f"compressed_{compressor}_delete"] = wire.compress(
            wire.op_msg(COMMANDS["delete_unfiltered"], request_id=6), compressor)
    cmd = {k: v for k, v in COMMANDS["delete_unfiltered"].items() if k != "$db"}
    seeds["query_cmd_delete"] = legacy_wire.op_query_command("app", cmd, request_id=7)
    seeds["query_cmd_wrapped_delete"] = legacy_wire.op_query_command("app", cmd, wrap="$query", request_id=8)
    seeds["query_cmd_wrapped_drop"] = legacy_wire.op_query_command("app", {"drop": "c"}, wrap="query",
                                                                   request_id=9)
    seeds["op_delete"] = legacy_wire.op_delete("app.c", {}, request_id=10)
    seeds["op_delete_single"] = legacy_wire.op_delete("app.c", {"_id": 1}, single=True, request_id=11)
    seeds["op_update_multi"] = legacy_wire.op_update("app.c", {}, {"$set": {"a": 1}}, multi=True, request_id=12)
    return seeds


POLICIES = {
    "minimal.yaml": "rules: []\n",
    "block.yaml": """mode: enforce
rules:
  - name: no-unfiltered
    match: { namespace: "*.*", operations: [delete, update], filter: unfiltered }
    action: block
    message: "add a filter"
""",
    "budget.yaml": """rules:
  - name: budget
    match: { namespace: ["app.*", "b.c"], operations: [delete, findAndModify, bulkWrite] }
    limit: { documents: 10, per: 30s, group_by: [app, user], preflight: true }
    action: hold
  - name: allow-migrator
    match: { namespace: "app.*", apps: [migrator], users: [admin], clients: ["10.0.0.0/8", "::1"] }
    action: allow
  - name: trial
    match: { namespace: "t.*" }
    action: log
    mode: dry-run
holds: { timeout: 90s }
""",
    "server.yaml": """listen: 127.0.0.1:27018
upstream: mongodb://127.0.0.1:27017
threads: 2
log_level: info
connect_timeout: 5s
audit: { path: "${MG_AUDIT:-/dev/null}", redact: false }
notify:
  webhooks:
    - { url: "http://127.0.0.1:9/hook", events: [hold, resolved, tripped] }
rules:
  - { name: r, match: { namespace: "*.*", operations: [drop] }, action: block }
""",
    "replica_set.yaml": """upstream:
  replica_set: rs0
  members:
    - { server: "a:27017", listen: "127.0.0.1:27101" }
    - { server: "b:27017", listen: "127.0.0.1:27102" }
rules: []
""",
    "bad_indent.yaml": "rules:\n  - name: x\n   action: block\n",
    "bad_operation.yaml": "rules:\n  - { name: x, match: { operations: [nuke] }, action: block }\n",
    "bad_duration.yaml": "rules:\n  - { name: x, limit: { documents: -1, per: 5 lightyears }, action: hold }\n",
    "anchors.yaml": "base: &b { namespace: \"app.*\" }\nrules:\n  - { name: x, match: *b, action: block }\n",
}


def write(dir_name: str, files: dict[str, bytes | str]) -> None:
    out = HERE / "corpus" / dir_name
    out.mkdir(parents=True, exist_ok=True)
    for old in out.iterdir():
        old.unlink()
    for name, data in files.items():
        (out / name).write_bytes(data.encode() if isinstance(data, str) else data)
    print(f"{out}: {len(files)} seeds")


if __name__ == "__main__":
    write("classifier", classifier_seeds())
    policies = dict(POLICIES)
    policies["example_policy.yaml"] = (HERE.parents[1] / "deploy" / "examples" / "policy.yaml").read_text()
    write("policy_loader", policies)
