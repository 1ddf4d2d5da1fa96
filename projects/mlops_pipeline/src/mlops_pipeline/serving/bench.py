"""How many predictions per second the service answers within its 25 ms p99, beside its peers.

Each server runs as one process on loopback and is driven by `wrk` (C, epoll: the load
generator costs little CPU beside the server on a 2-core machine) at 1, 2, 4, ... open
connections for a few seconds each; a level counts when its p99 is within the objective and no
request failed. wrk keeps every connection busy (closed loop), so p99 is measured at the
throughput the server sustains; the README says so.

- ours: `python -m mlops_pipeline.serving` (Feast lookup + policy + model), micro-batching on
  (default) and off (`MLOPS_BATCH_SIZE=1`), the same request bodies;
- `mlflow models serve` on the same registered version, given the features inline (it cannot
  fetch them: the feature rows are looked up once beforehand);
- `feast serve` (Feast's own HTTP feature server) for the online lookup alone.

While our service runs, the CPU seconds it uses per level are recorded as the measured load
trace that `autoscaling.trace.MeasuredTrace` reads (format "mlops-load-trace/1").
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mlops_pipeline.paths import Paths

SLO_P99_S = 0.025
CONNECTIONS = (1, 2, 4, 8, 16, 32, 64)
_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


class WrkMissing(RuntimeError):
    """wrk is not installed (Debian: apt-get install wrk; `make system-deps` does it)."""


def wrk_script(bodies: Sequence[dict[str, Any]], path: str) -> str:
    """A wrk Lua script that POSTs the bodies round-robin as JSON to `path`."""
    quoted = ",".join("[==[" + json.dumps(b, separators=(",", ":")) + "]==]" for b in bodies)
    return (
        f"local bodies = {{{quoted}}}\n"
        "local i = 0\n"
        'local headers = {["Content-Type"] = "application/json"}\n'
        "request = function()\n"
        "  i = i % #bodies + 1\n"
        f'  return wrk.format("POST", "{path}", headers, bodies[i])\n'
        "end\n"
    )


def parse_wrk(output: str) -> dict[str, Any]:
    """Requests/s, latency percentiles (s), errors and non-2xx counts from `wrk --latency`."""

    def seconds(text: str) -> float:
        number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
        return float(number) * _UNITS[unit]

    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if rps is None:
        raise ValueError(f"no Requests/sec in wrk output:\n{output}")
    out: dict[str, Any] = {"rps": float(rps.group(1))}
    for pct in ("50", "75", "90", "99"):
        found = re.search(rf"^\s+{pct}%\s+(\S+)", output, re.MULTILINE)
        out[f"p{pct}_s"] = seconds(found.group(1)) if found else math.nan
    total = re.search(r"(\d+) requests in", output)
    out["requests"] = int(total.group(1)) if total else 0
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    out["non_2xx"] = int(non2xx.group(1)) if non2xx else 0
    errors = re.search(r"Socket errors:(.*)", output)
    out["socket_errors"] = sum(int(n) for n in re.findall(r"\d+", errors.group(1))) if errors else 0
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its reaped children (from /proc, in seconds)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def sweep(
    url: str,
    script: Path,
    *,
    seconds: float = 6.0,
    connections: Sequence[int] = CONNECTIONS,
    slo_p99_s: float = SLO_P99_S,
    pid: int | None = None,
    min_levels: int = 3,
    warmup_s: float = 2.0,
    progress: Callable[[str], None] = lambda line: None,
) -> dict[str, Any]:
    """wrk at each connection count; stops once p99 is 4x the objective (saturated), but not
    before `min_levels` levels: the load trace needs several (rps, CPU) samples, and a server
    whose tail is slow at one connection may still gain throughput at two or four. A warm-up
    of `warmup_s` at two connections runs first and is not recorded: a fresh process's first
    requests (lazy imports, first-call caches) would otherwise land in the first level's p99."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise WrkMissing("wrk is not installed: apt-get install wrk (or `make system-deps`)")
    if warmup_s > 0:
        warm = [wrk, "-t1", "-c2", f"-d{max(1, round(warmup_s))}s", "-s", str(script), url]
        subprocess.run(warm, capture_output=True, text=True, timeout=warmup_s + 60)
    levels = []
    started = time.monotonic()
    for n in connections:
        before = cpu_seconds(pid) if pid else None
        t0 = time.monotonic()
        duration = f"-d{max(1, round(seconds))}s"
        command = [wrk, "-t1", f"-c{n}", duration, "--latency", "-s", str(script), url]
        result = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
        level = {"connections": n, **parse_wrk(result.stdout + result.stderr)}
        level["wall_s"] = round(time.monotonic() - t0, 3)
        if before is not None:
            level["cpu_seconds"] = round(cpu_seconds(pid) - before, 3)  # type: ignore[arg-type]
            level["t"] = round(time.monotonic() - started, 3)
        level["within_slo"] = bool(
            level["p99_s"] <= slo_p99_s and not level["non_2xx"] and not level["socket_errors"]
        )
        levels.append(level)
        progress(
            f"c={n:3d} {level['rps']:8.1f} req/s  p50 {level['p50_s'] * 1e3:6.2f} ms  "
            f"p99 {level['p99_s'] * 1e3:7.2f} ms  non-2xx {level['non_2xx']}"
        )
        if level["p99_s"] > 4 * slo_p99_s and len(levels) >= min_levels:
            break
    good = [lv["rps"] for lv in levels if lv["within_slo"]]
    return {"max_rps_within_slo": max(good) if good else 0.0, "levels": levels}


