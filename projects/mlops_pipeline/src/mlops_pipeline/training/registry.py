"""Gated promotion in the MLflow model registry (`flight-delay`, aliases challenger/champion).

The registry is the one place serving reads from: `models:/flight-delay@champion`. So the
rules are strict:
- a trained candidate is registered as a new version and becomes `challenger`;
- it becomes `champion` only when EVERY gate passes; otherwise the champion alias stays
  where it was and the report says which gates failed, with their numbers;
- if the registry cannot be reached (wrong URI, server down, sqlite file locked or
  unreadable) the step stops with `RegistryUnavailable` BEFORE it touches anything. MLflow
  would otherwise create a fresh empty sqlite store at a mistyped path, or retry an HTTP
  server for minutes, and the next champion lookup would silently find nothing.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import urllib.error
import urllib.request
from contextlib import closing
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlops_pipeline.features.schema import LABEL
from mlops_pipeline.training.gates import (
    DEFAULT_GATES,
    GateConfig,
    GateResult,
    direction_gate,
    improvement_gate,
    invariance_gate,
    jsonable,
    operational_gate,
    probabilities,
    pyfunc_frame,
    record_gates,
    slice_gate,
)
from mlops_pipeline.training.tracking import sqlite_path, tracking
from mlops_pipeline.training.train import Candidate

MODEL_NAME = "flight-delay"
CHAMPION = "champion"
CHALLENGER = "challenger"


class RegistryUnavailable(RuntimeError):
    """The model registry could not be read or written; no alias was changed."""


@dataclass
class PromotionReport:
    """What the promotion step did and why (written to <home>/runs/ as JSON)."""

    model_name: str
    candidate: str
    run_id: str
    model_uri: str
    version: str
    promoted: bool
    champion_before: str | None
    champion_after: str | None
    challenger: str
    gates: list[GateResult]
    failed_gates: list[str]
    reasons: list[str]
    candidate_metrics: dict[str, float] = field(default_factory=dict)
    created_at: str = field(
        default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    )

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable (plain types, NaN as None)."""
        out = asdict(self)
        out["gates"] = [gate.to_dict() for gate in self.gates]
        return jsonable(out)


def check_registry(tracking_uri: str, timeout_s: float = 3.0) -> None:
    """Raise `RegistryUnavailable` unless the registry at `tracking_uri` answers now.

    sqlite: the file must already exist (training created it) and be a readable MLflow
    database; it is opened read-only so the check itself can never create one. http(s): the
    server's /health must answer within `timeout_s`.
    """
    path = sqlite_path(tracking_uri)
    if path is not None:
        if not path.is_file():
            raise RegistryUnavailable(
                f"model registry unavailable: sqlite store {path} does not exist "
                f"(tracking URI {tracking_uri!r}); no alias was changed"
            )
        try:
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=timeout_s)
            with closing(db):
                # Fails on a file that is not an MLflow database, and (after timeout_s) on
                # one another process holds an exclusive lock on.
                db.execute("SELECT count(*) FROM registered_model_aliases").fetchone()
        except sqlite3.Error as error:
            raise RegistryUnavailable(
                f"model registry unavailable: cannot read sqlite store {path}: {error}; "
                "no alias was changed"
            ) from error
        return
    if tracking_uri.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(f"{tracking_uri.rstrip('/')}/health", timeout=timeout_s):
                return
        except (urllib.error.URLError, OSError) as error:
            raise RegistryUnavailable(
                f"model registry unavailable: tracking server {tracking_uri} does not answer "
                f"({error}); no alias was changed"
            ) from error
    raise RegistryUnavailable(
        f"unsupported tracking URI {tracking_uri!r} for the registry: use sqlite:/// or http(s)://"
    )


def alias_version(client: Any, name: str, alias: str) -> str | None:
    """The version an alias points at, None when the model or the alias does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException as error:
        if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def registered_version(client: Any, name: str, run_id: str) -> str | None:
    """The version of `name` already registered from `run_id`, if any (so a retried promotion
    gates the same version instead of registering the model again)."""
    versions = client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    return str(min(int(v.version) for v in versions)) if versions else None


def run_gates(
    candidate: Candidate,
    holdout: pd.DataFrame,
    champion_scores: np.ndarray | None,
    model_uri: str,
    tracking_uri: str,
    config: GateConfig = DEFAULT_GATES,
) -> list[GateResult]:
    """All gates, in order, on the holdout (the test months)."""
    y = holdout[LABEL].astype("int64").to_numpy()
    p_new = candidate.model.predict_proba(holdout)
    return [
        improvement_gate(y, p_new, champion_scores, base_rate=candidate.base_rate, config=config),
        slice_gate(holdout, y, p_new, champion_scores, config=config),
        invariance_gate(candidate.model, holdout, config=config),
        direction_gate(candidate.model, holdout, config=config),
        operational_gate(
            model_uri,
            holdout,
            expected=candidate.model.predict_proba,
            tracking_uri=tracking_uri,
            config=config,
        ),
    ]


def promote(
    candidate: Candidate,
    holdout: pd.DataFrame,
    tracking_uri: str,
    *,
    name: str = MODEL_NAME,
    config: GateConfig = DEFAULT_GATES,
    registry_timeout_s: float = 3.0,
) -> PromotionReport:
    """Register `candidate` as challenger, gate it against the champion, promote if all pass."""
    import mlflow
    from mlflow.exceptions import MlflowException

    check_registry(tracking_uri, registry_timeout_s)
    with tracking(tracking_uri) as client:
        try:
            champion_before = alias_version(client, name, CHAMPION)
            champion_scores = None
            if champion_before is not None:
                loaded = mlflow.pyfunc.load_model(f"models:/{name}@{CHAMPION}")
                champion_scores = probabilities(loaded.predict(pyfunc_frame(loaded, holdout)))
            version = registered_version(client, name, candidate.run_id)
            if version is None:  # a retry after a failure below reuses the version it made
                version = str(mlflow.register_model(candidate.model_uri, name).version)
            client.set_registered_model_alias(name, CHALLENGER, version)
        except MlflowException as error:
            raise RegistryUnavailable(
                f"model registry at {tracking_uri} failed while registering {candidate.name} "
                f"({candidate.model_uri}): {error}; the champion alias was not changed"
            ) from error
        model_uri = f"models:/{name}/{version}"
        gates = run_gates(candidate, holdout, champion_scores, model_uri, tracking_uri, config)
        failed = [gate for gate in gates if not gate.passed]
        record_gates(client, candidate.run_id, gates)
        client.set_model_version_tag(name, version, "gates", "failed" if failed else "passed")
        client.set_model_version_tag(name, version, "candidate", candidate.name)
        if not failed:
            client.set_registered_model_alias(name, CHAMPION, version)
        champion_after = alias_version(client, name, CHAMPION)
    return PromotionReport(
        model_name=name,
        candidate=candidate.name,
        run_id=candidate.run_id,
        model_uri=candidate.model_uri,
        version=version,
        promoted=not failed,
        champion_before=champion_before,
        champion_after=champion_after,
        challenger=version,
        gates=gates,
        failed_gates=[gate.name for gate in failed],
        reasons=[f"{gate.name}: {gate.message}" for gate in failed],
        candidate_metrics=dict(candidate.metrics),
    )
