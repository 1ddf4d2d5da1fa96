"""The pgoutput decoder: on messages built byte by byte from the protocol docs, then on a real
server's output (so the hand-built bytes and PostgreSQL agree)."""

from __future__ import annotations

import struct
from datetime import date
from decimal import Decimal

import pandas as pd
import pytest

from mlops_pipeline.cdc import pgoutput as po

PG_EPOCH = pd.Timestamp("2000-01-01", tz="UTC")


# ------------------------------------------------------------------------------ byte builders
def _s(text: str) -> bytes:
    return text.encode() + b"\0"


def _tuple(*values) -> bytes:
    out = struct.pack("!h", len(values))
    for v in values:
        if v is None:
            out += b"n"
        elif v is po.UNCHANGED_TOAST:
            out += b"u"
        elif isinstance(v, bytes):
            out += b"b" + struct.pack("!i", len(v)) + v
        else:
            raw = str(v).encode()
            out += b"t" + struct.pack("!i", len(raw)) + raw
    return out


def _pg_us(ts: str) -> int:
    stamp = pd.Timestamp(ts)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp
    return (stamp - PG_EPOCH) // pd.Timedelta(microseconds=1)


def begin(final_lsn: int, ts: str, xid: int) -> bytes:
    return b"B" + struct.pack("!QqI", final_lsn, _pg_us(ts), xid)


def commit(commit_lsn: int, end_lsn: int, ts: str) -> bytes:
    return b"C" + struct.pack("!BQQq", 0, commit_lsn, end_lsn, _pg_us(ts))


def relation(oid: int, name: str, columns: list[tuple[str, int, bool]], identity="f") -> bytes:
    out = b"R" + struct.pack("!I", oid) + _s("public") + _s(name) + identity.encode()
    out += struct.pack("!h", len(columns))
    for col, type_oid, key in columns:
        out += struct.pack("!B", 1 if key else 0) + _s(col) + struct.pack("!Ii", type_oid, -1)
    return out


COLUMNS = [
    ("id", po.INT8, True), ("name", po.TEXT, False), ("score", po.FLOAT8, False),
    ("ok", po.BOOL, False), ("at", po.TIMESTAMPTZ, False), ("n", po.INT4, False),
]  # fmt: skip


# ------------------------------------------------------------------------------ hand-built
def test_begin_and_commit_carry_lsns_and_commit_time():
    b = po.decode(begin(0x16B374D848, "2024-03-01T12:00:00.25Z", 742))
    assert b == po.Begin(0x16B374D848, b.commit_time_us, 742)
    assert b.commit_time == pd.Timestamp("2024-03-01T12:00:00.25Z")
    c = po.decode(commit(0x100, 0x130, "2024-03-01T12:00:01Z"))
    assert (c.commit_lsn, c.end_lsn) == (0x100, 0x130)
    assert c.commit_time == pd.Timestamp("2024-03-01T12:00:01Z")


def test_relation_lists_columns_types_and_key():
    rel = po.decode(relation(16399, "things", COLUMNS))
    assert isinstance(rel, po.Relation)
    assert (rel.oid, rel.namespace, rel.name, rel.replica_identity) == (
        16399,
        "public",
        "things",
        "f",
    )
    assert rel.column_names == ["id", "name", "score", "ok", "at", "n"]
    assert [c.type_oid for c in rel.columns] == [20, 25, 701, 16, 1184, 23]
    assert [c.is_key for c in rel.columns] == [True, False, False, False, False, False]


def test_insert_values_are_typed_by_the_relation():
    decoder = po.PgOutputDecoder()
    decoder.feed(relation(7, "things", COLUMNS))
    msg = decoder.feed(
        b"I" + struct.pack("!I", 7) + b"N"
        + _tuple(42, "naïve, \"quoted\"", "-1.5e-07", "t", "2013-01-01 05:15:00+00", None)
    )  # fmt: skip
    assert isinstance(msg, po.Insert) and msg.relation_oid == 7
    row = decoder.typed(7, msg.new)
    assert row == {
        "id": 42, "name": 'naïve, "quoted"', "score": -1.5e-07, "ok": True,
        "at": pd.Timestamp("2013-01-01T05:15:00Z"), "n": None,
    }  # fmt: skip
    assert str(row["at"].tz) == "UTC"


