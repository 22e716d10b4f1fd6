"""Compression does not hide a write from the policy.

pymongo with `compressors=snappy|zlib|zstd` talks through the proxy to the
fake upstream (FerretDB has no OP_COMPRESSED), which negotiates compression
in hello and answers compressed requests compressed, as mongod does. A
recording relay between pymongo and the proxy (`Tap`) keeps the exact bytes
the driver sent, so "forwarded byte-identical" compares the driver's frame
with the frame the upstream received.

Also: a compressed frame with an unknown compressor id is refused (the
connection closed, counted, nothing forwarded), and the hello handshake
offers the upstream only compressors the proxy can inflate."""

from __future__ import annotations

import socket
import struct
import threading

import pymongo
import pytest
from pymongo.errors import OperationFailure

import wire
from fake_upstream import FakeUpstream
from policy_helpers import PolicyProxy, check_block_error

RULE = "no-unfiltered-deletes"
POLICY = f"""
rules:
  - name: {RULE}
    match: {{namespace: "zdb.*", operations: [delete, update], filter: unfiltered}}
    action: block
"""
COMPRESSORS = ("snappy", "zlib", "zstd")
HELLOS = ("hello", "isMaster", "ismaster")


class Tap:
    """A loopback relay in front of `port` that records, per connection, every
    byte the client sent. Threads end when either side closes."""

    def __init__(self, port: int):
        self.target = port
        self.sent: list[bytearray] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._socks: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            upstream.settimeout(None)
            client.settimeout(None)
            record = bytearray()
            with self._lock:
                self.sent.append(record)
                self._socks += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, record), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, None), daemon=True).start()

    def _pump(self, src, dst, record):
        try:
            while True:
                data = src.recv(1 << 16)
                if not data:
                    break
                if record is not None:
                    with self._lock:
                        record += data
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def frames(self) -> list[bytes]:
        """Every complete frame any client sent, in order per connection."""
        out = []
        with self._lock:
            streams = [bytes(r) for r in self.sent]
        for data in streams:
            pos = 0
            while pos + 4 <= len(data):
                (n,) = struct.unpack_from("<i", data, pos)
                if pos + n > len(data):
                    break
                out.append(data[pos:pos + n])
                pos += n
        return out

    def stop(self):
        self._stopping.set()
        self._listener.close()
        with self._lock:
            socks = list(self._socks)
        for s in socks:
            try:
                s.close()
            except OSError:
                pass


@pytest.fixture
def fake():
    def count(msg, conn):
        # The proxy measures a multi statement's filter under filter: unfiltered
        # (the collection, then the filter): a selective one, 1 of 100.
        return [conn.server.reply(msg, {"n": 1 if msg.body.get("query") else 100, "ok": 1.0})]

    f = FakeUpstream({"count": count})
    yield f
    f.stop()


@pytest.fixture
def guarded(fake):
    p = PolicyProxy(f"mongodb://{fake.address}", POLICY)
    yield p
    p.stop()


def client_via(port: int, compressor: str) -> pymongo.MongoClient:
    return pymongo.MongoClient(f"mongodb://127.0.0.1:{port}/?directConnection=true",
                               compressors=compressor, serverSelectionTimeoutMS=5000,
                               retryWrites=False, maxPoolSize=1)


@pytest.mark.parametrize("compressor", COMPRESSORS)
def test_compressed_traffic_is_judged(fake, guarded, compressor):
    tap = Tap(guarded.proxy.port)
    client = client_via(tap.port, compressor)
    try:
        assert client.admin.command("ping")["ok"] == 1
        pings = fake.messages_for("ping")
        assert pings and pings[-1].compressor == compressor, \
            [(m.command, m.compressor) for m in fake.messages()]

        # Unfiltered: refused by the proxy, answered code 13, never forwarded.
        with pytest.raises(OperationFailure) as caught:
            client.zdb.c.delete_many({})
        check_block_error(caught.value, RULE, "delete", "zdb.c")
        with pytest.raises(OperationFailure) as caught:
            client.zdb.c.update_many({}, {"$set": {"a": 1}})
        check_block_error(caught.value, RULE, "update", "zdb.c")
        assert not fake.messages_for("delete") and not fake.messages_for("update"), \
            "a refused compressed write reached the upstream"

        # Filtered: no rule matches; forwarded compressed, exactly as sent.
        client.zdb.c.delete_many({"x": 1})
        forwarded = fake.wait_for_message(lambda m: m.command == "delete")
        assert forwarded.compressor == compressor
        statements = forwarded.body.get("deletes") or forwarded.sequences.get("deletes")
        assert statements == [{"q": {"x": 1}, "limit": 0}], (forwarded.body, forwarded.sequences)
        sent = [f for f in tap.frames() if wire.parse_header(f).request_id == forwarded.request_id]
        assert len(sent) == 1, "the driver's frame for the forwarded delete not found in the tap"
        assert wire.parse_header(sent[0]).op_code == wire.OP_COMPRESSED
        assert forwarded.raw == sent[0], "the forwarded compressed frame was altered"
    finally:
        client.close()
        tap.stop()
    metrics = guarded.proxy.metrics()
    assert metrics.get("mongoguard_compressed_messages_total", 0) >= 4, metrics
    blocked = [r for r in guarded.audit_records() if r.get("outcome") == "blocked"]
    assert len(blocked) == 2, blocked


