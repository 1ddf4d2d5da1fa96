"""A rate sweep: constant-rate steps of increasing rate until the SLO breaks.

One step answers "does the SLO hold at r requests/s?"; the sweep finds the highest r where it
does. Steps get their own warm-up (new connections, caches hot again after the pause) and a
pause between them so a backlog from one step cannot leak into the next. A single failed step
on a shared machine can be noise, so the sweep stops only after two failures in a row, or at once
when the server clearly could not keep up (achieved rate below the SLO's fraction of offered).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tabular_service.loadtest.openloop import LoadResult, run_open_loop
from tabular_service.loadtest.slo import DEFAULT_SLO, Slo, Verdict, check

DEFAULT_RATES: tuple[float, ...] = (250, 500, 750, 1000, 1250, 1500, 2000, 2500, 3000, 4000, 5000)
QUICK_RATES: tuple[float, ...] = (250, 500, 1000, 1500, 2000, 3000)


@dataclass(frozen=True)
class Step:
    result: LoadResult
    verdict: Verdict

    def to_dict(self) -> dict[str, object]:
        return {
            **self.result.to_dict(),
            "slo_ok": self.verdict.ok,
            "slo_reasons": list(self.verdict.reasons),
        }


@dataclass(frozen=True)
class SweepResult:
    steps: tuple[Step, ...]
    max_rate_at_slo: float | None  # highest offered rate whose step met the SLO
    stopped_because: str

    @property
    def best(self) -> Step | None:
        ok = [s for s in self.steps if s.verdict.ok]
        return max(ok, key=lambda s: s.result.offered_rps) if ok else None

    def to_dict(self) -> dict[str, object]:
        best = self.best
        return {
            "max_rate_at_slo": self.max_rate_at_slo,
            "p99_ms_at_max_rate": best.result.p99_ms if best else None,
            "stopped_because": self.stopped_because,
            "steps": [s.to_dict() for s in self.steps],
        }


def parse_rates(text: str) -> tuple[float, ...]:
    """'250,500,1e3' -> (250.0, 500.0, 1000.0); sorted, positive, no duplicates."""
    try:
        rates = sorted({float(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise ValueError(f"rates must be comma-separated numbers, got {text!r}") from None
    if not rates or rates[0] <= 0:
        raise ValueError(f"rates must be positive, got {text!r}")
    return tuple(rates)


def format_step(r: LoadResult, v: Verdict) -> str:
    """One table row: the numbers a reader needs to see why a step passed or failed."""
    mark = "ok  " if v.ok else "FAIL"
    return (
        f"{r.offered_rps:7.0f} {r.achieved_rps:8.0f} {r.p50_ms:8.2f} {r.p99_ms:8.2f} "
        f"{r.max_ms:8.1f} {r.error_rate:8.3%} {r.connections:5d} {r.generator_cpu:5.2f}  {mark} "
        + "; ".join(v.reasons)
    )


STEP_HEADER = (
    "offered achieved  p50(ms)  p99(ms)  max(ms)   errors conns  gcpu  SLO\n"
    "------- -------- -------- -------- -------- -------- ----- -----  ----"
)


def sweep(
    url: str,
    request: bytes,
    rates: Sequence[float] = DEFAULT_RATES,
    *,
    duration: float = 5.0,
    warmup: float = 1.0,
    slo: Slo = DEFAULT_SLO,
    timeout: float = 2.0,
    max_connections: int = 256,
    pause: float = 1.0,
    max_failures: int | None = 2,
    progress: Callable[[str], None] | None = print,
    runner: Callable[..., LoadResult] = run_open_loop,
) -> SweepResult:
    """Run the steps in increasing order; stop at saturation or after `max_failures` SLO failures
    in a row (None: only at saturation, to find the highest rate sustained regardless of latency,
    as the peer benchmark does)."""
    steps: list[Step] = []
    best: float | None = None
    failures = 0
    stopped = "all rates ran"
    if progress:
        progress(STEP_HEADER)
    for i, rate in enumerate(sorted(rates)):
        if i and pause > 0:
            time.sleep(pause)
        result = runner(
            url,
            request,
            rate,
            duration,
            warmup=warmup,
            timeout=timeout,
            max_connections=max_connections,
        )
        verdict = check(result, slo)
        steps.append(Step(result, verdict))
        if progress:
            progress(format_step(result, verdict))
        if verdict.ok:
            failures = 0
            best = rate if best is None else max(best, rate)
            continue
        failures += 1
        if verdict.saturated:
            stopped = f"saturated at {rate:g}/s"
            break
        if max_failures is not None and failures >= max_failures:
            stopped = f"SLO failed {failures} times in a row (at {rate:g}/s)"
            break
    return SweepResult(tuple(steps), best, stopped)
