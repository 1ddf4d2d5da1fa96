"""The source database (pgserver's PostgreSQL 16) and the replayer that writes into it."""

from __future__ import annotations

import time

import pandas as pd
import psycopg
import pytest

from mlops_pipeline.source import replayer, schema
from mlops_pipeline.source.database import DatabaseError, SourceDatabase

pytestmark = pytest.mark.slow

T0 = pd.Timestamp("2013-01-01T05:00:00Z")


def _flight(flight_id: int, **values) -> dict:
    row = dict(
        flight_id=flight_id, carrier="UA", flight=1545, tailnum="N14228", origin="EWR",
        dest="IAH", distance=1400, sched_dep=T0 + pd.Timedelta(hours=29), dep_at=pd.NaT,
        dep_delay=float("nan"), arr_delay=float("nan"), cancelled=False,
    )  # fmt: skip
    row.update(values)
    return row


def _events(rows: list[tuple[str, str, pd.Timestamp, dict]]) -> pd.DataFrame:
    """(table, op, recorded_at, columns) -> an events frame in the timeline's format."""
    records = [
        {"recorded_at": at, "table": table, "op": op, "seq": i, **cols}
        for i, (table, op, at, cols) in enumerate(rows)
    ]
    return pd.DataFrame.from_records(records)


def _weather(**values) -> dict:
    row = {c.name: float("nan") for c in schema.WEATHER.columns if c.kind == "float"}
    row.update(origin="EWR", obs_hour=_hours(-1))
    row.update(values)
    return row


def _hours(n: int) -> pd.Timestamp:
    return T0 + pd.Timedelta(hours=n)


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    with SourceDatabase(tmp_path_factory.mktemp("source") / "pgdata") as database:
        schema.create_schema(database.dsn)
        yield database


@pytest.fixture
def empty(db):
    with db.connect(autocommit=True) as conn:
        conn.execute("TRUNCATE flights, weather, planes")
    return db


