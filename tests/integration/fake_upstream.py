"""A scripted fake MongoDB server for protocol-corner tests.

The embedded FerretDB backend cannot speak OP_COMPRESSED, ignores moreToCome
and never streams exhaust replies, so the corners of the protocol are tested
against this instead. It listens on 127.0.0.1 at a free port, serves each
connection on its own thread, records every byte and every message it
receives per connection (tests assert that refused frames never reached it),
and answers:

- hello / isMaster / ismaster (OP_MSG, or OP_QUERY on admin.$cmd with an
  OP_REPLY) with a plausible standalone primary, echoing the compressors it
  shares with the client;
- every other command with {ok: 1};
- nothing at all to a request carrying moreToCome.

A test scripts anything else with a handler per command name: a callable
receiving the parsed `Message` (and its `FakeConnection`) and returning a
list of steps to perform — raw reply bytes, `Delay(seconds)`, or `CLOSE` — or
None to fall back to the default answer. Replies sent while the request was
compressed go back compressed with the same compressor, as a server does.
"""

from __future__ import annotations

import datetime
import socket
import struct
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping

import wire

SUPPORTED_COMPRESSORS = ("snappy", "zlib", "zstd")
HELLO_COMMANDS = ("hello", "isMaster", "ismaster")


@dataclass(frozen=True)
class Delay:
    seconds: float


class _Close:
    def __repr__(self) -> str:
        return "CLOSE"


CLOSE = _Close()

Handler = Callable[["wire.Message", "FakeConnection"], "Iterable[bytes | Delay | _Close] | None"]


class FakeConnection:
    """One accepted connection: what arrived and what was sent."""

    def __init__(self, server: "FakeUpstream", sock: socket.socket, index: int):
        self.server = server
        self.sock = sock
        self.index = index
        self.peer = sock.getpeername()
        self.received = bytearray()          # every byte, in order
        self.messages: list[wire.Message] = []  # every complete, parseable message
        self.unparsed: list[tuple[bytes, str]] = []  # complete frames it could not parse, and why
        self.sent: list[bytes] = []          # every message sent (or being sent), raw
        self.closed = threading.Event()
        self.closed_by_peer = False
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._serve, name=f"fake-upstream-conn-{index}", daemon=True)

    # -- recording -------------------------------------------------------

    @property
    def bytes_received(self) -> int:
        with self._lock:
            return len(self.received)

    def send(self, raw: bytes) -> None:
        # Recorded before sending: a client may read the reply before
        # sendall returns here, and tests compare against `sent` right away.
        with self._lock:
            self.sent.append(bytes(raw))
        self.sock.sendall(raw)

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.closed.set()

    # -- serving ---------------------------------------------------------

    def _serve(self) -> None:
        buf = bytearray()
        try:
            self.sock.settimeout(0.2)
        except OSError:  # closed by stop() before this thread began
            self.closed.set()
            return
        try:
            while not self.server._stopping.is_set():
                try:
                    chunk = self.sock.recv(1 << 20)
                except socket.timeout:
                    continue
                except OSError:
                    self.closed_by_peer = True
                    break
                if not chunk:
                    self.closed_by_peer = True
                    break
                with self._lock:
                    self.received += chunk
                buf += chunk
                while len(buf) >= 4:
                    (length,) = struct.unpack_from("<i", buf)
                    if length < wire.HEADER_SIZE or length > wire.MAX_MESSAGE_SIZE + 1024:
                        # Not a frame a server would read: give up on this
                        # connection as mongod does.
                        self.unparsed.append((bytes(buf), f"messageLength {length}"))
                        return
                    if len(buf) < length:
                        break
                    raw = bytes(buf[:length])
                    del buf[:length]
                    try:
                        msg = wire.parse_message(raw)
                    except Exception as e:  # keep the evidence, answer nothing
                        self.unparsed.append((raw, repr(e)))
                        continue
                    with self._lock:
                        self.messages.append(msg)
                    if not self._dispatch(msg):
                        return
        finally:
            self.close()

    def _dispatch(self, msg: wire.Message) -> bool:
        """Runs the scripted steps for `msg`; False when the connection must end."""
        steps = self.server.steps_for(msg, self)
        for step in steps:
            if self.server._stopping.is_set():
                return False
            if isinstance(step, Delay):
                self.server._stopping.wait(step.seconds)
            elif step is CLOSE:
                return False
            else:
                try:
                    self.send(step)
                except OSError:
                    return False
        return True


