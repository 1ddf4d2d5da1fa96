"""The service level objective, as data, and the check of one load-test step against it.

The numbers live in `docs/slo.json` (next to the prose in `docs/slo.md`) so that the document, the
load test and the benchmark cannot disagree. The same values are built in here as `DEFAULT_SLO`
because an installed package has no docs/ directory; a test keeps the two identical.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from tabular_service.loadtest.openloop import LoadResult
from tabular_service.tracking import project_home

#: Where `load_slo()` looks when no path is given (relative to `tracking.project_home()`).
SLO_FILE = Path("docs") / "slo.json"


@dataclass(frozen=True)
class Slo:
    """What a load-test step must show for the service to meet its objective."""

    name: str = "credit-default scoring"
    endpoint: str = "POST /v1/predict"
    request: str = "one loan application (single row)"
    availability: float = 0.999  # share of requests that must succeed (2xx in time)
    latency_percentile: int = 99  # one of 50, 90, 95, 99
    latency_ms: float = 20.0  # that percentile, measured from the scheduled send time
    target_rps: float = 1000  # the rate the objective must hold at...
    cores: int = 2  # ...on this many cores
    min_achieved_fraction: float = 0.95  # below this share of the offered rate: not sustained
    error_budget_window_days: int = 30

    @property
    def max_error_rate(self) -> float:
        """The error budget as a rate: 1 - availability (0.1 % for 99.9 %)."""
        return round(1.0 - self.availability, 12)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Slo:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown SLO field(s): {', '.join(unknown)}")
        slo = cls(**data)  # type: ignore[arg-type]
        if not 0.0 < slo.availability <= 1.0:
            raise ValueError(f"availability must be in (0, 1], got {slo.availability}")
        if slo.latency_percentile not in (50, 90, 95, 99):
            raise ValueError(
                f"latency_percentile must be 50, 90, 95 or 99, got {slo.latency_percentile}"
            )
        if slo.latency_ms <= 0 or slo.target_rps <= 0:
            raise ValueError("latency_ms and target_rps must be positive")
        return slo


DEFAULT_SLO = Slo()


def load_slo(path: Path | str | None = None) -> Slo:
    """The SLO from `path`, else $TABULAR_SLO, else <project home>/docs/slo.json, else the
    built-in default (an installed package run outside the project has no docs/)."""
    if path is None:
        env = os.environ.get("TABULAR_SLO")
        if env:
            path = env
        else:
            candidate = project_home() / SLO_FILE
            if not candidate.is_file():
                return DEFAULT_SLO
            path = candidate
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"SLO file not found: {path}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"SLO file {path} is not valid JSON: {exc}") from None
    return Slo.from_dict(data)


@dataclass(frozen=True)
class Verdict:
    """Whether a step met the SLO, and if not, every reason why (empty when it did)."""

    ok: bool
    reasons: tuple[str, ...] = ()
    saturated: bool = False  # the server did not keep up with the offered rate


def check(result: LoadResult, slo: Slo = DEFAULT_SLO) -> Verdict:
    """Check one constant-rate step: error rate, tail latency, and that the rate was sustained."""
    reasons: list[str] = []
    if result.error_rate > slo.max_error_rate:
        reasons.append(
            f"error rate {result.error_rate:.3%} > {slo.max_error_rate:.3%} "
            f"({result.errors} of {result.count})"
        )
    latency = getattr(result, f"p{slo.latency_percentile}_ms")
    if not latency <= slo.latency_ms:  # also catches inf (no responses at all)
        reasons.append(f"p{slo.latency_percentile} {latency:.1f} ms > {slo.latency_ms:g} ms")
    saturated = result.achieved_rps < slo.min_achieved_fraction * result.offered_rps
    if saturated:
        reasons.append(
            f"achieved {result.achieved_rps:.0f}/s < {slo.min_achieved_fraction:.0%} "
            f"of offered {result.offered_rps:.0f}/s"
        )
    return Verdict(ok=not reasons, reasons=tuple(reasons), saturated=saturated)
