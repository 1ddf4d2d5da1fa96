"""BM25 over bm25s: exact-term retrieval that catches what embeddings blur (names, error codes).

Tokens are lower-cased words (`\\w\\w+`, as bm25s and scikit-learn split them) without English
stop words, optionally stemmed. Scores are Lucene's BM25 (bm25s' default; like Lucene >= 8 it
drops the constant (k1 + 1) numerator factor, which changes no ranking), whose IDF
ln(1 + (N - df + 0.5) / (df + 0.5)) is always positive, so a document scores > 0 exactly when
it shares a term with the query. `search` returns only those documents: a query with no known
term (empty, only stop words, only unseen words) gets an empty list, and k larger than the
corpus gives every matching document, never zero-score filler.

BM25's IDF depends on the whole corpus, so `add` and `delete` rebuild the index from the kept
token lists (bm25s indexes 10k documents in ~0.1 s). `save` writes bm25s' arrays plus our ids
and tokens into a fresh folder and renames it into place; `load` checks every file against the
manifest's sizes and SHA-256, so a truncated or mixed-up index raises instead of answering.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from rag_service.fileio import fsync_tree, sha256_file
from rag_service.index.base import IndexCorrupt

FORMAT = "rag-service-bm25/1"
MANIFEST = "manifest.json"
DOCUMENTS = "documents.json"
BM25S_FOLDER = "bm25s"
_MAX_STEMS = 1_000_000
TOKEN_PATTERN = re.compile(r"(?u)\b\w\w+\b")
REBUILD = "BM25Index.build(ids, texts).save(folder) from the corpus (it takes seconds)"


def _stopwords(name: str | None) -> frozenset[str]:
    if name is None:
        return frozenset()
    if name != "en":
        raise ValueError(f"stopwords must be 'en' or None, got {name!r}")
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN)


def _stemmer(name: str | None):
    """An object with `stemWords(list[str])`: PyStemmer if installed, else snowballstemmer.

    Both implement the same Snowball algorithms; snowballstemmer (pure Python) is a dependency,
    PyStemmer (C) is used when present. A stemmer that cannot be imported fails loudly instead of
    silently not stemming.
    """
    if name is None:
        return None
    try:
        import Stemmer

        return Stemmer.Stemmer(name)
    except ImportError:
        pass
    try:
        import snowballstemmer
    except ImportError:
        raise ValueError(
            f"stemmer {name!r} needs PyStemmer or snowballstemmer; install one or use None"
        ) from None
    return snowballstemmer.stemmer(name)


def _bm25s():
    """bm25s, with its logger put back to WARNING: the library sets it to DEBUG on import, and
    every index build would then log to whatever handler the application has."""
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s


class BM25Index:
    """Document ids and their BM25 index; `search` takes query strings."""

    def __init__(
        self,
        k1: float = 1.5,
        b: float = 0.75,
        stopwords: str | None = "en",
        stemmer: str | None = None,
    ) -> None:
        if not (np.isfinite(k1) and k1 >= 0):
            raise ValueError(f"k1 must be a finite number >= 0, got {k1!r}")
        if not (np.isfinite(b) and 0 <= b <= 1):
            raise ValueError(f"b must be in [0, 1], got {b!r}")
        self.k1 = float(k1)
        self.b = float(b)
        self.stopwords_name = stopwords
        self.stemmer_name = stemmer
        self._stopwords = _stopwords(stopwords)
        self._stemmer = _stemmer(stemmer)
        self._stems: dict[str, str] = {}
        self._ids: list[str] = []
        self._tokens: list[list[str]] = []
        self._retriever = None  # bm25s.BM25, None while no document has a token

    @classmethod
    def build(cls, ids: Sequence[str], texts: Sequence[str], **params) -> BM25Index:
        """A new index over `ids` and their `texts` (parameters as for the constructor)."""
        index = cls(**params)
        index.add(ids, texts)
        return index

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def ids(self) -> list[str]:
        """Indexed document ids, in insertion order."""
        return list(self._ids)

    def config(self) -> dict:
        """The parameters that change scores; saved with the index."""
        return {
            "k1": self.k1,
            "b": self.b,
            "stopwords": self.stopwords_name,
            "stemmer": self.stemmer_name,
        }

    def tokenize(self, text: str) -> list[str]:
        """Lower-cased words of two or more characters, stop words removed, stemmed if set.

        Stems are memoised per word: a corpus repeats its vocabulary endlessly, and the
        pure-Python Snowball stemmer would otherwise dominate indexing time.
        """
        tokens = [t for t in TOKEN_PATTERN.findall(text.lower()) if t not in self._stopwords]
        if self._stemmer is None or not tokens:
            return tokens
        stems = self._stems
        unseen = list(dict.fromkeys(t for t in tokens if t not in stems))
        if len(stems) + len(unseen) > _MAX_STEMS:  # a long-lived service sees endless new words
            stems.clear()
        if unseen:
            stems.update(zip(unseen, self._stemmer.stemWords(unseen), strict=True))
        return [stems[t] for t in tokens]

    def add(self, ids: Sequence[str], texts: Sequence[str]) -> None:
        """Add documents and rebuild. Raises ValueError for a length mismatch, a non-string, or
        an id that is repeated or already indexed (naming it)."""
        if isinstance(ids, str) or isinstance(texts, str):
            raise TypeError("ids and texts must be sequences of strings, not one string")
        if len(ids) != len(texts):
            raise ValueError(f"{len(ids)} ids but {len(texts)} texts")
        known = set(self._ids)
        for doc_id, text in zip(ids, texts, strict=True):
            if not isinstance(doc_id, str) or not isinstance(text, str):
                raise TypeError(f"id {doc_id!r}: ids and texts must be strings")
            if doc_id in known:
                raise ValueError(f"document id {doc_id!r} is already in the index")
            known.add(doc_id)
        new_tokens = [self.tokenize(text) for text in texts]
        self._rebuild([*self._ids, *ids], [*self._tokens, *new_tokens])

    def delete(self, ids: Iterable[str]) -> int:
        """Remove documents by id and rebuild; returns how many were removed (unknown ids are
        ignored, as deleting twice must be harmless)."""
        gone = set(ids)
        keep = [i for i, doc_id in enumerate(self._ids) if doc_id not in gone]
        removed = len(self._ids) - len(keep)
        if removed:
            self._rebuild([self._ids[i] for i in keep], [self._tokens[i] for i in keep])
        return removed

    def _rebuild(self, ids: list[str], tokens: list[list[str]]) -> None:
        bm25s = _bm25s()

        retriever = None
        if any(tokens):
            retriever = bm25s.BM25(k1=self.k1, b=self.b, method="lucene", backend="numpy")
            retriever.index(tokens, show_progress=False)
        self._ids, self._tokens, self._retriever = ids, tokens, retriever

    def search(self, queries: Sequence[str], k: int = 10) -> list[list[tuple[str, float]]]:
        """Up to k (id, score) per query, best first; only documents sharing a query term.

        Equal scores are ordered by insertion order, so results are reproducible.
        """
        if isinstance(queries, str):
            raise TypeError("queries must be a sequence of strings, not one string")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive int, got {k!r}")
        return [self._search_one(query, k) for query in queries]

    def _search_one(self, query: str, k: int) -> list[tuple[str, float]]:
        if not isinstance(query, str):
            raise TypeError(f"query must be a string, got {type(query).__name__}")
        if self._retriever is None:
            return []
        vocabulary = self._retriever.vocab_dict
        token_ids = [vocabulary[t] for t in self.tokenize(query) if t in vocabulary]
        if not token_ids:
            return []
        scores = np.asarray(self._retriever.get_scores_from_ids(token_ids), dtype=np.float64)
        matching = np.flatnonzero(scores > 0)
        # Highest score first; equal scores by document position (lexsort's last key is primary).
        order = matching[np.lexsort((matching, -scores[matching]))][:k]
        return [(self._ids[i], float(scores[i])) for i in order]

    def save(self, folder: Path | str) -> Path:
        """Write the index to `folder` (replacing an index saved there before) and return it.

        Everything is written to a sibling temporary folder first and renamed into place, so a
        crash never leaves a half-written index under `folder`. A non-empty `folder` that is not
        a saved index is refused rather than deleted.
        """
        folder = Path(folder)
        if folder.exists() and any(folder.iterdir()) and not (folder / MANIFEST).is_file():
            raise FileExistsError(
                f"{folder} exists and is not a saved BM25 index; not replacing it"
            )
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = folder.parent / f".{folder.name}.tmp-{uuid.uuid4().hex}"
        staging.mkdir()
        try:
            if self._retriever is not None:
                self._retriever.save(str(staging / BM25S_FOLDER), show_progress=False)
            documents = {"ids": self._ids, "tokens": self._tokens}
            (staging / DOCUMENTS).write_text(json.dumps(documents, ensure_ascii=False), "utf-8")
            files = sorted(p for p in staging.rglob("*") if p.is_file())
            manifest = {
                "format": FORMAT,
                "config": self.config(),
                "documents": len(self._ids),
                "files": {
                    p.relative_to(staging).as_posix(): {
                        "bytes": p.stat().st_size,
                        "sha256": sha256_file(p),
                    }
                    for p in files
                },
            }
            (staging / MANIFEST).write_text(json.dumps(manifest, indent=2), "utf-8")
            fsync_tree(staging)
            old = None
            if folder.exists():
                old = folder.parent / f".{folder.name}.old-{uuid.uuid4().hex}"
                os.replace(folder, old)
            os.replace(staging, folder)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return folder

    @classmethod
    def load(cls, folder: Path | str) -> BM25Index:
        """Read an index written by `save`. Raises IndexCorrupt naming the missing or altered
        file (the only safe fix is a rebuild: nothing half-read is ever returned)."""
        bm25s = _bm25s()

        folder = Path(folder)
        manifest_path = folder / MANIFEST
        try:
            manifest = json.loads(manifest_path.read_text("utf-8"))
            files, config = manifest["files"], manifest["config"]
            expected_documents = manifest["documents"]
        except FileNotFoundError:
            raise IndexCorrupt(manifest_path, "not found", REBUILD) from None
        except (ValueError, KeyError, TypeError) as error:
            raise IndexCorrupt(manifest_path, f"unreadable ({error})", REBUILD) from None
        if manifest.get("format") != FORMAT:
            problem = f"format {manifest.get('format')!r}, expected {FORMAT!r}"
            raise IndexCorrupt(manifest_path, problem, REBUILD)
        for name, expected in files.items():
            path = folder / name
            if not path.is_file():
                raise IndexCorrupt(path, "missing", REBUILD)
            if path.stat().st_size != expected["bytes"]:
                problem = f"{path.stat().st_size} bytes, the manifest says {expected['bytes']}"
                raise IndexCorrupt(path, problem, REBUILD)
            if sha256_file(path) != expected["sha256"]:
                raise IndexCorrupt(path, "SHA-256 differs from the manifest", REBUILD)
        documents = json.loads((folder / DOCUMENTS).read_text("utf-8"))
        ids, tokens = documents["ids"], documents["tokens"]
        if not len(ids) == len(tokens) == expected_documents:
            raise IndexCorrupt(folder / DOCUMENTS, "ids and tokens disagree", REBUILD)
        retriever = None
        if (folder / BM25S_FOLDER).is_dir():
            retriever = bm25s.BM25.load(str(folder / BM25S_FOLDER), show_progress=False)
            if retriever.scores["num_docs"] != len(ids):
                problem = f"{retriever.scores['num_docs']} documents but {len(ids)} ids"
                raise IndexCorrupt(folder / BM25S_FOLDER, problem, REBUILD)
        index = cls(**config)
        index._ids, index._tokens, index._retriever = ids, tokens, retriever
        return index
