"""Shared pieces of the budget-ceiling tests (test_budget_replies.py,
test_budget_soak.py, test_fleet_ceiling.py).

- `ScriptedUpstream`: a FakeUpstream that answers the proxy's pre-flight
  `count` and the destructive commands the way a test scripts them (values
  taken from queues, in the order requests arrive), and records the order of
  what each connection received; a `Delayed` answer waits first.
- `RawClient`: a bare, hello'd connection to the proxy for raw OP_MSG frames.
- `UnredactedProxy`: GuardedProxy whose audit log keeps filters as sent
  (`redact: false`), so a test can tell which of its operations a record is.
- `soak_seconds()`: the soak duration, from SOAK_SECONDS or LOAD_SECONDS.
- `window_peak()`: the largest sum of weights any sliding window of a given
  length holds, over timestamped events.

Every wait here is bounded."""

from __future__ import annotations

import collections
import os
import threading
from typing import Callable, Iterable, Mapping

import wire
from fake_upstream import Delay, FakeConnection, FakeUpstream
from hold_helpers import GuardedProxy, raw_hello


# --- durations ----------------------------------------------------------------

def soak_seconds(default: float = 60.0) -> float:
    """SOAK_SECONDS, else LOAD_SECONDS (the sanitizer pass exports it), else
    `default`. Always at least one second."""
    for name in ("SOAK_SECONDS", "LOAD_SECONDS"):
        value = os.environ.get(name)
        if value:
            try:
                return max(1.0, float(value))
            except ValueError:
                raise ValueError(f"{name}={value!r} is not a number of seconds") from None
    return default


# --- the proxy ------------------------------------------------------------------

class UnredactedProxy(GuardedProxy):
    """GuardedProxy, but the audit log records filters as sent."""

    def render(self, policy_yaml: str) -> str:
        text = super().render(policy_yaml)
        assert "  redact: true\n" in text, text
        return text.replace("  redact: true\n", "  redact: false\n", 1)


def budget_policy(database: str, documents: int, *, name: str = "cap", per: str = "1m",
                  action: str = "block", operations: str = "[delete]", extra_limit: str = "",
                  hold_timeout: str | None = None) -> str:
    """One budget rule on `database.*` (pre-flight on: the default)."""
    holds = f"holds:\n  timeout: {hold_timeout}\n" if hold_timeout else ""
    extra = f", {extra_limit}" if extra_limit else ""
    return holds + f"""rules:
  - name: {name}
    match: {{ namespace: "{database}.*", operations: {operations} }}
    limit: {{ documents: {documents}, per: {per}{extra} }}
    action: {action}
"""


# --- the scripted upstream ---------------------------------------------------------

class Delayed:
    """An answer sent `seconds` after the request arrived."""

    def __init__(self, seconds: float, doc):
        self.seconds = seconds
        self.doc = doc


