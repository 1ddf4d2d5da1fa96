"""Open-loop load testing of the scoring service against its SLO.

- `openloop`: the constant-arrival-rate HTTP/1.1 generator (latency from the scheduled time).
- `slo`: the objective as data (docs/slo.json) and the check of a step against it.
- `sweep`: steps of increasing rate until the SLO breaks; the highest rate that holds it.
- `server`: start a server as a child process and time it to ready.
- `machine`: cores, load and versions, stored with every report.
- `cli`: `python -m tabular_service.loadtest`.
"""

from tabular_service.loadtest.openloop import LoadResult, encode_request, open_loop, run_open_loop
from tabular_service.loadtest.slo import DEFAULT_SLO, Slo, Verdict, check, load_slo
from tabular_service.loadtest.sweep import SweepResult, sweep

__all__ = [
    "DEFAULT_SLO",
    "LoadResult",
    "Slo",
    "SweepResult",
    "Verdict",
    "check",
    "encode_request",
    "load_slo",
    "open_loop",
    "run_open_loop",
    "sweep",
]
