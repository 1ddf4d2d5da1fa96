"""The weather contract's rules that span columns: physics and publication time.

A dew point above the temperature, or a gust below the sustained wind, is a broken observation;
an observation published before its hour would leak the future into features. The humidity
check is a batch check: the dataset's relative humidity deviates from the one computed from
temp and dewp on a few percent of rows (rounding, sensor timing), too many to quarantine, but
the median agrees to hundredths of a point unless a unit changed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa

from mlops_pipeline.contracts.schema import BatchCheck

DEWPOINT_TOLERANCE_F = 0.1
MAX_MEDIAN_HUMIDITY_GAP = 1.0
"""Percentage points between humid and the humidity computed from temp and dewp (median)."""
MIN_VALUES_FOR_DISTRIBUTION = 10


def row_checks() -> list[pa.Check]:
    """Frame checks named like the YAML's `row` rules; True where a row keeps the rule."""

    def dewpoint_not_above_temp(df: pd.DataFrame) -> pd.Series:
        known = df["temp"].notna() & df["dewp"].notna()
        return ~known | (df["dewp"] <= df["temp"] + DEWPOINT_TOLERANCE_F)

    def gust_not_below_speed(df: pd.DataFrame) -> pd.Series:
        known = df["wind_speed"].notna() & df["wind_gust"].notna()
        return ~known | (df["wind_gust"] >= df["wind_speed"])

    def obs_on_the_hour(df: pd.DataFrame) -> pd.Series:
        hour = df["obs_hour"]
        return hour.isna() | (hour == hour.dt.floor("h")).fillna(False)

    def recorded_after_observation(df: pd.DataFrame) -> pd.Series:
        known = df["obs_hour"].notna() & df["recorded_at"].notna()
        return ~known | (df["recorded_at"] >= df["obs_hour"]).fillna(False)

    rules = [
        dewpoint_not_above_temp,
        gust_not_below_speed,
        obs_on_the_hour,
        recorded_after_observation,
    ]
    return [pa.Check(rule, name=rule.__name__) for rule in rules]


def batch_checks() -> list[BatchCheck]:
    return [BatchCheck("humidity_matches_temp_dewp", _humidity_gap)]


def relative_humidity(temp_f: pd.Series, dewp_f: pd.Series) -> pd.Series:
    """Relative humidity (%) from temperature and dew point in degrees F (Magnus formula)."""
    t = (temp_f - 32.0) * 5.0 / 9.0
    d = (dewp_f - 32.0) * 5.0 / 9.0
    a, b = 17.625, 243.04
    return 100.0 * np.exp(a * d / (b + d) - a * t / (b + t))


def _humidity_gap(frame: pd.DataFrame) -> str | None:
    rows = frame[["temp", "dewp", "humid"]].dropna()
    if len(rows) < MIN_VALUES_FOR_DISTRIBUTION:
        return None
    gap = float((relative_humidity(rows["temp"], rows["dewp"]) - rows["humid"]).abs().median())
    if gap <= MAX_MEDIAN_HUMIDITY_GAP:
        return None
    return (
        f"humid differs from the humidity computed from temp and dewp (degrees F) by {gap:.1f} "
        f"points (median of {len(rows)} rows, at most {MAX_MEDIAN_HUMIDITY_GAP:g}): "
        "a unit change in temp or dewp?"
    )
