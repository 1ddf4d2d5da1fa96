"""Unit tests for learn.template (stamping the Phase 0 repository template) and the template.

The last tests also guard the grading contract of checkpoints 0.7-0.9: the template's solution
regions, replaced the way `learn start` replaces them (docs/authoring.md), leave valid files
that make every checkpoint test fail, while the reference passes `make check`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from learn import REPO_ROOT
from learn.files import iter_files
from learn.template import (
    TemplateError,
    default_package_name,
    stamp_template,
    strip_markers,
    template_dir,
)

TEMPLATE = template_dir(REPO_ROOT)
VENV_BIN = Path(sys.executable).parent
needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def tool_env(**extra: str) -> dict[str, str]:
    """os.environ with this venv's ruff/pytest first on PATH, without make's or git's variables."""
    drop = {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "VIRTUAL_ENV", "PYTEST_ADDOPTS", "PYTHONPATH"}
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("GIT_")}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def run(args: list[str], cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, env=tool_env(**extra), capture_output=True, text=True, timeout=120
    )


# --- names --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("project", "package"),
    [
        ("credit-api", "credit_api"),
        ("Credit-API", "credit_api"),
        ("my.service", "my_service"),
        ("svc", "svc"),
        ("a--b", "a_b"),
    ],
)
def test_default_package_name(project: str, package: str) -> None:
    assert default_package_name(project) == package


@pytest.mark.parametrize(
    "project", ["", "-svc", "svc-", "has space", "a/b", "../up", "naïve", "x_", "{{ x }}", "a\nb"]
)
def test_bad_project_name_is_refused(tmp_path: Path, project: str) -> None:
    with pytest.raises(TemplateError, match="invalid project name"):
        stamp_template(TEMPLATE, tmp_path / "out", project, "pkg_ok", init_git=False)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("package", "why"),
    [
        ("1svc", "identifier"),
        ("my-svc", "identifier"),
        ("my svc", "identifier"),
        ("naïve", "identifier"),
        ("", "identifier"),
        ("class", "keyword"),
        ("json", "standard-library"),
        ("typing", "standard-library"),
    ],
)
def test_bad_package_name_is_refused(tmp_path: Path, package: str, why: str) -> None:
    with pytest.raises(TemplateError, match=why):
        stamp_template(TEMPLATE, tmp_path / "out", "fine-name", package, init_git=False)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("project", ["2fast", "import", "Logging"])
def test_derived_package_name_is_validated_too(tmp_path: Path, project: str) -> None:
    with pytest.raises(TemplateError, match="invalid package name"):
        stamp_template(TEMPLATE, tmp_path / "out", project, init_git=False)
    # ... and an explicit package name fixes it.
    stamp_template(TEMPLATE, tmp_path / "out", project, "fixed_name", init_git=False)
    assert (tmp_path / "out" / "src" / "fixed_name" / "__init__.py").is_file()


def test_template_error_is_a_value_error() -> None:
    assert issubclass(TemplateError, ValueError)


# --- destination and source ---------------------------------------------------------------------


def test_non_empty_destination_is_refused(tmp_path: Path) -> None:
    dest = tmp_path / "taken"
    dest.mkdir()
    (dest / "notes.txt").write_text("mine")
    with pytest.raises(TemplateError, match="not empty"):
        stamp_template(TEMPLATE, dest, "svc", init_git=False)
    assert sorted(p.name for p in dest.iterdir()) == ["notes.txt"]
    assert (dest / "notes.txt").read_text() == "mine"


def test_destination_that_is_a_file_is_refused(tmp_path: Path) -> None:
    dest = tmp_path / "file"
    dest.write_text("x")
    with pytest.raises(TemplateError, match="not a folder"):
        stamp_template(TEMPLATE, dest, "svc", init_git=False)


def test_empty_existing_destination_is_used(tmp_path: Path) -> None:
    dest = tmp_path / "empty"
    dest.mkdir()
    assert stamp_template(TEMPLATE, dest, "svc", init_git=False) == dest.resolve()
    assert (dest / "pyproject.toml").is_file()


def test_missing_template_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="no repository template"):
        stamp_template(tmp_path / "nowhere", tmp_path / "out", "svc", init_git=False)


def test_destination_inside_the_template_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "tpl"
    source.mkdir()
    (source / "README.md").write_text("hi")
    with pytest.raises(TemplateError, match="inside the template"):
        stamp_template(source, source / "out", "svc", init_git=False)


# --- copying ------------------------------------------------------------------------------------


