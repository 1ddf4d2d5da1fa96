"""A headless Chromium page for browser tests, with every request recorded and the network off.

Debian's chromium is driven through Playwright (Playwright's own browser download does not work
here). Every request the page makes goes through a route handler: loopback ones continue, any
other is aborted and recorded, so a page that reaches for a CDN fails its test instead of
silently working only when online. Console errors and uncaught exceptions are collected too.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
LOCAL_SCHEMES = ("data:", "blob:", "about:")


@dataclass
class BrowserPage:
    """A page and what it did: every URL requested, those blocked, errors it reported."""

    page: Any
    requests: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def is_local(url: str) -> bool:
    """True for URLs that never leave the machine: loopback hosts and data/blob/about URLs."""
    return url.startswith(LOCAL_SCHEMES) or (urlsplit(url).hostname or "") in LOOPBACK


@contextmanager
def offline_page(
    executable: Path = CHROMIUM, timeout_ms: float = 30_000, viewport: dict | None = None
) -> Iterator[BrowserPage]:
    """A fresh browser (its own temporary profile) and one page; closed when the block ends."""
    from playwright import sync_api  # a test dependency: fail loudly if it is missing

    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(executable), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport=viewport or {"width": 1280, "height": 900})
            seen = BrowserPage(page=None)

            def route(route: Any) -> None:
                url = route.request.url
                seen.requests.append(url)
                if is_local(url):
                    route.continue_()
                else:
                    seen.blocked.append(url)
                    route.abort()

            context.route("**/*", route)
            page = context.new_page()
            page.set_default_timeout(timeout_ms)
            page.on(
                "console",
                lambda msg: (
                    seen.errors.append(f"console: {msg.text}") if msg.type == "error" else None
                ),
            )
            page.on("pageerror", lambda exc: seen.errors.append(f"uncaught: {exc}"))
            seen.page = page
            yield seen
            context.close()
        finally:
            browser.close()
