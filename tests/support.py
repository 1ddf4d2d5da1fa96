"""Helpers shared by the workbook's own tests (fixtures live in conftest.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from learn import REPO_ROOT

PROJECTS = REPO_ROOT / "projects"

#: Runs pytest with the workbook's editable installs hidden: no `projects/*/src` on sys.path
#: and no editable finder for the workbook's own `learn`, so a fork that secretly imports
#: something of the workbook fails as it would on a machine without it.
_ISOLATED_PYTEST = f"""
import sys
projects = {str(PROJECTS)!r}
sys.path[:] = [p for p in sys.path if not p.startswith(projects)]
sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in getattr(f, "__module__", "")]
for name in [m for m in sys.modules if m == "learn" or m.startswith("learn.")]:
    del sys.modules[name]
import pytest
sys.exit(pytest.main(sys.argv[1:]))
"""


def learn_command(*args: str) -> list[str]:
    """The `learn` CLI as a subprocess command line, run by this interpreter."""
    return [sys.executable, "-m", "learn.cli", *args]


def install_packages(packages: list[Path], site: Path) -> None:
    """Install package folders into `site` without network: no build isolation, no deps.

    setuptools and the test dependencies come from this venv, so nothing is downloaded.
    """
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(site),
            *map(str, packages),
        ],
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stdout + install.stderr


def install_and_test_fork(
    dest: Path, tmp_path: Path, companions: list[Path] = (), pytest_args: list[str] = ()
) -> subprocess.CompletedProcess:
    """Install a forked package on its own, then run its tests with the workbook hidden.

    `companions` are other package folders installed next to it (as a user who forked both
    would have them). Returns the finished pytest run.
    """
    site = tmp_path / "site"
    install_packages([dest, *companions], site)
    env = {**os.environ, "PYTHONPATH": str(site), "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("LEARN_TARGET", None)
    return subprocess.run(
        [sys.executable, "-c", _ISOLATED_PYTEST, "-q", "-p", "no:cacheprovider", *pytest_args],
        cwd=dest,
        capture_output=True,
        text=True,
        env=env,
    )


def start_workspace(phase: str, ws: Path) -> Path:
    """`learn start PHASE --workspace WS` in a subprocess, as a learner runs it."""
    start = subprocess.run(
        learn_command("start", phase, "--workspace", str(ws)), capture_output=True, text=True
    )
    assert start.returncode == 0, start.stdout + start.stderr
    return ws


def check_rows(phase: str, ws: Path, report: Path, *args: str) -> dict[str, dict]:
    """Grade `ws` with `learn check` (extra `args`, e.g. -k 1.4); the JSON rows by id."""
    proc = subprocess.run(
        learn_command("check", phase, "--workspace", str(ws), "--json", str(report), *args),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    return {row["id"]: row for row in json.loads(report.read_text())["checkpoints"]}
