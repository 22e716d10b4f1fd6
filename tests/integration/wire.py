"""MongoDB wire-protocol helpers for the integration tests.

Pure Python on purpose: the tests must build and read frames independently of
the C++ codec they are checking, including frames that codec must refuse.
BSON goes through pymongo's `bson` package. Every socket read here has a
deadline, so a proxy that hangs makes a test fail instead of stalling it.
"""

from __future__ import annotations

import itertools
import socket
import struct
import threading
import time
import zlib
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import bson

HEADER = struct.Struct("<iiii")
HEADER_SIZE = 16
MAX_MESSAGE_SIZE = 48_000_000
MAX_BSON_OBJECT_SIZE = 16 * 1024 * 1024

OP_REPLY = 1
OP_UPDATE = 2001
OP_INSERT = 2002
OP_QUERY = 2004
OP_GET_MORE = 2005
OP_DELETE = 2006
OP_KILL_CURSORS = 2007
OP_COMPRESSED = 2012
OP_MSG = 2013

CHECKSUM_PRESENT = 1 << 0
MORE_TO_COME = 1 << 1
EXHAUST_ALLOWED = 1 << 16

COMPRESSOR_IDS = {"noop": 0, "snappy": 1, "zlib": 2, "zstd": 3}
COMPRESSOR_NAMES = {v: k for k, v in COMPRESSOR_IDS.items()}

_ids = itertools.count(1000)
_ids_lock = threading.Lock()


def next_request_id() -> int:
    with _ids_lock:
        return next(_ids)


# --------------------------------------------------------------------------
# CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), table driven. Fine
# for the small messages the checksum tests use; nobody checksums 48 MB here.

def _crc32c_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C_TABLE = _crc32c_table()


def crc32c(data: bytes, crc: int = 0) -> int:
    crc ^= 0xFFFFFFFF
    table = _CRC32C_TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283  # the standard check value


# --------------------------------------------------------------------------
# Header

@dataclass(frozen=True)
class Header:
    length: int
    request_id: int
    response_to: int
    op_code: int


def pack_header(length: int, request_id: int, response_to: int, op_code: int) -> bytes:
    return HEADER.pack(length, request_id, response_to, op_code)


def parse_header(data: bytes) -> Header:
    return Header(*HEADER.unpack_from(data, 0))


def frame(op_code: int, body: bytes, request_id: int | None = None, response_to: int = 0,
          length: int | None = None) -> bytes:
    """A message of `op_code` around `body`. `length` overrides the header's
    messageLength (for deliberately broken frames)."""
    if request_id is None:
        request_id = next_request_id()
    if length is None:
        length = HEADER_SIZE + len(body)
    return pack_header(length, request_id, response_to, op_code) + body


def _doc_bytes(doc: Mapping | bytes) -> bytes:
    return doc if isinstance(doc, (bytes, bytearray, memoryview)) else bson.encode(doc)


def cstring(s: str) -> bytes:
    return s.encode() + b"\x00"


# --------------------------------------------------------------------------
# OP_MSG

def kind0(body: Mapping | bytes) -> bytes:
    return b"\x00" + bytes(_doc_bytes(body))


def kind1(identifier: str, docs: Iterable[Mapping | bytes]) -> bytes:
    payload = cstring(identifier) + b"".join(bytes(_doc_bytes(d)) for d in docs)
    return b"\x01" + struct.pack("<i", 4 + len(payload)) + payload


def op_msg_from_sections(sections: bytes, *, flags: int = 0, request_id: int | None = None,
                         response_to: int = 0, checksum: bool | int = False) -> bytes:
    """An OP_MSG around already-encoded section bytes. `checksum=True` sets
    the flag and appends the right CRC-32C; an int appends that value
    instead (a wrong checksum, for the refusal tests)."""
    if checksum is not False:
        flags |= CHECKSUM_PRESENT
    body = struct.pack("<I", flags) + sections
    extra = 4 if checksum is not False else 0
    msg = frame(OP_MSG, body, request_id, response_to, length=HEADER_SIZE + len(body) + extra)
    if checksum is True:
        msg += struct.pack("<I", crc32c(msg))
    elif checksum is not False:
        msg += struct.pack("<I", checksum & 0xFFFFFFFF)
    return msg


