"""Feature tables built from the sources' history, keyed by when each value became available.

Every table has `event_timestamp` = the time its values were KNOWN (a weather row's `recorded_at`,
a rate's evaluation hour), never the time they describe (`obs_hour` stays an ordinary column).
With that convention a point-in-time join (`asof.asof_join`, or Feast's) that takes the latest
row at or before the prediction time can only see what was known then, also when a value was
corrected later: the correction is a new row, available from its correction time.

Inputs are history rows as the CDC landing zone holds them once applied: the table's columns,
`recorded_at`, and an operation column (`op` with 'insert'/'update'/'delete', or the landing
zone's `_op` with 's'/'i'/'u'/'d'), optionally an order column (`seq`, or `_lsn` + `_seq`).
Tables are written to `<home>/features/<view>/date=YYYY-MM-DD/part.parquet` (the date of
`event_timestamp`), which is also what Feast's file offline store reads.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mlops_pipeline.data import utc
from mlops_pipeline.features.rolling import hourly_grid, rolling_delay_rate
from mlops_pipeline.features.schema import PLANE_FEATURES, RATE_FEATURES, WEATHER_FEATURES
from mlops_pipeline.paths import Paths

__all__ = [
    "VIEWS",
    "View",
    "build_feature_tables",
    "departures",
    "final_flights",
    "history",
    "plane_features",
    "rate_tables",
    "read_feature_table",
    "weather_features",
    "write_feature_table",
    "write_feature_tables",
]

PLANES_REFERENCE_YEAR = 2013
"""plane_age = this year - the year built (the dataset is one year, so age is a constant)."""


@dataclass(frozen=True)
class View:
    """A feature table: its entity key, its feature columns, and how long a row stays valid."""

    name: str
    key: str
    features: tuple[str, ...]
    ttl: pd.Timedelta | None
    """Older rows are not used (None: no limit). Rates are hourly and weather is published hourly,
    so a few hours' TTL turns a stalled feed into missing values instead of stale ones."""
    description: str


def _rate_features(entity: str) -> tuple[str, ...]:
    return tuple(f for f in RATE_FEATURES if f.startswith(f"{entity}_delay_rate_"))


VIEWS: dict[str, View] = {
    v.name: v
    for v in (
        View(
            "weather", "origin", tuple(WEATHER_FEATURES), pd.Timedelta(hours=3),
            "Newest published weather observation at the origin airport.",
        ),
        View(
            "origin_delay_rates", "origin", _rate_features("origin"), pd.Timedelta(hours=2),
            "Share of departures from the airport that left > 15 min late, recent windows.",
        ),
        View(
            "carrier_delay_rates", "carrier", _rate_features("carrier"), pd.Timedelta(hours=2),
            "Share of the carrier's departures that left > 15 min late, recent windows.",
        ),
        View(
            "route_delay_rates", "route", _rate_features("route"), pd.Timedelta(hours=2),
            "Share of departures on the route (origin-dest) that left > 15 min late.",
        ),
        View(
            "planes", "tailnum", tuple(PLANE_FEATURES), None,
            "Aircraft attributes: age, seats, engines.",
        ),
    )
}  # fmt: skip

_OPS = {"s": "insert", "i": "insert", "u": "update", "d": "delete"}
_OPS |= {"insert": "insert", "update": "update", "delete": "delete"}


def history(rows: pd.DataFrame, table: str = "history") -> pd.DataFrame:
    """History rows in write order with a normalised `op` ('insert', 'update', 'delete').

    Accepts the timeline's `op`/`seq` or the landing zone's `_op`/`_lsn`/`_seq`; rows written at
    the same `recorded_at` keep their source order, so "the latest version" is well defined.
    """
    if "recorded_at" not in rows.columns:
        raise ValueError(f"{table}: history rows need a 'recorded_at' column")
    op_column = "op" if "op" in rows.columns else "_op" if "_op" in rows.columns else None
    if op_column is None:
        raise ValueError(f"{table}: history rows need an 'op' (or '_op') column")
    ops = rows[op_column].astype(object).map(_OPS)
    if ops.isna().any():
        bad = sorted(set(rows.loc[ops.isna(), op_column].astype(str)))
        raise ValueError(f"{table}: unknown operations {bad} in column {op_column!r}")
    out = rows.assign(op=ops.astype(object))
    order = ["recorded_at"] + (
        ["seq"] if "seq" in out else [c for c in ("_lsn", "_seq") if c in out]
    )
    return out.sort_values(order, kind="stable").reset_index(drop=True)