def test_update_with_full_old_row_and_unchanged_toast():
    old = _tuple(1, "a", "0.5", "f", "2013-01-01 00:00:00+00", 3)
    new = _tuple(1, po.UNCHANGED_TOAST, "NaN", "t", "2013-01-01 01:00:00+05:30", 4)
    msg = po.decode(b"U" + struct.pack("!I", 7) + b"O" + old + b"N" + new)
    assert isinstance(msg, po.Update) and msg.old_kind == "O"
    assert msg.old == ("1", "a", "0.5", "f", "2013-01-01 00:00:00+00", "3")
    assert msg.new[1] is po.UNCHANGED_TOAST
    decoder = po.PgOutputDecoder()
    decoder.feed(relation(7, "things", COLUMNS))
    row = decoder.typed(7, msg.new)
    assert row["name"] is po.UNCHANGED_TOAST and row["score"] != row["score"]  # NaN
    assert row["at"] == pd.Timestamp("2012-12-31T19:30:00Z")  # offset applied


def test_update_without_old_tuple():
    msg = po.decode(b"U" + struct.pack("!I", 9) + b"N" + _tuple("x"))
    assert msg == po.Update(9, ("x",), None, None)


def test_delete_with_key_or_full_old_row():
    full = po.decode(b"D" + struct.pack("!I", 7) + b"O" + _tuple(5, None))
    assert full == po.Delete(7, ("5", None), "O")
    key = po.decode(b"D" + struct.pack("!I", 7) + b"K" + _tuple(5))
    assert key.old_kind == "K"


def test_truncate_origin_type_and_message():
    t = po.decode(b"T" + struct.pack("!iB", 2, 3) + struct.pack("!II", 10, 11))
    assert t == po.Truncate((10, 11), cascade=True, restart_identity=True)
    assert po.decode(b"O" + struct.pack("!Q", 99) + _s("node1")) == po.Origin(99, "node1")
    assert po.decode(b"Y" + struct.pack("!I", 5000) + _s("public") + _s("mood")) == po.TypeInfo(
        5000, "public", "mood"
    )
    m = po.decode(b"M" + struct.pack("!BQ", 1, 77) + _s("app") + struct.pack("!i", 3) + b"xyz")
    assert m == po.LogicalMessage(True, 77, "app", b"xyz")


def test_binary_values_pass_through():
    msg = po.decode(b"I" + struct.pack("!I", 1) + b"N" + _tuple(b"\x00\x01"))
    assert msg.new == (b"\x00\x01",)


def test_converters_for_other_types():
    assert po.convert(po.NUMERIC, "12.50") == Decimal("12.50")
    assert po.convert(po.DATE, "2013-02-03") == date(2013, 2, 3)
    assert po.convert(po.TIMESTAMP, "2013-02-03 04:05:06") == pd.Timestamp("2013-02-03 04:05:06")
    assert po.convert(po.FLOAT4, "Infinity") == float("inf")
    assert po.convert(99999, "anything") == "anything"  # unknown types stay text
    with pytest.raises(po.DecodeError, match="neither"):
        po.convert(po.BOOL, "yes")
    with pytest.raises(po.DecodeError, match="infinity"):
        po.convert(po.TIMESTAMPTZ, "infinity")


def test_lsn_text_round_trip():
    assert po.lsn_to_int("16/B374D848") == 0x16B374D848
    assert po.lsn_to_str(0x16B374D848) == "16/B374D848"


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "empty"),
        (b"Z\x00", "unknown pgoutput message type 'Z'"),
        (b"B\x00\x00", "truncated pgoutput message: need 8 bytes for final LSN"),
        (b"I" + struct.pack("!I", 1) + b"X", "expected new tuple marker 'N'"),
        (b"I" + struct.pack("!I", 1) + b"N" + struct.pack("!h", 1) + b"q", "kind 'q'"),
        (b"I" + struct.pack("!I", 1) + b"N" + struct.pack("!h", 1) + b"t\x00\x00\x00\x09ab",
         "need 9 bytes for value of column 0"),
        (b"D" + struct.pack("!I", 1) + b"N", "expected old tuple marker"),
        (b"O" + struct.pack("!Q", 1) + b"abc", "unterminated string"),
        (commit(1, 2, "2024-01-01") + b"\x00", "1 trailing bytes after a Commit"),
    ],
)  # fmt: skip
def test_malformed_messages_are_rejected_with_where(data, match):
    with pytest.raises(po.DecodeError, match=match):
        po.decode(data)


def test_change_before_relation_and_column_count_mismatch():
    decoder = po.PgOutputDecoder()
    with pytest.raises(po.DecodeError, match="before its Relation"):
        decoder.typed(3, ("1",))
    decoder.feed(relation(3, "t", [("id", po.INT8, True)]))
    with pytest.raises(po.DecodeError, match="has 2 values"):
        decoder.typed(3, ("1", "2"))


# ------------------------------------------------------------------------------ real server
@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from mlops_pipeline.source.database import SourceDatabase
    from mlops_pipeline.source.schema import create_schema

    with SourceDatabase(tmp_path_factory.mktemp("pgoutput") / "pgdata") as db:
        create_schema(db.dsn)
        yield db


