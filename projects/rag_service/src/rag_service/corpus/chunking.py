"""Cut documents into chunks the retriever indexes, with ids that survive re-chunking.

Three strategies share one notion of a token, the whitespace-separated word (`word_spans`), so
their sizes compare in a table and none needs a tokenizer:

* `fixed_token_chunks`: windows of `size` words advancing by `size - overlap`. Simple and
  predictable, but every boundary depends on the position of a word in the document, so one word
  inserted at the top shifts every later window and changes every later chunk's text.
* `structure_chunks`: the document's own units. Sections start at headings (pydoc's underlined
  titles, markdown `#` lines); inside a section, blank-line paragraphs are packed in order up to
  `max_tokens`; a unit over the limit is cut with fixed windows. Boundaries depend only on the
  section's own text, so an edit leaves the chunks of every other section, and those of its own
  section that end before the edit, exactly as they were.
* `sentence_chunks`: whole sentences packed up to `max_tokens` (a sentence over the limit is cut
  with fixed windows).

The default sizes (fixed 96 words with 24 of overlap, structure 120, sentence 96) are set by the
encoder, not by taste: MiniLM reads at most 256 word pieces and cuts the rest, and Python's
documentation averages about two word pieces per word (a `*****` underline is one word and many
pieces). At these sizes about 95 % of the documentation's chunks fit; at 128/200/128 words,
12-20 % would have lost their ends without a word of warning.

Every chunk is an exact slice of its document (`doc.text[chunk.start:chunk.end] == chunk.text`),
starts and ends on a word, is never empty, and every word of a document lies in at least one of
its chunks. Chunk ids (`chunk_id`) hash the whitespace-normalised text, not the position: an index
updated after an edit re-embeds only the chunks whose ids it has not seen.
"""

from __future__ import annotations

import hashlib
import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "STRATEGIES",
    "Chunk",
    "DocumentLike",
    "chunk_corpus",
    "chunk_id",
    "chunk_stats",
    "fixed_token_chunks",
    "fixed_windows",
    "sentence_chunks",
    "structure_chunks",
    "word_spans",
]

ID_HASH_CHARS = 12
"""Hex characters of sha256 kept: 48 bits, an even chance of a collision at ~16M chunks per doc."""

