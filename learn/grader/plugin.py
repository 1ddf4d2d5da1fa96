"""pytest plugin that records checkpoint outcomes as JSON lines, for the grader to read.

Exercism's python-test-runner taught the shape: results are collected by hooks, never by
parsing pytest's text output. Each line is written and flushed as it happens, so when learner
code kills the interpreter (``os._exit``, a segfault) the grader still knows which test was
running and what finished before it.

The events and the time budget are typed and defined once, in `learn.grader.events`.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pytest

from learn.grader.events import EndEvent, Event, Outcome, encode, time_budget
from learn.testing import TARGET_ENV, USED_ENV, LearnerCodeError

MESSAGE_LIMIT = 600


class CheckpointTimeout(BaseException):
    """Raised in the test's thread when it runs past its checkpoint's time limit.

    A BaseException so that a learner's bare ``except Exception`` cannot swallow it.
    """


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("learn", "AI Architect Workbook grader")
    group.addoption("--learn-target", help="root to grade (workspace or repository)")
    group.addoption("--learn-phase", help="phase id whose pythonpath to use (default: all)")
    group.addoption("--learn-results", help="append JSON-lines results to this file")
    group.addoption("--learn-only", help="comma-separated checkpoint ids to run")
    group.addoption("--learn-timeout", type=float, help="override every checkpoint's timeout")


def checkpoint_id(item: pytest.Item) -> str | None:
    marker = item.get_closest_marker("checkpoint")
    return str(marker.args[0]) if marker and marker.args else None


class _Recorder:
    """Holds the run's state: the results file, timeouts, and each test's classified outcome."""

    def __init__(self, config: pytest.Config) -> None:
        from learn.manifest import load_manifest

        self.manifest = load_manifest()
        self.timeout_override: float | None = config.getoption("--learn-timeout")
        only = config.getoption("--learn-only")
        self.only = {s.strip() for s in only.split(",")} if only else None
        path = config.getoption("--learn-results")
        self.out: IO[str] | None = open(path, "a", encoding="utf-8") if path else None  # noqa: SIM115
        self.outcomes: dict[str, dict[str, Any]] = {}
        self.target = Path(config.getoption("--learn-target") or os.environ.get(TARGET_ENV) or "")
        #: Seconds each checkpoint's tests have used, carried over from an earlier child.
        self.used: dict[str, float] = json.loads(os.environ.get(USED_ENV) or "{}")

    def emit(self, event: Event) -> None:
        if self.out is not None:
            self.out.write(encode(event))
            self.out.flush()

    def budget(self, checkpoint: str | None) -> float:
        """A checkpoint's time limit, shared by all of its tests."""
        return time_budget(self.manifest, checkpoint, self.timeout_override)

    def remaining(self, item: pytest.Item) -> float:
        cid = checkpoint_id(item)
        return self.budget(cid) - self.used.get(cid or "", 0.0)


_recorder: _Recorder | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _recorder
    from learn import REPO_ROOT
    from learn.manifest import load_manifest

    config.addinivalue_line("markers", "checkpoint(id): a graded checkpoint of curriculum.yaml")
    target = Path(config.getoption("--learn-target") or os.environ.get(TARGET_ENV) or REPO_ROOT)
    target = target.resolve()
    os.environ[TARGET_ENV] = str(target)  # visible to subprocesses the tests start
    manifest = load_manifest()
    phase_id = config.getoption("--learn-phase")
    phases = [manifest.phase(phase_id)] if phase_id else manifest.phases
    from learn.workspace import without_reference

    first = [str(target / entry) for phase in phases for entry in phase.pythonpath]
    sys.path[:] = first + without_reference(sys.path, target)  # never fall back on the reference
    _recorder = _Recorder(config)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _recorder and _recorder.out:
        _recorder.out.close()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    assert _recorder is not None
    if _recorder.only is not None:
        keep = [i for i in items if checkpoint_id(i) in _recorder.only]
        dropped = [i for i in items if checkpoint_id(i) not in _recorder.only]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
        items[:] = keep
    _recorder.emit(
        {
            "event": "collected",
            "items": [{"nodeid": i.nodeid, "checkpoint": checkpoint_id(i)} for i in items],
        }
    )


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.failed and _recorder is not None:
        _recorder.emit(
            {
                "event": "collect_error",
                "nodeid": report.nodeid,
                "message": _clip(str(report.longrepr)),
            }
        )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    assert _recorder is not None
    cid = checkpoint_id(item)
    _recorder.outcomes[item.nodeid] = {"outcome": "passed", "message": "", "t0": time.time()}
    _recorder.emit({"event": "start", "nodeid": item.nodeid, "checkpoint": cid})
    yield
    result = _recorder.outcomes.pop(item.nodeid)
    duration = time.time() - result["t0"]
    _recorder.used[cid or ""] = _recorder.used.get(cid or "", 0.0) + duration
    end: EndEvent = {
        "event": "end",
        "nodeid": item.nodeid,
        "checkpoint": cid,
        "outcome": result["outcome"],
        "message": result["message"],
        "duration": round(duration, 4),
    }
    _recorder.emit(end)


