"""Frames the proxy must refuse, one test per kind of bad input.

The proxy fails closed on client frames (DESIGN.md): a frame it cannot decode
is never forwarded. For each case this checks that
  (a) the proxy closed that client connection,
  (b) not one byte of it reached the upstream (the proxy may have opened the
      upstream connection eagerly, so bytes are counted, not connections),
  (c) a new client is still served,
  (d) the proxy logged one line `rejected frame: <reason>`,
  (e) mongoguard_rejected_frames_total{reason="<reason>"} went up by one.
Reasons are the snake_case names of bson/wire.h's DecodeError."""

from __future__ import annotations

import re
import socket
import struct
import time
from dataclasses import dataclass, field

import bson
import pytest

import wire
from fake_upstream import FakeUpstream
from harness import PROXY_BIN, ProxyProcess

CLOSE_TIMEOUT = 5.0
METRIC = "mongoguard_rejected_frames_total"


@dataclass
class Case:
    data: bytes
    reasons: tuple[str, ...]        # acceptable reasons; the first is the expected one
    half_close: bool = False        # shutdown(SHUT_WR) after sending
    strict_reason: bool = True      # False: the proxy may log this as a plain disconnect
    notes: list[str] = field(default_factory=list)


def ping_body(**extra) -> dict:
    return {"ping": 1, "$db": "admin", **extra}


def _invalid_bson_body() -> bytes:
    """{ping: 1, $db: "admin", x: <element of type 0x30>}: lengths consistent,
    the element type does not exist."""
    good = bytearray(bson.encode({"ping": 1, "$db": "admin", "x": 1}))
    pos = good.index(b"\x10x\x00")  # int32 element named "x"
    good[pos] = 0x30
    return bytes(good)


def _bad_checksum() -> bytes:
    good = wire.op_msg(ping_body(), checksum=True)
    (crc,) = struct.unpack_from("<I", good, len(good) - 4)
    return good[:-4] + struct.pack("<I", crc ^ 0x5A5A5A5A)


def _truncated() -> bytes:
    whole = wire.op_msg({"ping": 1, "$db": "admin", "pad": "p" * 60})
    assert len(whole) >= 100
    claimed = wire.pack_header(100, wire.next_request_id(), 0, wire.OP_MSG) + whole[16:100]
    return claimed[:50]


def _bad_compression() -> bytes:
    plain = wire.op_msg(ping_body())
    body = struct.pack("<iiB", wire.OP_MSG, len(plain) - 16, 2) + b"this is not a zlib stream at all"
    return wire.frame(wire.OP_COMPRESSED, body)


