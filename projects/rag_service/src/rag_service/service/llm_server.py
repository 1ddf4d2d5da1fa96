"""The language model as a separate server process: llama.cpp's OpenAI-compatible server.

Why a process and not a library call inside the web server: a model that crashes, leaks or is
killed takes only its own process down; the service answers the request in flight with a clear
error, stays ready, and the supervisor starts a new server for the next request. It is also the
shape production takes: vLLM, SGLang, TensorRT-LLM and llama.cpp all serve the same
`/v1/chat/completions` API, so moving to a GPU engine is a URL (`RAG_LLM_URL`), not a rewrite.

`LlamaServer` starts `python -m llama_cpp.server` (llama-cpp-python's server extra) on a free
loopback port, waits until `/v1/models` answers, restarts it whenever it exits unexpectedly,
and stops it (SIGTERM, then SIGKILL) when the service stops. The child also gets
PR_SET_PDEATHSIG on Linux, so a service killed with SIGKILL does not leave a model running.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

log = logging.getLogger(__name__)

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
}


class LlmUnavailable(RuntimeError):
    """The language model server is not running and could not be (re)started in time."""


def free_loopback_port() -> int:
    """A port the kernel just handed out on 127.0.0.1 (closed again for the child to bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask Linux to SIGTERM this child when its parent dies (PR_SET_PDEATHSIG = 1).

    Linux means the parent *thread*: the children are started from the thread that builds the
    services and from the watchdog, which both live as long as the service (a child started
    from a short-lived thread would be killed when that thread ended)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)
    except OSError:
        pass


class LlamaServer:
    """A supervised `llama_cpp.server` child process serving one GGUF model on loopback."""

    def __init__(
        self,
        model_path: Path,
        log_path: Path,
        *,
        threads: int = 0,
        context_tokens: int = 2048,
        start_timeout_s: float = 60.0,
    ) -> None:
        self.model_path = Path(model_path)
        self.log_path = Path(log_path)
        self.threads = threads or len(os.sched_getaffinity(0))
        self.context_tokens = context_tokens
        self.start_timeout_s = start_timeout_s
        self.restarts = 0
        """Unexpected exits the supervisor recovered from (a metric)."""
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._stopping = False
        self._watchdog: threading.Thread | None = None
        self._ready = threading.Event()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    def _command(self) -> list[str]:
        return [
            sys.executable, "-m", "llama_cpp.server",
            "--model", str(self.model_path),
            "--model_alias", self.model_path.stem,
            "--host", "127.0.0.1", "--port", str(self.port),
            "--n_threads", str(self.threads), "--n_threads_batch", str(self.threads),
            "--n_ctx", str(self.context_tokens),
            # queue concurrent requests: the default lets each new request cut off the answer
            # being streamed (it ends early, often empty)
            "--interrupt_requests", "False",
            "--verbose", "False",
        ]  # fmt: skip

    def _spawn(self) -> None:
        """Start one child on a fresh port; its output goes to the log file (appended)."""
        self.port = free_loopback_port()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # unbuffered: the log shows what the server did up to the moment it was killed
        env = {**os.environ, **OFFLINE_ENV, "PYTHONUNBUFFERED": "1"}
        with self.log_path.open("ab") as log_file:
            self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
                self._command(),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=env,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,  # noqa: PLW1509
            )
        self._ready.clear()

    def _wait_ready(self, timeout_s: float) -> None:
        """Poll /v1/models until it answers; LlmUnavailable (with the log's tail) if not."""
        deadline = time.monotonic() + timeout_s
        process = self._process
        while time.monotonic() < deadline:
            if process is None or process.poll() is not None:
                raise LlmUnavailable(
                    f"the llama.cpp server exited during start-up (code "
                    f"{None if process is None else process.returncode}); log: {self.log_tail()}"
                )
            try:
                if httpx.get(f"{self.base_url}/v1/models", timeout=1.0).status_code == 200:
                    self._ready.set()
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise LlmUnavailable(
            f"the llama.cpp server did not answer within {timeout_s:.0f} s; log: {self.log_tail()}"
        )

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(text[-lines:]) or "(empty log)"

    def start(self) -> None:
        """Start the server, wait until it answers, and watch it from a daemon thread."""
        with self._lock:
            self._stopping = False
            self._spawn()
        self._wait_ready(self.start_timeout_s)
        if self._watchdog is None or not self._watchdog.is_alive():
            self._watchdog = threading.Thread(
                target=self._watch, name="llama-server-watchdog", daemon=True
            )
            self._watchdog.start()
        log.info("llama.cpp server ready on %s (pid %s)", self.base_url, self.pid)

    def _watch(self) -> None:
        """Restart the child whenever it exits while the service still wants it."""
        while True:
            time.sleep(0.1)
            with self._lock:
                if self._stopping:
                    return
                process = self._process
                if process is None or process.poll() is None:
                    continue
                code = process.returncode
                self._ready.clear()
                self.restarts += 1
                log.warning("llama.cpp server exited with %s; restarting it", code)
                self._spawn()
            try:
                self._wait_ready(self.start_timeout_s)
            except LlmUnavailable as exc:  # the next loop turn retries
                log.error("%s", exc)

    def wait_ready(self, timeout_s: float | None = None) -> bool:
        """Block until the server answers (True) or `timeout_s` passes (False)."""
        return self._ready.wait(self.start_timeout_s if timeout_s is None else timeout_s)

    async def ensure_ready(self, timeout_s: float | None = None) -> None:
        """Wait (without blocking the event loop) for a running server; LlmUnavailable if not.

        Polls both signals: between the child's death and the watchdog noticing it (up to
        0.1 s) the ready flag is still set while the process is gone.
        """
        deadline = time.monotonic() + (self.start_timeout_s if timeout_s is None else timeout_s)
        while not self.is_ready():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LlmUnavailable(
                    f"the language model server is not ready (restarting); log: {self.log_tail()}"
                )
            if not await asyncio.to_thread(self._ready.wait, min(remaining, 0.5)):
                continue
            await asyncio.sleep(0.05)

    def is_ready(self) -> bool:
        return self._ready.is_set() and self.pid is not None

    def stop(self, grace_s: float = 5.0) -> None:
        """Stop the child: SIGTERM, then SIGKILL after `grace_s`. Safe to call twice."""
        with self._lock:
            self._stopping = True
            process, self._process = self._process, None
            self._ready.clear()
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
