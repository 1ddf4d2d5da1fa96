"""The documents the service retrieves from, loaded from text that ships with Python itself.

The "pydoc" corpus is CPython's own documentation: the language reference topics that `help()`
prints (`pydoc_data.topics`) and the docstrings of a fixed list of standard-library modules. It
needs no download, is real technical prose written by many authors, and every developer can
judge whether a document answers a question, which is what a judged evaluation set needs.

A document is the unit of relevance: judgements name document ids, never chunks, so a single
judgement set scores every chunking strategy. Ids are therefore derived from names that do not
move between runs (`topic:<key>`, `api:<module>.<name>`, `book:<relative path>`), never from
positions or hashes of text that a Python patch release may reword.

Loaders skip documents whose text is empty or only whitespace (there is nothing to retrieve)
and say so: pass a list as `skipped` to receive one line per skipped item; the count is also
logged. They never repair bad input silently: a file that is not UTF-8 raises `DocumentError`
with the file and the byte offset of the first bad byte.
"""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

log = logging.getLogger(__name__)

# Pure-Python (or C with hand-written, long-stable docstrings) modules an engineer uses daily.
# Fixed and sorted so the corpus, and the judgements that name its ids, do not drift; a module
# whose public names change between 3.11.x patch releases does not belong here. Checked: every
# id the shipped questions name exists on 3.11.2, 3.11.7 and 3.12.1. `os.path` is documented as
# it is on POSIX (posixpath); on Windows it is ntpath and a few documents differ.
STDLIB_MODULES: tuple[str, ...] = (
    "abc",
    "argparse",
    "base64",
    "bisect",
    "collections",
    "contextlib",
    "copy",
    "csv",
    "dataclasses",
    "datetime",
    "difflib",
    "enum",
    "fnmatch",
    "functools",
    "glob",
    "hashlib",
    "heapq",
    "http.client",
    "itertools",
    "json",
    "logging",
    "math",
    "operator",
    "os.path",
    "pathlib",
    "pprint",
    "queue",
    "random",
    "re",
    "secrets",
    "shlex",
    "shutil",
    "statistics",
    "string",
    "subprocess",
    "tempfile",
    "textwrap",
    "time",
    "typing",
    "urllib.parse",
    "uuid",
    "zipfile",
)

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
_MARKDOWN_TITLE = re.compile(r"^#\s+(.+?)\s*#*\s*$", re.MULTILINE)


class DocumentError(ValueError):
    """A corpus source that cannot be turned into documents; the message names the source."""


@dataclass(frozen=True)
class Document:
    """One retrievable document.

    `text` is what chunkers split and encoders read; it starts with the title line so that a
    chunk of a short docstring still carries the name it documents (`json.dumps(...)`).
    `source` says where the text came from (a module, `pydoc_data.topics`, a file path).
    """

    id: str
    title: str
    text: str
    source: str


def _is_blank(text: str | None) -> bool:
    return text is None or not text.strip()


def _report_skipped(kind: str, skipped_here: list[str], skipped: list[str] | None) -> None:
    if skipped_here:
        log.info("%s: skipped %d empty document(s)", kind, len(skipped_here))
    if skipped is not None:
        skipped.extend(skipped_here)


def pydoc_topics(*, skipped: list[str] | None = None) -> list[Document]:
    """The language-reference topics that `help("assert")` prints, one document per topic.

    Id `topic:<key>` (`topic:assert`), title = the text's first line ("The "assert" statement").
    """
    from pydoc_data.topics import topics

    docs: list[Document] = []
    skipped_here: list[str] = []
    for key in sorted(topics):
        text = topics[key].strip("\n")
        if _is_blank(text):
            skipped_here.append(f"topic:{key}: empty text")
            continue
        title = text.splitlines()[0].strip()
        docs.append(Document(f"topic:{key}", title, text, "pydoc_data.topics"))
    _report_skipped("pydoc_topics", skipped_here, skipped)
    return docs


def _own_docstring(obj: object) -> str | None:
    """The object's OWN docstring, cleaned; None when it has none.

    `inspect.getdoc` would fall back to a base class's docstring, turning every undocumented
    override into a duplicate of its parent's document; own docstrings keep documents distinct.
    """
    doc = getattr(obj, "__doc__", None)
    if not isinstance(doc, str) or _is_blank(doc):
        return None
    return inspect.cleandoc(doc)


