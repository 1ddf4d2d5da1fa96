"""Child processes of a local rollout: the two prediction services, nginx, Prometheus.

Each runs in its own session (process group), logs to a file and is stopped by whoever started
it: SIGTERM, a grace period, then SIGKILL to the whole group, so no worker outlives a failed
test. `kill()` is the SIGKILL a crash test needs (the canary "dies" mid-rollout).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

__all__ = [
    "ManagedProcess",
    "ProcessFailed",
    "ServiceProcess",
    "free_port",
    "launch_service",
    "service_argv",
    "start_service",
    "wait_http",
    "wait_ready",
]


class ProcessFailed(RuntimeError):
    """A child process exited, or never became ready; the message has its log's tail."""


def free_port() -> int:
    """A loopback TCP port free right now (the OS picks; a race with other binders is possible,
    so starters that can detect 'address in use' retry)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ManagedProcess:
    """A started child: its Popen, a name for messages and the file its output goes to."""

    popen: subprocess.Popen[bytes]
    name: str
    log_path: Path
    _log: IO[bytes] | None = field(default=None, repr=False)

    @classmethod
    def start(
        cls,
        argv: Sequence[str],
        *,
        name: str,
        log_path: str | os.PathLike[str],
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
    ) -> ManagedProcess:
        log_path = Path(log_path)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        try:
            popen = subprocess.Popen(
                list(argv),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,
            )
        except BaseException:
            log.close()
            raise
        return cls(popen=popen, name=name, log_path=log_path, _log=log)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def returncode(self) -> int | None:
        return self.popen.poll()

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def _signal_group(self, sig: int) -> None:
        # The child leads its own session, so its group id is its pid: this reaches its
        # workers (nginx, uvicorn) and nothing else.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, sig)

    def stop(self, timeout_s: float = 10.0) -> int | None:
        """SIGTERM the group, wait, then SIGKILL; idempotent. Returns the exit status."""
        if self.alive():
            self._signal_group(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.popen.wait(timeout=timeout_s)
        # The leader may be gone while a worker lingers: make sure the group is empty.
        self._signal_group(signal.SIGKILL)
        if self._log is not None:
            self._log.close()
            self._log = None
        return self.popen.returncode

    def kill(self) -> None:
        """SIGKILL the group now (a crash, not a shutdown) and reap the leader."""
        self._signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=10)


def wait_http(
    url: str,
    timeout_s: float,
    *,
    process: ManagedProcess | None = None,
    poll_s: float = 0.1,
) -> None:
    """Poll `url` until it answers 200; fail early (with the log) if `process` exits."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        if process is not None and not process.alive():
            raise ProcessFailed(
                f"{process.name} exited with {process.returncode()} before {url} was ready:\n"
                f"{process.log_tail()}"
            )
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
                last = f"HTTP {response.status}"
        except urllib.error.HTTPError as error:
            last = f"HTTP {error.code}: {error.read()[:200]!r}"
        except (urllib.error.URLError, OSError) as error:
            last = str(error)
        time.sleep(poll_s)
    tail = f"\n{process.log_tail()}" if process is not None else ""
    raise ProcessFailed(f"{url} not ready within {timeout_s:.0f} s (last: {last}){tail}")


@dataclass
class ServiceProcess:
    """A prediction service (`python -m mlops_pipeline.serving`) serving one alias."""

    process: ManagedProcess
    alias: str
    role: str
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        """host:port, as nginx upstreams and Prometheus targets want it."""
        return f"127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.process.alive()

    def stop(self) -> None:
        self.process.stop()

    def kill(self) -> None:
        self.process.kill()


def service_argv(
    home: str | os.PathLike[str],
    alias: str,
    port: int,
    *,
    clock: str | None = None,
    as_of: str | None = None,
    trace_file: str | os.PathLike[str] | None = None,
    python: str = sys.executable,
) -> list[str]:
    """The command line of one service process (the service's CLI contract).

    The role is not an argument: the service does not know whether it is stable or canary
    (Prometheus' target label says so), so the same process can be promoted without a restart.
    """
    argv = [python, "-m", "mlops_pipeline.serving", "--home", str(home), "--alias", alias]
    argv += ["--port", str(port)]
    if clock is not None:
        argv += ["--clock", clock]
    if as_of is not None:
        argv += ["--as-of", as_of]
    if trace_file is not None:
        argv += ["--trace-file", str(trace_file)]
    return argv


def launch_service(
    home: str | os.PathLike[str],
    alias: str,
    *,
    role: str,
    log_dir: str | os.PathLike[str],
    port: int | None = None,
    clock: str | None = "schedule",
    as_of: str | None = None,
    trace_file: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> ServiceProcess:
    """Start the service for `alias` without waiting (several load in parallel); then call
    `wait_ready`. `clock="schedule"` answers 2013's flights as of their prediction time;
    `clock="fixed"` with `as_of` freezes the clock; None keeps the service's default (wall).
    `role` only names the process and its log: the service itself does not know it."""
    port = port or free_port()
    argv = service_argv(home, alias, port, clock=clock, as_of=as_of, trace_file=trace_file)
    child_env = dict(os.environ if env is None else env)
    child_env.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    child_env.setdefault("DO_NOT_TRACK", "true")
    child_env.setdefault("FEAST_USAGE", "False")
    child_env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    process = ManagedProcess.start(
        argv,
        name=f"service {alias} ({role}) on :{port}",
        log_path=Path(log_dir) / f"service-{role}-{port}.log",
        env=child_env,
    )
    return ServiceProcess(process=process, alias=alias, role=role, port=port)


def wait_ready(services: Sequence[ServiceProcess], timeout_s: float = 120.0) -> None:
    """Wait for GET /readyz = 200 on every service; on failure stop them all and raise."""
    deadline = time.monotonic() + timeout_s
    try:
        for service in services:
            remaining = max(deadline - time.monotonic(), 0.1)
            wait_http(f"{service.url}/readyz", remaining, process=service.process)
    except BaseException:
        for service in services:
            service.stop()
        raise


def start_service(
    home: str | os.PathLike[str],
    alias: str,
    *,
    ready_timeout_s: float = 120.0,
    **options: Any,
) -> ServiceProcess:
    """`launch_service` and wait until it is ready (model and online store loaded); on failure
    the process is stopped and the error carries its log."""
    service = launch_service(home, alias, **options)
    wait_ready([service], ready_timeout_s)
    return service
