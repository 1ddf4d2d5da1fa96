"""Helpers for checkpoint tests: find the graded code and import it safely.

Checkpoint tests import learner modules inside the test, through `import_learner`, so that one
broken file turns into an error row for the checkpoints that use it rather than a collection
error that hides every other result.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from types import ModuleType

from learn import REPO_ROOT

TARGET_ENV = "LEARN_TARGET"
#: JSON {checkpoint id: seconds used}, passed by the grader when it restarts pytest after a
#: crash, so a checkpoint's time budget is shared by all its tests across restarts.
USED_ENV = "LEARN_BUDGET_USED"


class LearnerCodeError(Exception):
    """The learner's code could not be imported (syntax error, import error, crash at import).

    The grader reports checkpoints that raise it as `error` rather than `failed`.
    """


def target_root() -> Path:
    """The root being graded: a learner workspace, or the repository for `--reference`."""
    return Path(os.environ.get(TARGET_ENV) or REPO_ROOT).resolve()


def import_learner(name: str) -> ModuleType:
    """Import module `name` from the graded root's pythonpath, with a readable error.

    A fresh import each call would be wasteful; modules are cached by Python as usual. A module
    that failed to import is dropped from the cache so the next test reports it again.
    """
    try:
        module = importlib.import_module(name)
    except SyntaxError as exc:
        sys.modules.pop(name, None)
        where = f"{exc.filename}, line {exc.lineno}" if exc.filename else "unknown file"
        raise LearnerCodeError(f"SyntaxError in {where}: {exc.msg}") from None
    except ModuleNotFoundError as exc:
        sys.modules.pop(name, None)
        raise LearnerCodeError(
            f"cannot import {name!r}: {exc} (searched {', '.join(sys.path[:3])} ...)"
        ) from None
    except Exception as exc:  # the learner's module crashed while importing
        sys.modules.pop(name, None)
        raise LearnerCodeError(f"importing {name!r} raised {type(exc).__name__}: {exc}") from exc
    _check_origin(name, module)
    return module


def _check_origin(name: str, module: ModuleType) -> None:
    """Refuse a module that came from outside the graded root: that would grade other code."""
    root = target_root()
    origin = getattr(module, "__file__", None)
    if root == REPO_ROOT.resolve() or origin is None:
        return
    if not Path(origin).resolve().is_relative_to(root):
        sys.modules.pop(name, None)
        raise LearnerCodeError(
            f"{name!r} was imported from {origin}, outside the graded folder {root}: "
            "is a file of your workspace missing (an __init__.py, say)? "
            "`learn start` restores missing files"
        )
