"""Where the stores go: the project home when TABULAR_HOME is not set, and the URIs built on it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tabular_service import tracking
from tabular_service.settings import Settings

PROJECT = Path(__file__).resolve().parents[1]


def _package(root: Path, name: str = "tabular-service") -> Path:
    """A source checkout at `root` (src layout, pyproject naming `name`); returns a module path."""
    module = root / "src" / "tabular_service" / "tracking.py"
    module.parent.mkdir(parents=True)
    module.write_text("")
    (root / "pyproject.toml").write_text(f'[project]\nname = "{name}"\n')
    return module


def _workbook(root: Path) -> Path:
    """A checkout of the workbook: curriculum.yaml and projects/tabular_service at its root."""
    (root / "curriculum.yaml").parent.mkdir(parents=True, exist_ok=True)
    (root / "curriculum.yaml").write_text("phases: []\n")
    _package(root / "projects" / "tabular_service")
    return root


def test_a_source_checkout_is_home_wherever_the_command_starts(tmp_path: Path) -> None:
    module = _package(tmp_path / "fork")
    elsewhere = tmp_path / "somewhere" / "else"
    elsewhere.mkdir(parents=True)
    assert tracking.default_home(module, elsewhere) == (tmp_path / "fork").resolve()
    workbook = _workbook(tmp_path / "workbook")
    checkout = workbook / "projects" / "tabular_service"
    module = checkout / "src" / "tabular_service" / "tracking.py"
    assert tracking.default_home(module, workbook) == checkout.resolve()  # never the root


def test_an_installed_package_uses_the_current_directory(tmp_path: Path) -> None:
    module = tmp_path / "site-packages" / "tabular_service" / "tracking.py"
    module.parent.mkdir(parents=True)
    cwd = tmp_path / "work"
    cwd.mkdir()
    assert tracking.default_home(module, cwd) == cwd.resolve()
    # A src/ layout of some other distribution is not this project's checkout either.
    other = _package(tmp_path / "other", name="something-else")
    assert tracking.default_home(other, cwd) == cwd.resolve()


def test_an_installed_package_run_inside_the_workbook_uses_its_project_folder(
    tmp_path: Path,
) -> None:
    module = tmp_path / "site-packages" / "tabular_service" / "tracking.py"
    module.parent.mkdir(parents=True)
    workbook = _workbook(tmp_path / "workbook")
    (workbook / "book").mkdir()
    expected = (workbook / "projects" / "tabular_service").resolve()
    assert tracking.default_home(module, workbook) == expected
    assert tracking.default_home(module, workbook / "book") == expected


def test_this_checkout_is_its_own_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Run from anywhere (here: a temporary folder), training and serving meet in this project."""
    monkeypatch.delenv("TABULAR_HOME", raising=False)
    monkeypatch.delenv("TABULAR_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    assert tracking.project_home() == PROJECT
    assert Settings().home == PROJECT
    assert tracking.tracking_uri() == f"sqlite:///{PROJECT / 'mlruns' / 'mlflow.db'}"
    assert Settings().registry_uri() == tracking.tracking_uri()


def test_tabular_home_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TABULAR_HOME", str(tmp_path))
    monkeypatch.delenv("TABULAR_TRACKING_URI", raising=False)
    assert tracking.project_home() == tmp_path.resolve()
    assert Settings().home == tmp_path.resolve()
    assert tracking.artifact_root() == tmp_path.resolve() / "mlruns" / "artifacts"
