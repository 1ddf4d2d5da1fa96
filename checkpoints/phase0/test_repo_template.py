"""Checkpoints 0.7-0.9: the repository template in phases/phase0/repo_template.

Every test stamps the graded root's template into a temporary folder (as `learn new-repo`
does) and checks what the new repository does, not how its files are written:

- 0.7: `make lint` and `make test` pass on the fresh repository, and fail once it has a lint
  error, unformatted code or a failing test;
- 0.8: `pre-commit run --all-files` runs hooks and passes without network access, and fails
  once a lint error is committed;
- 0.9: the GitHub Actions workflow parses, runs on push and pull_request with Python 3.11, and
  has a job that installs the project, then runs `make lint` and `make test`.

The tools (ruff, pytest, pre-commit) come from the environment running the grader: its
`bin` folder is put first on PATH, so the stamped repository needs no virtualenv of its own.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

PROJECT = "checkpoint-demo"
PACKAGE = "checkpoint_demo"

# Formatted code with one lint error (F401, an unused import) and nothing else.
LINT_ERROR = '"""Unused import."""\n\nimport os\n\n\ndef answer() -> int:\n    return 42\n'
# Lint-clean code that `ruff format` would rewrite.
UNFORMATTED = '"""A badly formatted module."""\n\n\ndef answer( ) -> int :\n    return  42\n'
FAILING_TEST = "def test_fails_on_purpose() -> None:\n    assert 1 + 1 == 3\n"
# A proxy nobody listens on: anything that tries to download (a remote hook repo) fails fast.
DEAD_PROXY = "http://127.0.0.1:9"


# --- helpers -----------------------------------------------------------------------------------


def _require(tool: str, where: str | None = None) -> str:
    found = shutil.which(tool, path=where) if where else shutil.which(tool)
    if not found:
        pytest.fail(f"{tool} is not installed in the workbook's environment; run `make setup`")
    return found


def _env(home: Path) -> dict[str, str]:
    """Environment for commands in the stamped repository: the grader's tools first on PATH."""
    drop = {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "VIRTUAL_ENV", "PYTEST_ADDOPTS", "PYTHONPATH"}
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("GIT_")}
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    env["PRE_COMMIT_HOME"] = str(home / "pre-commit-home")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["GIT_TERMINAL_PROMPT"] = "0"
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        env[var] = DEAD_PROXY
    env.pop("NO_PROXY", None)
    env.pop("no_proxy", None)
    return env


