"""The replayer: plays the timeline's writes into the source database in event-time order.

It stands in for the operational application. Events (see `timeline.build_timeline`) are
written in (`recorded_at`, `seq`) order, in transactions, at one of three paces:
- as fast as possible: one transaction per `txn_span` of simulated time (default one hour),
  each a few `executemany` calls (pipelined by psycopg 3);
- `speed=k`: the simulated clock runs k times faster than the wall clock;
- `rate=r`: r changes per wall-clock second whatever their timestamps (the CDC lag benchmark
  uses 1,000/s), committed every `tick` seconds.
An update or delete that finds no row is an error (it means the events were sliced or reordered),
not something to skip silently.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg

from mlops_pipeline.source import schema

log = logging.getLogger(__name__)

OPS = ("insert", "update", "delete")
REQUIRED = ("recorded_at", "table", "op", "seq")


class ReplayError(RuntimeError):
    """Events that cannot be written as given (the message names table, op and time)."""


@dataclass
class Progress:
    """Where a replay is: reported to the callback after each transaction (throttled)."""

    events_written: int
    events_total: int
    transactions: int
    sim_time: pd.Timestamp | None
    elapsed_s: float

    @property
    def rate(self) -> float:
        """Changes written per wall-clock second so far."""
        return self.events_written / self.elapsed_s if self.elapsed_s > 0 else 0.0


# ----------------------------------------------------------------------------------- statements
def _sql(table: str, op: str) -> str:
    spec = schema.table(table)
    if op == "insert":
        cols = spec.column_names
        marks = ", ".join(["%s"] * len(cols))
        return f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks})"
    where = " AND ".join(f"{k} = %s" for k in spec.key)
    if op == "update":
        sets = ", ".join(f"{c} = %s" for c in spec.column_names if c not in spec.key)
        return f"UPDATE {table} SET {sets} WHERE {where}"
    return f"DELETE FROM {table} WHERE {where}"


def _param_columns(table: str, op: str) -> list[str]:
    spec = schema.table(table)
    if op == "insert":
        return spec.column_names
    if op == "update":
        return [c for c in spec.column_names if c not in spec.key] + list(spec.key)
    return list(spec.key)


def _python_values(series: pd.Series, column: schema.Column) -> list:
    """A column as Python values psycopg adapts (None for missing), by the column's kind."""
    missing = series.isna().to_numpy()
    if column.kind == "timestamptz":
        stamps = pd.to_datetime(series, utc=True)
        values = [None if m else v.to_pydatetime() for v, m in zip(stamps, missing, strict=True)]
    elif column.kind == "int":
        values = [None if m else int(v) for v, m in zip(series, missing, strict=True)]
    elif column.kind == "float":
        values = [None if m else float(v) for v, m in zip(series, missing, strict=True)]
    elif column.kind == "bool":
        values = [None if m else bool(v) for v, m in zip(series, missing, strict=True)]
    else:
        values = [None if m else str(v) for v, m in zip(series, missing, strict=True)]
    return values


def prepare(events: pd.DataFrame) -> tuple[pd.DataFrame, list[tuple]]:
    """Validate and sort the events; build each event's statement parameters once."""
    missing = [c for c in REQUIRED if c not in events.columns]
    if missing:
        raise ReplayError(f"events lack columns {missing} (have {list(events.columns)})")
    bad_tables = sorted(set(events["table"]) - set(schema.TABLES))
    if bad_tables:
        raise ReplayError(
            f"events name unknown tables {bad_tables}; known: {sorted(schema.TABLES)}"
        )
    bad_ops = sorted(set(events["op"]) - set(OPS))
    if bad_ops:
        raise ReplayError(f"events have unknown ops {bad_ops}; expected one of {OPS}")
    ordered = events.sort_values(["recorded_at", "seq"], kind="stable").reset_index(drop=True)
    ordered["recorded_at"] = pd.to_datetime(ordered["recorded_at"], utc=True)
    params: list[tuple] = [()] * len(ordered)
    for (table, op), group in ordered.groupby(["table", "op"], sort=False):
        spec = schema.table(table)
        columns = _param_columns(table, op)
        absent = [c for c in columns if c not in group.columns]
        if absent:
            raise ReplayError(f"{op} events for {table} lack columns {absent}")
        for c in columns:
            if not spec.column(c).nullable and group[c].isna().any():
                at = group.loc[group[c].isna(), "recorded_at"].iloc[0]
                raise ReplayError(f"{op} on {table} at {at}: {c} is missing but NOT NULL")
        lists = [_python_values(group[c], spec.column(c)) for c in columns]
        for position, row in zip(group.index, zip(*lists, strict=True), strict=True):
            params[position] = row
    return ordered, params


