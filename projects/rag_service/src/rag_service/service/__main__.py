"""`rag-serve`: run the service under uvicorn, configured from RAG_* variables."""

from __future__ import annotations

import sys

from rag_service.service.settings import SettingsError, load_settings


def main(argv: list[str] | None = None) -> int:
    import argparse

    argparse.ArgumentParser(
        prog="rag-serve",
        description="Serve grounded answers over HTTP (settings from RAG_* variables; "
        "see the package README). The dashboard is at /dashboard.",
    ).parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"rag-serve: {exc}", file=sys.stderr)
        return 2
    import uvicorn

    from rag_service.service.app import create_app

    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="info",
        server_header=False,
        timeout_graceful_shutdown=10,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
