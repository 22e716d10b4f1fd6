"""Protocol corners the proxy must relay untouched, through build/mongoguard
in front of the scripted fake upstream: exhaust streams, fire-and-forget
requests, compression, held awaitable hellos, messages at the size limit,
checksums, and upstream failures.

"Byte-identical" here means: the bytes the client sent are exactly the bytes
the fake received, and the bytes the fake sent are exactly the bytes the
client received."""

from __future__ import annotations

import re
import socket
import time

import bson
import pytest
from bson import Binary, Int64, ObjectId

import wire
from fake_upstream import CLOSE, Delay, FakeUpstream
from harness import PROXY_BIN, ProxyProcess, free_port

needs_proxy = pytest.mark.skipif(not PROXY_BIN.exists(), reason=f"{PROXY_BIN} not built")


def upstream_uri(port: int) -> str:
    return f"mongodb://127.0.0.1:{port}"


def ping(db: str = "admin", **flags) -> bytes:
    return wire.op_msg({"ping": 1, "$db": db}, **flags)


def assert_ping_works(port: int) -> None:
    with wire.connect(port) as s:
        req = ping()
        reply = wire.roundtrip(s, req)
        assert reply.op_code == wire.OP_MSG
        assert reply.response_to == wire.parse_header(req).request_id
        assert reply.body["ok"] == 1.0


def upstream_conn_of(fake: FakeUpstream, raw: bytes, timeout: float = 5.0):
    """The fake's connection that received exactly `raw` as one message."""

    def find():
        for c in list(fake.connections):
            with c._lock:
                if any(m.raw == raw for m in c.messages):
                    return c
        return None

    return fake.wait_for(find, timeout, "request to reach the fake byte-identical")


