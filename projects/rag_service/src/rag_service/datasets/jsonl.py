"""The project's hand-written JSONL sets, read one checked JSON object per line.

Every labelled set (documentation questions, guardrail cases, off-topic questions, question
pairs, answer labels) follows the same rules, kept here once: blank lines are skipped; each line
must be a JSON object with exactly the set's fields; every error names the file and the line;
ids (and whatever else a set must not repeat) are unique. The checks of each field's values
stay with each set's loader, since they are what makes the sets different.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Iterator
from importlib import resources
from pathlib import Path


def read_objects(
    path: Path | str | None, shipped: str, fields: frozenset[str], error: type[Exception]
) -> Iterator[tuple[str, int, dict]]:
    """(`file:line`, line number, object) for each non-blank line of `path`, or of the file
    `shipped` with the package when `path` is None (read through importlib.resources, so it
    also works from a wheel). `error` is the set's own exception type."""
    if path is None:
        resource = resources.files("rag_service.datasets").joinpath(shipped)
        where, text = str(resource), resource.read_text(encoding="utf-8")
    else:
        where, text = str(path), Path(path).read_text(encoding="utf-8")
    for lineno, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        line = f"{where}:{lineno}"
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise error(f"{line}: not valid JSON ({exc.msg})") from exc
        if not isinstance(record, dict):
            raise error(f"{line}: expected a JSON object, got {type(record).__name__}")
        if set(record) != fields:
            missing, extra = fields - set(record), set(record) - fields
            raise error(
                f"{line}: fields must be {sorted(fields)}"
                f" (missing {sorted(missing)}, unexpected {sorted(extra)})"
            )
        yield line, lineno, record


def where_of(line: str) -> str:
    """The file part of a `file:line` location."""
    return line.rsplit(":", 1)[0]


class Unique:
    """Refuses a repeated key, naming where it was first seen (a repeat would count twice)."""

    def __init__(self, what: str, error: type[Exception]) -> None:
        self.what = what
        self.error = error
        self._first: dict[Hashable, str] = {}

    def add(self, key: Hashable, line: str, item_id: str) -> None:
        first = self._first.get(key)
        if first is not None:
            raise self.error(f"{line}: {item_id}: same {self.what} as {first}")
        self._first[key] = item_id


class UniqueIds:
    """Refuses a repeated id, naming the line it was first on."""

    def __init__(self, error: type[Exception]) -> None:
        self.error = error
        self._lines: dict[str, int] = {}

    def add(self, item_id: str, line: str, lineno: int) -> None:
        if item_id in self._lines:
            raise self.error(
                f"{line}: duplicate id {item_id!r} (first on line {self._lines[item_id]})"
            )
        self._lines[item_id] = lineno
