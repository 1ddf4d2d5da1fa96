"""Build and serve the workbook's Jupyter Book, offline.

    build_book(strict=True, execute=True, progress=True) -> Path    # the html folder
    serve_book(html_dir, host="127.0.0.1", port=8000)               # blocks until Ctrl-C
    served_url() -> str | None                                      # where it is served now

The build is Jupyter Book 1.x (Sphinx) run in a subprocess, equivalent to::

    jupyter-book build book --all -W -n --keep-going

with notebooks executed at build time (``execute_notebooks: force`` in book/_config.yml;
a cell error fails the build). Nothing is loaded from the network when the book is read:

* MathJax 3 is served from ``book/_static/mathjax/`` (gitignored). :func:`ensure_mathjax`
  fills it on first use from the npm package ``mathjax`` (``npm install mathjax@3.2.2`` into
  a temporary prefix, then copies ``es5/tex-mml-chtml.js`` and the fonts and components it
  loads on demand). With no npm, point ``LEARN_MATHJAX_DIR`` at an unpacked ``es5/`` folder.
* After a build, :func:`remote_references` scans every page and stylesheet for scripts,
  styles, fonts or images loaded from anything but loopback, and the build fails if any.

Kept import-light: the CLI imports this module at start-up, so everything heavier than the
standard library is imported inside the functions that need it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import deque
from pathlib import Path

from learn import REPO_ROOT

BOOK_DIR = REPO_ROOT / "book"
#: Written while `learn book --serve` runs, so `learn hint` links to the port actually used.
SERVING_RECORD = BOOK_DIR / "_build" / "serving.json"
#: The port `learn book --serve` and `make serve` use unless told otherwise.
DEFAULT_PORT = 8000
#: The npm package that provides MathJax; bump the version here and the build refreshes it.
MATHJAX_NPM_SPEC = "mathjax@3.2.2"
MATHJAX_ENTRY = "tex-mml-chtml.js"
#: What tex-mml-chtml.js needs next to it: TeX extensions and accessibility/menu components
#: it loads on demand, and the CommonHTML woff fonts.
MATHJAX_PARTS = (MATHJAX_ENTRY, "input", "output/chtml", "ui", "a11y", "sre", "adaptors")
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
LOG_TAIL_LINES = 25


class BookBuildError(RuntimeError):
    """The book did not build; the message carries the tail of the build log."""


class BookServeError(OSError):
    """The book cannot be served (not built yet, or the port is taken).

    An OSError, so callers that already catch socket errors catch this too."""


def checkpoint_anchor(checkpoint_id: str) -> str:
    """The HTML id of a checkpoint's row in its phase page, e.g. ``checkpoint-0-1``.

    The book's ``learn-checkpoints`` directive writes rows with this id on the page named by
    the phase's ``book`` entry, so ``learn hint`` can link to ``phase0/index.html#checkpoint-0-1``.
    """
    return "checkpoint-" + re.sub(r"[^0-9a-z]+", "-", checkpoint_id.lower()).strip("-")


def html_dir(source_dir: Path | None = None) -> Path:
    """The html folder of the last build; BookBuildError if the book was never built."""
    out = Path(source_dir or BOOK_DIR) / "_build" / "html"
    if not (out / "index.html").is_file():
        raise BookBuildError(f"the book is not built yet ({out} has no index.html): run learn book")
    return out


def page_path(doc: str, html: Path | None = None) -> Path:
    """The built HTML file of a book document (``phase0/slos`` or ``phase0/slos#anchor``)."""
    html = html or BOOK_DIR / "_build" / "html"
    return html / (doc.split("#", 1)[0] + ".html")


# --------------------------------------------------------------------------- MathJax


def ensure_mathjax(static_dir: Path | None = None, *, progress: bool = True) -> Path:
    """Make sure ``<static_dir>/mathjax/tex-mml-chtml.js`` exists; return that folder.

    Installs :data:`MATHJAX_NPM_SPEC` with npm into a temporary prefix on first use (the npm
    registry is the only network this needs, and only once), or copies from the es5 folder
    named by ``LEARN_MATHJAX_DIR``.
    """
    static_dir = Path(static_dir or BOOK_DIR / "_static")
    target = static_dir / "mathjax"
    stamp = target / ".source"
    local = os.environ.get("LEARN_MATHJAX_DIR")
    wanted = f"dir:{local}" if local else MATHJAX_NPM_SPEC
    if (target / MATHJAX_ENTRY).is_file() and stamp.is_file() and stamp.read_text() == wanted:
        return target

    with tempfile.TemporaryDirectory(prefix="learn-mathjax-") as tmp:
        es5 = Path(local) if local else _npm_mathjax(Path(tmp), progress=progress)
        if not (es5 / MATHJAX_ENTRY).is_file():
            raise BookBuildError(f"{es5} has no {MATHJAX_ENTRY}: is it MathJax 3's es5/ folder?")
        staging = static_dir / ".mathjax.partial"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for part in MATHJAX_PARTS:
            src = es5 / part
            dst = staging / part
            if src.is_dir():
                shutil.copytree(src, dst)
            elif src.is_file():
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dst)
        license_file = es5.parent / "LICENSE"
        if license_file.is_file():
            shutil.copy2(license_file, staging / "LICENSE")
        (staging / ".source").write_text(wanted)
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    if progress:
        print(f"MathJax ready in {target} (from {wanted})", flush=True)
    return target


