"""Retrievers over chunks that answer with documents: BM25, dense, and the two fused.

Judgements name documents, so every retriever searches chunks and turns the chunk ranking into
a document ranking by each document's best chunk. Over-fetching chunks (`fetch_factor`) keeps
that ranking k documents long when one document owns several of the top chunks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from rag_service.corpus.chunking import Chunk, chunk_corpus
from rag_service.evaluation.dataset import BeirDataset

Hits = list[tuple[str, float]]


class Retriever(Protocol):
    """Anything that ranks documents for query strings, best first."""

    name: str

    def search(self, queries: Sequence[str], k: int) -> list[Hits]: ...


@dataclass(frozen=True)
class TextDocument:
    """A document as the chunkers see it: an id and the text to split (title first)."""

    id: str
    text: str


def dataset_documents(dataset: BeirDataset) -> list[TextDocument]:
    """The corpus as chunkable documents; the title leads the text, as BEIR's baselines do."""
    out = []
    for doc_id in sorted(dataset.corpus):
        entry = dataset.corpus[doc_id]
        text = f"{entry.title}\n\n{entry.text}" if entry.title else entry.text
        out.append(TextDocument(doc_id, text))
    return out


def best_chunk_per_document(hits: Hits, chunk_doc: dict[str, str], k: int) -> Hits:
    """Chunk hits (best first) -> the first k documents, each scored by its best chunk."""
    seen: dict[str, float] = {}
    for chunk_id, score in hits:
        doc = chunk_doc[chunk_id]
        if doc not in seen:
            seen[doc] = score
            if len(seen) == k:
                break
    return list(seen.items())


class _ChunkRetriever:
    """Shared plumbing: chunk ids to documents and the over-fetch."""

    name = "chunks"

    def __init__(self, chunks: Sequence[Chunk], fetch_factor: int = 4) -> None:
        if not chunks:
            raise ValueError(f"{type(self).__name__}: no chunks to index")
        self.chunks = list(chunks)
        self.chunk_doc = {c.id: c.doc_id for c in self.chunks}
        self.fetch_factor = fetch_factor

    def _fetch(self, k: int) -> int:
        return min(len(self.chunks), max(k * self.fetch_factor, k))

    def chunk_hits(self, queries: Sequence[str], k: int) -> list[Hits]:
        raise NotImplementedError

    def search(self, queries: Sequence[str], k: int) -> list[Hits]:
        if k <= 0:
            raise ValueError(f"k must be positive, got {k}")
        hits = self.chunk_hits(queries, self._fetch(k))
        return [best_chunk_per_document(h, self.chunk_doc, k) for h in hits]


class LexicalRetriever(_ChunkRetriever):
    """BM25 over chunk texts, English stop words removed and Snowball-stemmed (on the
    documentation questions stemming was worth +0.03 nDCG@10, p = 0.02: "sorting" must find
    "sort")."""

    name = "bm25"

    def __init__(
        self, chunks: Sequence[Chunk], fetch_factor: int = 4, stemmer: str | None = "english"
    ) -> None:
        from rag_service.lexical import BM25Index

        super().__init__(chunks, fetch_factor)
        self.index = BM25Index(stemmer=stemmer)
        self.index.add([c.id for c in self.chunks], [c.text for c in self.chunks])

    def chunk_hits(self, queries: Sequence[str], k: int) -> list[Hits]:
        return self.index.search(list(queries), k)


class DenseRetriever(_ChunkRetriever):
    """An encoder and a vector index over chunk embeddings (cosine)."""

    name = "dense"

    def __init__(
        self,
        chunks: Sequence[Chunk],
        encoder: Any,
        index_factory: Callable[[int], Any] | None = None,
        fetch_factor: int = 4,
    ) -> None:
        super().__init__(chunks, fetch_factor)
        self.encoder = encoder
        vectors = encoder.encode([c.text for c in self.chunks])
        if index_factory is None:
            from rag_service.index.faiss_index import FaissIndex

            index_factory = FaissIndex.exact
        self.index = index_factory(vectors.shape[1])
        self.index.add([c.id for c in self.chunks], vectors)
        self.truncated_queries = 0

    def chunk_hits(self, queries: Sequence[str], k: int) -> list[Hits]:
        encoded = self.encoder.encode_queries(list(queries))
        self.truncated_queries += int(sum(encoded.truncated))
        return self.index.search(np.asarray(encoded.vectors, dtype=np.float32), k)


class HybridRetriever:
    """Two retrievers fused: reciprocal rank fusion, or min-max normalised scores mixed by
    `weight` (the dense share), a weight chosen on dev queries only."""

    def __init__(
        self,
        lexical: Retriever,
        dense: Retriever,
        method: str = "rrf",
        weight: float = 0.5,
        rrf_k: int = 60,
        depth: int = 100,
    ) -> None:
        if method not in ("rrf", "score"):
            raise ValueError(f"fusion method must be 'rrf' or 'score', got {method!r}")
        if not 0.0 <= weight <= 1.0:
            raise ValueError(f"weight must be in [0, 1], got {weight}")
        self.lexical, self.dense = lexical, dense
        self.method, self.weight, self.rrf_k, self.depth = method, weight, rrf_k, depth
        self.name = f"hybrid-{method}"

    def search(self, queries: Sequence[str], k: int) -> list[Hits]:
        from rag_service.fusion import reciprocal_rank_fusion, score_fusion

        depth = max(k, self.depth)
        lexical = self.lexical.search(queries, depth)
        dense = self.dense.search(queries, depth)
        fused = []
        for lex, den in zip(lexical, dense, strict=True):
            if self.method == "rrf":
                ranked = reciprocal_rank_fusion(
                    [[d for d, _ in lex], [d for d, _ in den]],
                    k=self.rrf_k,
                    weights=[1.0 - self.weight, self.weight],
                )
            else:  # the weight is the dense run's share
                ranked = score_fusion([{"q": den}, {"q": lex}], self.weight)["q"]
            fused.append(ranked[:k])
        return fused


def run_queries(retriever: Retriever, dataset: BeirDataset, k: int = 100) -> dict[str, Hits]:
    """A run (query id -> ranked documents) for every judged query of the dataset."""
    query_ids = dataset.judged_queries()
    hits = retriever.search([dataset.queries[q] for q in query_ids], k)
    return dict(zip(query_ids, hits, strict=True))


def chunk_dataset(dataset: BeirDataset, strategy: str = "structure", **params: Any) -> list[Chunk]:
    """The dataset's corpus cut by one of `corpus.chunking.STRATEGIES`."""
    return chunk_corpus(dataset_documents(dataset), strategy, **params)