def op_msg(body: Mapping | bytes, *, sequences: Mapping[str, Sequence[Mapping | bytes]] | None = None,
           flags: int = 0, request_id: int | None = None, response_to: int = 0,
           checksum: bool | int = False) -> bytes:
    sections = kind0(body)
    for ident, docs in (sequences or {}).items():
        sections += kind1(ident, docs)
    return op_msg_from_sections(sections, flags=flags, request_id=request_id,
                                response_to=response_to, checksum=checksum)


@dataclass
class OpMsg:
    header: Header
    flags: int
    body: dict
    sequences: dict[str, list[dict]] = field(default_factory=dict)
    checksum: int | None = None

    @property
    def more_to_come(self) -> bool:
        return bool(self.flags & MORE_TO_COME)

    @property
    def exhaust_allowed(self) -> bool:
        return bool(self.flags & EXHAUST_ALLOWED)


def _split_docs(data: bytes) -> list[bytes]:
    docs, pos = [], 0
    while pos < len(data):
        (n,) = struct.unpack_from("<i", data, pos)
        if n < 5 or pos + n > len(data):
            raise ValueError("bad document length in sequence")
        docs.append(bytes(data[pos:pos + n]))
        pos += n
    return docs


def parse_op_msg(msg: bytes, verify_checksum: bool = True, decode_sequences: bool = True) -> OpMsg:
    h = parse_header(msg)
    if h.op_code != OP_MSG:
        raise ValueError(f"not an OP_MSG: opcode {h.op_code}")
    (flags,) = struct.unpack_from("<I", msg, HEADER_SIZE)
    end = h.length
    checksum = None
    if flags & CHECKSUM_PRESENT:
        end -= 4
        (checksum,) = struct.unpack_from("<I", msg, end)
        if verify_checksum and crc32c(msg[:end]) != checksum:
            raise ValueError("bad checksum")
    pos = HEADER_SIZE + 4
    body = None
    sequences: dict[str, list] = {}
    while pos < end:
        kind = msg[pos]
        pos += 1
        if kind == 0:
            (n,) = struct.unpack_from("<i", msg, pos)
            body = bson.decode(bytes(msg[pos:pos + n]))
            pos += n
        elif kind == 1:
            (n,) = struct.unpack_from("<i", msg, pos)
            section_end = pos + n
            nul = msg.index(b"\x00", pos + 4)
            ident = bytes(msg[pos + 4:nul]).decode()
            raw = _split_docs(msg[nul + 1:section_end])
            sequences[ident] = [bson.decode(d) for d in raw] if decode_sequences else raw
            pos = section_end
        else:
            raise ValueError(f"bad section kind {kind}")
    if body is None:
        raise ValueError("OP_MSG without a body")
    return OpMsg(h, flags, body, sequences, checksum)


# --------------------------------------------------------------------------
# OP_QUERY / OP_REPLY

def op_query(collection: str, query: Mapping | bytes, *, flags: int = 0, skip: int = 0,
             number_to_return: int = -1, request_id: int | None = None) -> bytes:
    body = (struct.pack("<i", flags) + cstring(collection)
            + struct.pack("<ii", skip, number_to_return) + _doc_bytes(query))
    return frame(OP_QUERY, body, request_id)


@dataclass
class OpQuery:
    header: Header
    flags: int
    collection: str
    skip: int
    number_to_return: int
    query: dict


def parse_op_query(msg: bytes) -> OpQuery:
    h = parse_header(msg)
    (flags,) = struct.unpack_from("<i", msg, HEADER_SIZE)
    nul = msg.index(b"\x00", HEADER_SIZE + 4)
    coll = bytes(msg[HEADER_SIZE + 4:nul]).decode()
    skip, ntr = struct.unpack_from("<ii", msg, nul + 1)
    pos = nul + 9
    (n,) = struct.unpack_from("<i", msg, pos)
    return OpQuery(h, flags, coll, skip, ntr, bson.decode(bytes(msg[pos:pos + n])))


