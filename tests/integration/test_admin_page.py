"""The operator's page in headless Chromium (Debian's /usr/bin/chromium,
driven by playwright-core from tests/browser): a refused token says so, the
page shows a held delete, the rate chart of a budgeted namespace (bars and
the budget's line), works at 390 px wide, its decision filters filter, the
Reject button refuses the hold, and the waiting pymongo client gets
mongoguard's error. Leaves screenshots (desktop and 390 px) in a temporary
folder, or, with MONGOGUARD_UPDATE_SCREENSHOT=1, in
deploy/screenshots/admin-page.png and admin-page-phone.png (the ones the
README shows)."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import tempfile
import time

import pytest
from pymongo.errors import OperationFailure

from admin_helpers import AdminProxy, Background
from harness import ROOT
from policy_helpers import UNAUTHORIZED, policy_backend, direct, seed, unique_db  # noqa: F401

BROWSER_DIR = ROOT / "tests" / "browser"
CHROMIUM = pathlib.Path("/usr/bin/chromium")
UPDATE = os.environ.get("MONGOGUARD_UPDATE_SCREENSHOT") == "1"
SCREENSHOT = (ROOT / "deploy" / "screenshots" / "admin-page.png" if UPDATE
              else pathlib.Path(tempfile.gettempdir()) / f"mongoguard-admin-page-{os.getpid()}.png")
PHONE_SCREENSHOT = (ROOT / "deploy" / "screenshots" / "admin-page-phone.png" if UPDATE
                    else pathlib.Path(tempfile.gettempdir())
                    / f"mongoguard-admin-page-phone-{os.getpid()}.png")


@pytest.fixture(scope="module")
def playwright_script() -> pathlib.Path:
    if not CHROMIUM.exists():
        raise RuntimeError("/usr/bin/chromium is missing: scripts/deps.sh test installs it")
    if not (BROWSER_DIR / "node_modules" / "playwright-core" / "package.json").exists():
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("npm not found: install Node.js and npm")
        lock = (BROWSER_DIR / "package-lock.json").exists()
        result = subprocess.run([npm, "ci" if lock else "install", "--no-audit", "--no-fund",
                                 "--prefix", str(BROWSER_DIR)],
                                capture_output=True, text=True, timeout=600)
        if result.returncode != 0:
            raise RuntimeError(f"npm failed:\n{result.stdout}\n{result.stderr}")
    return BROWSER_DIR / "admin_page.js"


def test_page_shows_a_hold_and_rejects_it(policy_backend, direct, playwright_script,
                                         tmp_path):  # noqa: F811
    """A budget of 2 deletes a minute on a journaled namespace, spent, and
    the third delete held. The page shows it with its measured size, the
    recent rate, who sent it (app, driver) and a sample of the documents;
    the named operator bob rejects it with a reason; the client's error
    names bob and carries the reason; the rate chart is drawn with the
    budget's line; at 390 px the buttons are on screen."""
    db = unique_db("page")
    seed(direct, db, "families", count=5)
    reason = "a loop, not the migration"
    policy = f"""
    journal:
      path: {tmp_path / "journal.db"}
    rules:
      - name: families-delete-budget
        match: {{namespace: "{db}.families", operations: [delete]}}
        action: hold
        limit: {{documents: 2, per: 1m}}
    """
    tokens = {"bob": "page-token-of-bob-0123456789", "carol": "page-token-of-carol-0123456789"}
    for name, secret in tokens.items():
        (tmp_path / f"{name}.token").write_text(secret + "\n")
    operators = ("admin:\n  operators:\n"
                 f"    - {{name: bob, token_file: {tmp_path / 'bob.token'}, role: approver}}\n"
                 f"    - {{name: carol, token_file: {tmp_path / 'carol.token'}, role: admin}}\n")
    p = AdminProxy(policy_backend.upstream, policy, token=None, extra_yaml=operators)
    p.token = tokens["carol"]
    try:
        c = p.client(appname="shell")
        for i in (0, 1):
            assert c[db].families.delete_one({"_id": i}).deleted_count == 1
        held = Background(lambda: c[db].families.delete_one({"_id": 3}))
        [hold] = p.wait_for_holds(1)
        assert hold["preview"]["count"] == 1

        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(["node", str(playwright_script), p.admin_url + "/", tokens["bob"],
                                 "-", f"{db}.families", str(SCREENSHOT), f"{db}.families",
                                 str(PHONE_SCREENSHOT), "families-delete-budget", reason],
                                capture_output=True, text=True, timeout=180, cwd=BROWSER_DIR)
        assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
        seen = json.loads(result.stdout.strip().splitlines()[-1])
        row = seen["row"]
        assert f"{db}.families" in row and "delete" in row, row
        assert "1 document(s)" in row, "the measured size: " + row
        assert f"2 documents in" in row and f"on {db}.families" in row, "the rate: " + row
        assert "app shell" in row and "driver PyMongo" in row and "from 127.0.0.1" in row, row
        assert "1 document(s) it would affect" in row, row
        # The sample, opened: the one document the delete would remove.
        assert [json.loads(d) for d in seen["sample"]] == [
            {"_id": 3, "x": 3, "name": "doc-3"}], seen["sample"]
        assert f"families-delete-budget:{db}.families" in row, "the breaker: " + row
        assert "stays tripped until an operator resumes it" in row, "what approving releases: " + row
        assert seen["whoami"] == "Signed in as bob (approver)", seen
        assert f"rejected by bob: {reason}" in seen["message"], seen

        # A wrong token: a banner says so, and the form asks for another.
        refused = seen["refused"]
        assert refused["visible"] and refused["form"], refused
        assert "token was refused" in refused["text"], refused
        assert "missing or wrong bearer token" in refused["text"], refused
        # The two deletes drawn; the budget a line, labelled as written.
        rates = seen["rates"]
        assert rates["bars"] and all(h > 0 for h in rates["bars"]), rates
        assert rates["lines"] == ["families-delete-budget"], rates
        assert rates["labels"] == ["budget 2 / 1m"], rates
        # 390 px: nothing wider than the screen; the hold's buttons on it, tappable.
        phone = seen["phone"]
        assert phone["scrollWidth"] <= 390 and phone["wide"] == [], phone
        assert [b["text"] for b in phone["buttons"]] == ["Approve", "Reject"], phone
        for b in phone["buttons"]:
            assert b["left"] >= 0 and b["right"] <= 390 and b["height"] >= 40, phone
        assert phone["small"] == [], phone
        assert PHONE_SCREENSHOT.stat().st_size > 10_000
        # Filters: by rule, by outcome, by namespace, and none for another namespace.
        filters = seen["filters"]
        assert len(filters["rule"]) >= 3, filters
        assert all("families-delete-budget" in r for r in filters["rule"]), filters
        assert filters["outcome"] and all("rejected by bob" in r for r in filters["outcome"]), filters
        assert len(filters["ns"]) >= 3 and all(f"{db}.families" in r for r in filters["ns"]), filters
        assert filters["none"] == [], filters

        with pytest.raises(OperationFailure) as caught:
            held.result()
        assert caught.value.code == UNAUTHORIZED
        assert caught.value.details["errmsg"] == (
            f"mongoguard: delete on {db}.families held by rule 'families-delete-budget': "
            f"rejected by bob: {reason}")
        assert direct[db].families.count_documents({"_id": 3}) == 1
        assert SCREENSHOT.stat().st_size > 10_000
        record = p.wait_for_audit(lambda r: r.get("operator_action") == "reject")
        assert record["by"] == "bob" and record["details"].endswith(f"reason: {reason}")
    finally:
        p.stop()


