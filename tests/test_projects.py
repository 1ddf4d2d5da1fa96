"""Every landed project works as a fork: copied out alone, it installs and passes its tests.

This is where `make test` runs each project's own test suite, in a `learn fork` copy rather
than in place, so a project that secretly depends on the workbook around it fails here.
"""

import pytest
from conftest import install_and_test_fork

from learn.fork import fork_project
from learn.manifest import load_manifest

LANDED = [p.id for p in load_manifest().projects if p.exists()]


@pytest.mark.slow
@pytest.mark.parametrize("project_id", LANDED)
def test_forked_project_installs_and_passes_its_own_tests(project_id, tmp_path):
    dest = fork_project(project_id, tmp_path / project_id)
    tests = install_and_test_fork(dest, tmp_path)
    tail = "\n".join((tests.stdout + tests.stderr).splitlines()[-40:])
    assert tests.returncode == 0, tail
    assert " passed" in tail
