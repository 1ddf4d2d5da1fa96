"""Shared fixtures for the workbook's own tests."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from learn import REPO_ROOT


def learn_command(*args: str) -> list[str]:
    """The `learn` CLI as a subprocess command line, run by this interpreter."""
    return [sys.executable, "-m", "learn.cli", *args]


@pytest.fixture
def reference_workspace(tmp_path) -> Path:
    """A workspace holding the *reference* Phase 0: everything passes until a test breaks it."""
    ws = tmp_path / "ws"
    shutil.copytree(REPO_ROOT / "phases" / "phase0", ws / "phases" / "phase0")
    return ws


def install_and_test_fork(dest: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    """Install a forked package on its own (no workbook on the path), then run its tests.

    No build isolation and --no-deps: setuptools and the test dependencies come from this
    venv, so nothing is downloaded. Returns the finished pytest run.
    """
    site = tmp_path / "site"
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
            site,
            dest,
        ],
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    env = {**os.environ, "PYTHONPATH": str(site), "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("LEARN_TARGET", None)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=dest,
        capture_output=True,
        text=True,
        env=env,
    )
