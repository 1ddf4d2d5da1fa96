"""`learn progress`: latest and best per checkpoint, and the learner's real next step."""

from typer.testing import CliRunner

from learn.cli import app
from learn.manifest import load_manifest
from learn.progress import next_step, summarise
from learn.state import CheckpointRecord, PhaseRecord, State, save_state

MANIFEST = load_manifest()


def _phase1_halfway() -> State:
    """Phase 1 started (phase 0 never), 1.1-1.3 pass, 1.4 passed once and fails now."""
    state = State()
    state.phases["phase1"] = PhaseRecord(started_at="2026-11-01T10:00:00Z")
    for cid in ("1.1", "1.2", "1.3"):
        points = MANIFEST.checkpoint(cid).points
        checked = "2026-11-02T10:00:00Z"
        state.results[cid] = CheckpointRecord("passed", points, points, checked, points)
    state.results["1.4"] = CheckpointRecord("failed", 0, 10, "2026-11-03T10:00:00Z", best=10)
    return state


def test_next_step_is_the_first_failing_checkpoint_of_the_phase_in_progress():
    rows, _ = summarise(_phase1_halfway(), MANIFEST)
    step = next_step(rows)
    assert step.args == "check phase1 -k 1.4"
    assert "learn hint 1.4" in step.why


def test_latest_and_best_are_both_kept():
    rows, _ = summarise(_phase1_halfway(), MANIFEST)
    phase1 = next(r for r in rows if r.phase_id == "phase1")
    leaf = next(c for c in phase1.checkpoints if c.id == "1.4")
    assert (leaf.status, leaf.earned, leaf.best) == ("failed", 0, 10)
    assert phase1.best == phase1.earned + 10


def test_a_finished_phase_leads_to_the_next_one_not_a_skipped_earlier_one():
    state = State()
    state.phases["phase1"] = PhaseRecord(started_at="2026-11-01T10:00:00Z")
    for cp in MANIFEST.phase("phase1").checkpoints:
        state.results[cp.id] = CheckpointRecord("passed", cp.points, cp.points, "t", cp.points)
    rows, _ = summarise(state, MANIFEST)
    step = next_step(rows)
    later = [p for p in MANIFEST.phases if p.number > 1 and p.checkpoints]
    expected = f"start {later[0].id}" if later else "start phase0"
    assert step.args == expected
    if not later:
        assert "skipped" in step.why


def test_a_started_phase_never_graded_says_check_it():
    state = State()
    state.phases["phase1"] = PhaseRecord(started_at="2026-11-01T10:00:00Z")
    rows, _ = summarise(state, MANIFEST)
    assert next_step(rows).args == "check phase1"


def test_progress_command_shows_best_and_a_command_that_works_from_here(tmp_path, monkeypatch):
    ws = tmp_path / "ws"
    save_state(ws, _phase1_halfway())
    monkeypatch.delenv("LEARN_WORKSPACE", raising=False)
    monkeypatch.chdir(ws)
    result = CliRunner().invoke(app, ["progress"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "Next: learn check phase1 -k 1.4" in text, text
    assert "--workspace" not in text, "from inside the workspace no flag is needed"
    assert "Best" in text and "10/10" in text  # 1.4's best, beside its failing latest
    monkeypatch.chdir(tmp_path)
    text = " ".join(CliRunner().invoke(app, ["progress", "--workspace", str(ws)]).output.split())
    assert "Next: learn check phase1 -k 1.4 --workspace ws" in text, text