def op_reply(docs: Sequence[Mapping | bytes], *, response_to: int, request_id: int | None = None,
             flags: int = 0, cursor_id: int = 0, starting_from: int = 0) -> bytes:
    body = struct.pack("<iqii", flags, cursor_id, starting_from, len(docs))
    body += b"".join(_doc_bytes(d) for d in docs)
    return frame(OP_REPLY, body, request_id, response_to)


@dataclass
class OpReply:
    header: Header
    flags: int
    cursor_id: int
    starting_from: int
    docs: list[dict]


def parse_op_reply(msg: bytes) -> OpReply:
    h = parse_header(msg)
    flags, cursor_id, start, count = struct.unpack_from("<iqii", msg, HEADER_SIZE)
    docs = [bson.decode(d) for d in _split_docs(msg[HEADER_SIZE + 20:h.length])]
    if len(docs) != count:
        raise ValueError(f"OP_REPLY says {count} documents, holds {len(docs)}")
    return OpReply(h, flags, cursor_id, start, docs)


# --------------------------------------------------------------------------
# OP_COMPRESSED

def _compress(data: bytes, compressor: str, level: int = -1) -> bytes:
    if compressor == "noop":
        return bytes(data)
    if compressor == "snappy":
        import snappy
        return snappy.compress(bytes(data))
    if compressor == "zlib":
        return zlib.compress(bytes(data), level)
    if compressor == "zstd":
        import zstandard
        return zstandard.ZstdCompressor().compress(bytes(data))
    raise ValueError(f"unknown compressor {compressor!r}")


def _decompress(data: bytes, compressor_id: int, size: int) -> bytes:
    name = COMPRESSOR_NAMES.get(compressor_id)
    if name == "noop":
        return bytes(data)
    if name == "snappy":
        import snappy
        return snappy.decompress(bytes(data))
    if name == "zlib":
        return zlib.decompress(bytes(data))
    if name == "zstd":
        import zstandard
        return zstandard.ZstdDecompressor().decompress(bytes(data), max_output_size=size)
    raise ValueError(f"unknown compressor id {compressor_id}")


def compress(plain: bytes, compressor: str, *, uncompressed_size: int | None = None) -> bytes:
    """Wraps a complete plain message in OP_COMPRESSED (same requestID and
    responseTo). `uncompressed_size` overrides the declared size."""
    h = parse_header(plain)
    payload = plain[HEADER_SIZE:h.length]
    if uncompressed_size is None:
        uncompressed_size = len(payload)
    body = (struct.pack("<iiB", h.op_code, uncompressed_size, COMPRESSOR_IDS[compressor])
            + _compress(payload, compressor))
    return frame(OP_COMPRESSED, body, h.request_id, h.response_to)


def decompress(msg: bytes) -> tuple[bytes, str]:
    """(the plain message, compressor name) for an OP_COMPRESSED message."""
    h = parse_header(msg)
    original_op, size, cid = struct.unpack_from("<iiB", msg, HEADER_SIZE)
    payload = _decompress(msg[HEADER_SIZE + 9:h.length], cid, size)
    if len(payload) != size:
        raise ValueError(f"uncompressedSize {size} but inflated {len(payload)}")
    plain = pack_header(HEADER_SIZE + size, h.request_id, h.response_to, original_op) + payload
    return plain, COMPRESSOR_NAMES[cid]


# --------------------------------------------------------------------------
# One parsed message of any supported kind.