def _on_alarm(signum: int, frame: Any) -> None:
    raise CheckpointTimeout()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item):
    """Interrupt the test body when its checkpoint's time budget runs out.

    The alarm raises in the main thread between bytecodes, so pure-Python loops stop too.
    """
    assert _recorder is not None
    limit = max(_recorder.remaining(item), 0.001)
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    assert _recorder is not None
    state = _recorder.outcomes.get(item.nodeid)
    if state is None or state["outcome"] != "passed":
        return  # keep the first problem: a teardown error after a failure is noise
    if report.skipped:
        state["outcome"], state["message"] = "skipped", _clip(str(report.longrepr))
    elif report.failed:
        state["outcome"], state["message"] = _classify(item, call, report.when, _recorder)
        if call.excinfo is not None and call.excinfo.errisinstance(CheckpointTimeout):
            budget = _recorder.budget(checkpoint_id(item))
            report.longrepr = f"checkpoint ran past its {budget:g} s time limit"


#: How a scaffold's NotImplementedError message starts: "1.3: what to write; see the book, ..."
_NOT_IMPLEMENTED_ID = re.compile(r"^(\d+\.\d+):")


def _classify(
    item: pytest.Item, call: pytest.CallInfo[None], when: str, recorder: _Recorder
) -> tuple[Outcome, str]:
    """Map an exception to a grading outcome and a short message a learner can act on."""
    exc = call.excinfo
    if exc is None:
        return "error", f"failed during {when}"
    where = _learner_location(exc.tb, recorder.target)
    suffix = f" (at {where})" if where else ""
    cid = checkpoint_id(item)
    if exc.errisinstance(CheckpointTimeout):
        budget = recorder.budget(cid)
        return "timeout", (
            f"ran past the checkpoint's {budget:g} s time limit{suffix}: an infinite loop? "
            f"If your code is only slow, raise the limit with --timeout SECONDS."
        )
    if exc.errisinstance(LearnerCodeError):
        return "error", _clip(str(exc.value))
    if exc.errisinstance(NotImplementedError):
        return "failed", _clip(_not_implemented(str(exc.value), cid, recorder))
    if exc.errisinstance((AssertionError, pytest.fail.Exception)):
        checked = _test_location(exc.tb, item)
        what = f"{describe_test(item)}: {_assertion_summary(str(exc.value))}"
        tail = (f"\n(checked at {checked})" if checked else "") + suffix
        return "failed", _clip(what, tail=tail)
    if when != "call":
        return "error", _clip(f"{when} failed: {exc.typename}: {exc.value}")
    return "error", _clip(f"your code raised {exc.typename}: {exc.value}{suffix}")


def _not_implemented(message: str, cid: str | None, recorder: _Recorder) -> str:
    """'not implemented yet: ...', led by 'needs 1.3 first' when the gap is another checkpoint's."""
    found = _NOT_IMPLEMENTED_ID.match(message.strip())
    other = found.group(1) if found else None
    if other and other != cid and recorder.manifest.canonical_id(other):
        return f"needs {other} first: not implemented yet: {message}"
    return f"not implemented yet: {message}"


def describe_test(item: pytest.Item) -> str:
    """What a test checks, in a line: its docstring's first line, else its name in words."""
    function = getattr(item, "function", None)
    doc = (getattr(function, "__doc__", None) or "").strip()
    if doc:
        return doc.splitlines()[0].rstrip(".")
    name = getattr(item, "originalname", None) or item.name
    words = name.removeprefix("test_").replace("_", " ")
    params = item.name[len(name) :] if item.name.startswith(name) else ""
    return words + (f" {params}" if params else "")


def _test_location(tb: Any, item: pytest.Item) -> str:
    """'file:line' of the assertion inside the checkpoint test, relative to the repository."""
    from learn import REPO_ROOT

    test_file = Path(str(item.path)).resolve()
    return _deepest_frame(tb, REPO_ROOT, lambda path: path.resolve() == test_file)


def _assertion_summary(text: str, max_lines: int = 6) -> str:
    """The test's own message, without pytest's assertion introspection when there is one."""
    lines = [line for line in text.strip().splitlines() if line.strip()] or ["assertion failed"]
    introspection = next(
        (i for i, line in enumerate(lines) if line.lstrip().startswith("assert ")), None
    )
    if introspection:  # a message precedes pytest's "assert x == y / + where ..." lines
        lines = lines[:introspection]
    return "\n".join(lines[:max_lines])


def _learner_location(tb: Any, target: Path) -> str:
    """The deepest traceback line inside the graded root, as 'path:line', or ''."""
    from learn import REPO_ROOT

    if not target:
        return ""
    not_learner = (REPO_ROOT / "learn", REPO_ROOT / "checkpoints", Path(sys.prefix))

    def learners(path: Path) -> bool:
        return path.is_relative_to(target) and not (
            any(path.is_relative_to(p) for p in not_learner) or "site-packages" in path.parts
        )

    return _deepest_frame(tb, target, learners)


def _deepest_frame(tb: Any, root: Path, accept: Callable[[Path], bool]) -> str:
    """'path:line' (relative to `root`) of the deepest traceback frame `accept` takes, or ''."""
    best = ""
    for frame in traceback.extract_tb(tb):
        path = Path(frame.filename)
        if accept(path):
            best = f"{path.resolve().relative_to(root.resolve())}:{frame.lineno}"
    return best


def _clip(text: str, tail: str = "") -> str:
    """`text` cut to the message limit, keeping `tail` (where it happened) whole."""
    text, limit = text.strip(), MESSAGE_LIMIT - len(tail)
    return (text if len(text) <= limit else text[: limit - 3] + "...") + tail
