"""Monthly drift and data-quality monitors: the reference window against each later month.

For each month after the reference (the training window, January-February 2013 by default):
- per feature the PSI and the KS test (`stats`), judged by `alarms` (day-level significance
  and a PSI effect size), for the numeric features, the categorical ones (PSI) and the model's
  scores (prediction drift: a model trained on the reference window with the package's own
  training code, or the registry's champion);
- data quality: the share missing per feature against the reference's, and values outside
  the ranges the contracts promise (`quality`);
- an Evidently report of the same two windows (HTML under `<home>/monitoring/reports/`) and
  Evidently's own per-column verdicts beside ours.

`run_monthly(home, reference=("2013-01", "2013-02"), months=...)` is the entry point a command
line calls. `month` is not monitored: it names the window, so every later month is a
value the reference never had (drift by construction, not information).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from mlops_pipeline.features.schema import CATEGORICAL_FEATURES, LABEL, NUMERIC_FEATURES
from mlops_pipeline.monitoring import stats
from mlops_pipeline.monitoring.alarms import (
    DEFAULT_THRESHOLDS,
    Alert,
    Thresholds,
    count_tests,
    days_of,
    decide,
    runbook_url,
)
from mlops_pipeline.monitoring.features import (
    FeatureSource,
    as_month,
    load_months,
    monitoring_dir,
    months_between,
)
from mlops_pipeline.monitoring.quality import MISSING_IS_INFORMATION, feature_ranges

__all__ = [
    "MONITORED_CATEGORICAL",
    "MONITORED_NUMERIC",
    "SCORE",
    "Comparison",
    "MonthResult",
    "MonthlyResult",
    "compare_windows",
    "reference_model",
    "registry_scorer",
    "run_monthly",
]

MONITORED_NUMERIC = [f for f in NUMERIC_FEATURES if f != "month"]
MONITORED_CATEGORICAL = list(CATEGORICAL_FEATURES)
SCORE = "delay_probability"
"""The model's output column (the pyfunc's and the service's name)."""
DEFAULT_REFERENCE = ("2013-01", "2013-02")
LAST_MONTH = "2013-12"
OOF_FOLDS = 4


class Scorer(Protocol):
    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray: ...


# --------------------------------------------------------------------------- one comparison


@dataclass
class Comparison:
    """One reference/current comparison: a row per monitored column, and the alerts."""

    month: str
    table: pd.DataFrame
    alerts: list[Alert]
    n_tests: int
    seconds: float

    @property
    def alarm(self) -> bool:
        return bool(self.alerts)

    def alerted(self, *kinds: str) -> list[str]:
        """The columns with an alert of one of `kinds` (all kinds by default)."""
        return sorted({a.feature for a in self.alerts if not kinds or a.kind in kinds})


def _floats(frame: pd.DataFrame, column: str) -> np.ndarray:
    return pd.to_numeric(frame[column], errors="raise").to_numpy(np.float64, na_value=np.nan)


@dataclass(frozen=True)
class _Days:
    """The day of each row as a small integer code, for per-day counts by bincount."""

    codes: np.ndarray
    n: int

    @classmethod
    def of(cls, frame: pd.DataFrame) -> _Days:
        _, codes = np.unique(days_of(frame), return_inverse=True)
        return cls(codes, int(codes.max()) + 1 if codes.size else 0)

    def with_values(self, present: np.ndarray) -> int:
        """How many days have at least one row where `present` is True."""
        return int(np.count_nonzero(np.bincount(self.codes[present], minlength=self.n)))

    def daily_share(self, flag: np.ndarray) -> np.ndarray:
        """The share of rows with `flag` on each day (one observation per day)."""
        rows = np.bincount(self.codes, minlength=self.n)
        hits = np.bincount(self.codes, weights=flag.astype(np.float64), minlength=self.n)
        return hits[rows > 0] / rows[rows > 0]


def _outside_unit_interval(values: np.ndarray) -> int:
    return int(np.count_nonzero((values < 0) | (values > 1)))