class LogMark:
    """Remembers how long the proxy log was, to look only at what follows."""

    def __init__(self, proxy: ProxyProcess):
        self.proxy = proxy
        self.offset = len(proxy.log_text())

    def new_text(self) -> str:
        return self.proxy.log_text()[self.offset:]

    def wait_for(self, pattern: str, timeout: float = 5.0) -> str:
        rx = re.compile(pattern, re.IGNORECASE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.new_text().splitlines():
                if rx.search(line):
                    return line
            time.sleep(0.05)
        raise AssertionError(f"no log line matching {pattern!r} after the mark; new log:\n{self.new_text()[-4000:]}")


@pytest.fixture
def fake():
    with FakeUpstream() as f:
        yield f


@pytest.fixture
def proxy(fake):
    if not PROXY_BIN.exists():
        pytest.skip(f"{PROXY_BIN} not built")
    with ProxyProcess(upstream_uri(fake.port)) as p:
        yield p


# ---------------------------------------------------------------------------
# The fake itself, without the proxy: if these fail, the corner tests below
# say nothing about the proxy.

@pytest.mark.parametrize("compressor", [None, "snappy", "zlib"])
def test_fake_serves_pymongo_directly(fake, compressor):
    pymongo = pytest.importorskip("pymongo")
    kw = {"compressors": compressor} if compressor else {}
    client = pymongo.MongoClient(fake.uri, serverSelectionTimeoutMS=5000, connectTimeoutMS=5000, **kw)
    try:
        assert client.admin.command("ping")["ok"] == 1.0
    finally:
        client.close()
    pings = fake.messages_for("ping")
    assert pings and pings[-1].compressor == compressor


def test_fake_answers_op_query_ismaster_with_op_reply(fake):
    with wire.connect(fake.port) as s:
        req = wire.op_query("admin.$cmd", {"isMaster": 1, "compression": ["zstd", "lz4", "zlib"]})
        reply = wire.roundtrip(s, req)
    assert reply.op_code == wire.OP_REPLY
    assert reply.response_to == wire.parse_header(req).request_id
    assert reply.body["ismaster"] is True and reply.body["maxWireVersion"] == 21
    assert reply.body["compression"] == ["zstd", "zlib"]


def test_fake_exhaust_stream_chains_response_to(fake):
    fake.handlers["getMore"] = lambda m, c: fake.exhaust_stream(m, [{"ok": 1.0, "i": i} for i in range(3)])
    with wire.connect(fake.port) as s:
        req = wire.op_msg({"getMore": Int64(1), "collection": "c", "$db": "t"}, flags=wire.EXHAUST_ALLOWED)
        s.sendall(req)
        replies = [wire.parse_message(wire.read_message(s)) for _ in range(3)]
    assert replies[0].response_to == wire.parse_header(req).request_id
    assert replies[1].response_to == replies[0].request_id
    assert [r.more_to_come for r in replies] == [True, True, False]


# ---------------------------------------------------------------------------
# 1. Exhaust

@needs_proxy
def test_exhaust_stream_of_five_reaches_client_whole(fake, proxy):
    batches = [{"cursor": {"id": Int64(0 if i == 4 else 77), "ns": "test.c",
                           "nextBatch": [{"_id": i * 10 + k} for k in range(3)]}, "ok": 1.0}
               for i in range(5)]

    def getmore(msg, conn):
        if msg.exhaust_allowed:
            return fake.exhaust_stream(msg, batches, delay=0.05)
        return None

    fake.handlers["getMore"] = getmore
    with wire.connect(proxy.port) as s:
        req = wire.op_msg({"getMore": Int64(77), "collection": "c", "$db": "test"},
                          flags=wire.EXHAUST_ALLOWED)
        s.sendall(req)
        got = [wire.read_message(s, timeout=5) for _ in range(5)]
        conn = upstream_conn_of(fake, req)
        assert got == conn.sent[-5:], "exhaust replies changed on the way"

        parsed = [wire.parse_message(r) for r in got]
        assert parsed[0].response_to == wire.parse_header(req).request_id
        for prev, nxt in zip(parsed, parsed[1:]):
            assert nxt.response_to == prev.request_id
        assert [p.more_to_come for p in parsed] == [True] * 4 + [False]
        assert wire.expect_silence(s, 0.3) == b"", "proxy sent more than the stream"

        # The stream ended: the connection is an ordinary one again.
        after = ping("test")
        reply = wire.roundtrip(s, after)
        assert reply.response_to == wire.parse_header(after).request_id
        assert reply.body == {"ok": 1.0}


# ---------------------------------------------------------------------------
# 2. moreToCome (w:0) requests

@needs_proxy
def test_more_to_come_request_gets_no_reply_and_arrives_intact(fake, proxy):
    with wire.connect(proxy.port) as s:
        req = wire.op_msg({"insert": "c", "$db": "test", "writeConcern": {"w": 0}, "ordered": True},
                          sequences={"documents": [{"_id": 1, "x": "fire and forget"}]},
                          flags=wire.MORE_TO_COME)
        s.sendall(req)
        assert wire.expect_silence(s, 1.0) == b"", "a moreToCome request must get no reply"
        upstream_conn_of(fake, req)

        nxt = ping("test")
        reply = wire.roundtrip(s, nxt)
        assert reply.response_to == wire.parse_header(nxt).request_id
        assert reply.body == {"ok": 1.0}


# ---------------------------------------------------------------------------
# 3. Compression

@needs_proxy
@pytest.mark.parametrize("compressor", ["snappy", "zlib", "zstd"])
def test_compressed_request_and_reply_pass_byte_identical(fake, proxy, compressor):
    docs = [{"_id": i, "name": f"doc-{i}", "pad": "z" * 200} for i in range(20)]
    fake.handlers["find"] = lambda m, c: [fake.reply(m, {"cursor": {"id": Int64(0), "ns": "test.c",
                                                                   "firstBatch": docs}, "ok": 1.0})]
    with wire.connect(proxy.port) as s:
        hello = wire.roundtrip(s, wire.op_msg({"hello": 1, "$db": "admin", "compression": [compressor]}))
        assert hello.body["ok"] == 1.0
        assert compressor in hello.body.get("compression", []), hello.body

        req = wire.compress(wire.op_msg({"find": "c", "filter": {"name": {"$ne": None}}, "$db": "test"}),
                            compressor)
        s.sendall(req)
        raw_reply = wire.read_message(s)
        conn = upstream_conn_of(fake, req)
        assert raw_reply == conn.sent[-1], "compressed reply changed on the way"

    reply = wire.parse_message(raw_reply)
    assert reply.compressor == compressor
    assert reply.response_to == wire.parse_header(req).request_id
    assert reply.body["cursor"]["firstBatch"] == docs


def _have_pymongo_compressor(name: str) -> bool:
    try:
        from pymongo.compression_support import validate_compressors
    except ImportError:
        return False
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return validate_compressors(None, name) == [name]


@needs_proxy
@pytest.mark.parametrize("compressor", ["snappy", "zlib", "zstd"])
def test_pymongo_with_compression_pings_through_proxy(fake, proxy, compressor):
    pymongo = pytest.importorskip("pymongo")
    if not _have_pymongo_compressor(compressor):
        pytest.skip(f"this pymongo cannot use {compressor}")
    client = pymongo.MongoClient(proxy.uri, compressors=compressor, serverSelectionTimeoutMS=5000,
                                 connectTimeoutMS=5000, socketTimeoutMS=5000)
    try:
        assert client.admin.command("ping")["ok"] == 1.0
        assert client.test.command("ping")["ok"] == 1.0
    finally:
        client.close()
    pings = fake.messages_for("ping")
    assert pings and all(p.compressor == compressor for p in pings), \
        [(p.command, p.compressor) for p in pings]


# ---------------------------------------------------------------------------
# 4. Awaitable hello

def _awaitable_hello_handler(fake, hold: float):
    process_id = ObjectId()

    def hello(msg, conn):
        doc = fake.hello_document(msg, conn)
        doc["topologyVersion"] = {"processId": process_id, "counter": Int64(0)}
        if "topologyVersion" in msg.body and "maxAwaitTimeMS" in msg.body:
            return [Delay(hold), fake.reply(msg, doc)]
        return [fake.reply(msg, doc)]

    return hello, process_id


@needs_proxy
def test_awaitable_hello_held_three_seconds_is_answered(fake, proxy):
    handler, process_id = _awaitable_hello_handler(fake, hold=3.0)
    fake.handlers["hello"] = handler
    with wire.connect(proxy.port) as s:
        first = wire.roundtrip(s, wire.op_msg({"hello": 1, "$db": "admin"}))
        assert first.body["topologyVersion"]["processId"] == process_id

        req = wire.op_msg({"hello": 1, "$db": "admin", "topologyVersion": first.body["topologyVersion"],
                           "maxAwaitTimeMS": 10000})
        t0 = time.monotonic()
        s.sendall(req)
        raw = wire.read_message(s, timeout=10)
        elapsed = time.monotonic() - t0
        # Not compared byte for byte: the proxy may rewrite hello replies
        # (topology mapping). What matters is that it waited for the answer.
        upstream_conn_of(fake, req)
    reply = wire.parse_message(raw)
    assert 2.8 <= elapsed < 8, f"awaitable hello answered after {elapsed:.2f}s"
    assert reply.response_to == wire.parse_header(req).request_id
    assert reply.body["isWritablePrimary"] is True and reply.body["ok"] == 1.0


@needs_proxy
def test_streamed_hello_with_exhaust_is_relayed(fake, proxy):
    """The SDAM streaming protocol: an awaitable hello with exhaustAllowed is
    answered by a reply every maxAwaitTimeMS, each with moreToCome."""
    process_id = ObjectId()

    def hello(msg, conn):
        doc = fake.hello_document(msg, conn)
        doc["topologyVersion"] = {"processId": process_id, "counter": Int64(0)}
        if msg.exhaust_allowed:
            return fake.exhaust_stream(msg, [doc] * 3, delay=0.7)
        return [fake.reply(msg, doc)]

    fake.handlers["hello"] = hello
    with wire.connect(proxy.port) as s:
        req = wire.op_msg({"hello": 1, "$db": "admin",
                           "topologyVersion": {"processId": process_id, "counter": Int64(0)},
                           "maxAwaitTimeMS": 700}, flags=wire.EXHAUST_ALLOWED)
        s.sendall(req)
        got = [wire.parse_message(wire.read_message(s, timeout=5)) for _ in range(3)]
    assert got[0].response_to == wire.parse_header(req).request_id
    assert [g.more_to_come for g in got] == [True, True, False]
    assert got[2].response_to == got[1].request_id
    assert all(g.body["isWritablePrimary"] is True for g in got)


# ---------------------------------------------------------------------------
# 5. Near the 48,000,000-byte limit

NEAR_LIMIT = 47_900_000


def near_limit_sequence_message(body: dict, identifier: str, total: int, **kw) -> bytes:
    """An OP_MSG of exactly `total` bytes: `body` plus a kind-1 sequence of
    ~1 MB binary documents."""
    chunk = 1_000_000
    docs = []
    base = len(wire.op_msg(body, sequences={identifier: []}, **kw))
    size = base
    i = 0
    while True:
        doc_overhead = len(bson.encode({"_id": i, "d": Binary(b"")}))
        room = total - size
        if room <= 0:
            break
        n = min(chunk, room - doc_overhead)
        assert n >= 0, "cannot hit the exact size"
        doc = bson.encode({"_id": i, "d": Binary(b"\xab" * n)})
        docs.append(doc)
        size += len(doc)
        i += 1
    msg = wire.op_msg(body, sequences={identifier: docs}, **kw)
    assert len(msg) == total
    return msg


@needs_proxy
def test_request_near_size_limit_passes_byte_identical(fake, proxy):
    fake.handlers["insert"] = lambda m, c: [fake.reply(m, {"n": len(m.sequences["documents"]), "ok": 1.0})]
    req = near_limit_sequence_message({"insert": "big", "$db": "test", "ordered": True}, "documents", NEAR_LIMIT)
    with wire.connect(proxy.port, timeout=30) as s:
        s.sendall(req)
        reply = wire.parse_message(wire.read_message(s, timeout=30))
        upstream_conn_of(fake, req, timeout=10)
    assert reply.response_to == wire.parse_header(req).request_id
    assert reply.body["ok"] == 1.0 and reply.body["n"] == 48


@needs_proxy
def test_reply_near_size_limit_passes_byte_identical(fake, proxy):
    """A reply of 47.9 MB (a body and a kind-1 sequence) and a reply whose
    single body is a 16 MiB document come back as sent."""
    body = {"cursor": {"id": Int64(0), "ns": "test.big"}, "ok": 1.0}
    big = {}

    def aggregate(msg, conn):
        raw = near_limit_sequence_message(body, "cursor.firstBatch", NEAR_LIMIT, response_to=msg.request_id)
        big["raw"] = raw
        return [raw]

    def find(msg, conn):
        pad = wire.MAX_BSON_OBJECT_SIZE - 200
        doc = {"cursor": {"id": Int64(0), "ns": "test.big", "firstBatch": [{"_id": 1, "d": Binary(b"\xcd" * pad)}]},
               "ok": 1.0}
        raw = fake.reply(msg, doc)
        big["find"] = raw
        return [raw]

    fake.handlers["aggregate"] = aggregate
    fake.handlers["find"] = find
    with wire.connect(proxy.port, timeout=30) as s:
        req = wire.op_msg({"aggregate": "big", "pipeline": [], "cursor": {}, "$db": "test"})
        s.sendall(req)
        got = wire.read_message(s, timeout=30)
        assert len(got) == NEAR_LIMIT
        assert got == big["raw"], "near-limit reply changed on the way"

        req2 = wire.op_msg({"find": "big", "filter": {}, "$db": "test"})
        s.sendall(req2)
        got2 = wire.read_message(s, timeout=30)
        assert got2 == big["find"], "16 MiB reply changed on the way"


# ---------------------------------------------------------------------------
# Checksums and OP_QUERY handshakes pass too.

@needs_proxy
def test_checksummed_request_and_reply_pass_byte_identical(fake, proxy):
    fake.handlers["ping"] = lambda m, c: [wire.op_msg({"ok": 1.0}, response_to=m.request_id, checksum=True)]
    with wire.connect(proxy.port) as s:
        req = ping("test", checksum=True)
        s.sendall(req)
        raw = wire.read_message(s)
        conn = upstream_conn_of(fake, req)
        assert raw == conn.sent[-1]
    reply = wire.parse_op_msg(raw)  # verifies the CRC
    assert reply.checksum is not None and reply.body == {"ok": 1.0}


@needs_proxy
def test_op_query_ismaster_is_answered_with_op_reply(fake, proxy):
    with wire.connect(proxy.port) as s:
        req = wire.op_query("admin.$cmd", {"isMaster": 1, "client": {"application": {"name": "corner-test"}}})
        reply = wire.roundtrip(s, req)
    assert reply.op_code == wire.OP_REPLY
    assert reply.response_to == wire.parse_header(req).request_id
    assert reply.body["ismaster"] is True and reply.body["ok"] == 1.0


# ---------------------------------------------------------------------------
# 6. Upstream failures

UPSTREAM_FAILURE = r"upstream|refused|reset|end of file|eof|closed"


@needs_proxy
def test_upstream_unreachable_closes_client_and_proxy_keeps_serving():
    dead = free_port()  # nothing listens here
    with ProxyProcess(upstream_uri(dead)) as proxy:
        for attempt in range(2):
            mark = LogMark(proxy)
            with wire.connect(proxy.port) as s:
                try:
                    s.sendall(wire.op_msg({"hello": 1, "$db": "admin"}))
                except OSError:
                    pass  # already closed: fine
                how, data = wire.wait_closed(s, timeout=10)
            assert how in ("eof", "reset"), f"attempt {attempt}: client not closed ({how}), got {data!r}"
            mark.wait_for(UPSTREAM_FAILURE)
            assert proxy.proc.poll() is None, "proxy died after an unreachable upstream"

        # Something appears at the upstream address: the proxy connects afresh.
        with FakeUpstream(port=dead) as fake:
            assert_ping_works(proxy.port)
            assert fake.messages_for("ping")


@needs_proxy
def test_upstream_dropping_mid_request_closes_client_then_next_client_works(fake, proxy):
    dropped = []

    def ping_once_dropped(msg, conn):
        if not dropped:
            dropped.append(conn.index)
            return [CLOSE]
        return None

    fake.handlers["ping"] = ping_once_dropped
    mark = LogMark(proxy)
    with wire.connect(proxy.port) as s:
        s.sendall(ping())
        how, data = wire.wait_closed(s, timeout=10)
    assert how in ("eof", "reset"), f"client not closed ({how}), got {data!r}"
    assert data == b"", "the proxy must not invent a reply the upstream never sent"
    assert dropped
    mark.wait_for(UPSTREAM_FAILURE)
    assert proxy.proc.poll() is None

    assert_ping_works(proxy.port)
    answered = [m for m in fake.messages_for("ping")]
    assert len(answered) == 2


@needs_proxy
def test_upstream_sending_garbage_closes_client_without_relaying_it(fake, proxy):
    """A frame from upstream that is not a frame (messageLength 5) is not
    passed on: the client is closed instead and the next client works."""
    sent = []

    def garbage_once(msg, conn):
        if not sent:
            sent.append(True)
            return [wire.pack_header(5, 1, msg.request_id, wire.OP_MSG)]
        return None

    fake.handlers["ping"] = garbage_once
    mark = LogMark(proxy)
    with wire.connect(proxy.port) as s:
        s.sendall(ping())
        how, data = wire.wait_closed(s, timeout=10)
    assert how in ("eof", "reset"), f"client not closed ({how})"
    assert data == b"", f"garbage from upstream reached the client: {data!r}"
    mark.wait_for(UPSTREAM_FAILURE)
    assert_ping_works(proxy.port)