@dataclass
class Message:
    raw: bytes                  # as it travelled
    plain: bytes                # inflated when it travelled compressed
    header: Header              # of `raw`
    op_code: int                # effective opcode (the original one when compressed)
    compressor: str | None      # None when not compressed
    flags: int = 0              # OP_MSG flags / OP_QUERY flags / OP_REPLY responseFlags
    body: dict | None = None    # OP_MSG body, OP_QUERY query, first OP_REPLY document
    sequences: dict[str, list] = field(default_factory=dict)
    docs: list[dict] = field(default_factory=list)  # OP_REPLY documents
    collection: str | None = None  # OP_QUERY namespace

    @property
    def request_id(self) -> int:
        return self.header.request_id

    @property
    def response_to(self) -> int:
        return self.header.response_to

    @property
    def command(self) -> str | None:
        return next(iter(self.body), None) if self.body else None

    @property
    def more_to_come(self) -> bool:
        return self.op_code == OP_MSG and bool(self.flags & MORE_TO_COME)

    @property
    def exhaust_allowed(self) -> bool:
        return self.op_code == OP_MSG and bool(self.flags & EXHAUST_ALLOWED)


def parse_message(raw: bytes, decode_sequences: bool = True) -> Message:
    h = parse_header(raw)
    plain, compressor = (raw, None)
    if h.op_code == OP_COMPRESSED:
        plain, compressor = decompress(raw)
    op = parse_header(plain).op_code
    m = Message(raw=bytes(raw), plain=bytes(plain), header=h, op_code=op, compressor=compressor)
    if op == OP_MSG:
        parsed = parse_op_msg(plain, decode_sequences=decode_sequences)
        m.flags, m.body, m.sequences = parsed.flags, parsed.body, parsed.sequences
    elif op == OP_QUERY:
        q = parse_op_query(plain)
        m.flags, m.body, m.collection = q.flags, q.query, q.collection
    elif op == OP_REPLY:
        r = parse_op_reply(plain)
        m.flags, m.docs = r.flags, r.docs
        m.body = r.docs[0] if r.docs else None
    return m


# --------------------------------------------------------------------------
# Socket helpers, all with deadlines.

class Closed(Exception):
    """The peer closed the connection (EOF or reset)."""


def recv_exact(sock: socket.socket, n: int, deadline: float) -> bytes:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"read {got} of {n} bytes before the deadline")
        sock.settimeout(left)
        try:
            k = sock.recv_into(view[got:], min(n - got, 1 << 20))
        except socket.timeout:
            raise TimeoutError(f"read {got} of {n} bytes before the deadline") from None
        except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError) as e:
            raise Closed(str(e)) from None
        if k == 0:
            raise Closed(f"EOF after {got} of {n} bytes")
        got += k
    return bytes(buf)


def read_message(sock: socket.socket, timeout: float = 5.0, max_size: int = MAX_MESSAGE_SIZE + 1024) -> bytes:
    """One complete raw message. Raises TimeoutError, or Closed on EOF/reset."""
    deadline = time.monotonic() + timeout
    head = recv_exact(sock, HEADER_SIZE, deadline)
    (length,) = struct.unpack_from("<i", head)
    if length < HEADER_SIZE or length > max_size:
        raise ValueError(f"implausible messageLength {length}")
    return head + recv_exact(sock, length - HEADER_SIZE, deadline)


def connect(port: int, host: str = "127.0.0.1", timeout: float = 5.0) -> socket.socket:
    s = socket.create_connection((host, port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def roundtrip(sock: socket.socket, msg: bytes, timeout: float = 5.0) -> Message:
    sock.sendall(msg)
    return parse_message(read_message(sock, timeout))


def wait_closed(sock: socket.socket, timeout: float = 5.0) -> tuple[str, bytes]:
    """Reads until the peer closes or the deadline passes. Returns
    ("eof" | "reset" | "timeout", bytes received meanwhile)."""
    deadline = time.monotonic() + timeout
    data = bytearray()
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return "timeout", bytes(data)
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return "timeout", bytes(data)
        except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
            return "reset", bytes(data)
        if not chunk:
            return "eof", bytes(data)
        data += chunk


def expect_silence(sock: socket.socket, seconds: float) -> bytes:
    """Whatever arrives within `seconds` (b"" when nothing does); the
    connection must stay open."""
    deadline = time.monotonic() + seconds
    data = bytearray()
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return bytes(data)
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return bytes(data)
        if not chunk:
            raise Closed("connection closed while expecting silence")
        data += chunk