def _numeric_row(
    column: str,
    kind: str,
    ref: np.ndarray,
    cur: np.ndarray,
    days_ref: _Days,
    days_cur: _Days,
    unit: str,
    check_missing: bool,
    flight_pvalues: bool,
) -> dict[str, Any]:
    miss_r, miss_c = np.isnan(ref), np.isnan(cur)
    row: dict[str, Any] = {
        "feature": column,
        "kind": kind,
        "psi": stats.psi(ref, cur),
        "rows_ref": int(ref.size),
        "rows_cur": int(cur.size),
        "days_ref": days_ref.with_values(~miss_r),
        "days_cur": days_cur.with_values(~miss_c),
        "missing_ref": float(miss_r.mean()),
        "missing_cur": float(miss_c.mean()),
        "ks_statistic": np.nan,
        "ks_pvalue_flights": np.nan,
        "ks_pvalue_days": np.nan,
        "missing_pvalue_flights": np.nan,
        "missing_pvalue_days": np.nan,
    }
    flights = unit == "flight" or flight_pvalues
    vr, vc = ref[~miss_r], cur[~miss_c]
    if vr.size and vc.size:
        d = stats.ks_statistic(vr, vc)
        row["ks_statistic"] = d
        row["ks_pvalue_days"] = stats.ks_pvalue(d, row["days_ref"], row["days_cur"]).pvalue
        if flights:  # asymptotic: at these sizes it equals the exact value to many digits
            row["ks_pvalue_flights"] = stats.ks_pvalue(d, vr.size, vc.size, "asymp").pvalue
    if check_missing:
        daily_r, daily_c = days_ref.daily_share(miss_r), days_cur.daily_share(miss_c)
        row["missing_pvalue_days"] = stats.ks_2samp(daily_r, daily_c).pvalue
        if flights:  # nothing missing on either side: D = 0 and p = 1 without a test
            row["missing_pvalue_flights"] = (
                stats.ks_2samp(miss_r.astype(float), miss_c.astype(float), "asymp").pvalue
                if miss_r.any() or miss_c.any()
                else 1.0
            )
    return row


def compare_windows(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    month: str = "",
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    numeric: Sequence[str] = MONITORED_NUMERIC,
    categorical: Sequence[str] = MONITORED_CATEGORICAL,
    score: str | None = SCORE,
    runbook: str | None = None,
    flight_pvalues: bool = False,
) -> Comparison:
    """Compare `current` with `reference` column by column and decide the alerts.

    Both frames need `sched_dep` (the day of each row), the `numeric` and `categorical`
    columns, and `score` unless it is None or absent from both (then no prediction drift).
    `flight_pvalues` also computes the (naive) flight-level KS p-values when the unit is the
    day, for the report: they cost ~25 ms a column and decide nothing.
    """
    started = time.perf_counter()
    if reference.empty or current.empty:
        raise ValueError(f"compare_windows: empty window ({len(reference)}, {len(current)} rows)")
    columns = [*numeric, *categorical, "sched_dep"]
    for name, frame in (("reference", reference), ("current", current)):
        if missing := [c for c in columns if c not in frame.columns]:
            raise ValueError(f"compare_windows: {name} lacks columns {missing}")
    if score is not None and (score in reference) != (score in current):
        raise ValueError(f"compare_windows: only one window has the score column {score!r}")
    with_score = score is not None and score in reference
    url = runbook_url(runbook)
    days_ref, days_cur = _Days.of(reference), _Days.of(current)
    ranges = feature_ranges()
    rows = []
    scored = [(c, "numeric") for c in numeric] + ([(score, "prediction")] if with_score else [])
    for column, kind in scored:
        row = _numeric_row(
            column,
            kind,
            _floats(reference, column),
            _floats(current, column),
            days_ref,
            days_cur,
            thresholds.unit,
            check_missing=kind == "numeric" and column not in MISSING_IS_INFORMATION,
            flight_pvalues=flight_pvalues,
        )
        if column in ranges:
            row["out_of_range_ref"] = int(ranges[column].violations(reference[column]).sum())
            row["out_of_range_cur"] = int(ranges[column].violations(current[column]).sum())
        else:  # the score: a probability
            row["out_of_range_ref"] = _outside_unit_interval(_floats(reference, column))
            row["out_of_range_cur"] = _outside_unit_interval(_floats(current, column))
        rows.append(row)
    for column in categorical:
        ref_values, cur_values = reference[column], current[column]
        rows.append(
            {
                "feature": column,
                "kind": "categorical",
                "psi": stats.psi_categorical(ref_values, cur_values),
                "rows_ref": len(ref_values),
                "rows_cur": len(cur_values),
                "missing_ref": float(ref_values.isna().mean()),
                "missing_cur": float(cur_values.isna().mean()),
                "out_of_range_ref": int(ranges[column].violations(ref_values).sum()),
                "out_of_range_cur": int(ranges[column].violations(cur_values).sum()),
            }
        )
    table = pd.DataFrame(rows)
    alerts = decide(table, thresholds, month, url)
    table["alarm"] = table["feature"].isin({a.feature for a in alerts})
    return Comparison(month, table, alerts, count_tests(table), time.perf_counter() - started)


