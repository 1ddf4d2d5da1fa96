"""The deliberate feature bugs of the faulty challenger: each changes exactly its columns."""

from __future__ import annotations

import pandas as pd
import pytest

from mlops_pipeline.features.schema import RATE_FEATURES
from mlops_pipeline.rollout.faulty import FEATURE_BUGS, FeatureBugModel

ROW = pd.DataFrame(
    {
        "temp": [50.0], "dewp": [32.0], "precip": [0.05], "pressure": [1013.0],
        **{c: [0.25] for c in RATE_FEATURES}, "origin": ["EWR"],
    }
)  # fmt: skip


@pytest.mark.parametrize(
    ("bug", "expected"),
    [
        ("delay_rates_percent", {c: 25.0 for c in RATE_FEATURES}),
        ("temperature_celsius", {"temp": 10.0, "dewp": 0.0}),
        ("precip_hundredths", {"precip": 5.0}),
    ],
)
def test_each_bug_rescales_only_its_columns(bug, expected):
    """The unit slip on the named columns; every other column and the input are untouched."""
    before = ROW.copy()
    out = FEATURE_BUGS[bug](ROW)
    for column in ROW.columns.drop("origin"):
        assert out[column].iloc[0] == pytest.approx(expected.get(column, ROW[column].iloc[0]))
    assert out["origin"].iloc[0] == "EWR"
    pd.testing.assert_frame_equal(ROW, before)


def test_an_unknown_bug_is_refused():
    """A typo in the bug's name fails at construction, naming the choices."""
    with pytest.raises(ValueError, match="delay_rates_percent"):
        FeatureBugModel(model=None, bug="celsius")
