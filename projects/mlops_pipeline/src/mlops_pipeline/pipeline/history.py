"""Reading the validated zone back: every valid version of every row, up to a point in time.

Feature builders need history, not the latest state: a weather correction is a second version of
the same hour, and a rolling delay rate needs every departure in its window. The validated zone
holds exactly that, one Parquet file per table and recorded day.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mlops_pipeline.paths import Paths


def validated_history(
    paths: Paths, table: str, start: pd.Timestamp | None = None, end: pd.Timestamp | None = None
) -> pd.DataFrame:
    """Valid rows of `table` recorded in [start, end) (day partitions), by (_lsn, _seq)."""
    parts = [p for p in _partitions(paths.validated / table) if _within(p, start, end)]
    if not parts:
        raise FileNotFoundError(
            f"no validated partitions of {table} under {paths.validated / table}"
            + (f" for [{start}, {end})" if start is not None or end is not None else "")
        )
    frame = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    return frame.sort_values(["_lsn", "_seq"], kind="stable").reset_index(drop=True)


def _partitions(root: Path) -> list[Path]:
    return sorted(root.glob("date=*/part.parquet"))


def _within(part: Path, start: pd.Timestamp | None, end: pd.Timestamp | None) -> bool:
    day = pd.Timestamp(part.parent.name.removeprefix("date="), tz="UTC")
    return (start is None or day >= start.floor("D")) and (end is None or day < end)
