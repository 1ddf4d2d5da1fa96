"""The grader's messages tell a learner what was compared, where, and what to do next."""

import pytest
from support import check_rows, start_workspace

from learn.grader.report import CheckpointResult
from learn.grader.runner import _explain_requirements
from learn.manifest import load_manifest

LATENCY = "phases/phase0/sysdesign/latency.py"


def test_a_wrong_value_names_the_test_and_the_line_that_compared(tmp_path, reference_workspace):
    with open(reference_workspace / LATENCY, "a") as handle:
        handle.write("\ndef percentile(samples, q):\n    return 0.0\n")
    row = check_rows("phase0", reference_workspace, tmp_path / "r.json", "-k", "0.1")["0.1"]
    assert row["status"] == "failed"
    assert row["message"].startswith("percentile small examples by hand: "), row["message"]
    assert "(checked at checkpoints/phase0/test_latency.py:" in row["message"], row["message"]


def test_a_timeout_states_the_limit_and_the_option(tmp_path, reference_workspace):
    with open(reference_workspace / LATENCY, "a") as handle:
        handle.write("\ndef percentile(samples, q):\n    while True:\n        pass\n")
    row = check_rows(
        "phase0", reference_workspace, tmp_path / "r.json", "-k", "0.1", "--timeout", "2"
    )["0.1"]
    assert row["status"] == "timeout"
    assert "2 s time limit" in row["message"] and "--timeout" in row["message"], row["message"]


def test_a_gap_in_an_earlier_checkpoint_says_needs_it_first(tmp_path):
    """1.4 written but 1.3 not: 1.4's tests stop in 1.3's code, and the row says so."""
    from learn.scaffold import write_scaffold

    ws = tmp_path / "ws"
    write_scaffold(load_manifest().phase("phase1"), ws, select=lambda r: r.checkpoint == "1.3")
    row = check_rows("phase1", ws, tmp_path / "r.json", "-k", "1.4")["1.4"]
    assert row["requires"] == ["1.3"]
    assert row["message"].startswith("needs 1.3 first: not implemented yet: 1.3:"), row["message"]


def _row(cid, status, requires=(), message="boom"):
    return CheckpointResult(
        cid,
        cid,
        10,
        10 if status == "passed" else 0,
        status,
        message,
        "",
        "",
        0.0,
        [],
        list(requires),
    )


def test_rows_failing_after_a_required_failure_are_led_by_it():
    rows = [_row("1.3", "failed"), _row("1.4", "error", ["1.3"]), _row("1.5", "failed", ["1.4"])]
    _explain_requirements(rows)
    assert rows[1].message == "needs 1.3 first: 1.3 (failed). boom"
    assert rows[2].message.startswith("needs 1.4 first")
    rows = [_row("1.3", "passed"), _row("1.4", "failed", ["1.3"])]
    _explain_requirements(rows)
    assert rows[1].message == "boom", "a passing requirement is not blamed"


@pytest.mark.parametrize(
    ("requires", "error"),
    [(["9.9"], "unknown checkpoint"), (["0.2"], "does not come before it")],
)
def test_the_manifest_refuses_bad_requires(requires, error):
    import copy

    import yaml

    from learn.manifest import MANIFEST_PATH, ManifestError, parse_manifest

    data = copy.deepcopy(yaml.safe_load(MANIFEST_PATH.read_text()))
    data["phases"][0]["checkpoints"][0]["requires"] = requires
    with pytest.raises(ManifestError, match=error):
        parse_manifest(data)


def test_list_and_hint_show_what_a_checkpoint_needs():
    from typer.testing import CliRunner

    from learn.cli import app

    needy = next(c for c in load_manifest().all_checkpoints() if c.requires)
    listing = CliRunner().invoke(app, ["list", needy.phase])
    assert "Needs" in listing.output
    hint = " ".join(CliRunner().invoke(app, ["hint", needy.id]).output.split())
    assert f"Needs {', '.join(needy.requires)} first" in hint


@pytest.mark.slow
def test_a_service_checkpoint_reports_the_gap_or_the_learners_exception(tmp_path):
    """1.10 on a scaffold: "not implemented yet: 1.10" at once; a crash: the exception and line."""
    ws = start_workspace("phase1", tmp_path / "ws")
    rows = check_rows("phase1", ws, tmp_path / "r.json", "-k", "1.10")
    assert rows["1.10"]["message"].startswith("not implemented yet: 1.10:"), rows["1.10"]
    routes = ws / "projects/tabular_service/src/tabular_service/service/routes.py"
    text = routes.read_text()
    placeholder = next(line for line in text.splitlines() if '"1.10:' in line)
    indent = placeholder[: len(placeholder) - len(placeholder.lstrip())]
    routes.write_text(text.replace(placeholder, f"{indent}raise KeyError('boom from the learner')"))
    row = check_rows("phase1", ws, tmp_path / "r.json", "-k", "1.10")["1.10"]
    assert "answered 500: your service raised KeyError: 'boom from the learner'" in row["message"]
    assert "(at projects/tabular_service/src/tabular_service/service/routes.py:" in row["message"]
