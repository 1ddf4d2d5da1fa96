"""An exact response cache in SQLite: the same question, config and index get the same answer.

The key is sha256 over (normalised question, variant config, index version): normalising
(Unicode NFKC, case-folded, whitespace collapsed) lets "What is a list?" and "what is a  list?"
share an entry; the variant config keeps A/B variants (another prompt, model or temperature)
from serving each other's answers; the index version keeps answers grounded in a rebuilt index
from outliving it, and `invalidate` deletes the rows of every other version.

A cache is an optimisation, so its failures must never become the request's failure: a store
that is damaged (not a SQLite file, truncated, a row whose checksum fails, a table of another
schema) is logged at WARNING, NOT served, and moved aside as `<name>.corrupt-<time>` for a
post-mortem, and the cache carries on with a fresh empty file; the request sees a miss. Every
row carries a sha256 over its key, version, time and payload, so a flipped byte is detected
instead of served. Values are anything JSON can hold (the answer, its citations, its metadata).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import sqlite3
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
_SQLITE_HEADER = b"SQLite format 3\x00"
_COLUMNS = ["key", "index_version", "created", "payload", "checksum"]


class _Damaged(Exception):
    """Internal: the store is damaged; the reason is the message."""


def normalize_question(question: str) -> str:
    """NFKC, case-folded, whitespace runs collapsed to one space, trimmed."""
    if not isinstance(question, str):
        raise ValueError(f"question must be a string, got {type(question).__name__}")
    return " ".join(unicodedata.normalize("NFKC", question).casefold().split())


def cache_key(question: str, config: Mapping[str, Any] | str, index_version: str) -> str:
    """sha256 hex of the normalised question, the variant config (JSON, sorted keys) and the
    index version, each length-prefixed so no two different triples can collide by joining."""
    if not isinstance(index_version, str):
        raise ValueError(f"index_version must be a string, got {index_version!r}")
    if isinstance(config, str):
        config_text = config
    elif isinstance(config, Mapping):
        try:
            config_text = json.dumps(config, sort_keys=True, separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"config must be JSON-serialisable: {exc}") from None
    else:
        raise ValueError(f"config must be a mapping or a string, got {type(config).__name__}")
    digest = hashlib.sha256()
    for part in (normalize_question(question), config_text, index_version):
        data = part.encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def _checksum(key: str, index_version: str, created: float, payload: str) -> str:
    digest = hashlib.sha256()
    for part in (key, index_version, repr(float(created)), payload):
        data = part.encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


@dataclass(frozen=True)
class CacheStats:
    """Counters since the cache was opened; `recoveries` counts damaged stores moved aside."""

    hits: int
    misses: int
    entries: int
    recoveries: int

    @property
    def hit_rate(self) -> float:
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else 0.0


class ResponseCache:
    """Exact-match answers in one SQLite file; damage is moved aside, never served or raised.

    `ttl_s` (optional) makes rows older than that many seconds misses (and deletes them).
    Thread-safe: one connection behind a lock, so a threaded server can share the object.
    """

    def __init__(
        self,
        path: str | Path,
        ttl_s: float | None = None,
        clock: Callable[[], float] = time.time,
        timeout_s: float = 10.0,
    ) -> None:
        if ttl_s is not None and (
            isinstance(ttl_s, bool) or not math.isfinite(float(ttl_s)) or ttl_s <= 0
        ):
            raise ValueError(f"ttl_s must be a positive number or None, got {ttl_s!r}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.ttl_s = None if ttl_s is None else float(ttl_s)
        self._clock = clock
        self._timeout_s = timeout_s
        self._lock = threading.RLock()
        self.hits = 0
        self.misses = 0
        self.recoveries = 0
        self.quarantined: list[Path] = []
        """Where damaged stores were moved, oldest first."""
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        with self._lock:
            self._open()

    # -- lifetime --------------------------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> ResponseCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open(self) -> None:
        """Open the file, checking it first; a damaged one is moved aside and replaced."""
        try:
            self._connect_and_check()
        except _Damaged as exc:
            self._recover(str(exc))
            self._connect_and_check()  # a fresh file: damage now is a real error, let it raise

    def _connect_and_check(self) -> None:
        conn = sqlite3.connect(
            self.path, timeout=self._timeout_s, isolation_level=None, check_same_thread=False
        )
        self._conn = conn
        try:
            with self._damage_guard():
                conn.execute("PRAGMA journal_mode=DELETE")
                # the length check runs under SQLite's shared lock: no other process can be
                # half-way through a commit (file grown, header not yet) while we measure
                conn.execute("BEGIN")
                try:
                    conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
                    self._check_file()
                finally:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.execute(
                        "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY,"
                        " index_version TEXT NOT NULL, created REAL NOT NULL,"
                        " payload TEXT NOT NULL, checksum TEXT NOT NULL)"
                    )
                    columns = [row[1] for row in conn.execute("PRAGMA table_info(responses)")]
                    if columns != _COLUMNS:
                        raise _Damaged(f"table responses has columns {columns}, not {_COLUMNS}")
                    (found,) = conn.execute("PRAGMA user_version").fetchone()
                    if found == 0:
                        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                    elif found != SCHEMA_VERSION:
                        raise _Damaged(f"schema version {found}, this code reads {SCHEMA_VERSION}")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
        except BaseException:
            conn.close()
            self._conn = None
            raise

    def _check_file(self) -> None:
        """Refuse a file without SQLite's header or shorter than its header's page count.

        SQLite trusts the header's page count and notices missing pages only when a query
        reaches them, possibly much later; a truncated copy is caught here at open instead.
        """
        with self.path.open("rb") as fh:
            header = fh.read(100)
        if not header:
            return  # a new, empty file
        if len(header) < 100 or not header.startswith(_SQLITE_HEADER):
            raise _Damaged("no SQLite header")
        page_size = int.from_bytes(header[16:18], "big")
        page_size = 65536 if page_size == 1 else page_size
        pages = int.from_bytes(header[28:32], "big")
        size = self.path.stat().st_size
        header_valid = header[24:28] == header[92:96]  # change counter == version-valid-for
        if header_valid and pages and size < pages * page_size:
            raise _Damaged(f"the file has {size} bytes, its header says {pages * page_size}")

    @contextlib.contextmanager
    def _damage_guard(self) -> Iterator[None]:
        """SQLite's 'not a database' and 'malformed' errors become _Damaged."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc).lower():
                raise
            text = str(exc).lower()
            code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
            if code in (11, 26) or "malformed" in text or "not a database" in text:
                raise _Damaged(str(exc)) from exc
            raise

    def _recover(self, why: str) -> None:
        """Move the damaged file aside (with its journal) and reopen a fresh one."""
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None
        aside = self.path.with_name(f"{self.path.name}.corrupt-{time.time_ns()}")
        log.warning(
            "response cache %s is damaged (%s): not served; moved to %s, starting empty",
            self.path,
            why,
            aside,
        )
        try:
            if self.path.exists():
                self.path.replace(aside)
                self.quarantined.append(aside)
            journal = self.path.with_name(self.path.name + "-journal")
            if journal.exists():
                journal.replace(aside.with_name(aside.name + "-journal"))
        except OSError as exc:  # cannot move it: delete it, a cache holds nothing irreplaceable
            log.warning("cannot move %s aside (%s); deleting it", self.path, exc)
            with contextlib.suppress(OSError):
                self.path.unlink(missing_ok=True)
        self.recoveries += 1

    def _run(self, action: Callable[[sqlite3.Connection], Any], fallback: Any) -> Any:
        """Run `action` on the connection and return its result, or `fallback` when the store
        fails: damage is moved aside and a fresh file opened; any other SQLite error (a full
        disk, a lock held too long) is logged and the request simply misses."""
        with self._lock:
            if self._closed:
                raise ValueError(f"response cache {self.path} is closed")
            try:
                if self._conn is None:  # an earlier recovery could not reopen: try again
                    self._open()
                assert self._conn is not None
                with self._damage_guard():
                    return action(self._conn)
            except _Damaged as exc:
                self._recover(str(exc))
                try:
                    self._open()
                except (OSError, sqlite3.Error, _Damaged) as again:
                    log.warning("response cache %s cannot be reopened: %s", self.path, again)
            except (OSError, sqlite3.Error) as exc:
                log.warning("response cache %s failed, answering a miss: %s", self.path, exc)
            return fallback

    # -- data ------------------------------------------------------------------------------------
    def get(self, question: str, config: Mapping[str, Any] | str, index_version: str) -> Any:
        """The cached value, or None on a miss, an expired row or a damaged store."""
        key = cache_key(question, config, index_version)
        value = self._run(lambda conn: self._get(conn, key, index_version), _MISS)
        if value is _MISS:
            self.misses += 1
            return None
        self.hits += 1
        return value

    def _get(self, conn: sqlite3.Connection, key: str, index_version: str) -> Any:
        row = conn.execute(
            "SELECT index_version, created, payload, checksum FROM responses WHERE key = ?", (key,)
        ).fetchone()
        if row is None:
            return _MISS
        version, created, payload, checksum = row
        if checksum != _checksum(key, version, created, payload) or version != index_version:
            raise _Damaged(f"row {key} fails its checksum")
        if self.ttl_s is not None and self._clock() - created > self.ttl_s:
            self._write(conn, "DELETE FROM responses WHERE key = ?", (key,))
            return _MISS
        try:
            return json.loads(payload)
        except json.JSONDecodeError as exc:  # cannot happen past the checksum; be safe anyway
            raise _Damaged(f"row {key} holds invalid JSON: {exc}") from exc

    def put(
        self, question: str, config: Mapping[str, Any] | str, index_version: str, value: Any
    ) -> bool:
        """Store `value` (JSON-serialisable, not None); returns False if the store was damaged
        and the value was not kept (the next put goes to the fresh file)."""
        if value is None:
            raise ValueError("value must not be None: get() returns None for a miss")
        key = cache_key(question, config, index_version)
        try:
            payload = json.dumps(value, sort_keys=True, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"value must be JSON-serialisable: {exc}") from None
        created = float(self._clock())
        checksum = _checksum(key, index_version, created, payload)
        row = (key, index_version, created, payload, checksum)
        sql = (
            "INSERT OR REPLACE INTO responses (key, index_version, created, payload, checksum)"
            " VALUES (?, ?, ?, ?, ?)"
        )
        return bool(self._run(lambda conn: self._write(conn, sql, row) or True, False))

    @staticmethod
    def _write(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> int:
        conn.execute("BEGIN IMMEDIATE")
        try:
            changed = conn.execute(sql, params).rowcount
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return changed

    def invalidate(self, index_version: str) -> int:
        """Delete every row of another index version; returns how many were deleted."""
        if not isinstance(index_version, str):
            raise ValueError(f"index_version must be a string, got {index_version!r}")
        sql = "DELETE FROM responses WHERE index_version != ?"
        return int(self._run(lambda conn: self._write(conn, sql, (index_version,)), 0))

    def __len__(self) -> int:
        return int(
            self._run(lambda conn: conn.execute("SELECT count(*) FROM responses").fetchone()[0], 0)
        )

    def stats(self) -> CacheStats:
        return CacheStats(self.hits, self.misses, len(self), self.recoveries)


class _Missing:
    def __repr__(self) -> str:
        return "<miss>"


_MISS: Any = _Missing()
