"""Small helpers shared by the integration tests (real servers on loopback ports)."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

from tabular_service.loadtest.server import free_port

__all__ = ["free_port", "wait_for_http"]


def wait_for_http(url: str, timeout: float = 30.0, status: int = 200, proc=None) -> float:
    """Poll `url` until it answers with `status`; return the seconds waited.

    Raises TimeoutError (with the last error seen) when it never does. When `proc` (a Popen) is
    given and exits early, fail at once instead of waiting out the timeout.
    """
    start = time.perf_counter()
    deadline = start + timeout
    last: object = None
    while time.perf_counter() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(
                f"server process exited with code {proc.returncode} before {url} was up"
            )
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == status:
                    return time.perf_counter() - start
                last = f"status {resp.status}"
        except urllib.error.HTTPError as exc:
            if exc.code == status:
                return time.perf_counter() - start
            last = f"status {exc.code}"
        except (urllib.error.URLError, ConnectionError, OSError) as exc:
            last = exc
        time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer {status} within {timeout:.0f}s (last: {last})")