_WORD = re.compile(r"\S+")
_MARKDOWN_HEADING = re.compile(r"[ ]{0,3}#{1,6}(?:[ \t]|$)")
_FENCE = re.compile(r"[ ]{0,3}(```|~~~)")
_UNDERLINE = re.compile(r"([*=\-~^])\1{2,}[ \t\r]*")
_SENTENCE_END = re.compile(r"[.!?][\"'\u201d\u2019)\]]*(?=\s)")
_PARAGRAPH_BREAK = re.compile(r"\n[^\S\n]*\n")
_OPENERS = "\"'\u201c\u2018([{"
_ABBREVIATIONS = frozenset(
    {
        *("mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "vs", "etc", "cf", "al"),
        *("e.g", "i.e", "fig", "no", "nos", "vol", "approx", "inc", "ltd", "co", "corp"),
        *("gen", "gov", "sen", "rep", "lt", "col", "sgt", "capt", "u.s", "u.k", "u.n"),
        *("jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec"),
    }
)
"""Words whose final period does not end a sentence (compared lower-case, trailing '.' removed)."""


class DocumentLike(Protocol):
    """What chunking needs of a document: `corpus.documents.Document` and test doubles alike."""

    @property
    def id(self) -> str: ...

    @property
    def text(self) -> str: ...


@dataclass(frozen=True)
class Chunk:
    """A slice of one document: `text == document.text[start:end]` (character offsets)."""

    id: str
    doc_id: str
    text: str
    start: int
    end: int

    @property
    def n_words(self) -> int:
        return len(self.text.split())


def word_spans(text: str) -> list[tuple[int, int]]:
    """Character spans `[start, end)` of the whitespace-separated words of `text`.

    A word is a run of non-whitespace (regex `\\S+`): the token every strategy counts, so that
    `size=128` means the same amount of text for fixed windows, paragraphs and sentences.
    """
    if not isinstance(text, str):
        raise TypeError(f"word_spans needs a str, got {type(text).__name__}")
    return [match.span() for match in _WORD.finditer(text)]


def _check_positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def fixed_windows(n_tokens: int, size: int, overlap: int) -> list[tuple[int, int]]:
    """Token index ranges `[start, end)` of windows of `size` tokens, advancing by `size - overlap`.

    Starts are 0, step, 2*step, ...; the last window is the first one that reaches `n_tokens`
    (it may be shorter than `size`), so no window is empty and none lies entirely inside the one
    before it. Zero tokens give no windows.
    """
    if isinstance(n_tokens, bool) or not isinstance(n_tokens, int) or n_tokens < 0:
        raise ValueError(f"n_tokens must be a non-negative integer, got {n_tokens!r}")
    _check_positive_int("size", size)
    if isinstance(overlap, bool) or not isinstance(overlap, int) or not 0 <= overlap < size:
        raise ValueError(
            f"overlap must be an integer with 0 <= overlap < size={size}, got {overlap!r}"
        )
    # BEGIN SOLUTION 3.1: windows of `size` advancing by size - overlap, stop at the one reaching n
    step = size - overlap
    windows: list[tuple[int, int]] = []
    start = 0
    while start < n_tokens:
        end = min(start + size, n_tokens)
        windows.append((start, end))
        if end == n_tokens:
            break
        start += step
    return windows
    # END SOLUTION


def chunk_id(doc_id: str, text: str, seen: MutableMapping[str, int] | None = None) -> str:
    """`f"{doc_id}#{sha256(normalised text)[:12]}"`, normalised = whitespace runs collapsed to one
    space and the ends stripped, hashed as UTF-8.

    The id depends on the text alone, never on the chunk's position, so re-chunking an edited
    document keeps the ids (and the stored embeddings) of every chunk whose text did not change.
    `seen` counts the ids already handed out in this document (base id -> count) and is updated:
    the second chunk with the same normalised text gets `-2`, the third `-3`, in call order.
    """
    if not isinstance(doc_id, str) or not doc_id:
        raise ValueError(f"doc_id must be a non-empty str, got {doc_id!r}")
    if not isinstance(text, str):
        raise TypeError(f"chunk text of {doc_id!r} must be a str, got {type(text).__name__}")
    if not text.strip():
        raise ValueError(f"chunk text of {doc_id!r} is empty or whitespace only; no id for it")
    # BEGIN SOLUTION 3.1: hash of the whitespace-collapsed text, -2, -3... for repeats in `seen`
    normalised = " ".join(text.split())
    base = f"{doc_id}#{hashlib.sha256(normalised.encode('utf-8')).hexdigest()[:ID_HASH_CHARS]}"
    if seen is None:
        return base
    count = seen.get(base, 0) + 1
    seen[base] = count
    return base if count == 1 else f"{base}-{count}"
    # END SOLUTION


def _doc_fields(doc: DocumentLike) -> tuple[str, str]:
    doc_id, text = getattr(doc, "id", None), getattr(doc, "text", None)
    if not isinstance(doc_id, str) or not doc_id:
        raise ValueError(f"document needs a non-empty str id, got {doc_id!r}")
    if not isinstance(text, str):
        raise TypeError(f"document {doc_id!r}: text must be a str, got {type(text).__name__}")
    return doc_id, text


def _chunks_from_word_ranges(
    doc_id: str, text: str, spans: Sequence[tuple[int, int]], ranges: Iterable[tuple[int, int]]
) -> list[Chunk]:
    """Turn word index ranges into chunks: from the first word's start to the last word's end."""
    seen: dict[str, int] = {}
    chunks = []
    for first, stop in ranges:
        start, end = spans[first][0], spans[stop - 1][1]
        piece = text[start:end]
        chunks.append(Chunk(chunk_id(doc_id, piece, seen), doc_id, piece, start, end))
    return chunks


def _windows_over(first: int, stop: int, size: int, overlap: int = 0) -> list[tuple[int, int]]:
    return [(first + a, first + b) for a, b in fixed_windows(stop - first, size, overlap)]


def fixed_token_chunks(doc: DocumentLike, size: int = 96, overlap: int = 24) -> list[Chunk]:
    """Windows of `size` words overlapping by `overlap` (the baseline every strategy is read
    against)."""
    doc_id, text = _doc_fields(doc)
    _check_positive_int("size", size)
    spans = word_spans(text)
    return _chunks_from_word_ranges(doc_id, text, spans, fixed_windows(len(spans), size, overlap))


@dataclass(frozen=True)
class _Unit:
    """A heading or a paragraph: a character range of whole lines, and whether a section starts."""

    start: int
    end: int
    heading: bool


def _structural_units(text: str) -> list[_Unit]:
    """Headings and blank-line paragraphs, in order. Inside a fenced code block (``` or ~~~)
    blank lines do not split and `#` lines are comments, not headings. A line of `~~~` right
    under a text line is read as a reST underline (pydoc uses them), not as a fence."""
    units: list[_Unit] = []
    para_start: int | None = None  # start of the paragraph being read
    last_line: tuple[int, int] | None = None  # the previous non-blank line of that paragraph
    in_fence = False
    offset = 0

    def close(end: int) -> None:
        nonlocal para_start
        if para_start is not None:
            units.append(_Unit(para_start, end, heading=False))
            para_start = None

    for line in text.split("\n"):
        start, end = offset, offset + len(line)
        offset = end + 1
        if in_fence:
            in_fence = _FENCE.match(line) is None  # everything up to the closing fence stays
        elif not _WORD.search(line):  # blank line: ends the paragraph
            close(last_line[1] if last_line else start)
            last_line = None
            continue
        elif last_line is not None and _UNDERLINE.fullmatch(line):
            # reST/pydoc heading: the previous line is its title; whatever came before the title
            # in the same paragraph ends there. Checked before fences: pydoc underlines with ~~~.
            title_start = last_line[0]
            if para_start is not None and para_start < title_start:
                units.append(_Unit(para_start, title_start - 1, heading=False))
            para_start = None
            units.append(_Unit(title_start, end, heading=True))
            last_line = None
            continue
        elif _MARKDOWN_HEADING.match(line):
            close(last_line[1] if last_line else start)
            units.append(_Unit(start, end, heading=True))
            last_line = None
            continue
        elif _FENCE.match(line):
            in_fence = True
        if para_start is None:
            para_start = start
        last_line = (start, end)
    close(last_line[1] if last_line else offset)
    return units


def structure_chunks(doc: DocumentLike, max_tokens: int = 120) -> list[Chunk]:
    """Sections (from headings) of paragraphs packed up to `max_tokens` words; a heading always
    joins the text after it, and an oversize paragraph is cut with fixed windows."""
    doc_id, text = _doc_fields(doc)
    _check_positive_int("max_tokens", max_tokens)
    spans = word_spans(text)
    starts = [s for s, _ in spans]

    ranges: list[tuple[int, int]] = []
    pending: tuple[int, int] | None = None  # word range of the units packed so far
    pending_is_heading = False  # pending holds a heading and nothing else

    for unit in _structural_units(text):
        first, stop = bisect_left(starts, unit.start), bisect_left(starts, unit.end)
        if first == stop:
            continue
        if unit.heading and pending is not None and not pending_is_heading:
            ranges.append(pending)  # a heading starts a section: it never joins the one before
            pending = None
        if pending is not None and stop - pending[0] <= max_tokens:
            pending, pending_is_heading = (pending[0], stop), pending_is_heading and unit.heading
        elif stop - first <= max_tokens:
            if pending is not None:
                ranges.append(pending)
            pending, pending_is_heading = (first, stop), unit.heading
        else:
            # Oversize: cut with windows. Headings right before it go into the first window, so
            # a title never becomes a chunk of its own.
            if pending is not None and pending_is_heading:
                first = pending[0]
            elif pending is not None:
                ranges.append(pending)
            ranges.extend(_windows_over(first, stop, max_tokens))
            pending, pending_is_heading = None, False
    if pending is not None:
        ranges.append(pending)
    return _chunks_from_word_ranges(doc_id, text, spans, ranges)


def _sentence_ranges(text: str, spans: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Word ranges of sentences: a sentence ends at a blank line, or at a word ending in . ! ?
    (closing quotes/brackets allowed) when the next word starts with a capital letter or a digit
    and the word is not a known abbreviation or a single-letter initial."""
    n = len(spans)
    if n == 0:
        return []
    ends = [e for _, e in spans]
    boundaries: set[int] = set()  # word index after which a sentence ends
    for match in _SENTENCE_END.finditer(text):
        i = bisect_left(ends, match.end())
        if i >= n - 1 or ends[i] != match.end():
            continue  # punctuation inside a word (e.g. "3.5") or the last word
        word = text[spans[i][0] : match.start()].lstrip(_OPENERS).lower()
        if word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha()):
            continue
        follower = text[spans[i + 1][0] : spans[i + 1][1]].lstrip(_OPENERS)
        if follower and (follower[0].isupper() or follower[0].isdigit()):
            boundaries.add(i)
    for match in _PARAGRAPH_BREAK.finditer(text):
        i = bisect_right(ends, match.start()) - 1
        if 0 <= i < n - 1:
            boundaries.add(i)
    sentences, first = [], 0
    for i in sorted(boundaries):
        sentences.append((first, i + 1))
        first = i + 1
    sentences.append((first, n))
    return sentences


def sentence_chunks(doc: DocumentLike, max_tokens: int = 96) -> list[Chunk]:
    """Whole sentences packed in order up to `max_tokens` words; a longer sentence is cut with
    fixed windows rather than dropped."""
    doc_id, text = _doc_fields(doc)
    _check_positive_int("max_tokens", max_tokens)
    spans = word_spans(text)
    ranges: list[tuple[int, int]] = []
    pending: tuple[int, int] | None = None
    for first, stop in _sentence_ranges(text, spans):
        if pending is not None and stop - pending[0] <= max_tokens:
            pending = (pending[0], stop)
            continue
        if pending is not None:
            ranges.append(pending)
            pending = None
        if stop - first <= max_tokens:
            pending = (first, stop)
        else:
            ranges.extend(_windows_over(first, stop, max_tokens))
    if pending is not None:
        ranges.append(pending)
    return _chunks_from_word_ranges(doc_id, text, spans, ranges)


Strategy = Callable[..., list[Chunk]]

STRATEGIES: dict[str, Strategy] = {
    "fixed": fixed_token_chunks,
    "structure": structure_chunks,
    "sentence": sentence_chunks,
}


def chunk_corpus(docs: Iterable[DocumentLike], strategy: str, **params: int) -> list[Chunk]:
    """Chunk every document with one strategy (`STRATEGIES` key) and its parameters, in order.

    Duplicate document ids are refused: their chunk ids could collide, and relevance is judged
    per document id, so two documents under one id would be scored as one.
    """
    try:
        chunker = STRATEGIES[strategy]
    except KeyError:
        raise ValueError(
            f"unknown chunking strategy {strategy!r}; known: {', '.join(sorted(STRATEGIES))}"
        ) from None
    chunks: list[Chunk] = []
    seen_docs: set[str] = set()
    for doc in docs:
        doc_id, _ = _doc_fields(doc)
        if doc_id in seen_docs:
            raise ValueError(f"duplicate document id {doc_id!r}: chunk ids would collide")
        seen_docs.add(doc_id)
        chunks.extend(chunker(doc, **params))
    return chunks


def chunk_stats(chunks: Sequence[Chunk]) -> dict[str, float | int]:
    """Counts for a strategy table: chunks, documents, and words per chunk (mean, median, max)."""
    words = sorted(chunk.n_words for chunk in chunks)
    n = len(words)
    if n == 0:
        return {"chunks": 0, "documents": 0, "mean_words": 0.0, "median_words": 0.0, "max_words": 0}
    middle = n // 2
    median = float(words[middle]) if n % 2 else (words[middle - 1] + words[middle]) / 2
    return {
        "chunks": n,
        "documents": len({chunk.doc_id for chunk in chunks}),
        "mean_words": sum(words) / n,
        "median_words": median,
        "max_words": words[-1],
    }
