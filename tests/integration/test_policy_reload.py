"""Policy reload while clients stay connected.

- SIGHUP with a new rule: the rule applies to the next command on a
  connection that was open before the reload.
- A rewritten file is picked up without a signal (the proxy polls it every
  second; allowed: 5 s).
- A broken file is refused while a client keeps working through it: the old
  rule still blocks, the connection is never dropped, the failure counter
  goes up and the log says FILE:LINE:COL of the problem. A later good file
  is taken again.
- Audit settings follow the reloaded file."""

from __future__ import annotations

import json
import signal
import threading
import time

import pytest
from pymongo.errors import OperationFailure

from policy_helpers import (PolicyProxy, check_block_error, direct, expect_blocked,  # noqa: F401
                            policy_backend, seed, unique_db)

RELOADS = "mongoguard_policy_reloads_total"
FAILURES = "mongoguard_policy_reload_failures_total"
FILE_PICKUP_LIMIT = 5.0


def rule(name: str, db: str, operations: str, action: str = "block", extra: str = "") -> str:
    return f"""
  - name: {name}
    match: {{namespace: "{db}.*", operations: [{operations}]}}
    action: {action}{extra}
"""


def policy(*rules: str) -> str:
    return "rules:" + ("".join(rules) if rules else " []")


def wait_for_new_log(p: PolicyProxy, needle: str, already: int, timeout: float) -> float:
    """Waits until `needle` occurs more than `already` times in the log; returns
    the seconds it took."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if p.log_text().count(needle) > already:
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"{needle!r} did not appear within {timeout}s:\n{p.log_text()[-4000:]}")


def connection_ids(p: PolicyProxy, db: str) -> set[int]:
    return {r["connection"] for r in p.audit_for(db)}


def test_sighup_applies_a_new_rule_to_an_open_connection(policy_backend, direct):
    db = unique_db("hup")
    seed(direct, db)
    with PolicyProxy(policy_backend.upstream, policy()) as p:
        c = p.client()
        assert c[db].c.delete_one({"_id": 0}).deleted_count == 1  # no rule yet
        reloads = p.proxy.metrics().get(RELOADS, 0)
        seen = p.log_text().count("policy reloaded (SIGHUP)")

        p.write_policy(policy(rule("no-deletes", db, "delete")))
        p.proxy.proc.send_signal(signal.SIGHUP)
        wait_for_new_log(p, "policy reloaded (SIGHUP)", seen, 5.0)

        expect_blocked(lambda: c[db].c.delete_one({"_id": 1}), "no-deletes", "delete", f"{db}.c")
        assert len(connection_ids(p, db)) == 1, "the client had to reconnect"
        assert p.proxy.metrics()[RELOADS] > reloads
        assert "policy reloaded (SIGHUP): 1 rule(s), mode enforce" in p.log_text()
    assert direct[db].c.count_documents({}) == 4


def test_sighup_can_remove_a_rule(policy_backend, direct):
    db = unique_db("hupdel")
    seed(direct, db)
    with PolicyProxy(policy_backend.upstream, policy(rule("no-drop", db, "drop"))) as p:
        c = p.client()
        expect_blocked(lambda: c[db].c.drop(), "no-drop")
        seen = p.log_text().count("policy reloaded (SIGHUP)")
        p.write_policy(policy())
        p.proxy.proc.send_signal(signal.SIGHUP)
        wait_for_new_log(p, "policy reloaded (SIGHUP)", seen, 5.0)
        c[db].c.drop()
    assert "c" not in direct[db].list_collection_names()


def test_file_rewrite_is_picked_up_without_a_signal(policy_backend, direct):
    db = unique_db("watch")
    seed(direct, db)
    with PolicyProxy(policy_backend.upstream, policy()) as p:
        c = p.client()
        c[db].c.update_many({}, {"$set": {"seen": 1}})  # allowed: no rules
        seen = p.log_text().count("policy reloaded (file changed)")
        p.write_policy(policy(rule("no-updates", db, "update")))
        took = wait_for_new_log(p, "policy reloaded (file changed)", seen, FILE_PICKUP_LIMIT)
        assert took <= FILE_PICKUP_LIMIT
        expect_blocked(lambda: c[db].c.update_many({}, {"$set": {"seen": 2}}), "no-updates")
        # Rewritten in place this time (same inode), with the rule's action changed.
        seen = p.log_text().count("policy reloaded (file changed)")
        p.config_path.write_text(p.render(policy(rule("no-updates", db, "update", "log"))))
        wait_for_new_log(p, "policy reloaded (file changed)", seen, FILE_PICKUP_LIMIT)
        assert c[db].c.update_many({}, {"$set": {"seen": 3}}).modified_count == 5
        assert len(connection_ids(p, db)) == 1
    assert direct[db].c.count_documents({"seen": 3}) == 5


def test_broken_reload_keeps_the_old_policy_while_a_client_works(policy_backend, direct):
    db = unique_db("broken")
    seed(direct, db)
    good = policy(rule("no-unfiltered-delete", db, "delete"))
    with PolicyProxy(policy_backend.upstream, good) as p:
        c = p.client(appname="busy-client")
        coll = c[db].c
        failures_before = p.proxy.metrics().get(FAILURES, 0)
        stop = threading.Event()
        outcomes: list[str] = []
        errors: list[BaseException] = []

        def work():
            i = 100
            try:
                while not stop.is_set():
                    coll.insert_one({"_id": i})
                    try:
                        coll.delete_many({})
                        outcomes.append("forwarded")
                    except OperationFailure as e:
                        check_block_error(e, "no-unfiltered-delete")
                        outcomes.append("blocked")
                    i += 1
                    time.sleep(0.01)
            except BaseException as e:  # noqa: BLE001 - reported by the main thread
                errors.append(e)

        worker = threading.Thread(target=work, daemon=True)
        worker.start()
        try:
            time.sleep(0.3)
            # Broken: an unknown operation. Picked up by the file watcher...
            broken = p.render(policy(rule("no-unfiltered-delete", db, "delete, obliterate")))
            p.write_policy(broken)  # renamed into place: never seen half-written
            wait_for_new_log(p, "reload (file changed) refused", 0, FILE_PICKUP_LIMIT)
            time.sleep(0.3)
            # ...and by SIGHUP too.
            p.proxy.proc.send_signal(signal.SIGHUP)
            wait_for_new_log(p, "reload (SIGHUP) refused", 0, 5.0)
            time.sleep(0.3)
        finally:
            stop.set()
            worker.join(timeout=10)
        assert not worker.is_alive()
        assert not errors, f"the client failed across the broken reload: {errors[0]!r}"
        assert len(outcomes) >= 10, outcomes
        assert set(outcomes) == {"blocked"}, "the old rule stopped blocking"

        log = p.log_text()
        line_no, col = _position(broken, "obliterate")
        assert f"{p.config_path}:{line_no}:{col}: unknown operation 'obliterate'" in log, log[-3000:]
        assert "the running policy stays in place" in log
        assert p.proxy.metrics()[FAILURES] >= failures_before + 2
        # One connection throughout, never closed.
        ids = connection_ids(p, db)
        assert len(ids) == 1, ids
        (conn,) = ids
        assert f"conn {conn} from" not in "".join(
            line for line in log.splitlines() if " closed:" in line)

        # A good file is taken again, on the same connection.
        seen = log.count("policy reloaded (file changed)")
        p.write_policy(policy(rule("no-unfiltered-delete", db, "delete", "log")))
        wait_for_new_log(p, "policy reloaded (file changed)", seen, FILE_PICKUP_LIMIT)
        assert coll.delete_many({}).deleted_count == 5 + len(outcomes)
        assert connection_ids(p, db) == {conn}
    assert direct[db].c.count_documents({}) == 0


def _position(text: str, token: str) -> tuple[int, int]:
    start = text.index(token)
    return text.count("\n", 0, start) + 1, start - (text.rfind("\n", 0, start) + 1) + 1


def test_reload_of_a_deleted_file_is_refused(policy_backend, direct):
    db = unique_db("gone")
    seed(direct, db)
    with PolicyProxy(policy_backend.upstream, policy(rule("no-drop", db, "drop"))) as p:
        c = p.client()
        p.config_path.unlink()
        p.proxy.proc.send_signal(signal.SIGHUP)
        wait_for_new_log(p, "reload (SIGHUP) refused", 0, 5.0)
        p.proxy.wait_for_log(f"{p.config_path}: cannot read file")
        expect_blocked(lambda: c[db].c.drop(), "no-drop")
    assert direct[db].c.count_documents({}) == 5


def test_reload_switches_mode_and_audit_redaction(policy_backend, direct, tmp_path):
    db = unique_db("mode")
    seed(direct, db)
    with PolicyProxy(policy_backend.upstream, policy(rule("no-deletes", db, "delete"))) as p:
        c = p.client()
        expect_blocked(lambda: c[db].c.delete_one({"name": "doc-0"}), "no-deletes")
        audit2 = tmp_path / "audit2.jsonl"
        seen = p.log_text().count("policy reloaded (SIGHUP)")
        p.write_policy(f"audit:\n  path: {audit2}\n  redact: false\nmode: dry-run\n"
                       + policy(rule("no-deletes", db, "delete")))
        p.proxy.proc.send_signal(signal.SIGHUP)
        wait_for_new_log(p, "policy reloaded (SIGHUP)", seen, 5.0)
        assert "mode dry-run" in p.log_text()
        assert c[db].c.delete_one({"name": "doc-0"}).deleted_count == 1
        # The audit file is written by its own thread: the line follows the reply.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            records = [json.loads(line) for line in audit2.read_text().splitlines()] \
                if audit2.exists() else []
            if records:
                break
            time.sleep(0.05)
        assert len(records) == 1, records
        assert records[0]["verdict"] == "would block"
        assert records[0]["targets"][0]["filter"] == {"name": "doc-0"}
    assert direct[db].c.count_documents({}) == 4


def test_sighup_right_after_start_does_not_kill_the_proxy(tmp_path):
    """A SIGHUP that arrives once the port accepts connections must reload, not
    terminate: the default action of SIGHUP is to end the process, so the
    handler has to be in place before the listener is. The window is short,
    so this tries many starts; it cannot fail when the order is right."""
    from harness import ProxyProcess, free_port

    config = tmp_path / "policy.yaml"
    config.write_text("rules: []\n")
    killed = []
    for attempt in range(40):
        p = ProxyProcess(f"mongodb://127.0.0.1:{free_port()}", "--config", str(config), admin=False)
        try:
            p.proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline and p.proc.poll() is None:
                if "policy reloaded (SIGHUP)" in p.log_text():
                    break
                time.sleep(0.01)
            if p.proc.poll() is not None:
                killed.append((attempt, p.proc.returncode))
        finally:
            p.__exit__(None, None, None)
    assert not killed, (f"SIGHUP sent as soon as the port was open ended the proxy in "
                        f"{len(killed)} of 40 starts (attempt, exit status): {killed}")


def test_policy_warnings_are_logged_at_start_and_on_reload(policy_backend):
    """What `validate` warns about is in the log too, with its position: an
    operator who never runs validate still reads it."""
    warned = """rules:
  - name: migrator-may
    match: {namespace: "app.*", apps: [migrator]}
    action: allow
  - name: no-drops
    match: {namespace: "app.*", operations: [drop]}
    action: block