class FakeUpstream:
    def __init__(self, handlers: Mapping[str, Handler] | None = None,
                 compressors: Iterable[str] = SUPPORTED_COMPRESSORS, port: int = 0):
        self.handlers: dict[str, Handler] = dict(handlers or {})
        self.compressors = tuple(compressors)
        self.connections: list[FakeConnection] = []
        self._conn_lock = threading.Lock()
        self._stopping = threading.Event()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", port))
        self._listener.listen(64)
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._accept_thread = threading.Thread(target=self._accept_loop, name="fake-upstream-accept", daemon=True)
        self._accept_thread.start()

    # -- addresses -------------------------------------------------------

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    # -- lifecycle -------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._conn_lock:
                conn = FakeConnection(self, sock, len(self.connections))
                self.connections.append(conn)
            conn.thread.start()

    def stop(self) -> None:
        self._stopping.set()
        try:
            self._listener.close()
        except OSError:
            pass
        self._accept_thread.join(timeout=2)
        with self._conn_lock:
            conns = list(self.connections)
        for c in conns:
            c.close()
        for c in conns:
            c.thread.join(timeout=2)

    def __enter__(self) -> "FakeUpstream":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- what arrived ----------------------------------------------------

    def total_bytes_received(self) -> int:
        with self._conn_lock:
            conns = list(self.connections)
        return sum(c.bytes_received for c in conns)

    def messages(self) -> list[wire.Message]:
        with self._conn_lock:
            conns = list(self.connections)
        out: list[wire.Message] = []
        for c in conns:
            with c._lock:
                out.extend(c.messages)
        return out

    def messages_for(self, command: str) -> list[wire.Message]:
        return [m for m in self.messages() if m.command == command]

    def wait_for(self, predicate: Callable[[], object], timeout: float = 5.0, what: str = "condition"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.02)
        raise AssertionError(f"fake upstream: {what} not met within {timeout}s")

    def wait_for_message(self, predicate: Callable[[wire.Message], bool], timeout: float = 5.0) -> wire.Message:
        def find():
            for m in self.messages():
                if predicate(m):
                    return m
            return None

        return self.wait_for(find, timeout, "expected message")

    # -- answers ---------------------------------------------------------

    def steps_for(self, msg: wire.Message, conn: FakeConnection) -> list:
        handler = self.handlers.get(msg.command or "")
        if handler is not None:
            steps = handler(msg, conn)
            if steps is not None:
                return list(steps)
        return self.default_steps(msg, conn)

    def default_steps(self, msg: wire.Message, conn: FakeConnection) -> list:
        if msg.more_to_come:
            return []
        if msg.op_code not in (wire.OP_MSG, wire.OP_QUERY):
            return []
        if msg.command in HELLO_COMMANDS:
            return [self.reply(msg, self.hello_document(msg, conn))]
        return [self.reply(msg, {"ok": 1.0})]

    def shared_compressors(self, msg: wire.Message) -> list[str]:
        offered = (msg.body or {}).get("compression") or []
        return [c for c in offered if c in self.compressors]

    def hello_document(self, msg: wire.Message, conn: FakeConnection) -> dict:
        legacy = msg.command != "hello"
        doc = {
            "helloOk": True,
            ("ismaster" if legacy else "isWritablePrimary"): True,
            "topologyVersion": None,
            "maxBsonObjectSize": 16 * 1024 * 1024,
            "maxMessageSizeBytes": wire.MAX_MESSAGE_SIZE,
            "maxWriteBatchSize": 100_000,
            "localTime": datetime.datetime.now(datetime.timezone.utc),
            "logicalSessionTimeoutMinutes": 30,
            "connectionId": conn.index + 1,
            "minWireVersion": 0,
            "maxWireVersion": 21,
            "readOnly": False,
            "ok": 1.0,
        }
        # No topologyVersion: drivers then poll instead of streaming, so
        # the default fake never has to hold a request open.
        del doc["topologyVersion"]
        if "compression" in (msg.body or {}):
            doc["compression"] = self.shared_compressors(msg)
        return doc

    def reply(self, request: wire.Message, doc: Mapping | bytes, *, flags: int = 0,
              request_id: int | None = None, response_to: int | None = None,
              compressor: str | None = "same") -> bytes:
        """A reply of the kind `request` expects: OP_REPLY to OP_QUERY, OP_MSG
        otherwise; compressed like the request unless told otherwise."""
        if response_to is None:
            response_to = request.request_id
        if request.op_code == wire.OP_QUERY:
            raw = wire.op_reply([doc], response_to=response_to, request_id=request_id)
        else:
            raw = wire.op_msg(doc, flags=flags, request_id=request_id, response_to=response_to)
        if compressor == "same":
            compressor = request.compressor
        return wire.compress(raw, compressor) if compressor else raw

    def exhaust_stream(self, request: wire.Message, docs: list[Mapping | bytes],
                       delay: float = 0.0) -> list:
        """Replies streamed per the OP_MSG exhaust rules: every one but the
        last has moreToCome; the first answers the request, each next one
        answers the previous reply's requestID."""
        steps: list = []
        response_to = request.request_id
        for i, doc in enumerate(docs):
            rid = wire.next_request_id()
            flags = wire.MORE_TO_COME if i < len(docs) - 1 else 0
            steps.append(self.reply(request, doc, flags=flags, request_id=rid, response_to=response_to))
            if delay and i < len(docs) - 1:
                steps.append(Delay(delay))
            response_to = rid
        return steps
