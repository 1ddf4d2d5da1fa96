"""The landing zone: CDC output as date-partitioned Parquet, written atomically, read deduplicated.

Layout: `<landing>/<table>/date=YYYY-MM-DD/part-<LSN, 16 hex digits>.parquet`, the date being
the UTC date of the row's `recorded_at` (a delete lands in the partition of the row it removed),
the LSN the `_lsn` of the batch's first transaction (its commit record's end; for the snapshot,
the slot's consistent point).

A file is written to a hidden temporary name, fsynced, renamed into place and its directory
fsynced: a reader sees a whole file or none. A consumer that crashed before confirming a batch
redoes it from the same position, so it rewrites the same names; any overlap between different
batches is removed by readers, which deduplicate on (`_lsn`, `_seq`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mlops_pipeline.source import schema

TMP_SUFFIX = ".tmp"
META_COLUMNS = ["_op", "_lsn", "_seq", "_commit_time"]


class LandingError(RuntimeError):
    """A landing file that cannot be read (the message names the file)."""


def file_name(lsn: int) -> str:
    return f"part-{lsn:016X}.parquet"


def partition_dir(landing_dir: Path, table: str, day: date) -> Path:
    return Path(landing_dir) / table / f"date={day.isoformat()}"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(table: pa.Table, path: Path) -> None:
    """Write `table` to `path` so `path` is either absent, the old file or the whole new one."""
    directory = path.parent
    if not directory.exists():
        directory.mkdir(parents=True, exist_ok=True)
        _fsync_dir(directory.parent)  # make the new partition directory itself durable
    tmp = directory / f".{path.name}{TMP_SUFFIX}"
    try:
        with open(tmp, "wb") as handle:
            pq.write_table(table, handle, compression="zstd")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(directory)


def write_batch(landing_dir: Path, table: str, rows: pa.Table, lsn: int) -> list[Path]:
    """Split one table's rows of a batch by `recorded_at` date and write one file per date."""
    if rows.num_rows == 0:
        return []
    days = pc.cast(rows["recorded_at"], pa.date32())
    written = []
    for day in pc.unique(days).to_pylist():
        if day is None:
            raise LandingError(f"{table}: a row without recorded_at cannot be partitioned")
        part = rows.filter(pc.equal(days, pa.scalar(day, pa.date32())))
        path = partition_dir(landing_dir, table, day) / file_name(lsn)
        atomic_write(part, path)
        written.append(path)
    return written


def remove_temporaries(landing_dir: Path) -> int:
    """Delete temporary files a killed writer left behind; returns how many."""
    count = 0
    for path in Path(landing_dir).glob(f"*/date=*/.*{TMP_SUFFIX}"):
        path.unlink(missing_ok=True)
        count += 1
    return count


def files(
    landing_dir: Path,
    table: str,
    start_date: str | date | None = None,
    end_date: str | date | None = None,
) -> Iterator[Path]:
    """The table's landing files with partition date in [start_date, end_date), sorted."""
    root = Path(landing_dir) / table
    lo = _as_date(start_date)
    hi = _as_date(end_date)
    for directory in sorted(root.glob("date=*")):
        day = _as_date(directory.name.removeprefix("date="))
        if (lo is not None and day < lo) or (hi is not None and day >= hi):
            continue
        yield from sorted(directory.glob("part-*.parquet"))


def _as_date(value: str | date | None) -> date | None:
    """A partition bound as a date; timestamps (pandas or datetime) count by their UTC date."""
    if value is None:
        return None
    if isinstance(value, datetime):
        stamp = pd.Timestamp(value)
        return (stamp.tz_convert("UTC") if stamp.tzinfo else stamp).date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise ValueError(f"not a date (YYYY-MM-DD): {value!r}") from None


def read_table(path: Path) -> pa.Table:
    """One landing file, or a LandingError naming it (truncated, garbage, foreign schema)."""
    try:
        return pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise LandingError(f"corrupt landing file {path}: {exc}") from exc


def read_landing(
    landing_dir: str | os.PathLike[str],
    table: str,
    start_date: str | date | None = None,
    end_date: str | date | None = None,
) -> pd.DataFrame:
    """Every landed change of `table` in partitions [start_date, end_date), deduplicated on
    (`_lsn`, `_seq`) and sorted by it, with `mlops_pipeline.data`'s dtypes.

    Columns: the table's columns, then `_op` ('s','i','u','d'), `_lsn`, `_seq`, `_commit_time`.
    The same change may sit in two files after a consumer crash; it is kept once.
    """
    spec = schema.table(table)
    target = schema.landing_schema(table)
    parts = []
    for path in files(Path(landing_dir), table, start_date, end_date):
        part = read_table(path)
        if set(part.column_names) != set(target.names):
            raise LandingError(
                f"landing file {path} has columns {part.column_names}, expected {target.names}"
            )
        parts.append(part.select(target.names).cast(target))
    merged = pa.concat_tables(parts) if parts else target.empty_table()
    frame = merged.to_pandas()
    frame = frame.drop_duplicates(["_lsn", "_seq"]).sort_values(["_lsn", "_seq"], kind="stable")
    frame = frame.reset_index(drop=True)
    for column in spec.columns:
        dtype = column.pandas
        if dtype == "int64" and frame[column.name].isna().any():
            dtype = "Int64"
        frame[column.name] = frame[column.name].astype(dtype)
    frame["_op"] = frame["_op"].astype("string")
    frame["_commit_time"] = frame["_commit_time"].astype("datetime64[ns, UTC]")
    return frame
