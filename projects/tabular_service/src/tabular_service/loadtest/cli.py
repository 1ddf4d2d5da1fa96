"""`python -m tabular_service.loadtest`: sweep a URL with open-loop steps and judge it by the SLO.

    python -m tabular_service.loadtest --url http://127.0.0.1:8000/v1/predict
    python -m tabular_service.loadtest --start-service --out bench-results/loadtest.json

Exit code 0 when the SLO holds at its target rate (PASS), 1 when it does not (FAIL), 2 when the
test could not run (bad arguments, the service did not start).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from tabular_service.loadtest.machine import machine_info
from tabular_service.loadtest.openloop import Endpoint, encode_request, json_body
from tabular_service.loadtest.server import ManagedServer, ServerStartError, child_env
from tabular_service.loadtest.slo import Slo, load_slo
from tabular_service.loadtest.sweep import (
    DEFAULT_RATES,
    QUICK_RATES,
    SweepResult,
    parse_rates,
    sweep,
)
from tabular_service.schema import EXAMPLE_APPLICATION

DEFAULT_URL = "http://127.0.0.1:8000/v1/predict"


def default_payload(url: str) -> object:
    """The single-row request body the URL expects: ours takes one application as the object,
    MLflow's scoring server (/invocations) a `dataframe_records` list."""
    if Endpoint.parse(url).path.rstrip("/").endswith("/invocations"):
        return {"dataframe_records": [EXAMPLE_APPLICATION]}
    return dict(EXAMPLE_APPLICATION)


def service_command() -> list[str]:
    return [sys.executable, "-m", "tabular_service.service"]


def start_service(
    url: str,
    startup_timeout: float,
    env: dict[str, str] | None = None,
    log_path: Path | None = None,
) -> ManagedServer:
    """Start this project's service on the URL's host and port (TABULAR_* env passed through)."""
    endpoint = Endpoint.parse(url)
    env = child_env(env)
    env.update(TABULAR_HOST=endpoint.host, TABULAR_PORT=str(endpoint.port))
    server = ManagedServer(
        service_command(),
        f"{endpoint.base_url}/readyz",
        env=env,
        startup_timeout=startup_timeout,
        name="tabular-service",
        log_path=log_path,
    )
    server.start()
    return server


def verdict_line(result: SweepResult, slo: Slo) -> tuple[bool, str]:
    """PASS when a step at or above the target rate met the SLO."""
    best = result.best
    passed = result.max_rate_at_slo is not None and result.max_rate_at_slo >= slo.target_rps
    if best is None:
        detail = "no step met the SLO"
    else:
        pct = slo.latency_percentile
        latency = getattr(best.result, f"p{pct}_ms")
        detail = (
            f"highest rate meeting the SLO: {best.result.offered_rps:g} req/s "
            f"(p{pct} {latency:.2f} ms, errors {best.result.error_rate:.3%})"
        )
    target = (
        f"target {slo.target_rps:g} req/s with p{slo.latency_percentile} <= {slo.latency_ms:g} ms "
        f"and error rate <= {slo.max_error_rate:.1%}"
    )
    return passed, f"{'PASS' if passed else 'FAIL'}: {detail}; {target}"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m tabular_service.loadtest",
        description="Open-loop load test (constant arrival rate) of one endpoint against the SLO.",
    )
    p.add_argument(
        "--url", default=DEFAULT_URL, help=f"endpoint to POST to (default {DEFAULT_URL})"
    )
    p.add_argument(
        "--rates",
        type=parse_rates,
        help="comma-separated req/s steps (default: a sweep up to 5000)",
    )
    p.add_argument(
        "--duration", type=float, default=5.0, help="measured seconds per step (default 5)"
    )
    p.add_argument(
        "--warmup", type=float, default=1.0, help="unmeasured seconds before each step (default 1)"
    )
    p.add_argument("--pause", type=float, default=1.0, help="seconds between steps (default 1)")
    p.add_argument(
        "--timeout", type=float, default=2.0, help="per-request timeout in s (default 2)"
    )
    p.add_argument("--max-connections", type=int, default=256, help="connection cap (default 256)")
    p.add_argument(
        "--payload",
        type=Path,
        help="JSON file with the request body (default: the example application)",
    )
    p.add_argument("--slo", type=Path, help="SLO JSON (default: docs/slo.json in the project home)")
    p.add_argument("--out", type=Path, help="write the JSON report here")
    p.add_argument("--quick", action="store_true", help="smoke test: fewer, shorter steps")
    p.add_argument(
        "--start-service",
        action="store_true",
        help="start python -m tabular_service.service on --url's port first",
    )
    p.add_argument(
        "--service-log",
        type=Path,
        help="keep the started service's log here (default: a temporary file, removed)",
    )
    p.add_argument(
        "--settle",
        type=float,
        default=5.0,
        help="idle seconds after a started service is ready (default 5)",
    )
    p.add_argument(
        "--startup-timeout",
        type=float,
        default=120.0,
        help="seconds to wait for /readyz (default 120)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        Endpoint.parse(args.url)
        slo = load_slo(args.slo)
        payload = (
            json.loads(args.payload.read_text()) if args.payload else default_payload(args.url)
        )
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rates = args.rates or (QUICK_RATES if args.quick else DEFAULT_RATES)
    duration, warmup = (
        (min(args.duration, 2.0), min(args.warmup, 0.5))
        if args.quick
        else (args.duration, args.warmup)
    )
    request = encode_request(Endpoint.parse(args.url), json_body(payload))

    machine = machine_info()  # before any load: its load average says how busy the machine was
    server: ManagedServer | None = None
    if args.start_service:
        try:
            server = start_service(args.url, args.startup_timeout, log_path=args.service_log)
        except ServerStartError as exc:
            print(f"error: the service did not start: {exc}", file=sys.stderr)
            return 2
        where = f" (log: {args.service_log})" if args.service_log else ""
        print(f"service ready in {server.start_to_ready_s:.2f} s{where}")
    try:
        if server is not None:
            # Ready is not idle: after a start from the model cache the service re-checks the
            # champion alias in the background (importing mlflow), which would land in the
            # first step.
            time.sleep(args.settle)
        print(f"open-loop sweep of POST {args.url}: {duration:g} s/step, {warmup:g} s warm-up")
        result = sweep(
            args.url,
            request,
            rates,
            duration=duration,
            warmup=warmup,
            slo=slo,
            timeout=args.timeout,
            max_connections=args.max_connections,
            pause=args.pause,
        )
    finally:
        if server is not None:
            server.stop()
    passed, line = verdict_line(result, slo)
    print(f"stopped: {result.stopped_because}")
    print(line)
    if args.out:
        report = {
            "url": args.url,
            "passed": passed,
            "verdict": line,
            "slo": slo.to_dict(),
            "settings": {
                "rates": list(rates),
                "duration_s": duration,
                "warmup_s": warmup,
                "pause_s": args.pause,
                "timeout_s": args.timeout,
                "max_connections": args.max_connections,
                "generator": "open-loop (tabular_service.loadtest.openloop)",
            },
            "service": {
                "started_by_loadtest": server is not None,
                "start_to_ready_s": server.start_to_ready_s if server else None,
            },
            **result.to_dict(),
            "machine": machine,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"report: {args.out}")
    return 0 if passed else 1