def _npm_mathjax(prefix: Path, *, progress: bool) -> Path:
    npm = shutil.which("npm")
    if npm is None:
        raise BookBuildError(
            "npm not found: the book serves MathJax locally and installs it once with "
            f"`npm install {MATHJAX_NPM_SPEC}`. Install Node.js and npm (apt-get install -y npm), "
            "or set LEARN_MATHJAX_DIR to an unpacked MathJax 3 es5/ folder."
        )
    cmd = [
        npm,
        "install",
        "--prefix",
        str(prefix),
        "--no-audit",
        "--no-fund",
        "--no-package-lock",
        "--loglevel=error",
        MATHJAX_NPM_SPEC,
    ]
    if progress:
        print(f"Installing MathJax: {' '.join(cmd[1:])}", flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=prefix)
    if proc.returncode != 0:
        raise BookBuildError(
            f"`npm install {MATHJAX_NPM_SPEC}` failed (exit {proc.returncode}):\n"
            + _tail((proc.stdout + proc.stderr).splitlines())
        )
    return prefix / "node_modules" / "mathjax" / "es5"


# --------------------------------------------------------------------------- build


def build_book(
    strict: bool = True,
    execute: bool = True,
    progress: bool = True,
    *,
    source_dir: Path | None = None,
    output_dir: Path | None = None,
) -> Path:
    """Build the book to HTML and return the html folder (``book/_build/html``).

    strict: warnings (and, with nitpicky mode, broken references) fail the build.
    execute: run every notebook (a cell error fails the build); False renders stored outputs.
    progress: stream the build log to stdout; otherwise it is only written to
        ``<output>/build.log`` and quoted in the :class:`BookBuildError` on failure.
    source_dir: build another copy of the book (tests); default ``book/``.
    output_dir: the folder that receives ``_build/`` (default: the book folder), so the
        pages land in ``<output_dir>/_build/html``.
    """
    source = Path(source_dir or BOOK_DIR).resolve()
    out_root = Path(output_dir or source).resolve() / "_build"
    html = out_root / "html"
    if not (source / "_config.yml").is_file() or not (source / "_toc.yml").is_file():
        raise BookBuildError(f"{source} is not a book: _config.yml or _toc.yml is missing")
    ensure_mathjax(source / "_static", progress=progress)
    out_root.mkdir(parents=True, exist_ok=True)

    # Start from a clean html folder, so no page or asset from an earlier build survives.
    shutil.rmtree(html, ignore_errors=True)
    args = ["build", str(source), "--path-output", str(out_root.parent), "--all"]
    if strict:
        args += ["-W", "-n", "--keep-going"]
    with tempfile.TemporaryDirectory(prefix="learn-book-") as tmp:
        if not execute:
            args += ["--config", str(_config_without_execution(source, Path(tmp)))]
        cmd = [sys.executable, "-c", _JB_MAIN, *args]
        log_path = out_root / "build.log"
        rc, tail = _run_logged(cmd, log_path, env=_build_env(source), progress=progress)
    if rc != 0:
        lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        problems = _problems(lines)
        cause = "Problems:\n" + "\n".join(problems) + "\n\n" if problems else ""
        raise BookBuildError(
            f"the book build failed (exit {rc}); full log in {log_path}.\n{cause}"
            f"Last lines of the log:\n{tail}"
        )
    if not (html / "index.html").is_file():
        raise BookBuildError(f"the build finished but {html}/index.html is missing")
    remote = remote_references(html)
    if remote:
        listed = "\n".join(f"  {r}" for r in remote[:20])
        raise BookBuildError(
            f"the built book loads {len(remote)} resource(s) from the network; "
            f"it must work offline:\n{listed}"
        )
    return html


