"""Enough real text for the approximate-nearest-neighbour benchmark: >= 100,000 short passages.

No package here ships a 100k-passage corpus, so the passages are overlapping 16-word windows
(stride 6) over all the real English text that is installed: gensim's 206-page Wikipedia
extract (markup stripped with gensim's own `filter_wiki`), Lee's 300 background news articles
and the documentation corpus. Overlapping windows are near-duplicates of their neighbours,
so the vectors cluster along each text; a held-out query window overlaps the indexed windows on
either side of it, which makes its nearest neighbour easy to find but leaves many close
candidates for the rest of the top 10. The README says what the vectors are. Queries are
held-out windows: every 100th window is kept out of the indexed set.
"""

from __future__ import annotations

import bz2
from collections.abc import Iterator
from dataclasses import dataclass

WIKI_FILE = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
LEE_BACKGROUND = "lee_background.cor"


@dataclass(frozen=True)
class Passages:
    """Indexed passages and held-out query passages, with where the words came from."""

    passages: list[str]
    queries: list[str]
    sources: dict[str, int]


def _wikipedia() -> Iterator[str]:
    from gensim.corpora.wikicorpus import extract_pages, filter_wiki
    from gensim.test.utils import datapath

    with bz2.open(datapath(WIKI_FILE)) as raw:
        for _title, text, _page in extract_pages(raw):
            yield filter_wiki(text)


def _lee_background() -> Iterator[str]:
    from gensim.test.utils import datapath

    with open(datapath(LEE_BACKGROUND), encoding="latin-1") as lines:
        yield from lines


def _documentation() -> Iterator[str]:
    from rag_service.corpus.documents import documentation_corpus

    for doc in documentation_corpus():
        yield doc.text


SOURCES = {"wikipedia": _wikipedia, "lee_background": _lee_background,
           "documentation": _documentation}  # fmt: skip


def windows(words: list[str], size: int, stride: int) -> Iterator[str]:
    """Word windows of `size` every `stride` words; a text shorter than `size` is one window."""
    if len(words) <= size:
        if words:
            yield " ".join(words)
        return
    for start in range(0, len(words) - size + 1, stride):
        yield " ".join(words[start : start + size])


def ann_passages(
    minimum: int = 100_000, size: int = 16, stride: int = 6, query_every: int = 100
) -> Passages:
    """At least `minimum` indexed passages (if the installed text allows; else ValueError)."""
    if not 0 < stride <= size:
        raise ValueError(f"need 0 < stride <= size, got stride={stride}, size={size}")
    everything: list[str] = []
    sources: dict[str, int] = {}
    for name, read in SOURCES.items():
        before = len(everything)
        for text in read():
            everything.extend(windows(text.split(), size, stride))
        sources[name] = len(everything) - before
    queries = everything[::query_every]
    passages = [p for i, p in enumerate(everything) if i % query_every]
    if len(passages) < minimum:
        raise ValueError(
            f"only {len(passages)} passages from the installed text (wanted {minimum}); "
            "use a smaller stride"
        )
    return Passages(passages, queries, sources)
