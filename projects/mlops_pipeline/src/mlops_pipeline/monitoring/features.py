"""The features of every flight as the model saw them, month by month, cached as Parquet.

Monitoring compares what the model is fed, so the rows must be built the way serving builds
them: point in time, as of `PREDICTION_LEAD` (2 h) before the scheduled departure, with only
what was known then. This module runs the package's own builders (`features.tables` on the
source's history, then `features.training_set`'s as-of join), never a shortcut, and caches one
Parquet file per calendar month under `<home>/monitoring/features/<source>/YYYY-MM.parquet`.

Months are New York calendar months (`month` in the features is local too): a flight at 21:00
on 31 January belongs to January although it is 1 February in UTC.

Where the history comes from:
- `"timeline"` (default): the source's complete history as the replayer writes it into
  PostgreSQL (`source.timeline`): no database needed, the whole year in ~25 s on 2 cores;
- `"validated"`: the validated zone of a home the pipeline has run in (what
  `pipeline.steps.materialise_features` reads), for monitoring a real deployment.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pandas as pd

from mlops_pipeline.data import LOCAL_TZ
from mlops_pipeline.paths import Paths

__all__ = [
    "FeatureSource",
    "Month",
    "feature_cache",
    "load_months",
    "month_bounds",
    "monitoring_dir",
    "months_between",
]

Month = pd.Period
"""A calendar month, e.g. pd.Period("2013-03", "M")."""
FeatureSource = Literal["timeline", "validated"]
HISTORY_MARGIN = pd.Timedelta(days=8)
"""History read before a month: the longest rate window (7 days) plus a day of margin."""
_MONTH = re.compile(r"\d{4}-\d{2}")
TABLE_MARGIN = pd.Timedelta(days=1)
"""Feature tables start this long before the month's first prediction time (TTLs <= 3 h)."""


def monitoring_dir(home: str | os.PathLike[str] | None = None) -> Path:
    """`<home>/monitoring`: cached features, reports and results of the monitors."""
    return Paths.at(home).home / "monitoring"


def feature_cache(home: str | os.PathLike[str] | None = None) -> Path:
    return monitoring_dir(home) / "features"


def as_month(value: str | pd.Period | pd.Timestamp) -> Month:
    """'2013-03', a Period or a Timestamp as a monthly Period (pandas alone would also read
    'March' as March of the current year: a string must be YYYY-MM)."""
    if isinstance(value, str) and not _MONTH.fullmatch(value.strip()):
        raise ValueError(f"not a month: {value!r} (expected YYYY-MM, e.g. '2013-03')")
    try:
        return pd.Period(value, freq="M")
    except (TypeError, ValueError) as error:
        raise ValueError(f"not a month: {value!r} (expected YYYY-MM, e.g. '2013-03')") from error


def months_between(start: str | pd.Period, end: str | pd.Period) -> list[Month]:
    """The months from `start` to `end`, both included."""
    first, last = as_month(start), as_month(end)
    if last < first:
        raise ValueError(f"month range ends before it starts: {first}..{last}")
    return list(pd.period_range(first, last, freq="M"))


def month_bounds(month: str | pd.Period) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The month's [start, end) in UTC, from New York local midnights."""
    period = as_month(month)
    start = pd.Timestamp(period.start_time.date()).tz_localize(LOCAL_TZ).tz_convert("UTC")
    end = pd.Timestamp((period + 1).start_time.date()).tz_localize(LOCAL_TZ).tz_convert("UTC")
    return start, end


@dataclass
class LoadReport:
    """What `load_months` did: months read from the cache, months built, and the time taken."""

    cached: list[str] = field(default_factory=list)
    built: list[str] = field(default_factory=list)
    seconds: float = 0.0
    build_seconds: float = 0.0


History = Callable[[str, pd.Timestamp | None, pd.Timestamp], pd.DataFrame]
"""(table, recorded from or None, recorded before) -> that table's history rows."""


def _timeline_history(seed: int) -> History:
    from mlops_pipeline.source import timeline

    def read(table: str, start: pd.Timestamp | None, end: pd.Timestamp) -> pd.DataFrame:
        events = timeline.build_timeline(start if table != "planes" else None, end, seed)
        return timeline.rows(events, table)

    return read


def _validated_history(paths: Paths) -> History:
    from mlops_pipeline.pipeline.history import validated_history

    def read(table: str, start: pd.Timestamp | None, end: pd.Timestamp) -> pd.DataFrame:
        return validated_history(paths, table, start if table != "planes" else None, end)

    return read


def build_month(month: str | pd.Period, history: History) -> pd.DataFrame:
    """The point-in-time feature rows (TRAINING_COLUMNS) of the flights departed in `month`."""
    from mlops_pipeline.features import tables, training_set
    from mlops_pipeline.features.schema import PREDICTION_LEAD

    start, end = month_bounds(month)
    table_start = start - PREDICTION_LEAD - TABLE_MARGIN
    # A flight's outcome is recorded when it departs (up to a day late): read past the month's
    # end so every flight scheduled in it has its final version; the as-of join still only
    # sees rows available at each prediction time.
    history_end = end + pd.Timedelta(days=2)
    flights = history("flights", table_start - HISTORY_MARGIN, history_end)
    weather = history("weather", table_start - HISTORY_MARGIN, end)
    planes = history("planes", None, end)
    built = tables.build_feature_tables(flights, weather, planes, table_start, end)
    entities = training_set.entity_frame(flights, start, end)
    return training_set.build_training_set(entities, built, method="asof")


def load_months(
    months: Iterable[str | pd.Period],
    home: str | os.PathLike[str] | None = None,
    *,
    source: FeatureSource = "timeline",
    seed: int = 0,
    refresh: bool = False,
    progress: Callable[[str], None] | None = None,
) -> tuple[dict[str, pd.DataFrame], LoadReport]:
    """Each month's feature rows, keyed 'YYYY-MM', from the cache or built and cached.

    A month is cached once complete; `refresh` rebuilds it. Writes go to a temporary file
    renamed into place, so an interrupted build never leaves half a month behind.
    """
    wanted: Sequence[Month] = [as_month(m) for m in months]
    if not wanted:
        raise ValueError("load_months: no months requested")
    if source not in ("timeline", "validated"):
        raise ValueError(f"unknown feature source {source!r}; use 'timeline' or 'validated'")
    paths = Paths.at(home)
    cache = feature_cache(paths.home)
    history = _timeline_history(seed) if source == "timeline" else _validated_history(paths)
    # One folder per history: the timeline per seed, a deployment's validated zone apart.
    folder = f"timeline-seed{seed}" if source == "timeline" else "validated"
    report = LoadReport()
    started = time.perf_counter()
    out: dict[str, pd.DataFrame] = {}
    for month in wanted:
        key = str(month)
        target = cache / folder / f"{key}.parquet"
        if target.exists() and not refresh:
            out[key] = pd.read_parquet(target)
            report.cached.append(key)
            continue
        if progress is not None:
            progress(f"features {key}: building from the {source} history")
        built_at = time.perf_counter()
        frame = build_month(month, history)
        report.build_seconds += time.perf_counter() - built_at
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, target)
        out[key] = frame
        report.built.append(key)
    report.seconds = time.perf_counter() - started
    return out, report
