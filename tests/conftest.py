"""Shared fixtures for the workbook's own tests (helpers live in support.py)."""

import shutil
from pathlib import Path

import pytest

from learn import REPO_ROOT


@pytest.fixture
def reference_workspace(tmp_path) -> Path:
    """A workspace holding the *reference* Phase 0: everything passes until a test breaks it."""
    ws = tmp_path / "ws"
    shutil.copytree(REPO_ROOT / "phases" / "phase0", ws / "phases" / "phase0")
    return ws
