"""Learner progress: fold grading reports into the state file and summarise it per phase.

Tolerant of a manifest that moved on: results saved under an id that was later renamed follow
it (``renamed_from``), and results for checkpoints that no longer exist are kept but reported
as retired rather than dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from learn.grader.report import Report
from learn.manifest import Manifest
from learn.state import CheckpointRecord, State, load_state, now_iso, save_state


def record_report(workspace: Path, report: Report) -> State:
    """Save a workspace report's results into the workspace's state file."""
    state = load_state(workspace)
    checked_at = now_iso()
    for row in report.checkpoints:
        previous = state.results.get(row.id)
        state.results[row.id] = CheckpointRecord(
            status=row.status,
            earned=row.earned,
            points=row.points,
            checked_at=checked_at,
            best=max(row.earned, previous.best if previous else 0),
        )
    state.history.append(
        {
            "phase": report.phase,
            "at": checked_at,
            "earned": report.earned,
            "possible": report.possible,
            "checkpoints": [c.id for c in report.checkpoints],
        }
    )
    save_state(workspace, state)
    return state


@dataclass(frozen=True)
class PhaseProgress:
    phase_id: str
    title: str
    started: bool
    passed: int
    total: int
    earned: int
    possible: int
    last_checked: str | None


def summarise(state: State, manifest: Manifest) -> tuple[list[PhaseProgress], list[str]]:
    """Per-phase progress, and the ids of saved results no checkpoint claims any more."""
    current: dict[str, CheckpointRecord] = {}
    retired = []
    for saved_id, record in state.results.items():
        cid = manifest.canonical_id(saved_id)
        if cid is None:
            retired.append(saved_id)
        elif cid not in current or record.checked_at > current[cid].checked_at:
            current[cid] = record
    rows = []
    for phase in manifest.phases:
        records = [current[c.id] for c in phase.checkpoints if c.id in current]
        rows.append(
            PhaseProgress(
                phase_id=phase.id,
                title=phase.title,
                started=phase.id in state.phases,
                passed=sum(r.status == "passed" for r in records),
                total=len(phase.checkpoints),
                earned=sum(
                    c.points
                    for c in phase.checkpoints
                    if c.id in current and current[c.id].status == "passed"
                ),
                possible=phase.points,
                last_checked=max((r.checked_at for r in records), default=None),
            )
        )
    return rows, sorted(retired)


def next_step(rows: list[PhaseProgress], manifest: Manifest) -> str:
    """The command a learner should run next."""
    for row in rows:
        if row.total == 0:
            continue
        if not row.started:
            return f"learn start {row.phase_id}"
        if row.passed < row.total:
            return f"learn check {row.phase_id}"
    return "learn book --serve  (all graded checkpoints pass: read ahead)"
