"""What the service answers from: chunks, their embeddings, a FAISS index and a BM25 index.

Built once at start-up from the documentation corpus (or the documents a test hands in);
embeddings go through the on-disk embedding cache, so a restart re-embeds nothing. The index
version is a hash of the chunk ids, texts and the encoder's key: caches keyed by it are
invalidated by construction when the corpus, the chunking or the model changes.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rag_service.corpus.chunking import Chunk, chunk_corpus
from rag_service.fusion import reciprocal_rank_fusion
from rag_service.prompting import Passage
from rag_service.retrieval import TextDocument

RRF_DEPTH = 50
"""Chunks each retriever contributes to the fused ranking."""


@dataclass(frozen=True)
class Retrieved:
    """The passages for one question, best first, and how relevant the best one is."""

    passages: list[Passage]
    top_cosine: float
    """The best dense cosine: the "is anything here relevant at all" signal for I-don't-know."""


class Knowledge:
    """Chunks with a dense (exact FAISS, cosine) and a lexical (BM25) index over them."""

    def __init__(self, chunks: Sequence[Chunk], encoder: Any) -> None:
        from rag_service.index.faiss_index import FaissIndex
        from rag_service.lexical import BM25Index

        if not chunks:
            raise ValueError("no chunks to serve")
        self.chunks = {chunk.id: chunk for chunk in chunks}
        self.encoder = encoder
        texts = [chunk.text for chunk in chunks]
        ids = [chunk.id for chunk in chunks]
        vectors = np.asarray(encoder.encode(texts), dtype=np.float32)
        self.dim = int(vectors.shape[1])
        self.dense = FaissIndex.exact(self.dim)
        self.dense.add(ids, vectors)
        self.lexical = BM25Index(stemmer="english")
        self.lexical.add(ids, texts)
        self._encode_lock = threading.Lock()  # torch modules: one forward pass at a time
        model_key = getattr(
            encoder, "model_key", getattr(encoder, "model_id", type(encoder).__name__)
        )
        digest = hashlib.sha256(str(model_key).encode())
        for chunk in chunks:
            digest.update(chunk.id.encode() + b"\0" + chunk.text.encode() + b"\0")
        self.version = digest.hexdigest()[:16]

    @classmethod
    def from_documents(cls, documents: Sequence[TextDocument], encoder: Any) -> Knowledge:
        return cls(chunk_corpus(list(documents), "structure"), encoder)

    def embed(self, questions: Sequence[str]) -> list[np.ndarray]:
        """Unit query vectors, one per question (called by the micro-batcher, in a thread).

        Questions skip the on-disk embedding cache (whose SQLite connection belongs to the
        thread that built the index): they rarely repeat word for word, and the response and
        semantic caches already answer the ones that do without embedding them again.
        """
        encoder = getattr(self.encoder, "encoder", self.encoder)  # CachedEncoder -> the model
        with self._encode_lock:
            encoded = encoder.encode_queries(list(questions))
        return list(np.asarray(encoded.vectors, dtype=np.float32))

    def retrieve(self, question: str, vector: np.ndarray, mode: str, k: int) -> Retrieved:
        """Top-k passages by dense cosine ("dense") or BM25 and dense fused by RRF ("hybrid")."""
        if mode not in ("dense", "hybrid"):
            raise ValueError(f"retrieval mode must be 'dense' or 'hybrid', got {mode!r}")
        depth = min(len(self.chunks), max(k, RRF_DEPTH))
        dense = self.dense.search(np.asarray(vector, dtype=np.float32)[None, :], depth)[0]
        top = float(dense[0][1]) if dense else -1.0
        if mode == "dense":
            ranked = list(dense[:k])
        else:
            lexical = self.lexical.search([question], depth)[0]
            ranked = reciprocal_rank_fusion([[i for i, _ in dense], [i for i, _ in lexical]])[:k]
        passages = [Passage(cid, self.chunks[cid].text, float(score)) for cid, score in ranked]
        return Retrieved(passages, top)


def documentation_knowledge(encoder: Any, limit: int | None = None) -> Knowledge:
    """The documentation corpus (the part A corpus), optionally its first `limit` documents."""
    from rag_service.corpus.documents import documentation_corpus

    documents = [TextDocument(d.id, d.text) for d in documentation_corpus()]
    if limit is not None:
        documents = documents[:limit]
    return Knowledge.from_documents(documents, encoder)
