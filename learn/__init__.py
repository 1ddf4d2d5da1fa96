"""The AI Architect Workbook's learner tool: scaffolds, grading, progress and the book.

Kept import-light on purpose: `learn --help` must stay fast, so submodules import their
heavy dependencies inside the functions that need them.
"""

from pathlib import Path

__version__ = "0.1.0"

#: The workbook checkout this package was installed from (editable install).
REPO_ROOT = Path(__file__).resolve().parent.parent

#: Caches and environments that are never part of a copy (scaffold, stamped repo or fork).
DEBRIS_DIRS = frozenset(
    {
        "__pycache__",
        ".git",
        ".venv",
        ".pytest_cache",
        ".ruff_cache",
        ".mypy_cache",
        ".ipynb_checkpoints",
        ".hypothesis",
        # Outputs of running a project: builds, benchmark results, MLflow stores, model caches.
        "build",
        "dist",
        "bench-results",
        "mlruns",
        ".model-cache",
    }
)
DEBRIS_SUFFIXES = (".pyc", ".pyo")
#: Directory name endings that mark debris too (setuptools' package metadata).
DEBRIS_DIR_SUFFIXES = (".egg-info",)


def is_debris_dir(name: str) -> bool:
    """Whether a directory called `name` is debris: never scaffolded, stamped or forked."""
    return name in DEBRIS_DIRS or name.endswith(DEBRIS_DIR_SUFFIXES)
