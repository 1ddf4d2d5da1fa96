"""Start a server as a child process, time it to ready, and stop it (with its children).

Used by the CLI's `--start-service` and by the peer benchmark. The child runs in its own process
group so that stopping it also stops what it started (`mlflow models serve` execs uvicorn under a
shell); output goes to a log file, not a pipe, so a chatty server can never block on a full pipe.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path


class ServerStartError(RuntimeError):
    """The server exited or never became ready; the message says why (with its log's tail)."""


def child_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """`env` (default: ours) with this package's source root first on PYTHONPATH.

    The child must run the same tabular_service as this process, also when it is not installed
    (tests put src/ on sys.path in-process only) and also for `mlflow models serve`, which
    unpickles the predictor and so imports tabular_service too.
    """
    result = dict(os.environ if env is None else env)
    root = str(Path(__file__).resolve().parents[2])  # <root>/tabular_service/loadtest/server.py
    parts = [p for p in result.get("PYTHONPATH", "").split(os.pathsep) if p and p != root]
    result["PYTHONPATH"] = os.pathsep.join([root, *parts])
    return result


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on `host` right now (the OS picks it), for a server about to start."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def probe(url: str, timeout: float = 1.0) -> int | None:
    """HTTP status of a GET, or None when nothing answers."""
    return _get(url, timeout)[0]


def _get(url: str, timeout: float = 1.0) -> tuple[int | None, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (OSError, ValueError):
        return None, b""


def _failed_detail(body: bytes) -> str | None:
    """The reason when a readiness answer says the model load *failed* (not just: loading).

    Our service stays up after a failed load (so /readyz can say why); without this the wait
    would run into the start-up timeout instead of reporting the reason at once.
    """
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if isinstance(data, dict) and data.get("status") == "failed":
        return str(data.get("detail") or "model load failed")
    return None


class ManagedServer:
    """A child-process server: `start()` returns the seconds from spawn to ready; `stop()`."""

    def __init__(
        self,
        command: Sequence[str],
        ready_url: str,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        startup_timeout: float = 120.0,
        name: str = "server",
        log_path: Path | None = None,
    ) -> None:
        self.command = list(command)
        self.ready_url = ready_url
        self.env = dict(os.environ if env is None else env)
        self.cwd = cwd
        self.startup_timeout = startup_timeout
        self.name = name
        self.proc: subprocess.Popen[bytes] | None = None
        self._temp_log = log_path is None  # a temporary log is made by start(), removed by stop()
        self.log_path: Path | None = log_path
        self.start_to_ready_s: float | None = None

    def log_tail(self, lines: int = 25) -> str:
        if self.log_path is None:
            return ""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def start(self) -> float:
        """Spawn the command and poll `ready_url` until it answers 200; return the seconds."""
        if probe(self.ready_url, 0.5) is not None:
            raise ServerStartError(f"something already answers at {self.ready_url}; stop it first")
        if self._temp_log:
            fd, log = tempfile.mkstemp(prefix=f"{self.name}-", suffix=".log")
            os.close(fd)
            self.log_path = Path(log)
        with self.log_path.open("wb") as log:
            t0 = time.perf_counter()
            self.proc = subprocess.Popen(
                self.command,
                env=self.env,
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        try:
            return self._wait_ready(t0)
        except BaseException:  # also Ctrl-C: the child leads its own group and would outlive us
            self.stop()
            raise

    def _wait_ready(self, t0: float) -> float:
        assert self.proc is not None
        deadline = t0 + self.startup_timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                message = (
                    f"{self.name} exited with code {code} before it was ready.\n"
                    f"command: {' '.join(self.command)}\n--- log tail ---\n{self.log_tail()}"
                )
                raise ServerStartError(message)
            status, body = _get(self.ready_url)
            if status == 200:
                self.start_to_ready_s = time.perf_counter() - t0
                return self.start_to_ready_s
            failed = _failed_detail(body) if status is not None else None
            if failed:
                raise ServerStartError(f"{self.name} is up but not ready: {failed}")
            time.sleep(0.02)
        message = (
            f"{self.name} not ready at {self.ready_url} after {self.startup_timeout:.0f}s.\n"
            f"--- log tail ---\n{self.log_tail()}"
        )
        raise ServerStartError(message)

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM to the child's process group, SIGKILL after `grace` seconds; drop a temp log."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            self._terminate(proc, grace)
        finally:
            if self._temp_log and self.log_path is not None:
                self.log_path.unlink(missing_ok=True)

    @staticmethod
    def _terminate(proc: subprocess.Popen[bytes], grace: float) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)  # the group this child leads (start_new_session)
            except ProcessLookupError:
                break
            if _group_gone(proc, grace):
                break
        proc.wait(5)

    def __enter__(self) -> ManagedServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _group_gone(proc: subprocess.Popen[bytes], within: float) -> bool:
    """Wait until the child and every other member of its process group have exited."""
    deadline = time.perf_counter() + within
    while time.perf_counter() < deadline:
        proc.poll()  # reap the leader so it does not linger as a zombie group member
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False
