"""Evidently 0.7 reports of the same windows, and Evidently's own per-column drift verdicts.

One report per month: `DataDriftPreset` (per-column drift, Evidently's method chosen by
column type and size) and `DataSummaryPreset` (row and column counts, missing values, value
statistics, with Evidently's automatic tests against the reference), saved as one
self-contained HTML page (scripts inline, nothing fetched from the network; a test checks).

Evidently's default verdicts at our sizes (more than 1,000 reference rows): numeric columns
with more than 5 distinct values use the normed Wasserstein distance, drifted at >= 0.1;
columns with at most 5 values and categorical ones use the Jensen-Shannon distance, drifted
at >= 0.1; the dataset drifts when at least half of the columns do. These are effect sizes
with fixed thresholds, no notion of sample size or of days, so they are compared with our
monitor side by side on the same data.

Rendering a report takes seconds per month (plotly figures per column); `column_verdicts`
computes the same verdicts through Evidently's stat-test registry (the functions the preset
calls) without rendering, for the false-alarm study that needs hundreds of comparisons. A test
checks both give the same scores and verdicts.

`import evidently` takes 5-12 s: it happens inside these functions, never at import time.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "DRIFT_SHARE",
    "EvidentlyOutcome",
    "column_verdicts",
    "verdicts_from_snapshot",
    "write_report",
]

DRIFT_SHARE = 0.5
"""Evidently's default: the dataset drifts when at least this share of columns drift."""
_VALUE_DRIFT_TEST = "Value Drift for column "


@dataclass
class EvidentlyOutcome:
    """Evidently's verdicts for one comparison (and where its HTML report went, if written)."""

    columns: pd.DataFrame
    """One row per column: column, method, score, threshold, drifted."""
    dataset_drift: bool
    drifted_share: float
    failed_tests: list[str] = field(default_factory=list)
    """Names of Evidently's failed data-summary tests (row count, missing values, ...)."""
    report: Path | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset_drift": self.dataset_drift,
            "drifted_share": self.drifted_share,
            "drifted_columns": self.columns.loc[self.columns["drifted"], "column"].tolist(),
            "failed_tests": list(self.failed_tests),
            "report": str(self.report) if self.report is not None else None,
            "seconds": round(self.seconds, 3),
        }


def _frame(frame: pd.DataFrame, numeric: Sequence[str], categorical: Sequence[str]):
    """The columns Evidently compares: numerics as float64 (NaN missing), categoricals as
    strings (missing stays missing; Evidently drops it, as it does for numerics)."""
    out = pd.DataFrame(index=frame.index)
    for column in numeric:
        out[column] = pd.to_numeric(frame[column], errors="raise").astype("float64")
    for column in categorical:
        out[column] = frame[column].astype("string").astype(object)
    return out.reset_index(drop=True)


def write_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    path: str | os.PathLike[str],
    numeric: Sequence[str],
    categorical: Sequence[str],
    *,
    title: str | None = None,
) -> EvidentlyOutcome:
    """Run DataDriftPreset + DataSummaryPreset on the windows, save the HTML at `path`
    (atomically), and return Evidently's verdicts read from the report itself."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset, DataSummaryPreset

    started = time.perf_counter()
    definition = DataDefinition(
        numerical_columns=list(numeric), categorical_columns=list(categorical)
    )
    ref = Dataset.from_pandas(_frame(reference, numeric, categorical), data_definition=definition)
    cur = Dataset.from_pandas(_frame(current, numeric, categorical), data_definition=definition)
    report = Report(
        [DataDriftPreset(drift_share=DRIFT_SHARE), DataSummaryPreset()],
        include_tests=True,
        metadata={"title": title} if title else None,
    )
    snapshot = report.run(cur, ref, name=title)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    snapshot.save_html(str(tmp))
    os.replace(tmp, target)
    outcome = verdicts_from_snapshot(snapshot.dict())
    outcome.report = target
    outcome.seconds = time.perf_counter() - started
    return outcome


def verdicts_from_snapshot(result: dict[str, Any]) -> EvidentlyOutcome:
    """Evidently's per-column drift verdicts from a snapshot's `.dict()`: the ValueDrift
    metrics give method, threshold and score, their tests the verdict (FAIL = drifted)."""
    rows: dict[str, dict[str, Any]] = {}
    share = float("nan")
    for metric in result.get("metrics", []):
        config = metric.get("config", {})
        kind = str(config.get("type", ""))
        if kind.endswith(":ValueDrift"):
            rows[config["column"]] = {
                "column": config["column"],
                "method": config.get("method"),
                "score": float(metric["value"]),
                "threshold": float(config.get("threshold", float("nan"))),
                "drifted": None,
            }
        elif kind.endswith(":DriftedColumnsCount"):
            share = float(metric["value"]["share"])
    failed = []
    for test in result.get("tests", []):
        name = str(test.get("name", ""))
        status = str(test.get("status", "")).upper()
        if name.startswith(_VALUE_DRIFT_TEST):
            column = test["metric_config"]["params"]["column"]
            if column in rows:
                rows[column]["drifted"] = status.endswith("FAIL")
        elif status.endswith("FAIL") and not name.startswith("Share of Drifted Columns"):
            failed.append(name)
    if not rows:
        raise ValueError("the Evidently result has no ValueDrift metrics (no DataDriftPreset?)")
    missing = [c for c, r in rows.items() if r["drifted"] is None]
    if missing:
        raise ValueError(f"no drift test in the Evidently result for columns {missing}")
    columns = pd.DataFrame(list(rows.values()))
    columns["drifted"] = columns["drifted"].astype(bool)
    return EvidentlyOutcome(
        columns=columns,
        dataset_drift=bool(share >= DRIFT_SHARE),
        drifted_share=share,
        failed_tests=failed,
    )


def column_verdicts(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numeric: Sequence[str],
    categorical: Sequence[str],
) -> EvidentlyOutcome:
    """Evidently's default drift verdicts without rendering a report: for each column, the
    stat test Evidently's registry picks for it (`get_stattest`) on the non-missing values,
    at that test's default threshold, exactly as `ValueDrift` does inside the preset."""
    from evidently.legacy.calculations.stattests.registry import get_stattest
    from evidently.legacy.core import ColumnType

    started = time.perf_counter()
    ref = _frame(reference, numeric, categorical)
    cur = _frame(current, numeric, categorical)
    rows = []
    for column in [*numeric, *categorical]:
        kind = ColumnType.Numerical if column in numeric else ColumnType.Categorical
        r = ref[column].replace([-np.inf, np.inf], np.nan).dropna()
        c = cur[column].replace([-np.inf, np.inf], np.nan).dropna()
        if r.empty or c.empty:
            raise ValueError(f"column {column!r} has no values in one window")
        test = get_stattest(r, c, kind, None)
        result = test(r, c, kind, None)
        rows.append(
            {
                "column": column,
                "method": test.display_name,
                "score": float(result.drift_score),
                "threshold": float(result.actual_threshold),
                "drifted": bool(result.drifted),
            }
        )
    columns = pd.DataFrame(rows)
    share = float(columns["drifted"].mean())
    return EvidentlyOutcome(
        columns=columns,
        dataset_drift=share >= DRIFT_SHARE,
        drifted_share=share,
        seconds=time.perf_counter() - started,
    )
