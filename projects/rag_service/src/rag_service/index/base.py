"""The one interface every vector index offers, its errors, and the input checks they share.

Retrieval, the benchmark and the CLI swap FAISS for pgvector (or exact for approximate) without
changing a line, so every index takes string ids and float32 vectors, returns the same shape of
results (best first, score = inner product = cosine of L2-normalised vectors), and fails with
the same clear errors. The checks live here once so that a wrong dimension or a duplicate id
reads the same whichever index raised it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, Self, runtime_checkable

import numpy as np

SearchResults = list[list[tuple[str, float]]]
"""Per query, (id, score) pairs, best (highest score) first; at most k, fewer when the index is
smaller."""


class IndexCorrupt(RuntimeError):
    """A saved index failed its checks on load (missing, truncated or altered file).

    Carries `path`, the offending file, and a message that says how to rebuild, because the
    only safe reaction to a damaged index is to rebuild it from the embeddings, never to use
    what could be read of it.
    """

    def __init__(self, path: Path | str, problem: str, rebuild: str) -> None:
        self.path = Path(path)
        super().__init__(f"index file {self.path} is unusable: {problem}. To rebuild: {rebuild}")


class SearchUnavailable(RuntimeError):
    """The index's backing service did not answer (after the retry it allows itself).

    Raised instead of returning partial results: a caller can fall back (to BM25, a replica, a
    cached answer) only if it knows the search did not happen.
    """


@runtime_checkable
class VectorIndex(Protocol):
    """What retrieval needs from a vector index, whichever engine holds the vectors."""

    @property
    def dim(self) -> int:
        """Vector dimension; every add and search is checked against it."""
        ...

    def __len__(self) -> int:
        """Number of live (not deleted) vectors."""
        ...

    def add(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        """Add vectors under new, unique string ids (an id already present is an error)."""
        ...

    def delete(self, ids: Sequence[str]) -> None:
        """Remove ids; a deleted id is never returned by search again, also after save/load."""
        ...

    def search(self, queries: np.ndarray, k: int) -> SearchResults:
        """Top-k (id, inner product) per query row, best first."""
        ...

    def save(self, folder: Path | str) -> None:
        """Persist so that `load` gives identical search results."""
        ...

    @classmethod
    def load(cls, folder: Path | str) -> Self:
        """Reopen a saved index, checking it; raises IndexCorrupt rather than half-load."""
        ...


class IndexSettings:
    """The kind, dimension and parameters every engine has, checked the same way.

    Engines set `ENGINE` (for messages), `KINDS` and `DEFAULTS` (parameter names and defaults
    per kind) and call `_init_settings` first thing; the read-only properties and the
    kind-specific knob guard then come from here.
    """

    ENGINE = "index"
    KINDS: tuple[str, ...] = ()
    DEFAULTS: Mapping[str, Mapping[str, int]] = {}
    PARAM_MINIMUM = 1
    """The smallest value a construction parameter may take (pgvector uses 0 for 'automatic')."""

    def _init_settings(self, kind: str, dim: int, params: Mapping[str, Any]) -> None:
        if kind not in self.KINDS:
            raise ValueError(
                f"unknown {self.ENGINE} index kind {kind!r}; choose one of {self.KINDS}"
            )
        unknown = set(params) - set(self.DEFAULTS[kind])
        if unknown:
            raise ValueError(f"unknown parameters for {self.ENGINE} {kind}: {sorted(unknown)}")
        self._kind = kind
        self._dim = check_dim(dim)
        merged = {**self.DEFAULTS[kind], **params}
        self._params = {
            name: check_int(name, value, self.PARAM_MINIMUM) for name, value in merged.items()
        }

    @property
    def kind(self) -> str:
        return self._kind

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def params(self) -> dict[str, int]:
        """The construction and search parameters (a copy)."""
        return dict(self._params)

    def _require_kind(self, kind: str, what: str) -> None:
        """Refuse a knob of another kind (`nprobe` on HNSW) instead of ignoring it."""
        if self._kind != kind:
            raise AttributeError(
                f"{what} applies to {self.ENGINE} {kind} indexes, this one is {self._kind}"
            )


def check_int(name: str, value: Any, minimum: int = 1) -> int:
    """An int (numpy ints accepted, bools refused) of at least `minimum`, else ValueError."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        wanted = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{name} must be {wanted}, got {value!r}")
    return int(value)