def test_client_strings_and_document_values_stay_text(policy_backend, direct, playwright_script,
                                                      tmp_path):  # noqa: F811
    """A document whose fields hold markup, a client whose appName does: the
    hold's preview and the Restorable panel show them as text; nothing they
    carry runs or is built (headless Chromium)."""
    db = unique_db("inject")
    payloads = {"_id": 1, "name": "<script>window.__injected='script'</script>",
                "bio": "<img src=x onerror=\"window.__injected='img'\">",
                "note": "'; alert(1); '"}
    direct[db].families.insert_many([payloads, {"_id": 2, "name": "<b>bold</b>"}])
    policy = f"""
    journal:
      path: {tmp_path / "journal.db"}
    rules:
      - name: budget
        match: {{namespace: "{db}.families", operations: [delete]}}
        action: hold
        limit: {{documents: 1, per: 1m}}
    """
    p = AdminProxy(policy_backend.upstream, policy)
    try:
        c = p.client(appname="<img src=x onerror=\"window.__injected='app'\">")
        assert c[db].families.delete_one({"_id": 2}).deleted_count == 1  # journaled
        held = Background(lambda: c[db].families.delete_one({"_id": 1}))
        p.wait_for_holds(1)
        result = subprocess.run(["node", str(BROWSER_DIR / "page_injection.js"), p.admin_url + "/",
                                 p.token, f"{db}.families"],
                                capture_output=True, text=True, timeout=120, cwd=BROWSER_DIR)
        assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
        seen = json.loads(result.stdout.strip().splitlines()[-1])
        assert seen["ran"] is None and seen["dialogs"] == [], seen
        assert seen["images"] == 0 and seen["scripts"] == 0, seen
        assert "<script>window.__injected='script'</script>" in seen["preview"], seen
        assert "1 document(s) it would affect" in seen["preview"], seen
        assert f"{db}.families" in seen["restorable"] and "delete 1" in seen["restorable"], seen
        [hold] = p.ok("GET", "/api/holds")["holds"]
        assert hold["preview"]["documents"][0]["bio"] == payloads["bio"]
        p.ok("POST", f"/api/holds/{hold['id']}/reject", {"by": "alice"})
        with pytest.raises(OperationFailure):
            held.result()
        assert direct[db].families.count_documents({"_id": 1}) == 1
    finally:
        p.stop()


