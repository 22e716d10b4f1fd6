"""Webhooks: a local receiver gets hold / resolved / tripped events as JSON
with a human `text`, only the events it asked for; a dead or slow receiver
never slows the clients going through the proxy."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from admin_helpers import AdminProxy, Background
from harness import free_port
from policy_helpers import policy_backend, direct, seed, unique_db  # noqa: F401


class Receiver:
    """A webhook receiver on a free loopback port; `delay` seconds before answering."""

    def __init__(self, delay: float = 0.0):
        self.events: list[dict] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with outer.lock:
                    outer.events.append({"path": self.path,
                                         "content_type": self.headers.get("Content-Type"),
                                         "body": json.loads(body)})
                if delay:
                    time.sleep(delay)
                try:
                    self.send_response(200)
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/mongoguard"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def bodies(self, event: str | None = None) -> list[dict]:
        with self.lock:
            return [e["body"] for e in self.events if event is None or e["body"]["event"] == event]

    def wait_for(self, event: str, count: int = 1, timeout: float = 10.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.bodies(event)
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"no {event!r} webhook in {timeout}s; got {self.bodies()}")

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def policy(db: str, hooks: list[tuple[str, list[str] | None]]) -> str:
    lines = ["notify:", "  webhooks:"]
    for url, events in hooks:
        lines.append(f"    - url: {url}")
        if events is not None:
            lines.append(f"      events: [{', '.join(events)}]")
    return "\n".join(lines) + f"""
rules:
  - name: park
    match: {{namespace: "{db}.held", operations: [delete]}}
    action: hold
  - name: budget
    match: {{namespace: "{db}.budget", operations: [delete]}}
    action: hold
    limit: {{documents: 2, per: 1m}}
"""


@pytest.fixture
def receivers():
    made: list[Receiver] = []

    def make(delay: float = 0.0) -> Receiver:
        r = Receiver(delay)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


def test_hold_resolved_and_tripped_events(policy_backend, direct, receivers):  # noqa: F811
    db = unique_db("hooks")
    seed(direct, db, "held")
    seed(direct, db, "budget", count=10)
    everything = receivers()
    only_resolved = receivers()
    p = AdminProxy(policy_backend.upstream,
                   policy(db, [(everything.url, None), (only_resolved.url, ["resolved"])]),
                   admin_yaml="public_url: https://guard.example.com/")
    p.db = db
    name = socket.gethostname()
    try:
        c = p.client()
        op = Background(lambda: c[db].held.delete_one({"_id": 1}))
        [hold] = p.wait_for_holds()
        [event] = everything.wait_for("hold")
        assert event["hold"]["id"] == hold["id"]
        assert event["hold"]["ns"] == f"{db}.held" and event["hold"]["rule"] == "park"
        # Slack-style: the proxy, the namespace, the size, who, the rule, a link.
        assert event["text"].startswith(
            f"mongoguard {name}: delete on {db}.held held, 1 document(s); user (not "
            "authenticated), app (none given), driver PyMongo"), event["text"]
        assert event["text"].endswith(
            f"(rule park) — hold #{hold['id']}: https://guard.example.com/#hold-{hold['id']}")
        assert event["url"] == f"https://guard.example.com/#hold-{hold['id']}"
        assert event["proxy"] == name
        p.ok("POST", f"/api/holds/{hold['id']}/approve", {"by": "alice"})
        assert op.result().deleted_count == 1
        [resolved] = everything.wait_for("resolved")
        assert resolved["decision"] == {"outcome": "approved", "by": "alice", "reason": ""}
        assert resolved["hold"]["id"] == hold["id"]
        assert resolved["text"].endswith("approved by alice")
        assert only_resolved.wait_for("resolved")[0]["hold"]["id"] == hold["id"]

        # A budget: deletes one at a time until one is held.
        coll = c[db].budget
        held_op = None
        for i in range(10):
            step = Background(lambda i=i: coll.delete_one({"_id": i}))
            deadline = time.monotonic() + 3
            while not step.done() and time.monotonic() < deadline:
                time.sleep(0.02)
            if not step.done():
                held_op = step
                break
            step.result()
        assert held_op is not None, "the budget never held"
        [tripped] = everything.wait_for("tripped")
        assert tripped["breaker"]["tripped"] is True and tripped["breaker"]["limit"] == 2
        assert tripped["breaker"]["ns"] == f"{db}.budget"
        assert tripped["text"].startswith(f"mongoguard: breaker {tripped['breaker']['name']} "
                                          "tripped:")
        held2 = everything.wait_for("hold", 2)[1]
        assert held2["hold"]["breaker"] == tripped["breaker"]["name"]
        assert held2["hold"]["limit"] == 2
        assert held2["hold"]["rate"]["documents"] == 2, held2["hold"]
        assert "2 documents in" in held2["text"]
        p.ok("POST", f"/api/holds/{held2['hold']['id']}/reject", {"by": "bob", "reason": "no"})
        with pytest.raises(Exception):
            held_op.result()
        second = everything.wait_for("resolved", 2)[1]
        assert second["decision"] == {"outcome": "rejected", "by": "bob", "reason": "no"}
        only_resolved.wait_for("resolved", 2)
        time.sleep(0.3)
        assert {b["event"] for b in only_resolved.bodies()} == {"resolved"}
        assert all(e["content_type"] == "application/json" and e["path"] == "/hooks/mongoguard"
                   for e in everything.events)
    finally:
        p.stop()


def test_dead_and_slow_receivers_do_not_slow_clients(policy_backend, direct, receivers):  # noqa: F811
    db = unique_db("hooks_slow")
    seed(direct, db, "held", count=20)
    seed(direct, db, "plain", count=5)
    slow = receivers(delay=10.0)
    dead = f"http://127.0.0.1:{free_port()}/nobody-listens"
    p = AdminProxy(policy_backend.upstream, policy(db, [(dead, None), (slow.url, None)]))
    try:
        c = p.client()
        c[db].plain.find_one()  # connect and handshake outside the timings
        for i in range(3):
            op = Background(lambda i=i: c[db].held.delete_one({"_id": i}))
            [hold] = p.wait_for_holds()
            approved_at = time.monotonic()
            p.ok("POST", f"/api/holds/{hold['id']}/approve", {"by": "alice"})
            assert op.result(timeout=10).deleted_count == 1
            assert op.finished - approved_at < 2.0, "approved hold took too long to finish"
        # Ordinary operations meanwhile: fast.
        start = time.monotonic()
        for i in range(20):
            c[db].plain.insert_one({"i": i})
            c[db].plain.find_one({"i": i})
        assert time.monotonic() - start < 5.0
        # The slow receiver did get the first event (and is still sleeping on it).
        slow.wait_for("hold")
        # The admin API stays responsive too.
        start = time.monotonic()
        p.ok("GET", "/api/holds")
        assert time.monotonic() - start < 1.0
    finally:
        p.stop()
