"""Model loading: settings, local paths, the registry alias, the cache and model export."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from tabular_service.service import loading
from tabular_service.service.loading import ModelLoadError, load_model, parse_model_uri
from tabular_service.service.main import main
from tabular_service.settings import Settings, SettingsError, load_settings


# ---------------------------------------------------------------------------------- settings
def test_settings_defaults_and_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TABULAR_HOME", str(tmp_path))
    monkeypatch.setenv("TABULAR_PORT", "9123")
    monkeypatch.setenv("TABULAR_LOG_LEVEL", "WARNING")
    settings = load_settings()
    assert settings.home == tmp_path.resolve()
    assert settings.port == 9123 and settings.log_level == "warning"
    assert settings.host == "127.0.0.1" and settings.workers == 1 and settings.max_batch == 1000
    assert settings.model_uri == "models:/credit-default@champion"
    assert settings.model_cache == tmp_path.resolve() / ".model-cache"
    assert settings.registry_uri() == f"sqlite:///{tmp_path.resolve()}/mlruns/mlflow.db"


@pytest.mark.parametrize(
    ("name", "value"),
    [("TABULAR_PORT", "80a"), ("TABULAR_WORKERS", "0"), ("TABULAR_LOG_LEVEL", "loud")],
)
def test_invalid_env_is_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=name):
        load_settings()
    assert main([]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and name in err and "Traceback" not in err


# ---------------------------------------------------------------------------------- paths
@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("models:/credit-default@champion", ("credit-default", "champion", None)),
        ("models:/credit-default/3", ("credit-default", None, "3")),
    ],
)
def test_parse_model_uri(uri: str, expected: tuple) -> None:
    ref = parse_model_uri(uri)
    assert (ref.name, ref.alias, ref.version) == expected


@pytest.mark.parametrize("uri", ["runs:/abc/model", "models:/", "credit-default", "models:/a/b/c"])
def test_parse_model_uri_rejects_others(uri: str) -> None:
    with pytest.raises(ValueError, match="models:/<name>@<alias>"):
        parse_model_uri(uri)


def test_load_from_path(predictor_dir: Path, small_predictor) -> None:
    loaded = load_model(Settings(model_path=predictor_dir))
    assert loaded.info.source == "path" and loaded.info.kind == small_predictor.model_kind
    assert loaded.predictor.threshold == small_predictor.threshold


def test_missing_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model(Settings(model_path=tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="predictor.pkl"):
        load_model(Settings(model_path=tmp_path / "empty"))


# ---------------------------------------------------------------------------------- registry
@pytest.mark.slow
def test_registry_download_then_cache(registry_home: Path, tmp_path: Path) -> None:
    settings = Settings(home=registry_home, cache_dir=tmp_path / "cache")
    first = load_model(settings)
    assert first.info.source == "registry"
    assert (first.info.name, first.info.version) == ("credit-default", "1")
    version_dir = tmp_path / "cache" / "credit-default" / "1"
    assert (version_dir / "MLmodel").is_file()
    assert (tmp_path / "cache" / "credit-default" / "@champion").read_text().strip() == "1"
    assert not list(version_dir.parent.glob(".partial-*"))  # staging cleaned up

    second = load_model(settings)
    assert second.info.source == "cache" and second.info.version == "1"
    # The alias has not moved: nothing to swap.
    assert loading.refresh(settings, second) is None


@pytest.mark.slow
def test_cache_survives_a_killed_download(registry_home: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache" / "credit-default"
    # What a download killed half-way leaves behind: a staging dir and no published version.
    (cache / ".partial-1-abc" / "artifacts").mkdir(parents=True)
    (cache / ".partial-1-abc" / "MLmodel").write_text("half")
    # ...and a pointer to a version whose directory never got published.
    (cache / "@champion").write_text("1\n")
    loaded = load_model(Settings(home=registry_home, cache_dir=tmp_path / "cache"))
    assert loaded.info.source == "registry" and loaded.info.version == "1"
    assert (cache / "1" / "MLmodel").is_file()


@pytest.mark.slow
def test_unknown_model_is_a_clear_error(registry_home: Path, tmp_path: Path) -> None:
    settings = Settings(
        home=registry_home, cache_dir=tmp_path, model_uri="models:/credit-default@nobody"
    )
    with pytest.raises(ModelLoadError, match="credit-default@nobody"):
        load_model(settings)


@pytest.mark.slow
def test_export_model_for_the_image(registry_home: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TABULAR_HOME", str(registry_home))
    monkeypatch.setenv("TABULAR_CACHE_DIR", str(tmp_path / "cache"))
    destination = tmp_path / "build" / "model"
    destination.mkdir(parents=True)
    (destination / "stale.txt").write_text("from an older export")
    assert main(["--export-model", str(destination)]) == 0
    assert not (destination / "stale.txt").exists()
    meta = json.loads((destination / loading.INFO_FILE).read_text())
    assert meta["name"] == "credit-default" and meta["version"] == "1"
    loaded = load_model(Settings(model_path=destination))
    assert (loaded.info.name, loaded.info.version, loaded.info.source) == (
        "credit-default",
        "1",
        "path",
    )
    # The export is self-contained: it still loads after the cache is gone.
    shutil.rmtree(tmp_path / "cache")
    assert load_model(Settings(model_path=destination)).info.version == "1"


def test_export_model_from_a_predictor_file(predictor_dir: Path, tmp_path: Path) -> None:
    """TABULAR_MODEL_PATH may name predictor.pkl itself; the export is still a model directory."""
    pickle_file = predictor_dir / "predictor.pkl"
    destination = tmp_path / "exported"
    info = loading.export_model(Settings(model_path=pickle_file), destination)
    assert (destination / "predictor.pkl").is_file()
    assert load_model(Settings(model_path=destination)).info.kind == info.kind


def test_cached_start_does_not_import_mlflow(predictor_dir: Path, tmp_path: Path) -> None:
    """The fast path: pointer + cached version load without touching the registry."""
    cache = tmp_path / "credit-default"
    shutil.copytree(predictor_dir, cache / "7")
    (cache / "@champion").write_text("7\n")
    code = (
        "import sys; from tabular_service.service.loading import load_model;"
        "from tabular_service.settings import Settings;"
        f"m = load_model(Settings(cache_dir={str(tmp_path)!r}, home={str(tmp_path)!r}));"
        "print(m.info.source, m.info.version, 'mlflow' in sys.modules)"
    )
    import subprocess

    src = str(Path(loading.__file__).resolve().parents[2])
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": src, "PATH": "/usr/bin:/bin"},
        timeout=120,
        check=True,
    ).stdout.split()
    assert out == ["cache", "7", "False"]