def test_restore_buttons_dry_run_then_bring_the_documents_back(policy_backend, direct,
                                                               playwright_script, tmp_path):  # noqa: F811
    """With journal.restore_uri the Restorable panel has Dry run and Restore
    buttons (headless Chromium clicks them): the dry run writes nothing, the
    restore asks for confirmation, brings the deleted documents back and is
    audited under the name typed in the Operator field."""
    db = unique_db("pagerestore")
    seed(direct, db, "families", 6)
    before = sorted(direct[db].families.find(), key=lambda d: d["_id"])
    policy = f"""
    journal:
      path: {tmp_path / "journal.db"}
      restore_uri: "{policy_backend.uri}"
    rules:
      - name: budget
        match: {{namespace: "{db}.families", operations: [delete]}}
        action: hold
        limit: {{documents: 100, per: 1m}}
    """
    p = AdminProxy(policy_backend.upstream, policy)
    try:
        c = p.client()
        assert c[db].families.delete_many({"x": {"$gte": 2}}).deleted_count == 4
        deadline = time.monotonic() + 10
        while len(p.ok("GET", f"/api/journal?ns={db}.families")["rows"]) < 4:
            assert time.monotonic() < deadline, "the journal never held the 4 deletes"
            time.sleep(0.05)
        result = subprocess.run(["node", str(BROWSER_DIR / "page_restore.js"), p.admin_url + "/",
                                 p.token, f"{db}.families", "carol"],
                                capture_output=True, text=True, timeout=120, cwd=BROWSER_DIR)
        assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
        seen = json.loads(result.stdout.strip().splitlines()[-1])
        assert seen["dry"]["kind"] == "info", seen
        assert f"Dry run for {db}.families: would insert 4, replace 0" in seen["dry"]["text"], seen
        assert seen["restored"]["kind"] == "info", seen
        assert f"Restored 4 document(s) of {db}.families" in seen["restored"]["text"], seen
        assert len(seen["dialogs"]) == 1 and f"{db}.families" in seen["dialogs"][0], seen
        assert sorted(direct[db].families.find(), key=lambda d: d["_id"]) == before
        deadline = time.monotonic() + 10  # the audit file is written by its own thread
        while not [r for r in p.audit_records() if r.get("operator_action") == "restore"]:
            assert time.monotonic() < deadline, "no restore in the audit log"
            time.sleep(0.05)
        [restored] = [r for r in p.audit_records() if r.get("operator_action") == "restore"]
        assert restored["by"] == "carol" and restored["target"] == f"{db}.families", restored
    finally:
        p.stop()
        direct.drop_database(db)
