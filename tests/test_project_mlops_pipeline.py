"""This project works as a fork: see test_projects.py (its own module, so it runs in parallel)."""

import pytest
from test_projects import LANDED, check_fork


@pytest.mark.slow
@pytest.mark.skipif("mlops_pipeline" not in LANDED, reason="mlops_pipeline has not landed")
def test_forked_mlops_pipeline_installs_and_passes_its_own_tests(tmp_path):
    check_fork("mlops_pipeline", tmp_path)
