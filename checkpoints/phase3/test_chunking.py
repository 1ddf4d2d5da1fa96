"""Checkpoint 3.1: fixed-size token windows and content-addressed chunk ids.

Grades `rag_service.corpus.chunking.fixed_windows(n_tokens, size, overlap)` and
`chunk_id(doc_id, text, seen=None)`. The oracles are written out here: windows computed by hand
for small inputs, properties every window list must have (checked over hundreds of
(n, size, overlap) triples), and ids built with hashlib from the definition in the design
(`doc_id#` + the first 12 hex characters of sha256 of the whitespace-collapsed text, `-2`,
`-3`... for repeats). Nothing is compared with the reference implementation.
"""

from __future__ import annotations

import hashlib
import math

import pytest

from learn.testing import import_learner


@pytest.fixture
def chunking():
    return import_learner("rag_service.corpus.chunking")


def _expected_id(doc_id: str, text: str) -> str:
    """The id by its definition: whitespace runs collapsed, ends stripped, sha256 of UTF-8."""
    normalised = " ".join(text.split())
    return f"{doc_id}#{hashlib.sha256(normalised.encode('utf-8')).hexdigest()[:12]}"


HAND_COMPUTED = [
    # (n_tokens, size, overlap, windows)
    (10, 4, 2, [(0, 4), (2, 6), (4, 8), (6, 10)]),
    (11, 4, 2, [(0, 4), (2, 6), (4, 8), (6, 10), (8, 11)]),
    (9, 3, 0, [(0, 3), (3, 6), (6, 9)]),
    (10, 3, 0, [(0, 3), (3, 6), (6, 9), (9, 10)]),
    (7, 5, 4, [(0, 5), (1, 6), (2, 7)]),
    (3, 4, 1, [(0, 3)]),
    (4, 4, 3, [(0, 4)]),
    (1, 1, 0, [(0, 1)]),
    (5, 128, 32, [(0, 5)]),
    (300, 128, 32, [(0, 128), (96, 224), (192, 300)]),
    (320, 128, 32, [(0, 128), (96, 224), (192, 320)]),
]


@pytest.mark.checkpoint("3.1")
@pytest.mark.parametrize(("n", "size", "overlap", "expected"), HAND_COMPUTED)
def test_fixed_windows_hand_computed(chunking, n, size, overlap, expected):
    """Small cases worked out by hand, including short tails and a tail that fits exactly."""
    assert chunking.fixed_windows(n, size, overlap) == expected


@pytest.mark.checkpoint("3.1")
def test_fixed_windows_properties(chunking):
    """Over many (n, size, overlap): cover 0..n, constant step, full windows, last ends at n."""
    for n in range(1, 41):
        for size in range(1, 12):
            for overlap in range(size):
                step = size - overlap
                windows = chunking.fixed_windows(n, size, overlap)
                case = (n, size, overlap, windows)
                assert windows, case
                starts = [start for start, _ in windows]
                assert starts == [k * step for k in range(len(windows))], case
                assert all(end - start == size for start, end in windows[:-1]), case
                assert 0 < windows[-1][1] - windows[-1][0] <= size, case
                assert windows[-1][1] == n, case
                # no duplicate tail: every window but the last stops short of n
                assert all(end < n for _, end in windows[:-1]), case
                covered = set().union(*(range(start, end) for start, end in windows))
                assert covered == set(range(n)), case
                assert len(windows) == 1 + math.ceil(max(n - size, 0) / step), case


@pytest.mark.checkpoint("3.1")
def test_fixed_windows_zero_tokens_and_bad_arguments(chunking):
    """No tokens give no windows; size <= 0 or overlap outside [0, size) raise ValueError."""
    assert chunking.fixed_windows(0, 4, 1) == []
    assert chunking.fixed_windows(2, 4, 1) == [(0, 2)]
    for size, overlap in [(0, 0), (-3, 0), (4, 4), (4, 5), (4, -1)]:
        with pytest.raises(ValueError):
            chunking.fixed_windows(10, size, overlap)


@pytest.mark.checkpoint("3.1")
def test_chunk_id_is_the_hash_of_the_normalised_text(chunking):
    """`doc#` + sha256(whitespace-collapsed UTF-8 text)[:12], also for non-ASCII text."""
    assert chunking.chunk_id("topic:assert", "assert x") == _expected_id("topic:assert", "assert x")
    text = "  La naïve  café\n\tcoûte 3 €  "
    assert (
        chunking.chunk_id("d", text)
        == "d#" + hashlib.sha256("La naïve café coûte 3 €".encode()).hexdigest()[:12]
    )


@pytest.mark.checkpoint("3.1")
def test_chunk_id_collapses_whitespace_only(chunking):
    """Spacing, tabs, newlines and the ends do not change an id; any word change does."""
    variants = ["a b c", "a  b c", "a\nb\tc", "  a b c\n", "a \r\n b   c"]
    ids = {chunking.chunk_id("doc", v) for v in variants}
    assert ids == {_expected_id("doc", "a b c")}
    assert chunking.chunk_id("doc", "a b C") != chunking.chunk_id("doc", "a b c")
    assert chunking.chunk_id("doc", "ab c") != chunking.chunk_id("doc", "a b c")


@pytest.mark.checkpoint("3.1")
def test_chunk_id_repeats_get_suffixes_in_order(chunking):
    """Identical normalised text in one document: first plain, then -2, -3; others untouched."""
    seen: dict[str, int] = {}
    texts = ["x y", "z", "x  y", "x\ny", "z"]
    ids = [chunking.chunk_id("d", t, seen) for t in texts]
    x, z = _expected_id("d", "x y"), _expected_id("d", "z")
    assert ids == [x, z, f"{x}-2", f"{x}-3", f"{z}-2"]
    # a new document (a fresh `seen`) starts over; without `seen` there are no suffixes
    assert chunking.chunk_id("d", "x y", {}) == x
    assert [chunking.chunk_id("d", "x y") for _ in range(3)] == [x, x, x]


@pytest.mark.checkpoint("3.1")
def test_chunk_id_seen_counts_ids_handed_out(chunking):
    """`seen` maps a base id to how many times it was handed out, and is updated."""
    base = _expected_id("d", "same text")
    seen = {base: 1}
    assert chunking.chunk_id("d", "same text", seen) == f"{base}-2"
    assert seen[base] == 2


@pytest.mark.checkpoint("3.1")
def test_chunk_id_does_not_depend_on_position(chunking):
    """The same texts in another order, or after other chunks, get the same ids."""
    texts = ["alpha beta", "gamma", "delta epsilon zeta"]
    forward_seen: dict[str, int] = {}
    forward = [chunking.chunk_id("doc", t, forward_seen) for t in texts]
    backward_seen: dict[str, int] = {}
    backward = [chunking.chunk_id("doc", t, backward_seen) for t in reversed(texts)]
    assert forward == list(reversed(backward))
    assert forward == [_expected_id("doc", t) for t in texts]
    # the hash part is the same in another document; only the prefix changes
    other = chunking.chunk_id("other", "gamma")
    assert other.split("#", 1) == ["other", forward[1].split("#", 1)[1]]


@pytest.mark.checkpoint("3.1")
def test_chunk_id_refuses_empty_text(chunking):
    """Whitespace-only text has no id (chunks are never empty); real text still gets one."""
    assert chunking.chunk_id("d", " z ") == _expected_id("d", "z")
    for bad in ["", "   ", "\n\t"]:
        with pytest.raises(ValueError):
            chunking.chunk_id("d", bad)
