"""Copying trees and starting git repositories: one place for scaffolds, stamped repos and forks.

Three commands copy reference files somewhere a learner owns: `learn start` (a workspace),
`learn new-repo` (a stamped repository) and `learn fork` (a project package). They share
what must never travel (caches, environments, run-time outputs: `is_debris`), how a tree is
walked (`iter_files`), and how the copy becomes a repository (`init_repository`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

#: Folders never copied: caches, environments, VCS data and the outputs of running a project
#: (builds, benchmark results, MLflow stores, model caches, embedded databases, book builds).
DEBRIS_DIRS = frozenset(
    {
        "__pycache__",
        ".git",
        ".venv",
        ".tools",
        ".pytest_cache",
        ".ruff_cache",
        ".mypy_cache",
        ".ipynb_checkpoints",
        ".hypothesis",
        ".learn",
        "build",
        "dist",
        "_build",
        "bench-results",
        "mlruns",
        ".model-cache",
        "pgdata",
        ".mlops",
    }
)
#: File name endings never copied (compiled bytecode).
DEBRIS_FILE_SUFFIXES = (".pyc", ".pyo")
#: Folder name endings never copied (setuptools' package metadata).
DEBRIS_DIR_SUFFIXES = (".egg-info",)

#: Variables that would point git at another repository (set by git hooks, e.g. pre-commit).
_GIT_REDIRECTS = frozenset(
    {"GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_PREFIX"}
)
_GIT_IDENTITY = {"user.name": "AI Architect Workbook learner", "user.email": "learner@localhost"}


class GitError(RuntimeError):
    """A git command failed; the message names the command, the folder and git's own words."""


def is_debris_dir(name: str) -> bool:
    """Whether a folder called `name` is debris: never scaffolded, stamped or forked."""
    return name in DEBRIS_DIRS or name.endswith(DEBRIS_DIR_SUFFIXES)


def is_debris(rel: Path) -> bool:
    """Whether the file at relative path `rel` is debris or lies inside a debris folder."""
    return rel.name.endswith(DEBRIS_FILE_SUFFIXES) or any(
        is_debris_dir(part) for part in rel.parts[:-1]
    )


def iter_files(root: Path) -> Iterator[Path]:
    """Every file under `root` that is not debris, relative to `root`, in a stable order.

    Debris folders are pruned without being entered, so a large `.venv` costs nothing.
    """
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not is_debris_dir(d))
        here = Path(dirpath).relative_to(root)
        for name in sorted(filenames):
            if not name.endswith(DEBRIS_FILE_SUFFIXES):
                yield here / name


def copy_tree(source: Path, dest: Path) -> list[Path]:
    """Copy `source`'s non-debris files into `dest` (created), keeping modes; return them."""
    copied = []
    for rel in iter_files(source):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if (source / rel).is_symlink():
            os.symlink(os.readlink(source / rel), target)
        else:
            shutil.copy2(source / rel, target)
        copied.append(rel)
    return copied


def clear_folder(folder: Path, *, remove_root: bool) -> None:
    """Undo a partial copy: remove `folder`'s contents, and `folder` itself if asked."""
    if remove_root:
        shutil.rmtree(folder, ignore_errors=True)
        return
    for child in folder.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def git_env() -> dict[str, str]:
    """The environment for git, without variables that would point it at another repository."""
    return {k: v for k, v in os.environ.items() if k not in _GIT_REDIRECTS}


def init_repository(folder: Path, message: str) -> bool:
    """``git init`` `folder` and commit everything in it; False when git is not installed.

    A user name and e-mail are set in the new repository's own config only when git has none
    (a fresh CI runner or container), and signing is off for this one commit, so it works on
    any machine without touching global settings. Raises `GitError` when a git command fails.
    """
    git = shutil.which("git")
    if git is None:
        return False
    env = git_env()

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [git, *args], cwd=folder, env=env, capture_output=True, text=True, check=False
        )
        if check and proc.returncode != 0:
            raise GitError(
                f"git {' '.join(args)} failed in {folder}: {(proc.stderr or proc.stdout).strip()}"
            )
        return proc

    run("init", "--quiet", "--initial-branch=main")
    for key, value in _GIT_IDENTITY.items():
        if not run("config", "--get", key, check=False).stdout.strip():
            run("config", "--local", key, value)
    run("add", "--all")
    run("-c", "commit.gpgsign=false", "commit", "--quiet", "--no-verify", "-m", message)
    return True
