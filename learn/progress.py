"""Learner progress: fold grading reports into the state file, summarise it, say what is next.

Tolerant of a manifest that moved on: results saved under an id that was later renamed follow
it (``renamed_from``), and results for checkpoints that no longer exist are kept but reported
as retired rather than dropped. Each checkpoint shows its latest result (what the code does
now) beside its best (what the learner once reached), so a regression is visible.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from learn.grader.report import Report
from learn.manifest import Checkpoint, Manifest
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
class CheckpointProgress:
    """One checkpoint: its latest grade (None when never graded) and its best points."""

    id: str
    title: str
    points: int
    requires: tuple[str, ...]
    status: str | None
    earned: int
    best: int
    checked_at: str | None

    @property
    def passed(self) -> bool:
        return self.status == "passed"


@dataclass(frozen=True)
class PhaseProgress:
    phase_id: str
    title: str
    started: bool
    started_at: str | None
    checkpoints: tuple[CheckpointProgress, ...]

    @property
    def total(self) -> int:
        return len(self.checkpoints)

    @property
    def passed(self) -> int:
        return sum(c.passed for c in self.checkpoints)

    @property
    def earned(self) -> int:
        """Points of the checkpoints that pass now (latest results)."""
        return sum(c.points for c in self.checkpoints if c.passed)

    @property
    def best(self) -> int:
        """Points at each checkpoint's best result ever."""
        return sum(c.best for c in self.checkpoints)

    @property
    def possible(self) -> int:
        return sum(c.points for c in self.checkpoints)

    @property
    def last_checked(self) -> str | None:
        return max((c.checked_at for c in self.checkpoints if c.checked_at), default=None)

    @property
    def complete(self) -> bool:
        return bool(self.checkpoints) and self.passed == self.total

    @property
    def last_activity(self) -> str:
        return max(self.last_checked or "", self.started_at or "")


def summarise(state: State, manifest: Manifest) -> tuple[list[PhaseProgress], list[str]]:
    """Per-phase progress, and the ids of saved results no checkpoint claims any more."""
    latest: dict[str, CheckpointRecord] = {}
    best: dict[str, int] = {}
    retired = []
    for saved_id, record in state.results.items():
        cid = manifest.canonical_id(saved_id)
        if cid is None:
            retired.append(saved_id)
            continue
        if cid not in latest or record.checked_at > latest[cid].checked_at:
            latest[cid] = record
        best[cid] = max(best.get(cid, 0), record.best, record.earned)
    rows = []
    for phase in manifest.phases:
        record = state.phases.get(phase.id)
        rows.append(
            PhaseProgress(
                phase_id=phase.id,
                title=phase.title,
                started=phase.id in state.phases,
                started_at=getattr(record, "started_at", None),
                checkpoints=tuple(
                    _checkpoint_progress(c, latest.get(c.id), best.get(c.id, 0))
                    for c in phase.checkpoints
                ),
            )
        )
    return rows, sorted(retired)


def _checkpoint_progress(
    cp: Checkpoint, latest: CheckpointRecord | None, best: int
) -> CheckpointProgress:
    passed = latest is not None and latest.status == "passed"
    return CheckpointProgress(
        id=cp.id,
        title=cp.title,
        points=cp.points,
        requires=cp.requires,
        status=latest.status if latest else None,
        earned=cp.points if passed else 0,
        best=min(best, cp.points),
        checked_at=latest.checked_at if latest else None,
    )


@dataclass(frozen=True)
class NextStep:
    """What to run next (learn's arguments, without the workspace) and why."""

    args: str
    why: str
    #: Whether the command acts on a workspace (and so may need --workspace to find it).
    uses_workspace: bool = True


def next_step(rows: list[PhaseProgress]) -> NextStep:
    """The learner's real next step: the phase they are working on, else the next to start.

    The phase in progress is the started, unfinished one touched most recently; within it, the
    first checkpoint that does not pass now. Its `requires` come before it in the manifest, so
    they all pass already: the step is always one the learner can take.
    """
    graded = [row for row in rows if row.checkpoints]
    in_progress = [row for row in graded if row.started and not row.complete]
    if in_progress:
        row = max(in_progress, key=lambda r: r.last_activity)
        if row.last_checked is None:
            return NextStep(f"check {row.phase_id}", f"nothing in {row.phase_id} graded yet")
        todo = next(c for c in row.checkpoints if not c.passed)
        return NextStep(
            f"check {row.phase_id} -k {todo.id}",
            f"next in {row.phase_id}: {todo.id} {todo.title}; `learn hint {todo.id}` explains it",
        )
    started = [i for i, row in enumerate(graded) if row.started]
    after = [row for row in graded[(max(started) + 1 if started else 0) :] if not row.started]
    skipped = [row for row in graded if not row.started]
    if after or skipped:
        row = (after or skipped)[0]
        why = "every started phase passes" if started else "a new learner starts here"
        if not after:
            why += f"; {row.phase_id} was skipped so far"
        return NextStep(f"start {row.phase_id}", f"{why}: {row.phase_id} {row.title}")
    return NextStep(
        "book --serve",
        "every graded checkpoint passes: read ahead in the book's later phases",
        uses_workspace=False,
    )
