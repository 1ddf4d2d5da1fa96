"""`make bench`: each measurement beside its peer, in one run, as JSON.

- point-in-time training sets: this package's `asof_join` vs Feast's `get_historical_features` vs
  pandas `merge_asof` (identical rows, seconds each; Feast on one month only, see the README);
- online lookups of one flight's features: Feast on SQLite vs Feast on PostgreSQL (p50/p99);
- CDC: p50/p99 lag from commit to durable landing at a paced 1,000 changes/s, and the drain rate;
- the pipeline: one month from an empty home to a registered challenger, then one incremental day.

Usage: python benchmarks/bench.py --out bench-results/mlops_pipeline.json [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench-results/mlops_pipeline.json"))
    parser.add_argument("--quick", action="store_true", help="smaller slices (a smoke run)")
    args = parser.parse_args()
    report: dict = {
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_before": os.getloadavg(),
            "python": platform.python_version(),
        },
        "quick": args.quick,
    }
    with tempfile.TemporaryDirectory(prefix="mlops-bench-") as scratch:
        root = Path(scratch)
        os.environ.setdefault("PREFECT_HOME", str(root / "prefect"))
        os.environ.setdefault("PREFECT_LOCAL_STORAGE_PATH", str(root / "prefect" / "results"))
        report["point_in_time"] = point_in_time(args.quick)
        report["cdc"] = cdc(root / "cdc", args.quick)
        report["pipeline"] = pipeline(root / "pipeline", args.quick)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(json.dumps(report, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