# ----------------------------------------------------------------------------------- writing
def _write(
    conn: psycopg.Connection,
    events: pd.DataFrame,
    params: Sequence[tuple],
    lo: int,
    hi: int,
    track_position: bool = False,
) -> None:
    """Events [lo, hi) in one transaction: runs of the same (table, op) go as one executemany."""
    tables = events["table"].to_numpy()
    ops = events["op"].to_numpy()
    with conn.transaction(), conn.cursor() as cur:
        start = lo
        while start < hi:
            end = start + 1
            while end < hi and tables[end] == tables[start] and ops[end] == ops[start]:
                end += 1
            table, op = tables[start], ops[start]
            batch = params[start:end]
            try:
                cur.executemany(_sql(table, op), batch)
            except psycopg.errors.UniqueViolation as exc:
                raise ReplayError(
                    f"insert into {table} between {events['recorded_at'].iloc[start]} and "
                    f"{events['recorded_at'].iloc[end - 1]}: key already exists ({exc})"
                ) from exc
            if op != "insert" and cur.rowcount != len(batch):
                raise ReplayError(
                    f"{op} on {table} between {events['recorded_at'].iloc[start]} and "
                    f"{events['recorded_at'].iloc[end - 1]}: {len(batch) - cur.rowcount} of "
                    f"{len(batch)} rows not found (were their inserts replayed?)"
                )
            start = end
        if track_position:
            # In the same transaction as the writes: a replay killed at any point resumes
            # exactly after the last committed event (`replay_new`).
            last = int(events["seq"].iloc[lo:hi].max())
            cur.execute(f"UPDATE {POSITION_TABLE} SET seq = %s WHERE id = 1", (last,))


def replay(
    dsn: str,
    events: pd.DataFrame,
    *,
    speed: float | None = None,
    rate: float | None = None,
    txn_span: str | pd.Timedelta = "1h",
    tick: float = 0.01,
    max_txn_events: int = 5_000,
    progress: Callable[[Progress], None] | None = None,
    progress_every: float = 1.0,
    stop: threading.Event | None = None,
    track_position: bool = False,
) -> Progress:
    """Write `events` into the source in (recorded_at, seq) order; returns the final progress.

    Fast by default; `speed` (simulated seconds per wall second) or `rate` (changes per wall
    second) pace it. `stop` ends a paced replay early (after the current transaction).
    """
    if speed is not None and rate is not None:
        raise ValueError("give speed or rate, not both")
    if (speed is not None and speed <= 0) or (rate is not None and rate <= 0):
        raise ValueError(f"speed and rate must be positive (speed={speed}, rate={rate})")
    ordered, params = prepare(events)
    total = len(ordered)
    stamps = ordered["recorded_at"]
    started = time.monotonic()
    state = Progress(0, total, 0, None, 0.0)
    last_report = started

    def report(force: bool = False) -> None:
        nonlocal last_report
        now = time.monotonic()
        state.elapsed_s = now - started
        if progress is not None and (force or now - last_report >= progress_every):
            progress(state)
            last_report = now

    with psycopg.connect(dsn, autocommit=True) as conn:
        if speed is None and rate is None:
            span = pd.Timedelta(txn_span)
            windows = stamps.dt.floor(span).to_numpy()
            bounds = np.flatnonzero(windows[1:] != windows[:-1]) + 1
            edges = [0, *bounds.tolist(), total]
            for lo, hi in zip(edges[:-1], edges[1:], strict=True):
                if hi > lo:
                    _write(conn, ordered, params, lo, hi, track_position)
                    _advance(state, stamps, hi)
                    report()
                if stop is not None and stop.is_set():
                    break
        else:
            sim_seconds = (stamps - stamps.iloc[0]).dt.total_seconds().to_numpy() if total else []
            while state.events_written < total and not (stop is not None and stop.is_set()):
                elapsed = time.monotonic() - started
                if rate is not None:
                    due = min(total, math.floor(elapsed * rate))
                else:
                    due = int(np.searchsorted(sim_seconds, elapsed * speed, side="right"))
                due = min(due, state.events_written + max_txn_events)
                if due > state.events_written:
                    _write(conn, ordered, params, state.events_written, due, track_position)
                    _advance(state, stamps, due)
                    report()
                else:
                    time.sleep(tick)
    report(force=True)
    log.info(
        "replayed %d/%d events in %d transactions, %.1fs (%.0f/s)",
        state.events_written, total, state.transactions, state.elapsed_s, state.rate,
    )  # fmt: skip
    return state


