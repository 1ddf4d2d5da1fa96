"""Solution and prompt regions: find them in reference files and strip them for scaffolds.

Reference code marks what a learner implements; the scaffold keeps everything else, so the
learner's file imports, type-checks and reads like the reference. See docs/authoring.md.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable
from dataclasses import dataclass

BEGIN_SOLUTION = re.compile(
    r"^(?P<indent>[ \t]*)#\s*BEGIN SOLUTION\s+(?P<id>\d+\.\d+)\s*(?::\s*(?P<what>.*?))?\s*$"
)
END_SOLUTION = re.compile(r"^[ \t]*#\s*END SOLUTION\s*$")
BEGIN_PROMPT = re.compile(r"^[ \t]*#\s*BEGIN PROMPT\s*$")
END_PROMPT = re.compile(r"^[ \t]*#\s*END PROMPT\s*$")
ANY_MARKER = re.compile(r"^[ \t]*#\s*(BEGIN|END) (SOLUTION|PROMPT)\b")


class RegionError(ValueError):
    """A malformed region in reference code; the message names the file and line."""


@dataclass(frozen=True)
class Region:
    """One solution region: the checkpoint it belongs to and what the learner must write."""

    checkpoint: str
    what: str
    first_line: int  # 1-based line of the BEGIN marker
    last_line: int  # 1-based line of the END marker (or of END PROMPT when a prompt follows)


#: Maps a region to the text the learner sees in its place (one line, without indentation).
Describe = Callable[[Region], str]
#: Which regions to strip; the others stay as written, markers included (None: strip all).
Select = Callable[[Region], bool] | None


def find_regions(text: str, source: str = "<text>") -> list[Region]:
    """Parse the regions of `text`, checking that markers pair up and do not nest."""
    regions, _ = _scan(text.splitlines(keepends=True), source)
    return regions


def strip_regions(
    text: str,
    describe: Describe,
    source: str = "<text>",
    python: bool | None = None,
    check_syntax: bool = True,
    select: Select = None,
) -> str:
    """Return the scaffold version of `text`.

    Each solution region becomes a ``raise NotImplementedError(<describe(region)>)`` line for
    Python (or a ``# TODO`` comment elsewhere) at the marker's indentation, unless a prompt
    region follows it, whose lines are uncommented instead. When `python` (inferred from
    `source` ending in ``.py`` by default) and `check_syntax`, the result must still parse.
    `select` strips only some regions (`learn verify --requires` strips one checkpoint's).
    """
    is_python = source.endswith(".py") if python is None else python
    _, output = _scan(text.splitlines(keepends=True), source, describe, is_python, select)
    result = "".join(output)
    if is_python and check_syntax:
        try:
            ast.parse(result)
        except SyntaxError as exc:
            raise RegionError(
                f"{source}: the scaffold would not parse (line {exc.lineno}: {exc.msg}); "
                "a region probably covers a whole block: leave the block's header outside it"
            ) from None
    return result


def _scan(
    lines: list[str],
    source: str,
    describe: Describe | None = None,
    is_python: bool = True,
    select: Select = None,
) -> tuple[list[Region], list[str]]:
    regions: list[Region] = []
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        begin = BEGIN_SOLUTION.match(line)
        if begin:
            end = _find_end(lines, i, END_SOLUTION, source, "SOLUTION")
            indent = begin["indent"]
            what = (begin["what"] or "").strip() or "implement this"
            newline = "\n" if line.endswith("\n") else ""
            prompt_end = None
            if end + 1 < len(lines) and BEGIN_PROMPT.match(lines[end + 1]):
                prompt_end = _find_end(lines, end + 1, END_PROMPT, source, "PROMPT")
            region = Region(begin["id"], what, i + 1, (prompt_end or end) + 1)
            regions.append(region)
            if describe is not None and select is not None and not select(region):
                out.extend(lines[i : region.last_line])  # kept as written
            elif prompt_end is not None:
                out.extend(_uncomment(lines[end + 2 : prompt_end]))
            elif describe is not None:
                message = describe(region)
                if is_python:
                    out.append(f"{indent}raise NotImplementedError({json.dumps(message)}){newline}")
                else:
                    out.append(f"{indent}# TODO {message}{newline}")
            i = (prompt_end if prompt_end is not None else end) + 1
            continue
        if BEGIN_PROMPT.match(line):  # a prompt with no solution before it: learner-only text
            prompt_end = _find_end(lines, i, END_PROMPT, source, "PROMPT")
            out.extend(_uncomment(lines[i + 1 : prompt_end]))
            i = prompt_end + 1
            continue
        if ANY_MARKER.match(line):
            raise RegionError(f"{source}:{i + 1}: {line.strip()!r} without a matching BEGIN")
        out.append(line)
        i += 1
    return regions, out


def _find_end(lines: list[str], start: int, end_re: re.Pattern, source: str, kind: str) -> int:
    for j in range(start + 1, len(lines)):
        if end_re.match(lines[j]):
            return j
        if ANY_MARKER.match(lines[j]):
            raise RegionError(
                f"{source}:{j + 1}: {lines[j].strip()!r} inside the {kind} region opened at "
                f"line {start + 1}; regions do not nest"
            )
    raise RegionError(f"{source}:{start + 1}: BEGIN {kind} has no END {kind}")


def _uncomment(lines: list[str]) -> list[str]:
    """Drop the first ``# `` (or ``#``) after each line's indentation."""
    result = []
    for line in lines:
        stripped = line.lstrip(" \t")
        indent = line[: len(line) - len(stripped)]
        if stripped.startswith("# "):
            stripped = stripped[2:]
        elif stripped.startswith("#"):
            stripped = stripped[1:]
        result.append(indent + stripped)
    return result


# --- notebooks ------------------------------------------------------------------------------


def _cell_source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def find_notebook_regions(raw: str, source: str) -> list[Region]:
    """Regions of every code cell of a notebook's JSON text."""
    regions = []
    for n, cell in enumerate(_load_notebook(raw, source)["cells"]):
        if cell.get("cell_type") == "code":
            regions.extend(find_regions(_cell_source(cell), f"{source} cell {n}"))
    return regions


def strip_notebook(raw: str, describe: Describe, source: str, select: Select = None) -> str:
    """The scaffold of a notebook: regions stripped in code cells, outputs cleared."""
    notebook = _load_notebook(raw, source)
    for n, cell in enumerate(notebook["cells"]):
        if cell.get("cell_type") != "code":
            continue
        # Cells may hold IPython magics, so they are not checked with the Python parser.
        text = strip_regions(
            _cell_source(cell),
            describe,
            f"{source} cell {n}",
            python=True,
            check_syntax=False,
            select=select,
        )
        cell["source"] = text.splitlines(keepends=True)
        cell["outputs"] = []
        cell["execution_count"] = None
    return json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"


def _load_notebook(raw: str, source: str) -> dict:
    try:
        notebook = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise RegionError(f"{source}: not valid notebook JSON ({exc})") from None
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        raise RegionError(f"{source}: not a notebook (no cells list)")
    return notebook
