"""The grader's wire format: the JSON lines the pytest plugin writes and the runner reads.

Both sides import these types, so a field renamed on one side is a type error on the other
rather than a silently missing key. One event per line, flushed as it happens: when learner
code kills the interpreter, every line before the crash is still there.

The per-checkpoint time budget lives here too, because both sides enforce it: the plugin with
an in-process alarm, the runner by killing a child that outlives it.
"""

from __future__ import annotations

import json
from typing import Literal, TypedDict

from learn.manifest import Manifest

Outcome = Literal["passed", "failed", "error", "timeout", "skipped"]


class CollectedItem(TypedDict):
    nodeid: str
    checkpoint: str | None


class CollectedEvent(TypedDict):
    """The tests this child will run, after `-k` style selection."""

    event: Literal["collected"]
    items: list[CollectedItem]


class CollectErrorEvent(TypedDict):
    """A test file could not be collected (an import at module level failed)."""

    event: Literal["collect_error"]
    nodeid: str
    message: str


class StartEvent(TypedDict):
    """A test started; if no end event follows, the child died while running it."""

    event: Literal["start"]
    nodeid: str
    checkpoint: str | None


class EndEvent(TypedDict):
    """A test finished, classified for a learner, with the seconds it took."""

    event: Literal["end"]
    nodeid: str
    checkpoint: str | None
    outcome: Outcome
    message: str
    duration: float


Event = CollectedEvent | CollectErrorEvent | StartEvent | EndEvent
EVENT_KINDS = frozenset({"collected", "collect_error", "start", "end"})


def encode(event: Event) -> str:
    """One event as a JSON line (newline included)."""
    return json.dumps(event) + "\n"


def decode(line: bytes | str) -> Event | None:
    """An event from one line, or None for a line torn by a crash or not an event at all."""
    try:
        data = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or data.get("event") not in EVENT_KINDS:
        return None
    return data  # type: ignore[return-value]


def time_budget(manifest: Manifest, checkpoint: str | None, override: float | None) -> float:
    """Seconds a checkpoint's tests may use in all (shared by its tests, across restarts).

    `override` is `learn check --timeout`; otherwise the checkpoint's own `timeout` from
    curriculum.yaml, else the manifest's default.
    """
    if override:
        return override
    try:
        return manifest.checkpoint(checkpoint).timeout if checkpoint else manifest.default_timeout
    except KeyError:
        return manifest.default_timeout