POSITION_TABLE = "replay_position"
"""One row: the `seq` of the last event written (not published: CDC never sees it)."""


def replayed_position(dsn: str) -> int:
    """The `seq` of the last event `replay_new` committed, or -1 if none (creates the table)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {POSITION_TABLE} "
            "(id int PRIMARY KEY CHECK (id = 1), seq bigint NOT NULL)"
        )
        conn.execute(f"INSERT INTO {POSITION_TABLE} VALUES (1, -1) ON CONFLICT (id) DO NOTHING")
        return int(conn.execute(f"SELECT seq FROM {POSITION_TABLE}").fetchone()[0])


def replay_new(dsn: str, events: pd.DataFrame, **options) -> Progress:
    """`replay` only the events after the last one written before: idempotent per interval.

    The position is committed with each transaction of writes, so replaying an interval twice,
    or again after a crash, writes every event exactly once.
    """
    position = replayed_position(dsn)
    return replay(dsn, events.loc[events["seq"] > position], track_position=True, **options)


def _advance(state: Progress, stamps: pd.Series, written: int) -> None:
    state.events_written = written
    state.transactions += 1
    state.sim_time = stamps.iloc[written - 1]


def seed_planes(dsn: str, planes: pd.DataFrame | None = None) -> int:
    """Load the planes table before CDC starts (they reach the lake through the snapshot).

    Idempotent: planes already present are left as they are. Returns how many were inserted.
    """
    from mlops_pipeline import data
    from mlops_pipeline.source import timeline

    frame = data.planes() if planes is None else planes.copy()
    if "recorded_at" not in frame.columns:
        frame["recorded_at"] = timeline.PLANES_LOADED_AT
    spec = schema.table("planes")
    lists = [_python_values(frame[c], spec.column(c)) for c in spec.column_names]
    sql = _sql("planes", "insert") + " ON CONFLICT (tailnum) DO NOTHING"
    with psycopg.connect(dsn, autocommit=True) as conn:
        before = conn.execute("SELECT count(*) FROM planes").fetchone()[0]
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany(sql, list(zip(*lists, strict=True)))
        after = conn.execute("SELECT count(*) FROM planes").fetchone()[0]
    return after - before


def main(argv: list[str] | None = None) -> int:
    """`python -m mlops_pipeline.source.replayer --dsn ... (--events F.parquet | --start S --end E)
    [--rate 1000 | --speed 3600]`; prints the final progress as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--events", type=Path, help="a Parquet file of timeline events")
    parser.add_argument("--start", help="else: build_timeline(start, end, seed)")
    parser.add_argument("--end")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--speed", type=float, default=None)
    parser.add_argument("--rate", type=float, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.events is not None:
        events = pd.read_parquet(args.events)
    else:
        from mlops_pipeline.source.timeline import build_timeline

        events = build_timeline(args.start, args.end, seed=args.seed)
    done = replay(
        args.dsn,
        events,
        speed=args.speed,
        rate=args.rate,
        progress=lambda p: log.info(
            "%d/%d events, simulated %s", p.events_written, p.events_total, p.sim_time
        ),
    )
    summary = {
        "events_written": done.events_written,
        "transactions": done.transactions,
        "elapsed_s": done.elapsed_s,
        "rate": done.rate,
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
