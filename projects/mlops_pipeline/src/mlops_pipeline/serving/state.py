"""What the process is doing: loading, ready (with a scorer) or failed (with the reason).

The model and the feature store load in a background thread so the process is live
(/healthz) at once and ready (/readyz) when it can score; a load failure keeps it live but
never ready, with the reason in /readyz for whoever is looking.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Literal

from mlops_pipeline.serving.batcher import MicroBatcher
from mlops_pipeline.serving.scoring import Scorer

log = logging.getLogger(__name__)
Status = Literal["loading", "ready", "failed"]


class ServiceState:
    def __init__(self) -> None:
        self.status: Status = "loading"
        self.detail = "loading the model and the feature store"
        self.scorer: Scorer | None = None
        self.batcher: MicroBatcher | None = None
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()

    def set_ready(self, scorer: Scorer) -> None:
        settings = scorer.settings
        self.batcher = MicroBatcher(
            scorer.score,
            settings.batch_size,
            settings.batch_wait_ms / 1000.0,
            settings.request_timeout_s,
        )
        self.scorer = scorer
        self.status = "ready"
        self.detail = ""

    def load_in_background(
        self, load: Callable[[], Scorer], retry_s: tuple[float, float] = (1.0, 30.0)
    ) -> None:
        """Load until it works: the registry or the online store may start after us (a pod
        beside its database). Each failure shows in /readyz with the next attempt's delay;
        the delay doubles from retry_s[0] up to retry_s[1]."""

        def run() -> None:
            delay = retry_s[0]
            while not self._closed.is_set():
                try:
                    self.set_ready(load())
                    return
                except Exception as error:  # any failure must show in /readyz, not kill us
                    log.warning("loading failed, retrying in %.0f s: %s", delay, error)
                    self.status = "failed"
                    self.detail = f"{type(error).__name__}: {error} (retrying in {delay:g} s)"
                self._closed.wait(delay)
                delay = min(delay * 2, retry_s[1])

        self._thread = threading.Thread(target=run, name="load-model", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop retrying and release the scoring thread."""
        self._closed.set()
        if self.batcher is not None:
            self.batcher.close()

    def wait_settled(self, timeout: float) -> None:
        """Wait until the first load attempt has finished, either way (tests)."""
        deadline = time.monotonic() + timeout
        while self.status == "loading" and time.monotonic() < deadline:
            time.sleep(0.05)
