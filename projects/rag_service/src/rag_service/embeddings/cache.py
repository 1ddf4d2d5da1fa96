"""A disk cache of embeddings keyed by (model id, precision, sha256 of the text).

Re-embedding an unchanged corpus is the slowest step of every evaluation run and of every
re-index; text hashes make the cache content-addressed, so a chunk whose text did not change
is never embedded twice, whatever its id or position.

Storage is one SQLite file, `embeddings.sqlite`, because SQLite already solves the two hard
parts:
- Crash safety: every `put_many` is one transaction in rollback-journal mode with
  synchronous=FULL; a process killed mid-write leaves a hot journal that the next opener rolls
  back, so a batch is either wholly present or absent.
- Several processes: SQLite's file locks serialise writers (`BEGIN IMMEDIATE` takes the write
  lock up front; others wait up to `timeout_s`) while readers share. Rollback-journal mode
  rather than WAL is deliberate: WAL needs shared memory (no network file systems) and lets a
  checkpoint grow the file under a reader, which would make the truncation check below racy.

Damage is detected, never served:
- A file shorter than the page count in its own header (a truncated copy, a full disk) raises
  EmbeddingCacheCorrupt at open, checked while holding SQLite's shared lock so no writer can be
  mid-change. So does anything SQLite itself reports as corrupt or not a database.
- Every row carries a blake2b checksum over its key, flags and vector bytes; a row that fails
  it is treated as a miss (recomputed and overwritten), so a flipped byte cannot return a wrong
  vector.
The cache holds only derived data: the error message says to delete the file to rebuild it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag_service.embeddings.encoder import (
    DEFAULT_BATCH_TOKENS,
    EncodedQueries,
    Encoder,
    check_texts,
)

log = logging.getLogger(__name__)

FILE_NAME = "embeddings.sqlite"
SCHEMA_VERSION = 1
_SQLITE_HEADER = b"SQLite format 3\x00"
_SQLITE_CORRUPT, _SQLITE_NOTADB = 11, 26
_IN_CHUNK = 500
"""Keys per SELECT ... IN (...): below SQLite's bound-parameter limit on every build."""


class EmbeddingCacheCorrupt(RuntimeError):
    """The cache file is damaged; it names the file. Deleting the file rebuilds the cache."""


@dataclass(frozen=True)
class CachedVector:
    vector: np.ndarray
    truncated: bool


