"""The package root: what ``from scratch_ml import ...`` offers, and the README that shows it."""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from _support import public_estimators

import scratch_ml
from scratch_ml import base, boosting, linear, tree
from scratch_ml._param_validation import InvalidParameterError

PROJECT = Path(__file__).resolve().parents[1]


def test_estimators_import_from_the_root_and_from_their_modules():
    from scratch_ml import (
        DecisionTreeClassifier,
        DecisionTreeRegressor,
        GradientBoostingClassifier,
        GradientBoostingRegressor,
        LogisticRegression,
    )

    assert LogisticRegression is linear.LogisticRegression
    assert DecisionTreeClassifier is tree.DecisionTreeClassifier
    assert DecisionTreeRegressor is tree.DecisionTreeRegressor
    assert GradientBoostingClassifier is boosting.GradientBoostingClassifier
    assert GradientBoostingRegressor is boosting.GradientBoostingRegressor
    assert scratch_ml.InvalidParameterError is InvalidParameterError is base.InvalidParameterError
    assert scratch_ml.NotFittedError is base.NotFittedError
    assert scratch_ml.ConvergenceWarning is linear.ConvergenceWarning


def test_all_is_the_public_api_and_star_import_gives_exactly_it():
    estimators = {
        "LogisticRegression",
        "DecisionTreeClassifier",
        "DecisionTreeRegressor",
        "GradientBoostingClassifier",
        "GradientBoostingRegressor",
    }
    assert estimators <= set(scratch_ml.__all__)
    assert scratch_ml.__all__ == sorted(scratch_ml.__all__), "kept sorted for readers"
    assert set(scratch_ml.__all__) == {*scratch_ml._EXPORTS, "__version__"}
    namespace: dict[str, object] = {}
    exec("from scratch_ml import *", namespace)
    assert sorted(set(namespace) - {"__builtins__"}) == sorted(scratch_ml.__all__)
    assert set(scratch_ml.__all__) <= set(dir(scratch_ml))


def test_every_estimator_but_the_bin_mapper_is_exported():
    """BinMapper is boosting's building block, reached as scratch_ml.binning.BinMapper."""
    estimators = {cls.__name__ for cls in public_estimators()}
    assert estimators - set(scratch_ml.__all__) == {"BinMapper"}


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="module 'scratch_ml' has no attribute 'Lasso'"):
        scratch_ml.Lasso  # noqa: B018
    with pytest.raises(ImportError, match="Lasso"):
        exec("from scratch_ml import Lasso", {})


def test_importing_one_module_loads_no_unrelated_estimator():
    """In a learner's workspace a module that does not import yet must not break the others."""
    code = (
        "import sys, scratch_ml, scratch_ml.tree\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('scratch_ml.'))\n"
        "print(loaded)\n"
        "assert 'scratch_ml.linear' not in loaded and 'scratch_ml.boosting' not in loaded\n"
        "from scratch_ml import LogisticRegression\n"
        "assert 'scratch_ml.linear' in sys.modules\n"
    )
    env = {**os.environ, "PYTHONPATH": str(PROJECT / "src")}
    run = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_readme_usage_example_runs():
    """The README's usage block is real code: run it, and check what it prints."""
    readme = (PROJECT / "README.md").read_text(encoding="utf-8")
    usage = readme.split("## Usage", 1)[1]
    code = re.search(r"```python\n(.*?)```", usage, re.DOTALL).group(1)
    assert "from scratch_ml import" in code
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
    lines = printed.getvalue().splitlines()
    assert [line.split("(")[0] for line in lines[:3]] == [
        "LogisticRegression",
        "DecisionTreeClassifier",
        "GradientBoostingClassifier",
    ]
    assert all("accuracy" in line and "AUC" in line for line in lines[:3])
    shown = re.search(r"^# -> (.*)$", code, re.MULTILINE).group(1)  # the error, as documented
    assert lines[3:] == [shown]
