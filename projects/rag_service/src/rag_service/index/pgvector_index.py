"""pgvector (HNSW or IVFFlat) behind `VectorIndex`, and an embedded PostgreSQL to run it on.

Keeping vectors in PostgreSQL buys transactions, backups and joins with the rest of the data; it
costs a network hop per query and a server that can go away. So this class:

- bulk-loads with binary COPY (one transaction: all rows or none) and builds the ANN index after
  the first load, because building over the data is much faster than growing the index row by
  row; later adds are maintained incrementally by PostgreSQL;
- builds with `maintenance_work_mem` raised (default 1GB: an HNSW graph that outgrows it is
  built far more slowly, pgvector says so in a NOTICE) and `max_parallel_maintenance_workers`
  = cores - 1 (the leader builds too, so 2 cores give 2 builders);
- uses cosine distance (`vector_cosine_ops`, `<=>`) and reports score = 1 - distance, which is
  the inner product for L2-normalised vectors, the same score FAISS gives;
- pins the search knobs (`hnsw.ef_search`, `ivfflat.probes`) on the session before each query
  batch (sent only when they change) and turns `enable_seqscan` off so the ANN index is what is
  measured, not a sequential scan the planner might prefer on a small table;
- answers a lost server with one reconnect after a backoff, then `SearchUnavailable`; a batch is
  all-or-nothing, so a server dying mid-batch never yields partial results.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self, TypeVar

import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from psycopg import sql

from rag_service.fileio import replace_file
from rag_service.index.base import (
    IndexCorrupt,
    IndexSettings,
    SearchResults,
    SearchUnavailable,
    as_matrix,
    check_delete_ids,
    check_int,
    check_k,
    check_new_ids,
    empty_index_error,
    unknown_ids_error,
)

log = logging.getLogger(__name__)

FORMAT = "rag-pgvector/1"
DESCRIPTOR = "pgvector.json"
KINDS = ("hnsw", "ivfflat")
DEFAULTS: dict[str, dict[str, int]] = {
    # pgvector's own build defaults; ef_search above its default 40 for recall at k = 10.
    "hnsw": {"m": 16, "ef_construction": 64, "ef_search": 100},
    # lists = 0: rows / 1000 at build time (pgvector's advice up to 1M rows, sqrt(rows) above).
    "ivfflat": {"lists": 0, "probes": 10},
}
HNSW_MAX_EF_SEARCH = 1000
"""pgvector caps hnsw.ef_search at 1000, and an HNSW scan returns at most ef_search rows."""
_TABLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,39}$")

T = TypeVar("T")


class PgVectorIndex(IndexSettings):
    """Vectors in a PostgreSQL table `table(id text primary key, embedding vector(dim))`."""

    ENGINE = "pgvector"
    KINDS = KINDS
    DEFAULTS = DEFAULTS
    PARAM_MINIMUM = 0  # lists = 0: chosen from the row count at build time

    def __init__(
        self,
        dsn: str,
        table: str,
        dim: int,
        kind: str = "hnsw",
        *,
        maintenance_work_mem: str = "1GB",
        build_workers: int | None = None,
        retry_backoff_s: float = 0.5,
        connect_timeout_s: int = 5,
        **params: int,
    ) -> None:
        self._init_settings(kind, dim, params)
        if not _TABLE_NAME.match(table):
            raise ValueError(
                f"table name {table!r} must be lower-case letters, digits and _ (max 40), "
                "starting with a letter or _"
            )
        self._dsn = dsn
        self._table = table
        self._check_search_params()
        self._lists_auto = kind == "ivfflat" and self._params["lists"] == 0
        """lists chosen from the row count: the index is rebuilt when the rows outgrow it."""
        self._maintenance_work_mem = maintenance_work_mem
        self._build_workers = (
            max(0, (os.cpu_count() or 1) - 1) if build_workers is None else build_workers
        )
        self._backoff = retry_backoff_s
        self._connect_timeout = connect_timeout_s
        self._conn: psycopg.Connection[Any] | None = None
        self._session: dict[str, str] = {}
        self.timings: dict[str, float] = {}
        """Seconds of the last COPY (`copy_s`) and ANN index build (`index_build_s`)."""
        self._call("set-up", self._set_up)

    # ---- properties ---------------------------------------------------------------------

    @property
    def table(self) -> str:
        return self._table

    @property
    def index_name(self) -> str:
        return f"{self._table}_{self._kind}_idx"

    @property
    def build_settings(self) -> dict[str, str | int]:
        """The session settings the ANN index is built with."""
        return {
            "maintenance_work_mem": self._maintenance_work_mem,
            "max_parallel_maintenance_workers": self._build_workers,
        }

    @property
    def ef_search(self) -> int:
        """HNSW candidate-list size per query (hnsw.ef_search): the recall/latency dial."""
        self._require_kind("hnsw", "ef_search")
        return self._params["ef_search"]

    @ef_search.setter
    def ef_search(self, value: int) -> None:
        self._require_kind("hnsw", "ef_search")
        self._params["ef_search"] = value
        self._check_search_params()

    @property
    def probes(self) -> int:
        """IVFFlat lists scanned per query (ivfflat.probes): the recall/latency dial."""
        self._require_kind("ivfflat", "probes")
        return self._params["probes"]

    @probes.setter
    def probes(self, value: int) -> None:
        self._require_kind("ivfflat", "probes")
        self._params["probes"] = value
        self._check_search_params()

    def _check_search_params(self) -> None:
        name = "ef_search" if self._kind == "hnsw" else "probes"
        value = self._params[name] = check_int(name, self._params[name])
        if self._kind == "hnsw" and value > HNSW_MAX_EF_SEARCH:
            raise ValueError(f"pgvector caps ef_search at {HNSW_MAX_EF_SEARCH}, got {value}")

    def __repr__(self) -> str:
        return f"PgVectorIndex({self._table!r}, {self._kind}, dim={self._dim}, {self._params})"

    # ---- connection and retry -----------------------------------------------------------

    def _connection(self) -> psycopg.Connection[Any]:
        """The open connection, or a new one (after a failure the old one is gone)."""
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._drop_connection()
            conn = psycopg.connect(
                self._dsn, autocommit=True, connect_timeout=self._connect_timeout
            )
            try:
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
                register_vector(conn)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None
        self._session = {}

    def _call(self, what: str, operation: Callable[[psycopg.Connection[Any]], T]) -> T:
        """Run `operation`; if the server is unreachable, reconnect once after a backoff.

        A retry is safe for every operation here: reads are idempotent and each write is one
        transaction that a lost connection rolls back, and the retry re-checks its inputs
        (a duplicate id from a commit whose acknowledgement was lost is reported, not doubled).
        """
        failure: Exception | None = None
        for attempt in range(2):
            if attempt:
                time.sleep(self._backoff)
            try:
                return operation(self._connection())
            except (psycopg.OperationalError, psycopg.InterfaceError) as err:
                failure = err
                self._drop_connection()
        raise SearchUnavailable(
            f"PostgreSQL at {_where(self._dsn)} did not answer the {what} on table "
            f"{self._table!r} after 1 retry ({type(failure).__name__}: {failure}); "
            "nothing was returned or changed"
        ) from failure

    def close(self) -> None:
        """Close the connection (the data stays in PostgreSQL)."""
        self._drop_connection()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- schema -------------------------------------------------------------------------

    def _set_up(self, conn: psycopg.Connection[Any]) -> None:
        """Create the table, or check that an existing one fits this index."""
        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (id text PRIMARY KEY, embedding vector({}) NOT NULL)"
            ).format(sql.Identifier(self._table), sql.Literal(self._dim))
        )
        row = conn.execute(
            "SELECT atttypmod FROM pg_attribute WHERE attrelid = %s::regclass "
            "AND attname = 'embedding'",
            (self._table,),
        ).fetchone()
        if row is None or row[0] != self._dim:
            found = "no embedding column" if row is None else f"vector({row[0]})"
            raise ValueError(
                f"dimension mismatch: table {self._table!r} has {found}, this index is "
                f"vector({self._dim}); use another table or drop this one"
            )
        for name, method in self._ann_indexes(conn):
            if method != self._kind:
                raise ValueError(
                    f"table {self._table!r} already has a {method} index ({name}); one ANN "
                    f"index per table - use another table for {self._kind}"
                )

    def _ann_indexes(self, conn: psycopg.Connection[Any]) -> list[tuple[str, str]]:
        return conn.execute(
            "SELECT c.relname, am.amname FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam "
            "WHERE i.indrelid = %s::regclass AND am.amname IN ('hnsw', 'ivfflat')",
            (self._table,),
        ).fetchall()

    def build_index(self) -> None:
        """Build the ANN index now if the table has rows and no index yet (add() calls it)."""
        self._call("index build", self._build_index)

    def _build_index(self, conn: psycopg.Connection[Any]) -> None:
        """Create the ANN index; with automatic IVFFlat lists, rebuild it once the table has
        grown to twice the lists its centroids were trained for (k-means ran on the rows
        present at the first build, so a first add of 500 rows would otherwise leave 100k rows
        in one list). Doubling keeps the total rebuild work within twice one final build."""
        existing = self._ann_indexes(conn)
        rows = self._count(conn)
        if rows == 0:
            return
        lists = 0
        if self._kind == "ivfflat":
            lists = self._params["lists"] or _auto_lists(rows)
        if existing:
            built = self._built_lists(conn, existing[0][0]) if self._lists_auto else 0
            if not (self._lists_auto and _auto_lists(rows) >= 2 * built):
                if built:
                    self._params["lists"] = built
                return
            log.info(
                "rebuilding %s's IVFFlat index: %d rows outgrew %d lists, now %d",
                self._table, rows, built, _auto_lists(rows),
            )  # fmt: skip
            lists = _auto_lists(rows)
        table, index = sql.Identifier(self._table), sql.Identifier(self.index_name)
        if self._kind == "hnsw":
            options = sql.SQL("m = {}, ef_construction = {}").format(
                sql.Literal(self._params["m"]), sql.Literal(self._params["ef_construction"])
            )
        else:
            self._params["lists"] = lists  # what was built, not "auto", is what save() records
            options = sql.SQL("lists = {}").format(sql.Literal(lists))
        started = time.perf_counter()
        with conn.transaction():
            for name, _ in existing:
                conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
            conn.execute(
                "SELECT set_config('maintenance_work_mem', %s, true), "
                "set_config('max_parallel_maintenance_workers', %s, true)",
                (self._maintenance_work_mem, str(self._build_workers)),
            )
            conn.execute(
                sql.SQL(
                    "CREATE INDEX {} ON {} USING {} (embedding vector_cosine_ops) WITH ({})"
                ).format(index, table, sql.SQL(self._kind), options)
            )
        self.timings["index_build_s"] = time.perf_counter() - started

    def _built_lists(self, conn: psycopg.Connection[Any], index_name: str) -> int:
        """The `lists` an existing IVFFlat index was built with (from its reloptions)."""
        row = conn.execute(
            "SELECT reloptions FROM pg_class WHERE relname = %s", (index_name,)
        ).fetchone()
        for option in row[0] if row and row[0] else []:
            key, _, value = option.partition("=")
            if key == "lists":
                return int(value)
        return 1

    # ---- writes -------------------------------------------------------------------------

    def add(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        """Insert rows by binary COPY in one transaction, then build the ANN index if missing."""
        x = as_matrix(vectors, self._dim, "vectors")
        ids = check_new_ids(ids, x.shape[0])
        if not ids:
            return
        self._call("add", lambda conn: self._copy_rows(conn, ids, x))
        self.build_index()

    def _copy_rows(self, conn: psycopg.Connection[Any], ids: list[str], x: np.ndarray) -> None:
        table = sql.Identifier(self._table)
        started = time.perf_counter()
        with conn.transaction():
            present = conn.execute(
                sql.SQL("SELECT id FROM {} WHERE id = ANY(%s)").format(table), (ids,)
            ).fetchall()
            check_new_ids(ids, x.shape[0], (row[0] for row in present))
            copy_sql = sql.SQL("COPY {} (id, embedding) FROM STDIN WITH (FORMAT BINARY)")
            with conn.cursor() as cur, cur.copy(copy_sql.format(table)) as copy:
                copy.set_types(["text", "vector"])
                for item, vector in zip(ids, x, strict=True):
                    copy.write_row((item, vector))
        self.timings["copy_s"] = time.perf_counter() - started

    def delete(self, ids: Sequence[str]) -> None:
        """Delete ids in one transaction (all must exist, else KeyError and nothing changes)."""
        ids = check_delete_ids(ids)
        if ids:
            self._call("delete", lambda conn: self._delete_rows(conn, ids))

    def _delete_rows(self, conn: psycopg.Connection[Any], ids: list[str]) -> None:
        table = sql.Identifier(self._table)
        with conn.transaction():
            found = {
                row[0]
                for row in conn.execute(
                    sql.SQL("SELECT id FROM {} WHERE id = ANY(%s) FOR UPDATE").format(table),
                    (ids,),
                )
            }
            unknown = [item for item in ids if item not in found]
            if unknown:
                raise unknown_ids_error(unknown)
            conn.execute(sql.SQL("DELETE FROM {} WHERE id = ANY(%s)").format(table), (ids,))

    def drop(self) -> None:
        """Drop the table and its indexes (the benchmark cleans up with it)."""
        self._call(
            "drop",
            lambda conn: conn.execute(
                sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(self._table))
            ),
        )

    # ---- reads --------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._call("count", self._count)

    def _count(self, conn: psycopg.Connection[Any]) -> int:
        row = conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(self._table))
        ).fetchone()
        return int(row[0]) if row else 0

    def search(self, queries: np.ndarray, k: int) -> SearchResults:
        """Top-k (id, 1 - cosine distance) per query, best first; all queries or an error."""
        k = check_k(k)
        q = as_matrix(queries, self._dim, "queries")
        if self._kind == "hnsw" and k > HNSW_MAX_EF_SEARCH:
            raise ValueError(
                f"k={k}: a pgvector HNSW scan returns at most ef_search <= "
                f"{HNSW_MAX_EF_SEARCH} rows"
            )
        if q.shape[0] == 0:
            return []
        results = self._call("search", lambda conn: self._search(conn, q, k))
        if not any(results) and len(self) == 0:
            raise empty_index_error()
        return results

    def _search(self, conn: psycopg.Connection[Any], q: np.ndarray, k: int) -> SearchResults:
        self._pin_session(conn, k)
        query = sql.SQL(
            "SELECT id, 1 - (embedding <=> %(q)b) FROM {} ORDER BY embedding <=> %(q)b LIMIT %(k)s"
        ).format(sql.Identifier(self._table))
        with conn.cursor() as cur:
            if q.shape[0] == 1:
                cur.execute(query, {"q": q[0], "k": k})
                return [[(item, float(score)) for item, score in cur.fetchall()]]
            # One pipeline for the batch: one round trip, and an error anywhere fails it all.
            cur.executemany(query, [{"q": vector, "k": k} for vector in q], returning=True)
            results: SearchResults = []
            while True:
                results.append([(item, float(score)) for item, score in cur.fetchall()])
                if not cur.nextset():
                    break
        return results

    def _pin_session(self, conn: psycopg.Connection[Any], k: int) -> None:
        """Set the search knobs on this session, sending only the ones that changed."""
        if self._kind == "hnsw":
            wanted = {"hnsw.ef_search": str(max(self._params["ef_search"], k))}
        else:
            wanted = {"ivfflat.probes": str(self._params["probes"])}
        wanted["enable_seqscan"] = "off"
        for name, value in wanted.items():
            if self._session.get(name) != value:
                conn.execute("SELECT set_config(%s, %s, false)", (name, value))
                self._session[name] = value

    def explain(self, query: np.ndarray, k: int = 10) -> str:
        """The plan of one search, to check that the ANN index (not a seq scan) answers it."""
        q = as_matrix(query, self._dim, "query")

        def plan(conn: psycopg.Connection[Any]) -> str:
            self._pin_session(conn, k)
            statement = sql.SQL(
                "EXPLAIN SELECT id FROM {} ORDER BY embedding <=> %(q)b LIMIT %(k)s"
            ).format(sql.Identifier(self._table))
            rows = conn.execute(statement, {"q": q[0], "k": k}).fetchall()
            return "\n".join(row[0] for row in rows)

        return self._call("explain", plan)

    def size_bytes(self) -> dict[str, int]:
        """On-disk bytes of the table (heap) and of the ANN index (pg_relation_size each)."""

        def sizes(conn: psycopg.Connection[Any]) -> dict[str, int]:
            table = conn.execute("SELECT pg_relation_size(%s::regclass)", (self._table,))
            table_bytes = int(table.fetchone()[0])  # type: ignore[index]
            index_bytes = 0
            for name, _ in self._ann_indexes(conn):
                row = conn.execute("SELECT pg_relation_size(%s::regclass)", (name,)).fetchone()
                index_bytes += int(row[0]) if row else 0
            return {"table": table_bytes, "index": index_bytes}

        return self._call("size query", sizes)

    # ---- persistence --------------------------------------------------------------------

    def save(self, folder: Path | str) -> None:
        """Write a descriptor (table, kind, parameters): the vectors themselves live in PostgreSQL.

        The DSN is stored without its password; pass `dsn=` to `load` when one is needed.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        descriptor = {
            "format": FORMAT,
            "dsn": _without_password(self._dsn),
            "table": self._table,
            "dim": self._dim,
            "kind": self._kind,
            "params": self._params,
            "lists_auto": self._lists_auto,
        }
        replace_file(folder / DESCRIPTOR, json.dumps(descriptor, indent=2).encode())

    @classmethod
    def load(cls, folder: Path | str, dsn: str | None = None) -> Self:
        """Reconnect to a saved index's table (optionally through another DSN)."""
        path = Path(folder) / DESCRIPTOR
        if not path.is_file():
            raise FileNotFoundError(f"no saved pgvector index in {folder}: {DESCRIPTOR} missing")
        rebuild = (
            f"delete {path} and create PgVectorIndex(dsn, table, dim, kind) again; the vectors "
            "are in PostgreSQL (if the table is gone too, add() them again from the embeddings)"
        )
        try:
            descriptor = json.loads(path.read_bytes())
            if descriptor["format"] != FORMAT:
                raise ValueError(f"format {descriptor['format']!r}, expected {FORMAT!r}")
            index = cls(
                dsn or descriptor["dsn"],
                descriptor["table"],
                descriptor["dim"],
                descriptor["kind"],
                **descriptor["params"],
            )
            index._lists_auto = bool(descriptor.get("lists_auto", False))
            return index
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as err:
            if isinstance(err, ValueError) and "dimension mismatch" in str(err):
                raise
            raise IndexCorrupt(path, f"unreadable descriptor ({err})", rebuild) from err


