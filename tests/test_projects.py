"""Every landed project works as a fork: copied out alone, it installs and passes its tests.

This is where `make test` runs each project's own test suite, in a `learn fork` copy rather
than in place, so a project that secretly depends on the workbook around it fails here.
"""

import os
import subprocess
import sys

import pytest

from learn.fork import fork_project
from learn.manifest import load_manifest

LANDED = [p.id for p in load_manifest().projects if p.exists()]


@pytest.mark.slow
@pytest.mark.parametrize("project_id", LANDED)
def test_forked_project_installs_and_passes_its_own_tests(project_id, tmp_path):
    dest = fork_project(project_id, tmp_path / project_id)
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
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x"],
        cwd=dest,
        capture_output=True,
        text=True,
        env=env,
    )
    tail = "\n".join((tests.stdout + tests.stderr).splitlines()[-40:])
    assert tests.returncode == 0, tail
    assert " passed" in tail
