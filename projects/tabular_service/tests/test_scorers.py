"""Scorers reproduce the models they were compiled from, and serving never needs torch."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

from tabular_service.data import Split
from tabular_service.features import FeatureEncoder
from tabular_service.predictor import CreditPredictor, load_predictor
from tabular_service.schema import CATEGORICAL, EXAMPLE_APPLICATION, NUMERIC
from tabular_service.scorers import LinearScorer, SklearnScorer, TreeScorer, sigmoid

SRC = Path(__file__).resolve().parents[1] / "src"
CATEGORICAL_COLUMNS = np.arange(len(NUMERIC), len(NUMERIC) + len(CATEGORICAL))


def test_sigmoid_is_stable_and_exact() -> None:
    z = np.array([-1000.0, -30.0, -1.0, 0.0, 1.0, 30.0, 1000.0])
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # no overflow warning
        p = sigmoid(z)
    assert p[0] == 0.0 and p[-1] == 1.0 and p[3] == 0.5
    np.testing.assert_allclose(p[1:-1], 1 / (1 + np.exp(-z[1:-1])), rtol=1e-15)


def test_linear_scorer_equals_predict_proba(loans: Split, fitted_encoder: FeatureEncoder) -> None:
    enc = fitted_encoder
    model = LogisticRegression(C=0.3, max_iter=5000).fit(
        enc.design(enc.transform(loans.X_train), one_hot=True), loans.y_train
    )
    scorer = LinearScorer.from_logistic(model, enc)
    batch = enc.transform(loans.X_test)
    expected = model.predict_proba(enc.design(batch, one_hot=True))[:, 1]
    np.testing.assert_allclose(scorer.score(batch), expected, rtol=0, atol=1e-12)
    one = enc.encode_records([EXAMPLE_APPLICATION])
    assert scorer.score(one).shape == (1,)
    wrong = LogisticRegression().fit(np.eye(4), [0, 1, 0, 1])
    with pytest.raises(ValueError, match="coefficients"):
        LinearScorer.from_logistic(wrong, enc)


@pytest.fixture(scope="module")
def hist_gb(loans: Split, fitted_encoder: FeatureEncoder) -> HistGradientBoostingClassifier:
    """A HistGradientBoosting model whose training rows lack two states (unseen categories)."""
    keep = ~loans.X_train["addr_state"].isin(["NY", "WY"]).to_numpy()
    X = fitted_encoder.design(fitted_encoder.transform(loans.X_train[keep]), one_hot=False)
    return HistGradientBoostingClassifier(
        max_iter=80, max_leaf_nodes=31, categorical_features=CATEGORICAL_COLUMNS, random_state=0
    ).fit(X, loans.y_train[keep])


def test_tree_scorer_equals_predict_proba(loans: Split, fitted_encoder: FeatureEncoder, hist_gb):
    scorer = TreeScorer.from_hist_gb(hist_gb, fitted_encoder)
    batch = fitted_encoder.transform(loans.X_test)
    assert (loans.X_test["addr_state"] == "NY").any()  # unseen categories are exercised
    expected = hist_gb.predict_proba(fitted_encoder.design(batch, one_hot=False))[:, 1]
    np.testing.assert_allclose(scorer.score(batch), expected, rtol=0, atol=1e-12)
    # Batches larger than one chunk give the same numbers.
    small_chunks = TreeScorer(**{**scorer.__dict__, "chunk": 100})
    np.testing.assert_allclose(small_chunks.score(batch), scorer.score(batch), atol=1e-15)


def test_tree_scorer_without_categorical_features(
    loans: Split, fitted_encoder: FeatureEncoder
) -> None:
    X = fitted_encoder.design(fitted_encoder.transform(loans.X_train), one_hot=False)
    model = HistGradientBoostingClassifier(max_iter=30, random_state=0).fit(X, loans.y_train)
    scorer = TreeScorer.from_hist_gb(model, fitted_encoder)
    batch = fitted_encoder.transform(loans.X_valid)
    expected = model.predict_proba(fitted_encoder.design(batch, one_hot=False))[:, 1]
    np.testing.assert_allclose(scorer.score(batch), expected, rtol=0, atol=1e-12)


def test_compiled_predictor_round_trips(
    tmp_path: Path, fitted_encoder: FeatureEncoder, hist_gb
) -> None:
    predictor = CreditPredictor(
        fitted_encoder, TreeScorer.from_hist_gb(hist_gb, fitted_encoder), 0.2, "hist_gb"
    )
    loaded = load_predictor(predictor.save(tmp_path))
    records = [EXAMPLE_APPLICATION, {**EXAMPLE_APPLICATION, "sub_grade": "G5"}]
    np.testing.assert_array_equal(
        loaded.predict_proba_records(records), predictor.predict_proba_records(records)
    )
    # The pickle refers to numpy arrays and our classes only, never to scikit-learn.
    assert b"sklearn" not in pickle.dumps(predictor.scorer)


def test_a_predictor_pickled_under_the_old_module_name_still_loads(
    tmp_path: Path, loans: Split, fitted_encoder: FeatureEncoder
) -> None:
    """Models registered before `tabular_service.models` became `scorers` name the old module."""
    enc = fitted_encoder
    model = LogisticRegression(C=0.3, max_iter=5000).fit(
        enc.design(enc.transform(loans.X_train), one_hot=True), loans.y_train
    )
    predictor = CreditPredictor(enc, LinearScorer.from_logistic(model, enc), 0.2, "logistic")
    current = pickle.dumps(predictor, protocol=2)  # protocol 2 names classes as "module\nname"
    old = current.replace(b"tabular_service.scorers\n", b"tabular_service.models\n")
    assert old != current and b"tabular_service.scorers" not in old
    with pytest.raises(ModuleNotFoundError, match="tabular_service.models"):
        pickle.loads(old)  # what a plain unpickler makes of an old registry model
    (tmp_path / "predictor.pkl").write_bytes(old)
    loaded = load_predictor(tmp_path)
    assert isinstance(loaded.scorer, LinearScorer)
    records = [EXAMPLE_APPLICATION]
    np.testing.assert_array_equal(
        loaded.predict_proba_records(records), predictor.predict_proba_records(records)
    )


def test_scratch_gb_scorer(loans: Split, fitted_encoder: FeatureEncoder) -> None:
    pytest.importorskip(
        "scratch_ml", reason="scratch_ml is not installed (pip install the workbook's scratch_ml)"
    )
    from scratch_ml.boosting import GradientBoostingClassifier

    enc = fitted_encoder
    model = GradientBoostingClassifier(n_estimators=20, max_leaf_nodes=8, random_state=0)
    model.fit(enc.design(enc.transform(loans.X_train), one_hot=False), loans.y_train)
    scorer = SklearnScorer(model, enc, one_hot=False)
    batch = enc.transform(loans.X_valid)
    p = scorer.score(batch)
    assert p.shape == (len(loans.y_valid),) and ((p > 0) & (p < 1)).all()
    np.testing.assert_array_equal(p, model.predict_proba(enc.design(batch, one_hot=False))[:, 1])


@pytest.mark.slow
def test_numpy_mlp_matches_torch_and_is_deterministic(
    loans: Split, fitted_encoder: FeatureEncoder
) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("lightning")
    from tabular_service.mlp import MLPConfig, NumpyMLPScorer, torch_probabilities, train_mlp

    enc = fitted_encoder
    train = (enc.transform(loans.X_train), loans.y_train)
    valid = (enc.transform(loans.X_valid), loans.y_valid)
    config = MLPConfig(max_epochs=3, patience=2)
    scorer, network = train_mlp(enc, train, valid, config=config, seed=3, return_network=True)
    assert isinstance(scorer, NumpyMLPScorer)
    assert not network.training  # exported in eval mode: dropout off
    batch = enc.transform(loans.X_test)
    np.testing.assert_allclose(
        scorer.score(batch), torch_probabilities(network, batch), rtol=0, atol=1e-6
    )
    assert [t.shape[1] for t in scorer.embeddings] == [1, 8, 8, 2, 6]  # min(8, (k+1)//2)
    again = train_mlp(enc, train, valid, config=config, seed=3)
    np.testing.assert_array_equal(again.score(batch), scorer.score(batch))
    assert scorer.info["best_epoch"] >= 0


def test_serving_modules_do_not_import_torch_or_sklearn() -> None:
    code = (
        "import sys; import tabular_service.scorers, tabular_service.mlp, "
        "tabular_service.predictor, tabular_service.features; "
        "bad = [m for m in ('torch', 'lightning', 'sklearn') if m in sys.modules]; "
        "assert not bad, bad"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