CASES: dict[str, Case] = {
    # The ten cases every proxy build must refuse with exactly these reasons.
    "too_short": Case(wire.pack_header(12, wire.next_request_id(), 0, wire.OP_MSG), ("too_short",)),
    "too_large": Case(wire.pack_header(48_000_001, wire.next_request_id(), 0, wire.OP_MSG)
                      + b"\x00" * 100, ("too_large",)),
    "truncated": Case(_truncated(), ("truncated",), half_close=True, strict_reason=False),
    "unknown_opcode": Case(wire.frame(9999, struct.pack("<I", 0) + wire.kind0(ping_body())),
                           ("unknown_opcode",)),
    "unknown_flag_bits": Case(wire.op_msg(ping_body(), flags=1 << 2), ("unknown_flag_bits",)),
    "bad_section_kind": Case(wire.op_msg_from_sections(wire.kind0(ping_body())
                                                       + b"\x02" + bson.encode({"x": 1})),
                             ("bad_section_kind",)),
    "too_many_sequences": Case(wire.op_msg({"insert": "c", "$db": "test"},
                                           sequences={"documents": [{"_id": 1}], "a": [{"y": 1}],
                                                      "b": [{"z": 1}]}),
                               ("too_many_sequences",)),
    "invalid_bson": Case(wire.op_msg_from_sections(b"\x00" + _invalid_bson_body()), ("invalid_bson",)),
    "bad_checksum": Case(_bad_checksum(), ("bad_checksum",)),
    "http_request": Case(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: curl/8\r\n"
                         b"Accept: */*\r\n\r\n", ("http_request",)),

    # Further DecodeError cases; where two checks could fire first, either
    # name is accepted.
    "missing_body": Case(wire.op_msg_from_sections(wire.kind1("documents", [{"_id": 1}])),
                         ("missing_body",)),
    "duplicate_body": Case(wire.op_msg_from_sections(wire.kind0(ping_body()) + wire.kind0(ping_body())),
                           ("duplicate_body",)),
    "duplicate_sequence": Case(wire.op_msg_from_sections(
        wire.kind0({"insert": "c", "$db": "test"}) + wire.kind1("documents", [{"_id": 1}])
        + wire.kind1("documents", [{"_id": 2}])), ("duplicate_sequence",)),
    "body_and_sequence": Case(wire.op_msg({"insert": "c", "$db": "test", "documents": [{"_id": 1}]},
                                          sequences={"documents": [{"_id": 2}]}), ("body_and_sequence",)),
    "missing_db": Case(wire.op_msg({"ping": 1}), ("missing_db",)),
    "empty_command": Case(wire.op_msg({}), ("empty_command", "missing_db")),
    "bad_compression": Case(_bad_compression(), ("bad_compression",)),
    "nested_compression": Case(wire.compress(wire.compress(wire.op_msg(ping_body()), "zlib"), "zlib"),
                               ("nested_compression",)),
    "trailing_bytes": Case(wire.frame(
        wire.OP_QUERY, struct.pack("<i", 0) + wire.cstring("admin.$cmd") + struct.pack("<ii", 0, -1)
        + bson.encode({"isMaster": 1}) + bson.encode({"_id": 1}) + b"xyz"),
        ("trailing_bytes", "invalid_bson", "truncated")),
    "compressed_size_over_limit": Case(wire.compress(wire.op_msg(ping_body()), "zlib",
                                                     uncompressed_size=48_000_000),
                                       ("too_large", "bad_compression")),
}

REQUIRED = ["too_short", "too_large", "truncated", "unknown_opcode", "unknown_flag_bits",
            "bad_section_kind", "too_many_sequences", "invalid_bson", "bad_checksum", "http_request"]
EXTRA = [k for k in CASES if k not in REQUIRED]


@pytest.fixture(scope="module")
def fake():
    with FakeUpstream() as f:
        yield f


@pytest.fixture(scope="module")
def proxy(fake):
    if not PROXY_BIN.exists():
        pytest.skip(f"{PROXY_BIN} not built")
    with ProxyProcess(f"mongodb://127.0.0.1:{fake.port}") as p:
        yield p


WARN = re.compile(r"\bwarn(ing)?\b", re.IGNORECASE)


def all_rejected_lines(proxy: ProxyProcess) -> list[str]:
    """Warn-level lines naming a refused frame (the info line that reports
    the connection's close may repeat the reason; it is not counted)."""
    return [line for line in proxy.log_text().splitlines()
            if "rejected frame:" in line and WARN.search(line)]


def rejected_metric(metrics: dict[str, float], reason: str) -> float:
    rx = re.compile(rf'^{METRIC}\{{.*\breason="{re.escape(reason)}".*\}}$')
    return sum(v for k, v in metrics.items() if rx.match(k))


def send_bad(port: int, case: Case) -> tuple[str, bytes]:
    with wire.connect(port) as s:
        try:
            s.sendall(case.data)
            if case.half_close:
                s.shutdown(socket.SHUT_WR)
        except OSError:
            return "reset", b""  # closed before we finished sending: closed all the same
        return wire.wait_closed(s, CLOSE_TIMEOUT)


