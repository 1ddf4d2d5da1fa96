"""Every landed project works as a fork: copied out alone, it installs and passes its tests.

This is where `make test` runs each project's own test suite, in a `learn fork` copy rather
than in place, with the workbook's editable installs hidden, so a project that secretly
depends on the workbook around it fails here.
"""

import pytest
from support import install_and_test_fork

from learn.fork import fork_project
from learn.manifest import load_manifest

LANDED = [p.id for p in load_manifest().projects if p.exists()]
#: Projects whose suites take minutes get a module of their own (test_project_<id>.py), so
#: pytest-xdist's --dist loadscope can run them on different workers instead of one after
#: the other on the same worker.
OWN_MODULE = {"mlops_pipeline", "rag_service"}
#: Sibling projects a project uses when they are installed (and skips tests for otherwise):
#: installed next to its fork here, so those tests run in CI too.
COMPANIONS = {"tabular_service": ["scratch_ml"]}


@pytest.mark.slow
@pytest.mark.parametrize("project_id", [p for p in LANDED if p not in OWN_MODULE])
def test_forked_project_installs_and_passes_its_own_tests(project_id, tmp_path):
    check_fork(project_id, tmp_path)


def check_fork(project_id: str, tmp_path) -> None:
    """Fork `project_id` with its companions, install it alone, and run its whole suite."""
    dest = fork_project(project_id, tmp_path / project_id)
    companions = [
        fork_project(other, tmp_path / "companions" / other)
        for other in COMPANIONS.get(project_id, [])
        if other in LANDED
    ]
    tests = install_and_test_fork(dest, tmp_path, companions, pytest_args=["-rfEs"])
    output = tests.stdout + tests.stderr
    tail = "\n".join(output.splitlines()[-40:])
    assert tests.returncode == 0, tail
    assert " passed" in tail
    for other in COMPANIONS.get(project_id, []):
        skipped_for_it = [
            line for line in output.splitlines() if line.startswith("SKIPPED") and other in line
        ]
        assert not skipped_for_it, f"{other} is installed, yet tests skipped: {skipped_for_it}"
