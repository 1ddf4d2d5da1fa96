"""Benchmarks for the workbook's own tooling, as JSON, each beside a peer in the same run.

- `learn --help` start-up against `pytest --help` (target: under 1 s);
- `learn check phase0 --reference` against plain pytest over the same checkpoint tests, so the
  ratio is the grader's overhead (subprocess isolation, event stream, report) (target: 20 s).

Usage: python benchmarks/workbook_bench.py [--out FILE] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TARGETS = {"learn_help_s": 1.0, "check_phase0_reference_s": 20.0}


def timed(cmd: list[str], repeat: int, cwd: Path = ROOT, ok_codes=(0,)) -> dict:
    """Median and spread of `repeat` wall-clock runs (after one warm-up run)."""
    runs = []
    for i in range(repeat + 1):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
        elapsed = time.perf_counter() - t0
        if proc.returncode not in ok_codes:
            raise SystemExit(
                f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}"
            )
        if i:  # the first run warms the page cache and .pyc files
            runs.append(elapsed)
    return {
        "command": " ".join(cmd),
        "median_s": round(statistics.median(runs), 4),
        "min_s": round(min(runs), 4),
        "max_s": round(max(runs), 4),
        "runs": len(runs),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "workbook.json")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    learn = str(BIN / "learn")
    results: dict = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "targets": TARGETS,
    }
    print("timing learn --help ...", flush=True)
    help_ = timed([learn, "--help"], args.repeat)
    peer_help = timed([sys.executable, "-m", "pytest", "--help"], args.repeat)
    results["learn_help"] = {
        **help_,
        "peer": peer_help,
        "ratio_to_peer": round(help_["median_s"] / peer_help["median_s"], 3),
    }

    print("timing learn check phase0 --reference ...", flush=True)
    repeat = max(1, args.repeat // 2)
    check = timed([learn, "check", "phase0", "--reference"], repeat)
    with tempfile.TemporaryDirectory() as tmp:
        peer_check = timed(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                str(ROOT / "checkpoints" / "phase0"),
            ],
            repeat,
            cwd=Path(tmp),
        )
    results["check_phase0_reference"] = {
        **check,
        "peer": peer_check,
        "ratio_to_peer": round(check["median_s"] / peer_check["median_s"], 3),
    }
    results["met"] = {
        "learn_help_s": help_["median_s"] < TARGETS["learn_help_s"],
        "check_phase0_reference_s": check["median_s"] < TARGETS["check_phase0_reference_s"],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0 if all(results["met"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
