"""The ANN benchmark's passages: word windows over the installed real text."""

from __future__ import annotations

import pytest

from rag_service.datasets.passages import ann_passages, windows


def test_windows_cover_the_text_with_the_given_stride():
    words = [f"w{i}" for i in range(10)]
    assert list(windows(words, size=4, stride=3)) == [
        "w0 w1 w2 w3", "w3 w4 w5 w6", "w6 w7 w8 w9",
    ]  # fmt: skip
    assert list(windows(words[:3], size=4, stride=2)) == ["w0 w1 w2"]
    assert list(windows([], size=4, stride=2)) == []


def test_bad_strides_are_refused():
    with pytest.raises(ValueError, match="stride"):
        ann_passages(stride=0)
    with pytest.raises(ValueError, match="stride"):
        ann_passages(size=4, stride=5)


@pytest.mark.slow
def test_the_installed_text_gives_100k_passages_and_held_out_queries():
    """The benchmark's promise: >= 100,000 indexed passages, every 100th window held out."""
    found = ann_passages()
    assert len(found.passages) >= 100_000
    assert len(found.queries) == pytest.approx(len(found.passages) / 99, rel=0.02)
    assert set(found.sources) == {"wikipedia", "lee_background", "documentation"}
    assert all(count > 1_000 for count in found.sources.values())
    assert all(1 <= len(p.split()) <= 16 for p in found.passages[:1000])
    with pytest.raises(ValueError, match="passages from the installed text"):
        ann_passages(minimum=10_000_000)