# --------------------------------------------------------------------------- the model


@dataclass
class ReferenceModel:
    """The model whose scores are monitored, and its scores on the reference window."""

    scorer: Scorer
    reference_scores: np.ndarray
    description: str
    seconds: float


def reference_model(
    reference: pd.DataFrame, family: str = "hist_gb", folds: int = OOF_FOLDS
) -> ReferenceModel:
    """Train `family` (the pipeline's spec) on the reference window; its reference scores are
    OUT OF FOLD (day-blocked folds): a model scoring its own training rows is more confident
    than on any later month, which would look like prediction drift from the first month."""
    from mlops_pipeline.training.models import default_specs, fit_model

    started = time.perf_counter()
    specs = {s.family: s for s in default_specs()}
    if family not in specs:
        raise ValueError(f"unknown model family {family!r}; expected one of {sorted(specs)}")
    if folds < 2:
        raise ValueError(f"folds must be >= 2, got {folds}")
    spec = specs[family]
    model = fit_model(spec, reference)
    days = days_of(reference)
    distinct = np.unique(days)
    fold_of = dict(zip(distinct, np.arange(len(distinct)) % folds, strict=True))
    fold = np.array([fold_of[d] for d in days])
    scores = np.empty(len(reference))
    for k in range(folds):
        held = fold == k
        scores[held] = fit_model(spec, reference.loc[~held]).predict_proba(reference.loc[held])
    return ReferenceModel(
        model,
        scores,
        f"{family} trained on the reference window ({len(reference)} rows), "
        f"reference scores out of {folds} day-blocked folds",
        time.perf_counter() - started,
    )


def registry_scorer(home: str | os.PathLike[str] | None, alias: str) -> Scorer:
    """The registry's model under `alias` (e.g. "champion") as a scorer of feature frames."""
    from mlops_pipeline.paths import Paths
    from mlops_pipeline.training.gates import probabilities, pyfunc_frame
    from mlops_pipeline.training.registry import MODEL_NAME
    from mlops_pipeline.training.tracking import store_uri, tracking

    paths = Paths.at(home)
    with tracking(store_uri(paths.mlruns)):
        import mlflow

        loaded = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@{alias}")

    class _Registry:
        def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
            return probabilities(loaded.predict(pyfunc_frame(loaded, frame)))

    return _Registry()


# --------------------------------------------------------------------------- the months


