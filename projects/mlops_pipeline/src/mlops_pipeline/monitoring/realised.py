"""Realised model quality once the labels arrive: ROC AUC of the logged predictions per week.

Drift monitors watch the inputs because the truth comes late: whether a flight leaves more than
15 minutes late is known only when it departs, and in 2013 some departures were recorded up to
22 hours after the schedule. Once the departures have arrived (the CDC landing zone's flights,
or any frame with the same columns), they are joined to the predictions the service logged
(flight_id, as_of, delay_probability) and the realised ROC AUC is computed per ISO week of the
scheduled departure (New York time), over MATURED flights only: those scheduled at least
`LABEL_MATURITY` (a day, `pipeline.steps`) before `now`. Counting a fresher flight would keep
the ones that already left on time and miss the ones still delayed, biasing the week towards
on-time flights, exactly as the training windows avoid (`pipeline.steps.labelled`).

`realised_auc_registry(frame)` exposes the result as Prometheus gauges
(`mlops_realised_auc{week}`, `mlops_realised_labelled_flights{week}`,
`mlops_realised_week_complete{week}`) and `write_textfile` writes them for node_exporter's
textfile collector (a batch job has no /metrics of its own to scrape).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from mlops_pipeline.data import LOCAL_TZ, is_delayed, utc
from mlops_pipeline.paths import Paths
from mlops_pipeline.pipeline.steps import LABEL_MATURITY

__all__ = [
    "PREDICTION_COLUMNS",
    "outcomes_from_landing",
    "realised_auc",
    "realised_auc_registry",
    "write_textfile",
]

PREDICTION_COLUMNS = ["flight_id", "as_of", "delay_probability"]
OUTCOME_COLUMNS = ["flight_id", "sched_dep", "dep_delay"]
MIN_LABELLED = 2
"""A week needs labelled flights of both classes for an AUC; fewer gives NaN."""


def outcomes_from_landing(
    home: str | os.PathLike[str] | None = None,
    now: pd.Timestamp | str | None = None,
) -> pd.DataFrame:
    """Each flight's latest state from the CDC landing zone (`cdc.apply.current_table`), as
    known at `now` (changes recorded after it are ignored; None: everything landed).
    Columns: flight_id, sched_dep, dep_delay, cancelled (deleted duplicates are gone)."""
    from mlops_pipeline.cdc.apply import current_table
    from mlops_pipeline.cdc.landing import read_landing

    paths = Paths.at(home)
    end_date = None if now is None else (utc(now) + pd.Timedelta(days=1)).date()
    changes = read_landing(paths.landing, "flights", None, end_date)
    if now is not None:
        changes = changes.loc[changes["recorded_at"] <= utc(now)]
    if changes.empty:
        raise FileNotFoundError(f"no landed flight changes under {paths.landing}")
    table = current_table(changes, "flight_id")
    return table[["flight_id", "sched_dep", "dep_delay", "cancelled"]]


def _iso_week(stamps: pd.Series) -> pd.Series:
    local = stamps.dt.tz_convert(LOCAL_TZ)
    iso = local.dt.isocalendar()
    return iso["year"].astype(str) + "-W" + iso["week"].astype(int).map("{:02d}".format)


def _week_end(week: str) -> pd.Timestamp:
    """The UTC instant the ISO week ends: the following Monday, 00:00 New York time."""
    monday = pd.Timestamp.fromisocalendar(int(week[:4]), int(week[6:]), 1)
    return (monday + pd.Timedelta(days=7)).tz_localize(LOCAL_TZ).tz_convert("UTC")


def realised_auc(
    predictions: pd.DataFrame,
    outcomes: pd.DataFrame,
    now: pd.Timestamp | str,
    *,
    maturity: pd.Timedelta = LABEL_MATURITY,
) -> pd.DataFrame:
    """Realised ROC AUC per ISO week of the scheduled departure, matured flights only.

    `predictions`: flight_id, as_of, delay_probability (several per flight allowed: the latest
    made before the scheduled departure counts, the one the decision used; later ones are
    ignored). `outcomes`: flight_id, sched_dep, dep_delay (missing until departure and for
    cancelled flights, which have no label). One row per week with a prediction: week,
    predictions, matured, labelled, positives, auc (NaN without both classes), mean_score,
    base_rate, complete (every flight of the week has matured by `now`).
    """
    if missing := [c for c in PREDICTION_COLUMNS if c not in predictions.columns]:
        raise ValueError(f"predictions lack columns {missing}")
    if missing := [c for c in OUTCOME_COLUMNS if c not in outcomes.columns]:
        raise ValueError(f"outcomes lack columns {missing}")
    now = utc(now)
    if outcomes["flight_id"].duplicated().any():
        raise ValueError("outcomes have several rows for a flight; pass each flight's latest state")
    joined = predictions[PREDICTION_COLUMNS].merge(
        outcomes[OUTCOME_COLUMNS], on="flight_id", how="inner", validate="many_to_one"
    )
    as_of = pd.to_datetime(joined["as_of"], utc=True)
    joined = joined.loc[as_of <= joined["sched_dep"]]
    joined = joined.assign(as_of=as_of).sort_values(["flight_id", "as_of"], kind="stable")
    latest = joined.drop_duplicates("flight_id", keep="last")
    matured = latest["sched_dep"] <= now - maturity
    label = is_delayed(latest["dep_delay"]).where(matured)
    frame = latest.assign(week=_iso_week(latest["sched_dep"]), matured=matured, label=label)
    rows = []
    for week, group in frame.groupby("week", sort=True):
        known = group.loc[group["label"].notna()]
        y = known["label"].astype(int).to_numpy()
        p = known["delay_probability"].astype(float).to_numpy()
        both = len(y) >= MIN_LABELLED and 0 < y.sum() < len(y)
        rows.append(
            {
                "week": week,
                "predictions": len(group),
                "matured": int(group["matured"].sum()),
                "labelled": len(y),
                "positives": int(y.sum()),
                "auc": float(roc_auc_score(y, p)) if both else np.nan,
                "mean_score": float(p.mean()) if len(p) else np.nan,
                "base_rate": float(y.mean()) if len(y) else np.nan,
                "complete": bool(_week_end(week) + maturity <= now),
            }
        )
    columns = [
        "week", "predictions", "matured", "labelled", "positives", "auc", "mean_score",
        "base_rate", "complete",
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def realised_auc_registry(frame: pd.DataFrame, registry=None):
    """The weekly frame as Prometheus gauges in `registry` (a new CollectorRegistry by default):
    mlops_realised_auc{week} (weeks with an AUC), mlops_realised_labelled_flights{week},
    mlops_realised_week_complete{week} (1 once every flight of the week has matured)."""
    from prometheus_client import CollectorRegistry, Gauge

    registry = registry if registry is not None else CollectorRegistry()
    auc = Gauge(
        "mlops_realised_auc",
        "Realised ROC AUC of the logged predictions, matured flights of the ISO week",
        ["week"],
        registry=registry,
    )
    labelled = Gauge(
        "mlops_realised_labelled_flights",
        "Flights of the ISO week with a matured label (the AUC's sample size)",
        ["week"],
        registry=registry,
    )
    complete = Gauge(
        "mlops_realised_week_complete",
        "1 when every flight of the ISO week has matured (its AUC is final)",
        ["week"],
        registry=registry,
    )
    for row in frame.itertuples(index=False):
        labelled.labels(week=row.week).set(row.labelled)
        complete.labels(week=row.week).set(1.0 if row.complete else 0.0)
        if np.isfinite(row.auc):
            auc.labels(week=row.week).set(row.auc)
    return registry


def write_textfile(frame: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write the gauges in Prometheus' text format for node_exporter's textfile collector
    (prometheus_client writes a temporary file and renames it: never half a file)."""
    from prometheus_client import write_to_textfile

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(target), realised_auc_registry(frame))
    return target