def _auto_lists(rows: int) -> int:
    """pgvector's advice for IVFFlat lists: rows / 1000 up to 1M rows, sqrt(rows) beyond."""
    return max(1, rows // 1000) if rows <= 1_000_000 else int(math.sqrt(rows))


def _where(dsn: str) -> str:
    """host:port/dbname of a DSN, never its password (it ends up in logs and reports)."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "<unparsable DSN>"
    return f"{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"


def _without_password(dsn: str) -> str:
    info = psycopg.conninfo.conninfo_to_dict(dsn)
    info.pop("password", None)
    return psycopg.conninfo.make_conninfo(**info)


# ---- embedded PostgreSQL ------------------------------------------------------------------


class EmbeddedPostgres:
    """A pgserver-managed PostgreSQL 16 (with pgvector) in a folder: for tests, bench and CLI.

    `stop()` and `start()` exist so tests can take the server away under a live index; the
    data directory and the socket path (hence the DSN) survive a restart.
    """

    def __init__(self, folder: Path, server: Any) -> None:
        self.folder = folder
        self.server = server

    @property
    def data_dir(self) -> Path:
        return Path(self.server.pgdata)

    @property
    def dsn(self) -> str:
        return str(self.server.get_uri())

    def is_running(self) -> bool:
        from pgserver.utils import PostmasterInfo

        info = PostmasterInfo.read_from_pgdata(self.data_dir)
        return info is not None and info.is_running()

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (fast: sessions are terminated, as in a failover or restart)."""
        import pgserver

        if self.is_running():
            self.let_server_user_in()
            pgserver.pg_ctl(
                ["-w", "-m", mode, "stop"], pgdata=self.data_dir, user=self.server.system_user
            )

    def start(self) -> None:
        """Start it again (same data, same DSN); a no-op when it runs."""
        if not self.is_running():
            self.let_server_user_in()
            self.server.ensure_postgres_running()

    def let_server_user_in(self) -> None:
        """As root, postgres and pg_ctl run as the user `pgserver`, which must traverse every
        folder above the data directory. pgserver opens them up once, at start; anything that
        tightens them later (pytest resets /tmp/pytest-of-<user> to 0700 each session) would
        make pg_ctl fail, so they are opened again before each pg_ctl call."""
        if self.server.system_user is not None:
            from pgserver.utils import ensure_prefix_permissions

            ensure_prefix_permissions(self.data_dir)

    def configure(self, settings: Mapping[str, str]) -> None:
        """ALTER SYSTEM each setting, then reload, or restart if one needs it (shared_buffers)."""
        if not settings:
            return
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            for name, value in settings.items():
                conn.execute(
                    sql.SQL("ALTER SYSTEM SET {} = {}").format(
                        sql.Identifier(name), sql.Literal(str(value))
                    )
                )
            conn.execute("SELECT pg_reload_conf()")
            needs_restart = conn.execute(
                "SELECT name FROM pg_settings WHERE context = 'postmaster' AND name = ANY(%s)",
                (list(settings),),
            ).fetchall()
        if needs_restart:
            self.stop()
            self.start()


@contextmanager
def embedded_postgres(
    folder: Path | str, settings: Mapping[str, str] | None = None
) -> Iterator[EmbeddedPostgres]:
    """Start PostgreSQL in `folder`/pgdata with pgvector enabled; always stop it on exit.

    pgserver's cleanup_mode="stop" alone acts only at interpreter exit; the `finally` here stops
    the server even when the block fails, so no test leaves a postgres behind. `settings` are
    applied with ALTER SYSTEM (a restart when one needs it, e.g. shared_buffers).
    """
    import pgserver

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(folder / "pgdata", cleanup_mode="stop")
    postgres = EmbeddedPostgres(folder, server)
    try:
        with psycopg.connect(postgres.dsn, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        postgres.configure(settings or {})
        yield postgres
    finally:
        postgres.let_server_user_in()
        try:
            server.cleanup()  # pgserver's own stop (and bookkeeping of who uses the server)
        finally:
            postgres.stop()  # a no-op unless pgserver left it running
