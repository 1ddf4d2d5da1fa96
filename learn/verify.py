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
from learn.scaffold import file_regions, iter_source_files, start_phase


@dataclass
class VerifyOutcome:
    ok: bool = True
    lines: list[str] = field(default_factory=list)
    reference: Report | None = None
    scaffold: Report | None = None

    def problem(self, line: str) -> None:
        self.ok = False
        self.lines.append(f"FAIL {line}")


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
    outcome.lines.append(
        f"reference: {reference.earned}/{reference.possible} points in {reference.duration:.1f} s"
    )
    with tempfile.TemporaryDirectory(prefix="learn-verify-") as tmp:
        workspace = Path(tmp) / "workspace"
        start_phase(phase, workspace)
        scaffold = grade(GradeRequest(phase=phase, target=workspace, target_kind="workspace"))
    outcome.scaffold = scaffold
    for cp in scaffold.checkpoints:
        if cp.earned:
            outcome.problem(f"{cp.id} passes on a fresh scaffold: it grades nothing you write")
    outcome.lines.append(
        f"fresh scaffold: {scaffold.earned}/{scaffold.possible} points in {scaffold.duration:.1f} s"
    )
    return outcome