_JB_MAIN = (
    "import sys; from jupyter_book.cli.main import main; sys.argv[0] = 'jupyter-book'; main()"
)


def _build_env(source: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # debugpy's frozen-modules notice
    env["PYTHONUNBUFFERED"] = "1"
    pythonpath = [str(REPO_ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    env["PYTHONPATH"] = os.pathsep.join(pythonpath)
    return env


def _config_without_execution(source: Path, tmp: Path) -> Path:
    """A copy of _config.yml that renders stored notebook outputs instead of executing."""
    import yaml

    config = yaml.safe_load((source / "_config.yml").read_text(encoding="utf-8")) or {}
    config.setdefault("execute", {})["execute_notebooks"] = "off"
    # Paths in the config are relative to the config file; make them absolute.
    sphinx = config.get("sphinx") or {}
    for name, path in (sphinx.get("local_extensions") or {}).items():
        sphinx["local_extensions"][name] = str((source / path).resolve())
    path = tmp / "_config.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def _run_logged(cmd: list[str], log_path: Path, *, env: dict, progress: bool) -> tuple[int, str]:
    tail: deque[str] = deque(maxlen=LOG_TAIL_LINES)
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
            env=env,
            cwd=REPO_ROOT,
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            tail.append(line.rstrip("\n"))
            if progress:
                sys.stdout.write(line)
                sys.stdout.flush()
        rc = proc.wait()
    return rc, _tail(tail)


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_SPHINX_PROBLEM = re.compile(r"\b(WARNING|ERROR|CRITICAL|SEVERE):")


def _problems(lines: list[str], limit: int = 60) -> list[str]:
    """The lines of a build log that say what went wrong: Sphinx warnings and errors, the
    exception Sphinx reports, and the failing cell and traceback of a notebook."""
    lines = [_ANSI.sub("", line) for line in lines]
    found: list[str] = []
    i = 0
    while i < len(lines) and len(found) < limit:
        line = lines[i]
        if "CellExecutionError" in line:
            block = [line]
            for follow in lines[i + 1 : i + 40]:
                if follow.startswith("The above exception was the direct cause"):
                    break
                block.append(follow)
            found += block
            i += len(block)
            continue
        if line.startswith("Exception occurred:"):
            found += lines[i : i + 4]
            i += 4
            continue
        if _SPHINX_PROBLEM.search(line) and "[IPKernelApp]" not in line:
            found.append(line)
        i += 1
    unique = list(dict.fromkeys(found))
    return unique[:limit]


def _tail(lines, n: int = LOG_TAIL_LINES) -> str:
    lines = [_ANSI.sub("", line) for line in list(lines)[-n:]]
    return "\n".join(lines)


# --------------------------------------------------------------------------- offline check

_LOADING_ATTRS = {
    "script": ("src",),
    "img": ("src", "srcset"),
    "iframe": ("src",),
    "source": ("src", "srcset"),
    "video": ("src", "poster"),
    "audio": ("src",),
    "embed": ("src",),
    "object": ("data",),
    "track": ("src",),
}
#: <link rel=...> values that make the browser fetch or connect.
_LOADING_RELS = {
    "stylesheet",
    "icon",
    "shortcut",
    "apple-touch-icon",
    "preload",
    "prefetch",
    "modulepreload",
    "manifest",
    "preconnect",
    "dns-prefetch",
    "mask-icon",
}
_CSS_URL = re.compile(
    r"""(?:url\(\s*['"]?|@import\s+['"])((?:https?:)?//[^'")\s]+)""", re.IGNORECASE
)


def _is_remote(url: str) -> bool:
    from urllib.parse import urlsplit

    url = url.strip()
    if not re.match(r"^(?:https?:)?//", url, re.IGNORECASE):
        return False
    host = urlsplit(url if "://" in url else "http:" + url).hostname or ""
    return host not in LOCAL_HOSTS and not host.startswith("127.")


def remote_references(html_dir: Path) -> list[str]:
    """``file: url`` for each script, style, font, image or frame loaded from a remote host.

    Links (``<a href>``) and metadata are not loads and are ignored. Scans every ``.html``
    page (tags and inline styles) and every ``.css`` file (``url()`` and ``@import``).
    """
    from html.parser import HTMLParser

    found: list[str] = []

    class Scanner(HTMLParser):
        def __init__(self, name: str) -> None:
            super().__init__(convert_charrefs=True)
            self.name = name
            self.in_style = False

        def handle_starttag(self, tag, attrs):
            attrs = {k: (v or "") for k, v in attrs}
            urls: list[str] = []
            for attr in _LOADING_ATTRS.get(tag, ()):
                if attr in attrs:
                    urls += [part.split()[0] for part in attrs[attr].split(",") if part.split()]
            if tag == "link":
                rels = set(attrs.get("rel", "").lower().split())
                if rels & _LOADING_RELS and "href" in attrs:
                    urls.append(attrs["href"])
            if "style" in attrs:
                urls += _CSS_URL.findall(attrs["style"])
            self.in_style = tag == "style"
            found.extend(f"{self.name}: <{tag}> {u}" for u in urls if _is_remote(u))

        def handle_endtag(self, tag):
            if tag == "style":
                self.in_style = False

        def handle_data(self, data):
            if self.in_style:
                found.extend(
                    f"{self.name}: <style> {u}" for u in _CSS_URL.findall(data) if _is_remote(u)
                )

    html_dir = Path(html_dir)
    for path in sorted(html_dir.rglob("*.html")):
        scanner = Scanner(str(path.relative_to(html_dir)))
        scanner.feed(path.read_text(encoding="utf-8", errors="replace"))
        scanner.close()
    for path in sorted(html_dir.rglob("*.css")):
        text = path.read_text(encoding="utf-8", errors="replace")
        name = str(path.relative_to(html_dir))
        found.extend(f"{name}: {u}" for u in _CSS_URL.findall(text) if _is_remote(u))
    return found


# --------------------------------------------------------------------------- serve


def start_server(html_dir: Path, host: str = "127.0.0.1", port: int = 8000, *, quiet: bool = True):
    """Serve ``html_dir`` in a background thread; return ``(server, url)``.

    ``port=0`` picks a free port. Call ``server.shutdown()`` then ``server.server_close()``.
    """
    import errno
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    html_dir = Path(html_dir)
    if not (html_dir / "index.html").is_file():
        raise BookServeError(f"{html_dir} has no index.html: build the book first (learn book)")

    class Handler(SimpleHTTPRequestHandler):
        def log_message(self, format, *args):  # noqa: A002 - stdlib signature
            if not quiet:
                super().log_message(format, *args)

    handler = functools.partial(Handler, directory=str(html_dir))
    try:
        server = ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, errno.EACCES):
            raise BookServeError(
                f"cannot listen on {host}:{port}: "
                + (
                    "the port is already in use"
                    if exc.errno == errno.EADDRINUSE
                    else "permission denied"
                )
                + "; choose another with --port, or stop what is using it"
            ) from None
        raise BookServeError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="learn-book", daemon=True)
    thread.start()
    bound_host, bound_port = server.server_address[:2]
    shown = f"[{bound_host}]" if ":" in str(bound_host) else bound_host
    return server, f"http://{shown}:{bound_port}/"


def serve_book(
    html_dir: Path,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    record: Path | None = SERVING_RECORD,
) -> None:
    """Serve the built book until Ctrl-C (standard library only); prints nothing but "Stopped".

    While it runs, `record` names its URL and process, for `served_url`. Raises BookServeError
    (an OSError) when the port is taken or the book is not built.
    """
    import time

    server, url = start_server(html_dir, host, port, quiet=True)
    if record is not None:
        _write_record(record, url)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("\nStopped.", flush=True)
    finally:
        server.shutdown()
        server.server_close()
        if record is not None:
            _remove_record(record)


def _write_record(record: Path, url: str) -> None:
    import json

    from learn.state import atomic_write

    atomic_write(record, json.dumps({"url": url, "pid": os.getpid()}) + "\n")


def _remove_record(record: Path) -> None:
    """Remove the record if it is still ours (another server may have replaced it)."""
    import contextlib
    import json

    with contextlib.suppress(OSError, ValueError):
        if json.loads(record.read_text(encoding="utf-8")).get("pid") == os.getpid():
            record.unlink()


def served_url(record: Path | None = None) -> str | None:
    """The URL a running `learn book --serve` answers on, or None when none does.

    The record alone is not trusted (a killed server leaves it behind): its process must be
    alive and its port must accept a connection.
    """
    import json
    import socket
    from urllib.parse import urlsplit

    try:
        data = json.loads((record or SERVING_RECORD).read_text(encoding="utf-8"))
        url, pid = str(data["url"]), int(data["pid"])
        os.kill(pid, 0)
        parts = urlsplit(url)
        with socket.create_connection((parts.hostname, parts.port), timeout=0.5):
            return url
    except (OSError, ValueError, KeyError, TypeError):
        return None
