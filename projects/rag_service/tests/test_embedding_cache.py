"""The embedding cache: exact round trips, keys per precision, damage detected and never served,
two writer processes, a writer killed mid-transaction, and CachedEncoder over the real model.
"""

from __future__ import annotations

import inspect
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import rag_service
from rag_service.embeddings.cache import (
    FILE_NAME,
    CachedEncoder,
    EmbeddingCache,
    EmbeddingCacheCorrupt,
    text_key,
)
from rag_service.embeddings.encoder import DIM, make_encoder

SRC = str(Path(rag_service.__file__).resolve().parents[1])


def vector_for(key: str) -> np.ndarray:
    """A vector determined by its key: any process can tell a right row from a wrong one."""
    return np.random.default_rng(int(key[:8], 16)).standard_normal(384).astype(np.float32)


WRITER = (
    "import sys\nimport numpy as np\n"
    "from rag_service.embeddings.cache import EmbeddingCache, text_key\n"
    + inspect.getsource(vector_for)
    + textwrap.dedent(
        """
        folder, start, stop, step = sys.argv[1], *map(int, sys.argv[2:5])
        cache = EmbeddingCache(folder, timeout_s=60)
        lo = start
        while stop < 0 or lo < stop:
            hi = lo + step if stop < 0 else min(lo + step, stop)
            keys = [text_key(f"text {i}") for i in range(lo, hi)]
            cache.put_many("model", "fp32", [(k, vector_for(k), i % 7 == 0)
                                            for i, k in zip(range(lo, hi), keys)])
            if lo == start:
                print("committed", flush=True)
            lo = hi
        cache.close()
        """
    )
)


def _writer(folder: Path, start: int, stop: int, step: int) -> subprocess.Popen:
    """A separate Python process writing texts start..stop in transactions of `step`."""
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(folder), str(start), str(stop), str(step)],
        env={**os.environ, "PYTHONPATH": SRC},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.kill()
    process.communicate(timeout=30)


def _items(n: int, start: int = 0) -> list[tuple[str, np.ndarray, bool]]:
    numbers = range(start, start + n)
    keys = [text_key(f"text {i}") for i in numbers]
    return [(k, vector_for(k), i % 7 == 0) for i, k in zip(numbers, keys, strict=True)]


def test_vectors_round_trip_bit_for_bit(tmp_path):
    """What goes in comes out identical (float32 bytes) with its truncated flag."""
    items = _items(40)
    with EmbeddingCache(tmp_path) as cache:
        assert cache.put_many("model", "fp32", items) == 40
        found = cache.get_many("model", "fp32", [k for k, _, _ in items] + ["absent"])
        assert len(cache) == 40
    assert set(found) == {k for k, _, _ in items}
    for key, vector, truncated in items:
        assert found[key].vector.dtype == np.float32
        np.testing.assert_array_equal(found[key].vector, vector)
        assert found[key].truncated == truncated


def test_keys_differ_per_model_and_precision(tmp_path):
    """A vector stored for one (model, precision) is invisible to every other pair."""
    items = _items(5)
    keys = [k for k, _, _ in items]
    with EmbeddingCache(tmp_path) as cache:
        cache.put_many("model", "fp32", items)
        assert cache.get_many("model", "int8:keep-ffn-output", keys) == {}
        assert cache.get_many("other-model", "fp32", keys) == {}
        assert len(cache.get_many("model", "fp32", keys)) == 5


def test_text_keys_are_content_hashes():
    """Equal text, equal key; any change (even whitespace) a different key; surrogates work."""
    assert text_key("a b") == text_key("a b") != text_key("a  b")
    assert len(text_key("\ud800 lone surrogate")) == 64


@pytest.mark.parametrize("keep", [0.6, 0.001])
def test_a_truncated_cache_file_is_refused_with_its_name(tmp_path, keep):
    """A file cut short (mid-data or mid-header) raises EmbeddingCacheCorrupt naming the file."""
    with EmbeddingCache(tmp_path) as cache:
        cache.put_many("model", "fp32", _items(2000))
    path = tmp_path / FILE_NAME
    with path.open("r+b") as fh:
        fh.truncate(int(path.stat().st_size * keep))
    with pytest.raises(EmbeddingCacheCorrupt, match=f"{path}.*delete the file"):
        EmbeddingCache(tmp_path)


def test_a_file_that_is_not_sqlite_is_refused(tmp_path):
    """Garbage in place of the database: a clear error, not a crash deep inside a query."""
    (tmp_path / FILE_NAME).write_bytes(b"not a database at all " * 100)
    with pytest.raises(EmbeddingCacheCorrupt, match=FILE_NAME):
        EmbeddingCache(tmp_path)


