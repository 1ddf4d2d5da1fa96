"""`learn fork`: turn one project package into a standalone repository the learner owns.

A project already carries its own pyproject, tests, README and ADRs; forking copies it without
build debris, brings the workbook's pinned constraints along (so installs stay on the CPU torch
wheel and pandas<3), and commits it as the first commit of a new git repository.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from learn import REPO_ROOT
from learn.files import GitError, clear_folder, copy_tree, init_repository

#: The workbook's pins that a fork takes along (they reference nothing outside the file).
CONSTRAINTS = REPO_ROOT / "constraints.txt"


class ForkError(ValueError):
    """The fork cannot be made; nothing is left behind in the destination."""


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
    if dest.exists() and not dest.is_dir():
        raise ForkError(f"{dest} exists and is not a folder; choose a new folder")
    if dest.exists() and any(dest.iterdir()):
        raise ForkError(f"{dest} exists and is not empty; choose a new folder")
    if not (source / "pyproject.toml").is_file():
        raise ForkError(f"{source} is not a package (no pyproject.toml)")
    created = not dest.exists()
    try:
        copy_tree(source, dest)
        if CONSTRAINTS.is_file() and not (dest / "constraints.txt").exists():
            shutil.copy2(CONSTRAINTS, dest / "constraints.txt")
        init_repository(dest, message="Fork from the AI Architect Workbook")
    except (OSError, GitError) as exc:
        clear_folder(dest, remove_root=created)
        raise ForkError(f"could not fork into {dest}: {exc}") from None
    return dest