def load_trace(levels: Sequence[dict[str, Any]], meta: dict[str, Any]) -> dict[str, Any]:
    """The sweep as an `autoscaling.trace.MeasuredTrace` file: one sample per level."""
    samples = [
        {"t": lv["t"], "rps": lv["rps"], "cpu_seconds": lv["cpu_seconds"]}
        for lv in levels
        if "cpu_seconds" in lv
    ]
    within = [lv["rps"] for lv in levels if lv.get("within_slo")]
    return {
        "format": "mlops-load-trace/1",
        "samples": samples,
        "max_rps_at_slo": max(within) if within else None,
        "meta": meta,
    }


def _inline_rows(paths: Paths, bodies: Sequence[dict[str, Any]], as_of: str) -> list[dict]:
    """The model inputs our service would build for each body (looked up once, here)."""
    import pandas as pd

    from mlops_pipeline.serving.online import OnlineFeatures
    from mlops_pipeline.serving.policy import apply_feature_policy
    from mlops_pipeline.serving.schemas import FlightRequest
    from mlops_pipeline.serving.scoring import model_row
    from mlops_pipeline.serving.settings import parse_instant

    at = pd.Timestamp(parse_instant(as_of, "as_of"))
    flights = [FlightRequest.model_validate(b) for b in bodies]
    rows = []
    for flight, reading in zip(
        flights, OnlineFeatures(paths.feature_repo).read(flights), strict=True
    ):
        row = model_row(flight, apply_feature_policy(reading, at))
        rows.append(
            {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        )
    return rows


def _cli(name: str) -> str:
    """A console script of this interpreter's environment (feast, mlflow), else PATH's."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else (shutil.which(name) or name)


def _mlflow_env(uri: str) -> dict[str, str]:
    """The child's environment: this registry for tracking AND registry lookups (the parent's
    may point elsewhere), and this interpreter's bin/ first (mlflow execs `uvicorn` by name)."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return {**os.environ, "MLFLOW_TRACKING_URI": uri, "MLFLOW_REGISTRY_URI": uri, "PATH": path}


