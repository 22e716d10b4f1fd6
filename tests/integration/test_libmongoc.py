"""libmongoc (the C driver, Debian's 1.23) doing CRUD through the proxy.

The GoogleTest program build/tests/libmongoc_crud (tests/integration/
libmongoc_crud.cc; `cmake --build build --target libmongoc_crud`) asserts
every result itself; here it runs against the proxy and must exit 0, and
the data it leaves is checked over a direct connection.
"""

from __future__ import annotations

import os
import subprocess

import harness

LIBMONGOC_CRUD = harness.BUILD / "tests" / "libmongoc_crud"


def test_libmongoc_crud_through_proxy(proxy, direct_client, db_name):
    assert LIBMONGOC_CRUD.exists(), (
        f"{LIBMONGOC_CRUD} is missing: cmake --build {harness.BUILD} --target libmongoc_crud")
    env = dict(os.environ, MONGOGUARD_TEST_URI=proxy.uri, MONGOGUARD_TEST_DB=db_name)
    try:
        result = subprocess.run([str(LIBMONGOC_CRUD), "--gtest_color=no"], env=env,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, (
            f"libmongoc_crud exited {result.returncode}\n--- stdout ---\n{result.stdout}\n"
            f"--- stderr ---\n{result.stderr}\n--- proxy log (tail) ---\n{proxy.log_text()[-5000:]}")
        assert "[  PASSED  ] 9 tests." in result.stdout, result.stdout

        # One collection per GoogleTest case, left behind for this check.
        db = direct_client[db_name]
        assert db.InsertManyCountAndEstimate.count_documents({}) == 1000
        assert db.DeleteOneAndMany.count_documents({}) == 79
        assert db.UpdateOneManyReplaceAndUpsert.find_one({"_id": 8}) == {"_id": 8, "replaced": True}
        assert db.InsertOneAndFindIt.find_one({"_id": 1})["big"] == 4_000_000_000
    finally:
        direct_client.drop_database(db_name)
