"""Fleet mode: three proxies in front of one backend share one damage budget,
its breaker and the list of holds through Debian's redis-server.

Each test starts its own redis-server on a free loopback port (no
persistence, its own directory) and three proxies named fleet-0..2, and runs
twice: over plain TCP, and over TLS only (rediss://, the server's certificate
checked against a CA made in the test, a client certificate required, an ACL
user whose password the proxies read from fleet.password_file). Deletes
go round-robin through one pymongo client per proxy; what the backend really
kept is checked over a direct connection.
"""

from __future__ import annotations

import pathlib
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request

import pytest
from pymongo.errors import OperationFailure

from harness import free_port, wait_for_port
from hold_helpers import UNAUTHORIZED, ApiError, GuardedProxy, wait_until
from test_budgets import direct  # noqa: F401  (the fixture: a direct client, fresh databases)
from test_tls import make_ca, make_cert

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"

pytestmark = pytest.mark.skipif(not pathlib.Path(REDIS_SERVER).exists(),
                                reason="redis-server is not installed (scripts/deps.sh test)")


REDIS_USER = "mongoguard"  # the ACL user of the TLS server


def make_redis_certs(d: pathlib.Path) -> None:
    """ca (signs the server and the proxies' client certificate), other-ca."""
    make_ca(d, "ca")
    make_ca(d, "other-ca")
    make_cert(d, "redis", "localhost")
    make_cert(d, "proxy", "mongoguard-fleet", client=True)


class RedisServer:
    """Debian's redis-server on 127.0.0.1:<port>, no persistence; can be
    killed and started again on the same port. With `tls`, it listens for
    TLS only, requires a client certificate and the ACL user REDIS_USER with
    `password` (the default user is off)."""

    def __init__(self, tls: bool = False):
        self.port = free_port()
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="mg-redis-"))
        self.tls = tls
        self.password = secrets.token_hex(16)
        self.password_file = self.dir / "redis.password"
        self.proc: subprocess.Popen | None = None
        if tls:
            make_redis_certs(self.dir)
            self.password_file.write_text(self.password + "\n")
        self.start()

    @property
    def url(self) -> str:
        if self.tls:
            return f"rediss://{REDIS_USER}@127.0.0.1:{self.port}"
        return f"redis://127.0.0.1:{self.port}"

    def fleet_yaml(self, ca: str = "ca.pem", indent: int = 10, **tls_keys: str) -> str:
        """What the proxies' fleet section adds for this server (nothing for
        plain TCP), `indent` spaces in. `ca` and `tls_keys` change fleet.tls."""
        if not self.tls:
            return ""
        keys = {"ca": str(self.dir / ca), "cert": str(self.dir / "proxy.pem"),
                "key": str(self.dir / "proxy.key"), **tls_keys}
        tls = ", ".join(f"{k}: {v}" for k, v in keys.items() if v)
        pad = " " * indent
        return f"{pad}password_file: {self.password_file}\n{pad}tls: {{ {tls} }}\n"

    def start(self) -> None:
        common = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir",
                  str(self.dir), "--daemonize", "no", "--logfile", str(self.dir / "redis.log")]
        if self.tls:
            conf = self.dir / "redis.conf"  # the password stays out of the process list
            conf.write_text(
                f"port 0\ntls-port {self.port}\n"
                f"tls-cert-file {self.dir / 'redis.pem'}\ntls-key-file {self.dir / 'redis.key'}\n"
                f"tls-ca-cert-file {self.dir / 'ca.pem'}\ntls-auth-clients yes\n"
                f"user default off\nuser {REDIS_USER} on >{self.password} ~* &* +@all\n")
            args = [REDIS_SERVER, str(conf), *common]
        else:
            args = [REDIS_SERVER, "--port", str(self.port), *common]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, self.proc, timeout=15)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(params=["plain", "tls"])
def redis(request):
    server = RedisServer(tls=request.param == "tls")
    try:
        yield server
    finally:
        server.stop()


def fleet_policy(redis_url: str, name: str, database: str, documents: int, action: str,
                 limit: str | None = None, fleet_yaml: str = "") -> str:
    limit = limit or f"{{ documents: {documents}, per: 1m }}"
    return f"""
        fleet:
          redis: "{redis_url}"
          name: {name}
          timeout: 500ms
{fleet_yaml}        holds:
          timeout: 2m
        rules:
          - name: fleet-budget
            match: {{ namespace: "{database}.*", operations: [delete] }}
            limit: {limit}
            action: {action}
    """