def _run(args: list[str], repo: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args,
        cwd=repo,
        env=_env(repo.parent),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def _tail(proc: subprocess.CompletedProcess[str], lines: int = 25) -> str:
    text = (proc.stdout + proc.stderr).strip().splitlines()
    return "\n".join(text[-lines:]) or "(no output)"


def _make(repo: Path, target: str) -> subprocess.CompletedProcess[str]:
    return _run([_require("make"), target], repo)


def _assert_ok(proc: subprocess.CompletedProcess[str], what: str) -> None:
    assert proc.returncode == 0, (
        f"{what} should succeed on a freshly stamped repository, "
        f"but exited with {proc.returncode}:\n{_tail(proc)}"
    )


def _assert_fails(proc: subprocess.CompletedProcess[str], what: str, why: str) -> None:
    assert proc.returncode != 0, (
        f"{what} should fail on a repository with {why}, but it exited 0:\n{_tail(proc)}"
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository freshly stamped from the graded root's template (committed, when git is)."""
    from learn.template import stamp_template, template_dir
    from learn.testing import target_root

    source = template_dir(target_root())
    if not source.is_dir():
        pytest.fail(f"no repository template at {source}")
    return stamp_template(source, tmp_path / "repo", PROJECT, PACKAGE)


# --- 0.7: the Makefile --------------------------------------------------------------------------


@pytest.mark.checkpoint("0.7")
def test_make_lint_passes_and_catches_a_lint_error(repo: Path) -> None:
    _assert_ok(_make(repo, "lint"), "`make lint`")
    (repo / "src" / PACKAGE / "careless.py").write_text(LINT_ERROR)
    _assert_fails(_make(repo, "lint"), "`make lint`", "an unused import (ruff's F401)")


@pytest.mark.checkpoint("0.7")
def test_make_lint_checks_formatting(repo: Path) -> None:
    _assert_ok(_make(repo, "lint"), "`make lint`")
    (repo / "src" / PACKAGE / "messy.py").write_text(UNFORMATTED)
    ruff = _require("ruff", str(Path(sys.executable).parent))
    # The module is lint-clean: only its formatting is wrong.
    assert _run([ruff, "check", "--isolated", "src"], repo).returncode == 0
    _assert_fails(
        _make(repo, "lint"), "`make lint`", "code that `ruff format --check` reports unformatted"
    )


@pytest.mark.checkpoint("0.7")
def test_make_test_runs_the_tests(repo: Path) -> None:
    proc = _make(repo, "test")
    _assert_ok(proc, "`make test`")
    assert "passed" in proc.stdout + proc.stderr, (
        f"`make test` exited 0 but did not report passing tests; does it run pytest?\n{_tail(proc)}"
    )
    (repo / "tests" / "test_on_purpose.py").write_text(FAILING_TEST)
    _assert_fails(_make(repo, "test"), "`make test`", "a failing test")


@pytest.mark.checkpoint("0.7")
def test_make_check_runs_lint_and_test(repo: Path) -> None:
    _assert_ok(_make(repo, "check"), "`make check`")
    (repo / "tests" / "test_on_purpose.py").write_text(FAILING_TEST)
    _assert_fails(_make(repo, "check"), "`make check`", "a failing test")


# --- 0.8: pre-commit ----------------------------------------------------------------------------


def _pre_commit(repo: Path) -> subprocess.CompletedProcess[str]:
    pre_commit = _require("pre-commit", str(Path(sys.executable).parent))
    git = _require("git")
    if not (repo / ".git").is_dir():
        _run([git, "init", "--quiet"], repo)
    _run([git, "add", "--all"], repo)
    return _run([pre_commit, "run", "--all-files", "--color", "never"], repo)


def _assert_hooks_pass(proc: subprocess.CompletedProcess[str]) -> None:
    out = proc.stdout + proc.stderr
    hint = ""
    if any(word in out for word in ("clone", "fetch", "unexpected error")):
        hint = "\nA hook had to be downloaded: use `repo: local` hooks with `language: system`."
    assert proc.returncode == 0, (
        f"`pre-commit run --all-files` should pass offline on a freshly stamped repository, "
        f"but exited with {proc.returncode}:\n{_tail(proc)}{hint}"
    )
    assert "Passed" in out, (
        "`pre-commit run --all-files` ran no hook on the Python files: "
        f"add hooks to .pre-commit-config.yaml.\n{_tail(proc)}"
    )


@pytest.mark.checkpoint("0.8")
def test_pre_commit_hooks_pass_offline(repo: Path) -> None:
    _assert_hooks_pass(_pre_commit(repo))


@pytest.mark.checkpoint("0.8")
def test_pre_commit_hooks_catch_a_lint_error(repo: Path) -> None:
    _assert_hooks_pass(_pre_commit(repo))
    (repo / "src" / PACKAGE / "careless.py").write_text(LINT_ERROR)
    proc = _pre_commit(repo)
    assert proc.returncode != 0, (
        "`pre-commit run --all-files` should fail on a file with an unused import (ruff's "
        f"F401), but it passed:\n{_tail(proc)}"
    )


# --- 0.9: the CI workflow -----------------------------------------------------------------------


def _workflows(repo: Path) -> dict[str, dict[str, Any]]:
    import yaml

    folder = repo / ".github" / "workflows"
    files = sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")]) if folder.is_dir() else []
    if not files:
        pytest.fail("no workflow in .github/workflows/ (ci.yml)")
    parsed: dict[str, dict[str, Any]] = {}
    for path in files:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            pytest.fail(f"{path.relative_to(repo)} is not valid YAML: {exc}")
        if not isinstance(data, dict):
            pytest.fail(f"{path.relative_to(repo)} is not a workflow (a YAML mapping)")
        parsed[str(path.relative_to(repo))] = data
    return parsed


def _triggers(workflow: dict[Any, Any]) -> set[str]:
    # YAML 1.1 (PyYAML) reads the key `on` as the boolean True.
    on = workflow.get("on", workflow.get(True))
    if isinstance(on, str):
        return {on}
    if isinstance(on, list | dict):
        return {str(t) for t in on}
    return set()


def _commands(run: str) -> list[list[str]]:
    """The simple commands of a `run:` script, split on newlines, `&&`, `||` and `;`."""
    commands = []
    for line in run.replace("\\\n", " ").splitlines():
        for part in line.replace("&&", ";").replace("||", ";").split(";"):
            try:
                words = shlex.split(part, comments=True)
            except ValueError:
                words = part.split()
            if words:
                commands.append(words)
    return commands


def _make_targets(words: list[str]) -> set[str]:
    if not words or Path(words[0]).name not in {"make", "gmake"}:
        return set()
    return {w for w in words[1:] if not w.startswith("-") and "=" not in w}


def _is_install(words: list[str]) -> bool:
    if "install" in _make_targets(words):
        return True
    return "pip" in " ".join(words[:3]) and "install" in words


def _step_index(steps: list[Any], predicate: Any) -> int | None:
    for i, step in enumerate(steps):
        if isinstance(step, dict) and predicate(step):
            return i
    return None


def _runs(step: dict[str, Any], test: Any) -> bool:
    return isinstance(step.get("run"), str) and any(test(c) for c in _commands(step["run"]))


def _ci_job(repo: Path) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(file, workflow, job) of the job whose steps run `make lint` and `make test`."""
    for name, workflow in _workflows(repo).items():
        jobs = workflow.get("jobs")
        for job in (jobs or {}).values() if isinstance(jobs, dict) else []:
            steps = job.get("steps") if isinstance(job, dict) else None
            if not isinstance(steps, list):
                continue
            lint = _step_index(steps, lambda s: _runs(s, lambda c: "lint" in _make_targets(c)))
            test = _step_index(steps, lambda s: _runs(s, lambda c: "test" in _make_targets(c)))
            if lint is not None and test is not None:
                return name, workflow, job
    pytest.fail("no job in .github/workflows/ has steps that run `make lint` and `make test`")


@pytest.mark.checkpoint("0.9")
def test_ci_runs_on_push_and_pull_request(repo: Path) -> None:
    name, workflow, job = _ci_job(repo)
    triggers = _triggers(workflow)
    missing = {"push", "pull_request"} - triggers
    assert not missing, f"{name} must run on push and pull_request; missing: {sorted(missing)}"
    runs_on = job.get("runs-on")
    assert isinstance(runs_on, str) and runs_on.startswith("ubuntu"), (
        f"{name}: the job should run on a GitHub-hosted Ubuntu runner (ubuntu-latest), "
        f"not {runs_on!r}"
    )


def _uses(step: dict[str, Any], action: str) -> bool:
    return str(step.get("uses", "")).startswith(action)


def _python_versions(step: dict[str, Any], job: dict[str, Any]) -> list[str]:
    version = (step.get("with") or {}).get("python-version")
    if isinstance(version, str) and "matrix." in version:
        key = version.split("matrix.", 1)[1].strip(" }")
        values = ((job.get("strategy") or {}).get("matrix") or {}).get(key, [])
        return [str(v) for v in (values if isinstance(values, list) else [values])]
    if isinstance(version, list):
        return [str(v) for v in version]
    return [str(version)] if version is not None else []


@pytest.mark.checkpoint("0.9")
def test_ci_installs_python_311_then_lints_and_tests(repo: Path) -> None:
    name, _, job = _ci_job(repo)
    steps = job["steps"]
    checkout = _step_index(steps, lambda s: _uses(s, "actions/checkout@"))
    python = _step_index(steps, lambda s: _uses(s, "actions/setup-python@"))
    install = _step_index(steps, lambda s: _runs(s, _is_install))
    lint = _step_index(steps, lambda s: _runs(s, lambda c: "lint" in _make_targets(c)))
    test = _step_index(steps, lambda s: _runs(s, lambda c: "test" in _make_targets(c)))
    assert lint is not None and test is not None

    assert checkout is not None, f"{name}: check out the code first (actions/checkout)"
    assert python is not None, f"{name}: set up Python with actions/setup-python"
    versions = _python_versions(steps[python], job)
    assert any(v == "3.11" or v.startswith("3.11.") for v in versions), (
        f'{name}: actions/setup-python should install Python 3.11 (python-version: "3.11", '
        f"quoted so YAML keeps it a string), got {versions or 'no python-version'}"
    )
    assert install is not None, f"{name}: install the project (make install) before linting"
    assert checkout < python < install <= min(lint, test), (
        f"{name}: the steps should run in order: checkout, setup-python, make install, "
        "then make lint and make test"
    )
    for index in {lint, test}:
        step = steps[index]
        assert not step.get("continue-on-error") and not job.get("continue-on-error"), (
            f"{name}: `continue-on-error` would keep CI green when lint or tests fail"
        )
