"""Change data capture end to end, against a real PostgreSQL: snapshot + stream land exactly the
source's rows, a consumer killed at random moments loses and duplicates nothing, the slot is
reused, a stopped source fails clearly, corrupt files are named, deletes land as tombstones.

One PostgreSQL for the module. Each test has its own slot and landing zone; the timeline is fed
to the source in consecutive slices (`Feed.next`) so every update finds the row it changes.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from mlops_pipeline.cdc import consumer as cdc
from mlops_pipeline.cdc import verify
from mlops_pipeline.cdc.apply import apply_changes, current_table
from mlops_pipeline.cdc.landing import LandingError, read_landing
from mlops_pipeline.cdc.metrics import LAG_SECONDS
from mlops_pipeline.source import replayer, schema
from mlops_pipeline.source.database import SourceDatabase
from mlops_pipeline.source.timeline import build_timeline

pytestmark = pytest.mark.slow


class Feed:
    """The timeline's writes (after the planes, which are seeded), handed out in order."""

    def __init__(self, dsn: str, events: pd.DataFrame) -> None:
        self.dsn = dsn
        self.events = events.sort_values(["recorded_at", "seq"]).reset_index(drop=True)
        self.position = 0

    def next(self, n: int, **pace) -> pd.DataFrame:
        # end on a simulated-hour boundary so a slice never splits what one hour wrote
        end = min(self.position + n, len(self.events))
        hours = self.events["recorded_at"].dt.floor("h")
        while 0 < end < len(self.events) and hours.iloc[end] == hours.iloc[end - 1]:
            end += 1
        part = self.events.iloc[self.position : end]
        assert len(part), "the test timeline is used up: build a longer one"
        self.position = end
        replayer.replay(self.dsn, part, **pace)
        return part


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    with SourceDatabase(tmp_path_factory.mktemp("cdc") / "pgdata") as db:
        schema.create_schema(db.dsn)
        replayer.seed_planes(db.dsn)
        yield db


@pytest.fixture(scope="module")
def feed(source):
    events = build_timeline(None, "2013-01-09", seed=0)
    return Feed(source.dsn, events[events["table"] != "planes"])


@pytest.fixture
def landing(tmp_path, source):
    """A fresh landing zone with its own slot; the slot is dropped afterwards (it pins WAL)."""
    slot = f"t_{tmp_path.name[-24:].lower().replace('-', '_')}"
    slot = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in slot)
    yield tmp_path / "landing", slot
    if not source.is_running():
        source.start()
    cdc.drop_slot(source.dsn, slot)


def source_table(db: SourceDatabase, table: str) -> pd.DataFrame:
    """The table as the source has it now, typed like the dataset (independent of the CDC path)."""
    return verify.source_table(db.dsn, table)


def assert_landing_matches_source(db: SourceDatabase, landing_dir: Path) -> dict:
    """Per table: the state built from the landing zone equals the source, same count and hash."""
    summary = {}
    for table, spec in schema.TABLES.items():
        changes = read_landing(landing_dir, table)
        landed = current_table(changes, list(spec.key))
        expected = source_table(db, table)
        assert len(landed) == len(expected), f"{table}: {len(landed)} rows vs {len(expected)}"
        checksum = int(pd.util.hash_pandas_object(landed, index=False).sum() % 2**61)
        assert checksum == int(pd.util.hash_pandas_object(expected, index=False).sum() % 2**61)
        pd.testing.assert_frame_equal(landed, expected)
        summary[table] = changes
    return summary


def assert_no_duplicate_changes(changes: pd.DataFrame) -> None:
    """In the timeline a flight is inserted once and updated at most once: a change that landed
    twice under different positions would show up as a repeat here."""
    stream = changes[changes["_op"].isin(["i", "u", "d"])]
    repeats = stream.duplicated(["flight_id", "_op"], keep=False)
    assert not repeats.any(), stream.loc[repeats, ["flight_id", "_op", "_lsn", "_seq"]]


