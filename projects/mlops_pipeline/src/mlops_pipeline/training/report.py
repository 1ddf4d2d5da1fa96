"""Write a promotion report where the pipeline keeps its run records (`Paths.runs`)."""

from __future__ import annotations

import json
from pathlib import Path

from mlops_pipeline.training.registry import PromotionReport


def write_report(report: PromotionReport, runs_dir: Path) -> Path:
    """`<runs_dir>/promotion-v<version>-<UTC time>.json`; returns the path written."""
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    stamp = report.created_at.replace(":", "").replace("+0000", "Z").replace("+00:00", "Z")
    path = runs_dir / f"promotion-v{report.version}-{stamp}.json"
    path.write_text(json.dumps(report.to_dict(), indent=2, allow_nan=False) + "\n")
    return path
