"""Find the model to serve, keep a local copy of it, and load it.

Two sources:
- TABULAR_MODEL_PATH: a model directory on disk (what the container image ships). No registry.
- TABULAR_MODEL_URI (default models:/credit-default@champion): resolved in the MLflow registry,
  downloaded once into <cache>/<name>/<version>/ and loaded from there afterwards.

Registry versions are immutable, so a cached version never goes stale; an *alias* does move.
Importing mlflow alone takes ~2 s, which would be a large share of a 5 s start-up budget, so the
cache also remembers which version each alias pointed to last time (<cache>/<name>/@<alias>).
When that version is cached the service loads it without importing mlflow and becomes ready
at once; the caller then re-resolves the alias in the background (`refresh`) and swaps the
model if the alias has moved. The trade-off (a few seconds serving the previous champion after
a promotion, in exchange for fast start-up that also survives a registry outage) is in
docs/adr/0002-service-design.md.

Downloads go to a temporary sibling directory that is renamed into place only after the model
in it has loaded, so a process killed mid-download never leaves half a model in the cache.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tabular_service.settings import Settings

if TYPE_CHECKING:
    from tabular_service.predictor import CreditPredictor

log = logging.getLogger("tabular_service.loading")

#: Written next to an exported model so a path-loaded service still reports name and version.
INFO_FILE = "model-info.json"
_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>\d+))$")


class ModelLoadError(RuntimeError):
    """The model could not be found or loaded; the message says where it looked."""


@dataclass(frozen=True)
class ModelInfo:
    """What is being served, as /readyz and every prediction report it."""

    name: str
    version: str
    kind: str
    source: str  # "path", "cache" (alias not re-checked yet) or "registry"
    load_seconds: float = 0.0

    def public(self) -> dict[str, str]:
        """The part every prediction response carries."""
        return {"name": self.name, "version": self.version, "kind": self.kind}


@dataclass(frozen=True)
class LoadedModel:
    predictor: CreditPredictor
    info: ModelInfo


@dataclass(frozen=True)
class RegistryRef:
    """A parsed models:/ URI: a name plus either an alias or a version."""

    name: str
    alias: str | None
    version: str | None


def parse_model_uri(uri: str) -> RegistryRef:
    """Split models:/<name>@<alias> or models:/<name>/<version>; ValueError otherwise."""
    match = _URI.match(uri.strip())
    if match is None:
        raise ValueError(
            f"model URI {uri!r} is not models:/<name>@<alias> or models:/<name>/<version>"
        )
    return RegistryRef(match["name"], match["alias"], match["version"])


# ---------------------------------------------------------------------------------- entry points
def load_model(settings: Settings) -> LoadedModel:
    """Load the model the settings name: a local path, else the registry (cache first)."""
    start = time.perf_counter()
    if settings.model_path is not None:
        loaded = load_from_path(settings.model_path)
    else:
        try:
            ref = parse_model_uri(settings.model_uri)
        except ValueError as exc:
            raise ModelLoadError(str(exc)) from None
        cached = _cached_version(settings.model_cache, ref)
        if cached is not None:
            loaded = _load_dir(cached, ref.name, cached.name, "cache")
        else:
            loaded = load_from_registry(settings, ref)
    return _timed(loaded, start)


def refresh(settings: Settings, current: LoadedModel) -> LoadedModel | None:
    """Re-resolve an alias that was served from the cache; the new model if it moved, else None."""
    if settings.model_path is not None or current.info.source != "cache":
        return None
    ref = parse_model_uri(settings.model_uri)
    if ref.alias is None:  # a pinned version never changes
        return None
    start = time.perf_counter()
    version = resolve_version(settings, ref)
    if version == current.info.version:
        return None
    log.info("alias %s@%s moved to version %s", ref.name, ref.alias, version)
    return _timed(load_from_registry(settings, ref, version), start)


def load_from_path(path: Path) -> LoadedModel:
    """Load an exported/local model directory (or a predictor.pkl file)."""
    path = Path(path).expanduser().resolve()
    if not path.exists():
        raise ModelLoadError(f"TABULAR_MODEL_PATH {path} does not exist")
    meta = {}
    info_file = path / INFO_FILE if path.is_dir() else path.parent / INFO_FILE
    if info_file.is_file():
        meta = json.loads(info_file.read_text())
    return _load_dir(
        path, str(meta.get("name", path.stem)), str(meta.get("version", "local")), "path"
    )


def load_from_registry(
    settings: Settings, ref: RegistryRef, version: str | None = None
) -> LoadedModel:
    """Resolve `ref` in the registry, make sure that version is cached, and load it."""
    version = version or ref.version or resolve_version(settings, ref)
    directory = download(settings, ref.name, version)
    loaded = _load_dir(directory, ref.name, version, "registry")
    if ref.alias is not None:
        _write_pointer(settings.model_cache, ref, version)
    return loaded


def export_model(settings: Settings, destination: Path) -> ModelInfo:
    """Copy the model the settings name into `destination` (for a container image).

    Always asks the registry (an export is a deployment step: it must ship the alias's current
    target, not whatever the cache saw last), then writes model-info.json beside the model.
    """
    destination = Path(destination).expanduser().resolve()
    if settings.model_path is not None:
        source, loaded = settings.model_path, load_from_path(settings.model_path)
    else:
        ref = parse_model_uri(settings.model_uri)
        version = ref.version or resolve_version(settings, ref)
        loaded = load_from_registry(settings, ref, version)
        source = settings.model_cache / ref.name / version
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}-", dir=destination.parent))
    try:
        if Path(source).is_file():  # TABULAR_MODEL_PATH may name the pickle itself
            from tabular_service.predictor import PREDICTOR_FILE

            shutil.copy2(source, staging / PREDICTOR_FILE)
        else:
            shutil.copytree(source, staging, dirs_exist_ok=True)
        meta = {**loaded.info.public(), "source": settings.model_path or settings.model_uri}
        (staging / INFO_FILE).write_text(json.dumps(meta, default=str, indent=2) + "\n")
        if destination.exists():
            shutil.rmtree(destination)
        staging.rename(destination)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return loaded.info


# ---------------------------------------------------------------------------------- registry
def _client(settings: Settings):
    """An MlflowClient for the configured store (mlflow imported here, only when needed)."""
    from mlflow import MlflowClient

    uri = settings.registry_uri()
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def resolve_version(settings: Settings, ref: RegistryRef) -> str:
    """The version an alias points to now (or the pinned version, checked to exist)."""
    from mlflow.exceptions import MlflowException

    client = _client(settings)
    try:
        if ref.alias is not None:
            return str(client.get_model_version_by_alias(ref.name, ref.alias).version)
        return str(client.get_model_version(ref.name, str(ref.version)).version)
    except MlflowException as exc:
        target = f"{ref.name}@{ref.alias}" if ref.alias else f"{ref.name}/{ref.version}"
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelLoadError(
            f"cannot resolve models:/{target} in {settings.registry_uri()}: {first_line}"
        ) from None


def download(settings: Settings, name: str, version: str) -> Path:
    """<cache>/<name>/<version>/, downloading it first (atomically) when it is not there yet."""
    final = settings.model_cache / name / version
    if _is_model_dir(final):
        return final
    # A progress bar on stderr would break the one-JSON-object-per-line log stream.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow

    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".partial-{version}-", dir=final.parent))
    try:
        client = _client(settings)
        uri = client.get_model_version_download_uri(name, version)
        fetched = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=uri, dst_path=str(staging), tracking_uri=settings.registry_uri()
            )
        )
        model_dir = _find_model_dir(fetched)
        _load_dir(model_dir, name, version, "registry")  # prove it loads before publishing it
        try:
            model_dir.rename(final)
        except OSError:  # another process published the same version first: keep theirs
            if not _is_model_dir(final):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("cached %s version %s in %s", name, version, final)
    return final


# ---------------------------------------------------------------------------------- cache
def _pointer(cache: Path, ref: RegistryRef) -> Path:
    return cache / ref.name / f"@{ref.alias}"


def _cached_version(cache: Path, ref: RegistryRef) -> Path | None:
    """The cached directory for `ref` if it can be used without asking the registry."""
    if ref.version is not None:
        version = ref.version
    else:
        pointer = _pointer(cache, ref)
        if not pointer.is_file():
            return None
        version = pointer.read_text().strip()
    directory = cache / ref.name / version
    return directory if version.isdigit() and _is_model_dir(directory) else None


def _write_pointer(cache: Path, ref: RegistryRef, version: str) -> None:
    pointer = _pointer(cache, ref)
    pointer.parent.mkdir(parents=True, exist_ok=True)
    tmp = pointer.with_name(f"{pointer.name}.{os.getpid()}.tmp")
    tmp.write_text(f"{version}\n")
    tmp.replace(pointer)


def _is_model_dir(path: Path) -> bool:
    from tabular_service.predictor import predictor_candidates

    return path.is_dir() and any(c.is_file() for c in predictor_candidates(path))


def _find_model_dir(root: Path) -> Path:
    """The directory under `root` that holds the model (download layouts vary by store)."""
    if _is_model_dir(root):
        return root
    from tabular_service.predictor import PREDICTOR_FILE

    for candidate in sorted(root.rglob("MLmodel")) + sorted(root.rglob(PREDICTOR_FILE)):
        for parent in (candidate.parent, candidate.parent.parent):
            if _is_model_dir(parent):
                return parent
    raise ModelLoadError(f"downloaded model in {root} has no predictor.pkl")


def _load_dir(path: Path, name: str, version: str, source: str) -> LoadedModel:
    from tabular_service.predictor import load_predictor

    try:
        predictor = load_predictor(path)
    except (FileNotFoundError, TypeError) as exc:
        raise ModelLoadError(str(exc)) from None
    return LoadedModel(predictor, ModelInfo(name, version, predictor.model_kind, source))


def _timed(loaded: LoadedModel, start: float) -> LoadedModel:
    seconds = round(time.perf_counter() - start, 3)
    return LoadedModel(
        loaded.predictor, ModelInfo(**{**asdict(loaded.info), "load_seconds": seconds})
    )


# ---------------------------------------------------------------------------------- lifecycle
class ModelState:
    """The serving model and its lifecycle: loading -> ready, or loading -> failed.

    Request handlers read `model` once per request; the loader thread replaces it with one
    assignment, so a swap (alias moved) never shows a half-updated pair of predictor and info.
    """

    def __init__(self) -> None:
        self.status = "loading"
        self.detail = "the model is loading"
        self.model: LoadedModel | None = None
        self._listeners: list = []

    def on_ready(self, callback) -> None:
        """Call `callback(loaded)` whenever a model becomes the served one."""
        self._listeners.append(callback)
        if self.model is not None:
            callback(self.model)

    def set_ready(self, loaded: LoadedModel) -> None:
        self.model = loaded
        self.status, self.detail = "ready", "serving"
        for callback in self._listeners:
            callback(loaded)

    def set_failed(self, detail: str) -> None:
        """Mark the load failed, unless a model is already serving (then it keeps serving)."""
        if self.model is None:
            self.status, self.detail = "failed", detail

    def load_in_background(self, settings: Settings) -> threading.Thread:
        """Start the loader thread (start-up must not block: /healthz answers meanwhile)."""
        thread = threading.Thread(
            target=self._load, args=(settings,), name="model-loader", daemon=True
        )
        thread.start()
        return thread

    def _load(self, settings: Settings) -> None:
        try:
            loaded = load_model(settings)
        except Exception as exc:  # any failure must reach /readyz, not kill a thread silently
            detail = str(exc) if isinstance(exc, ModelLoadError) else f"{type(exc).__name__}: {exc}"
            log.error("model load failed: %s", detail)
            self.set_failed(detail)
            return
        self.set_ready(loaded)
        log.info("model ready", extra={"fields": asdict(loaded.info)})
        try:
            newer = refresh(settings, loaded)
        except Exception as exc:  # registry down: keep serving the cached champion
            log.warning(
                "could not re-check %s, serving the cached version: %s", settings.model_uri, exc
            )
            return
        if newer is not None:
            self.set_ready(newer)
            log.info("model swapped", extra={"fields": asdict(newer.info)})