def test_snapshot_during_writes_then_stream_land_exactly_the_source(source, feed, landing):
    landing_dir, slot = landing
    feed.next(1500)  # flights in the source before the slot exists reach the lake by snapshot
    writer = threading.Thread(target=feed.next, args=(1500,), kwargs={"rate": 3000})
    before = LAG_SECONDS._sum.get()
    writer.start()
    try:
        time.sleep(0.15)  # the snapshot is taken while the replayer is writing
        with cdc.Consumer(source.dsn, landing_dir, slot=slot, batch_changes=500) as consumer:
            consumer.start()
            writer.join()
            part = feed.next(1500)
            summary = consumer.consume(until_idle=True)
    finally:
        writer.join()
    assert summary.snapshot_rows["planes"] == 3322 and summary.snapshot_rows["flights"] > 1000
    assert summary.transactions > 0 and summary.batches > 1
    assert summary.changes == sum(
        n for ops in summary.per_table.values() for op, n in ops.items() if op != "s"
    )
    assert summary.last_lsn is not None
    landed = assert_landing_matches_source(source, landing_dir)
    assert_no_duplicate_changes(landed["flights"])
    # the last slice's writes are all in the stream, with their kind of change
    stream = landed["flights"][landed["flights"]["_op"] != "s"]
    expected = part[part["table"] == "flights"].groupby("op").size().to_dict()
    tail = stream[stream["recorded_at"] >= part["recorded_at"].min()]
    got = tail.groupby("_op").size().rename({"i": "insert", "u": "update", "d": "delete"})
    assert got.to_dict() == expected
    assert len(consumer.lag.lags) == summary.transactions and min(consumer.lag.lags) >= 0
    assert LAG_SECONDS._sum.get() > before

    # layout: date partitions of recorded_at, files named by a 16-hex-digit LSN
    files = sorted((landing_dir / "flights").glob("date=*/*"))
    assert files and all(f.name.startswith("part-") and len(f.stem) == 21 for f in files)
    for path in files:
        day = path.parent.name.removeprefix("date=")
        part_rows = read_landing(
            landing_dir, "flights", day, pd.Timestamp(day) + pd.Timedelta("1D")
        )
        assert (part_rows["recorded_at"].dt.strftime("%Y-%m-%d") == day).all()

    # deletes (the erroneous duplicate flights) land as 'd' rows carrying the whole old row
    deletes = landed["flights"][landed["flights"]["_op"] == "d"]
    assert len(deletes) > 0 and (deletes["flight_id"] > 10_000_000).all()
    assert deletes["carrier"].notna().all() and deletes["sched_dep"].notna().all()
    state = apply_changes({}, landed["flights"], "flight_id")
    for flight_id in deletes["flight_id"]:
        assert state[flight_id].row is None  # a tombstone, not a missing key
    replayed_inserts = landed["flights"][
        landed["flights"]["flight_id"].isin(deletes["flight_id"])
        & (landed["flights"]["_op"] == "i")
    ]
    assert all(apply_changes(state, replayed_inserts, "flight_id")[k].row is None
               for k in deletes["flight_id"])  # fmt: skip


def _wait_for(log: Path, markers: tuple[str, ...], proc: subprocess.Popen, timeout=30.0) -> None:
    deadline = time.monotonic() + timeout
    while not any(m in log.read_text() for m in markers):
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
        time.sleep(0.02)


def test_killed_consumer_loses_and_duplicates_nothing(source, feed, landing):
    landing_dir, slot = landing
    rng = random.Random(13)
    command = [
        sys.executable, "-m", "mlops_pipeline.cdc.consumer", "--dsn", source.dsn,
        "--landing", str(landing_dir), "--slot", slot, "--follow", "--batch-changes", "150",
        "--poll-interval", "0.05",
    ]  # fmt: skip
    writer = threading.Thread(target=feed.next, args=(3500,), kwargs={"rate": 1000})
    writer.start()
    kills = 0
    try:
        for k in range(5):
            log = landing_dir.parent / f"consumer-{k}.log"
            with open(log, "w") as err:
                proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err)
            try:
                if k == 0:  # anywhere: importing, creating the slot, mid-snapshot
                    time.sleep(rng.uniform(0.3, 3.0))
                else:  # once it streams: polling, decoding, writing or confirming a batch
                    _wait_for(log, ("reusing slot", "landed"), proc)
                    time.sleep(rng.uniform(0.0, 0.8))
                assert proc.poll() is None, log.read_text()[-2000:]
            finally:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
            kills += 1
            assert cdc.slots(source.dsn).count(slot) <= 1
    finally:
        writer.join()
    assert kills == 5
    summary = cdc.consume(source.dsn, landing_dir, slot=slot)  # restart and drain
    assert summary.slot_reused and summary.snapshot_rows == {}
    assert cdc.slots(source.dsn).count(slot) == 1
    landed = assert_landing_matches_source(source, landing_dir)
    assert_no_duplicate_changes(landed["flights"])
    leftovers = list(landing_dir.glob("*/date=*/.*.tmp"))
    assert leftovers == []
    state = json.loads((landing_dir / "_cdc" / "state.json").read_text())
    assert state["snapshot_done"] and state["slot"] == slot


