"""Run a phase's checkpoints against a target in a pytest subprocess and build the report.

The subprocess is what makes grading safe: learner code that loops forever, exits the
interpreter or segfaults takes down only the child. The plugin streams one JSON line per
event; this module watches that stream, kills a child that outlives a test's time limit,
marks the test that was running, and starts a new child for the tests still to run.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from learn import REPO_ROOT, __version__
from learn.grader.events import (
    CollectedItem,
    EndEvent,
    Event,
    Outcome,
    StartEvent,
    decode,
    time_budget,
)
from learn.grader.report import CheckpointResult, Report, TestOutcome, combine
from learn.manifest import Phase, load_manifest
from learn.state import now_iso
from learn.testing import TARGET_ENV, USED_ENV

#: Seconds a child may outlive a test's own limit before it is killed from outside
#: (the in-process alarm handles ordinary Python loops; this catches C-level hangs).
KILL_GRACE = 5.0
#: Seconds allowed for pytest to start and collect before the first test.
STARTUP_LIMIT = 60.0
POLL = 0.05


class GraderError(RuntimeError):
    """The grader itself could not run (not the learner's fault): exit code 2."""


@dataclass
class GradeRequest:
    phase: Phase
    target: Path
    target_kind: str  # "workspace" or "reference"
    only: set[str] | None = None
    timeout: float | None = None  # overrides every checkpoint's own limit


@dataclass
class _Run:
    """What the event stream has told us so far, across child restarts."""

    collected: list[CollectedItem] = field(default_factory=list)
    collect_errors: list[str] = field(default_factory=list)
    finished: dict[str, TestOutcome] = field(default_factory=dict)
    checkpoint_of: dict[str, str | None] = field(default_factory=dict)


EventCallback = Callable[[Event], None]


def checkpoints_dir(phase: Phase) -> Path:
    return REPO_ROOT / "checkpoints" / phase.id


def grade(request: GradeRequest, on_event: EventCallback | None = None) -> Report:
    """Grade `request.phase` against `request.target`; never raises for learner faults."""
    phase = request.phase
    tests_dir = checkpoints_dir(phase)
    if not tests_dir.is_dir():
        raise GraderError(f"phase {phase.id} has no checkpoints folder ({tests_dir})")
    missing = [p for p in phase.pythonpath if not (request.target / p).exists()]
    if missing:
        advice = (
            f"run `learn start {phase.id}` first, or cd into your workspace "
            "(or pass --workspace DIR)"
            if request.target_kind == "workspace"
            else "the workbook checkout is incomplete"
        )
        raise GraderError(
            f"{request.target} has no {', '.join(missing)}: not a {phase.id} workspace; {advice}"
        )
    started_at, t0 = now_iso(), time.monotonic()
    run = _Run()
    with tempfile.TemporaryDirectory(prefix="learn-grade-") as tmp:
        pending: list[str] | None = None  # None: everything the plugin collects
        attempts = 0
        while True:
            attempts += 1
            results = Path(tmp) / f"results-{attempts}.jsonl"
            _run_child(request, pending, results, Path(tmp), run, on_event)
            remaining = [
                item["nodeid"] for item in run.collected if item["nodeid"] not in run.finished
            ]
            if not remaining:
                break
            if attempts > len(run.collected) + 1:  # each attempt finishes at least one test
                raise GraderError("grading made no progress; please report this as a bug")
            pending = remaining
    return _build_report(request, run, started_at, time.monotonic() - t0)


def _command(request: GradeRequest, pending: list[str] | None, results: Path) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-q",
        "--no-header",
        "--continue-on-collection-errors",
        f"--rootdir={REPO_ROOT}",
        f"--learn-target={request.target}",
        f"--learn-phase={request.phase.id}",
        f"--learn-results={results}",
    ]
    if request.only:
        cmd.append(f"--learn-only={','.join(sorted(request.only))}")
    if request.timeout:
        cmd.append(f"--learn-timeout={request.timeout}")
    if pending is None:
        cmd.append(str(checkpoints_dir(request.phase)))
    else:
        cmd.extend(str(REPO_ROOT / nodeid) for nodeid in pending)
    return cmd


