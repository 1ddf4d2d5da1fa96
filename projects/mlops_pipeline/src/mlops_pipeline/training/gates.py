"""The evaluation gates a challenger must pass before it becomes the champion.

Every gate is a function returning a `GateResult` (name, passed, what it measured, the
threshold, a sentence saying why), so the promotion report and the MLflow run say exactly
which gate failed and by how much. The gates:

a) `improvement_gate`: better than the champion on the later holdout by more than chance. A
   holdout AUC of 0.712 against 0.708 is noise on 20,000 rows; the paired bootstrap interval of
   the difference says whether it is. Paired: both models are scored on the SAME resampled rows,
   so the day-to-day variation both models share cancels out and the interval is much narrower
   than two independent intervals would suggest. With no champion yet the candidate is compared
   with the base-rate prior (a constant score), and the result says so.
b) `slice_gate`: not worse than the champion on any airport, carrier or month beyond a
   tolerance (an average gain can hide a carrier it got much worse at).
c) `invariance_gate`, `direction_gate`: behaviour. The flight number and the tail number are
   identifiers, not causes: the score must not move when they change. More rain must never
   lower the predicted probability of a delay.
d) `operational_gate`: the registered model loads through the registry, accepts the feature
   frame through its signature, scores a batch like the in-memory model did, and a single-row
   prediction meets the latency budget.

Checkpoint 2.5 is `paired_bootstrap_diff` and `decide`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

from mlops_pipeline.training.metrics import GREATER_IS_BETTER, metric_value, resampled_metric
from mlops_pipeline.training.tracking import tracking

#: Rows scored per vectorised block of resamples (bounds memory at ~16 MB a block).
_BLOCK_CELLS = 2_000_000


class Scorer(Protocol):
    """Anything that gives P(delayed) for each row of a frame (a `FittedModel`, a stub)."""

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray: ...


@dataclass
class GateResult:
    """One gate's verdict, with the numbers behind it."""

    name: str
    passed: bool
    measured: dict[str, float]
    threshold: dict[str, float]
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types; NaN and infinities become None (JSON has no such numbers)."""
        return jsonable(asdict(self))


@dataclass(frozen=True)
class GateConfig:
    """The knobs of every gate, with the defaults the pipeline uses (see each gate)."""

    metric: str = "roc_auc"
    margin: float = 0.0
    n_boot: int = 1000
    alpha: float = 0.05
    seed: int = 0
    slice_columns: tuple[str, ...] = ("origin", "carrier", "month")
    slice_tolerance: float = 0.02
    slice_min_rows: int = 300
    slice_min_class: int = 30
    behaviour_rows: int = 300
    latency_budget_ms: float = 100.0
    latency_rows: int = 100
    latency_repeats: int = 3
    batch_rows: int = 1000


DEFAULT_GATES = GateConfig()

# ----------------------------------------------------------------------- a) improvement


def paired_bootstrap_diff(
    y: np.ndarray,
    p_new: np.ndarray,
    p_old: np.ndarray,
    metric: str = "roc_auc",
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Percentile bootstrap interval of metric(p_new) - metric(p_old) on the rows (y, p).

    Returns (low, high, point): the alpha/2 and 1 - alpha/2 percentiles of the difference over
    `n_boot` resamples of the rows (drawn with replacement, seeded by `seed`), each resample
    scoring BOTH models on the same rows, and the difference on all rows. The sign is
    candidate minus champion for every metric: for log loss a better candidate gives a
    negative difference (`decide` knows each metric's direction). Resamples without both
    classes (no AUC) are left out. `metrics.resampled_metric(metric, y, p, counts)` scores
    many resamples at once from a (B, n) matrix of how often each row was drawn.
    """
    y = np.asarray(y)
    p_new = np.asarray(p_new, dtype=np.float64)
    p_old = np.asarray(p_old, dtype=np.float64)
    if not (len(y) == len(p_new) == len(p_old)) or len(y) == 0:
        raise ValueError(
            f"paired_bootstrap_diff: y, p_new, p_old must be equally long and non-empty; "
            f"got {len(y)}, {len(p_new)}, {len(p_old)}"
        )
    if metric not in GREATER_IS_BETTER:
        raise ValueError(f"unknown metric {metric!r}; expected one of {sorted(GREATER_IS_BETTER)}")
    if not 0 < alpha < 1 or n_boot < 1:
        raise ValueError(f"need 0 < alpha < 1 and n_boot >= 1; got alpha={alpha}, n_boot={n_boot}")
    # BEGIN SOLUTION 2.5: paired bootstrap of the metric difference and its percentile interval
    n = len(y)
    rng = np.random.default_rng(seed)
    point = metric_value(metric, y, p_new) - metric_value(metric, y, p_old)
    diffs = []
    block = max(1, _BLOCK_CELLS // n)
    for start in range(0, n_boot, block):
        rows = rng.integers(0, n, size=(min(block, n_boot - start), n))
        # counts[b, i]: how often row i was drawn in resample b; the same for both models.
        offsets = rows + n * np.arange(len(rows))[:, None]
        counts = np.bincount(offsets.ravel(), minlength=len(rows) * n).reshape(len(rows), n)
        diffs.append(
            resampled_metric(metric, y, p_new, counts) - resampled_metric(metric, y, p_old, counts)
        )
    diff = np.concatenate(diffs)
    diff = diff[~np.isnan(diff)]
    if diff.size == 0:
        raise ValueError("paired_bootstrap_diff: no resample had both classes")
    low, high = np.quantile(diff, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high), float(point)
    # END SOLUTION


def decide(low: float, high: float, metric: str = "roc_auc", margin: float = 0.0) -> bool:
    """Promote only when the whole interval says the candidate is better by more than `margin`.

    For a metric where higher is better (ROC AUC) the lower bound must exceed the margin; for
    one where lower is better (log loss, difference candidate - champion) the upper bound must
    lie below -margin. An interval touching the margin is not enough.
    """
    if metric not in GREATER_IS_BETTER:
        raise ValueError(f"unknown metric {metric!r}; expected one of {sorted(GREATER_IS_BETTER)}")
    if low > high:
        raise ValueError(f"decide: interval low={low} > high={high}")
    # BEGIN SOLUTION 2.5: the promotion decision from the interval and the margin
    if GREATER_IS_BETTER[metric]:
        return bool(low > margin)
    return bool(high < -margin)
    # END SOLUTION


def improvement_gate(
    y: np.ndarray,
    p_new: np.ndarray,
    p_old: np.ndarray | None,
    *,
    base_rate: float,
    config: GateConfig = DEFAULT_GATES,
) -> GateResult:
    """Gate a): the paired bootstrap interval of the holdout metric difference vs the champion.

    With no champion (`p_old` None) the reference is the base-rate prior: every row scored
    with the training set's delay rate (ROC AUC 0.5; its log loss is the label entropy).
    """
    reference = "champion"
    if p_old is None:
        reference = "base-rate prior"
        p_old = np.full(len(y), float(base_rate))
    low, high, point = paired_bootstrap_diff(
        y, p_new, p_old, config.metric, config.n_boot, config.alpha, config.seed
    )
    passed = decide(low, high, config.metric, config.margin)
    level = round(100 * (1 - config.alpha))
    sign = ">" if GREATER_IS_BETTER[config.metric] else "<"
    bound = config.margin if GREATER_IS_BETTER[config.metric] else -config.margin
    message = (
        f"{config.metric} candidate - {reference} = {point:+.4f}, {level}% paired bootstrap "
        f"interval [{low:+.4f}, {high:+.4f}] over {len(y)} holdout rows; "
        f"{'passes' if passed else 'fails'}: needs the whole interval {sign} {bound:+.4f}"
    )
    if reference != "champion":
        message = f"no champion yet, compared with the base-rate prior p={base_rate:.4f}: {message}"
    return GateResult(
        name="improvement",
        passed=passed,
        measured={"diff": point, "ci_low": low, "ci_high": high, "rows": float(len(y))},
        threshold={"margin": config.margin, "alpha": config.alpha, "n_boot": float(config.n_boot)},
        message=message,
        details={"metric": config.metric, "reference": reference, "seed": config.seed},
    )


# ----------------------------------------------------------------------- b) slices


def slice_gate(
    frame: pd.DataFrame,
    y: np.ndarray,
    p_new: np.ndarray,
    p_old: np.ndarray | None,
    *,
    config: GateConfig = DEFAULT_GATES,
) -> GateResult:
    """Gate b): no slice (origin, carrier, month) loses more than `slice_tolerance` ROC AUC.

    Slices with fewer than `slice_min_rows` rows or fewer than `slice_min_class` rows of either
    class are skipped (their AUC moves by more than the tolerance by chance) and listed. With no
    champion the reference on every slice is the base-rate prior's AUC of 0.5.
    """
    y = np.asarray(y, dtype=np.int64)
    p_new = np.asarray(p_new, dtype=np.float64)
    reference = "champion" if p_old is not None else "base-rate prior"
    checked, skipped, failing = [], [], []
    worst = -np.inf
    for column in config.slice_columns:
        if column not in frame.columns:
            raise ValueError(f"slice_gate: holdout frame has no column {column!r}")
        values = frame[column].to_numpy()
        for value in pd.unique(values):
            mask = values == value
            rows, positives = int(mask.sum()), int(y[mask].sum())
            name = f"{column}={value}"
            if rows < config.slice_min_rows or min(positives, rows - positives) < (
                config.slice_min_class
            ):
                skipped.append({"slice": name, "rows": rows, "positives": positives})
                continue
            auc_new = metric_value("roc_auc", y[mask], p_new[mask])
            auc_old = 0.5 if p_old is None else metric_value("roc_auc", y[mask], p_old[mask])
            drop = auc_old - auc_new
            worst = max(worst, drop)
            entry = {"slice": name, "rows": rows, "auc_new": auc_new, "auc_old": auc_old}
            checked.append(entry | {"drop": drop})
            if drop > config.slice_tolerance:
                failing.append(entry | {"drop": drop})
    passed = not failing
    if failing:
        listed = ", ".join(
            f"{f['slice']} ({f['auc_old']:.3f} -> {f['auc_new']:.3f})" for f in failing
        )
        message = f"{len(failing)} slice(s) lose more than {config.slice_tolerance} AUC: {listed}"
    else:
        message = (
            f"{len(checked)} slices within {config.slice_tolerance} AUC of the {reference}"
            f" (worst drop {worst:+.4f}); {len(skipped)} too small, skipped"
        )
    return GateResult(
        name="slices",
        passed=passed,
        measured={
            "worst_drop": float(worst) if checked else 0.0,
            "slices_checked": float(len(checked)),
            "slices_failing": float(len(failing)),
            "slices_skipped": float(len(skipped)),
        },
        threshold={"tolerance": config.slice_tolerance, "min_rows": float(config.slice_min_rows)},
        message=message,
        details={
            "reference": reference,
            "failing": failing,
            "skipped": skipped,
            "checked": checked,
        },
    )


# ----------------------------------------------------------------------- c) behaviour


def _shift_digits(tailnum: pd.Series, shift: int) -> pd.Series:
    table = str.maketrans("0123456789", "".join(str((d + shift) % 10) for d in range(10)))
    return tailnum.astype("string").map(lambda s: s.translate(table), na_action="ignore")


def invariance_gate(
    model: Scorer, frame: pd.DataFrame, *, config: GateConfig = DEFAULT_GATES, atol: float = 1e-9
) -> GateResult:
    """Gate c1): scores unchanged when the flight number or the tail number's digits change.

    A model that reads an identifier learns which flight numbers happened to be late in the
    training months: that is memorisation, and it breaks when schedules are renumbered.
    """
    rng = np.random.default_rng(config.seed)
    take = rng.choice(len(frame), size=min(config.behaviour_rows, len(frame)), replace=False)
    rows = frame.iloc[np.sort(take)].reset_index(drop=True)
    base = model.predict_proba(rows)
    perturbations: dict[str, pd.DataFrame] = {}
    renumbered = rows.copy()
    renumbered["flight"] = rng.permutation(rows["flight"].to_numpy()) + 10_000
    perturbations["flight"] = renumbered
    retailed = rows.copy()
    retailed["tailnum"] = _shift_digits(rows["tailnum"], int(rng.integers(1, 10)))
    perturbations["tailnum_digits"] = retailed
    measured = {
        f"max_abs_diff_{name}": float(np.max(np.abs(model.predict_proba(changed) - base)))
        for name, changed in perturbations.items()
    }
    moved = [name for name, value in measured.items() if value > atol]
    message = (
        f"scores move when {', '.join(m.removeprefix('max_abs_diff_') for m in moved)} change "
        f"(max |diff| {max(measured.values()):.3g} > {atol:g}); the model reads an identifier"
        if moved
        else f"scores of {len(rows)} rows unchanged by new flight and tail numbers"
    )
    return GateResult(
        name="invariance",
        passed=not moved,
        measured=measured | {"rows": float(len(rows))},
        threshold={"atol": atol},
        message=message,
    )


PRECIP_GRID = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.8, 1.2)
"""Hourly precipitation (inches) the direction gate sweeps; 2013's maximum at NYC was 1.21."""