class ScriptedUpstream(FakeUpstream):
    """A FakeUpstream answering as mongod 8.0 does, from scripts:

    - `count`: each answer is the next of `counts` (an int n -> {ok: 1, n},
      a dict -> that document as it is); with none left, {ok: 1, n: 0}.
    - any command named in `answers`: the next document of its queue (a
      callable gets the request and returns the document); none left ->
      {ok: 1}; a `Delayed` answer waits first. A request with moreToCome is
      never answered.

    Every request is recorded per connection (FakeUpstream does that); the
    `order()` helper gives what a connection received as names, legacy
    opcodes included."""

    def __init__(self, counts: Iterable[int | Mapping] = (),
                 answers: Mapping[str, Iterable] | None = None):
        self._lock = threading.Lock()
        self._counts = collections.deque(counts)
        self._answers = {k: collections.deque(v) for k, v in (answers or {}).items()}
        handlers = {"count": self._on_count}
        for command in self._answers:
            handlers[command] = self._answer_for(command)
        super().__init__(handlers)

    def _on_count(self, msg: wire.Message, conn: FakeConnection):
        with self._lock:
            value = self._counts.popleft() if self._counts else 0
        doc = {"ok": 1.0, "n": value} if isinstance(value, int) else dict(value)
        return [self.reply(msg, doc)]

    def _answer_for(self, command: str):
        def handler(msg: wire.Message, conn: FakeConnection):
            if msg.more_to_come:
                return []
            with self._lock:
                queue = self._answers.get(command)
                doc = queue.popleft() if queue else {"ok": 1.0}
            steps = []
            if isinstance(doc, Delayed):
                steps.append(Delay(doc.seconds))
                doc = doc.doc
            if callable(doc):
                doc = doc(msg)
            return steps + [self.reply(msg, doc)]
        return handler

    # -- what arrived -------------------------------------------------------

    @staticmethod
    def name_of(msg: wire.Message) -> str:
        if msg.op_code == wire.OP_DELETE:
            return "OP_DELETE"
        if msg.op_code == wire.OP_UPDATE:
            return "OP_UPDATE"
        return msg.command or f"opcode {msg.op_code}"

    def order(self, conn: FakeConnection, skip: tuple[str, ...] = ("hello", "isMaster",
                                                                    "ismaster")) -> list[str]:
        with conn._lock:
            msgs = list(conn.messages)
        return [self.name_of(m) for m in msgs if self.name_of(m) not in skip]

    def connection_with(self, predicate: Callable[[wire.Message], bool],
                        timeout: float = 5.0) -> FakeConnection:
        def find():
            with self._conn_lock:
                conns = list(self.connections)
            for c in conns:
                with c._lock:
                    if any(predicate(m) for m in c.messages):
                        return c
            return None
        return self.wait_for(find, timeout, "a connection that received the request")

    def counts_received(self) -> list[dict]:
        return [m.body for m in self.messages() if m.command == "count"]


# --- raw client helpers ----------------------------------------------------------------

class RawClient:
    """A bare connection to the proxy that has said hello; requests carry
    fresh request ids; every read has a deadline."""

    def __init__(self, port: int, app: str = "raw-budget"):
        self.sock = raw_hello(port, app)

    def send(self, body: Mapping, *, sequences: Mapping | None = None, flags: int = 0) -> int:
        rid = wire.next_request_id()
        self.sock.sendall(wire.op_msg(body, sequences=sequences, flags=flags, request_id=rid))
        return rid

    def send_raw(self, frame: bytes) -> None:
        self.sock.sendall(frame)

    def read(self, request_id: int | None = None, timeout: float = 10.0) -> dict:
        reply = wire.parse_message(wire.read_message(self.sock, timeout=timeout))
        if request_id is not None:
            assert reply.response_to == request_id, (reply.response_to, request_id, reply.body)
        return reply.body

    def command(self, body: Mapping, *, sequences: Mapping | None = None,
                timeout: float = 10.0) -> dict:
        return self.read(self.send(body, sequences=sequences), timeout)

    def ping(self) -> dict:
        return self.command({"ping": 1, "$db": "admin"})

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "RawClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --- sliding windows --------------------------------------------------------------------

def window_peak(events: Iterable[tuple[float, int]], width: float) -> tuple[int, float]:
    """The largest total weight of events whose times fall in any half-open
    window [t, t + width), and the start of one such window. Events are
    (time in seconds, weight); weights of 0 are ignored."""
    evs = sorted((t, w) for t, w in events if w)
    best, best_at = 0, evs[0][0] if evs else 0.0
    total = 0
    lo = 0
    # A window whose start is an event's time holds at least as much as any
    # window starting between events, so only those starts need checking.
    for hi in range(len(evs)):
        total += evs[hi][1]
        while evs[hi][0] - evs[lo][0] >= width:
            total -= evs[lo][1]
            lo += 1
        if total > best:
            best, best_at = total, evs[lo][0]
    return best, best_at


def audit_time(record: dict) -> float:
    """A record's `time` (ISO-8601 UTC, "2026-12-03T12:51:21.123Z") in seconds since the epoch."""
    import datetime
    return datetime.datetime.fromisoformat(record["time"].replace("Z", "+00:00")).timestamp()
