"""`learn fork`: turn one project package into a standalone repository the learner owns.

A project already carries its own pyproject, tests, README and ADRs; forking copies it without
build debris, brings the workbook's pinned constraints along (so installs stay on the CPU torch
wheel and pandas<3), and commits it as the first commit of a new git repository.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from learn import DEBRIS_DIR_SUFFIXES, DEBRIS_DIRS, DEBRIS_SUFFIXES, REPO_ROOT

IGNORED = shutil.ignore_patterns(
    *DEBRIS_DIRS,
    *(f"*{suffix}" for suffix in (*DEBRIS_SUFFIXES, *DEBRIS_DIR_SUFFIXES)),
    ".learn",
)


class ForkError(ValueError):
    """The fork cannot be made; nothing was written."""


def fork_project(project_id: str, dest: Path) -> Path:
    """Fork a project of the manifest into `dest`."""
    from learn.manifest import load_manifest

    manifest = load_manifest()
    try:
        project = manifest.project(project_id)
    except KeyError as exc:
        raise ForkError(str(exc).strip('"')) from None
    if not project.exists():
        raise ForkError(
            f"{project.id} ({project.title}) has not landed in this workbook yet; "
            f"it arrives with {project.phase}"
        )
    return fork_directory(REPO_ROOT / project.path, dest)


def fork_directory(source: Path, dest: Path) -> Path:
    """Copy `source` into a new git repository at `dest` (which must be new or empty)."""
    dest = dest.resolve()
    if dest.exists() and any(dest.iterdir()):
        raise ForkError(f"{dest} exists and is not empty; choose a new folder")
    if not (source / "pyproject.toml").is_file():
        raise ForkError(f"{source} is not a package (no pyproject.toml)")
    shutil.copytree(source, dest, ignore=IGNORED, dirs_exist_ok=True)
    constraints = REPO_ROOT / "constraints.txt"
    if constraints.is_file() and not (dest / "constraints.txt").exists():
        shutil.copy2(constraints, dest / "constraints.txt")
    _git_init(dest)
    return dest


def _git_init(dest: Path) -> None:
    if shutil.which("git") is None:
        return  # still a usable folder; the learner can `git init` later
    run = lambda *args: subprocess.run(  # noqa: E731
        ["git", *args], cwd=dest, check=True, capture_output=True, text=True
    )
    run("init", "-q", "-b", "main")
    run("add", "-A")
    run(
        "-c",
        "user.name=AI Architect Workbook",
        "-c",
        "user.email=workbook@localhost",
        "commit",
        "-q",
        "-m",
        "Fork from the AI Architect Workbook",
    )
