"""What the service records: Prometheus metrics and one log row per answered request.

- `Metrics`: collectors in a registry owned by one app (several apps in one test process never
  collide), exported at /metrics.
- `RequestLog`: one SQLite row per /v1/ask request (variant, latency, time to first token,
  tokens, cache, guardrail actions, status) plus the user's feedback when it comes. It is the
  online half of evaluation and what the cost dashboard reads. Writes are small transactions
  from worker threads; a damaged file is moved aside and a new log started, with a warning:
  losing request history must not take the service down.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0,
)  # fmt: skip


@dataclass
class RequestRecord:
    """What one /v1/ask request did (filled in as it goes; written once at the end)."""

    request_id: str
    user: str
    ts: float
    variant: str = ""
    status: str = "error"
    """answered | idk | blocked | cancelled | error"""
    cache: str = "none"
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    top_cosine: float | None = None
    guardrails: list[str] = field(default_factory=list)


class Metrics:
    """The service's Prometheus collectors, in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_requests = Counter(
            "rag_http_requests", "HTTP requests by route, method and status.",
            ("route", "method", "status"), registry=r,
        )  # fmt: skip
        self.http_latency = Histogram(
            "rag_http_request_duration_seconds", "Time to the last response byte, by route.",
            ("route",), buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.answers = Counter(
            "rag_answers", "Answers by variant, status and cache (none/exact/semantic).",
            ("variant", "status", "cache"), registry=r,
        )  # fmt: skip
        self.answer_latency = Histogram(
            "rag_answer_duration_seconds", "Whole-answer latency by variant and cache.",
            ("variant", "cache"), buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.ttft = Histogram(
            "rag_time_to_first_token_seconds", "Request start to first generated piece.",
            ("variant",), buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.tokens = Counter(
            "rag_tokens", "Prompt and completion tokens by variant.", ("variant", "kind"),
            registry=r,
        )  # fmt: skip
        self.guardrails = Counter(
            "rag_guardrail_actions", "Guardrail actions by kind.", ("action",), registry=r
        )
        self.feedback = Counter(
            "rag_feedback", "User feedback by variant and rating.", ("variant", "rating"),
            registry=r,
        )  # fmt: skip
        self.in_flight = Gauge(
            "rag_generations_in_flight", "Generations streaming now.", registry=r
        )
        self.llm_ready = Gauge(
            "rag_llm_ready", "1 when the language model server answers.", registry=r
        )
        self.llm_restarts = Gauge(
            "rag_llm_restarts", "Unexpected exits of the model server recovered from.", registry=r
        )
        self.embed_batch = Gauge(
            "rag_embedding_mean_batch", "Mean questions per query-embedding call.", registry=r
        )

    def observe_answer(self, record: RequestRecord) -> None:
        variant = record.variant or "unassigned"
        self.answers.labels(variant, record.status, record.cache).inc()
        self.answer_latency.labels(variant, record.cache).observe(record.latency_ms / 1000)
        if record.ttft_ms is not None:
            self.ttft.labels(variant).observe(record.ttft_ms / 1000)
        self.tokens.labels(variant, "prompt").inc(record.prompt_tokens)
        self.tokens.labels(variant, "completion").inc(record.completion_tokens)
        for action in record.guardrails:
            self.guardrails.labels(action).inc()


_COLUMNS = (
    "request_id", "ts", "user", "variant", "status", "cache", "latency_ms", "ttft_ms",
    "prompt_tokens", "completion_tokens", "top_cosine", "guardrails", "feedback",
)  # fmt: skip


class RequestLog:
    """Per-request rows in SQLite; damage is moved aside with a warning, never fatal."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self.recoveries = 0
        self._pending_feedback: dict[str, int] = {}
        self._conn = self._open()

    def _open(self) -> sqlite3.Connection:
        try:
            conn = self._connect()
        except sqlite3.DatabaseError as exc:
            self._quarantine(f"{exc}")
            conn = self._connect()
        return conn

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL: a commit is not fsynced (the WAL is at checkpoints); a power cut may
            # lose the last rows of a log, never corrupt it
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS requests (request_id TEXT PRIMARY KEY, ts REAL,"
                " user TEXT, variant TEXT, status TEXT, cache TEXT, latency_ms REAL,"
                " ttft_ms REAL, prompt_tokens INTEGER, completion_tokens INTEGER,"
                " top_cosine REAL, guardrails TEXT, feedback INTEGER)"
            )
            columns = tuple(row[1] for row in conn.execute("PRAGMA table_info(requests)"))
            if columns != _COLUMNS:
                raise sqlite3.DatabaseError(f"table requests has columns {columns}")
        except BaseException:
            conn.close()
            raise
        return conn

    def _quarantine(self, why: str) -> None:
        aside = self.path.with_name(f"{self.path.name}.damaged-{int(time.time() * 1000)}")
        log.warning("request log %s is damaged (%s): moved to %s", self.path, why, aside)
        for suffix in ("", "-wal", "-shm"):
            source = Path(f"{self.path}{suffix}")
            if source.exists():
                source.replace(Path(f"{aside}{suffix}"))
        self.recoveries += 1

    def _run(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.DatabaseError as exc:
                if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                    raise
                self._conn.close()
                self._quarantine(str(exc))
                self._conn = self._connect()
                return self._conn.execute(sql, params).fetchall()

    def write(self, record: RequestRecord) -> None:
        with self._lock:
            feedback = self._pending_feedback.pop(record.request_id, None)
        self._run(
            "INSERT OR REPLACE INTO requests VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                record.request_id, record.ts, record.user, record.variant, record.status,
                record.cache, record.latency_ms, record.ttft_ms, record.prompt_tokens,
                record.completion_tokens, record.top_cosine, ",".join(record.guardrails),
                feedback,
            ),
        )  # fmt: skip

    def find(self, request_id: str) -> dict[str, Any] | None:
        rows = self._run("SELECT * FROM requests WHERE request_id = ?", (request_id,))
        return dict(zip(_COLUMNS, rows[0], strict=True)) if rows else None

    def set_feedback(self, request_id: str, rating: int) -> None:
        """Attach a rating; kept aside if the request's own row has not been written yet."""
        with self._lock:
            self._run("UPDATE requests SET feedback = ? WHERE request_id = ?", (rating, request_id))
            if self.find(request_id) is None:  # written later by `write`, which picks it up
                self._pending_feedback[request_id] = rating

    def rows(self, since_ts: float = 0.0) -> list[dict[str, Any]]:
        rows = self._run("SELECT * FROM requests WHERE ts >= ? ORDER BY ts", (since_ts,))
        return [dict(zip(_COLUMNS, row, strict=True)) for row in rows]

    def close(self) -> None:
        with self._lock:
            self._conn.close()
