"""The book: its table of contents agrees with the manifest, it builds offline with warnings as
errors, and it works in a real (headless) browser with no network.

Fast tests check the TOC and the offline scanner. ``slow`` tests build the book once per
session (strict, notebooks executed) into a temporary folder; ``browser`` tests then serve it on
a free loopback port and drive Debian's chromium (/usr/bin/chromium) with Playwright.

Knobs, for iterating locally:
- ``LEARN_BOOK_HTML=<html dir>`` reuses an existing build instead of building;
- ``LEARN_BOOK_SOURCE=<book dir>`` builds another copy of the book;
- ``LEARN_BOOK_SCREENSHOTS=<dir>`` saves a screenshot of every page the browser renders.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urldefrag, urljoin, urlsplit

import pytest
import yaml

from learn import REPO_ROOT
from learn.book import checkpoint_anchor, remote_references, start_server
from learn.manifest import load_manifest

BOOK = REPO_ROOT / "book"
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


def book_source() -> Path:
    """The book under test: book/, or the copy named by LEARN_BOOK_SOURCE."""
    return Path(os.environ.get("LEARN_BOOK_SOURCE") or BOOK)


def toc_docs() -> list[str]:
    """Every document of the TOC, root first, in reading order."""
    toc = yaml.safe_load((book_source() / "_toc.yml").read_text(encoding="utf-8"))

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                yield entry["file"]
            yield from walk(entry.get("sections"))

    docs = [toc["root"]]
    for part in toc.get("parts", []):
        docs += list(walk(part.get("chapters")))
    return docs


def source_of(doc: str) -> Path | None:
    for suffix in (".md", ".ipynb"):
        path = book_source() / f"{doc}{suffix}"
        if path.is_file():
            return path
    return None


def expected_title(path: Path) -> str:
    """The first level-1 heading of a MyST page or a notebook's first markdown cell."""
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        text = "\n".join(
            "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
            for c in cells
            if c["cell_type"] == "markdown"
        )
    else:
        text = path.read_text(encoding="utf-8")
        text = re.sub(r"\A---\n.*?\n---\n", "", text, flags=re.DOTALL)  # front matter
    match = re.search(r"^# +(.+?)\s*$", text, flags=re.MULTILINE)
    assert match, f"{path} has no level-1 heading"
    # Drop inline markup that does not survive into the rendered text.
    return re.sub(r"[`*_]|\{[a-z-]+\}", "", match.group(1)).strip()


# --------------------------------------------------------------------------- fast


def test_toc_agrees_with_the_manifest():
    """Part captions repeat the manifest's phase titles; every page it names is in the TOC."""
    manifest = load_manifest()
    toc = yaml.safe_load((book_source() / "_toc.yml").read_text(encoding="utf-8"))
    captions = [part["caption"] for part in toc["parts"]]
    for phase in manifest.phases:
        assert f"Phase {phase.number}: {phase.title}" in captions, phase.id
    docs = set(toc_docs())
    for phase in manifest.phases:
        assert phase.book in docs, f"{phase.id}: book page {phase.book} is not in _toc.yml"
    for cp in manifest.all_checkpoints():
        assert cp.book_doc in docs, f"checkpoint {cp.id}: {cp.book_doc} is not in _toc.yml"


def test_every_toc_page_has_a_source():
    missing = [doc for doc in toc_docs() if source_of(doc) is None]
    assert not missing, f"pages listed in book/_toc.yml without a .md/.ipynb source: {missing}"


def test_offline_scanner_flags_remote_loads_only(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "index.html").write_text(
        """<html><head>
        <script src="_static/local.js"></script>
        <script src="http://127.0.0.1:8000/ok.js"></script>
        <script src="https://cdn.example.org/lib.js"></script>
        <link rel="stylesheet" href="//fonts.example.com/css">
        <link rel="canonical" href="https://example.org/page.html">
        <style>@import "https://example.net/a.css"; body { background: url(x.png) }</style>
        </head><body>
        <a href="https://example.org/docs">a link is not a load</a>
        <img src="data:image/png;base64,AAAA"><img srcset="https://img.example.org/a.png 2x">
        </body></html>""",
        encoding="utf-8",
    )
    (tmp_path / "sub" / "theme.css").write_text(
        "@font-face { src: url('https://fonts.example.com/f.woff2') }\n"
        ".a { background: url(b.png) }",
        encoding="utf-8",
    )
    found = remote_references(tmp_path)
    hosts = sorted({urlsplit(re.search(r"(\S*//\S+)$", f).group(1)).hostname for f in found})
    assert hosts == ["cdn.example.org", "example.net", "fonts.example.com", "img.example.org"]
    assert len(found) == 5, found


