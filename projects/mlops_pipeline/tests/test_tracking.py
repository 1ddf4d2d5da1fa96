"""`training.tracking.tracking()` points MLflow at a store for one block and leaves no trace."""

from __future__ import annotations

import os

from mlops_pipeline.training.tracking import store_uri, tracking


def test_tracking_restores_the_environment_children_inherit(tmp_path, monkeypatch):
    """MLflow's setters write MLFLOW_*_URI; after the block they are exactly as before."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", "sqlite:////somewhere/else.db")
    uri = store_uri(tmp_path / "mlruns")
    with tracking(uri) as client:
        assert os.environ["MLFLOW_TRACKING_URI"] == uri
        assert client.tracking_uri == uri
    assert "MLFLOW_TRACKING_URI" not in os.environ
    assert os.environ["MLFLOW_REGISTRY_URI"] == "sqlite:////somewhere/else.db"


def test_tracking_leaves_mlflow_unpinned_for_later_settings(tmp_path, monkeypatch):
    """After the block, a user's own MLFLOW_TRACKING_URI still decides (nothing was pinned)."""
    import mlflow

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    with tracking(store_uri(tmp_path / "a")):
        pass
    later = store_uri(tmp_path / "b")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", later)
    assert mlflow.get_tracking_uri() == later
    assert mlflow.get_registry_uri() == later


def test_tracking_restores_on_error_and_when_nested(tmp_path):
    import mlflow

    outer, inner = store_uri(tmp_path / "outer"), store_uri(tmp_path / "inner")
    with tracking(outer):
        try:
            with tracking(inner):
                assert mlflow.get_tracking_uri() == inner
                raise RuntimeError("boom")
        except RuntimeError:
            pass
        assert mlflow.get_tracking_uri() == outer and mlflow.get_registry_uri() == outer
