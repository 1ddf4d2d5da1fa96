"""A decoder for PostgreSQL's `pgoutput` logical replication messages (protocol version 1).

pgoutput is the only output plugin pgserver's PostgreSQL ships, and it speaks a compact binary
format (the same one built-in logical replication uses). This module turns one message (the
`data` bytes of a row from `pg_logical_slot_peek_binary_changes`, or the payload of a streaming
replication message) into a small dataclass. Column values arrive as text, exactly as the type's
output function prints them; `PgOutputDecoder.typed` turns them into Python values using the
type OIDs announced by the Relation message.

Reference: https://www.postgresql.org/docs/16/protocol-logicalrep-message-formats.html
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pandas as pd

_INT32 = struct.Struct("!i")
PG_EPOCH_US = 946_684_800_000_000
"""Microseconds from the Unix epoch to PostgreSQL's epoch (2000-01-01 UTC)."""

# Type OIDs (pg_type.oid) of the types the decoder knows how to read.
BOOL, INT8, INT2, INT4, TEXT, OID = 16, 20, 21, 23, 25, 26
FLOAT4, FLOAT8, BPCHAR, VARCHAR, NAME = 700, 701, 1042, 1043, 19
DATE, TIMESTAMP, TIMESTAMPTZ, NUMERIC = 1082, 1114, 1184, 1700

OID_KIND = {
    BOOL: "bool",
    INT2: "int", INT4: "int", INT8: "int", OID: "int",
    FLOAT4: "float", FLOAT8: "float",
    TEXT: "text", VARCHAR: "text", BPCHAR: "text", NAME: "text",
    TIMESTAMPTZ: "timestamptz", TIMESTAMP: "timestamp", DATE: "date", NUMERIC: "numeric",
}  # fmt: skip
"""What each known OID decodes to; other types decode as their text."""


class DecodeError(ValueError):
    """Bytes that are not a valid pgoutput v1 message (the message says where it broke)."""


class _UnchangedToast:
    """Marks a TOASTed value the update did not change: pgoutput does not resend it."""

    _instance: _UnchangedToast | None = None

    def __new__(cls) -> _UnchangedToast:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNCHANGED_TOAST"


UNCHANGED_TOAST = _UnchangedToast()

TupleValue = str | bytes | None | _UnchangedToast
"""A raw column value: text ('t'), binary ('b'), NULL ('n') or UNCHANGED_TOAST ('u')."""


def lsn_to_int(text: str) -> int:
    """'16/B374D848' -> 0x16B374D848."""
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


def lsn_to_str(lsn: int) -> str:
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def pg_time_to_unix_us(pg_us: int) -> int:
    return pg_us + PG_EPOCH_US


# ------------------------------------------------------------------------------------ messages
@dataclass(frozen=True, slots=True)
class Begin:
    final_lsn: int
    """LSN of the transaction's commit record: the landing zone's `_lsn` for its changes."""
    commit_time_us: int
    """Commit time, microseconds since the Unix epoch (server wall clock)."""
    xid: int

    @property
    def commit_time(self) -> pd.Timestamp:
        return pd.Timestamp(self.commit_time_us, unit="us", tz="UTC")


@dataclass(frozen=True, slots=True)
class Commit:
    flags: int
    commit_lsn: int
    end_lsn: int
    """End of the commit record: where the slot may be advanced once the transaction is stored."""
    commit_time_us: int

    @property
    def commit_time(self) -> pd.Timestamp:
        return pd.Timestamp(self.commit_time_us, unit="us", tz="UTC")


@dataclass(frozen=True, slots=True)
class Origin:
    lsn: int
    name: str


@dataclass(frozen=True, slots=True)
class RelationColumn:
    name: str
    type_oid: int
    typmod: int
    is_key: bool


@dataclass(frozen=True, slots=True)
class Relation:
    oid: int
    namespace: str
    name: str
    replica_identity: str  # 'd' default, 'n' nothing, 'f' full, 'i' index
    columns: tuple[RelationColumn, ...]

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


@dataclass(frozen=True, slots=True)
class TypeInfo:
    oid: int
    namespace: str
    name: str


@dataclass(frozen=True, slots=True)
class Insert:
    relation_oid: int
    new: tuple[TupleValue, ...]


@dataclass(frozen=True, slots=True)
class Update:
    relation_oid: int
    new: tuple[TupleValue, ...]
    old: tuple[TupleValue, ...] | None = None
    old_kind: str | None = None  # 'K' key columns only, 'O' whole old row (REPLICA IDENTITY FULL)


@dataclass(frozen=True, slots=True)
class Delete:
    relation_oid: int
    old: tuple[TupleValue, ...]
    old_kind: str  # 'K' or 'O'


@dataclass(frozen=True, slots=True)
class Truncate:
    relation_oids: tuple[int, ...]
    cascade: bool
    restart_identity: bool


