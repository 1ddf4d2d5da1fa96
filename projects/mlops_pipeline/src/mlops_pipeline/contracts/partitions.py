"""Validate one landing partition (a table, a UTC date) into the validated and quarantine zones.

Writes are whole-partition overwrites via a temporary file and a rename, so a reader sees the old
file or the new one, never half of one, and running a date twice gives the same files (the
pipeline can retry a day freely). Both files are always written, an empty quarantine included,
so a rerun after a fix cannot leave a stale quarantine behind. On a `ContractBreach` nothing is
written: the previous outputs stay and the error stops the run before training.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mlops_pipeline.cdc import landing
from mlops_pipeline.contracts.validate import ValidationCounts, validate
from mlops_pipeline.paths import Paths

PART_NAME = "part.parquet"


@dataclass(frozen=True)
class PartitionReport:
    table: str
    date: str
    counts: ValidationCounts
    validated: Path
    quarantine: Path


def partition_dir(root: Path, table: str, date: str | dt.date) -> Path:
    return root / table / f"date={_iso(date)}"


def landing_dates(paths: Paths, table: str) -> list[str]:
    """The dates (YYYY-MM-DD) that have landing files for `table`, in order."""
    folder = paths.landing / table
    if not folder.is_dir():
        return []
    dates = [p.name.removeprefix("date=") for p in folder.glob("date=*") if p.is_dir()]
    return sorted(d for d in dates if any((folder / f"date={d}").glob("part-*.parquet")))


def read_landing_partition(paths: Paths, table: str, date: str | dt.date) -> pd.DataFrame:
    """Every landing row of `table` recorded on `date`, deduplicated on and sorted by (_lsn, _seq).

    Reads through the CDC's own reader (`cdc.landing.read_landing`), so both sides agree on
    the layout and the dedup rule; a file with foreign columns or corrupt bytes raises its
    `LandingError` there, naming the file. A date with no landing files is an error here: an
    empty validated partition would look like a day without flights.
    """
    day = dt.date.fromisoformat(_iso(date))
    if not any(landing.files(paths.landing, table, day, day + dt.timedelta(days=1))):
        folder = partition_dir(paths.landing, table, day)
        raise FileNotFoundError(f"no landing files for table {table} on {day} in {folder}")
    return landing.read_landing(paths.landing, table, day, day + dt.timedelta(days=1))


def validate_partition(paths: Paths, table: str, date: str | dt.date) -> PartitionReport:
    """Validate a landing partition and overwrite its validated and quarantine files.

    Raises `ContractBreach` (and writes nothing) when the batch breaks the contract as a whole.
    """
    frame = read_landing_partition(paths, table, date)
    result = validate(table, frame)
    validated = partition_dir(paths.validated, table, date) / PART_NAME
    quarantined = partition_dir(paths.quarantine, table, date) / PART_NAME
    write_atomic(result.valid.reset_index(drop=True), validated)
    write_atomic(result.quarantined.reset_index(drop=True), quarantined)
    return PartitionReport(table, _iso(date), result.counts, validated, quarantined)


def write_atomic(frame: pd.DataFrame, path: Path) -> None:
    """Write `frame` to `path` as Parquet through a temporary file in the same folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _iso(date: str | dt.date) -> str:
    if isinstance(date, dt.date):
        return date.isoformat()
    try:
        return dt.date.fromisoformat(date).isoformat()
    except (TypeError, ValueError):
        raise ValueError(f"partition date must be YYYY-MM-DD, got {date!r}") from None
