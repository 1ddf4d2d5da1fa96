"""Which workspace a command means: found from where the learner stands, as rustlings does.

Order: an explicit ``--workspace``; then ``$LEARN_WORKSPACE``; then the nearest folder at or
above the current directory that holds ``.learn/state.json`` (so ``cd`` into a workspace and
every command uses it); then ``./workspace`` when it is one; then the workbook's own
``workspace/`` folder (which is ``./workspace`` from the workbook root, where `make start`
leaves the learner). The workbook checkout itself is never a workspace.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from learn import REPO_ROOT
from learn.state import state_path

WORKSPACE_ENV = "LEARN_WORKSPACE"
DEFAULT_NAME = "workspace"


def enclosing_workspace(start: Path) -> Path | None:
    """The nearest folder at or above `start` with a learner state file, or None."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if folder == REPO_ROOT:
            continue  # the reference is graded with --reference, never as a workspace
        if state_path(folder).is_file():
            return folder
    return None


def resolve_workspace(explicit: Path | None = None, cwd: Path | None = None) -> Path:
    """The workspace a command should use (see the module docstring for the order)."""
    if explicit is not None:
        return explicit.expanduser().resolve()
    env = os.environ.get(WORKSPACE_ENV)
    if env:
        return Path(env).expanduser().resolve()
    here = (cwd or Path.cwd()).resolve()
    found = enclosing_workspace(here)
    if found is not None:
        return found
    local = here / DEFAULT_NAME
    if state_path(local).is_file():
        return local
    return (REPO_ROOT / DEFAULT_NAME).resolve()


def command_for(args: str, workspace: Path, cwd: Path | None = None) -> str:
    """``learn <args>``, plus ``--workspace`` only when, run from `cwd`, it would pick another.

    Messages print this so the command they suggest works from where the learner stands.
    """
    here = (cwd or Path.cwd()).resolve()
    workspace = workspace.resolve()
    if resolve_workspace(None, here) == workspace:
        return f"learn {args}"
    shown = os.path.relpath(workspace, here) if workspace.is_relative_to(here) else workspace
    return f"learn {args} --workspace {shlex.quote(str(shown))}"


def lab_paths(root: Path) -> list[Path]:
    """Every phase's `pythonpath` folder under `root` (existing or not), in manifest order."""
    from learn.manifest import load_manifest

    paths: list[Path] = []
    for phase in load_manifest().phases:
        for entry in phase.pythonpath:
            folder = (root / entry).resolve()
            if folder not in paths:
                paths.append(folder)
    return paths


def without_reference(paths: list[str], root: Path) -> list[str]:
    """`paths` (a sys.path) without the workbook's lab folders, unless `root` is the workbook.

    The workbook's environment installs the project packages in editable mode, which puts the
    reference's `projects/*/src` on every sys.path. Code run for a workspace must never fall
    through to them (a learner's package missing its `__init__.py` would import the reference).
    """
    if root.resolve() == REPO_ROOT.resolve():
        return paths
    reference = set(lab_paths(REPO_ROOT))
    return [p for p in paths if not p or Path(p).resolve() not in reference]
