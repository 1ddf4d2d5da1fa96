"""`tabular-serve`: run the service under uvicorn, configured from TABULAR_* variables.

uvloop and httptools are used when installed (uvicorn[standard]); uvicorn's access log is off
because the service writes its own JSON line per request, with the request id. With
TABULAR_WORKERS > 1 uvicorn forks that many processes, each loading its own model copy; one
worker per core is the sweet spot for this CPU-bound service.

`tabular-serve --export-model DIR` copies the model the settings name (by default the current
champion) into DIR for a container image, instead of serving.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys

from tabular_service.settings import SettingsError, load_settings


def _available(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="tabular-serve",
        description="Serve the credit-default model over HTTP (settings from TABULAR_* env vars).",
    )
    parser.add_argument(
        "--export-model",
        metavar="DIR",
        help="copy the configured model (default: the registry champion) into DIR and exit",
    )
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"tabular-serve: {exc}", file=sys.stderr)
        return 2

    if args.export_model:
        from tabular_service.service.loading import ModelLoadError, export_model

        try:
            info = export_model(settings, args.export_model)
        except (ModelLoadError, ValueError, OSError) as exc:
            print(f"tabular-serve: {exc}", file=sys.stderr)
            return 1
        print(f"exported {info.name} version {info.version} ({info.kind}) to {args.export_model}")
        return 0

    import uvicorn

    from tabular_service.service.observability import logging_config

    uvicorn.run(
        "tabular_service.service.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        loop="uvloop" if _available("uvloop") else "asyncio",
        http="httptools" if _available("httptools") else "h11",
        access_log=False,
        log_level=settings.log_level,
        log_config=logging_config(settings.log_level),
        server_header=False,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