@pytest.mark.parametrize("crash_at", ["between two files of a batch", "before confirming"])
def test_crash_inside_a_batch_is_redone_without_loss_or_duplicates(
    source, feed, landing, monkeypatch, crash_at
):
    """The two places a random kill rarely hits, hit on purpose."""
    landing_dir, slot = landing
    cdc.consume(source.dsn, landing_dir, slot=slot)  # snapshot
    feed.next(400)
    if crash_at == "before confirming":
        original_retry = cdc.Consumer._retry

        def retry(self, what, action):
            if what.startswith("confirming"):
                raise KeyboardInterrupt(what)
            return original_retry(self, what, action)

        monkeypatch.setattr(cdc.Consumer, "_retry", retry)
    else:
        original_write = cdc.landing.write_batch
        written = []

        def write_batch(landing_dir, table, rows, lsn):
            if written:
                raise KeyboardInterrupt("killed between two files")
            written.extend(original_write(landing_dir, table, rows, lsn))
            return written

        monkeypatch.setattr(cdc.landing, "write_batch", write_batch)
    with pytest.raises(KeyboardInterrupt):
        cdc.consume(source.dsn, landing_dir, slot=slot)
    monkeypatch.undo()
    files_before = sorted(p.name for p in landing_dir.glob("*/date=*/part-*.parquet"))
    summary = cdc.consume(source.dsn, landing_dir, slot=slot)
    assert summary.changes >= 400  # the whole batch again, nothing skipped
    files_after = sorted(p.name for p in landing_dir.glob("*/date=*/part-*.parquet"))
    assert set(files_before) <= set(files_after)
    landed = assert_landing_matches_source(source, landing_dir)
    assert_no_duplicate_changes(landed["flights"])


def test_interrupted_snapshot_is_redone_with_the_same_slot(source, feed, landing, monkeypatch):
    landing_dir, slot = landing
    original = cdc.Consumer._snapshot_table
    calls = []

    def crash_on_second_table(self, conn, table, lsn, at_us):
        calls.append(table)
        if len(calls) == 2:
            raise KeyboardInterrupt("killed during the snapshot")
        return original(self, conn, table, lsn, at_us)

    monkeypatch.setattr(cdc.Consumer, "_snapshot_table", crash_on_second_table)
    with pytest.raises(KeyboardInterrupt), cdc.Consumer(source.dsn, landing_dir, slot=slot) as c:
        c.start()
    first = json.loads((landing_dir / "_cdc" / "state.json").read_text())
    assert not first["snapshot_done"] and cdc.slots(source.dsn).count(slot) == 1
    assert list((landing_dir / calls[0]).glob("date=*/*.parquet"))  # a half-done snapshot
    monkeypatch.undo()

    feed.next(300)
    summary = cdc.consume(source.dsn, landing_dir, slot=slot)
    assert not summary.slot_reused and cdc.slots(source.dsn).count(slot) == 1
    again = json.loads((landing_dir / "_cdc" / "state.json").read_text())
    assert again["snapshot_done"] and again["snapshot_lsn"] > first["snapshot_lsn"]
    stale = list(landing_dir.glob(f"*/date=*/part-{first['snapshot_lsn']:016X}.parquet"))
    assert stale == []
    assert_landing_matches_source(source, landing_dir)


