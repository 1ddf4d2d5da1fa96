"""Shared by test_rules.py and test_dashboard.py: the design's metric names, and promtool.

DESIGN_METRICS is copied from the design's service contract on purpose, not imported from
`mlops_pipeline.serving.observability`: the rules and the dashboard are checked against what
was agreed, and test_rules checks separately that the service exposes exactly these names.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

PROJECT = Path(__file__).resolve().parents[1]
DEPLOY = PROJECT / "deploy"
RUNBOOKS = PROJECT / "docs" / "runbooks"

DESIGN_COUNTERS = ("mlops_http_requests", "mlops_features_missing", "mlops_predictions")
DESIGN_HISTOGRAMS = (
    "mlops_http_request_duration_seconds",
    "mlops_prediction_score",
    "mlops_feature_staleness_seconds",
    "mlops_feature_lookup_duration_seconds",
    "mlops_model_duration_seconds",
)
DESIGN_GAUGES = ("mlops_model_info",)
DESIGN_METRICS = frozenset(
    [f"{name}_total" for name in DESIGN_COUNTERS]
    + [f"{name}_{part}" for name in DESIGN_HISTOGRAMS for part in ("bucket", "sum", "count")]
    + list(DESIGN_GAUGES)
)
"""Every series name the service exposes per the design (counters with `_total`, histograms
as their `_bucket`/`_sum`/`_count` series)."""
PROMETHEUS_METRICS = frozenset({"up"})
"""Series Prometheus itself writes for each target."""


def promtool() -> str:
    """Path of promtool; fails (never skips) with how to install it."""
    path = shutil.which("promtool")
    if path is None:
        pytest.fail(
            "promtool not found on PATH: the rule tests need it (Debian: apt-get install "
            "prometheus, which ships promtool 2.42)"
        )
    return path


def run_promtool(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [promtool(), *map(str, args)], capture_output=True, text=True, timeout=120, cwd=cwd
    )


def check_exprs_parse(exprs: dict[str, str], tmp_path: Path) -> None:
    """Every expression as a throwaway recording rule, through `promtool check rules`."""
    rules = [{"record": f"check:expr_{i}", "expr": e} for i, e in enumerate(exprs.values())]
    path = tmp_path / "exprs.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "exprs", "rules": rules}]}))
    result = run_promtool("check", "rules", path)
    assert result.returncode == 0, f"{list(exprs)}\n{result.stdout}\n{result.stderr}"
