"""This project works as a fork: see test_projects.py (its own module, so it runs in parallel)."""

import pytest
from test_projects import LANDED, check_fork


@pytest.mark.slow
@pytest.mark.skipif("rag_service" not in LANDED, reason="rag_service has not landed")
def test_forked_rag_service_installs_and_passes_its_own_tests(tmp_path):
    check_fork("rag_service", tmp_path)
