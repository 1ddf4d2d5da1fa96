"""Data quality of the served features: what may be missing, and what ranges values must keep.

The ranges come from the data contracts (`contracts/*.yaml`), the promises producers made, so
a unit change upstream (Celsius for Fahrenheit, hours for minutes) that slipped past the
landing checks still shows here as values outside the contract. Features that no contract
describes get the range their definition implies (a rate is a share in [0, 1], the hour of
day is 0-23); plane age derives from the planes contract's year built.

Missing values are expected for some features and say nothing about quality: the contract
says `wind_gust` is missing when no gusts were reported. Those are listed in
`MISSING_IS_INFORMATION` and left out of the missing-rate checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd

from mlops_pipeline.contracts.spec import load_contract
from mlops_pipeline.features.schema import (
    CALENDAR_FEATURES,
    CATEGORICAL_FEATURES,
    NUMERIC_FEATURES,
    PLANE_FEATURES,
    RATE_FEATURES,
    WEATHER_FEATURES,
)
from mlops_pipeline.features.tables import PLANES_REFERENCE_YEAR

__all__ = ["MISSING_IS_INFORMATION", "Range", "feature_ranges", "range_violations"]

MISSING_IS_INFORMATION = ("wind_gust",)
"""Missing by design (weather contract: 'missing when no gusts were reported')."""


@dataclass(frozen=True)
class Range:
    """The values a feature may take, and where that promise comes from."""

    feature: str
    source: str
    low: float | None = None
    high: float | None = None
    allowed: tuple[str, ...] | None = None

    def violations(self, values: pd.Series) -> np.ndarray:
        """True for each present value outside the range or the allowed set."""
        if self.allowed is not None:
            present = values.notna().to_numpy()
            allowed = values.astype("string").isin(self.allowed).fillna(False).to_numpy(bool)
            return present & ~allowed
        numbers = pd.to_numeric(values, errors="coerce").to_numpy(np.float64, na_value=np.nan)
        bad = np.zeros(numbers.shape, dtype=bool)
        with np.errstate(invalid="ignore"):  # NaN compares False: missing is not a violation
            if self.low is not None:
                bad |= numbers < self.low
            if self.high is not None:
                bad |= numbers > self.high
        return bad


_DEFINED = {
    "sched_hour": (0.0, 23.0),
    "sched_dow": (0.0, 6.0),
    "month": (1.0, 12.0),
}


@cache
def feature_ranges() -> dict[str, Range]:
    """Every model feature's range: from the contracts where one applies, else by definition."""
    weather, flights, planes = (load_contract(t) for t in ("weather", "flights", "planes"))
    ranges: dict[str, Range] = {}
    for feature in WEATHER_FEATURES:
        column = weather.column(feature)
        ranges[feature] = Range(feature, f"weather v{weather.version}", column.min, column.max)
    distance = flights.column("distance")
    ranges["distance"] = Range(
        "distance", f"flights v{flights.version}", distance.min, distance.max
    )
    for feature in ("seats", "engines"):
        column = planes.column(feature)
        ranges[feature] = Range(feature, f"planes v{planes.version}", column.min, column.max)
    year = planes.column("year")
    ranges["plane_age"] = Range(
        "plane_age",
        f"planes v{planes.version} (year built)",
        None if year.max is None else PLANES_REFERENCE_YEAR - year.max,
        None if year.min is None else PLANES_REFERENCE_YEAR - year.min,
    )
    for feature in RATE_FEATURES:
        ranges[feature] = Range(feature, "definition (a share)", 0.0, 1.0)
    for feature, (low, high) in _DEFINED.items():
        ranges[feature] = Range(feature, "definition (calendar)", low, high)
    for feature in CATEGORICAL_FEATURES:
        column = flights.column(feature)
        ranges[feature] = Range(feature, f"flights v{flights.version}", allowed=column.allowed)
    missing = set(NUMERIC_FEATURES + CATEGORICAL_FEATURES) - set(ranges)
    assert not missing, f"features without a range: {sorted(missing)}"
    assert set(CALENDAR_FEATURES) | set(PLANE_FEATURES) <= set(ranges)
    return ranges


def range_violations(frame: pd.DataFrame, features: list[str]) -> dict[str, dict[str, object]]:
    """Per feature with any violation: how many rows, their share and up to 5 example values."""
    ranges = feature_ranges()
    out: dict[str, dict[str, object]] = {}
    for feature in features:
        if feature not in ranges:
            raise ValueError(f"no range known for feature {feature!r}")
        bad = ranges[feature].violations(frame[feature])
        count = int(bad.sum())
        if count:
            examples = pd.unique(frame.loc[bad, feature].astype(object))[:5]
            out[feature] = {
                "rows": count,
                "share": count / max(len(frame), 1),
                "examples": [v.item() if isinstance(v, np.generic) else v for v in examples],
                "range": ranges[feature],
            }
    return out