def direction_gate(
    model: Scorer,
    frame: pd.DataFrame,
    *,
    feature: str = "precip",
    grid: Sequence[float] = PRECIP_GRID,
    config: GateConfig = DEFAULT_GATES,
    atol: float = 1e-9,
) -> GateResult:
    """Gate c2): for sampled rows, the score never decreases along a grid of `feature` values."""
    rng = np.random.default_rng(config.seed + 1)
    take = rng.choice(len(frame), size=min(config.behaviour_rows, len(frame)), replace=False)
    rows = frame.iloc[np.sort(take)].reset_index(drop=True)
    grid = np.sort(np.asarray(grid, dtype=np.float64))
    swept = rows.loc[rows.index.repeat(len(grid))].reset_index(drop=True)
    swept[feature] = np.tile(grid, len(rows))
    scores = model.predict_proba(swept).reshape(len(rows), len(grid))
    drops = -np.diff(scores, axis=1)  # > 0 where more `feature` lowered the score
    violating = int((drops > atol).any(axis=1).sum())
    worst = float(max(drops.max(), 0.0))
    message = (
        f"{violating} of {len(rows)} rows get a lower score with more {feature} "
        f"(largest drop {worst:.4f})"
        if violating
        else f"score non-decreasing in {feature} over {len(grid)} values for {len(rows)} rows"
    )
    return GateResult(
        name="direction",
        passed=violating == 0,
        measured={
            "violating_rows": float(violating),
            "worst_drop": worst,
            "rows": float(len(rows)),
        },
        threshold={"atol": atol},
        message=message,
        details={"feature": feature, "grid": grid.tolist()},
    )


