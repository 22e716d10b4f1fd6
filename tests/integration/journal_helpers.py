"""What the journal's integration tests share: the policy of one journaled
budget rule over a database, and the journal's rows read back from SQLite."""

from __future__ import annotations

import sqlite3

import bson

from hold_helpers import wait_until

RULE = "journaled-budget"


def journal_policy(database: str, journal_path: str, journal_extra: dict | None = None,
                   rule_extra: str = "",
                   operations: str = "delete, update, replace, findAndModify") -> str:
    """One rule with a limit over `database.*` (so journaled by default);
    `journal_extra` adds keys to the journal section (retention, on_error...)."""
    keys = "".join(f"\n  {k}: {v}" for k, v in (journal_extra or {}).items())
    return f"""
journal:
  path: {journal_path}{keys}
rules:
  - name: {RULE}
    match: {{ namespace: "{database}.*", operations: [{operations}] }}
    limit: {{ documents: 1000, per: 1m }}
    action: hold
    {rule_extra}
"""


def rows(journal_path, ns: str) -> list[dict]:
    """The journal's rows for `ns`, oldest first, BSON decoded."""
    con = sqlite3.connect(f"file:{journal_path}?mode=ro", uri=True, timeout=5)
    try:
        cur = con.execute(
            "SELECT operation, rule, filter, doc_id, before, after, hold_id, app FROM documents "
            "WHERE ns = ? ORDER BY id", (ns,))
        out = []
        for op, rule, filt, doc_id, before, after, hold_id, app in cur.fetchall():
            out.append(dict(op=op, rule=rule, filter=bson.decode(filt), id=bson.decode(doc_id),
                            before=bson.decode(before),
                            after=None if after is None or len(after) <= 5 else
                            bson.decode(after), hold_id=hold_id, app=app))
        return out
    finally:
        con.close()


def wait_rows(journal_path, ns: str, count: int) -> list[dict]:
    """Rows for `ns` once there are `count` (the writer commits within 200 ms)."""
    def enough():
        got = rows(journal_path, ns)
        return got if len(got) >= count else None
    return wait_until(enough, 10, f"{count} journal rows for {ns}")
