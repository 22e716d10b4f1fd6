"""Faults and their defined outcomes: the upstream dying (mid-request,
mid-exhaust-stream) and coming back, shutdown with requests in flight and
holds pending (SIGTERM and SIGINT), broken reloads, and the data path's
latency while slow clients, many connections, an admin flood or a hanging
webhook receiver press on the proxy.

The outcome of each is listed in docs/reliability.md ("## Faults"). Latency
bounds are generous multiples of a baseline measured in the same test: the
machine running them is shared, so they catch a stalled data path, not a
slow one. Every wait is bounded."""

from __future__ import annotations

import concurrent.futures
import pathlib
import signal
import socket
import statistics
import subprocess
import threading
import time

import pymongo
import pytest
from bson import Int64
from pymongo.errors import AutoReconnect, OperationFailure, PyMongoError

import backend as backend_module
import wire
from backend import Backend
from fake_upstream import CLOSE, Delay, FakeUpstream
from harness import PROXY_BIN, ProxyProcess, free_port, wait_for_port
from hold_helpers import GuardedProxy, unique_db, wait_until

pytestmark = pytest.mark.skipif(not PROXY_BIN.exists(), reason=f"{PROXY_BIN} not built")

NETWORK_ERRORS = (AutoReconnect, pymongo.errors.ServerSelectionTimeoutError,
                  pymongo.errors.NetworkTimeout, pymongo.errors.ConnectionFailure)


def ping(db: str = "admin") -> bytes:
    return wire.op_msg({"ping": 1, "$db": db})


class RestartableBackend(Backend):
    """FerretDB that can be killed (SIGKILL: no goodbye to anyone) and started
    again on the same port with the same data."""

    def _start(self) -> None:
        fixed = getattr(self, "_fixed_port", None)
        if fixed is None:
            super()._start()
            return
        original = backend_module.free_port
        backend_module.free_port = lambda: fixed
        try:
            super()._start()
        finally:
            backend_module.free_port = original

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=10)

    def restart(self) -> None:
        self._fixed_port = self.port
        deadline = time.monotonic() + 30
        while True:  # the port may linger for a moment after the kill
            try:
                self._start()
                return
            except Exception:
                if self.proc is not None and self.proc.poll() is None:
                    self.proc.kill()
                    self.proc.wait(timeout=10)
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)


@pytest.fixture
def own_backend():
    with RestartableBackend() as b:
        yield b


# ---------------------------------------------------------------------------
# The upstream dies

def test_upstream_killed_mid_request_then_restarted(own_backend):
    """Clients see network errors while FerretDB is gone, never a made-up
    reply; once it is back the same proxy process serves again, and every
    acknowledged insert is there."""
    database = unique_db("faults")
    with ProxyProcess(own_backend.upstream) as proxy:
        client = pymongo.MongoClient(proxy.uri, serverSelectionTimeoutMS=3000,
                                     retryWrites=False, retryReads=False, socketTimeoutMS=5000)
        coll = client[database].c
        acknowledged: list[int] = []
        errors: list[BaseException] = []
        stop = threading.Event()

        def writer():
            i = 0
            while not stop.is_set() and len(errors) < 3:
                try:
                    coll.insert_one({"_id": i})
                    acknowledged.append(i)
                except PyMongoError as e:  # noqa: PERF203 - the outcome under test
                    errors.append(e)
                    time.sleep(0.05)
                i += 1

        t = threading.Thread(target=writer, daemon=True)
        t.start()
        wait_until(lambda: len(acknowledged) >= 20, 20, "inserts flowing")
        own_backend.kill()  # mid-stream of requests: one is in flight or about to be
        wait_until(lambda: errors, 15, "the writer to see the upstream gone")
        stop.set()
        t.join(timeout=15)
        assert all(isinstance(e, NETWORK_ERRORS) for e in errors), errors
        assert proxy.proc.poll() is None, "the proxy died with its upstream"
        # While the upstream is down, a new client is refused with a network error.
        with wire.connect(proxy.port) as s:
            s.sendall(ping())
            how, data = wire.wait_closed(s, timeout=15)
        assert how in ("eof", "reset") and data == b"", (how, data)

        own_backend.restart()
        # The same proxy process, no restart: a fresh driver connection works.
        after = pymongo.MongoClient(proxy.uri, serverSelectionTimeoutMS=10000)
        after[database].c.insert_one({"_id": "after-restart"})
        client.close()
        after.close()
        assert proxy.proc.poll() is None
        proxy.wait_for_log("upstream")
    direct = pymongo.MongoClient(own_backend.uri, serverSelectionTimeoutMS=10000)
    present = {d["_id"] for d in direct[database].c.find({}, {"_id": 1})}
    direct.drop_database(database)
    direct.close()
    missing = [i for i in acknowledged if i not in present]
    assert not missing, f"acknowledged inserts lost: {missing[:10]}"
    assert "after-restart" in present


