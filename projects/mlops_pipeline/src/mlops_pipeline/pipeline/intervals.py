"""Data intervals: the slice of event time a pipeline run is responsible for.

A run owns the half-open interval [start, end) of `recorded_at` time and writes one partition per
UTC day in it, overwriting what a previous run of the same days wrote. That is what makes a task
safe to retry and a backfill safe to repeat: the output of a day depends only on the day.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from mlops_pipeline.data import utc


@dataclass(frozen=True)
class Interval:
    """A half-open UTC interval [start, end) aligned to whole days."""

    start: pd.Timestamp
    end: pd.Timestamp

    @classmethod
    def parse(cls, start: str | pd.Timestamp, end: str | pd.Timestamp) -> Interval:
        """From ISO dates or timestamps; both must fall on midnight UTC and start < end."""
        first, last = utc(start), utc(end)
        for name, value in (("start", first), ("end", last)):
            if value != value.normalize():
                raise ValueError(f"{name} {value.isoformat()} is not midnight UTC: give a date")
        if first >= last:
            raise ValueError(
                f"empty interval: start {first.date()} is not before end {last.date()}"
            )
        return cls(first, last)

    def days(self) -> list[pd.Timestamp]:
        """The days the interval covers, each the start of a one-day partition."""
        return list(pd.date_range(self.start, self.end, freq="D", inclusive="left"))

    def __str__(self) -> str:
        return f"[{self.start.date()}, {self.end.date()})"


def partition_name(day: pd.Timestamp) -> str:
    """The Hive-style partition folder for one day, `date=YYYY-MM-DD`."""
    return f"date={day.date().isoformat()}"
