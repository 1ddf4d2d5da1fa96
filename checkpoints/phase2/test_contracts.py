"""Checkpoint 2.2: the flights contract's rule set (mlops_pipeline).

Grades `mlops_pipeline.contracts.flights.row_checks` (the cross-field rules of a flight row's
lifecycle) and `mlops_pipeline.contracts.quarantine.failure_reasons` (pandera's failure cases
folded into one reason per row) through `validate`: good rows pass, each kind of bad row is
quarantined naming the rule it broke, nothing is dropped, and a unit change breaks the batch.
Every frame is built here, and the expected reasons come from a row-by-row oracle written out
below, not from the reference implementation.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from learn.testing import import_learner

BASE = pd.Timestamp("2013-06-01T12:00:00Z")
COMMIT = pd.Timestamp("2024-05-01T12:00:00Z")
RULES = [
    "arrival_needs_departure",
    "cancelled_not_departed",
    "departure_complete",
    "departure_consistent",
    "recorded_after_departure",
]


@pytest.fixture
def validate():
    return import_learner("mlops_pipeline.contracts.validate")


@pytest.fixture
def quarantine():
    return import_learner("mlops_pipeline.contracts.quarantine")


def flight(i: int, state: str = "departed", delay: float = 5.0, **changes) -> dict:
    """One landing row of flight `i`: 'scheduled' (insert), 'departed' or 'cancelled' (update)."""
    sched = BASE + pd.Timedelta(minutes=7 * i)
    row = {
        "flight_id": i + 1,
        "carrier": "UA",
        "flight": 100 + i,
        "tailnum": "N12345",
        "origin": "EWR",
        "dest": "ORD",
        "distance": 719,
        "sched_dep": sched,
        "dep_at": pd.NaT,
        "dep_delay": math.nan,
        "arr_delay": math.nan,
        "cancelled": False,
        "recorded_at": sched - pd.Timedelta(days=1),
        "_op": "i",
        "_lsn": 1000 + i,
        "_seq": 0,
        "_commit_time": COMMIT,
    }
    if state == "departed":
        dep_at = sched + pd.Timedelta(minutes=delay)
        row |= {"dep_at": dep_at, "dep_delay": delay, "arr_delay": delay - 4.0}
        row |= {"recorded_at": dep_at, "_op": "u"}
    elif state == "cancelled":
        row |= {"cancelled": True, "recorded_at": sched, "_op": "u"}
    return row | changes


def frame_of(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    for column in ("sched_dep", "dep_at", "recorded_at", "_commit_time"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def oracle(row) -> str:
    """The rules a (non-delete) row breaks, sorted and ';'-joined, from their definitions."""
    if row["_op"] == "d":
        return ""
    has_at, has_delay = not pd.isna(row["dep_at"]), not pd.isna(row["dep_delay"])
    has_arr = not pd.isna(row["arr_delay"])
    broken = set()
    if has_at and has_delay:
        minutes = (row["dep_at"] - row["sched_dep"]).total_seconds() / 60
        if abs(minutes - row["dep_delay"]) > 1:
            broken.add("departure_consistent")
    if has_at != has_delay:
        broken.add("departure_complete")
    if row["cancelled"] and (has_at or has_delay or has_arr):
        broken.add("cancelled_not_departed")
    if has_arr and not has_delay:
        broken.add("arrival_needs_departure")
    if has_at and row["recorded_at"] < row["dep_at"]:
        broken.add("recorded_after_departure")
    return ";".join(sorted(broken))


def good_rows() -> list[dict]:
    """A day in the life: scheduled, early, on time, late, diverted, cancelled, a delete."""
    rows = [
        flight(0, "scheduled"),
        flight(1, "departed", delay=-6.0),
        flight(2, "departed", delay=0.0),
        flight(3, "departed", delay=95.0),
        flight(4, "departed", delay=20.0, arr_delay=math.nan),  # diverted: no arrival delay
        flight(5, "cancelled"),
        flight(6, "departed", delay=12.0, recorded_at=BASE + pd.Timedelta(hours=6)),  # late write
    ]
    # A delete needs only its key: its old row may be anything.
    rows.append(flight(7, "cancelled", _op="d", dep_at=BASE, dep_delay=3.0, arr_delay=400.0))
    return rows


def assert_conserved(result, frame):
    counts = result.counts
    assert counts.rows_in == len(frame) == counts.valid + counts.quarantined
    assert sorted([*result.valid.index, *result.quarantined.index]) == sorted(frame.index)


@pytest.mark.checkpoint("2.2")
def test_good_rows_pass(validate):
    """Scheduled, departed (early/late/diverted), cancelled and delete rows are all valid."""
    frame = frame_of(good_rows())
    result = validate.validate("flights", frame)
    assert_conserved(result, frame)
    assert result.counts.quarantined == 0, result.quarantined.get("_reason")
    assert result.counts.valid == len(frame)


BAD_ROWS = {
    "departure_consistent": {"dep_delay": 15.0},  # dep_at is 5 minutes after schedule
    "departure_complete": {"dep_at": pd.NaT},
    "cancelled_not_departed": {"cancelled": True},
    "recorded_after_departure": {"recorded_at": BASE - pd.Timedelta(hours=1)},
}


@pytest.mark.checkpoint("2.2")
@pytest.mark.parametrize("rule", sorted(BAD_ROWS))
def test_each_bad_row_is_quarantined_naming_its_rule(validate, rule):
    """A departed flight corrupted one way is quarantined with exactly that rule as its reason."""
    rows = good_rows()
    rows[3] |= BAD_ROWS[rule]
    frame = frame_of(rows)
    result = validate.validate("flights", frame)
    assert_conserved(result, frame)
    assert result.quarantined.index.tolist() == [3]
    assert result.quarantined["_reason"].tolist() == [rule]
    assert result.counts.by_check == {rule: 1}


@pytest.mark.checkpoint("2.2")
def test_an_arrival_without_a_departure_is_quarantined(validate):
    """A scheduled (not departed) flight with an arrival delay breaks arrival_needs_departure."""
    rows = good_rows()
    rows[0] |= {"arr_delay": 12.0}
    result = validate.validate("flights", frame_of(rows))
    assert result.quarantined["_reason"].to_dict() == {0: "arrival_needs_departure"}


@pytest.mark.checkpoint("2.2")
def test_departure_tolerance_is_one_minute(validate):
    """dep_at - sched_dep may differ from dep_delay by under a minute, not by two."""
    rows = good_rows()
    for i, shift in ((1, pd.Timedelta(seconds=30)), (2, pd.Timedelta(minutes=2))):
        dep_at = rows[i]["dep_at"] + shift
        rows[i] |= {"dep_at": dep_at, "recorded_at": dep_at}
    rows[3] |= {"dep_at": rows[3]["dep_at"] - pd.Timedelta(seconds=40)}
    result = validate.validate("flights", frame_of(rows))
    assert result.quarantined["_reason"].to_dict() == {2: "departure_consistent"}


@pytest.mark.checkpoint("2.2")
def test_column_and_row_failures_are_named_together(validate):
    """A row breaking a column check and a rule lists both, sorted, with the contract version."""
    rows = good_rows()
    rows[3] |= {"carrier": "ZZ", "dep_delay": 60.0}
    result = validate.validate("flights", frame_of(rows))
    row = result.quarantined.loc[3]
    assert row["_reason"] == "carrier.allowed;departure_consistent"
    assert row["_contract_version"] == result.contract_version
    assert result.counts.by_check == {"carrier.allowed": 1, "departure_consistent": 1}


@pytest.mark.checkpoint("2.2")
def test_random_corruptions_match_the_oracle_and_add_up(validate):
    """400 rows with random lifecycle corruptions: reasons per row and counts match the oracle."""
    rng = np.random.default_rng(22)
    states = ["scheduled", "departed", "departed", "departed", "cancelled"]
    corruptions = [
        {"dep_delay": 45.0},
        {"dep_delay": math.nan},
        {"dep_at": pd.NaT},
        {"cancelled": True},
        {"arr_delay": 7.0},
        {"recorded_at": BASE - pd.Timedelta(days=2)},
    ]
    rows = []
    for i in range(400):
        row = flight(i, states[rng.integers(len(states))], delay=float(rng.integers(-20, 200)))
        if rng.random() < 0.12:
            row |= corruptions[rng.integers(len(corruptions))]
        if rng.random() < 0.03:
            row |= {"_op": "d"}
        rows.append(row)
    frame = frame_of(rows)
    expected = frame.apply(oracle, axis=1)
    expected_counts = (
        pd.Series(";".join(expected).split(";")).value_counts().drop("", errors="ignore")
    )
    assert 0 < expected_counts.max() < 0.05 * len(frame)  # the oracle stays under the breach share
    assert len(expected_counts) == len(RULES)  # every rule is exercised

    result = validate.validate("flights", frame)
    assert_conserved(result, frame)
    got = pd.concat([result.quarantined["_reason"], pd.Series("", index=result.valid.index)])
    pd.testing.assert_series_equal(
        got.sort_index().astype(str), expected.astype(str), check_names=False
    )
    assert result.counts.by_check == expected_counts.sort_index().to_dict()


@pytest.mark.checkpoint("2.2")
def test_delay_in_hours_is_a_breach(validate):
    """dep_delay sent in hours breaks the batch: ContractBreach naming table, version and rule."""
    rows = [flight(i, "departed", delay=float(10 + 3 * i)) for i in range(100)]
    for row in rows:
        row["dep_delay"] = row["dep_delay"] / 60.0
    with pytest.raises(validate.ContractBreach) as caught:
        validate.validate("flights", frame_of(rows))
    breach = caught.value
    assert breach.table == "flights"
    assert breach.version and breach.version in str(breach)
    assert any("departure_consistent" in problem for problem in breach.problems)


@pytest.mark.checkpoint("2.2")
def test_failure_reasons_folds_pandera_failure_cases(quarantine):
    """Column failures are named column.check, frame checks by name; table-level ones skipped."""
    cases = pd.DataFrame(
        {
            "schema_context": ["Column", "DataFrameSchema", "Column", "DataFrameSchema"]
            + ["Column", "DataFrameSchema", "Column"],
            "column": ["dep_delay", None, "carrier", None, "tailnum", None, "carrier"],
            "check": ["range", "departure_consistent", "allowed", "column_in_dataframe"]
            + ["not_nullable", "departure_consistent", "allowed"],
            "check_number": [0, 0, 0, None, None, 0, 0],
            "failure_case": [2000.0, False, "ZZ", "dep_at", None, False, "ZZ"],
            "index": pd.Series([30, 30, 30, None, 50, 70, 30], dtype=object),
        }
    )
    index = pd.Index([10, 30, 50, 70, 90])
    reasons = quarantine.failure_reasons(cases, index)
    assert reasons.index.equals(index)
    assert reasons.tolist() == [
        "",
        "carrier.allowed;dep_delay.range;departure_consistent",
        "tailnum.not_nullable",
        "departure_consistent",
        "",
    ]