def _run_child(
    request: GradeRequest,
    pending: list[str] | None,
    results: Path,
    tmp: Path,
    run: _Run,
    on_event: EventCallback | None,
) -> None:
    env = dict(os.environ)
    env[TARGET_ENV] = str(request.target)
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # keep the learner's folders free of __pycache__
    env[USED_ENV] = json.dumps(_used(run))  # time budgets carry over a restart
    env.pop("PYTEST_ADDOPTS", None)
    log_path = tmp / f"{results.stem}.log"
    manifest = load_manifest()
    with open(log_path, "wb") as log:
        child = subprocess.Popen(
            _command(request, pending, results),
            cwd=tmp,  # not the repository: its folders must not shadow the learner's modules
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # so a kill reaches every process the tests started
        )
        offset = 0
        current: StartEvent | None = None
        current_since = time.monotonic()
        started = time.monotonic()
        collected = False
        killed_for: str | None = None
        while True:
            exited = child.poll() is not None
            offset, events = _read_events(results, offset)
            for event in events:
                if event["event"] == "collected":
                    collected = True
                    _merge_collected(run, event["items"])
                elif event["event"] == "collect_error":
                    run.collect_errors.append(f"{event['nodeid']}: {event['message']}")
                elif event["event"] == "start":
                    current, current_since = event, time.monotonic()
                elif event["event"] == "end":
                    run.finished[event["nodeid"]] = TestOutcome(
                        event["nodeid"], event["outcome"], event["message"], event["duration"]
                    )
                    current = None
                if on_event:
                    on_event(event)
            if exited:
                break
            now = time.monotonic()
            if current is not None:
                limit = time_budget(manifest, current["checkpoint"], request.timeout)
                left = limit - _used(run).get(current["checkpoint"] or "", 0.0)
                if now - current_since > max(left, 0.0) + KILL_GRACE:
                    killed_for = current["nodeid"]
                    _kill(child)
                    _finish(
                        run,
                        current,
                        "timeout",
                        f"ran past the checkpoint's {limit:g} s time limit and was stopped "
                        "(a hang the test could not interrupt, e.g. in C code or a "
                        "subprocess). If your code is only slow, raise the limit with "
                        "--timeout SECONDS.",
                        now - current_since,
                        on_event,
                    )
                    current = None
            elif not collected and now - started > STARTUP_LIMIT:
                _kill(child)
                raise GraderError(
                    f"pytest did not start within {STARTUP_LIMIT:g} s:\n{_tail(log_path)}"
                )
            time.sleep(POLL)
        code = child.returncode
    if not collected:
        raise GraderError(
            f"the checkpoint tests could not start (exit code {code}):\n{_tail(log_path)}"
        )
    if current is not None and killed_for is None:
        how = (
            f"killed by signal {signal.Signals(-code).name}"
            if code < 0
            else f"exited with code {code}"
        )
        _finish(
            run,
            current,
            "error",
            f"the Python process {how} while running this test "
            "(os._exit, sys.exit in a thread, or a crash in native code?)",
            time.monotonic() - current_since,
            on_event,
        )


def _finish(
    run: _Run,
    started: StartEvent,
    outcome: Outcome,
    message: str,
    duration: float,
    on_event: EventCallback | None,
) -> None:
    """Record the outcome of a test the child could not report itself (killed or crashed)."""
    end: EndEvent = {
        "event": "end",
        "nodeid": started["nodeid"],
        "checkpoint": started["checkpoint"],
        "outcome": outcome,
        "message": message,
        "duration": round(duration, 3),
    }
    run.finished[end["nodeid"]] = TestOutcome(
        end["nodeid"], end["outcome"], end["message"], end["duration"]
    )
    if on_event:
        on_event(end)


def _used(run: _Run) -> dict[str, float]:
    """Seconds each checkpoint's finished tests have used."""
    used: dict[str, float] = {}
    for nodeid, outcome in run.finished.items():
        cid = run.checkpoint_of.get(nodeid) or ""
        used[cid] = used.get(cid, 0.0) + outcome.duration
    return used


def _merge_collected(run: _Run, items: list[CollectedItem]) -> None:
    known = {item["nodeid"] for item in run.collected}
    for item in items:
        run.checkpoint_of[item["nodeid"]] = item.get("checkpoint")
        if item["nodeid"] not in known:
            run.collected.append(item)


def _read_events(path: Path, offset: int) -> tuple[int, list[Event]]:
    """New complete events after `offset` (a partial last line waits for its newline)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            chunk = handle.read()
    except FileNotFoundError:
        return offset, []
    end = chunk.rfind(b"\n") + 1
    events = [e for e in map(decode, chunk[:end].splitlines()) if e is not None]
    return offset + end, events


def _kill(child: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)
    child.wait()


def _tail(path: Path, lines: int = 30) -> str:
    text = path.read_text(encoding="utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])


def _build_report(request: GradeRequest, run: _Run, started_at: str, duration: float) -> Report:
    by_checkpoint: dict[str, list[TestOutcome]] = {}
    for nodeid, outcome in run.finished.items():
        cid = run.checkpoint_of.get(nodeid)
        if cid:
            by_checkpoint.setdefault(cid, []).append(outcome)
    rows = []
    for cp in request.phase.checkpoints:
        if request.only is not None and cp.id not in request.only:
            continue
        tests = by_checkpoint.get(cp.id, [])
        if tests:
            status, message = combine(tests)
        elif run.collect_errors:
            status, message = "error", "tests could not be collected: " + run.collect_errors[0]
        else:
            status, message = "error", "no test found for this checkpoint"
        rows.append(
            CheckpointResult(
                id=cp.id,
                title=cp.title,
                points=cp.points,
                earned=cp.points if status == "passed" else 0,
                status=status,
                message=message,
                hint=cp.hint,
                book=cp.book,
                duration=round(sum(t.duration for t in tests), 4),
                tests=sorted(tests, key=lambda t: t.nodeid),
                requires=list(cp.requires),
            )
        )
    _explain_requirements(rows)
    return Report(
        phase=request.phase.id,
        phase_title=request.phase.title,
        target=str(request.target),
        target_kind=request.target_kind,  # type: ignore[arg-type]
        started_at=started_at,
        duration=round(duration, 3),
        learn_version=__version__,
        python=sys.version.split()[0],
        checkpoints=rows,
    )


def _explain_requirements(rows: list[CheckpointResult]) -> None:
    """Lead a failing row's message with the required checkpoints that fail in this run too.

    A checkpoint whose tests run another checkpoint's code cannot pass before that one does;
    saying "needs 1.3 first" sends the learner to the real gap instead of a confusing error.
    """
    status = {row.id: row.status for row in rows}
    for row in rows:
        if row.status == "passed":
            continue
        missing = [r for r in row.requires if status.get(r, "passed") != "passed"]
        if missing and not row.message.startswith("needs "):
            listed = ", ".join(f"{r} ({status[r]})" for r in missing)
            row.message = f"needs {' and '.join(missing)} first: {listed}. {row.message}"
