"""The planes contract's rules that span columns."""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa

from mlops_pipeline.contracts.schema import BatchCheck


def row_checks() -> list[pa.Check]:
    """Frame checks named like the YAML's `row` rules; True where a row keeps the rule."""

    def engines_match_type(df: pd.DataFrame) -> pd.Series:
        engines = df["engines"]
        single = (df["type"] == "Fixed wing single engine").fillna(False).astype(bool)
        multi = (df["type"] == "Fixed wing multi engine").fillna(False).astype(bool)
        bad = (single & (engines != 1).fillna(False)) | (multi & (engines < 2).fillna(False))
        return ~bad.astype(bool)

    def built_before_recorded(df: pd.DataFrame) -> pd.Series:
        late = (df["year"] > df["recorded_at"].dt.year + 1).fillna(False).astype(bool)
        return ~late

    rules = [engines_match_type, built_before_recorded]
    return [pa.Check(rule, name=rule.__name__) for rule in rules]


def batch_checks() -> list[BatchCheck]:
    return []
