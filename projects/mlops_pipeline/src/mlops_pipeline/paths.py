"""Where the pipeline keeps its state: one home directory, one layout.

Every store the pipeline writes (the source database's data directory, the CDC landing zone, the
quarantine, feature tables, the Feast repository, MLflow) lives under one home so a run can be
inspected, copied or deleted as a unit. The home is `--home`, else `$MLOPS_HOME`, else
`./.mlops` in the current directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

HOME_ENV = "MLOPS_HOME"


def default_home() -> Path:
    """`$MLOPS_HOME` if set, else `.mlops` in the current directory."""
    return Path(os.environ.get(HOME_ENV) or ".mlops").expanduser().resolve()


@dataclass(frozen=True)
class Paths:
    """The layout of one pipeline home."""

    home: Path

    @classmethod
    def at(cls, home: str | os.PathLike[str] | None = None) -> Paths:
        return cls(Path(home).expanduser().resolve() if home is not None else default_home())

    @property
    def pgdata(self) -> Path:
        """The source PostgreSQL's data directory (pgserver)."""
        return self.home / "pgdata"

    @property
    def landing(self) -> Path:
        """CDC output: landing/<table>/date=YYYY-MM-DD/part-<lsn>.parquet."""
        return self.home / "landing"

    @property
    def validated(self) -> Path:
        """Rows that passed their contract, same partitioning as the landing zone."""
        return self.home / "validated"

    @property
    def quarantine(self) -> Path:
        """Rows that broke a contract, with the reason, same partitioning."""
        return self.home / "quarantine"

    @property
    def features(self) -> Path:
        """Feature tables: features/<view>/date=YYYY-MM-DD/part.parquet (Feast's offline store)."""
        return self.home / "features"

    @property
    def feature_repo(self) -> Path:
        """The generated Feast repository (feature_store.yaml, registry, online store)."""
        return self.home / "feature_repo"

    @property
    def training_sets(self) -> Path:
        return self.home / "training_sets"

    @property
    def mlruns(self) -> Path:
        """MLflow tracking store (mlflow.db) and artifacts."""
        return self.home / "mlruns"

    @property
    def runs(self) -> Path:
        """Per-run reports (JSON): counts, gate results, timings."""
        return self.home / "runs"

    def ensure(self) -> Paths:
        self.home.mkdir(parents=True, exist_ok=True)
        return self