@pytest.mark.slow
def test_real_server_messages_decode(server):
    """PostgreSQL's own bytes: begin/relation/insert/commit, update with old row, delete."""
    import psycopg

    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_create_logical_replication_slot('decoder_test', 'pgoutput')")
        try:
            conn.execute(
                "INSERT INTO flights (flight_id, carrier, flight, tailnum, origin, dest, distance,"
                " sched_dep, dep_delay, cancelled, recorded_at) VALUES (1, 'UA', 1545, NULL,"
                " 'EWR', 'IAH', 1400, '2013-01-01 10:15:00+00', 0.1, false,"
                " '2012-12-31 10:15:00+00')"
            )
            conn.execute("UPDATE flights SET dep_delay = 2.5, cancelled = true WHERE flight_id = 1")
            conn.execute("DELETE FROM flights WHERE flight_id = 1")
            rows = conn.execute(
                "SELECT lsn::text, data FROM pg_logical_slot_get_binary_changes('decoder_test',"
                " NULL, NULL, 'proto_version', '1', 'publication_names', 'mlops_pub')"
            ).fetchall()
        finally:
            conn.execute("SELECT pg_drop_replication_slot('decoder_test')")
    decoder = po.PgOutputDecoder()
    messages = [decoder.feed(data) for _, data in rows]
    kinds = [type(m).__name__ for m in messages]
    assert kinds == [
        "Begin", "Relation", "Insert", "Commit", "Begin", "Update", "Commit",
        "Begin", "Delete", "Commit",
    ]  # fmt: skip
    rel = messages[1]
    assert rel.name == "flights" and rel.replica_identity == "f"
    assert messages[0].final_lsn == messages[3].commit_lsn
    assert messages[3].end_lsn == po.lsn_to_int(rows[3][0])  # the row's lsn is the commit's end
    inserted = decoder.typed(rel.oid, messages[2].new)
    assert inserted["flight_id"] == 1 and inserted["tailnum"] is None
    assert inserted["sched_dep"] == pd.Timestamp("2013-01-01T10:15:00Z")
    assert inserted["dep_delay"] == 0.1 and inserted["cancelled"] is False
    update = messages[5]
    assert update.old_kind == "O"
    assert decoder.typed(rel.oid, update.new)["dep_delay"] == 2.5
    assert decoder.typed(rel.oid, update.old)["dep_delay"] == 0.1
    deleted = decoder.typed(rel.oid, messages[8].old)
    assert messages[8].old_kind == "O" and deleted["cancelled"] is True
    assert messages[4].commit_time <= messages[6].commit_time


# ------------------------------------------------------------------------------ consumer positions
def test_positions_are_commit_end_lsns_above_the_snapshot_point():
    """A transaction running when the slot became consistent may commit exactly at the
    consistent point (the snapshot rows' `_lsn`): its changes must still sort after them and
    its file must not take the snapshot file's name."""
    from mlops_pipeline.cdc.consumer import Consumer

    consistent = 0x5000
    planes = [
        ("tailnum", po.TEXT, True), ("year", po.INT4, False), ("type", po.TEXT, False),
        ("manufacturer", po.TEXT, False), ("model", po.TEXT, False), ("engines", po.INT4, False),
        ("seats", po.INT4, False), ("speed", po.FLOAT8, False), ("engine", po.TEXT, False),
        ("recorded_at", po.TIMESTAMPTZ, False),
    ]  # fmt: skip
    row = ("N1", 2000, "t", "m", "mo", 2, 100, None, "e", "2012-12-31 00:00:00+00")
    ins = b"I" + struct.pack("!I", 9) + b"N" + _tuple(*row)
    messages = [
        begin(consistent, "2024-01-01T00:00:00Z", 1), relation(9, "planes", planes), ins, ins,
        commit(consistent, consistent + 0x30, "2024-01-01T00:00:00Z"),
        begin(0x6000, "2024-01-01T00:00:01Z", 2), ins,
        commit(0x6000, 0x6040, "2024-01-01T00:00:01Z"),
    ]  # fmt: skip
    consumer = Consumer("host=/nonexistent dbname=postgres", "/nonexistent/landing")
    buffers, transactions, end = consumer._decode([(m,) for m in messages])
    assert buffers["planes"].lsns == [consistent + 0x30, consistent + 0x30, 0x6040]
    assert buffers["planes"].seqs == [0, 1, 0]
    assert [t[0] for t in transactions] == [consistent + 0x30, 0x6040] and end == 0x6040
    assert min(buffers["planes"].lsns) > consistent
