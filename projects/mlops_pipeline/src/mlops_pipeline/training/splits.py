"""Time-based train / validation / test splits of a training set.

Flights are not exchangeable: delays cluster by day, weather system and season, and the rate
features of neighbouring rows overlap. A shuffled split lets the model see the same storm in
training and in evaluation and overstates what it will do next month. So rows are split by
their prediction time (`event_timestamp`), earlier months for training and later ones for
validation and test, never shuffled:

    train: start <= t < T1,   valid: T1 + gap <= t < T2,   test: T2 + gap <= t < end

The optional `gap` leaves rows out between the splits. A training row's label (did it leave
late?) is only known after it departs, and the 7-day rate features of the first validation
rows are computed from flights that are also training rows; a gap of a day or a week keeps
that overlap out of the evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from mlops_pipeline.data import utc

TIME_COLUMN = "event_timestamp"
NO_GAP = pd.Timedelta(0)


@dataclass(frozen=True)
class TimeSplit:
    """The boundaries of a split; `start`/`end` bound the whole set (None: unbounded)."""

    train_end: pd.Timestamp
    valid_end: pd.Timestamp
    gap: pd.Timedelta = NO_GAP
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None

    def __post_init__(self) -> None:
        # Normalise what callers pass ("2013-09-01", naive timestamps) to the pipeline's clock.
        for name in ("train_end", "valid_end", "start", "end"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, utc(value))
        object.__setattr__(self, "gap", pd.Timedelta(self.gap))
        if self.gap < pd.Timedelta(0):
            raise ValueError(f"TimeSplit: gap must be >= 0, got {self.gap}")
        bounds = [b for b in (self.start, self.train_end) if b is not None]
        bounds += [self.train_end + self.gap, self.valid_end, self.valid_end + self.gap]
        bounds += [self.end] if self.end is not None else []
        if any(a > b for a, b in zip(bounds, bounds[1:], strict=False)) or not (
            self.train_end + self.gap < self.valid_end
        ):
            raise ValueError(
                "TimeSplit: boundaries must satisfy start <= train_end < train_end + gap < "
                f"valid_end <= valid_end + gap <= end; got start={self.start}, "
                f"train_end={self.train_end}, valid_end={self.valid_end}, gap={self.gap}, "
                f"end={self.end}"
            )

    def windows(self) -> dict[str, tuple[pd.Timestamp | None, pd.Timestamp | None]]:
        """Each split's half-open [from, to) interval of `event_timestamp`."""
        return {
            "train": (self.start, self.train_end),
            "valid": (self.train_end + self.gap, self.valid_end),
            "test": (self.valid_end + self.gap, self.end),
        }


@dataclass(frozen=True)
class Splits:
    """The three frames of a split, each sorted by time."""

    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "valid": len(self.valid), "test": len(self.test)}


def split_by_time(frame: pd.DataFrame, split: TimeSplit) -> Splits:
    """Cut `frame` into train/valid/test by `event_timestamp`; every split must be non-empty.

    Rows falling into a gap (or outside start/end) are dropped, not reassigned.
    """
    if TIME_COLUMN not in frame.columns:
        raise ValueError(f"training set has no {TIME_COLUMN!r} column; columns: {list(frame)}")
    times = pd.to_datetime(frame[TIME_COLUMN], utc=True)
    if times.isna().any():
        raise ValueError(f"training set: {int(times.isna().sum())} rows with no {TIME_COLUMN}")
    parts: dict[str, pd.DataFrame] = {}
    for name, (low, high) in split.windows().items():
        mask = pd.Series(True, index=frame.index)
        if low is not None:
            mask &= times >= low
        if high is not None:
            mask &= times < high
        part = frame.loc[mask].sort_values(TIME_COLUMN, kind="stable").reset_index(drop=True)
        if part.empty:
            raise ValueError(
                f"split {name!r} is empty: no rows with {TIME_COLUMN} in [{low}, {high}); "
                f"the set spans {times.min()} .. {times.max()}"
            )
        parts[name] = part
    splits = Splits(**parts)
    check_disjoint(splits, gap=split.gap)
    return splits


def check_disjoint(splits: Splits, gap: pd.Timedelta = NO_GAP) -> None:
    """Raise unless train < valid < test in time with at least `gap` between them and no
    flight in two splits (the check a hand-made split must pass too)."""
    ordered = [("train", splits.train), ("valid", splits.valid), ("test", splits.test)]
    for (name_a, a), (name_b, b) in zip(ordered, ordered[1:], strict=False):
        last = pd.to_datetime(a[TIME_COLUMN], utc=True).max()
        first = pd.to_datetime(b[TIME_COLUMN], utc=True).min()
        if not first - last > gap:  # train < T1 <= T1 + gap <= valid: strictly more than gap
            raise ValueError(
                f"splits overlap: {name_a} ends at {last}, {name_b} starts at {first} "
                f"(required gap {gap})"
            )
    if "flight_id" in splits.train.columns:
        seen: dict[int, str] = {}
        for name, part in ordered:
            shared = set(part["flight_id"]).intersection(seen)
            if shared:
                example = sorted(shared)[0]
                raise ValueError(
                    f"flight_id {example} is in both {seen[example]!r} and {name!r} "
                    f"({len(shared)} shared flights)"
                )
            seen.update(dict.fromkeys(part["flight_id"], name))
