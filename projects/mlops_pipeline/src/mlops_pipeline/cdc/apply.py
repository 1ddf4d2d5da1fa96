"""Applying change events to a table's current state, idempotently (checkpoint 2.1).

The landing zone is at-least-once: a consumer that crashed after writing a batch but before
confirming it writes the batch again, and files may be read in any order. Applying must not
care. Each change has a position (`lsn`, `seq`): the commit LSN of its transaction and its order
inside it. Applying the changes in position order, and letting each key remember the position it
last took, makes replays harmless: a change at or before that position is already reflected.
A delete keeps its position as a tombstone; without it, a replayed older insert of the same key
would bring the deleted row back.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

OPS = {"s": "snapshot", "i": "insert", "u": "update", "d": "delete"}


@dataclass(frozen=True)
class ChangeEvent:
    """One decoded change: what happened (`op`), to which row (`key`), where in the log."""

    op: str  # 's' snapshot, 'i' insert, 'u' update, 'd' delete
    key: Hashable
    lsn: int
    seq: int
    row: Mapping[str, Any] | None = None  # the new row; a delete may carry the old one or None

    @property
    def position(self) -> tuple[int, int]:
        return (self.lsn, self.seq)


@dataclass(frozen=True)
class Applied:
    """What the state remembers per key: the last applied position and the row (None: deleted)."""

    position: tuple[int, int]
    row: Mapping[str, Any] | None

    @property
    def deleted(self) -> bool:
        return self.row is None


State = dict[Hashable, Applied]


def events_from_frame(frame: pd.DataFrame, key: str | Sequence[str]) -> list[ChangeEvent]:
    """Landing rows (table columns + `_op`, `_lsn`, `_seq`) as ChangeEvents keyed by `key`.

    A single key column gives scalar keys, several give tuples.
    """
    keys = [key] if isinstance(key, str) else list(key)
    missing = [c for c in [*keys, "_op", "_lsn", "_seq"] if c not in frame.columns]
    if missing:
        raise ValueError(f"change rows lack columns {missing} (have {list(frame.columns)})")
    data_columns = [c for c in frame.columns if not c.startswith("_")]
    records = frame[data_columns].to_dict("records")
    key_values = (
        frame[keys[0]].tolist()
        if len(keys) == 1
        else list(zip(*(frame[k].tolist() for k in keys), strict=True))
    )
    return [
        ChangeEvent(op, k, int(lsn), int(seq), row)
        for op, k, lsn, seq, row in zip(
            frame["_op"].tolist(),
            key_values,
            frame["_lsn"].tolist(),
            frame["_seq"].tolist(),
            records,
            strict=True,
        )  # fmt: skip
    ]


def apply_changes(
    state: Mapping[Hashable, Applied],
    events: Iterable[ChangeEvent] | pd.DataFrame,
    key: str | Sequence[str] | None = None,
) -> State:
    """A new state: `state` with `events` applied in (lsn, seq) order; `state` is not modified.

    - events are applied in position order, whatever order they come in;
    - an event at or before the position its key last took is a replay and changes nothing;
    - snapshot, insert and update make the event's row the key's row;
    - delete leaves a tombstone (the position, row None) so older events cannot resurrect it.
    `events` may be a DataFrame of landing rows; then `key` names its key column(s).
    """
    if isinstance(events, pd.DataFrame):
        if key is None:
            raise ValueError("apply_changes on a DataFrame needs key= (the key column or columns)")
        events = events_from_frame(events, key)
    changes = list(events)
    for event in changes:
        if event.op not in OPS:
            raise ValueError(f"change to key {event.key!r} has unknown op {event.op!r}")
        if event.op != "d" and event.row is None:
            raise ValueError(f"{OPS[event.op]} of key {event.key!r} at {event.position} has no row")
    # BEGIN SOLUTION 2.1: apply in (lsn, seq) order, skip replays, deletes leave tombstones
    result: State = dict(state)
    for event in sorted(changes, key=lambda e: (e.lsn, e.seq)):
        current = result.get(event.key)
        if current is not None and current.position >= (event.lsn, event.seq):
            continue  # already applied (a replay) or superseded by a later change
        row = None if event.op == "d" else dict(event.row)
        result[event.key] = Applied((event.lsn, event.seq), row)
    return result
    # END SOLUTION


def live_rows(state: Mapping[Hashable, Applied]) -> dict[Hashable, Mapping[str, Any]]:
    """The rows that exist now: every key whose last change was not a delete."""
    return {k: v.row for k, v in state.items() if v.row is not None}


def current_table(changes: pd.DataFrame, key: str | Sequence[str]) -> pd.DataFrame:
    """The table as it is after `changes` (landing rows, e.g. `read_landing(...)`): one row per
    live key, sorted by key, without the CDC columns, with the input's dtypes."""
    keys = [key] if isinstance(key, str) else list(key)
    columns = [c for c in changes.columns if not c.startswith("_")]
    rows = live_rows(apply_changes({}, changes, key))
    table = pd.DataFrame(list(rows.values()), columns=columns)
    if len(table):
        table = table.astype(changes[columns].dtypes.to_dict())
    else:
        table = changes[columns].iloc[0:0]
    return table.sort_values(keys, kind="stable").reset_index(drop=True)
