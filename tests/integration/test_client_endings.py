"""How a connection ends, through build/mongoguard against FerretDB: whatever
the client sends last, and however it goes (a FIN, a reset right behind its
last bytes, TCP urgent data), its session and upstream connection are gone
soon after, and what it sent before is answered in order. And a server that
resets its connection right behind a reply ends the session at once, though
the client is quiet (against a scripted server).

The relay's reads skip their try of an empty socket after a read that
emptied it, and such a socket is polled once soon after for a reset that
came with the last bytes (proxy/net/drained_read.h), so these are the
endings where that could leave a session waiting on a peer that is gone. Each is repeated so
that the last bytes and the FIN or reset often arrive together, before the
proxy has looked at the socket."""

from __future__ import annotations

import signal
import socket
import struct
import time

import pytest

import wire
from fake_upstream import CLOSE as wire_close
from fake_upstream import FakeUpstream
from harness import PROXY_BIN, ProxyProcess
from hold_helpers import GuardedProxy, raw_hello, unique_db, wait_until

pytestmark = pytest.mark.skipif(not PROXY_BIN.exists(), reason=f"{PROXY_BIN} not built")

ROUNDS = 25


def ping() -> bytes:
    return wire.op_msg({"ping": 1, "$db": "admin"})


def unacknowledged_insert(database: str) -> bytes:
    return wire.op_msg({"insert": "c", "$db": database, "writeConcern": {"w": 0}},
                       sequences={"documents": [{"x": 1}]}, flags=wire.MORE_TO_COME)


def reset(sock: socket.socket) -> None:
    """Closes with a reset (SO_LINGER 0) instead of a FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def fin(sock: socket.socket) -> None:
    sock.shutdown(socket.SHUT_WR)
    sock.close()


def endings(database: str) -> dict:
    half_a_ping = ping()[:20]
    return {
        "request_then_fin": (ping(), fin),
        "request_then_reset": (ping(), reset),
        "half_a_frame_then_fin": (half_a_ping, fin),
        "half_a_frame_then_reset": (half_a_ping, reset),
        "unacknowledged_write_then_fin": (unacknowledged_insert(database), fin),
        "unacknowledged_write_then_reset": (unacknowledged_insert(database), reset),
        "nothing_then_reset": (b"", reset),
    }


@pytest.fixture(scope="module")
def guarded(backend):
    with GuardedProxy(backend.upstream, "rules: []") as gp:
        yield gp


def open_connections(gp: GuardedProxy) -> int:
    return int(gp.admin.metrics()["mongoguard_connections_open"])


@pytest.mark.parametrize("ending", sorted(endings("x")))
def test_a_session_ends_with_its_client(guarded, ending):
    database = unique_db("endings")
    last_bytes, close = endings(database)[ending]
    before = open_connections(guarded)
    for _ in range(ROUNDS):
        sock = raw_hello(guarded.port, f"ending-{ending}")
        if last_bytes:
            sock.sendall(last_bytes)
        close(sock)
    # At most as many as before: one a test before this one left may go too.
    wait_until(lambda: open_connections(guarded) <= before, 15,
               f"the {ROUNDS} sessions that ended with {ending} to be closed "
               f"(open: {open_connections(guarded)}, before: {before})")
    # The proxy still serves.
    sock = raw_hello(guarded.port, "after")
    assert wire.roundtrip(sock, ping()).body["ok"] == 1
    sock.close()


def test_an_urgent_byte_between_two_requests_leaves_both_answered_in_order(guarded):
    # TCP urgent data is not part of the MongoDB protocol; the urgent byte is
    # kept out of the stream by the kernel, and the reads around its mark
    # must not leave the second request waiting.
    for _ in range(ROUNDS):
        sock = raw_hello(guarded.port, "urgent")
        first, second = ping(), ping()
        sock.sendall(first)
        sock.send(b"!", socket.MSG_OOB)
        sock.sendall(second)
        replies = [wire.parse_message(wire.read_message(sock, timeout=5.0)) for _ in range(2)]
        assert [r.response_to for r in replies] == [wire.parse_header(first).request_id,
                                                     wire.parse_header(second).request_id]
        assert all(r.body["ok"] == 1 for r in replies)
        sock.close()


def test_a_server_reset_right_behind_a_reply_ends_the_session_though_the_client_is_quiet():
    # The proxy is stopped while the server sends the reply and its reset,
    # so that both are in the proxy's socket when it next looks: the read
    # that takes the reply empties the socket, and only the poll that
    # replaces the next read's try can find the reset (no write to the
    # server is coming: the client has its answer and says nothing more).
    proxy: ProxyProcess | None = None

    def reply_then_reset(msg, conn):
        proxy.proc.send_signal(signal.SIGSTOP)
        try:
            time.sleep(0.05)
            conn.sock.sendall(conn.server.reply(msg, {"ok": 1.0}))
            reset(conn.sock)
            time.sleep(0.05)
        finally:
            proxy.proc.send_signal(signal.SIGCONT)
        return [wire_close]

    with FakeUpstream({"ping": reply_then_reset}) as fake:
        proxy = ProxyProcess(fake.uri, threads=1)
        try:
            for _ in range(5):
                sock = raw_hello(proxy.port, "quiet")
                assert wire.roundtrip(sock, ping()).body["ok"] == 1
                how, data = wire.wait_closed(sock, timeout=5)
                assert (how, data) in (("eof", b""), ("reset", b"")), (how, data)
                sock.close()
            wait_until(lambda: proxy.metrics()["mongoguard_connections_open"] == 0, 5,
                       "every session to be closed")
            assert "upstream read failed" in proxy.log_text()
        finally:
            proxy.stop()
