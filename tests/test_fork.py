"""`learn fork`: a project becomes a standalone repository that installs and tests alone."""

import subprocess
import textwrap

import pytest
from conftest import install_and_test_fork

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
