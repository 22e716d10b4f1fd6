"""The official Node.js driver (v6) doing CRUD through the proxy.

tests/node/crud.js asserts every result itself and exits non-zero on the
first mismatch; afterwards the data is checked over a direct connection.
"""

from __future__ import annotations

import shutil
import subprocess

from conftest import NODE_DIR


def test_node_driver_crud_through_proxy(node_modules, proxy, direct_client, db_name):
    node = shutil.which("node")
    assert node, "node not found: install Node.js 20"
    try:
        result = subprocess.run([node, str(NODE_DIR / "crud.js"), proxy.uri, db_name],
                                capture_output=True, text=True, timeout=300, cwd=NODE_DIR)
        assert result.returncode == 0, (
            f"crud.js exited {result.returncode}\n--- stdout ---\n{result.stdout}\n"
            f"--- stderr ---\n{result.stderr}\n--- proxy log (tail) ---\n{proxy.log_text()[-5000:]}")
        assert "checks passed" in result.stdout

        # What the script left behind, seen without the proxy.
        people = direct_client[db_name].people
        assert people.count_documents({}) == 857
        assert people.find_one({"name": "replaced"})["long"] == 2**40
        assert people.count_documents({"group": 5}) == 0
        assert direct_client[db_name].list_collection_names() == ["people"]
    finally:
        direct_client.drop_database(db_name)