@dataclass(frozen=True, slots=True)
class LogicalMessage:
    transactional: bool
    lsn: int
    prefix: str
    content: bytes


Message = (
    Begin | Commit | Origin | Relation | TypeInfo | Insert | Update | Delete | Truncate
    | LogicalMessage
)  # fmt: skip


# ------------------------------------------------------------------------------------ decoding
class _Reader:
    """A cursor over one message's bytes, with errors that say what was being read where."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def _need(self, n: int, what: str) -> None:
        if self.pos + n > len(self.data):
            raise DecodeError(
                f"truncated pgoutput message: need {n} bytes for {what} at offset {self.pos}, "
                f"message is {len(self.data)} bytes"
            )

    def byte(self, what: str) -> int:
        self._need(1, what)
        value = self.data[self.pos]
        self.pos += 1
        return value

    def int16(self, what: str) -> int:
        self._need(2, what)
        (value,) = struct.unpack_from("!h", self.data, self.pos)
        self.pos += 2
        return value

    def int32(self, what: str) -> int:
        self._need(4, what)
        (value,) = struct.unpack_from("!i", self.data, self.pos)
        self.pos += 4
        return value

    def uint32(self, what: str) -> int:
        self._need(4, what)
        (value,) = struct.unpack_from("!I", self.data, self.pos)
        self.pos += 4
        return value

    def int64(self, what: str) -> int:
        self._need(8, what)
        (value,) = struct.unpack_from("!q", self.data, self.pos)
        self.pos += 8
        return value

    def uint64(self, what: str) -> int:
        self._need(8, what)
        (value,) = struct.unpack_from("!Q", self.data, self.pos)
        self.pos += 8
        return value

    def string(self, what: str) -> str:
        end = self.data.find(b"\0", self.pos)
        if end < 0:
            raise DecodeError(f"unterminated string for {what} at offset {self.pos}")
        value = self.data[self.pos : end].decode("utf-8")
        self.pos = end + 1
        return value

    def raw(self, n: int, what: str) -> bytes:
        self._need(n, what)
        value = self.data[self.pos : self.pos + n]
        self.pos += n
        return value

    def tuple_data(self) -> tuple[TupleValue, ...]:
        # The hot loop of decoding (every column of every change): locals and one struct call
        # per value; the careful, descriptive reads run only to explain a failure.
        n = self.int16("tuple column count")
        data, pos, size = self.data, self.pos, len(self.data)
        values: list[TupleValue] = []
        append = values.append
        for i in range(n):
            if pos >= size:
                break
            kind = data[pos]
            if kind == 0x74 or kind == 0x62:  # 't' text, 'b' binary: Int32 length + bytes
                if pos + 5 > size:
                    break
                (length,) = _INT32.unpack_from(data, pos + 1)
                stop = pos + 5 + length
                if stop > size or length < 0:
                    break
                raw = data[pos + 5 : stop]
                append(raw.decode("utf-8") if kind == 0x74 else raw)
                pos = stop
            elif kind == 0x6E:  # 'n' null
                append(None)
                pos += 1
            elif kind == 0x75:  # 'u' unchanged TOAST
                append(UNCHANGED_TOAST)
                pos += 1
            else:
                raise DecodeError(f"unknown tuple value kind {chr(kind)!r} for column {i}")
        if len(values) < n:  # ran out of bytes: re-read the failing value to say where
            self.pos = pos
            i = len(values)
            self.byte(f"kind of column {i}")
            length = self.int32(f"length of column {i}")
            self._need(length, f"value of column {i}")
        self.pos = pos
        return tuple(values)

    def done(self, what: str) -> None:
        if self.pos != len(self.data):
            raise DecodeError(f"{len(self.data) - self.pos} trailing bytes after a {what} message")


def decode(data: bytes | bytearray | memoryview) -> Message:
    """Decode one pgoutput v1 message. Raises DecodeError on malformed or unknown input."""
    data = bytes(data)
    if not data:
        raise DecodeError("empty pgoutput message")
    r = _Reader(data)
    tag = chr(r.byte("message type"))
    if tag == "B":
        msg: Message = Begin(
            r.uint64("final LSN"), pg_time_to_unix_us(r.int64("commit time")), r.uint32("xid")
        )
    elif tag == "C":
        msg = Commit(
            r.byte("flags"),
            r.uint64("commit LSN"),
            r.uint64("end LSN"),
            pg_time_to_unix_us(r.int64("commit time")),
        )
    elif tag == "O":
        msg = Origin(r.uint64("origin LSN"), r.string("origin name"))
    elif tag == "R":
        oid = r.uint32("relation OID")
        namespace, name = r.string("namespace"), r.string("relation name")
        identity = chr(r.byte("replica identity"))
        columns = []
        for i in range(r.int16("column count")):
            flags = r.byte(f"flags of column {i}")
            columns.append(
                RelationColumn(
                    r.string(f"name of column {i}"),
                    r.uint32(f"type of column {i}"),
                    r.int32(f"typmod of column {i}"),
                    bool(flags & 1),
                )
            )
        msg = Relation(oid, namespace, name, identity, tuple(columns))
    elif tag == "Y":
        msg = TypeInfo(r.uint32("type OID"), r.string("namespace"), r.string("type name"))
    elif tag == "I":
        oid = r.uint32("relation OID")
        if (marker := chr(r.byte("new tuple marker"))) != "N":
            raise DecodeError(f"Insert: expected new tuple marker 'N', got {marker!r}")
        msg = Insert(oid, r.tuple_data())
    elif tag == "U":
        oid = r.uint32("relation OID")
        marker = chr(r.byte("tuple marker"))
        old, old_kind = None, None
        if marker in ("K", "O"):
            old, old_kind = r.tuple_data(), marker
            marker = chr(r.byte("new tuple marker"))
        if marker != "N":
            raise DecodeError(f"Update: expected new tuple marker 'N', got {marker!r}")
        msg = Update(oid, r.tuple_data(), old, old_kind)
    elif tag == "D":
        oid = r.uint32("relation OID")
        marker = chr(r.byte("old tuple marker"))
        if marker not in ("K", "O"):
            raise DecodeError(f"Delete: expected old tuple marker 'K' or 'O', got {marker!r}")
        msg = Delete(oid, r.tuple_data(), marker)
    elif tag == "T":
        n = r.int32("relation count")
        options = r.byte("truncate options")
        oids = tuple(r.uint32(f"relation OID {i}") for i in range(n))
        msg = Truncate(oids, bool(options & 1), bool(options & 2))
    elif tag == "M":
        flags = r.byte("flags")
        lsn = r.uint64("message LSN")
        prefix = r.string("prefix")
        content = r.raw(r.int32("content length"), "content")
        msg = LogicalMessage(bool(flags & 1), lsn, prefix, content)
    else:
        raise DecodeError(f"unknown pgoutput message type {tag!r} (protocol version 1 expected)")
    r.done(type(msg).__name__)
    return msg


# ------------------------------------------------------------------------------------ values
def convert(type_oid: int, text: TupleValue) -> Any:
    """One text value as a Python value, by its type OID (unknown types stay text).

    int2/4/8 -> int, float4/8 -> float, bool -> bool, numeric -> Decimal, timestamptz -> UTC
    pandas Timestamp, timestamp -> naive Timestamp, date -> date; NULL -> None;
    UNCHANGED_TOAST is passed through for the caller to resolve.
    """
    if text is None or text is UNCHANGED_TOAST or isinstance(text, bytes):
        return text
    kind = OID_KIND.get(type_oid, "text")
    if kind == "int":
        return int(text)
    if kind == "float":
        return float(text)
    if kind == "bool":
        if text not in ("t", "f"):
            raise DecodeError(f"boolean text {text!r} is neither 't' nor 'f'")
        return text == "t"
    if kind == "timestamptz":
        return pd.Timestamp(_parse_timestamp(text)).tz_convert("UTC")
    if kind == "timestamp":
        return pd.Timestamp(_parse_timestamp(text))
    if kind == "date":
        return date.fromisoformat(text)
    if kind == "numeric":
        return Decimal(text)
    return text


def _parse_timestamp(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise DecodeError(f"timestamp text {text!r} is not ISO 8601 (infinity or BC?)") from None


class PgOutputDecoder:
    """Decodes a stream of messages, remembering each Relation to type the tuples that follow.

    pgoutput sends a Relation message before the first change to a table in each decoding
    session (and again after its schema changes), so the cache must live as long as the session.
    """

    def __init__(self) -> None:
        self.relations: dict[int, Relation] = {}

    def feed(self, data: bytes | bytearray | memoryview) -> Message:
        msg = decode(data)
        if isinstance(msg, Relation):
            self.relations[msg.oid] = msg
        return msg

    def relation(self, oid: int) -> Relation:
        try:
            return self.relations[oid]
        except KeyError:
            raise DecodeError(
                f"change for relation OID {oid} before its Relation message"
            ) from None

    def typed(self, relation_oid: int, values: tuple[TupleValue, ...]) -> dict[str, Any]:
        """A tuple as {column: Python value}, typed by the relation's column type OIDs."""
        rel = self.relation(relation_oid)
        if len(values) != len(rel.columns):
            raise DecodeError(
                f"tuple for {rel.namespace}.{rel.name} has {len(values)} values, "
                f"its Relation message announced {len(rel.columns)} columns"
            )
        return {c.name: convert(c.type_oid, v) for c, v in zip(rel.columns, values, strict=True)}
