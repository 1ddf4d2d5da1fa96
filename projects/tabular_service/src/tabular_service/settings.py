"""Service configuration: one typed object read from TABULAR_* environment variables.

Everything the service needs to start is here, validated once at start-up, so a typo such as
TABULAR_PORT=80a fails immediately with one line naming the variable rather than as a
traceback from deep inside uvicorn (or worse, a silently ignored default).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tabular_service import tracking

LogLevel = Literal["critical", "error", "warning", "info", "debug", "trace"]


class Settings(BaseSettings):
    """Service settings; each field `x` is read from TABULAR_X (case-insensitive)."""

    model_config = SettingsConfigDict(
        env_prefix="TABULAR_", extra="ignore", protected_namespaces=(), validate_default=True
    )

    home: Path = Field(
        default_factory=tracking.default_home,
        description="Project directory (mlruns/, .model-cache/); see tracking.default_home.",
    )
    tracking_uri: str | None = Field(
        default=None, description="MLflow tracking/registry URI; default <home>/mlruns sqlite."
    )
    model_uri: str = Field(
        default="models:/credit-default@champion",
        description="Registry model to serve, models:/<name>@<alias> or models:/<name>/<version>.",
    )
    model_path: Path | None = Field(
        default=None, description="A local model directory; wins over model_uri when set."
    )
    cache_dir: Path | None = Field(
        default=None, description="Downloaded registry models; default <home>/.model-cache."
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    max_batch: int = Field(default=1000, ge=1, le=100_000)
    log_level: LogLevel = "info"

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("home", mode="after")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @property
    def model_cache(self) -> Path:
        """Where registry models are cached: cache_dir, or <home>/.model-cache."""
        return (self.cache_dir or self.home / ".model-cache").expanduser().resolve()

    def registry_uri(self) -> str:
        """The MLflow store to resolve model_uri against (same convention as `tracking`)."""
        return self.tracking_uri or tracking.tracking_uri(self.home)


class SettingsError(ValueError):
    """Invalid configuration; the message is one line fit for a start-up error."""


def load_settings(**overrides: object) -> Settings:
    """Read Settings from the environment, turning validation errors into a SettingsError."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"TABULAR_{'_'.join(str(p) for p in err['loc']).upper()}={err.get('input')!r}: "
            f"{err['msg']}"
            for err in exc.errors()
        )
        raise SettingsError(f"invalid configuration: {problems}") from None
