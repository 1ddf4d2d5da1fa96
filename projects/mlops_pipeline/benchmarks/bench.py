"""`make bench`: each measurement beside its peer, in one run, as JSON.

- point-in-time training sets: this package's `asof_join` vs Feast's `get_historical_features` vs
  pandas `merge_asof` (identical rows, seconds each; Feast on one month only, see the README);
- online lookups of one flight's features: Feast on SQLite vs Feast on PostgreSQL (p50/p99);
- CDC: p50/p99 lag from commit to durable landing at a paced 1,000 changes/s, and the drain rate;
- the pipeline: one month from an empty home to a registered challenger, then one incremental day;
- serving: the prediction service's requests/s within p99 <= 25 ms (micro-batching on and off)
  beside `mlflow models serve` (features inline) and `feast serve` (lookup only), with wrk;
- autoscaling: the busiest 2013 day replayed through the deployed HPA with the measured capacity;
- canary: a challenger with a feature bug rolled back (time, share answered), a good one promoted;
- monitoring: the seasonal drift's first month and the false-alarm rate, ours beside Evidently's.

Usage: python benchmarks/bench.py --out bench-results/mlops_pipeline.json [--quick] [--only A,B]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from mlops_pipeline import offline

offline.apply()


def _step(name: str) -> None:
    print(f"[bench] {name} ...", file=sys.stderr, flush=True)


def point_in_time(quick: bool) -> dict:
    from mlops_pipeline.features.bench import compare_point_in_time

    _step("point-in-time, one month, three ways (Feast included)")
    month = compare_point_in_time("2013-03-01", "2013-04-01", feast=not quick)
    if quick:
        return {"month": month}
    _step("point-in-time, the whole year (as-of join vs merge_asof)")
    year = compare_point_in_time("2013-01-01", "2014-01-01", feast=False, online=False)
    return {"month": month, "year": year}


def cdc(home: Path, quick: bool) -> dict:
    from mlops_pipeline.cdc.bench import measure_drain, measure_lag, measure_recovery

    _step("CDC lag at 1,000 changes/s")
    lag = measure_lag(home, rate=1000, seconds=10 if quick else 25)
    _step("CDC drain of a backlog")
    drain = measure_drain(home, changes=20_000 if quick else 50_000)
    _step("CDC recovery: the consumer killed 5 times while the source is written")
    recovery = measure_recovery(home, kills=5, changes=5_000 if quick else 10_000)
    return {"lag": lag, "drain": drain, "recovery": recovery, "target_p99_s": 1.0}


def pipeline(home: Path, quick: bool) -> dict:
    from mlops_pipeline.pipeline.flow import pipeline as flow

    end = "2013-01-15" if quick else "2013-02-01"
    _step(f"pipeline: 2013-01-01..{end} from an empty home to a registered model")
    started = time.perf_counter()
    month = flow(str(home), "2013-01-01", end)
    month_s = time.perf_counter() - started
    _step("pipeline: one incremental day")
    nxt = "2013-01-16" if quick else "2013-02-02"
    started = time.perf_counter()
    day = flow(str(home), end, nxt, train_start="2013-01-01")
    day_s = time.perf_counter() - started
    return {
        "first_run": {"interval": ["2013-01-01", end], "seconds": round(month_s, 1),
                      "target_s": 300, "promotion": month["promotion"]["promoted"]},
        "daily_run": {"interval": [end, nxt], "seconds": round(day_s, 1), "target_s": 60,
                      "training_rows": day["training_set"]["rows"]},
    }  # fmt: skip


def _latest_day(home: Path) -> str:
    """The last day with feature tables in the home: its flights find fresh features online
    with the clock frozen at the end of that day."""
    days = sorted(p.name.removeprefix("date=") for p in (home / "features").glob("*/date=*"))
    if not days:
        raise FileNotFoundError(f"no feature tables under {home}/features")
    return days[-1]


def serving(home: Path, quick: bool) -> dict:
    import pandas as pd

    from mlops_pipeline.paths import Paths
    from mlops_pipeline.rollout.traffic import flight_requests
    from mlops_pipeline.serving.bench import measure_serving

    day = _latest_day(home)
    as_of = (pd.Timestamp(day, tz="UTC") + pd.Timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    bodies = flight_requests(day)[:400]
    _step(f"serving: {len(bodies)} flights of {day}, as of {as_of}; ours vs mlflow vs feast")
    return measure_serving(
        Paths.at(home), as_of, bodies, home / "bench-serving", seconds=4 if quick else 8
    )


def canary(home: Path, quick: bool) -> dict:
    from mlops_pipeline.rollout.bench import measure_canary

    _step("canary: a challenger with a feature bug (rolled back), then a good one (promoted)")
    return measure_canary(home, good="copy", state_dir=home / "bench-canary")


def autoscaling(load_trace: dict) -> dict:
    import subprocess

    import yaml

    from mlops_pipeline.autoscaling import hpa, replay, trace

    _step("autoscaling: the busiest 2013 day through the deployed HPA, capacity measured")
    capacity = trace.MeasuredTrace.from_dict(load_trace, source="serving.load_trace").capacity()
    overlay = Path(__file__).resolve().parents[1] / "deploy" / "k8s" / "overlays" / "prod"
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(overlay)], capture_output=True, text=True, check=True
    ).stdout
    manifest = next(
        doc
        for doc in yaml.safe_load_all(rendered)
        if doc and doc["kind"] == "HorizontalPodAutoscaler"
    )
    day = trace.busiest_day()
    load = trace.schedule_trace(*trace.day_bounds(day))
    policies = replay.policy_comparison(load, capacity, base=hpa.HPASpec.from_manifest(manifest))
    return {
        "day": str(day.date()),
        "hpa": "deploy/k8s/overlays/prod (kubectl kustomize)",
        "capacity": dataclasses.asdict(capacity),
        "capacity_rps_per_pod": round(capacity.capacity_rps, 1),
        "policies": json.loads(policies.to_json(orient="index")),
    }


def monitoring(home: Path, quick: bool) -> dict:
    from mlops_pipeline.monitoring.bench import measure_drift

    _step("drift monitors: 2013 month by month; false alarms on same-month day splits")
    return measure_drift(
        home / "drift",
        n_splits=5 if quick else 20,
        reports=not quick,
        progress=lambda m: print(f"[bench]   {m}", file=sys.stderr, flush=True),
    )


SECTIONS = ("point_in_time", "cdc", "pipeline", "serving", "autoscaling", "canary", "monitoring")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench-results/mlops_pipeline.json"))
    parser.add_argument("--quick", action="store_true", help="smaller slices (a smoke run)")
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"comma-separated sections to run (default: all of {', '.join(SECTIONS)}); "
        "serving, autoscaling and canary need the pipeline's home and run it first",
    )
    args = parser.parse_args()
    only = {name.strip() for name in args.only.split(",") if name.strip()}
    unknown = only - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    if only & {"serving", "autoscaling", "canary"}:
        only |= {"pipeline", "serving"} if "autoscaling" in only else {"pipeline"}
    report: dict = {
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_before": os.getloadavg(),
            "python": platform.python_version(),
        },
        "quick": args.quick,
        "sections": [name for name in SECTIONS if name in only],
    }
    failed: list[str] = []

    def run(name: str, section: Callable[[], dict], needs: tuple[str, ...] = ()) -> None:
        """One section; a failure is recorded in the report and the others still run (those
        that need its output are skipped with the reason), so a long run never loses what it
        measured before the failure."""
        if name not in only:
            return
        missing = [n for n in needs if "error" in report.get(n, {"error": "not run"})]
        if missing:
            report[name] = {"error": f"skipped: needs {', '.join(missing)}, which did not finish"}
            failed.append(name)
            return
        try:
            report[name] = section()
        except Exception as error:  # recorded, printed, and reflected in the exit code
            traceback.print_exc()
            report[name] = {"error": f"{type(error).__name__}: {error}"}
            failed.append(name)

    with tempfile.TemporaryDirectory(prefix="mlops-bench-") as scratch:
        root = Path(scratch)
        os.environ.setdefault("PREFECT_HOME", str(root / "prefect"))
        os.environ.setdefault("PREFECT_LOCAL_STORAGE_PATH", str(root / "prefect" / "results"))
        home = root / "pipeline"
        run("point_in_time", lambda: point_in_time(args.quick))
        run("cdc", lambda: cdc(root / "cdc", args.quick))
        run("pipeline", lambda: pipeline(home, args.quick))
        run("serving", lambda: serving(home, args.quick), needs=("pipeline",))
        run(
            "autoscaling",
            lambda: autoscaling(report["serving"]["load_trace"]),
            needs=("serving",),
        )
        run("canary", lambda: canary(home, args.quick), needs=("pipeline",))
        run("monitoring", lambda: monitoring(root, args.quick))
    report["failed"] = failed
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(json.dumps(report, indent=2, default=str))
    if failed:
        print(f"[bench] failed: {', '.join(failed)} (see 'error' in {args.out})", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
