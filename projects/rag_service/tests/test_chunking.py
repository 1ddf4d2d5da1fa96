"""Chunking strategies: exact offsets, full coverage, size limits, structure, stable ids, speed."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pydoc_data.topics import topics

import pytest

from rag_service.corpus.chunking import (
    STRATEGIES,
    Chunk,
    chunk_corpus,
    chunk_id,
    chunk_stats,
    fixed_token_chunks,
    sentence_chunks,
    structure_chunks,
    word_spans,
)


@dataclass(frozen=True)
class Doc:
    """The two fields chunking reads; corpus.documents.Document has them too."""

    id: str
    text: str


PYDOC_STYLE = """The "widget" statement
**********************

A widget statement makes a widget.  It is rarely needed.

   widget_stmt ::= "widget" expression

Widget details
==============

Widgets are created lazily.  The first access builds them.

Widget errors
-------------

A broken widget raises "WidgetError"."""

MARKDOWN = """# Guide

Intro paragraph with some words.

```python
# a comment, not a heading

x = 1
```

## Install

Run the installer.

## Use

Call the function."""


def _words(text: str) -> list[str]:
    return re.findall(r"\S+", text)


def _assert_valid(doc: Doc, chunks: list[Chunk], limit: int) -> None:
    """Exact slices, non-empty and trimmed, within the limit, unique ids, every word covered."""
    absolute = set()
    for chunk in chunks:
        assert chunk.doc_id == doc.id
        assert doc.text[chunk.start : chunk.end] == chunk.text
        assert chunk.text and chunk.text == chunk.text.strip()
        assert len(_words(chunk.text)) <= limit, (chunk.id, len(_words(chunk.text)))
        absolute.update(chunk.start + m.start() for m in re.finditer(r"\S+", chunk.text))
    assert absolute == {start for start, _ in word_spans(doc.text)}
    assert len({chunk.id for chunk in chunks}) == len(chunks)


@pytest.fixture(scope="module")
def pydoc_docs() -> list[Doc]:
    return [Doc(f"topic:{key}", text) for key, text in sorted(topics.items())]


def test_word_spans_are_whitespace_separated_runs():
    text = "  naïve\tcafé\n\n3.5 €  "
    assert [text[s:e] for s, e in word_spans(text)] == ["naïve", "café", "3.5", "€"]
    assert word_spans("") == [] and word_spans(" \n\t ") == []


@pytest.mark.parametrize(
    ("strategy", "params", "limit"),
    [
        ("fixed", {"size": 128, "overlap": 32}, 128),
        ("fixed", {"size": 20, "overlap": 0}, 20),
        ("structure", {"max_tokens": 200}, 200),
        ("structure", {"max_tokens": 30}, 30),
        ("sentence", {"max_tokens": 128}, 128),
        ("sentence", {"max_tokens": 10}, 10),
    ],
)
def test_every_strategy_slices_exactly_and_covers_every_word(pydoc_docs, strategy, params, limit):
    chunks = chunk_corpus(pydoc_docs, strategy, **params)
    by_doc: dict[str, list[Chunk]] = {}
    for chunk in chunks:
        by_doc.setdefault(chunk.doc_id, []).append(chunk)
    assert set(by_doc) == {doc.id for doc in pydoc_docs}
    for doc in pydoc_docs:
        _assert_valid(doc, by_doc[doc.id], limit)


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_odd_texts_still_slice_exactly(strategy):
    docs = [
        Doc("crlf", "Title\r\n=====\r\n\r\nFirst line.\r\nSecond line.  Third one!\r\n"),
        Doc("unicode", "Ünïcode wörds… «quoted». Next sentence? Yes.\u2028 Tail\u00a0word"),
        Doc("one", "word"),
        Doc("spaces", "\n\n   lead and trail   \n\n"),
    ]
    for doc in docs:
        _assert_valid(doc, STRATEGIES[strategy](doc), limit=200)
    assert STRATEGIES[strategy](Doc("empty", " \n\t ")) == []


def test_fixed_windows_have_the_size_and_overlap_asked_for():
    text = " ".join(f"w{i}" for i in range(300))
    chunks = fixed_token_chunks(Doc("d", text), size=128, overlap=32)
    assert [len(_words(c.text)) for c in chunks] == [128, 128, 108]
    assert [_words(c.text)[0] for c in chunks] == ["w0", "w96", "w192"]
    assert _words(chunks[-1].text)[-1] == "w299"
    first, second = _words(chunks[0].text), _words(chunks[1].text)
    assert first[-32:] == second[:32]


def test_structure_chunks_follow_pydoc_headings():
    chunks = structure_chunks(Doc("topic:widget", PYDOC_STYLE), max_tokens=200)
    assert [c.text.split("\n", 1)[0] for c in chunks] == [
        'The "widget" statement',
        "Widget details",
        "Widget errors",
    ]
    assert chunks[0].text.endswith('widget_stmt ::= "widget" expression')
    assert chunks[2].text.endswith('raises "WidgetError".')


def test_tilde_underlines_are_headings_not_code_fences():
    """pydoc underlines its fourth-level titles with ~~~, which markdown would read as a fence."""
    chunks = structure_chunks(Doc("topic:compound", topics["compound"]), max_tokens=200)
    firsts = [c.text.split("\n", 2)[:2] for c in chunks]
    for title in ("OR Patterns", "AS Patterns"):
        assert [title, "~" * len(title)] in firsts


def test_structure_chunks_follow_markdown_headings_but_not_code_comments():
    chunks = structure_chunks(Doc("book:guide.md", MARKDOWN), max_tokens=200)
    assert [c.text.split("\n", 1)[0] for c in chunks] == ["# Guide", "## Install", "## Use"]
    # the fenced block, blank line and "#" comment included, stays inside the first section
    assert "# a comment, not a heading\n\nx = 1\n```" in chunks[0].text


def test_structure_chunks_split_a_title_off_the_paragraph_above_it():
    text = "Closing words of a paragraph.\nNew part\n========\nIts body."
    chunks = structure_chunks(Doc("d", text), max_tokens=200)
    assert [c.text for c in chunks] == [
        "Closing words of a paragraph.",
        "New part\n========\nIts body.",
    ]


def test_structure_chunks_pack_paragraphs_up_to_the_limit():
    paragraphs = [" ".join(f"p{p}w{i}" for i in range(10)) for p in range(5)]
    doc = Doc("d", "\n\n".join(paragraphs))
    chunks = structure_chunks(doc, max_tokens=25)
    # greedy, in order: 10 + 10 fit, a third would make 30
    assert [c.text for c in chunks] == [
        "\n\n".join(paragraphs[0:2]),
        "\n\n".join(paragraphs[2:4]),
        paragraphs[4],
    ]


def test_structure_chunks_window_an_oversize_paragraph_with_its_heading():
    body = " ".join(f"w{i}" for i in range(50))
    doc = Doc("d", f"# Long\n\n{body}\n\nShort tail.")
    chunks = structure_chunks(doc, max_tokens=20)
    texts = [c.text for c in chunks]
    assert texts[0].startswith("# Long\n\nw0 ")  # the title is not a chunk of its own
    assert [len(_words(t)) for t in texts] == [20, 20, 12, 2]
    assert texts[-1] == "Short tail."


def test_sentence_chunks_keep_sentences_whole():
    text = (
        "Dr. Smith met Mr. Jones in the U.S. yesterday. They talked for 3.5 hours! "
        'Was it useful? "Very," said Smith. The end'
    )
    chunks = sentence_chunks(Doc("d", text), max_tokens=10)
    assert [c.text for c in chunks] == [
        "Dr. Smith met Mr. Jones in the U.S. yesterday.",
        "They talked for 3.5 hours! Was it useful?",
        '"Very," said Smith. The end',
    ]


def test_sentence_chunks_break_at_paragraphs_and_cut_long_sentences():
    long_sentence = " ".join(f"W{i}" for i in range(15)) + "."
    text = f"no capital after this\n\nnext paragraph starts here. {long_sentence}"
    chunks = sentence_chunks(Doc("d", text), max_tokens=6)
    texts = [c.text for c in chunks]
    # without the blank line, "this next ... here." would be one 8-word sentence, cut in two
    assert texts[:2] == ["no capital after this", "next paragraph starts here."]
    assert [len(_words(t)) for t in texts[2:]] == [6, 6, 3]
    assert texts[2].startswith("W0 ") and texts[-1].endswith("W14.")


def _stable_share(before: list[Chunk], after: list[Chunk]) -> float:
    old = {c.id for c in before}
    return len(old & {c.id for c in after}) / len(old)


def test_structure_ids_survive_an_insert_at_the_top_while_fixed_windows_shift():
    """Why ids hash structure-aware chunks: an edit near the top re-embeds almost nothing."""
    original = topics["assignment"]  # ~1,900 words in several underlined sections
    inserted = "An editor's note added at the top, seven words.\n\n" + original
    before_s = structure_chunks(Doc("d", original), max_tokens=200)
    after_s = structure_chunks(Doc("d", inserted), max_tokens=200)
    assert len(before_s) >= 8
    assert _stable_share(before_s, after_s) == 1.0
    assert len(after_s) == len(before_s) + 1  # only the note's own chunk is new

    before_f = fixed_token_chunks(Doc("d", original), size=128, overlap=32)
    after_f = fixed_token_chunks(Doc("d", inserted), size=128, overlap=32)
    assert _stable_share(before_f, after_f) == 0.0  # every window moved by nine words


def test_structure_ids_survive_an_edit_in_another_section():
    original = topics["assignment"]
    marker = original.index("\nAugmented assignment statements\n")
    edited = (
        original[:marker]
        + "\n\nA sentence added to the end of the first section."
        + (original[marker:])
    )
    before = structure_chunks(Doc("d", original), max_tokens=200)
    after = structure_chunks(Doc("d", edited), max_tokens=200)
    later = [c for c in before if c.start > marker]
    assert later and {c.id for c in later} <= {c.id for c in after}


def test_ids_are_the_text_hash_with_repeat_suffixes():
    doc = Doc("d", "same words\n\nsame words\n\nother")
    chunks = structure_chunks(doc, max_tokens=2)
    base = chunk_id("d", "same words")
    assert [c.id for c in chunks] == [base, f"{base}-2", chunk_id("d", "other")]


def test_a_one_megabyte_document_chunks_in_well_under_a_second():
    text = "\n\n".join(topics[key] for key in sorted(topics))
    text = (text * (1_000_000 // len(text) + 1))[:1_000_000]
    doc = Doc("big", text)
    for strategy, chunker in STRATEGIES.items():
        started = time.perf_counter()
        chunks = chunker(doc)
        elapsed = time.perf_counter() - started
        assert chunks and chunks[-1].end <= len(text)
        assert elapsed < 1.0, f"{strategy}: {elapsed:.2f} s for 1 MB"


def test_chunk_corpus_validates_its_input():
    docs = [Doc("a", "one two"), Doc("b", "three")]
    assert [c.doc_id for c in chunk_corpus(docs, "fixed", size=1, overlap=0)] == ["a", "a", "b"]
    with pytest.raises(ValueError, match="unknown chunking strategy 'tokens'.*fixed"):
        chunk_corpus(docs, "tokens")
    with pytest.raises(ValueError, match="duplicate document id 'a'"):
        chunk_corpus([*docs, Doc("a", "again")], "structure")
    with pytest.raises(ValueError, match="overlap"):
        chunk_corpus(docs, "fixed", size=4, overlap=4)
    with pytest.raises(ValueError, match="max_tokens"):
        chunk_corpus(docs, "sentence", max_tokens=0)
    with pytest.raises(ValueError, match="non-empty str id"):
        chunk_corpus([Doc("", "text")], "fixed")


def test_chunk_stats_summarise_words_per_chunk():
    chunks = chunk_corpus(
        [Doc("a", "w " * 10), Doc("b", "w " * 3)], "fixed", size=4, overlap=0
    )  # a: 4, 4, 2; b: 3
    assert chunk_stats(chunks) == {
        "chunks": 4,
        "documents": 2,
        "mean_words": 13 / 4,
        "median_words": 3.5,
        "max_words": 4,
    }
    assert chunk_stats([])["chunks"] == 0