def test_checkpoint_anchor_is_a_valid_html_id():
    assert checkpoint_anchor("0.1") == "checkpoint-0-1"
    assert checkpoint_anchor("12.30") == "checkpoint-12-30"


# --------------------------------------------------------------------------- build


@pytest.fixture(scope="session")
def built_book(tmp_path_factory) -> Path:
    """The book built once per session: warnings are errors, notebooks are executed."""
    prebuilt = os.environ.get("LEARN_BOOK_HTML")
    if prebuilt:
        return Path(prebuilt)
    from learn.book import BookBuildError, build_book

    source = book_source()
    out = tmp_path_factory.mktemp("book")
    try:
        return build_book(
            strict=True, execute=True, progress=False, source_dir=source, output_dir=out
        )
    except BookBuildError as exc:
        pytest.fail(f"the book does not build:\n{exc}", pytrace=False)


@pytest.mark.slow
def test_built_book_loads_nothing_from_the_network(built_book):
    assert (built_book / "index.html").is_file()
    assert remote_references(built_book) == []


@pytest.mark.slow
def test_every_toc_page_is_built(built_book):
    missing = [doc for doc in toc_docs() if not (built_book / f"{doc}.html").is_file()]
    assert not missing
    assert (built_book / "search.html").is_file()
    assert (built_book / "searchindex.js").is_file()
    assert (built_book / "_static" / "mathjax" / "tex-mml-chtml.js").is_file()


@pytest.mark.slow
def test_phase_pages_anchor_every_checkpoint(built_book):
    manifest = load_manifest()
    for phase in manifest.phases:
        page = (built_book / f"{phase.book}.html").read_text(encoding="utf-8")
        for cp in phase.checkpoints:
            assert f'id="{checkpoint_anchor(cp.id)}"' in page, (phase.id, cp.id)


@pytest.mark.slow
def test_checkpoint_rows_show_what_each_needs_first(built_book):
    """A checkpoint's row in its phase page names the checkpoints it requires."""
    needy = [cp for cp in load_manifest().all_checkpoints() if cp.requires]
    assert needy
    for cp in needy:
        phase = load_manifest().phase(cp.phase)
        page = (built_book / f"{phase.book}.html").read_text(encoding="utf-8")
        row = page[page.index(f'id="{checkpoint_anchor(cp.id)}"') :]
        row = row[: row.index("</tr>")]
        assert f">{', '.join(cp.requires)}<" in row, (cp.id, row)


@pytest.mark.slow
def test_executed_lab_shows_its_plots_and_numbers(built_book):
    """The lab notebook ran at build time: its figures and printed results are in the page."""
    import re

    page = (built_book / "phase0" / "lab" / "systems_design_lab.html").read_text("utf-8")
    figures = re.findall(r'<img[^>]+src="[^"]*_images/[^"]+\.png"', page)
    assert len(figures) >= 4, f"expected the lab's plots, found {len(figures)} images"
    assert "cell_output" in page and "requests in flight" in page


# --------------------------------------------------------------------------- browser


