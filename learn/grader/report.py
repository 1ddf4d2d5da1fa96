"""The grading report: typed results, the versioned JSON contract, and JUnit XML.

The JSON shape is documented by ``learn/report.schema.json`` (JSON Schema) and versioned by
``SCHEMA_VERSION``: a minor bump adds fields, a major bump changes or removes them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from learn.grader.events import Outcome

SCHEMA_VERSION = "1.1"  # 1.1 added each checkpoint's `requires`
Status = Outcome
#: When a checkpoint's tests disagree, the row shows the most serious status.
SEVERITY: dict[str, int] = {"passed": 0, "skipped": 1, "failed": 2, "timeout": 3, "error": 4}


@dataclass
class TestOutcome:
    nodeid: str
    outcome: Status
    message: str = ""
    duration: float = 0.0


@dataclass
class CheckpointResult:
    id: str
    title: str
    points: int
    earned: int
    status: Status
    message: str
    hint: str
    book: str
    duration: float
    tests: list[TestOutcome] = field(default_factory=list)
    #: Checkpoints that must pass before this one can (curriculum.yaml `requires`).
    requires: list[str] = field(default_factory=list)


@dataclass
class Report:
    phase: str
    phase_title: str
    target: str
    target_kind: Literal["workspace", "reference"]
    started_at: str
    duration: float
    learn_version: str
    python: str
    checkpoints: list[CheckpointResult]
    schema_version: str = SCHEMA_VERSION

    @property
    def earned(self) -> int:
        return sum(c.earned for c in self.checkpoints)

    @property
    def possible(self) -> int:
        return sum(c.points for c in self.checkpoints)

    @property
    def all_passed(self) -> bool:
        return all(c.status == "passed" for c in self.checkpoints)

    @property
    def exit_code(self) -> int:
        """0 when every checkpoint passed, 1 otherwise (2 is kept for usage errors)."""
        return 0 if self.all_passed else 1

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(earned=self.earned, possible=self.possible, passed=self.all_passed)
        return data

    def write_json(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")

    def write_junit(self, path: Path) -> None:
        """One <testcase> per checkpoint, so CI systems show the grade like a test run."""
        from xml.etree import ElementTree as ET

        counts = {s: sum(c.status == s for c in self.checkpoints) for s in SEVERITY}
        suite = ET.Element(
            "testsuite",
            name=f"learn.{self.phase}",
            tests=str(len(self.checkpoints)),
            failures=str(counts["failed"]),
            errors=str(counts["error"] + counts["timeout"]),
            skipped=str(counts["skipped"]),
            time=f"{self.duration:.3f}",
            timestamp=self.started_at,
        )
        for cp in self.checkpoints:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"learn.{self.phase}",
                name=f"{cp.id} {cp.title}",
                time=f"{cp.duration:.3f}",
            )
            if cp.status in ("failed", "error", "timeout", "skipped"):
                tag = {"failed": "failure", "skipped": "skipped"}.get(cp.status, "error")
                node = ET.SubElement(case, tag, message=cp.message[:200], type=cp.status)
                node.text = f"{cp.message}\n\nHint: {cp.hint}\nBook: {cp.book}"
        path.parent.mkdir(parents=True, exist_ok=True)
        root = ET.Element("testsuites")
        root.append(suite)
        ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def combine(outcomes: list[TestOutcome]) -> tuple[Status, str]:
    """A checkpoint's status and message from its tests' outcomes.

    The most serious outcome wins; among equals, a "needs 1.3 first" message does, because
    the gap in an earlier checkpoint is what the learner has to fix first.
    """
    worst = max(outcomes, key=lambda o: (SEVERITY[o.outcome], o.message.startswith("needs ")))
    if worst.outcome == "passed":
        return "passed", ""
    return worst.outcome, worst.message
