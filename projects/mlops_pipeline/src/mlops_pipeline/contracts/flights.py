"""The flights contract's rules that span columns (the per-column ranges and sets are in YAML).

These encode what a flight row means in the source's lifecycle: a row is written when the
schedule is published (no departure yet), updated once when the flight departs (dep_at,
dep_delay, arr_delay) or is cancelled. A row that contradicts that lifecycle is a bad row; a
batch where the same contradiction is common is a changed source (`ContractBreach`), e.g.
dep_delay sent in hours: dep_at - sched_dep no longer matches it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa

from mlops_pipeline.contracts.schema import BatchCheck

DEPARTURE_TOLERANCE_MIN = 1.0
"""dep_at - sched_dep may differ from dep_delay by this much (the source rounds to minutes)."""
MAX_FRACTIONAL_DELAY_SHARE = 0.05
"""More fractional dep_delay values than this share in a batch means the unit changed."""
MIN_VALUES_FOR_DISTRIBUTION = 10
"""Distribution checks judge batches with at least this many values (too few say nothing)."""


def row_checks() -> list[pa.Check]:
    """The cross-field rules, as pandera frame checks named like the YAML's `row` rules.

    Each check takes the whole (conformed) frame and returns one boolean per row, True where the
    row keeps the rule, never NA: a rule about departed flights holds trivially for a row that
    has not departed, and a missing value that a column forbids is that column's own failure
    (`not_nullable`), not this rule's. Names: departure_consistent, departure_complete,
    cancelled_not_departed, arrival_needs_departure, recorded_after_departure. Give each check
    a `name` and no `error`: pandera reports the error text in place of the name.
    """

    # BEGIN SOLUTION 2.2: the flights contract's cross-field rules as named pandera frame checks
    def departure_consistent(df: pd.DataFrame) -> pd.Series:
        known = df["sched_dep"].notna() & df["dep_at"].notna() & df["dep_delay"].notna()
        minutes = (df["dep_at"] - df["sched_dep"]).dt.total_seconds() / 60.0
        close = (minutes - df["dep_delay"]).abs() <= DEPARTURE_TOLERANCE_MIN
        return ~known | close.fillna(False)

    def departure_complete(df: pd.DataFrame) -> pd.Series:
        return df["dep_at"].notna() == df["dep_delay"].notna()

    def cancelled_not_departed(df: pd.DataFrame) -> pd.Series:
        cancelled = df["cancelled"].fillna(False).astype(bool)
        departed = df["dep_at"].notna() | df["dep_delay"].notna() | df["arr_delay"].notna()
        return ~(cancelled & departed)

    def arrival_needs_departure(df: pd.DataFrame) -> pd.Series:
        return df["arr_delay"].isna() | df["dep_delay"].notna()

    def recorded_after_departure(df: pd.DataFrame) -> pd.Series:
        known = df["dep_at"].notna() & df["recorded_at"].notna()
        return ~known | (df["recorded_at"] >= df["dep_at"]).fillna(False)

    rules = [
        departure_consistent,
        departure_complete,
        cancelled_not_departed,
        arrival_needs_departure,
        recorded_after_departure,
    ]
    return [pa.Check(rule, name=rule.__name__) for rule in rules]
    # END SOLUTION


def batch_checks() -> list[BatchCheck]:
    """Distribution checks over the batch's non-delete rows."""
    return [BatchCheck("dep_delay_whole_minutes", _fractional_delays)]


def _fractional_delays(frame: pd.DataFrame) -> str | None:
    delays = frame["dep_delay"].dropna().to_numpy(dtype="float64")
    if len(delays) < MIN_VALUES_FOR_DISTRIBUTION:
        return None
    share = float(np.mean(np.mod(np.abs(delays), 1.0) != 0))
    if share <= MAX_FRACTIONAL_DELAY_SHARE:
        return None
    return (
        f"{share:.0%} of {len(delays)} dep_delay values are not whole minutes "
        f"(at most {MAX_FRACTIONAL_DELAY_SHARE:.0%} expected): a unit change?"
    )
