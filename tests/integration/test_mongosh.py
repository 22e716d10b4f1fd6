"""A scripted mongosh (v2) session doing CRUD through the proxy.

tests/node/mongosh_crud.js throws on the first mismatch, which makes
mongosh exit non-zero; afterwards the data is checked over a direct
connection. A second, inline --eval session checks that an assertion
failing inside mongosh really does fail the run.
"""

from __future__ import annotations

import os
import subprocess
import tempfile

from conftest import NODE_DIR


def mongosh(node_modules, uri: str, *args: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="mg-mongosh-") as home:
        # A private HOME: mongosh keeps history, logs and its config there.
        env = dict(os.environ, HOME=home, MONGOSH_NO_UPDATE_CHECK="1", DO_NOT_TRACK="1")
        return subprocess.run([str(node_modules / ".bin" / "mongosh"), uri, "--quiet", "--norc",
                               *args], capture_output=True, text=True, timeout=300, env=env,
                              cwd=NODE_DIR)


def db_uri(proxy, db_name: str) -> str:
    return f"mongodb://{proxy.address}/{db_name}?directConnection=true&appName=mongoguard-mongosh"


def test_mongosh_crud_script_through_proxy(node_modules, proxy, direct_client, db_name):
    try:
        result = mongosh(node_modules, db_uri(proxy, db_name),
                         "--file", str(NODE_DIR / "mongosh_crud.js"))
        assert result.returncode == 0, (
            f"mongosh exited {result.returncode}\n--- stdout ---\n{result.stdout}\n"
            f"--- stderr ---\n{result.stderr}\n--- proxy log (tail) ---\n{proxy.log_text()[-5000:]}")
        assert "all checks passed" in result.stdout

        family = direct_client[db_name].family
        assert family.count_documents({}) == 177
        assert family.find_one({"_id": 1}) == {"_id": 1, "name": "Grace H.", "role": "parent"}
        assert family.count_documents({"adult": True}) == 0
        assert [i["name"] for i in family.list_indexes()] == ["_id_"]
    finally:
        direct_client.drop_database(db_name)


def test_mongosh_eval_through_proxy_fails_on_mismatch(node_modules, proxy, direct_client, db_name):
    script = (
        "db.t.insertOne({_id: 1, v: 'a'});"
        "const got = db.t.findOne({_id: 1}).v;"
        "if (got !== 'a') throw new Error('read back ' + got);"
        "print('first ok');"
        "if (db.t.countDocuments({}) !== 2) throw new Error('expected mismatch');"
    )
    try:
        result = mongosh(node_modules, db_uri(proxy, db_name), "--eval", script)
        assert "first ok" in result.stdout, result.stdout + result.stderr
        assert result.returncode != 0, "a throwing mongosh script must exit non-zero"
        assert "expected mismatch" in result.stdout + result.stderr
        assert direct_client[db_name].t.find_one({"_id": 1}) == {"_id": 1, "v": "a"}
    finally:
        direct_client.drop_database(db_name)
