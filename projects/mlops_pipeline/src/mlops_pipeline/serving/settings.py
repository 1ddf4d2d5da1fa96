"""The service's settings: where the pipeline home is, which model alias to serve, which clock.

Read from `MLOPS_*` environment variables (what a Kubernetes ConfigMap sets) or given directly
(tests, the CLI). Settings are validated here so a typo fails at start-up with the variable's
name, not at the first request.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

from mlops_pipeline.paths import Paths

Clock = Literal["wall", "schedule", "fixed"]
CLOCKS: tuple[Clock, ...] = ("wall", "schedule", "fixed")


@dataclass(frozen=True)
class ServingSettings:
    """Everything the service needs to start; the defaults serve the champion as of now."""

    home: Path = field(default_factory=lambda: Paths.at().home)
    model_name: str = "flight-delay"
    alias: str = "champion"
    clock: Clock = "wall"
    """"wall": features are judged as of now (production). "schedule": as of the flight's
    scheduled departure minus the prediction lead. "fixed": as of `as_of`, a frozen clock for
    replaying a moment of 2013 against an online store materialised up to it."""
    as_of: datetime | None = None
    max_batch: int = 256
    batch_size: int = 32
    """Most single-flight requests scored together (1 turns micro-batching off)."""
    batch_wait_ms: float = 1.0
    """Longest a request waits for others to join its batch."""
    request_timeout_s: float = 2.0
    """Deadline for the lookup and the model: after it the request gets a 503 (a hung store
    must not hold connections forever)."""
    trace_file: Path | None = None
    """Where finished spans go as JSON lines; None exports nothing (tracing still propagates)."""
    service_name: str = "flight-delay"
    tracking_uri: str | None = None
    """The MLflow registry (e.g. http://mlflow:5000 in a cluster); None: the home's sqlite file."""
    feature_repo: Path | None = None
    """The Feast repository (its feature_store.yaml names the online store); None: the home's."""

    def __post_init__(self) -> None:
        if self.clock not in CLOCKS:
            raise ValueError(f"clock must be one of {CLOCKS}, got {self.clock!r}")
        if (self.clock == "fixed") != (self.as_of is not None):
            raise ValueError("as_of is required with clock='fixed' and only allowed with it")
        if self.as_of is not None and self.as_of.tzinfo is None:
            raise ValueError("as_of must carry a time zone (e.g. 2013-03-15T00:00:00Z)")
        if not 1 <= self.max_batch <= 10_000:
            raise ValueError(f"max_batch must be in [1, 10000], got {self.max_batch}")
        if not 1 <= self.batch_size <= 1024:
            raise ValueError(f"batch_size must be in [1, 1024], got {self.batch_size}")
        if not 0 < self.request_timeout_s <= 300:
            raise ValueError(f"request_timeout_s must be in (0, 300], got {self.request_timeout_s}")
        if not 0 <= self.batch_wait_ms <= 1000:
            raise ValueError(f"batch_wait_ms must be in [0, 1000], got {self.batch_wait_ms}")
        if not self.alias or not self.model_name:
            raise ValueError("model_name and alias must not be empty")

    @property
    def paths(self) -> Paths:
        return Paths.at(self.home)

    @property
    def feature_repo_path(self) -> Path:
        return self.feature_repo if self.feature_repo is not None else self.paths.feature_repo

    @property
    def model_uri(self) -> str:
        return f"models:/{self.model_name}@{self.alias}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ServingSettings:
        """Settings from MLOPS_HOME, MLOPS_MODEL_NAME, MLOPS_MODEL_ALIAS, MLOPS_CLOCK,
        MLOPS_AS_OF, MLOPS_MAX_BATCH, MLOPS_BATCH_SIZE, MLOPS_BATCH_WAIT_MS,
        MLOPS_REQUEST_TIMEOUT_S, MLOPS_TRACKING_URI,
        MLOPS_FEATURE_REPO and MLOPS_TRACE_FILE (each optional)."""
        env = os.environ if env is None else env
        values: dict[str, object] = {"home": Paths.at(env.get("MLOPS_HOME") or None).home}
        for variable, name in (
            ("MLOPS_MODEL_NAME", "model_name"),
            ("MLOPS_MODEL_ALIAS", "alias"),
            ("MLOPS_CLOCK", "clock"),
        ):
            if env.get(variable):
                values[name] = env[variable]
        for variable, name, kind in (
            ("MLOPS_MAX_BATCH", "max_batch", int),
            ("MLOPS_BATCH_SIZE", "batch_size", int),
            ("MLOPS_BATCH_WAIT_MS", "batch_wait_ms", float),
            ("MLOPS_REQUEST_TIMEOUT_S", "request_timeout_s", float),
        ):
            if env.get(variable):
                try:
                    values[name] = kind(env[variable])
                except ValueError:
                    raise ValueError(
                        f"{variable} must be a {kind.__name__}, got {env[variable]!r}"
                    ) from None
        if env.get("MLOPS_AS_OF"):
            values["as_of"] = parse_instant(env["MLOPS_AS_OF"], "MLOPS_AS_OF")
        if env.get("MLOPS_TRACKING_URI"):
            values["tracking_uri"] = env["MLOPS_TRACKING_URI"]
        if env.get("MLOPS_FEATURE_REPO"):
            values["feature_repo"] = Path(env["MLOPS_FEATURE_REPO"])
        if env.get("MLOPS_TRACE_FILE"):
            values["trace_file"] = Path(env["MLOPS_TRACE_FILE"])
        return cls(**values)  # type: ignore[arg-type]


def parse_instant(text: str, name: str) -> datetime:
    """An ISO-8601 instant with a time zone ("Z" accepted), or a ValueError naming `name`."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{name} must be an ISO-8601 time, got {text!r}") from None
    if value.tzinfo is None:
        raise ValueError(f"{name} must carry a time zone, got {text!r}")
    return value
