"""CDC benchmarks: end-to-end lag at a paced write rate, and backlog drain throughput.

Both run on a scratch PostgreSQL and landing zone under `<home>/bench-cdc` (wiped first, removed
after unless `keep=True`), never on the pipeline's own source. The replayer runs in its own
process so the writer and the consumer do not share one interpreter lock; on a 2-core machine
they still share the CPUs with PostgreSQL, which is part of what the numbers say.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd

from mlops_pipeline.cdc.consumer import Consumer
from mlops_pipeline.cdc.metrics import LagRecorder
from mlops_pipeline.source import replayer, schema
from mlops_pipeline.source.database import SourceDatabase

PRELUDE_END = pd.Timestamp("2013-01-02T00:00:00Z")
"""Events before this are written fast before measuring (flights published the day before)."""


def _events(n_after_prelude: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(prelude, the next `n` events): timeline writes after the seeded planes."""
    from mlops_pipeline.source.timeline import build_timeline

    days = max(3, int(n_after_prelude / 1_500) + 3)  # ~1,950 writes per simulated day
    events = build_timeline(None, PRELUDE_END + pd.Timedelta(days=days), seed=seed)
    events = events[events["table"] != "planes"].sort_values(["recorded_at", "seq"])
    prelude = events[events["recorded_at"] < PRELUDE_END]
    rest = events[events["recorded_at"] >= PRELUDE_END].iloc[:n_after_prelude]
    if len(rest) < n_after_prelude:
        raise ValueError(f"the timeline has only {len(rest)} events after the prelude")
    return prelude, rest


def _scratch(home: str | os.PathLike[str]) -> Path:
    root = Path(home).expanduser().resolve() / "bench-cdc"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    return root


def measure_lag(
    home: str | os.PathLike[str],
    rate: float = 1_000,
    seconds: float = 25,
    poll_interval: float = 0.1,
    keep: bool = False,
) -> dict:
    """Write `rate` changes/s for `seconds` while the consumer follows; lag percentiles.

    Lag is per change: the time from its transaction's commit to the durable rename of the
    landing file holding it. Returns rate asked and achieved, counts and p50/p99/max (seconds).
    """
    root = _scratch(home)
    try:
        prelude, paced = _events(int(rate * seconds))
        events_file = root / "paced.parquet"
        paced.to_parquet(events_file)
        lag = LagRecorder()
        with SourceDatabase(root / "pgdata") as db:
            schema.create_schema(db.dsn)
            replayer.seed_planes(db.dsn)
            replayer.replay(db.dsn, prelude)
            stop = threading.Event()
            consumer = Consumer(db.dsn, root / "landing", poll_interval=poll_interval, lag=lag)
            with consumer:
                consumer.start()  # the snapshot happens before the clock starts
                follower = threading.Thread(
                    target=consumer.consume, kwargs={"until_idle": False, "stop": stop}
                )
                follower.start()
                try:
                    writer = subprocess.run(
                        [sys.executable, "-m", "mlops_pipeline.source.replayer", "--dsn", db.dsn,
                         "--events", str(events_file), "--rate", str(rate)],
                        capture_output=True, text=True, check=True,
                    )  # fmt: skip
                    time.sleep(max(1.0, 5 * poll_interval))  # let the last batch land
                finally:
                    stop.set()
                    follower.join()
                consumer.consume(until_idle=True)
            written = json.loads(writer.stdout.strip().splitlines()[-1])
        per_change = lag.percentiles((50, 99, 100))
        per_txn = lag.percentiles((50, 99), per_change=False)
        return {
            "rate_target": rate,
            "rate_achieved": round(written["rate"], 1),
            "seconds": round(written["elapsed_s"], 2),
            "changes": consumer.summary.changes,
            "transactions": consumer.summary.transactions,
            "batches": consumer.summary.batches,
            "poll_interval_s": poll_interval,
            "lag_p50_s": round(per_change["p50"], 4),
            "lag_p99_s": round(per_change["p99"], 4),
            "lag_max_s": round(per_change["p100"], 4),
            "lag_txn_p50_s": round(per_txn["p50"], 4),
            "lag_txn_p99_s": round(per_txn["p99"], 4),
        }
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


