"""`learn check --watch`: re-grade when the learner saves a file.

Uses inotify through watchfiles; bind mounts in containers often deliver no inotify events,
so polling is used there (detected, or forced with --poll).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

WATCHED_SUFFIXES = {".py", ".ipynb", ".yaml", ".yml", ".toml", ".cfg", ".txt", ".md", ""}


def in_container() -> bool:
    return Path("/.dockerenv").exists() or Path("/run/.containerenv").exists()


def relevant(path: str) -> bool:
    p = Path(path)
    if any(part in {"__pycache__", ".learn", ".pytest_cache", ".ruff_cache"} for part in p.parts):
        return False
    return p.suffix in WATCHED_SUFFIXES or p.name == "Makefile"


def watch_and_rerun(
    grade_once: Callable[[], int], paths: list[Path], force_polling: bool = False
) -> None:
    """Grade now, then again after every batch of changes, until Ctrl-C."""
    from watchfiles import watch

    from learn.ui import console

    grade_once()
    existing = [str(p) for p in paths if p.exists()]
    polling = force_polling or in_container()
    console.print(
        f"[dim]Watching {', '.join(existing)} ({'polling' if polling else 'inotify'}); "
        "Ctrl-C to stop[/]"
    )
    try:
        for changes in watch(
            *existing,
            watch_filter=lambda _change, path: relevant(path),
            force_polling=polling,
            poll_delay_ms=500,
            debounce=400,
        ):
            names = sorted({Path(p).name for _, p in changes})
            console.rule(f"changed: {', '.join(names)[:80]}")
            grade_once()
    except KeyboardInterrupt:
        console.print("[dim]stopped watching[/]")