@dataclass
class MonthResult:
    """One monitored month: our comparison, Evidently's verdicts, and the realised labels."""

    month: str
    comparison: Comparison
    evidently: Any | None
    """reports.EvidentlyOutcome, or None when Evidently was not run."""
    base_rate: float
    """The month's realised delay rate (labels arrive within a day; shown, not monitored)."""

    def table(self) -> pd.DataFrame:
        """Our statistics with Evidently's method, score and verdict per column beside them."""
        table = self.comparison.table.copy()
        if self.evidently is not None:
            theirs = self.evidently.columns.rename(
                columns={
                    "column": "feature",
                    "method": "evidently_method",
                    "score": "evidently_score",
                    "threshold": "evidently_threshold",
                    "drifted": "evidently_drift",
                }
            )
            table = table.merge(theirs, on="feature", how="left")
        return table

    def to_dict(self) -> dict[str, Any]:
        table = self.table()
        return {
            "month": self.month,
            "rows": int(self.comparison.table["rows_cur"].iloc[0]),
            "base_rate": round(self.base_rate, 4),
            "alerts": [a.to_dict() for a in self.comparison.alerts],
            "n_tests": self.comparison.n_tests,
            "seconds": round(self.comparison.seconds, 3),
            "evidently": self.evidently.to_dict() if self.evidently is not None else None,
            "columns": json.loads(table.to_json(orient="records")),
        }


@dataclass
class MonthlyResult:
    """Every monitored month against one reference window."""

    reference: tuple[str, str]
    months: list[MonthResult]
    thresholds: Thresholds
    model: str
    timings: dict[str, float] = field(default_factory=dict)
    path: Path | None = None
    scorer: Scorer | None = field(default=None, repr=False)
    """The model whose scores were monitored (not saved)."""

    @property
    def alerts(self) -> list[Alert]:
        return [a for m in self.months for a in m.comparison.alerts]

    def first_detection(self, kinds: Sequence[str] = ("feature_drift",)) -> tuple[str, list[str]]:
        """The first month with an alert of `kinds`, and the columns alerted then; ("", [])."""
        for month in self.months:
            alerted = month.comparison.alerted(*kinds)
            if alerted:
                return month.month, alerted
        return "", []

    def evidently_first_detection(self) -> tuple[str, list[str]]:
        """The first month where Evidently declares dataset drift, and its drifted columns."""
        for month in self.months:
            outcome = month.evidently
            if outcome is not None and outcome.dataset_drift:
                return month.month, outcome.columns.loc[
                    outcome.columns["drifted"], "column"
                ].tolist()
        return "", []

    def summary(self) -> pd.DataFrame:
        """One row per month: alerts by kind, Evidently's dataset verdict, the base rate."""
        rows = []
        for m in self.months:
            ev = m.evidently
            by_kind: dict[str, list[str]] = {}
            for alert in m.comparison.alerts:
                by_kind.setdefault(alert.kind, []).append(alert.feature)
            rows.append(
                {
                    "month": m.month,
                    "feature_drift": by_kind.get("feature_drift", []),
                    "prediction_drift": by_kind.get("prediction_drift", []),
                    "data_quality": by_kind.get("missing_rate", [])
                    + by_kind.get("out_of_range", []),
                    "evidently_dataset_drift": None if ev is None else ev.dataset_drift,
                    "evidently_drifted_share": None if ev is None else round(ev.drifted_share, 3),
                    "base_rate": round(m.base_rate, 4),
                }
            )  # fmt: skip
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        month, features = self.first_detection()
        ev_month, ev_features = self.evidently_first_detection()
        return {
            "reference": list(self.reference),
            "thresholds": self.thresholds.__dict__,
            "model": self.model,
            "first_detection": {"month": month, "features": features},
            "evidently_first_detection": {"month": ev_month, "features": ev_features},
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "months": [m.to_dict() for m in self.months],
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, default=str) + "\n")
        os.replace(tmp, target)
        self.path = target
        return target


def _stderr(message: str) -> None:
    print(f"[monitor] {message}", file=sys.stderr, flush=True)


