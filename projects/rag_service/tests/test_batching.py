"""length_batches: each index once, padded size within the budget, short batches of similar length.

Encoder-level order and equality to unbatched encoding is tested in test_embeddings.py (it
needs the model).
"""

from __future__ import annotations

import random

import pytest

from rag_service.embeddings.batching import length_batches


def _check_invariants(lengths: list[int], max_tokens: int, max_batch: int) -> list[list[int]]:
    batches = length_batches(lengths, max_tokens, max_batch)
    flat = [i for batch in batches for i in batch]
    assert sorted(flat) == list(range(len(lengths))), "every index exactly once"
    for batch in batches:
        assert batch, "no empty batch"
        assert len(batch) <= max_batch
        assert len(batch) * max(lengths[i] for i in batch) <= max_tokens
    return batches


@pytest.mark.parametrize("seed", range(20))
def test_random_lengths_keep_every_invariant(seed):
    """Random lengths: each index once, batch_size x longest <= max_tokens, <= max_batch."""
    rng = random.Random(seed)
    lengths = [rng.randint(0, 256) for _ in range(rng.randint(1, 400))]
    max_batch = rng.choice([1, 3, 16, 128])
    _check_invariants(lengths, max_tokens=rng.choice([256, 1000, 8192]), max_batch=max_batch)


def test_batches_group_similar_lengths():
    """Longest first: no batch holds a text shorter than any text of a later batch."""
    lengths = [5, 200, 6, 190, 7, 180, 8]
    batches = _check_invariants(lengths, max_tokens=400, max_batch=8)
    assert batches == [[1, 3], [5, 6], [4, 2, 0]]
    longest = [max(lengths[i] for i in b) for b in batches]
    assert longest == sorted(longest, reverse=True)


def test_ties_are_broken_by_index_so_the_result_is_deterministic():
    """Equal lengths keep input order inside and across batches."""
    assert length_batches([4, 4, 4, 4, 4], max_tokens=8, max_batch=10) == [[0, 1], [2, 3], [4]]


def test_the_token_budget_is_reached_exactly_but_not_exceeded():
    """Batch of 4 x 64 = 256 fits a 256 budget; a fifth would not."""
    batches = length_batches([64] * 9, max_tokens=256, max_batch=100)
    assert [len(b) for b in batches] == [4, 4, 1]


def test_max_batch_caps_short_texts():
    """Zero-length (or very short) texts are bounded by max_batch, not by the token budget."""
    batches = _check_invariants([0] * 10 + [1] * 5, max_tokens=8192, max_batch=4)
    assert [len(b) for b in batches] == [4, 4, 4, 3]


def test_empty_input_gives_no_batches():
    """No lengths, no batches."""
    assert length_batches([], max_tokens=256, max_batch=8) == []


@pytest.mark.parametrize(
    ("lengths", "max_tokens", "max_batch", "message"),
    [
        ([3, 300], 256, 8, r"lengths\[1\] = 300 exceeds max_tokens"),
        ([3, -1], 256, 8, r"lengths\[1\] must be a non-negative int"),
        ([3, 2.5], 256, 8, r"lengths\[1\] must be a non-negative int"),
        ([3], 0, 8, "max_tokens and max_batch must be >= 1"),
        ([3], 256, 0, "max_tokens and max_batch must be >= 1"),
    ],
)
def test_bad_arguments_are_refused_naming_the_index(lengths, max_tokens, max_batch, message):
    """An impossible length or a non-positive budget raises ValueError with the culprit."""
    with pytest.raises(ValueError, match=message):
        length_batches(lengths, max_tokens, max_batch)
