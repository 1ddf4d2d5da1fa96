"""Shared fixtures for the workbook's own tests."""

import shutil
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