def ping_works(port: int) -> None:
    with wire.connect(port) as s:
        req = wire.op_msg({"ping": 1, "$db": "admin"})
        reply = wire.roundtrip(s, req)
    assert reply.response_to == wire.parse_header(req).request_id
    assert reply.body["ok"] == 1.0


def run_case(fake: FakeUpstream, proxy: ProxyProcess, name: str) -> None:
    case = CASES[name]
    assert proxy.proc.poll() is None, "proxy is not running"
    bytes_before = fake.total_bytes_received()
    messages_before = len(fake.messages())
    lines_before = len(all_rejected_lines(proxy))
    metrics_before = proxy.metrics()

    # (a) the proxy closes the connection
    how, data = send_bad(proxy.port, case)
    assert how in ("eof", "reset"), f"{name}: connection still open after {CLOSE_TIMEOUT}s (got {data!r})"

    # (d) one log line naming the reason
    deadline = time.monotonic() + (5.0 if case.strict_reason else 1.0)
    new_lines: list[str] = []
    while time.monotonic() < deadline:
        new_lines = all_rejected_lines(proxy)[lines_before:]
        if new_lines:
            break
        time.sleep(0.05)
    if case.strict_reason or new_lines:
        assert len(new_lines) == 1, f"{name}: expected one 'rejected frame' line, got {new_lines!r}\n" \
                                    f"log tail:\n{proxy.log_text()[-3000:]}"
        logged = [r for r in case.reasons if re.search(rf"rejected frame: {re.escape(r)}\b", new_lines[0])]
        assert logged, f"{name}: logged {new_lines[0]!r}, expected one of {case.reasons}"
        reason = logged[0]
    else:
        reason = None

    # (b) nothing reached the upstream (give a forwarded byte time to land)
    time.sleep(0.2)
    assert fake.total_bytes_received() == bytes_before, \
        f"{name}: {fake.total_bytes_received() - bytes_before} bytes reached the upstream"
    assert len(fake.messages()) == messages_before

    # (c) the proxy still serves a new client
    ping_works(proxy.port)

    # (e) the counter went up by one
    if reason is not None:
        after = proxy.metrics()
        delta = rejected_metric(after, reason) - rejected_metric(metrics_before, reason)
        assert delta == 1, f"{name}: {METRIC}{{reason=\"{reason}\"}} went up by {delta}; " \
                           f"series: {[k for k in after if k.startswith(METRIC)]}"


@pytest.mark.parametrize("name", REQUIRED)
def test_rejected(fake, proxy, name):
    run_case(fake, proxy, name)


@pytest.mark.parametrize("name", EXTRA)
def test_rejected_more(fake, proxy, name):
    run_case(fake, proxy, name)


def test_case_frames_are_what_they_claim():
    """The bad frames are bad only in the intended way (checked without the
    proxy, so a failure above is about the proxy, not the frame)."""
    assert wire.parse_header(CASES["too_short"].data).length == 12
    assert wire.parse_header(CASES["too_large"].data).length == 48_000_001
    assert len(CASES["truncated"].data) == 50 and wire.parse_header(CASES["truncated"].data).length == 100
    assert struct.unpack_from("<i", CASES["http_request"].data)[0] == 0x20544547
    with pytest.raises(ValueError, match="bad checksum"):
        wire.parse_op_msg(CASES["bad_checksum"].data)
    good = wire.op_msg(ping_body(), checksum=True)
    assert wire.parse_op_msg(good).body == ping_body()
    with pytest.raises(Exception):
        bson.decode(_invalid_bson_body())
    # every length field is consistent, so only the named defect remains
    for name in ("unknown_flag_bits", "bad_section_kind", "too_many_sequences", "invalid_bson",
                 "bad_checksum", "missing_body", "duplicate_body", "duplicate_sequence",
                 "body_and_sequence", "missing_db", "empty_command", "unknown_opcode"):
        data = CASES[name].data
        assert wire.parse_header(data).length == len(data), name
    assert wire.parse_message(CASES["too_many_sequences"].data).sequences.keys() == {"documents", "a", "b"}
