"""Commands find the workspace the learner stands in, as rustlings and exercism do."""

import json
import subprocess

import pytest
from support import learn_command

from learn import REPO_ROOT
from learn.state import State, save_state
from learn.workspace import WORKSPACE_ENV, command_for, enclosing_workspace, resolve_workspace


@pytest.fixture
def no_env(monkeypatch):
    monkeypatch.delenv(WORKSPACE_ENV, raising=False)


def _workspace(path):
    save_state(path, State())
    return path.resolve()


def test_resolution_order(tmp_path, monkeypatch, no_env):
    ws = _workspace(tmp_path / "ws")
    deep = ws / "phases" / "phase0" / "sysdesign"
    deep.mkdir(parents=True)
    assert enclosing_workspace(deep) == ws
    assert resolve_workspace(None, deep) == ws  # found upwards
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert resolve_workspace(None, elsewhere) == (REPO_ROOT / "workspace").resolve()
    local = _workspace(elsewhere / "workspace")
    assert resolve_workspace(None, elsewhere) == local  # ./workspace
    monkeypatch.setenv(WORKSPACE_ENV, str(ws))
    assert resolve_workspace(None, elsewhere) == ws  # the environment beats the search
    assert resolve_workspace(tmp_path / "x", elsewhere) == (tmp_path / "x").resolve()


def test_the_workbook_itself_is_never_a_workspace(no_env):
    assert enclosing_workspace(REPO_ROOT / "learn") is None


def test_command_for_adds_the_flag_only_when_needed(tmp_path, no_env):
    ws = _workspace(tmp_path / "ws")
    assert command_for("check phase0", ws, cwd=ws / ".learn") == "learn check phase0"
    assert command_for("check phase0", ws, cwd=tmp_path) == "learn check phase0 --workspace ws"
    other = tmp_path / "other"
    other.mkdir()
    assert command_for("check phase0", ws, cwd=other).endswith(f"--workspace {ws}")


def test_check_from_inside_a_workspace_grades_that_workspace(tmp_path, no_env):
    """`cd ws/phases/phase0 && learn check phase0` grades ws (it used to say 'no phases/')."""
    ws = tmp_path / "ws"
    start = subprocess.run(
        learn_command("start", "phase0", "--workspace", str(ws)),
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert start.returncode == 0, start.stdout + start.stderr
    assert "learn check phase0 --workspace ws" in " ".join(start.stdout.split())
    report = tmp_path / "report.json"
    inside = ws / "phases" / "phase0"
    proc = subprocess.run(
        learn_command("check", "phase0", "-k", "0.1", "--json", str(report)),
        capture_output=True,
        text=True,
        cwd=inside,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr  # the scaffold fails 0.1, as it should
    data = json.loads(report.read_text())
    assert data["target"] == str(ws.resolve()) and data["target_kind"] == "workspace"
    assert "not implemented yet: 0.1" in data["checkpoints"][0]["message"]
    progress = subprocess.run(learn_command("progress"), capture_output=True, text=True, cwd=inside)
    assert "Next: learn check phase0 -k 0.1" in " ".join(progress.stdout.split())