def test_upstream_gone_mid_exhaust_stream_closes_the_client():
    """Two replies of a five-reply exhaust stream arrive, then the server
    vanishes: the client gets exactly those two and then a closed connection
    (a network error), and the proxy keeps serving new clients."""
    batches = [{"cursor": {"id": Int64(77), "ns": "test.c", "nextBatch": [{"_id": i}]},
                "ok": 1.0} for i in range(5)]
    with FakeUpstream() as fake:
        def getmore(msg, conn):
            steps = fake.exhaust_stream(msg, batches, delay=0.05)
            # reply, delay, reply, delay, ... : keep two replies, then drop.
            return steps[:3] + [Delay(0.1), CLOSE]

        fake.handlers["getMore"] = getmore
        with ProxyProcess(f"mongodb://127.0.0.1:{fake.port}") as proxy:
            with wire.connect(proxy.port) as s:
                s.sendall(wire.op_msg({"getMore": Int64(77), "collection": "c", "$db": "test"},
                                      flags=wire.EXHAUST_ALLOWED))
                got = [wire.parse_message(wire.read_message(s, timeout=5)) for _ in range(2)]
                assert [m.more_to_come for m in got] == [True, True]
                how, data = wire.wait_closed(s, timeout=10)
            assert how in ("eof", "reset") and data == b"", (how, data)
            assert proxy.proc.poll() is None
            with wire.connect(proxy.port) as s:
                assert wire.roundtrip(s, ping()).body == {"ok": 1.0}


# ---------------------------------------------------------------------------
# Shutdown

def slow_ping_fake(seconds: float) -> FakeUpstream:
    """A fake whose `ping` on database `slow` takes `seconds` to answer."""
    fake = FakeUpstream()

    def slow(msg, conn):
        if msg.body.get("$db") == "slow":
            return [Delay(seconds), fake.reply(msg, {"ok": 1.0, "slow": True})]
        return None

    fake.handlers["ping"] = slow
    return fake


def config_proxy(upstream: str, yaml_text: str) -> tuple[ProxyProcess, pathlib.Path]:
    import tempfile

    d = pathlib.Path(tempfile.mkdtemp(prefix="mg-faults-"))
    path = d / "mongoguard.yaml"
    path.write_text(yaml_text)
    return ProxyProcess(upstream, "--config", str(path)), path


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_shutdown_lets_a_request_in_flight_finish_and_refuses_new_clients(sig):
    with slow_ping_fake(1.5) as fake:
        proxy, _ = config_proxy(f"mongodb://127.0.0.1:{fake.port}", "shutdown_grace: 20s\n")
        with proxy:
            idle = wire.connect(proxy.port)  # an idle pooled connection
            busy = wire.connect(proxy.port)
            assert wire.roundtrip(idle, ping()).body == {"ok": 1.0}
            request = ping("slow")
            busy.sendall(request)
            fake.wait_for_message(lambda m: m.body.get("$db") == "slow", timeout=5)
            started = time.monotonic()
            proxy.proc.send_signal(sig)
            # The idle connection is closed at once, the listener too.
            how, _ = wire.wait_closed(idle, timeout=5)
            assert how in ("eof", "reset"), how
            proxy.wait_for_log("waiting up to 20s for requests in flight")
            with pytest.raises(OSError):
                socket.create_connection(("127.0.0.1", proxy.port), timeout=2).close()
            # The request in flight is answered, then its connection closes.
            reply = wire.read_message(busy, timeout=10)
            assert wire.parse_message(reply).body == {"ok": 1.0, "slow": True}
            assert wire.parse_message(reply).response_to == wire.parse_header(request).request_id
            how, _ = wire.wait_closed(busy, timeout=5)
            assert how in ("eof", "reset"), how
            assert proxy.proc.wait(timeout=15) == 0
            # It did not sit out the whole grace period.
            assert time.monotonic() - started < 15
            idle.close()
            busy.close()
            assert "mongoguard stopped" in proxy.log_text()


