"""Command line of the prediction service: flags override the MLOPS_* environment.

python -m mlops_pipeline.serving --home .mlops --alias champion --port 8080
python -m mlops_pipeline.serving --clock fixed --as-of 2013-03-15T00:00Z --port 8081
"""

from __future__ import annotations

import argparse
import os
import sys

from mlops_pipeline import offline
from mlops_pipeline.serving.settings import CLOCKS, ServingSettings, parse_instant


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mlops serve", description=__doc__.splitlines()[0])
    p.add_argument("--home", help="pipeline home (default: $MLOPS_HOME or ./.mlops)")
    p.add_argument("--model-name", help="registered model (default: flight-delay)")
    p.add_argument("--alias", help="registry alias to serve (default: champion)")
    p.add_argument("--clock", choices=CLOCKS, help="as-of clock for feature staleness")
    p.add_argument("--as-of", help="the frozen time for --clock fixed (ISO-8601 with zone)")
    p.add_argument("--batch-size", type=int, help="micro-batch size (1: off; default 32)")
    p.add_argument("--batch-wait-ms", type=float, help="micro-batch wait (default 1 ms)")
    p.add_argument("--trace-file", help="append finished spans to this JSON-lines file")
    p.add_argument("--host", default=os.environ.get("MLOPS_HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(os.environ.get("MLOPS_PORT", "8080")))
    p.add_argument("--log-level", default="warning")
    return p


def settings_from(args: argparse.Namespace) -> ServingSettings:
    """The environment's settings with the flags on top, validated once together (so
    `--clock wall` over an environment's MLOPS_CLOCK=fixed is not refused half-way)."""
    env = dict(os.environ)
    flags = {
        "MLOPS_HOME": args.home,
        "MLOPS_MODEL_NAME": args.model_name,
        "MLOPS_MODEL_ALIAS": args.alias,
        "MLOPS_CLOCK": args.clock,
        "MLOPS_TRACE_FILE": args.trace_file,
        "MLOPS_BATCH_SIZE": args.batch_size,
        "MLOPS_BATCH_WAIT_MS": args.batch_wait_ms,
    }
    env.update({name: str(value) for name, value in flags.items() if value is not None})
    if args.clock and args.clock != "fixed" and not args.as_of:
        env.pop("MLOPS_AS_OF", None)  # a frozen time belongs to the fixed clock only
    if args.as_of:
        parse_instant(args.as_of, "--as-of")
        env["MLOPS_AS_OF"] = args.as_of
    return ServingSettings.from_env(env)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    offline.apply()
    # One process per replica: metrics live in memory. A parent that imported Feast may have
    # passed down Feast's multiprocess folder (see offline.forget_feast_metrics_dir).
    for name in offline.FEAST_METRICS_ENV:
        os.environ.pop(name, None)
    try:
        settings = settings_from(args)
    except ValueError as error:
        print(f"mlops serve: {error}", file=sys.stderr)
        return 2
    import uvicorn

    from mlops_pipeline.serving.app import create_app

    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
    )
    return 0
