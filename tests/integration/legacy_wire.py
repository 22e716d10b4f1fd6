"""Legacy write opcodes for the tests (wire.py builds OP_MSG, OP_QUERY and
OP_COMPRESSED; these complete the set). Layouts from the MongoDB wire
protocol reference:

  OP_DELETE (2006): int32 ZERO, cstring fullCollectionName, int32 flags
                    (bit 0 SingleRemove), document selector
  OP_UPDATE (2001): int32 ZERO, cstring fullCollectionName, int32 flags
                    (bit 0 Upsert, bit 1 MultiUpdate), document selector,
                    document update

Neither has a reply: a client learns nothing unless it asks getLastError."""

from __future__ import annotations

import struct
from typing import Mapping

import bson

import wire

SINGLE_REMOVE = 1 << 0
UPSERT = 1 << 0
MULTI_UPDATE = 1 << 1


def op_delete(namespace: str, selector: Mapping, *, single: bool = False,
              request_id: int | None = None) -> bytes:
    body = (struct.pack("<i", 0) + wire.cstring(namespace)
            + struct.pack("<i", SINGLE_REMOVE if single else 0) + bson.encode(selector))
    return wire.frame(wire.OP_DELETE, body, request_id)


def op_update(namespace: str, selector: Mapping, update: Mapping, *, multi: bool = False,
              upsert: bool = False, request_id: int | None = None) -> bytes:
    flags = (MULTI_UPDATE if multi else 0) | (UPSERT if upsert else 0)
    body = (struct.pack("<i", 0) + wire.cstring(namespace) + struct.pack("<i", flags)
            + bson.encode(selector) + bson.encode(update))
    return wire.frame(wire.OP_UPDATE, body, request_id)


def op_query_command(database: str, command: Mapping, *, wrap: str | None = None,
                     request_id: int | None = None) -> bytes:
    """A command over OP_QUERY on `<database>.$cmd`; `wrap` ("$query" or
    "query") nests it the way drivers do to carry a read preference."""
    query = dict(command)
    if wrap is not None:
        query = {wrap: query, "$readPreference": {"mode": "primary"}}
    return wire.op_query(f"{database}.$cmd", query, request_id=request_id)