def test_shutdown_grace_bounds_a_request_that_takes_too_long():
    with slow_ping_fake(30) as fake:
        proxy, _ = config_proxy(f"mongodb://127.0.0.1:{fake.port}", "shutdown_grace: 1s\n")
        with proxy:
            busy = wire.connect(proxy.port)
            busy.sendall(ping("slow"))
            fake.wait_for_message(lambda m: m.body.get("$db") == "slow", timeout=5)
            started = time.monotonic()
            proxy.proc.send_signal(signal.SIGTERM)
            assert proxy.proc.wait(timeout=20) == 0
            assert time.monotonic() - started < 15, "the grace period was not applied"
            how, data = wire.wait_closed(busy, timeout=5)
            assert how in ("eof", "reset") and data == b"", (how, data)
            busy.close()
            text = proxy.log_text()
            assert "shutdown grace (1s) over: closing 1 connection(s)" in text, text[-3000:]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_shutdown_rejects_holds_and_closes_idle_connections_at_once(backend, sig):
    database = unique_db("faults")
    direct = pymongo.MongoClient(backend.uri, serverSelectionTimeoutMS=5000)
    direct[database].c.insert_many([{"_id": i} for i in range(5)])
    policy = f"""
        shutdown_grace: 30s
        rules:
          - name: hold-deletes
            match: {{ namespace: "{database}.*", operations: [delete] }}
            action: hold
    """
    try:
        with GuardedProxy(backend.upstream, policy) as gp, \
                concurrent.futures.ThreadPoolExecutor(2) as pool:
            idle = gp.client()
            idle.admin.command("ping")
            held = pool.submit(gp.client()[database].c.delete_many, {})
            wait_until(lambda: len(gp.admin.holds()) == 1, 10, "the delete to be held")
            started = time.monotonic()
            gp.proc.send_signal(sig)
            with pytest.raises(OperationFailure) as caught:
                held.result(timeout=10)
            assert "mongoguard is shutting down; not forwarded" in str(caught.value)
            assert gp.proc.wait(timeout=20) == 0
            # Nothing was in flight: no waiting for the 30 s grace.
            assert time.monotonic() - started < 10
        assert direct[database].c.count_documents({}) == 5, "a held delete ran at shutdown"
    finally:
        direct.drop_database(database)
        direct.close()


# ---------------------------------------------------------------------------
# Broken reloads

def test_broken_reload_by_signal_and_by_api_keeps_the_old_policy(backend):
    database = unique_db("faults")
    policy = f"""
        rules:
          - name: no-drops
            match: {{ namespace: "{database}.*", operations: [drop] }}
            action: block
    """
    with GuardedProxy(backend.upstream, policy) as gp:
        coll = gp.client()[database].c
        coll.insert_one({"_id": 1})

        def still_blocked():
            with pytest.raises(OperationFailure) as caught:
                coll.drop()
            assert "no-drops" in str(caught.value)

        still_blocked()
        good = gp.config_path.read_text()
        gp.config_path.write_text(good + "rules: [ this is : not yaml\n")
        gp.proc.send_signal(signal.SIGHUP)
        gp.wait_for_log("reload (SIGHUP) refused, the running policy stays in place")
        still_blocked()
        status = None
        try:
            gp.admin.request("POST", "/api/reload", {"by": "alice"})
        except Exception as e:  # noqa: BLE001 - ApiError carries the status
            status = getattr(e, "status", None)
        assert status == 422
        still_blocked()
        assert gp.proc.poll() is None
        gp.config_path.write_text(good)
    direct = pymongo.MongoClient(backend.uri, serverSelectionTimeoutMS=5000)
    assert direct[database].c.count_documents({}) == 1
    direct.drop_database(database)
    direct.close()


# ---------------------------------------------------------------------------
# The data path keeps its latency

def ping_latencies(client: pymongo.MongoClient, database: str, n: int = 60) -> list[float]:
    coll = client[database].c
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        coll.find_one({"_id": 1})
        out.append(time.perf_counter() - t0)
    return out


def assert_latency_kept(baseline: list[float], loaded: list[float], what: str) -> None:
    base = statistics.median(baseline)
    under = statistics.median(loaded)
    # Generous: a stalled data path takes seconds; a busy shared machine
    # may well make it several times slower.
    bound = 10 * base + 0.05
    assert under < bound, f"{what}: p50 {under * 1000:.1f} ms vs baseline {base * 1000:.1f} ms"


@pytest.fixture
def latency_setup(backend):
    database = unique_db("latency")
    direct = pymongo.MongoClient(backend.uri, serverSelectionTimeoutMS=5000)
    direct[database].c.insert_one({"_id": 1, "x": 1})
    yield database
    direct.drop_database(database)
    direct.close()


