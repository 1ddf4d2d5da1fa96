"""The one error a pipeline run reports: which task failed, for which interval, and why."""

from __future__ import annotations


class PipelineError(RuntimeError):
    """A task failed; the message names the task and the data interval, then the cause."""

    def __init__(self, task: str, interval: str, cause: BaseException) -> None:
        self.task = task
        self.interval = interval
        self.cause = cause
        super().__init__(f"task {task!r} failed for interval {interval}: {_describe(cause)}")


def _describe(cause: BaseException) -> str:
    text = str(cause).strip() or "(no message)"
    return f"{type(cause).__name__}: {text}"