def _sweep_server(
    argv: Callable[[int], list[str]],
    name: str,
    ready_path: str,
    script: Path,
    work: Path,
    *,
    env: dict[str, str],
    seconds: float,
    connections: Sequence[int],
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """Start a peer server on a free loopback port, sweep it with wrk, and stop it (always)."""
    from mlops_pipeline.rollout.processes import ManagedProcess, free_port, wait_http

    port = free_port()
    log = work / f"{name.replace(' ', '-')}.log"
    server = ManagedProcess.start(argv(port), name=name, log_path=log, env=env)
    try:
        wait_http(f"http://127.0.0.1:{port}{ready_path}", 180, process=server)
        return sweep(
            f"http://127.0.0.1:{port}", script, seconds=seconds, connections=connections,
            pid=server.pid, progress=progress,
        )  # fmt: skip
    finally:
        server.stop()


def measure_serving(
    paths: Paths,
    as_of: str,
    bodies: Sequence[dict[str, Any]],
    work: Path,
    *,
    seconds: float = 6.0,
    connections: Sequence[int] = CONNECTIONS,
    progress: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
) -> dict[str, Any]:
    """Our service (batching on and off), `mlflow models serve` and `feast serve`, one after
    the other on the same machine; returns each sweep, the ratios and the measured load trace."""
    from mlops_pipeline.features.feast_repo import feature_refs
    from mlops_pipeline.rollout.processes import start_service
    from mlops_pipeline.serving.model import load_model
    from mlops_pipeline.training.tracking import store_uri

    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"slo_p99_s": SLO_P99_S, "seconds_per_level": seconds}
    predict_script = work / "predict.lua"
    predict_script.write_text(wrk_script(bodies, "/v1/predict"))
    for label, extra in (("service", {}), ("service_without_batching", {"MLOPS_BATCH_SIZE": "1"})):
        progress(f"[serving] {label}")
        service = start_service(
            paths.home, "champion", role=label, log_dir=work, clock="fixed", as_of=as_of,
            env={**os.environ, **extra},
        )  # fmt: skip
        try:
            results[label] = sweep(
                service.url, predict_script, seconds=seconds, connections=connections,
                pid=service.process.pid, progress=progress,
            )  # fmt: skip
        finally:
            service.stop()

    version = load_model(paths, "flight-delay", "champion").version
    rows = _inline_rows(paths, bodies, as_of)
    mlflow_script = work / "invocations.lua"
    mlflow_script.write_text(
        wrk_script([{"dataframe_records": [row]} for row in rows], "/invocations")
    )
    progress(f"[serving] mlflow models serve (version {version}, features inline)")
    results["mlflow_models_serve"] = _sweep_server(
        lambda port: [_cli("mlflow"), "models", "serve", "-m", f"models:/flight-delay/{version}",
                      "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", "1"],
        "mlflow models serve", "/ping", mlflow_script, work,
        env=_mlflow_env(store_uri(paths.mlruns)), seconds=seconds, connections=connections,
        progress=progress,
    )  # fmt: skip

    refs = feature_refs()
    lookups = [
        {
            "features": refs,
            "entities": {
                "origin": [b["origin"]], "carrier": [b["carrier"]],
                "route": [f"{b['origin']}-{b['dest']}"], "tailnum": [b.get("tailnum") or ""],
            },
        }
        for b in bodies
    ]  # fmt: skip
    feast_script = work / "feast.lua"
    feast_script.write_text(wrk_script(lookups, "/get-online-features"))
    progress("[serving] feast serve (lookup only)")
    results["feast_serve_lookup_only"] = _sweep_server(
        lambda port: [_cli("feast"), "-c", str(paths.feature_repo), "serve", "-h", "127.0.0.1",
                      "-p", str(port), "-w", "1", "--no-access-log", "--max-requests", "0"],
        "feast serve", "/health", feast_script, work,
        env=dict(os.environ), seconds=seconds, connections=connections, progress=progress,
    )  # fmt: skip

    ours = results["service"]["max_rps_within_slo"]
    results["target_rps"] = 500
    results["ratios"] = {
        f"service_vs_{peer}": (ours / results[peer]["max_rps_within_slo"])
        if results[peer]["max_rps_within_slo"]
        else None
        for peer in ("service_without_batching", "mlflow_models_serve", "feast_serve_lookup_only")
    }
    results["load_trace"] = load_trace(
        results["service"]["levels"],
        {"cores": os.cpu_count(), "model_version": version, "workers": 1, "as_of": as_of},
    )
    return results