def final_flights(flights_history: pd.DataFrame) -> pd.DataFrame:
    """The last version of every flight that was not deleted (the erroneous duplicates are)."""
    rows = history(flights_history, "flights")
    last = rows.drop_duplicates("flight_id", keep="last")
    return last.loc[last["op"] != "delete"].reset_index(drop=True)


def departures(flights_history: pd.DataFrame) -> pd.DataFrame:
    """One row per departed flight, with `available_at`, when its departure was recorded.

    `available_at` = max(dep_at, recorded_at of the first version carrying dep_at): in this
    source both are equal, but a departure recorded late must not be counted before it was known.
    """
    rows = history(flights_history, "flights")
    final = final_flights(rows)
    final = final.loc[final["dep_at"].notna() & final["dep_delay"].notna()]
    with_dep = rows.loc[rows["dep_at"].notna() & (rows["op"] != "delete")]
    first_known = with_dep.drop_duplicates("flight_id", keep="first").set_index("flight_id")
    recorded = final["flight_id"].map(first_known["recorded_at"])
    out = final.assign(route=_route(final), available_at=np.maximum(final["dep_at"], recorded))
    return out.reset_index(drop=True)


def weather_features(weather_history: pd.DataFrame) -> pd.DataFrame:
    """Per origin, every version of the newest observation, available from its `recorded_at`.

    A write enters the table only if its `obs_hour` is the newest hour published so far at that
    origin: a new hour's first publication, or a correction of the newest hour. A correction of
    an older hour does not make that older hour "the current weather" again. Deletes are ignored
    (an observation that was published was known). Columns: origin, event_timestamp, obs_hour,
    WEATHER_FEATURES.
    """
    rows = history(weather_history, "weather")
    rows = rows.loc[rows["op"] != "delete"]
    newest = rows.groupby("origin", sort=False)["obs_hour"].cummax()
    current = rows.loc[rows["obs_hour"] == newest]
    out = current.rename(columns={"recorded_at": "event_timestamp"})
    out = out[["origin", "event_timestamp", "obs_hour", *WEATHER_FEATURES]]
    return out.sort_values(["event_timestamp", "origin"], kind="stable").reset_index(drop=True)


def rate_tables(
    flights_history: pd.DataFrame, start: pd.Timestamp | str, end: pd.Timestamp | str
) -> dict[str, pd.DataFrame]:
    """The delay-rate views on the hourly grid [start, end), from departures known at each hour.

    `flights_history` must reach back the longest window (7 days) before `start`, else the first
    hours' rates undercount. Each table: the key, event_timestamp, and per window
    `<entity>_delay_rate_<w>` with its count `<entity>_n_departed_<w>`.
    """
    departed = departures(flights_history)
    grid = hourly_grid(start, end)
    tables = {}
    for view in (
        VIEWS["origin_delay_rates"],
        VIEWS["carrier_delay_rates"],
        VIEWS["route_delay_rates"],
    ):
        table = None
        for feature in view.features:
            window = re.fullmatch(rf"{view.key}_delay_rate_(\w+)", feature).group(1)
            rates = rolling_delay_rate(
                departed, view.key, pd.Timedelta(window), grid, "available_at"
            )
            rates = rates.rename(
                columns={"delay_rate": feature, "n_departed": f"{view.key}_n_departed_{window}"}
            )
            table = rates if table is None else table.merge(rates, on=[view.key, "event_timestamp"])
        tables[view.name] = table.sort_values(["event_timestamp", view.key]).reset_index(drop=True)
    return tables


def plane_features(planes_history: pd.DataFrame) -> pd.DataFrame:
    """Every version of every plane's attributes, available from its `recorded_at`."""
    rows = history(planes_history, "planes")
    rows = rows.loc[rows["op"] != "delete"]
    out = pd.DataFrame(
        {
            "tailnum": rows["tailnum"],
            "event_timestamp": rows["recorded_at"],
            "plane_age": (PLANES_REFERENCE_YEAR - rows["year"]).astype("float64"),
            "seats": rows["seats"].astype("int64"),
            "engines": rows["engines"].astype("int64"),
        }
    )
    return out.reset_index(drop=True)