def measure_drain(
    home: str | os.PathLike[str],
    changes: int = 50_000,
    batch_changes: int = 20_000,
    keep: bool = False,
) -> dict:
    """Write a backlog of `changes`, then time the consumer draining it (decode + Parquet write
    + slot confirm). Returns changes/s of the drain and of the replayer that wrote it."""
    root = _scratch(home)
    try:
        prelude, backlog = _events(changes)
        with SourceDatabase(root / "pgdata") as db:
            schema.create_schema(db.dsn)
            replayer.seed_planes(db.dsn)
            replayer.replay(db.dsn, prelude)
            with Consumer(db.dsn, root / "landing", batch_changes=batch_changes) as consumer:
                consumer.start()
                wrote = replayer.replay(db.dsn, backlog)
                start = time.perf_counter()
                summary = consumer.consume(until_idle=True)
                elapsed = time.perf_counter() - start
        return {
            "changes": summary.changes,
            "transactions": summary.transactions,
            "batches": summary.batches,
            "files": summary.files,
            "drain_seconds": round(elapsed, 3),
            "drain_changes_per_s": round(summary.changes / elapsed, 1),
            "replay_changes_per_s": round(wrote.rate, 1),
        }
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


def _wait_for_log(log: Path, markers: tuple[str, ...], proc: subprocess.Popen) -> None:
    """Until the consumer's log shows one of `markers` (it started streaming), at most 60 s."""
    deadline = time.monotonic() + 60
    while not any(m in log.read_text() for m in markers):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"consumer did not start streaming: {log.read_text()[-2000:]}")
        time.sleep(0.02)


def measure_recovery(
    home: str | os.PathLike[str],
    kills: int = 5,
    changes: int = 10_000,
    rate: float = 1_000,
    seed: int = 13,
    keep: bool = False,
) -> dict:
    """Kill the consumer (SIGKILL) `kills` times at random moments while the replayer writes,
    restart it each time, drain, then compare the lake with the source: lost and duplicated
    changes, counts and checksums per table (`verify.compare_with_source`)."""
    import random
    import signal

    from mlops_pipeline.cdc.consumer import consume
    from mlops_pipeline.cdc.verify import compare_with_source

    rng = random.Random(seed)
    root = _scratch(home)
    try:
        prelude, stream = _events(changes)
        events_file = root / "stream.parquet"
        stream.to_parquet(events_file)
        landing_dir = root / "landing"
        with SourceDatabase(root / "pgdata") as db:
            schema.create_schema(db.dsn)
            replayer.seed_planes(db.dsn)
            replayer.replay(db.dsn, prelude)
            writer = subprocess.Popen(
                [sys.executable, "-m", "mlops_pipeline.source.replayer", "--dsn", db.dsn,
                 "--events", str(events_file), "--rate", str(rate)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            moments = []
            try:
                for k in range(kills):
                    log = root / f"consumer-{k}.log"
                    with open(log, "w") as stderr:
                        consumer = subprocess.Popen(
                            [sys.executable, "-m", "mlops_pipeline.cdc.consumer", "--dsn", db.dsn,
                             "--landing", str(landing_dir), "--follow", "--batch-changes", "150",
                             "--poll-interval", "0.05"],
                            stdout=subprocess.DEVNULL, stderr=stderr,
                        )  # fmt: skip
                    started = time.monotonic()
                    if k == 0:  # anywhere: importing, creating the slot, mid-snapshot
                        time.sleep(rng.uniform(0.3, 3.0))
                    else:  # once it streams: polling, decoding, writing or confirming
                        _wait_for_log(log, ("reusing slot", "landed"), consumer)
                        time.sleep(rng.uniform(0.0, 0.8))
                    consumer.send_signal(signal.SIGKILL)
                    consumer.wait()
                    moments.append(round(time.monotonic() - started, 2))
            finally:
                writer.wait()
            summary = consume(db.dsn, landing_dir)  # the last restart drains what is left
            tables = compare_with_source(db.dsn, landing_dir)
        return {
            "kills": kills,
            "killed_after_s": moments,
            "changes_written": len(stream),
            "slot_reused_on_restart": summary.slot_reused,
            "lost": sum(int(t["lost"]) for t in tables.values()),
            "duplicated": sum(
                int(t["duplicated_changes"]) + int(t["extra"]) for t in tables.values()
            ),
            "checksums_equal": all(bool(t["checksum_equal"]) for t in tables.values()),
            "tables": tables,
        }
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="CDC lag and drain benchmarks")
    parser.add_argument("--home", default=".mlops")
    parser.add_argument("--rate", type=float, default=1_000)
    parser.add_argument("--seconds", type=float, default=25)
    parser.add_argument("--drain-changes", type=int, default=50_000)
    args = parser.parse_args()
    print(json.dumps({"lag": measure_lag(args.home, args.rate, args.seconds)}))
    print(json.dumps({"drain": measure_drain(args.home, args.drain_changes)}))