class Fleet:
    """`proxies` proxies (fleet-0...) sharing one budget rule, fleet-budget;
    `limit` replaces its { documents: N, per: 1m }."""

    def __init__(self, backend, redis, database: str, documents: int, action: str,
                 limit: str | None = None, proxies: int = 3):
        self.proxies: list[GuardedProxy] = []
        try:
            for i in range(proxies):
                self.proxies.append(GuardedProxy(
                    backend.upstream,
                    fleet_policy(redis.url, f"fleet-{i}", database, documents, action, limit,
                                 redis.fleet_yaml())))
            for p in self.proxies:
                p.wait_for_log("fleet: connected to redis", timeout=15)
        except Exception:
            self.stop()
            raise
        self.clients = [p.client() for p in self.proxies]

    def readyz(self, i: int) -> str:
        """The detailed answer (degraded and why), which needs the token."""
        url = f"http://127.0.0.1:{self.proxies[i].admin_port}/readyz"
        request = urllib.request.Request(
            url, headers={"Authorization": f"Bearer {self.proxies[i].token}"})
        with urllib.request.urlopen(request, timeout=5) as r:
            assert r.status == 200
            return r.read().decode()

    def stop(self) -> None:
        for p in self.proxies:
            p.stop()


def other_than(owner: str) -> int:
    """The index of a proxy that is not `owner` ("fleet-N")."""
    return next(i for i in range(3) if f"fleet-{i}" != owner)


def delete_until_refused(clients, database: str, first_id: int, limit: int):
    """Deletes _id first_id, first_id+1, ... round-robin over `clients` until
    one is refused. Returns (ids deleted, the refusal, per-client counts)."""
    per_client = [0] * len(clients)
    deleted: list[int] = []
    for step in range(limit):
        i = step % len(clients)
        doc_id = first_id + step
        try:
            r = clients[i][database].c.delete_one({"_id": doc_id})
        except OperationFailure as err:
            return deleted, (doc_id, err), per_client
        assert r.deleted_count == 1
        deleted.append(doc_id)
        per_client[i] += 1
    return deleted, None, per_client


def test_shared_budget_trips_and_any_proxy_rejects_the_hold(backend, redis, direct):
    database = direct.fresh("fleet")
    direct[database].c.insert_many([{"_id": i} for i in range(60)])
    budget = 12
    fleet = Fleet(backend, redis, database, budget, "hold")
    try:
        outcome: dict = {}

        def loop():
            outcome["result"] = delete_until_refused(fleet.clients, database, 0, 40)

        worker = threading.Thread(target=loop, daemon=True)
        worker.start()
        # The delete that finds the shared breaker tripped is held by its proxy
        # and listed by all three.
        hold = fleet.proxies[0].admin.wait_for_hold(timeout=30)
        owner = hold["owner"]
        assert owner in {"fleet-0", "fleet-1", "fleet-2"}
        for p in fleet.proxies:
            listed = [h for h in p.admin.holds() if h["id"] == hold["id"]]
            assert len(listed) == 1, p.admin.holds()
            assert listed[0]["owner"] == owner
            assert listed[0]["rule"] == "fleet-budget"
        table = fleet.proxies[other_than(owner)].admin.ctl("holds")
        assert table.returncode == 0, table.stderr
        assert "PROXY" in table.stdout and owner in table.stdout, table.stdout
        deleted_before_hold = direct[database].c.count_documents({})
        passed = 60 - deleted_before_hold
        # The shared budget, give or take one delete racing the count of the
        # previous one (each proxy alone saw only about a third of it).
        assert budget <= passed <= budget + 1, (passed, fleet.proxies[2].admin.breakers())
        breakers = fleet.proxies[2].admin.breakers()
        assert len(breakers) == 1 and breakers[0]["tripped"], breakers
        assert breakers[0]["used"] == passed
        assert breakers[0]["pending_holds"] == 1

        # Rejected at a proxy that does not own it: routed to the owner.
        other = other_than(owner)
        answer = fleet.proxies[other].admin.reject(hold["id"], by="carol")
        assert answer["outcome"] == "rejected" and answer["owner"] == owner, answer
        worker.join(timeout=30)
        assert not worker.is_alive()
        deleted, refused, per_client = outcome["result"]
        assert len(deleted) == passed
        assert max(per_client) < budget, per_client
        print(f"\nfleet: {passed} deletes passed the shared budget of {budget} before the hold "
              f"(per proxy: {per_client})")
        doc_id, err = refused
        assert err.code == UNAUTHORIZED
        assert "rejected by carol" in str(err.details.get("errmsg")), err.details
        # Never forwarded: the held document is still there.
        assert direct[database].c.find_one({"_id": doc_id}) == {"_id": doc_id}
        assert direct[database].c.count_documents({}) == 60 - passed
        for p in fleet.proxies:
            assert p.admin.holds() == []
        # A second reject finds nothing, wherever it is asked.
        with pytest.raises(ApiError) as again:
            fleet.proxies[other].admin.reject(hold["id"], by="carol")
        assert again.value.status == 404

        # A reset given at one proxy applies to all.
        key = "fleet-budget:" + database + ".c"
        fleet.proxies[other].admin.breaker_action(key, "reset")
        for p in fleet.proxies:
            b = p.admin.breaker(key)
            assert b is not None and b["used"] == 0 and not b["tripped"], b
        # So does a grant.
        fleet.proxies[0].admin.breaker_action(key, "grant", documents=5)
        for p in fleet.proxies:
            assert p.admin.breaker(key)["allowance"]["documents"] == 5
        # The owner audited the rejection, naming the proxy it came through.
        fleet.proxies[int(owner.split("-")[1])].wait_for_log(
            f"via proxy fleet-{other}", timeout=5)
    finally:
        fleet.stop()