def test_a_damaged_row_is_a_miss_never_a_wrong_vector(tmp_path):
    """A row whose bytes changed behind the checksum is not returned; rewriting heals it."""
    items = _items(3)
    with EmbeddingCache(tmp_path) as cache:
        cache.put_many("model", "fp32", items)
    bad_key = items[1][0]
    raw = sqlite3.connect(tmp_path / FILE_NAME)
    with raw:
        wrong = np.ones(DIM, dtype=np.float32).tobytes()
        raw.execute("UPDATE vectors SET vector = ? WHERE text_sha256 = ?", (wrong, bad_key))
    raw.close()
    with EmbeddingCache(tmp_path) as cache:
        found = cache.get_many("model", "fp32", [k for k, _, _ in items])
        assert set(found) == {items[0][0], items[2][0]} and cache.damaged_rows == 1
        assert cache.verify() == [f"row (model, fp32, {bad_key}) fails its checksum"]
        cache.put_many("model", "fp32", [items[1]])
        np.testing.assert_array_equal(
            cache.get_many("model", "fp32", [bad_key])[bad_key].vector, items[1][1]
        )
        assert cache.verify() == []


def test_two_processes_writing_the_same_cache_do_not_corrupt_it(tmp_path):
    """Overlapping writers in parallel: every row present, correct, and SQLite's check is clean."""
    writers = [_writer(tmp_path, 0, 600, 10), _writer(tmp_path, 300, 900, 10)]
    try:
        for process in writers:
            _, err = process.communicate(timeout=120)
            assert process.returncode == 0, err
    finally:
        for process in writers:
            _stop(process)
    expected = _items(900)
    with EmbeddingCache(tmp_path) as cache:
        assert len(cache) == 900 and cache.verify() == []
        found = cache.get_many("model", "fp32", [k for k, _, _ in expected])
    for key, vector, truncated in expected:
        np.testing.assert_array_equal(found[key].vector, vector)
        assert found[key].truncated == truncated


def test_a_writer_killed_mid_run_leaves_whole_batches_only(tmp_path):
    """SIGKILL during writes: the next open rolls back the open transaction; no torn batch."""
    process = _writer(tmp_path, 0, -1, 50)  # writes batches of 50 until killed
    try:
        assert process.stdout.readline().strip() == "committed"
        time.sleep(0.5)
    finally:
        _stop(process)
    with EmbeddingCache(tmp_path) as cache:
        count = len(cache)
        assert count >= 50 and count % 50 == 0, count
        assert cache.verify() == []
        expected = _items(count)
        found = cache.get_many("model", "fp32", [k for k, _, _ in expected])
    assert len(found) == count
    for key, vector, _ in expected:
        np.testing.assert_array_equal(found[key].vector, vector)


# -- CachedEncoder over the real model -------------------------------------------------------
TEXTS = [
    "How do I sort a list in place?",
    "The with statement wraps a block in a context manager.",
    "How do I sort a list in place?",  # a repeat within one call
    "",
    " ".join(["generators yield values lazily"] * 80),  # over 256 tokens
]


@pytest.fixture(scope="module")
def fp32():
    return make_encoder("fp32")


@pytest.mark.slow
def test_second_call_is_all_hits_and_returns_identical_arrays(fp32, tmp_path):
    """First call embeds each distinct text once; the second is served wholly from disk."""
    with EmbeddingCache(tmp_path) as cache:
        cached = CachedEncoder(fp32, cache)
        first = cached.encode_queries(TEXTS)
        assert (cached.misses, cached.hits) == (4, 1)
        second = cached.encode_queries(TEXTS)
        assert (cached.misses, cached.hits) == (4, 6)
        np.testing.assert_array_equal(second.vectors, first.vectors)
        assert second.truncated == first.truncated == [False, False, False, False, True]
    with EmbeddingCache(tmp_path) as reopened:
        again = CachedEncoder(fp32, reopened)
        np.testing.assert_array_equal(again.encode(TEXTS), first.vectors)
        assert (again.misses, again.hits) == (0, 5)
    assert np.abs(first.vectors - fp32.encode(TEXTS)).max() < 1e-5


@pytest.mark.slow
def test_each_precision_has_its_own_entries(fp32, tmp_path):
    """int8 over the same cache misses everything fp32 stored and gets its own vectors."""
    int8 = make_encoder("int8")
    with EmbeddingCache(tmp_path) as cache:
        fp32_vectors = CachedEncoder(fp32, cache).encode(TEXTS)
        cached_int8 = CachedEncoder(int8, cache)
        int8_vectors = cached_int8.encode(TEXTS)
        assert cached_int8.misses == 4 and len(cache) == 8
    assert not np.array_equal(int8_vectors, fp32_vectors)
    np.testing.assert_allclose(int8_vectors, int8.encode(TEXTS), atol=1e-5)


@pytest.mark.slow
def test_another_release_of_the_weights_misses(fp32, tmp_path, monkeypatch):
    """The key carries the model package's version: new weights never get old vectors."""
    with EmbeddingCache(tmp_path) as cache:
        CachedEncoder(fp32, cache).encode(TEXTS[:2])
        monkeypatch.setattr(fp32, "model_version", "99.0")
        newer = CachedEncoder(fp32, cache)
        assert newer.model_key.endswith("@99.0")
        newer.encode(TEXTS[:2])
        assert newer.misses == 2 and len(cache) == 4
