"""The learner's state file: atomic, versioned, and never lost when corrupt."""

import copy
import json

import yaml

from learn.grader.report import CheckpointResult, Report
from learn.manifest import MANIFEST_PATH, load_manifest, parse_manifest
from learn.progress import next_step, record_report, summarise
from learn.state import CheckpointRecord, State, load_state, save_state, state_path


def test_round_trip(tmp_path):
    state = State()
    state.results["0.1"] = CheckpointRecord("passed", 10, 10, "2026-01-01T00:00:00Z", 10)
    save_state(tmp_path, state)
    again = load_state(tmp_path)
    assert again.results == state.results
    assert json.loads(state_path(tmp_path).read_text())["schema_version"] == 1
    assert not list(state_path(tmp_path).parent.glob(".state.json.*")), "temp file left behind"


def test_corrupt_state_is_set_aside_not_deleted(tmp_path):
    path = state_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text('{"schema_version": 1, "results": {"0.1": ')  # torn write
    state = load_state(tmp_path)
    assert state.results == {} and state.recovered_from
    [aside] = path.parent.glob("state.json.corrupt-*")
    assert aside.read_text().startswith('{"schema_version": 1')


def test_state_from_a_newer_learn_is_set_aside(tmp_path):
    path = state_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"schema_version": 2}))
    assert "newer" in load_state(tmp_path).recovered_from


def _report(rows):
    return Report(
        phase="phase0",
        phase_title="Setup",
        target="/ws",
        target_kind="workspace",
        started_at="2026-01-01T00:00:00Z",
        duration=1.0,
        learn_version="0",
        python="3.11",
        checkpoints=[
            CheckpointResult(
                cid, cid, pts, pts if status == "passed" else 0, status, "", "", "b", 0.1
            )
            for cid, pts, status in rows
        ],
    )


def test_record_report_keeps_best_score_and_history(tmp_path):
    record_report(tmp_path, _report([("0.1", 10, "passed")]))
    state = record_report(tmp_path, _report([("0.1", 10, "failed")]))
    assert state.results["0.1"].status == "failed"
    assert state.results["0.1"].best == 10
    assert len(load_state(tmp_path).history) == 2


def test_progress_follows_renames_and_keeps_retired_results():
    raw = yaml.safe_load(MANIFEST_PATH.read_text())
    data = copy.deepcopy(raw)
    first = data["phases"][0]["checkpoints"][0]
    first["renamed_from"] = ["0.0"]
    manifest = parse_manifest(data)
    state = State()
    state.phases["phase0"] = None  # started
    state.results["0.0"] = CheckpointRecord("passed", first["points"], first["points"], "t1")
    state.results["8.8"] = CheckpointRecord("passed", 5, 5, "t1")
    rows, retired = summarise(state, manifest)
    assert rows[0].passed == 1 and rows[0].earned == first["points"]
    assert retired == ["8.8"]
    assert next_step(rows).args == "check phase0 -k 0.2"


def test_next_step_for_a_new_learner_is_start():
    rows, _ = summarise(State(), load_manifest())
    assert next_step(rows).args == "start phase0"