def run_monthly(
    home: str | os.PathLike[str] | None = None,
    reference: tuple[str, str] = DEFAULT_REFERENCE,
    months: Sequence[str] | None = None,
    *,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    model_alias: str | None = None,
    model_family: str = "hist_gb",
    evidently: bool = True,
    reports: bool = True,
    source: FeatureSource = "timeline",
    progress: Callable[[str], None] | None = _stderr,
) -> MonthlyResult:
    """Monitor each month of `months` (default: every month after the reference up to
    2013-12) against the `reference` months (first, last; both included).

    Features come from `features.load_months` (built once, then cached under the home). The
    scores are those of the registry's `model_alias` model if given, else of a `model_family`
    model trained on the reference window. With `reports`, an Evidently HTML report per month
    goes to `<home>/monitoring/reports/YYYY-MM.html` and Evidently's verdicts are read from
    it; with only `evidently`, its verdicts are computed without a report. The result is also
    written to `<home>/monitoring/monthly_<first>_<last>.json`.
    """
    from mlops_pipeline.monitoring import reports as evidently_reports

    say = progress or (lambda _message: None)
    ref_months = [str(m) for m in months_between(*reference)]
    if months is None:
        start = as_month(reference[1]) + 1
        months = (
            [str(m) for m in months_between(start, LAST_MONTH)]
            if start <= as_month(LAST_MONTH)
            else []
        )
    monitored = [str(as_month(m)) for m in months]
    if not monitored:
        raise ValueError("run_monthly: no months to monitor")
    if overlap := sorted(set(monitored) & set(ref_months)):
        raise ValueError(f"run_monthly: months {overlap} are part of the reference window")
    timings: dict[str, float] = {}

    started = time.perf_counter()
    frames, loaded = load_months([*ref_months, *monitored], home, source=source, progress=say)
    timings["features_s"] = time.perf_counter() - started
    timings["features_built_s"] = loaded.build_seconds
    say(f"features: {len(loaded.built)} month(s) built, {len(loaded.cached)} from the cache "
        f"({timings['features_s']:.1f} s)")  # fmt: skip
    ref = pd.concat([frames[m] for m in ref_months], ignore_index=True)

    started = time.perf_counter()
    if model_alias is not None:
        scorer = registry_scorer(home, model_alias)
        ref = ref.assign(**{SCORE: scorer.predict_proba(ref)})
        model = f"registry alias {model_alias!r} (reference scores may include its training rows)"
    else:
        trained = reference_model(ref, model_family)
        scorer, model = trained.scorer, trained.description
        ref = ref.assign(**{SCORE: trained.reference_scores})
    timings["model_s"] = time.perf_counter() - started
    say(f"model: {model} ({timings['model_s']:.1f} s)")

    out_dir = monitoring_dir(home)
    results = []
    timings["ours_s"] = timings["evidently_s"] = 0.0
    for month in monitored:
        cur = frames[month]
        cur = cur.assign(**{SCORE: scorer.predict_proba(cur)})
        comparison = compare_windows(
            ref, cur, month=month, thresholds=thresholds, flight_pvalues=True
        )
        timings["ours_s"] += comparison.seconds
        outcome = None
        numeric = [*MONITORED_NUMERIC, SCORE]
        if reports:
            outcome = evidently_reports.write_report(
                ref, cur, out_dir / "reports" / f"{month}.html", numeric, MONITORED_CATEGORICAL,
                title=f"flight-delay features {month} vs {reference[0]}..{reference[1]}",
            )  # fmt: skip
        elif evidently:
            outcome = evidently_reports.column_verdicts(ref, cur, numeric, MONITORED_CATEGORICAL)
        if outcome is not None:
            timings["evidently_s"] += outcome.seconds
        result = MonthResult(month, comparison, outcome, float(cur[LABEL].mean()))
        results.append(result)
        ours = ", ".join(f"{a.kind}:{a.feature}" for a in comparison.alerts) or "no alerts"
        theirs = (
            ""
            if outcome is None
            else f"; Evidently: {'DRIFT' if outcome.dataset_drift else 'no drift'} "
            f"({outcome.drifted_share:.0%} of columns)"
        )
        say(f"{month}: {ours}{theirs}")
    result = MonthlyResult(
        (ref_months[0], ref_months[-1]), results, thresholds, model, timings, scorer=scorer
    )
    result.save(out_dir / f"monthly_{monitored[0]}_{monitored[-1]}.json")
    return result
