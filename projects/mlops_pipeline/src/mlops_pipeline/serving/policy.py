"""The missing- and stale-feature policy: what the service does when the online store lags.

A prediction is made as of a moment (`as_of`). For each feature view the online store returns
the entity's latest row and when its values became known (`event_timestamp`), or nothing.

- No row (an unknown airport, a new aircraft, a view never materialised): the view's features
  are **missing**.
- A row older than the view's TTL (as_of - event_timestamp > ttl; exactly TTL old still
  counts, as in the point-in-time join of checkpoint 2.3): the features are **stale**. A
  stalled weather feed then degrades predictions instead of silently serving last night's
  weather. Views without a TTL (aircraft attributes) are never stale.
- Otherwise the row's values are used as they are; a null inside a fresh row (no wind gust
  reported) is data the model was trained with, so it is passed through and not flagged.

Missing and stale features are replaced by their default (NaN unless given: both model
families handle missing values the way they learned to, the logistic pipeline with the training
median, gradient boosting with its missing-value branches), named in the response, counted in
`mlops_features_missing_total`, and the prediction is marked degraded. The policy never raises
for a lagging store: a prediction with a flag beats a 500 during an incident upstream.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from mlops_pipeline.features.tables import VIEWS, View

__all__ = ["PolicyOutcome", "ViewReading", "apply_feature_policy"]


@dataclass(frozen=True)
class ViewReading:
    """What the online store returned for one feature view of one flight."""

    values: Mapping[str, Any]
    """Feature name -> value (None where the store holds a null)."""
    event_timestamp: pd.Timestamp | None
    """When the row's values became known (UTC); None when the store had no row."""


@dataclass
class PolicyOutcome:
    """Model-ready feature values for one flight, and what the policy had to do to get them."""

    features: dict[str, float] = field(default_factory=dict)
    """Every feature of every view: the stored value, or its default (NaN unless given)."""
    missing: list[str] = field(default_factory=list)
    """Features with no row online, in view order then feature order."""
    stale: list[str] = field(default_factory=list)
    """Features whose row was older than the view's TTL, same order."""
    staleness_seconds: dict[str, float] = field(default_factory=dict)
    """Age of each view's row at as_of, for the views that had one (negative ages clip to 0)."""
    views: dict[str, str] = field(default_factory=dict)
    """Each view's verdict: "ok", "missing" or "stale"."""

    @property
    def degraded(self) -> bool:
        return bool(self.missing or self.stale)


def _number(value: Any) -> float:
    """A stored value as a float (None becomes NaN)."""
    if value is None:
        return math.nan
    return float(value)


def apply_feature_policy(
    readings: Mapping[str, ViewReading | None],
    as_of: pd.Timestamp,
    views: Mapping[str, View] = VIEWS,
    defaults: Mapping[str, float] | None = None,
) -> PolicyOutcome:
    """Apply the missing/stale policy to one flight's online readings (see the module doc).

    `readings` maps view name -> reading; a view absent from it, or mapped to None, or with
    `event_timestamp` None, is missing. `as_of` must be timezone-aware (UTC). `defaults` maps a
    feature to the value used when it is missing or stale; unlisted features default to NaN.
    The outcome lists every feature of every view in `views`, in their declared order.
    """
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware (UTC)")
    defaults = defaults or {}
    outcome = PolicyOutcome()
    # BEGIN SOLUTION 2.10: per view: no row -> missing; older than the TTL -> stale; else use it
    for name, view in views.items():
        reading = readings.get(name)
        if reading is None or reading.event_timestamp is None:
            verdict = "missing"
        else:
            age = as_of - reading.event_timestamp
            outcome.staleness_seconds[name] = max(age.total_seconds(), 0.0)
            verdict = "stale" if view.ttl is not None and age > view.ttl else "ok"
        outcome.views[name] = verdict
        for feature in view.features:
            if verdict == "ok":
                outcome.features[feature] = _number(reading.values.get(feature))  # type: ignore[union-attr]
                continue
            outcome.features[feature] = float(defaults.get(feature, math.nan))
            (outcome.missing if verdict == "missing" else outcome.stale).append(feature)
    # END SOLUTION
    return outcome