def build_feature_tables(
    flights_history: pd.DataFrame,
    weather_history: pd.DataFrame,
    planes_history: pd.DataFrame,
    start: pd.Timestamp | str,
    end: pd.Timestamp | str,
) -> dict[str, pd.DataFrame]:
    """All views keyed by name (see `VIEWS`): rows with event_timestamp in [start, end), and for
    planes every version recorded before `end`. `flights_history` must start 7 days before."""
    lo, hi = utc(start), utc(end)
    tables = {"weather": weather_features(weather_history)}
    tables |= rate_tables(flights_history, lo, hi)
    stamp = tables["weather"]["event_timestamp"]
    tables["weather"] = tables["weather"].loc[(stamp >= lo) & (stamp < hi)].reset_index(drop=True)
    # Planes are loaded once before the year: every version recorded before `end` is kept, so
    # any interval's tables can serve a join (rewriting their load date's partition is idempotent).
    planes = plane_features(planes_history)
    tables["planes"] = planes.loc[planes["event_timestamp"] < hi].reset_index(drop=True)
    return tables


def write_feature_table(
    paths: Paths,
    view: str,
    frame: pd.DataFrame,
    start: pd.Timestamp | str,
    end: pd.Timestamp | str,
) -> list[Path]:
    """Replace the view's rows with event_timestamp in [start, end) by `frame`'s (idempotent).

    Each touched date partition is rewritten whole (rows of that date outside the interval are
    kept) to a temporary file renamed over the old one, so a reader never sees half a partition
    and re-running an interval gives the same files. Returns the partitions written.
    """
    lo, hi = utc(start), utc(end)
    if hi <= lo:
        raise ValueError(f"{view}: empty interval [{lo}, {hi})")
    stamp = frame["event_timestamp"]
    outside = int(((stamp < lo) | (stamp >= hi)).sum())
    if outside:
        raise ValueError(f"{view}: {outside} rows have event_timestamp outside [{lo}, {hi})")
    root = paths.features / view
    written = []
    for day in pd.date_range(lo.floor("D"), hi, freq="D", inclusive="left"):
        part = root / f"date={day.date().isoformat()}" / "part.parquet"
        day_rows = frame.loc[(stamp >= day) & (stamp < day + pd.Timedelta(days=1))]
        if part.exists():
            old = pd.read_parquet(part)
            keep = (old["event_timestamp"] < lo) | (old["event_timestamp"] >= hi)
            day_rows = pd.concat([old.loc[keep], day_rows], ignore_index=True)
        if day_rows.empty:
            part.unlink(missing_ok=True)
            continue
        day_rows = day_rows.sort_values("event_timestamp", kind="stable").reset_index(drop=True)
        part.parent.mkdir(parents=True, exist_ok=True)
        tmp = part.with_name(f".part.{os.getpid()}.tmp")
        day_rows.to_parquet(tmp, index=False)
        os.replace(tmp, part)
        written.append(part)
    return written


def write_feature_tables(
    paths: Paths,
    tables: Mapping[str, pd.DataFrame],
    start: pd.Timestamp | str,
    end: pd.Timestamp | str,
) -> dict[str, list[Path]]:
    """`write_feature_table` for every view; planes go to their own load date if outside."""
    out = {}
    for name, frame in tables.items():
        lo, hi = utc(start), utc(end)
        if len(frame):
            lo = min(lo, frame["event_timestamp"].min().floor("D"))
            hi = max(hi, frame["event_timestamp"].max().floor("D") + pd.Timedelta(days=1))
        out[name] = write_feature_table(paths, name, frame, lo, hi)
    return out


def read_feature_table(
    paths: Paths,
    view: str,
    start: pd.Timestamp | str | None = None,
    end: pd.Timestamp | str | None = None,
) -> pd.DataFrame:
    """The view's rows with event_timestamp in [start, end) (all by default), in time order."""
    root = paths.features / view
    parts = sorted(root.glob("date=*/part.parquet"))
    if start is not None or end is not None:
        lo = utc(start).floor("D") if start is not None else None
        hi = utc(end) if end is not None else None
        parts = [
            p for p in parts
            if (lo is None or pd.Timestamp(p.parent.name[5:], tz="UTC") >= lo)
            and (hi is None or pd.Timestamp(p.parent.name[5:], tz="UTC") < hi)
        ]  # fmt: skip
    if not parts:
        raise FileNotFoundError(f"no partitions of feature view {view!r} under {root}")
    frame = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    stamp = frame["event_timestamp"]
    mask = np.ones(len(frame), dtype=bool)
    if start is not None:
        mask &= (stamp >= utc(start)).to_numpy()
    if end is not None:
        mask &= (stamp < utc(end)).to_numpy()
    return frame.loc[mask].sort_values("event_timestamp", kind="stable").reset_index(drop=True)


def _route(flights: pd.DataFrame) -> pd.Series:
    return (flights["origin"] + "-" + flights["dest"]).astype("string")