@pytest.fixture
def mini_template(tmp_path: Path) -> Path:
    """A small synthetic template exercising every copying rule."""
    root = tmp_path / "tpl"
    pkg = root / "src" / "{{ package_name }}"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text('"""{{ project_name }} ({{package_name}})."""\n')
    (root / "docs").mkdir()
    (root / "docs" / "{{ project_name }}-notes.md").write_text("# {{ project_name }}\n")
    (root / "ci.yml").write_text(
        "name: {{ project_name }}\nos: ${{ matrix.os }}\nother: {{ not_a_name }}\n"
    )
    (root / "tests").mkdir()
    (root / "tests" / "test_it.py.tmpl").write_text("from {{ package_name }} import x\n")
    script = root / "run.sh"
    script.write_text("#!/bin/sh\necho {{ package_name }}\n")
    script.chmod(0o755)
    (root / "logo.bin").write_bytes(bytes(range(256)) + b"{{ project_name }}")
    (root / "__pycache__").mkdir()
    (root / "__pycache__" / "junk.pyc").write_bytes(b"\0")
    (pkg / "stale.pyc").write_bytes(b"\0")
    (root / ".venv").mkdir()
    (root / ".venv" / "pyvenv.cfg").write_text("home = /usr\n")
    (root / "Makefile").write_text(
        "lint:\n"
        "\t# BEGIN SOLUTION 0.7: run ruff\n"
        "\truff check .\n"
        "\t# END SOLUTION\n"
        "\t# BEGIN PROMPT\n"
        '\t# @echo "0.7: not implemented" && exit 1\n'
        "\t# END PROMPT\n"
        "\n"
        "# a plain comment stays\n"
    )
    return root


def test_placeholders_are_substituted_in_contents_and_paths(
    tmp_path: Path, mini_template: Path
) -> None:
    dest = stamp_template(mini_template, tmp_path / "out", "Credit-API", init_git=False)
    init = dest / "src" / "credit_api" / "__init__.py"
    assert init.read_text() == '"""Credit-API (credit_api)."""\n'
    assert (dest / "docs" / "Credit-API-notes.md").read_text() == "# Credit-API\n"
    assert (dest / "ci.yml").read_text() == (
        "name: Credit-API\nos: ${{ matrix.os }}\nother: {{ not_a_name }}\n"
    )
    assert (dest / "tests" / "test_it.py").read_text() == "from credit_api import x\n"
    assert not (dest / "tests" / "test_it.py.tmpl").exists()
    assert not any("{{" in str(p.relative_to(dest)) for p in dest.rglob("*"))


def test_modes_binary_files_and_skips(tmp_path: Path, mini_template: Path) -> None:
    dest = stamp_template(mini_template, tmp_path / "out", "svc", init_git=False)
    assert os.stat(dest / "run.sh").st_mode & stat.S_IXUSR
    assert not os.stat(dest / "Makefile").st_mode & stat.S_IXUSR
    assert (dest / "logo.bin").read_bytes() == (mini_template / "logo.bin").read_bytes()
    assert not (dest / "__pycache__").exists()
    assert not (dest / ".venv").exists()
    assert not list(dest.rglob("*.pyc"))


def test_solution_markers_and_prompts_are_removed(tmp_path: Path, mini_template: Path) -> None:
    dest = stamp_template(mini_template, tmp_path / "out", "svc", init_git=False)
    assert (dest / "Makefile").read_text() == "lint:\n\truff check .\n\n# a plain comment stays\n"


def test_strip_markers_leaves_other_text_alone() -> None:
    text = "a: 1\n# BEGIN something else\n  # END SOLUTIONS are fine\n"
    assert strip_markers(text) == text


# --- git ----------------------------------------------------------------------------------------


def git(dest: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=dest, capture_output=True, text=True, check=True
    ).stdout.strip()


@needs_git
def test_git_repository_with_an_initial_commit_without_any_identity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A bare CI runner or container: no global or system git config at all.
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for var in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "EMAIL"):
        monkeypatch.delenv(var, raising=False)
    dest = stamp_template(TEMPLATE, tmp_path / "out", "svc")
    assert git(dest, "rev-list", "--count", "HEAD") == "1"
    assert git(dest, "status", "--porcelain") == ""
    assert git(dest, "config", "--local", "user.name")
    assert git(dest, "config", "--local", "user.email")
    assert "pyproject.toml" in git(dest, "ls-files").splitlines()


