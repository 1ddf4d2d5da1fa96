"""`learn fork`: a project becomes a standalone repository that installs and tests alone."""

import os
import subprocess
import textwrap

import pytest
from support import install_and_test_fork

from learn.fork import ForkError, fork_directory


@pytest.fixture
def project(tmp_path):
    """A minimal project package shaped like the workbook's (src layout, tests, pyproject)."""
    root = tmp_path / "projects" / "tiny"
    (root / "src" / "tiny").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "pyproject.toml").write_text(
        textwrap.dedent(
            """\
            [build-system]
            requires = ["setuptools>=68"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "tiny"
            version = "0.1.0"
            requires-python = ">=3.11"
            """
        )
    )
    (root / "src" / "tiny" / "__init__.py").write_text("def double(x):\n    return 2 * x\n")
    (root / "tests" / "test_tiny.py").write_text(
        "from tiny import double\n\ndef test_double():\n    assert double(2) == 4\n"
    )
    (root / "src" / "tiny" / "__pycache__").mkdir()
    (root / "src" / "tiny" / "__pycache__" / "junk.pyc").write_bytes(b"x")
    return root


def test_fork_installs_and_passes_its_own_tests(project, tmp_path):
    dest = fork_directory(project, tmp_path / "fork")
    assert not list(dest.rglob("__pycache__")), "build debris copied"
    assert (dest / "constraints.txt").is_file(), "the workbook's pins travel with the fork"
    log = subprocess.run(["git", "log", "--oneline"], cwd=dest, capture_output=True, text=True)
    assert "Fork from the AI Architect Workbook" in log.stdout
    result = install_and_test_fork(dest, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def test_fork_refuses_a_non_empty_destination(project, tmp_path):
    dest = tmp_path / "taken"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    with pytest.raises(ForkError, match="not empty"):
        fork_directory(project, dest)
    assert [p.name for p in dest.iterdir()] == ["keep.txt"]


def test_fork_refuses_a_folder_that_is_not_a_package(tmp_path):
    with pytest.raises(ForkError, match="no pyproject.toml"):
        fork_directory(tmp_path, tmp_path / "out")


def test_a_failing_git_is_a_fork_error_and_leaves_nothing(project, tmp_path, monkeypatch):
    """git failing (here: a stand-in that always exits 1) is reported, never a traceback."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "git").write_text("#!/bin/sh\necho 'fatal: simulated failure' >&2\nexit 1\n")
    (fake / "git").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")
    dest = tmp_path / "fork"
    with pytest.raises(ForkError, match="simulated failure"):
        fork_directory(project, dest)
    assert not dest.exists(), "a failed fork removes what it wrote"


def test_the_fork_run_cannot_see_the_workbook(project, tmp_path):
    """The fork's tests run with the workbook's editable installs hidden: `learn` too."""
    (project / "tests" / "test_alone.py").write_text(
        "import importlib.util\n\n"
        "def test_workbook_is_hidden():\n"
        "    for name in ('learn', 'scratch_ml', 'tabular_service'):\n"
        "        assert importlib.util.find_spec(name) is None, name\n"
    )
    dest = fork_directory(project, tmp_path / "fork")
    result = install_and_test_fork(dest, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
