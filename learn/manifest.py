"""The curriculum manifest (curriculum.yaml) as typed, validated dataclasses.

One source of truth: the CLI, the grader, the scaffolder and the book all read phases,
projects and checkpoints from here, so a title or a point value is written exactly once.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

from learn import REPO_ROOT

MANIFEST_PATH = REPO_ROOT / "curriculum.yaml"
SUPPORTED_SCHEMA = 1
CHECKPOINT_ID = re.compile(r"^\d+\.\d+$")


class ManifestError(ValueError):
    """curriculum.yaml is malformed; the message names the entry and the field."""


@dataclass(frozen=True)
class Checkpoint:
    id: str
    title: str
    points: int
    hint: str
    book: str
    phase: str
    timeout: float
    renamed_from: tuple[str, ...] = ()
    #: Checkpoints whose code this one's tests run too: they must pass first.
    requires: tuple[str, ...] = ()

    @property
    def book_doc(self) -> str:
        """The book document (without anchor), e.g. ``phase0/slos``."""
        return self.book.split("#", 1)[0]


@dataclass(frozen=True)
class ScheduleItem:
    when: str
    what: str


@dataclass(frozen=True)
class Project:
    id: str
    title: str
    phase: str
    path: str

    def exists(self, root: Path = REPO_ROOT) -> bool:
        return (root / self.path / "pyproject.toml").is_file()


@dataclass(frozen=True)
class Phase:
    id: str
    number: int
    title: str
    duration: str
    span: str
    book: str
    prerequisites: tuple[str, ...]
    projects: tuple[str, ...]
    objectives: tuple[str, ...]
    schedule: tuple[ScheduleItem, ...]
    deliverables: tuple[str, ...]
    sources: tuple[str, ...]
    pythonpath: tuple[str, ...]
    checkpoints: tuple[Checkpoint, ...] = field(default=())

    @property
    def points(self) -> int:
        return sum(c.points for c in self.checkpoints)


@dataclass(frozen=True)
class Manifest:
    title: str
    default_timeout: float
    phases: tuple[Phase, ...]
    projects: tuple[Project, ...]

    def phase(self, phase_id: str) -> Phase:
        """Look a phase up by id (``phase0``) or number (``0``)."""
        key = phase_id.strip().lower()
        for phase in self.phases:
            if key in (phase.id, str(phase.number), f"phase{phase.number}"):
                return phase
        known = ", ".join(p.id for p in self.phases)
        raise KeyError(f"unknown phase {phase_id!r}; known phases: {known}")

    def project(self, project_id: str) -> Project:
        for project in self.projects:
            if project.id == project_id:
                return project
        known = ", ".join(p.id for p in self.projects)
        raise KeyError(f"unknown project {project_id!r}; known projects: {known}")

    def all_checkpoints(self) -> list[Checkpoint]:
        return [c for p in self.phases for c in p.checkpoints]

    def checkpoint(self, checkpoint_id: str) -> Checkpoint:
        """Look a checkpoint up by id, following ``renamed_from`` for old ids."""
        for cp in self.all_checkpoints():
            if checkpoint_id == cp.id or checkpoint_id in cp.renamed_from:
                return cp
        raise KeyError(f"unknown checkpoint {checkpoint_id!r}; `learn list` shows them all")

    def canonical_id(self, checkpoint_id: str) -> str | None:
        """The current id for a possibly renamed one, or None if it no longer exists."""
        try:
            return self.checkpoint(checkpoint_id).id
        except KeyError:
            return None


def _require(entry: dict, key: str, where: str, kind: type | tuple[type, ...] = str):
    if key not in entry:
        raise ManifestError(f"{where}: missing field {key!r}")
    value = entry[key]
    if not isinstance(value, kind):
        raise ManifestError(f"{where}: field {key!r} should be {kind}, got {value!r}")
    return value


def _strings(entry: dict, key: str, where: str) -> tuple[str, ...]:
    values = entry.get(key) or []
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ManifestError(f"{where}: field {key!r} should be a list of strings")
    return tuple(values)


def _list(entry: dict, key: str, where: str) -> list:
    values = entry.get(key) or []
    if not isinstance(values, list):
        raise ManifestError(f"{where}: field {key!r} should be a list")
    return values


def parse_manifest(data: dict) -> Manifest:
    """Validate the raw YAML mapping and build the typed manifest."""
    if not isinstance(data, dict):
        raise ManifestError("curriculum.yaml: top level should be a mapping")
    version = data.get("schema_version")
    if version != SUPPORTED_SCHEMA:
        raise ManifestError(
            f"curriculum.yaml: schema_version {version!r} is not supported "
            f"(this learn understands {SUPPORTED_SCHEMA}); update the workbook"
        )
    default_timeout = float((data.get("defaults") or {}).get("checkpoint_timeout", 20))
    projects = tuple(
        Project(
            id=_require(p, "id", "project"),
            title=_require(p, "title", f"project {p.get('id')}"),
            phase=_require(p, "phase", f"project {p.get('id')}"),
            path=_require(p, "path", f"project {p.get('id')}"),
        )
        for p in data.get("projects") or []
    )
    phases = []
    seen: set[str] = set()
    for raw in _require(data, "phases", "curriculum.yaml", list):
        pid = _require(raw, "id", "phase")
        where = f"phase {pid}"
        checkpoints = []
        for c in raw.get("checkpoints") or []:
            cid = str(_require(c, "id", f"{where} checkpoint", (str, int, float)))
            cwhere = f"checkpoint {cid}"
            if not CHECKPOINT_ID.match(cid):
                raise ManifestError(f"{cwhere}: id should look like '1.3'")
            if cid in seen:
                raise ManifestError(f"{cwhere}: duplicate checkpoint id")
            seen.add(cid)
            points = _require(c, "points", cwhere, int)
            if points < 0:
                raise ManifestError(f"{cwhere}: points must not be negative")
            checkpoints.append(
                Checkpoint(
                    id=cid,
                    title=_require(c, "title", cwhere),
                    points=points,
                    hint=_require(c, "hint", cwhere),
                    book=_require(c, "book", cwhere),
                    phase=pid,
                    timeout=float(c.get("timeout", default_timeout)),
                    renamed_from=_strings(c, "renamed_from", cwhere),
                    requires=tuple(str(r) for r in _list(c, "requires", cwhere)),
                )
            )
        phases.append(
            Phase(
                id=pid,
                number=_require(raw, "number", where, int),
                title=_require(raw, "title", where),
                duration=_require(raw, "duration", where),
                span=_require(raw, "span", where),
                book=_require(raw, "book", where),
                prerequisites=_strings(raw, "prerequisites", where),
                projects=_strings(raw, "projects", where),
                objectives=_strings(raw, "objectives", where),
                schedule=tuple(
                    ScheduleItem(when=_require(s, "when", where), what=_require(s, "what", where))
                    for s in raw.get("schedule") or []
                ),
                deliverables=_strings(raw, "deliverables", where),
                sources=_strings(raw, "sources", where),
                pythonpath=_strings(raw, "pythonpath", where),
                checkpoints=tuple(checkpoints),
            )
        )
    manifest = Manifest(
        title=str(data.get("title", "")),
        default_timeout=default_timeout,
        phases=tuple(phases),
        projects=projects,
    )
    _check_references(manifest)
    return manifest


def _check_references(manifest: Manifest) -> None:
    phase_ids = {p.id for p in manifest.phases}
    project_ids = {p.id for p in manifest.projects}
    for phase in manifest.phases:
        for pre in phase.prerequisites:
            if pre not in phase_ids:
                raise ManifestError(f"phase {phase.id}: unknown prerequisite {pre!r}")
        for proj in phase.projects:
            if proj not in project_ids:
                raise ManifestError(f"phase {phase.id}: unknown project {proj!r}")
    for project in manifest.projects:
        if project.phase not in phase_ids:
            raise ManifestError(f"project {project.id}: unknown phase {project.phase!r}")
    _check_requires(manifest)


def _check_requires(manifest: Manifest) -> None:
    """`requires` names earlier checkpoints of the manifest, so the order is always valid."""
    order = {c.id: i for i, c in enumerate(manifest.all_checkpoints())}
    for cp in manifest.all_checkpoints():
        for needed in cp.requires:
            if needed not in order:
                raise ManifestError(f"checkpoint {cp.id}: requires unknown checkpoint {needed!r}")
            if order[needed] >= order[cp.id]:
                raise ManifestError(
                    f"checkpoint {cp.id}: requires {needed}, which does not come before it"
                )


def read_manifest(path: Path) -> Manifest:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"{path} not found: is this a workbook checkout?") from None
    except yaml.YAMLError as exc:
        raise ManifestError(f"{path} is not valid YAML: {exc}") from None
    return parse_manifest(data)


@functools.cache
def load_manifest() -> Manifest:
    """The workbook's manifest, parsed once per process."""
    return read_manifest(MANIFEST_PATH)
