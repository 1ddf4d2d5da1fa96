"""Checkpoint 2.1: applying change events idempotently (mlops_pipeline.cdc.apply.apply_changes).

Every test compares the learner's state with a brute-force oracle written here: deduplicate the
events by position, sort them, and replay them into a plain dict (with a dict of tombstones).
Nothing is compared with the reference implementation.
"""

from __future__ import annotations

import random

import pandas as pd
import pytest

from learn.testing import import_learner


@pytest.fixture
def apply():
    return import_learner("mlops_pipeline.cdc.apply")


def _oracle(events) -> tuple[dict, dict]:
    """Live rows and the position of every key's last change, by brute force."""
    unique = {(e.lsn, e.seq, e.key): e for e in events}
    rows: dict = {}
    last: dict = {}
    for e in sorted(unique.values(), key=lambda e: (e.lsn, e.seq)):
        last[e.key] = (e.lsn, e.seq)
        if e.op == "d":
            rows.pop(e.key, None)
        else:
            rows[e.key] = dict(e.row)
    return rows, last


def _live(state) -> dict:
    return {k: dict(v.row) for k, v in state.items() if v.row is not None}


def _history(apply, n_keys: int, n_txns: int, seed: int) -> list:
    """A random but valid change history: inserts of new keys, updates and deletes of live
    ones, several changes per transaction."""
    rng = random.Random(seed)
    events, live, lsn, next_key = [], set(), 100, 0
    for _ in range(n_txns):
        lsn += rng.randint(1, 50)
        for seq in range(rng.randint(1, 4)):
            choice = rng.random()
            if not live or (choice < 0.4 and next_key < n_keys):
                key, op = next_key, "i"
                next_key += 1
                live.add(key)
            elif choice < 0.85:
                key, op = rng.choice(sorted(live)), "u"
            else:
                key, op = rng.choice(sorted(live)), "d"
                live.discard(key)
            row = None if op == "d" else {"id": key, "value": rng.randint(0, 999)}
            events.append(apply.ChangeEvent(op, key, lsn, seq, row))
    return events


@pytest.mark.checkpoint("2.1")
def test_shuffled_events_apply_in_position_order(apply):
    """Events given in random order end in the state of applying them in (lsn, seq) order."""
    events = _history(apply, n_keys=40, n_txns=120, seed=1)
    shuffled = events[:]
    random.Random(2).shuffle(shuffled)
    state = apply.apply_changes({}, shuffled)
    rows, last = _oracle(events)
    assert _live(state) == rows
    assert {k: v.position for k, v in state.items()} == last


@pytest.mark.checkpoint("2.1")
def test_delete_removes_row_and_keeps_tombstone(apply):
    """A delete removes the row from the live rows but the key keeps the delete's position."""
    ev = apply.ChangeEvent
    events = [ev("i", "a", 10, 0, {"v": 1}), ev("i", "b", 10, 1, {"v": 2}), ev("d", "a", 20, 0)]
    state = apply.apply_changes({}, events)
    assert _live(state) == {"b": {"v": 2}}
    assert "a" in state and state["a"].row is None
    assert state["a"].position == (20, 0)


@pytest.mark.checkpoint("2.1")
def test_replayed_older_insert_cannot_resurrect_a_deleted_row(apply):
    """After a delete, replaying the key's older insert and update (a redo) changes nothing."""
    ev = apply.ChangeEvent
    first = [ev("i", 7, 100, 0, {"v": "old"}), ev("u", 7, 150, 2, {"v": "new"})]
    state = apply.apply_changes({}, [*first, ev("d", 7, 200, 0, {"v": "new"})])
    again = apply.apply_changes(state, first)
    assert _live(again) == {}
    assert again[7].row is None and again[7].position == (200, 0)


@pytest.mark.checkpoint("2.1")
def test_exact_replay_of_a_batch_changes_nothing(apply):
    """Applying a batch a second time (at-least-once delivery) leaves the state identical."""
    events = _history(apply, n_keys=30, n_txns=80, seed=3)
    half = len(events) // 2
    state = apply.apply_changes(apply.apply_changes({}, events[:half]), events[half:])
    again = apply.apply_changes(state, events[half:])
    assert {k: (v.position, v.row) for k, v in again.items()} == {
        k: (v.position, v.row) for k, v in state.items()
    }
    assert _live(again) == _oracle(events)[0]


@pytest.mark.checkpoint("2.1")
def test_overlapping_redelivery_equals_single_delivery(apply):
    """Batches redelivered with overlaps, out of order and across calls equal the oracle."""
    events = _history(apply, n_keys=50, n_txns=200, seed=4)
    rng = random.Random(5)
    state: dict = {}
    for _ in range(12):
        lo = rng.randrange(len(events))
        batch = events[lo : lo + rng.randint(1, 80)]
        rng.shuffle(batch)
        state = apply.apply_changes(state, batch)
    state = apply.apply_changes(state, events)
    rows, last = _oracle(events)
    assert _live(state) == rows
    assert {k: v.position for k, v in state.items()} == last


@pytest.mark.checkpoint("2.1")
def test_updates_to_different_keys_in_one_transaction(apply):
    """Changes sharing an LSN are ordered by seq: each key gets its own last change."""
    ev = apply.ChangeEvent
    events = [
        ev("u", "x", 50, 2, {"v": "x2"}),
        ev("i", "x", 50, 0, {"v": "x0"}),
        ev("i", "y", 50, 1, {"v": "y1"}),
        ev("u", "y", 50, 3, {"v": "y3"}),
        ev("u", "x", 50, 4, {"v": "x4"}),
    ]
    state = apply.apply_changes({}, events)
    assert _live(state) == {"x": {"v": "x4"}, "y": {"v": "y3"}}
    assert state["x"].position == (50, 4) and state["y"].position == (50, 3)


@pytest.mark.checkpoint("2.1")
def test_input_state_is_not_modified(apply):
    """apply_changes returns a new state and leaves the one passed in as it was."""
    ev = apply.ChangeEvent
    state = apply.apply_changes({}, [ev("i", 1, 10, 0, {"v": 1})])
    before = dict(state)
    after = apply.apply_changes(state, [ev("u", 1, 20, 0, {"v": 2}), ev("i", 2, 20, 1, {"v": 3})])
    assert state == before
    assert _live(after) == {1: {"v": 2}, 2: {"v": 3}}


@pytest.mark.checkpoint("2.1")
def test_landing_rows_with_duplicates_build_the_current_table(apply):
    """Landing rows (snapshot, changes, a duplicated file) give the oracle's table, by key."""
    rows = [
        ("s", 5, 0, 1, "a"), ("s", 5, 1, 2, "b"), ("s", 5, 2, 3, "c"),
        ("u", 9, 0, 1, "a2"), ("d", 9, 1, 2, "b"), ("i", 9, 2, 4, "d"),
        ("u", 12, 0, 4, "d2"), ("i", 12, 1, 2, "b-again"),
    ]  # fmt: skip
    frame = pd.DataFrame(rows, columns=["_op", "_lsn", "_seq", "id", "name"])
    doubled = pd.concat([frame, frame.iloc[3:6]], ignore_index=True).sample(frac=1, random_state=0)
    table = apply.current_table(doubled, "id")
    expected = pd.DataFrame({"id": [1, 2, 3, 4], "name": ["a2", "b-again", "c", "d2"]})
    pd.testing.assert_frame_equal(table.reset_index(drop=True), expected)