def test_slow_clients_do_not_slow_the_data_path(backend, latency_setup):
    database = latency_setup
    with GuardedProxy(backend.upstream, "rules: []") as gp:
        client = gp.client()
        baseline = ping_latencies(client, database)
        hello = wire.op_msg({"hello": 1, "$db": "admin"})
        slow = [wire.connect(gp.port) for _ in range(50)]
        stop = threading.Event()

        def dribble():  # one byte a second on each slow connection
            i = 0
            while not stop.is_set() and i < len(hello):
                for s in slow:
                    try:
                        s.sendall(hello[i:i + 1])
                    except OSError:
                        pass
                i += 1
                stop.wait(1.0)

        t = threading.Thread(target=dribble, daemon=True)
        t.start()
        time.sleep(1.5)
        loaded = ping_latencies(client, database)
        stop.set()
        t.join(timeout=5)
        for s in slow:
            s.close()
        assert_latency_kept(baseline, loaded, "50 one-byte-a-second clients")
        assert gp.proc.poll() is None


def test_admin_flood_does_not_slow_the_data_path(backend, latency_setup):
    database = latency_setup
    with GuardedProxy(backend.upstream, "rules: []") as gp:
        client = gp.client()
        baseline = ping_latencies(client, database)
        stop = threading.Event()
        served = [0]

        def flood():
            while not stop.is_set():
                for path in ("/api/holds", "/metrics", "/api/decisions?limit=500"):
                    try:
                        gp.admin.request("GET", path)
                        served[0] += 1
                    except Exception:  # noqa: BLE001 - the flood only has to press
                        pass

        threads = [threading.Thread(target=flood, daemon=True) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        loaded = ping_latencies(client, database)
        stop.set()
        for t in threads:
            t.join(timeout=10)
        assert served[0] > 20, served
        assert_latency_kept(baseline, loaded, "admin flood")


def test_hanging_webhook_receiver_does_not_slow_the_data_path(backend, latency_setup):
    database = latency_setup
    # Accepts connections and never answers a byte.
    sink = socket.socket()
    sink.bind(("127.0.0.1", 0))
    sink.listen(64)
    port = sink.getsockname()[1]
    policy = f"""
        holds:
          timeout: 2s
        notify:
          webhooks:
            - url: http://127.0.0.1:{port}/hook
        rules:
          - name: hold-deletes
            match: {{ namespace: "{database}.held", operations: [delete] }}
            action: hold
    """
    try:
        with GuardedProxy(backend.upstream, policy) as gp, \
                concurrent.futures.ThreadPoolExecutor(8) as pool:
            client = gp.client()
            baseline = ping_latencies(client, database)
            held = [pool.submit(gp.client()[database].held.delete_one, {"_id": i})
                    for i in range(6)]
            wait_until(lambda: len(gp.admin.holds()) >= 1, 10, "holds (and webhooks) to start")
            loaded = ping_latencies(client, database)
            for f in held:
                with pytest.raises(OperationFailure):
                    f.result(timeout=30)
            assert_latency_kept(baseline, loaded, "hanging webhook receiver")
    finally:
        sink.close()


def test_ten_thousand_connections_beyond_the_limit_are_refused_and_the_data_path_keeps_up(
        backend, latency_setup):
    """10,000 client connections against limits.max_connections: 4000.
    One process may hold about 20,000 descriptors and every client costs two
    (its own and its upstream's), so the limit is set well inside that: up to
    4000 are served (each with a FerretDB connection), the rest are closed at
    once and counted, and the data path keeps its latency."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < 12000:
        pytest.skip(f"open-file limit {hard} is too low for 10,000 sockets in the test")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    database = latency_setup
    total, limit = 10_000, 4000
    with GuardedProxy(backend.upstream, f"limits:\n  max_connections: {limit}\nrules: []") as gp:
        client = gp.client()
        baseline = ping_latencies(client, database)
        # The driver's own connections (pool and monitors) count too.
        served = limit - int(gp.admin.metrics()["mongoguard_connections_open"])
        socks = []
        try:
            for _ in range(total):
                s = socket.socket()
                s.settimeout(10)
                socks.append(s)
                try:
                    s.connect(("127.0.0.1", gp.port))
                except ConnectionResetError:
                    pass  # refused before connect() returned: still counted below
            wait_until(lambda: gp.admin.metrics().get("mongoguard_connections_refused_total", 0)
                       >= total - served, 60, "the excess to be refused")
            loaded = ping_latencies(client, database)
            m = gp.admin.metrics()
            assert m["mongoguard_connections_refused_total"] == total - served, m
            assert m["mongoguard_connections_open"] == limit, m
            assert_latency_kept(baseline, loaded, f"{served} idle connections, {total - served} refused")
            assert f"limits.max_connections is {limit}" in gp.log_text()
        finally:
            for s in socks:
                s.close()
        wait_until(lambda: gp.admin.metrics()["mongoguard_connections_open"] <= limit - served, 60,
                   "the connections to close")
        assert gp.proc.poll() is None