# ----------------------------------------------------------------------- d) operational


def pyfunc_frame(loaded: Any, frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` cut and cast to a loaded pyfunc model's input signature (doubles and strings)."""
    schema = loaded.metadata.get_input_schema()
    if schema is None:
        raise ValueError("the logged model has no input signature")
    out = pd.DataFrame(index=frame.index)
    for spec in schema.inputs:
        if spec.name not in frame.columns:
            raise ValueError(f"feature frame lacks signature column {spec.name!r}")
        kind = str(spec.type)
        out[spec.name] = (
            frame[spec.name].astype("string").fillna("__missing__").astype(object)
            if "string" in kind
            else frame[spec.name].astype("float64")
        )
    return out


def probabilities(output: Any) -> np.ndarray:
    """The P(delayed) column of a pyfunc prediction (our models return `delay_probability`)."""
    if isinstance(output, pd.DataFrame):
        column = "delay_probability" if "delay_probability" in output else output.columns[-1]
        return output[column].to_numpy(dtype=np.float64)
    array = np.asarray(output, dtype=np.float64)
    return array[:, -1] if array.ndim == 2 else array


def operational_gate(
    model_uri: str,
    frame: pd.DataFrame,
    *,
    expected: Callable[[pd.DataFrame], np.ndarray] | None = None,
    tracking_uri: str | None = None,
    config: GateConfig = DEFAULT_GATES,
) -> GateResult:
    """Gate d): load through the registry, score a batch, meet the single-row latency budget.

    The budget is on the p99 over `latency_rows` rows of a single-row prediction through the
    pyfunc (schema check included), the path an online request takes. 100 ms by default: the
    models here take 8-16 ms median and 15-40 ms p99 on a busy 2-core machine, so the budget
    catches a model an order of magnitude slower (thousands of trees, a per-row Python loop)
    without failing on scheduler noise; a service with a tighter SLO sets its own. Each row
    is timed `latency_repeats` times and its fastest time kept: on a shared 2-core CI machine
    one descheduled call would otherwise decide the p99; a model whose every call is slow
    still fails.
    """
    if tracking_uri is not None:
        # A `models:/` URI resolves against the process-wide store; without this, MLflow 3
        # would look in (and create) ./mlflow.db of the working directory.
        with tracking(tracking_uri):
            return operational_gate(model_uri, frame, expected=expected, config=config)
    import mlflow

    measured: dict[str, float] = {}
    threshold = {"p99_ms": config.latency_budget_ms, "batch_rows": float(config.batch_rows)}
    try:
        started = time.perf_counter()
        loaded = mlflow.pyfunc.load_model(model_uri)
        measured["load_s"] = time.perf_counter() - started
        batch = frame.iloc[: config.batch_rows]
        inputs = pyfunc_frame(loaded, batch)
        started = time.perf_counter()
        scores = probabilities(loaded.predict(inputs))
        measured["batch_ms"] = 1000 * (time.perf_counter() - started)
    except Exception as error:  # any failure to load or score is this gate's failure
        return GateResult(
            "operational",
            False,
            measured,
            threshold,
            f"{model_uri}: {type(error).__name__}: {error}",
        )
    problems = []
    if scores.shape != (len(batch),):
        problems.append(f"{scores.shape} scores for {len(batch)} rows")
    elif not np.all(np.isfinite(scores) & (scores >= 0) & (scores <= 1)):
        problems.append("scores outside [0, 1]")
    elif expected is not None:
        measured["max_abs_diff_vs_memory"] = float(np.max(np.abs(scores - expected(batch))))
        if measured["max_abs_diff_vs_memory"] > 1e-9:
            problems.append("registry model scores differ from the trained model's")
    timings = []
    for i in range(min(config.latency_rows, len(inputs))):
        row = inputs.iloc[i : i + 1]
        best = np.inf
        for _ in range(config.latency_repeats):
            started = time.perf_counter()
            loaded.predict(row)
            best = min(best, time.perf_counter() - started)
        timings.append(1000 * best)
    measured["p50_ms"] = float(np.percentile(timings, 50))
    measured["p99_ms"] = float(np.percentile(timings, 99))
    if measured["p99_ms"] > config.latency_budget_ms:
        problems.append(
            f"single-row p99 {measured['p99_ms']:.1f} ms > budget {config.latency_budget_ms} ms"
        )
    message = (
        "; ".join(problems)
        if problems
        else f"loads from {model_uri}, scores {len(batch)} rows in {measured['batch_ms']:.0f} ms,"
        f" single-row p99 {measured['p99_ms']:.1f} ms <= {config.latency_budget_ms} ms"
    )
    return GateResult("operational", not problems, measured, threshold, message)


# ----------------------------------------------------------------------- recording


def record_gates(client: Any, run_id: str, results: Sequence[GateResult]) -> None:
    """Write the verdicts into the candidate's MLflow run: metrics, tags and `gates.json`."""
    for result in results:
        client.set_tag(run_id, f"gate.{result.name}", "passed" if result.passed else "failed")
        client.log_metric(run_id, f"gate.{result.name}.passed", float(result.passed))
        for key, value in result.measured.items():
            if np.isfinite(value):
                client.log_metric(run_id, f"gate.{result.name}.{key}", float(value))
    client.set_tag(run_id, "gates", "passed" if all(r.passed for r in results) else "failed")
    client.log_dict(run_id, {"gates": [r.to_dict() for r in results]}, "gates.json")


def jsonable(value: Any) -> Any:
    """`value` with numpy scalars/arrays, timestamps and non-finite floats made JSON-safe."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)
