"""`learn doctor`: check that this machine can run the workbook, with a fix for each failure.

Each check is a small function returning a `CheckResult`; optional checks (a GPU, the browser
used by the book's tests) report a note instead of failing.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from learn import REPO_ROOT

#: Required packages and the version rule that matters, if any (see constraints.txt).
REQUIRED = {
    "typer": None,
    "rich": None,
    "yaml": None,
    "numpy": None,
    "pandas": ("pandas", lambda v: int(v.split(".")[0]) < 3, "pandas<3 (evidently needs it)"),
    "matplotlib": None,
    "pytest": None,
    "watchfiles": None,
    "jupyter_book": (
        "jupyter-book",
        lambda v: int(v.split(".")[0]) < 2,
        "jupyter-book<2 (2.x cannot build offline)",
    ),
}
MIN_FREE_GIB = 5.0
FIX_INSTALL = "run `make setup` in the workbook (it installs with constraints.txt)"


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    optional: bool = False


def check_python() -> CheckResult:
    version = sys.version.split()[0]
    ok = sys.version_info >= (3, 11)
    return CheckResult(
        "Python", ok, version, "install Python 3.11 (Debian/Ubuntu: apt install python3.11-venv)"
    )


def check_packages() -> Iterator[CheckResult]:
    for module, rule in REQUIRED.items():
        if importlib.util.find_spec(module) is None:
            yield CheckResult(f"package {module}", False, "not importable", FIX_INSTALL)
            continue
        if rule is None:
            yield CheckResult(f"package {module}", True, "importable")
            continue
        dist, accept, wanted = rule
        version = importlib.metadata.version(dist)
        yield CheckResult(
            f"package {dist}", accept(version), version, f"need {wanted}; {FIX_INSTALL}"
        )


def check_torch() -> CheckResult:
    try:
        version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return CheckResult(
            "torch",
            False,
            "not installed (needed from Phase 1)",
            "pip install -c constraints.txt torch==2.13.0 (the CPU wheel)",
            optional=True,
        )
    return CheckResult(
        "torch",
        version.startswith("2.13.0"),
        version,
        "pin torch==2.13.0 (constraints.txt); other versions pull a multi-GB CUDA build",
        optional=True,
    )


def check_postgres() -> CheckResult:
    """Start an embedded PostgreSQL with pgvector in a scratch folder, query it, stop it."""
    if importlib.util.find_spec("pgserver") is None:
        return CheckResult("embedded PostgreSQL", False, "pgserver not installed", FIX_INSTALL)
    import warnings

    with warnings.catch_warnings():  # platformdirs warns about XDG_RUNTIME_DIR as root
        warnings.simplefilter("ignore")
        import pgserver

    with tempfile.TemporaryDirectory(prefix="learn-doctor-pg-") as tmp:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                server = pgserver.get_server(tmp, cleanup_mode="stop")
            try:
                out = server.psql(
                    "CREATE EXTENSION IF NOT EXISTS vector; "
                    "SELECT extversion FROM pg_extension WHERE extname = 'vector';"
                )
            finally:
                server.cleanup()
        except Exception as exc:  # report any failure to start as a failed check
            return CheckResult(
                "embedded PostgreSQL",
                False,
                f"did not start: {type(exc).__name__}: {exc}",
                "check free disk and /tmp permissions; reinstall with `pip install pgserver`",
            )
    lines = [line.strip() for line in out.splitlines() if line.strip()]
    version = next((x for x in lines if x[:1].isdigit()), "?")
    return CheckResult("embedded PostgreSQL", True, f"started, pgvector {version}")


def check_gpu() -> CheckResult:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return CheckResult(
            "GPU", False, "none (CPU paths are used; fine for every graded lab)", optional=True
        )
    result = subprocess.run(
        [smi, "--query-gpu=name,memory.total", "--format=csv,noheader"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    ok = result.returncode == 0 and bool(result.stdout.strip())
    return CheckResult(
        "GPU",
        ok,
        result.stdout.strip() or result.stderr.strip(),
        "check the NVIDIA driver",
        optional=True,
    )


def check_kernel() -> CheckResult:
    """The lab notebooks run on the `learn` kernel, which imports the workspace's own code."""
    from learn.kernel import KERNEL_NAME, kernel_dir, kernel_installed

    ok = kernel_installed()
    return CheckResult(
        f"Jupyter kernel {KERNEL_NAME!r}",
        ok,
        str(kernel_dir()) if ok else "not installed in this environment",
        "run `make setup` (or `python -m learn.kernel install`)",
    )


def check_projects() -> CheckResult:
    """The project packages import like any installed package (editable installs)."""
    from learn.manifest import load_manifest

    landed = [p for p in load_manifest().projects if p.exists()]
    missing = [p.id for p in landed if importlib.util.find_spec(p.id) is None]
    return CheckResult(
        "project packages",
        not missing,
        f"missing: {', '.join(missing)}" if missing else ", ".join(p.id for p in landed),
        FIX_INSTALL,
    )


def check_disk() -> CheckResult:
    free = shutil.disk_usage(REPO_ROOT).free / 2**30
    return CheckResult(
        "free disk",
        free >= MIN_FREE_GIB,
        f"{free:.1f} GiB free",
        f"free at least {MIN_FREE_GIB:g} GiB (the full stack's venv is ~3 GiB)",
    )


def check_chromium() -> CheckResult:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    return CheckResult(
        "chromium (book browser test)",
        path is not None,
        path or "not found",
        "apt-get install chromium (make test does this when run as root)",
        optional=True,
    )


def check_node() -> CheckResult:
    npm = shutil.which("npm")
    return CheckResult(
        "npm (fetches MathJax for the offline book)",
        npm is not None,
        npm or "not found",
        "apt-get install nodejs npm",
        optional=True,
    )


CHECKS: list[tuple[str, Callable[[], CheckResult | Iterator[CheckResult]]]] = [
    ("Python", check_python),
    ("packages", check_packages),
    ("torch", check_torch),
    ("project packages", check_projects),
    ("Jupyter kernel", check_kernel),
    ("embedded PostgreSQL", check_postgres),
    ("GPU", check_gpu),
    ("disk", check_disk),
    ("chromium", check_chromium),
    ("npm", check_node),
]


def run_checks(progress: Callable[[str], None] | None = None) -> Iterator[CheckResult]:
    for name, check in CHECKS:
        if progress:
            progress(name)
        result = check()
        if isinstance(result, CheckResult):
            yield result
        else:
            yield from result
