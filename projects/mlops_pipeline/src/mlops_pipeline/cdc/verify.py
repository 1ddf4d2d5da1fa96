"""Does the landing zone hold exactly what the source holds? Counts and checksums per table.

Used by the recovery benchmark (after killing the consumer) and usable after any incident: the
state rebuilt from the landing zone's changes (`apply.current_table`) is compared with a plain
`SELECT` from the source, independently of the CDC path.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import psycopg

from mlops_pipeline.cdc.apply import current_table
from mlops_pipeline.cdc.landing import read_landing
from mlops_pipeline.source import schema


def source_table(dsn: str, table: str) -> pd.DataFrame:
    """The table as the source has it now, typed like the dataset, sorted by its key."""
    spec = schema.table(table)
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(f"SELECT {', '.join(spec.column_names)} FROM {table}").fetchall()
    frame = pd.DataFrame(rows, columns=spec.column_names)
    for column in spec.columns:
        if column.kind == "timestamptz":
            frame[column.name] = pd.to_datetime(frame[column.name], utc=True).astype(
                "datetime64[ns, UTC]"
            )
        else:
            frame[column.name] = frame[column.name].astype(column.pandas)
    return frame.sort_values(list(spec.key)).reset_index(drop=True)


def checksum(frame: pd.DataFrame) -> int:
    """An order-sensitive hash of a frame's values (both sides are sorted by key first)."""
    return int(pd.util.hash_pandas_object(frame, index=False).sum() % 2**61)


def compare_with_source(dsn: str, landing_dir: str | Path) -> dict[str, dict[str, int | bool]]:
    """Per table: rows in the source and rebuilt from the landing zone, rows lost (in the
    source, missing or different in the lake), extra rows, repeated changes, equal checksums."""
    out: dict[str, dict[str, int | bool]] = {}
    for table, spec in schema.TABLES.items():
        key = list(spec.key)
        changes = read_landing(Path(landing_dir), table)
        landed = current_table(changes, key)
        expected = source_table(dsn, table)
        both = expected.merge(landed, how="outer", on=list(expected.columns), indicator=True)
        stream = changes[changes["_op"].isin(["i", "d"])]
        out[table] = {
            "source_rows": len(expected),
            "landed_rows": len(landed),
            "lost": int((both["_merge"] == "left_only").sum()),
            "extra": int((both["_merge"] == "right_only").sum()),
            # A row is inserted once and deleted at most once: a repeat is a duplicated change.
            "duplicated_changes": int(stream.duplicated([*key, "_op"]).sum()),
            "checksum_equal": checksum(landed) == checksum(expected),
        }
    return out
