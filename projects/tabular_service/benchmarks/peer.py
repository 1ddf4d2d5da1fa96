"""Peer benchmark: this service against `mlflow models serve`, same model, same machine, one run.

    python benchmarks/peer.py                        # full sweep, JSON to bench-results/
    python benchmarks/peer.py --quick                # smoke test: fewer, shorter steps
    python benchmarks/peer.py --markdown bench-results/tabular_service.md

Both servers load the registry champion (models:/credit-default@champion) from the same
TABULAR_HOME and get the same single-row request, the same open-loop generator, the same rate
steps and the same SLO bound (docs/slo.json: p99 <= 20 ms, error rate <= 0.1 %). They run one
at a time, never together, so neither steals the other's cores; the generator shares the machine
with whichever is running, equally for both. The result per server is the highest rate whose step
met the SLO; the ratio ours / MLflow is the headline number. Also reported: the highest rate each
sustained regardless of latency (achieved >= 95 % of offered, errors within budget) and the p99 of
both at every rate both ran.

Unlike the CLI, each sweep goes on past SLO failures until the server saturates, so the highest
rate each one sustains regardless of latency is measured too.

Exit codes: 0 done, 1 a server failed to start, 2 no trained registry (run `make train`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.request
from pathlib import Path

from tabular_service.loadtest.cli import default_payload, service_command
from tabular_service.loadtest.machine import load_average, machine_info
from tabular_service.loadtest.openloop import Endpoint, encode_request, json_body, run_open_loop
from tabular_service.loadtest.server import (
    ManagedServer,
    ServerStartError,
    child_env,
    free_port,
)
from tabular_service.loadtest.slo import Slo, load_slo
from tabular_service.loadtest.sweep import SweepResult, parse_rates, sweep

PROJECT = Path(__file__).resolve().parents[1]
MODEL_URI = "models:/credit-default@champion"
#: Finer at the low end than the CLI's default: the peer may top out at tens of req/s.
PEER_RATES = (10, 25, 50, 75, 100, 150, 200, 300, 400, 500, 750, 1000, 1250, 1500, 1750, 2000, 2500)
QUICK_RATES = (25, 100, 250, 500, 1000, 1500)


def load_note(load_average: list[float] | None, cores: int) -> str:
    """The report's caveat, from how busy the machine was when the run began.

    Both servers and the generator share the cores, so other work on the machine moves the
    numbers; the report says so rather than leaving the reader to guess.
    """
    if load_average is None:
        return "The machine's load was not measured (no load average on this platform)."
    if load_average[0] < 0.5 * cores:
        return "The machine had no other significant load when the run began."
    return (
        f"The machine was busy when the run began (1-minute load average {load_average[0]:g} "
        f"on {cores} cores), so the numbers are indicative; rerun on an idle machine."
    )


def champion_version(home: Path) -> str:
    """The version the champion alias points to; SystemExit(2) with advice when there is none."""
    db = home / "mlruns" / "mlflow.db"
    advice = f"Train and register a model first: `make train` (or TABULAR_HOME={home} ...)."
    if not db.is_file() and not os.environ.get("TABULAR_TRACKING_URI"):
        print(f"peer benchmark: no trained registry under {home} (no {db}).\n{advice}")
        raise SystemExit(2)
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from tabular_service.tracking import tracking_uri

    uri = tracking_uri(home)
    try:
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        return str(client.get_model_version_by_alias("credit-default", "champion").version)
    except MlflowException as exc:
        print(f"peer benchmark: {MODEL_URI} does not resolve in {uri}: {exc}\n{advice}")
        raise SystemExit(2) from None


def post_once(url: str, payload: object) -> tuple[int, str]:
    """One request before the sweep: fails loudly when the payload is wrong for the server."""
    req = urllib.request.Request(
        url, data=json_body(payload), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()[:300]
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()[:300]


def run_server(
    name: str,
    command: list[str],
    env: dict[str, str],
    base: str,
    ready_path: str,
    path: str,
    args: argparse.Namespace,
    slo: Slo,
    *,
    warm_restart: bool,
) -> dict[str, object]:
    """Start one server (twice when `warm_restart`: the second start is timed), sweep, stop."""
    ready_url, url = base + ready_path, base + path
    payload = default_payload(url)  # the same application, in the shape each server expects
    print(f"\n== {name}: {' '.join(command)}")
    times: dict[str, float] = {}
    server = ManagedServer(command, ready_url, env=env, startup_timeout=180, name=name)
    times["first_start_s"] = server.start()
    try:
        if warm_restart:  # the first start filled the model cache; time a start that finds it
            server.stop()
            time.sleep(0.5)
            times["warm_start_s"] = server.start()
        print("   start-to-ready: " + ", ".join(f"{k} {v:.2f} s" for k, v in times.items()))
        # Let start-up work finish first (ours re-checks the champion alias in the background
        # after a start from the cache), so it is not billed to the first step.
        time.sleep(args.settle)
        # Exercise lazy initialisation (imports on first use, caches) before anything is measured.
        request = encode_request(Endpoint.parse(url), json_body(payload))
        run_open_loop(url, request, max(args.rates[0], 20), args.prewarm, timeout=args.timeout)
        ready_body = urllib.request.urlopen(ready_url, timeout=5).read().decode()[:300]
        status, body = post_once(url, payload)
        print(f"   check: POST {path} -> {status} {body[:120]}")
        if status != 200:
            raise ServerStartError(f"{name}: POST {url} answered {status}: {body}")
        load_before = load_average()
        result: SweepResult = sweep(
            url,
            request,
            args.rates,
            duration=args.duration,
            warmup=args.warmup,
            slo=slo,
            timeout=args.timeout,
            pause=args.pause,
            max_failures=None,  # on to saturation: the sustained rate is compared too
        )
        load_after = load_average()
    finally:
        server.stop()
    print(f"   stopped: {result.stopped_because}; max rate at SLO: {result.max_rate_at_slo}")
    sustained = [
        s.result.offered_rps
        for s in result.steps
        if not s.verdict.saturated and s.result.error_rate <= slo.max_error_rate
    ]
    shown = ["python" if part == sys.executable else part for part in command]
    return {
        "command": " ".join(shown),
        "url": url,
        "readyz": ready_body,
        "start_to_ready_s": times,
        "load_average_before_after": [
            None if load is None else load[0] for load in (load_before, load_after)
        ],
        # Throughput regardless of latency; a lower bound unless a step saturated.
        "max_sustained_rps": max(sustained) if sustained else None,
        "saturated": any(s.verdict.saturated for s in result.steps),
        **result.to_dict(),
    }


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def compare(servers: dict[str, dict]) -> dict[str, object]:
    """Side-by-side numbers: p99 at each rate both ran, sustained-rate ratio, and the edge cases."""
    ours, theirs = servers.get("tabular_service"), servers.get("mlflow_models_serve")
    if not ours or not theirs:
        return {}
    by_rate = {s["offered_rps"]: s["p99_ms"] for s in theirs["steps"]}
    common = [
        {"rate": s["offered_rps"], "ours": s["p99_ms"], "mlflow": by_rate[s["offered_rps"]]}
        for s in ours["steps"]
        if s["offered_rps"] in by_rate
    ]
    a, b = ours["max_sustained_rps"], theirs["max_sustained_rps"]
    return {
        "p99_ms_at_common_rates": common,
        "sustained_ratio": a / b if a and b else None,
        "ours_not_saturated": not ours["saturated"],
        "mlflow_never_met_slo": theirs["max_rate_at_slo"] is None
        and ours["max_rate_at_slo"] is not None,
        "mlflow_lowest_rate": theirs["steps"][0]["offered_rps"] if theirs["steps"] else None,
    }


def markdown(report: dict) -> str:
    """A README-ready table plus the caveats needed to read it."""
    slo, settings = report["slo"], report["settings"]
    rows = [
        "| server | max req/s at SLO | p99 at that rate | start-to-ready |",
        "|---|---:|---:|---:|",
    ]
    labels = {
        "tabular_service": "this service (FastAPI, `python -m tabular_service.service`)",
        "mlflow_models_serve": "`mlflow models serve --env-manager local`",
    }
    for key, label in labels.items():
        s = report["servers"].get(key)
        if s is None:
            continue
        rate = s["max_rate_at_slo"]
        p99 = s["p99_ms_at_max_rate"]
        times = s["start_to_ready_s"]
        start = times.get("warm_start_s", times.get("first_start_s"))
        kind = " (model cached)" if "warm_start_s" in times else ""
        rows.append(
            f"| {label} | {'none' if rate is None else f'{rate:g}'} | "
            f"{'-' if p99 is None else f'{p99:.1f} ms'} | {start:.2f} s{kind} |"
        )
    m = report["machine"]
    ratio = report["ratio_ours_to_mlflow"]
    comparison = report.get("comparison", {})
    if ratio is not None:
        ratio_text = f"**{ratio:.1f}x**"
    elif comparison.get("mlflow_never_met_slo"):
        ratio_text = (
            "**unbounded**: MLflow met the SLO at no step "
            f"(not even {comparison['mlflow_lowest_rate']:g} req/s)"
        )
    else:
        ratio_text = "**n/a**"
    common = comparison.get("p99_ms_at_common_rates", [])
    if common:
        rows += [
            "",
            "| req/s offered | " + " | ".join(f"{c['rate']:g}" for c in common) + " |",
            "|---|" + "---:|" * len(common),
            "| p99 ours (ms) | " + " | ".join(_ms(c["ours"]) for c in common) + " |",
            "| p99 MLflow (ms) | " + " | ".join(_ms(c["mlflow"]) for c in common) + " |",
        ]
    sustained = comparison.get("sustained_ratio")
    if sustained is not None:
        bound = (
            " (lower bound: ours did not saturate)" if comparison.get("ours_not_saturated") else ""
        )
        ratio_text += f"; highest rate sustained regardless of latency: {sustained:.1f}x{bound}"
    lines = [
        *rows,
        "",
        f"Ratio ours / MLflow at the SLO: {ratio_text}. "
        f"SLO: single-row POST, p{slo['latency_percentile']} <= {slo['latency_ms']:g} ms, "
        f"error rate <= {1 - slo['availability']:.1%}, open-loop steps of "
        f"{settings['duration_s']:g} s after {settings['warmup_s']:g} s warm-up.",
        f"Machine: {m['cpu']}, {m['usable_cores']} cores (generator and server share them), "
        f"Python {m['python']}, load average at start {m['load_average']}. {report['note']}",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--home", type=Path, help="TABULAR_HOME with the registry (default: env/project)"
    )
    p.add_argument("--out", type=Path, default=Path("bench-results/tabular_service.json"))
    p.add_argument("--markdown", type=Path, help="also write the markdown table here")
    p.add_argument("--quick", action="store_true", help="smoke test: fewer, shorter steps")
    p.add_argument("--rates", type=parse_rates, help="comma-separated req/s steps")
    p.add_argument("--duration", type=float, help="measured seconds per step (default 5)")
    p.add_argument("--warmup", type=float, help="warm-up seconds per step (default 1)")
    p.add_argument("--pause", type=float, default=1.0)
    p.add_argument("--prewarm", type=float, default=3.0, help="unmeasured seconds of load first")
    p.add_argument("--settle", type=float, default=5.0, help="idle seconds after ready (default 5)")
    p.add_argument("--timeout", type=float, default=2.0)
    p.add_argument("--only", choices=("ours", "mlflow"), help="run one server only")
    p.add_argument("--note", help="caveat stored in the report (default: from the load average)")
    args = p.parse_args(argv)
    args.rates = args.rates or (QUICK_RATES if args.quick else PEER_RATES)
    args.duration = args.duration or (2.0 if args.quick else 5.0)
    args.warmup = args.warmup if args.warmup is not None else (0.5 if args.quick else 1.0)

    home = (args.home or Path(os.environ.get("TABULAR_HOME") or PROJECT)).resolve()
    version = champion_version(home)
    from tabular_service.tracking import tracking_uri

    slo = load_slo(home / "docs" / "slo.json" if (home / "docs" / "slo.json").is_file() else None)
    env = child_env()
    env.update(
        TABULAR_HOME=str(home),
        TABULAR_MODEL_URI=MODEL_URI,
        MLFLOW_TRACKING_URI=tracking_uri(home),
        MLFLOW_REGISTRY_URI=tracking_uri(home),
        PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
    )
    env.pop("TABULAR_MODEL_PATH", None)  # both must serve the registry champion
    print(f"peer benchmark: {MODEL_URI} = version {version} in {tracking_uri(home)}")
    print(f"rates {list(args.rates)}, {args.duration:g} s per step after {args.warmup:g} s warm-up")

    machine = machine_info()  # before the run: the load average says how busy the machine was
    servers: dict[str, dict] = {}
    try:
        if args.only in (None, "ours"):
            port = free_port()
            servers["tabular_service"] = run_server(
                "tabular_service",
                service_command(),
                {**env, "TABULAR_HOST": "127.0.0.1", "TABULAR_PORT": str(port)},
                f"http://127.0.0.1:{port}",
                "/readyz",
                "/v1/predict",
                args,
                slo,
                warm_restart=True,
            )
        if args.only in (None, "mlflow"):
            port = free_port()
            cmd = [sys.executable, "-m", "mlflow", "models", "serve", "-m", MODEL_URI]
            cmd += ["--env-manager", "local", "--host", "127.0.0.1", "-p", str(port)]
            servers["mlflow_models_serve"] = run_server(
                "mlflow_models_serve",
                cmd,
                env,
                f"http://127.0.0.1:{port}",
                "/ping",
                "/invocations",
                args,
                slo,
                warm_restart=False,
            )
    except ServerStartError as exc:
        print(f"peer benchmark: {exc}", file=sys.stderr)
        return 1

    ours = servers.get("tabular_service", {}).get("max_rate_at_slo")
    theirs = servers.get("mlflow_models_serve", {}).get("max_rate_at_slo")
    report = {
        "generated_by": "benchmarks/peer.py" + (" --quick" if args.quick else ""),
        "note": args.note or load_note(machine["load_average"], machine["usable_cores"]),
        "model": {"uri": MODEL_URI, "version": version, "tracking_uri": tracking_uri(home)},
        "slo": slo.to_dict(),
        "settings": {
            "rates": list(args.rates),
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "pause_s": args.pause,
            "settle_s": args.settle,
            "prewarm_s": args.prewarm,
            "sweep_stops": "at saturation (achieved < 95 % of offered), not at SLO failures",
            "timeout_s": args.timeout,
            "generator": "open-loop, latency from the scheduled send time",
            "servers_run": "one at a time, each alone with the generator on the machine",
        },
        "servers": servers,
        "ratio_ours_to_mlflow": (ours / theirs) if ours and theirs else None,
        "comparison": compare(servers),
        "machine": {**machine, "load_average_at_end": machine_info()["load_average"]},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    table = markdown(report)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(table)
    print("\n" + table)
    print(f"report: {args.out}" + (f", {args.markdown}" if args.markdown else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
