"""`learn verify`: prove a phase's grading is honest before learners rely on it.

For each phase with checkpoints: the reference earns every point, and a freshly generated
scaffold earns none. A checkpoint that passes on the scaffold grades nothing the learner
writes; one that fails on the reference is broken.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from learn import REPO_ROOT
from learn.grader.report import Report
from learn.grader.runner import GradeRequest, grade
from learn.manifest import Phase
from learn.scaffold import file_regions, iter_source_files, start_phase, write_scaffold


@dataclass
class VerifyOutcome:
    problems: list[str] = field(default_factory=list)
    reference: Report | None = None
    scaffold: Report | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def problem(self, line: str) -> None:
        self.problems.append(line)


def check_regions(phase: Phase, outcome: VerifyOutcome) -> None:
    """Every region names a checkpoint of this phase."""
    own = {c.id for c in phase.checkpoints}
    for rel in iter_source_files(phase):
        for region in file_regions(rel, (REPO_ROOT / rel).read_bytes()):
            if region.checkpoint not in own:
                outcome.problem(
                    f"{rel}:{region.first_line}: region for {region.checkpoint}, "
                    f"which is not a {phase.id} checkpoint"
                )


def verify_phase(phase: Phase) -> VerifyOutcome:
    outcome = VerifyOutcome()
    check_regions(phase, outcome)
    reference = grade(GradeRequest(phase=phase, target=REPO_ROOT, target_kind="reference"))
    outcome.reference = reference
    for cp in reference.checkpoints:
        if cp.status != "passed":
            outcome.problem(f"{cp.id} fails on the reference: {cp.status}: {cp.message}")
    with tempfile.TemporaryDirectory(prefix="learn-verify-") as tmp:
        workspace = Path(tmp) / "workspace"
        start_phase(phase, workspace)
        scaffold = grade(GradeRequest(phase=phase, target=workspace, target_kind="workspace"))
    outcome.scaffold = scaffold
    for cp in scaffold.checkpoints:
        if cp.earned:
            outcome.problem(f"{cp.id} passes on a fresh scaffold: it grades nothing you write")
    return outcome


def dependents(phase: Phase) -> dict[str, set[str]]:
    """For each checkpoint, the checkpoints that require it, directly or through others."""
    direct = {cp.id: set(cp.requires) for cp in phase.checkpoints}
    closure = {cid: set() for cid in direct}
    for cid in direct:  # requires always point backwards (the manifest checks), so no cycles
        stack = list(direct[cid])
        while stack:
            needed = stack.pop()
            if needed in closure and cid not in closure[needed]:
                closure[needed].add(cid)
                stack.extend(direct.get(needed, ()))
    return closure


def verify_requires(phase: Phase, progress=None) -> VerifyOutcome:
    """Prove each checkpoint's `requires`: strip one checkpoint's regions, see what fails.

    With only checkpoint X stripped from the reference, exactly X and the checkpoints that
    (transitively) require X may fail. A checkpoint failing beyond that needs a `requires`
    entry; one that declares X yet passes without it declares too much. One grading run per
    checkpoint: a maintainer's tool (`learn verify --requires`), too slow for every CI run.
    """
    outcome = VerifyOutcome()
    needed_by = dependents(phase)
    for cp in phase.checkpoints:
        if progress:
            progress(cp.id)
        with tempfile.TemporaryDirectory(prefix="learn-requires-") as tmp:
            workspace = Path(tmp) / "workspace"
            write_scaffold(phase, workspace, select=lambda r, cid=cp.id: r.checkpoint == cid)
            report = grade(GradeRequest(phase=phase, target=workspace, target_kind="workspace"))
        failing = {row.id for row in report.checkpoints if row.status != "passed"}
        allowed = {cp.id} | needed_by[cp.id]
        for extra in sorted(failing - allowed):
            outcome.problem(
                f"{extra} fails when only {cp.id} is stripped: declare `requires: [{cp.id}]` "
                f"for {extra}, or make its tests independent of {cp.id}"
            )
        if cp.id not in failing:
            outcome.problem(f"{cp.id} passes with its own regions stripped: it grades nothing")
        for declared in sorted(needed_by[cp.id] - failing):
            outcome.problem(f"{declared} requires {cp.id} but passes without it")
    return outcome
