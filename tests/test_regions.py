"""Solution/prompt regions: what the learner's scaffold looks like."""

import json

import pytest

from learn.regions import (
    RegionError,
    find_notebook_regions,
    find_regions,
    strip_notebook,
    strip_regions,
)


def describe(region):
    return f"{region.checkpoint}: {region.what}; see book/x"


REFERENCE = '''\
def area(r: float) -> float:
    """Circle area."""
    # BEGIN SOLUTION 9.1: compute the area
    import math

    return math.pi * r * r
    # END SOLUTION
'''


def test_solution_becomes_raise_at_marker_indent():
    out = strip_regions(REFERENCE, describe, "m.py")
    assert "math.pi" not in out
    assert '    raise NotImplementedError("9.1: compute the area; see book/x")\n' in out
    namespace: dict = {}
    exec(out, namespace)
    with pytest.raises(NotImplementedError, match="9.1"):
        namespace["area"](1.0)


def test_find_regions_reports_ids_and_lines():
    [region] = find_regions(REFERENCE)
    assert (region.checkpoint, region.what, region.first_line, region.last_line) == (
        "9.1",
        "compute the area",
        3,
        7,
    )


def test_prompt_replaces_default_raise_and_is_uncommented():
    text = (
        "lint:\n"
        "\t# BEGIN SOLUTION 9.2: run ruff\n"
        "\truff check .\n"
        "\t# END SOLUTION\n"
        "\t# BEGIN PROMPT\n"
        '\t# @echo "9.2 not done" && exit 1\n'
        "\t# END PROMPT\n"
    )
    out = strip_regions(text, describe, "Makefile")
    assert out == 'lint:\n\t@echo "9.2 not done" && exit 1\n'


def test_non_python_without_prompt_gets_todo_comment():
    text = "steps:\n  # BEGIN SOLUTION 9.3: add steps\n  - run: make\n  # END SOLUTION\n"
    assert (
        strip_regions(text, describe, "ci.yml") == "steps:\n  # TODO 9.3: add steps; see book/x\n"
    )


def test_file_without_regions_is_unchanged():
    text = "x = 1\n# a comment about SOLUTION\n"
    assert strip_regions(text, describe, "m.py") == text


@pytest.mark.parametrize(
    "text, message",
    [
        ("# BEGIN SOLUTION 1.1: a\nx = 1\n", "has no END"),
        ("x = 1\n# END SOLUTION\n", "without a matching BEGIN"),
        ("# BEGIN SOLUTION 1.1\n# BEGIN SOLUTION 1.2\n# END SOLUTION\n", "do not nest"),
    ],
)
def test_malformed_regions_name_the_line(text, message):
    with pytest.raises(RegionError, match=message):
        find_regions(text, "bad.py")


def test_scaffold_that_would_not_parse_is_refused():
    # The region swallows the `except` header, so the scaffold has a `try` with no handler.
    text = (
        "try:\n"
        "    # BEGIN SOLUTION 1.1: try it\n"
        "    x = 1\n"
        "except ValueError:\n"
        "    # END SOLUTION\n"
        "    pass\n"
    )
    compile(text, "reference.py", "exec")  # the reference itself is valid
    with pytest.raises(RegionError, match="would not parse"):
        strip_regions(text, describe, "m.py")


def test_notebook_regions_stripped_and_outputs_cleared():
    notebook = {
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": ["# BEGIN SOLUTION 1.1\n"]},
            {
                "cell_type": "code",
                "metadata": {},
                "execution_count": 3,
                "outputs": [{"output_type": "stream", "name": "stdout", "text": ["42\n"]}],
                "source": [
                    "%matplotlib inline\n",
                    "# BEGIN SOLUTION 1.2: answer\n",
                    "x = 42\n",
                    "# END SOLUTION\n",
                    "print(x)",
                ],
            },
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    raw = json.dumps(notebook)
    assert [r.checkpoint for r in find_notebook_regions(raw, "n.ipynb")] == ["1.2"]
    out = json.loads(strip_notebook(raw, describe, "n.ipynb"))
    code = out["cells"][1]
    assert code["outputs"] == [] and code["execution_count"] is None
    assert "".join(code["source"]) == (
        '%matplotlib inline\nraise NotImplementedError("1.2: answer; see book/x")\nprint(x)'
    )
    assert out["cells"][0] == notebook["cells"][0]  # markdown untouched


def test_corrupt_notebook_is_a_region_error():
    with pytest.raises(RegionError, match="not valid notebook JSON"):
        find_notebook_regions("{nope", "n.ipynb")
