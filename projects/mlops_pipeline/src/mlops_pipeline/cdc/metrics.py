"""CDC lag: wall time from a transaction's commit in the source to its durable landing file.

The commit timestamp comes from the Begin message (the source's clock); the end is taken after the
rename and directory fsync of the last file holding the transaction. Source and consumer share a
clock here (same machine); across machines clock skew would add to the number.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from prometheus_client import Counter, Histogram

LAG_SECONDS = Histogram(
    "mlops_cdc_lag_seconds",
    "Seconds from a source transaction's commit to the durable landing file holding it.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
CHANGES = Counter("mlops_cdc_changes", "Changes landed by the CDC consumer.", ["table", "op"])


@dataclass
class LagRecorder:
    """Per-transaction lags: exported to Prometheus and kept as a list for percentiles."""

    lags: list[float] = field(default_factory=list)
    changes: list[int] = field(default_factory=list)
    """Changes in each transaction, so percentiles can be weighted per change."""

    def record(self, lag_seconds: float, n_changes: int) -> None:
        LAG_SECONDS.observe(lag_seconds)
        self.lags.append(lag_seconds)
        self.changes.append(n_changes)

    def percentiles(self, qs: tuple[float, ...] = (50, 99), per_change: bool = True) -> dict:
        """{'p50': ..., 'p99': ...} over transactions, or over changes (each change gets its
        transaction's lag) when `per_change`; NaN when nothing was recorded."""
        if not self.lags:
            return {f"p{q:g}": float("nan") for q in qs}
        lags = np.asarray(self.lags)
        if per_change:
            lags = np.repeat(lags, np.maximum(np.asarray(self.changes), 1))
        return {f"p{q:g}": float(np.percentile(lags, q)) for q in qs}
