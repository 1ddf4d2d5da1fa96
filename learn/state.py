"""The learner's state file: which phases were started and what each checkpoint scored.

Lives in the workspace (``.learn/state.json``) so it travels with the learner's work. Writes
are atomic (temporary file, fsync, rename), so a crash mid-write never leaves half a file; a
file that is corrupt anyway is set aside, never deleted, and a fresh state starts.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STATE_SCHEMA = 1
STATE_DIR = ".learn"
STATE_FILE = "state.json"


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class CheckpointRecord:
    """The latest grade of one checkpoint, and the best one ever seen."""

    status: str
    earned: int
    points: int
    checked_at: str
    best: int = 0


@dataclass
class PhaseRecord:
    started_at: str
    #: sha256 of every file `learn start` generated, to tell learner edits from ours.
    files: dict[str, str] = field(default_factory=dict)


@dataclass
class State:
    schema_version: int = STATE_SCHEMA
    phases: dict[str, PhaseRecord] = field(default_factory=dict)
    results: dict[str, CheckpointRecord] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    #: Set when load_state had to set a corrupt file aside: where it went.
    recovered_from: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "phases": {k: vars(v) for k, v in self.phases.items()},
            "results": {k: vars(v) for k, v in self.results.items()},
            "history": self.history[-200:],
        }


def state_path(workspace: Path) -> Path:
    return workspace / STATE_DIR / STATE_FILE


def _from_json(data: Any) -> State:
    if not isinstance(data, dict):
        raise ValueError("top level is not an object")
    version = data.get("schema_version")
    if not isinstance(version, int) or version > STATE_SCHEMA:
        raise ValueError(f"schema_version {version!r} is newer than this learn understands")
    phases = {k: PhaseRecord(**v) for k, v in (data.get("phases") or {}).items()}
    results = {k: CheckpointRecord(**v) for k, v in (data.get("results") or {}).items()}
    history = list(data.get("history") or [])
    return State(schema_version=STATE_SCHEMA, phases=phases, results=results, history=history)


def load_state(workspace: Path) -> State:
    """Read the workspace's state; a missing file is a new state, a corrupt one is set aside."""
    path = state_path(workspace)
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return State()
    try:
        return _from_json(json.loads(raw))
    except (ValueError, TypeError) as exc:
        aside = path.with_name(f"{STATE_FILE}.corrupt-{int(time.time())}")
        os.replace(path, aside)
        state = State(recovered_from=f"{aside} ({exc})")
        return state


def save_state(workspace: Path, state: State) -> None:
    """Write atomically: a reader sees the old file or the new one, never a mix."""
    path = state_path(workspace)
    atomic_write(path, json.dumps(state.to_json(), indent=2, sort_keys=True) + "\n")


def atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