def check_dim(dim: int) -> int:
    """A positive int dimension (numpy ints accepted), else ValueError."""
    return check_int("dim", dim)


def check_k(k: int) -> int:
    """A positive int k, else ValueError: k <= 0 is a caller bug, never 'return nothing'."""
    return check_int("k", k)


def as_matrix(vectors: np.ndarray, dim: int, what: str) -> np.ndarray:
    """`vectors` as a C-contiguous float32 (n, dim) array, or ValueError naming the problem.

    A single vector of shape (dim,) is refused rather than guessed: a 1-D array of the wrong
    length would otherwise become a silent (1, n) query.
    """
    array = np.asarray(vectors)
    if array.ndim != 2:
        raise ValueError(
            f"{what} must be a 2-D array (n, {dim}), got shape {array.shape}; "
            "wrap a single vector as vector[None, :]"
        )
    if array.shape[1] != dim:
        raise ValueError(
            f"dimension mismatch: {what} have {array.shape[1]} dimensions, the index has {dim}"
        )
    if not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"{what} must be numeric, got dtype {array.dtype}")
    array = np.ascontiguousarray(array, dtype=np.float32)
    if array.size and not np.isfinite(array).all():
        bad = int(np.flatnonzero(~np.isfinite(array).all(axis=1))[0])
        raise ValueError(f"{what} row {bad} contains NaN or infinity")
    return array


def check_new_ids(ids: Sequence[str], n_vectors: int, present: Iterable[str] = ()) -> list[str]:
    """Ids for an add: strings, non-empty, one per vector, unique, none already in the index.

    Duplicates are refused (not overwritten) because an id is a chunk's identity: two vectors
    under one id would make search results ambiguous and deletes incomplete.
    """
    if isinstance(ids, str):
        raise ValueError("ids must be a sequence of strings, not one string")
    ids = list(ids)
    if len(ids) != n_vectors:
        raise ValueError(f"got {len(ids)} ids for {n_vectors} vectors: one id per vector")
    for position, item in enumerate(ids):
        if not isinstance(item, str) or not item:
            raise ValueError(f"id at position {position} must be a non-empty str, got {item!r}")
    repeated = sorted(item for item, count in Counter(ids).items() if count > 1)
    if repeated:
        raise ValueError(f"duplicate ids within this add: {_show(repeated)}")
    already = sorted(set(present))
    if already:
        raise ValueError(
            f"ids already in the index: {_show(already)}; delete them first to replace them"
        )
    return ids


def check_delete_ids(ids: Sequence[str]) -> list[str]:
    """Ids for a delete: a sequence of strings (duplicates collapse)."""
    if isinstance(ids, str):
        raise ValueError("ids must be a sequence of strings, not one string")
    ids = list(dict.fromkeys(ids))
    for item in ids:
        if not isinstance(item, str):
            raise ValueError(f"ids must be strings, got {item!r}")
    return ids


def unknown_ids_error(unknown: Sequence[str]) -> KeyError:
    """The error for deleting ids the index does not hold (nothing is deleted then)."""
    return KeyError(f"not in the index, nothing deleted: {_show(sorted(unknown))}")


def empty_index_error() -> ValueError:
    """The error for searching an index with no live vectors."""
    return ValueError("search on an empty index (0 live vectors): add vectors first")


def _show(items: Sequence[str], limit: int = 5) -> str:
    """At most `limit` items and a count, so a 100k-id mistake gives a readable message."""
    shown = ", ".join(repr(item) for item in items[:limit])
    more = len(items) - limit
    return f"{shown} (and {more} more)" if more > 0 else shown