"""
    with PolicyProxy(policy_backend.upstream, warned) as p:
        path = str(p.config_path)
        p.proxy.wait_for_log(f"policy: {path}:")
        line = next(l for l in p.log_text().splitlines() if f"policy: {path}:" in l)
        assert " warning policy: " in line and "exempts by appName alone" in line, line
        # The audit section the harness adds comes first: the rule is 3 lines down.
        assert f"{path}:6:" in line, line
        seen = p.log_text().count("reload (SIGHUP): policy:")
        p.write_policy(warned.replace("migrator-may", "migrator-still-may"))
        p.proxy.proc.send_signal(signal.SIGHUP)
        wait_for_new_log(p, "reload (SIGHUP): policy:", seen, 5.0)
        assert "rule 'migrator-still-may' exempts by appName alone" in p.log_text()


def test_start_up_and_every_reload_say_what_the_policy_protects(policy_backend):
    start = policy(rule("guard-app", "app", "delete"),
                   rule("guard-billing", "billing", "drop", action="hold"),
                   rule("app-too", "app", "drop"))
    with PolicyProxy(policy_backend.upstream, start) as p:
        p.proxy.wait_for_log("policy: protects app.* (2 rules), billing.* (1 rule); "
                             "unprotected: every other namespace")
        everywhere = policy(rule("all", "*", "delete"), rule("watch", "app", "update", "log"))
        p.write_policy(everywhere)
        p.proxy.proc.send_signal(signal.SIGHUP)
        wait_for_new_log(p, "policy: protects *.* (1 rule); 1 log or dry-run rule only log; "
                            "unprotected: nothing, a rule covers every namespace", 0, 5.0)
        lines = [line for line in p.log_text().splitlines() if " info policy: protects " in line]
        assert len(lines) >= 2, lines  # once at start-up, once (or more) per reload
