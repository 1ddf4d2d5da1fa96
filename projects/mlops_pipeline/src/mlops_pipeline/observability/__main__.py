"""`python -m mlops_pipeline.observability` (`make rules`): write the rules and the dashboard.

    python -m mlops_pipeline.observability [--deploy deploy] [--runbook-base-url URL] [--check]

Writes <deploy>/prometheus/recording.yml and alerts.yml, their promtool unit tests
(<deploy>/prometheus/tests/*.yml) and <deploy>/grafana/flight-delay.json.
With --check nothing is written: exit 1 and name the files that differ from the generator (CI).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mlops_pipeline.observability.dashboards import FILE_NAME, render_dashboard
from mlops_pipeline.observability.rule_tests import render_test_files
from mlops_pipeline.observability.rules import RUNBOOK_BASE_URL, render_rule_files


def generated_files(deploy: Path, runbook_base_url: str = RUNBOOK_BASE_URL) -> dict[Path, str]:
    """{path: text} of every generated observability file under `deploy`."""
    files = {
        deploy / "prometheus" / name: text
        for name, text in render_rule_files(runbook_base_url).items()
    }
    files |= {
        deploy / "prometheus" / "tests" / name: text
        for name, text in render_test_files(runbook_base_url).items()
    }
    files[deploy / "grafana" / FILE_NAME] = render_dashboard()
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlops_pipeline.observability")
    parser.add_argument("--deploy", type=Path, default=Path("deploy"), help="deploy/ folder")
    parser.add_argument("--runbook-base-url", default=RUNBOOK_BASE_URL)
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 on drift")
    args = parser.parse_args(argv)
    files = generated_files(args.deploy, args.runbook_base_url)
    if args.check:
        stale = [p for p, text in files.items() if not p.is_file() or p.read_text() != text]
        for path in stale:
            print(f"{path}: differs from the generator; run `make rules`", file=sys.stderr)
        return 1 if stale else 0
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