def text_key(text: str) -> str:
    """sha256 hex of the text's UTF-8 bytes (lone surrogates kept, so no text is refused)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _checksum(model: str, precision: str, key: str, truncated: bool, blob: bytes) -> str:
    digest = hashlib.blake2b(digest_size=16)
    for part in (model, precision, key, "1" if truncated else "0"):
        digest.update(part.encode("utf-8"))
        digest.update(b"\x00")
    digest.update(blob)
    return digest.hexdigest()


def _is_corruption(exc: sqlite3.DatabaseError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB)
    text = str(exc).lower()
    return "malformed" in text or "not a database" in text


class EmbeddingCache:
    """Vectors on disk under `folder`/embeddings.sqlite; safe across processes and crashes."""

    def __init__(self, folder: str | Path, timeout_s: float = 60.0) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / FILE_NAME
        self.damaged_rows = 0
        """Rows whose checksum failed since opening (each was treated as a miss)."""
        self._conn = sqlite3.connect(self.path, timeout=timeout_s, isolation_level=None)
        try:
            with self._guard("opening"):
                self._conn.execute("PRAGMA journal_mode=DELETE")
                self._conn.execute("PRAGMA synchronous=FULL")
                self._check_length()
                self._create_schema()
        except BaseException:
            self._conn.close()
            raise

    # -- context and lifetime ---------------------------------------------------------------
    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"EmbeddingCache({str(self.folder)!r})"

    # -- integrity -------------------------------------------------------------------------
    @contextlib.contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        """Turn SQLite's corruption errors into EmbeddingCacheCorrupt naming the file."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            if _is_corruption(exc):
                raise EmbeddingCacheCorrupt(self._damaged(f"{exc} (while {action})")) from exc
            raise

    def _damaged(self, why: str) -> str:
        return (
            f"embedding cache {self.path} is damaged: {why}. It holds only derived vectors: "
            "delete the file and the next run rebuilds it"
        )

    def _check_length(self) -> None:
        """Refuse a file shorter than its header's page count: it was truncated.

        SQLite trusts the header's page count and would only notice missing pages when a
        query touches them. Checked inside a read transaction: the shared lock keeps writers
        from changing the file meanwhile.
        """
        self._conn.execute("BEGIN")
        try:
            self._conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            with self.path.open("rb") as fh:
                header = fh.read(100)
            size = self.path.stat().st_size
        finally:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")  # read-only: nothing to keep
        if not header:
            return  # a new, empty file
        if len(header) < 100 or not header.startswith(_SQLITE_HEADER):
            raise EmbeddingCacheCorrupt(self._damaged("no SQLite header"))
        page_size = int.from_bytes(header[16:18], "big")
        page_size = 65536 if page_size == 1 else page_size
        pages = int.from_bytes(header[28:32], "big")
        header_valid = header[24:28] == header[92:96]  # change counter == version-valid-for
        if header_valid and pages and size < pages * page_size:
            raise EmbeddingCacheCorrupt(
                self._damaged(f"the file has {size} bytes, its header says {pages * page_size}")
            )

    def _create_schema(self) -> None:
        with self._transaction():
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS vectors ("
                " model TEXT NOT NULL, precision TEXT NOT NULL, text_sha256 TEXT NOT NULL,"
                " dim INTEGER NOT NULL, truncated INTEGER NOT NULL, vector BLOB NOT NULL,"
                " checksum TEXT NOT NULL,"
                " PRIMARY KEY (model, precision, text_sha256)) WITHOUT ROWID"
            )
            (found,) = self._conn.execute("PRAGMA user_version").fetchone()
            if found == 0:
                self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            elif found != SCHEMA_VERSION:
                raise EmbeddingCacheCorrupt(
                    self._damaged(f"schema version {found}, this code reads {SCHEMA_VERSION}")
                )

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """A write transaction: the write lock up front, commit on success, else roll back."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def verify(self) -> list[str]:
        """A full check (slow on big caches): SQLite's integrity_check plus every checksum.

        Returns the problems found, an empty list when the file is sound.
        """
        with self._guard("verifying"):
            problems = [
                row[0]
                for row in self._conn.execute("PRAGMA integrity_check").fetchall()
                if row[0] != "ok"
            ]
            rows = self._conn.execute(
                "SELECT model, precision, text_sha256, dim, truncated, vector, checksum "
                "FROM vectors"
            )
            for model, precision, key, dim, truncated, blob, checksum in rows:
                if len(blob) != 4 * dim or checksum != _checksum(
                    model, precision, key, bool(truncated), blob
                ):
                    problems.append(f"row ({model}, {precision}, {key}) fails its checksum")
        return problems

    # -- data ----------------------------------------------------------------------------------
    def __len__(self) -> int:
        with self._guard("counting"):
            return int(self._conn.execute("SELECT count(*) FROM vectors").fetchone()[0])

    def get_many(self, model: str, precision: str, keys: Iterable[str]) -> dict[str, CachedVector]:
        """The cached vectors among `keys` (text_key values); absent or damaged ones are left
        out, so the caller recomputes them."""
        unique = list(dict.fromkeys(keys))
        found: dict[str, CachedVector] = {}
        with self._guard("reading"):
            for start in range(0, len(unique), _IN_CHUNK):
                chunk = unique[start : start + _IN_CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = self._conn.execute(
                    "SELECT text_sha256, dim, truncated, vector, checksum FROM vectors "
                    f"WHERE model = ? AND precision = ? AND text_sha256 IN ({marks})",
                    (model, precision, *chunk),
                ).fetchall()
                for key, dim, truncated, blob, checksum in rows:
                    if len(blob) != 4 * dim or checksum != _checksum(
                        model, precision, key, bool(truncated), blob
                    ):
                        self.damaged_rows += 1
                        log.warning(
                            "%s: row %s/%s/%s fails its checksum; recomputing",
                            self.path,
                            model,
                            precision,
                            key,
                        )
                        continue
                    vector = np.frombuffer(blob, dtype="<f4")
                    found[key] = CachedVector(vector, bool(truncated))
        return found

    def put_many(
        self, model: str, precision: str, items: Iterable[tuple[str, np.ndarray, bool]]
    ) -> int:
        """Store (key, vector, truncated) triples in one transaction; returns how many."""
        rows = []
        for key, vector, truncated in items:
            array = np.ascontiguousarray(vector, dtype="<f4")
            if array.ndim != 1:
                raise ValueError(f"vector for key {key} must be 1-d, got shape {array.shape}")
            blob = array.tobytes()
            checksum = _checksum(model, precision, key, bool(truncated), blob)
            rows.append((model, precision, key, array.size, int(truncated), blob, checksum))
        if not rows:
            return 0
        with self._guard("writing"), self._transaction():
            self._conn.executemany(
                "INSERT OR REPLACE INTO vectors "
                "(model, precision, text_sha256, dim, truncated, vector, checksum) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        return len(rows)


class CachedEncoder:
    """An Encoder that asks the cache first and embeds only the texts it lacks.

    Keys are (model, precision[:variant], sha256(text)) with model = encoder.model_id and, when
    the encoder says it, the weights' package version (`model_id@1.0.0`): two precisions, two
    int8 schemes or two releases of the weights never share vectors. `hits` counts texts served
    without running the model, `misses` the distinct texts the model had to embed (a text
    repeated within one call is embedded once: one miss, and its repeats count as hits).
    """

    def __init__(self, encoder: Encoder, cache: EmbeddingCache) -> None:
        self.encoder = encoder
        self.cache = cache
        self.hits = 0
        self.misses = 0
        self.name = encoder.name
        self.model_id = encoder.model_id
        weights = getattr(encoder, "model_version", "")
        self.model_key = f"{encoder.model_id}@{weights}" if weights else encoder.model_id
        self.precision = encoder.precision
        self.variant = encoder.variant
        self.dim = encoder.dim

    @property
    def precision_key(self) -> str:
        return f"{self.precision}:{self.variant}" if self.variant else self.precision

    def encode(self, texts: Sequence[str], batch_tokens: int = DEFAULT_BATCH_TOKENS) -> np.ndarray:
        return self.encode_queries(texts, batch_tokens).vectors

    def encode_queries(
        self, texts: Sequence[str], batch_tokens: int = DEFAULT_BATCH_TOKENS
    ) -> EncodedQueries:
        items = check_texts(texts)
        keys = [text_key(text) for text in items]
        found = self.cache.get_many(self.model_key, self.precision_key, keys)
        missing: dict[str, str] = {}
        for key, text in zip(keys, items, strict=True):
            if key not in found and key not in missing:
                missing[key] = text
        if missing:
            fresh = self.encoder.encode_queries(list(missing.values()), batch_tokens)
            triples = [(key, fresh.vectors[i], fresh.truncated[i]) for i, key in enumerate(missing)]
            self.cache.put_many(self.model_key, self.precision_key, triples)
            for key, vector, truncated in triples:
                found[key] = CachedVector(vector, truncated)
        self.misses += len(missing)
        self.hits += len(items) - len(missing)
        vectors = np.zeros((len(items), self.dim), dtype=np.float32)
        for i, key in enumerate(keys):
            vectors[i] = found[key].vector
        return EncodedQueries(vectors, [found[key].truncated for key in keys])