def _signature(obj: object) -> str:
    """`(a, b=1)` when inspect can read a signature (many C functions have none), else ''.

    A document's text, and every chunk id and cached embedding derived from it, must be the same
    in every run, whatever else the process has imported. So defaults are shown by `_default`:
    literals as they are, functions and classes without their memory address, and any other
    object as `...` (`logging.shutdown`'s default lists every handler created so far).
    """
    try:
        signature = inspect.signature(obj)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return ""
    parameters = [
        parameter
        if parameter.default is inspect.Parameter.empty
        else parameter.replace(default=_Shown(_default(parameter.default)))
        for parameter in signature.parameters.values()
    ]
    return str(signature.replace(parameters=parameters))


class _Shown:
    """A default value that prints as the given text inside a signature."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _default(value: object) -> str:
    text = repr(value)
    try:
        ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        if callable(value):
            return _ADDRESS.sub("", text)
        return "..."
    return text


def _owners(name: str) -> tuple[str, str]:
    """A module's name and its C accelerator's (`heapq` -> `_heapq`, `os.path`'s `_posixpath`)."""
    return name, "_" + name.rsplit(".", 1)[-1]


def _defined_in(obj: object, module: ModuleType) -> bool:
    """Whether `obj` was defined by `module` (or by its C accelerator: `heapq.heappush` lives
    in `_heapq`, `functools.reduce` in `_functools`) rather than imported into it."""
    return getattr(obj, "__module__", None) in _owners(module.__name__)


def _documented_here(obj: object, module: ModuleType, documented: frozenset[str]) -> bool:
    """Whether a name the module exports in `__all__` is documented under this module.

    A re-export of a builtin (`typing.Text` is `str`) or of a class another documented module
    defines (`secrets.SystemRandom` is `random.SystemRandom`) would only duplicate that
    module's documents. A method bound to an instance the module built (`secrets.choice`) is
    the module's own API even though its function lives elsewhere.
    """
    if _defined_in(obj, module) or inspect.ismethod(obj):
        return True
    owner = getattr(obj, "__module__", None)
    return owner != "builtins" and owner not in documented


def _public_names(module: ModuleType, documented: frozenset[str]) -> list[str]:
    """The module's public functions and classes, in sorted order.

    `__all__` is the module's own statement of its API (it includes, for example, the functions
    `os.path` takes from `genericpath`); without one, public names defined in the module.
    """
    declared = getattr(module, "__all__", None)
    keep = []
    if declared is not None:
        for name in set(declared):
            obj = getattr(module, name, None)
            if obj is not None and _documented_here(obj, module, documented):
                keep.append(name)
    else:
        keep = [n for n, obj in vars(module).items() if _defined_in(obj, module)]
    return sorted(
        name
        for name in keep
        if not name.startswith("_")
        and (inspect.isclass(getattr(module, name)) or inspect.isroutine(getattr(module, name)))
    )


def _method_docs(cls: type, qualname: str, source: str) -> list[tuple[Document | None, str]]:
    """(document or None when its docstring is empty, id) for the public methods of `cls`.

    Only methods defined in the class body itself (`vars(cls)`), so a method documented once in
    a base class is not repeated for every subclass; a function from another module stored as
    a class attribute (`logging.Formatter.converter = time.localtime`) is documented there.
    """
    out: list[tuple[Document | None, str]] = []
    for name in sorted(vars(cls)):
        if name.startswith("_"):
            continue
        raw = vars(cls)[name]
        if isinstance(raw, (classmethod, staticmethod)):
            raw = raw.__func__
        if not inspect.isroutine(raw):
            continue
        owner = getattr(raw, "__module__", None)
        if owner is not None and owner not in _owners(cls.__module__):
            continue
        doc_id = f"api:{qualname}.{name}"
        doc = _own_docstring(raw)
        if doc is None:
            out.append((None, doc_id))
            continue
        title = f"{qualname}.{name}{_signature(getattr(cls, name))}"
        out.append((Document(doc_id, title, f"{title}\n\n{doc}", source), doc_id))
    return out


def stdlib_docstrings(
    modules: Sequence[str] = STDLIB_MODULES, *, skipped: list[str] | None = None
) -> list[Document]:
    """One document per module docstring, public function or class, and public method.

    Ids: `api:json` (the module), `api:json.dumps`, `api:collections.Counter`,
    `api:collections.Counter.most_common`, always under the name the user imports (`os.path`,
    not `posixpath`). Title = the qualified name plus the signature when inspect can read one.
    Items with an empty docstring are skipped (listed in `skipped` when given).
    """
    docs: list[Document] = []
    skipped_here: list[str] = []
    documented = frozenset(modules)
    for modname in modules:
        try:
            module = importlib.import_module(modname)
        except ImportError as exc:
            raise DocumentError(f"stdlib module {modname!r} cannot be imported: {exc}") from exc
        mod_doc = _own_docstring(module)
        if mod_doc is None:
            skipped_here.append(f"api:{modname}: empty docstring")
        else:
            docs.append(Document(f"api:{modname}", modname, f"{modname}\n\n{mod_doc}", modname))
        for name in _public_names(module, documented):
            obj = getattr(module, name)
            qualname = f"{modname}.{name}"
            doc = _own_docstring(obj)
            if doc is None:
                skipped_here.append(f"api:{qualname}: empty docstring")
            else:
                title = f"{qualname}{_signature(obj)}"
                docs.append(Document(f"api:{qualname}", title, f"{title}\n\n{doc}", modname))
            if inspect.isclass(obj):
                for method_doc, method_id in _method_docs(obj, qualname, modname):
                    if method_doc is None:
                        skipped_here.append(f"{method_id}: empty docstring")
                    else:
                        docs.append(method_doc)
    _report_skipped("stdlib_docstrings", skipped_here, skipped)
    return docs


def _unique_sorted(docs: Iterable[Document], what: str) -> list[Document]:
    by_id: dict[str, Document] = {}
    for doc in docs:
        if doc.id in by_id:
            raise DocumentError(f"{what}: duplicate document id {doc.id!r}")
        by_id[doc.id] = doc
    return [by_id[k] for k in sorted(by_id)]


@functools.lru_cache(maxsize=1)
def _documentation_corpus() -> tuple[Document, ...]:
    return tuple(_unique_sorted([*pydoc_topics(), *stdlib_docstrings()], "pydoc corpus"))


def documentation_corpus() -> list[Document]:
    """The "pydoc" corpus: reference topics + stdlib docstrings, sorted by id, ids unique.

    Built once per process (documents are immutable; the list returned is a fresh copy).
    """
    return list(_documentation_corpus())


def _read_utf8(path: Path) -> str:
    """The file's text; a DocumentError naming the file and byte offset if it is not UTF-8."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DocumentError(
            f"{path}: not valid UTF-8 at byte offset {exc.start} "
            f"(byte 0x{data[exc.start]:02x}: {exc.reason}); re-encode the file as UTF-8"
        ) from exc


def _markdown_files(root: Path) -> list[Path]:
    """The book's pages (book/**/*.md, skipping build output and hidden or `_` folders) and
    each project's README.md."""
    files: list[Path] = []
    book = root / "book"
    if book.is_dir():
        for path in book.rglob("*.md"):
            rel_parts = path.relative_to(book).parts[:-1]
            if any(part.startswith(("_", ".")) for part in rel_parts):
                continue
            files.append(path)
    projects = root / "projects"
    if projects.is_dir():
        files.extend(p for p in projects.glob("*/README.md") if p.is_file())
    return sorted(files)


def workbook_corpus(root: Path, *, skipped: list[str] | None = None) -> list[Document]:
    """The workbook's own pages as a second corpus: id `book:<path relative to root>`.

    Title = the first `# ` heading, else the file name. A file that is not UTF-8 raises
    DocumentError (with the byte offset); an empty file is skipped and counted.
    """
    root = Path(root)
    if not root.is_dir():
        raise DocumentError(f"{root}: workbook root is not a directory")
    docs: list[Document] = []
    skipped_here: list[str] = []
    for path in _markdown_files(root):
        rel = path.relative_to(root).as_posix()
        text = _read_utf8(path)
        if _is_blank(text):
            skipped_here.append(f"book:{rel}: empty file")
            continue
        match = _MARKDOWN_TITLE.search(text)
        title = match.group(1) if match else path.name
        docs.append(Document(f"book:{rel}", title, text.strip("\n"), str(path)))
    _report_skipped("workbook_corpus", skipped_here, skipped)
    return _unique_sorted(docs, f"workbook corpus under {root}")
