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


#: Modules whose tests are long and independent: spread over the workers, not kept together.
SPREAD_MODULES = frozenset({"test_projects"})


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Under `--dist loadgroup`, keep each module's tests on one worker.

    Their module- and session-scoped fixtures (a built book, a podman image, a stamped
    repository) are then built once, not once per worker; modules in SPREAD_MODULES, and
    tests that name their own xdist_group, are left as they are.
    """
    for item in items:
        module = getattr(getattr(item, "module", None), "__name__", "other")
        if module in SPREAD_MODULES or item.get_closest_marker("xdist_group"):
            continue
        item.add_marker(pytest.mark.xdist_group(module))
