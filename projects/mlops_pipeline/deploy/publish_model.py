"""Copy registered model versions from a pipeline home's registry to an MLflow tracking server.

`mlops run` trains, gates and registers into the home's own registry (SQLite, `<home>/mlruns`).
Pods in a cluster load from a tracking server instead (MLOPS_TRACKING_URI), so the versions the
aliases name must get there. For each alias this copies the version's files verbatim (the
MLmodel, the pickled pipeline, its environment files), logs them as the artifacts of a run on
the server, registers that as a new version of the same model and points the same alias at it.
The run's tags say where it came from (home, version, run id), so a version on the server can be
traced back to the training run that produced it.

    python deploy/publish_model.py --home .mlops --tracking-uri http://127.0.0.1:5000
    python deploy/publish_model.py --tracking-uri URI --alias champion --alias challenger

The server stores the files in its own artifact store (its `--artifacts-destination`, proxied,
on kind; S3 on EKS), which is where the pods then read them from.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")

#: The experiment on the server that holds the copies' runs.
EXPERIMENT = "flight-delay-published"
#: Where in a run the model's files go (the version's source is `<run artifacts>/model`).
ARTIFACT_PATH = "model"


class PublishError(RuntimeError):
    """A version cannot be copied: the alias is unknown, or a registry does not answer."""


@dataclass(frozen=True)
class Published:
    """One alias copied: its version in the home and the new version on the server."""

    alias: str
    source_version: str
    target_version: str
    run_id: str

    def __str__(self) -> str:
        return (
            f"{self.alias}: home v{self.source_version} -> server v{self.target_version} "
            f"(run {self.run_id})"
        )


def publish(home: Path, tracking_uri: str, name: str, aliases: Sequence[str]) -> list[Published]:
    """Copy `name@alias` for each alias from the home's registry to `tracking_uri`.

    Every alias is resolved in the home before anything is written to the server, so a
    misspelt alias fails the whole call instead of publishing half of it.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    from mlops_pipeline.paths import Paths
    from mlops_pipeline.training.registry import check_registry
    from mlops_pipeline.training.tracking import store_uri, tracking

    if not aliases:
        raise PublishError("name at least one alias to publish")
    source_uri = store_uri(Paths.at(home).mlruns)
    check_registry(source_uri)
    check_registry(tracking_uri)
    with tempfile.TemporaryDirectory(prefix="publish-") as tmp:
        staged: list[tuple[str, object, Path]] = []
        with tracking(source_uri) as source:
            for alias in aliases:
                try:
                    version = source.get_model_version_by_alias(name, alias)
                except MlflowException as error:
                    raise PublishError(f"{name}@{alias} is not in {source_uri}: {error}") from None
                files = mlflow.artifacts.download_artifacts(
                    artifact_uri=f"models:/{name}/{version.version}",
                    dst_path=str(Path(tmp) / alias),
                )
                staged.append((alias, version, Path(files)))
        published: list[Published] = []
        with tracking(tracking_uri) as target:
            experiment = target.get_experiment_by_name(EXPERIMENT)
            experiment_id = (
                experiment.experiment_id
                if experiment is not None
                else target.create_experiment(EXPERIMENT)
            )
            if not target.search_registered_models(filter_string=f"name = '{name}'"):
                target.create_registered_model(name)
            for alias, version, files in staged:
                tags = {
                    "published.from.home": str(Path(home).resolve()),
                    "published.from.version": str(version.version),
                    "published.from.run_id": str(version.run_id or ""),
                    "published.alias": alias,
                }
                run = target.create_run(
                    experiment_id, run_name=f"{name}-v{version.version}-{alias}", tags=tags
                )
                run_id = run.info.run_id
                target.log_artifacts(run_id, str(files), ARTIFACT_PATH)
                target.set_terminated(run_id)
                created = target.create_model_version(
                    name,
                    source=f"{run.info.artifact_uri}/{ARTIFACT_PATH}",
                    run_id=run_id,
                    tags={"published.from.version": str(version.version)},
                )
                target.set_registered_model_alias(name, alias, created.version)
                published.append(
                    Published(alias, str(version.version), str(created.version), run_id)
                )
    return published


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=None, help="pipeline home ($MLOPS_HOME)")
    parser.add_argument("--tracking-uri", required=True, help="e.g. http://127.0.0.1:5000")
    parser.add_argument("--model-name", default="flight-delay")
    parser.add_argument(
        "--alias", action="append", dest="aliases", help="alias to copy (repeatable; champion)"
    )
    args = parser.parse_args(argv)
    from mlops_pipeline.paths import Paths
    from mlops_pipeline.training.registry import RegistryUnavailable

    home = Paths.at(args.home).home
    try:
        done = publish(home, args.tracking_uri, args.model_name, args.aliases or ["champion"])
    except (PublishError, RegistryUnavailable) as error:
        print(f"publish: {error}", file=sys.stderr)
        return 1
    for item in done:
        print(f"publish: {args.model_name} {item}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