class _Ids(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if key == "id" or (tag == "a" and key == "name"):
                self.ids.add(value or "")


@pytest.fixture(scope="module")
def served_book(built_book):
    server, url = start_server(built_book, "127.0.0.1", 0)
    yield url
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser_page(served_book):
    """One Chromium page with every request recorded and non-loopback requests blocked."""
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium")
    from playwright import sync_api  # a dev dependency: fail loudly if it is missing

    requests: list[str] = []
    blocked: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context()

        def route(route):
            url = route.request.url
            requests.append(url)
            if url.startswith(("data:", "blob:", "about:")):
                return route.continue_()
            if (urlsplit(url).hostname or "") in LOOPBACK:
                return route.continue_()
            blocked.append(url)
            return route.abort()

        context.route("**/*", route)
        page = context.new_page()
        page.set_default_timeout(30_000)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        yield SimpleNamespace(page=page, requests=requests, blocked=blocked, js_errors=errors)
        context.close()
        browser.close()


def _plain(text: str) -> str:
    """Text without punctuation and spacing (Sphinx curls quotes, adds permalink signs)."""
    return re.sub(r"[\W_]+", "", text).lower()


def _screenshot(page, name: str) -> None:
    folder = os.environ.get("LEARN_BOOK_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / (name.replace("/", "_") + ".png")), full_page=True)


@pytest.mark.slow
@pytest.mark.browser
def test_every_toc_page_renders_with_its_title(browser_page, served_book):
    page = browser_page.page
    for doc in toc_docs():
        source = source_of(doc)
        assert source, doc
        response = page.goto(urljoin(served_book, f"{doc}.html"))
        assert response and response.status == 200, doc
        heading = page.locator("article h1").first.inner_text()
        title = expected_title(source)
        assert _plain(heading) == _plain(title), (doc, heading, title)
        assert _plain(page.title()).startswith(_plain(title)), (doc, page.title())
        _screenshot(page, doc)
    assert not browser_page.js_errors, browser_page.js_errors


@pytest.mark.slow
@pytest.mark.browser
def test_every_internal_link_resolves(browser_page, served_book):
    page = browser_page.page
    origin = urlsplit(served_book).netloc
    ids_cache: dict[str, set[str]] = {}
    broken: list[str] = []

    def ids_of(url: str) -> set[str] | None:
        if url not in ids_cache:
            try:
                with urllib.request.urlopen(url, timeout=10) as response:
                    body = response.read()
                    kind = response.headers.get_content_type()
            except urllib.error.HTTPError as exc:
                ids_cache[url] = None
                broken.append(f"{url}: HTTP {exc.code}")
                return None
            parser = _Ids()
            if kind == "text/html":
                parser.feed(body.decode("utf-8", errors="replace"))
            ids_cache[url] = parser.ids
        return ids_cache[url]

    checked = 0
    for doc in toc_docs() + ["search", "genindex"]:
        page_url = urljoin(served_book, f"{doc}.html")
        page.goto(page_url)
        hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
        for href in set(hrefs):
            if urlsplit(href).netloc != origin or not href.startswith("http"):
                continue
            target, fragment = urldefrag(href)
            ids = ids_of(target)
            checked += 1
            if ids is not None and fragment and fragment not in ids:
                broken.append(f"{doc}: {href}: no element with id {fragment!r}")
    assert checked > 50
    assert not broken, "\n".join(sorted(set(broken)))


@pytest.mark.slow
@pytest.mark.browser
def test_math_is_typeset_by_local_mathjax(browser_page, served_book):
    page = browser_page.page
    page.goto(urljoin(served_book, "phase0/latency-throughput.html"))
    page.wait_for_selector("mjx-container", state="attached")
    page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
    page.evaluate("() => MathJax.startup.promise")
    assert page.locator("mjx-container").count() >= 5
    assert page.locator("mjx-merror").count() == 0, "MathJax reported a TeX error"
    _screenshot(page, "math-latency-throughput")


@pytest.mark.slow
@pytest.mark.browser
def test_search_finds_percentile(browser_page, served_book):
    page = browser_page.page
    page.goto(urljoin(served_book, "search.html?q=percentile"))
    page.wait_for_selector("ul.search li", timeout=30_000)
    results = page.locator("ul.search li a").all_inner_texts()
    assert results, "no search results for 'percentile'"
    assert any("Latency" in r or "latency" in r for r in results), results


@pytest.mark.slow
@pytest.mark.browser
def test_checkpoint_table_lists_the_phase0_checkpoints(browser_page, served_book):
    page = browser_page.page
    phase = load_manifest().phase("phase0")
    page.goto(urljoin(served_book, f"{phase.book}.html#{checkpoint_anchor('0.1')}"))
    row = page.locator(f"#{checkpoint_anchor('0.1')}")
    assert row.is_visible()
    assert row.locator("td").first.inner_text().strip() == "0.1"
    cp = load_manifest().checkpoint("0.1")
    assert cp.title in row.inner_text()
    box = page.locator(".learn-checkpoints")
    assert f"learn check {phase.id}" in box.inner_text()
    assert f"Total: {phase.points} points" in box.inner_text()
    _screenshot(page, "checkpoints-phase0")


@pytest.mark.slow
@pytest.mark.browser
def test_no_request_left_loopback(browser_page):
    """Runs last in this module: every request the tests above made stayed on loopback."""
    assert browser_page.requests, "no request was recorded"
    assert not browser_page.blocked, "requests to the network:\n" + "\n".join(
        sorted(set(browser_page.blocked))
    )
