"""Checkpoint tests run under the grader's pytest plugin, also when started with plain pytest.

Without `--learn-target` the plugin grades the reference code in this repository.
"""

pytest_plugins = ["learn.grader.plugin"]