def test_stopped_source_fails_clearly_and_resumes(source, feed, landing):
    landing_dir, slot = landing
    outcome: dict = {}
    stop = threading.Event()
    consumer = cdc.Consumer(
        source.dsn, landing_dir, slot=slot, batch_changes=200, retries=2, backoff=0.1
    )

    def follow() -> None:
        try:
            with consumer:
                consumer.consume(until_idle=False, stop=stop)
        except cdc.CDCError as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=follow)
    thread.start()
    try:
        state = landing_dir / "_cdc" / "state.json"
        deadline = time.monotonic() + 30
        while not (state.exists() and json.loads(state.read_text())["snapshot_done"]):
            assert thread.is_alive() and time.monotonic() < deadline, outcome
            time.sleep(0.02)
        feed.next(600, rate=1500)  # streaming while the source goes down
        source.stop(mode="immediate")  # a crash, mid-run
        thread.join(timeout=20)
        assert not thread.is_alive()
    finally:
        stop.set()
        thread.join()
        source.start()
    error = outcome.get("error")
    assert isinstance(error, cdc.SourceUnavailable)
    message = str(error)
    assert f"source database postgres at {source.socket_dir}" in message
    assert "after 3 attempts" in message and f"slot {slot}" in message
    assert list(landing_dir.glob("*/date=*/.*.tmp")) == []
    for table in schema.TABLES:
        read_landing(landing_dir, table)  # every file that exists is whole

    feed.next(300)
    summary = cdc.consume(source.dsn, landing_dir, slot=slot)
    assert summary.slot_reused
    landed = assert_landing_matches_source(source, landing_dir)
    assert_no_duplicate_changes(landed["flights"])


def test_unreachable_source_error_names_database_and_step(tmp_path):
    dead = SourceDatabase(tmp_path / "nothing-here")
    start = time.monotonic()
    with pytest.raises(cdc.SourceUnavailable, match="unavailable while reading the system id"):
        cdc.consume(dead.dsn, tmp_path / "landing", retries=2, backoff=0.05)
    assert time.monotonic() - start >= 0.15  # it did wait and retry


def test_second_consumer_on_a_landing_zone_is_refused(source, landing):
    landing_dir, slot = landing
    second = cdc.Consumer(source.dsn, landing_dir, slot=slot)
    with (
        cdc.Consumer(source.dsn, landing_dir, slot=slot),
        pytest.raises(cdc.CDCError, match="another consumer is running"),
    ):
        second.__enter__()


def test_corrupt_parquet_is_reported_with_its_path(source, feed, landing):
    landing_dir, slot = landing
    feed.next(200)
    cdc.consume(source.dsn, landing_dir, slot=slot)
    victim = sorted((landing_dir / "flights").glob("date=*/part-*.parquet"))[0]
    victim.write_bytes(b"PAR1 this is not a parquet file")
    with pytest.raises(LandingError, match=f"corrupt landing file {victim}"):
        read_landing(landing_dir, "flights")
    assert len(read_landing(landing_dir, "planes")) == 3322  # other tables still read


def test_compare_with_source_finds_a_lost_change(source, feed, landing):
    """The recovery benchmark's check: equal after a clean capture, and a landing file removed
    shows up as lost rows and a different checksum."""
    landing_dir, slot = landing
    feed.next(300)
    cdc.consume(source.dsn, landing_dir, slot=slot)
    clean = verify.compare_with_source(source.dsn, landing_dir)
    assert all(t["lost"] == 0 and t["extra"] == 0 and t["checksum_equal"] for t in clean.values())
    newest = sorted((landing_dir / "flights").glob("date=*/part-*.parquet"))[-1]
    newest.unlink()
    broken = verify.compare_with_source(source.dsn, landing_dir)["flights"]
    assert broken["lost"] > 0 and not broken["checksum_equal"]


def test_a_second_landing_zone_cannot_take_another_zones_slot(source, landing, tmp_path):
    """A slot made for one landing zone is refused, not dropped, by a consumer on another."""
    landing_dir, slot = landing
    cdc.consume(source.dsn, landing_dir, slot=slot)
    with pytest.raises(cdc.CDCError, match="did not create it"):
        cdc.consume(source.dsn, tmp_path / "other-landing", slot=slot)
    assert cdc.slots(source.dsn).count(slot) == 1
    again = cdc.consume(source.dsn, landing_dir, slot=slot)  # the owner carries on
    assert again.slot_reused
