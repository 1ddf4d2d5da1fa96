"""Retrievers over chunks that answer with documents: the chunk-to-document step, BM25 over
chunks, dense and hybrid with the real MiniLM encoder."""

from __future__ import annotations

import pytest

from rag_service.corpus.chunking import chunk_corpus
from rag_service.retrieval import (
    DenseRetriever,
    HybridRetriever,
    LexicalRetriever,
    TextDocument,
    best_chunk_per_document,
)

DOCS = [
    TextDocument("doc:sort", "Sorting lists\n\nUse sorted() to sort any iterable.\n\n"
                 "The key argument takes a function; reverse=True sorts descending."),
    TextDocument("doc:json", "JSON\n\njson.dumps turns Python objects into a JSON string.\n\n"
                 "json.loads parses a JSON document back into dicts and lists."),
    TextDocument("doc:tmp", "Temporary files\n\ntempfile.TemporaryDirectory creates a folder "
                 "that is removed when the with block ends."),
    TextDocument("doc:re", "Regular expressions\n\nre.sub replaces every match of a pattern.\n\n"
                 "re.findall returns all non-overlapping matches as a list."),
]  # fmt: skip


@pytest.fixture(scope="module")
def chunks():
    found = chunk_corpus(DOCS, "structure", max_tokens=12)
    assert len(found) > len(DOCS)  # several chunks per document, or the tests prove nothing
    return found


def test_best_chunk_per_document_keeps_each_documents_first_hit():
    """Chunk hits best first -> documents in order of their best chunk, each once, k of them."""
    owner = {"a#1": "A", "a#2": "A", "b#1": "B", "c#1": "C"}
    hits = [("a#2", 0.9), ("a#1", 0.8), ("b#1", 0.7), ("c#1", 0.1)]
    assert best_chunk_per_document(hits, owner, k=2) == [("A", 0.9), ("B", 0.7)]
    assert best_chunk_per_document(hits, owner, k=10) == [("A", 0.9), ("B", 0.7), ("C", 0.1)]


def test_bm25_over_chunks_answers_with_documents(chunks):
    """Each query finds its document first; results are documents, unique, at most k."""
    retriever = LexicalRetriever(chunks)
    queries = ["how do I sort a list in reverse", "parse a json string", "replace regex matches"]
    results = retriever.search(queries, k=3)
    assert [r[0][0] for r in results] == ["doc:sort", "doc:json", "doc:re"]
    for ranked in results:
        ids = [doc for doc, _ in ranked]
        assert len(ids) == len(set(ids)) <= 3
        assert all(doc.startswith("doc:") for doc in ids)
        assert [s for _, s in ranked] == sorted((s for _, s in ranked), reverse=True)


def test_bad_arguments_are_refused(chunks):
    with pytest.raises(ValueError, match="no chunks"):
        LexicalRetriever([])
    with pytest.raises(ValueError, match="k must be positive"):
        LexicalRetriever(chunks).search(["sort"], k=0)


@pytest.fixture(scope="module")
def encoder():
    from rag_service.embeddings.encoder import make_encoder

    return make_encoder("fp32")


@pytest.mark.slow
def test_dense_and_hybrid_find_paraphrases(chunks, encoder):
    """Dense retrieval finds a paraphrase with no shared word; both hybrids keep it on top,
    list each document once, and refuse unknown settings."""
    dense = DenseRetriever(chunks, encoder)
    query = ["make a scratch folder that cleans itself up"]
    assert dense.search(query, k=1)[0][0][0] == "doc:tmp"
    lexical = LexicalRetriever(chunks)
    for method in ("rrf", "score"):
        hybrid = HybridRetriever(lexical, dense, method=method, weight=0.7)
        (ranked,) = hybrid.search(query, k=4)
        assert ranked[0][0] == "doc:tmp"
        assert len({d for d, _ in ranked}) == len(ranked) <= 4
    with pytest.raises(ValueError, match="fusion method"):
        HybridRetriever(lexical, dense, method="max")
    with pytest.raises(ValueError, match="weight"):
        HybridRetriever(lexical, dense, weight=1.5)
    long_query = ["word " * 400]
    dense.search(long_query, k=1)
    assert dense.truncated_queries == 1  # said, not silently cut
