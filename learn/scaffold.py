"""`learn start`: write a learner workspace for a phase, solution regions stripped.

The workspace mirrors repository-relative paths, so the grader resolves a phase's
``pythonpath`` the same way for the reference and for the learner. A learner's edits are never
overwritten: files whose scaffold changed since they were generated *and* that the learner has
edited are conflicts, refused unless ``force``, and then backed up first.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from learn import REPO_ROOT
from learn.files import iter_files
from learn.manifest import Manifest, Phase, load_manifest
from learn.regions import (
    Region,
    RegionError,
    Select,
    find_notebook_regions,
    find_regions,
    strip_notebook,
    strip_regions,
)
from learn.state import PhaseRecord, load_state, now_iso, save_state


class WorkspaceConflict(Exception):
    """`learn start` would overwrite learner edits; nothing was written."""

    def __init__(self, files: list[str]) -> None:
        self.files = files
        listed = "\n  ".join(files)
        super().__init__(
            f"these files have your edits and a newer scaffold:\n  {listed}\n"
            "Nothing was written. Re-run with --force to regenerate them "
            "(your versions are backed up under .learn/backups/ first)."
        )


@dataclass
class StartResult:
    workspace: Path
    written: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    backed_up: list[str] = field(default_factory=list)
    backup_dir: Path | None = None


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def iter_source_files(phase: Phase, root: Path = REPO_ROOT) -> list[Path]:
    """Every file of the phase's sources, as paths relative to `root`, in a stable order."""
    files = []
    for source in phase.sources:
        base = root / source
        if not base.is_dir():
            raise FileNotFoundError(f"phase {phase.id}: source folder {source} does not exist")
        files.extend(Path(source) / rel for rel in iter_files(base))
    return files


def describer(manifest: Manifest):
    """The text each stripped region becomes: id, what to do, where the book explains it."""

    def describe(region: Region) -> str:
        try:
            book = manifest.checkpoint(region.checkpoint).book
        except KeyError:
            raise RegionError(
                f"region for unknown checkpoint {region.checkpoint}: add it to curriculum.yaml"
            ) from None
        return f"{region.checkpoint}: {region.what}; see the book, {book}"

    return describe


def scaffold_file(rel: Path, data: bytes, manifest: Manifest, select: Select = None) -> bytes:
    """The learner's version of one reference file (`select`: strip only those regions)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return data  # binary: copied as is
    if "BEGIN SOLUTION" not in text and "BEGIN PROMPT" not in text:
        return data
    describe = describer(manifest)
    if rel.suffix == ".ipynb":
        return strip_notebook(text, describe, str(rel), select).encode("utf-8")
    return strip_regions(text, describe, str(rel), select=select).encode("utf-8")


def file_regions(rel: Path, data: bytes) -> list[Region]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return []
    if rel.suffix == ".ipynb":
        return find_notebook_regions(text, str(rel))
    return find_regions(text, str(rel))


def build_scaffold(phase: Phase, root: Path = REPO_ROOT, select: Select = None) -> dict[str, bytes]:
    """The phase's scaffold in memory: repository-relative path -> content."""
    manifest = load_manifest()
    return {
        rel.as_posix(): scaffold_file(rel, (root / rel).read_bytes(), manifest, select)
        for rel in iter_source_files(phase, root)
    }


def write_scaffold(phase: Phase, dest: Path, select: Select = None) -> None:
    """Write the phase's scaffold into `dest` as is: no state, no conflict checks.

    For throw-away trees (`learn verify --requires`, tests); learners get `start_phase`.
    """
    for rel, content in build_scaffold(phase, select=select).items():
        _write(dest, rel, content)


def _write(root: Path, rel: str, content: bytes) -> None:
    """Write one scaffold file under `root` with its reference file's permissions."""
    target = root / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(content)
    target.chmod((REPO_ROOT / rel).stat().st_mode & 0o777)


def start_phase(phase: Phase, workspace: Path, force: bool = False) -> StartResult:
    """Write (or refresh) the phase's scaffold into `workspace` without losing learner edits."""
    workspace = workspace.resolve()
    scaffold = build_scaffold(phase)  # raises before anything is written
    state = load_state(workspace)
    record = state.phases.get(phase.id)
    generated = record.files if record else {}
    result = StartResult(workspace=workspace)
    to_write: dict[str, bytes] = {}
    conflicts: list[str] = []
    for rel, content in scaffold.items():
        target = workspace / rel
        new_hash = sha256(content)
        if not target.exists():
            to_write[rel] = content
            continue
        current_hash = sha256(target.read_bytes())
        if current_hash == new_hash:
            continue  # already up to date
        if generated.get(rel) == new_hash:
            result.kept.append(rel)  # scaffold unchanged since generated: the edits are theirs
        elif generated.get(rel) == current_hash:
            to_write[rel] = content  # untouched by the learner: refresh it
        else:
            conflicts.append(rel)
            to_write[rel] = content
    if conflicts and not force:
        raise WorkspaceConflict(conflicts)
    if conflicts:
        result.backup_dir = workspace / ".learn" / "backups" / time.strftime("%Y%m%d-%H%M%S")
        for rel in conflicts:
            backup = result.backup_dir / rel
            backup.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(workspace / rel, backup)
            result.backed_up.append(rel)
    for rel, content in to_write.items():
        _write(workspace, rel, content)
        result.written.append(rel)
    files = dict(generated)
    files.update({rel: sha256(content) for rel, content in scaffold.items()})
    state.phases[phase.id] = PhaseRecord(
        started_at=record.started_at if record else now_iso(), files=files
    )
    save_state(workspace, state)
    return result
