"""The drift monitor measured in both directions: does it see the seasons, does it cry wolf?

`measure_drift(home)` (the `monitoring` section of `make bench`):
1. builds (or reads from the cache) the point-in-time features of every 2013 flight, timed;
2. runs the monthly monitors, January-February against each later month, with an Evidently
   report per month: the first month with feature drift and its features, for our monitor
   and for Evidently's dataset-drift verdict;
3. measures false alarms: each month's days split at random into two halves, many times,
   both halves compared as if one were the reference and the other a new month. Nothing
   changed between them, so every statistical alarm is false. Counted for our monitor (any
   drift or missing-rate alert, the day as the unit), for the naive variants (the flight as
   the unit; PSI >= 0.25 alone), and for Evidently's defaults (dataset drift; any column
   drifted), on the same splits.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from mlops_pipeline.monitoring import drift
from mlops_pipeline.monitoring.alarms import Thresholds, day_halves, days_of, decide
from mlops_pipeline.monitoring.features import load_months, months_between

__all__ = ["false_alarm_rates", "measure_drift"]

NAIVE_FLIGHT = Thresholds(unit="flight")
DRIFT = ("feature_drift", "prediction_drift", "categorical_drift")
STATISTICAL = (*DRIFT, "missing_rate")
"""Alerts that can be false. `out_of_range` is not among them: a value outside its contract
is a fact about the data (2013's 1,048 mph wind at EWR on 12 February), so it is counted
apart, as `contract_violations`."""
TARGET_FALSE_ALARM_RATE = 0.05


def false_alarm_rates(
    frames: dict[str, pd.DataFrame],
    n_splits: int = 20,
    seed: int = 0,
    *,
    thresholds: Thresholds = drift.DEFAULT_THRESHOLDS,
    evidently: bool = True,
) -> dict[str, Any]:
    """Alarm rates over `n_splits` random day-halves of each month of `frames` (which carry
    the score column if prediction drift is to be included). Every alarm here is false."""
    numeric = [*drift.MONITORED_NUMERIC]
    if all(drift.SCORE in f for f in frames.values()):
        numeric.append(drift.SCORE)
    trials = 0
    kinds = ["ours", "ours_drift", "contract_violations", "naive_flight_ks", "naive_psi"]
    counts = dict.fromkeys([*kinds, "evidently_dataset", "evidently_any"], 0)
    by_feature: dict[str, int] = {}
    started = time.perf_counter()
    for i, (month, frame) in enumerate(sorted(frames.items())):
        for mask in day_halves(days_of(frame), n_splits, seed + i):
            a, b = frame.loc[mask], frame.loc[~mask]
            comparison = drift.compare_windows(a, b, thresholds=thresholds, flight_pvalues=True)
            trials += 1
            statistical = comparison.alerted(*STATISTICAL)
            counts["ours"] += bool(statistical)
            counts["ours_drift"] += bool(comparison.alerted(*DRIFT))
            counts["contract_violations"] += bool(comparison.alerted("out_of_range"))
            for feature in statistical:
                by_feature[feature] = by_feature.get(feature, 0) + 1
            naive = decide(comparison.table, NAIVE_FLIGHT, month)
            counts["naive_flight_ks"] += any(alert.kind in STATISTICAL for alert in naive)
            psi = comparison.table["psi"]
            counts["naive_psi"] += bool((psi >= thresholds.psi).any())
            if evidently:
                from mlops_pipeline.monitoring.reports import column_verdicts

                outcome = column_verdicts(a, b, numeric, drift.MONITORED_CATEGORICAL)
                counts["evidently_dataset"] += outcome.dataset_drift
                counts["evidently_any"] += bool(outcome.columns["drifted"].any())
    rates = {k: v / trials for k, v in counts.items()}
    if not evidently:
        rates.pop("evidently_dataset")
        rates.pop("evidently_any")
    return {
        "null": "each month's days split at random into two halves (nothing changed)",
        "months": sorted(frames),
        "splits_per_month": n_splits,
        "trials": trials,
        "rates": {k: round(v, 4) for k, v in rates.items()},
        "ours_alarms_by_feature": dict(sorted(by_feature.items())),
        "target": TARGET_FALSE_ALARM_RATE,
        "ours_within_target": rates["ours"] <= TARGET_FALSE_ALARM_RATE,
        "seconds": round(time.perf_counter() - started, 1),
    }


def _realised(scored: dict[str, pd.DataFrame], reference: tuple[str, str]) -> dict[str, Any]:
    """The monitored model's realised weekly AUC after the reference window: what drift
    alarms are a proxy for. Predictions as logged 2 h ahead; outcomes as the source ends."""
    from mlops_pipeline import data
    from mlops_pipeline.monitoring.realised import realised_auc

    later = [f for month, f in sorted(scored.items()) if month > reference[1]]
    log = pd.concat(
        [f[["flight_id", "event_timestamp", drift.SCORE]] for f in later], ignore_index=True
    ).rename(columns={"event_timestamp": "as_of"})
    weekly = realised_auc(log, data.flights(), pd.Timestamp("2014-01-03", tz="UTC"))
    weekly = weekly.loc[weekly["complete"] & weekly["auc"].notna()]
    return {
        "weeks": len(weekly),
        "median": round(float(weekly["auc"].median()), 4),
        "min": round(float(weekly["auc"].min()), 4),
        "max": round(float(weekly["auc"].max()), 4),
        "by_week": {row.week: round(row.auc, 4) for row in weekly.itertuples(index=False)},
    }


def measure_drift(
    home: str | os.PathLike[str] | None = None,
    *,
    n_splits: int = 20,
    reports: bool = True,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Detection month and features, false-alarm rates (ours and Evidently's) and timings.

    `home` None uses a temporary home, so the year's features are built from scratch and
    timed; with a home whose cache is warm the feature time is the cache read.
    """
    if home is None:
        with tempfile.TemporaryDirectory(prefix="mlops-drift-") as tmp:
            return measure_drift(
                tmp, n_splits=n_splits, reports=reports, seed=seed, progress=progress
            )
    say = progress or (lambda _message: None)
    year = [str(m) for m in months_between("2013-01", "2013-12")]

    say("features of every 2013 flight (point in time, month by month)")
    started = time.perf_counter()
    frames, loaded = load_months(year, home, progress=say)
    features_s = time.perf_counter() - started

    say("monthly monitors, reference 2013-01..2013-02")
    monthly = drift.run_monthly(home, reports=reports, evidently=True, progress=say)
    ours_month, ours_features = monthly.first_detection()
    ev_month, ev_features = monthly.evidently_first_detection()
    ev_seconds = [m.evidently.seconds for m in monthly.months if m.evidently is not None]

    say(f"false alarms: {n_splits} random day-halves of each month")
    assert monthly.scorer is not None
    scored = {
        m: f.assign(**{drift.SCORE: monthly.scorer.predict_proba(f)}) for m, f in frames.items()
    }
    null = false_alarm_rates(scored, n_splits, seed)

    say("realised ROC AUC per ISO week of the monitored months (labels from the source)")
    weekly = _realised(scored, monthly.reference)

    per_month = monthly.summary()
    return {
        "reference": list(monthly.reference),
        "model": monthly.model,
        "thresholds": monthly.thresholds.__dict__,
        "features": {
            "months": len(frames),
            "rows": int(sum(len(f) for f in frames.values())),
            "seconds": round(features_s, 1),
            "built_months": len(loaded.built),
            "cached_months": len(loaded.cached),
            "build_seconds": round(loaded.build_seconds, 1),
        },
        "detection": {
            "ours": {"month": ours_month, "features": ours_features},
            "evidently_dataset_drift": {"month": ev_month, "features": ev_features},
            "months": per_month.to_dict(orient="records"),
        },
        "false_alarms": null,
        "realised_auc": weekly,
        "timings": {
            "model_s": round(monthly.timings["model_s"], 1),
            "ours_per_month_s": round(monthly.timings["ours_s"] / len(monthly.months), 3),
            "evidently_per_month_s": round(float(np.mean(ev_seconds)), 2) if ev_seconds else None,
            "evidently_max_month_s": round(float(np.max(ev_seconds)), 2) if ev_seconds else None,
            "evidently_reports": reports,
        },
    }
