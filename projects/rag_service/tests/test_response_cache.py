"""The exact response cache: keys, versions, TTL, and damaged stores that are never served."""

from __future__ import annotations

import logging
import sqlite3

import pytest

from rag_service.caching.response import ResponseCache, cache_key, normalize_question

CONFIG = {"model": "smollm2-135m-q4", "temperature": 0.0, "prompt": "v2"}
ANSWER = {"answer": "Use sorted(d.items()).", "citations": ["api:builtins.sorted"]}


def test_key_normalises_the_question_and_separates_configs():
    """Case, Unicode width and whitespace do not matter; config order does not; versions do."""
    assert normalize_question("  What is\ta  LIST? ") == "what is a list?"
    assert normalize_question("ＬＩＳＴ") == "list"  # NFKC folds full-width letters
    base = cache_key("What is a list?", CONFIG, "idx-1")
    assert cache_key("what  is a LIST?", dict(reversed(CONFIG.items())), "idx-1") == base
    assert cache_key("What is a list?", {**CONFIG, "prompt": "v3"}, "idx-1") != base
    assert cache_key("What is a list?", CONFIG, "idx-2") != base
    assert cache_key("ab", "c", "v") != cache_key("a", "bc", "v")  # parts are length-prefixed
    with pytest.raises(ValueError, match="config"):
        cache_key("q", {"f": object()}, "v")


def test_put_get_stats_and_reopen(tmp_path):
    """A stored answer comes back after a reopen; hits and misses are counted."""
    path = tmp_path / "responses.sqlite"
    with ResponseCache(path) as cache:
        assert cache.get("What is a list?", CONFIG, "idx-1") is None
        assert cache.put("What is a list?", CONFIG, "idx-1", ANSWER)
        assert cache.get("what is a list?", CONFIG, "idx-1") == ANSWER
        assert cache.get("what is a list?", {**CONFIG, "temperature": 0.7}, "idx-1") is None
        stats = cache.stats()
        assert (stats.hits, stats.misses, stats.entries) == (1, 2, 1)
        assert stats.hit_rate == pytest.approx(1 / 3)
    with ResponseCache(path) as cache:
        assert cache.get("What is a list?", CONFIG, "idx-1") == ANSWER
        with pytest.raises(ValueError, match="None"):
            cache.put("q", CONFIG, "idx-1", None)
        with pytest.raises(ValueError, match="JSON"):
            cache.put("q", CONFIG, "idx-1", {"x": float("nan")})
    with pytest.raises(ValueError, match="closed"):
        cache.get("q", CONFIG, "idx-1")


def test_invalidate_and_ttl(tmp_path):
    """invalidate keeps one index version; a row older than the TTL is a miss and is deleted."""
    now = [1000.0]
    with ResponseCache(tmp_path / "c.sqlite", ttl_s=60, clock=lambda: now[0]) as cache:
        cache.put("q1", CONFIG, "idx-1", "a1")
        cache.put("q2", CONFIG, "idx-1", "a2")
        cache.put("q1", CONFIG, "idx-2", "b1")
        assert cache.invalidate("idx-2") == 2
        assert cache.get("q1", CONFIG, "idx-1") is None
        assert cache.get("q1", CONFIG, "idx-2") == "b1"
        now[0] = 1060.0
        assert cache.get("q1", CONFIG, "idx-2") == "b1"  # exactly the TTL: still fresh
        now[0] = 1060.5
        assert cache.get("q1", CONFIG, "idx-2") is None
        assert len(cache) == 0
    with pytest.raises(ValueError, match="ttl_s"):
        ResponseCache(tmp_path / "d.sqlite", ttl_s=0)


def _assert_recovered(cache, caplog, path):
    assert cache.get("What is a list?", CONFIG, "idx-1") is None  # never served
    assert any(r.levelno == logging.WARNING and "damaged" in r.getMessage() for r in caplog.records)
    assert cache.recoveries == 1 and cache.quarantined and cache.quarantined[0].exists()
    assert cache.quarantined[0].parent == path.parent
    assert cache.put("next", CONFIG, "idx-1", "works")  # the fresh file takes writes
    assert cache.get("next", CONFIG, "idx-1") == "works"


def test_garbage_file_is_moved_aside(tmp_path, caplog):
    """A file that is not SQLite: warning, kept aside byte for byte, a fresh cache in its place."""
    path = tmp_path / "responses.sqlite"
    path.write_bytes(b"\x00garbage" * 500)
    with caplog.at_level(logging.WARNING), ResponseCache(path) as cache:
        _assert_recovered(cache, caplog, path)
        assert cache.quarantined[0].read_bytes() == b"\x00garbage" * 500


def test_truncated_file_is_not_served(tmp_path, caplog):
    """A copy cut in half (a full disk, a partial copy) is detected at open, not served."""
    path = tmp_path / "responses.sqlite"
    with ResponseCache(path) as cache:
        for i in range(30):
            cache.put(f"question {i}", CONFIG, "idx-1", {"answer": "x" * 3000, "i": i})
        cache.put("What is a list?", CONFIG, "idx-1", ANSWER)
    data = path.read_bytes()
    assert len(data) > 8 * 4096
    path.write_bytes(data[: len(data) // 2])
    with caplog.at_level(logging.WARNING), ResponseCache(path) as cache:
        _assert_recovered(cache, caplog, path)


def test_failed_checksum_is_not_served(tmp_path, caplog):
    """A row altered behind the cache's back fails its checksum: a miss, and the store is reset."""
    path = tmp_path / "responses.sqlite"
    with ResponseCache(path) as cache:
        cache.put("What is a list?", CONFIG, "idx-1", ANSWER)
        with sqlite3.connect(path) as raw:
            raw.execute('UPDATE responses SET payload = \'{"answer": "rm -rf /"}\'')
        raw.close()
        with caplog.at_level(logging.WARNING):
            _assert_recovered(cache, caplog, path)


def test_foreign_schema_is_moved_aside(tmp_path, caplog):
    """A SQLite file with another table layout under the same name is not trusted."""
    path = tmp_path / "responses.sqlite"
    with sqlite3.connect(path) as raw:
        raw.execute("CREATE TABLE responses (key TEXT, answer TEXT)")
        raw.execute("INSERT INTO responses VALUES ('k', 'stale')")
    raw.close()
    with caplog.at_level(logging.WARNING), ResponseCache(path) as cache:
        _assert_recovered(cache, caplog, path)