@needs_git
def test_git_keeps_an_existing_identity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "gitconfig"
    config.write_text("[user]\n\tname = Ada Lovelace\n\temail = ada@example.com\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    dest = stamp_template(TEMPLATE, tmp_path / "out", "svc")
    assert git(dest, "log", "-1", "--format=%an <%ae>") == "Ada Lovelace <ada@example.com>"
    local = subprocess.run(
        ["git", "config", "--local", "--get", "user.name"], cwd=dest, capture_output=True
    )
    assert local.returncode != 0  # nothing written to the repository's own config


def test_no_git_when_asked(tmp_path: Path) -> None:
    dest = stamp_template(TEMPLATE, tmp_path / "out", "svc", init_git=False)
    assert not (dest / ".git").exists()


# --- the reference template ---------------------------------------------------------------------


def test_reference_template_has_the_expected_files() -> None:
    expected = [
        "pyproject.toml",
        "Makefile",
        "README.md",
        ".gitignore",
        ".pre-commit-config.yaml",
        ".devcontainer/devcontainer.json",
        ".github/workflows/ci.yml",
        "src/{{ package_name }}/__init__.py",
    ]
    missing = [name for name in expected if not (TEMPLATE / name).is_file()]
    assert not missing
    assert list((TEMPLATE / "tests").glob("test_*"))


@needs_make
@needs_git
def test_stamped_reference_passes_make_check(tmp_path: Path) -> None:
    dest = stamp_template(TEMPLATE, tmp_path / "out", "demo-service")
    assert (dest / "src" / "demo_service" / "__init__.py").is_file()
    for path in dest.rglob("*"):
        if ".git" in path.relative_to(dest).parts or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"\{\{\s*(project|package)_name\s*\}\}", text), path
        assert "BEGIN SOLUTION" not in text and "BEGIN PROMPT" not in text, path
    proc = run(["make", "check"], dest)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "passed" in proc.stdout
    helped = run(["make", "help"], dest)
    assert helped.returncode == 0
    for target in ("install", "lint", "fmt", "test", "check"):
        assert re.search(rf"^\s*{target}\s", helped.stdout, re.M), helped.stdout
    # `make fmt` leaves a clean repository unchanged.
    assert run(["make", "fmt"], dest).returncode == 0
    assert git(dest, "status", "--porcelain") == ""


@needs_make
def test_reference_makefile_works_with_markers_present(tmp_path: Path) -> None:
    """The unstamped reference Makefile (markers in recipes) runs too."""
    proc = run(["make", "-n", "lint", "test"], TEMPLATE)
    assert proc.returncode == 0, proc.stderr
    assert "ruff check ." in proc.stdout and "-m pytest" in proc.stdout


# --- the scaffold (what `learn start` gives a learner) ------------------------------------------


def template_files() -> list[Path]:
    """The reference template's files, without the caches tools leave in it (.ruff_cache)."""
    return [TEMPLATE / rel for rel in iter_files(TEMPLATE)]


@pytest.fixture(scope="module")
def scaffold_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fake learner workspace holding the template as `learn start` scaffolds it."""
    from learn.manifest import load_manifest
    from learn.scaffold import scaffold_file

    manifest = load_manifest()
    root = tmp_path_factory.mktemp("workspace")
    for path in template_files():
        rel = path.relative_to(REPO_ROOT)
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(scaffold_file(rel, path.read_bytes(), manifest))
    return root


def test_template_regions_belong_to_phase0_and_all_have_prompts() -> None:
    from learn.manifest import load_manifest
    from learn.regions import find_regions

    ids = {c.id for c in load_manifest().phase("phase0").checkpoints}
    seen = set()
    for path in template_files():
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        for region in find_regions(text, str(path)):
            seen.add(region.checkpoint)
            assert lines[region.last_line - 1].strip() == "# END PROMPT", (path, region)
    assert seen == {"0.7", "0.8", "0.9"}
    assert seen <= ids


def test_scaffolded_files_are_valid(scaffold_root: Path) -> None:
    import yaml

    dest = template_dir(scaffold_root)
    precommit = yaml.safe_load((dest / ".pre-commit-config.yaml").read_text())
    assert precommit == {"repos": []}
    assert "BEGIN SOLUTION" not in (dest / "Makefile").read_text()
    workflow = yaml.safe_load((dest / ".github" / "workflows" / "ci.yml").read_text())
    (job,) = workflow["jobs"].values()
    (step,) = job["steps"]
    assert "0.9" in step["run"] and "exit 1" in step["run"]
    if shutil.which("make"):
        for target in ("lint", "test"):
            proc = run(["make", target], dest)
            assert proc.returncode != 0
            assert f"0.7: make {target} is not implemented" in proc.stdout


@needs_make
@needs_git
def test_checkpoints_fail_on_the_scaffold(scaffold_root: Path, tmp_path: Path) -> None:
    """Every 0.7-0.9 checkpoint test fails on the scaffold (the reference run is pytest's own)."""
    results = tmp_path / "results.jsonl"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "checkpoints/phase0/test_repo_template.py",
            f"--learn-target={scaffold_root}",
            f"--learn-results={results}",
        ],
        cwd=REPO_ROOT,
        env=tool_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    events = [json.loads(line) for line in results.read_text().splitlines()]
    ends = [e for e in events if e["event"] == "end"]
    assert ends, proc.stdout + proc.stderr
    assert {e["checkpoint"] for e in ends} == {"0.7", "0.8", "0.9"}
    passed = [e["nodeid"] for e in ends if e["outcome"] == "passed"]
    assert not passed, f"these checkpoint tests pass on the scaffold: {passed}"
    assert all(e["outcome"] == "failed" for e in ends), [(e["nodeid"], e["message"]) for e in ends]
