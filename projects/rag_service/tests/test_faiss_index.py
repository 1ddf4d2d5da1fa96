"""FaissIndex: the VectorIndex contract for exact, HNSW and IVF-PQ, and its crash-safe files.

Every kind is checked against a numpy brute force, through deletes, save/load round trips and
incremental adds. Damaged files must raise IndexCorrupt naming the file; a save killed at each
step of the write (SIGKILL of a real child process) must leave the previous index loadable.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from rag_service.index.base import IndexCorrupt, VectorIndex
from rag_service.index.bench import clustered_vectors
from rag_service.index.faiss_index import MANIFEST, FaissIndex

SRC = Path(__file__).resolve().parents[1] / "src"
DIM = 32
KINDS = ("exact", "hnsw", "ivfpq")


def make(kind: str, dim: int = DIM) -> FaissIndex:
    """Small-data parameters: IVF-PQ with 8 lists of 64-centroid codebooks trains on 600 rows."""
    if kind == "exact":
        return FaissIndex.exact(dim)
    if kind == "hnsw":
        return FaissIndex.hnsw(dim, m=16, ef_construction=100, ef_search=64)
    return FaissIndex.ivfpq(dim, nlist=8, m=8, nbits=6, nprobe=8)


@pytest.fixture(scope="module")
def data() -> tuple[list[str], np.ndarray, np.ndarray]:
    vectors = clustered_vectors(600, DIM, clusters=10, seed=0)
    queries = clustered_vectors(20, DIM, clusters=10, seed=1)
    return [f"doc{i}" for i in range(len(vectors))], vectors, queries


def built(kind: str, data) -> FaissIndex:
    ids, vectors, _ = data
    index = make(kind)
    index.add(ids, vectors)
    return index


def brute_force(ids, vectors, queries, k, exclude=()):
    """The exact top-k by inner product, from numpy alone."""
    keep = [i for i, item in enumerate(ids) if item not in set(exclude)]
    scores = queries @ vectors[keep].T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return [[(ids[keep[j]], float(scores[r, j])) for j in row] for r, row in enumerate(order)]


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_implements_the_protocol(kind):
    index = make(kind)
    assert isinstance(index, VectorIndex)
    assert index.dim == DIM and len(index) == 0


@pytest.mark.parametrize("kind", ["exact", "hnsw"])
def test_search_is_best_first_by_inner_product(kind, data):
    ids, vectors, queries = data
    results = built(kind, data).search(queries, 10)
    truth = brute_force(ids, vectors, queries, 10)
    hits = 0
    for got, want, query in zip(results, truth, queries, strict=True):
        scores = [score for _, score in got]
        assert len(got) == 10 and scores == sorted(scores, reverse=True)
        for item, score in got:
            assert score == pytest.approx(float(vectors[ids.index(item)] @ query), abs=1e-5)
        hits += len({item for item, _ in got} & {item for item, _ in want})
    # Exact search is exact; HNSW on 600 points at ef_search=64 finds (nearly) all.
    assert hits / (10 * len(queries)) >= (1.0 if kind == "exact" else 0.98)
    if kind == "exact":
        assert [[i for i, _ in row] for row in results] == [[i for i, _ in row] for row in truth]


def test_ivfpq_scores_approximate_inner_products(data):
    ids, vectors, queries = data
    results = built("ivfpq", data).search(queries, 10)
    for row, query in zip(results, queries, strict=True):
        scores = [score for _, score in row]
        assert len(row) == 10 and scores == sorted(scores, reverse=True)
        true = np.array([vectors[ids.index(item)] @ query for item, _ in row])
        assert np.max(np.abs(true - scores)) < 0.15  # PQ codes: close, not exact


@pytest.mark.parametrize("kind", KINDS)
def test_deleted_ids_never_return_also_after_save_and_load(kind, data, tmp_path):
    ids, vectors, queries = data
    index = built(kind, data)
    # Delete exactly what the queries would find first: the hardest case for a tombstone.
    doomed = sorted({item for row in index.search(queries, 5) for item, _ in row})
    index.delete(doomed)
    assert len(index) == len(ids) - len(doomed)
    for row in index.search(queries, 20):
        assert not {item for item, _ in row} & set(doomed)
        assert len(row) == 20
    index.save(tmp_path / "idx")
    reloaded = FaissIndex.load(tmp_path / "idx")
    assert len(reloaded) == len(index)
    for row in reloaded.search(queries, 20):
        assert not {item for item, _ in row} & set(doomed)
    # A deleted id may be added again (as a new vector) and is found again.
    fresh = clustered_vectors(1, DIM, clusters=10, seed=9)
    reloaded.add([doomed[0]], fresh)
    assert doomed[0] in [item for item, _ in reloaded.search(fresh, 3)[0]]


@pytest.mark.parametrize("kind", KINDS)
def test_round_trip_gives_identical_results(kind, data, tmp_path):
    ids, _, queries = data
    index = built(kind, data)
    index.delete(ids[:50])
    before = index.search(queries, 10)
    index.save(tmp_path / "idx")
    after = FaissIndex.load(tmp_path / "idx")
    assert after.search(queries, 10) == before
    assert (after.kind, after.dim, after.params, len(after)) == (
        index.kind,
        index.dim,
        index.params,
        len(index),
    )


@pytest.mark.parametrize("kind", KINDS)
def test_incremental_add_after_load(kind, data, tmp_path):
    ids, vectors, queries = data
    index = built(kind, data)
    index.save(tmp_path / "idx")
    index = FaissIndex.load(tmp_path / "idx")
    fresh = clustered_vectors(30, DIM, clusters=10, seed=7)
    index.add([f"new{i}" for i in range(30)], fresh)
    assert len(index) == len(ids) + 30
    found = [row[0][0] for row in index.search(fresh, 3)]
    top = [[item for item, _ in row] for row in index.search(fresh, 3)]
    # Each new vector finds itself (IVF-PQ: among its top 3, codes are lossy).
    assert all(f"new{i}" in row for i, row in enumerate(top))
    if kind != "ivfpq":
        assert found == [f"new{i}" for i in range(30)]
    index.save(tmp_path / "idx")
    assert FaissIndex.load(tmp_path / "idx").search(queries, 5) == index.search(queries, 5)


def test_hnsw_compact_drops_tombstones_and_keeps_answers(data):
    ids, vectors, queries = data
    index = built("hnsw", data)
    index.delete(ids[::2])
    assert index.tombstones == len(ids[::2])
    index.compact()
    assert index.tombstones == 0 and len(index) == len(ids[1::2])
    truth = brute_force(ids, vectors, queries, 10, exclude=ids[::2])
    got = index.search(queries, 10)
    overlap = sum(
        len({i for i, _ in a} & {i for i, _ in b}) for a, b in zip(got, truth, strict=True)
    )
    assert overlap / (10 * len(queries)) >= 0.98


@pytest.mark.parametrize("kind", KINDS)
def test_bad_input_gives_clear_errors(kind, data):
    ids, vectors, queries = data
    index = make(kind)
    with pytest.raises(ValueError, match="empty index"):
        index.search(queries, 5)
    if kind == "ivfpq":
        with pytest.raises(ValueError, match="at least 64 training vectors"):
            index.add(ids[:10], vectors[:10])
    index.add(ids, vectors)
    with pytest.raises(ValueError, match="dimension mismatch.*16.*32"):
        index.search(queries[:, :16], 5)
    with pytest.raises(ValueError, match="dimension mismatch"):
        index.add(["x"], np.zeros((1, DIM + 1), dtype=np.float32))
    with pytest.raises(ValueError, match="2-D"):
        index.search(queries[0], 5)
    for k in (0, -3):
        with pytest.raises(ValueError, match="k must be a positive integer"):
            index.search(queries, k)
    with pytest.raises(ValueError, match="already in the index: 'doc3'"):
        index.add(["doc3"], vectors[:1])
    with pytest.raises(ValueError, match="duplicate ids within this add: 'n1'"):
        index.add(["n1", "n1"], vectors[:2])
    with pytest.raises(ValueError, match="2 ids for 3 vectors"):
        index.add(["a", "b"], vectors[:3])
    with pytest.raises(ValueError, match="NaN"):
        index.add(["nan"], np.full((1, DIM), np.nan, dtype=np.float32))
    with pytest.raises(KeyError, match="'ghost'"):
        index.delete(["doc1", "ghost"])
    assert len(index) == len(ids)  # none of the failed calls changed anything
    index.delete(ids)
    with pytest.raises(ValueError, match="empty index"):
        index.search(queries, 5)


def test_unknown_kind_and_bad_parameters():
    with pytest.raises(ValueError, match="unknown FAISS index kind"):
        FaissIndex("lsh", DIM)
    with pytest.raises(ValueError, match="m dividing dim"):
        FaissIndex.ivfpq(DIM, nlist=8, m=5)
    with pytest.raises(ValueError, match="ef_search must be a positive integer"):
        FaissIndex.hnsw(DIM, ef_search=0)


def saved(kind: str, data, folder: Path) -> tuple[FaissIndex, dict]:
    index = built(kind, data)
    index.save(folder)
    return index, json.loads((folder / MANIFEST).read_text())


@pytest.mark.parametrize("role", ["index", "ids", "manifest"])
def test_truncated_file_raises_index_corrupt_naming_it(role, data, tmp_path):
    folder = tmp_path / "idx"
    _, manifest = saved("hnsw", data, folder)
    path = folder / (MANIFEST if role == "manifest" else manifest["files"][role]["name"])
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 2])
    with pytest.raises(IndexCorrupt) as caught:
        FaissIndex.load(folder)
    assert caught.value.path == path
    assert str(path) in str(caught.value) and "rebuild" in str(caught.value)


def test_altered_or_missing_file_raises_index_corrupt(data, tmp_path):
    folder = tmp_path / "idx"
    _, manifest = saved("exact", data, folder)
    path = folder / manifest["files"]["index"]["name"]
    content = bytearray(path.read_bytes())
    content[len(content) // 2] ^= 0xFF
    path.write_bytes(bytes(content))
    with pytest.raises(IndexCorrupt, match="SHA-256"):
        FaissIndex.load(folder)
    path.unlink()
    with pytest.raises(IndexCorrupt, match="missing"):
        FaissIndex.load(folder)
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        FaissIndex.load(tmp_path / "nothing-here")


CRASHING_SAVE = textwrap.dedent(
    """
    import os, signal, sys
    import numpy as np
    from rag_service.index.faiss_index import FaissIndex

    folder, step = sys.argv[1], sys.argv[2]
    index = FaissIndex.load(folder)
    grow = np.random.default_rng(5).standard_normal((12000, index.dim)).astype(np.float32)
    index.add([f"grow{i}" for i in range(len(grow))], grow)  # > 1 MiB: written in pieces
    real, calls = getattr(os, step), []

    def crash(*args, **kwargs):
        calls.append(1)
        if step != "write" or len(calls) == 2:  # "write": after the first 1 MiB piece
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)

    setattr(os, step, crash)
    index.save(folder)
    """
)


@pytest.mark.parametrize("step", ["write", "fsync", "replace"])
def test_save_killed_mid_write_leaves_previous_index_loadable(step, data, tmp_path):
    """Kill a real child at each step of save: half-written data, unsynced data, no manifest."""
    folder = tmp_path / "idx"
    index, _ = saved("exact", data, folder)
    _, _, queries = data
    expected = index.search(queries, 10)
    child = subprocess.run(
        [sys.executable, "-c", CRASHING_SAVE, str(folder), step],
        env={**os.environ, "PYTHONPATH": str(SRC)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert len(list(folder.iterdir())) > 3  # the dead writer left its partial files behind
    survivor = FaissIndex.load(folder)
    assert len(survivor) == len(index)
    assert survivor.search(queries, 10) == expected
    # The next save removes the debris of the failed one.
    survivor.save(folder)
    assert len(list(folder.iterdir())) == 3