def _query(db, sql: str, params=None):
    with db.connect(autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def test_server_runs_with_logical_decoding_in_utc(db):
    settings = dict(_query(db, "SELECT name, setting FROM pg_settings WHERE name IN "
                               "('wal_level', 'TimeZone', 'listen_addresses')"))  # fmt: skip
    assert settings == {"wal_level": "logical", "TimeZone": "UTC", "listen_addresses": ""}
    assert db.uri.startswith("postgresql://postgres@/postgres?host=")
    assert (db.socket_dir / ".s.PGSQL.5432").exists()


def test_schema_is_idempotent_full_identity_and_published(db):
    schema.create_schema(db.dsn)  # a second time: no error
    identity = dict(_query(db, "SELECT relname::text, relreplident::text FROM pg_class "
                               "WHERE relname IN ('flights', 'weather', 'planes')"))  # fmt: skip
    assert identity == {"flights": "f", "weather": "f", "planes": "f"}
    published = _query(db, "SELECT tablename::text FROM pg_publication_tables "
                           "WHERE pubname = 'mlops_pub' ORDER BY 1")  # fmt: skip
    assert [r[0] for r in published] == ["flights", "planes", "weather"]
    assert _query(db, "SELECT pubtruncate FROM pg_publication WHERE pubname = 'mlops_pub'") == [
        (False,)
    ]


def test_stop_and_restart_reuses_the_data_directory(tmp_path):
    pgdata = tmp_path / "pgdata"
    with SourceDatabase(pgdata) as first:
        schema.create_schema(first.dsn)
        with first.connect(autocommit=True) as conn:
            conn.execute("INSERT INTO planes (tailnum, engines, seats, recorded_at) "
                         "VALUES ('N1', 2, 100, now())")  # fmt: skip
    assert not SourceDatabase(pgdata).is_running()
    with pytest.raises(RuntimeError, match="boom"), SourceDatabase(pgdata) as second:
        assert _query(second, "SELECT tailnum FROM planes") == [("N1",)]
        raise RuntimeError("boom")
    assert not SourceDatabase(pgdata).is_running()  # stopped although the block raised


def test_start_failure_names_the_data_directory(tmp_path):
    pgdata = tmp_path / "pgdata"
    with SourceDatabase(pgdata):
        pass
    (pgdata / "postgresql.conf").write_text("this is not a setting\n")
    with pytest.raises(DatabaseError, match=f"pg_ctl start failed .*{pgdata}"):
        SourceDatabase(pgdata).start()


def test_fast_replay_writes_every_change_in_order(empty):
    dup = 10_000_001
    events = _events(
        [
            ("weather", "insert", _hours(0), _weather(precip=0.0, visib=10.0)),
            ("flights", "insert", _hours(0), _flight(1)),
            ("flights", "insert", _hours(0), _flight(dup)),
            ("flights", "delete", _hours(0) + pd.Timedelta(minutes=30), {"flight_id": dup}),
            ("weather", "update", _hours(5), _weather(precip=0.2, visib=3.0, temp=30.5)),
            ("flights", "insert", _hours(1), _flight(2, tailnum=None)),
            ("flights", "update", _hours(29), _flight(1, dep_at=_hours(29) + pd.Timedelta("4min"),
                                                       dep_delay=4.0, arr_delay=-3.0)),
            ("flights", "update", _hours(29), _flight(2, tailnum=None, cancelled=True)),
        ]
    )  # fmt: skip
    reports = []
    shuffled = events.sample(frac=1, random_state=1)
    progress = replayer.replay(empty.dsn, shuffled, progress=reports.append, progress_every=0)
    assert progress.events_written == 8
    assert progress.transactions == 4  # hours 0, 1, 5 and 29 of the simulated clock
    assert progress.sim_time == _hours(29)
    assert reports and reports[-1].events_written == 8
    flights = _query(empty, "SELECT flight_id, tailnum, dep_delay, cancelled, recorded_at "
                            "FROM flights ORDER BY 1")  # fmt: skip
    assert [(f[0], f[1], f[2], f[3]) for f in flights] == [
        (1, "N14228", 4.0, False), (2, None, None, True)
    ]  # fmt: skip
    assert flights[0][4] == _hours(29).to_pydatetime()
    assert _query(empty, "SELECT precip, visib, temp, dewp FROM weather") == [
        (0.2, 3.0, 30.5, None)
    ]


def test_rate_paced_replay_takes_the_expected_time(empty):
    n = 400
    events = _events([("flights", "insert", _hours(0), _flight(i)) for i in range(1, n + 1)])
    start = time.monotonic()
    progress = replayer.replay(empty.dsn, events, rate=1000)
    elapsed = time.monotonic() - start
    assert 0.35 <= elapsed < 2.0, elapsed
    assert progress.transactions > 10  # committed in small paced transactions
    assert _query(empty, "SELECT count(*) FROM flights") == [(n,)]


def test_speed_factor_follows_the_simulated_clock(empty):
    # 4 writes spread over 3 simulated hours, at 21,600x: about 0.5 s of wall time
    events = _events([("flights", "insert", _hours(h), _flight(h + 1)) for h in (0, 1, 2, 3)])
    start = time.monotonic()
    progress = replayer.replay(empty.dsn, events, speed=21_600)
    elapsed = time.monotonic() - start
    assert 0.45 <= elapsed < 2.0, elapsed
    assert progress.transactions == 4


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        ([("flights", "update", T0, _flight(99))], r"update on flights .* 1 of 1 rows not found"),
        ([("flights", "delete", T0, {"flight_id": 98})], r"delete on flights .* not found"),
        ([("flights", "insert", T0, _flight(5)), ("flights", "insert", T0, _flight(5))],
         "insert into flights .* key already exists"),
        ([("flights", "upsert", T0, _flight(5))], "unknown ops \\['upsert'\\]"),
        ([("gates", "insert", T0, {})], "unknown tables \\['gates'\\]"),
        ([("flights", "insert", T0, _flight(5, distance=float("nan")))],
         "distance is missing but NOT NULL"),
    ],
)  # fmt: skip
def test_replay_rejects_bad_events_by_name(empty, rows, match):
    with pytest.raises(replayer.ReplayError, match=match):
        replayer.replay(empty.dsn, _events(rows))


def test_events_missing_required_columns():
    with pytest.raises(replayer.ReplayError, match=r"lack columns \['seq'\]"):
        replayer.prepare(
            pd.DataFrame({"recorded_at": [T0], "table": ["flights"], "op": ["insert"]})
        )


def test_seed_planes_is_idempotent(empty):
    assert replayer.seed_planes(empty.dsn) == 3322
    assert replayer.seed_planes(empty.dsn) == 0
    rows = _query(empty, "SELECT count(*), min(recorded_at), max(recorded_at), "
                         "count(*) FILTER (WHERE year IS NULL) FROM planes")  # fmt: skip
    count, first, last, no_year = rows[0]
    assert count == 3322 and first == last == pd.Timestamp("2012-12-31T00:00Z").to_pydatetime()
    assert no_year > 0  # NULL years survive as NULL


def test_insert_into_a_missing_server_fails_clearly(tmp_path):
    dead = SourceDatabase(tmp_path / "never-started")
    with pytest.raises(psycopg.OperationalError):
        replayer.replay(dead.dsn, _events([("flights", "insert", T0, _flight(1))]))
