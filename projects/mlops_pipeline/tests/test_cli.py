"""The `mlops` command line: help, contracts, and bad input refused before anything starts."""

from __future__ import annotations

import time
from pathlib import Path

import yaml
from typer.testing import CliRunner

from mlops_pipeline.cli import app

PROJECT = Path(__file__).resolve().parents[1]


def test_help_lists_the_commands():
    """`mlops --help` names every command."""
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("run", "backfill", "contracts", "serve", "canary", "monitor"):
        assert command in result.output


def test_contracts_show_prints_each_contract_with_units():
    """`mlops contracts show` prints every table's contract, with its version and units."""
    result = CliRunner().invoke(app, ["contracts", "show"])
    assert result.exit_code == 0, result.output
    for table in ("flights", "weather", "planes"):
        assert table in result.output
    assert "minutes" in result.output


def test_a_bad_interval_fails_fast_with_one_line(tmp_path):
    """A start after the end, or a time that is not midnight, exits 1 naming the problem, in
    well under the seconds Prefect's API would take to start."""
    runner = CliRunner()
    started = time.perf_counter()
    reversed_ = runner.invoke(
        app, ["run", "--start", "2013-02-01", "--end", "2013-01-01", "--home", str(tmp_path)]
    )
    assert reversed_.exit_code == 1
    assert "empty interval" in reversed_.output
    midday = runner.invoke(app, ["backfill", "2013-01-01T12:00", "2013-01-03"])
    assert midday.exit_code == 1
    assert "not midnight" in midday.output
    assert time.perf_counter() - started < 5
    assert not (tmp_path / "pgdata").exists()


def test_contracts_check_on_an_empty_home_says_so(tmp_path):
    """Checking a home with no landing zone reports that instead of passing silently."""
    result = CliRunner().invoke(app, ["contracts", "check", "--home", str(tmp_path)])
    assert result.exit_code == 0
    assert "no landing partitions" in result.output


def test_the_ci_workflow_runs_make_targets_that_exist():
    """The GitHub Actions workflow runs on push, and every `make` target it calls exists."""
    workflow = yaml.safe_load((PROJECT / ".github" / "workflows" / "ci.yml").read_text())
    triggers = workflow.get("on", workflow.get(True))
    assert "push" in triggers
    makefile = (PROJECT / "Makefile").read_text()
    steps = [s for job in workflow["jobs"].values() for s in job["steps"] if "run" in s]
    called = [s["run"].split()[1] for s in steps if s["run"].startswith("make ")]
    assert {"install", "lint", "test"} <= set(called)
    for target in called:
        assert f"\n{target}:" in makefile, f"make {target} is not defined in the Makefile"


def test_canary_on_an_empty_home_fails_before_starting_anything(tmp_path):
    """No feature tables to replay: one error line, exit 1, no process started."""
    result = CliRunner().invoke(app, ["canary", "--home", str(tmp_path)])
    assert result.exit_code == 1
    assert "no feature tables" in result.output
    assert not (tmp_path / "runs" / "canary").exists()


def test_monitor_refuses_a_reference_month_that_is_not_a_month(tmp_path):
    """A typo in --reference is a clear error, not a traceback."""
    result = CliRunner().invoke(
        app, ["monitor", "--home", str(tmp_path), "--reference", "2013-01", "someday"]
    )
    assert result.exit_code != 0
    assert "someday" in result.output or "month" in result.output.lower()