@pytest.mark.parametrize("compressor_id", [4, 9, 255])
def test_unknown_compressor_id_is_rejected(fake, guarded, compressor_id):
    sock = wire.connect(guarded.proxy.port)
    try:
        assert wire.roundtrip(sock, wire.op_msg({"ping": 1, "$db": "admin"})).body["ok"] == 1
        received_before = fake.total_bytes_received()
        plain = wire.op_msg({"delete": "c", "deletes": [{"q": {"_id": 1}, "limit": 1}],
                             "$db": "zdb"})
        payload = plain[wire.HEADER_SIZE:]
        frame = wire.frame(wire.OP_COMPRESSED,
                           struct.pack("<iiB", wire.OP_MSG, len(payload), compressor_id) + payload)
        sock.sendall(frame)
        outcome, data = wire.wait_closed(sock, 5)
        assert outcome in ("eof", "reset") and data == b"", (outcome, data)
    finally:
        sock.close()
    guarded.proxy.wait_for_log("rejected frame: bad_compression")
    assert fake.total_bytes_received() == received_before, "the refused frame was forwarded"
    metrics = guarded.proxy.metrics()
    assert metrics.get('mongoguard_rejected_frames_total{reason="bad_compression"}') == 1, metrics


def test_compressed_body_that_does_not_inflate_is_rejected(fake, guarded):
    """Declares zlib but carries snappy bytes: refused, not forwarded."""
    sock = wire.connect(guarded.proxy.port)
    try:
        plain = wire.op_msg({"delete": "c", "deletes": [{"q": {}, "limit": 0}], "$db": "zdb"})
        good = wire.compress(plain, "snappy")
        bad = bytearray(good)
        bad[wire.HEADER_SIZE + 8] = wire.COMPRESSOR_IDS["zlib"]
        sock.sendall(bytes(bad))
        outcome, _ = wire.wait_closed(sock, 5)
        assert outcome in ("eof", "reset"), outcome
    finally:
        sock.close()
    guarded.proxy.wait_for_log("rejected frame: bad_compression")
    assert not fake.messages_for("delete")


# --- the handshake ---------------------------------------------------------

def _hello_to_upstream(fake: FakeUpstream, offered: list[str],
                       legacy: bool = False) -> tuple[dict, dict]:
    """Sends a hello (or, `legacy`, an isMaster over OP_QUERY) offering
    `offered` through a fresh proxy; returns (what the upstream received, what
    the client got back)."""
    with PolicyProxy(f"mongodb://{fake.address}", POLICY) as p:
        sock = wire.connect(p.proxy.port)
        try:
            if legacy:
                msg = wire.op_query("admin.$cmd", {"isMaster": 1, "compression": offered})
            else:
                msg = wire.op_msg({"hello": 1, "$db": "admin", "compression": offered})
            reply = wire.roundtrip(sock, msg, timeout=10)
        finally:
            sock.close()
    hellos = [m for m in fake.messages() if m.command in HELLOS]
    assert len(hellos) == 1, [m.body for m in hellos]
    return hellos[0].body, reply.body


def test_hello_with_known_compressors_passes_unchanged(fake):
    upstream_hello, reply = _hello_to_upstream(fake, ["zstd", "snappy", "zlib"])
    assert upstream_hello["compression"] == ["zstd", "snappy", "zlib"]
    assert reply["compression"] == ["zstd", "snappy", "zlib"]


@pytest.mark.parametrize("legacy", [False, True], ids=["OP_MSG hello", "OP_QUERY isMaster"])
@pytest.mark.parametrize("offered", [["lz4", "zlib"], ["bogus", "snappy", "zstd"],
                                     ["lz4"]])
def test_hello_offers_upstream_only_compressors_the_proxy_can_inflate(offered, legacy):
    """The fake here also 'supports' lz4 and bogus, as a future server might.
    Whatever the upstream picks from the client's list, the client will then
    compress with; the proxy can inflate only snappy, zlib and zstd (and noop),
    and refuses (closes) anything else. So the list must be trimmed before it
    reaches the upstream."""
    fake = FakeUpstream(compressors=("lz4", "bogus", "snappy", "zlib", "zstd"))
    try:
        upstream_hello, reply = _hello_to_upstream(fake, offered, legacy)
    finally:
        fake.stop()
    inflatable = [c for c in offered if c in COMPRESSORS]
    assert upstream_hello.get("compression", []) == inflatable, (
        f"client offered {offered}; upstream was offered {upstream_hello.get('compression')}, "
        f"and agreed to {reply.get('compression')}")
    assert reply.get("compression", []) == inflatable, reply


def test_client_that_uses_an_agreed_but_uninflatable_compressor_is_refused(fake):
    """What the trim prevents: when the upstream agreed to a compressor the
    proxy cannot read, the client's next compressed message is refused and its
    connection closed. (Here id 4, as lz4 might be numbered.)"""
    with PolicyProxy(f"mongodb://{fake.address}", POLICY) as p:
        s = wire.connect(p.proxy.port)
        try:
            plain = wire.op_msg({"ping": 1, "$db": "admin"})
            payload = plain[wire.HEADER_SIZE:]
            s.sendall(wire.frame(wire.OP_COMPRESSED,
                                 struct.pack("<iiB", wire.OP_MSG, len(payload), 4) + payload))
            outcome, _ = wire.wait_closed(s, 5)
            assert outcome in ("eof", "reset"), outcome
        finally:
            s.close()
        assert fake.total_bytes_received() == 0
