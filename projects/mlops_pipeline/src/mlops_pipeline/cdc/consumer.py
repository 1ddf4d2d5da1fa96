"""The CDC consumer: an initial snapshot, then the change stream, landed exactly once per position.

How it stays correct when killed at any moment:
- The slot is created on a replication connection with an exported snapshot; the tables are read
  in a REPEATABLE READ transaction on that snapshot, so snapshot + stream = every change once.
  `_cdc/state.json` records the snapshot's position before it starts and `snapshot_done` after
  its last file is durable. A restart that finds an unfinished snapshot removes that snapshot's
  files, drops the slot it made (nothing was consumed from it) and starts over.
- Each change's position (`_lsn`) is its transaction's commit END LSN, the slot position just
  after it; snapshot rows carry the slot's consistent point, which is below every such end.
- Changes are read with `pg_logical_slot_peek_binary_changes` (peek does not consume), written
  as whole files (temporary name, fsync, rename), and only then is the slot advanced to the
  batch's last commit. A crash between the two redoes the batch into the same file names; any
  other overlap is removed by readers deduplicating on (_lsn, _seq).
- One slot per landing zone, reused across restarts; a file lock keeps a second consumer out.
- A source that stops answering is retried with backoff, then reported with the database and
  the step that failed. No file is ever written from a partial read.

The poll loop (`consume(follow=True)`) re-peeks every `poll_interval` seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import logging
import os
import signal
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pyarrow as pa

from mlops_pipeline.cdc import landing
from mlops_pipeline.cdc.convert import landing_table
from mlops_pipeline.cdc.metrics import CHANGES, LagRecorder
from mlops_pipeline.cdc.pgoutput import (
    UNCHANGED_TOAST,
    Begin,
    Commit,
    Delete,
    Insert,
    PgOutputDecoder,
    Relation,
    Truncate,
    Update,
    lsn_to_int,
    lsn_to_str,
)
from mlops_pipeline.source import schema

log = logging.getLogger(__name__)

SLOT = "mlops_cdc"
STATE_DIR = "_cdc"
SNAPSHOT_CHUNK = 50_000
T = TypeVar("T")


class CDCError(RuntimeError):
    """The consumer cannot go on safely (the message says why and what to do)."""


class SourceUnavailable(CDCError):
    """The source database did not answer after the retries."""


@dataclass
class Summary:
    """What one `consume` call landed."""

    snapshot_rows: dict[str, int] = field(default_factory=dict)
    changes: int = 0
    transactions: int = 0
    batches: int = 0
    files: int = 0
    per_table: dict[str, dict[str, int]] = field(default_factory=dict)
    last_lsn: int | None = None
    """Position (`_lsn`: commit end LSN) of the last landed transaction (None: none landed)."""
    slot_reused: bool = False
    seconds: float = 0.0

    def count(self, table: str, op: str, n: int = 1) -> None:
        ops = self.per_table.setdefault(table, {})
        ops[op] = ops.get(op, 0) + n

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["last_lsn_text"] = lsn_to_str(self.last_lsn) if self.last_lsn is not None else None
        return out


@dataclass
class _Buffer:
    """One table's changes of a batch, columns in the landing schema's order."""

    rows: list[tuple] = field(default_factory=list)
    ops: list[str] = field(default_factory=list)
    lsns: list[int] = field(default_factory=list)
    seqs: list[int] = field(default_factory=list)
    times: list[int] = field(default_factory=list)


class Consumer:
    """Lands the source's changes in `landing_dir`. Use as a context manager (lock, connection)."""

    def __init__(
        self,
        dsn: str,
        landing_dir: str | os.PathLike[str],
        *,
        slot: str = SLOT,
        publication: str = schema.PUBLICATION,
        batch_changes: int = 20_000,
        poll_interval: float = 0.1,
        retries: int = 4,
        backoff: float = 0.25,
        lag: LagRecorder | None = None,
    ) -> None:
        if not slot.replace("_", "").isalnum() or slot.lower() != slot:
            raise ValueError(f"slot name {slot!r}: use lower-case letters, digits and '_'")
        self.dsn = dsn
        self.landing_dir = Path(landing_dir).resolve()
        self.slot = slot
        self.publication = publication
        self.batch_changes = batch_changes
        self.poll_interval = poll_interval
        self.retries = retries
        self.backoff = backoff
        self.lag = lag if lag is not None else LagRecorder()
        self.state_dir = self.landing_dir / STATE_DIR
        self._conn: psycopg.Connection | None = None
        self._lock_handle = None
        self._started = False
        info = psycopg.conninfo.conninfo_to_dict(dsn)
        self.source = f"{info.get('dbname', '?')} at {info.get('host', 'localhost')}"
        self.summary = Summary()

    # ----------------------------------------------------------------------- context manager
    def __enter__(self) -> Consumer:
        self._lock()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._drop_connection()
        if self._lock_handle is not None:
            self._lock_handle.close()  # releases the flock
            self._lock_handle = None

    def _lock(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        handle = open(self.state_dir / "lock", "w")  # noqa: SIM115  (held until close())
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise CDCError(
                f"another consumer is running on landing zone {self.landing_dir} "
                f"(lock {self.state_dir / 'lock'} is held)"
            ) from None
        self._lock_handle = handle

    # ----------------------------------------------------------------------- connections
    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=5)
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
            self._conn = None

    def _retry(self, what: str, action: Callable[[psycopg.Connection], T]) -> T:
        """Run `action` on a connection; on a lost connection reconnect with backoff, then fail
        with an error naming the source and `what` was being done."""
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            try:
                return action(self._connection())
            except psycopg.OperationalError as exc:
                self._drop_connection()
                last = exc
                if attempt < self.retries:
                    delay = self.backoff * 2**attempt
                    log.warning(
                        "source %s: %s failed (%s); retry %d/%d in %.2fs",
                        self.source, what, str(exc).strip(), attempt + 1, self.retries, delay,
                    )  # fmt: skip
                    time.sleep(delay)
        raise SourceUnavailable(
            f"source database {self.source} unavailable while {what} "
            f"(gave up after {self.retries + 1} attempts): {str(last).strip()}"
        ) from last

    # ----------------------------------------------------------------------- state
    def _state(self) -> dict[str, Any]:
        path = self.state_dir / "state.json"
        if not path.exists():
            return {}
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise CDCError(f"CDC state file {path} is not valid JSON: {exc}") from exc

    def _save_state(self, state: dict[str, Any]) -> None:
        path = self.state_dir / "state.json"
        tmp = path.with_name(".state.json.tmp")
        with open(tmp, "w") as handle:
            json.dump(state, handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        landing._fsync_dir(self.state_dir)

    def _slot_info(self) -> dict[str, Any] | None:
        def query(conn: psycopg.Connection) -> dict[str, Any] | None:
            row = conn.execute(
                "SELECT plugin, database, active_pid, confirmed_flush_lsn::text "
                "FROM pg_replication_slots WHERE slot_name = %s",
                (self.slot,),
            ).fetchone()
            if row is None:
                return None
            return dict(zip(["plugin", "database", "active_pid", "confirmed"], row, strict=True))

        return self._retry(f"looking up replication slot {self.slot}", query)

    # ----------------------------------------------------------------------- start: snapshot
    def start(self) -> None:
        """Reuse the slot of a finished snapshot, or (re)do the initial snapshot."""
        if self._lock_handle is None:
            self._lock()
        removed = landing.remove_temporaries(self.landing_dir)
        if removed:
            log.info("removed %d temporary files left by a killed writer", removed)
        state = self._state()
        sysid = self._retry(
            "reading the system identifier",
            lambda c: str(
                c.execute("SELECT system_identifier FROM pg_control_system()").fetchone()[0]
            ),
        )
        if state and state.get("system_identifier") != sysid:
            raise CDCError(
                f"landing zone {self.landing_dir} was filled from another database (system "
                f"identifier {state.get('system_identifier')}, source has {sysid}); "
                "use an empty landing directory"
            )
        slot = self._slot_info()
        if state.get("snapshot_done") and state.get("slot") == self.slot:
            if slot is None:
                raise CDCError(
                    f"replication slot {self.slot} no longer exists in {self.source}, but landing "
                    f"zone {self.landing_dir} continues from it: changes since then are lost. "
                    "Start again with an empty landing directory (a new snapshot)."
                )
            if slot["plugin"] != "pgoutput":
                raise CDCError(f"slot {self.slot} uses plugin {slot['plugin']}, not pgoutput")
            self._release_slot(slot)
            self.summary.slot_reused = True
            log.info("reusing slot %s at %s", self.slot, slot["confirmed"])
        else:
            if slot is not None and state.get("slot") != self.slot:
                raise CDCError(
                    f"replication slot {self.slot} already exists in {self.source} but landing "
                    f"zone {self.landing_dir} did not create it (another landing zone's, or made "
                    "by hand): give this consumer another slot name, or drop that slot if it is "
                    "abandoned (mlops_pipeline.cdc.consumer.drop_slot)"
                )
            if slot is not None:  # made by a snapshot that never finished: nothing consumed yet
                log.warning("dropping slot %s left by an interrupted snapshot", self.slot)
                self._release_slot(slot)
                self._retry(
                    f"dropping slot {self.slot}",
                    lambda c: c.execute("SELECT pg_drop_replication_slot(%s)", (self.slot,)),
                )
            if state.get("snapshot_lsn") is not None:
                self._remove_snapshot_files(int(state["snapshot_lsn"]))
            self._snapshot(sysid)
        self._started = True

    def _release_slot(self, slot: dict[str, Any]) -> None:
        """We hold the landing lock, so a process still attached to our slot is a dead consumer's
        walsender or backend that has not noticed yet: end it instead of waiting."""
        if slot.get("active_pid"):
            self._retry(
                "releasing the slot from a dead consumer",
                lambda c: c.execute("SELECT pg_terminate_backend(%s)", (slot["active_pid"],)),
            )
            for _ in range(50):
                info = self._slot_info()
                if info is None or not info["active_pid"]:
                    return
                time.sleep(0.1)
            raise CDCError(f"slot {self.slot} stays in use by process {slot['active_pid']}")

    def _remove_snapshot_files(self, lsn: int) -> None:
        name = landing.file_name(lsn)
        for table in schema.TABLES:
            for path in (self.landing_dir / table).glob(f"date=*/{name}"):
                path.unlink()
                log.info("removed %s of an interrupted snapshot", path)

    def _snapshot(self, sysid: str) -> None:
        try:
            repl = psycopg.connect(self.dsn, replication="database", autocommit=True)
        except psycopg.OperationalError as exc:
            raise SourceUnavailable(
                f"source database {self.source} unavailable while opening a replication "
                f"connection for the initial snapshot: {str(exc).strip()}"
            ) from exc
        try:
            # Claim the slot name first: a crash right after creating the slot leaves a slot this
            # landing zone knows it made (and may drop), never one it could mistake for another's.
            self._save_state(
                {"slot": self.slot, "system_identifier": sysid, "snapshot_done": False}
            )
            command = f"CREATE_REPLICATION_SLOT {self.slot} LOGICAL pgoutput (SNAPSHOT 'export')"
            result = repl.pgconn.exec_(command.encode())
            if result.status != psycopg.pq.ExecStatus.TUPLES_OK:
                message = result.error_message.decode(errors="replace").strip()
                raise CDCError(f"creating slot {self.slot} in {self.source} failed: {message}")
            consistent = lsn_to_int(result.get_value(0, 1).decode())
            snapshot_name = result.get_value(0, 2).decode()
            self._save_state(
                {
                    "slot": self.slot,
                    "system_identifier": sysid,
                    "snapshot_lsn": consistent,
                    "snapshot_done": False,
                }  # fmt: skip
            )
            with psycopg.connect(self.dsn) as conn:
                conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
                conn.read_only = True
                conn.execute(f"SET TRANSACTION SNAPSHOT '{snapshot_name}'")
                taken_us = time.time_ns() // 1000
                for table in schema.TABLES:
                    count = self._snapshot_table(conn, table, consistent, taken_us)
                    self.summary.snapshot_rows[table] = count
                    self.summary.count(table, "s", count)
            self._save_state(
                {
                    "slot": self.slot,
                    "system_identifier": sysid,
                    "snapshot_lsn": consistent,
                    "snapshot_done": True,
                }  # fmt: skip
            )
            log.info(
                "snapshot at %s landed: %s", lsn_to_str(consistent), self.summary.snapshot_rows
            )
        except psycopg.OperationalError as exc:
            raise SourceUnavailable(
                f"source database {self.source} failed during the initial snapshot "
                f"(it will be redone on restart): {str(exc).strip()}"
            ) from exc
        finally:
            repl.close()

    def _snapshot_table(self, conn: psycopg.Connection, table: str, lsn: int, at_us: int) -> int:
        columns = schema.table(table).column_names
        chunks: list[pa.Table] = []
        rows: list[tuple] = []
        total = 0

        def flush() -> None:
            nonlocal rows, total
            n = len(rows)
            chunks.append(
                landing_table(
                    table,
                    rows,
                    columns,
                    ["s"] * n,
                    [lsn] * n,
                    range(total, total + n),
                    [at_us] * n,
                )  # fmt: skip
            )
            total += n
            rows = []

        query = f"COPY (SELECT {', '.join(columns)} FROM {table}) TO STDOUT"
        with conn.cursor().copy(query) as copy:
            for row in copy.rows():
                rows.append(row)
                if len(rows) >= SNAPSHOT_CHUNK:
                    flush()
        flush()
        written = landing.write_batch(self.landing_dir, table, pa.concat_tables(chunks), lsn)
        self.summary.files += len(written)
        return total

    # ----------------------------------------------------------------------- stream
    def poll_once(self) -> int:
        """Land the next batch of committed transactions; returns how many changes (0: idle)."""
        if not self._started:
            self.start()
        messages = self._retry(
            f"reading changes from slot {self.slot}",
            lambda c: c.execute(
                "SELECT data FROM pg_logical_slot_peek_binary_changes(%s, NULL, %s, "
                "'proto_version', '1', 'publication_names', %s)",
                (self.slot, self.batch_changes, self.publication),
            ).fetchall(),
        )
        if not messages:
            return 0
        buffers, transactions, end_lsn = self._decode(messages)
        if not transactions:
            return 0
        first_lsn = transactions[0][0]
        for table, buf in buffers.items():
            arrow = landing_table(
                table, buf.rows, schema.table(table).column_names, buf.ops, buf.lsns, buf.seqs,
                buf.times,
            )  # fmt: skip
            self.summary.files += len(
                landing.write_batch(self.landing_dir, table, arrow, first_lsn)
            )
        durable = time.time()
        for _, commit_us, n in transactions:
            self.lag.record(max(0.0, durable - commit_us / 1e6), n)
        self._retry(
            f"confirming position {lsn_to_str(end_lsn)} on slot {self.slot}",
            lambda c: c.execute(
                "SELECT pg_replication_slot_advance(%s, %s::pg_lsn)",
                (self.slot, lsn_to_str(end_lsn)),
            ),
        )
        changes = sum(n for _, _, n in transactions)
        self.summary.batches += 1
        self.summary.transactions += len(transactions)
        self.summary.changes += changes
        self.summary.last_lsn = transactions[-1][0]
        for table, buf in buffers.items():
            for op in set(buf.ops):
                n = buf.ops.count(op)
                self.summary.count(table, op, n)
                CHANGES.labels(table, op).inc(n)
        return changes

    def _decode(
        self, messages: list[tuple[bytes]]
    ) -> tuple[dict[str, _Buffer], list[tuple[int, int, int]], int]:
        """Messages -> per-table buffers, [(position, commit time us, changes)], last position.

        A change's position (`_lsn`) is the END of its transaction's commit record: the slot
        position just after the transaction. Not the commit record's start: a transaction still
        running when the slot became consistent can commit right at the consistent point, so
        its start LSN can equal the snapshot's `_lsn` (same file name, same (_lsn, _seq)); its
        end cannot.
        """
        decoder = PgOutputDecoder()
        buffers: dict[str, _Buffer] = defaultdict(_Buffer)
        orders: dict[int, tuple[str, list[int]]] = {}
        transactions: list[tuple[int, int, int]] = []
        pending: list[_Buffer] = []  # one entry per change of the open transaction
        commit_us = seq = 0
        end_lsn = 0
        for (data,) in messages:
            msg = decoder.feed(data)
            if isinstance(msg, Begin):
                commit_us, seq = msg.commit_time_us, 0
                pending.clear()
            elif isinstance(msg, Insert | Update | Delete):
                table, order = orders[msg.relation_oid]
                if isinstance(msg, Insert):
                    op, values = "i", msg.new
                elif isinstance(msg, Update):
                    op, values = "u", msg.new
                    if UNCHANGED_TOAST in values:
                        values = self._resolve_toast(table, msg)
                else:
                    if msg.old_kind != "O":
                        raise CDCError(
                            f"delete on {table} carries only its key: the table needs "
                            "REPLICA IDENTITY FULL (see mlops_pipeline.source.schema)"
                        )
                    op, values = "d", msg.old
                buf = buffers[table]
                buf.rows.append(tuple(values[i] for i in order))
                buf.ops.append(op)
                buf.lsns.append(-1)  # known at the Commit
                pending.append(buf)
                buf.seqs.append(seq)
                buf.times.append(commit_us)
                seq += 1
            elif isinstance(msg, Commit):
                end_lsn = msg.end_lsn
                filled: dict[int, int] = {}
                for buf in reversed(pending):  # this transaction's rows end each buffer
                    k = filled.get(id(buf), len(buf.lsns)) - 1
                    buf.lsns[k] = end_lsn
                    filled[id(buf)] = k
                transactions.append((end_lsn, commit_us, seq))
                pending.clear()
            elif isinstance(msg, Relation):
                orders[msg.oid] = self._column_order(msg)
            elif isinstance(msg, Truncate):
                names = [
                    decoder.relation(o).name for o in msg.relation_oids if o in decoder.relations
                ]
                raise CDCError(
                    f"TRUNCATE of {names or msg.relation_oids} in {self.source}: the landing zone "
                    "cannot express it; remove 'truncate' from publication "
                    f"{self.publication} and re-snapshot"
                )
        if pending:  # the SQL interface only returns whole transactions; never land a part
            raise CDCError(f"slot {self.slot} returned a transaction without its Commit message")
        return dict(buffers), transactions, end_lsn

    def _column_order(self, rel: Relation) -> tuple[str, list[int]]:
        if rel.name not in schema.TABLES:
            raise CDCError(
                f"publication {self.publication} sends table {rel.namespace}.{rel.name}, which "
                f"the landing zone does not know (known: {sorted(schema.TABLES)})"
            )
        names = rel.column_names
        expected = schema.table(rel.name).column_names
        if set(names) != set(expected):
            raise CDCError(
                f"source table {rel.name} has columns {names}; the landing schema expects "
                f"{expected} (update mlops_pipeline.source.schema)"
            )
        return rel.name, [names.index(c) for c in expected]

    def _resolve_toast(self, table: str, msg: Update) -> tuple:
        if msg.old is None or msg.old_kind != "O":
            raise CDCError(f"update on {table} omits an unchanged TOASTed value and no old row")
        return tuple(
            o if n is UNCHANGED_TOAST else n for n, o in zip(msg.new, msg.old, strict=True)
        )

    # ----------------------------------------------------------------------- loops
    def consume(
        self,
        *,
        until_idle: bool = True,
        max_seconds: float | None = None,
        stop: threading.Event | None = None,
    ) -> Summary:
        """Land what is there and return (until_idle), or keep polling until `stop` is set or
        `max_seconds` passed (follow mode, for the lag benchmark)."""
        started = time.monotonic()
        if not self._started:
            self.start()
        while True:
            landed = self.poll_once()
            if landed == 0 and until_idle:
                break
            if stop is not None and stop.is_set():
                break
            if max_seconds is not None and time.monotonic() - started >= max_seconds:
                break
            if landed:
                continue
            if stop is not None:
                stop.wait(self.poll_interval)
            else:
                time.sleep(self.poll_interval)
        self.summary.seconds += time.monotonic() - started
        return self.summary


def consume(
    dsn: str,
    landing_dir: str | os.PathLike[str],
    *,
    until_idle: bool = True,
    max_seconds: float | None = None,
    stop: threading.Event | None = None,
    **options: Any,
) -> Summary:
    """Snapshot if needed, then land changes; see `Consumer` for `options`."""
    with Consumer(dsn, landing_dir, **options) as consumer:
        return consumer.consume(until_idle=until_idle, max_seconds=max_seconds, stop=stop)


def slots(dsn: str) -> list[str]:
    """Names of the logical replication slots in the source (tests check there is one)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute("SELECT slot_name FROM pg_replication_slots ORDER BY 1").fetchall()
    return [r[0] for r in rows]


def drop_slot(dsn: str, slot: str = SLOT) -> bool:
    """Drop the slot if it exists (a slot left unconsumed keeps WAL forever)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
            "WHERE slot_name = %s",
            (slot,),
        ).fetchone()
    return row is not None


def main(argv: list[str] | None = None) -> int:
    """`python -m mlops_pipeline.cdc.consumer --dsn ... --landing ... [--follow]`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--landing", required=True, type=Path)
    parser.add_argument("--slot", default=SLOT)
    parser.add_argument("--follow", action="store_true", help="keep polling until SIGTERM")
    parser.add_argument("--max-seconds", type=float, default=None)
    parser.add_argument("--batch-changes", type=int, default=20_000)
    parser.add_argument("--poll-interval", type=float, default=0.1)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    summary = consume(
        args.dsn, args.landing, until_idle=not args.follow, max_seconds=args.max_seconds,
        stop=stop, slot=args.slot, batch_changes=args.batch_changes,
        poll_interval=args.poll_interval,
    )  # fmt: skip
    json.dump(summary.as_dict(), sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