def test_redis_outage_falls_back_to_local_budgets_and_resumes(backend, redis, direct):
    database = direct.fresh("fleet_outage")
    direct[database].c.insert_many([{"_id": i} for i in range(100)])
    budget = 10
    key = "fleet-budget:" + database + ".c"
    fleet = Fleet(backend, redis, database, budget, "block")
    try:
        # Shared counting: 2 deletes through each proxy, seen as 6 by all.
        deleted, refused, _ = delete_until_refused(fleet.clients, database, 0, 6)
        assert refused is None and len(deleted) == 6
        for p in fleet.proxies:
            wait_until(lambda p=p: (p.admin.breaker(key) or {}).get("used") == 6, 5,
                       "the shared window to count 6")
        assert fleet.proxies[0].admin.metrics()["mongoguard_fleet_connected"] == 1

        killed = time.monotonic()
        redis.kill()
        for i in range(3):
            wait_until(lambda i=i: "degraded" in fleet.readyz(i), 10, "/readyz to say degraded")
        degraded_after = time.monotonic() - killed
        for p in fleet.proxies:
            assert p.admin.metrics()["mongoguard_fleet_connected"] == 0
            p.wait_for_log("enforcing local budgets", timeout=5)

        # Still enforcing, on each proxy's own window: proxy 0 has counted 2
        # of its own, so 8 more pass through it and the ninth is refused.
        deleted, refused, _ = delete_until_refused(fleet.clients[:1], database, 6, 30)
        assert len(deleted) == budget - 2, deleted
        assert refused is not None and refused[1].code == UNAUTHORIZED
        assert "budget of 10 documents" in str(refused[1].details.get("errmsg"))
        assert fleet.proxies[0].admin.metrics()["mongoguard_fleet_local_admits_total"] >= 9
        outage_deletes = len(deleted)

        restarted = time.monotonic()
        redis.start()
        for i in range(3):
            wait_until(lambda i=i: fleet.readyz(i) == "ready\n", 20, "/readyz to be ready again")
        resumed_after = time.monotonic() - restarted
        fleet.proxies[0].wait_for_log("replayed", timeout=5)
        # The new Redis started empty; proxy 0's outage deletes were replayed
        # into it, and every proxy sees them again.
        for p in fleet.proxies:
            b = p.admin.breaker(key)
            assert b is not None and b["used"] == outage_deletes, b
            assert p.admin.metrics()["mongoguard_fleet_connected"] == 1
        # Shared counting again: 2 left of the shared budget, whichever proxy.
        start_id = 6 + outage_deletes + 1
        deleted, refused, _ = delete_until_refused(fleet.clients[1:], database, start_id, 10)
        assert budget - outage_deletes <= len(deleted) <= budget - outage_deletes + 1, deleted
        assert refused is not None and refused[1].code == UNAUTHORIZED
        b = fleet.proxies[0].admin.breaker(key)
        assert b["tripped"] and b["used"] == outage_deletes + len(deleted), b
        print(f"\nfleet outage: degraded on all 3 proxies {degraded_after:.2f}s after the kill, "
              f"ready again {resumed_after:.2f}s after the restart; {outage_deletes} deletes "
              f"passed proxy 0's local budget during the outage")
    finally:
        fleet.stop()


def test_bad_fleet_config_is_refused_with_its_line(backend, tmp_path):
    from harness import PROXY_BIN
    path = tmp_path / "bad.yaml"
    path.write_text("fleet:\n  redis: \"redis://127.0.0.1:6379\"\n  tls: { server_name: r }\n")
    r = subprocess.run([str(PROXY_BIN), "--config", str(path), "--upstream", backend.upstream],
                       capture_output=True, text=True, timeout=15)
    assert r.returncode != 0
    assert f"{path}:2:3: fleet has no name" in r.stderr, r.stderr
    assert f"{path}:3:8: fleet.tls needs a rediss:// URL" in r.stderr, r.stderr
