"""The source PostgreSQL 16: started and stopped by the code that needs it, with logical decoding.

We drive pgserver's bundled binaries (initdb, pg_ctl) directly instead of `pgserver.get_server`:
its cleanup only runs at normal interpreter exit, so a killed test would leave postgres running,
and it cannot pass server settings at start. Here `wal_level=logical` (needed by the CDC slot) and
`TimeZone=UTC` (so timestamptz text in the change stream is UTC) are given on the command line on
every start, which overrides whatever an existing data directory's configuration says.

Only a unix socket is opened (no TCP port), so parallel test servers never collide. As root,
postgres refuses to run; it then runs as the system user `pgserver` (pgserver's own convention).
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

log = logging.getLogger(__name__)

SYSTEM_USER = "pgserver"
DB_USER = "postgres"
DB_NAME = "postgres"
PORT = 5432
SERVER_SETTINGS = {
    "wal_level": "logical",
    "max_replication_slots": "8",
    "max_wal_senders": "8",
    "TimeZone": "UTC",
    "log_timezone": "UTC",
    # A lost slot is how CDC silently loses data: keep all WAL a slot still needs.
    "max_slot_wal_keep_size": "-1",
}


class DatabaseError(RuntimeError):
    """The source database could not be started or stopped (the message says which and why)."""


def bin_dir() -> Path:
    """pgserver's PostgreSQL 16 binaries (found without importing pgserver: it has side effects)."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise DatabaseError("pgserver is not installed: `pip install pgserver` (PostgreSQL 16)")
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"


def _as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _ensure_system_user() -> None:
    import pwd

    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(["useradd", "-s", "/bin/bash", SYSTEM_USER], check=True, capture_output=True)


def _open_path_for(path: Path) -> None:
    """Let the postgres user traverse every parent of `path` (pytest's tmp dirs are 0700)."""
    for parent in path.parents:
        mode = parent.stat().st_mode
        if mode & 0o011 != 0o011:
            parent.chmod(mode | 0o011)


class SourceDatabase:
    """A PostgreSQL server on `pgdata` (created if missing, reused if present).

    Use as a context manager: the server starts on enter and stops on exit, also when the body
    raised. `stop()`/`start()` may be called inside (tests stop the source mid-run).
    """

    def __init__(self, pgdata: str | os.PathLike[str]) -> None:
        self.pgdata = Path(pgdata).expanduser().resolve()
        self.log_file = self.pgdata / "server.log"
        self.socket_dir = self._socket_dir()
        self._started_here = False

    # ----------------------------------------------------------------------------- connection
    @property
    def dsn(self) -> str:
        """libpq key=value connection string (psycopg 3 and psycopg2 both take it)."""
        return f"host={self.socket_dir} port={PORT} user={DB_USER} dbname={DB_NAME}"

    @property
    def uri(self) -> str:
        """The same as a postgresql:// URI (for tools that want one, e.g. SQLAlchemy, Feast)."""
        return f"postgresql://{DB_USER}@/{DB_NAME}?host={quote(str(self.socket_dir))}&port={PORT}"

    def connect(self, **kwargs):
        """A psycopg 3 connection to the source."""
        import psycopg

        return psycopg.connect(self.dsn, **kwargs)

    # ----------------------------------------------------------------------------- lifecycle
    def __enter__(self) -> SourceDatabase:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Stop only a server this object started: another run on the same home keeps its own.
        if self._started_here:
            self.stop()

    def is_running(self) -> bool:
        result = self._pg_ctl(["status"], check=False)
        return result.returncode == 0

    def start(self) -> None:
        """Initialise the data directory if needed and start the server (no-op if running)."""
        self._prepare()
        if not (self.pgdata / "PG_VERSION").exists():
            self._run_as_owner(
                [
                    str(bin_dir() / "initdb"),
                    "-D",
                    str(self.pgdata),
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C",
                    "-U",
                    DB_USER,
                    # Skip fsyncing the ~1,000 template files (1.5 s): a fresh, empty cluster
                    # is cheap to recreate; the server itself still fsyncs its WAL.
                    "--no-sync",
                ],
                what="initdb",
            )
        if self.is_running():
            log.info("source database already running on %s", self.pgdata)
            return
        options = f"-h '' -k {self.socket_dir} -p {PORT} " + " ".join(
            f"-c {k}={v}" for k, v in SERVER_SETTINGS.items()
        )
        self._pg_ctl(["-w", "-t", "60", "-l", str(self.log_file), "-o", options, "start"])
        self._started_here = True
        log.info("source database started on %s (socket %s)", self.pgdata, self.socket_dir)

    def stop(self, mode: str = "fast") -> None:
        """Stop the server if it runs. `mode` is pg_ctl's: smart, fast or immediate."""
        if not (self.pgdata / "PG_VERSION").exists() or not self.is_running():
            return
        self._pg_ctl(["-w", "-t", "60", "-m", mode, "stop"])
        log.info("source database on %s stopped", self.pgdata)

    # ----------------------------------------------------------------------------- helpers
    def _socket_dir(self) -> Path:
        # A unix socket path is limited to ~107 bytes; deep pgdata paths get a short one in /tmp.
        if len(str(self.pgdata / ".s.PGSQL.5432")) < 100:
            return self.pgdata
        digest = hashlib.sha256(str(self.pgdata).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"mlops-pg-{digest}"

    def _prepare(self) -> None:
        self.pgdata.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        if _as_root():
            import pwd

            _ensure_system_user()
            entry = pwd.getpwnam(SYSTEM_USER)
            _open_path_for(self.pgdata)
            _open_path_for(bin_dir() / "postgres")
            for path in (self.pgdata, self.socket_dir):
                if path.stat().st_uid != entry.pw_uid:
                    shutil.chown(path, entry.pw_uid, entry.pw_gid)
        self.pgdata.chmod(0o700)
        if self.socket_dir != self.pgdata:
            self.socket_dir.chmod(0o777)

    def _pg_ctl(self, args: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(bin_dir() / "pg_ctl"), "-D", str(self.pgdata), *args]
        return self._run_as_owner(command, what=f"pg_ctl {args[-1]}", check=check)

    def _run_as_owner(
        self, command: list[str], what: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        if _as_root():
            command = ["runuser", "-u", SYSTEM_USER, "--", *command]
        # pg_ctl start leaves postgres holding inherited pipes: send output to files, not pipes.
        with tempfile.TemporaryFile("w+") as out:
            result = subprocess.run(
                command, stdout=out, stderr=subprocess.STDOUT, text=True, timeout=120
            )
            out.seek(0)
            output = out.read()
        if check and result.returncode != 0:
            tail = ""
            if self.log_file.exists():
                tail = "\n".join(self.log_file.read_text(errors="replace").splitlines()[-15:])
            raise DatabaseError(
                f"{what} failed for the source database at {self.pgdata} "
                f"(exit {result.returncode}): {output.strip()}\nserver log tail:\n{tail}"
            )
        return subprocess.CompletedProcess(command, result.returncode, output, "")
