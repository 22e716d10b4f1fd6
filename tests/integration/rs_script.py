"""A scripted three-member replica set in front of the real backend.

The backend (FerretDB) cannot replicate, so each scripted member is a small
relay: it answers hello/isMaster itself with the set's topology (which
member is primary is scripted), refuses writes with NotWritablePrimary when
it is not the primary, and passes every other message to the one backend.
Each member counts the writes it forwarded, so a test can tell which member
a driver wrote through."""

from __future__ import annotations

import datetime
import socket
import threading

import bson
from bson import ObjectId

import wire
from harness import free_port

WRITE_COMMANDS = {"insert", "update", "delete", "findAndModify", "findandmodify"}
HELLO_COMMANDS = {"hello", "isMaster", "ismaster"}


class Member:
    def __init__(self, rs: "ScriptedReplicaSet", index: int):
        self.rs = rs
        self.index = index
        self.port = free_port()
        self.writes = 0
        self.hellos = 0
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._listener.settimeout(0.2)
        self._threads: list[threading.Thread] = []

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def serve(self) -> None:
        while not self.rs.stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except (socket.timeout, OSError):
                continue
            t = threading.Thread(target=self._connection, args=(conn,), daemon=True)
            t.start()
            self._threads.append(t)

    def _connection(self, conn: socket.socket) -> None:
        backend = None
        try:
            backend = socket.create_connection(("127.0.0.1", self.rs.backend_port), timeout=10)
            while not self.rs.stopping.is_set():
                try:
                    raw = wire.read_message(conn, timeout=60)
                except (wire.Closed, TimeoutError, OSError):
                    return
                msg = wire.parse_message(raw)
                command = msg.command
                if msg.op_code == wire.OP_QUERY and command in HELLO_COMMANDS:
                    self.hellos += 1
                    conn.sendall(wire.op_reply([self.rs.hello(self.index)],
                                               response_to=msg.request_id))
                    continue
                if msg.op_code == wire.OP_MSG and command in HELLO_COMMANDS:
                    self.hellos += 1
                    conn.sendall(wire.op_msg(self.rs.hello(self.index),
                                             response_to=msg.request_id))
                    continue
                if msg.op_code == wire.OP_MSG and command in WRITE_COMMANDS:
                    if self.index != self.rs.primary:
                        conn.sendall(wire.op_msg({"ok": 0.0, "code": 10107,
                                                  "codeName": "NotWritablePrimary",
                                                  "errmsg": "not primary"},
                                                 response_to=msg.request_id))
                        continue
                    self.writes += 1
                backend.sendall(raw)
                reply = wire.read_message(backend, timeout=30)
                conn.sendall(reply)
        except OSError:
            return
        finally:
            conn.close()
            if backend is not None:
                backend.close()


class ScriptedReplicaSet:
    def __init__(self, backend_port: int, members: int = 3, name: str = "rs0",
                 extra_hosts: tuple[str, ...] = ()):
        self.backend_port = backend_port
        self.name = name
        self.extra_hosts = list(extra_hosts)
        self.stopping = threading.Event()
        self.primary = 0
        self.election = 1
        self.members = [Member(self, i) for i in range(members)]
        self._threads = [threading.Thread(target=m.serve, daemon=True) for m in self.members]
        for t in self._threads:
            t.start()

    def hello(self, index: int) -> dict:
        primary = index == self.primary
        return {
            "helloOk": True,
            "isWritablePrimary": primary,
            "ismaster": primary,
            "secondary": not primary,
            "setName": self.name,
            "setVersion": 1,
            "hosts": [m.address for m in self.members] + self.extra_hosts,
            "primary": self.members[self.primary].address,
            "me": self.members[index].address,
            "electionId": ObjectId(f"7fffffff{0:08x}{self.election:08x}"),
            "maxBsonObjectSize": 16 * 1024 * 1024,
            "maxMessageSizeBytes": 48_000_000,
            "maxWriteBatchSize": 100_000,
            "localTime": datetime.datetime.now(datetime.timezone.utc),
            "logicalSessionTimeoutMinutes": 30,
            "connectionId": 1,
            "minWireVersion": 0,
            "maxWireVersion": 17,
            "readOnly": False,
            "ok": 1.0,
        }

    def move_primary(self, index: int) -> None:
        self.election += 1
        self.primary = index

    def close(self) -> None:
        self.stopping.set()
        for m in self.members:
            m._listener.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


__all__ = ["ScriptedReplicaSet", "bson"]
