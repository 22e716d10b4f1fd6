"""SCRAM-SHA-256 (RFC 5802 / 7677) in plain Python for the identity tests.

- `ScramClient`: one conversation's client side, so a test knows the exact
  proof it sent (`p=` of the client-final message) and can look for it in
  the proxy's log; `raw_login` runs it over a bare socket (hello without
  speculativeAuthenticate, saslStart, saslContinue until done).
- `ScramServer`: the server side for the fake upstream, which FerretDB 1.24
  cannot stand in for: it ignores `speculativeAuthenticate` in hello, while
  MongoDB answers the first step there. `speculative_hello_handlers` makes
  a FakeUpstream do that, as mongod does.

Passwords here are ASCII, so SASLprep is the identity."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import socket

import bson

import wire

ITERATIONS = 4096


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _attrs(message: str) -> dict[str, str]:
    out = {}
    for part in message.split(","):
        if "=" in part:
            k, _, v = part.partition("=")
            out[k] = v
    return out


class ScramClient:
    def __init__(self, user: str, password: str):
        self.user = user
        self.password = password
        self.nonce = _b64(os.urandom(18))
        self.client_first_bare = f"n={user},r={self.nonce}"
        self.proof: str | None = None
        self._server_signature: bytes | None = None

    def first(self) -> bytes:
        return ("n,," + self.client_first_bare).encode()

    def final(self, server_first: bytes) -> bytes:
        server_first_s = server_first.decode()
        a = _attrs(server_first_s)
        nonce, salt, iterations = a["r"], base64.b64decode(a["s"]), int(a["i"])
        assert nonce.startswith(self.nonce), "server nonce must extend ours"
        salted = hashlib.pbkdf2_hmac("sha256", self.password.encode(), salt, iterations)
        client_key = _hmac(salted, b"Client Key")
        without_proof = f"c=biws,r={nonce}"
        auth_message = f"{self.client_first_bare},{server_first_s},{without_proof}".encode()
        signature = _hmac(_h(client_key), auth_message)
        self.proof = _b64(_xor(client_key, signature))
        self._server_signature = _hmac(_hmac(salted, b"Server Key"), auth_message)
        return f"{without_proof},p={self.proof}".encode()

    def verify(self, server_final: bytes) -> bool:
        v = _attrs(server_final.decode()).get("v")
        return v is not None and base64.b64decode(v) == self._server_signature


class ScramServer:
    """Server side for users {name: password}; one conversation at a time per instance."""

    def __init__(self, users: dict[str, str]):
        self.users = users
        self.salt = os.urandom(16)
        self._state: dict | None = None
        self.authenticated: str | None = None

    def first(self, client_first: bytes) -> bytes:
        text = client_first.decode()
        bare = text.split(",", 2)[2]
        a = _attrs(bare)
        user, cnonce = a["n"], a["r"]
        nonce = cnonce + _b64(os.urandom(18))
        server_first = f"r={nonce},s={_b64(self.salt)},i={ITERATIONS}"
        self._state = {"user": user, "bare": bare, "server_first": server_first, "nonce": nonce}
        return server_first.encode()

    def final(self, client_final: bytes) -> bytes | None:
        """The server-final message, or None when the proof is wrong."""
        st = self._state
        if st is None or st["user"] not in self.users:
            return None
        text = client_final.decode()
        without_proof, _, proof = text.rpartition(",p=")
        salted = hashlib.pbkdf2_hmac("sha256", self.users[st["user"]].encode(), self.salt,
                                     ITERATIONS)
        client_key = _hmac(salted, b"Client Key")
        auth_message = f"{st['bare']},{st['server_first']},{without_proof}".encode()
        expected = _b64(_xor(client_key, _hmac(_h(client_key), auth_message)))
        if not hmac.compare_digest(expected, proof):
            return None
        self.authenticated = st["user"]
        return f"v={_b64(_hmac(_hmac(salted, b'Server Key'), auth_message))}".encode()


def speculative_hello_handlers(fake_factory_users: dict[str, str]):
    """FakeUpstream handlers answering SCRAM-SHA-256 the way mongod does: the
    first step inside hello's `speculativeAuthenticate`, then saslContinue
    (done: true at once, since drivers ask for skipEmptyExchange); saslStart
    for drivers that do not speculate. One ScramServer per connection."""
    servers: dict[int, ScramServer] = {}

    def server_for(conn) -> ScramServer:
        return servers.setdefault(conn.index, ScramServer(fake_factory_users))

    def hello(msg, conn):
        doc = conn.server.hello_document(msg, conn)
        spec = (msg.body or {}).get("speculativeAuthenticate")
        if spec and spec.get("mechanism") == "SCRAM-SHA-256":
            payload = server_for(conn).first(bytes(spec["payload"]))
            doc["speculativeAuthenticate"] = {"conversationId": 1, "done": False,
                                              "payload": bson.Binary(payload)}
        return [conn.server.reply(msg, doc)]

    def sasl_start(msg, conn):
        payload = server_for(conn).first(bytes(msg.body["payload"]))
        return [conn.server.reply(msg, {"conversationId": 1, "done": False,
                                        "payload": bson.Binary(payload), "ok": 1.0})]

    def sasl_continue(msg, conn):
        server = server_for(conn)
        payload = bytes(msg.body.get("payload", b""))
        if server.authenticated and not payload:
            return [conn.server.reply(msg, {"conversationId": 1, "done": True,
                                            "payload": bson.Binary(b""), "ok": 1.0})]
        final = server.final(payload)
        if final is None:
            return [conn.server.reply(msg, {"ok": 0.0, "code": 18, "codeName": "AuthenticationFailed",
                                            "errmsg": "Authentication failed."})]
        return [conn.server.reply(msg, {"conversationId": 1, "done": True,
                                        "payload": bson.Binary(final), "ok": 1.0})]

    return {"hello": hello, "isMaster": hello, "ismaster": hello,
            "saslStart": sasl_start, "saslContinue": sasl_continue}


# --- a login over a bare socket ---------------------------------------------

def command(sock: socket.socket, body: dict, timeout: float = 10.0) -> dict:
    reply = wire.roundtrip(sock, wire.op_msg(body), timeout=timeout)
    return reply.body


def raw_login(sock: socket.socket, user: str, password: str, db: str = "admin") -> tuple[dict, ScramClient]:
    """saslStart + saslContinue (+ an empty saslContinue when the server is not
    done yet) on an open connection. Returns (last reply, the client, whose
    `.proof` is what went over the wire)."""
    client = ScramClient(user, password)
    reply = command(sock, {"saslStart": 1, "mechanism": "SCRAM-SHA-256",
                           "payload": bson.Binary(client.first()),
                           "options": {"skipEmptyExchange": True}, "$db": db})
    if reply.get("ok") != 1:
        return reply, client
    conv = reply["conversationId"]
    reply = command(sock, {"saslContinue": 1, "conversationId": conv,
                           "payload": bson.Binary(client.final(bytes(reply["payload"]))),
                           "$db": db})
    for _ in range(2):  # FerretDB answers done: true only on the next, empty step
        if reply.get("ok") != 1 or reply.get("done"):
            break
        reply = command(sock, {"saslContinue": 1, "conversationId": conv,
                               "payload": bson.Binary(b""), "$db": db})
    return reply, client


def raw_hello(port: int, app: str) -> socket.socket:
    """A bare connection after a hello with client metadata and no
    speculativeAuthenticate."""
    sock = wire.connect(port)
    reply = command(sock, {"hello": 1, "$db": "admin",
                           "client": {"application": {"name": app},
                                      "driver": {"name": "raw-scram", "version": "1.0"},
                                      "os": {"type": "Linux"}}})
    assert reply.get("ok") == 1, reply
    return sock
